//===- FEMOps.cpp - fem operations -----------------------------------------===//
//
// Verifiers. Every message names the operand, what was expected and what was
// found. Shapes are checked by binding named extents (B, T, S, H, Hkv, dk, dv,
// E, N) across operands: the first operand with a static extent fixes it, and
// any later operand that disagrees is reported against that first one.
//
//===----------------------------------------------------------------------===//
#include "dialect/FEMOps.h"
#include "dialect/FEMPriors.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/FormatVariadic.h"

#include <cmath>

using namespace mlir;
using namespace mlir::fem;

namespace {
/// Binds named extents across the operands of one op.
class ShapeBinder {
public:
  explicit ShapeBinder(Operation *op) : op(op) {}

  /// Checks that `shape` has one extent per entry of `dims` and binds each.
  LogicalResult bind(StringRef what, ArrayRef<int64_t> shape,
                     ArrayRef<StringRef> dims, Type shownType) {
    if (shape.size() != dims.size())
      return op->emitOpError()
             << what << " must have rank " << dims.size() << " ("
             << llvm::join(dims, ",") << "), found rank " << shape.size()
             << " in " << shownType;
    if (failed(checkStaticSize(op, what, shownType)))
      return failure();
    for (auto [i, extent] : llvm::enumerate(shape)) {
      if (ShapedType::isDynamic(extent))
        continue;
      auto it = bound.find(dims[i]);
      if (it == bound.end()) {
        bound[dims[i]] = {extent, what.str()};
        continue;
      }
      if (it->second.first != extent)
        return op->emitOpError()
               << what << " dimension " << i << " (" << dims[i]
               << ") must be " << it->second.first << " to match "
               << it->second.second << ", found " << extent;
    }
    return success();
  }

  LogicalResult bind(StringRef what, Value value, ArrayRef<StringRef> dims) {
    if (!value)
      return success();
    auto shaped = cast<ShapedType>(value.getType());
    return bind(what, shaped.getShape(), dims, value.getType());
  }

  /// Bound extent of `dim`, or ShapedType::kDynamic.
  int64_t get(StringRef dim) const {
    auto it = bound.find(dim);
    return it == bound.end() ? ShapedType::kDynamic : it->second.first;
  }
  std::string source(StringRef dim) const {
    auto it = bound.find(dim);
    return it == bound.end() ? std::string() : it->second.second;
  }

  /// E = H * dv and H divisible by Hkv. With `prior`: dk >= 1 for the
  /// priors with keys, N >= 1 for ssm, and (aft) dk divides 2 dv.
  LogicalResult checkRelations(const femc::priors::PriorInfo *prior = nullptr) {
    int64_t e = get("E"), h = get("H"), dv = get("dv"), hkv = get("Hkv"),
            dk = get("dk");
    if (prior && failed(checkPositiveExtents(op, *prior, dk, source("dk"),
                                             get("N"), source("N"))))
      return failure();
    if (hkv == 0)
      return op->emitOpError()
             << "the number of key/value heads Hkv (" << source("Hkv")
             << ") must be at least 1, found 0";
    // Checked here, not left to the ops a mixer decomposes into (whose
    // message named fem.tilt and "key/value heads" for ssm, which has none).
    if (h == 0)
      return op->emitOpError() << "the number of heads H (" << source("H")
                               << ") must be at least 1, found 0";
    if (!ShapedType::isDynamic(e) && !ShapedType::isDynamic(h) &&
        !ShapedType::isDynamic(dv)) {
      std::optional<int64_t> hdv;
      std::string text = productText("H * dv", h, dv, hdv);
      if (hdv != e)
        return op->emitOpError() << "E (" << source("E") << ") must equal "
                                 << text << ", found " << e;
    }
    if (!ShapedType::isDynamic(h) && !ShapedType::isDynamic(hkv) &&
        (hkv == 0 || h % hkv != 0))
      return op->emitOpError()
             << "the number of query heads H = " << h << " (" << source("H")
             << ") must be a multiple of the number of key/value heads Hkv = "
             << hkv << " (" << source("Hkv") << ")";
    if (prior && !ShapedType::isDynamic(dk) && !ShapedType::isDynamic(dv))
      if (auto why = femc::priors::dkDividesWidthError(*prior, dk, dv))
        return op->emitOpError() << *why;
    return success();
  }

private:
  Operation *op;
  llvm::StringMap<std::pair<int64_t, std::string>> bound;
};
} // namespace

