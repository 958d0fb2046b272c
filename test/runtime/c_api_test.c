/*===- c_api_test.c - libfemrt used from plain C -----------------------===*
 *
 * Compiled as C99 with -pedantic -Werror and linked against the shared
 * libfemrt.so: checks that femrt.h is valid C, that the shared library
 * exports the API, and walks the usual sequence (load, look up, launch,
 * handle an error, release).
 *
 *   c_api_test <path to libfemrt_fake_kernels.so>
 *===----------------------------------------------------------------------===*/
#include "femrt/femrt.h"

#include <stdio.h>
#include <string.h>

static int failures = 0;

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: CHECK(%s) failed; last error: %s\n", __FILE__,  \
              __LINE__, #cond, femrt_last_error());                            \
      ++failures;                                                              \
    }                                                                          \
  } while (0)

int main(int argc, char **argv) {
  femrt_context *context = NULL;
  femrt_module *module = NULL;
  femrt_kernel *axpy = NULL;
  femrt_context_options options;
  float alpha = 3.0f, x[6], y[6], out[6];
  int64_t scalarShape[1] = {0}, shape[2] = {2, 3};
  DLTensor tAlpha, tX, tY, tOut;
  const DLTensor *args[4];
  int major = 0, minor = 0, patch = 0, i;
  femrt_status status;
  (void)scalarShape;

  if (argc != 2) {
    fprintf(stderr, "usage: %s <kernel library>\n", argv[0]);
    return 2;
  }
  CHECK(femrt_version(&major, &minor, &patch) == FEMRT_OK);
  CHECK(major == FEMRT_VERSION_MAJOR && minor == FEMRT_VERSION_MINOR);
  CHECK(femrt_kernel_abi_version() == FEMRT_KERNEL_ABI_VERSION);

  CHECK(femrt_context_options_init(&options) == FEMRT_OK);
  /* The thread limit is a C constant; above it is an error, not a crash. */
  options.num_threads = FEMRT_MAX_THREADS + 1;
  CHECK(femrt_context_create(&options, &context) ==
        FEMRT_ERROR_INVALID_ARGUMENT);
  CHECK(strstr(femrt_last_error(), "1 to 1024 (FEMRT_MAX_THREADS)") != NULL);
  options.num_threads = 2;
  CHECK(femrt_context_create(&options, &context) == FEMRT_OK);
  CHECK(femrt_module_load_library(context, argv[1], &module) == FEMRT_OK);
  CHECK(femrt_module_get_kernel(module, "axpy", &axpy) == FEMRT_OK);
  if (failures)
    return 1;

  for (i = 0; i < 6; ++i) {
    x[i] = (float)i;
    y[i] = 10.0f * (float)i;
    out[i] = 0.0f;
  }
  memset(&tAlpha, 0, sizeof(tAlpha));
  tAlpha.data = &alpha;
  tAlpha.device.device_type = kDLCPU;
  tAlpha.ndim = 0;
  tAlpha.dtype.code = kDLFloat;
  tAlpha.dtype.bits = 32;
  tAlpha.dtype.lanes = 1;
  tX = tAlpha;
  tX.data = x;
  tX.ndim = 2;
  tX.shape = shape;
  tY = tX;
  tY.data = y;
  tOut = tX;
  tOut.data = out;
  args[0] = &tAlpha;
  args[1] = &tX;
  args[2] = &tY;
  args[3] = &tOut;

  CHECK(femrt_kernel_launch(axpy, args, 4, NULL) == FEMRT_OK);
  for (i = 0; i < 6; ++i)
    CHECK(out[i] == 3.0f * x[i] + y[i]);

  /* An error names the argument. */
  tY.dtype.bits = 64;
  status = femrt_kernel_launch(axpy, args, 4, NULL);
  CHECK(status == FEMRT_ERROR_DTYPE);
  CHECK(strstr(femrt_last_error(), "argument 'y' (#2)") != NULL);
  CHECK(strcmp(femrt_status_string(status), "FEMRT_ERROR_DTYPE") == 0);

  CHECK(femrt_module_destroy(module) == FEMRT_OK);
  CHECK(femrt_module_destroy(module) == FEMRT_ERROR_INVALID_HANDLE);
  CHECK(femrt_context_destroy(context) == FEMRT_OK);
  if (failures == 0)
    printf("c_api_test: all checks passed\n");
  return failures ? 1 : 0;
}
