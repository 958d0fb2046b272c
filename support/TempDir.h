//===- TempDir.h - a temporary folder removed however the tool ends -*- C++ -*-===//
//
// fem-tune (candidate libraries) and fem-run (a .mlir compiled before it
// runs) work in a temporary folder. It is removed at a normal exit (atexit)
// and, through a watcher process, when the tool is killed or interrupted
// (SIGINT, SIGTERM, SIGKILL), which left /tmp/fem-tune-XXXXXX and
// /tmp/fem-run-XXXXXX behind, megabytes each.
//
//===----------------------------------------------------------------------===//
#ifndef FEMC_SUPPORT_TEMPDIR_H
#define FEMC_SUPPORT_TEMPDIR_H

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <string>
#include <unistd.h>
#include <vector>

namespace femc::tools {

/// Removes `dir` when this process is gone, however it ends: a child,
/// started while the process has no other thread, waits for the end of a
/// pipe only the process (and children it forks later) hold, then removes
/// `dir`. Best effort: without a child, the atexit removal still covers
/// normal exits.
inline void removeWhenGone(const std::string &dir) {
  int fds[2];
  if (::pipe(fds) != 0)
    return;
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[1]);
    int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    for (int fd = 0; fd < 3; ++fd)
      if (null >= 0)
        ::dup2(null, fd);
    // Its own process group: a Ctrl-C to the tool's group ends the tool,
    // whose end this child waits for.
    ::setpgid(0, 0);
    char byte;
    while (::read(fds[0], &byte, 1) < 0 && errno == EINTR)
      continue;
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    ::_exit(0);
  }
  ::close(fds[0]);
  if (pid < 0)
    ::close(fds[1]);
  else
    ::fcntl(fds[1], F_SETFD, FD_CLOEXEC); // held, never written
}

/// Creates $TMPDIR/PREFIX-XXXXXX (TMPDIR unset or empty: /tmp), removed at
/// exit and when the process is killed; false with `error` when it cannot
/// be created. Call it before the process starts threads.
inline bool makeTempDir(const std::string &prefix, std::string &dir,
                        std::string &error) {
  const char *root = std::getenv("TMPDIR");
  std::string name = std::string(root && *root ? root : "/tmp") + "/" +
                     prefix + "-XXXXXX";
  std::string pattern = name; // mkdtemp may change name even when it fails
  if (!::mkdtemp(name.data())) {
    error = "cannot create a temporary folder from '" + pattern +
            "': " + std::strerror(errno);
    return false;
  }
  static std::vector<std::string> *dirs = new std::vector<std::string>;
  if (dirs->empty())
    std::atexit([] {
      for (const std::string &d : *dirs) {
        std::error_code ec;
        std::filesystem::remove_all(d, ec);
      }
    });
  dirs->push_back(name);
  removeWhenGone(name);
  dir = name;
  return true;
}

} // namespace femc::tools

#endif // FEMC_SUPPORT_TEMPDIR_H
