#!/usr/bin/env bash
# The full-size smoke run (not in CI: ~10 minutes and ~22 GB on a 2-core CPU):
#   1. writes a random-weight MedGemma-4B checkpoint in the exact layout of the real one
#      (experiments/testdata/medgemma-4b-it: its config.json, its two bf16 shards and
#      model.safetensors.index.json, 8.6 GB) unless --model names a real folder;
#   2. runs `pcsweep-run smoke` on it: load (shards, bf16 -> fp32 on CPU), score one paraphrase
#      pair, one LoRA step on layers 15-19, save the adapter, reload it and score again; each
#      phase prints its wall time and resident / peak memory, and the run fails when the peak
#      passes --max-rss-gb (default 24).
#
# Usage: tools/medgemma-smoke.sh [--model DIR] [--work DIR] [--max-rss-gb N] [--keep]
#                                [-- extra pcsweep-run smoke options, e.g. --dtype bf16]
#   --work DIR  where the random checkpoint goes (default /tmp/pcsweep-medgemma-random); an
#               existing one is reused, so a second run skips step 1.
#   --keep      keep the random checkpoint afterwards (default: removed when this run wrote it).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
run="${PCSWEEP_RUN:-$root/build/bin/pcsweep-run}"
model="" work="/tmp/pcsweep-medgemma-random" max_rss=24 keep=0 extra=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --model) model="$2"; shift 2 ;;
    --work) work="$2"; shift 2 ;;
    --max-rss-gb) max_rss="$2"; shift 2 ;;
    --keep) keep=1; shift ;;
    --) shift; extra=("$@"); break ;;
    *) echo "medgemma-smoke: unknown argument '$1' (see the usage at the top of $0)" >&2; exit 1 ;;
  esac
done
if [[ ! -x "$run" ]]; then
  echo "medgemma-smoke: no $run; build first (bash tools/build.sh) or set PCSWEEP_RUN" >&2
  exit 1
fi

wrote=0
if [[ -z "$model" ]]; then
  model="$work"
  if [[ ! -f "$model/config.json" ]]; then
    need_kb=$((9 * 1024 * 1024))
    free_kb=$(df -Pk "$(dirname "$model")" | awk 'NR == 2 {print $4}')
    if ((free_kb < need_kb)); then
      echo "medgemma-smoke: $(dirname "$model") has $((free_kb / 1024 / 1024)) GB free, the checkpoint needs 9" >&2
      exit 1
    fi
    "$run" random-checkpoint --like "$root/experiments/testdata/medgemma-4b-it" --out "$model"
    wrote=1
  fi
fi
status=0
"$run" smoke --model "$model" --max-rss-gb "$max_rss" "${extra[@]}" || status=$?
if ((wrote && !keep)); then rm -rf "$model"; fi
exit "$status"