static SmallVector<StringRef, 4> dims4(Layout layout, StringRef t, StringRef h,
                                       StringRef d) {
  if (layout == Layout::bthd)
    return {"B", t, h, d};
  return {"B", h, t, d};
}

static std::string named(StringRef kind, StringRef name) {
  return (kind + " '" + name + "'").str();
}

/// All operands of a FEM read; null where the op has no such operand.
namespace {
struct ReadOperands {
  Value q, k, v, betaRaw, lam, gate, mask, decay, delta, A, Bs, Cs, D;
  Value out; // a result (tensor ops) or the destination (tile_read)
};
} // namespace

/// Checks presence of prior-specific operands, element types and shapes.
static LogicalResult verifyRead(Operation *op, PriorKind kind, Layout layout,
                                bool causal, const ReadOperands &o,
                                ShapeBinder &binder,
                                bool checkPresence = true) {
  StringRef kindName = stringifyPriorKind(kind);
  auto requireOperand = [&](Value v, StringRef name) -> LogicalResult {
    if (!v)
      return op->emitOpError() << "prior '" << kindName
                               << "' requires operand '" << name << "'";
    return success();
  };
  auto forbidOperand = [&](Value v, StringRef name) -> LogicalResult {
    if (v)
      return op->emitOpError() << "operand '" << name
                               << "' is not used by prior '" << kindName
                               << "'";
    return success();
  };
  if (checkPresence) {
    // Which operands a prior reads comes from the prior table.
    const femc::priors::PriorInfo &info = getPriorInfo(kind);
    auto check = [&](Value v, StringRef name) {
      bool used = femc::priors::usesOperand(
          info, std::string_view(name.data(), name.size()), /*hasMask=*/true);
      if (used && name != "mask")
        return requireOperand(v, name);
      return used ? success() : forbidOperand(v, name);
    };
    bool ok = true;
    for (auto [v, name] : {std::pair{o.q, "q"}, std::pair{o.k, "k"}})
      ok &= succeeded(check(v, name));
    if (!ok)
      return failure();
    for (auto [v, name] :
         {std::pair{o.mask, "mask"}, std::pair{o.decay, "decay"},
          std::pair{o.delta, "delta"}, std::pair{o.A, "A"},
          std::pair{o.Bs, "Bs"}, std::pair{o.Cs, "Cs"}, std::pair{o.D, "D"}})
      if (failed(check(v, name)))
        return failure();
  }

  // One element type for every float operand.
  Type elementType;
  std::string elementSource;
  for (auto [v, name] :
       {std::pair{o.q, "q"}, std::pair{o.k, "k"}, std::pair{o.v, "v"},
        std::pair{o.betaRaw, "beta_raw"}, std::pair{o.lam, "lam"},
        std::pair{o.gate, "gate"}, std::pair{o.decay, "decay"},
        std::pair{o.delta, "delta"}, std::pair{o.A, "A"},
        std::pair{o.Bs, "Bs"}, std::pair{o.Cs, "Cs"}, std::pair{o.D, "D"},
        std::pair{o.out, "out"}}) {
    if (!v)
      continue;
    Type et = cast<ShapedType>(v.getType()).getElementType();
    if (!elementType) {
      elementType = et;
      elementSource = name;
    } else if (et != elementType) {
      return op->emitOpError()
             << "operand '" << name << "' has element type " << et
             << ", expected " << elementType << " (the element type of '"
             << elementSource << "')";
    }
  }

  // Keys and queries index the same positions for every causal read.
  StringRef keyDim = (causal || isAlwaysCausal(kind)) ? "T" : "S";
  StringRef kvHeads = getPriorInfo(kind).usesKeys ? "Hkv" : "H";
  if (failed(binder.bind(named("operand", "q"), o.q,
                         dims4(layout, "T", "H", "dk"))) ||
      failed(binder.bind(named("operand", "k"), o.k,
                         dims4(layout, keyDim, "Hkv", "dk"))) ||
      failed(binder.bind(named("operand", "v"), o.v,
                         dims4(layout, keyDim, kvHeads, "dv"))) ||
      failed(binder.bind(named("operand", "beta_raw"), o.betaRaw, {"E"})) ||
      failed(binder.bind(named("operand", "lam"), o.lam,
                         dims4(layout, "T", "H", "dv"))) ||
      failed(binder.bind(named("operand", "gate"), o.gate,
                         dims4(layout, "T", "H", "dv"))) ||
      failed(binder.bind(named("operand", "mask"), o.mask, {"B", keyDim})) ||
      failed(binder.bind(named("operand", "decay"), o.decay,
                         layout == Layout::bthd
                             ? SmallVector<StringRef, 3>{"B", "T", "H"}
                             : SmallVector<StringRef, 3>{"B", "H", "T"})) ||
      failed(binder.bind(named("operand", "delta"), o.delta,
                         {"B", "T", "E"})) ||
      failed(binder.bind(named("operand", "A"), o.A, {"E", "N"})) ||
      failed(binder.bind(named("operand", "Bs"), o.Bs, {"B", "T", "N"})) ||
      failed(binder.bind(named("operand", "Cs"), o.Cs, {"B", "T", "N"})) ||
      failed(binder.bind(named("operand", "D"), o.D, {"E"})) ||
      failed(binder.bind("result", o.out, dims4(layout, "T", "H", "dv"))))
    return failure();
  return binder.checkRelations(&getPriorInfo(kind));
}

