#!/usr/bin/env bash
# ctest host-cpu.<cpu>: the code femc makes for a smaller host, run on this
# one (test/integration/CMakeLists.txt, docs/user-guide.md "FEMC_HOST_CPU").
#   host-cpu-sim.sh CPU BIN_DIR SRC_DIR WORK_DIR KERNEL_DIR TEST_BINARY...
# 1. every kernel library in KERNEL_DIR (built as FEMC_HOST_CPU=CPU) says
#    "host:CPU" in its manifest: the simulation took effect;
# 2. each TEST_BINARY (the shape matrices, the scan priors, f16/bf16
#    storage on those kernels) passes;
# 3. every examples/*.mlir compiles for host as FEMC_HOST_CPU=CPU, runs at
#    B=2, T=37 with 8-lane kernels, and passes fem-run --check where fem-run
#    has a reference (the layers without a fem.layer configuration only run).
# Ends with "N passed, N failed"; exits 1 on any failure.
set -uo pipefail
if [ $# -lt 5 ]; then
  echo "usage: host-cpu-sim.sh CPU BIN_DIR SRC_DIR WORK_DIR KERNEL_DIR TEST_BINARY..." >&2
  exit 2
fi
cpu=$1 bin=$2 src=$3 work=$4 kernels=$5
shift 5
export FEMC_HOST_CPU="$cpu" FEMC_INCLUDE_DIR="$src/runtime/include"
passed=0 failed=0
ok() { passed=$((passed + 1)); echo "host-cpu.$cpu: ok: $*"; }
bad() { failed=$((failed + 1)); echo "host-cpu.$cpu: FAILED: $*"; }
rm -rf "$work" && mkdir -p "$work" || exit 1

shopt -s nullglob
manifests=("$kernels"/*.json)
[ ${#manifests[@]} -gt 0 ] || bad "no kernel manifests in $kernels"
for m in "${manifests[@]}"; do
  if grep -q "\"target\": \"host:$cpu\"" "$m"; then
    ok "$(basename "$m") was compiled for host:$cpu"
  else
    bad "$m was not compiled for host:$cpu: $(grep -m1 '"target"' "$m")"
  fi
done

for t in "$@"; do
  if "$t" --gtest_brief=1 > "$work/$(basename "$t").log" 2>&1; then
    ok "$(basename "$t") ($(grep -m1 -o '[0-9]* tests\? from [0-9]* test suites\? ran' "$work/$(basename "$t").log"))"
  else
    bad "$(basename "$t"):"; cat "$work/$(basename "$t").log"
  fi
done

for model in "$src"/examples/*.mlir; do
  name=$(basename "$model" .mlir)
  out="$work/$name"
  if ! "$bin/femc" "$model" -o "$out" > "$out.log" 2>&1; then
    bad "femc $name:"; cat "$out.log"; continue
  fi
  if ! grep -q "\"target\": \"host:$cpu\"" "$out/$name.json"; then
    bad "$name was not compiled for host:$cpu"; continue
  fi
  if ! "$bin/fem-run" "$out/$name.so" --dim B=2 --dim T=37 --seed 7 --check \
       > "$out.run" 2>&1; then
    bad "fem-run $name:"; cat "$out.run"; continue
  fi
  if grep -q "vec=16" "$out.run"; then
    bad "$name has 16-lane kernels on host:$cpu:"; grep "vec=" "$out.run"
  elif grep -q "^check: .*: PASS$" "$out.run"; then
    ok "$name: $(grep '^check: max' "$out.run")"
  elif grep -q "^check: fem-run has no reference" "$out.run"; then
    ok "$name ran (no reference for a layer without a fem.layer configuration)"
  else
    bad "fem-run $name --check:"; cat "$out.run"
  fi
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
