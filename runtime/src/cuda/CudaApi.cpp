//===- CudaApi.cpp - C entry points of the CUDA backend -------------------===//
//
// Devices (a retained primary context), raw modules (cubin/fatbin/PTX
// images), raw launches and device memory, all through the driver API
// loaded at run time (CudaDriver.h).
//
//===----------------------------------------------------------------------===//

#include "runtime/src/ElfCheck.h"
#include "runtime/src/Objects.h"
#include "runtime/src/cuda/CudaDriver.h"

#include <cstring>
#include <map>

using namespace femc::rt;
using namespace femc::rt::cuda;

namespace {

/// A femrt_device: one CUDA device and its retained primary context.
struct Device {
  static constexpr HandleKind handleKind = HandleKind::Device;

  Device() = default;
  Device(const Device &) = delete;
  Device &operator=(const Device &) = delete;

  ~Device() {
    if (!primary)
      return;
    {
      ScopedContext scope(*driver, primary);
      if (scope.result() == CUDA_SUCCESS)
        for (const auto &allocation : allocations)
          driver->cuMemFree(allocation.first);
    }
    driver->cuDevicePrimaryCtxRelease(device);
  }

  std::shared_ptr<Context> context;
  std::shared_ptr<Driver> driver;
  CUdevice device = 0;
  int32_t ordinal = 0;
  CUcontext primary = nullptr;
  std::string name;
  int32_t ccMajor = 0;
  int32_t ccMinor = 0;

  std::mutex allocationMutex;
  /// Live allocations made by femrt_cuda_malloc: base -> size.
  std::map<CUdeviceptr, size_t> allocations;
};

/// A femrt_cuda_module: a loaded image and the functions looked up in it.
struct CudaModule {
  static constexpr HandleKind handleKind = HandleKind::CudaModule;

  CudaModule() = default;
  CudaModule(const CudaModule &) = delete;
  CudaModule &operator=(const CudaModule &) = delete;

  ~CudaModule() {
    if (!module)
      return;
    ScopedContext scope(*device->driver, device->primary);
    if (scope.result() == CUDA_SUCCESS)
      device->driver->cuModuleUnload(module);
  }

  std::shared_ptr<Device> device;
  CUmodule module = nullptr;
  std::mutex functionMutex;
  std::map<std::string, CUfunction> functions;
};

CUdeviceptr toDevicePointer(const void *pointer) {
  return static_cast<CUdeviceptr>(reinterpret_cast<uintptr_t>(pointer));
}

/// Reports a failed driver call made by `function`.
femrt_status cudaFail(const char *function, const Driver &driver,
                      CUresult code, const char *call,
                      const std::string &context = std::string()) {
  return fail(statusFor(code),
              concat(function, ": ", context, context.empty() ? "" : ": ",
                     formatError(driver, code, call)));
}

/// Makes `device`'s context current for a scope, or reports why not.
#define FEMRT_WITH_CONTEXT(function, device)                                   \
  ScopedContext scope(*(device)->driver, (device)->primary);                   \
  if (scope.result() != CUDA_SUCCESS)                                          \
    return cudaFail(function, *(device)->driver, scope.result(),               \
                    "cuCtxPushCurrent");

/// Checks that [pointer, pointer + size) stays inside the allocation that
/// contains `pointer`, if femrt_cuda_malloc made it.
femrt_status checkDeviceRange(const char *function, Device &device,
                              const void *pointer, size_t size,
                              const char *param) {
  CUdeviceptr begin = toDevicePointer(pointer);
  std::lock_guard<std::mutex> lock(device.allocationMutex);
  auto it = device.allocations.upper_bound(begin);
  if (it == device.allocations.begin())
    return FEMRT_OK;
  --it;
  CUdeviceptr base = it->first;
  size_t allocated = it->second;
  if (begin >= base + allocated)
    return FEMRT_OK; // not one of ours
  if (size > allocated - (begin - base))
    return fail(FEMRT_ERROR_INVALID_ARGUMENT,
                concat(function, ": ", size, " bytes at ", param, " ",
                       formatPointer(pointer),
                       " overrun the allocation of ", allocated,
                       " bytes at ", formatAddress(base)));
  return FEMRT_OK;
}

/// One copy between host and device memory: the checks both directions share
/// (a live device, NULL pointers named, the device side inside one live
/// allocation), then `copy` with the device pointer.
template <typename Copy>
femrt_status copyChecked(const char *function, femrt_device *device,
                         const void *hostPtr, const char *hostName,
                         const void *devicePtr, const char *deviceName,
                         size_t size, const char *driverCall, Copy copy) {
  return guard(function, [&] {
    std::shared_ptr<Device> dev;
    if (femrt_status s = lookup(device, function, "device", dev))
      return s;
    if (size == 0)
      return FEMRT_OK;
    if (!hostPtr || !devicePtr)
      return fail(FEMRT_ERROR_INVALID_ARGUMENT,
                  concat(function, ": ", devicePtr ? hostName : deviceName,
                         " is NULL"));
    if (femrt_status s =
            checkDeviceRange(function, *dev, devicePtr, size, deviceName))
      return s;
    FEMRT_WITH_CONTEXT(function, dev);
    if (CUresult rc = copy(*dev->driver, toDevicePointer(devicePtr)))
      return cudaFail(function, *dev->driver, rc, driverCall);
    return FEMRT_OK;
  });
}

} // namespace

