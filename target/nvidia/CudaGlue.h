//===- CudaGlue.h - the device half of an NVIDIA kernel library -*- C++ -*-===//
//
// Part of the femc project.
//
// Writes the C that a `femc --target=sm_XX` library adds to the driver's
// tables (argument tables, femc_bind, traits, the femrt_kernel_library):
// the cubin embedded as a byte array, its loading through libfemrt once per
// device after a compute capability check, and per kernel a launch entry
// point that binds the extents, computes the grid of `fem.gpu.grid` and
// launches the kernel of passes/nvidia/KernelAbi.h on the caller's stream.
// docs/gpu-run.md and docs/runtime.md describe the result.
//
//===----------------------------------------------------------------------===//
#ifndef FEMC_TARGET_NVIDIA_CUDAGLUE_H
#define FEMC_TARGET_NVIDIA_CUDAGLUE_H

#include "driver/Target.h"

#include "llvm/Support/raw_ostream.h"

namespace femc::target::nvidia {

/// Writes the device glue for `kernels` (every one with its `device`
/// facts) of the library whose C identifier stem is `stem`, with the cubin
/// `image` built for compute capability `arch` (e.g. 90) from `ptx` (the
/// fallback for a driver that cannot load the cubin), described as
/// `description` in messages.
void writeCudaGlue(llvm::raw_ostream &os, llvm::StringRef stem,
                   const std::vector<driver::GlueKernel> &kernels,
                   llvm::StringRef image, llvm::StringRef ptx, int64_t arch,
                   llvm::StringRef description);

} // namespace femc::target::nvidia

#endif // FEMC_TARGET_NVIDIA_CUDAGLUE_H