static std::optional<double> asDouble(FloatAttr attr) {
  if (!attr)
    return std::nullopt;
  return attr.getValueAsDouble();
}

/// The ranges in which the float32 kernels compute cap, eps and scale to the
/// documented tolerance (docs/dialect.md, "Attribute ranges"):
/// - cap <= 43: the tilt X >= e^(-2 cap) stays a normal float32 (2^-126 =
///   e^-87.3), so Z never underflows;
/// - cap >= 1e-5 and eps <= 1e30: the clip bound cap/beta >= 1e-5/(30 + 1e30)
///   = 1e-35 stays normal for beta_raw <= 30;
/// - eps >= 1e-30: beta >= eps keeps cap/beta <= 4.3e31, so clipped values
///   and their differences stay finite for any beta_raw;
/// - scale: any normal float32 (the kernel scales score differences, which
///   never overflow); smaller values would round to a subnormal or zero.
struct NumberRange {
  const char *name;
  double lo, hi;
};
constexpr NumberRange kCapRange{"cap", 1e-5, 43.0};
constexpr NumberRange kEpsRange{"eps", 1e-30, 1e30};
/// The scale bounds as printed: both round to normal float32 values (2^-126
/// and the largest finite float32).
constexpr NumberRange kScaleRange{"scale", 1.17549435e-38, 3.40282347e38};

static LogicalResult verifyNumbers(Operation *op, std::optional<double> cap,
                                   std::optional<double> eps,
                                   std::optional<double> scale) {
  for (auto [x, range] : {std::pair{cap, kCapRange}, std::pair{eps, kEpsRange},
                          std::pair{scale, kScaleRange}})
    if (x && !(*x >= range.lo && *x <= range.hi))
      return op->emitOpError()
             << "attribute '" << range.name << "' must lie in ["
             << llvm::formatv("{0}", llvm::format("%.9g", range.lo)) << ", "
             << llvm::formatv("{0}", llvm::format("%.9g", range.hi))
             << "], found " << llvm::formatv("{0}", llvm::format("%.9g", *x));
  return success();
}

