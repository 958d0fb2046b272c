//===- FEMPriors.cpp - table-driven checks of FEM read operands ------------===//
#include "dialect/FEMPriors.h"
#include "dialect/FEMOps.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <cmath>

using namespace mlir;
using namespace mlir::fem;
namespace priors = femc::priors;

LogicalResult mlir::fem::checkPositiveExtents(Operation *op,
                                              const priors::PriorInfo &info,
                                              int64_t dk, StringRef dkSource,
                                              int64_t n, StringRef nSource) {
  StringRef kindName(info.name.data(), info.name.size());
  if (info.usesKeys && dk == 0)
    return op->emitOpError() << "prior '" << kindName
                             << "' needs dk >= 1 (the width of q and k), "
                                "found dk = 0 ("
                             << dkSource << ")";
  if (info.algorithm == priors::ReadAlgorithm::SsmScan && n == 0)
    return op->emitOpError() << "prior '" << kindName
                             << "' needs N >= 1 (the state size of A, Bs and "
                                "Cs), found N = 0 ("
                             << nSource << ")";
  return success();
}

LogicalResult mlir::fem::checkStaticSize(Operation *op, StringRef what,
                                         Type type) {
  auto shaped = dyn_cast<ShapedType>(type);
  if (!shaped || !shaped.hasRank())
    return success();
  Type element = shaped.getElementType();
  int64_t bytes = element.isIntOrFloat()
                      ? std::max<int64_t>(1, (element.getIntOrFloatBitWidth() +
                                              7) / 8)
                      : 8;
  int64_t total = bytes;
  bool overflow = false;
  for (int64_t extent : shaped.getShape()) {
    if (ShapedType::isDynamic(extent))
      continue;
    if (extent == 0)
      return success();
    overflow |= __builtin_mul_overflow(total, extent, &total);
  }
  if (!overflow)
    return success();
  return op->emitOpError()
         << what << " (" << type
         << ") is too large: its static extents hold more than 2^63 - 1 bytes ("
         << bytes << " per element), which a 64-bit byte count cannot address";
}

std::string mlir::fem::productText(StringRef names, int64_t a, int64_t b,
                                   std::optional<int64_t> &product) {
  std::string text;
  llvm::raw_string_ostream os(text);
  os << names << " = " << a << " * " << b;
  int64_t value;
  if (__builtin_mul_overflow(a, b, &value)) {
    product.reset();
    os << ", which overflows 64 bits";
  } else {
    product = value;
    os << " = " << value;
  }
  return text;
}

