//===- NvidiaTarget.h - the NVIDIA GPU targets of femc ----------*- C++ -*-===//
//
// Part of the femc project.
//
// sm_80 (Ampere), sm_90 (Hopper) and `cuda` (= sm_90): the lowering of
// passes/nvidia/ to NVVM, LLVM's NVPTX back end for the PTX, ptxas from the
// CUDA toolkit for the cubin, and a host glue library that loads the cubin
// and launches it through libfemrt's CUDA backend. The kernel contract the
// glue relies on is passes/nvidia/KernelAbi.h.
//
//===----------------------------------------------------------------------===//
#ifndef FEMC_TARGET_NVIDIA_NVIDIATARGET_H
#define FEMC_TARGET_NVIDIA_NVIDIATARGET_H

#include "driver/Target.h"

#include <string>
#include <vector>

namespace femc::target::nvidia {

/// The NVIDIA targets, in the order --target lists them: sm_80, sm_90, cuda.
const std::vector<const driver::Target *> &nvidiaTargets();

/// The ptxas femc runs: $FEMC_PTXAS (then no other), else
/// $CUDA_PATH/bin/ptxas, else the one found when femc was configured, else
/// /usr/local/cuda/bin/ptxas, else `ptxas` on PATH. Empty when none is
/// executable; `looked` then lists where it looked.
std::string findPtxas(std::string &looked);

/// The tiles of a GPU read (query tile Bq = the rows of one block, key
/// tile Bk = the keys staged through shared memory at a time): the prior
/// table's rule, and Bq and Bk powers of two from 16 to 128. `vec` is not
/// used on the GPU.
std::optional<std::string> checkGpuTiles(const priors::PriorInfo &prior,
                                         const priors::Tiles &tiles);

} // namespace femc::target::nvidia

#endif // FEMC_TARGET_NVIDIA_NVIDIATARGET_H
