//===- ScratchCache.h - Reused scratch blocks of a module's layers -*- C++ -*-===//
//
// A layer's intermediates (projections, packed weights, the FEM read's
// output) are multi-MiB buffers that the compiled code allocates and frees on
// every call. From malloc, each call maps fresh pages (glibc returns large
// blocks to the system on free) and faults every one of them in again. A
// module keeps its layers' freed blocks here instead and hands them out to
// the next call (femrt_host::scratch_alloc / scratch_free), up to a limit.
//
//===----------------------------------------------------------------------===//
#ifndef FEMRT_SRC_SCRATCHCACHE_H
#define FEMRT_SRC_SCRATCHCACHE_H

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <unordered_map>

namespace femc::rt {

/// Thread-safe. Blocks smaller than kMinCachedBytes come from and go back to
/// the C heap directly (malloc serves those well). Larger ones are rounded
/// up (to 64 KiB, to 2 MiB from 2 MiB on, where they are aligned to 2 MiB
/// and advised as transparent huge pages) and kept on release while the
/// cached total stays within the limit; a request takes the smallest cached
/// block that fits and is at most twice its rounded size. The destructor
/// frees the cached blocks; blocks not given back are the caller's leak.
class ScratchCache {
public:
  static constexpr size_t kMinCachedBytes = size_t(64) << 10;
  static constexpr size_t kHugeBytes = size_t(2) << 20;
  /// The default bound on the bytes kept while unused.
  static constexpr size_t kDefaultLimitBytes = size_t(1) << 30;

  explicit ScratchCache(size_t limitBytes = kDefaultLimitBytes)
      : limit(limitBytes) {}
  ScratchCache(const ScratchCache &) = delete;
  ScratchCache &operator=(const ScratchCache &) = delete;
  ~ScratchCache() { trim(); }

  /// A block of at least `bytes` bytes aligned to 64, or null when the
  /// system has no memory (or `bytes` is too large to round). Never throws.
  void *allocate(size_t bytes) noexcept;
  /// Gives back a block from allocate with the `bytes` it was asked for
  /// (which says whether it is a cacheable one).
  void release(void *block, size_t bytes) noexcept;
  /// Frees every cached block.
  void trim() noexcept;

  struct Stats {
    size_t cachedBytes = 0, cachedBlocks = 0;
    size_t outstandingBlocks = 0; ///< cacheable blocks handed out, not back
    uint64_t reused = 0; ///< allocate calls served from the cache
    uint64_t fresh = 0;  ///< cacheable allocate calls that went to the system
  };
  Stats stats() const;

  /// The size a block of `bytes` is made with (0 when it cannot be rounded).
  static size_t roundedSize(size_t bytes) noexcept;

  /// The femrt_host callbacks (`scratch` is a ScratchCache).
  static void *hostAlloc(void *scratch, uint64_t bytes) noexcept;
  static void hostFree(void *scratch, void *block, uint64_t bytes) noexcept;

private:
  mutable std::mutex mutex;
  std::multimap<size_t, void *> cached; ///< by the size they were made with
  /// Cacheable blocks handed out, with the size each was made with.
  std::unordered_map<void *, size_t> outstanding;
  size_t cachedBytes = 0;
  size_t limit;
  uint64_t reused = 0, fresh = 0;
};

} // namespace femc::rt

#endif // FEMRT_SRC_SCRATCHCACHE_H
