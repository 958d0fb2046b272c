//===- FuzzSupport.h - Helpers shared by the fuzz targets -------*- C++ -*-===//
//
// Part of the femc project.
//
//===----------------------------------------------------------------------===//
#ifndef FEMC_TEST_FUZZ_FUZZSUPPORT_H
#define FEMC_TEST_FUZZ_FUZZSUPPORT_H

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

/// A property the target checks: prints what broke and aborts, which
/// libFuzzer reports as a crash (and the replay test as a failure).
#define FUZZ_CHECK(cond, ...)                                                  \
  do {                                                                         \
    if (!(cond)) {                                                             \
      std::fprintf(stderr, "fuzz check failed at %s:%d: %s\n  ", __FILE__,    \
                   __LINE__, #cond);                                           \
      std::fprintf(stderr, __VA_ARGS__);                                       \
      std::fprintf(stderr, "\n");                                              \
      std::abort();                                                            \
    }                                                                          \
  } while (0)

namespace femc::fuzz {

/// Whether finding `id` is known and still open, so that a campaign should
/// step around it: FEMC_FUZZ_KNOWN holds a comma-separated list of ids (see
/// docs/fuzzing.md). Unset in ctest, so the replays always check everything.
inline bool knownOpen(const char *id) {
  const char *list = std::getenv("FEMC_FUZZ_KNOWN");
  if (!list)
    return false;
  std::string all = std::string(",") + list + ",";
  return all.find(std::string(",") + id + ",") != std::string::npos;
}

/// Options of the MLIR targets, read from an optional first line
///   // fuzz: target=avx512 tile-q=64 tile-k=32 vec=8
/// so that a corpus file stays a valid .mlir file. Unknown words are
/// ignored; numbers are clamped to [-2^20, 2^20] (the passes must reject bad
/// values with a diagnostic, but the fuzzer should not spend its time on
/// tiles of 2^40 rows).
struct PipelineOptions {
  std::string target = "avx2";
  int64_t tileQ = 0, tileK = 0, vec = 0;
};

inline int64_t parseClamped(const std::string &text) {
  int64_t value = 0;
  bool negative = false;
  size_t i = 0;
  if (i < text.size() && text[i] == '-') {
    negative = true;
    ++i;
  }
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
    value = value * 10 + (text[i] - '0');
    if (value > (int64_t(1) << 20)) {
      value = int64_t(1) << 20;
      break;
    }
  }
  return negative ? -value : value;
}

inline PipelineOptions parseOptionsLine(const uint8_t *data, size_t size) {
  PipelineOptions options;
  static const char kPrefix[] = "// fuzz:";
  size_t prefix = sizeof(kPrefix) - 1;
  if (size < prefix || std::memcmp(data, kPrefix, prefix) != 0)
    return options;
  size_t end = prefix;
  while (end < size && data[end] != '\n')
    ++end;
  std::string line(reinterpret_cast<const char *>(data) + prefix,
                   end - prefix);
  size_t pos = 0;
  while (pos < line.size()) {
    size_t space = line.find(' ', pos);
    std::string word = line.substr(pos, space == std::string::npos
                                            ? std::string::npos
                                            : space - pos);
    pos = space == std::string::npos ? line.size() : space + 1;
    size_t eq = word.find('=');
    if (eq == std::string::npos)
      continue;
    std::string key = word.substr(0, eq), value = word.substr(eq + 1);
    if (key == "target")
      options.target = value;
    else if (key == "tile-q")
      options.tileQ = parseClamped(value);
    else if (key == "tile-k")
      options.tileK = parseClamped(value);
    else if (key == "vec")
      options.vec = parseClamped(value);
  }
  return options;
}

} // namespace femc::fuzz

#endif // FEMC_TEST_FUZZ_FUZZSUPPORT_H
