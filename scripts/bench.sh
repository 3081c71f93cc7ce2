#!/usr/bin/env bash
# Builds the release preset and runs every benchmark (tables on stdout, CSV and PNG under results/).
# Takes ~10 minutes; run it on an otherwise idle machine (the benchmarks print how disturbed each cell was).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
if ! /usr/bin/python3 -c 'import matplotlib' 2>/dev/null; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-matplotlib
fi
cmake --preset release >/dev/null
cmake --build --preset release
./build/release/bench/skyloft_micro
./build/release/bench/skyloft_preempt_cost
./build/release/bench/skyloft_wakeup
./build/release/bench/skyloft_million
