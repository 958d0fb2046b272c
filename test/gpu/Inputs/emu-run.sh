#!/bin/sh
# emu-run.sh PREFIX [femc-gpu-emu options]: compiles PREFIX.ll (the kernels'
# LLVM IR from gpu-compile.sh) for the host, with the NVVM intrinsics
# renamed to the functions femc-gpu-emu provides, and runs it against the
# double reference (test/gpu/emu/GpuEmu.cpp).
set -e
prefix=$1
shift
# llvm.exp2.f32 is ex2.approx.f32 on the GPU: the emulator's gives 2^x with
# the hardware's error bound (femc_emu_ex2.approx.f32, GpuEmu.cpp).
sed -e 's/@llvm\.nvvm\./@femc_emu_/g' -e 's/@llvm\.exp2\.f32/@"femc_emu_ex2.approx.f32"/g' \
  -e 's/ptx_kernel //' -e '/^target /d' \
  "$prefix.ll" > "$prefix.emu.ll"
# -O0: no pass may move a shuffle or barrier call across another.
# emu-mma.ll: the mma.sync intrinsics of the tensor-core kernels.
clang -O0 -shared -fPIC -Wno-override-module --rtlib=compiler-rt \
  "$prefix.emu.ll" "$(dirname "$0")/emu-mma.ll" -o "$prefix.emu.so"
femc-gpu-emu "$prefix.emu.so" "$prefix.mlir" "$@"
