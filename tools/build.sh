#!/usr/bin/env bash
# Configures and builds pcsweep into build/ (Ninja, ccache). Extra arguments go to cmake's
# configure step, e.g. -DPCSWEEP_WITH_TORCH=OFF.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash tools/setup.sh
jobs=${PCSWEEP_BUILD_JOBS:-$(nproc)}
# Let ccache share objects between checkouts in different folders (a CI clone, a worktree):
# paths under the root are hashed relative to it, and debug info's working dir is ignored.
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$root} CCACHE_NOHASHDIR=${CCACHE_NOHASHDIR:-1}
if [[ ! -f build/build.ninja || $# -gt 0 ]]; then
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
fi
cmake --build build -j "$jobs"
