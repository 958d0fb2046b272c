/*===- fake_cuda.c - A stand-in CUDA driver for runtime tests -------------===*
 *
 * Exports the driver API entry points libfemrt resolves, implemented on the
 * host, so that the CUDA backend's plumbing (loading, device open, memory,
 * module loading, launches, error formatting) is tested on machines without
 * a GPU. Device memory is host memory; module images must start with
 * "FAKE_MODULE" (anything else is CUDA_ERROR_INVALID_IMAGE, with a JIT log);
 * the only function is `fill(float *dst, float value, int n)`.
 *
 * fake_cuda_configure(init_result, device_count) sets what cuInit returns
 * and how many devices there are (default: success, 1 device).
 *===----------------------------------------------------------------------===*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef int CUresult;
typedef unsigned long long CUdeviceptr;

enum {
  CUDA_SUCCESS = 0,
  CUDA_ERROR_INVALID_VALUE = 1,
  CUDA_ERROR_OUT_OF_MEMORY = 2,
  CUDA_ERROR_NO_DEVICE = 100,
  CUDA_ERROR_INVALID_DEVICE = 101,
  CUDA_ERROR_INVALID_IMAGE = 200,
  CUDA_ERROR_INVALID_CONTEXT = 201,
  CUDA_ERROR_INVALID_HANDLE = 400,
  CUDA_ERROR_NOT_FOUND = 500
};

#define EXPORT __attribute__((visibility("default")))

static CUresult initResult = CUDA_SUCCESS;
static int deviceCount = 1;
static int contextDepth = 0;
static int moduleToken, functionToken, contextToken;

EXPORT void fake_cuda_configure(int init_result, int device_count) {
  initResult = init_result;
  deviceCount = device_count;
}

/* How many contexts are pushed (must be 0 between calls). */
EXPORT int fake_cuda_context_depth(void) { return contextDepth; }

EXPORT CUresult cuInit(unsigned flags) {
  (void)flags;
  return initResult;
}
EXPORT CUresult cuDriverGetVersion(int *version) {
  *version = 12040;
  return CUDA_SUCCESS;
}
EXPORT CUresult cuDeviceGetCount(int *count) {
  *count = deviceCount;
  return CUDA_SUCCESS;
}
EXPORT CUresult cuDeviceGet(int *device, int ordinal) {
  if (ordinal < 0 || ordinal >= deviceCount)
    return CUDA_ERROR_INVALID_DEVICE;
  *device = ordinal;
  return CUDA_SUCCESS;
}
EXPORT CUresult cuDeviceGetName(char *name, int length, int device) {
  (void)device;
  strncpy(name, "Fake CUDA Device", (size_t)length);
  return CUDA_SUCCESS;
}
EXPORT CUresult cuDeviceGetAttribute(int *value, int attribute, int device) {
  (void)device;
  *value = attribute == 75 ? 9 : 0; /* compute capability 9.0 */
  return CUDA_SUCCESS;
}
EXPORT CUresult cuDevicePrimaryCtxRetain(void **context, int device) {
  (void)device;
  *context = &contextToken;
  return CUDA_SUCCESS;
}
EXPORT CUresult cuDevicePrimaryCtxRelease_v2(int device) {
  (void)device;
  return CUDA_SUCCESS;
}
EXPORT CUresult cuCtxPushCurrent_v2(void *context) {
  if (context != &contextToken)
    return CUDA_ERROR_INVALID_CONTEXT;
  ++contextDepth;
  return CUDA_SUCCESS;
}
EXPORT CUresult cuCtxPopCurrent_v2(void **context) {
  if (contextDepth == 0)
    return CUDA_ERROR_INVALID_CONTEXT;
  --contextDepth;
  if (context)
    *context = &contextToken;
  return CUDA_SUCCESS;
}
EXPORT CUresult cuCtxSynchronize(void) {
  return contextDepth > 0 ? CUDA_SUCCESS : CUDA_ERROR_INVALID_CONTEXT;
}
EXPORT CUresult cuStreamSynchronize(void *stream) {
  (void)stream;
  return CUDA_SUCCESS;
}

static CUresult loadModule(void **module, const void *image, char *log,
                           size_t logSize) {
  if (strncmp((const char *)image, "FAKE_MODULE", 11) != 0) {
    if (log && logSize > 0) {
      strncpy(log, "fake JIT: the image does not start with FAKE_MODULE",
              logSize - 1);
      log[logSize - 1] = '\0';
    }
    return CUDA_ERROR_INVALID_IMAGE;
  }
  *module = &moduleToken;
  return CUDA_SUCCESS;
}
EXPORT CUresult cuModuleLoadData(void **module, const void *image) {
  return loadModule(module, image, NULL, 0);
}
EXPORT CUresult cuModuleLoadDataEx(void **module, const void *image,
                                   unsigned numOptions, int *options,
                                   void **values) {
  char *log = NULL;
  size_t logSize = 0;
  for (unsigned i = 0; i < numOptions; ++i) {
    if (options[i] == 5)
      log = (char *)values[i];
    else if (options[i] == 6)
      logSize = (size_t)(uintptr_t)values[i];
  }
  return loadModule(module, image, log, logSize);
}
EXPORT CUresult cuModuleUnload(void *module) {
  return module == &moduleToken ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}
