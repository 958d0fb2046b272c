/*===- fake_kernels.c - A hand-written kernel library for runtime tests ---===*
 *
 * Implements femrt/kernel_abi.h the way femc-generated code does, with
 * kernels small enough to check by hand:
 *
 *   axpy(alpha: f32[], x: f32[M,N], y: f32[M,N]) -> out: f32[M,N]
 *       out = alpha * x + y; grid (ceil(N/4), M, 1), 4 columns per workgroup
 *   touch() -> hits: i32[Z,Y,X]
 *       hits[z][y][x] += 1; grid (X, Y, Z): shows that every workgroup runs
 *       exactly once and that (x, y, z) are decoded right
 *   copy_f16(q: f16[T,8]) -> a: f16[T,8], b: f16[T,8]
 *       a = b = q; a static extent (dk = 8), 16-bit elements, two outputs
 *
 * Built several times (see CMakeLists.txt):
 *   FAKE_ABI_VERSION=<n>   report another kernel ABI version
 *   FAKE_ABI_V1            a library exactly as femc wrote it for kernel ABI
 *                          version 1 (no traits, no kernel_info_size), to
 *                          show that libfemrt refuses it naming both versions
 *   FAKE_QUERY_NAME=<name> export the query under another name (to link the
 *                          library into the test executable)
 *   FAKE_OMIT_QUERY        export no query function at all
 *   FAKE_NEEDS_ASAN        read a variable of AddressSanitizer's runtime, as
 *                          the glue of femc --sanitize=address does: dlopen
 *                          fails in a process without that runtime
 *===----------------------------------------------------------------------===*/
#include "femrt/kernel_abi.h"

#include <stdio.h>
#include <string.h>

#ifndef FAKE_ABI_VERSION
#define FAKE_ABI_VERSION FEMRT_KERNEL_ABI_VERSION
#endif
#ifndef FAKE_QUERY_NAME
#define FAKE_QUERY_NAME femrt_library_query
#endif

enum { kFloat = 2 }; /* DLPack kDLFloat */
enum { kInt = 0 };   /* DLPack kDLInt */

static const femrt_memref *arg(void *const *args, int i) {
  return (const femrt_memref *)args[i];
}

static int sameShape2(const femrt_memref *a, const femrt_memref *b) {
  return a->dims[0] == b->dims[0] && a->dims[1] == b->dims[1];
}

/*--- axpy -----------------------------------------------------------------*/

static int axpyPrepare(void *const *args, int64_t grid[3], char *err,
                       size_t errLen) {
  const femrt_memref *x = arg(args, 1), *y = arg(args, 2), *out = arg(args, 3);
  if (!sameShape2(x, y)) {
    snprintf(err, errLen,
             "argument 'y' has shape (%lld, %lld) but 'x' has shape "
             "(%lld, %lld)",
             (long long)y->dims[0], (long long)y->dims[1],
             (long long)x->dims[0], (long long)x->dims[1]);
    return 1;
  }
  if (!sameShape2(x, out)) {
    snprintf(err, errLen,
             "argument 'out' has shape (%lld, %lld) but 'x' has shape "
             "(%lld, %lld)",
             (long long)out->dims[0], (long long)out->dims[1],
             (long long)x->dims[0], (long long)x->dims[1]);
    return 1;
  }
  grid[0] = (x->dims[1] + 3) / 4;
  grid[1] = x->dims[0];
  grid[2] = 1;
  return 0;
}

static void axpyWorkgroup(void *const *args, int64_t bx, int64_t row,
                          int64_t z) {
  (void)z;
  const femrt_memref *alpha = arg(args, 0), *x = arg(args, 1),
                     *y = arg(args, 2), *out = arg(args, 3);
  float a = ((const float *)alpha->aligned)[alpha->offset];
  int64_t n = x->dims[1];
  int64_t end = (bx + 1) * 4 < n ? (bx + 1) * 4 : n;
  for (int64_t col = bx * 4; col < end; ++col) {
    float xv = ((const float *)x->aligned)[x->offset + row * x->dims[2] +
                                           col * x->dims[3]];
    float yv = ((const float *)y->aligned)[y->offset + row * y->dims[2] +
                                           col * y->dims[3]];
    ((float *)out->aligned)[out->offset + row * out->dims[2] +
                            col * out->dims[3]] = a * xv + yv;
  }
}

static const femrt_arg_info axpyArgs[] = {
    {"alpha", "", kFloat, 32, FEMRT_ARG_INPUT, 0, {0}},
    {"x", "M,N", kFloat, 32, FEMRT_ARG_INPUT, 2, {-1, -1}},
    {"y", "M,N", kFloat, 32, FEMRT_ARG_INPUT, 2, {-1, -1}},
    {"out", "M,N", kFloat, 32, FEMRT_ARG_OUTPUT, 2, {-1, -1}},
};

/*--- touch ----------------------------------------------------------------*/

