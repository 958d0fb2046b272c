//===- Compiler.cpp - the femc compilation driver --------------------------===//
#include "tools/femc/Compiler.h"

#include "dialect/FEMDialect.h"
#include "dialect/FEMOps.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/ExecutionEngine/OptUtils.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/FileUtilities.h"
#include "mlir/Target/LLVMIR/Dialect/Builtin/BuiltinToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Export.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/IR/LegacyPassManager.h"
#include "llvm/IR/Module.h"
#include "llvm/MC/TargetRegistry.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/Target/TargetMachine.h"
#include "llvm/Target/TargetOptions.h"
#include "llvm/TargetParser/Host.h"
#include "llvm/TargetParser/SubtargetFeature.h"

#ifndef FEMC_RUNTIME_INCLUDE_DIR
#define FEMC_RUNTIME_INCLUDE_DIR ""
#endif
#ifndef FEMC_CLANG
#define FEMC_CLANG "clang-22"
#endif

using namespace mlir;
using llvm::StringRef;

namespace femc::driver {

const char *version() { return "femc 0.1.0"; }

namespace {

/// What the glue and the manifest need to know about one kernel.
struct KernelInfo {
  std::string name;     // the model's function name
  std::string wgSymbol; // the workgroup function's C interface
  std::string prior, layout;
  bool causal = false, hasMask = false;
  std::optional<double> scale;
  double cap = 40, eps = 1e-6;
  int64_t tileQ = 0, tileK = 0, vec = 0;
  struct Arg {
    std::string name, dims, dtype;
    int bits = 32, code = 2; // DLPack float32
    bool output = false;
    std::vector<int64_t> shape; // -1 dynamic
    std::vector<int> symbols;   // index into kSymbols per dim
  };
  std::vector<Arg> args;
  /// A whole layer (fem-outline-mixers): one workgroup runs the layer
  /// function; `symbolNames` are the extents named by its fem.dims.
  bool layer = false;
  std::vector<std::string> symbolNames;
  std::vector<std::string> mixers; ///< kernels the layer runs
};

/// Named extents shared by the prepare functions; keys use T when causal.
const char *const kSymbols[] = {"B", "T", "S", "H", "Hkv", "dk", "dv", "E"};

struct TargetChoice {
  std::string cpu, features, tileTarget, description;
  std::vector<std::string> required; ///< checked at run time by the glue
};

bool chooseTarget(StringRef name, TargetChoice &out) {
  if (name == "host") {
    out.cpu = llvm::sys::getHostCPUName().str();
    llvm::SubtargetFeatures features;
    for (auto &f : llvm::sys::getHostCPUFeatures())
      features.AddFeature(f.first(), f.second);
    out.features = features.getString();
    out.tileTarget = "host";
    out.description = "host:" + out.cpu;
    llvm::StringMap<bool> host = llvm::sys::getHostCPUFeatures();
    for (const char *f : {"avx512f", "avx2", "fma"})
      if (host.lookup(f))
        out.required.push_back(f);
    return true;
  }
  if (name == "x86-64-v3") {
    out = {"x86-64-v3", "", "avx2", "x86-64-v3 (AVX2, FMA)", {"avx2", "fma"}};
    return true;
  }
  if (name == "x86-64-v4") {
    out = {"x86-64-v4", "", "avx512", "x86-64-v4 (AVX-512)",
           {"avx512f", "avx2", "fma"}};
    return true;
  }
  return false;
}

std::string shapeDims(const KernelInfo &k, StringRef role) {
  bool bthd = k.layout == "bthd";
  StringRef keyT = k.causal ? "T" : "S";
  if (role == "q")
    return bthd ? "B,T,H,dk" : "B,H,T,dk";
  if (role == "k")
    return bthd ? ("B," + keyT + ",Hkv,dk").str() : ("B,Hkv," + keyT + ",dk").str();
  if (role == "v")
    return bthd ? ("B," + keyT + ",Hkv,dv").str() : ("B,Hkv," + keyT + ",dv").str();
  if (role == "beta_raw")
    return "E";
  if (role == "mask")
    return ("B," + keyT).str();
  return bthd ? "B,T,H,dv" : "B,H,T,dv";
}

std::vector<int> symbolsOf(StringRef dims) {
  std::vector<int> out;
  SmallVector<StringRef> parts;
  dims.split(parts, ',');
  for (StringRef p : parts)
    for (int i = 0; i < 8; ++i)
      if (p == kSymbols[i])
        out.push_back(i);
  return out;
}

/// Reads kernel metadata from the workgroup functions made by fem-tile.
bool collectKernels(ModuleOp module, std::vector<KernelInfo> &kernels) {
  bool ok = true;
  module.walk([&](func::FuncOp f) {
    auto kernelName = f->getAttrOfType<StringAttr>("fem.kernel");
    if (!kernelName)
      return;
    auto reads = llvm::to_vector(f.getOps<fem::TileReadOp>());
    if (reads.size() != 1) {
      f.emitError() << "femc: workgroup function without exactly one "
                       "fem.tile_read";
      ok = false;
      return;
    }
    fem::TileReadOp read = reads.front();
    KernelInfo k;
    k.name = kernelName.getValue().str();
    k.wgSymbol = "_mlir_ciface_" + f.getSymName().str();
    k.prior = fem::stringifyPriorKind(read.getKind()).str();
    k.layout = fem::stringifyLayout(read.getLayout()).str();
    k.causal = read.getCausal();
    k.hasMask = static_cast<bool>(read.getMask());
    if (auto s = read.getScaleAttr())
      k.scale = s.getValueAsDouble();
    k.cap = read.getCapAttr().getValueAsDouble();
    k.eps = read.getEpsAttr().getValueAsDouble();
    k.tileQ = read.getTiles().getQ();
    k.tileK = read.getTiles().getK();
    k.vec = read.getTiles().getVec();
    auto names = f->getAttrOfType<ArrayAttr>("fem.arg_names");
    for (auto [i, nameAttr] : llvm::enumerate(names)) {
      auto type = cast<MemRefType>(f.getArgumentTypes()[i]);
      KernelInfo::Arg a;
      a.name = cast<StringAttr>(nameAttr).getValue().str();
      a.output = a.name == "out";
      a.dims = shapeDims(k, a.name);
      a.symbols = symbolsOf(a.dims);
      Type et = type.getElementType();
      if (et.isF32()) {
        a.dtype = "float32";
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
      if (StringRef(other.name).starts_with(k.name + "_fem"))
        k.mixers.push_back(other.name);
    auto addArg = [&](Type type, DictionaryAttr attrs, std::string name,
                      bool output, Location loc) {
      auto tensor = dyn_cast<RankedTensorType>(type);
      if (!tensor || !tensor.getElementType().isF32()) {
        emitError(loc) << "femc: layer @" << k.name << ": argument '" << name
                       << "' must be a ranked f32 tensor, found " << type;
        ok = false;
        return;
      }
      KernelInfo::Arg a;
      a.name = name;
      a.output = output;
      a.dtype = "float32";
      SmallVector<StringRef> dims;
      if (auto d = attrs ? attrs.getAs<StringAttr>("fem.dims") : StringAttr())
        d.getValue().split(dims, ',');
      if (!dims.empty() && dims.size() != (size_t)tensor.getRank()) {
        emitError(loc) << "femc: layer @" << k.name << ": fem.dims of '"
                       << name << "' names " << dims.size()
                       << " extents for a rank-" << tensor.getRank()
                       << " tensor";
        ok = false;
        return;
      }
      std::vector<std::string> names;
      for (int64_t d = 0; d < tensor.getRank(); ++d) {
        if (!dims.empty()) {
          names.push_back(dims[d].trim().str());
        } else if (tensor.isDynamicDim(d)) {
          emitError(loc) << "femc: layer @" << k.name << ": argument '"
                         << name << "' has dynamic extents; name them with "
                            "{fem.dims = \"B,T,...\"} so they can be "
                            "checked against the other arguments";
          ok = false;
          return;
        } else {
          names.push_back(name + "." + std::to_string(d));
        }
        a.shape.push_back(tensor.isDynamicDim(d) ? -1 : tensor.getDimSize(d));
        auto it = llvm::find(k.symbolNames, names.back());
        if (it == k.symbolNames.end()) {
          a.symbols.push_back(k.symbolNames.size());
          k.symbolNames.push_back(names.back());
        } else {
          a.symbols.push_back(it - k.symbolNames.begin());
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
      addArg(f.getArgumentTypes()[i], attrs, name, false, f.getLoc());
    }
    if (f.getNumResults() != 1) {
      f.emitError() << "femc: layer @" << k.name
                    << " must return exactly one tensor";
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

std::string cIdent(StringRef s) {
  std::string out;
  for (char c : s)
    out += (llvm::isAlnum(c) || c == '_') ? c : '_';
  if (out.empty() || llvm::isDigit(out[0]))
    out = "_" + out;
  return out;
}

/// The C glue: argument tables, shape checks and grid, workgroup trampolines,
/// the library descriptor and a serial convenience entry per kernel.
std::string emitGlue(const std::vector<KernelInfo> &kernels, StringRef stem,
                     StringRef targetDescription,
                     ArrayRef<std::string> requiredFeatures) {
  std::string s;
  llvm::raw_string_ostream os(s);
  std::string lib = cIdent(stem);
  os << "/* Generated by " << version() << " from " << stem
     << ".mlir. Do not edit. */\n"
     << "#include <stdint.h>\n#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n"
     << "#include \"femrt/kernel_abi.h\"\n\n"
     << "static const char *const femc_symbols[8] = {\"B\", \"T\", \"S\", "
        "\"H\", \"Hkv\", \"dk\", \"dv\", \"E\"};\n\n"
     << R"C(/* Binds named extents across arguments; reports the first mismatch. */
static int femc_bind(const femrt_arg_info *info, const int (*syms)[8],
                     int nargs, void *const *args, int64_t sym[8],
                     char *err, size_t len) {
  int src[8];
  for (int i = 0; i < 8; ++i) { sym[i] = -1; src[i] = -1; }
  for (int a = 0; a < nargs; ++a) {
    const femrt_memref *m = (const femrt_memref *)args[a];
    int rank = info[a].rank;
    if (!m) {
      snprintf(err, len, "argument '%s' (#%d) is null", info[a].name, a);
      return 1;
    }
    int64_t expect = 1;
    for (int d = rank - 1; d >= 0; --d) {
      int64_t e = m->dims[d];
      int s = syms[a][d];
      if (e < 0) {
        snprintf(err, len, "argument '%s' (#%d) dimension %d (%s) is negative: %lld",
                 info[a].name, a, d, femc_symbols[s], (long long)e);
        return 1;
      }
      if (info[a].shape[d] >= 0 && info[a].shape[d] != e) {
        snprintf(err, len, "argument '%s' (#%d) dimension %d (%s) must be %lld, found %lld",
                 info[a].name, a, d, femc_symbols[s], (long long)info[a].shape[d], (long long)e);
        return 1;
      }
      if (e != 1 && m->dims[rank + d] != expect) {
        snprintf(err, len, "argument '%s' (#%d) must be contiguous row-major: stride of dimension %d is %lld, expected %lld",
                 info[a].name, a, d, (long long)m->dims[rank + d], (long long)expect);
        return 1;
      }
      expect *= e;
    }
    for (int d = 0; d < rank; ++d) {
      int64_t e = m->dims[d];
      int s = syms[a][d];
      if (sym[s] < 0) { sym[s] = e; src[s] = a; continue; }
      if (sym[s] != e) {
        snprintf(err, len, "argument '%s' (#%d) dimension %d (%s) is %lld but argument '%s' has %s = %lld",
                 info[a].name, a, d, femc_symbols[s], (long long)e, info[src[s]].name,
                 femc_symbols[s], (long long)sym[s]);
        return 1;
      }
    }
  }
  if (sym[4] <= 0 && sym[3] > 0) {
    snprintf(err, len, "argument 'k' has Hkv = %lld key/value heads; expected at least 1", (long long)sym[4]);
    return 1;
  }
  if (sym[4] > 0 && sym[3] % sym[4] != 0) {
    snprintf(err, len, "the query heads H = %lld (argument 'q') must be a multiple of the key/value heads Hkv = %lld (argument 'k')",
             (long long)sym[3], (long long)sym[4]);
    return 1;
  }
  if (sym[7] != sym[3] * sym[6]) {
    snprintf(err, len, "argument 'beta_raw' has E = %lld entries but H * dv = %lld * %lld = %lld",
             (long long)sym[7], (long long)sym[3], (long long)sym[6], (long long)(sym[3] * sym[6]));
    return 1;
  }
  return 0;
}

)C";
  // Layers: extents named by fem.dims, bound across arguments by name.
  os << R"C(/* Binds the named extents of a layer's arguments; no FEM relations. */
static int femc_bind_named(const femrt_arg_info *info, const int (*syms)[8],
                           int nargs, const char *const *names, int nsyms,
                           void *const *args, char *err, size_t len) {
  int64_t sym[64];
  int src[64];
  for (int i = 0; i < nsyms && i < 64; ++i) { sym[i] = -1; src[i] = -1; }
  for (int a = 0; a < nargs; ++a) {
    const femrt_memref *m = (const femrt_memref *)args[a];
    int rank = info[a].rank;
    if (!m) {
      snprintf(err, len, "argument '%s' (#%d) is null", info[a].name, a);
      return 1;
    }
    int64_t expect = 1;
    for (int d = rank - 1; d >= 0; --d) {
      int64_t e = m->dims[d];
      if (info[a].shape[d] >= 0 && info[a].shape[d] != e) {
        snprintf(err, len, "argument '%s' (#%d) dimension %d (%s) must be %lld, found %lld",
                 info[a].name, a, d, names[syms[a][d]], (long long)info[a].shape[d], (long long)e);
        return 1;
      }
      if (e != 1 && m->dims[rank + d] != expect) {
        snprintf(err, len, "argument '%s' (#%d) must be contiguous row-major", info[a].name, a);
        return 1;
      }
      expect *= e;
    }
    for (int d = 0; d < rank; ++d) {
      int s = syms[a][d];
      int64_t e = m->dims[d];
      if (sym[s] < 0) { sym[s] = e; src[s] = a; continue; }
      if (sym[s] != e) {
        snprintf(err, len, "argument '%s' (#%d) dimension %d (%s) is %lld but argument '%s' has %s = %lld",
                 info[a].name, a, d, names[s], (long long)e, info[src[s]].name, names[s], (long long)sym[s]);
        return 1;
      }
    }
  }
  return 0;
}

)C";
  // Refuse to run on a CPU that lacks the instructions the code uses.
  os << "static int femc_cpu_ok(char *err, size_t len) {\n"
     << "#if defined(__x86_64__)\n  __builtin_cpu_init();\n";
  for (const std::string &f : requiredFeatures)
    os << "  if (!__builtin_cpu_supports(\"" << f << "\")) {\n"
       << "    snprintf(err, len, \"this kernel library was compiled for "
       << targetDescription << ", which needs " << f
       << ", and this CPU does not have it; recompile with femc "
          "--target=host on this machine\");\n    return 0;\n  }\n";
  os << "#endif\n  (void)err; (void)len;\n  return 1;\n}\n\n";
  for (const KernelInfo &k : kernels) {
    std::string id = cIdent(k.name);
    size_t n = k.args.size();
    os << "/* kernel " << k.name << ": " << describe(k) << " */\n";
    os << "extern void " << k.wgSymbol << "(";
    if (k.layer) {
      // MLIR's C interface: the returned buffer's descriptor comes first.
      os << "femrt_memref *";
      for (size_t i = 0; i + 1 < n; ++i)
        os << ", void *";
      os << ");\n";
    } else {
      for (size_t i = 0; i < n; ++i)
        os << "void *, ";
      os << "int64_t, int64_t, int64_t);\n";
    }
    os << "static const femrt_arg_info " << id << "_args[" << n << "] = {\n";
    for (const auto &a : k.args) {
      os << "  {\"" << a.name << "\", \"" << a.dims << "\", " << a.code << ", "
         << a.bits << ", " << (a.output ? "FEMRT_ARG_OUTPUT" : "FEMRT_ARG_INPUT")
         << ", " << a.shape.size() << ", {";
      llvm::interleaveComma(a.shape, os);
      os << "}},\n";
    }
    os << "};\n";
    os << "static const int " << id << "_syms[" << n << "][8] = {";
    for (const auto &a : k.args) {
      os << "{";
      llvm::interleaveComma(a.symbols, os);
      os << "}, ";
    }
    os << "};\n";
    if (k.layer) {
      os << "static const char *const " << id << "_names["
         << k.symbolNames.size() << "] = {";
      for (const std::string &name : k.symbolNames)
        os << "\"" << name << "\", ";
      os << "};\n";
      os << "static int " << id
         << "_prepare(void *const *args, int64_t grid[3], char *err, size_t len) {\n"
         << "  if (!femc_cpu_ok(err, len)) return 1;\n"
         << "  if (femc_bind_named(" << id << "_args, " << id << "_syms, " << n
         << ", " << id << "_names, " << k.symbolNames.size()
         << ", args, err, len)) return 1;\n"
         << "  grid[0] = grid[1] = grid[2] = 1;\n  return 0;\n}\n";
      // The layer returns its result in a buffer it allocated: copy it into
      // the caller's output (same extents, checked by prepare) and free it.
      const KernelInfo::Arg &out = k.args.back();
      os << "static void " << id
         << "_workgroup(void *const *a, int64_t x, int64_t y, int64_t z) {\n"
         << "  (void)x; (void)y; (void)z;\n"
         << "  femrt_memref r;\n  memset(&r, 0, sizeof r);\n  "
         << k.wgSymbol << "(&r";
      for (size_t i = 0; i + 1 < n; ++i)
        os << ", a[" << i << "]";
      os << ");\n  femrt_memref *o = (femrt_memref *)a[" << n - 1 << "];\n"
         << "  size_t count = 1;\n  for (int d = 0; d < " << out.shape.size()
         << "; ++d) count *= (size_t)r.dims[d];\n"
         << "  memcpy((float *)o->aligned + o->offset, (float *)r.aligned + "
            "r.offset, count * sizeof(float));\n"
         << "  free(r.allocated);\n}\n";
    } else {
      os << "static int " << id
         << "_prepare(void *const *args, int64_t grid[3], char *err, size_t len) {\n"
         << "  int64_t sym[8];\n"
         << "  if (!femc_cpu_ok(err, len)) return 1;\n"
         << "  if (femc_bind(" << id << "_args, " << id << "_syms, " << n
         << ", args, sym, err, len)) return 1;\n"
         << "  grid[0] = (sym[1] + " << k.tileQ - 1 << ") / " << k.tileQ
         << ";\n  grid[1] = sym[4];\n  grid[2] = sym[0];\n  return 0;\n}\n";
      os << "static void " << id
         << "_workgroup(void *const *a, int64_t x, int64_t y, int64_t z) {\n  "
         << k.wgSymbol << "(";
      for (size_t i = 0; i < n; ++i)
        os << "a[" << i << "], ";
      os << "x, y, z);\n}\n";
    }
    // Serial convenience entry.
    os << "int " << id << "(";
    for (size_t i = 0; i < n; ++i)
      os << (k.args[i].output ? "" : "const ") << "femrt_memref *" << k.args[i].name
         << ", ";
    os << "char *err, size_t err_len) {\n  void *args[" << n << "] = {";
    for (size_t i = 0; i < n; ++i)
      os << "(void *)" << k.args[i].name << ", ";
    os << "};\n  int64_t grid[3];\n  char local[256];\n"
       << "  if (!err) { err = local; err_len = sizeof local; }\n"
       << "  if (" << id << "_prepare(args, grid, err, err_len)) return 1;\n"
       << "  for (int64_t z = 0; z < grid[2]; ++z)\n"
       << "    for (int64_t y = 0; y < grid[1]; ++y)\n"
       << "      for (int64_t x = 0; x < grid[0]; ++x)\n"
       << "        " << id << "_workgroup(args, x, y, z);\n  return 0;\n}\n\n";
  }
  // The FEM reads of layers: the layer calls <kernel>_run on its buffers,
  // which runs the kernel's whole grid on the calling thread. The layer's
  // own prepare has checked the shapes it is built from.
  for (const KernelInfo &k : kernels)
    for (const std::string &mixer : k.mixers) {
      std::string id = cIdent(mixer);
      os << "void _mlir_ciface_" << id << "_run(";
      for (int i = 0; i < 7; ++i)
        os << (i ? ", " : "") << "femrt_memref *a" << i;
      os << ") {\n  char err[512];\n  if (" << id << "(";
      for (int i = 0; i < 7; ++i)
        os << "a" << i << ", ";
      os << "err, sizeof err)) {\n"
         << "    fprintf(stderr, \"femc: layer kernel " << mixer
         << ": %s\\n\", err);\n    abort();\n  }\n}\n";
    }
  os << "static const femrt_kernel_info femc_kernels[" << kernels.size()
     << "] = {\n";
  for (const KernelInfo &k : kernels) {
    std::string id = cIdent(k.name);
    os << "  {\"" << k.name << "\", " << k.args.size() << ", " << id
       << "_args, " << id << "_prepare, " << id << "_workgroup, \""
       << describe(k) << "\"},\n";
  }
  os << "};\n"
     << "static const femrt_kernel_library femc_library = {\n"
     << "  FEMRT_KERNEL_ABI_VERSION, (uint32_t)sizeof(femrt_kernel_library), \""
     << version() << "\", \"" << targetDescription << "\", " << kernels.size()
     << ", femc_kernels};\n"
     << "const femrt_kernel_library *femc_" << lib
     << "_library(void) { return &femc_library; }\n"
     << "/* Weak, so several femc objects can be linked into one program. */\n"
     << "__attribute__((weak)) const femrt_kernel_library *femrt_library_query(void) "
        "{ return &femc_library; }\n";
  return s;
}

std::string emitHeader(const std::vector<KernelInfo> &kernels, StringRef stem,
                       StringRef targetDescription) {
  std::string s;
  llvm::raw_string_ostream os(s);
  std::string guard = "FEMC_" + llvm::StringRef(cIdent(stem)).upper() + "_H";
  os << "/* Generated by " << version() << " from " << stem
     << ".mlir for " << targetDescription << ". Do not edit.\n"
     << " *\n * Link " << stem << ".o (or " << stem
     << ".so) and run a kernel either\n"
     << " *  - serially on the calling thread with the entry point below, or\n"
     << " *  - on a thread pool through libfemrt: femrt_module_create_static(\n"
     << " *    ctx, femc_" << cIdent(stem) << "_library(), ...).\n"
     << " * Every argument is a contiguous row-major femrt_memref (strides in\n"
     << " * elements); entry points return 0, or non-zero with a message in err.\n"
     << " */\n#ifndef " << guard << "\n#define " << guard << "\n\n"
     << "#include \"femrt/kernel_abi.h\"\n\n#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n"
     << "const femrt_kernel_library *femc_" << cIdent(stem) << "_library(void);\n\n";
  for (const KernelInfo &k : kernels) {
    os << "/* " << k.name << ": " << describe(k) << "\n";
    for (const auto &a : k.args) {
      os << " *   " << llvm::left_justify(a.name, 9) << " " << a.dtype << " [";
      SmallVector<StringRef> dims;
      StringRef(a.dims).split(dims, ',');
      for (size_t d = 0; d < a.shape.size(); ++d) {
        if (d)
          os << ", ";
        if (a.shape[d] < 0)
          os << dims[d];
        else
          os << a.shape[d];
      }
      os << "]  (" << a.dims << ")" << (a.output ? "  output" : "") << "\n";
    }
    os << " * grid: (ceil(T / " << k.tileQ << "), Hkv, B) workgroups */\n";
    os << "int " << cIdent(k.name) << "(";
    for (const auto &a : k.args)
      os << (a.output ? "" : "const ") << "femrt_memref *" << a.name << ", ";
    os << "char *err, size_t err_len);\n\n";
  }
  os << "#ifdef __cplusplus\n}\n#endif\n#endif\n";
  return s;
}

std::string emitManifest(const std::vector<KernelInfo> &kernels,
                         StringRef stem, StringRef targetDescription,
                         ArrayRef<std::string> files) {
  std::string s;
  llvm::raw_string_ostream os(s);
  os << "{\n  \"producer\": \"" << version() << "\",\n  \"abi_version\": 1,\n"
     << "  \"source\": \"" << stem << ".mlir\",\n  \"target\": \""
     << targetDescription << "\",\n  \"files\": [";
  llvm::interleaveComma(files, os, [&](const std::string &f) {
    os << "\"" << llvm::sys::path::filename(f) << "\"";
  });
  os << "],\n  \"kernels\": [\n";
  for (size_t i = 0; i < kernels.size(); ++i) {
    const KernelInfo &k = kernels[i];
    os << "    {\"name\": \"" << k.name << "\", \"prior\": \"" << k.prior
       << "\", \"causal\": " << (k.causal ? "true" : "false")
       << ", \"layout\": \"" << k.layout << "\", \"mask\": "
       << (k.hasMask ? "true" : "false") << ",\n     \"tiles\": {\"q\": "
       << k.tileQ << ", \"k\": " << k.tileK << ", \"vec\": " << k.vec
       << "}, \"grid\": [\"ceil(T/" << k.tileQ << ")\", \"Hkv\", \"B\"],\n"
       << "     \"args\": [\n";
    for (size_t j = 0; j < k.args.size(); ++j) {
      const auto &a = k.args[j];
      os << "       {\"name\": \"" << a.name << "\", \"role\": \""
         << (a.output ? "output" : "input") << "\", \"dtype\": \"" << a.dtype
         << "\", \"dims\": \"" << a.dims << "\", \"shape\": [";
      llvm::interleaveComma(a.shape, os);
      os << "]}" << (j + 1 < k.args.size() ? "," : "") << "\n";
    }
    os << "     ]}" << (i + 1 < kernels.size() ? "," : "") << "\n";
  }
  os << "  ]\n}\n";
  return s;
}

bool writeFile(StringRef path, StringRef contents) {
  std::error_code ec;
  llvm::raw_fd_ostream os(path, ec);
  if (ec) {
    llvm::errs() << "femc: error: cannot write '" << path
                 << "': " << ec.message() << "\n";
    return false;
  }
  os << contents;
  return true;
}

bool runTool(ArrayRef<std::string> argv, bool verbose) {
  SmallVector<StringRef> args(argv.begin(), argv.end());
  if (verbose) {
    llvm::errs() << "femc: running:";
    for (StringRef a : args)
      llvm::errs() << " " << a;
    llvm::errs() << "\n";
  }
  std::string message;
  int rc = llvm::sys::ExecuteAndWait(argv[0], args, std::nullopt, {}, 0, 0,
                                     &message);
  if (rc != 0) {
    llvm::errs() << "femc: error: '" << argv[0] << "' failed"
                 << (message.empty() ? "" : ": ") << message << " (exit " << rc
                 << ")\n";
    return false;
  }
  return true;
}

std::string findClang() {
  for (StringRef name : {StringRef(FEMC_CLANG), StringRef("clang-22"),
                         StringRef("/usr/lib/llvm-22/bin/clang")})
    if (auto p = llvm::sys::findProgramByName(name);
        p && llvm::sys::fs::can_execute(*p))
      return *p;
  return {};
}

std::string runtimeIncludeDir() {
  if (const char *env = std::getenv("FEMC_INCLUDE_DIR"))
    return env;
  return FEMC_RUNTIME_INCLUDE_DIR;
}

} // namespace

std::vector<std::string> pipelinePassNames() {
  MLIRContext ctx;
  PassManager pm(&ctx);
  fem::CPUPipelineOptions o;
  fem::buildFEMToCPUPipeline(pm, o);
  std::vector<std::string> names;
  for (Pass &p : pm.getPasses())
    names.push_back(p.getArgument().str());
  return names;
}

bool compile(const CompileOptions &options, CompileResult &result) {
  static const char *const kEmits[] = {"lib", "obj", "llvm", "asm", "mlir"};
  if (!llvm::is_contained(kEmits, options.emit)) {
    llvm::errs() << "femc: error: unknown --emit=" << options.emit
                 << "; expected lib, obj, llvm, asm or mlir\n";
    return false;
  }
  TargetChoice target;
  if (!chooseTarget(options.target, target)) {
    llvm::errs() << "femc: error: unsupported target '" << options.target
                 << "'; supported: host, x86-64-v3, x86-64-v4"
                 << (StringRef(options.target).starts_with("sm_")
                         ? " (the NVIDIA GPU back end is not built yet)"
                         : "")
                 << "\n";
    return false;
  }
  if (!options.after.empty()) {
    auto names = pipelinePassNames();
    if (!llvm::is_contained(names, options.after)) {
      llvm::errs() << "femc: error: --after=" << options.after
                   << " names no pass of the pipeline; passes in order:";
      for (auto &n : names)
        llvm::errs() << " " << n;
      llvm::errs() << "\n";
      return false;
    }
  }

  DialectRegistry registry;
  registerAllDialects(registry);
  registerAllExtensions(registry);
  registry.insert<fem::FEMDialect>();
  registerBuiltinDialectTranslation(registry);
  registerLLVMDialectTranslation(registry);
  MLIRContext context(registry);
  context.disableMultithreading();
  context.printOpOnDiagnostic(false);
  context.loadAllAvailableDialects();

  llvm::SourceMgr sourceMgr;
  SourceMgrDiagnosticHandler diagHandler(sourceMgr, &context);
  std::string errorMessage;
  auto file = openInputFile(options.input, &errorMessage);
  if (!file) {
    llvm::errs() << "femc: error: " << errorMessage << "\n";
    return false;
  }
  sourceMgr.AddNewSourceBuffer(std::move(file), llvm::SMLoc());
  OwningOpRef<ModuleOp> module = parseSourceFile<ModuleOp>(sourceMgr, &context);
  if (!module)
    return false;

  StringRef stem = llvm::sys::path::stem(options.input);
  if (std::error_code ec = llvm::sys::fs::create_directories(options.outDir)) {
    llvm::errs() << "femc: error: cannot create '" << options.outDir
                 << "': " << ec.message() << "\n";
    return false;
  }
  auto outPath = [&](StringRef ext) {
    SmallString<256> p(options.outDir);
    llvm::sys::path::append(p, (stem + ext).str());
    return std::string(p);
  };

  fem::CPUPipelineOptions pipe;
  pipe.tileQ = options.tileQ;
  pipe.tileK = options.tileK;
  pipe.vectorWidth = options.vec;
  pipe.target = target.tileTarget;

  std::string dump;
  llvm::raw_string_ostream dumpStream(dump);
  bool dumped = false;
  auto configure = [&](PassManager &pm) {
    if (options.emit != "mlir" || options.after.empty())
      return;
    pm.enableIRPrinting(
        [](Pass *, Operation *) { return false; },
        [&](Pass *p, Operation *) {
          bool hit = !dumped && p->getArgument() == options.after;
          dumped |= hit;
          return hit;
        },
        /*printModuleScope=*/true, /*printAfterOnlyOnChange=*/false,
        /*printAfterOnlyOnFailure=*/false, dumpStream);
  };

  // Stage 1: expand, fuse and tile; the kernels are known after this.
  PassManager tiling(&context);
  configure(tiling);
  fem::buildFEMToTiledPipeline(tiling, pipe);
  if (failed(tiling.run(*module)))
    return false;
  std::vector<KernelInfo> kernels;
  if (!collectKernels(*module, kernels) || !collectLayers(*module, kernels))
    return false;
  bool stray = false;
  module->walk([&](func::FuncOp f) {
    if (!f->hasAttr("fem.kernel") && !f->hasAttr("fem.layer") &&
        !f.isExternal() && !f.isPrivate()) {
      f.emitError() << "femc: function @" << f.getSymName()
                    << " computes no FEM read; femc compiles kernel-level "
                       "functions (one fem.mixer of their arguments) and "
                       "layer functions (fem.mixer among other ops); make "
                       "helpers private";
      stray = true;
    }
  });
  if (stray)
    return false;
  if (kernels.empty()) {
    module->emitError() << "femc: no kernel found: the model has no fem.mixer "
                           "(or fused FEM read) in a func.func";
    return false;
  }
  for (auto &k : kernels)
    result.kernels.push_back(k.name);
  if (options.verbose)
    for (auto &k : kernels)
      llvm::errs() << "femc: kernel " << k.name << ": " << describe(k) << "\n";

  // Stage 2: loops, then LLVM.
  PassManager lowering(&context);
  configure(lowering);
  fem::buildTiledToLoopsPipeline(lowering);
  fem::buildLoopsToLLVMPipeline(lowering);
  bool lowered = succeeded(lowering.run(*module));
  if (options.emit == "mlir") {
    std::string path = outPath(options.after.empty() ? ".ll.mlir"
                                                     : "." + options.after + ".mlir");
    if (options.after.empty())
      module->print(dumpStream);
    if (!writeFile(path, dump))
      return false;
    result.files.push_back(path);
    return lowered || dumped;
  }
  if (!lowered)
    return false;

  // LLVM IR, optimised for the target.
  llvm::InitializeNativeTarget();
  llvm::InitializeNativeTargetAsmPrinter();
  llvm::LLVMContext llvmContext;
  std::unique_ptr<llvm::Module> llvmModule =
      translateModuleToLLVMIR(*module, llvmContext, stem);
  if (!llvmModule) {
    llvm::errs() << "femc: error: translation to LLVM IR failed\n";
    return false;
  }
  llvm::Triple triple(llvm::sys::getDefaultTargetTriple());
  std::string targetError;
  const llvm::Target *llvmTarget =
      llvm::TargetRegistry::lookupTarget(triple, targetError);
  if (!llvmTarget) {
    llvm::errs() << "femc: error: " << targetError << "\n";
    return false;
  }
  llvm::TargetOptions targetOptions;
  std::unique_ptr<llvm::TargetMachine> machine(llvmTarget->createTargetMachine(
      triple, target.cpu, target.features, targetOptions, llvm::Reloc::PIC_,
      std::nullopt,
      options.optLevel == 0   ? llvm::CodeGenOptLevel::None
      : options.optLevel == 1 ? llvm::CodeGenOptLevel::Less
      : options.optLevel == 2 ? llvm::CodeGenOptLevel::Default
                              : llvm::CodeGenOptLevel::Aggressive));
  llvmModule->setDataLayout(machine->createDataLayout());
  llvmModule->setTargetTriple(triple);
  auto optimize = makeOptimizingTransformer(options.optLevel, 0, machine.get());
  if (llvm::Error err = optimize(llvmModule.get())) {
    llvm::errs() << "femc: error: LLVM optimisation failed: "
                 << llvm::toString(std::move(err)) << "\n";
    return false;
  }
  if (options.emit == "llvm") {
    std::string path = outPath(".ll");
    std::string text;
    llvm::raw_string_ostream os(text);
    llvmModule->print(os, nullptr);
    if (!writeFile(path, text))
      return false;
    result.files.push_back(path);
    return true;
  }

  auto emitMachineCode = [&](StringRef path, llvm::CodeGenFileType kind) {
    std::error_code ec;
    llvm::raw_fd_ostream os(path, ec, llvm::sys::fs::OF_None);
    if (ec) {
      llvm::errs() << "femc: error: cannot write '" << path
                   << "': " << ec.message() << "\n";
      return false;
    }
    llvm::legacy::PassManager codegen;
    if (machine->addPassesToEmitFile(codegen, os, nullptr, kind)) {
      llvm::errs() << "femc: error: the target cannot emit this file type\n";
      return false;
    }
    codegen.run(*llvmModule);
    return true;
  };
  if (options.emit == "asm") {
    std::string path = outPath(".s");
    if (!emitMachineCode(path, llvm::CodeGenFileType::AssemblyFile))
      return false;
    result.files.push_back(path);
    return true;
  }

  // obj / lib: kernel object + C glue → one relocatable object, header,
  // manifest, and (lib) a shared library.
  std::string clang = findClang();
  if (clang.empty()) {
    llvm::errs() << "femc: error: clang-22 not found on PATH (needed to build "
                    "the kernel descriptor); run scripts/setup.sh\n";
    return false;
  }
  std::string includeDir = runtimeIncludeDir();
  std::string kernelObj = outPath(".kernels.o"), glueC = outPath(".glue.c"),
              glueObj = outPath(".glue.o"), obj = outPath(".o"),
              header = outPath(".h"), manifest = outPath(".json"),
              shared = outPath(".so");
  // On any failure below, remove everything this step wrote: no stale or
  // half-written outputs are left under the final names.
  std::vector<std::string> written = {kernelObj, glueC, header, glueObj, obj,
                                      shared, manifest};
  auto cleanFail = [&]() {
    for (const std::string &f : written)
      llvm::sys::fs::remove(f);
    return false;
  };
  if (!emitMachineCode(kernelObj, llvm::CodeGenFileType::ObjectFile) ||
      !writeFile(glueC, emitGlue(kernels, stem, target.description,
                                 target.required)) ||
      !writeFile(header, emitHeader(kernels, stem, target.description)))
    return cleanFail();
  std::vector<std::string> cc = {clang, "-O2", "-fPIC", "-std=c11", "-Wall",
                                 "-c", glueC, "-o", glueObj};
  if (!includeDir.empty())
    cc.insert(cc.begin() + 1, "-I" + includeDir);
  if (!runTool(cc, options.verbose) ||
      !runTool({clang, "-r", "-nostdlib", kernelObj, glueObj, "-o", obj},
               options.verbose))
    return cleanFail();
  llvm::sys::fs::remove(kernelObj);
  llvm::sys::fs::remove(glueObj);
  result.files = {obj, header, glueC};
  if (options.emit == "lib") {
    if (!runTool({clang, "-shared", "-fPIC", obj, "-o", shared, "-lm"},
                 options.verbose))
      return cleanFail();
    result.files.push_back(shared);
    result.library = shared;
  }
  result.files.push_back(manifest);
  if (!writeFile(manifest, emitManifest(kernels, stem, target.description,
                                        result.files)))
    return cleanFail();
  return true;
}

} // namespace femc::driver
