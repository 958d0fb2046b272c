//===- LayerStridedMetadata.cpp - reshapes of layer bodies → strided views -===//
//
// A layer body reshapes its values (nn.Linear's (B, T, H·d) into the read's
// (B, T, H, d) and back). Bufferized, those are memref.expand_shape and
// memref.collapse_shape, which the LLVM lowering does not take: they must
// first become memref.reinterpret_cast of the source's base buffer
// (upstream expand-strided-metadata).
//
// Upstream's rewrite of memref.expand_shape (MLIR 22,
// ExpandStridedMetadata.cpp, getExpandedSizes/getExpandedStrides) derives
// the result's sizes from the source size and the static sizes of the
// group, so it assumes at most one dynamic size per reassociation group
// (an assert, compiled out in release builds). A layer's first reshape is
// exactly such a group: (B·T, D) → (B, T, H, d) splits one dynamic extent
// into two. The second dynamic size is then left as a null OpFoldResult
// and memref::ReinterpretCastOp::build dereferences it (a segfault in
// IntegerAttr::getValue). The op itself knows its output extents
// (`output_shape`), so this pass first rewrites every expand_shape of a
// layer function into the reinterpret_cast those extents give (strides:
// the source stride of the group times the extents to the right), then
// applies the upstream patterns for everything else (collapse_shape,
// subview, extract_strided_metadata).
//
//===----------------------------------------------------------------------===//
#include "passes/Passes.h"

#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/MemRef/Transforms/Transforms.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

#define DEBUG_TYPE "fem-layer-strided-metadata"

namespace mlir::fem {
#define GEN_PASS_DEF_FEMLAYERSTRIDEDMETADATA
#include "passes/Passes.h.inc"
} // namespace mlir::fem

using namespace mlir;
using namespace mlir::fem;

namespace {
/// memref.expand_shape → memref.reinterpret_cast of the source's base buffer
/// with the op's own output extents; any number of dynamic extents per
/// group.
struct ExpandShapeFromOutputShape
    : public OpRewritePattern<memref::ExpandShapeOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(memref::ExpandShapeOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    MemRefType srcType = op.getSrcType();
    MemRefType resultType = op.getResultType();
    auto [srcStrides, srcOffset] = srcType.getStridesAndOffset();
    auto [resStrides, resOffset] = resultType.getStridesAndOffset();
    auto meta = memref::ExtractStridedMetadataOp::create(rewriter, loc,
                                                         op.getSrc());
    SmallVector<OpFoldResult> sizes = op.getMixedOutputShape();

    // An extent as a Value (for arithmetic) and as a constant if it is one.
    auto asValue = [&](OpFoldResult r) -> Value {
      if (auto v = dyn_cast<Value>(r))
        return v;
      return arith::ConstantIndexOp::create(
          rewriter, loc, cast<IntegerAttr>(cast<Attribute>(r)).getInt());
    };

    SmallVector<OpFoldResult> strides(resultType.getRank());
    for (auto [group, dims] : llvm::enumerate(op.getReassociationIndices())) {
      // Innermost dimension of the group: the source's stride.
      std::optional<int64_t> known;
      if (!ShapedType::isDynamic(srcStrides[group]))
        known = srcStrides[group];
      Value dynamic = known ? Value() : meta.getStrides()[group];
      for (int64_t d : llvm::reverse(dims)) {
        if (!ShapedType::isDynamic(resStrides[d])) {
          // The result type fixes this stride: it agrees with the source's
          // by the op's verifier.
          strides[d] = rewriter.getIndexAttr(resStrides[d]);
        } else {
          if (!dynamic)
            dynamic = arith::ConstantIndexOp::create(rewriter, loc, *known);
          strides[d] = dynamic;
        }
        // The next dimension out: this stride times this extent.
        std::optional<int64_t> size = getConstantIntValue(sizes[d]);
        if (known && size) {
          known = *known * *size;
          dynamic = Value();
        } else {
          Value current = dynamic ? dynamic
                                  : arith::ConstantIndexOp::create(
                                        rewriter, loc, *known)
                                        .getResult();
          dynamic = arith::MulIOp::create(rewriter, loc, current,
                                          asValue(sizes[d]));
          known.reset();
        }
      }
    }
    OpFoldResult offset =
        ShapedType::isDynamic(resOffset)
            ? OpFoldResult(meta.getOffset())
            : OpFoldResult(rewriter.getIndexAttr(resOffset));
    (void)srcOffset;
    rewriter.replaceOpWithNewOp<memref::ReinterpretCastOp>(
        op, resultType, meta.getBaseBuffer(), offset, sizes, strides);
    return success();
  }
};

struct FEMLayerStridedMetadataPass
    : public fem::impl::FEMLayerStridedMetadataBase<
          FEMLayerStridedMetadataPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    MLIRContext *ctx = module.getContext();
    RewritePatternSet expand(ctx);
    expand.add<ExpandShapeFromOutputShape>(ctx);
    FrozenRewritePatternSet expandPatterns(std::move(expand));
    RewritePatternSet rest(ctx);
    memref::populateExpandStridedMetadataPatterns(rest);
    FrozenRewritePatternSet restPatterns(std::move(rest));
    for (auto f : module.getOps<func::FuncOp>()) {
      // Layer functions and their stages (fem-layer-matmul's workgroup
      // functions, whose element-wise stages take subviews).
      if (f.isExternal() ||
          (!f->hasAttr("fem.layer") && !f->hasAttr("fem.stage")))
        continue;
      if (failed(applyPatternsGreedily(f, expandPatterns)) ||
          failed(applyPatternsGreedily(f, restPatterns))) {
        f.emitError() << "fem-layer-strided-metadata: the reshapes of @"
                      << f.getSymName() << " did not settle";
        return signalPassFailure();
      }
    }
  }
};
} // namespace
