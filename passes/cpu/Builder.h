//===- Builder.h - small scf/vector/arith builders for the CPU emitters -*- C++ -*-===//
//
// The vocabulary every CPU read emitter uses: index and float arithmetic,
// NaN-transparent max/min/clamp, vector loads and stores, scf.for loops whose
// body is a lambda, scratch buffers freed at the end of the workgroup.
//
//===----------------------------------------------------------------------===//
#ifndef FEMC_PASSES_CPU_BUILDER_H
#define FEMC_PASSES_CPU_BUILDER_H

#include "dialect/FEMOps.h"
#include "passes/Passes.h"

#include "mlir/IR/ImplicitLocOpBuilder.h"

#include <cmath>
#include <limits>

namespace mlir::fem::cpu {

/// log(2^-126), the log of float32's smallest normal (semantics.md "tiny").
constexpr float kLogTiny = -87.33654475055310898657f;

class EmitterBuilder {
public:
  EmitterBuilder(Operation *at, Layout layout, int64_t lanes)
      : b(at->getLoc(), at), layout(layout), lanes(lanes) {
    f32 = b.getF32Type();
    vf = VectorType::get({lanes}, f32);
    vi1 = VectorType::get({lanes}, b.getI1Type());
  }

  ImplicitLocOpBuilder b;
  Layout layout;
  int64_t lanes;
  FloatType f32;
  VectorType vf, vi1;
  SmallVector<Value> scratch;

  Value idx(int64_t v) { return arith::ConstantIndexOp::create(b, v); }
  Value cst(float v) {
    return arith::ConstantFloatOp::create(b, f32, llvm::APFloat(v));
  }
  Value splat(float v) {
    return arith::ConstantOp::create(b, vf, DenseElementsAttr::get(vf, v));
  }
  Value bcast(Value scalar) {
    return vector::BroadcastOp::create(
        b, VectorType::get({lanes}, scalar.getType()), scalar);
  }
  Value add(Value x, Value y) { return arith::AddIOp::create(b, x, y); }
  Value sub(Value x, Value y) { return arith::SubIOp::create(b, x, y); }
  Value mul(Value x, Value y) { return arith::MulIOp::create(b, x, y); }
  Value divI(Value x, Value y) { return arith::DivSIOp::create(b, x, y); }
  Value remI(Value x, Value y) { return arith::RemSIOp::create(b, x, y); }
  Value minI(Value x, Value y) { return arith::MinSIOp::create(b, x, y); }
  Value maxI(Value x, Value y) { return arith::MaxSIOp::create(b, x, y); }
  Value ceilDiv(Value x, Value y) { return arith::CeilDivSIOp::create(b, x, y); }
  /// `x` rounded up to a multiple of `q`.
  Value roundUp(Value x, Value q) { return mul(ceilDiv(x, q), q); }
  Value fadd(Value x, Value y) { return arith::AddFOp::create(b, x, y); }
  Value fsub(Value x, Value y) { return arith::SubFOp::create(b, x, y); }
  Value fmul(Value x, Value y) { return arith::MulFOp::create(b, x, y); }
  Value fdiv(Value x, Value y) { return arith::DivFOp::create(b, x, y); }
  Value fma(Value x, Value y, Value acc) {
    return vector::FMAOp::create(b, x, y, acc);
  }
  Value neg(Value x) { return arith::NegFOp::create(b, x); }
  Value fcmp(arith::CmpFPredicate p, Value x, Value y) {
    return arith::CmpFOp::create(b, p, x, y);
  }
  Value select(Value c, Value x, Value y) {
    return arith::SelectOp::create(b, c, x, y);
  }
  /// max/min as compare + select (a NaN in `x` yields `y`).
  Value fmax(Value x, Value y) {
    return select(fcmp(arith::CmpFPredicate::OGT, x, y), x, y);
  }
  Value fmin(Value x, Value y) {
    return select(fcmp(arith::CmpFPredicate::OLT, x, y), x, y);
  }
  /// max that propagates a NaN of either operand (torch.max).
  Value fmaxNaN(Value x, Value y) {
    Value pick = arith::OrIOp::create(
        b, fcmp(arith::CmpFPredicate::UGT, x, y),
        fcmp(arith::CmpFPredicate::UNO, x, x));
    return select(pick, x, y);
  }
  /// clamp(x, lo, hi) that lets NaN through.
  Value clamp(Value x, Value lo, Value hi) {
    Value low = select(fcmp(arith::CmpFPredicate::OLT, x, lo), lo, x);
    return select(fcmp(arith::CmpFPredicate::OGT, x, hi), hi, low);
  }
  Value exp(Value x) { return math::ExpOp::create(b, x); }
  Value log(Value x) { return math::LogOp::create(b, x); }
  Value log1p(Value x) { return math::Log1pOp::create(b, x); }
  Value sqrt(Value x) { return math::SqrtOp::create(b, x); }
  /// useLog1p ? log1p(x) : log(y) with one log: bit for bit what the two
  /// ops give after populateMathPolynomialApproximationPatterns, whose log1p
  /// is Kahan's u = 1 + x, (u == 1 || u == log u) ? x : x * (log u / (u - 1)).
  Value log1pOrLog(Value useLog1p, Value x, Value y) {
    Value one = isa<VectorType>(x.getType()) ? splat(1.0f) : cst(1.0f);
    Value u = fadd(x, one);
    Value logArg = log(select(useLog1p, u, y));
    Value plain = arith::OrIOp::create(
        b, fcmp(arith::CmpFPredicate::OEQ, u, one),
        fcmp(arith::CmpFPredicate::OEQ, u, logArg));
    Value viaLog1p =
        select(plain, x, fmul(x, fdiv(logArg, fsub(u, one))));
    return select(useLog1p, viaLog1p, logArg);
  }
  /// softplus as torch computes it: x for x > 20, else log1p(e^x).
  Value softplus(Value x) {
    Value twenty = isa<VectorType>(x.getType()) ? splat(20.0f) : cst(20.0f);
    return select(fcmp(arith::CmpFPredicate::OGT, x, twenty), x,
                  log1p(exp(x)));
  }
  Value sigmoid(Value x) {
    Value one = isa<VectorType>(x.getType()) ? splat(1.0f) : cst(1.0f);
    return fdiv(one, fadd(one, exp(neg(x))));
  }
  /// relu(x) + eps (NaN passes through).
  Value featureMap(Value x, Value eps) {
    Value zero = isa<VectorType>(x.getType()) ? splat(0.0f) : cst(0.0f);
    return fadd(select(fcmp(arith::CmpFPredicate::OLT, x, zero), zero, x), eps);
  }
  Value toFloat(Value index) {
    return arith::SIToFPOp::create(
        b, f32, arith::IndexCastOp::create(b, b.getI64Type(), index));
  }

