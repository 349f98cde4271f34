#!/usr/bin/env bash
# Installs, builds (ASan+UBSan) and runs every test: unit tests beside the
# code and system tests that start real daemons on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh test
cd build-test
# One test at a time: the system tests start whole clusters on 2 cores.
ctest --output-on-failure --timeout 1500 -j 1 "$@"
