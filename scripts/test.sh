#!/usr/bin/env bash
# Installs, builds (ASan+UBSan) and runs every test: unit tests beside the
# code and system tests that start real daemons on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh test
# The frame decoder's libFuzzer target, briefly (longer: scripts/fuzz.sh 600).
bash scripts/fuzz.sh 20 2>&1 | tail -n 4
cd build-test
# One test at a time: the system tests start whole clusters on 2 cores.
ctest --output-on-failure --timeout 1500 -j 1 "$@"