LogicalResult mlir::fem::verifyReadOperands(Operation *op, PriorKind kind,
                                            Layout layout, bool causal,
                                            ArrayRef<NamedOperand> operands) {
  const priors::PriorInfo &info = getPriorInfo(kind);
  StringRef kindName(info.name.data(), info.name.size());
  for (const NamedOperand &o : operands) {
    bool used = priors::usesOperand(info, std::string_view(o.name.data(),
                                                            o.name.size()),
                                    /*hasMask=*/true);
    if (o.value && !used)
      return op->emitOpError() << "operand '" << o.name
                               << "' is not used by prior '" << kindName
                               << "'";
    bool optional = o.name == "mask" || o.name == "state" ||
                    o.name == "state_out";
    if (!o.value && used && !optional)
      return op->emitOpError() << "prior '" << kindName
                               << "' requires operand '" << o.name << "'";
  }

  // The carried state is float32 whatever the storage of the other operands.
  for (const NamedOperand &o : operands)
    if (o.value && (o.name == "state" || o.name == "state_out") &&
        !cast<ShapedType>(o.value.getType()).getElementType().isF32())
      return op->emitOpError()
             << "operand '" << o.name << "' (the carried state) must be f32, "
             << "found " << cast<ShapedType>(o.value.getType()).getElementType();

  Type elementType;
  StringRef elementSource;
  for (const NamedOperand &o : operands) {
    if (!o.value || o.name == "mask" || o.name == "state" ||
        o.name == "state_out")
      continue;
    Type et = cast<ShapedType>(o.value.getType()).getElementType();
    if (!elementType) {
      elementType = et;
      elementSource = o.name;
    } else if (et != elementType) {
      return op->emitOpError()
             << "operand '" << o.name << "' has element type " << et
             << ", expected " << elementType << " (the element type of '"
             << elementSource << "')";
    }
  }

  llvm::StringMap<std::pair<int64_t, std::string>> bound;
  for (const NamedOperand &o : operands) {
    if (!o.value)
      continue;
    auto shaped = cast<ShapedType>(o.value.getType());
    std::vector<std::string_view> dims = priors::operandDims(
        info, std::string_view(o.name.data(), o.name.size()),
        layout == Layout::bhtd, causal);
    SmallVector<StringRef> names;
    for (std::string_view d : dims)
      names.push_back(StringRef(d.data(), d.size()));
    if (shaped.getRank() != static_cast<int64_t>(names.size()))
      return op->emitOpError()
             << "operand '" << o.name << "' must have rank " << names.size()
             << " (" << llvm::join(names, ",") << "), found rank "
             << shaped.getRank() << " in " << o.value.getType();
    if (failed(checkStaticSize(op, ("operand '" + o.name + "'").str(),
                               o.value.getType())))
      return failure();
    for (auto [i, extent] : llvm::enumerate(shaped.getShape())) {
      if (ShapedType::isDynamic(extent))
        continue;
      auto it = bound.find(names[i]);
      if (it == bound.end()) {
        bound[names[i]] = {extent, ("operand '" + o.name + "'").str()};
        continue;
      }
      if (it->second.first != extent)
        return op->emitOpError()
               << "operand '" << o.name << "' dimension " << i << " ("
               << names[i] << ") must be " << it->second.first
               << " to match " << it->second.second << ", found " << extent;
    }
  }
  auto get = [&](StringRef d) {
    auto it = bound.find(d);
    return it == bound.end() ? ShapedType::kDynamic : it->second.first;
  };
  int64_t e = get("E"), h = get("H"), dv = get("dv"), hkv = get("Hkv"),
          dk = get("dk");
  auto source = [&](StringRef d) {
    auto it = bound.find(d);
    return it == bound.end() ? std::string() : it->second.second;
  };
  if (failed(checkPositiveExtents(op, info, dk, source("dk"), get("N"),
                                  source("N"))))
    return failure();
  if (hkv == 0)
    return op->emitOpError() << "the number of key/value heads Hkv ("
                             << source("Hkv") << ") must be at least 1, found 0";
  if (h == 0)
    return op->emitOpError() << "the number of heads H (" << source("H")
                             << ") must be at least 1, found 0";
  if (!ShapedType::isDynamic(e) && !ShapedType::isDynamic(h) &&
      !ShapedType::isDynamic(dv)) {
    std::optional<int64_t> hdv;
    std::string text = productText("H * dv", h, dv, hdv);
    if (hdv != e)
      return op->emitOpError() << "E (" << bound["E"].second
                               << ") must equal " << text << ", found " << e;
  }
  if (!ShapedType::isDynamic(h) && !ShapedType::isDynamic(hkv) &&
      (hkv == 0 || h % hkv != 0))
    return op->emitOpError()
           << "the number of query heads H = " << h
           << " must be a multiple of the number of key/value heads Hkv = "
           << hkv;
  if (!ShapedType::isDynamic(dk) && !ShapedType::isDynamic(dv))
    if (auto why = priors::dkDividesWidthError(info, dk, dv))
      return op->emitOpError() << *why;
  // The state's last extent Ks is fixed by the prior, dk and N.
  for (const NamedOperand &o : operands) {
    if (!o.value || (o.name != "state" && o.name != "state_out"))
      continue;
    int64_t n = get("N");
    int64_t width = priors::stateChannelWidth(
        info, ShapedType::isDynamic(dk) ? -1 : dk,
        ShapedType::isDynamic(n) ? -1 : n);
    int64_t ks = cast<ShapedType>(o.value.getType()).getShape().back();
    if (width < 0)
      return op->emitOpError()
             << "operand '" << o.name << "' needs a static "
             << (info.algorithm == priors::ReadAlgorithm::SsmScan ? "N" : "dk")
             << ": the state's last extent Ks is computed from it";
    if (ks != width)
      return op->emitOpError()
             << "operand '" << o.name << "' dimension 3 (Ks) must be "
             << width << " for prior '" << kindName
             << "' (docs/semantics.md, \"Segments\"), found "
             << (ShapedType::isDynamic(ks) ? std::string("?")
                                           : std::to_string(ks));
  }
  return success();
}

