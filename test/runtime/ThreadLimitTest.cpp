//===- ThreadLimitTest.cpp - Thread counts and refused threads ------------===//
//
// Thread counts above FEMRT_MAX_THREADS are refused, and a thread the system
// refuses (std::thread throws std::system_error) leaves no thread running and
// the previous pool intact. The refusal is real: a forked child lowers its
// RLIMIT_NPROC (as an unused unprivileged user when the tests run as root,
// whom the limit does not bind) and then asks for more threads than it
// allows.
//
//===----------------------------------------------------------------------===//

#include "TestUtil.h"

#include "runtime/src/ThreadPool.h"

#include <dirent.h>
#include <grp.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <string>
#include <system_error>
#include <thread>

using namespace femrt_test;
using femc::rt::ThreadPool;

namespace {

//===----------------------------------------------------------------------===//
// Counts above the limit
//===----------------------------------------------------------------------===//

TEST(ThreadLimit, contextCreateRefusesCountsAboveTheLimit) {
  femrt_context_options options;
  FEMRT_ASSERT_OK(femrt_context_options_init(&options));
  femrt_context *context = nullptr;
  for (int32_t n : {FEMRT_MAX_THREADS + 1, 100000, INT32_MAX}) {
    options.num_threads = n;
    expectError(femrt_context_create(&options, &context),
                FEMRT_ERROR_INVALID_ARGUMENT,
                {"femrt_context_create: options->num_threads is " +
                     std::to_string(n),
                 "expected 0 (one per core) or 1 to 1024 (FEMRT_MAX_THREADS)"});
    EXPECT_EQ(context, nullptr);
  }
  options.num_threads = -1;
  expectError(femrt_context_create(&options, &context),
              FEMRT_ERROR_INVALID_ARGUMENT, {"num_threads is -1"});
  // The limit itself is fine.
  options.num_threads = FEMRT_MAX_THREADS;
  FEMRT_ASSERT_OK(femrt_context_create(&options, &context));
  int32_t threads = 0;
  FEMRT_EXPECT_OK(femrt_context_get_num_threads(context, &threads));
  EXPECT_EQ(threads, FEMRT_MAX_THREADS);
  FEMRT_EXPECT_OK(femrt_context_destroy(context));
}

TEST(ThreadLimit, setNumThreadsRefusesCountsAboveTheLimit) {
  femrt_context_options options;
  FEMRT_ASSERT_OK(femrt_context_options_init(&options));
  options.num_threads = 3;
  femrt_context *context = nullptr;
  FEMRT_ASSERT_OK(femrt_context_create(&options, &context));
  for (int32_t n : {FEMRT_MAX_THREADS + 1, 100000, INT32_MAX, INT32_MIN}) {
    expectError(femrt_context_set_num_threads(context, n),
                FEMRT_ERROR_INVALID_ARGUMENT,
                {"femrt_context_set_num_threads: num_threads is " +
                     std::to_string(n),
                 "1 to 1024"});
    int32_t threads = 0;
    FEMRT_EXPECT_OK(femrt_context_get_num_threads(context, &threads));
    EXPECT_EQ(threads, 3);
  }
  FEMRT_EXPECT_OK(femrt_context_destroy(context));
}

TEST(ThreadLimit, poolRefusesCountsAboveTheLimit) {
  EXPECT_EQ(ThreadPool::kMaxThreads, FEMRT_MAX_THREADS);
  EXPECT_LE(ThreadPool::defaultNumThreads(), ThreadPool::kMaxThreads);
  try {
    ThreadPool pool(ThreadPool::kMaxThreads + 1);
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument &e) {
    EXPECT_NE(std::string(e.what()).find("1025 threads requested; at most "
                                         "1024 are supported"),
              std::string::npos)
        << e.what();
  }
  ThreadPool pool(2);
  EXPECT_THROW(pool.setNumThreads(100000), std::invalid_argument);
  EXPECT_EQ(pool.getNumThreads(), 2);
}

//===----------------------------------------------------------------------===//
// Threads the system refuses
//===----------------------------------------------------------------------===//

/// The threads of this process (entries of /proc/self/task).
int countOwnThreads() {
  int count = 0;
  if (DIR *dir = opendir("/proc/self/task")) {
    while (dirent *entry = readdir(dir))
      if (entry->d_name[0] != '.')
        ++count;
    closedir(dir);
  }
  return count;
}

/// Waits (up to 5 s) for the thread count to come back to `expected`: a
/// joined thread may take a moment to disappear from /proc.
int settledThreadCount(int expected) {
  int count = countOwnThreads();
  for (int i = 0; i < 500 && count != expected; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    count = countOwnThreads();
  }
  return count;
}

/// The tasks (threads) of every process whose real user id is `uid`: what
/// RLIMIT_NPROC counts.
long countTasksOfUser(uid_t uid) {
  long total = 0;
  DIR *proc = opendir("/proc");
  if (!proc)
    return -1;
  while (dirent *entry = readdir(proc)) {
    if (entry->d_name[0] < '0' || entry->d_name[0] > '9')
      continue;
    std::ifstream status(std::string("/proc/") + entry->d_name + "/status");
    std::string line;
    long realUid = -1, threads = 0;
    while (std::getline(status, line)) {
      if (line.rfind("Uid:", 0) == 0)
        realUid = std::strtol(line.c_str() + 4, nullptr, 10);
      else if (line.rfind("Threads:", 0) == 0)
        threads = std::strtol(line.c_str() + 8, nullptr, 10);
    }
    if (realUid == static_cast<long>(uid))
      total += threads;
  }
  closedir(proc);
  return total;
}

/// Runs `body` in a forked child whose RLIMIT_NPROC lets it start about
/// `spare` more threads. When the tests run as root, whom the limit does not
/// bind, the child becomes user `uid` first: one unused uid per test, since
/// the limit counts all threads of a user and ctest runs tests in parallel.
/// `body` returns "" on success or what went wrong; "SKIP: why" skips the
/// test. Returns the child's report.
std::string inChildWithThreadLimit(uid_t uid, int spare,
                                   const std::function<std::string()> &body) {
  int fds[2];
  if (pipe(fds) != 0)
    return std::string("pipe: ") + std::strerror(errno);
  fflush(nullptr);
  pid_t pid = fork();
  if (pid < 0)
    return std::string("fork: ") + std::strerror(errno);
  if (pid == 0) {
    close(fds[0]);
    std::string report;
    // RLIMIT_NPROC does not bind root (CAP_SYS_RESOURCE).
    if (geteuid() == 0 &&
        (setgroups(0, nullptr) != 0 || setgid(uid) != 0 || setuid(uid) != 0))
      report = std::string("SKIP: cannot drop root privileges: ") +
               std::strerror(errno);
    if (report.empty()) {
      long tasks = countTasksOfUser(getuid());
      rlimit limit;
      if (tasks < 0) {
        report = "SKIP: cannot read /proc";
      } else if (getrlimit(RLIMIT_NPROC, &limit) != 0) {
        report = std::string("getrlimit: ") + std::strerror(errno);
      } else {
        rlim_t wanted = static_cast<rlim_t>(tasks + spare);
        if (limit.rlim_max != RLIM_INFINITY && limit.rlim_max < wanted)
          wanted = limit.rlim_max;
        limit.rlim_cur = wanted;
        if (setrlimit(RLIMIT_NPROC, &limit) != 0)
          report = std::string("setrlimit: ") + std::strerror(errno);
      }
    }
    if (report.empty()) {
      try {
        report = body();
      } catch (const std::exception &e) {
        report = std::string("unexpected exception: ") + e.what();
      }
    }
    size_t written = 0;
    while (written < report.size()) {
      ssize_t n = write(fds[1], report.data() + written,
                        report.size() - written);
      if (n <= 0)
        break;
      written += static_cast<size_t>(n);
    }
    _exit(0);
  }
  close(fds[1]);
  std::string report;
  char buffer[512];
  ssize_t n;
  while ((n = read(fds[0], buffer, sizeof(buffer))) > 0)
    report.append(buffer, static_cast<size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::ostringstream os;
    os << "the child died: ";
    if (WIFSIGNALED(status))
      os << "signal " << WTERMSIG(status);
    else
      os << "exit status " << WEXITSTATUS(status);
    return os.str() + (report.empty() ? "" : "; it reported: " + report);
  }
  return report;
}

/// Calls `attempt` until it returns true, for at most 5 s: threads that
/// were just joined may still count against RLIMIT_NPROC for a moment.
template <typename Attempt>
bool retryFor5s(Attempt &&attempt) {
  for (int i = 0; i < 500; ++i) {
    if (attempt())
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

/// Fails or skips the test according to a child's report.
#define EXPECT_CHILD_OK(report)                                                \
  do {                                                                         \
    std::string _report = (report);                                            \
    if (_report.rfind("SKIP: ", 0) == 0)                                       \
      GTEST_SKIP() << _report.substr(6);                                       \
    EXPECT_EQ(_report, "");                                                    \
  } while (0)

/// Appends `what` to `errors` when `ok` is false.
void check(std::string &errors, bool ok, const std::string &what) {
  if (!ok)
    errors += what + "\n";
}

bool contains(const std::string &text, const std::string &part) {
  return text.find(part) != std::string::npos;
}

TEST(ThreadLimit, contextCreateJoinsWhatItStartedWhenAThreadIsRefused) {
  EXPECT_CHILD_OK(inChildWithThreadLimit(65534, 4, [] {
    std::string errors;
    int before = countOwnThreads();
    femrt_context_options options;
    femrt_context_options_init(&options);
    options.num_threads = 200;
    femrt_context *context = nullptr;
    femrt_status status = femrt_context_create(&options, &context);
    std::string message = femrt_last_error();
    check(errors, status == FEMRT_ERROR_OUT_OF_MEMORY,
          std::string("status is ") + femrt_status_string(status) + ": " +
              message);
    check(errors, context == nullptr, "the context was written");
    check(errors,
          contains(message, "femrt_context_create: cannot start worker "
                            "thread ") &&
              contains(message, " of 199 (200 threads requested)") &&
              contains(message, "ulimit -u") &&
              contains(message, "no thread was left running"),
          "message: " + message);
    int after = settledThreadCount(before);
    check(errors, after == before,
          "threads before: " + std::to_string(before) +
              ", after: " + std::to_string(after));
    return errors;
  }));
}

TEST(ThreadLimit, setNumThreadsKeepsThePoolWhenAThreadIsRefused) {
  EXPECT_CHILD_OK(inChildWithThreadLimit(65533, 4, [] {
    std::string errors;
    femrt_context_options options;
    femrt_context_options_init(&options);
    options.num_threads = 2;
    femrt_context *context = nullptr;
    if (!retryFor5s([&] {
          return femrt_context_create(&options, &context) == FEMRT_OK;
        }))
      return std::string("creating a 2-thread context: ") + femrt_last_error();
    int before = countOwnThreads();
    femrt_status status = femrt_context_set_num_threads(context, 200);
    std::string message = femrt_last_error();
    check(errors, status == FEMRT_ERROR_OUT_OF_MEMORY,
          std::string("status is ") + femrt_status_string(status) + ": " +
              message);
    check(errors,
          contains(message, "femrt_context_set_num_threads: cannot start "
                            "worker thread ") &&
              contains(message, " of 198 (200 threads requested)") &&
              contains(message, "the context keeps its 2 threads"),
          "message: " + message);
    int32_t threads = 0;
    femrt_context_get_num_threads(context, &threads);
    check(errors, threads == 2,
          "the context has " + std::to_string(threads) + " threads");
    int after = settledThreadCount(before);
    check(errors, after == before,
          "threads before: " + std::to_string(before) +
              ", after: " + std::to_string(after));
    // Growing within the limit still works (once the refused call's threads
    // are gone from the kernel's count too).
    check(errors, retryFor5s([&] {
            return femrt_context_set_num_threads(context, 3) == FEMRT_OK;
          }),
          std::string("growing to 3 threads: ") + femrt_last_error());
    femrt_context_destroy(context);
    return errors;
  }));
}

TEST(ThreadLimit, poolKeepsItsWorkersWhenAThreadIsRefused) {
  EXPECT_CHILD_OK(inChildWithThreadLimit(65532, 4, [] {
    std::string errors;
    ThreadPool pool(1);
    if (!retryFor5s([&] {
          try {
            pool.setNumThreads(3);
            return true;
          } catch (const std::system_error &) {
            return false;
          }
        }))
      return std::string("cannot start a pool of 3 threads");
    int before = countOwnThreads();
    try {
      pool.setNumThreads(300);
      errors += "setNumThreads(300) did not throw\n";
    } catch (const std::system_error &e) {
      check(errors, contains(e.what(), " of 297 (300 threads requested)"),
            std::string("what(): ") + e.what());
    }
    check(errors, pool.getNumThreads() == 3,
          "the pool has " + std::to_string(pool.getNumThreads()) +
              " threads");
    int after = settledThreadCount(before);
    check(errors, after == before,
          "threads before: " + std::to_string(before) +
              ", after: " + std::to_string(after));
    // The old workers still run loops.
    std::mutex mutex;
    std::set<std::thread::id> seen;
    std::atomic<int> count{0};
    pool.parallelFor(3000, [&](int64_t) {
      ++count;
      std::lock_guard<std::mutex> lock(mutex);
      seen.insert(std::this_thread::get_id());
    });
    check(errors, count.load() == 3000, "a loop after the failure ran " +
                                            std::to_string(count.load()) +
                                            " iterations");
    check(errors, seen.size() <= 3, "more threads than the pool has ran");
    // A pool that cannot start at all leaves nothing behind.
    try {
      ThreadPool big(300);
      errors += "ThreadPool(300) did not throw\n";
    } catch (const std::system_error &e) {
      check(errors, contains(e.what(), " of 299 (300 threads requested)"),
            std::string("what(): ") + e.what());
    }
    after = settledThreadCount(before);
    check(errors, after == before,
          "threads after the failed constructor: " + std::to_string(after) +
              ", expected " + std::to_string(before));
    return errors;
  }));
}

} // namespace
