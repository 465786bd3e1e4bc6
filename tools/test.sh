#!/usr/bin/env bash
# The whole test suite: installs what it needs, builds, and runs every unit and system test.
# Extra arguments go to ctest (e.g. `-L system`, `-R spec`). The last lines are ctest's summary.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash tools/build.sh
cd build
# -j2: the suite is sized for two cores. Tests without their own TIMEOUT property get 300 s, so
# a hung test fails instead of hanging CI; --no-tests=error catches an empty (misconfigured) run.
exec ctest --output-on-failure --no-tests=error -j "${PCSWEEP_TEST_JOBS:-2}" \
  --timeout "${PCSWEEP_TEST_TIMEOUT:-300}" "$@"
