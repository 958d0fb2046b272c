//===- ScratchCache.cpp - Reused scratch blocks of a module's layers ------===//

#include "runtime/src/ScratchCache.h"

#include <cstdlib>
#include <limits>
#include <sys/mman.h>

namespace femc::rt {

namespace {

constexpr size_t kAlign = 64;
constexpr size_t kGranule = size_t(64) << 10;

size_t roundUp(size_t bytes, size_t to) noexcept {
  if (bytes > std::numeric_limits<size_t>::max() - (to - 1))
    return 0;
  return (bytes + to - 1) / to * to;
}

/// A block of `size` bytes (a rounded size), aligned to 64, or to 2 MiB and
/// advised as huge pages from kHugeBytes on.
void *systemAllocate(size_t size) noexcept {
  size_t align = size >= ScratchCache::kHugeBytes ? ScratchCache::kHugeBytes
                                                  : kAlign;
  void *block = nullptr;
  if (posix_memalign(&block, align, size) != 0)
    return nullptr;
#ifdef MADV_HUGEPAGE
  // Advice only: without transparent huge pages the block stays as it is.
  if (align == ScratchCache::kHugeBytes)
    (void)madvise(block, size, MADV_HUGEPAGE);
#endif
  return block;
}

} // namespace

size_t ScratchCache::roundedSize(size_t bytes) noexcept {
  if (bytes < kMinCachedBytes)
    return bytes;
  return roundUp(bytes, bytes >= kHugeBytes ? kHugeBytes : kGranule);
}

void *ScratchCache::allocate(size_t bytes) noexcept {
  if (bytes < kMinCachedBytes) {
    void *block = nullptr;
    if (posix_memalign(&block, kAlign, bytes ? bytes : 1) != 0)
      return nullptr;
    return block;
  }
  size_t size = roundedSize(bytes);
  if (size == 0)
    return nullptr;
  std::lock_guard<std::mutex> lock(mutex);
  try {
    auto it = cached.lower_bound(size);
    if (it != cached.end() && it->first / 2 <= size) {
      void *block = it->second;
      outstanding.emplace(block, it->first);
      cachedBytes -= it->first;
      cached.erase(it);
      ++reused;
      return block;
    }
    void *block = systemAllocate(size);
    if (block) {
      ++fresh;
      try {
        outstanding.emplace(block, size);
      } catch (...) {
        std::free(block);
        throw;
      }
    }
    return block;
  } catch (...) {
    return nullptr; // no memory for the bookkeeping
  }
}

void ScratchCache::release(void *block, size_t bytes) noexcept {
  if (!block)
    return;
  if (bytes >= kMinCachedBytes) {
    std::lock_guard<std::mutex> lock(mutex);
    auto it = outstanding.find(block);
    if (it != outstanding.end()) {
      // The size the block was made with: a reused block may be larger
      // than the request it served.
      size_t size = it->second;
      outstanding.erase(it);
      if (cachedBytes + size <= limit) {
        try {
          cached.emplace(size, block);
          cachedBytes += size;
          return;
        } catch (...) {
          // No memory for the map node: free the block below.
        }
      }
    }
  }
  std::free(block);
}

void ScratchCache::trim() noexcept {
  std::multimap<size_t, void *> blocks;
  {
    std::lock_guard<std::mutex> lock(mutex);
    blocks.swap(cached);
    cachedBytes = 0;
  }
  for (auto &[size, block] : blocks)
    std::free(block);
}

ScratchCache::Stats ScratchCache::stats() const {
  std::lock_guard<std::mutex> lock(mutex);
  Stats s;
  s.cachedBytes = cachedBytes;
  s.cachedBlocks = cached.size();
  s.outstandingBlocks = outstanding.size();
  s.reused = reused;
  s.fresh = fresh;
  return s;
}

void *ScratchCache::hostAlloc(void *scratch, uint64_t bytes) noexcept {
  if (!scratch || bytes > std::numeric_limits<size_t>::max())
    return nullptr;
  return static_cast<ScratchCache *>(scratch)->allocate(
      static_cast<size_t>(bytes));
}

void ScratchCache::hostFree(void *scratch, void *block,
                            uint64_t bytes) noexcept {
  if (!scratch) {
    std::free(block);
    return;
  }
  static_cast<ScratchCache *>(scratch)->release(block,
                                                static_cast<size_t>(bytes));
}

} // namespace femc::rt
