#!/usr/bin/env bash
# fem-tune benchmark (issue 9): for the softmax prior at B=1, H=8, d=64,
# causal, T in {1024, 4096, 16384}, and the linear prior at B=1, H=8, d=64,
# T=4096: tunes each shape RUNS times into fresh databases (default budget
# unless BUDGET is set) and prints one markdown row per shape: the tuning
# time of each run (and whether it stayed under 120 s), the tuned and the
# default time per launch as fem-tune measured them side by side in one run
# (interleaved rounds of the leaders and the default), and the stability of
# the choice (the same winner in every run, or winners within the measured
# noise of each other).
#
#   bench/tune_bench.sh                 # all shapes, 3 runs each
#   RUNS=1 SHAPES="softmax:1024" bench/tune_bench.sh
#
# Environment: FEMC_BIN (default build/bin), RUNS (3), BUDGET (fem-tune's
# default, 60 s), MAXCAND (fem-tune's default, 32), SHAPES (prior:T ...),
# LOCK (a file every fem-tune run holds with flock, e.g. the build lock
# /tmp/femc-build.lock, so that no build runs while one times; default none).
# The load (uptime) is printed before each run. KEEP=DIR keeps each run's
# summary as DIR/<prior>-<T>-<run>.txt.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${FEMC_BIN:-$root/build/bin}
runs=${RUNS:-3}
shapes=${SHAPES:-"softmax:1024 softmax:4096 softmax:16384 linear:4096"}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
extra=()
[[ -n ${BUDGET:-} ]] && extra+=(--budget "$BUDGET")
[[ -n ${MAXCAND:-} ]] && extra+=(--max-candidates "$MAXCAND")
lock=()
[[ -n ${LOCK:-} ]] && lock=(flock "$LOCK")

echo "| prior | T | tuning time per run (s) | under 120 s | chosen per run | choice per run | threads per run | tuned ms (spread) | default ms (spread) | speed-up | stable |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
for shape in $shapes; do
  prior=${shape%%:*} T=${shape##*:}
  model=$root/examples/${prior}_fem.mlir
  times=() chosen=() rows=() choices=() threads=()
  for ((r = 1; r <= runs; r++)); do
    db=$work/$prior-$T-$r.json
    echo "tune_bench: $prior T=$T run $r: $(uptime)" >&2
    # The wall-clock time is fem-tune's own (its last line), not the wait
    # for the lock.
    "${lock[@]}" "$bin/fem-tune" "$model" --dim B=1 --dim T="$T" --db "$db" \
      "${extra[@]}" > "$work/out.txt" 2> "$work/err.txt" || {
      echo "tune_bench: fem-tune failed for $prior T=$T:" >&2
      cat "$work/err.txt" >&2
      exit 1
    }
    [[ -n ${KEEP:-} ]] && cp "$work/out.txt" "$KEEP/$prior-$T-$r.txt"
    times+=("$(sed -nE 's/^fem-tune: recorded .*[( ]([0-9.]+)s\)$/\1/p' "$work/out.txt" | awk '{ printf "%.0f", $1 }')")
    # "  choice: fastest: ..." or "  choice: tie, the default kept: ..."
    choices+=("$(sed -nE 's/^  choice: (fastest|tie, [^:]*):.*/\1/p' "$work/out.txt")")
    threads+=("$(sed -nE 's/^  threads: ([0-9]+|not tuned).*/\1/p' "$work/out.txt")")
    # "  best q=.. k=.. vec=..: X ms (spread Y%); default q=..: Z ms (spread W%); ..."
    line=$(grep '^  best ' "$work/out.txt")
    rows+=("$line")
    chosen+=("$(sed -E 's/^  best (q=[0-9]+ k=[0-9]+ vec=[0-9]+):.*/\1/' <<< "$line")")
  done
  # The first run's side-by-side times; stability over all runs.
  first=${rows[0]}
  tuned=$(sed -E 's/.*: ([0-9.]+) ms \(spread ([0-9.]+)%\); default.*/\1 (\2 %)/' <<< "$first")
  dflt=$(sed -E 's/.*default [^:]+: ([0-9.]+) ms \(spread ([0-9.]+)%\).*/\1 (\2 %)/' <<< "$first")
  speedup=$(sed -E 's/.*speed-up ([0-9.]+x).*/\1/' <<< "$first")
  under=yes
  for t in "${times[@]}"; do ((t < 120)) || under=no; done
  # Stable: one winner, or every winner's time within the largest spread of
  # the fastest winner's time.
  stable=$(printf '%s\n' "${rows[@]}" | python3 -c '
import re, sys
rows = [re.search(r"best (q=\d+ k=\d+ vec=\d+): ([\d.]+) ms \(spread ([\d.]+)%", l).groups()
        for l in sys.stdin if l.strip()]
winners = {w for w, _, _ in rows}
times = [float(t) for _, t, _ in rows]
noise = max(float(s) for _, _, s in rows) / 100
print("same winner" if len(winners) == 1 else
      "within noise" if max(times) <= min(times) * (1 + noise) else "no")')
  (IFS=/; echo "| $prior | $T | ${times[*]} | $under | $(IFS=,; echo "${chosen[*]}" | sed 's/,/; /g') | $(printf '%s; ' "${choices[@]}" | sed 's/; $//') | ${threads[*]} | $tuned | $dflt | $speedup | $stable |")
done
