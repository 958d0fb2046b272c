//===- CudaDriver.h - The CUDA driver API, loaded at run time ---*- C++ -*-===//
//
// libfemrt does not link against CUDA and does not need its headers: the few
// driver API types and entry points it uses are declared here and resolved
// with dlopen/dlsym from libcuda.so.1 (or the file named by the environment
// variable FEMRT_CUDA_DRIVER) the first time CUDA is used.
//
// The declarations follow the CUDA driver API documentation; the `_v2`
// symbols are the ones cuda.h maps the plain names to on 64-bit systems.
//
//===----------------------------------------------------------------------===//
#ifndef FEMRT_SRC_CUDA_CUDADRIVER_H
#define FEMRT_SRC_CUDA_CUDADRIVER_H

#include "femrt/femrt.h"

#include <memory>
#include <mutex>
#include <string>

namespace femc::rt::cuda {

// Driver API types (cuda.h), in this namespace so they cannot clash with a
// real cuda.h included elsewhere.
using CUresult = int;
using CUdevice = int;
using CUdeviceptr = unsigned long long;
using CUcontext = struct CUctx_st *;
using CUmodule = struct CUmod_st *;
using CUfunction = struct CUfunc_st *;
using CUstream = struct CUstream_st *;
using CUjit_option = int;

constexpr CUresult CUDA_SUCCESS = 0;
constexpr CUresult CUDA_ERROR_OUT_OF_MEMORY = 2;
constexpr CUresult CUDA_ERROR_NOT_INITIALIZED = 3;
constexpr CUresult CUDA_ERROR_STUB_LIBRARY = 34;
constexpr CUresult CUDA_ERROR_INSUFFICIENT_DRIVER = 35;
constexpr CUresult CUDA_ERROR_NO_DEVICE = 100;
constexpr CUresult CUDA_ERROR_INVALID_DEVICE = 101;
constexpr CUresult CUDA_ERROR_NOT_FOUND = 500;
constexpr CUresult CUDA_ERROR_SYSTEM_DRIVER_MISMATCH = 803;
constexpr CUresult CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE = 804;

constexpr CUjit_option CU_JIT_ERROR_LOG_BUFFER = 5;
constexpr CUjit_option CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES = 6;

constexpr int CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75;
constexpr int CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76;
constexpr int CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8;

/// Dynamic shared memory a launch may use without opting in (48 KiB).
constexpr unsigned kDefaultDynamicSharedLimit = 48 * 1024;

/// The entry points of one loaded driver library.
class Driver {
public:
  /// Loads the library at `path` (a name or a path, as for dlopen) and
  /// resolves every entry point; does not call cuInit. On failure returns
  /// null and sets `error` ("cannot load ...", "... lacks cuInit ...").
  static std::shared_ptr<Driver> load(const std::string &path,
                                      std::string &error);

  ~Driver();
  Driver(const Driver &) = delete;
  Driver &operator=(const Driver &) = delete;

  /// Calls cuInit(0) once and returns its result (cached).
  CUresult initialize();

  /// "CUDA_ERROR_INVALID_IMAGE: device kernel image is invalid" for `code`,
  /// asking the driver for the name and description and falling back to a
  /// built-in table.
  std::string describe(CUresult code) const;

  const std::string &getPath() const { return path; }

