#!/usr/bin/env bash
# Installs everything femc needs to build and test, from Debian's packages.
# Safe to run any number of times: it installs only what is missing.
#   scripts/setup.sh           what building and testing need
#   scripts/setup.sh --fuzz    the same (kept for scripts/fuzz.sh; the runtime is always installed)
set -euo pipefail

packages=(
  cmake ninja-build python3
  llvm-22-dev libmlir-22-dev mlir-22-tools llvm-22-tools clang-22
  googletest libgtest-dev libdlpack-dev
  # The Python module (python/), its tests and examples; nanobind comes from
  # PyPI below. PyTorch (python3-torch) is optional: its tests skip without it.
  python3-dev python3-numpy python3-pytest python3-pip libopenblas0-pthread
  # clang-22's compiler-rt (builtins, sanitizer and libFuzzer runtimes): the
  # glue's sanitizer test, the GPU kernels' CPU emulator (test/gpu) and
  # scripts/fuzz.sh link with it.
  libclang-rt-22-dev
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "setup: all packages present"
fi

# nanobind (for the femc Python module) is not packaged by Debian 12: install
# it from PyPI for Debian's python3, once.
if ! /usr/bin/python3 -c "import nanobind" 2>/dev/null; then
  echo "setup: installing nanobind for /usr/bin/python3 (pip)"
  sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  $sudo /usr/bin/python3 -m pip install -q --break-system-packages "nanobind>=3.1,<4"
else
  echo "setup: nanobind present"
fi
