//===- Compiler.cpp - the femc compilation driver --------------------------===//
#include "driver/Compiler.h"
#include "driver/ScanSplitGlue.h"
#include "driver/Target.h"
#include "femc/Version.h"
#include "passes/cpu/ReadSoftmaxAmx.h"

#include "dialect/FEMDialect.h"
#include "dialect/FEMOps.h"
#include "dialect/LayerConfig.h"
#include "passes/Passes.h"
#include "passes/TileScan.h"
#include "dialect/Priors.h"
#include "dialect/SourceNesting.h"
#include "runtime/include/femrt/kernel_abi.h"

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
#include "mlir/Target/LLVMIR/Dialect/NVVM/NVVMToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Export.h"

#include "llvm/ADT/StringExtras.h"
#include <functional>
#include "llvm/IR/InstIterator.h"
#include "llvm/IR/Module.h"
#include "llvm/Object/ELFObjectFile.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/Target/TargetMachine.h"

#ifndef FEMC_RUNTIME_INCLUDE_DIR
#define FEMC_RUNTIME_INCLUDE_DIR ""
#endif
#ifndef FEMC_CLANG
#define FEMC_CLANG "clang-22"
#endif

using namespace mlir;
using llvm::StringRef;

namespace femc::driver {

const char *version() { return FEMC_PRODUCER; }

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
  /// The pool threads fem-tune recorded for the kernel (the module's
  /// fem.tuned_threads, set by fem-apply-tuning); 0: none.
  int64_t threads = 0;
  /// The workgroup grid from fem.grid: (extent index, divisor) for x, y, z.
  std::vector<std::pair<int, int64_t>> grid;
  /// aft: dk must divide 2 dv (checked at launch, from the prior table).
  bool dkDividesDv = false;
  /// The chunk-level parallel prefix (ScanSplitGlue.h): the state width Ks
  /// of the phase functions' records, 0 when the kernel is not split (why
  /// in splitWhy; empty for softmax and layers).
  int64_t splitKs = 0;
  std::string splitWhy, wgName;
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
  /// The layer's parallel stages (passes/layer/LayerMatmul.cpp), as the
  /// lowered module calls them: `<layer>_<stage>_run` and its number of
  /// buffers (collectLayerStages).
  std::vector<std::pair<std::string, unsigned>> stages;
  /// An imported layer's fem.layer configuration as JSON (the manifest's
  /// "layer"); empty for other layers and kernels.
  std::string layerConfig;
};

/// Named extents shared by the prepare functions (dialect/Priors.h's
/// kExtents, in that order); keys use T when causal.
constexpr int kNumSymbols = femc::priors::kNumExtents;
StringRef symbolName(int i) {
  std::string_view s = femc::priors::kExtents[i];
  return StringRef(s.data(), s.size());
}

/// The largest rank of a kernel argument (FEMRT_MAX_RANK).
constexpr int64_t kMaxRank = 8;

//===----------------------------------------------------------------------===//
// Names and strings in the generated C and JSON
//===----------------------------------------------------------------------===//

/// `s` as a C string literal, quotes included. Printable ASCII stays; `"`,
/// `\` and `?` (trigraphs, which -std=c11 enables) are escaped; every other
/// byte (controls, UTF-8 sequences) becomes a three-digit octal escape, so
/// the literal holds exactly the bytes of `s`.
std::string cString(StringRef s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\' || c == '?') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      out += '\\';
      out += static_cast<char>('0' + (c >> 6));
      out += static_cast<char>('0' + ((c >> 3) & 7));
      out += static_cast<char>('0' + (c & 7));
    }
  }
  return out + "\"";
}

/// `s` for a C comment: escaped as in a string literal (one line, no
/// trigraphs), without the quotes, and with `*/` and `/*` broken up (the
/// first would end the comment, the second warns under -Wcomment).
std::string cComment(StringRef s) {
  std::string text = cString(s);
  text = text.substr(1, text.size() - 2);
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    out += text[i];
    char next = i + 1 < text.size() ? text[i + 1] : 0;
    if ((text[i] == '*' && next == '/') || (text[i] == '/' && next == '*'))
      out += '\\';
  }
  return out;
}

/// Length of the well-formed UTF-8 sequence at the start of `s`, or 0.
size_t utf8Length(StringRef s) {
  auto c = static_cast<unsigned char>(s[0]);
  size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3
                                          : (c >> 3) == 30 ? 4 : 0;
  if (n == 0 || n > s.size())
    return 0;
  uint32_t cp = n == 1 ? c : c & (0x7f >> n);
  for (size_t i = 1; i < n; ++i) {
    auto b = static_cast<unsigned char>(s[i]);
    if ((b >> 6) != 2)
      return 0;
    cp = (cp << 6) | (b & 0x3f);
  }
  static const uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
    return 0;
  return n;
}

/// `s` as a JSON string, quotes included. Valid UTF-8 is kept; a byte that
/// is not part of valid UTF-8 becomes U+FFFD (JSON text must be UTF-8).
std::string jsonString(StringRef s) {
  std::string out = "\"";
  while (!s.empty()) {
    auto c = static_cast<unsigned char>(s[0]);
    size_t n = utf8Length(s);
    if (n == 0) {
      out += "\\ufffd";
      n = 1;
    } else if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      static const char kHex[] = "0123456789abcdef";
      out += "\\u00";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += s.take_front(n).str();
    }
    s = s.drop_front(n);
  }
  return out + "\"";
}

/// The file stem as a C identifier part: every byte other than an ASCII
/// letter, digit or `_` becomes `_` (femc_<this>_library).
std::string stemIdent(StringRef stem) {
  std::string out;
  for (char c : stem)
    out += (llvm::isAlnum(c) || c == '_') ? c : '_';
  return out;
}

/// Keywords of C (C23 included) and C++: the header is included from both.
bool isKeyword(StringRef s) {
  static const char *const kKeywords[] = {
      "alignas", "alignof", "and", "and_eq", "asm", "auto", "bitand",
      "bitor", "bool", "break", "case", "catch", "char", "char16_t",
      "char32_t", "char8_t", "class", "co_await", "co_return", "co_yield",
      "compl", "concept", "const", "const_cast", "consteval", "constexpr",
      "constinit", "continue", "decltype", "default", "delete", "do",
      "double", "dynamic_cast", "else", "enum", "explicit", "export",
      "extern", "false", "float", "for", "friend", "goto", "if", "inline",
      "int", "long", "mutable", "namespace", "new", "noexcept", "not",
      "not_eq", "nullptr", "operator", "or", "or_eq", "private", "protected",
      "public", "register", "reinterpret_cast", "requires", "restrict",
      "return", "short", "signed", "sizeof", "static", "static_assert",
      "static_cast", "struct", "switch", "template", "this", "thread_local",
      "throw", "true", "try", "typedef", "typeid", "typename", "typeof",
      "typeof_unqual", "union", "unsigned", "using", "virtual", "void",
      "volatile", "wchar_t", "while", "xor", "xor_eq"};
  return llvm::is_contained(kKeywords, s);
}

/// Why `s` belongs to the C library (or the POSIX names a program commonly
/// links), or nothing. A kernel's exported entry point must not take such a
/// name: it would clash with the glue's own headers or replace the library's
/// function in the whole program.
std::optional<std::string> libraryName(StringRef s) {
  const std::string library = "it is a name of the C or POSIX library";
  if (s == "std")
    return std::string("it is the C++ standard library's namespace");
  static const char *const kMath[] = {
      "acos", "acosh", "asin", "asinh", "atan", "atan2", "atanh", "cbrt",
      "ceil", "copysign", "cos", "cosh", "erf", "erfc", "exp", "exp10",
      "exp2", "expm1", "fabs", "fdim", "floor", "fma", "fmax", "fmin",
      "fmod", "frexp", "hypot", "ilogb", "ldexp", "lgamma", "llrint",
      "llround", "log", "log10", "log1p", "log2", "logb", "lrint", "lround",
      "modf", "nan", "nearbyint", "nextafter", "nexttoward", "pow",
      "remainder", "remquo", "rint", "round", "scalbln", "scalbn", "sin",
      "sincos", "sinh", "sqrt", "tan", "tanh", "tgamma", "trunc"};
  for (StringRef m : kMath)
    if (s == m || s == (m + "f").str() || s == (m + "l").str())
      return library;
  static const char *const kNames[] = {
      "FILE", "NULL", "EOF", "BUFSIZ", "EXIT_FAILURE", "EXIT_SUCCESS",
      "HUGE_VAL", "INFINITY", "NAN", "RAND_MAX", "_Exit", "abort", "abs",
      "accept", "access", "aligned_alloc", "alloca", "asctime", "assert",
      "at_quick_exit", "atexit", "atof", "atoi", "atol", "atoll", "bind",
      "bsearch", "btowc", "calloc", "chdir", "clearerr", "clock", "close",
      "connect", "ctime", "difftime", "div", "dlclose", "dlerror", "dlopen",
      "dlsym", "dup", "dup2", "environ", "errno", "execv", "execve", "execvp",
      "exit", "fclose", "fcntl", "fdopen", "feof", "ferror", "fflush",
      "fgetc", "fgetpos", "fgets", "fileno", "fopen", "fork", "fprintf",
      "fputc", "fputs", "fread", "free", "freopen", "fscanf", "fseek",
      "fsetpos", "fstat", "ftell", "fwrite", "getc", "getchar", "getenv",
      "getpid", "gets", "gmtime", "j0", "j1", "jn", "kill", "labs", "ldiv",
      "listen", "llabs", "lldiv", "localeconv", "localtime", "longjmp",
      "lseek", "main", "malloc", "mblen", "mbstowcs", "mbtowc", "mkdir",
      "mktime", "mmap", "munmap", "offsetof", "open", "perror", "pipe",
      "posix_memalign", "printf", "putc", "putchar", "puts", "qsort",
      "quick_exit", "raise", "rand", "read", "realloc", "recv", "remove",
      "rename", "rewind", "rmdir", "scanf", "select", "send", "setbuf",
      "setjmp", "setlocale", "setvbuf", "signal", "sleep", "snprintf",
      "socket", "sprintf", "srand", "sscanf", "stat", "stderr", "stdin",
      "stdout", "system", "time", "timespec_get", "tmpfile", "tmpnam",
      "ungetc", "unlink", "usleep", "va_arg", "va_copy", "va_end",
      "va_start", "vfprintf", "vprintf", "vsnprintf", "vsprintf", "wait",
      "waitpid", "wcstombs", "wctomb", "write", "y0", "y1", "yn"};
  if (llvm::is_contained(kNames, s))
    return library;
  // The macros of <stdint.h> (which the header includes), and the `_t`
  // type names POSIX reserves.
  for (StringRef p : {"INT", "UINT", "SIZE_", "PTRDIFF_", "WCHAR_", "WINT_",
                      "SIG_ATOMIC_"})
    if (s.starts_with(p) &&
        (s.ends_with("_MAX") || s.ends_with("_MIN") || s.ends_with("_C")))
      return std::string("it is a <stdint.h> macro");
  if (s.ends_with("_t"))
    return std::string("names ending in _t are reserved for types (POSIX)");
  return std::nullopt;
}

