#!/usr/bin/env bash
# Builds the libFuzzer targets of test/fuzz (ASan + UBSan, clang-22) and runs
# them. See docs/fuzzing.md.
#
#   scripts/fuzz.sh TARGET|all [SECONDS]     (default 60 s per target)
#   scripts/fuzz.sh --replay TARGET|all      (sanitized run of the corpus,
#                                            the regressions and, reported
#                                            apart, regressions/*/pending)
#   scripts/fuzz.sh --list
#
# Targets: fem_opt femc_driver femrt_launch npy (libFuzzer), spec: the
# numerical fuzzer test/python/spec_fuzz.py (random problems of every prior
# against the float64 spec_ref.py), and layers: the layer fuzzer
# test/python/layer_fuzz.py (random whole FreeEnergyMixer layers, imported,
# compiled and run, against the float64 spec_layer_ref.py); spec and layers
# need the normal build (build/: femc, fem-run, femc_python,
# femc-python-test-kernels; built under the lock unless
# FEMC_FUZZ_NO_BUILD=1). spec's options: FEMC_FUZZ_SEED (default: the
# clock), FEMC_SPEC_FUZZ_STATIC (kernels with random static extents compiled
# per round, default 4), FEMC_SPEC_FUZZ_CREF (the fraction of cases also run
# through fem-run --check, default 0.02); its failures go to
# $FEMC_FUZZ_FINDINGS/spec/seed-<seed>.txt, one reproducer line each;
# --replay spec runs its fixed regressions. layers' options: FEMC_FUZZ_SEED,
# FEMC_LAYER_FUZZ_CREF (the fraction of layers whose first run also goes
# through fem-run --check, default 0.1), FEMC_LAYER_FUZZ_PYREF (the fraction
# of runs on which femc.layer_reference is compared too, default 0.05); its
# failures go to $FEMC_FUZZ_FINDINGS/layers/seed-<seed>.txt; --replay layers
# runs its fixed regressions.
# The build dir (build-fuzz, or $FEMC_FUZZ_BUILD_DIR) is configured and built
# under the build lock ($FEMC_BUILD_LOCK, default /tmp/femc-build.lock); the
# runs themselves hold no lock and run at `nice -n 19`, one target at a time,
# one libFuzzer job each (-jobs=1). New corpus entries go to
# $FEMC_FUZZ_WORK/<target>/corpus (default /tmp/femc-fuzz/work), never into
# the repository; crashes go to $FEMC_FUZZ_FINDINGS/<target>/ (default
# /tmp/femc-fuzz/findings); the libFuzzer log is
# $FEMC_FUZZ_WORK/<target>/fuzz-0.log. Prints the executions reached.
# FEMC_FUZZ_NO_BUILD=1 skips the build step.
# Exit status: 0 when no target found anything, 1 when one did, 2 on a usage
# or build error.
set -uo pipefail
# The whole script is one function, read before it runs: editing this file
# during a long campaign cannot change the running one.
main() {
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${FEMC_FUZZ_BUILD_DIR:-$root/build-fuzz}"
lock="${FEMC_BUILD_LOCK:-/tmp/femc-build.lock}"
work="${FEMC_FUZZ_WORK:-/tmp/femc-fuzz/work}"
findings="${FEMC_FUZZ_FINDINGS:-/tmp/femc-fuzz/findings}"
all_targets=(fem_opt femc_driver femrt_launch npy spec layers)
normal_build="${FEMC_BUILD_DIR:-$root/build}"

usage() {
  echo "usage: scripts/fuzz.sh TARGET|all [SECONDS]" >&2
  echo "targets: ${all_targets[*]}" >&2
  exit 2
}

[ $# -ge 1 ] || usage
if [ "$1" = "--list" ]; then
  printf '%s\n' "${all_targets[@]}"
  exit 0
fi
replay=0
if [ "$1" = "--replay" ]; then
  replay=1
  shift
  [ $# -ge 1 ] || usage
fi
if [ "$1" = all ]; then
  targets=("${all_targets[@]}")
else
  found=0
  for t in "${all_targets[@]}"; do [ "$t" = "$1" ] && found=1; done
  if [ $found = 0 ]; then
    echo "fuzz.sh: error: unknown target '$1'" >&2
    usage
  fi
  targets=("$1")
fi
# The libFuzzer targets (spec and layers run on the normal build).
lib_targets=()
for t in "${targets[@]}"; do
  [ "$t" != spec ] && [ "$t" != layers ] && lib_targets+=("$t")
done
seconds="${2:-60}"
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
  echo "fuzz.sh: error: SECONDS must be a positive whole number, got '$seconds'" >&2
  exit 2
fi

# Install what fuzzing needs (clang-22, libFuzzer's runtime) if missing.
if [ ${#lib_targets[@]} -gt 0 ] && [ "${FEMC_FUZZ_NO_SETUP:-0}" != 1 ]; then
  "$(dirname "$0")/setup.sh" --fuzz
fi

cc="${CC:-clang-22}"
cxx="${CXX:-clang++-22}"
if [ ${#lib_targets[@]} -eq 0 ]; then
  :  # spec and layers alone: no libFuzzer
elif ! command -v "$cxx" >/dev/null; then
  echo "fuzz.sh: error: $cxx not found (run scripts/setup.sh)" >&2
  exit 2
fi
if [ ${#lib_targets[@]} -gt 0 ]; then
  runtime_dir="$("$cxx" -print-resource-dir)/lib/linux"
  if [ ! -f "$runtime_dir/libclang_rt.fuzzer-x86_64.a" ]; then
    echo "fuzz.sh: error: libFuzzer is missing ($runtime_dir/libclang_rt.fuzzer-x86_64.a);" \
         "install it with: apt-get install libclang-rt-22-dev" >&2
    exit 2
  fi
fi

# Build (under the lock).
if [ "${FEMC_FUZZ_NO_BUILD:-0}" != 1 ] && [ ${#lib_targets[@]} -gt 0 ]; then
  ninja_targets=()
  for t in "${lib_targets[@]}"; do ninja_targets+=("$t-fuzzer"); done
  if ! flock "$lock" bash -c '
      set -e
      if [ ! -f "$1/build.ninja" ]; then
        # -O1 without NDEBUG: asserts stay on, as fuzzing wants them.
        CC="$2" CXX="$3" cmake -G Ninja -S "$4" -B "$1" \
          -DFEMC_FUZZ=ON -DFEMC_ENABLE_PYTHON=OFF \
          -DCMAKE_BUILD_TYPE=Release \
          -DCMAKE_C_FLAGS_RELEASE=-O1 -DCMAKE_CXX_FLAGS_RELEASE=-O1
      fi
      shift 4
      ninja -C "$0" -j "${FEMC_JOBS:-2}" "$@"' \
      "$build" "$build" "$cc" "$cxx" "$root" "${ninja_targets[@]}"; then
    echo "fuzz.sh: error: building the fuzzers in $build failed" >&2
    exit 2
  fi
fi

if [ "${FEMC_FUZZ_NO_BUILD:-0}" != 1 ] && [ ${#lib_targets[@]} -lt ${#targets[@]} ]; then
  if ! flock "$lock" env FEMC_BUILD_DIR="$normal_build" "$root/scripts/build.sh" \
      femc fem-run femc_python femc-python-test-kernels; then
    echo "fuzz.sh: error: building femc, fem-run and the Python module in $normal_build failed" >&2
    exit 2
  fi
fi

# The numerical fuzzer (spec): runs test/python/spec_fuzz.py for SECONDS
# (--replay: its fixed regressions only) at nice 19, holding no lock.
run_spec() {
  local dir="$normal_build/test/python" py="${FEMC_PYTHON:-/usr/bin/python3}"
  local seed="${FEMC_FUZZ_SEED:-$(( $(date +%s) % 1000000 ))}"
  local log="$work/spec/fuzz-$seed.log" args
  mkdir -p "$work/spec" "$findings/spec"
  if [ $replay = 1 ]; then
    args=(--fixed --cases 0)
    echo "fuzz.sh: spec: the fixed regressions of test/python/spec_fuzz.py"
  else
    args=(--time "$seconds" --seed "$seed" --static "${FEMC_SPEC_FUZZ_STATIC:-4}"
          --cref "${FEMC_SPEC_FUZZ_CREF:-0.02}")
    echo "fuzz.sh: spec for ${seconds} s, seed $seed (log: $log)"
  fi
  PYTHONPATH="$normal_build/python${PYTHONPATH:+:$PYTHONPATH}" \
  FEMC="${FEMC:-$normal_build/bin/femc}" FEM_RUN="${FEM_RUN:-$normal_build/bin/fem-run}" \
  FEMC_SPEC_KERNELS="$dir/spec_kernels/spec_kernels.so" \
  FEMC_SPEC_ADVERSARIAL_KERNELS="$dir/spec_adversarial/spec_adversarial_kernels.so" \
  FEMC_SPEC_FUZZ_KERNELS="$dir/spec_fuzz/spec_fuzz_kernels.so" \
  FEMC_SPEC_FUZZ_CACHE="$work/spec/cache" \
    nice -n 19 "$py" "$root/test/python/spec_fuzz.py" "${args[@]}" >"$log" 2>&1
  python_summary spec $? "$log" "$seed" '^spec_fuzz: [0-9]+ case' 1
}

# The summary of a Python fuzzer's run: TARGET RC LOG SEED SUMMARY-REGEX
# LINES (the reproducer lines after each FAIL, copied to the findings).
python_summary() {
  local t="$1" rc="$2" log="$3" seed="$4" line
  line=$(grep -aE "$5" "$log" | tail -1)
  if grep -aq '^FAIL' "$log"; then
    grep -a -A"$6" '^FAIL' "$log" >"$findings/$t/seed-$seed.txt"
  fi
  if [ "$rc" != 0 ]; then
    status=1
    summary+=("$t: ${line:-no summary} (seed $seed; log $log; findings $findings/$t/seed-$seed.txt)")
  else
    summary+=("$t: ${line:-no summary} (seed $seed)")
  fi
  echo "fuzz.sh: ${summary[-1]}"
}

# The layer fuzzer (layers): runs test/python/layer_fuzz.py for SECONDS
# (--replay: its fixed regressions only) at nice 19, holding no lock.
run_layers() {
  local py="${FEMC_PYTHON:-/usr/bin/python3}"
  local seed="${FEMC_FUZZ_SEED:-$(( $(date +%s) % 1000000 ))}"
  local log="$work/layers/fuzz-$seed.log" args
  mkdir -p "$work/layers" "$findings/layers"
  if [ $replay = 1 ]; then
    args=(--fixed --layers 0)
    echo "fuzz.sh: layers: the fixed regressions of test/python/layer_fuzz.py"
  else
    args=(--time "$seconds" --seed "$seed" --cref "${FEMC_LAYER_FUZZ_CREF:-0.1}"
          --pyref "${FEMC_LAYER_FUZZ_PYREF:-0.05}")
    echo "fuzz.sh: layers for ${seconds} s, seed $seed (log: $log)"
  fi
  PYTHONPATH="$normal_build/python${PYTHONPATH:+:$PYTHONPATH}" \
  FEMC="${FEMC:-$normal_build/bin/femc}" FEM_RUN="${FEM_RUN:-$normal_build/bin/fem-run}" \
  FEMC_SPEC_FUZZ_CACHE="$work/layers/cache" \
    nice -n 19 "$py" "$root/test/python/layer_fuzz.py" "${args[@]}" >"$log" 2>&1
  python_summary layers $? "$log" "$seed" '^layer_fuzz: [0-9]+ layer' 2
}

# The installed LLVM/MLIR libraries are not instrumented, but inline code
# from their headers in our instrumented objects is: std containers would
# look overflowed, and a BumpPtrAllocator slab poisoned by an instrumented
# slow path is then written by the library's uninstrumented fast path
# ("use-after-poison" in e.g. StringAttr::get). Both checks are off; heap
# redzones, use-after-free and UBSan stay on.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_container_overflow=0:allow_user_poisoning=0:detect_leaks=1:allocator_may_return_null=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

# Runs the sanitized fuzzer once on each file of a folder; prints the files
# that fail. Returns the number of failures (capped at 255 by bash).
replay_dir() {
  local exe="$1" dir="$2" failed=0 f
  [ -d "$dir" ] || return 0
  for f in "$dir"/*; do
    [ -f "$f" ] || continue
    case "$(basename "$f")" in .*|*.md) continue ;; esac
    if ! "$exe" -runs=1 "$f" >"$work/replay.log" 2>&1; then
      echo "  FAILS: $f (log: $work/replay-$(basename "$f").log)"
      cp "$work/replay.log" "$work/replay-$(basename "$f").log"
      failed=$((failed + 1))
    fi
  done
  return $failed
}

status=0
summary=()
for t in "${targets[@]}"; do
  if [ "$t" = spec ]; then
    run_spec
    continue
  fi
  if [ "$t" = layers ]; then
    run_layers
    continue
  fi
  exe="$build/bin/$t-fuzzer"
  if [ ! -x "$exe" ]; then
    echo "fuzz.sh: error: $exe was not built" >&2
    exit 2
  fi
  if [ $replay = 1 ]; then
    mkdir -p "$work"
    echo "fuzz.sh: replaying $t's corpus and regressions with sanitizers"
    replay_dir "$exe" "$root/test/fuzz/corpus/$t"; a=$?
    replay_dir "$exe" "$root/test/fuzz/regressions/$t"; b=$?
    [ $((a + b)) -gt 0 ] && status=1
    echo "fuzz.sh: $t: pending findings (expected to fail until fixed):"
    replay_dir "$exe" "$root/test/fuzz/regressions/$t/pending"
    summary+=("$t: $((a + b)) failing input(s) in corpus + regressions")
    continue
  fi
  mkdir -p "$work/$t/corpus" "$work/$t/tmp" "$findings/$t"
  args=(-jobs=1 -workers=1 -max_total_time="$seconds" -timeout=60
        -rss_limit_mb=4096 -malloc_limit_mb=2048 -print_final_stats=1
        -artifact_prefix="$findings/$t/")
  [ -f "$root/test/fuzz/dict/$t.dict" ] && args+=(-dict="$root/test/fuzz/dict/$t.dict")
  case "$t" in
    fem_opt|femc_driver) args+=(-max_len=8192) ;;
    femrt_launch) args+=(-max_len=1024) ;;
    npy) args+=(-max_len=4096) ;;
  esac
  echo "fuzz.sh: $t for ${seconds} s (log: $work/$t/fuzz-0.log)"
  before=$(find "$findings/$t" -type f | wc -l)
  rm -f "$work/$t/fuzz-0.log"
  # -jobs=1 writes the job's output to fuzz-0.log in the current folder.
  # Scratch files of the targets (the driver's model.mlir) stay in the work dir.
  (cd "$work/$t" && TMPDIR="$work/$t/tmp" nice -n 19 "$exe" "${args[@]}" "$work/$t/corpus" \
     "$root/test/fuzz/corpus/$t" >/dev/null 2>&1)
  log="$work/$t/fuzz-0.log"
  runs=$(grep -aoE 'Done [0-9]+ runs' "$log" 2>/dev/null | tail -1 | grep -oE '[0-9]+')
  if [ -z "$runs" ]; then
    runs=$(grep -aoE 'stat::number_of_executed_units: [0-9]+' "$log" 2>/dev/null |
           tail -1 | grep -oE '[0-9]+$')
  fi
  after=$(find "$findings/$t" -type f | wc -l)
  new=$((after - before))
  line="$t: ${runs:-?} executions in ${seconds} s, $new new finding(s)"
  if [ "$new" -gt 0 ] || grep -aqE '^==[0-9]+==ERROR|deadly signal|fuzz check failed' "$log" 2>/dev/null; then
    status=1
    line="$line in $findings/$t (see $log)"
  fi
  echo "fuzz.sh: $line"
  summary+=("$line")
done
echo "fuzz.sh: summary ($(date -u '+%Y-%m-%d %H:%M UTC'))"
printf '  %s\n' "${summary[@]}"
exit $status
}
main "$@"
