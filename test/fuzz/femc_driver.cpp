//===- femc_driver.cpp - Fuzz target: the femc driver up to clang ---------===//
//
// Part of the femc project.
//
// The input is a model description (.mlir text: function and argument
// names, fem.dims/fem.name attributes, shapes, mixer attributes). It runs
// through femc's driver (driver/Compiler.h) with
// CompileOptions::glueOnly: parse, the checks of C-visible names, the
// tiling stage, kernel and layer collection with their checks, and the
// generation of the C glue, the C header and the JSON manifest as text.
// Nothing is lowered further and clang never runs per input.
// An optional first line `// fuzz: target=x86-64-v4 tile-q=64 tile-k=32
// vec=8` sets the driver's options (default target x86-64-v3, so that a
// finding replays the same on every host).
//
// Properties checked (beyond "no crash, no sanitizer report"):
//  - compile() reports failure or success, never crashes; on success it
//    names at least one kernel, and the glue and header are not empty;
//  - the manifest is valid JSON whose "kernels" are the kernels compile()
//    named, in order;
//  - the glue, header and manifest hold no control character but newlines
//    (every name from the model is escaped);
//  - in the replay build (ctest, never per fuzz input), the glue and the
//    header compile: `clang -fsyntax-only -Wall -Wextra -Werror` (femc's
//    own flags for the glue) on the glue as C11, and on the header as C11
//    and as C++17.
//
//===----------------------------------------------------------------------===//

#include "FuzzSupport.h"

#include "driver/Compiler.h"

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Program.h"

#include <cstdlib>
#include <fcntl.h>
#include <optional>
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

bool writeAll(const std::string &path, const void *data, size_t size) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0)
    return false;
  const char *bytes = static_cast<const char *>(data);
  size_t done = 0;
  while (done < size) {
    ssize_t n = write(fd, bytes + done, size - done);
    if (n <= 0) {
      close(fd);
      return false;
    }
    done += size_t(n);
  }
  return close(fd) == 0;
}

void checkText(const std::string &text, const char *what) {
  for (size_t i = 0; i < text.size(); ++i) {
    unsigned char c = text[i];
    FUZZ_CHECK(c >= 0x20 || c == '\n', "the %s has control character 0x%02x "
               "at byte %zu", what, unsigned(c), i);
  }
}

#ifdef FEMC_FUZZ_CLANG
/// clang -fsyntax-only on `file`; aborts with clang's output on failure.
void syntaxCheck(const std::string &file, llvm::ArrayRef<llvm::StringRef> lang,
                 const std::string &text) {
  std::string log = scratch() + "/clang.log";
  std::vector<llvm::StringRef> argv = {FEMC_FUZZ_CLANG, "-fsyntax-only",
                                       "-Wall", "-Wextra", "-Werror",
                                       "-I" FEMC_FUZZ_RUNTIME_INCLUDE};
  argv.insert(argv.end(), lang.begin(), lang.end());
  argv.push_back(file);
  std::optional<llvm::StringRef> redirects[] = {std::nullopt, log, log};
  std::string error;
  int rc = llvm::sys::ExecuteAndWait(FEMC_FUZZ_CLANG, argv, std::nullopt,
                                     redirects, 0, 0, &error);
  if (rc != 0) {
    auto out = llvm::MemoryBuffer::getFile(log);
    FUZZ_CHECK(false, "generated code does not compile (%s, rc %d%s%s):\n%s"
               "\n--- text:\n%s", file.c_str(), rc, error.empty() ? "" : ", ",
               error.c_str(), out ? (*out)->getBuffer().str().c_str() : "",
               text.c_str());
  }
}
#endif

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

  femc::driver::CompileOptions options;
  options.input = input;
  options.outDir = scratch() + "/out";
  options.target = fuzzOptions.target;
  options.tileQ = fuzzOptions.tileQ;
  options.tileK = fuzzOptions.tileK;
  options.vec = fuzzOptions.vec;
  options.glueOnly = true;
  femc::driver::CompileResult result;
  if (!femc::driver::compile(options, result))
    return 0;

  FUZZ_CHECK(!result.kernels.empty(), "compile() succeeded without kernels");
  FUZZ_CHECK(!result.glue.empty() && !result.header.empty(),
             "compile() succeeded without glue or header text");
  checkText(result.glue, "glue");
  checkText(result.header, "header");
  checkText(result.manifest, "manifest");
  llvm::Expected<llvm::json::Value> manifest =
      llvm::json::parse(result.manifest);
  if (!manifest) {
    std::string why = llvm::toString(manifest.takeError());
    FUZZ_CHECK(false, "the manifest is not JSON (%s):\n%s", why.c_str(),
               result.manifest.c_str());
  }
  const llvm::json::Object *object = manifest->getAsObject();
  FUZZ_CHECK(object, "the manifest is not a JSON object");
  const llvm::json::Array *kernels = object->getArray("kernels");
  FUZZ_CHECK(kernels && kernels->size() == result.kernels.size(),
             "the manifest lists %zu kernels, compile() named %zu",
             kernels ? kernels->size() : 0, result.kernels.size());
  for (size_t i = 0; i < kernels->size(); ++i) {
    const llvm::json::Object *k = (*kernels)[i].getAsObject();
    std::optional<llvm::StringRef> name = k ? k->getString("name") : std::nullopt;
    FUZZ_CHECK(name && *name == result.kernels[i],
               "manifest kernel #%zu is '%s', compile() named '%s'", i,
               name ? name->str().c_str() : "(none)",
               result.kernels[i].c_str());
  }

#ifdef FEMC_FUZZ_CLANG
  // Replay build only: the generated C compiles.
  std::string stem = "model";
  std::string header = options.outDir + "/" + stem + ".h";
  std::string glue = options.outDir + "/" + stem + ".glue.c";
  llvm::sys::fs::create_directories(options.outDir);
  FUZZ_CHECK(writeAll(header, result.header.data(), result.header.size()) &&
                 writeAll(glue, result.glue.data(), result.glue.size()),
             "cannot write the generated files");
  syntaxCheck(glue, {"-x", "c", "-std=c11"}, result.glue);
  syntaxCheck(header, {"-x", "c", "-std=c11"}, result.header);
  syntaxCheck(header, {"-x", "c++", "-std=c++17"}, result.header);
#endif
  return 0;
}