/// Why `name` cannot be a C entry point (an exported function and the name
/// of its parameters in the header), or nothing if it can.
std::optional<std::string> whyNotCName(StringRef name) {
  if (name.empty())
    return std::string("it is empty");
  if (!llvm::isAlpha(name[0]))
    return std::string(name[0] == '_'
                           ? "it starts with '_' (reserved for the C "
                             "implementation and femc's generated symbols)"
                           : "it does not start with an ASCII letter");
  for (char c : name)
    if (!llvm::isAlnum(c) && c != '_')
      return std::string("it contains ") +
             (static_cast<unsigned char>(c) >= 0x80
                  ? "a non-ASCII character"
                  : "the character " + cString(StringRef(&c, 1)));
  if (isKeyword(name))
    return std::string("it is a C or C++ keyword");
  if (name.contains("__"))
    return std::string("names containing '__' are reserved in C++");
  if (name.starts_with_insensitive("femc_") ||
      name.starts_with_insensitive("femrt_"))
    return std::string("the prefixes femc_ and femrt_ belong to femc and "
                       "libfemrt");
  if (auto why = libraryName(name))
    return why;
  return std::nullopt;
}

/// The parameter name of argument #`index` in the generated C: the user's
/// name when it is a plain C name (and not `err`, `err_len` or another
/// argument's fallback `argN`), otherwise `arg<index>`.
std::string paramName(StringRef name, size_t index) {
  bool fallbackForm = name.starts_with("arg") && name.size() > 3 &&
                      llvm::all_of(name.drop_front(3), llvm::isDigit);
  if (whyNotCName(name) || name == "err" || name == "err_len" ||
      (fallbackForm && name != "arg" + std::to_string(index)))
    return "arg" + std::to_string(index);
  return name.str();
}

/// `name` quoted for a diagnostic: 'name', escaped like a C string.
std::string quoted(StringRef name) {
  std::string s = cString(name);
  return "'" + s.substr(1, s.size() - 2) + "'";
}

/// What `symbol` is among the symbols femc generates for function `owner`
/// (kernel-level: owner_wg; layer: owner_layer, owner_fem<N>, and for
/// each FEM read owner_fem<N>_wg and owner_fem<N>_run; each also with the
/// _mlir_ciface_ prefix), or nothing.
std::optional<std::string> generatedFor(StringRef symbol, StringRef owner) {
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
std::string shapeDims(const KernelInfo &k, StringRef role) {
  const femc::priors::PriorInfo *info = femc::priors::findPrior(k.prior);
  if (!info)
    return "";
  return femc::priors::operandDimsString(
      *info, std::string_view(role.data(), role.size()), k.layout == "bhtd",
      k.causal);
}

/// The extent index of each name in `dims`; -1 for a name outside the
/// table (the state's Ks, fixed by the static shape), which binds nothing.
std::vector<int> symbolsOf(StringRef dims) {
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
std::optional<std::string> whyNotTableName(StringRef name) {
  if (name.empty())
    return std::string("it is empty");
  if (name.contains('\0'))
    return std::string("it contains a NUL character");
  return std::nullopt;
}

/// True if `name` is `<layer>_fem<digits>`: a FEM read outlined from it.
bool isMixerOf(StringRef name, StringRef layer) {
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
std::string gridAxisText(std::pair<int, int64_t> axis) {
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

// The kernel ABI's C enums name the dialect's prior kinds and layouts and
// Priors.h's extents by number: they must agree.
static_assert(FEMRT_PRIOR_SOFTMAX == int(mlir::fem::PriorKind::softmax) &&
                  FEMRT_PRIOR_LINEAR == int(mlir::fem::PriorKind::linear) &&
                  FEMRT_PRIOR_GLA == int(mlir::fem::PriorKind::gla) &&
                  FEMRT_PRIOR_AFT == int(mlir::fem::PriorKind::aft) &&
                  FEMRT_PRIOR_SSM == int(mlir::fem::PriorKind::ssm),
              "femrt_prior_kind (kernel_abi.h) disagrees with PriorKind");
static_assert(FEMRT_LAYOUT_BTHD == int(mlir::fem::Layout::bthd) &&
                  FEMRT_LAYOUT_BHTD == int(mlir::fem::Layout::bhtd),
              "femrt_layout (kernel_abi.h) disagrees with fem::Layout");
static_assert(FEMRT_NUM_EXTENTS == femc::priors::kNumExtents &&
                  femc::priors::kExtents[FEMRT_EXTENT_B] == "B" &&
                  femc::priors::kExtents[FEMRT_EXTENT_T] == "T" &&
                  femc::priors::kExtents[FEMRT_EXTENT_S] == "S" &&
                  femc::priors::kExtents[FEMRT_EXTENT_H] == "H" &&
                  femc::priors::kExtents[FEMRT_EXTENT_HKV] == "Hkv" &&
                  femc::priors::kExtents[FEMRT_EXTENT_DK] == "dk" &&
                  femc::priors::kExtents[FEMRT_EXTENT_DV] == "dv" &&
                  femc::priors::kExtents[FEMRT_EXTENT_E] == "E" &&
                  femc::priors::kExtents[FEMRT_EXTENT_N] == "N",
              "femrt_extent (kernel_abi.h) disagrees with Priors.h kExtents");

/// A finite double as a C (and JSON) literal that reads back to the same
/// value, with the fewest digits from %g's six up: 40 and 1e-06, not
/// 4e+01 or 9.9999999999999995e-07.
std::string cDouble(double value) {
  char buffer[32];
  for (int digits = 6; digits <= 17; ++digits) {
    std::snprintf(buffer, sizeof buffer, "%.*g", digits, value);
    if (std::strtod(buffer, nullptr) == value)
      break;
  }
  return buffer;
}

/// The initializer of kernel `k`'s femrt_kernel_traits (kernel ABI v2): the
/// facts clients read instead of parsing the description.
std::string traitsInitializer(const KernelInfo &k) {
  std::string s;
  llvm::raw_string_ostream os(s);
  int prior = FEMRT_PRIOR_NONE, layout = FEMRT_LAYOUT_NONE;
  std::vector<std::string> flags;
  if (k.layer) {
    flags.push_back("FEMRT_KERNEL_LAYER");
  } else {
    const femc::priors::PriorInfo *info = femc::priors::findPrior(k.prior);
    assert(info && "kernel of a prior the table does not know");
    prior = femc::priors::priorIndex(*info);
    layout = k.layout == "bhtd" ? FEMRT_LAYOUT_BHTD : FEMRT_LAYOUT_BTHD;
    if (k.causal)
      flags.push_back("FEMRT_KERNEL_CAUSAL");
    if (k.hasMask)
      flags.push_back("FEMRT_KERNEL_MASK");
    if (k.scale)
      flags.push_back("FEMRT_KERNEL_HAS_SCALE");
  }
  os << "{(uint32_t)sizeof(femrt_kernel_traits), "
     << (flags.empty() ? "0" : llvm::join(flags, " | ")) << ", " << prior
     << ", " << layout << ", " << cDouble(k.scale.value_or(0.0)) << ", "
     << cDouble(k.layer ? 0.0 : k.cap) << ", "
     << cDouble(k.layer ? 0.0 : k.eps) << ", " << k.tileQ << ", " << k.tileK
     << ", " << k.vec << ", {";
  for (size_t i = 0; i < 3; ++i) {
    int extent = FEMRT_EXTENT_ONE;
    int64_t divisor = 1;
    if (!k.layer && i < k.grid.size())
      std::tie(extent, divisor) = k.grid[i];
    os << (i ? ", " : "") << "{" << extent << ", 0, " << divisor << "}";
  }
  os << "}}";
  return s;
}

/// The C glue: argument tables, shape checks and grid, workgroup trampolines,
/// the library descriptor and a serial convenience entry per kernel. Kernel
/// i's own tables and functions are `femc_k<i>_*` (user names cannot start
/// with femc_); every name and description is written through cString or
/// cComment.
/// The device half of a library for a device target (Target::isDevice):
/// the target, its lowered kernels (one per KernelInfo, same order) and the
/// image they are in.
struct DeviceGlue {
  const Target *target = nullptr;
  std::vector<DeviceKernel> kernels;
  std::string image, assembly; ///< e.g. the cubin and the PTX it came from
};

/// The names the lowered code's memory functions get in a library (the
/// pipeline lowers memref.alloc/dealloc to finalize-memref-to-llvm's generic
/// `_mlir_memref_to_llvm_alloc`/`_free`; renameMemoryFunctions gives them
/// these, so that two femc objects link into one program).
std::string memoryFunctionName(StringRef stem, StringRef what) {
  return "femc_" + stemIdent(stem) + "_" + what.str();
}

/// Renames the lowered module's generic memory functions to the library's
/// own (memoryFunctionName), which emitMemoryFunctions defines.
void renameMemoryFunctions(llvm::Module &llvmModule, StringRef stem) {
  for (StringRef what : {"alloc", "free"})
    if (llvm::Function *f =
            llvmModule.getFunction(("_mlir_memref_to_llvm_" + what).str())) {
      f->setName(memoryFunctionName(stem, what));
      f->setVisibility(llvm::GlobalValue::HiddenVisibility);
    }
}

/// The lowered code's memory functions (renameMemoryFunctions). A library
/// with layers also keeps the services libfemrt lends the layer running on
/// this thread (femrt_host, bound by femc_bind_host): while they include
/// scratch blocks, a block comes from there and goes back there, so a
/// layer's multi-MiB intermediates reuse the pages of the last call instead
/// of faulting in fresh ones (libfemrt's ScratchCache); everything else
/// (other threads, a serial entry, an older libfemrt) uses malloc. A 64-byte
/// header in front of each block says where it came from.
void emitMemoryFunctions(raw_ostream &os, StringRef stem, bool anyLayer) {
  std::string alloc = memoryFunctionName(stem, "alloc"),
              release = memoryFunctionName(stem, "free");
  os << "/* memref.alloc / memref.dealloc of the lowered code. */\n"
     << "__attribute__((visibility(\"hidden\"))) void *" << alloc
     << "(uint64_t n);\n"
     << "__attribute__((visibility(\"hidden\"))) void " << release
     << "(void *p);\n";
  if (!anyLayer) {
    os << "void *" << alloc << "(uint64_t n) { return malloc(n); }\n"
       << "void " << release << "(void *p) { free(p); }\n\n";
    return;
  }
  os << R"C(/* The services libfemrt lends the layer running on this thread. */
static _Thread_local const femrt_host *femc_host;
static void femc_bind_host(const femrt_host *host) { femc_host = host; }
/* In front of each block: who gives it back, and its size with the header. */
typedef struct femc_block {
  void (*release)(void *scratch, void *block, uint64_t n);
  void *scratch;
  uint64_t n;
} femc_block;
#define FEMC_BLOCK_HEADER 64
_Static_assert(sizeof(femc_block) <= FEMC_BLOCK_HEADER, "block header");
)C";
  os << "void *" << alloc << "(uint64_t n) {\n"
     << R"C(  const femrt_host *h = femc_host;
  femc_block b = {0, 0, 0};
  unsigned char *p = 0;
  if (__builtin_add_overflow(n, (uint64_t)FEMC_BLOCK_HEADER, &b.n)) {
    fprintf(stderr, "femc: the lowered code asked for %llu bytes\n",
            (unsigned long long)n);
    abort();
  }
  if (h && h->struct_size >= offsetof(femrt_host, scratch_free) +
                                 sizeof h->scratch_free &&
      h->scratch_alloc && h->scratch_free) {
    p = (unsigned char *)h->scratch_alloc(h->scratch, b.n);
    if (p) {
      b.release = h->scratch_free;
      b.scratch = h->scratch;
    }
  }
  if (!p)
    p = (unsigned char *)malloc(b.n);
  if (!p) {
    fprintf(stderr, "femc: no memory for a buffer of %llu bytes\n",
            (unsigned long long)n);
    abort();
  }
  memcpy(p, &b, sizeof b);
  return p + FEMC_BLOCK_HEADER;
}
)C";
  os << "void " << release << "(void *q) {\n"
     << R"C(  femc_block b;
  unsigned char *p;
  if (!q)
    return;
  p = (unsigned char *)q - FEMC_BLOCK_HEADER;
  memcpy(&b, p, sizeof b);
  if (b.release)
    b.release(b.scratch, p, b.n);
  else
    free(p);
}

)C";
}

