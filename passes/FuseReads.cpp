//===- FuseReads.cpp - both reads of one prior → fem.fused_read ------------===//
#include "dialect/FEMOps.h"
#include "passes/Passes.h"

#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

#define DEBUG_TYPE "fem-fuse-reads"

namespace mlir::fem {
#define GEN_PASS_DEF_FEMFUSEREADS
#include "passes/Passes.h.inc"
} // namespace mlir::fem

using namespace mlir;
using namespace mlir::fem;

namespace {

/// gate(expect(p, tilt.clipped), lse(p, tilt.tilted, tilt.shift, beta))
///   → fused_read(p, v, beta, lam, gate).
struct FuseGatedReads : public OpRewritePattern<GateOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(GateOp gate,
                                PatternRewriter &rewriter) const override {
    auto expect = gate.getMu().getDefiningOp<ExpectOp>();
    auto lse = gate.getFreeEnergy().getDefiningOp<LseOp>();
    if (!expect || !lse)
      return rewriter.notifyMatchFailure(gate, "operands are not fem reads");
    if (expect.getPrior() != lse.getPrior())
      return rewriter.notifyMatchFailure(gate, "reads of different priors");
    auto tilt = expect.getValues().getDefiningOp<TiltOp>();
    if (!tilt || expect.getValues() != tilt.getClipped() ||
        lse.getTilted() != tilt.getTilted() ||
        lse.getShift() != tilt.getShift())
      return rewriter.notifyMatchFailure(gate,
                                         "reads do not share one fem.tilt");
    if (lse.getBetaRaw() != tilt.getBetaRaw())
      return rewriter.notifyMatchFailure(gate, "lse and tilt disagree on beta");
    Layout layout = gate.getLayout();
    if (expect.getLayout() != layout || lse.getLayout() != layout ||
        tilt.getLayout() != layout)
      return rewriter.notifyMatchFailure(gate, "layouts disagree");
    if (lse.getEpsAttr() != tilt.getEpsAttr() ||
        gate.getEpsAttr() != tilt.getEpsAttr())
      return rewriter.notifyMatchFailure(gate, "eps disagree");

    // The shift must ignore exactly the keys the prior ignores.
    Value priorMask;
    DictionaryAttr priorAttrs;
    if (auto prior = expect.getPrior().getDefiningOp<PriorOp>()) {
      priorMask = prior.getMask();
      if (prior.getLayout() != layout)
        return rewriter.notifyMatchFailure(gate, "prior layout disagrees");
    }
    if (priorMask != tilt.getMask())
      return rewriter.notifyMatchFailure(
          gate, "tilt and prior disagree on the key mask");
    bool wantSquash =
        expect.getPrior().getType().getKind() == PriorKind::ssm;
    if (tilt.getSquash() != wantSquash)
      return rewriter.notifyMatchFailure(
          gate, "the value squash does not match the prior");

    TilesAttr tiles;
    if (auto prior = expect.getPrior().getDefiningOp<PriorOp>())
      tiles = prior->getAttrOfType<TilesAttr>("fem.tiles");
    rewriter.replaceOpWithNewOp<FusedReadOp>(
        gate, gate.getType(), expect.getPrior(), tilt.getV(),
        tilt.getBetaRaw(), gate.getLam(), gate.getGate(), tilt.getMask(),
        tilt.getCapAttr(), tilt.getEpsAttr(), gate.getLayoutAttr(),
        tilt.getSquashAttr(), tiles);
    return success();
  }
};

struct FEMFuseReadsPass : public fem::impl::FEMFuseReadsBase<FEMFuseReadsPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<FuseGatedReads>(&getContext());
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
