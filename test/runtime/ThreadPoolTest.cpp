//===- ThreadPoolTest.cpp - femc::rt::ThreadPool --------------------------===//

#include "runtime/src/ThreadPool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <set>
#include <stdexcept>
#include <vector>

using femc::rt::ThreadPool;

namespace {

class ThreadPoolSizes : public ::testing::TestWithParam<int> {};

TEST_P(ThreadPoolSizes, runsEveryIterationExactlyOnce) {
  ThreadPool pool(GetParam());
  EXPECT_EQ(pool.getNumThreads(), GetParam());
  for (int64_t n : {0, 1, 2, 5, 7, 64, 1000, 10007}) {
    std::vector<std::atomic<int>> counts(static_cast<size_t>(n));
    pool.parallelFor(n, [&](int64_t i) { counts[i].fetch_add(1); });
    for (int64_t i = 0; i < n; ++i)
      ASSERT_EQ(counts[i].load(), 1) << "n=" << n << " i=" << i;
  }
}

TEST_P(ThreadPoolSizes, usesAtMostItsThreadsAndIncludesTheCaller) {
  int numThreads = GetParam();
  ThreadPool pool(numThreads);
  std::mutex mutex;
  std::set<std::thread::id> seen;
  std::atomic<bool> callerRan{false};
  std::thread::id caller = std::this_thread::get_id();
  pool.parallelFor(2000, [&](int64_t) {
    std::lock_guard<std::mutex> lock(mutex);
    seen.insert(std::this_thread::get_id());
    if (std::this_thread::get_id() == caller)
      callerRan = true;
  });
  EXPECT_LE(static_cast<int>(seen.size()), numThreads);
  EXPECT_GE(seen.size(), 1u);
  // The caller takes part unless the workers finished everything first;
  // with one thread it must have run everything.
  if (numThreads == 1) {
    EXPECT_TRUE(callerRan);
  }
}

TEST_P(ThreadPoolSizes, maxThreadsLimitsParticipants) {
  ThreadPool pool(GetParam());
  std::mutex mutex;
  std::set<std::thread::id> seen;
  pool.parallelFor(
      500,
      [&](int64_t) {
        std::lock_guard<std::mutex> lock(mutex);
        seen.insert(std::this_thread::get_id());
      },
      /*maxThreads=*/1);
  EXPECT_EQ(seen.size(), 1u);
  EXPECT_EQ(*seen.begin(), std::this_thread::get_id());
}

INSTANTIATE_TEST_SUITE_P(Threads, ThreadPoolSizes, ::testing::Values(1, 2, 7));

TEST(ThreadPool, defaultIsHardwareConcurrency) {
  ThreadPool pool;
  unsigned hw = std::thread::hardware_concurrency();
  EXPECT_EQ(pool.getNumThreads(), hw == 0 ? 1 : static_cast<int>(hw));
  EXPECT_EQ(ThreadPool::defaultNumThreads(), pool.getNumThreads());
}

TEST(ThreadPool, setNumThreadsResizes) {
  ThreadPool pool(2);
  for (int n : {5, 1, 3, 3}) {
    pool.setNumThreads(n);
    EXPECT_EQ(pool.getNumThreads(), n);
    std::atomic<int64_t> sum{0};
    pool.parallelFor(100, [&](int64_t i) { sum += i; });
    EXPECT_EQ(sum.load(), 4950);
  }
  pool.setNumThreads(0);
  EXPECT_EQ(pool.getNumThreads(), ThreadPool::defaultNumThreads());
}

TEST(ThreadPool, exceptionPropagatesAfterOthersFinish) {
  ThreadPool pool(4);
  std::atomic<int> running{0};
  try {
    pool.parallelFor(1000, [&](int64_t i) {
      ++running;
      if (i == 17) {
        --running;
        throw std::runtime_error("boom at 17");
      }
      --running;
    });
    FAIL() << "expected an exception";
  } catch (const std::runtime_error &e) {
    EXPECT_STREQ(e.what(), "boom at 17");
  }
  EXPECT_EQ(running.load(), 0);
  // The pool still works.
  std::atomic<int> count{0};
  pool.parallelFor(10, [&](int64_t) { ++count; });
  EXPECT_EQ(count.load(), 10);
}

TEST(ThreadPool, nestedLoopRunsInline) {
  ThreadPool pool(3);
  std::atomic<int> count{0};
  pool.parallelFor(8, [&](int64_t) {
    pool.parallelFor(8, [&](int64_t) { ++count; });
  });
  EXPECT_EQ(count.load(), 64);
  EXPECT_THROW(pool.parallelFor(1, [&](int64_t) { pool.setNumThreads(2); }),
               std::logic_error);
}

TEST(ThreadPool, concurrentCallersAreSerialized) {
  ThreadPool pool(3);
  constexpr int kCallers = 4;
  // Iterations of caller c's loop that are running right now.
  std::atomic<int> active[kCallers] = {};
  std::atomic<int> overlaps{0};
  std::atomic<int64_t> total{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < kCallers; ++c) {
    callers.emplace_back([&, c] {
      for (int round = 0; round < 50; ++round) {
        pool.parallelFor(64, [&](int64_t) {
          ++active[c];
          for (int other = 0; other < kCallers; ++other)
            if (other != c && active[other].load() != 0)
              ++overlaps;
          total += 1;
          --active[c];
        });
      }
    });
  }
  for (std::thread &caller : callers)
    caller.join();
  EXPECT_EQ(total.load(), kCallers * 50 * 64);
  EXPECT_EQ(overlaps.load(), 0);
}

TEST(ThreadPool, destructionJoinsWorkers) {
  for (int i = 0; i < 20; ++i) {
    ThreadPool pool(4);
    std::atomic<int> count{0};
    pool.parallelFor(i, [&](int64_t) { ++count; });
    EXPECT_EQ(count.load(), i);
  }
}

} // namespace
