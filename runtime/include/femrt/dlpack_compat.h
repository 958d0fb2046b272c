/*===- femrt/dlpack_compat.h - DLPack tensor types for libfemrt -----------===*
 *
 * libfemrt describes tensors as DLPack `DLTensor`s. This header makes the
 * DLPack types available in this order of preference:
 *
 *  1. a DLPack header that is already included (any copy that uses the
 *     official include guard `DLPACK_DLPACK_H_`, e.g. PyTorch's or TVM's);
 *  2. the system header <dlpack/dlpack.h> when the compiler can find it
 *     (Debian/Ubuntu: libdlpack-dev; conda: dlpack);
 *  3. otherwise the definitions below, written from the DLPack specification
 *     (https://dmlc.github.io/dlpack/latest/c_api.html). They have the same
 *     layout as every DLPack release from 0.6 through 1.x (the `DLTensor`,
 *     `DLDevice` and `DLDataType` structs have not changed since 0.4), so
 *     tensors built against either definition are interchangeable.
 *
 * Define FEMRT_DLPACK_FORCE_COMPAT before including this header to skip (2);
 * the runtime's tests use it to check that the fallback layout matches the
 * system header.
 *
 * The fallback also defines DLPACK_DLPACK_H_, so that a later
 * `#include <dlpack/dlpack.h>` in the same translation unit is a no-op rather
 * than a redefinition error.
 *===----------------------------------------------------------------------===*/
#ifndef FEMRT_DLPACK_COMPAT_H
#define FEMRT_DLPACK_COMPAT_H

#if !defined(DLPACK_DLPACK_H_) && !defined(FEMRT_DLPACK_FORCE_COMPAT) &&       \
    defined(__has_include)
#if __has_include(<dlpack/dlpack.h>)
#include <dlpack/dlpack.h>
#endif
#endif

#ifndef DLPACK_DLPACK_H_
#define DLPACK_DLPACK_H_
/* Marks that the types below come from femrt's fallback, not from DLPack. */
#define FEMRT_DLPACK_USING_COMPAT 1

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Where a tensor's memory lives. Only the values libfemrt and its users are
 * likely to meet are listed; any int value may be stored. */
typedef enum {
  kDLCPU = 1,         /* ordinary host memory */
  kDLCUDA = 2,        /* CUDA device memory */
  kDLCUDAHost = 3,    /* pinned host memory (cudaMallocHost) */
  kDLOpenCL = 4,
  kDLVulkan = 7,
  kDLMetal = 8,
  kDLVPI = 9,
  kDLROCM = 10,
  kDLROCMHost = 11,
  kDLExtDev = 12,
  kDLCUDAManaged = 13 /* CUDA managed (unified) memory */
} DLDeviceType;

typedef struct {
  DLDeviceType device_type;
  int device_id; /* 0 for host memory */
} DLDevice;

typedef enum {
  kDLInt = 0U,
  kDLUInt = 1U,
  kDLFloat = 2U,
  kDLOpaqueHandle = 3U,
  kDLBfloat = 4U,
  kDLComplex = 5U
} DLDataTypeCode;

typedef struct {
  uint8_t code;   /* a DLDataTypeCode value */
  uint8_t bits;   /* bits per lane: 8, 16, 32, 64 */
  uint16_t lanes; /* 1 for scalars */
} DLDataType;

/* A view of a tensor; does not own its memory. */
typedef struct {
  void *data;           /* base pointer (host or device address) */
  DLDevice device;
  int ndim;
  DLDataType dtype;
  int64_t *shape;       /* ndim extents */
  int64_t *strides;     /* ndim strides in elements, or NULL = compact
                           row-major */
  uint64_t byte_offset; /* bytes from data to the first element */
} DLTensor;

typedef struct DLManagedTensor {
  DLTensor dl_tensor;
  void *manager_ctx;
  void (*deleter)(struct DLManagedTensor *self);
} DLManagedTensor;

#ifdef __cplusplus
}
#endif
#endif /* DLPACK_DLPACK_H_ */

/* DLPack 0.6 has no kDLBool (added in 0.8); femrt names the code itself. */
#define FEMRT_DLPACK_CODE_BOOL 6

#endif /* FEMRT_DLPACK_COMPAT_H */
