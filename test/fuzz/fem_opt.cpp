//===- fem_opt.cpp - Fuzz target: fem-opt's parse, verify and pipelines ---===//
//
// Part of the femc project.
//
// The input is MLIR text, parsed as fem-opt parses it (every upstream dialect
// and extension plus fem), verified, and, when it verifies, run in-process
// through the femc pipelines of passes/Passes.h:
//   1. fem-to-loops (outline, expand, fuse, tile, bufferize, lower to loops)
//      on a copy of the module;
//   2. fem-to-cpu (the same, then down to the LLVM dialect) on the module.
// An optional first line `// fuzz: target=avx512 tile-q=64 tile-k=32 vec=8`
// sets the pipeline options (default target avx2, so that a finding replays
// the same on every host).
//
// Properties checked (beyond "no crash, no sanitizer report"):
//  - a failed parse, verification or pass run reports at least one error
//    diagnostic (a silent failure is a bug);
//  - a module that uses the fem dialect and verifies prints in a form that
//    parses and verifies again (printer and parser agree);
//  - the pipelines' output verifies (the pass manager's verifier is on).
//
//===----------------------------------------------------------------------===//

#include "FuzzSupport.h"

#include "dialect/FEMDialect.h"
#include "dialect/SourceNesting.h"
#include "passes/Passes.h"

#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"

#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

using namespace mlir;

namespace {

/// Inputs above this size are skipped: the parser is linear, and larger
/// inputs only slow the search down.
constexpr size_t kMaxInputSize = 64 * 1024;

const DialectRegistry &registry() {
  static const DialectRegistry *instance = [] {
    auto *r = new DialectRegistry;
    registerAllDialects(*r);
    registerAllExtensions(*r);
    r->insert<fem::FEMDialect>();
    return r;
  }();
  return *instance;
}

/// Counts error diagnostics and keeps their text (for the checks' messages).
struct Diagnostics {
  explicit Diagnostics(MLIRContext &context)
      : stream(text), handler(context.getDiagEngine().registerHandler(
                          [this](Diagnostic &d) {
                            if (d.getSeverity() == DiagnosticSeverity::Error)
                              ++errors;
                            // Formatting every diagnostic also exercises the
                            // printing of its arguments (types, attributes,
                            // the failing op).
                            stream << d << "\n";
                            for (Diagnostic &note : d.getNotes())
                              stream << "  note: " << note << "\n";
                            return success();
                          })),
        context(context) {}
  ~Diagnostics() { context.getDiagEngine().eraseHandler(handler); }

  std::string text;
  llvm::raw_string_ostream stream;
  int errors = 0;
  DiagnosticEngine::HandlerID handler;
  MLIRContext &context;
};

bool usesFEM(Operation *op) {
  bool found = false;
  op->walk([&](Operation *nested) {
    if (isa<fem::FEMDialect>(nested->getDialect()))
      found = true;
  });
  return found;
}

OwningOpRef<ModuleOp> parse(StringRef text, StringRef name,
                            MLIRContext &context) {
  llvm::SourceMgr sourceMgr;
  unsigned id = sourceMgr.AddNewSourceBuffer(
      llvm::MemoryBuffer::getMemBufferCopy(text, name), llvm::SMLoc());
  // As fem-opt and femc: text nested too deeply for the recursive parser's
  // stack is refused before the parse (with an error diagnostic).
  if (failed(fem::checkSourceNesting(sourceMgr, id, &context)))
    return nullptr;
  return parseSourceFile<ModuleOp>(sourceMgr, ParserConfig(&context));
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > kMaxInputSize)
    return -1; // not added to the corpus
  femc::fuzz::PipelineOptions options =
      femc::fuzz::parseOptionsLine(data, size);

  MLIRContext context(registry(), MLIRContext::Threading::DISABLED);
  Diagnostics diags(context);
  StringRef text(reinterpret_cast<const char *>(data), size);

  // Parse (which also verifies, as fem-opt does).
  OwningOpRef<ModuleOp> module = parse(text, "fuzz-input.mlir", context);
  if (!module) {
    FUZZ_CHECK(diags.errors > 0, "the parse failed without an error");
    return 0;
  }
  FUZZ_CHECK(succeeded(verify(*module)),
             "a parsed module fails verification afterwards:\n%s",
             diags.text.c_str());

  // Printer and parser agree on every module that uses the fem dialect.
  if (usesFEM(*module)) {
    for (bool generic : {false, true}) {
      std::string printed;
      llvm::raw_string_ostream os(printed);
      OpPrintingFlags flags;
      if (generic)
        flags.printGenericOpForm();
      module->print(os, flags);
      int before = diags.errors;
      OwningOpRef<ModuleOp> again = parse(printed, "printed.mlir", context);
      FUZZ_CHECK(again, "the %s form of a valid module does not parse "
                        "again:\n--- printed:\n%s\n--- diagnostics:\n%s",
                 generic ? "generic" : "custom", printed.c_str(),
                 diags.text.c_str());
      FUZZ_CHECK(diags.errors == before, "reparsing reported errors:\n%s",
                 diags.text.c_str());
    }
  }

  fem::CPUPipelineOptions pipe;
  pipe.tileQ = options.tileQ;
  pipe.tileK = options.tileK;
  pipe.vectorWidth = options.vec;
  pipe.target = options.target;

  // fem-to-loops on a copy, fem-to-cpu on the module itself.
  {
    OwningOpRef<ModuleOp> copy = module->clone();
    PassManager pm(&context);
    fem::buildFEMToLoopsPipeline(pm, pipe);
    int before = diags.errors;
    if (failed(pm.run(*copy)))
      FUZZ_CHECK(diags.errors > before,
                 "fem-to-loops failed without an error diagnostic");
  }
  PassManager pm(&context);
  fem::buildFEMToCPUPipeline(pm, pipe);
  int before = diags.errors;
  if (failed(pm.run(*module))) {
    FUZZ_CHECK(diags.errors > before,
               "fem-to-cpu failed without an error diagnostic");
    return 0;
  }
  // The lowered module prints (the fem-opt output path).
  std::string printed;
  llvm::raw_string_ostream os(printed);
  module->print(os);
  return 0;
}
