//===- LowerCopies.cpp - strided memref.copy → loops -----------------------===//
//
// A layer body that builds a value from pieces (tensor.insert_slice, a
// tensor.extract_slice the bufferization cannot alias) bufferizes to a
// memref.copy into or out of a subview. finalize-memref-to-llvm lowers a
// copy to one memcpy only when both sides are contiguous (an identity
// layout, or a static shape laid out row-major); any other copy (a dynamic
// (B, T, 2, 4) window of a (B, T, 2, 8) buffer) becomes a call of
// `memrefCopy`, a function of MLIR's runner utilities that no femc library
// links: the library then fails to load ("undefined symbol: memrefCopy").
//
// This pass rewrites exactly those copies into a loop nest over the copied
// shape: scf.for over every dimension but the innermost; the innermost is
// copied with vector.load/vector.store of one 256-bit vector while a whole
// vector fits and element by element for the rest when both sides have a
// unit innermost stride (the layouts a slice of the last dimension gives),
// element by element otherwise. Copies the LLVM lowering turns into a
// memcpy are left alone, as are copies of unranked memrefs (which the
// driver's import check then reports).
//
//===----------------------------------------------------------------------===//
#include "passes/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/MemRef/Utils/MemRefUtils.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/WalkPatternRewriteDriver.h"

#include <functional>

#define DEBUG_TYPE "fem-lower-copies"

namespace mlir::fem {
#define GEN_PASS_DEF_FEMLOWERCOPIES
#include "passes/Passes.h.inc"
} // namespace mlir::fem

using namespace mlir;
using namespace mlir::fem;

namespace {
/// Whether finalize-memref-to-llvm copies a memref of this type with one
/// memcpy (MemRefCopyOpLowering's test, MLIR 22): an identity layout, or a
/// non-empty static shape laid out contiguously row-major at any offset.
bool copiesAsMemcpy(Type type) {
  auto memref = dyn_cast<MemRefType>(type);
  return memref &&
         (memref.getLayout().isIdentity() ||
          (memref.hasStaticShape() && memref.getNumElements() > 0 &&
           memref::isStaticShapeAndContiguousRowMajor(memref)));
}

/// Whether the innermost dimension of a ranked memref has stride 1.
bool unitInnerStride(MemRefType type) {
  if (type.getRank() == 0)
    return false;
  SmallVector<int64_t> strides;
  int64_t offset;
  if (failed(type.getStridesAndOffset(strides, offset)))
    return false;
  return strides.back() == 1;
}

/// Elements of one 256-bit vector of `element`, or 0 where the copy stays
/// scalar (not an int or float type, or wider than half a vector).
int64_t vectorLanes(Type element) {
  if (!isa<IntegerType, FloatType>(element))
    return 0;
  unsigned bits = element.getIntOrFloatBitWidth();
  if (bits == 0 || bits % 8 != 0 || 256 % bits != 0 || 256 / bits < 2)
    return 0;
  return 256 / bits;
}

/// Copies src[ivs..., lo:hi] to dst[ivs..., lo:hi] one element at a time.
void emitScalarCopy(OpBuilder &b, Location loc, Value src, Value dst,
                    ValueRange outer, Value lo, Value hi, Value one) {
  scf::ForOp::create(b, loc, lo, hi, one, ValueRange{},
                     [&](OpBuilder &nb, Location nl, Value iv, ValueRange) {
                       SmallVector<Value> idx(outer);
                       idx.push_back(iv);
                       Value v = memref::LoadOp::create(nb, nl, src, idx);
                       memref::StoreOp::create(nb, nl, v, dst, idx);
                       scf::YieldOp::create(nb, nl);
                     });
}

/// memref.copy that the LLVM lowering would turn into a memrefCopy call →
/// a loop nest (see the file comment).
struct LowerStridedCopy : public OpRewritePattern<memref::CopyOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(memref::CopyOp op,
                                PatternRewriter &rewriter) const override {
    auto srcType = dyn_cast<MemRefType>(op.getSource().getType());
    auto dstType = dyn_cast<MemRefType>(op.getTarget().getType());
    if (!srcType || !dstType)
      return rewriter.notifyMatchFailure(op, "unranked copy");
    if (copiesAsMemcpy(srcType) && copiesAsMemcpy(dstType))
      return rewriter.notifyMatchFailure(op, "lowers to a memcpy");

    Location loc = op.getLoc();
    Value src = op.getSource(), dst = op.getTarget();
    if (srcType.getRank() == 0) {
      Value v = memref::LoadOp::create(rewriter, loc, src, ValueRange{});
      memref::StoreOp::create(rewriter, loc, v, dst, ValueRange{});
      rewriter.eraseOp(op);
      return success();
    }
    Value zero = arith::ConstantIndexOp::create(rewriter, loc, 0);
    Value one = arith::ConstantIndexOp::create(rewriter, loc, 1);
    int64_t rank = srcType.getRank();
    SmallVector<Value> extents;
    for (int64_t d = 0; d < rank; ++d)
      extents.push_back(memref::DimOp::create(rewriter, loc, src, d));
    int64_t lanes = unitInnerStride(srcType) && unitInnerStride(dstType)
                        ? vectorLanes(srcType.getElementType())
                        : 0;

    // The innermost dimension at the indices `outer` of the others.
    auto copyRow = [&](OpBuilder &b, Location l, ValueRange outer) {
      Value n = extents.back();
      if (lanes == 0) {
        emitScalarCopy(b, l, src, dst, outer, zero, n, one);
        return;
      }
      // Whole vectors up to n - n % lanes, then the rest element-wise.
      Value step = arith::ConstantIndexOp::create(b, l, lanes);
      Value rest = arith::RemUIOp::create(b, l, n, step);
      Value whole = arith::SubIOp::create(b, l, n, rest);
      auto vecType = VectorType::get({lanes}, srcType.getElementType());
      scf::ForOp::create(
          b, l, zero, whole, step, ValueRange{},
          [&](OpBuilder &nb, Location nl, Value iv, ValueRange) {
            SmallVector<Value> idx(outer);
            idx.push_back(iv);
            Value v = vector::LoadOp::create(nb, nl, vecType, src, idx);
            vector::StoreOp::create(nb, nl, v, dst, idx);
            scf::YieldOp::create(nb, nl);
          });
      emitScalarCopy(b, l, src, dst, outer, whole, n, one);
    };

    // scf.for over dimensions 0 .. rank-2, innermost last.
    std::function<void(OpBuilder &, Location, SmallVector<Value> &)> nest =
        [&](OpBuilder &b, Location l, SmallVector<Value> &outer) {
          if (static_cast<int64_t>(outer.size()) == rank - 1) {
            copyRow(b, l, outer);
            return;
          }
          scf::ForOp::create(
              b, l, zero, extents[outer.size()], one, ValueRange{},
              [&](OpBuilder &nb, Location nl, Value iv, ValueRange) {
                outer.push_back(iv);
                nest(nb, nl, outer);
                outer.pop_back();
                scf::YieldOp::create(nb, nl);
              });
        };
    SmallVector<Value> outer;
    nest(rewriter, loc, outer);
    rewriter.eraseOp(op);
    return success();
  }
};

struct FEMLowerCopiesPass
    : public fem::impl::FEMLowerCopiesBase<FEMLowerCopiesPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<LowerStridedCopy>(&getContext());
    walkAndApplyPatterns(getOperation(), std::move(patterns));
  }
};
} // namespace
