//===- KernelAbi.h - the contract of femc's NVIDIA GPU kernels -*- C++ -*-===//
//
// The GPU kernel ABI: what `fem-lower-to-nvvm` (passes/nvidia/) produces and
// what the driver, the glue and libfemrt's CUDA backend (target/nvidia/,
// runtime/) rely on when they launch it. This header is the one place that
// states it; docs/gpu.md explains the kernel behind it.
//
// Change log (a change here touches /tmp/femc-gpu-abi.changed):
//   v1 (2026-12-01): first version.
//
// ---------------------------------------------------------------------------
// 1. What the pipeline produces
//
// `buildNvidiaPipeline` (NvidiaPipeline.h) takes the module after `fem-tile`
// and returns a module that holds only LLVM-dialect functions for the
// NVPTX back end: `llvm.target_triple = "nvptx64-nvidia-cuda"` and the
// NVPTX data layout are set on the module, so `translateModuleToLLVMIR`
// followed by LLVM's NVPTX back end (or `mlir-translate --mlir-to-llvmir |
// llc -mtriple=nvptx64-nvidia-cuda -mcpu=sm_XX`) gives PTX. The host-side
// workgroup functions (`@NAME_wg`) are removed; read their metadata
// (fem.arg_names, fem.grid, ...) before running the pipeline if the host
// glue needs them. Layer functions and the scan priors are rejected with a
// located error (issue 12 item 5).
//
// No libdevice is needed: exp/log/log1p are expanded to polynomials, exp2,
// sqrt, fma and floor become single instructions; the PTX has no external
// calls.
//
// 2. Kernel symbol
//
// One kernel per workgroup function: `@<K>_gpu`, where K is the workgroup
// function's `fem.kernel` (the model function's name). The PTX `.entry` has
// the same name (no mangling), so `cuModuleGetFunction(mod, "<K>_gpu")`.
//
// 3. Parameters (in this order; PTX: .u64 for pointers and i64)
//
//   for each memref argument of @<K>_wg, in its order
//   (q, k, v, beta_raw, lam, gate, [mask,] out for softmax):
//       ptr addrspace(1)   the device address of element 0 of the tensor
//                          (DLTensor data + byte_offset), dense row-major in
//                          the read's layout (bthd or bhtd) as the workgroup
//                          function's memref type states; element type as
//                          that memref type (f32, f16 or bf16; the mask is
//                          i8 bytes, nonzero = keep)
//   then five i64 extents, always all five:
//       B, T, S, H, Hkv     batch, query length, key length, query heads,
//                           key/value heads (the values prepare binds; static
//                           extents of the types must agree, H % Hkv == 0)
//
// dk and dv are not parameters: the kernel is specialised for the static
// dk and dv of the memref types (the pass rejects dynamic ones, or dk/dv
// above 256, with a located error).
//
// 4. Launch
//
//   grid  = (ceil(T / Bq), H, B)   read from the kernel's `fem.gpu.grid`
//           attribute: three [extent, divisor] pairs, the same form as the
//           CPU `fem.grid` (e.g. [["T", 32], ["H", 1], ["B", 1]]).
//           Block x owns query tile ceil(T/Bq) - 1 - x (rows [t0, t0+Bq) ∩
//           [0, T)): reversed, so the longest causal tiles start first;
//           block y is query head h, which reads kv head h / (H / Hkv);
//           block z is the batch.  Limits: H, B <= 65535 (CUDA's y/z limit).
//           T == 0: do not launch (an empty grid is a CUDA error).
//   block = `fem.gpu.block` = [threads, 1, 1] (e.g. [256, 1, 1]; the
//           tensor-core kernels of f16/bf16 reads use [128, 1, 1] and a
//           grid divisor of 64: always read both from the kernel).
//   dynamic shared memory = `fem.gpu.shared_bytes` bytes (an i64; 0 when
//           the kernel's shared memory is all static). When it is above
//           48 KiB the launcher must first raise
//           CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES to it.
//   `fem.gpu.static_shared_bytes` records the static shared memory for
//   information (ptxas -v reports the same number).
//   No stream or cluster requirements; any stream works. The kernel writes
//   every element of `out` exactly once and nothing else.
//
// The attributes sit on the kernel's llvm.func (and are kept on the
// gpu.func before conversion): fem.kernel (K), fem.arg_names (as on
// @K_wg), fem.gpu.grid, fem.gpu.block, fem.gpu.shared_bytes,
// fem.gpu.static_shared_bytes, fem.gpu.arch (80 or 90: the sm it was
// built for), fem.gpu.dtype ("f32", "f16" or "bf16": the q/k/v element
// type, which selects the kernel variant).
//
// 5. Pre-pass and epilogue
//
// Both are fused into the one kernel; there is no second kernel. Each
// block first reduces max v, min v and a NaN flag per channel over all S
// unmasked keys of its kv head (one extra read of v per block), then forms
// beta, the clip bound, the shift M and the narrow-channel flag for its
// query head, exactly as passes/cpu/ReadSoftmax.cpp does. The log restore
// and the gate run on the accumulators in registers before the one store.
//
// 6. Alignment and layout assumptions
//
//   - every pointer is aligned to 16 bytes (cudaMalloc gives 256); the
//     kernel forms any wider access itself from the static dk/dv;
//   - tensors are dense (no strides other than row-major), do not alias
//     `out`, and live in device (or managed) memory of the current context;
//   - element offsets are computed in 64-bit, so tensors may exceed 2^31
//     elements.
//===----------------------------------------------------------------------===//
#ifndef FEMC_PASSES_NVIDIA_KERNELABI_H
#define FEMC_PASSES_NVIDIA_KERNELABI_H

