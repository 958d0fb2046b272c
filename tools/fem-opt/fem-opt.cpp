//===- fem-opt.cpp - mlir-opt with the fem dialect and passes --------------===//
//
// mlir-opt's driver with the fem dialect, passes and pipelines. The input is
// read and scanned before MlirOptMain parses it: text nested deeper than
// kMaxSourceNesting is refused with a located error (dialect/SourceNesting.h)
// instead of overflowing the parser's stack.
//
// The input is copied into memory and the output written to a temporary file
// next to it, renamed over the output only when everything succeeded: `-o`
// may name the input itself (fem-opt x.mlir -o x.mlir), which mlir-opt's
// in-place truncation lost (a failure removed it; a large, memory-mapped
// input died with SIGBUS), and a failed or half-written run leaves the
// previous output as it was. A device or FIFO (/dev/null) is written in place.
//
// The pass pipeline (--pass-pipeline=TEXT, or pass flags --NAME=OPTIONS) is
// built once before the run, so a bad pass option is refused with the pass
// and the option named: MLIR reported it as an empty '<unknown>:0: error: '
// after LLVM's option parser had written its own line to stderr (naming the
// option but not the pass).
//
//===----------------------------------------------------------------------===//
#include "dialect/FEMDialect.h"
#include "dialect/SourceNesting.h"
#include "passes/Passes.h"
#include "passes/nvidia/NvidiaPipeline.h"

#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/InitAllPasses.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Support/FileUtilities.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"

#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdio>
#include <string>
#include <unistd.h>

/// Refuses `buffer` when it nests too deeply, with the error located in it.
static mlir::LogicalResult checkNesting(const llvm::MemoryBuffer &buffer) {
  llvm::SourceMgr sourceMgr;
  unsigned id = sourceMgr.AddNewSourceBuffer(
      llvm::MemoryBuffer::getMemBuffer(buffer.getBuffer(),
                                       buffer.getBufferIdentifier(),
                                       /*RequiresNullTerminator=*/false),
      llvm::SMLoc());
  mlir::MLIRContext context(mlir::MLIRContext::Threading::DISABLED);
  mlir::SourceMgrDiagnosticHandler handler(sourceMgr, &context);
  return mlir::fem::checkSourceNesting(sourceMgr, id, &context);
}

/// Runs `body` with stderr (file descriptor 2) sent to a temporary file and
/// returns what it wrote there: LLVM's option parser writes a bad pass
/// option's message straight to stderr, not to the error stream MLIR passes.
template <typename Body> static std::string capturingStderr(Body &&body) {
  llvm::errs().flush();
  std::fflush(stderr);
  std::FILE *temp = std::tmpfile();
  int saved = temp ? ::dup(2) : -1;
  if (saved < 0 || ::dup2(::fileno(temp), 2) < 0) {
    if (saved >= 0)
      ::close(saved);
    if (temp)
      std::fclose(temp);
    body();
    return "";
  }
  body();
  llvm::errs().flush();
  std::fflush(stderr);
  ::dup2(saved, 2);
  ::close(saved);
  std::string text;
  std::rewind(temp);
  char buffer[4096];
  for (size_t n; (n = std::fread(buffer, 1, sizeof buffer, temp)) > 0;)
    text.append(buffer, n);
  std::fclose(temp);
  return text;
}

/// Prints `fem-opt: error: WHAT: ` and the lines of `details` (LLVM's
/// "fem-opt: " prefixes dropped, empty lines skipped), the first on the
/// same line, the rest indented.
static void reportPipelineError(llvm::StringRef what, llvm::StringRef details) {
  llvm::SmallVector<llvm::StringRef> lines;
  details.split(lines, '\n');
  llvm::errs() << "fem-opt: error: " << what << ":";
  bool first = true;
  for (llvm::StringRef line : lines) {
    line = line.rtrim();
    line.consume_front("fem-opt: ");
    if (line.trim().empty())
      continue;
    llvm::errs() << (first ? " " : "\n  ") << line;
    first = false;
  }
  if (first)
    llvm::errs() << " its options cannot be parsed";
  llvm::errs() << "\n";
}

