//===- fem-opt.cpp - mlir-opt with the fem dialect and passes --------------===//
#include "dialect/FEMDialect.h"
#include "passes/Passes.h"
#include "passes/nvidia/NvidiaPipeline.h"

#include "mlir/IR/DialectRegistry.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/InitAllPasses.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"

int main(int argc, char **argv) {
  mlir::registerAllPasses();
  mlir::fem::registerFEMPasses();
  mlir::fem::registerFEMPipelines();
  mlir::fem::registerNvidiaPasses();

  mlir::DialectRegistry registry;
  mlir::registerAllDialects(registry);
  mlir::registerAllExtensions(registry);
  registry.insert<mlir::fem::FEMDialect>();
  return mlir::asMainReturnCode(mlir::MlirOptMain(
      argc, argv, "fem-opt: the MLIR optimizer driver with the fem dialect\n",
      registry));
}
