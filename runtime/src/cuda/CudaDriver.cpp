//===- CudaDriver.cpp - The CUDA driver API, loaded at run time -----------===//

#include "runtime/src/cuda/CudaDriver.h"

#include "runtime/src/ElfCheck.h"
#include "runtime/src/Status.h"

#include <dlfcn.h>
#include <sys/stat.h>

#include <cstdlib>

namespace femc::rt::cuda {

namespace {

/// Resolves the first of `names` that the library exports.
template <typename Fn>
bool resolve(void *library, Fn &target, std::initializer_list<const char *> names,
             std::string &missing) {
  for (const char *name : names) {
    if (void *symbol = dlsym(library, name)) {
      target = reinterpret_cast<Fn>(symbol);
      return true;
    }
  }
  missing = *names.begin();
  return false;
}

struct ErrorName {
  CUresult code;
  const char *name;
};

/// The CUresult values (cuda.h) that are worth naming without a driver.
constexpr ErrorName kErrorNames[] = {
    {0, "CUDA_SUCCESS"},
    {1, "CUDA_ERROR_INVALID_VALUE"},
    {2, "CUDA_ERROR_OUT_OF_MEMORY"},
    {3, "CUDA_ERROR_NOT_INITIALIZED"},
    {4, "CUDA_ERROR_DEINITIALIZED"},
    {34, "CUDA_ERROR_STUB_LIBRARY"},
    {35, "CUDA_ERROR_INSUFFICIENT_DRIVER"},
    {46, "CUDA_ERROR_DEVICE_UNAVAILABLE"},
    {100, "CUDA_ERROR_NO_DEVICE"},
    {101, "CUDA_ERROR_INVALID_DEVICE"},
    {200, "CUDA_ERROR_INVALID_IMAGE"},
    {201, "CUDA_ERROR_INVALID_CONTEXT"},
    {209, "CUDA_ERROR_NO_BINARY_FOR_GPU"},
    {218, "CUDA_ERROR_INVALID_PTX"},
    {221, "CUDA_ERROR_JIT_COMPILER_NOT_FOUND"},
    {222, "CUDA_ERROR_UNSUPPORTED_PTX_VERSION"},
    {300, "CUDA_ERROR_INVALID_SOURCE"},
    {301, "CUDA_ERROR_FILE_NOT_FOUND"},
    {400, "CUDA_ERROR_INVALID_HANDLE"},
    {500, "CUDA_ERROR_NOT_FOUND"},
    {600, "CUDA_ERROR_NOT_READY"},
    {700, "CUDA_ERROR_ILLEGAL_ADDRESS"},
    {701, "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES"},
    {702, "CUDA_ERROR_LAUNCH_TIMEOUT"},
    {715, "CUDA_ERROR_ILLEGAL_INSTRUCTION"},
    {716, "CUDA_ERROR_MISALIGNED_ADDRESS"},
    {719, "CUDA_ERROR_LAUNCH_FAILED"},
    {801, "CUDA_ERROR_NOT_SUPPORTED"},
    {803, "CUDA_ERROR_SYSTEM_DRIVER_MISMATCH"},
    {804, "CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE"},
    {999, "CUDA_ERROR_UNKNOWN"},
};

/// The process's driver and what loading it said.
struct DriverState {
  std::mutex mutex;
  bool loaded = false;
  std::string pathOverride; // for tests; empty: environment or default
  std::shared_ptr<Driver> driver;
  femrt_status status = FEMRT_OK;
  std::string error;
};

DriverState &driverState() {
  static DriverState *state = new DriverState(); // leaked on purpose
  return *state;
}

} // namespace

std::shared_ptr<Driver> Driver::load(const std::string &path,
                                     std::string &error) {
  // A file named by a path (FEMRT_CUDA_DRIVER=/x/libcuda.so.1) is checked
  // as a kernel library is before dlopen sees it: a FIFO blocked dlopen
  // forever, a truncated copy crashed the loader with SIGBUS. (A missing
  // file is dlopen's to report; the check leaves the last error as it was:
  // femrt_cuda_available must not change it.)
  struct stat info;
  if (path.find('/') != std::string::npos && ::stat(path.c_str(), &info) == 0) {
    std::string saved = lastError();
    femrt_status status =
        checkElfLibrary("cannot load the CUDA driver", path.c_str());
    std::string problem = lastError();
    fail(FEMRT_OK, saved);
    if (status != FEMRT_OK) {
      error = problem;
      return nullptr;
    }
  }
  // RTLD_LOCAL: the driver's symbols must not interpose anything else.
  void *library = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!library) {
    const char *reason = dlerror();
    error = concat("cannot load the CUDA driver '", path,
                   "': ", reason ? reason : "dlopen failed");
    return nullptr;
  }
  std::shared_ptr<Driver> driver(new Driver());
  driver->path = path;
  driver->library = library;

