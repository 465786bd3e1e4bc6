#!/usr/bin/env bash
# GPU check in one command, for a machine with CUDA and PyTorch but no gRPC or SQLite:
#   1. builds the engine standalone (cmake -S experiments) against python3's libtorch;
#   2. runs the engine's golden tests (transformers / PEFT reference tensors) on the CPU, then
#      on CUDA in fp32 and bf16 (PCSWEEP_TEST_DEVICE=cuda);
#   3. runs pcsweep-bench-engine on the full MedGemma-4B shape (CUDA, bf16);
#   4. runs the HF + PEFT anchor (MedGemma-4B shape; --small without CUDA) and keeps its JSON,
#      and prints the engine's throughput as a ratio of the anchor's.
# Without CUDA every CUDA step is skipped with a line that says so; the exit status is that of
# the build and the tests that ran.
#
# Usage: tools/gpu-check.sh [--deps DIR] [--anchor FILE] [--out DIR] [--build DIR] [--jobs N]
#   --deps DIR    a folder of Debian .deb files (abseil, googletest, nlohmann-json, CLI11,
#                 sentencepiece, OpenSSL headers, pkgconf) and boost/ headers, for a machine
#                 that has none of them installed and no package registry; unpacked locally.
#   --anchor FILE hf_peft_anchor.py (shared/anchors); skipped when not given.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
deps="" anchor="" out="${OUT:-$root/out/gpu-check}" build="$root/build-gpu" jobs=$(nproc)
while [[ $# -gt 0 ]]; do
  case "$1" in
    --deps) deps=$(cd "$2" && pwd); shift 2 ;;
    --anchor) anchor="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --build) build="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    *) echo "gpu-check: unknown argument '$1' (see the usage at the top of $0)" >&2; exit 1 ;;
  esac
done
mkdir -p "$out"
log() { echo "gpu-check: $*" | tee -a "$out/summary.txt"; }

# libtorch from python3's PyTorch (a GPU machine); without one, the system's (Debian's
# libtorch-dev), CPU only.
if torch_prefix=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)' 2>/dev/null); then
  python_torch=1
  cuda=$(python3 -c 'import torch; print(int(torch.cuda.is_available()))')
  torch_version=$(python3 -c 'import torch; print(torch.__version__)')
else
  python_torch=0 cuda=0 torch_prefix="" torch_version="system libtorch (python3 has no torch)"
fi
log "torch: $torch_version, cuda available: $cuda, compiler: $(c++ --version | head -1)"
if [[ "$cuda" == 1 ]]; then
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader |
    sed 's/^/gpu-check: gpu: /' | tee -a "$out/summary.txt"
fi

