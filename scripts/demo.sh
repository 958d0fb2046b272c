#!/usr/bin/env bash
# The main job: set up, build, compile an example FEM layer with femc, run it
# on generated inputs with fem-run, check it against the double-precision
# reference and print the time.
#   scripts/demo.sh [T]        (sequence length, default 1024)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${FEMC_BUILD_DIR:-$root/build}"
T="${1:-1024}"

"$root/scripts/setup.sh"
"$root/scripts/build.sh" femc fem-run

out="$build/demo"
echo
echo "== femc examples/softmax_fem.mlir -o $out"
"$build/bin/femc" "$root/examples/softmax_fem.mlir" -o "$out"
echo
echo "== fem-run $out/softmax_fem.so --dim B=1 --dim T=$T --check --bench 10"
"$build/bin/fem-run" "$out/softmax_fem.so" --dim B=1 --dim "T=$T" --seed 1 \
  --check --bench 10
