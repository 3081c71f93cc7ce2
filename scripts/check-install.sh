#!/usr/bin/env bash
# Checks that skyloft installs and can be used from outside its tree: installs a release build into a
# temporary prefix, configures, builds and runs tests/install_consumer against it through
# find_package(skyloft) (shared and static targets), compiles and runs the same program once through
# pkg-config, and builds the .deb with CPack and lists what it holds.
# Usage: bash scripts/check-install.sh [BUILD_DIR]   (default: build/release, configured if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/release}
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake --preset release >/dev/null
  build=build/release
fi
cmake --build "$build" --target skyloft skyloft_shared

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix="$tmp/prefix"

echo "=== install into a temporary prefix ==="
cmake --install "$build" --prefix "$prefix" >/dev/null
pc=$(find "$prefix" -name skyloft.pc)
libdir=$(dirname "$(dirname "$pc")")
for f in include/skyloft/skyloft.hpp "${libdir#"$prefix"/}/libskyloft.a" "${libdir#"$prefix"/}/libskyloft.so" \
         "${libdir#"$prefix"/}/cmake/skyloft/skyloftConfig.cmake" \
         "${libdir#"$prefix"/}/cmake/skyloft/skyloftConfigVersion.cmake"; do
  [ -e "$prefix/$f" ] || { echo "check-install: $f was not installed" >&2; exit 1; }
done

echo "=== find_package(skyloft): shared and static ==="
cmake -S tests/install_consumer -B "$tmp/consumer" -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$tmp/consumer" >/dev/null
"$tmp/consumer/consumer"
"$tmp/consumer/consumer_static"

echo "=== pkg-config ==="
export PKG_CONFIG_PATH="$(dirname "$pc")"
echo "pkg-config skyloft: version $(pkg-config --modversion skyloft), $(pkg-config --cflags --libs skyloft)"
# shellcheck disable=SC2046
g++ -std=c++20 -O1 tests/install_consumer/main.cpp $(pkg-config --cflags --libs skyloft) -o "$tmp/consumer_pc"
LD_LIBRARY_PATH="$libdir" "$tmp/consumer_pc"

echo "=== cpack -G DEB ==="
(cd "$build" && cpack -G DEB -B "$tmp/deb" >/dev/null)
deb=$(find "$tmp/deb" -maxdepth 1 -name '*.deb')
dpkg-deb --info "$deb" | grep -E "Package|Version|Depends"
dpkg-deb --contents "$deb" | awk '{print $6}' | grep -E 'skyloft\.hpp$|libskyloft|skyloftConfig|skyloft\.pc$'
if [ -n "${SKYLOFT_DEB_OUT:-}" ]; then cp "$deb" "$SKYLOFT_DEB_OUT" && echo "copied to $SKYLOFT_DEB_OUT"; fi
echo "check-install: ok"