  std::string missing;
  bool ok =
      resolve(library, driver->cuInit, {"cuInit"}, missing) &&
      resolve(library, driver->cuDriverGetVersion, {"cuDriverGetVersion"},
              missing) &&
      resolve(library, driver->cuDeviceGetCount, {"cuDeviceGetCount"},
              missing) &&
      resolve(library, driver->cuDeviceGet, {"cuDeviceGet"}, missing) &&
      resolve(library, driver->cuDeviceGetName, {"cuDeviceGetName"},
              missing) &&
      resolve(library, driver->cuDeviceGetAttribute, {"cuDeviceGetAttribute"},
              missing) &&
      resolve(library, driver->cuDevicePrimaryCtxRetain,
              {"cuDevicePrimaryCtxRetain"}, missing) &&
      resolve(library, driver->cuDevicePrimaryCtxRelease,
              {"cuDevicePrimaryCtxRelease_v2", "cuDevicePrimaryCtxRelease"},
              missing) &&
      resolve(library, driver->cuCtxPushCurrent,
              {"cuCtxPushCurrent_v2", "cuCtxPushCurrent"}, missing) &&
      resolve(library, driver->cuCtxPopCurrent,
              {"cuCtxPopCurrent_v2", "cuCtxPopCurrent"}, missing) &&
      resolve(library, driver->cuCtxSynchronize, {"cuCtxSynchronize"},
              missing) &&
      resolve(library, driver->cuModuleLoadData, {"cuModuleLoadData"},
              missing) &&
      resolve(library, driver->cuModuleUnload, {"cuModuleUnload"}, missing) &&
      resolve(library, driver->cuModuleGetFunction, {"cuModuleGetFunction"},
              missing) &&
      resolve(library, driver->cuLaunchKernel, {"cuLaunchKernel"}, missing) &&
      resolve(library, driver->cuMemAlloc, {"cuMemAlloc_v2"}, missing) &&
      resolve(library, driver->cuMemFree, {"cuMemFree_v2"}, missing) &&
      resolve(library, driver->cuMemcpyHtoD, {"cuMemcpyHtoD_v2"}, missing) &&
      resolve(library, driver->cuMemcpyDtoH, {"cuMemcpyDtoH_v2"}, missing) &&
      resolve(library, driver->cuStreamSynchronize, {"cuStreamSynchronize"},
              missing);
  if (!ok) {
    error = concat("'", path, "' is not a usable CUDA driver: it lacks ",
                   missing);
    return nullptr; // ~Driver dlcloses it
  }
  driver->usable = true;
  // Optional: a richer module loader and error descriptions.
  std::string ignored;
  resolve(library, driver->cuModuleLoadDataEx, {"cuModuleLoadDataEx"},
          ignored);
  resolve(library, driver->cuFuncSetAttribute, {"cuFuncSetAttribute"},
          ignored);
  resolve(library, driver->cuGetErrorName, {"cuGetErrorName"}, ignored);
  resolve(library, driver->cuGetErrorString, {"cuGetErrorString"}, ignored);
  return driver;
}

Driver::~Driver() {
  // A driver that was fully resolved stays mapped for the life of the
  // process (unloading libcuda is not supported well, and objects made by it
  // may outlive us); only a library that turned out unusable is closed.
  if (library && !usable)
    dlclose(library);
}

CUresult Driver::initialize() {
  std::call_once(initOnce, [this] { initResult = cuInit(0); });
  return initResult;
}

