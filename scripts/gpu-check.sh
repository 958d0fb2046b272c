#!/usr/bin/env bash
# One GPU run on a machine with CUDA, CMake, Ninja (and PyTorch) but no
# LLVM/MLIR: builds the runtime side without the compiler, runs the GPU tests
# on kernels compiled elsewhere and carried in, and times them beside PyTorch.
# docs/gpu-run.md says how to prepare and carry the artifacts.
#
#   scripts/gpu-check.sh [ARTIFACTS]     (default build/gpu-artifacts/carry)
#
# Writes everything to $OUT/gpu-check.log (or ./gpu-check.log without $OUT)
# and a summary at its end. Stays within about 8 minutes (FEMC_GPU_CHECK_SECONDS,
# default 480): every step has a timeout, the benchmark stops its shapes at
# 5/6 of the budget and skips those whose host inputs would not fit in the
# time, and PyTorch's rows get what is left. Exit status: 0 when the GPU tests passed (or skipped for want
# of a device), 1 otherwise.
set -u
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
artifacts="$(cd "${1:-build/gpu-artifacts/carry}" 2>/dev/null && pwd)" || {
  echo "gpu-check: no artifacts folder '${1:-build/gpu-artifacts/carry}' (make it with the gpu-artifacts target and carry it; docs/gpu-run.md)" >&2
  exit 1
}
out_dir="${OUT:-$PWD}"
mkdir -p "$out_dir"
log="$out_dir/gpu-check.log"
build="${FEMC_GPU_BUILD_DIR:-$root/build-gpu}"
: > "$log"
start=$(date +%s)
budget=${FEMC_GPU_CHECK_SECONDS:-480}
say() { echo "$*" | tee -a "$log"; }
elapsed() { echo $(( $(date +%s) - start )); }
# run NAME SECONDS CMD...: logs the command and its output, with a timeout.
run() {
  local name=$1 limit=$2
  shift 2
  say "---- [$name] (t=$(elapsed)s, limit ${limit}s): $*"
  timeout --kill-after=10 "$limit" "$@" >> "$log" 2>&1
  local rc=$?
  say "---- [$name] exit $rc"
  return $rc
}

say "gpu-check: $(date -u +%FT%TZ) on $(hostname), artifacts $artifacts"
say "git: $(git -C "$root" log --oneline -1 2>/dev/null || echo '?')"
run env 30 bash -c 'nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total --format=csv; nvidia-smi | head -15; which ptxas nvcc; ptxas --version | tail -2; cmake --version | head -1; ninja --version; ${CC:-cc} --version | head -1; nproc'
run artifacts 10 bash -c "ls -la '$artifacts'; du -sh '$artifacts'"

# 1. The runtime side, without the compiler (no LLVM/MLIR, no GTest).
status=ok
if ! run configure 120 cmake -G Ninja -S "$root" -B "$build" \
    -DCMAKE_BUILD_TYPE=Release -DFEMC_ENABLE_COMPILER=OFF \
    -DFEMC_ENABLE_TESTS=OFF -DFEMC_ENABLE_PYTHON=OFF \
    -DFEMC_ENABLE_GPU_TESTS=ON -DFEMC_GPU_ARTIFACTS="$artifacts"; then
  status=build-failed
elif ! run build 240 ninja -C "$build" femrt fem-run; then
  status=build-failed
fi
fem_run="$build/bin/fem-run"

# 2. The device, and the GPU tests (the shape matrix against the reference).
tests_line="not run"
if [ "$status" = ok ]; then
  run devices 60 "$fem_run" --list-devices
  devices_rc=$?
  run gpu-tests 200 ctest --test-dir "$build" -L gpu --output-on-failure \
      --timeout 60
  tests_rc=$?
  tests_line=$(grep -E "tests passed|tests failed" "$log" | tail -1)
  [ $tests_rc -eq 0 ] || status=tests-failed
  [ $devices_rc -eq 4 ] && status=no-device
fi

