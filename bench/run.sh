#!/usr/bin/env bash
# femc against its strongest peers, one table from one run (docs/benchmarks.md):
#  1. femc's build packages (scripts/setup.sh) and python3-venv;
#  2. once: bench/.venv with PyTorch 2.x, JAX, IREE and numpy from PyPI,
#     pinned in bench/requirements.txt (reinstalled only when that file
#     changes; if the install fails the bench still runs and prints those rows
#     as unavailable);
#  3. builds femc and fem-run (scripts/build.sh);
#  4. runs bench/run_bench.py with this script's arguments (--help lists them).
# Run it on a quiet machine: the peers' OpenMP threads slow down many times when
# another process competes for a core (the table says how busy the CPUs were).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/setup.sh"
if ! dpkg-query -W -f='${Status}' python3-venv 2>/dev/null | grep -q "install ok installed"; then
  sudo=""; [ "$(id -u)" != 0 ] && sudo="sudo"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends python3-venv
fi

venv="$root/bench/.venv"
req="$root/bench/requirements.txt"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$req" | cut -d' ' -f1)"
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "bench: installing the peers into bench/.venv from PyPI (bench/requirements.txt; ~3 GB once)"
  # IREE's pins apart from the others: a failure there costs only its rows.
  if /usr/bin/python3 -m venv "$venv" &&
     "$venv/bin/python" -m pip install -q -r <(grep -v '^iree-' "$req"); then
    if "$venv/bin/python" -m pip install -q -r <(grep '^iree-' "$req"); then
      echo "$want" >"$stamp"
    else
      echo "bench: WARNING: IREE did not install (see above); its rows will say unavailable" >&2
    fi
  else
    echo "bench: WARNING: the peers did not install (see above); their rows will say unavailable" >&2
  fi
fi

"$root/scripts/build.sh" femc fem-run
exec /usr/bin/python3 "$root/bench/run_bench.py" "$@"
