/*===- femrt/kernel_abi.h - Contract between femc libraries and libfemrt ---===*
 *
 * A femc-built kernel library (a shared object or a static object) exports one
 * function, `femrt_library_query`, that returns a pointer to a constant
 * `femrt_kernel_library`. The runtime checks `abi_version` and `struct_size`
 * before touching anything else, so a library built for another ABI is refused
 * with a clear message instead of being misread.
 *
 * Version 2 added the structured facts of each kernel (`femrt_kernel_traits`:
 * prior, causal flag, layout, mask, scale/cap/eps, tiles, workgroup grid) and
 * `kernel_info_size`; the description string is for humans only.
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

#define FEMRT_KERNEL_ABI_VERSION 2u
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

/* Prior kinds, in the order of femc's dialect (PriorKind) and prior table
 * (dialect/Priors.h); the femc driver static_asserts that they agree. */
typedef enum femrt_prior_kind {
  FEMRT_PRIOR_NONE = -1, /* not a FEM read: a whole layer, or hand-written */
  FEMRT_PRIOR_SOFTMAX = 0,
  FEMRT_PRIOR_LINEAR = 1,
  FEMRT_PRIOR_GLA = 2,
  FEMRT_PRIOR_AFT = 3,
  FEMRT_PRIOR_SSM = 4
} femrt_prior_kind;
#define FEMRT_NUM_PRIORS 5

/* Memory layout of the (B, T, H, d) operands. */
typedef enum femrt_layout {
  FEMRT_LAYOUT_NONE = -1, /* not a FEM read */
  FEMRT_LAYOUT_BTHD = 0,
  FEMRT_LAYOUT_BHTD = 1
} femrt_layout;

/* The named extents of a FEM read, in the order of dialect/Priors.h's
 * kExtents (static_asserted by the driver): batch, queries, keys, query
 * heads, key/value heads, query/key width, value width, H*dv, ssm state. */
typedef enum femrt_extent {
  FEMRT_EXTENT_ONE = -1, /* a grid axis of exactly one workgroup */
  FEMRT_EXTENT_B = 0,
  FEMRT_EXTENT_T = 1,
  FEMRT_EXTENT_S = 2,
  FEMRT_EXTENT_H = 3,
  FEMRT_EXTENT_HKV = 4,
  FEMRT_EXTENT_DK = 5,
  FEMRT_EXTENT_DV = 6,
  FEMRT_EXTENT_E = 7,
  FEMRT_EXTENT_N = 8
} femrt_extent;
#define FEMRT_NUM_EXTENTS 9

/* Bits of femrt_kernel_traits.flags. */
#define FEMRT_KERNEL_CAUSAL 0x1u    /* the read is causal (keys on T) */
#define FEMRT_KERNEL_MASK 0x2u      /* takes a key-padding mask argument */
#define FEMRT_KERNEL_HAS_SCALE 0x4u /* `scale` holds the scale attribute */
#define FEMRT_KERNEL_LAYER 0x8u     /* a whole layer (prior NONE) */
#define FEMRT_KERNEL_KNOWN_FLAGS 0xfu

/* One axis of the workgroup grid, as fem-tile stamped it (fem.grid):
 * ceil(extent / divisor) workgroups, or one when extent is FEMRT_EXTENT_ONE. */
typedef struct femrt_grid_axis {
  int32_t extent;  /* femrt_extent */
  int32_t reserved;/* 0 */
  int64_t divisor; /* >= 1 */
} femrt_grid_axis;

/* The structured facts of a kernel (ABI version 2). libfemrt requires
 * struct_size >= sizeof(femrt_kernel_traits) of version 2 (a newer producer
 * may append fields), a known prior and layout (NONE exactly for layers and
 * kernels that are not FEM reads), only known flags, finite cap and scale,
 * a finite eps > 0 for FEM reads, tiles >= 0, and grid axes with a known
 * extent and divisor >= 1. */
typedef struct femrt_kernel_traits {
  uint32_t struct_size; /* sizeof(femrt_kernel_traits) of the producer */
  uint32_t flags;       /* FEMRT_KERNEL_* bits */
  int32_t prior;        /* femrt_prior_kind */
  int32_t layout;       /* femrt_layout */
  double scale;         /* the logit scale when FEMRT_KERNEL_HAS_SCALE, else 0
                           (the prior's default, 1/sqrt(dk)) */
  double cap;           /* the clip of the free-energy logits */
  double eps;           /* the free energy's epsilon */
  int64_t tile_q, tile_k, vec; /* #fem.tiles (0 for a layer) */
  femrt_grid_axis grid[3];     /* x, y, z */
} femrt_kernel_traits;

struct femrt_host; /* below: what libfemrt lends a kernel library */

