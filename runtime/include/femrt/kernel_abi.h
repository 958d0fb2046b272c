/*===- femrt/kernel_abi.h - Contract between femc libraries and libfemrt ---===*
 *
 * A femc-built kernel library (a shared object or a static object) exports one
 * function, `femrt_library_query`, that returns a pointer to a constant
 * `femrt_kernel_library`. The runtime checks `abi_version` and `struct_size`
 * before touching anything else, so a library built for another ABI is refused
 * with a clear message instead of being misread.
 *
 * Calling convention of generated code:
 *  - every kernel argument is passed as a pointer to an MLIR strided memref
 *    descriptor of the argument's rank (see `femrt_memref`);
 *  - `prepare` validates the shape relations between arguments (e.g. q and k
 *    agree on B and dk) and computes the workgroup grid;
 *  - `workgroup` computes one workgroup (x, y, z) of that grid. Workgroups are
 *    independent: the runtime may run them in any order, on any thread.
 *
 * This header is C only and has no dependency on LLVM/MLIR.
 *===----------------------------------------------------------------------===*/
#ifndef FEMRT_KERNEL_ABI_H
#define FEMRT_KERNEL_ABI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FEMRT_KERNEL_ABI_VERSION 1u
#define FEMRT_MAX_RANK 8
#define FEMRT_LIBRARY_QUERY_SYMBOL "femrt_library_query"

/* The layout of MLIR's `StridedMemRefType<T, R>`: allocated pointer, aligned
 * pointer, offset (elements), then R sizes followed by R strides (elements).
 * A rank-R kernel argument reads only the first 2*R entries of `dims`.
 *
 * As libfemrt fills it (femrt_kernel_launch): `allocated` is the DLTensor's
 * data, `aligned` is data + byte_offset (the first element, aligned to the
 * element size), `offset` is 0, and the strides are the compact row-major
 * ones (tensors with other strides are rejected before the kernel runs; a
 * size-1 dimension gets its compact stride whatever the DLTensor said). */
typedef struct femrt_memref {
  void *allocated;
  void *aligned;
  int64_t offset;
  int64_t dims[2 * FEMRT_MAX_RANK];
} femrt_memref;

/* Roles of kernel arguments. */
enum { FEMRT_ARG_INPUT = 0, FEMRT_ARG_OUTPUT = 1 };

/* One kernel argument as the kernel expects it. dtype uses DLPack's codes
 * (kDLInt = 0, kDLUInt = 1, kDLFloat = 2, kDLBfloat = 4, kDLBool = 6).
 * libfemrt requires: a non-empty name unique within the kernel, rank 0 to
 * FEMRT_MAX_RANK, dtype_bits a positive multiple of 8, shape[d] >= -1, and
 * inputs before outputs; dim_names may be NULL. */
typedef struct femrt_arg_info {
  const char *name;     /* "q", "k", "v", "beta_raw", ..., "out" */
  const char *dim_names;/* comma separated, e.g. "B,T,H,dk" (for messages) */
  uint8_t dtype_code;
  uint8_t dtype_bits;
  uint16_t role;        /* FEMRT_ARG_INPUT or FEMRT_ARG_OUTPUT */
  int32_t rank;
  int64_t shape[FEMRT_MAX_RANK]; /* -1 where the extent is dynamic */
} femrt_arg_info;

/* Checks the relations between the arguments' shapes and computes the grid.
 * Returns 0 on success; otherwise writes a NUL-terminated message naming the
 * offending argument into err (at most err_len bytes) and returns non-zero.
 *
 * libfemrt calls it after its own per-argument checks, with grid preset to
 * (1, 1, 1) and err_len 1024; a non-zero return becomes
 * FEMRT_ERROR_SHAPE_MISMATCH with the message "kernel '<name>': <err>". A
 * NULL prepare means a grid of one workgroup. Negative extents are an
 * internal error. */
typedef int (*femrt_prepare_fn)(void *const *args, int64_t grid[3], char *err,
                                size_t err_len);
/* Computes workgroup (x, y, z). `args[i]` points to a femrt_memref.
 * libfemrt runs the grid's workgroups on its thread pool in no particular
 * order (the flattened index is x + gx * (y + gy * z)), each exactly once,
 * and returns from the launch when all have finished. */
typedef void (*femrt_workgroup_fn)(void *const *args, int64_t x, int64_t y,
                                   int64_t z);

typedef struct femrt_kernel_info {
  const char *name;           /* the func.func symbol in the model */
  int32_t num_args;
  const femrt_arg_info *args; /* inputs first, outputs last */
  femrt_prepare_fn prepare;   /* may be NULL: grid (1, 1, 1) */
  femrt_workgroup_fn workgroup; /* never NULL */
  const char *description;    /* e.g. "prior=softmax causal=1 layout=bthd mask=0 cap=40 eps=1e-06 tile_q=64 tile_k=64 vec=8" */
} femrt_kernel_info;

typedef struct femrt_kernel_library {
  uint32_t abi_version;       /* FEMRT_KERNEL_ABI_VERSION of the producer */
  uint32_t struct_size;       /* sizeof(femrt_kernel_library) of the producer;
                                 libfemrt accepts >= its own sizeof (a newer
                                 producer may append fields) */
  const char *producer;       /* e.g. "femc 0.1.0" */
  const char *target;         /* e.g. "host:znver3" or "x86-64-v3 (AVX2, FMA)" */
  int32_t num_kernels;
  const femrt_kernel_info *kernels;
} femrt_kernel_library;

typedef const femrt_kernel_library *(*femrt_library_query_fn)(void);

#ifdef __cplusplus
}
#endif
#endif /* FEMRT_KERNEL_ABI_H */
