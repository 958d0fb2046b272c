//===- femc_driver.cpp - Fuzz target: the femc driver up to clang ---------===//
//
// Part of the femc project.
//
// The input is a model description (.mlir text: function and argument
// names, fem.dims/fem.name attributes, shapes, mixer attributes). It runs
// through femc's driver (tools/femc/Compiler.h) as `femc --emit=mlir`
// would: parse, the tiling stage, kernel and layer collection with their
// checks, and the lowering to the LLVM dialect, writing NAME.ll.mlir into a
// scratch folder. clang is never run per input.
// An optional first line `// fuzz: target=x86-64-v4 tile-q=64 tile-k=32
// vec=8` sets the driver's options (default target x86-64-v3, so that a
// finding replays the same on every host).
//
// Properties checked (beyond "no crash, no sanitizer report"):
//  - compile() reports failure or success, never crashes; on success it
//    names at least one kernel and the files it lists exist.
//
//===----------------------------------------------------------------------===//

#include "FuzzSupport.h"

#include "tools/femc/Compiler.h"

#include "llvm/Support/FileSystem.h"

#include <cstdlib>
#include <fcntl.h>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

namespace {

constexpr size_t kMaxInputSize = 64 * 1024;

std::string scratchDir;

void removeScratch() {
  if (!scratchDir.empty())
    llvm::sys::fs::remove_directories(scratchDir);
}

/// A scratch folder of this process, made once and removed at exit.
const std::string &scratch() {
  if (scratchDir.empty()) {
    const char *tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") +
                          "/femc-driver-fuzz-XXXXXX";
    char *made = mkdtemp(pattern.data());
    FUZZ_CHECK(made, "cannot make a scratch folder from '%s'",
               pattern.c_str());
    scratchDir = made;
    std::atexit(removeScratch);
  }
  return scratchDir;
}

bool writeAll(const std::string &path, const uint8_t *data, size_t size) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
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
  return close(fd) == 0;
}

bool compileOnce(const femc::fuzz::PipelineOptions &fuzzOptions,
                 const std::string &input,
                 femc::driver::CompileResult &result) {
  femc::driver::CompileOptions options;
  options.input = input;
  options.outDir = scratch() + "/out";
  options.target = fuzzOptions.target;
  options.emit = "mlir";
  options.tileQ = fuzzOptions.tileQ;
  options.tileK = fuzzOptions.tileK;
  options.vec = fuzzOptions.vec;
  return femc::driver::compile(options, result);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > kMaxInputSize)
    return -1;
  femc::fuzz::PipelineOptions fuzzOptions =
      femc::fuzz::parseOptionsLine(data, size);
  if (fuzzOptions.target == "avx2")
    fuzzOptions.target = "x86-64-v3";
  else if (fuzzOptions.target == "avx512")
    fuzzOptions.target = "x86-64-v4";

  std::string input = scratch() + "/model.mlir";
  FUZZ_CHECK(writeAll(input, data, size), "cannot write '%s'", input.c_str());

  femc::driver::CompileResult result;
  bool ok = compileOnce(fuzzOptions, input, result);
  if (!ok)
    return 0;
  FUZZ_CHECK(!result.kernels.empty(), "compile() succeeded without kernels");
  FUZZ_CHECK(!result.files.empty(), "compile() succeeded without a file");
  for (const std::string &file : result.files) {
    struct stat st;
    FUZZ_CHECK(stat(file.c_str(), &st) == 0, "'%s' was not written",
               file.c_str());
  }
  return 0;
}