EXPORT CUresult cuModuleGetFunction(void **function, void *module,
                                    const char *name) {
  if (module != &moduleToken)
    return CUDA_ERROR_INVALID_HANDLE;
  if (strcmp(name, "fill") != 0)
    return CUDA_ERROR_NOT_FOUND;
  *function = &functionToken;
  return CUDA_SUCCESS;
}
EXPORT CUresult cuLaunchKernel(void *function, unsigned gx, unsigned gy,
                               unsigned gz, unsigned bx, unsigned by,
                               unsigned bz, unsigned shared, void *stream,
                               void **params, void **extra) {
  (void)gy, (void)gz, (void)by, (void)bz, (void)shared, (void)stream,
      (void)extra;
  if (function != &functionToken || contextDepth == 0)
    return CUDA_ERROR_INVALID_HANDLE;
  /* fill(float *dst, float value, int n) with one thread per element. */
  CUdeviceptr dst = *(CUdeviceptr *)params[0];
  float value = *(float *)params[1];
  int n = *(int *)params[2];
  unsigned threads = gx * bx;
  for (int i = 0; i < n && (unsigned)i < threads; ++i)
    ((float *)(uintptr_t)dst)[i] = value;
  return CUDA_SUCCESS;
}
EXPORT CUresult cuMemAlloc_v2(CUdeviceptr *pointer, size_t size) {
  if (contextDepth == 0)
    return CUDA_ERROR_INVALID_CONTEXT;
  if (size > ((size_t)1 << 40))
    return CUDA_ERROR_OUT_OF_MEMORY;
  void *memory = malloc(size);
  if (!memory)
    return CUDA_ERROR_OUT_OF_MEMORY;
  *pointer = (CUdeviceptr)(uintptr_t)memory;
  return CUDA_SUCCESS;
}
EXPORT CUresult cuMemFree_v2(CUdeviceptr pointer) {
  free((void *)(uintptr_t)pointer);
  return CUDA_SUCCESS;
}
EXPORT CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void *src,
                                size_t size) {
  memcpy((void *)(uintptr_t)dst, src, size);
  return CUDA_SUCCESS;
}
EXPORT CUresult cuMemcpyDtoH_v2(void *dst, CUdeviceptr src, size_t size) {
  memcpy(dst, (const void *)(uintptr_t)src, size);
  return CUDA_SUCCESS;
}

static const char *errorName(CUresult code) {
  switch (code) {
  case CUDA_SUCCESS:
    return "CUDA_SUCCESS";
  case CUDA_ERROR_INVALID_VALUE:
    return "CUDA_ERROR_INVALID_VALUE";
  case CUDA_ERROR_OUT_OF_MEMORY:
    return "CUDA_ERROR_OUT_OF_MEMORY";
  case CUDA_ERROR_NO_DEVICE:
    return "CUDA_ERROR_NO_DEVICE";
  case CUDA_ERROR_INVALID_DEVICE:
    return "CUDA_ERROR_INVALID_DEVICE";
  case CUDA_ERROR_INVALID_IMAGE:
    return "CUDA_ERROR_INVALID_IMAGE";
  case CUDA_ERROR_INVALID_CONTEXT:
    return "CUDA_ERROR_INVALID_CONTEXT";
  case CUDA_ERROR_INVALID_HANDLE:
    return "CUDA_ERROR_INVALID_HANDLE";
  case CUDA_ERROR_NOT_FOUND:
    return "CUDA_ERROR_NOT_FOUND";
  }
  return NULL;
}
EXPORT CUresult cuGetErrorName(CUresult code, const char **name) {
  *name = errorName(code);
  return *name ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}
EXPORT CUresult cuGetErrorString(CUresult code, const char **text) {
  switch (code) {
  case CUDA_ERROR_INVALID_IMAGE:
    *text = "device kernel image is invalid";
    return CUDA_SUCCESS;
  case CUDA_ERROR_NOT_FOUND:
    *text = "named symbol not found";
    return CUDA_SUCCESS;
  case CUDA_ERROR_NO_DEVICE:
    *text = "no CUDA-capable device is detected";
    return CUDA_SUCCESS;
  }
  *text = NULL;
  return CUDA_ERROR_INVALID_VALUE;
}