extern "C" {

femrt_status femrt_cuda_available(int *out_available) {
  const char *function = __func__;
  return guard(function, [&] {
    if (femrt_status s = checkOut(out_available, function, "out_available"))
      return s;
    std::shared_ptr<Driver> driver;
    std::string error;
    int count = 0;
    *out_available = loadDriver(driver, error) == FEMRT_OK &&
                     driver->cuDeviceGetCount(&count) == CUDA_SUCCESS &&
                     count > 0;
    return FEMRT_OK;
  });
}

femrt_status femrt_cuda_device_count(int32_t *out_count) {
  const char *function = __func__;
  return guard(function, [&] {
    if (femrt_status s = checkOut(out_count, function, "out_count"))
      return s;
    std::shared_ptr<Driver> driver;
    if (femrt_status s = getDriver(function, driver))
      return s;
    int count = 0;
    if (CUresult rc = driver->cuDeviceGetCount(&count))
      return cudaFail(function, *driver, rc, "cuDeviceGetCount");
    *out_count = count;
    return FEMRT_OK;
  });
}

femrt_status femrt_device_open_cuda(femrt_context *context, int32_t ordinal,
                                    femrt_device **out_device) {
  const char *function = __func__;
  return guard(function, [&] {
    std::shared_ptr<Context> ctx;
    if (femrt_status s = lookup(context, function, "context", ctx))
      return s;
    if (femrt_status s = checkOut(out_device, function, "out_device"))
      return s;
    if (ordinal < 0)
      return fail(FEMRT_ERROR_INVALID_ARGUMENT,
                  concat(function, ": ordinal is ", ordinal));
    std::shared_ptr<Driver> driver;
    if (femrt_status s = getDriver(function, driver))
      return s;
    int count = 0;
    if (CUresult rc = driver->cuDeviceGetCount(&count))
      return cudaFail(function, *driver, rc, "cuDeviceGetCount");
    if (ordinal >= count)
      return fail(FEMRT_ERROR_NO_CUDA_DEVICE,
                  concat(function, ": no CUDA device with ordinal ", ordinal,
                         " (the driver '", driver->getPath(), "' reports ",
                         count, count == 1 ? " device)" : " devices)"));

    auto device = std::make_shared<Device>();
    device->context = ctx;
    device->driver = driver;
    device->ordinal = ordinal;
    if (CUresult rc = driver->cuDeviceGet(&device->device, ordinal))
      return cudaFail(function, *driver, rc, "cuDeviceGet");
    char name[256] = {0};
    if (CUresult rc =
            driver->cuDeviceGetName(name, sizeof(name) - 1, device->device))
      return cudaFail(function, *driver, rc, "cuDeviceGetName");
    device->name = name;
    int major = 0, minor = 0;
    if (CUresult rc = driver->cuDeviceGetAttribute(
            &major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR,
            device->device))
      return cudaFail(function, *driver, rc, "cuDeviceGetAttribute");
    if (CUresult rc = driver->cuDeviceGetAttribute(
            &minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR,
            device->device))
      return cudaFail(function, *driver, rc, "cuDeviceGetAttribute");
    device->ccMajor = major;
    device->ccMinor = minor;
    CUcontext primary = nullptr;
    if (CUresult rc = driver->cuDevicePrimaryCtxRetain(&primary, device->device))
      return cudaFail(function, *driver, rc, "cuDevicePrimaryCtxRetain");
    device->primary = primary; // released by ~Device from here on

    uintptr_t handle = HandleRegistry::instance().add(
        HandleKind::Device, device, fromHandle(context));
    if (!handle)
      return fail(FEMRT_ERROR_INVALID_HANDLE,
                  concat(function, ": the context was destroyed while the "
                                   "device was being opened"));
    *out_device = toHandle<femrt_device>(handle);
    return FEMRT_OK;
  });
}

femrt_status femrt_device_destroy(femrt_device *device) {
  const char *function = __func__;
  return guard(function, [&] {
    return destroyHandle<Device>(device, function, "device");
  });
}

femrt_status femrt_device_get_name(femrt_device *device,
                                   const char **out_name) {
  const char *function = __func__;
  return guard(function, [&] {
    std::shared_ptr<Device> dev;
    if (femrt_status s = lookup(device, function, "device", dev))
      return s;
    if (femrt_status s = checkOut(out_name, function, "out_name"))
      return s;
    *out_name = dev->name.c_str();
    return FEMRT_OK;
  });
}

femrt_status femrt_cuda_device_compute_capability(femrt_device *device,
                                                  int32_t *out_major,
                                                  int32_t *out_minor) {
  const char *function = __func__;
  return guard(function, [&] {
    std::shared_ptr<Device> dev;
    if (femrt_status s = lookup(device, function, "device", dev))
      return s;
    if (femrt_status s = checkOut(out_major, function, "out_major"))
      return s;
    if (femrt_status s = checkOut(out_minor, function, "out_minor"))
      return s;
    *out_major = dev->ccMajor;
    *out_minor = dev->ccMinor;
    return FEMRT_OK;
  });
}

femrt_status femrt_cuda_module_load_image(femrt_device *device,
                                          const void *image, size_t size,
                                          femrt_cuda_module **out_module) {
  const char *function = __func__;
  return guard(function, [&] {
    std::shared_ptr<Device> dev;
    if (femrt_status s = lookup(device, function, "device", dev))
      return s;
    if (!image || size == 0)
      return fail(FEMRT_ERROR_INVALID_ARGUMENT,
                  concat(function, ": image is ", image ? "empty" : "NULL"));
    if (femrt_status s = checkOut(out_module, function, "out_module"))
      return s;
    // The driver takes no size: it reads as far as a cubin's or fatbin's
    // headers say, so those must lie within `size` bytes.
    if (femrt_status s = checkCudaImage(function, image, size))
      return s;

    // cubin (ELF) and fatbin images are binary; anything else is taken for
    // PTX text, which the driver wants NUL-terminated.
    const unsigned char *bytes = static_cast<const unsigned char *>(image);
    bool isElf = size >= 4 && std::memcmp(bytes, "\x7f"
                                                 "ELF",
                                          4) == 0;
    uint32_t magic = 0;
    if (size >= 4)
      std::memcpy(&magic, bytes, 4);
    bool isFatbin = magic == 0xba55ed50u;
    std::string ptx;
    const void *data = image;
    if (!isElf && !isFatbin && bytes[size - 1] != '\0') {
      ptx.assign(static_cast<const char *>(image), size);
      data = ptx.c_str();
    }

    const Driver &driver = *dev->driver;
    FEMRT_WITH_CONTEXT(function, dev);
    CUmodule module = nullptr;
    CUresult rc;
    std::string log;
    const char *call;
    if (driver.cuModuleLoadDataEx) {
      char errorLog[8192] = {0};
      CUjit_option options[] = {CU_JIT_ERROR_LOG_BUFFER,
                                CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES};
      void *values[] = {errorLog,
                        reinterpret_cast<void *>(
                            static_cast<uintptr_t>(sizeof(errorLog) - 1))};
      rc = driver.cuModuleLoadDataEx(&module, data, 2, options, values);
      errorLog[sizeof(errorLog) - 1] = '\0';
      log = errorLog;
      call = "cuModuleLoadDataEx";
    } else {
      rc = driver.cuModuleLoadData(&module, data);
      call = "cuModuleLoadData";
    }
    if (rc != CUDA_SUCCESS)
      return fail(statusFor(rc),
                  concat(function, ": ", formatError(driver, rc, call),
                         log.empty() ? "" : "; JIT log: ", log));

    auto cudaModule = std::make_shared<CudaModule>();
    cudaModule->device = dev;
    cudaModule->module = module; // unloaded by ~CudaModule from here on
    uintptr_t handle = HandleRegistry::instance().add(
        HandleKind::CudaModule, cudaModule, fromHandle(device));
    if (!handle)
      return fail(FEMRT_ERROR_INVALID_HANDLE,
                  concat(function, ": the device was destroyed while the "
                                   "module was being loaded"));
    *out_module = toHandle<femrt_cuda_module>(handle);
    return FEMRT_OK;
  });
}

femrt_status femrt_cuda_module_destroy(femrt_cuda_module *module) {
  const char *function = __func__;
  return guard(function, [&] {
    return destroyHandle<CudaModule>(module, function, "module");
  });
}

femrt_status femrt_cuda_launch_raw(femrt_cuda_module *module,
                                   const char *function_name,
                                   const uint32_t grid[3],
                                   const uint32_t block[3],
                                   uint32_t shared_bytes, void *stream,
                                   void **params) {
  const char *function = __func__;
  return guard(function, [&] {
    std::shared_ptr<CudaModule> mod;
    if (femrt_status s = lookup(module, function, "module", mod))
      return s;
    if (!function_name)
      return fail(FEMRT_ERROR_INVALID_ARGUMENT,
                  concat(function, ": function_name is NULL"));
    if (!grid || !block)
      return fail(FEMRT_ERROR_INVALID_ARGUMENT,
                  concat(function, ": ", grid ? "block" : "grid", " is NULL"));
    for (int i = 0; i < 3; ++i)
      if (grid[i] == 0 || block[i] == 0)
        return fail(FEMRT_ERROR_INVALID_ARGUMENT,
                    concat(function, ": grid (", grid[0], ", ", grid[1], ", ",
                           grid[2], ") and block (", block[0], ", ", block[1],
                           ", ", block[2], ") must not have zero extents"));

    const Driver &driver = *mod->device->driver;
    FEMRT_WITH_CONTEXT(function, mod->device);
    CUfunction kernel = nullptr;
    {
      std::lock_guard<std::mutex> lock(mod->functionMutex);
      auto it = mod->functions.find(function_name);
      if (it != mod->functions.end()) {
        kernel = it->second;
      } else {
        if (CUresult rc =
                driver.cuModuleGetFunction(&kernel, mod->module, function_name))
          return cudaFail(function, driver, rc, "cuModuleGetFunction",
                          concat("the CUDA module has no function '",
                                 function_name, "'"));
        mod->functions.emplace(function_name, kernel);
      }
    }
    // Above 48 KiB of dynamic shared memory a kernel must opt in (the GPU
    // kernels of femc's NVIDIA targets do, passes/nvidia/KernelAbi.h).
    if (shared_bytes > kDefaultDynamicSharedLimit) {
      if (!driver.cuFuncSetAttribute)
        return fail(FEMRT_ERROR_UNSUPPORTED,
                    concat(function, ": launching '", function_name, "' with ",
                           shared_bytes,
                           " bytes of dynamic shared memory needs "
                           "cuFuncSetAttribute, which the CUDA driver '",
                           driver.getPath(), "' lacks"));
      if (CUresult rc = driver.cuFuncSetAttribute(
              kernel, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
              static_cast<int>(shared_bytes)))
        return cudaFail(function, driver, rc, "cuFuncSetAttribute",
                        concat("allowing '", function_name, "' ",
                               shared_bytes,
                               " bytes of dynamic shared memory"));
    }
    if (CUresult rc = driver.cuLaunchKernel(
            kernel, grid[0], grid[1], grid[2], block[0], block[1], block[2],
            shared_bytes, static_cast<CUstream>(stream), params, nullptr))
      return cudaFail(function, driver, rc, "cuLaunchKernel",
                      concat("launching '", function_name, "'"));
    return FEMRT_OK;
  });
}

femrt_status femrt_cuda_malloc(femrt_device *device, size_t size,
                               void **out_device_ptr) {
  const char *function = __func__;
  return guard(function, [&] {
    std::shared_ptr<Device> dev;
    if (femrt_status s = lookup(device, function, "device", dev))
      return s;
    if (femrt_status s = checkOut(out_device_ptr, function, "out_device_ptr"))
      return s;
    if (size == 0)
      return fail(FEMRT_ERROR_INVALID_ARGUMENT,
                  concat(function, ": size is 0"));
    FEMRT_WITH_CONTEXT(function, dev);
    CUdeviceptr pointer = 0;
    if (CUresult rc = dev->driver->cuMemAlloc(&pointer, size))
      return cudaFail(function, *dev->driver, rc, "cuMemAlloc",
                      concat("allocating ", size, " bytes on device ",
                             dev->ordinal));
    {
      std::lock_guard<std::mutex> lock(dev->allocationMutex);
      dev->allocations[pointer] = size;
    }
    *out_device_ptr = reinterpret_cast<void *>(static_cast<uintptr_t>(pointer));
    return FEMRT_OK;
  });
}

femrt_status femrt_cuda_free(femrt_device *device, void *device_ptr) {
  const char *function = __func__;
  return guard(function, [&] {
    std::shared_ptr<Device> dev;
    if (femrt_status s = lookup(device, function, "device", dev))
      return s;
    if (!device_ptr)
      return FEMRT_OK;
    CUdeviceptr pointer = toDevicePointer(device_ptr);
    {
      std::lock_guard<std::mutex> lock(dev->allocationMutex);
      if (!dev->allocations.erase(pointer))
        return fail(FEMRT_ERROR_INVALID_ARGUMENT,
                    concat(function, ": ", formatPointer(device_ptr),
                           " is not a live allocation of femrt_cuda_malloc "
                           "on this device (freed already?)"));
    }
    FEMRT_WITH_CONTEXT(function, dev);
    if (CUresult rc = dev->driver->cuMemFree(pointer))
      return cudaFail(function, *dev->driver, rc, "cuMemFree");
    return FEMRT_OK;
  });
}

femrt_status femrt_cuda_memcpy_htod(femrt_device *device, void *dst_device,
                                    const void *src_host, size_t size) {
  return copyChecked(__func__, device, src_host, "src_host", dst_device,
                     "dst_device", size, "cuMemcpyHtoD",
                     [&](const Driver &driver, CUdeviceptr dst) {
                       return driver.cuMemcpyHtoD(dst, src_host, size);
                     });
}

femrt_status femrt_cuda_memcpy_dtoh(femrt_device *device, void *dst_host,
                                    const void *src_device, size_t size) {
  return copyChecked(__func__, device, dst_host, "dst_host", src_device,
                     "src_device", size, "cuMemcpyDtoH",
                     [&](const Driver &driver, CUdeviceptr src) {
                       return driver.cuMemcpyDtoH(dst_host, src, size);
                     });
}

femrt_status femrt_cuda_synchronize(femrt_device *device, void *stream) {
  const char *function = __func__;
  return guard(function, [&] {
    std::shared_ptr<Device> dev;
    if (femrt_status s = lookup(device, function, "device", dev))
      return s;
    FEMRT_WITH_CONTEXT(function, dev);
    if (stream) {
      if (CUresult rc =
              dev->driver->cuStreamSynchronize(static_cast<CUstream>(stream)))
        return cudaFail(function, *dev->driver, rc, "cuStreamSynchronize");
    } else if (CUresult rc = dev->driver->cuCtxSynchronize()) {
      return cudaFail(function, *dev->driver, rc, "cuCtxSynchronize");
    }
    return FEMRT_OK;
  });
}

} // extern "C"
