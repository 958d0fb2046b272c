#!/bin/bash
# The chunk-level parallel prefix of the scans at B = H = 1 (docs/benchmarks.md,
# "Both cores at B = H = 1"): each scan prior at dk = dv = 64 (ssm: N = 16)
# on 2 threads, unsplit (FEMC_SCAN_SEGMENTS=1) against split into 2 segments
# (FEMC_SCAN_SEGMENTS=2), alternating A B A B in one run.
#   bench/split_bench.sh [T ...]        (default T = 65536)
# Run it while nothing else builds, e.g. under the build lock:
#   flock /tmp/femc-build.lock bench/split_bench.sh 65536
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${FEMC_BUILD_DIR:-$root/build}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
FEMC_INCLUDE_DIR="$root/runtime/include" "$build/bin/femc" \
  "$root/bench/split_bench.mlir" -o "$work" > /dev/null
runs="${RUNS:-9}"
echo "# $(uptime)"
echo "# prior T mode median_ms min_ms"
for T in "${@:-65536}"; do
  for k in linear gla aft ssm; do
    for rep in 1 2; do
      for segments in 1 2; do
        line=$(FEMC_SCAN_SEGMENTS=$segments "$build/bin/fem-run" \
          "$work/split_bench.so" --kernel ${k}_split --dim B=1 --dim T="$T" \
          --dim H=1 --dim dv=64 --threads 2 --bench "$runs" | grep '^bench:')
        mode=$([ "$segments" = 1 ] && echo unsplit || echo split)
        echo "$k $T $mode $(echo "$line" | sed -E 's/.*median ([0-9.]+) ms, min ([0-9.]+) ms.*/\1 \2/')"
      done
    done
  done
done
