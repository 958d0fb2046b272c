//===- Glue.h - the C glue, header and manifest of a library ----*- C++ -*-===//
//
// Part of the femc project.
//
// What femc writes next to the lowered kernels: the C glue (argument
// tables, shape checks, the grid, workgroup trampolines, layer stages on
// libfemrt's pool, the kernel ABI v2 descriptor), the C header and the JSON
// manifest, all from KernelInfo (Kernels.h).
//
//===----------------------------------------------------------------------===//

#ifndef FEMC_DRIVER_GLUE_H
#define FEMC_DRIVER_GLUE_H

#include "driver/Kernels.h"
#include "driver/Target.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"

#include <string>
#include <vector>

namespace llvm {
class Module;
} // namespace llvm

namespace femc::driver {

/// The device half of a library for a device target (Target::isDevice):
/// the target, its lowered kernels (one per KernelInfo, same order) and the
/// image they are in.
struct DeviceGlue {
  const Target *target = nullptr;
  std::vector<DeviceKernel> kernels;
  std::string image, assembly; ///< e.g. the cubin and the PTX it came from
};

/// Renames the lowered module's generic memory functions to the library's
/// own (memoryFunctionName), which emitMemoryFunctions defines.
void renameMemoryFunctions(llvm::Module &llvmModule, llvm::StringRef stem);

/// The stages each layer's lowered body calls: declarations
/// `_mlir_ciface_<layer>_<stage>_run(buffers..., n)` with a stage name
/// fem-layer-matmul makes (mm, mm_pack_a, mm_pack_nn, mm_pack_nt, mmx*,
/// ew<N>) or fem-layer-loop-stages (loop<N>).
void collectLayerStages(const llvm::Module &llvmModule,
                        std::vector<KernelInfo> &kernels);

/// The C glue: argument tables, shape checks and grid, workgroup trampolines,
/// the library descriptor and a serial convenience entry per kernel. Kernel
/// i's own tables and functions are `femc_k<i>_*` (user names cannot start
/// with femc_); every name and description is written through cString or
/// cComment.
std::string emitGlue(const std::vector<KernelInfo> &kernels,
                     llvm::StringRef stem, llvm::StringRef source,
                     llvm::StringRef targetDescription,
                     llvm::ArrayRef<std::string> requiredFeatures,
                     const DeviceGlue *device = nullptr);

/// The C header: one prototype per kernel with its arguments' dtypes,
/// extents and grid in a comment; `device` adds a device target's entry
/// parameters (e.g. the CUDA stream).
std::string emitHeader(const std::vector<KernelInfo> &kernels,
                       llvm::StringRef stem, llvm::StringRef source,
                       llvm::StringRef targetDescription,
                       const Target *device = nullptr);

/// The JSON manifest (NAME.json): producer, ABI version, source, target,
/// the files written and each kernel's traits, arguments and grid, which
/// fem-run and the Python module read next to the library.
std::string emitManifest(const std::vector<KernelInfo> &kernels,
                         llvm::StringRef source,
                         llvm::StringRef targetDescription,
                         llvm::ArrayRef<std::string> files,
                         const DeviceGlue *device = nullptr);

} // namespace femc::driver

#endif // FEMC_DRIVER_GLUE_H