#include <cstdint>
#include <string_view>

namespace femc::nvidia {

/// The ABI revision described above.
inline constexpr int kGpuKernelAbiVersion = 1;

/// Kernel symbol suffix: the kernel of `@K_wg` is `@K_gpu`.
inline constexpr std::string_view kKernelSuffix = "_gpu";

/// Attribute names on the kernel function (see section 4).
inline constexpr std::string_view kAttrGrid = "fem.gpu.grid";
inline constexpr std::string_view kAttrBlock = "fem.gpu.block";
inline constexpr std::string_view kAttrSharedBytes = "fem.gpu.shared_bytes";
inline constexpr std::string_view kAttrStaticSharedBytes =
    "fem.gpu.static_shared_bytes";
inline constexpr std::string_view kAttrArch = "fem.gpu.arch";
inline constexpr std::string_view kAttrDtype = "fem.gpu.dtype";

/// The extent scalars that follow the pointers, in order.
inline constexpr std::string_view kExtentParams[] = {"B", "T", "S", "H",
                                                     "Hkv"};
inline constexpr int kNumExtentParams = 5;

/// Largest dk and dv the kernels are built for.
inline constexpr int64_t kMaxHeadDim = 256;

/// Static shared memory above this needs no opt-in; dynamic shared memory
/// above it needs CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES.
inline constexpr int64_t kDefaultSharedLimit = 48 * 1024;
/// Query rows per block of the tensor-core kernel (16 per warp): the
/// default, and the values femc --tile-q (the pass option mma-rows) takes.
inline constexpr int64_t kTensorCoreDefaultRows = 64;
inline constexpr bool isTensorCoreBlockRows(int64_t rows) {
  return rows == 64 || rows == 128;
}
/// The same rule, for messages.
inline constexpr std::string_view kTensorCoreBlockRowsText =
    "64 (the default) or 128";

/// The NVPTX target triple and data layout the kernels' module carries.
inline constexpr std::string_view kTriple = "nvptx64-nvidia-cuda";
inline constexpr std::string_view kDataLayout =
    "e-p6:32:32-i64:64-i128:128-i256:256-v16:16-v32:32-n16:32:64";

} // namespace femc::nvidia

#endif // FEMC_PASSES_NVIDIA_KERNELABI_H
