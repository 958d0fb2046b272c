#!/usr/bin/env bash
# femc's scan priors, one table from one run (docs/benchmarks.md, "Scan
# priors"): builds femc and fem-run, then runs bench/scan_bench.py with this
# script's arguments (--help lists them). The PyTorch rows need bench/.venv,
# which bench/run.sh creates once (bench/requirements.txt); without it the
# table says so and the femc rows still run. Run it on a quiet machine.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
# --help answers without building (a build here would race any other build).
for a in "$@"; do
  case "$a" in -h|--help) exec /usr/bin/python3 "$root/bench/scan_bench.py" --help ;; esac
done
"$root/scripts/build.sh" femc fem-run
exec /usr/bin/python3 "$root/bench/scan_bench.py" "$@"
