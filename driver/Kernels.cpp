//===- Kernels.cpp - what the driver knows about each kernel --------------===//
//
// Part of the femc project.
//
//===----------------------------------------------------------------------===//

#include "driver/Kernels.h"
#include "driver/CText.h"

#include "dialect/FEMDialect.h"
#include "dialect/FEMOps.h"
#include "dialect/Priors.h"
#include "passes/Passes.h"
#include "passes/TileScan.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"

using namespace mlir;
using llvm::StringRef;

namespace femc::driver {

/// Named extents shared by the prepare functions (dialect/Priors.h's
/// kExtents, in that order); keys use T when causal.
static constexpr int kNumSymbols = femc::priors::kNumExtents;
static StringRef symbolName(int i) {
  std::string_view s = femc::priors::kExtents[i];
  return StringRef(s.data(), s.size());
}

/// The largest rank of a kernel argument (FEMRT_MAX_RANK).
static constexpr int64_t kMaxRank = 8;

/// What `symbol` is among the symbols femc generates for function `owner`
/// (kernel-level: owner_wg; layer: owner_layer, owner_fem<N>, and for
/// each FEM read owner_fem<N>_wg and owner_fem<N>_run; each also with the
/// _mlir_ciface_ prefix), or nothing.
static std::optional<std::string> generatedFor(StringRef symbol, StringRef owner) {
  symbol.consume_front("_mlir_ciface_");
  if (!symbol.consume_front(owner))
    return std::nullopt;
  if (symbol == "_wg")
    return std::string("the workgroup function of kernel ") + quoted(owner);
  if (symbol == "_layer")
    return std::string("the compiled body of layer ") + quoted(owner);
  if (!symbol.consume_front("_fem"))
    return std::nullopt;
  StringRef digits = symbol.take_while(llvm::isDigit);
  if (digits.empty())
    return std::nullopt;
  symbol = symbol.drop_front(digits.size());
  if (symbol.empty() || symbol == "_wg" || symbol == "_run")
    return ("the FEM read #" + digits + " of layer " + quoted(owner)).str();
  return std::nullopt;
}

/// Checks, before any pass runs, the names that become C symbols: every
/// public function with a body is a kernel or a layer whose name is the
/// exported C entry point, and no function may take a name femc generates
/// for another one.
bool checkFunctionNames(ModuleOp module) {
  bool ok = true;
  SmallVector<func::FuncOp> entries, all;
  for (auto f : module.getOps<func::FuncOp>()) {
    all.push_back(f);
    if (!f.isExternal() && f.isPublic())
      entries.push_back(f);
  }
  for (func::FuncOp f : entries)
    if (auto why = whyNotCName(f.getSymName())) {
      f.emitError() << "femc: function name " << quoted(f.getSymName())
                    << " cannot be a kernel's C entry point: " << *why
                    << "; use ASCII letters, digits and '_', starting with "
                       "a letter (docs/user-guide.md, \"Names\")";
      ok = false;
    }
  for (func::FuncOp g : all)
    for (func::FuncOp f : entries)
      if (f != g)
        if (auto what = generatedFor(g.getSymName(), f.getSymName())) {
          g.emitError() << "femc: function name " << quoted(g.getSymName())
                        << " is taken by " << *what
                        << "; rename one of the two functions";
          ok = false;
        }
  return ok;
}

/// The extents of argument `role`, from the prior table.
static std::string shapeDims(const KernelInfo &k, StringRef role) {
  const femc::priors::PriorInfo *info = femc::priors::findPrior(k.prior);
  if (!info)
    return "";
  return femc::priors::operandDimsString(
      *info, std::string_view(role.data(), role.size()), k.layout == "bhtd",
      k.causal);
}

/// The extent index of each name in `dims`; -1 for a name outside the
/// table (the state's Ks, fixed by the static shape), which binds nothing.
static std::vector<int> symbolsOf(StringRef dims) {
  std::vector<int> out;
  SmallVector<StringRef> parts;
  dims.split(parts, ',');
  for (StringRef p : parts) {
    out.push_back(-1);
    for (int i = 0; i < kNumSymbols; ++i)
      if (p == symbolName(i))
        out.back() = i;
  }
  return out;
}

/// Reads kernel metadata from the workgroup functions made by fem-tile.
bool collectKernels(ModuleOp module, std::vector<KernelInfo> &kernels) {
  bool ok = true;
  module.walk([&](func::FuncOp f) {
    auto kernelName = f->getAttrOfType<StringAttr>("fem.kernel");
    if (!kernelName)
      return;
    auto tileReads = llvm::to_vector(f.getOps<fem::TileReadOp>());
    auto scanReads = llvm::to_vector(f.getOps<fem::ScanReadOp>());
    if (tileReads.size() + scanReads.size() != 1) {
      f.emitError() << "femc: workgroup function without exactly one "
                       "fem.tile_read or fem.scan_read";
      ok = false;
      return;
    }
    KernelInfo k;
    k.name = kernelName.getValue().str();
    k.wgSymbol = "_mlir_ciface_" + f.getSymName().str();
    fem::PriorKind kind;
    fem::TilesAttr tiles;
    if (!tileReads.empty()) {
      fem::TileReadOp read = tileReads.front();
      kind = read.getKind();
      k.layout = fem::stringifyLayout(read.getLayout()).str();
      k.causal = read.getCausal();
      k.hasMask = static_cast<bool>(read.getMask());
      if (auto s = read.getScaleAttr())
        k.scale = s.getValueAsDouble();
      k.cap = read.getCapAttr().getValueAsDouble();
      k.eps = read.getEpsAttr().getValueAsDouble();
      tiles = read.getTiles();
    } else {
      fem::ScanReadOp read = scanReads.front();
      kind = read.getKind();
      k.layout = fem::stringifyLayout(read.getLayout()).str();
      k.causal = read.getCausal() || fem::isAlwaysCausal(kind);
      k.hasMask = static_cast<bool>(read.getMask());
      k.cap = read.getCapAttr().getValueAsDouble();
      k.eps = read.getEpsAttr().getValueAsDouble();
      tiles = read.getTiles();
      if (std::optional<std::string> why = fem::whyNotSplit(read))
        k.splitWhy = *why;
      else
        k.splitKs = fem::scanStateWidth(read);
    }
    k.wgName = f.getSymName().str();
    k.prior = fem::stringifyPriorKind(kind).str();
    k.dkDividesDv = fem::getPriorInfo(kind).dkDividesWidth;
    k.tileQ = tiles.getQ();
    k.tileK = tiles.getK();
    k.vec = tiles.getVec();
    if (auto tuned =
            module->getAttrOfType<DictionaryAttr>("fem.tuned_threads"))
      if (auto t = tuned.getAs<IntegerAttr>(k.name))
        k.threads = t.getInt();
    auto grid = fem::readWorkgroupGrid(f);
    if (failed(grid)) {
      ok = false;
      return;
    }
    for (const femc::priors::GridAxis &axis : *grid)
      k.grid.push_back({femc::priors::extentIndex(axis.symbol), axis.divisor});
    auto names = f->getAttrOfType<ArrayAttr>("fem.arg_names");
    if (!names || names.size() + 3 != f.getNumArguments()) {
      f.emitError() << "femc: workgroup function without fem.arg_names for "
                       "each buffer argument";
      ok = false;
      return;
    }
    for (auto [i, nameAttr] : llvm::enumerate(names)) {
      auto type = cast<MemRefType>(f.getArgumentTypes()[i]);
      KernelInfo::Arg a;
      a.name = cast<StringAttr>(nameAttr).getValue().str();
      a.output = femc::priors::isOutputArgument(a.name);
      a.dims = shapeDims(k, a.name);
      a.symbols = symbolsOf(a.dims);
      Type et = type.getElementType();
      if (et.isF32()) {
        a.dtype = "float32";
      } else if (et.isF16()) {
        a.dtype = "float16";
        a.bits = 16; // DLPack kDLFloat
      } else if (et.isBF16()) {
        a.dtype = "bfloat16";
        a.code = 4; // DLPack kDLBfloat
        a.bits = 16;
      } else if (et.isInteger(8)) {
        a.dtype = "uint8";
        a.code = 1;
        a.bits = 8;
      } else {
        f.emitError() << "femc: unsupported argument element type " << et;
        ok = false;
      }
      for (int64_t d : type.getShape())
        a.shape.push_back(ShapedType::isDynamic(d) ? -1 : d);
      k.args.push_back(std::move(a));
    }
    kernels.push_back(std::move(k));
  });
  return ok;
}

/// Why `name` (an argument name or a fem.dims name) cannot name a thing in
/// the library's tables, or nothing. Any other bytes are kept (escaped).
static std::optional<std::string> whyNotTableName(StringRef name) {
  if (name.empty())
    return std::string("it is empty");
  if (name.contains('\0'))
    return std::string("it contains a NUL character");
  return std::nullopt;
}

/// True if `name` is `<layer>_fem<digits>`: a FEM read outlined from it.
static bool isMixerOf(StringRef name, StringRef layer) {
  return name.consume_front(layer) && name.consume_front("_fem") &&
         !name.empty() && llvm::all_of(name, llvm::isDigit);
}

/// Reads the signature of the layer functions marked by fem-outline-mixers
/// (before bufferization: tensors with fem.name / fem.dims attributes).
bool collectLayers(ModuleOp module, std::vector<KernelInfo> &kernels) {
  bool ok = true;
  module.walk([&](func::FuncOp f) {
    auto layerName = f->getAttrOfType<StringAttr>("fem.layer");
    if (!layerName)
      return;
    KernelInfo k;
    k.name = layerName.getValue().str();
    k.wgSymbol = "_mlir_ciface_" + f.getSymName().str();
    k.layer = true;
    k.prior = "layer";
    for (auto &other : kernels)
      if (isMixerOf(other.name, k.name))
        k.mixers.push_back(other.name);
    // Where each named extent was first fixed statically: (argument, extent).
    std::vector<std::pair<std::string, int64_t>> staticSource;
    std::string where = "femc: layer @" + k.name + ": ";
    auto addArg = [&](Type type, DictionaryAttr attrs, std::string name,
                      bool output, Location loc) {
      auto tensor = dyn_cast<RankedTensorType>(type);
      // A key mask (i1 or i8, one byte per key, as for kernels) may enter
      // a layer as an argument; the result is f32.
      bool mask = tensor && !output &&
                  (tensor.getElementType().isInteger(1) ||
                   tensor.getElementType().isInteger(8));
      if (!tensor || !(tensor.getElementType().isF32() || mask)) {
        emitError(loc) << where << "argument " << quoted(name)
                       << (output ? " must be a ranked f32 tensor"
                                  : " must be a ranked f32 tensor or an "
                                    "i1/i8 mask")
                       << ", found " << type;
        ok = false;
        return;
      }
      if (auto why = whyNotTableName(name)) {
        emitError(loc) << where << "argument #" << k.args.size()
                       << " has an unusable fem.name " << quoted(name) << ": "
                       << *why;
        ok = false;
        return;
      }
      for (auto [j, other] : llvm::enumerate(k.args))
        if (other.name == name) {
          emitError(loc) << where << "arguments #" << j << " and #"
                         << k.args.size() << " are both named " << quoted(name)
                         << (output ? " (the result is named \"out\")" : "")
                         << "; argument names must be unique";
          ok = false;
          return;
        }
      if (tensor.getRank() > kMaxRank) {
        emitError(loc) << where << "argument " << quoted(name) << " has rank "
                       << tensor.getRank() << "; at most " << kMaxRank
                       << " is supported (FEMRT_MAX_RANK)";
        ok = false;
        return;
      }
      KernelInfo::Arg a;
      a.name = name;
      a.output = output;
      a.dtype = "float32";
      if (mask) {
        a.dtype = "uint8";
        a.code = 1; // DLPack kDLUInt
        a.bits = 8;
      }
      if (attrs && attrs.get("fem.dims") &&
          !attrs.getAs<StringAttr>("fem.dims")) {
        emitError(loc) << where << "fem.dims of " << quoted(name)
                       << " must be a string such as \"B,T,D\", found "
                       << attrs.get("fem.dims");
        ok = false;
        return;
      }
      SmallVector<StringRef> dims;
      if (auto d = attrs ? attrs.getAs<StringAttr>("fem.dims") : StringAttr())
        d.getValue().split(dims, ',');
      if (!dims.empty() && dims.size() != (size_t)tensor.getRank()) {
        emitError(loc) << where << "fem.dims of " << quoted(name) << " names "
                       << dims.size() << " extents for a rank-"
                       << tensor.getRank() << " tensor";
        ok = false;
        return;
      }
      std::vector<std::string> names;
      for (int64_t d = 0; d < tensor.getRank(); ++d) {
        if (!dims.empty()) {
          StringRef dim = dims[d].trim();
          if (auto why = whyNotTableName(dim)) {
            emitError(loc) << where << "fem.dims of " << quoted(name)
                           << " has an unusable name for dimension " << d
                           << ": " << *why;
            ok = false;
            return;
          }
          names.push_back(dim.str());
        } else if (tensor.isDynamicDim(d)) {
          emitError(loc) << where << "argument " << quoted(name)
                         << " has dynamic extents; name them with "
                            "{fem.dims = \"B,T,...\"} so they can be "
                            "checked against the other arguments";
          ok = false;
          return;
        } else {
          // Unnamed static extent: a name of its own (no comma: dim_names
          // is comma separated).
          std::string own = name;
          std::replace(own.begin(), own.end(), ',', ';');
          names.push_back(own + "." + std::to_string(d));
        }
        a.shape.push_back(tensor.isDynamicDim(d) ? -1 : tensor.getDimSize(d));
        auto it = llvm::find(k.symbolNames, names.back());
        size_t symbol = it - k.symbolNames.begin();
        if (it == k.symbolNames.end()) {
          k.symbolNames.push_back(names.back());
          staticSource.emplace_back();
        }
        a.symbols.push_back(symbol);
        // One name, two different static extents: no call can satisfy both.
        if (a.shape.back() >= 0) {
          auto &[firstArg, extent] = staticSource[symbol];
          if (firstArg.empty()) {
            firstArg = name;
            extent = a.shape.back();
          } else if (extent != a.shape.back()) {
            emitError(loc) << where << "extent " << quoted(names.back())
                           << " is " << extent << " in argument "
                           << quoted(firstArg) << " but " << a.shape.back()
                           << " in argument " << quoted(name)
                           << " (dimension " << d
                           << "); one name must have one size";
            ok = false;
            return;
          }
        }
      }
      a.dims = llvm::join(names, ",");
      k.args.push_back(std::move(a));
    };
    for (unsigned i = 0; i < f.getNumArguments(); ++i) {
      DictionaryAttr attrs = f.getArgAttrDict(i);
      std::string name = "arg" + std::to_string(i);
      if (auto n = attrs ? attrs.getAs<StringAttr>("fem.name") : StringAttr())
        name = n.getValue().str();
      if (attrs && attrs.get("fem.name") &&
          !attrs.getAs<StringAttr>("fem.name")) {
        f.emitError() << where << "fem.name of argument #" << i
                      << " must be a string, found " << attrs.get("fem.name");
        ok = false;
        return;
      }
      // One error per layer: a refused argument would shift the others.
      addArg(f.getArgumentTypes()[i], attrs, name, false, f.getLoc());
      if (k.args.size() != i + 1)
        return;
    }
    if (f.getNumResults() != 1) {
      f.emitError() << where << "must return exactly one tensor, found "
                    << f.getNumResults() << " results";
      ok = false;
      return;
    }
    addArg(f.getResultTypes()[0], f.getResultAttrDict(0), "out", true,
           f.getLoc());
    // fem.name / fem.dims are read; LLVM has no use for them.
    f.removeArgAttrsAttr();
    f.removeResAttrsAttr();
    kernels.push_back(std::move(k));
  });
  return ok;
}

/// One grid axis as text: "B", or "ceil(T/192)".
static std::string gridAxisText(std::pair<int, int64_t> axis) {
  std::string symbol = symbolName(axis.first).str();
  if (axis.second == 1)
    return symbol;
  return "ceil(" + symbol + "/" + std::to_string(axis.second) + ")";
}
/// "ceil(T / 192), Hkv, B" for the header.
std::string gridText(const KernelInfo &k) {
  std::vector<std::string> parts;
  for (auto axis : k.grid) {
    std::string symbol = symbolName(axis.first).str();
    parts.push_back(axis.second == 1 ? symbol
                                     : "ceil(" + symbol + " / " +
                                           std::to_string(axis.second) + ")");
  }
  return llvm::join(parts, ", ");
}
/// ["ceil(T/192)", "Hkv", "B"] for the manifest.
std::string gridJson(const KernelInfo &k) {
  std::vector<std::string> parts;
  for (auto axis : k.grid)
    parts.push_back("\"" + gridAxisText(axis) + "\"");
  return "[" + llvm::join(parts, ", ") + "]";
}

std::string describe(const KernelInfo &k) {
  if (k.layer)
    return "layer=1 mixers=" + llvm::join(k.mixers, ",");
  std::string s;
  llvm::raw_string_ostream os(s);
  os << "prior=" << k.prior << " causal=" << (k.causal ? 1 : 0)
     << " layout=" << k.layout << " mask=" << (k.hasMask ? 1 : 0);
  if (k.scale)
    os << " scale=" << llvm::format("%.9g", *k.scale);
  os << " cap=" << llvm::format("%.9g", k.cap)
     << " eps=" << llvm::format("%.9g", k.eps) << " tile_q=" << k.tileQ
     << " tile_k=" << k.tileK << " vec=" << k.vec;
  return s;
}

} // namespace femc::driver
