//===- Paths.h - whether two paths name one file ---------------*- C++ -*-===//
//
// fem-run and fem-tune refuse an output path that names a file they read or
// write otherwise (an input, the library, the model, the tuning database):
// the output would replace it.
//
//===----------------------------------------------------------------------===//
#ifndef FEMC_SUPPORT_PATHS_H
#define FEMC_SUPPORT_PATHS_H

#include <filesystem>
#include <string>
#include <system_error>

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

} // namespace femc::tools

#endif // FEMC_SUPPORT_PATHS_H
