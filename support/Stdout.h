//===- Stdout.h - a tool's report reached standard output ------*- C++ -*-===//
//
// What fem-run and fem-tune print on stdout is part of their result (the
// --check lines, the bench times, the tuning choice). A write that failed
// (a full disk, /dev/full, a closed descriptor) used to end in exit status
// 0 with the report lost.
//
//===----------------------------------------------------------------------===//
#ifndef FEMC_SUPPORT_STDOUT_H
#define FEMC_SUPPORT_STDOUT_H

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace femc::tools {

/// `code`, unless stdout (stdio) could not take everything written to it:
/// then "TOOL: error: cannot write the report to standard output: REASON"
/// goes to stderr and the status is 1 (a failure's own status is kept).
inline int checkStdout(const char *tool, int code) {
  errno = 0;
  bool flushed = std::fflush(stdout) == 0;
  int err = errno;
  if (flushed && !std::ferror(stdout))
    return code;
  std::fprintf(stderr,
               "%s: error: cannot write the report to standard output%s%s\n",
               tool, err ? ": " : "", err ? std::strerror(err) : "");
  return code == 0 ? 1 : code;
}

} // namespace femc::tools

#endif // FEMC_SUPPORT_STDOUT_H
