#!/usr/bin/env bash
# The README's main job: builds if needed, then runs the smoke sweep on an embedded coordinator
# with two local workers and prints its results table. The database stays in out/ (a second
# run reuses every cell; pass --force to run them again). Extra arguments go to `pcsweep local`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash tools/build.sh
exec build/bin/pcsweep local --workers 2 --db "${PCSWEEP_DEMO_DB:-$root/out/smoke.db}" \
  experiments/specs/smoke.yaml "$@"
