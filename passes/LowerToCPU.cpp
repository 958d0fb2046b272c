//===- LowerToCPU.cpp - fem.tile_read / fem.scan_read → loops and vectors --===//
//
// The CPU lowering of the tiled FEM reads: one emitter per read algorithm of
// the prior table (dialect/Priors.h), in passes/cpu/:
//
//   ReadSoftmax.cpp  fem.tile_read: online softmax over key tiles
//   ReadSoftmaxAmx.cpp  fem.tile_read in bf16 on a target with AMX-BF16
//                    (module attribute fem.target_features): both
//                    contractions on AMX tiles
//   ReadSoftmaxBf16.cpp  fem.tile_read in bf16 with both contractions on
//                    AVX512-BF16 dot products (an opt-in target feature)
//   ReadLinear.cpp   fem.scan_read linear, gla: chunked, carried state
//   ReadAft.cpp      fem.scan_read aft: per-channel running sums
//   ReadSsm.cpp      fem.scan_read ssm: per-channel selective scan
//
// on the shared pieces Prepass.cpp (shift pre-pass, value panel) and
// Epilogue.cpp (log restore and gate) of the scans. Then exp, log and log1p
// become vectorisable polynomials (no libm calls in the loops).
//
//===----------------------------------------------------------------------===//
#include "dialect/FEMOps.h"
#include "passes/Passes.h"
#include "passes/cpu/LowerScanRead.h"
#include "passes/cpu/ReadSoftmax.h"
#include "passes/cpu/ReadSoftmaxAmx.h"

#include "mlir/Dialect/AMX/AMXDialect.h"
#include "mlir/Dialect/X86Vector/X86VectorDialect.h"

#include "mlir/Dialect/Math/Transforms/Approximation.h"
#include "mlir/Dialect/Math/Transforms/Passes.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

#define DEBUG_TYPE "fem-lower-to-cpu"

namespace mlir::fem {
#define GEN_PASS_DEF_FEMLOWERTOCPU
#include "passes/Passes.h.inc"
} // namespace mlir::fem

using namespace mlir;
using namespace mlir::fem;

namespace {

struct FEMLowerToCPUPass
    : public fem::impl::FEMLowerToCPUBase<FEMLowerToCPUPass> {
  void getDependentDialects(DialectRegistry &registry) const override {
    FEMLowerToCPUBase::getDependentDialects(registry);
    registry.insert<amx::AMXDialect>(); // the bf16 read on AMX tiles
    registry.insert<x86vector::X86VectorDialect>(); // vdpbf16ps
  }
  void runOnOperation() override {
    SmallVector<TileReadOp> reads;
    getOperation().walk([&](TileReadOp op) { reads.push_back(op); });
    for (TileReadOp op : reads) {
      LogicalResult lowered =
          cpu::useAmxSoftmaxRead(op)        ? cpu::lowerTileReadToAmx(op)
          : cpu::useBf16DotSoftmaxRead(op) ? cpu::lowerTileReadToBf16Dot(op)
                                            : cpu::lowerTileReadToCPU(op);
      if (failed(lowered))
        return signalPassFailure();
    }
    SmallVector<ScanReadOp> scans;
    getOperation().walk([&](ScanReadOp op) { scans.push_back(op); });
    for (ScanReadOp op : scans)
      if (failed(cpu::lowerScanReadToCPU(op)))
        return signalPassFailure();
    // exp/log/log1p as vectorisable polynomials (no libm calls in the loops).
    RewritePatternSet patterns(&getContext());
    populateMathPolynomialApproximationPatterns(patterns);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
