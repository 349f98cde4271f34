#!/usr/bin/env bash
# Builds the libFuzzer targets with clang and runs each for SECONDS (default 30).
# Crash inputs land in build-fuzz/crashes/; add them to the frame tests.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=Debug \
  -DSTRIA_FUZZ=ON -DSTRIA_BENCH=OFF -DSTRIA_SANITIZE=OFF >/dev/null
ninja -C build-fuzz -j "${JOBS:-2}" frame_fuzzer
mkdir -p build-fuzz/corpus build-fuzz/crashes
build-fuzz/bin/frame_fuzzer -max_total_time="$seconds" -artifact_prefix=build-fuzz/crashes/ \
  -print_final_stats=1 build-fuzz/corpus