  CUresult (*cuInit)(unsigned flags) = nullptr;
  CUresult (*cuDriverGetVersion)(int *version) = nullptr;
  CUresult (*cuDeviceGetCount)(int *count) = nullptr;
  CUresult (*cuDeviceGet)(CUdevice *device, int ordinal) = nullptr;
  CUresult (*cuDeviceGetName)(char *name, int length,
                              CUdevice device) = nullptr;
  CUresult (*cuDeviceGetAttribute)(int *value, int attribute,
                                   CUdevice device) = nullptr;
  CUresult (*cuDevicePrimaryCtxRetain)(CUcontext *context,
                                       CUdevice device) = nullptr;
  CUresult (*cuDevicePrimaryCtxRelease)(CUdevice device) = nullptr;
  CUresult (*cuCtxPushCurrent)(CUcontext context) = nullptr;
  CUresult (*cuCtxPopCurrent)(CUcontext *context) = nullptr;
  CUresult (*cuCtxSynchronize)() = nullptr;
  CUresult (*cuModuleLoadData)(CUmodule *module, const void *image) = nullptr;
  CUresult (*cuModuleLoadDataEx)(CUmodule *module, const void *image,
                                 unsigned numOptions, CUjit_option *options,
                                 void **optionValues) = nullptr;
  CUresult (*cuModuleUnload)(CUmodule module) = nullptr;
  CUresult (*cuModuleGetFunction)(CUfunction *function, CUmodule module,
                                  const char *name) = nullptr;
  CUresult (*cuLaunchKernel)(CUfunction function, unsigned gridX,
                             unsigned gridY, unsigned gridZ, unsigned blockX,
                             unsigned blockY, unsigned blockZ,
                             unsigned sharedBytes, CUstream stream,
                             void **params, void **extra) = nullptr;
  CUresult (*cuMemAlloc)(CUdeviceptr *pointer, size_t size) = nullptr;
  CUresult (*cuMemFree)(CUdeviceptr pointer) = nullptr;
  CUresult (*cuMemcpyHtoD)(CUdeviceptr dst, const void *src,
                           size_t size) = nullptr;
  CUresult (*cuMemcpyDtoH)(void *dst, CUdeviceptr src, size_t size) = nullptr;
  CUresult (*cuStreamSynchronize)(CUstream stream) = nullptr;
  /// Optional (null when the library lacks it): needed only by launches
  /// with more than kDefaultDynamicSharedLimit bytes of dynamic shared
  /// memory.
  CUresult (*cuFuncSetAttribute)(CUfunction function, int attribute,
                                 int value) = nullptr;
  CUresult (*cuGetErrorName)(CUresult code, const char **name) = nullptr;
  CUresult (*cuGetErrorString)(CUresult code, const char **text) = nullptr;

private:
  Driver() = default;

  std::string path;
  void *library = nullptr;
  /// Every required entry point was resolved.
  bool usable = false;
  std::once_flag initOnce;
  CUresult initResult = CUDA_SUCCESS;
};

/// The name of a CUresult from a built-in table ("CUDA_ERROR_UNKNOWN_<n>"
/// when it is not listed).
std::string builtinErrorName(CUresult code);

/// Formats a failed driver call: "<describe(code)> (in <call>)".
std::string formatError(const Driver &driver, CUresult code, const char *call);

/// The femrt_status for a failed driver call.
femrt_status statusFor(CUresult code);

/// The process's driver, loaded and initialized on first use from
/// $FEMRT_CUDA_DRIVER or "libcuda.so.1"; FEMRT_ERROR_NO_CUDA_DEVICE with
/// `error` set when it cannot be loaded or initialized (does not touch the
/// last error). The outcome is cached.
femrt_status loadDriver(std::shared_ptr<Driver> &out, std::string &error);

/// Like loadDriver, but a failure is also recorded as the last error,
/// prefixed by `function`.
femrt_status getDriver(const char *function, std::shared_ptr<Driver> &out);

/// Replaces the process's driver by the one at `path` (null: back to the
/// default) on its next use. Objects holding the old driver keep it. For
/// tests only.
void setDriverPathForTesting(const char *path);

/// Makes a context current for a scope (push/pop, so the caller's current
/// context is left as it was).
class ScopedContext {
public:
  ScopedContext(const Driver &driver, CUcontext context);
  ~ScopedContext();
  /// The result of the push; nothing is popped when it failed.
  CUresult result() const { return pushResult; }

private:
  const Driver &driver;
  CUresult pushResult;
};

} // namespace femc::rt::cuda

#endif // FEMRT_SRC_CUDA_CUDADRIVER_H
