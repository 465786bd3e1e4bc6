#!/usr/bin/env bash
# The whole test suite: installs what it needs, builds, starts a local Slurm cluster (root),
# runs every unit, system and slurm test, then
# the sanitizer and fuzzing pass (tools/sanitize.sh all). Extra arguments go to ctest (e.g.
# `-L system`, `-R spec`) and select a subset, which skips the sanitizer pass; so does
# PCSWEEP_SANITIZERS=0.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash tools/build.sh
# The slurm-labelled tests need a Slurm cluster: a one-node one on this machine
# (tools/slurm-local.sh, root only), started here unless it already runs, and stopped at the
# end if this script started it. PCSWEEP_SLURM_TESTS=0 skips them.
if [[ ${PCSWEEP_SLURM_TESTS:-1} != 0 ]]; then
  if [[ $(id -u) -ne 0 ]]; then
    echo "test.sh: not root, so no local Slurm cluster: the slurm tests skip" >&2
  else
    if ! bash tools/slurm-local.sh status >/dev/null 2>&1; then
      bash tools/slurm-local.sh start
      trap 'bash "$root/tools/slurm-local.sh" stop >/dev/null || true' EXIT
    fi
    export SLURM_CONF=${PCSWEEP_SLURM_DIR:-/tmp/pcsweep-slurm}/slurm.conf
    export PCSWEEP_REQUIRE_SLURM=1  # a cluster is up: a slurm test that cannot reach it fails
  fi
fi
cd build
# -j2: the suite is sized for two cores. Tests without their own TIMEOUT property get 300 s, so
# a hung test fails instead of hanging CI; --no-tests=error catches an empty (misconfigured) run.
ctest --output-on-failure --no-tests=error -j "${PCSWEEP_TEST_JOBS:-2}" \
  --timeout "${PCSWEEP_TEST_TIMEOUT:-300}" "$@"
if [[ $# -eq 0 && ${PCSWEEP_SANITIZERS:-1} != 0 ]]; then
  cd "$root"
  PCSWEEP_FUZZ_SECONDS=${PCSWEEP_FUZZ_SECONDS:-30} bash tools/sanitize.sh all
fi