# 3. The benchmark: femc's bf16 kernels (fem-run --bench: each launch to its
# completion, then back to back), and PyTorch on the same shapes.
bench_rows=()
# bench_one LABEL LIB NAME B T: one fem-run --bench row.
bench_one() {
  local label=$1 lib=$2 name=$3 B=$4 T=$5 tmp rc row
  tmp=$(mktemp)
  timeout 60 "$fem_run" "$lib" --device cuda --dim B=$B --dim T=$T \
    --bench 10 > "$tmp" 2>&1
  rc=$?
  cat "$tmp" >> "$log"
  row=$(grep '^bench:' "$tmp" | sed 's/^bench: //')
  bench_rows+=("$label | $name | ${row:-failed (exit $rc)}")
  rm -f "$tmp"
}
if [ "$status" = ok ] || [ "$status" = tests-failed ]; then
  for d in 64 128; do
    for causal in "" _causal; do
      lib="$artifacts/bench_bf16_d${d}${causal}.so"
      [ -f "$lib" ] || { say "bench: missing $lib"; continue; }
      for B in 1 8; do
        for T in 1024 4096 16384; do
          # Host inputs of B = 8, T = 16k take too long to generate here.
          [ "$B" -eq 8 ] && [ "$T" -gt 4096 ] && continue
          [ "$(elapsed)" -gt $((budget * 5 / 6)) ] && { say "bench: time budget reached"; break 3; }
          bench_one "femc " "$lib" "bf16 d=$d${causal:+ causal} B=$B T=$T" $B $T
        done
      done
    done
  done
  # The same kernels with 128 query rows per block (femc --tile-q=128,
  # artifacts in q128/), at the long shapes where the panel's share counts.
  for d in 64 128; do
    for causal in "" _causal; do
      lib="$artifacts/q128/bench_bf16_d${d}${causal}.so"
      [ -f "$lib" ] || continue
      for BT in 1:4096 1:16384 8:4096; do
        B=${BT%%:*} T=${BT#*:}
        [ "$(elapsed)" -gt $((budget * 5 / 6)) ] && { say "bench: time budget reached"; break 3; }
        bench_one "femc q128" "$lib" "bf16 d=$d${causal:+ causal} B=$B T=$T" $B $T
      done
    done
  done
  # PyTorch on the same GPU: SDPA (flash where it applies; dv = dk) as the
  # speed of light, and the FEM read the reference's way (one SDPA over the
  # panel [V | exp(beta V - M)] of width 2 dv, then the free energy and the
  # gate), timed with CUDA events.
  torch_limit=$((budget - $(elapsed)))
  [ "$torch_limit" -gt 90 ] && torch_limit=90
  if [ "$torch_limit" -ge 30 ]; then
    run torch "$torch_limit" python3 - <<'PY'
import math, time
try:
    import torch
    import torch.nn.functional as F
except Exception as e:
    print("torch: not importable:", e); raise SystemExit(0)
if not torch.cuda.is_available():
    print("torch: no CUDA device"); raise SystemExit(0)
dev = "cuda"
print("torch", torch.__version__, torch.cuda.get_device_name(0))

def timed(fn, reps=10):
    fn(); torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(reps):
        fn()
    end.record(); torch.cuda.synchronize()
    return start.elapsed_time(end) / reps

def fem_reference(q, k, v, beta_raw, lam, gate, causal, eps=1e-6):
    # q, k, v: (B, H, T, d). The FEM read as the authors' code computes it.
    B, H, T, d = v.shape
    beta = F.softplus(beta_raw.float()).view(1, H, 1, d) + eps
    bv = beta * v.float()
    M = bv.amax(dim=2, keepdim=True)
    X = torch.exp(bv - M).to(v.dtype)
    panel = torch.cat([v, X], dim=-1)
    r = F.scaled_dot_product_attention(q, k, panel, is_causal=causal)
    mu, Z = r[..., :d].float(), r[..., d:].float()
    Fe = (torch.log(Z.clamp_min(1e-30)) + M) / beta
    l = torch.sigmoid(lam.float())
    return (F.silu(gate.float()) * ((1 - l) * mu + l * Fe)).to(v.dtype)

for d in (64, 128):
    for causal in (False, True):
        for B in (1, 8):
            for T in (1024, 4096, 16384):
                if B == 8 and T > 4096:
                    continue
                H = 16
                try:
                    q, k, v, lam, gate = (torch.randn(B, H, T, d, device=dev, dtype=torch.bfloat16) for _ in range(5))
                    beta_raw = torch.randn(H * d, device=dev)
                    sdpa = lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal)
                    try:
                        from torch.nn.attention import sdpa_kernel, SDPBackend
                        with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
                            t_sdpa = timed(sdpa)
                    except ImportError:
                        t_sdpa = timed(sdpa)
                    t_ref = timed(lambda: fem_reference(q, k, v, beta_raw, lam, gate, causal), reps=5)
                    flops = 6 * T * T * d * B * H / (2 if causal else 1)
                    print(f"torch | bf16 d={d}{' causal' if causal else ''} B={B} T={T} | "
                          f"SDPA flash {t_sdpa:.3f} ms ({4 * T * T * d * B * H / (2 if causal else 1) / t_sdpa * 1e-9:.1f} TFLOP/s); "
                          f"FEM reference formulation {t_ref:.3f} ms ({flops / t_ref * 1e-9:.1f} TFLOP/s FEM FLOPs)")
                except Exception as e:
                    print(f"torch | bf16 d={d} B={B} T={T} | failed: {e}")
                torch.cuda.empty_cache()
PY
  fi
fi

say ""
say "================ gpu-check summary ================"
say "status: $status   (elapsed $(elapsed)s)"
say "devices: $(grep -E '^cuda:[0-9]|no CUDA device' "$log" | head -3 | tr '\n' ' ')"
say "gpu tests: $tests_line"
grep -E "Test +#[0-9]+: gpu-run\." "$log" > "$log.rows" 2>/dev/null
while IFS= read -r r; do say "  $r"; done < "$log.rows"
say "bench (femc: median/min per launch to completion; back to back = the device's time per launch):"
for r in "${bench_rows[@]}"; do say "  $r"; done
grep '^torch |' "$log" > "$log.rows" 2>/dev/null
while IFS= read -r r; do say "  $r"; done < "$log.rows"
rm -f "$log.rows"
# The same rows as one table per shape, with the GPU's peak and issue 12's
# targets (bench/gpu_table.py).
if [ ${#bench_rows[@]} -gt 0 ] && command -v python3 > /dev/null; then
  say ""
  python3 "$root/bench/gpu_table.py" "$log" > "$log.table" 2>&1
  while IFS= read -r r; do say "$r"; done < "$log.table"
  rm -f "$log.table"
fi
case "$status" in
  ok|no-device) exit 0 ;;
  *) exit 1 ;;
esac
