#!/usr/bin/env bash
# The whole test suite: set up, build everything, run lit + gtest via ctest.
#   scripts/test.sh                    as for this machine's CPU
#   scripts/test.sh --host-cpu znver3  as for a smaller host: every kernel of
#       --target=host (build-time and test-time) is compiled as femc does with
#       FEMC_HOST_CPU=znver3 (this CPU's features masked to an AMD Zen 3's:
#       AVX2, no AVX-512, no AMX), and the AMX/AVX512-BF16 tests skip. The
#       default is $FEMC_HOST_CPU; any 64-bit x86 CPU name LLVM knows
#       (haswell, x86-64-v3, ...). docs/user-guide.md, "FEMC_HOST_CPU".
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${FEMC_BUILD_DIR:-$root/build}"
host_cpu="${FEMC_HOST_CPU:-}"
while [ $# -gt 0 ]; do
  case "$1" in
    --host-cpu) host_cpu="${2:?test.sh: --host-cpu needs a CPU name, e.g. znver3}"; shift 2 ;;
    --host-cpu=*) host_cpu="${1#*=}"; shift ;;
    -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "test.sh: unknown argument '$1' (expected --host-cpu <cpu>)" >&2; exit 2 ;;
  esac
done
if [ -n "$host_cpu" ]; then
  export FEMC_HOST_CPU="$host_cpu"
else
  unset FEMC_HOST_CPU
fi

"$root/scripts/setup.sh"
if [ -n "$host_cpu" ]; then
  # A name femc refuses (unknown, or below x86-64-v3) stops here, with
  # femc's reason, before the build's test kernels are switched to it.
  env -u FEMC_TEST_HOST_CPU "$root/scripts/build.sh" femc
  echo "test: host simulated as FEMC_HOST_CPU=$host_cpu"
  if ! "$build/bin/femc" "$root/examples/softmax_fem.mlir" --emit=obj \
      -o "$build/host-cpu-check" >/dev/null; then
    echo "test: error: femc cannot compile for host as FEMC_HOST_CPU=$host_cpu" \
         "(above); the test kernels are compiled for host" >&2
    exit 1
  fi
fi
echo "test: building everything (the first build takes long: 2 jobs over MLIR)"
FEMC_TEST_HOST_CPU="$host_cpu" "$root/scripts/build.sh"
cd "$build"
echo "test: ctest (lit + gtest + Python)"
ctest --output-on-failure -j 2

# libfemrt once more, on its own (no LLVM, a few files), with AddressSanitizer
# and UndefinedBehaviorSanitizer, and its tests.
asan="${FEMC_ASAN_BUILD_DIR:-$root/build-asan}"
cmake -G Ninja -S "$root/runtime" -B "$asan" -DFEMRT_BUILD_TESTS=ON \
  -DCMAKE_BUILD_TYPE=Debug -DFEMRT_SANITIZE=address,undefined
ninja -C "$asan" -j "${FEMC_JOBS:-2}"
ctest --test-dir "$asan" --output-on-failure -j 2

# The femc driver under AddressSanitizer and UndefinedBehaviorSanitizer:
# bin-asan/femc (target femc-asan: the driver's code instrumented, the MLIR
# and LLVM libraries not) over the examples, every model of the femc lit
# tests (awkward names, many extents, refused layers and names) and awkward
# file names. A refused model exits 1; a sanitizer report exits 99 and fails
# the run; every manifest written must be valid JSON. The C glue femc
# generates already runs under ASan+UBSan in the ctest run above
# (integration/femc-glue-sanitize.test, femc-layer-names.test,
# femc-layer-extents.test: femc --sanitize=address,undefined).
"$root/scripts/build.sh" femc-asan
femc_asan="$build/bin-asan/femc"
split_file="$(dirname "$(command -v clang-22 || echo /usr/lib/llvm-22/bin/clang)")/split-file"
[ -x "$split_file" ] || split_file=/usr/lib/llvm-22/bin/split-file
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export ASAN_OPTIONS=exitcode=99 UBSAN_OPTIONS=exitcode=99:print_stacktrace=1
export FEMC_INCLUDE_DIR="$root/runtime/include"
models=("$root"/examples/*.mlir "$root/test/integration/matrix.mlir"
        "$root"/test/integration/Inputs/*.mlir)
for t in "$root"/test/integration/femc-*.test; do
  if grep -q '^;--- .*\.mlir$' "$t"; then
    "$split_file" "$t" "$work/inputs/$(basename "$t" .test)"
  fi
done
while IFS= read -r -d '' m; do models+=("$m"); done \
  < <(find "$work/inputs" -name '*.mlir' -print0)
for stem in 'quote"d' 'back\slash' $'new\nline' 'non-ascii-é'; do
  cp "$root/examples/softmax_fem.mlir" "$work/$stem.mlir"
  models+=("$work/$stem.mlir")
done
failed=0
for m in "${models[@]}"; do
  out="$work/out/$(basename "$m" .mlir)"
  rc=0
  "$femc_asan" "$m" -o "$out" >/dev/null 2>"$work/stderr" || rc=$?
  if [ "$rc" -gt 1 ]; then
    echo "femc-asan: exit $rc on $m:"; cat "$work/stderr"; failed=1
  elif [ "$rc" -eq 0 ]; then
    python3 -c 'import json, sys; json.load(open(sys.argv[1], encoding="utf-8"))' \
      "$out/$(basename "$m" .mlir).json" || { echo "bad manifest: $m"; failed=1; }
  fi
done
echo "femc-asan: ${#models[@]} models compiled or refused"
[ "$failed" -eq 0 ]
