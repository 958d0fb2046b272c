//===- ThreadPool.cpp - Fixed-size pool running parallel loops ------------===//

#include "runtime/src/ThreadPool.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <limits>
#include <stdexcept>
#include <string>
#include <system_error>

namespace femc::rt {

namespace {
/// The pool whose loop iteration the current thread is running (workers: the
/// pool they belong to), to run nested loops inline.
thread_local const ThreadPool *currentPool = nullptr;

/// Sets currentPool for a scope.
class CurrentPoolScope {
public:
  explicit CurrentPoolScope(const ThreadPool *pool) : saved(currentPool) {
    currentPool = pool;
  }
  ~CurrentPoolScope() { currentPool = saved; }

private:
  const ThreadPool *saved;
};
} // namespace

/// One parallel loop; lives on the stack of parallelFor.
struct ThreadPool::Loop {
  Loop(int64_t n, FunctionRef<void(int64_t)> body) : n(n), body(body) {}

  const int64_t n;
  FunctionRef<void(int64_t)> body;
  std::atomic<int64_t> next{0};
  std::mutex errorMutex;
  std::exception_ptr error;
};

/// The number of workers for `numThreads` threads (<= 0: the default).
static int workersFor(int numThreads) {
  if (numThreads > ThreadPool::kMaxThreads)
    throw std::invalid_argument(
        "ThreadPool: " + std::to_string(numThreads) +
        " threads requested; at most " +
        std::to_string(ThreadPool::kMaxThreads) + " are supported");
  return (numThreads <= 0 ? ThreadPool::defaultNumThreads() : numThreads) - 1;
}

ThreadPool::ThreadPool(int numThreads) {
  // On failure resizeWorkers has joined what it started, so the members'
  // destructors find no joinable thread.
  resizeWorkers(workersFor(numThreads));
}

ThreadPool::~ThreadPool() {
  std::lock_guard<std::mutex> loopLock(loopMutex);
  resizeWorkers(0);
}

int ThreadPool::defaultNumThreads() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(std::min<unsigned>(n, kMaxThreads));
}

int ThreadPool::getNumThreads() const {
  std::lock_guard<std::mutex> lock(stateMutex);
  return static_cast<int>(workers.size()) + 1;
}

void ThreadPool::setNumThreads(int numThreads) {
  if (currentPool == this)
    throw std::logic_error(
        "ThreadPool::setNumThreads called from inside one of its loops");
  int numWorkers = workersFor(numThreads);
  std::lock_guard<std::mutex> loopLock(loopMutex);
  resizeWorkers(numWorkers);
}

void ThreadPool::resizeWorkers(int numWorkers) {
  std::unique_lock<std::mutex> lock(stateMutex);
  const int old = static_cast<int>(workers.size());
  if (numWorkers == old)
    return;

  // Unlocks, wakes the workers (those at or above workerLimit return) and
  // joins `retired`.
  auto joinAll = [&](std::vector<std::thread> &retired) {
    lock.unlock();
    workAvailable.notify_all();
    for (std::thread &worker : retired)
      worker.join();
  };

  if (numWorkers < old) {
    std::vector<std::thread> retired;
    if (numWorkers == 0) {
      retired.swap(workers); // never allocates (the destructor needs that)
    } else {
      retired.reserve(old - numWorkers); // may throw: nothing changed yet
      for (int i = numWorkers; i < old; ++i)
        retired.push_back(std::move(workers[i]));
      workers.erase(workers.begin() + numWorkers, workers.end());
    }
    workerLimit = numWorkers;
    joinAll(retired);
    return;
  }

  workers.reserve(numWorkers); // may throw: nothing changed yet
  std::vector<std::thread> rollback;
  rollback.reserve(numWorkers - old);
  workerLimit = numWorkers;
  int index = old;
  try {
    for (; index < numWorkers; ++index)
      workers.emplace_back(
          [this, index, start = generation] { workerMain(index, start); });
  } catch (...) {
    // Stop and join the workers this call started; keep the others.
    workerLimit = old;
    for (size_t i = old; i < workers.size(); ++i)
      rollback.push_back(std::move(workers[i]));
    workers.erase(workers.begin() + old, workers.end());
    joinAll(rollback);
    try {
      throw;
    } catch (const std::system_error &e) {
      throw std::system_error(
          e.code(), "cannot start worker thread " +
                        std::to_string(index - old + 1) + " of " +
                        std::to_string(numWorkers - old) + " (" +
                        std::to_string(numWorkers + 1) + " threads requested)");
    }
  }
}

void ThreadPool::runIterations(Loop &loop) {
  while (true) {
    int64_t i = loop.next.fetch_add(1, std::memory_order_relaxed);
    if (i >= loop.n)
      return;
    try {
      loop.body(i);
    } catch (...) {
      std::lock_guard<std::mutex> lock(loop.errorMutex);
      if (!loop.error)
        loop.error = std::current_exception();
      // Skip the iterations nobody has started.
      loop.next.store(loop.n, std::memory_order_relaxed);
      return;
    }
  }
}

void ThreadPool::workerMain(int index, uint64_t seen) {
  CurrentPoolScope scope(this);
  std::unique_lock<std::mutex> lock(stateMutex);
  while (true) {
    workAvailable.wait(
        lock, [&] { return index >= workerLimit || generation != seen; });
    if (index >= workerLimit)
      return;
    seen = generation;
    if (openSlots == 0 || !currentLoop)
      continue;
    --openSlots;
    ++activeWorkers;
    Loop *loop = currentLoop;
    lock.unlock();
    runIterations(*loop);
    lock.lock();
    if (--activeWorkers == 0)
      workDone.notify_all();
  }
}

void ThreadPool::parallelFor(int64_t n, FunctionRef<void(int64_t)> body,
                             int maxThreads) {
  if (n <= 0)
    return;
  if (n >= kMaxIterations)
    throw std::invalid_argument("ThreadPool::parallelFor: too many iterations");

  // A loop nested in one of this pool's iterations runs inline.
  if (currentPool == this) {
    for (int64_t i = 0; i < n; ++i)
      body(i);
    return;
  }

  std::lock_guard<std::mutex> loopLock(loopMutex);
  CurrentPoolScope scope(this);
  Loop loop(n, body);

  int helpers;
  {
    std::lock_guard<std::mutex> lock(stateMutex);
    int64_t limit = static_cast<int64_t>(workers.size());
    limit = std::min<int64_t>(limit, n - 1);
    if (maxThreads > 0)
      limit = std::min<int64_t>(limit, maxThreads - 1);
    helpers = static_cast<int>(limit);
    if (helpers > 0) {
      currentLoop = &loop;
      openSlots = helpers;
      ++generation;
    }
  }
  if (helpers > 0) {
    if (helpers == static_cast<int>(n - 1) || helpers < 4)
      for (int i = 0; i < helpers; ++i)
        workAvailable.notify_one();
    else
      workAvailable.notify_all();
  }

  runIterations(loop);

  if (helpers > 0) {
    std::unique_lock<std::mutex> lock(stateMutex);
    // Workers that have not woken up yet need not join any more.
    openSlots = 0;
    currentLoop = nullptr;
    workDone.wait(lock, [&] { return activeWorkers == 0; });
  }
  if (loop.error)
    std::rethrow_exception(loop.error);
}

} // namespace femc::rt
