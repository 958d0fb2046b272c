/*===- dlpack_compat_layout.c - The layout of femrt's fallback DLTensor ---===*
 *
 * Compiled with FEMRT_DLPACK_FORCE_COMPAT, so that femrt/dlpack_compat.h
 * uses its own definitions even where <dlpack/dlpack.h> exists; the test
 * compares these numbers with the system header's.
 *===----------------------------------------------------------------------===*/
#define FEMRT_DLPACK_FORCE_COMPAT 1
#include "femrt/femrt.h"

#ifndef FEMRT_DLPACK_USING_COMPAT
#error "dlpack_compat.h did not use its fallback definitions"
#endif

#include <stddef.h>

const size_t femrt_compat_dltensor_layout[] = {
    sizeof(DLTensor),
    offsetof(DLTensor, data),
    offsetof(DLTensor, device),
    offsetof(DLTensor, ndim),
    offsetof(DLTensor, dtype),
    offsetof(DLTensor, shape),
    offsetof(DLTensor, strides),
    offsetof(DLTensor, byte_offset),
    sizeof(DLDevice),
    sizeof(DLDataType),
    offsetof(DLDataType, bits),
    offsetof(DLDataType, lanes),
    (size_t)kDLCPU,
    (size_t)kDLCUDA,
    (size_t)kDLCUDAHost,
    (size_t)kDLCUDAManaged,
    (size_t)kDLFloat,
    (size_t)kDLBfloat,
};
const size_t femrt_compat_dltensor_layout_size =
    sizeof(femrt_compat_dltensor_layout) / sizeof(size_t);
