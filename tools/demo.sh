#!/usr/bin/env bash
# The README's main job: the paper's ablation (experiments/specs/paper-ablation.yaml) end to
# end on this machine. Builds if needed, runs an embedded coordinator with two local workers
# (`pcsweep local`), shows live progress, then prints the main, ablation and phenomena tables
# computed from the per-example rows in the SQLite database, writes the SVG figure, and says
# where both are and how long it took. Run it again: every cell is reused from the database
# (pass --force to recompute them). Extra arguments go to `pcsweep local`.
#
# Environment: PCSWEEP_DEMO_DB (default out/paper-ablation.db), PCSWEEP_DEMO_SPEC (default the
# paper spec), PCSWEEP_BUILD_DIR (use binaries already built there instead of running
# tools/build.sh), PCSWEEP_DEMO_FORMAT (text|markdown|csv|latex|json, default text).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
if [[ -n "${PCSWEEP_BUILD_DIR:-}" ]]; then
  build=$(cd "$PCSWEEP_BUILD_DIR" && pwd)
else
  bash tools/build.sh
  build=$root/build
fi
pcsweep=$build/bin/pcsweep
if [[ ! -x $build/bin/pcsweep-run ]]; then
  echo "demo: $build/bin/pcsweep-run is missing: the demo's jobs need the libtorch part" \
    "(configure without -DPCSWEEP_WITH_TORCH=OFF)" >&2
  exit 1
fi
spec=${PCSWEEP_DEMO_SPEC:-$root/experiments/specs/paper-ablation.yaml}
db=${PCSWEEP_DEMO_DB:-$root/out/paper-ablation.db}
format=${PCSWEEP_DEMO_FORMAT:-text}
mkdir -p "$(dirname "$db")"
db=$(cd "$(dirname "$db")" && pwd)/$(basename "$db")
plot=${db%.db}.svg
cells=${db%.db}.cells.txt
# The sweep's name, which `results` and `plot` accept in place of its id (newest sweep).
sweep=$(sed -n 's/^name:[[:space:]]*\([A-Za-z0-9_.-]*\).*/\1/p' "$spec" | head -n 1)

# Two workers x one slot on two cores: one libtorch thread per job.
export PCSWEEP_THREADS=${PCSWEEP_THREADS:-1}
start=$(date +%s)
echo "== pcsweep demo: $(basename "$spec") on an embedded coordinator with 2 local workers"
status=0
"$pcsweep" local --workers 2 --db "$db" "$spec" "$@" >"$cells" || status=$?
if [[ $status -ne 0 ]]; then
  echo "demo: the sweep did not finish cleanly (exit $status); tables below cover the jobs" \
    "that succeeded. Per-cell metrics: $cells" >&2
fi

for table in main ablation phenomena; do
  echo
  echo "== results --table $table"
  "$pcsweep" results "$sweep" --db "$db" --table "$table" --format "$format" || status=1
done
echo
"$pcsweep" plot "$sweep" --db "$db" --out "$plot" || status=1
end=$(date +%s)
echo
echo "database:      $db"
echo "               (pcsweep results $sweep --db $db --table main|ablation|phenomena)"
echo "plot:          $plot"
echo "cell metrics:  $cells"
echo "wall time:     $((end - start)) s (after the build)"
exit $status