/// The C glue of layers' stages. A layer calls `<kernel>_run` for each FEM
/// read (the read's prepare, then its grid) and, for each projection
/// (passes/layer/LayerMatmul.cpp), `<layer>_mm_pack_{nn,nt}_run` and
/// `<layer>_mm_run` with its buffers and a workgroup count. Every grid runs
/// through femc_parallel: on the pool libfemrt binds to the launching
/// thread (femrt_bind_host_fn) or, without one, serially. The layer's own
/// prepare has checked the shapes its stages are built from.
void emitLayerStages(raw_ostream &os, const std::vector<KernelInfo> &kernels) {
  if (llvm::none_of(kernels, [](auto &k) { return k.layer; }))
    return;
  os << R"C(/* body(ctx, i) for i in [0, n): on the lent pool, else here. */
static void femc_parallel(int64_t n, void (*body)(void *, int64_t), void *ctx) {
  const femrt_host *h = femc_host;
  if (h && h->parallel_for && n > 1) {
    h->parallel_for(h->pool, n, body, ctx);
    return;
  }
  for (int64_t i = 0; i < n; ++i)
    body(ctx, i);
}
/* One FEM read's grid: flat index i = x + gx * (y + gy * z). */
struct femc_grid {
  void *const *args;
  int64_t gx, gy;
  femrt_workgroup_fn workgroup;
};
static void femc_grid_body(void *ctx, int64_t i) {
  const struct femc_grid *g = (const struct femc_grid *)ctx;
  g->workgroup(g->args, i % g->gx, (i / g->gx) % g->gy, i / g->gx / g->gy);
}
)C";
  for (const KernelInfo &k : kernels)
    for (const std::string &mixer : k.mixers) {
      auto kernel = llvm::find_if(
          kernels, [&](const KernelInfo &other) { return other.name == mixer; });
      assert(kernel != kernels.end() && "layer names a kernel it does not have");
      std::string id =
          "femc_k" + std::to_string(std::distance(kernels.begin(), kernel));
      size_t n = kernel->args.size();
      std::string params;
      for (size_t i = 0; i < n; ++i)
        params += (i ? ", femrt_memref *a" : "femrt_memref *a") +
                  std::to_string(i);
      os << "void _mlir_ciface_" << mixer << "_run(" << params << ");\n"
         << "void _mlir_ciface_" << mixer << "_run(" << params << ") {\n"
         << "  void *args[" << n << "] = {";
      for (size_t i = 0; i < n; ++i)
        os << "a" << i << ", ";
      os << "};\n  int64_t grid[3] = {1, 1, 1};\n  char err[512];\n"
         << "  struct femc_grid g;\n"
         << "  if (" << id << "_prepare(args, grid, err, sizeof err)) {\n"
         << "    fprintf(stderr, \"femc: layer kernel %s: %s\\n\", "
         << cString(mixer) << ", err);\n    abort();\n  }\n"
         << "  g.args = args;\n  g.gx = grid[0];\n  g.gy = grid[1];\n"
         << "  g.workgroup = " << id << "_workgroup;\n"
         << "  femc_parallel(grid[0] * grid[1] * grid[2], femc_grid_body, "
            "&g);\n}\n";
    }
  // The stages of fem-layer-matmul (packs, matmuls, element-wise stages),
  // one wrapper each, as the lowered module calls them.
  for (const KernelInfo &k : kernels) {
    for (const auto &[stage, buffers] : k.stages) {
      std::string base = k.name + "_" + stage;
      std::string params, args, decl;
      for (unsigned i = 0; i < buffers; ++i) {
        params += "void *a" + std::to_string(i) + ", ";
        args += "a[" + std::to_string(i) + "], ";
        decl += "void *, ";
      }
      os << "extern void _mlir_ciface_" << base << "_wg(" << decl
         << "int64_t);\n"
         << "static void femc_" << base << "_body(void *ctx, int64_t i) {\n"
         << "  void **a = (void **)ctx;\n  _mlir_ciface_" << base << "_wg("
         << args << "i);\n}\n"
         << "void _mlir_ciface_" << base << "_run(" << params << "int64_t n);\n"
         << "void _mlir_ciface_" << base << "_run(" << params
         << "int64_t n) {\n  void *a[" << buffers << "] = {";
      for (unsigned i = 0; i < buffers; ++i)
        os << "a" << i << ", ";
      os << "};\n  femc_parallel(n, femc_" << base << "_body, a);\n}\n";
    }
  }
}

/// The stages each layer's lowered body calls: declarations
/// `_mlir_ciface_<layer>_<stage>_run(buffers..., n)` with a stage name
/// fem-layer-matmul makes (mm, mm_pack_a, mm_pack_nn, mm_pack_nt, mmx*,
/// ew<N>) or fem-layer-loop-stages (loop<N>).
void collectLayerStages(const llvm::Module &llvmModule,
                        std::vector<KernelInfo> &kernels) {
  auto isStage = [](StringRef s) {
    return s == "mm" || s == "mm_pack_a" || s == "mm_pack_nn" ||
           s == "mm_pack_nt" || s == "mmx" || s == "mmx_pack_a" ||
           s == "mmx_pack_nn" || s == "mmx_pack_nt" ||
           ((s.consume_front("ew") || s.consume_front("loop")) && !s.empty() &&
            llvm::all_of(s, llvm::isDigit));
  };
  for (KernelInfo &k : kernels) {
    if (!k.layer)
      continue;
    std::string prefix = "_mlir_ciface_" + k.name + "_";
    for (const llvm::Function &f : llvmModule) {
      StringRef name = f.getName();
      if (!f.isDeclaration() || f.arg_empty() || !name.consume_front(prefix) ||
          !name.consume_back("_run") || !isStage(name))
        continue;
      k.stages.emplace_back(name.str(), f.arg_size() - 1);
    }
  }
}

std::string emitGlue(const std::vector<KernelInfo> &kernels, StringRef stem,
                     StringRef source, StringRef targetDescription,
                     ArrayRef<std::string> requiredFeatures,
                     const DeviceGlue *device = nullptr) {
  std::string s;
  llvm::raw_string_ostream os(s);
  bool anyLayer = llvm::any_of(kernels, [](auto &k) { return k.layer; });
  bool anyKernel = llvm::any_of(kernels, [](auto &k) { return !k.layer; });
  os << "/* Generated by " << version() << " from " << cComment(source)
     << ". Do not edit. */\n"
     << "#include <stdint.h>\n#include <stdio.h>\n#include <stdlib.h>\n"
     << "#include <string.h>\n"
     << "#include \"femrt/kernel_abi.h\"\n\n";
  if (llvm::is_contained(requiredFeatures, "amx-tile"))
    os << "#include <errno.h>\n\n";
  // Checks shared by both binders: rank-`rank` extents, compact row-major
  // strides, no overflow, data present. Sets *count to the element count.
  os << R"C(/* Checks the memref of argument a: extents against the static shape,
 * compact row-major strides, element count, data pointer. */
static int femc_check(const femrt_arg_info *info, int a, const femrt_memref *m,
                      const char *const *dim_names, char *err, size_t len) {
  int rank = info[a].rank;
  int64_t count = 1;
  int empty = 0;
  if (!m) {
    snprintf(err, len, "argument '%s' (#%d) is null", info[a].name, a);
    return 1;
  }
  /* An empty tensor has no elements to address: its strides and the
     product of its other extents (which may overflow) do not matter. */
  for (int d = 0; d < rank; ++d)
    empty |= m->dims[d] == 0;
  for (int d = rank - 1; d >= 0; --d) {
    int64_t e = m->dims[d];
    if (e < 0) {
      snprintf(err, len, "argument '%s' (#%d) dimension %d (%s) is negative: %lld",
               info[a].name, a, d, dim_names[d], (long long)e);
      return 1;
    }
    if (info[a].shape[d] >= 0 && info[a].shape[d] != e) {
      snprintf(err, len, "argument '%s' (#%d) dimension %d (%s) must be %lld, found %lld",
               info[a].name, a, d, dim_names[d], (long long)info[a].shape[d], (long long)e);
      return 1;
    }
    if (empty)
      continue;
    if (e != 1 && m->dims[rank + d] != count) {
      snprintf(err, len, "argument '%s' (#%d) must be contiguous row-major: stride of dimension %d is %lld, expected %lld",
               info[a].name, a, d, (long long)m->dims[rank + d], (long long)count);
      return 1;
    }
    if (__builtin_mul_overflow(count, e, &count)) {
      snprintf(err, len, "argument '%s' (#%d) has too many elements", info[a].name, a);
      return 1;
    }
  }
  if (empty)
    count = 0;
  if (!m->aligned && count != 0) {
    snprintf(err, len, "argument '%s' (#%d) has no data: its pointer is NULL but it has %lld elements",
             info[a].name, a, (long long)count);
    return 1;
  }
  return 0;
}

)C";
  if (anyKernel)
    os << R"C(static const char *const femc_symbols[9] = {"B", "T", "S", "H", "Hkv", "dk", "dv", "E", "N"};

