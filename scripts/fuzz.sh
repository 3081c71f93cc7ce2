#!/usr/bin/env bash
# Builds the fuzzers with clang (libFuzzer + ASan + UBSan) and runs each for SECONDS (default 30) from its
# seed corpus: protocol_fuzz (the skyloftd protocol, fuzz/corpus) and memcached_fuzz (the memcached server's
# request parser and sessions, fuzz/memcached_corpus). New interesting inputs go to build/fuzz/corpus/<name>
# (the seeds stay as they are); a crashing input is written to build/fuzz/artifacts/ and the script exits
# non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-30}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -lt 1 ]; then
  echo "usage: scripts/fuzz.sh [SECONDS]   (a positive whole number; got '$seconds')" >&2
  exit 2
fi
bash scripts/install-deps.sh fuzz
build=build/fuzz
CC=clang CXX=clang++ cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSKYLOFT_BUILD_FUZZ=ON \
  -DSKYLOFT_BUILD_TESTS=OFF -DSKYLOFT_BUILD_BENCH=OFF -DSKYLOFT_BUILD_EXAMPLES=OFF -DSKYLOFT_BUILD_TOOLS=OFF >/dev/null
fuzzers=("protocol_fuzz:fuzz/corpus:the skyloftd protocol parser" "memcached_fuzz:fuzz/memcached_corpus:the memcached request parser")
for f in "${fuzzers[@]}"; do
  IFS=: read -r name seeds what <<< "$f"
  cmake --build "$build" --target "$name"
  mkdir -p "$build/corpus/$name" "$build/artifacts"
  echo "fuzzing $what for ${seconds} s"
  "$build/fuzz/$name" -max_total_time="$seconds" -max_len=1024 -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$build/artifacts/$name-" "$build/corpus/$name" "$seeds"
done
