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
/// 2^-126 itself. The epilogues' logAddExpSorted drops the floor term
/// e^(log tiny - M - log Z) where it lies below e^-80 of log Z (so that no
/// exp builds a subnormal); they add tiny to beta*F = log Z + M instead,
/// which is F's own value to float32 precision there (log1p(x) = x), and
/// keeps F = tiny/beta where the read is exactly 1 (v = 0: beta*F =
/// log(1 + tiny)), where dropping it gave 0.
constexpr float kTiny = 1.17549435082228750797e-38f;

/// A read's key mask, where it has one, must be i8 bytes in memory; the
/// error on `op` names `pass`, the lowering that reads the mask.
inline LogicalResult verifyMaskBytes(Operation *op, Value mask,
                                     StringRef pass) {
  if (mask && !cast<MemRefType>(mask.getType()).getElementType().isInteger(8))
    return op->emitError() << pass
                           << ": the key mask must be i8 bytes in memory, "
                              "found "
                           << mask.getType();
  return success();
}

/// Storage of the kernel's float operands. A kernel's float operands share
/// one element type in memory (the dialect's rule): f32, f16 or bf16. Every
/// emitter reads and writes them through these functions, so the
/// conversions live here and nowhere else: a load widens to f32 (exactly),
/// all arithmetic is f32, a store rounds once to nearest even. Scratch is
/// always f32; f32 and non-float (i8 mask) memrefs pass through unchanged.
///
/// 16-bit values are handled as i16 bit patterns from the memory access on:
/// every f16/bf16 load is bitcast to i16 at once (and every store stores a
/// bitcast of i16), so LLVM loads and stores i16. Without AVX512-BF16 the
/// x86 backend keeps a scalar bf16 *value* as an f32 and rounds it back with
/// a call to __truncsfbf2 (which the kernel library cannot link); a lane of
/// a masked or gathered 16-bit load would be such a value.
namespace storage {

/// The element type of memref `m`.
inline Type elementType(Value m) {
  return cast<MemRefType>(m.getType()).getElementType();
}
/// Whether the element type is a 16-bit float that the emitters convert.
inline bool isNarrow(Type t) { return t.isF16() || t.isBF16(); }
/// The element types the CPU emitters read and write.
inline bool isSupported(Type t) { return t.isF32() || isNarrow(t); }

/// `type` (a scalar type) with the shape of `like`'s type (scalar or vector).
inline Type shapedLike(Value like, Type type) {
  if (auto v = dyn_cast<VectorType>(like.getType()))
    return VectorType::get(v.getShape(), type);
  return type;
}
/// The integer constant `v` of `type` (an integer or a vector of integers).
inline Value intConstant(ImplicitLocOpBuilder &b, Type type, int64_t v) {
  auto e = cast<IntegerType>(getElementTypeOrSelf(type));
  if (auto s = dyn_cast<ShapedType>(type))
    return arith::ConstantOp::create(
        b, type, DenseElementsAttr::get(s, APInt(e.getWidth(), v)));
  return arith::ConstantOp::create(b, type, b.getIntegerAttr(e, v));
}

/// `bits` (i16 patterns of `storage`, f16 or bf16; scalar or vector) as f32,
/// exactly. bf16 is the top half of an f32: a 16-bit shift. f16: arith.extf
/// (vcvtph2ps with F16C, which every x86-64-v3 host has).
inline Value widenBits(ImplicitLocOpBuilder &b, Value bits, Type storage) {
  Type f32 = shapedLike(bits, b.getF32Type());
  if (storage.isF16())
    return arith::ExtFOp::create(
        b, f32,
        Value(arith::BitcastOp::create(b, shapedLike(bits, storage), bits)));
  Type i32 = shapedLike(bits, b.getI32Type());
  Value wide = arith::ExtUIOp::create(b, i32, bits);
  return arith::BitcastOp::create(
      b, f32, arith::ShLIOp::create(b, wide, intConstant(b, i32, 16)));
}

/// `x` (f32, scalar or vector) rounded once to `storage` (f16 or bf16), to
/// nearest even, as i16 bit patterns. bf16: add 0x7fff plus the lowest kept
/// bit and drop the low half (a finite value past the largest bf16 rounds
/// to Inf, as IEEE does); a NaN stays a NaN (made quiet, sign kept). f16:
/// arith.truncf (vcvtps2ph, round to nearest even).
inline Value narrowBits(ImplicitLocOpBuilder &b, Value x, Type storage) {
  Type i16 = shapedLike(x, b.getI16Type()), i32 = shapedLike(x, b.getI32Type());
  if (storage.isF16())
    return arith::BitcastOp::create(
        b, i16, arith::TruncFOp::create(b, shapedLike(x, storage), x));
  Value bits = arith::BitcastOp::create(b, i32, x);
  Value high = arith::ShRUIOp::create(b, bits, intConstant(b, i32, 16));
  Value lsb = arith::AndIOp::create(b, high, intConstant(b, i32, 1));
  Value rounded = arith::AddIOp::create(
      b, bits, arith::AddIOp::create(b, lsb, intConstant(b, i32, 0x7fff)));
  Value kept = arith::TruncIOp::create(
      b, i16, arith::ShRUIOp::create(b, rounded, intConstant(b, i32, 16)));
  Value quietNaN = arith::OrIOp::create(
      b, arith::TruncIOp::create(b, i16, high), intConstant(b, i16, 0x40));
  Value isNaN = arith::CmpFOp::create(b, arith::CmpFPredicate::UNO, x, x);
  return arith::SelectOp::create(b, isNaN, quietNaN, kept);
}

/// The i16 patterns of m[i] (a 16-bit float memref; one element).
inline Value loadBits(ImplicitLocOpBuilder &b, Value m, ValueRange i) {
  return arith::BitcastOp::create(b, b.getI16Type(),
                                  memref::LoadOp::create(b, m, i));
}
/// Stores the i16 pattern `bits` at m[i] (a 16-bit float memref).
inline void storeBits(ImplicitLocOpBuilder &b, Value bits, Value m,
                      ValueRange i) {
  memref::StoreOp::create(
      b, arith::BitcastOp::create(b, elementType(m), bits), m, i);
}
/// `i` with lane `l` added to its last index.
inline SmallVector<Value> laneIndex(ImplicitLocOpBuilder &b, ValueRange i,
                                    int64_t l) {
  SmallVector<Value> at(i.begin(), i.end());
  at.back() = arith::AddIOp::create(b, at.back(),
                                    arith::ConstantIndexOp::create(b, l));
  return at;
}
/// scf.if `cond` yielding `then()` or `other()` (one value each).
template <typename Then, typename Else>
Value ifValue(ImplicitLocOpBuilder &b, Value cond, Then then, Else other) {
  auto region = [&](auto body) {
    return [&, body](OpBuilder &nb, Location) {
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPoint(nb.getInsertionBlock(), nb.getInsertionPoint());
      scf::YieldOp::create(b, ValueRange{body()});
    };
  };
  return scf::IfOp::create(b, cond, region(then), region(other)).getResult(0);
}
/// scf.if `cond` running `then()` (no results).
template <typename Then>
void ifThen(ImplicitLocOpBuilder &b, Value cond, Then then) {
  scf::IfOp::create(b, cond, [&](OpBuilder &nb, Location) {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPoint(nb.getInsertionBlock(), nb.getInsertionPoint());
    then();
    scf::YieldOp::create(b);
  });
}

/// m[i] as f32 (a float memref) or as stored (any other element type).
inline Value load(ImplicitLocOpBuilder &b, Value m, ValueRange i) {
  Type et = elementType(m);
  if (!isNarrow(et))
    return memref::LoadOp::create(b, m, i);
  return widenBits(b, loadBits(b, m, i), et);
}
/// `lanes` elements of m at i, as f32.
inline Value vload(ImplicitLocOpBuilder &b, Value m, ValueRange i,
                   int64_t lanes) {
  Type et = elementType(m);
  auto type = VectorType::get({lanes}, et);
  Value v = vector::LoadOp::create(b, type, m, i);
  if (!isNarrow(et))
    return v;
  auto bitsType = VectorType::get({lanes}, b.getI16Type());
  return widenBits(b, arith::BitcastOp::create(b, bitsType, v), et);
}
/// Lanes of m at i where `msk` is set, 0 elsewhere, as f32. For 16-bit
/// storage a full mask takes one vector load and a partial one loads lane
/// by lane as i16 (see the note above).
inline Value vloadMasked(ImplicitLocOpBuilder &b, Value m, ValueRange i,
                         Value msk, int64_t lanes) {
  Type et = elementType(m);
  if (!isNarrow(et)) {
    auto type = VectorType::get({lanes}, et);
    Value zero = arith::ConstantOp::create(
        b, type, DenseElementsAttr::get(type, b.getZeroAttr(et)));
    return vector::MaskedLoadOp::create(b, type, m, i, msk, zero);
  }
  auto bitsType = VectorType::get({lanes}, b.getI16Type());
  Value full = vector::ReductionOp::create(b, vector::CombiningKind::AND, msk);
  Value bits = ifValue(
      b, full,
      [&] {
        return arith::BitcastOp::create(
            b, bitsType,
            vector::LoadOp::create(b, VectorType::get({lanes}, et), m, i));
      },
      [&] {
        Value v = intConstant(b, bitsType, 0);
        for (int64_t l = 0; l < lanes; ++l) {
          Value lane = ifValue(
              b, vector::ExtractOp::create(b, msk, l),
              [&] { return loadBits(b, m, laneIndex(b, i, l)); },
              [&] { return intConstant(b, b.getI16Type(), 0); });
          v = vector::InsertOp::create(b, lane, v, l);
        }
        return v;
      });
  return widenBits(b, bits, et);
}
/// Stores f32 `v` (scalar) at m[i], rounded to m's element type.
inline void store(ImplicitLocOpBuilder &b, Value v, Value m, ValueRange i) {
  Type et = elementType(m);
  if (!isNarrow(et))
    memref::StoreOp::create(b, v, m, i);
  else
    storeBits(b, narrowBits(b, v, et), m, i);
}
/// Stores the f32 vector `v` at m[i], rounded to m's element type.
inline void vstore(ImplicitLocOpBuilder &b, Value v, Value m, ValueRange i) {
  Type et = elementType(m);
  if (isNarrow(et))
    v = arith::BitcastOp::create(b, shapedLike(v, et), narrowBits(b, v, et));
  vector::StoreOp::create(b, v, m, i);
}
/// Stores the lanes of f32 `v` where `msk` is set, rounded to m's element
/// type (16-bit storage: one vector store for a full mask, else lane by
/// lane as i16).
inline void vstoreMasked(ImplicitLocOpBuilder &b, Value v, Value m,
                         ValueRange i, Value msk) {
  Type et = elementType(m);
  if (!isNarrow(et)) {
    vector::MaskedStoreOp::create(b, m, i, msk, v);
    return;
  }
  Value bits = narrowBits(b, v, et);
  int64_t lanes = cast<VectorType>(v.getType()).getNumElements();
  Value full = vector::ReductionOp::create(b, vector::CombiningKind::AND, msk);
  scf::IfOp::create(
      b, full,
      [&](OpBuilder &nb, Location) {
        OpBuilder::InsertionGuard guard(b);
        b.setInsertionPoint(nb.getInsertionBlock(), nb.getInsertionPoint());
        vector::StoreOp::create(
            b, arith::BitcastOp::create(b, shapedLike(v, et), bits), m, i);
        scf::YieldOp::create(b);
      },
      [&](OpBuilder &nb, Location) {
        OpBuilder::InsertionGuard guard(b);
        b.setInsertionPoint(nb.getInsertionBlock(), nb.getInsertionPoint());
        for (int64_t l = 0; l < lanes; ++l)
          ifThen(b, vector::ExtractOp::create(b, msk, l), [&] {
            storeBits(b, vector::ExtractOp::create(b, bits, l), m,
                      laneIndex(b, i, l));
          });
        scf::YieldOp::create(b);
      });
}
/// Lanes of m at `base` with the last index replaced by `indices`; lanes
/// off `msk` read 0; as f32 (16-bit storage: lane by lane as i16).
inline Value gather(ImplicitLocOpBuilder &b, Value m, ValueRange base,
                    Value indices, Value msk, int64_t lanes) {
  Type et = elementType(m);
  if (!isNarrow(et)) {
    auto type = VectorType::get({lanes}, et);
    Value zero = arith::ConstantOp::create(
        b, type, DenseElementsAttr::get(type, b.getZeroAttr(et)));
    return vector::GatherOp::create(b, type, m, base, indices, msk, zero);
  }
  auto bitsType = VectorType::get({lanes}, b.getI16Type());
  Value v = intConstant(b, bitsType, 0);
  for (int64_t l = 0; l < lanes; ++l) {
    Value lane = ifValue(
        b, vector::ExtractOp::create(b, msk, l),
        [&] {
          SmallVector<Value> at(base.begin(), base.end());
          at.back() = arith::AddIOp::create(
              b, at.back(), vector::ExtractOp::create(b, indices, l));
          return loadBits(b, m, at);
        },
        [&] { return intConstant(b, b.getI16Type(), 0); });
    v = vector::InsertOp::create(b, lane, v, l);
  }
  return widenBits(b, v, et);
}

} // namespace storage

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
  /// The fast-math flags of fadd, fsub and fmul: none for the CPU emitters,
  /// which write their FMAs themselves (fma()); the GPU kernel sets
  /// `contract` so the back end fuses a multiply and an add.
  arith::FastMathFlags addMulFlags = arith::FastMathFlags::none;

  Value idx(int64_t v) { return arith::ConstantIndexOp::create(b, v); }
  Value cst(float v) {
    return arith::ConstantFloatOp::create(b, f32, llvm::APFloat(v));
  }
  Value splat(float v) {
    return arith::ConstantOp::create(b, vf, DenseElementsAttr::get(vf, v));
  }
  /// The constant `v` shaped like `x`: a splat for a vector, else a scalar.
  Value cstLike(Value x, float v) {
    return isa<VectorType>(x.getType()) ? splat(v) : cst(v);
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
  /// `x` rounded down to a multiple of `q`.
  Value floorTo(Value x, Value q) { return mul(divI(x, q), q); }
  Value fadd(Value x, Value y) {
    return arith::AddFOp::create(b, x, y, addMulFlags);
  }
  Value fsub(Value x, Value y) {
    return arith::SubFOp::create(b, x, y, addMulFlags);
  }
  Value fmul(Value x, Value y) {
    return arith::MulFOp::create(b, x, y, addMulFlags);
  }
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
  /// max that propagates a NaN of either operand (torch.max): x where x > y
  /// (ordered) or x is NaN, else y (NaN when y is). An unordered compare
  /// here would pick x for a NaN y and lose it.
  Value fmaxNaN(Value x, Value y) {
    Value pick = arith::OrIOp::create(
        b, fcmp(arith::CmpFPredicate::OGT, x, y),
        fcmp(arith::CmpFPredicate::UNO, x, x));
    return select(pick, x, y);
  }
  /// clamp(x, lo, hi) that lets NaN through.
  Value clamp(Value x, Value lo, Value hi) {
    Value low = select(fcmp(arith::CmpFPredicate::OLT, x, lo), lo, x);
    return select(fcmp(arith::CmpFPredicate::OGT, x, hi), hi, low);
  }
  Value exp(Value x) { return math::ExpOp::create(b, x); }
  /// expm1(z) for z in [-ln 2, 0] (a narrow channel) to a few ulp relative:
  /// z * sum_{n<9} z^n/(n+1)!, whose truncation error is below
  /// 0.7^9/10! = 1.1e-8 relative. Nine multiply-adds and no exp: vector.fma
  /// on a vector `z`, a multiply and an add on a scalar (fused where
  /// addMulFlags allow contraction).
  Value expm1Narrow(Value z) {
    bool vec = isa<VectorType>(z.getType());
    double fact = 362880.0; // 9!
    Value p = cstLike(z, static_cast<float>(1.0 / fact));
    for (int n = 8; n >= 1; --n) {
      fact /= n + 1;
      p = vec ? fma(p, z, cstLike(z, static_cast<float>(1.0 / fact)))
              : fadd(fmul(p, z), cstLike(z, static_cast<float>(1.0 / fact)));
    }
    return fmul(p, z);
  }
  /// X - o of a panel in the offset form (o = 1 on narrow and centred
  /// channels, else 0; `ez` is e^z as the caller computes it): e^z - o, but
  /// the expm1 polynomial where o = 1 and |z| <= ln 2 (every key of a
  /// narrow channel, the keys near a centred channel's centre). e^z - 1
  /// there rounds to ~u relative to 1, a fixed error that keys of equal
  /// values do not average out (F's error u/beta against an output of the
  /// values' spread, which may be far smaller).
  Value offsetTilt(Value z, Value ez, Value offset) {
    Value small = arith::AndIOp::create(
        b, fcmp(arith::CmpFPredicate::OGT, offset, cstLike(offset, 0.5f)),
        fcmp(arith::CmpFPredicate::OLE, math::AbsFOp::create(b, z),
             cstLike(z, femc::priors::kNarrowRange)));
    return select(small, expm1Narrow(z), fsub(ez, offset));
  }
  /// expm1 of any x (the math dialect's: Kahan's (e^x - 1) x / log e^x).
  Value expm1(Value x) { return math::ExpM1Op::create(b, x); }
  Value log(Value x) { return math::LogOp::create(b, x); }
  Value log1p(Value x) { return math::Log1pOp::create(b, x); }
  Value sqrt(Value x) { return math::SqrtOp::create(b, x); }
  /// useLog1p ? log1p(x) : log(y) with one log: bit for bit what the two
  /// ops give after populateMathPolynomialApproximationPatterns, whose log1p
  /// is Kahan's u = 1 + x, (u == 1 || u == log u) ? x : x * (log u / (u - 1)).
  Value log1pOrLog(Value useLog1p, Value x, Value y) {
    Value one = cstLike(x, 1.0f);
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
    Value twenty = cstLike(x, 20.0f);
    return select(fcmp(arith::CmpFPredicate::OGT, x, twenty), x,
                  log1p(exp(x)));
  }
  /// The same with the threshold 20 (shaped like `x`) made once by the
  /// caller. It emits e^x before the compare (the softmax read's order,
  /// which its generated code keeps).
  Value softplus(Value x, Value twenty) {
    Value soft = log1p(exp(x));
    return select(fcmp(arith::CmpFPredicate::OGT, x, twenty), x, soft);
  }
  Value sigmoid(Value x) {
    Value one = cstLike(x, 1.0f);
    return fdiv(one, fadd(one, exp(neg(x))));
  }
  /// relu(x) + eps (NaN passes through).
  Value featureMap(Value x, Value eps) {
    Value zero = cstLike(x, 0.0f);
    return fadd(select(fcmp(arith::CmpFPredicate::OLT, x, zero), zero, x), eps);
  }
  Value toFloat(Value index) {
    return arith::SIToFPOp::create(
        b, f32, arith::IndexCastOp::create(b, b.getI64Type(), index));
  }
  /// Whether key s of batch `batch` is kept: its byte in the key mask
  /// (B, S) is not 0.
  Value maskKeeps(Value keyMask, Value batch, Value s) {
    return arith::CmpIOp::create(
        b, arith::CmpIPredicate::ne, load(keyMask, {batch, s}),
        arith::ConstantIntOp::create(b, b.getI8Type(), 0));
  }
  /// The number of keys a non-causal row reads, as a float: S, or the keys
  /// the mask keeps (the centred tilt's mean divides by it).
  Value keptKeys(Value keyMask, Value batch, Value S) {
    if (!keyMask)
      return toFloat(S);
    return loop(idx(0), S, idx(1), {cst(0.0f)}, [&](Value s, ValueRange it) {
      return SmallVector<Value>{
          select(maskKeeps(keyMask, batch, s), fadd(it[0], cst(1.0f)), it[0])};
    })[0];
  }
  /// The centred tilt's shift (dialect/Priors.h, kCentredRange): the
  /// values' clipped mean kept inside [lo, min(hi, lo + span)], in the
  /// caller's units (beta*v with span kCentreSpan, or v with
  /// kCentreSpan/beta). A NaN mean (from +inf and -inf among the values)
  /// takes lo: fmax gives its second operand for NaN.
  Value centreShift(Value mean, Value lo, Value hi, Value span) {
    return fmin(fmax(mean, lo), fmin(hi, fadd(lo, span)));
  }
  /// The gate g = g+ * sqrt(dv) / max(||g+||, 1e-5) with the norm scaled as
  /// hypot does, so that no square overflows (gate logits >= 2e19) or
  /// underflows: with m = max g+ over the row's dv channels and u = g+/m,
  /// ||g+|| = m*||u|| and g = u * sqrt(dv) / max(||u||, 1e-5/m), where
  /// 1 <= ||u|| <= sqrt(dv). gateNormDivisor gives m from the lanes' max of
  /// g+ (a vector); the caller forms u = g+/m and the lanes' sums of u^2,
  /// from which gateNormScale gives the scalar factor for u.
  Value gateNormDivisor(Value gMaxLanes) {
    Value gMax = vector::ReductionOp::create(b, vector::CombiningKind::MAXNUMF,
                                             gMaxLanes);
    // An infinite g+ (gate logit +Inf) is left unscaled: the norm is then
    // Inf and g = Inf*0 = NaN in that channel, 0 elsewhere, as in the
    // reference (scaling would make every channel Inf/Inf or 0/Inf).
    return select(fcmp(arith::CmpFPredicate::OEQ, gMax, cst(INFINITY)),
                  cst(1.0f), gMax);
  }
  /// sqrt(dv) / max(||u||, 1e-5/m) from the lanes' sums of u^2 (a NaN g+
  /// reaches the sum, so the whole row is NaN as in the reference).
  Value gateNormScale(Value sqrtDv, Value m, Value sqLanes) {
    Value norm = sqrt(
        vector::ReductionOp::create(b, vector::CombiningKind::ADD, sqLanes));
    return fdiv(sqrtDv, fmax(fdiv(cst(1e-5f), m), norm));
  }

  // Loads and stores convert the operands' storage (see `storage` above).
  Value load(Value m, ValueRange i) { return storage::load(b, m, i); }
  void store(Value v, Value m, ValueRange i) { storage::store(b, v, m, i); }
  Value vload(Value m, ValueRange i) {
    return storage::vload(b, m, i, lanes);
  }
  void vstore(Value v, Value m, ValueRange i) { storage::vstore(b, v, m, i); }
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
  /// The row's last element is fetched too: a row that does not start on a
  /// line (malloc's 16-byte offset) spans one line more than width / perLine
  /// and its last vector load would miss; an aligned row fetches that line
  /// twice, one instruction.
  void prefetchRow(Value m, Value bi, Value t, Value h, Value c0, Value width,
                   bool write = false) {
    int64_t perLine =
        64 / (storage::elementType(m).getIntOrFloatBitWidth() / 8);
    loop(idx(0), width, idx(perLine), [&](Value c) {
      prefetch(m, at(bi, t, h, add(c0, c)), write);
    });
    Value last = maxI(sub(width, idx(1)), idx(0));
    prefetch(m, at(bi, t, h, add(c0, last)), write);
  }
  /// Lanes [0, n) set.
  Value mask(Value n) {
    return vector::CreateMaskOp::create(b, vi1, ValueRange{n});
  }
  Value vloadMasked(Value m, ValueRange i, Value msk) {
    return storage::vloadMasked(b, m, i, msk, lanes);
  }
  void vstoreMasked(Value v, Value m, ValueRange i, Value msk) {
    storage::vstoreMasked(b, v, m, i, msk);
  }
  /// Lanes of `m` at `base` with the last index replaced by `indices` (an
  /// index vector); lanes off `msk` read 0.
  Value gather(Value m, ValueRange base, Value indices, Value msk) {
    return storage::gather(b, m, base, indices, msk, lanes);
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
  /// scf.if/else with no results: `then()` where cond holds, else `other()`.
  template <typename Then, typename Else>
  void branch(Value cond, Then then, Else other) {
    auto region = [&](auto &body) {
      return [&](OpBuilder &nb, Location) {
        OpBuilder::InsertionGuard guard(b);
        b.setInsertionPoint(nb.getInsertionBlock(), nb.getInsertionPoint());
        body();
        scf::YieldOp::create(b);
      };
    };
    scf::IfOp::create(b, cond, region(then), region(other));
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