static int touchPrepare(void *const *args, int64_t grid[3], char *err,
                        size_t errLen) {
  (void)err;
  (void)errLen;
  const femrt_memref *hits = arg(args, 0);
  grid[0] = hits->dims[2];
  grid[1] = hits->dims[1];
  grid[2] = hits->dims[0];
  return 0;
}

static void touchWorkgroup(void *const *args, int64_t x, int64_t y,
                           int64_t z) {
  const femrt_memref *hits = arg(args, 0);
  int32_t *data = (int32_t *)hits->aligned + hits->offset;
  data[z * hits->dims[3] + y * hits->dims[4] + x * hits->dims[5]] += 1;
}

static const femrt_arg_info touchArgs[] = {
    {"hits", "Z,Y,X", kInt, 32, FEMRT_ARG_OUTPUT, 3, {-1, -1, -1}},
};

/*--- copy_f16 -------------------------------------------------------------*/

static int copyPrepare(void *const *args, int64_t grid[3], char *err,
                       size_t errLen) {
  const femrt_memref *q = arg(args, 0), *a = arg(args, 1), *b = arg(args, 2);
  if (!sameShape2(q, a) || !sameShape2(q, b)) {
    snprintf(err, errLen, "outputs 'a' and 'b' must have the shape of 'q'");
    return 1;
  }
  grid[0] = q->dims[0];
  grid[1] = 1;
  grid[2] = 1;
  return 0;
}

static void copyWorkgroup(void *const *args, int64_t t, int64_t y,
                          int64_t z) {
  (void)y;
  (void)z;
  const femrt_memref *q = arg(args, 0), *a = arg(args, 1), *b = arg(args, 2);
  const uint16_t *src = (const uint16_t *)q->aligned + q->offset + t * 8;
  memcpy((uint16_t *)a->aligned + a->offset + t * 8, src, 8 * sizeof(uint16_t));
  memcpy((uint16_t *)b->aligned + b->offset + t * 8, src, 8 * sizeof(uint16_t));
}

static const femrt_arg_info copyArgs[] = {
    {"q", "T,dk", kFloat, 16, FEMRT_ARG_INPUT, 2, {-1, 8}},
    {"a", "T,dk", kFloat, 16, FEMRT_ARG_OUTPUT, 2, {-1, 8}},
    {"b", "T,dk", kFloat, 16, FEMRT_ARG_OUTPUT, 2, {-1, 8}},
};

/*--- the library ----------------------------------------------------------*/

#ifdef FAKE_ABI_V1
/* The version 1 tables, as kernel_abi.h defined them then. */
typedef struct v1_kernel_info {
  const char *name;
  int32_t num_args;
  const femrt_arg_info *args;
  femrt_prepare_fn prepare;
  femrt_workgroup_fn workgroup;
  const char *description;
} v1_kernel_info;
typedef struct v1_kernel_library {
  uint32_t abi_version;
  uint32_t struct_size;
  const char *producer;
  const char *target;
  int32_t num_kernels;
  const v1_kernel_info *kernels;
} v1_kernel_library;

static const v1_kernel_info kernels[] = {
    {"axpy", 4, axpyArgs, axpyPrepare, axpyWorkgroup,
     "prior=softmax causal=1 layout=bthd mask=0 cap=40 eps=1e-06"},
};
static const v1_kernel_library v1library = {
    1u, sizeof(v1_kernel_library), "femc 0.1.0 (kernel ABI 1)", "host:test",
    1, kernels};
#define library (*(const femrt_kernel_library *)&v1library)
#else
static const femrt_kernel_info kernels[] = {
    {"axpy", 4, axpyArgs, axpyPrepare, axpyWorkgroup,
     "out = alpha * x + y, 4 columns per workgroup", NULL},
    {"touch", 1, touchArgs, touchPrepare, touchWorkgroup,
     "hits[z][y][x] += 1 for every workgroup", NULL},
    {"copy_f16", 3, copyArgs, copyPrepare, copyWorkgroup, NULL, NULL},
};

static const femrt_kernel_library library = {
    FAKE_ABI_VERSION,
    sizeof(femrt_kernel_library),
    "fake_kernels 1.0",
    "host:test",
    (int32_t)(sizeof(kernels) / sizeof(kernels[0])),
    sizeof(femrt_kernel_info),
    kernels,
};
#endif

#ifdef FAKE_NEEDS_ASAN
/* Resolved when the library is loaded (a data relocation), as in a glue
 * compiled with -fsanitize=address. */
extern int __asan_option_detect_stack_use_after_return;
int fake_kernels_asan_flag(void) {
  return __asan_option_detect_stack_use_after_return;
}
#endif

#ifndef FAKE_OMIT_QUERY
#if defined(__GNUC__)
__attribute__((visibility("default")))
#endif
const femrt_kernel_library *
FAKE_QUERY_NAME(void) {
  return &library;
}
#else
/* Something to export, so that the library is a valid shared object. */
int fake_kernels_without_query(void) { return library.num_kernels; }
#endif
