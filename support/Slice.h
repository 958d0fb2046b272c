//===- Slice.h - a range of positions along one axis of a tensor -*- C++ -*-===//
//
// Part of the femc project.
//
//===----------------------------------------------------------------------===//
///
/// \file
/// Positions [t0, t1) of a row-major tensor along one axis, for the tests
/// and tools that run a sequence as segments (docs/semantics.md,
/// "Segments").
///
//===----------------------------------------------------------------------===//
#ifndef FEMC_SUPPORT_SLICE_H
#define FEMC_SUPPORT_SLICE_H

#include <cstdint>
#include <vector>

namespace femc {

/// Positions [t0, t1) of `data` (row-major, of `shape`) along `axis`; all
/// of `data` when `axis` is negative (a tensor without a position axis).
template <typename E>
std::vector<E> sliceAxis(const std::vector<E> &data,
                         const std::vector<int64_t> &shape, int axis,
                         int64_t t0, int64_t t1) {
  if (axis < 0)
    return data;
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < axis; ++d)
    outer *= shape[d];
  for (size_t d = axis + 1; d < shape.size(); ++d)
    inner *= shape[d];
  std::vector<E> out;
  out.reserve(static_cast<size_t>(outer * (t1 - t0) * inner));
  for (int64_t o = 0; o < outer; ++o)
    out.insert(out.end(), data.begin() + (o * shape[axis] + t0) * inner,
               data.begin() + (o * shape[axis] + t1) * inner);
  return out;
}

} // namespace femc

#endif // FEMC_SUPPORT_SLICE_H