std::string builtinErrorName(CUresult code) {
  for (const ErrorName &entry : kErrorNames)
    if (entry.code == code)
      return entry.name;
  return concat("CUDA_ERROR_UNKNOWN_", code);
}

std::string Driver::describe(CUresult code) const {
  const char *name = nullptr;
  const char *text = nullptr;
  if (cuGetErrorName && cuGetErrorName(code, &name) != CUDA_SUCCESS)
    name = nullptr;
  if (cuGetErrorString && cuGetErrorString(code, &text) != CUDA_SUCCESS)
    text = nullptr;
  std::string result = name ? std::string(name) : builtinErrorName(code);
  if (text && *text)
    result += concat(": ", text);
  return result;
}

std::string formatError(const Driver &driver, CUresult code,
                        const char *call) {
  return concat(driver.describe(code), " (in ", call, ")");
}

femrt_status statusFor(CUresult code) {
  switch (code) {
  case CUDA_ERROR_OUT_OF_MEMORY:
    return FEMRT_ERROR_OUT_OF_MEMORY;
  case CUDA_ERROR_NOT_FOUND:
    return FEMRT_ERROR_NOT_FOUND;
  case CUDA_ERROR_NO_DEVICE:
  case CUDA_ERROR_INVALID_DEVICE:
  case CUDA_ERROR_STUB_LIBRARY:
  case CUDA_ERROR_INSUFFICIENT_DRIVER:
  case CUDA_ERROR_SYSTEM_DRIVER_MISMATCH:
  case CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE:
    return FEMRT_ERROR_NO_CUDA_DEVICE;
  default:
    return FEMRT_ERROR_CUDA;
  }
}

femrt_status loadDriver(std::shared_ptr<Driver> &out, std::string &error) {
  DriverState &state = driverState();
  std::lock_guard<std::mutex> lock(state.mutex);
  if (!state.loaded) {
    std::string path = state.pathOverride;
    if (path.empty()) {
      const char *env = std::getenv("FEMRT_CUDA_DRIVER");
      path = env && *env ? env : "libcuda.so.1";
    }
    std::string loadError;
    std::shared_ptr<Driver> driver = Driver::load(path, loadError);
    if (!driver) {
      state.status = FEMRT_ERROR_NO_CUDA_DEVICE;
      state.error = concat("no CUDA driver: ", loadError,
                           " (install the NVIDIA driver, or set "
                           "FEMRT_CUDA_DRIVER to the path of libcuda.so.1)");
    } else if (CUresult rc = driver->initialize(); rc != CUDA_SUCCESS) {
      // Whatever cuInit says (no device, stub library, driver too old...),
      // CUDA cannot be used.
      state.status = FEMRT_ERROR_NO_CUDA_DEVICE;
      state.error = concat("the CUDA driver '", path,
                           "' failed to initialize: ",
                           formatError(*driver, rc, "cuInit"));
    } else {
      state.status = FEMRT_OK;
      state.driver = std::move(driver);
    }
    state.loaded = true;
  }
  if (state.status != FEMRT_OK) {
    error = state.error;
    return state.status;
  }
  out = state.driver;
  return FEMRT_OK;
}

femrt_status getDriver(const char *function, std::shared_ptr<Driver> &out) {
  std::string error;
  if (femrt_status status = loadDriver(out, error))
    return fail(status, concat(function, ": ", error));
  return FEMRT_OK;
}

void setDriverPathForTesting(const char *path) {
  DriverState &state = driverState();
  std::lock_guard<std::mutex> lock(state.mutex);
  state.pathOverride = path ? path : "";
  state.loaded = false;
  state.driver.reset();
  state.error.clear();
  state.status = FEMRT_OK;
}

ScopedContext::ScopedContext(const Driver &driver, CUcontext context)
    : driver(driver), pushResult(driver.cuCtxPushCurrent(context)) {}

ScopedContext::~ScopedContext() {
  if (pushResult == CUDA_SUCCESS) {
    CUcontext popped = nullptr;
    driver.cuCtxPopCurrent(&popped);
  }
}

} // namespace femc::rt::cuda
