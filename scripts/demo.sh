#!/usr/bin/env bash
# The main job: set up, build, compile an example FEM layer with femc, run it
# on generated inputs with fem-run, check it against the double-precision
# layer reference and print the time.
#   scripts/demo.sh [T]        (sequence length, default 1024)
#
# The layer, examples/fem_layer_lm.mlir, is the authors' PyTorch module with
# its defaults as the checkpoint importer writes it (docs/layers.md): its
# fem.layer configuration and its parameters under their state_dict names let
# fem-run --check compare it with reference/Layer.h (projections, time-decay
# conditioning, RoPE, the FEM read, gates, output projection) on parameters
# drawn as PyTorch initialises them.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${FEMC_BUILD_DIR:-$root/build}"
case "${1:-}" in
  -h|--help) sed -n '2,/^[^#]/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
esac
if [ $# -gt 1 ]; then
  echo "demo: expected at most one argument, the sequence length T (see --help)" >&2
  exit 2
fi
T="${1:-1024}"
if ! [[ "$T" =~ ^[1-9][0-9]{0,6}$ ]]; then
  echo "demo: T must be a positive whole number of at most 7 digits, found '$T'" \
       "(usage: scripts/demo.sh [T])" >&2
  exit 2
fi

"$root/scripts/setup.sh"
"$root/scripts/build.sh" femc fem-run

out="$build/demo"
echo
echo "== femc examples/fem_layer_lm.mlir -o $out"
"$build/bin/femc" "$root/examples/fem_layer_lm.mlir" -o "$out"
echo
echo "== fem-run $out/fem_layer_lm.so --dim B=1 --dim T=$T --check --bench 10"
"$build/bin/fem-run" "$out/fem_layer_lm.so" \
  --dim B=1 --dim "T=$T" --seed 1 --check --bench 10
