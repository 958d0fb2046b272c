//===- ScratchCacheTest.cpp - Reused scratch blocks of a module's layers --===//
//
// runtime/src/ScratchCache.h: freed large blocks come back to the next
// request of their size, small ones never stay, the kept total stays within
// the limit, concurrent users never share a block, and trim (and the
// destructor, which the ASan build checks for leaks) frees what is kept.
//
//===----------------------------------------------------------------------===//

#include "runtime/src/ScratchCache.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <limits>
#include <thread>
#include <vector>

using femc::rt::ScratchCache;

namespace {

constexpr size_t MiB = size_t(1) << 20;

bool aligned64(const void *p) {
  return reinterpret_cast<uintptr_t>(p) % 64 == 0;
}

TEST(ScratchCache, aFreedLargeBlockServesTheNextRequestOfItsSize) {
  ScratchCache cache;
  void *a = cache.allocate(4 * MiB + 64);
  ASSERT_NE(a, nullptr);
  EXPECT_TRUE(aligned64(a));
  std::memset(a, 1, 4 * MiB + 64); // the whole block is usable
  cache.release(a, 4 * MiB + 64);
  EXPECT_EQ(cache.stats().cachedBlocks, 1u);
  EXPECT_EQ(cache.stats().cachedBytes, ScratchCache::roundedSize(4 * MiB + 64));
  void *b = cache.allocate(4 * MiB + 64);
  EXPECT_EQ(a, b) << "the kept block was not reused";
  EXPECT_EQ(cache.stats().reused, 1u);
  EXPECT_EQ(cache.stats().fresh, 1u);
  EXPECT_EQ(cache.stats().cachedBlocks, 0u);
  cache.release(b, 4 * MiB + 64);
}

TEST(ScratchCache, sizesRoundUpToGranulesAndHugePages) {
  EXPECT_EQ(ScratchCache::roundedSize(100), 100u); // small: as asked
  EXPECT_EQ(ScratchCache::roundedSize(ScratchCache::kMinCachedBytes + 1),
            size_t(128) << 10);
  EXPECT_EQ(ScratchCache::roundedSize(2 * MiB + 1), 4 * MiB);
  EXPECT_EQ(ScratchCache::roundedSize(std::numeric_limits<size_t>::max()), 0u);
  ScratchCache cache;
  EXPECT_EQ(cache.allocate(std::numeric_limits<size_t>::max()), nullptr);
}

TEST(ScratchCache, aBlockServesRequestsUpToTwiceSmaller) {
  ScratchCache cache;
  void *big = cache.allocate(8 * MiB);
  cache.release(big, 8 * MiB);
  // Far smaller: a fresh block, the big one stays kept.
  void *small = cache.allocate(2 * MiB);
  EXPECT_NE(small, big);
  EXPECT_EQ(cache.stats().cachedBlocks, 1u);
  // Half its size: the kept block.
  void *half = cache.allocate(4 * MiB);
  EXPECT_EQ(half, big);
  // Given back under the size it was made with, not the request's.
  cache.release(half, 4 * MiB);
  EXPECT_EQ(cache.stats().cachedBytes, 8 * MiB);
  cache.release(small, 2 * MiB);
  EXPECT_EQ(cache.stats().cachedBytes, 10 * MiB);
}

TEST(ScratchCache, smallBlocksAreNeverKept) {
  ScratchCache cache;
  void *p = cache.allocate(1000);
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(aligned64(p));
  cache.release(p, 1000);
  void *zero = cache.allocate(0);
  ASSERT_NE(zero, nullptr);
  cache.release(zero, 0);
  EXPECT_EQ(cache.stats().cachedBlocks, 0u);
  EXPECT_EQ(cache.stats().fresh, 0u);
}

TEST(ScratchCache, theKeptTotalStaysWithinTheLimit) {
  ScratchCache cache(6 * MiB);
  void *a = cache.allocate(4 * MiB);
  void *b = cache.allocate(4 * MiB);
  cache.release(a, 4 * MiB);
  cache.release(b, 4 * MiB); // would make 8 MiB: freed instead
  EXPECT_EQ(cache.stats().cachedBlocks, 1u);
  EXPECT_EQ(cache.stats().cachedBytes, 4 * MiB);
}

TEST(ScratchCache, trimFreesEveryKeptBlock) {
  ScratchCache cache;
  std::vector<void *> blocks;
  for (int i = 0; i < 3; ++i)
    blocks.push_back(cache.allocate(MiB));
  for (void *b : blocks)
    cache.release(b, MiB);
  EXPECT_EQ(cache.stats().cachedBlocks, 3u);
  cache.trim();
  EXPECT_EQ(cache.stats().cachedBlocks, 0u);
  EXPECT_EQ(cache.stats().cachedBytes, 0u);
  // Kept blocks left at destruction are freed by the destructor (the ASan
  // build reports a leak otherwise).
  cache.release(cache.allocate(MiB), MiB);
}

TEST(ScratchCache, concurrentUsersNeverShareABlock) {
  ScratchCache cache;
  constexpr int kThreads = 4, kRounds = 200;
  std::vector<std::thread> threads;
  std::vector<int> bad(kThreads, 0);
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (int r = 0; r < kRounds; ++r) {
        size_t bytes = (r % 2 ? 1 : 3) * MiB / 2;
        auto *p = static_cast<unsigned char *>(cache.allocate(bytes));
        if (!p) {
          ++bad[t];
          continue;
        }
        // Another owner of the same block would overwrite the pattern.
        std::memset(p, t + 1, bytes);
        std::this_thread::yield();
        for (size_t i = 0; i < bytes; i += 4096)
          if (p[i] != t + 1) {
            ++bad[t];
            break;
          }
        cache.release(p, bytes);
      }
    });
  for (std::thread &t : threads)
    t.join();
  for (int t = 0; t < kThreads; ++t)
    EXPECT_EQ(bad[t], 0) << "thread " << t;
  ScratchCache::Stats s = cache.stats();
  EXPECT_EQ(s.reused + s.fresh, uint64_t(kThreads) * kRounds);
  EXPECT_GT(s.reused, 0u);
  EXPECT_EQ(s.outstandingBlocks, 0u);
  // At most one block per thread and size was ever needed at once.
  EXPECT_LE(s.cachedBlocks, size_t(2 * kThreads));
}

TEST(ScratchCache, theHostCallbacksReachTheCache) {
  ScratchCache cache;
  void *p = ScratchCache::hostAlloc(&cache, 2 * MiB);
  ASSERT_NE(p, nullptr);
  ScratchCache::hostFree(&cache, p, 2 * MiB);
  EXPECT_EQ(cache.stats().cachedBlocks, 1u);
  EXPECT_EQ(ScratchCache::hostAlloc(nullptr, 2 * MiB), nullptr);
}

} // namespace