  Value load(Value m, ValueRange i) { return memref::LoadOp::create(b, m, i); }
  void store(Value v, Value m, ValueRange i) {
    memref::StoreOp::create(b, v, m, i);
  }
  Value vload(Value m, ValueRange i) {
    return vector::LoadOp::create(b, vf, m, i);
  }
  void vstore(Value v, Value m, ValueRange i) {
    vector::StoreOp::create(b, v, m, i);
  }
  /// Prefetches the cache line of m[i] into all cache levels; never faults
  /// and never changes a result (an index past the end only wastes it).
  void prefetch(Value m, ValueRange i, bool write = false) {
    memref::PrefetchOp::create(b, m, i, write, /*localityHint=*/3,
                               /*isDataCache=*/true);
  }
  /// Prefetches channels [c0, c0 + width) of row (bi, t, h) in the read's
  /// layout, one 64-byte line at a time. In bthd the rows of one head lie
  /// H * d floats apart, a few per page, and the hardware prefetchers do not
  /// cross pages: emitters fetch the next chunk's rows while one computes.
  void prefetchRow(Value m, Value bi, Value t, Value h, Value c0, Value width,
                   bool write = false) {
    loop(idx(0), width, idx(16), [&](Value c) {
      prefetch(m, at(bi, t, h, add(c0, c)), write);
    });
  }
  /// Lanes [0, n) set.
  Value mask(Value n) {
    return vector::CreateMaskOp::create(b, vi1, ValueRange{n});
  }
  Value vloadMasked(Value m, ValueRange i, Value msk) {
    return vector::MaskedLoadOp::create(b, vf, m, i, msk, splat(0.0f));
  }
  void vstoreMasked(Value v, Value m, ValueRange i, Value msk) {
    vector::MaskedStoreOp::create(b, m, i, msk, v);
  }
  /// Lanes of `m` at `base` with the last index replaced by `indices` (an
  /// index vector); lanes off `msk` read 0.
  Value gather(Value m, ValueRange base, Value indices, Value msk) {
    return vector::GatherOp::create(b, vf, m, base, indices, msk, splat(0.0f));
  }
  Value dim(Value m, int64_t d) { return memref::DimOp::create(b, m, d); }
  /// Indices of (batch, time, head, channel) in the read's layout.
  SmallVector<Value, 4> at(Value bi, Value t, Value h, Value c) {
    if (layout == Layout::bthd)
      return {bi, t, h, c};
    return {bi, h, t, c};
  }
  /// A 64-byte aligned f32 scratch buffer, freed by freeScratch().
  Value alloc(ArrayRef<int64_t> shape, ValueRange dyn) {
    auto type = MemRefType::get(shape, f32);
    Value m = memref::AllocOp::create(b, type, dyn, b.getI64IntegerAttr(64));
    scratch.push_back(m);
    return m;
  }
  void freeScratch() {
    for (Value m : scratch)
      memref::DeallocOp::create(b, m);
    scratch.clear();
  }

  /// scf.for over [lb, ub) with `inits`; `body(iv, iterArgs)` returns the
  /// values to yield.
  template <typename Fn>
  SmallVector<Value> loop(Value lb, Value ub, Value step, ValueRange inits,
                          Fn body) {
    auto forOp = scf::ForOp::create(
        b, lb, ub, step, inits,
        [&](OpBuilder &nb, Location, Value iv, ValueRange args) {
          OpBuilder::InsertionGuard guard(b);
          b.setInsertionPoint(nb.getInsertionBlock(), nb.getInsertionPoint());
          SmallVector<Value> yields = body(iv, args);
          scf::YieldOp::create(b, yields);
        });
    return SmallVector<Value>(forOp.getResults());
  }
  template <typename Fn> void loop(Value lb, Value ub, Value step, Fn body) {
    loop(lb, ub, step, ValueRange{}, [&](Value iv, ValueRange) {
      body(iv);
      return SmallVector<Value>{};
    });
  }
  /// scf.if with no results.
  template <typename Fn> void when(Value cond, Fn body) {
    scf::IfOp::create(b, cond, [&](OpBuilder &nb, Location) {
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPoint(nb.getInsertionBlock(), nb.getInsertionPoint());
      body();
      scf::YieldOp::create(b);
    });
  }
};

} // namespace mlir::fem::cpu

#endif // FEMC_PASSES_CPU_BUILDER_H
