//===- ThreadPool.h - Fixed-size pool running parallel loops ----*- C++ -*-===//
//
// The CPU backend of libfemrt runs a kernel's workgroup grid on this pool; it
// is also usable on its own by C++ tools (link femrt_static and include
// "runtime/src/ThreadPool.h").
//
//===----------------------------------------------------------------------===//
#ifndef FEMRT_SRC_THREADPOOL_H
#define FEMRT_SRC_THREADPOOL_H

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace femc::rt {

/// A non-owning reference to a callable, like llvm::function_ref: cheap to
/// pass, never allocates. The callable must outlive the call it is passed to.
template <typename Fn>
class FunctionRef;

template <typename Ret, typename... Params>
class FunctionRef<Ret(Params...)> {
public:
  template <typename Callable,
            typename = std::enable_if_t<!std::is_same_v<
                std::remove_cv_t<std::remove_reference_t<Callable>>,
                FunctionRef>>>
  FunctionRef(Callable &&callable)
      : callback(&trampoline<std::remove_reference_t<Callable>>),
        callable(const_cast<void *>(static_cast<const void *>(&callable))) {}

  Ret operator()(Params... params) const {
    return callback(callable, std::forward<Params>(params)...);
  }

private:
  template <typename Callable>
  static Ret trampoline(void *callable, Params... params) {
    return (*static_cast<Callable *>(callable))(
        std::forward<Params>(params)...);
  }

  Ret (*callback)(void *, Params...);
  void *callable;
};

/// A fixed set of worker threads that, together with the calling thread, run
/// the iterations of a parallel loop.
///
/// Iterations are handed out one at a time through an atomic counter, so
/// uneven iteration costs balance themselves; nothing is allocated per
/// iteration. parallelFor blocks until every iteration has run.
///
/// Thread safety: parallelFor may be called from any number of threads; the
/// calls are serialized (each loop gets the whole pool). A parallelFor called
/// from inside an iteration of this pool runs sequentially on the calling
/// thread instead of deadlocking. The destructor waits for a running loop and
/// joins the workers.
///
/// Thread counts are at most kMaxThreads (std::invalid_argument otherwise).
/// When the system refuses a thread (std::thread throws std::system_error,
/// e.g. under a low RLIMIT_NPROC), the workers started by the failing call
/// are joined again and the pool is left exactly as it was before the call
/// (with no workers for the constructor); the std::system_error is rethrown
/// with a message saying which thread could not be started.
class ThreadPool {
public:
  /// The largest thread count a pool accepts (FEMRT_MAX_THREADS in femrt.h).
  static constexpr int kMaxThreads = 1024;
  /// parallelFor refuses a loop of this many iterations or more.
  static constexpr int64_t kMaxIterations = int64_t(1) << 62;

  /// Creates a pool in which `numThreads` threads run each loop: the caller
  /// of parallelFor and `numThreads - 1` workers. `numThreads <= 0` means
  /// defaultNumThreads().
  explicit ThreadPool(int numThreads = 0);
  ~ThreadPool();

  ThreadPool(const ThreadPool &) = delete;
  ThreadPool &operator=(const ThreadPool &) = delete;

  /// std::thread::hardware_concurrency() capped at kMaxThreads, or 1 when it
  /// is unknown.
  static int defaultNumThreads();

  /// The number of threads that run a loop (workers + the caller).
  int getNumThreads() const;

  /// Starts or stops workers so that `numThreads` threads run each loop
  /// (`<= 0`: defaultNumThreads()); the workers that stay are kept. Waits
  /// for a running loop to finish. Throws std::logic_error when called from
  /// inside an iteration, std::invalid_argument above kMaxThreads, and
  /// std::system_error when a thread cannot be started (the pool then keeps
  /// its previous threads).
  void setNumThreads(int numThreads);

  /// Calls `body(i)` once for every i in [0, n), on at most `maxThreads`
  /// threads (0: all of the pool's threads), the calling thread included,
  /// and returns when all calls have returned. If a call throws, the
  /// iterations not started yet are skipped and the first exception is
  /// rethrown here after the others have finished. n must be below 2^62.
  void parallelFor(int64_t n, FunctionRef<void(int64_t)> body,
                   int maxThreads = 0);

private:
  struct Loop;

  /// Starts or joins workers until there are `numWorkers`; on failure the
  /// workers are as before. Callers hold loopMutex (or are the constructor).
  void resizeWorkers(int numWorkers);
  /// A worker's loop; `index` is its position in `workers`, `seen` the
  /// generation at its start.
  void workerMain(int index, uint64_t seen);
  static void runIterations(Loop &loop);

  /// Serializes parallelFor and setNumThreads.
  std::mutex loopMutex;
  /// Guards everything below.
  mutable std::mutex stateMutex;
  std::condition_variable workAvailable;
  std::condition_variable workDone;
  std::vector<std::thread> workers;
  Loop *currentLoop = nullptr;
  uint64_t generation = 0;
  /// Workers that may still join the current loop.
  int openSlots = 0;
  /// Workers inside the current loop.
  int activeWorkers = 0;
  /// Workers whose index is at least this return.
  int workerLimit = 0;
};

} // namespace femc::rt

#endif // FEMRT_SRC_THREADPOOL_H
