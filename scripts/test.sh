#!/usr/bin/env bash
# The whole test suite: set up, build everything, run lit + gtest via ctest.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${FEMC_BUILD_DIR:-$root/build}"

"$root/scripts/setup.sh"
"$root/scripts/build.sh"
cd "$build"
ctest --output-on-failure -j 2
