/*===- main.c - Embedding libfemrt in a C program ---------------------===*
 *
 *   embed_c <kernel library> [kernel]
 *
 * Lists the kernels of a femc kernel library with their arguments. Given a
 * kernel name, it also builds a zero-filled DLTensor for every argument
 * (static extents as declared, 4 for each dynamic one), launches the kernel
 * and reports what happened. Shows every step of the C API: context,
 * module, kernel lookup, introspection, tensors, launch, errors, release.
 *===----------------------------------------------------------------------===*/
#include "femrt/femrt.h"

#include <stdio.h>
#include <stdlib.h>

/* Prints the failing call's status and message, and jumps to cleanup. */
#define TRY(call)                                                              \
  do {                                                                         \
    femrt_status status_ = (call);                                             \
    if (status_ != FEMRT_OK) {                                                 \
      fprintf(stderr, "%s failed: %s: %s\n", #call,                            \
              femrt_status_string(status_), femrt_last_error());               \
      goto cleanup;                                                            \
    }                                                                          \
  } while (0)

static void printArgs(femrt_kernel *kernel) {
  int32_t numArgs = 0, a, d;
  femrt_kernel_num_args(kernel, &numArgs);
  for (a = 0; a < numArgs; ++a) {
    const femrt_arg_info *info = NULL;
    if (femrt_kernel_get_arg_info(kernel, a, &info) != FEMRT_OK)
      return;
    printf("    %-6s %s dtype(code=%u, bits=%u) rank %d [%s] (",
           info->role == FEMRT_ARG_OUTPUT ? "out" : "in", info->name,
           (unsigned)info->dtype_code, (unsigned)info->dtype_bits, info->rank,
           info->dim_names);
    for (d = 0; d < info->rank; ++d) {
      if (info->shape[d] < 0)
        printf("%s?", d ? ", " : "");
      else
        printf("%s%lld", d ? ", " : "", (long long)info->shape[d]);
    }
    printf(")\n");
  }
}

int main(int argc, char **argv) {
  femrt_context *context = NULL;
  femrt_module *module = NULL;
  femrt_kernel *kernel = NULL;
  DLTensor *tensors = NULL;
  const DLTensor **args = NULL;
  int64_t *shapes = NULL;
  void **buffers = NULL;
  int32_t numKernels = 0, numArgs = 0, k, a, d;
  const char *producer = NULL, *target = NULL;
  int exitCode = 1;

  if (argc < 2 || argc > 3) {
    fprintf(stderr, "usage: %s <kernel library> [kernel]\n", argv[0]);
    return 2;
  }

  /* A context with one thread per core; it owns everything created below. */
  TRY(femrt_context_create(NULL, &context));
  TRY(femrt_module_load_library(context, argv[1], &module));
  TRY(femrt_module_get_info(module, &producer, &target));
  TRY(femrt_module_num_kernels(module, &numKernels));
  printf("%s: %d kernel(s), produced by '%s' for '%s'\n", argv[1], numKernels,
         producer, target);
  for (k = 0; k < numKernels; ++k) {
    const char *name = NULL, *description = NULL;
    TRY(femrt_module_get_kernel_by_index(module, k, &kernel));
    TRY(femrt_kernel_get_name(kernel, &name));
    TRY(femrt_kernel_get_description(kernel, &description));
    printf("  %s  %s\n", name, description);
    printArgs(kernel);
  }
  if (argc == 2) {
    exitCode = 0;
    goto cleanup;
  }

  /* Look the kernel up by name and build one tensor per argument. */
  TRY(femrt_module_get_kernel(module, argv[2], &kernel));
  TRY(femrt_kernel_num_args(kernel, &numArgs));
  tensors = calloc((size_t)numArgs + 1, sizeof(DLTensor));
  args = calloc((size_t)numArgs + 1, sizeof(DLTensor *));
  shapes = calloc(((size_t)numArgs + 1) * FEMRT_MAX_RANK, sizeof(int64_t));
  buffers = calloc((size_t)numArgs + 1, sizeof(void *));
  if (!tensors || !args || !shapes || !buffers)
    goto cleanup;
  for (a = 0; a < numArgs; ++a) {
    const femrt_arg_info *info = NULL;
    int64_t elements = 1;
    TRY(femrt_kernel_get_arg_info(kernel, a, &info));
    for (d = 0; d < info->rank; ++d) {
      shapes[a * FEMRT_MAX_RANK + d] = info->shape[d] < 0 ? 4 : info->shape[d];
      elements *= shapes[a * FEMRT_MAX_RANK + d];
    }
    /* calloc's alignment suits every element size. */
    buffers[a] = calloc((size_t)elements, info->dtype_bits / 8);
    if (!buffers[a])
      goto cleanup;
    tensors[a].data = buffers[a];
    tensors[a].device.device_type = kDLCPU;
    tensors[a].device.device_id = 0;
    tensors[a].ndim = info->rank;
    tensors[a].dtype.code = info->dtype_code;
    tensors[a].dtype.bits = info->dtype_bits;
    tensors[a].dtype.lanes = 1;
    tensors[a].shape = &shapes[a * FEMRT_MAX_RANK];
    tensors[a].strides = NULL; /* compact row-major */
    tensors[a].byte_offset = 0;
    args[a] = &tensors[a];
  }
  /* Every argument is checked before the kernel runs; a bad one is an error
   * naming it, e.g. "kernel 'k': argument 'q' (#0): expected rank 4 ...". */
  TRY(femrt_kernel_launch(kernel, args, numArgs, NULL));
  printf("launched %s on zero-filled tensors: ok\n", argv[2]);
  exitCode = 0;

cleanup:
  /* Destroying the context destroys the module and its kernels too. */
  if (context && femrt_context_destroy(context) != FEMRT_OK)
    fprintf(stderr, "femrt_context_destroy: %s\n", femrt_last_error());
  if (buffers)
    for (a = 0; a < numArgs; ++a)
      free(buffers[a]);
  free(buffers);
  free(shapes);
  free(args);
  free(tensors);
  return exitCode;
}
