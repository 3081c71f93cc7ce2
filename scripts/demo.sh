#!/usr/bin/env bash
# The main job: builds the release preset and runs the bursty short/long task demo (skyloft vs threads),
# then the threading microbenchmark. Extra arguments go to the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release
./build/release/examples/skyloft_demo "$@"
