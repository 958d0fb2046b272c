#!/usr/bin/env bash
# Configures (once) and builds femc into build/ with Ninja and clang-22.
#   scripts/build.sh [ninja targets...]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${FEMC_BUILD_DIR:-$root/build}"
if [ ! -f "$build/build.ninja" ]; then
  CC=clang-22 CXX=clang++-22 cmake -G Ninja -S "$root" -B "$build" \
    -DCMAKE_BUILD_TYPE=Release
fi
# Two jobs: MLIR translation units need ~1.5 GB each.
ninja -C "$build" -j "${FEMC_JOBS:-2}" "$@"
