#!/usr/bin/env bash
# The whole test suite: installs what it needs, builds, and runs every unit and system test.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash tools/build.sh
cd build
ctest --output-on-failure -j "${PCSWEEP_TEST_JOBS:-2}" "$@"