static LogicalResult verifyScaleUse(Operation *op, PriorKind kind,
                                    std::optional<double> scale) {
  if (scale && !getPriorInfo(kind).scaleAllowed)
    return op->emitOpError() << "attribute 'scale' is only valid for prior "
                                "'softmax', found prior '"
                             << stringifyPriorKind(kind) << "'";
  return success();
}

/// Binds the extents of a !fem.prior value (B x H x T x S).
static LogicalResult bindPrior(ShapeBinder &binder, Value prior, bool causal) {
  auto type = cast<PriorType>(prior.getType());
  StringRef keyDim = (causal || isAlwaysCausal(type.getKind())) ? "T" : "S";
  return binder.bind("operand 'prior'", type.getShape(),
                     {"B", "H", "T", keyDim}, type);
}

/// Binds the extents of the !fem.prior operand of a read (expect, lse,
/// fused_read) and returns whether it is causal: always-causal priors, or a
/// fem.prior op with the causal flag.
static FailureOr<bool> bindReadPrior(ShapeBinder &binder,
                                     TypedValue<PriorType> prior) {
  bool causal = isAlwaysCausal(prior.getType().getKind());
  if (auto p = prior.getDefiningOp<PriorOp>())
    causal |= p.getCausal();
  if (failed(bindPrior(binder, prior, causal)))
    return failure();
  return causal;
}

/// A read's result keeps the element type of the operand it reads.
static LogicalResult verifyResultElementType(Operation *op,
                                             StringRef operandName,
                                             Value operand, Value result) {
  Type want = cast<ShapedType>(operand.getType()).getElementType();
  Type got = cast<ShapedType>(result.getType()).getElementType();
  if (want == got)
    return success();
  return op->emitOpError() << "result element type " << got
                           << " must match operand '" << operandName
                           << "' element type " << want;
}

//===----------------------------------------------------------------------===//
// PriorOp
//===----------------------------------------------------------------------===//

LogicalResult PriorOp::verify() {
  if (failed(verifyNumbers(*this, std::nullopt, asDouble(getEpsAttr()),
                           asDouble(getScaleAttr()))) ||
      failed(verifyScaleUse(*this, getKind(), asDouble(getScaleAttr()))))
    return failure();
  auto resultType = cast<PriorType>(getResult().getType());
  if (resultType.getKind() != getKind())
    return emitOpError() << "result type must be a prior of kind '"
                         << stringifyPriorKind(getKind()) << "', found '"
                         << stringifyPriorKind(resultType.getKind()) << "'";
  ShapeBinder binder(*this);
  ReadOperands o;
  o.q = getQ();
  o.k = getK();
  o.mask = getMask();
  o.decay = getDecay();
  o.delta = getDelta();
  o.A = getA();
  o.Bs = getBs();
  o.Cs = getCs();
  o.D = getD();
  if (failed(verifyRead(*this, getKind(), getLayout(), getCausal(), o,
                        binder)))
    return failure();
  return binder.bind("result", resultType.getShape(),
                     {"B", "H", "T",
                      (getCausal() || isAlwaysCausal(getKind())) ? "T" : "S"},
                     resultType);
}

//===----------------------------------------------------------------------===//
// TiltOp
//===----------------------------------------------------------------------===//

