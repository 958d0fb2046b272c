#!/bin/sh
# gpu-compile.sh MODEL.mlir SM PREFIX [--no-ptx] [--cuda-cores] [--mma-rows=N]: a
# kernel-level FEM model → fem-tile → fem-tiled-to-nvvm (PREFIX.mlir) → LLVM
# IR (PREFIX.ll) → PTX for sm_SM (PREFIX.ptx), as the NVIDIA target does it
# (docs/gpu.md). --no-ptx stops at the LLVM IR (no NVPTX back end needed);
# --cuda-cores builds f16/bf16 reads without tensor cores; --mma-rows=N gives
# the tensor-core kernel N query rows per block (64 or 128, femc --tile-q).
set -e
model=$1 sm=$2 prefix=$3
noptx=0 tc=true rows=0
for flag in "$4" "$5" "$6"; do
  case "$flag" in
    --no-ptx) noptx=1 ;;
    --cuda-cores) tc=false ;;
    --mma-rows=*) rows=${flag#--mma-rows=} ;;
  esac
done
fem-opt "$model" --fem-outline-mixers --fem-expand-mixer --fem-fuse-reads --cse \
  --fem-tile=target=generic "--fem-tiled-to-nvvm=sm=$sm tensor-cores=$tc mma-rows=$rows" \
  -o "$prefix.mlir"
mlir-translate --mlir-to-llvmir "$prefix.mlir" -o "$prefix.ll"
[ $noptx = 1 ] && exit 0
llc -O3 -mtriple=nvptx64-nvidia-cuda "-mcpu=sm_$sm" "$prefix.ll" -o "$prefix.ptx"