typedef struct femrt_kernel_info {
  const char *name;           /* the func.func symbol in the model */
  int32_t num_args;
  const femrt_arg_info *args; /* inputs first, outputs last */
  femrt_prepare_fn prepare;   /* may be NULL: grid (1, 1, 1) */
  femrt_workgroup_fn workgroup; /* never NULL */
  /* For humans only, e.g. "prior=softmax causal=1 layout=bthd mask=0 cap=40
   * eps=1e-06 tile_q=64 tile_k=64 vec=8"; programs read `traits`. */
  const char *description;
  const femrt_kernel_traits *traits; /* NULL: a kernel with no FEM facts */
  /* Appended after ABI 2's first release (read only when kernel_info_size
   * covers it; NULL or absent: never split). The chunk-level parallel
   * prefix of a scan kernel: called after prepare with its grid; it may run
   * the kernel itself as segments of the sequence on host->parallel_for
   * (docs/architecture.md, "Both cores at B = H = 1") and returns the
   * number of segments it ran (>= 2), or 0 when it declined (the caller
   * then runs the grid). */
  int (*split)(void *const *args, const int64_t grid[3],
               const struct femrt_host *host);
} femrt_kernel_info;

/* The size of femrt_kernel_info without its optional trailing fields: the
 * least kernel_info_size libfemrt accepts. */
#define FEMRT_KERNEL_INFO_MIN_SIZE \
  (offsetof(femrt_kernel_info, traits) + sizeof(const femrt_kernel_traits *))

/* What libfemrt lends a kernel library while one of its layers runs: a
 * parallel loop on the launch's thread pool. parallel_for(pool, n, body, ctx)
 * calls body(ctx, i) once for each i in [0, n), on the pool's threads (the
 * caller's included), and returns when all have returned; body must not
 * launch kernels. */
typedef struct femrt_host {
  uint32_t struct_size; /* sizeof(femrt_host) of libfemrt */
  uint32_t reserved;    /* 0 */
  void *pool;
  void (*parallel_for)(void *pool, int64_t n,
                       void (*body)(void *ctx, int64_t i), void *ctx);
  /* Appended (read only when struct_size covers it): the threads a
   * parallel_for runs on (the launch's max_threads, else the pool's). */
  int64_t threads;
  /* Appended (read only when struct_size covers them; lent to a layer only):
   * scratch memory for the layer's intermediates. scratch_alloc(scratch, n)
   * returns a block of at least n bytes aligned to 64, or NULL (the library
   * then uses malloc); scratch_free(scratch, block, n) gives a block back with
   * the n it was asked for. libfemrt keeps the freed blocks of a module for
   * its next launches (bounded) and frees them when the module is destroyed,
   * so repeated launches do not fault in fresh pages. Both are thread-safe.
   * Every block must be given back before the launch returns. */
  void *scratch;
  void *(*scratch_alloc)(void *scratch, uint64_t n);
  void (*scratch_free)(void *scratch, void *block, uint64_t n);
} femrt_host;

/* Binds (host) and unbinds (NULL) the services for the calling thread.
 * libfemrt calls it around a layer's single workgroup, which it then runs on
 * the launching thread; the layer's stages (projections, FEM reads) run
 * their own grids through host->parallel_for. */
typedef void (*femrt_bind_host_fn)(const femrt_host *host);

typedef struct femrt_kernel_library {
  uint32_t abi_version;       /* FEMRT_KERNEL_ABI_VERSION of the producer */
  uint32_t struct_size;       /* sizeof(femrt_kernel_library) of the producer;
                                 libfemrt accepts >= its own sizeof (a newer
                                 producer may append fields) */
  const char *producer;       /* e.g. "femc 0.1.0" */
  const char *target;         /* e.g. "host:znver3" or "x86-64-v3 (AVX2, FMA)" */
  int32_t num_kernels;
  uint32_t kernel_info_size;  /* sizeof(femrt_kernel_info) of the producer:
                                 the stride of `kernels`; libfemrt accepts
                                 >= its own sizeof */
  const femrt_kernel_info *kernels;
  /* Appended after ABI 2's first release, so read only when struct_size
   * covers it; NULL (or absent): layers run their stages serially. */
  femrt_bind_host_fn bind_host;
} femrt_kernel_library;

/* The size of femrt_kernel_library without its optional trailing fields:
 * the least struct_size libfemrt accepts. */
#define FEMRT_KERNEL_LIBRARY_MIN_SIZE \
  (offsetof(femrt_kernel_library, kernels) + sizeof(const femrt_kernel_info *))

typedef const femrt_kernel_library *(*femrt_library_query_fn)(void);

#ifdef __cplusplus
}
#endif
#endif /* FEMRT_KERNEL_ABI_H */