LogicalResult TiltOp::verify() {
  if (failed(verifyNumbers(*this, asDouble(getCapAttr()), asDouble(getEpsAttr()), std::nullopt)))
    return failure();
  Layout l = getLayout();
  ShapeBinder binder(*this);
  ReadOperands o;
  o.v = getV();
  o.betaRaw = getBetaRaw();
  o.mask = getMask();
  if (failed(verifyRead(*this, PriorKind::softmax, l, false, o, binder,
                        /*checkPresence=*/false)) ||
      failed(binder.bind("result 'clipped'", getClipped(),
                         dims4(l, "S", "H", "dv"))) ||
      failed(binder.bind("result 'tilted'", getTilted(),
                         dims4(l, "S", "H", "dv"))) ||
      failed(binder.bind("result 'shift'", getShift(), {"B", "H", "dv"})))
    return failure();
  return binder.checkRelations();
}

//===----------------------------------------------------------------------===//
// ExpectOp / LseOp
//===----------------------------------------------------------------------===//

LogicalResult ExpectOp::verify() {
  ShapeBinder binder(*this);
  Layout l = getLayout();
  FailureOr<bool> causal = bindReadPrior(binder, getPrior());
  if (failed(causal))
    return failure();
  StringRef keyDim = *causal ? "T" : "S";
  if (failed(binder.bind("operand 'values'", getValues(),
                         dims4(l, keyDim, "H", "dv"))) ||
      failed(binder.bind("result", getResult(), dims4(l, "T", "H", "dv"))))
    return failure();
  return verifyResultElementType(*this, "values", getValues(), getResult());
}

LogicalResult LseOp::verify() {
  if (failed(verifyNumbers(*this, std::nullopt, asDouble(getEpsAttr()), std::nullopt)))
    return failure();
  ShapeBinder binder(*this);
  Layout l = getLayout();
  FailureOr<bool> causal = bindReadPrior(binder, getPrior());
  if (failed(causal))
    return failure();
  ReadOperands o;
  o.betaRaw = getBetaRaw();
  o.out = getResult();
  if (failed(binder.bind("operand 'tilted'", getTilted(),
                         dims4(l, *causal ? "T" : "S", "H", "dv"))) ||
      failed(binder.bind("operand 'shift'", getShift(), {"B", "H", "dv"})) ||
      failed(verifyRead(*this, PriorKind::softmax, l, *causal, o, binder,
                        /*checkPresence=*/false)))
    return failure();
  return verifyResultElementType(*this, "tilted", getTilted(), getResult());
}

//===----------------------------------------------------------------------===//
// GateOp
//===----------------------------------------------------------------------===//

LogicalResult GateOp::verify() {
  if (failed(verifyNumbers(*this, std::nullopt, asDouble(getEpsAttr()), std::nullopt)))
    return failure();
  ShapeBinder binder(*this);
  return binder.bind("result", getResult(), dims4(getLayout(), "T", "H", "dv"));
}

//===----------------------------------------------------------------------===//
// MixerOp
//===----------------------------------------------------------------------===//

LogicalResult MixerOp::verify() {
  if (failed(verifyNumbers(*this, asDouble(getCapAttr()), asDouble(getEpsAttr()),
                           asDouble(getScaleAttr()))) ||
      failed(verifyScaleUse(*this, getKind(), asDouble(getScaleAttr()))))
    return failure();
  ShapeBinder binder(*this);
  ReadOperands o{getQ(),    getK(),     getV(),     getBetaRaw(), getLam(),
                 getGate(), getMask(),  getDecay(), getDelta(),   getA(),
                 getBs(),   getCs(),    getD(),     getResult()};
  if (failed(verifyRead(*this, getKind(), getLayout(), getCausal(), o, binder)))
    return failure();
  if (!getState() && !getStateOut()) {
    // fem-expand-mixer gates the read with lam and gate into the result
    // (fem.gate, one type for all three): a static extent in one and a
    // dynamic one in another failed there, naming 'fem.gate', an op the
    // model does not have.
    for (auto [v, name] : {std::pair{getLam(), "lam"}, {getGate(), "gate"}})
      if (v.getType() != getResult().getType())
        return emitOpError()
               << "operand '" << name << "' has type " << v.getType()
               << " but the result has type " << getResult().getType()
               << ": a mixer without a carried state needs lam, gate and its "
                  "result of one type (write each extent static in all three "
                  "or dynamic in all three)";
    return success();
  }
  // The carried state: the table-driven check binds it against the rest.
  NamedOperand operands[] = {
      {getQ(), "q"},       {getK(), "k"},         {getV(), "v"},
      {getBetaRaw(), "beta_raw"}, {getLam(), "lam"}, {getGate(), "gate"},
      {getMask(), "mask"}, {getDecay(), "decay"}, {getDelta(), "delta"},
      {getA(), "A"},       {getBs(), "Bs"},       {getCs(), "Cs"},
      {getD(), "D"},       {getState(), "state"}, {getResult(), "out"},
      {getStateOut(), "state_out"}};
  return verifyReadOperands(*this, getKind(), getLayout(), getCausal(),
                            operands);
}