/// Builds the pass pipeline of the command line once, pass flag by pass
/// flag and --pass-pipeline text, into throwaway pass managers; on the first
/// that fails, reports it with what MLIR and LLVM's option parser said.
static mlir::LogicalResult checkPassOptions(int argc, char **argv) {
  for (int i = 1; i < argc; ++i) {
    llvm::StringRef arg(argv[i]);
    if (arg == "--")
      break;
    if (!arg.consume_front("-"))
      continue;
    arg.consume_front("-");
    std::pair<llvm::StringRef, llvm::StringRef> split = arg.split('=');
    llvm::StringRef name = split.first, options = split.second;
    bool hasValue = arg.contains('=');
    if (name == "pass-pipeline") {
      if (!hasValue) {
        if (i + 1 >= argc)
          continue; // LLVM's parser already refused it.
        options = argv[++i];
      }
      std::string messages;
      llvm::raw_string_ostream os(messages);
      bool failed = false;
      std::string printed = capturingStderr(
          [&] { failed = mlir::failed(mlir::parsePassPipeline(options, os)); });
      if (failed) {
        reportPipelineError(("--pass-pipeline='" + options + "'").str(),
                            printed + messages);
        return mlir::failure();
      }
      continue;
    }
    const mlir::PassRegistryEntry *entry = mlir::PassPipelineInfo::lookup(name);
    if (!entry)
      entry = mlir::PassInfo::lookup(name);
    if (!entry)
      continue;
    mlir::OpPassManager pm("builtin.module",
                           mlir::OpPassManager::Nesting::Implicit);
    std::string messages;
    bool failed = false;
    std::string printed = capturingStderr([&] {
      failed = mlir::failed(
          entry->addToPipeline(pm, options, [&](const llvm::Twine &msg) {
            messages += msg.str() + "\n";
            return mlir::failure();
          }));
    });
    if (failed) {
      reportPipelineError(
          ("pass " + name + (hasValue ? " with options '" + options + "'" : ""))
              .str(),
          printed + messages);
      return mlir::failure();
    }
  }
  return mlir::success();
}

/// Runs `body` writing into the output `path`; returns the exit status. A
/// regular (or new) file is written as a temporary file in its folder and
/// renamed over `path` only when `body` succeeded and every byte was written;
/// "-" is stdout, and a device or FIFO is written in place.
template <typename Body>
static int writeOutput(const std::string &path, Body &&body) {
  namespace fs = llvm::sys::fs;
  auto writeError = [&](std::error_code ec) {
    llvm::errs() << "fem-opt: error: cannot write the output '" << path
                 << "': " << ec.message() << "\n";
    return EXIT_FAILURE;
  };
  fs::file_status status;
  bool exists = !fs::status(path, status);
  if (path == "-" || (exists && status.type() != fs::file_type::regular_file &&
                      status.type() != fs::file_type::directory_file)) {
    std::string errorMessage;
    std::unique_ptr<llvm::ToolOutputFile> output =
        mlir::openOutputFile(path, &errorMessage);
    if (!output) {
      llvm::errs() << "fem-opt: error: " << errorMessage << "\n";
      return EXIT_FAILURE;
    }
    bool ok = mlir::succeeded(body(output->os()));
    output->os().flush();
    if (std::error_code ec = output->os().error()) {
      output->os().clear_error();
      return writeError(ec);
    }
    if (!ok)
      return EXIT_FAILURE;
    output->keep();
    return EXIT_SUCCESS;
  }
  if (exists && status.type() == fs::file_type::directory_file) {
    llvm::errs() << "fem-opt: error: cannot open output file '" << path
                 << "': Is a directory\n";
    return EXIT_FAILURE;
  }
  // Through a symbolic link, the file it names is replaced, not the link.
  llvm::SmallString<256> target(path);
  if (exists)
    fs::real_path(path, target);
  llvm::Expected<fs::TempFile> temp = fs::TempFile::create(
      target + ".fem-opt-%%%%%%", fs::all_read | fs::all_write);
  if (!temp) {
    std::error_code ec = llvm::errorToErrorCode(temp.takeError());
    llvm::errs() << "fem-opt: error: cannot open output file '" << path
                 << "': " << ec.message() << "\n";
    return EXIT_FAILURE;
  }
  bool ok;
  std::error_code ec;
  {
    llvm::raw_fd_ostream os(temp->FD, /*shouldClose=*/false);
    ok = mlir::succeeded(body(os));
    os.flush();
    ec = os.error();
    os.clear_error();
  }
  if (!ok || ec) {
    llvm::consumeError(temp->discard());
    return ec ? writeError(ec) : EXIT_FAILURE;
  }
  if (llvm::Error e = temp->keep(target))
    return writeError(llvm::errorToErrorCode(std::move(e)));
  return EXIT_SUCCESS;
}