//===----------------------------------------------------------------------===//
// ScanReadOp
//===----------------------------------------------------------------------===//

LogicalResult ScanReadOp::verify() {
  const priors::PriorInfo &info = getPriorInfo(getKind());
  if (info.grid != priors::GridKind::Scan)
    return emitOpError() << "prior '" << stringifyPriorKind(getKind())
                         << "' is not read by a scan; its tiled form is "
                            "fem.tile_read";
  for (auto [x, name] : {std::pair{getCapAttr().getValueAsDouble(), "cap"},
                         std::pair{getEpsAttr().getValueAsDouble(), "eps"}})
    if (!(x > 0 && std::isfinite(x)))
      return emitOpError() << "attribute '" << name
                           << "' must be positive and finite, found " << x;
  if (std::optional<std::string> bad =
          priors::checkTiles(info, toTiles(getTiles())))
    return emitOpError() << "tiles " << getTiles() << ": " << *bad;
  if (static_cast<bool>(getKeyBegin()) != static_cast<bool>(getKeyEnd()))
    return emitOpError() << "'keys' needs both its begin and its end";
  if (getKeyBegin() &&
      (info.algorithm != priors::ReadAlgorithm::ChunkedLinear ||
       priors::keysOnQueryAxis(info, getCausal())))
    return emitOpError() << "'keys' (a key range of a split read) is for "
                            "non-causal linear reads only";
  NamedOperand operands[] = {
      {getQ(), "q"},       {getK(), "k"},         {getV(), "v"},
      {getBetaRaw(), "beta_raw"}, {getLam(), "lam"}, {getGate(), "gate"},
      {getMask(), "mask"}, {getDecay(), "decay"}, {getDelta(), "delta"},
      {getA(), "A"},       {getBs(), "Bs"},       {getCs(), "Cs"},
      {getD(), "D"},       {getState(), "state"}, {getOut(), "out"},
      {getStateOut(), "state_out"}};
  if (!getStateOnly())
    return verifyReadOperands(*this, getKind(), getLayout(), getCausal(),
                              operands);
  // Phase 1 of the parallel prefix: state_out's records carry one more slot
  // (the segment's total log decay), so it is checked here, not as a state.
  auto stateOut = dyn_cast_or_null<ShapedType>(
      getStateOut() ? getStateOut().getType() : Type());
  if (!stateOut || stateOut.getRank() != 4)
    return emitOpError() << "'state_only' needs a rank-4 'state_out'";
  operands[15].value = Value();
  if (failed(verifyReadOperands(*this, getKind(), getLayout(), getCausal(),
                                operands)))
    return failure();
  int64_t dk = getQ() ? cast<ShapedType>(getQ().getType()).getShape().back()
                      : int64_t(-1);
  int64_t n = getA() ? cast<ShapedType>(getA().getType()).getShape().back()
                     : int64_t(-1);
  int64_t width = priors::stateChannelWidth(
      info, ShapedType::isDynamic(dk) ? -1 : dk,
      ShapedType::isDynamic(n) ? -1 : n);
  int64_t ks = stateOut.getShape().back();
  if (width >= 0 && !ShapedType::isDynamic(ks) && ks != width + 1)
    return emitOpError() << "'state_only' needs 'state_out' dimension 3 of "
                         << width + 1 << " (Ks + 1), found " << ks;
  return success();
}