//===----------------------------------------------------------------------===//
// FusedReadOp
//===----------------------------------------------------------------------===//

LogicalResult FusedReadOp::verify() {
  if (failed(verifyNumbers(*this, asDouble(getCapAttr()), asDouble(getEpsAttr()), std::nullopt)))
    return failure();
  ShapeBinder binder(*this);
  PriorKind kind = getPrior().getType().getKind();
  FailureOr<bool> causal = bindReadPrior(binder, getPrior());
  if (failed(causal))
    return failure();
  if (getMask() && !getPriorInfo(kind).maskAllowed)
    return emitOpError() << "operand 'mask' is not used by prior '"
                         << stringifyPriorKind(kind) << "'";
  ReadOperands o;
  o.v = getV();
  o.betaRaw = getBetaRaw();
  o.lam = getLam();
  o.gate = getGate();
  o.mask = getMask();
  o.out = getResult();
  return verifyRead(*this, kind, getLayout(), *causal, o, binder,
                    /*checkPresence=*/false);
}

//===----------------------------------------------------------------------===//
// TileReadOp
//===----------------------------------------------------------------------===//

LogicalResult TileReadOp::verify() {
  if (failed(verifyNumbers(*this, asDouble(getCapAttr()), asDouble(getEpsAttr()),
                           asDouble(getScaleAttr()))) ||
      failed(verifyScaleUse(*this, getKind(), asDouble(getScaleAttr()))))
    return failure();
  if (getPriorInfo(getKind()).grid != femc::priors::GridKind::QueryTiles)
    return emitOpError() << "prior '" << stringifyPriorKind(getKind())
                         << "' is read by a scan; its tiled form is "
                            "fem.scan_read";
  ShapeBinder binder(*this);
  ReadOperands o;
  o.q = getQ();
  o.k = getK();
  o.v = getV();
  o.betaRaw = getBetaRaw();
  o.lam = getLam();
  o.gate = getGate();
  o.mask = getMask();
  o.out = getOut();
  return verifyRead(*this, getKind(), getLayout(), getCausal(), o, binder);
}

//===----------------------------------------------------------------------===//
// custom<PriorKind>: the prior kind as a bare keyword
//===----------------------------------------------------------------------===//

static ParseResult parsePriorKind(OpAsmParser &parser, PriorKindAttr &kind) {
  StringRef name;
  SMLoc loc = parser.getCurrentLocation();
  if (parser.parseKeyword(&name))
    return failure();
  std::optional<PriorKind> value = symbolizePriorKind(name);
  if (!value)
    return parser.emitError(loc)
           << "unknown prior kind '" << name
           << "', expected one of softmax, linear, gla, aft, ssm";
  kind = PriorKindAttr::get(parser.getContext(), *value);
  return success();
}

static void printPriorKind(OpAsmPrinter &printer, Operation *,
                           PriorKindAttr kind) {
  printer << stringifyPriorKind(kind.getValue());
}

#define GET_OP_CLASSES
#include "dialect/FEMOps.cpp.inc"
