//===- ExpandMixer.cpp - fem.mixer → prior/tilt/expect/lse/gate ------------===//
#include "dialect/FEMOps.h"
#include "passes/Passes.h"

#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

#define DEBUG_TYPE "fem-expand-mixer"

namespace mlir::fem {
#define GEN_PASS_DEF_FEMEXPANDMIXER
#include "passes/Passes.h.inc"
} // namespace mlir::fem

using namespace mlir;
using namespace mlir::fem;

namespace {

/// Returns the first static extent among `candidates`, else kDynamic.
static int64_t firstStatic(std::initializer_list<int64_t> candidates) {
  for (int64_t c : candidates)
    if (!ShapedType::isDynamic(c))
      return c;
  return ShapedType::kDynamic;
}

static SmallVector<int64_t, 4> inLayout(Layout layout, int64_t b, int64_t t,
                                        int64_t h, int64_t d) {
  if (layout == Layout::bthd)
    return {b, t, h, d};
  return {b, h, t, d};
}

struct ExpandMixer : public OpRewritePattern<MixerOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(MixerOp op,
                                PatternRewriter &rewriter) const override {
    // A carried state belongs to the one fused read of both streams: such a
    // mixer stays whole and fem-tile makes it a fem.scan_read.
    if (op.getState() || op.getStateOut())
      return rewriter.notifyMatchFailure(op, "carries a state");
    Location loc = op.getLoc();
    Layout layout = op.getLayout();
    unsigned ta = timeAxis(layout), ha = headAxis(layout);
    auto lamType = cast<RankedTensorType>(op.getLam().getType());
    auto vType = cast<RankedTensorType>(op.getV().getType());
    auto outType = cast<RankedTensorType>(op.getResult().getType());
    Type elementType = vType.getElementType();

    int64_t b = firstStatic({lamType.getDimSize(0), vType.getDimSize(0),
                             outType.getDimSize(0)});
    int64_t t = firstStatic({lamType.getDimSize(ta), outType.getDimSize(ta)});
    int64_t h = firstStatic({lamType.getDimSize(ha), outType.getDimSize(ha)});
    int64_t dv = firstStatic({lamType.getDimSize(3), vType.getDimSize(3)});
    bool causal = op.getCausal() || isAlwaysCausal(op.getKind());
    int64_t s = causal ? firstStatic({t, vType.getDimSize(ta)})
                       : vType.getDimSize(ta);

    auto priorType =
        PriorType::get(getContext(), op.getKind(), {b, h, t, s});
    auto prior = PriorOp::create(
        rewriter, loc, priorType, op.getKindAttr(), op.getQ(), op.getK(),
        op.getMask(), op.getDecay(), op.getDelta(), op.getA(), op.getBs(),
        op.getCs(), op.getD(), op.getCausalAttr(), op.getScaleAttr(),
        op.getLayoutAttr(), op.getEpsAttr());
    if (auto tiles = op.getTilesAttr())
      prior->setAttr("fem.tiles", tiles);

    auto keyTensor =
        RankedTensorType::get(inLayout(layout, b, s, h, dv), elementType);
    auto shiftTensor = RankedTensorType::get({b, h, dv}, elementType);
    // The shift ignores masked keys, so the tilt sees the prior's mask.
    auto tilt = TiltOp::create(
        rewriter, loc, keyTensor, keyTensor, shiftTensor, op.getV(),
        op.getBetaRaw(), op.getMask(), op.getCapAttr(), op.getEpsAttr(),
        op.getLayoutAttr(),
        op.getKind() == PriorKind::ssm ? rewriter.getUnitAttr() : UnitAttr());
    auto mu = ExpectOp::create(rewriter, loc, outType, prior, tilt.getClipped(),
                               op.getLayoutAttr());
    auto freeEnergy = LseOp::create(rewriter, loc, outType, prior,
                                    tilt.getTilted(), tilt.getShift(),
                                    op.getBetaRaw(), op.getEpsAttr(),
                                    op.getLayoutAttr());
    rewriter.replaceOpWithNewOp<GateOp>(op, outType, mu, freeEnergy,
                                        op.getLam(), op.getGate(),
                                        op.getEpsAttr(), op.getLayoutAttr());
    return success();
  }
};

struct FEMExpandMixerPass
    : public fem::impl::FEMExpandMixerBase<FEMExpandMixerPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<ExpandMixer>(&getContext());
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