cmake_args=(-DCMAKE_BUILD_TYPE="${PCSWEEP_BUILD_TYPE:-Release}")
prefix_path="$torch_prefix"
if [[ -n "$deps" ]]; then
  # Unpacked into a private root; pkg-config's sysroot maps the packages' /usr paths into it.
  sysroot="$build/deps-root"
  mkdir -p "$sysroot"
  command -v dpkg-deb >/dev/null || { echo "gpu-check: --deps needs dpkg-deb" >&2; exit 1; }
  for deb in "$deps"/debs/*.deb; do dpkg-deb -x "$deb" "$sysroot"; done
  usr="$sysroot/usr" arch_lib="$sysroot/usr/lib/x86_64-linux-gnu"
  export PATH="$usr/bin:$PATH" LD_LIBRARY_PATH="$arch_lib:${LD_LIBRARY_PATH:-}"
  export PKG_CONFIG_SYSROOT_DIR="$sysroot"
  export PKG_CONFIG_LIBDIR="$arch_lib/pkgconfig:$usr/share/pkgconfig"
  [[ -x "$usr/bin/pkg-config" ]] || ln -sf pkgconf "$usr/bin/pkg-config"
  prefix_path="$torch_prefix;$usr"
  cmake_args+=(-DBoost_NO_BOOST_CMAKE=ON -DBoost_INCLUDE_DIR="$deps/boost"
    -DOPENSSL_INCLUDE_DIR="$usr/include" -DOPENSSL_CRYPTO_LIBRARY="$arch_lib/libcrypto.so"
    -DOPENSSL_SSL_LIBRARY="$arch_lib/libssl.so"
    -DCMAKE_CXX_FLAGS="-isystem $usr/include/x86_64-linux-gnu -isystem $usr/include"
    -DCMAKE_EXE_LINKER_FLAGS="-Wl,-rpath-link,$arch_lib -Wl,-rpath,$arch_lib")
fi
cmake_args+=(-DCMAKE_PREFIX_PATH="$prefix_path")

keep_going=(-k)
if ! command -v make >/dev/null && command -v ninja >/dev/null; then
  cmake_args+=(-G Ninja) keep_going=(-k 0)
fi

set +e
start=$(date +%s)
cmake -S "$root/experiments" -B "$build" "${cmake_args[@]}" >"$out/configure.log" 2>&1
rc=$?
if [[ $rc -eq 0 ]]; then
  cmake --build "$build" -j"$jobs" -- "${keep_going[@]}" >"$out/build.log" 2>&1
  rc=$?
fi
log "configure + build (cmake -S experiments): rc $rc in $(($(date +%s) - start)) s"
if [[ $rc -ne 0 ]]; then
  grep -E "error|Error" "$out/configure.log" "$out/build.log" 2>/dev/null | head -40 |
    tee -a "$out/summary.txt"
  exit 1
fi

status=0
run_tests() {  # label, device
  local label="$1" device="$2" t0
  t0=$(date +%s)
  (cd "$build" && PCSWEEP_SOURCE_ROOT="$root" PCSWEEP_TEST_DEVICE="$device" \
    ctest -R "$3" --output-on-failure ${4:-} --timeout 600) >"$out/tests-$label.log" 2>&1
  local rc=$?
  log "tests on $label ($3): rc $rc in $(($(date +%s) - t0)) s;" \
    "$(grep -E 'tests passed|tests failed' "$out/tests-$label.log" | tail -1)"
  grep -E "logit range|FAILED|Failure" "$out/tests-$label.log" | head -20 | sed 's/^/  /' |
    tee -a "$out/summary.txt"
  [[ $rc -eq 0 ]] || status=1
}
run_tests cpu cpu "."
if [[ "$cuda" == 1 ]]; then
  # The golden tests in fp32 (EngineTest, the fp32 checkpoint) and bf16 (EngineBf16Compute).
  run_tests cuda cuda "^engine_test$" -V
else
  log "no CUDA device: CUDA golden tests skipped"
fi

# The engine's modes on the full MedGemma-4B shape (random weights), bf16 on the GPU.
if [[ "$cuda" == 1 ]]; then
  t0=$(date +%s)
  "$build/bin/pcsweep-bench-engine" --device cuda --dtype bf16 --text-layers 34 \
    --vision-layers 27 --layers 15-19 --images 8 --paraphrases 4 --batch 32 --train-pairs 8 \
    --iters 5 --warmup 2 --work "$build/bench-model" --json "$out/bench-engine.json" \
    >"$out/bench-engine.log" 2>&1
  brc=$?
  log "pcsweep-bench-engine (MedGemma-4B shape, bf16): rc $brc in $(($(date +%s) - t0)) s"
  sed 's/^/gpu-check: bench: /' "$out/bench-engine.log" | tail -14 | tee -a "$out/summary.txt"
  [[ $brc -eq 0 ]] || status=1
else
  log "no CUDA device: pcsweep-bench-engine on the MedGemma shape skipped" \
    "(run $build/bin/pcsweep-bench-engine for the CPU figures)"
fi

if [[ -n "$anchor" && "$python_torch" == 0 ]]; then
  log "python3 has no torch: HF + PEFT anchor skipped"
elif [[ -n "$anchor" ]]; then
  small=()
  [[ "$cuda" == 1 ]] || small=(--small)
  t0=$(date +%s)
  PYTHONUNBUFFERED=1 python3 "$anchor" "${small[@]}" --out "$out/anchor.json" \
    >"$out/anchor.log" 2>&1
  arc=$?
  log "HF + PEFT anchor ${small[*]:-(MedGemma-4B shape)}: rc $arc in $(($(date +%s) - t0)) s"
  grep '^{' "$out/anchor.log" | python3 -c '
import json, sys
for line in sys.stdin:
    r = json.loads(line)
    keys = [k for k in ("stage", "arm", "layers", "prompts_per_s", "pairs_per_s", "step_s",
                        "seq_len", "peak_mem_gb", "error") if r.get(k) is not None]
    print("gpu-check: anchor: " + ", ".join(f"{k}={r[k]}" for k in keys))
' | tee -a "$out/summary.txt"
  [[ $arc -eq 0 ]] || status=1
  if [[ -f "$out/bench-engine.json" && -f "$out/anchor.json" ]]; then
    python3 - "$out/bench-engine.json" "$out/anchor.json" <<'RATIOS' | tee -a "$out/summary.txt"
import json, sys
bench, anchor = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
ref = {r.get("arm", r["stage"]): r for r in anchor}
scoring = ref.get("eval_forward", {}).get("prompts_per_s")
training = ref.get("targeted", {}).get("pairs_per_s")
if scoring:
    print("gpu-check: ratio: paraphrase-set scoring (shared prefix, vision once per image) "
          f"{bench['shared_prompts_per_s_with_vision'] / scoring:.1f}x the HF + PEFT anchor "
          f"({bench['shared_prompts_per_s_with_vision']:.1f} vs {scoring} prompts/s)")
if training:
    print(f"gpu-check: ratio: LoRA training layers {bench['lora_layers']} (frozen prefix) "
          f"{bench['frozen_pairs_per_s'] / training:.1f}x the anchor "
          f"({bench['frozen_pairs_per_s']:.1f} vs {training} pairs/s)")
RATIOS
  fi
fi
log "done: exit $status"
exit $status