int main(int argc, char **argv) {
  mlir::registerAllPasses();
  mlir::fem::registerFEMPasses();
  mlir::fem::registerFEMPipelines();
  mlir::fem::registerNvidiaPasses();

  mlir::DialectRegistry registry;
  mlir::registerAllDialects(registry);
  mlir::registerAllExtensions(registry);
  registry.insert<mlir::fem::FEMDialect>();
  auto [inputFilename, outputFilename] = mlir::registerAndParseCLIOptions(
      argc, argv,
      "fem-opt: the MLIR optimizer driver with the fem dialect\n\n"
      "The fem passes and pipelines are the --fem-* options below\n"
      "(docs/user-guide.md section 5, docs/dialect.md \"Passes\"), e.g.\n"
      "  fem-opt examples/softmax_fem.mlir -fem-expand-mixer "
      "-fem-fuse-reads -fem-tile=target=avx2\n",
      registry);
  // LLVM's options of one value take the last of several without a word:
  // `-o a.mlir -o b.mlir` wrote only b.mlir, and of two --pass-pipeline
  // only the second ran (femc, fem-run and fem-tune refuse a repeated
  // option as well).
  for (const char *name : {"o", "pass-pipeline"}) {
    auto &options = llvm::cl::getRegisteredOptions();
    auto it = options.find(name);
    if (it != options.end() && it->second->getNumOccurrences() > 1) {
      llvm::errs() << "fem-opt: error: option " << (name[1] ? "--" : "-")
                   << name << " is given twice; give it once"
                   << (name[1] ? " (one pipeline runs its passes in order)"
                               : "")
                   << "\n";
      return EXIT_FAILURE;
    }
  }
  if (mlir::failed(checkPassOptions(argc, argv)))
    return EXIT_FAILURE;
  mlir::MlirOptMainConfig config =
      mlir::MlirOptMainConfig::createFromCLOptions();
  // These read no input.
  if (config.shouldShowDialects() || config.shouldListPasses())
    return mlir::asMainReturnCode(mlir::MlirOptMain(
        argc, argv, inputFilename, outputFilename, registry));

  llvm::InitLLVM initLLVM(argc, argv);
  std::string errorMessage;
  std::unique_ptr<llvm::MemoryBuffer> file =
      mlir::openInputFile(inputFilename, &errorMessage);
  if (!file) {
    llvm::errs() << "fem-opt: error: " << errorMessage << "\n";
    return EXIT_FAILURE;
  }
  // A copy: a memory-mapped input that -o truncates would be lost (SIGBUS).
  file = llvm::MemoryBuffer::getMemBufferCopy(file->getBuffer(),
                                              file->getBufferIdentifier());
  if (mlir::failed(checkNesting(*file)))
    return EXIT_FAILURE;
  return writeOutput(outputFilename, [&](llvm::raw_ostream &os) {
    return mlir::MlirOptMain(os, std::move(file), registry, config);
  });
}
