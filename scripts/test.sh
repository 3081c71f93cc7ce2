#!/usr/bin/env bash
# Builds and runs the test suite in the release, asan and tsan presets (pass preset names to choose).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
presets=("$@")
[ ${#presets[@]} -eq 0 ] && presets=(release asan tsan)
for preset in "${presets[@]}"; do
  echo "=== preset: $preset ==="
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset"
  ctest --preset "$preset"
done
