#!/usr/bin/env bash
# The main job: builds the release preset and runs the bursty short/long request demo (skyloft vs Linux
# threads: a table, results/demo.csv, and the latency distributions in results/demo.png).
# Extra arguments go to the demo (skyloft_demo --help).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release
./build/release/examples/skyloft_demo "$@"
