//===- Paths.h - whether two paths name one file ---------------*- C++ -*-===//
//
// fem-run and fem-tune refuse an output path that names a file they read or
// write otherwise (an input, the library, the model, the tuning database):
// the output would replace it. They also check that an output file can be
// written before any work (outputFileRefusal).
//
//===----------------------------------------------------------------------===//
#ifndef FEMC_SUPPORT_PATHS_H
#define FEMC_SUPPORT_PATHS_H

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <sys/stat.h>
#include <system_error>
#include <unistd.h>

namespace femc::tools {

/// Whether paths `a` and `b` name one regular file, existing or not yet
/// (through symbolic links and ".."). A device such as /dev/null may take
/// several outputs: an existing `a` that is not a regular file is never the
/// same file.
inline bool sameFile(const std::string &a, const std::string &b) {
  std::error_code ec;
  auto st = std::filesystem::status(a, ec);
  if (!ec && std::filesystem::exists(st) &&
      !std::filesystem::is_regular_file(st))
    return false;
  if (std::filesystem::equivalent(a, b, ec))
    return true;
  std::error_code ea, eb;
  auto ca = std::filesystem::weakly_canonical(a, ea);
  auto cb = std::filesystem::weakly_canonical(b, eb);
  return !ea && !eb && ca == cb;
}

/// Why the output file `path` cannot be written (as a temporary file in its
/// folder renamed over it), or "" when it can: `path` is a folder, or its
/// folder is missing, not a folder or not writable. An existing device or
/// FIFO is written in place: "".
inline std::string outputFileRefusal(const std::string &path) {
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode))
      return "'" + path + "' is a folder; give a file name";
    if (!S_ISREG(st.st_mode))
      return "";
  }
  std::string folder = std::filesystem::path(path).parent_path().string();
  if (folder.empty())
    folder = ".";
  if (::stat(folder.c_str(), &st) != 0)
    return "cannot use the folder '" + folder + "': " + std::strerror(errno);
  if (!S_ISDIR(st.st_mode))
    return "'" + folder + "' is not a folder";
  if (::access(folder.c_str(), W_OK) != 0)
    return "cannot write in the folder '" + folder +
           "': " + std::strerror(errno);
  return "";
}

} // namespace femc::tools

#endif // FEMC_SUPPORT_PATHS_H