/* Binds the FEM extents across arguments; reports the first mismatch. */
static int femc_bind(const femrt_arg_info *info, const int (*syms)[9],
                     int nargs, void *const *args, int64_t sym[9],
                     char *err, size_t len) {
  int src[9];
  int64_t e_expected;
  for (int i = 0; i < 9; ++i) { sym[i] = -1; src[i] = -1; }
  for (int a = 0; a < nargs; ++a) {
    const femrt_memref *m = (const femrt_memref *)args[a];
    const char *dim_names[8];
    /* An extent outside the table (-1: the state's Ks) is static. */
    for (int d = 0; d < info[a].rank; ++d)
      dim_names[d] = syms[a][d] < 0 ? "Ks" : femc_symbols[syms[a][d]];
    if (femc_check(info, a, m, dim_names, err, len)) return 1;
    for (int d = 0; d < info[a].rank; ++d) {
      int64_t e = m->dims[d];
      int s = syms[a][d];
      if (s < 0) continue;
      if (sym[s] < 0) { sym[s] = e; src[s] = a; continue; }
      if (sym[s] != e) {
        snprintf(err, len, "argument '%s' (#%d) dimension %d (%s) is %lld but argument '%s' has %s = %lld",
                 info[a].name, a, d, femc_symbols[s], (long long)e, info[src[s]].name,
                 femc_symbols[s], (long long)sym[s]);
        return 1;
      }
    }
  }
  if (sym[4] == 0 && sym[3] > 0) {
    snprintf(err, len, "argument 'k' has Hkv = %lld key/value heads; expected at least 1", (long long)sym[4]);
    return 1;
  }
  if (sym[4] > 0 && sym[3] % sym[4] != 0) {
    snprintf(err, len, "the query heads H = %lld (argument 'q') must be a multiple of the key/value heads Hkv = %lld (argument 'k')",
             (long long)sym[3], (long long)sym[4]);
    return 1;
  }
  if (__builtin_mul_overflow(sym[3], sym[6], &e_expected)) {
    snprintf(err, len, "H * dv = %lld * %lld (arguments 'q' and 'v') does not fit in 64 bits",
             (long long)sym[3], (long long)sym[6]);
    return 1;
  }
  if (sym[7] != e_expected) {
    snprintf(err, len, "argument 'beta_raw' has E = %lld entries but H * dv = %lld * %lld = %lld",
             (long long)sym[7], (long long)sym[3], (long long)sym[6], (long long)e_expected);
    return 1;
  }
  return 0;
}

)C";
  // Layers: extents named by fem.dims, bound across arguments by name. The
  // caller's sym/src arrays have one entry per name (nsyms).
  if (anyLayer)
    os << R"C(/* Binds the named extents of a layer's arguments; no FEM relations.
 * sym and src have nsyms entries, one per name. */
