#!/usr/bin/env bash
# Configures (once) and builds femc into build/ with Ninja and clang-22.
#   scripts/build.sh [ninja targets...]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${FEMC_BUILD_DIR:-$root/build}"
if [ ! -f "$build/build.ninja" ]; then
  echo "build: configuring $build (cmake, Ninja, clang-22, Release)"
  CC=clang-22 CXX=clang++-22 cmake -G Ninja -S "$root" -B "$build" \
    -DCMAKE_BUILD_TYPE=Release
fi
# FEMC_TEST_HOST_CPU (set, even empty, by scripts/test.sh): the tests' host
# kernels are compiled as FEMC_HOST_CPU=<cpu> would; only they rebuild when
# it changes.
if [ -n "${FEMC_TEST_HOST_CPU+set}" ] &&
   [ "$(sed -n 's/^FEMC_TEST_HOST_CPU:STRING=//p' "$build/CMakeCache.txt")" != \
     "$FEMC_TEST_HOST_CPU" ]; then
  echo "build: test kernels for host as FEMC_HOST_CPU='$FEMC_TEST_HOST_CPU'"
  cmake -S "$root" -B "$build" -DFEMC_TEST_HOST_CPU="$FEMC_TEST_HOST_CPU" >/dev/null
fi
# Two jobs: MLIR translation units need ~1.5 GB each.
ninja -C "$build" -j "${FEMC_JOBS:-2}" "$@"
