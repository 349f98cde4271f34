#!/usr/bin/env bash
# Builds Stria. Usage: scripts/build.sh [release|test]
#   release: optimized binaries in build/bin/ (stria, stria-meta, stria-store)
#   test:    ASan+UBSan build with unit and system tests in build-test/
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:-release}
jobs=${JOBS:-2}
case "$kind" in
  release) dir=build; flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo) ;;
  test) dir=build-test; flags=(-DCMAKE_BUILD_TYPE=Debug -DSTRIA_TESTS=ON -DSTRIA_SANITIZE=ON -DSTRIA_BENCH=OFF) ;;
  *) echo "usage: $0 [release|test]" >&2; exit 2 ;;
esac
cmake -S . -B "$dir" -G Ninja "${flags[@]}" >/dev/null
ninja -C "$dir" -j "$jobs"
