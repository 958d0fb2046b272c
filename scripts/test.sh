#!/usr/bin/env bash
# The whole test suite: set up, build everything, run lit + gtest via ctest.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${FEMC_BUILD_DIR:-$root/build}"

"$root/scripts/setup.sh"
"$root/scripts/build.sh"
cd "$build"
ctest --output-on-failure -j 2

# libfemrt once more, on its own (no LLVM, a few files), with AddressSanitizer
# and UndefinedBehaviorSanitizer, and its tests.
asan="${FEMC_ASAN_BUILD_DIR:-$root/build-asan}"
cmake -G Ninja -S "$root/runtime" -B "$asan" -DFEMRT_BUILD_TESTS=ON \
  -DCMAKE_BUILD_TYPE=Debug -DFEMRT_SANITIZE=address,undefined
ninja -C "$asan" -j "${FEMC_JOBS:-2}"
ctest --test-dir "$asan" --output-on-failure -j 2
