#!/usr/bin/env bash
# Installs everything femc needs to build and test, from Debian's packages.
# Safe to run any number of times: it installs only what is missing.
set -euo pipefail

packages=(
  cmake ninja-build python3
  llvm-22-dev libmlir-22-dev mlir-22-tools llvm-22-tools clang-22
  googletest libgtest-dev libdlpack-dev
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
