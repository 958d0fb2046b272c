//===- npy.cpp - Fuzz target: the .npy reader (support/Npy.h) -------------===//
//
// Part of the femc project.
//
// The input is the bytes of a .npy file. It is parsed from memory
// (femc::npy::parseNpy) and read from a file (readNpy, on a memfd named by
// /proc/self/fd/N, so that the pread path runs too).
//
// Properties checked (beyond "no crash, no sanitizer report"):
//  - both readers agree: both fail, or both succeed with the same array;
//  - a failure fills `error` with one line that starts with the name given;
//  - an array that parses is consistent: a known dtype, non-negative
//    extents, and numElements() * elementSize(dtype) bytes;
//  - it serializes, and the serialized image parses back to the same array;
//  - the conversions (toFloat32, toFloat64, toBool) accept exactly the
//    dtypes they document, produce numElements() values, and report errors
//    as one line.
//
//===----------------------------------------------------------------------===//

#include "FuzzSupport.h"

#include "support/Npy.h"

#include <sys/mman.h>
#include <unistd.h>

using namespace femc;

namespace {

void checkError(const std::string &error, const std::string &name,
                const char *what) {
  FUZZ_CHECK(!error.empty(), "%s failed with an empty message", what);
  FUZZ_CHECK(error.find('\n') == std::string::npos ||
                 fuzz::knownOpen("npy-message-one-line"),
             "%s: the message is not one line: '%s'", what, error.c_str());
  FUZZ_CHECK(name.empty() || error.compare(0, name.size(), name) == 0,
             "%s: the message does not start with the name '%s': '%s'", what,
             name.c_str(), error.c_str());
}

bool isFloat(const std::string &dtype) {
  return dtype == "f16" || dtype == "f32" || dtype == "f64";
}

void checkArray(const npy::Array &a) {
  size_t elementSize = npy::elementSize(a.dtype);
  FUZZ_CHECK(elementSize != 0, "unknown dtype '%s'", a.dtype.c_str());
  int64_t n = 1;
  for (int64_t d : a.shape) {
    FUZZ_CHECK(d >= 0, "negative extent %lld", (long long)d);
    n *= d;
  }
  FUZZ_CHECK(a.numElements() == n, "numElements() %lld, shape product %lld",
             (long long)a.numElements(), (long long)n);
  FUZZ_CHECK(a.bytes.size() == uint64_t(n) * elementSize,
             "%zu bytes for %lld elements of %s", a.bytes.size(),
             (long long)n, a.dtype.c_str());
  std::string shape = npy::formatShape(a.shape);
  FUZZ_CHECK(shape.size() >= 2 && shape.front() == '(' && shape.back() == ')',
             "formatShape gave '%s'", shape.c_str());

  std::string error;
  std::vector<float> f32;
  bool ok = npy::toFloat32(a, f32, error);
  FUZZ_CHECK(ok == isFloat(a.dtype), "toFloat32 on %s returned %d",
             a.dtype.c_str(), ok);
  if (ok)
    FUZZ_CHECK(f32.size() == size_t(n), "toFloat32 gave %zu values", f32.size());
  else
    checkError(error, "", "toFloat32");
  error.clear();
  std::vector<double> f64;
  ok = npy::toFloat64(a, f64, error);
  FUZZ_CHECK(ok == isFloat(a.dtype), "toFloat64 on %s returned %d",
             a.dtype.c_str(), ok);
  if (ok)
    FUZZ_CHECK(f64.size() == size_t(n), "toFloat64 gave %zu values", f64.size());
  else
    checkError(error, "", "toFloat64");
  error.clear();
  std::vector<uint8_t> mask;
  ok = npy::toBool(a, mask, error);
  FUZZ_CHECK(ok == !isFloat(a.dtype), "toBool on %s returned %d",
             a.dtype.c_str(), ok);
  if (ok) {
    FUZZ_CHECK(mask.size() == size_t(n), "toBool gave %zu values", mask.size());
    for (uint8_t m : mask)
      FUZZ_CHECK(m == 0 || m == 1, "toBool gave %u", unsigned(m));
  } else {
    checkError(error, "", "toBool");
  }
}

bool sameArray(const npy::Array &a, const npy::Array &b) {
  return a.dtype == b.dtype && a.shape == b.shape && a.bytes == b.bytes;
}

/// readNpy on a memory file holding the input; nullopt with `error` set when
/// the reader fails, and no call at all (returns false) when the memfd
/// cannot be made.
bool readFromFile(const uint8_t *data, size_t size,
                  std::optional<npy::Array> &result, std::string &path,
                  std::string &error) {
  int fd = memfd_create("fuzz.npy", 0);
  if (fd < 0)
    return false;
  size_t done = 0;
  while (done < size) {
    ssize_t n = write(fd, data + done, size - done);
    if (n <= 0) {
      close(fd);
      return false;
    }
    done += size_t(n);
  }
  path = "/proc/self/fd/" + std::to_string(fd);
  result = npy::readNpy(path, error);
  close(fd);
  return true;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const std::string name = "fuzz.npy";
  std::string error;
  std::optional<npy::Array> parsed = npy::parseNpy(data, size, name, error);
  if (!parsed)
    checkError(error, name, "parseNpy");

  std::optional<npy::Array> read;
  std::string path, readError;
  if (readFromFile(data, size, read, path, readError)) {
    FUZZ_CHECK(bool(read) == bool(parsed),
               "parseNpy %s but readNpy %s (parse: '%s', read: '%s')",
               parsed ? "succeeded" : "failed", read ? "succeeded" : "failed",
               error.c_str(), readError.c_str());
    if (read)
      FUZZ_CHECK(sameArray(*read, *parsed),
                 "readNpy and parseNpy read different arrays");
    else
      checkError(readError, path, "readNpy");
  }
  if (!parsed)
    return 0;

  checkArray(*parsed);
  std::string serializeError;
  std::optional<std::vector<uint8_t>> image =
      npy::serializeNpy(*parsed, serializeError);
  FUZZ_CHECK(image, "an array that parsed does not serialize: %s",
             serializeError.c_str());
  std::string again;
  std::optional<npy::Array> reparsed =
      npy::parseNpy(image->data(), image->size(), "serialized.npy", again);
  FUZZ_CHECK(reparsed, "the serialized array does not parse: %s",
             again.c_str());
  FUZZ_CHECK(sameArray(*reparsed, *parsed),
             "the serialized array parses to another array");
  return 0;
}
