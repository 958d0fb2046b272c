//===- fem-opt.cpp - mlir-opt with the fem dialect and passes --------------===//
//
// mlir-opt's driver with the fem dialect, passes and pipelines. The input is
// read and scanned before MlirOptMain parses it: text nested deeper than
// kMaxSourceNesting is refused with a located error (dialect/SourceNesting.h)
// instead of overflowing the parser's stack.
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
#include "mlir/Support/FileUtilities.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"

#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/raw_ostream.h"

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
      argc, argv, "fem-opt: the MLIR optimizer driver with the fem dialect\n",
      registry);
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
  if (mlir::failed(checkNesting(*file)))
    return EXIT_FAILURE;
  std::unique_ptr<llvm::ToolOutputFile> output =
      mlir::openOutputFile(outputFilename, &errorMessage);
  if (!output) {
    llvm::errs() << "fem-opt: error: " << errorMessage << "\n";
    return EXIT_FAILURE;
  }
  if (mlir::failed(
          mlir::MlirOptMain(output->os(), std::move(file), registry, config)))
    return EXIT_FAILURE;
  // Like mlir-opt: the output file is kept only when everything succeeded.
  output->keep();
  return EXIT_SUCCESS;
}
