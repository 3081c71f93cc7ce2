#!/usr/bin/env bash
# Builds the protocol fuzzer with clang (libFuzzer + ASan + UBSan) and runs it for SECONDS (default 30) from
# the seed corpus in fuzz/corpus. New interesting inputs go to build/fuzz/corpus (the seeds stay as they
# are); a crashing input is written to build/fuzz/artifacts/ and the script exits non-zero.
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
cmake --build "$build" --target protocol_fuzz
mkdir -p "$build/corpus" "$build/artifacts"
echo "fuzzing the skyloftd protocol parser for ${seconds} s"
"$build/fuzz/protocol_fuzz" -max_total_time="$seconds" -max_len=1024 -timeout=10 -print_final_stats=1 \
  -artifact_prefix="$build/artifacts/" "$build/corpus" fuzz/corpus
