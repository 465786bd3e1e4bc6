#!/usr/bin/env bash
# The whole test suite: installs what it needs, builds, runs every unit and system test, then
# the sanitizer and fuzzing pass (tools/sanitize.sh all). Extra arguments go to ctest (e.g.
# `-L system`, `-R spec`) and select a subset, which skips the sanitizer pass; so does
# PCSWEEP_SANITIZERS=0.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash tools/build.sh
cd build
# -j2: the suite is sized for two cores. Tests without their own TIMEOUT property get 300 s, so
# a hung test fails instead of hanging CI; --no-tests=error catches an empty (misconfigured) run.
ctest --output-on-failure --no-tests=error -j "${PCSWEEP_TEST_JOBS:-2}" \
  --timeout "${PCSWEEP_TEST_TIMEOUT:-300}" "$@"
if [[ $# -eq 0 && ${PCSWEEP_SANITIZERS:-1} != 0 ]]; then
  cd "$root"
  PCSWEEP_FUZZ_SECONDS=${PCSWEEP_FUZZ_SECONDS:-30} bash tools/sanitize.sh all
fi
