#!/usr/bin/env bash
# Installs everything femc needs to build and test, from Debian's packages.
# Safe to run any number of times: it installs only what is missing.
#   scripts/setup.sh           what building and testing need
#   scripts/setup.sh --fuzz    the same (kept for scripts/fuzz.sh; the runtime is always installed)
set -euo pipefail

# femc compiles the test kernels and the demo for this machine's CPU, and its
# CPU code needs AVX2 and FMA (x86-64-v3: Intel Haswell, AMD Zen 1 or later).
if [ "$(uname -m)" != x86_64 ]; then
  echo "setup: error: femc's compiler targets x86-64 CPUs; this machine is" \
       "$(uname -m). Build libfemrt alone with: cmake -G Ninja -S . -B build" \
       "-DFEMC_ENABLE_COMPILER=OFF" >&2
  exit 1
fi
if [ -r /proc/cpuinfo ]; then
  flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
  missing_isa=""
  for f in avx2 fma; do
    case "$flags" in *" $f "*) ;; *) missing_isa="$missing_isa $f" ;; esac
  done
  if [ -n "$missing_isa" ]; then
    echo "setup: error: this CPU has no$missing_isa; femc's CPU kernels" \
         "need x86-64-v3 (AVX2 and FMA: Intel Haswell, AMD Zen or later)," \
         "and the demo and the tests compile kernels for this machine and" \
         "run them." >&2
    exit 1
  fi
fi

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

# Installing needs root: sudo where this is not root.
as_root() {
  if [ "$(id -u)" = 0 ]; then
    "$@"
  elif command -v sudo >/dev/null; then
    sudo "$@"
  else
    echo "setup: error: installing needs root, and this is not root and has" \
         "no sudo; run as root: $*" >&2
    exit 1
  fi
}

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  as_root apt-get update -q
  if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
      --no-install-recommends "${missing[@]}"; then
    echo "setup: error: apt-get could not install: ${missing[*]}." \
         "femc needs Debian 12 (bookworm) with bookworm-security, which has" \
         "LLVM/MLIR 22 (llvm-22-dev, libmlir-22-dev); this is" \
         "$(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")." >&2
    exit 1
  fi
else
  echo "setup: all packages present"
fi

# nanobind (for the femc Python module) is not packaged by Debian 12: install
# it from PyPI for Debian's python3, once.
if ! /usr/bin/python3 -c "import nanobind" 2>/dev/null; then
  echo "setup: installing nanobind for /usr/bin/python3 (pip)"
  as_root /usr/bin/python3 -m pip install -q --break-system-packages "nanobind>=3.1,<4"
else
  echo "setup: nanobind present"
fi
