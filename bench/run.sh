#!/usr/bin/env bash
# Installs the benchmark's packages (Debian's PyTorch and numpy with OpenBLAS),
# builds femc and fem-run, and runs bench/run_bench.py with its arguments.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/setup.sh"
need=()
for p in python3-numpy python3-torch libopenblas0-pthread; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if ((${#need[@]})); then
  sudo=""; [ "$(id -u)" != 0 ] && sudo="sudo"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${need[@]}"
fi
"$root/scripts/build.sh" femc fem-run
exec /usr/bin/python3 "$root/bench/run_bench.py" "$@"
