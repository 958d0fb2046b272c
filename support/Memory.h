//===- Memory.h - buffer sizes against the machine's memory ------*- C++ -*-===//
//
// Header-only helpers that fem-run and fem-tune use to refuse a shape whose
// buffers cannot fit before allocating them (an allocation that the kernel's
// overcommit grants and the first touch cannot back ends in the OOM killer,
// not in std::bad_alloc).
//
//===----------------------------------------------------------------------===//

#ifndef FEMC_SUPPORT_MEMORY_H
#define FEMC_SUPPORT_MEMORY_H

#include <cstdint>
#include <optional>
#include <unistd.h>

namespace femc::tune {

/// a * b, or std::nullopt when it overflows int64 (a, b >= 0).
inline std::optional<int64_t> checkedMul(int64_t a, int64_t b) {
  int64_t r = 0;
  if (__builtin_mul_overflow(a, b, &r))
    return std::nullopt;
  return r;
}

/// The machine's physical memory in bytes, or 0 when unknown.
inline uint64_t physicalMemory() {
  long pages = sysconf(_SC_PHYS_PAGES), pageSize = sysconf(_SC_PAGESIZE);
  if (pages <= 0 || pageSize <= 0)
    return 0;
  return static_cast<uint64_t>(pages) * static_cast<uint64_t>(pageSize);
}

} // namespace femc::tune

#endif // FEMC_SUPPORT_MEMORY_H
