#!/usr/bin/env bash
# Installs the Debian packages the build, tests, benchmarks and demo need (only those missing).
# memcached and libmemcached-tools: the real server and the stock clients bench/run-all and the memcached
# tests compare with. `install-deps.sh fuzz` adds clang and its libFuzzer runtime (scripts/fuzz.sh).
set -euo pipefail
packages=(cmake ninja-build g++ libgtest-dev libbenchmark-dev libfmt-dev libboost-fiber-dev libboost-context-dev liburing-dev pkg-config golang-go python3-matplotlib librocksdb-dev
          pigz xz-utils sysbench memcached libmemcached-tools)  # the real programs run under skyloft-run
if [ "${1:-}" = "fuzz" ]; then
  packages+=(clang libclang-rt-14-dev)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