static int femc_bind_named(const femrt_arg_info *info, const int (*syms)[9],
                           int nargs, const char *const *names, int nsyms,
                           void *const *args, int64_t *sym, int *src,
                           char *err, size_t len) {
  for (int i = 0; i < nsyms; ++i) { sym[i] = -1; src[i] = -1; }
  for (int a = 0; a < nargs; ++a) {
    const femrt_memref *m = (const femrt_memref *)args[a];
    const char *dim_names[8];
    for (int d = 0; d < info[a].rank; ++d) dim_names[d] = names[syms[a][d]];
    if (femc_check(info, a, m, dim_names, err, len)) return 1;
    for (int d = 0; d < info[a].rank; ++d) {
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
  // A device target's library refuses host launches (its prepare fails
  // with the target's message before anything runs).
  if (device)
    os << "static int femc_cpu_ok(char *err, size_t len) {\n"
       << "  snprintf(err, len, \"%s\", "
       << cString(device->target->hostLaunchRefusal())
       << ");\n  return 0;\n}\n\n";
  // Refuse to run on a CPU that lacks the instructions the code uses.
  else {
  os << "static int femc_cpu_ok(char *err, size_t len) {\n"
     << "#if defined(__x86_64__)\n  __builtin_cpu_init();\n";
  for (const std::string &f : requiredFeatures)
    os << "  if (!__builtin_cpu_supports(" << cString(f) << ")) {\n"
       << "    snprintf(err, len, \"this kernel library was compiled for %s, "
          "which needs %s, and this CPU does not have it; recompile with "
          "femc --target=host on this machine\", "
       << cString(targetDescription) << ", " << cString(f)
       << ");\n    return 0;\n  }\n";
  // AMX tile data stays off until the process asks Linux for it; the first
  // tile instruction would raise SIGILL. Asked once, before any kernel runs.
  if (llvm::is_contained(requiredFeatures, "amx-tile"))
    os << "#if defined(__linux__)\n  {\n"
       << "    extern long syscall(long, ...);\n"
       << "    static volatile int femc_amx_granted;\n"
       << "    /* arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) */\n"
       << "    if (!femc_amx_granted && syscall(158, 0x1023, 18) != 0) {\n"
       << "      snprintf(err, len, \"this kernel library uses AMX tiles and "
          "Linux refused them to this process (arch_prctl "
          "ARCH_REQ_XCOMP_PERM: %s; AMX needs Linux 5.16 or later); "
          "recompile for a target without +amx, e.g. femc "
          "--target=x86-64-v4\", strerror(errno));\n"
       << "      return 0;\n    }\n    femc_amx_granted = 1;\n  }\n#endif\n";
  os << "#endif\n  (void)err; (void)len;\n  return 1;\n}\n\n";
  } // the host check

  if (!device)
    emitMemoryFunctions(os, stem, anyLayer);
  auto list = [&](auto &&range) {
    // An empty C initializer list is not C11: write {0}.
    if (std::empty(range))
      os << "0";
    else
      llvm::interleaveComma(range, os);
  };
  for (auto [index, k] : llvm::enumerate(kernels)) {
    std::string id = "femc_k" + std::to_string(index);
    size_t n = k.args.size();
    os << "/* kernel " << cComment(k.name) << ": " << cComment(describe(k))
       << " */\n";
    if (device) {
      // No host code: the workgroup function is never called (prepare
      // refuses), and the device half below launches the kernel.
    } else if (k.layer) {
      os << "extern void " << k.wgSymbol << "(";
      // MLIR's C interface: the returned buffer's descriptor comes first.
      os << "femrt_memref *";
      for (size_t i = 0; i + 1 < n; ++i)
        os << ", void *";
      os << ");\n";
    } else {
      os << "extern void " << k.wgSymbol << "(";
      for (size_t i = 0; i < n; ++i)
        os << "void *, ";
      os << "int64_t, int64_t, int64_t);\n";
    }
    os << "static const femrt_arg_info " << id << "_args[" << n << "] = {\n";
    for (const auto &a : k.args) {
      os << "  {" << cString(a.name) << ", " << cString(a.dims) << ", "
         << a.code << ", " << a.bits << ", "
         << (a.output ? "FEMRT_ARG_OUTPUT" : "FEMRT_ARG_INPUT") << ", "
         << a.shape.size() << ", {";
      list(a.shape);
      os << "}},\n";
    }
    os << "};\n";
    os << "static const int " << id << "_syms[" << n << "][9] = {";
    for (const auto &a : k.args) {
      os << "{";
      list(a.symbols);
      os << "}, ";
    }
    os << "};\n";
    if (k.layer) {
      size_t nsyms = k.symbolNames.size();
      // Arrays of exactly nsyms entries (at least one: C has no empty arrays).
      size_t size = std::max<size_t>(nsyms, 1);
      os << "static const char *const " << id << "_names[" << size << "] = {";
      if (nsyms == 0)
        os << "0";
      for (const std::string &name : k.symbolNames)
        os << cString(name) << ", ";
      os << "};\n";
      os << "static int " << id
         << "_prepare(void *const *args, int64_t grid[3], char *err, size_t "
            "len) {\n"
         << "  int64_t sym[" << size << "];\n  int src[" << size << "];\n"
         << "  if (!femc_cpu_ok(err, len)) return 1;\n"
         << "  if (femc_bind_named(" << id << "_args, " << id << "_syms, " << n
         << ", " << id << "_names, " << nsyms
         << ", args, sym, src, err, len)) return 1;\n"
         << "  grid[0] = grid[1] = grid[2] = 1;\n  return 0;\n}\n";
      // The layer returns its result in a buffer it allocated: copy it into
      // the caller's output and free it. Prepare checked the output against
      // the names of its fem.dims; an extent no input fixes can still differ
      // from what the layer computed, and a workgroup cannot fail: such a
      // mismatch (or a strided result) stops the process with a message
      // instead of writing past the output.
      const KernelInfo::Arg &out = k.args.back();
      size_t rank = out.shape.size();
      os << "static void " << id
         << "_workgroup(void *const *a, int64_t x, int64_t y, int64_t z) {\n"
         << "  femrt_memref r;\n  femrt_memref *o = (femrt_memref *)a[" << n - 1
         << "];\n  size_t count = 1;\n  int64_t stride = 1;\n"
         << "  (void)x; (void)y; (void)z;\n"
         // An empty output: nothing to compute (its intermediates, sized by
         // the other extents, could be too large to allocate).
         << "  for (int d = 0; d < " << rank << "; ++d)\n"
         << "    if (o->dims[d] == 0) return;\n"
         << "  memset(&r, 0, sizeof r);\n  " << k.wgSymbol << "(&r";
      for (size_t i = 0; i + 1 < n; ++i)
        os << ", a[" << i << "]";
      os << ");\n"
         << "  for (int d = " << rank << " - 1; d >= 0; --d) {\n"
         << "    if (r.dims[d] != o->dims[d]) {\n"
         << "      fprintf(stderr, \"femc: layer %s computed a result with "
            "extent %lld in dimension %d, but its output 'out' has %lld "
            "there (%s): name the result's extents in fem.dims after extents "
            "of the inputs\\n\", "
         << cString(k.name) << ", (long long)r.dims[d], d, (long long)o->dims[d], "
         << cString(out.dims) << ");\n      abort();\n    }\n"
         << "    if (r.dims[d] != 1 && r.dims[" << rank << " + d] != stride) {\n"
         << "      fprintf(stderr, \"femc: layer %s returned a strided result; "
            "this version copies only contiguous results\\n\", "
         << cString(k.name) << ");\n      abort();\n    }\n"
         << "    stride *= r.dims[d];\n"
         << "    count *= (size_t)r.dims[d];\n  }\n"
         << "  if (count)\n"
         << "    memcpy((float *)o->aligned + o->offset, (float *)r.aligned + "
            "r.offset, count * sizeof(float));\n"
         << "  " << memoryFunctionName(stem, "free")
         << "(r.allocated);\n}\n";
    } else {
      os << "static int " << id
         << "_prepare(void *const *args, int64_t grid[3], char *err, size_t "
            "len) {\n"
         << "  int64_t sym[9];\n"
         << "  if (!femc_cpu_ok(err, len)) return 1;\n"
         << "  if (femc_bind(" << id << "_args, " << id << "_syms, " << n
         << ", args, sym, err, len)) return 1;\n";
      // dk = 0 (priors with keys) and N = 0 (ssm): refused as the
      // reference and the verifier refuse them (the kernel wrote NaN).
      if (const femc::priors::PriorInfo *info = femc::priors::findPrior(k.prior))
        for (auto [extent, what, arg, needed] :
             {std::tuple{"dk", "the width of q and k", "q", info->usesKeys},
              std::tuple{"N", "the state size of A, Bs and Cs", "A",
                         info->algorithm == femc::priors::ReadAlgorithm::SsmScan}})
          if (needed)
            os << "  if (sym[" << femc::priors::extentIndex(extent)
               << "] < 1) {\n    snprintf(err, len, \"prior '" << k.prior
               << "' needs " << extent << " >= 1 (" << what << "), found "
               << extent << " = %lld (argument '" << arg
               << "')\", (long long)sym[" << femc::priors::extentIndex(extent)
               << "]);\n    return 1;\n  }\n";
      if (k.dkDividesDv)
        os << "  if (sym[5] <= 0 || 2 * sym[6] % sym[5] != 0) {\n"
           << "    snprintf(err, len, \"prior '" << k.prior
           << "' needs dk to divide the read width 2 * dv, found dk = %lld "
              "(argument 'q') and dv = %lld\", (long long)sym[5], "
              "(long long)sym[6]);\n"
           << "    return 1;\n  }\n";
      // The grid fem-tile stamped on the workgroup function (fem.grid).
      for (size_t i = 0; i < k.grid.size(); ++i) {
        auto [symbol, divisor] = k.grid[i];
        if (divisor == 1)
          os << "  grid[" << i << "] = sym[" << symbol << "];\n";
        else
          os << "  grid[" << i << "] = sym[" << symbol << "] / " << divisor
             << " + (sym[" << symbol << "] % " << divisor << " != 0);\n";
      }
      os << "  return 0;\n}\n";
      if (device) {
        os << "static void " << id
           << "_workgroup(void *const *a, int64_t x, int64_t y, int64_t z) "
              "{\n  (void)a; (void)x; (void)y; (void)z;\n"
           << "  fprintf(stderr, \"femc: kernel %s runs on a CUDA device; "
              "its host workgroup cannot run\\n\", "
           << cString(k.name) << ");\n  abort();\n}\n";
        continue;
      }
      os << "static void " << id
         << "_workgroup(void *const *a, int64_t x, int64_t y, int64_t z) {\n  "
         << k.wgSymbol << "(";
      for (size_t i = 0; i < n; ++i)
        os << "a[" << i << "], ";
      os << "x, y, z);\n}\n";
    }
    // Serial convenience entry, as declared in the header. Its locals are
    // femc_-prefixed: parameters never are.
    os << "int " << k.name << "(";
    for (size_t i = 0; i < n; ++i)
      os << (k.args[i].output ? "" : "const ") << "femrt_memref *"
         << paramName(k.args[i].name, i) << ", ";
    os << "char *err, size_t err_len) {\n  void *femc_args[" << n << "] = {";
    for (size_t i = 0; i < n; ++i)
      os << "(void *)" << paramName(k.args[i].name, i) << ", ";
    os << "};\n  int64_t femc_grid[3];\n  char femc_local[256];\n"
       << "  if (!err) { err = femc_local; err_len = sizeof femc_local; }\n"
       << "  if (" << id
       << "_prepare(femc_args, femc_grid, err, err_len)) return 1;\n"
       << "  for (int64_t z = 0; z < femc_grid[2]; ++z)\n"
       << "    for (int64_t y = 0; y < femc_grid[1]; ++y)\n"
       << "      for (int64_t x = 0; x < femc_grid[0]; ++x)\n"
       << "        " << id << "_workgroup(femc_args, x, y, z);\n"
       << "  return 0;\n}\n\n";
  }
  // The stages of layers (their FEM reads and fem-layer-matmul's
  // projections) run their grids through femc_parallel, on the pool
  // libfemrt lends the layer (femrt_host).
  emitLayerStages(os, kernels);
  // Scan kernels split along the sequence (ScanSplitGlue.h).
  auto splits = [&](const KernelInfo &k) { return !device && k.splitKs > 0; };
  if (llvm::any_of(kernels, splits))
    emitSplitCommon(os);
  for (auto [index, k] : llvm::enumerate(kernels)) {
    if (!splits(k))
      continue;
    SplitGlueKernel g;
    g.id = "femc_k" + std::to_string(index);
    g.wgName = k.wgName;
    g.prior = femc::priors::findPrior(k.prior);
    g.causal = k.causal;
    g.chunk = k.tileQ;
    g.ks = k.splitKs;
    g.epsLiteral = cDouble(static_cast<float>(k.eps));
    for (const KernelInfo::Arg &a : k.args)
      g.args.push_back({a.name, a.symbols, a.bits / 8});
    emitSplitKernel(os, g);
  }
  if (device) {
    std::vector<GlueKernel> glue;
    for (auto [index, k] : llvm::enumerate(kernels)) {
      GlueKernel g;
      g.id = "femc_k" + std::to_string(index);
      g.name = k.name;
      g.nameLiteral = cString(k.name);
      g.causal = k.causal;
      g.dkDividesDv = k.dkDividesDv;
      g.device = &device->kernels[index];
      for (auto [i, a] : llvm::enumerate(k.args)) {
        g.params.push_back(paramName(a.name, i));
        g.outputs.push_back(a.output);
        g.elementBytes.push_back(a.bits / 8);
      }
      glue.push_back(std::move(g));
    }
    device->target->writeDeviceGlue(os, stemIdent(stem), glue, device->image,
                                    device->assembly);
  }
  for (auto [index, k] : llvm::enumerate(kernels))
    os << "static const femrt_kernel_traits femc_k" << index
       << "_traits = " << traitsInitializer(k) << ";\n";
  os << "static const femrt_kernel_info femc_kernels[" << kernels.size()
     << "] = {\n";
  for (auto [index, k] : llvm::enumerate(kernels)) {
    std::string id = "femc_k" + std::to_string(index);
    os << "  {" << cString(k.name) << ", " << k.args.size() << ", " << id
       << "_args, " << id << "_prepare, " << id << "_workgroup, "
       << cString(describe(k)) << ", &" << id << "_traits, "
       << (splits(k) ? id + "_split" : std::string("0")) << "},\n";
  }
  os << "};\n"
     << "static const femrt_kernel_library femc_library = {\n"
     << "  FEMRT_KERNEL_ABI_VERSION, (uint32_t)sizeof(femrt_kernel_library), "
     << cString(version()) << ", " << cString(targetDescription) << ", "
     << kernels.size()
     << ", (uint32_t)sizeof(femrt_kernel_info), femc_kernels, "
     << (llvm::any_of(kernels, [](auto &k) { return k.layer; })
             ? "femc_bind_host"
             : "0")
     << "};\n"
     << "const femrt_kernel_library *femc_" << stemIdent(stem)
     << "_library(void) { return &femc_library; }\n"
     << "/* Weak, so several femc objects can be linked into one program. */\n"
     << "__attribute__((weak)) const femrt_kernel_library "
        "*femrt_library_query(void) { return &femc_library; }\n";
  return s;
}

std::string emitHeader(const std::vector<KernelInfo> &kernels, StringRef stem,
                       StringRef source, StringRef targetDescription,
                       const Target *device = nullptr) {
  std::string s;
  llvm::raw_string_ostream os(s);
  std::string lib = stemIdent(stem);
  std::string guard = "FEMC_" + StringRef(lib).upper() + "_H";
  std::string file = cComment(stem);
  os << "/* Generated by " << version() << " from " << cComment(source)
     << " for " << cComment(targetDescription) << ". Do not edit.\n";
  if (device) {
    // A device library: typed entry points that launch on the caller's
    // device and stream (target/nvidia/CudaGlue.cpp).
    os << " *\n * Link " << file << ".so (it needs libfemrt) and launch a "
          "kernel with the entry\n"
       << " * point below on a device from femrt_device_open_cuda and a "
          "CUDA stream\n"
       << " * (NULL: the default stream); the launch is asynchronous.\n"
       << " * Every argument is a contiguous row-major femrt_memref whose "
          "pointers are\n"
       << " * device addresses, 16-byte aligned; entry points return 0, or "
          "non-zero with\n * a message in err.\n"
       << " */\n#ifndef " << guard << "\n#define " << guard << "\n\n"
       << "#include \"femrt/femrt.h\"\n\n#ifdef __cplusplus\nextern \"C\" "
          "{\n#endif\n\n"
       << "const femrt_kernel_library *femc_" << lib << "_library(void);\n"
       << "/* Kernel number `kernel` of the library's table on `args` "
          "(femrt_memref *). */\n"
       << "int femc_" << lib
       << "_cuda_launch(int32_t kernel, femrt_device *device, void *stream, "
          "void *const *args, char *err, size_t err_len);\n\n";
  } else
  os << " *\n * Link " << file << ".o (or " << file
     << ".so) and run a kernel either\n"
     << " *  - serially on the calling thread with the entry point below, or\n"
     << " *  - on a thread pool through libfemrt: femrt_module_create_static(\n"
     << " *    ctx, femc_" << lib << "_library(), ...).\n"
     << " * Every argument is a contiguous row-major femrt_memref (strides in\n"
     << " * elements); entry points return 0, or non-zero with a message in err.\n"
     << " */\n#ifndef " << guard << "\n#define " << guard << "\n\n"
     << "#include \"femrt/kernel_abi.h\"\n\n#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n"
     << "const femrt_kernel_library *femc_" << lib << "_library(void);\n\n";
  for (const KernelInfo &k : kernels) {
    os << "/* " << k.name << ": " << cComment(describe(k)) << "\n";
    for (auto [i, a] : llvm::enumerate(k.args)) {
      std::string param = paramName(a.name, i);
      std::string name = cComment(a.name);
      if (param != a.name)
        name = param + " ('" + name + "')";
      os << " *   " << llvm::left_justify(name, 9) << " " << a.dtype << " [";
      SmallVector<StringRef> dims;
      StringRef(a.dims).split(dims, ',');
      for (size_t d = 0; d < a.shape.size(); ++d) {
        if (d)
          os << ", ";
        if (a.shape[d] < 0)
          os << cComment(dims[d]);
        else
          os << a.shape[d];
      }
      os << "]  (" << cComment(a.dims) << ")" << (a.output ? "  output" : "")
         << "\n";
    }
    if (k.layer)
      os << " * grid: one workgroup */\n";
    else
      os << " * grid: (" << gridText(k) << ") workgroups */\n";
    os << "int " << k.name << "("
       << (device ? device->entryParameters() : std::string());
    for (auto [i, a] : llvm::enumerate(k.args))
      os << (a.output ? "" : "const ") << "femrt_memref *" << paramName(a.name, i)
         << ", ";
    os << "char *err, size_t err_len);\n\n";
  }
  os << "#ifdef __cplusplus\n}\n#endif\n#endif\n";
  return s;
}

std::string emitManifest(const std::vector<KernelInfo> &kernels,
                         StringRef source, StringRef targetDescription,
                         ArrayRef<std::string> files,
                         const DeviceGlue *device = nullptr) {
  std::string s;
  llvm::raw_string_ostream os(s);
  os << "{\n  \"producer\": " << jsonString(version())
     << ",\n  \"abi_version\": " << FEMRT_KERNEL_ABI_VERSION << ",\n"
     << "  \"source\": " << jsonString(source)
     << ",\n  \"target\": " << jsonString(targetDescription);
  if (device)
    os << ",\n  \"device\": " << jsonString(device->target->device())
       << ", \"arch\": " << jsonString(device->target->cpu());
  os << ",\n  \"files\": [";
  llvm::interleaveComma(files, os, [&](const std::string &f) {
    os << jsonString(llvm::sys::path::filename(f));
  });
  os << "],\n  \"kernels\": [\n";
  for (size_t i = 0; i < kernels.size(); ++i) {
    const KernelInfo &k = kernels[i];
    os << "    {\"name\": " << jsonString(k.name)
       << ", \"prior\": " << jsonString(k.prior)
       << ", \"causal\": " << (k.causal ? "true" : "false")
       << ", \"layout\": " << jsonString(k.layout)
       << ", \"mask\": " << (k.hasMask ? "true" : "false")
       << ", \"scale\": " << (k.scale ? cDouble(*k.scale) : "null")
       << ", \"cap\": " << cDouble(k.layer ? 0.0 : k.cap)
       << ", \"eps\": " << cDouble(k.layer ? 0.0 : k.eps)
       << ",\n     \"tiles\": {\"q\": " << k.tileQ << ", \"k\": " << k.tileK
       << ", \"vec\": " << k.vec << "}, \"grid\": "
       << (k.layer ? std::string("[\"1\", \"1\", \"1\"]") : gridJson(k))
       << ",\n";
    // fem-tune's pool threads (docs/tuning.md): fem-run and femc.compile
    // launch with them unless told otherwise.
    if (k.threads > 0)
      os << "     \"threads\": " << k.threads << ",\n";
    // The chunk-level parallel prefix (ScanSplitGlue.h): when it may split.
    if (!k.layer && !device && k.splitKs > 0)
      os << "     \"split\": {\"min_t\": " << kDefaultSplitMinT
         << ", \"max_segments\": " << kMaxSplitSegments
         << ", \"chunk\": " << k.tileQ << "},\n";
    else if (!k.splitWhy.empty())
      os << "     \"split\": null, \"split_refused\": "
         << jsonString(k.splitWhy) << ",\n";
    if (!k.layerConfig.empty())
      os << "     \"layer\": " << k.layerConfig << ",\n";
    if (device) {
      const DeviceKernel &d = device->kernels[i];
      os << "     \"entry\": " << jsonString(d.symbol) << ", \"block\": ["
         << d.block[0] << ", " << d.block[1] << ", " << d.block[2]
         << "], \"shared_bytes\": " << d.sharedBytes
         << ", \"static_shared_bytes\": " << d.staticSharedBytes
         << ", \"dtype\": " << jsonString(d.dtype) << ",\n";
    }
    os << "     \"args\": [\n";
    for (size_t j = 0; j < k.args.size(); ++j) {
      const auto &a = k.args[j];
      os << "       {\"name\": " << jsonString(a.name) << ", \"role\": \""
         << (a.output ? "output" : "input")
         << "\", \"dtype\": " << jsonString(a.dtype)
         << ", \"dims\": " << jsonString(a.dims) << ", \"shape\": [";
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
  const char *env = std::getenv("FEMC_INCLUDE_DIR");
  return env && *env ? env : FEMC_RUNTIME_INCLUDE_DIR;
}

/// Fails with a message naming FEMC_INCLUDE_DIR when the folder the glue
/// will be compiled against lacks libfemrt's kernel ABI header (clang's own
/// "'femrt/kernel_abi.h' file not found" does not say where it looked or
/// why).
bool checkRuntimeIncludeDir(StringRef dir) {
  SmallString<256> header(dir);
  llvm::sys::path::append(header, "femrt", "kernel_abi.h");
  if (llvm::sys::fs::exists(header))
    return true;
  const char *env = std::getenv("FEMC_INCLUDE_DIR");
  if (env && *env)
    llvm::errs() << "femc: error: FEMC_INCLUDE_DIR='" << dir
                 << "' has no femrt/kernel_abi.h; unset it or point it at "
                    "libfemrt's headers (runtime/include in the source "
                    "tree, include/ of an installed femrt)\n";
  else
    llvm::errs() << "femc: error: libfemrt's headers are not at '" << dir
                 << "' (no femrt/kernel_abi.h; moved since femc was built?); "
                    "set FEMC_INCLUDE_DIR to the folder that holds femrt/\n";
  return false;
}

/// Checks the dynamic symbols a just-linked library imports: each must be
/// weak or bound to a version of a library the link resolved it in (libc,
/// libm, libpthread: e.g. memcpy@GLIBC_2.14); with --sanitize, the
/// sanitizer runtime's too. An unversioned strong import is a function no
/// library provides (e.g. `memrefCopy`, MLIR's runner-utils copy, which the
/// memref lowering calls for a strided memref.copy): the library would fail
/// to load. Names each such symbol, the lowered functions that call it and
/// the op it likely came from.
bool checkLibraryImports(StringRef library, const llvm::Module &llvmModule,
                         bool sanitized) {
  auto binary = llvm::object::ObjectFile::createObjectFile(library);
  if (!binary) {
    llvm::errs() << "femc: error: cannot read the library '" << library
                 << "' just linked: " << llvm::toString(binary.takeError())
                 << "\n";
    return false;
  }
  auto *elf = dyn_cast<llvm::object::ELFObjectFileBase>(binary->getBinary());
  if (!elf)
    return true; // not ELF: nothing to check on this host
  auto versions = elf->readDynsymVersions();
  if (!versions) {
    llvm::errs() << "femc: error: cannot read the symbol versions of '"
                 << library << "': " << llvm::toString(versions.takeError())
                 << "\n";
    return false;
  }
  bool ok = true;
  size_t index = 0;
  for (const llvm::object::ELFSymbolRef &sym :
       elf->getDynamicSymbolIterators()) {
    size_t i = index++;
    auto flags = sym.getFlags();
    auto name = sym.getName();
    if (!flags || !name) {
      llvm::consumeError(flags.takeError());
      llvm::consumeError(name.takeError());
      continue;
    }
    if (!(*flags & llvm::object::SymbolRef::SF_Undefined) ||
        (*flags & llvm::object::SymbolRef::SF_Weak) || name->empty() ||
        (i < versions->size() && !(*versions)[i].Name.empty()))
      continue;
    if (sanitized && llvm::any_of(std::initializer_list<StringRef>{
                                      "__asan", "__ubsan", "__lsan",
                                      "__sanitizer", "__msan", "__tsan"},
                                  [&](StringRef p) {
                                    return name->starts_with(p);
                                  }))
      continue;
    std::vector<std::string> callers;
    if (const llvm::Function *f = llvmModule.getFunction(*name))
      for (const llvm::User *user : f->users())
        if (const auto *inst = dyn_cast<llvm::Instruction>(user)) {
          std::string caller = "@" + inst->getFunction()->getName().str();
          if (!llvm::is_contained(callers, caller))
            callers.push_back(caller);
        }
    std::string origin;
    if (*name == "memrefCopy")
      origin = "a memref.copy between strided layouts (e.g. from "
               "tensor.insert_slice), which MLIR's memref lowering turns into "
               "a call of its runner-utils function memrefCopy";
    else if (name->starts_with("print") || name->starts_with("_mlir_"))
      origin = "an op MLIR lowers to a call of its runner-utils library "
               "(e.g. vector.print)";
    else if (!callers.empty())
      origin = "a function the model declares but does not define";
    else
      origin = "the generated C glue";
    llvm::errs() << "femc: error: the library '" << library
                 << "' would import '" << *name
                 << "', which no library it links provides (libc, libm, "
                    "libpthread): it would fail to load";
    if (!callers.empty())
      llvm::errs() << "; called from " << llvm::join(callers, ", ");
    llvm::errs() << "; it likely comes from " << origin
                 << ". Layer bodies may only use what docs/layers.md lists\n";
    ok = false;
  }
  return ok;
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

/// Gives `module` the data layout and triple of `target`'s machine and runs
/// LLVM's optimisation pipeline at `optLevel`. Returns the machine, or null
/// after an error on stderr.
std::unique_ptr<llvm::TargetMachine> optimizeForTarget(const Target &target,
                                                       llvm::Module &module,
                                                       unsigned optLevel) {
  std::string error;
  std::unique_ptr<llvm::TargetMachine> machine =
      target.createTargetMachine(optLevel, error);
  if (!machine) {
    llvm::errs() << "femc: error: " << error << "\n";
    return nullptr;
  }
  module.setDataLayout(machine->createDataLayout());
  module.setTargetTriple(machine->getTargetTriple());
  auto optimize = makeOptimizingTransformer(optLevel, 0, machine.get());
  if (llvm::Error err = optimize(&module)) {
    llvm::errs() << "femc: error: LLVM optimisation failed: "
                 << llvm::toString(std::move(err)) << "\n";
    return nullptr;
  }
  return machine;
}

/// The features of `targetFeatures` the kernels in `module` (optimised LLVM
/// IR for a CPU target) actually need at launch. AMX (amx-tile, amx-bf16)
/// only when the module calls an AMX tile intrinsic, and avx512bf16 only when
/// it computes on bf16 values: a library without such code, e.g. an f32 kernel
/// built for `host` on an AMX machine or for `+amx`, then neither refuses a
/// CPU without them nor asks Linux for AMX tile data. The LLVM module is what
/// the back end compiles, so it is the ground truth whichever pass emitted
/// the code and after dead code is gone. Every other feature is kept.
std::vector<std::string> featuresUsed(ArrayRef<std::string> targetFeatures,
                                      const llvm::Module &module) {
  bool amx = false, bf16 = false;
  for (const llvm::Function &f : module) {
    StringRef name = f.getName();
    if (f.isDeclaration() && !f.use_empty() && name.consume_front("llvm.x86.")) {
      // Tile loads/stores/zero/config and the tile dot products.
      if (name.starts_with("tile") || name.starts_with("tdp") ||
          name.starts_with("ldtilecfg") || name.starts_with("sttilecfg") ||
          name.starts_with("cast.tile") || name.starts_with("cast.vector.to.tile"))
        amx = true;
      if (name.starts_with("avx512bf16."))
        bf16 = true;
    }
    if (bf16 || f.isDeclaration())
      continue;
    auto isBF16 = [](llvm::Type *t) { return t->getScalarType()->isBFloatTy(); };
    for (const llvm::Instruction &i : llvm::instructions(f)) {
      if (isBF16(i.getType()) ||
          llvm::any_of(i.operands(),
                       [&](const llvm::Use &u) { return isBF16(u->getType()); })) {
        bf16 = true;
        break;
      }
    }
  }
  std::vector<std::string> used;
  for (const std::string &feature : targetFeatures) {
    if ((feature == "amx-tile" || feature == "amx-bf16") && !amx)
      continue;
    if (feature == "avx512bf16" && !bf16 && !amx)
      continue;
    used.push_back(feature);
  }
  return used;
}

/// What compile() shares with compileDevice: the model after fem-tile and
/// its kernels, where outputs go, and the --emit=mlir --after dump.
struct Stage1 {
  ModuleOp module;
  std::vector<KernelInfo> &kernels;
  StringRef stem, source;
  std::function<std::string(StringRef)> outPath;
  std::function<void(PassManager &)> configure;
  std::string &dump;
  bool &dumped;
};

/// The rest of compile() for a device target (Target::isDevice): refuse
/// what its lowering cannot take, lower to device kernels, emit their
/// assembly (PTX) and image (cubin), and link the host glue library that
/// loads and launches them (the target's writeDeviceGlue).
bool compileDevice(const CompileOptions &options, CompileResult &result,
                   const Target &target, Stage1 &in) {
  std::string where = "--target=" + target.name().str();
  if (options.glueOnly) {
    llvm::errs() << "femc: error: the glue-only mode is for host targets; "
                 << where << " needs the lowered kernels for its glue\n";
    return false;
  }
  if (options.tileQ || options.tileK || options.vec) {
    llvm::errs() << "femc: error: --tile-q, --tile-k and --vec set the tiles "
                    "of the CPU targets; "
                 << where
                 << " kernels choose their block shape themselves "
                    "(docs/gpu.md)\n";
    return false;
  }
  bool ok = true;
  in.module.walk([&](Operation *op) {
    std::optional<fem::PriorKind> kind;
    if (auto read = dyn_cast<fem::TileReadOp>(op))
      kind = read.getKind();
    else if (auto read = dyn_cast<fem::ScanReadOp>(op))
      kind = read.getKind();
    if (!kind)
      return;
    if (auto why = target.unsupportedPrior(fem::getPriorInfo(*kind))) {
      op->emitError() << "femc: " << where << ": " << *why;
      ok = false;
    }
  });
  in.module.walk([&](func::FuncOp f) {
    if (f->hasAttr("fem.layer")) {
      f.emitError() << "femc: " << where << ": layer @" << f.getSymName()
                    << " has no GPU lowering yet (the GPU targets compile "
                       "kernel-level functions, one fem.mixer of their "
                       "arguments); compile the layer for a CPU target";
      ok = false;
    }
  });
  if (!ok)
    return false;

  PassManager lowering(in.module.getContext());
  in.configure(lowering);
  std::string error;
  if (!target.buildDeviceLowering(lowering, error)) {
    llvm::errs() << "femc: error: " << error << "\n";
    return false;
  }
  bool lowered = succeeded(lowering.run(in.module));
  if (options.emit == "mlir") {
    std::string path = in.outPath(options.after.empty()
                                      ? ".ll.mlir"
                                      : "." + options.after + ".mlir");
    if (options.after.empty()) {
      llvm::raw_string_ostream os(in.dump);
      in.module.print(os);
    }
    if (!writeFile(path, in.dump))
      return false;
    result.files.push_back(path);
    return lowered || in.dumped;
  }
  if (!lowered)
    return false;

  DeviceGlue glue;
  glue.target = &target;
  std::vector<DeviceKernel> deviceKernels;
  if (!target.readDeviceKernels(in.module, deviceKernels))
    return false;
  for (KernelInfo &k : in.kernels) {
    auto it = llvm::find_if(deviceKernels, [&](const DeviceKernel &d) {
      return d.name == k.name;
    });
    if (it == deviceKernels.end()) {
      llvm::errs() << "femc: error: the " << target.name()
                   << " lowering made no device kernel for "
                   << quoted(k.name) << "\n";
      return false;
    }
    // The tables, traits, header and manifest describe the GPU launch: its
    // grid, and its query tile (the divisor of T); the key tile is internal
    // to the kernel (0).
    k.grid.clear();
    k.tileQ = k.tileK = k.vec = 0;
    for (const auto &[extent, divisor] : it->grid) {
      k.grid.push_back({femc::priors::extentIndex(extent), divisor});
      if (extent == "T")
        k.tileQ = divisor;
    }
    glue.kernels.push_back(*it);
  }

  llvm::LLVMContext llvmContext;
  std::unique_ptr<llvm::Module> llvmModule =
      translateModuleToLLVMIR(in.module, llvmContext, in.stem);
  if (!llvmModule) {
    llvm::errs() << "femc: error: translation of the GPU kernels to LLVM IR "
                    "failed\n";
    return false;
  }
  std::unique_ptr<llvm::TargetMachine> machine =
      optimizeForTarget(target, *llvmModule, options.optLevel);
  if (!machine)
    return false;
  if (options.emit == "llvm") {
    std::string path = in.outPath(".ll"), text;
    llvm::raw_string_ostream os(text);
    llvmModule->print(os, nullptr);
    if (!writeFile(path, text))
      return false;
    result.files.push_back(path);
    return true;
  }
  std::string assembly = in.outPath(target.assemblyExtension()),
              image = in.outPath(target.imageExtension()),
              glueC = in.outPath(".glue.c"), glueObj = in.outPath(".glue.o"),
              obj = in.outPath(".o"), header = in.outPath(".h"),
              shared = in.outPath(".so"), manifest = in.outPath(".json");
  std::vector<std::string> written = {assembly, image, glueC, glueObj,
                                      obj,      header, shared, manifest};
  auto cleanFail = [&]() {
    for (const std::string &f : written)
      llvm::sys::fs::remove(f);
    return false;
  };
  if (!target.emitKernelFile(*machine, *llvmModule, assembly,
                             llvm::CodeGenFileType::AssemblyFile))
    return cleanFail();
  if (options.emit == "asm") {
    result.files.push_back(assembly);
    return true;
  }
  std::string report;
  if (!target.assembleImage(assembly, image, options.verbose, glue.image,
                            report))
    return cleanFail();
  if (auto text = llvm::MemoryBuffer::getFile(assembly))
    glue.assembly = (*text)->getBuffer().str();
  else
    return cleanFail();
  if (options.verbose)
    llvm::errs() << report;
  // Spills in a GPU kernel cost local-memory traffic in the main loop.
  for (StringRef line : llvm::split(report, '\n'))
    if (line.contains("spill stores") && !line.contains(" 0 bytes spill stores"))
      llvm::errs() << "femc: warning: ptxas: " << line.trim() << "\n";

  std::string clang = findClang();
  if (clang.empty()) {
    llvm::errs() << "femc: error: clang-22 not found on PATH (needed to build "
                    "the host glue library); run scripts/setup.sh\n";
    return cleanFail();
  }
  std::string targetDescription = target.description();
  if (!writeFile(glueC, emitGlue(in.kernels, in.stem, in.source,
                                 targetDescription, {}, &glue)) ||
      !writeFile(header, emitHeader(in.kernels, in.stem, in.source,
                                    targetDescription, &target)))
    return cleanFail();
  std::vector<std::string> cc = {clang,   "-O2",     "-fPIC",  "-std=c11",
                                 "-Wall", "-Wextra", "-Werror"};
  std::string includeDir = runtimeIncludeDir();
  if (!checkRuntimeIncludeDir(includeDir))
    return cleanFail();
  cc.push_back("-I" + includeDir);
  std::vector<std::string> sanitize;
  if (!options.sanitize.empty())
    sanitize = {"-fsanitize=" + options.sanitize, "-fno-sanitize-recover=all",
                "-fno-omit-frame-pointer"};
  cc.insert(cc.end(), sanitize.begin(), sanitize.end());
  cc.insert(cc.end(), {"-c", glueC, "-o", options.emit == "obj" ? obj : glueObj});
  if (!runTool(cc, options.verbose))
    return cleanFail();
  result.files = {image, assembly, header, glueC};
  if (options.emit == "obj") {
    result.files.push_back(obj);
  } else {
    std::vector<std::string> link = {clang, "-shared", "-fPIC", glueObj, "-o",
                                     shared};
    for (const std::string &a : target.glueLinkArguments())
      link.push_back(a);
    link.push_back("-lpthread");
    link.insert(link.end(), sanitize.begin(), sanitize.end());
    if (!runTool(link, options.verbose))
      return cleanFail();
    llvm::sys::fs::remove(glueObj);
    result.files.push_back(shared);
    result.library = shared;
  }
  result.files.push_back(manifest);
  if (!writeFile(manifest, emitManifest(in.kernels, in.source,
                                        targetDescription, result.files,
                                        &glue)))
    return cleanFail();
  return true;
}

/// --matmul-precision: a known mode, and the split-bf16 ones only for a
/// CPU target with AMX-BF16 (passes/layer/LayerMatmulAmx.cpp).
static bool checkMatmulPrecision(StringRef precision, const Target &target) {
  if (precision != "auto" && precision != "f32" && precision != "bf16x3" &&
      precision != "bf16x6") {
    llvm::errs() << "femc: error: unknown --matmul-precision=" << precision
                 << "; expected auto, f32, bf16x3 or bf16x6\n";
    return false;
  }
  if (precision != "bf16x3" && precision != "bf16x6")
    return true;
  SmallVector<StringRef> features;
  StringRef(target.features()).split(features, ',');
  if (target.isDevice() || !llvm::is_contained(features, "+amx-tile") ||
      !llvm::is_contained(features, "+amx-bf16")) {
    llvm::errs() << "femc: error: --matmul-precision=" << precision
                 << " needs AMX-BF16 tiles (amx-tile, amx-bf16), which "
                    "target '"
                 << target.name() << "' (" << target.description()
                 << ") does not have; use --matmul-precision=f32, or a "
                    "target with AMX such as --target=host on an AMX CPU or "
                    "--target=sapphirerapids\n";
    return false;
  }
  return true;
}

bool compile(const CompileOptions &options, CompileResult &result) {
  static const char *const kEmits[] = {"lib", "obj", "llvm", "asm", "mlir"};
  if (!llvm::is_contained(kEmits, options.emit)) {
    llvm::errs() << "femc: error: unknown --emit=" << options.emit
                 << "; expected lib, obj, llvm, asm or mlir\n";
    return false;
  }
  const Target *target = lookupTarget(options.target);
  if (!target) {
    llvm::errs() << "femc: error: " << unsupportedTargetMessage(options.target)
                 << "\n";
    return false;
  }
  const std::string targetDescription = target->description();
  const std::vector<std::string> requiredFeatures = target->requiredFeatures();
  if (!checkMatmulPrecision(options.matmulPrecision, *target))
    return false;
  if (!llvm::all_of(options.sanitize, [](char c) {
        return llvm::isAlnum(c) || c == ',' || c == '-';
      })) {
    llvm::errs() << "femc: error: --sanitize=" << quoted(options.sanitize)
                 << " is not a list of sanitizer names (e.g. "
                    "address,undefined)\n";
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
  registerNVVMDialectTranslation(registry); // the NVIDIA targets' kernels
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
  unsigned bufferId =
      sourceMgr.AddNewSourceBuffer(std::move(file), llvm::SMLoc());
  // Deep nesting would overflow the parser's stack: refused, located.
  if (failed(fem::checkSourceNesting(sourceMgr, bufferId, &context)))
    return false;
  OwningOpRef<ModuleOp> module = parseSourceFile<ModuleOp>(sourceMgr, &context);
  if (!module)
    return false;
  // Names that become C symbols are checked before any pass renames or
  // generates functions.
  if (!checkFunctionNames(*module))
    return false;
  // fem.layer configurations: fem-outline-mixers replaces them with the
  // layer's name, so they are read before the pipeline.
  std::map<std::string, femc::ref::LayerConfig> layerConfigs =
      fem::collectLayerConfigs(*module);

  StringRef stem = llvm::sys::path::stem(options.input);
  StringRef source = llvm::sys::path::filename(options.input);
  if (std::error_code ec = llvm::sys::fs::create_directories(options.outDir)) {
    llvm::errs() << "femc: error: cannot create '" << options.outDir
                 << "': " << ec.message() << "\n";
    return false;
  }
  auto outPath = [&](StringRef ext) {
    // A relative folder starting with '-' (femc -o -v) would reach clang
    // as an option: such paths are given as ./-v/NAME.
    SmallString<256> p(StringRef(options.outDir).starts_with("-") ? "./" : "");
    llvm::sys::path::append(p, options.outDir, (stem + ext).str());
    return std::string(p);
  };

  // No output replaces the model (e.g. a model saved as NAME.json or
  // NAME.h in the output folder): every name femc may write is checked
  // before any is written.
  for (std::string ext :
       {std::string(".kernels.o"), std::string(".glue.c"),
        std::string(".glue.o"), std::string(".o"), std::string(".h"),
        std::string(".json"), std::string(".so"), std::string(".s"),
        std::string(".ll"), std::string(".ll.mlir"),
        target->assemblyExtension(), target->imageExtension(),
        "." + options.after + ".mlir"})
    if (llvm::sys::fs::equivalent(options.input, outPath(ext))) {
      llvm::errs() << "femc: error: the output '" << outPath(ext)
                   << "' would replace the model '" << options.input
                   << "'; name the model NAME.mlir or write to another "
                      "folder with -o\n";
      return false;
    }

  fem::CPUPipelineOptions pipe;
  pipe.tileQ = options.tileQ;
  pipe.tileK = options.tileK;
  pipe.vectorWidth = options.vec;
  pipe.target = target->tileTarget();
  pipe.matmulPrecision = options.matmulPrecision;

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
  // --tuning-db: each mixer's recorded tiles (fem-apply-tuning); tiles
  // given on the command line win.
  if (!options.tuningDb.empty() && !options.tileQ && !options.tileK &&
      !options.vec) {
    fem::FEMApplyTuningOptions tuning;
    tuning.db = options.tuningDb;
    tuning.dims.assign(options.tuningDims.begin(), options.tuningDims.end());
    tuning.target = targetDescription;
    tuning.femcVersion = version();
    tuning.dimOption = "--tuning-dim";
    tuning.verbose = options.verbose;
    tuning.missingOk = true; // femc warns about a missing database itself
    tiling.addPass(fem::createFEMApplyTuning(tuning));
  }
  fem::buildFEMToTiledPipeline(tiling, pipe);
  if (failed(tiling.run(*module)))
    return false;
  std::vector<KernelInfo> kernels;
  if (!collectKernels(*module, kernels) || !collectLayers(*module, kernels))
    return false;
  for (KernelInfo &k : kernels)
    if (auto it = layerConfigs.find(k.name);
        k.layer && it != layerConfigs.end())
      k.layerConfig = femc::ref::layerConfigJson(it->second);
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
    // A module written without `module {}` has no line of its own.
    static const char *const kNoKernel =
        "no kernel found: the model has no fem.mixer (or fused FEM read) in "
        "a public func.func";
    auto at = dyn_cast<FileLineColLoc>(module->getLoc());
    if (at && at.getLine() > 0)
      module->emitError() << "femc: " << kNoKernel;
    else
      llvm::errs() << options.input << ": error: femc: " << kNoKernel << "\n";
    return false;
  }
  for (auto &k : kernels)
    result.kernels.push_back(k.name);
  if (options.verbose)
    for (auto &k : kernels) {
      llvm::errs() << "femc: kernel " << k.name << ": " << describe(k) << "\n";
      if (k.splitKs > 0 && !target->isDevice())
        llvm::errs() << "femc: kernel " << k.name
                     << ": splits the sequence into chunk-aligned segments "
                        "when its grid leaves threads idle and T >= "
                     << kDefaultSplitMinT
                     << " (FEMC_SCAN_SPLIT_MIN_T, FEMC_SCAN_SEGMENTS)\n";
      else if (!k.splitWhy.empty())
        llvm::errs() << "femc: kernel " << k.name
                     << ": never splits the sequence: " << k.splitWhy << "\n";
    }
  if (target->isDevice()) {
    Stage1 in{*module, kernels, stem, source, outPath, configure, dump, dumped};
    return compileDevice(options, result, *target, in);
  }
  if (options.glueOnly) {
    // Nothing is lowered here, so the glue checks every feature of the
    // target (featuresUsed needs the LLVM module).
    result.glue =
        emitGlue(kernels, stem, source, targetDescription, requiredFeatures);
    result.header = emitHeader(kernels, stem, source, targetDescription);
    // The files --emit=lib writes, in the order the manifest lists them.
    result.manifest = emitManifest(
        kernels, source, targetDescription,
        {outPath(".o"), outPath(".h"), outPath(".glue.c"), outPath(".so"),
         outPath(".json")});
    return true;
  }

  // The phase functions of the scans' parallel prefix (fem-tile's
  // addScanSplitFunctions), lowered with the kernels.
  if (llvm::any_of(kernels, [](auto &k) { return k.splitKs > 0; }) &&
      failed(fem::addScanSplitFunctions(*module)))
    return false;

  // The lowering picks feature-specific code (AMX tiles for bf16 reads)
  // from the target's LLVM features.
  (*module)->setAttr(fem::cpu::kTargetFeaturesAttr,
                     StringAttr::get(&context, target->features()));

  // Stage 2: loops, then LLVM.
  PassManager lowering(&context);
  configure(lowering);
  fem::buildTiledToLoopsPipeline(lowering, pipe);
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
  llvm::LLVMContext llvmContext;
  std::unique_ptr<llvm::Module> llvmModule =
      translateModuleToLLVMIR(*module, llvmContext, stem);
  if (!llvmModule) {
    llvm::errs() << "femc: error: translation to LLVM IR failed\n";
    return false;
  }
  collectLayerStages(*llvmModule, kernels);
  renameMemoryFunctions(*llvmModule, stem);
  std::unique_ptr<llvm::TargetMachine> machine =
      optimizeForTarget(*target, *llvmModule, options.optLevel);
  if (!machine)
    return false;
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
    return target->emitKernelFile(*machine, *llvmModule, path, kind);
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
  if (!checkRuntimeIncludeDir(includeDir))
    return false;
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
  // Read before the back end rewrites the AMX intrinsics.
  const std::vector<std::string> usedFeatures =
      featuresUsed(requiredFeatures, *llvmModule);
  if (!emitMachineCode(kernelObj, llvm::CodeGenFileType::ObjectFile) ||
      !writeFile(glueC, emitGlue(kernels, stem, source, targetDescription,
                                 usedFeatures)) ||
      !writeFile(header,
                 emitHeader(kernels, stem, source, targetDescription)))
    return cleanFail();
  // The glue must compile without a warning: a warning is a femc bug.
  std::vector<std::string> cc = {clang,    "-O2",    "-fPIC", "-std=c11",
                                 "-Wall",  "-Wextra", "-Werror"};
  cc.push_back("-I" + includeDir);
  std::vector<std::string> sanitize;
  if (!options.sanitize.empty())
    sanitize = {"-fsanitize=" + options.sanitize, "-fno-sanitize-recover=all",
                "-fno-omit-frame-pointer"};
  cc.insert(cc.end(), sanitize.begin(), sanitize.end());
  cc.insert(cc.end(), {"-c", glueC, "-o", glueObj});
  if (!runTool(cc, options.verbose) ||
      !runTool({clang, "-r", "-nostdlib", kernelObj, glueObj, "-o", obj},
               options.verbose))
    return cleanFail();
  llvm::sys::fs::remove(kernelObj);
  llvm::sys::fs::remove(glueObj);
  result.files = {obj, header, glueC};
  if (options.emit == "lib") {
    std::vector<std::string> link = {clang, "-shared", "-fPIC", obj, "-o",
                                     shared, "-lm"};
    link.insert(link.end(), sanitize.begin(), sanitize.end());
    if (!runTool(link, options.verbose) ||
        !checkLibraryImports(shared, *llvmModule, !options.sanitize.empty()))
      return cleanFail();
    result.files.push_back(shared);
    result.library = shared;
  }
  result.files.push_back(manifest);
  if (!writeFile(manifest, emitManifest(kernels, source, targetDescription,
                                        result.files)))
    return cleanFail();
  return true;
}

} // namespace femc::driver
