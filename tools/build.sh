#!/usr/bin/env bash
# Configures and builds pcsweep into build/ (Ninja, ccache). Extra arguments go to cmake's
# configure step, e.g. -DPCSWEEP_WITH_TORCH=OFF.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash tools/setup.sh
jobs=${PCSWEEP_BUILD_JOBS:-$(nproc)}
if [[ ! -f build/build.ninja || $# -gt 0 ]]; then
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
fi
cmake --build build -j "$jobs"
