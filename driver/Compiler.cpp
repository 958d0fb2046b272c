//===- Compiler.cpp - the femc compilation driver --------------------------===//
#include "driver/Compiler.h"
#include "driver/CText.h"
#include "driver/Glue.h"
#include "driver/Kernels.h"
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

/// clang and the linker write an output F = DIR/NAME.EXT through a temporary
/// DIR/NAME-XXXXXXXX.EXT.tmp renamed over it; a failed write (a full disk)
/// can leave that temporary behind, and with it the -o folder femc made and
/// would have removed when empty. Removes such leftovers of `output`.
static void removeToolTemporaries(llvm::StringRef output) {
  llvm::StringRef dir = llvm::sys::path::parent_path(output);
  llvm::StringRef stem = llvm::sys::path::stem(output);
  llvm::StringRef ext = llvm::sys::path::extension(output);
  std::error_code ec;
  for (llvm::sys::fs::directory_iterator it(dir.empty() ? "." : dir, ec), end;
       it != end && !ec; it.increment(ec)) {
    llvm::StringRef name = llvm::sys::path::filename(it->path());
    if (name.starts_with((stem + "-").str()) &&
        name.ends_with((ext + ".tmp").str()) &&
        name.size() == stem.size() + 1 + 8 + ext.size() + 4)
      llvm::sys::fs::remove(it->path());
  }
}

const char *version() { return FEMC_PRODUCER; }

namespace {

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
  if (options.tileK || options.vec) {
    llvm::errs() << "femc: error: --tile-k and --vec set the tiles of the CPU "
                    "targets; "
                 << where
                 << " kernels choose their key tile and vectors themselves "
                    "(--tile-q: the tensor-core kernel's query rows per "
                    "block, 64 or 128; docs/gpu.md)\n";
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
      // The model's name (fem-outline-mixers renamed the function NAME_layer
      // and kept NAME as fem.layer).
      auto name = f->getAttrOfType<StringAttr>("fem.layer");
      f.emitError() << "femc: " << where << ": layer @"
                    << (name ? name.getValue() : f.getSymName())
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
  if (!target.buildDeviceLowering(lowering, options.tileQ, error)) {
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
    // -Bsymbolic: the library's own references bind to its own symbols
    // (see the CPU link below).
    std::vector<std::string> link = {clang, "-shared", "-fPIC", glueObj,
                                     "-Wl,-Bsymbolic", "-o", shared};
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
  // A read whose result nothing uses is compiled anyway (its function is a
  // layer that does not return it): most likely a slip in the model.
  module->walk(
      [](fem::MixerOp mixer) {
        if (mixer->use_empty())
          mixer.emitWarning()
              << "the result of this fem.mixer is never used: its function "
                 "does not return it (it still compiles, as a layer around it)";
      });
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
  // Nor is a folder in the way of one: `-o D` with a folder D/NAME.so used
  // to fail at the link, after the whole compile, as "'clang' failed (exit
  // 1)" under ld's own line.
  std::vector<std::string> writes;
  if (options.emit == "mlir")
    writes = {options.after.empty() ? ".ll.mlir"
                                    : "." + options.after + ".mlir"};
  else if (options.emit == "llvm")
    writes = {".ll"};
  else if (options.emit == "asm")
    writes = {target->assemblyExtension()};
  else if (!options.glueOnly) {
    writes = {".kernels.o", ".glue.c", ".glue.o", ".o", ".h", ".json"};
    if (options.emit == "lib")
      writes.push_back(".so");
    if (target->isDevice())
      writes.insert(writes.end(),
                    {target->assemblyExtension(), target->imageExtension()});
  }
  for (const std::string &ext : writes)
    if (llvm::sys::fs::is_directory(outPath(ext))) {
      llvm::errs() << "femc: error: cannot write '" << outPath(ext)
                   << "': it is a folder; remove it or write to another "
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
    for (const std::string &f : written) {
      llvm::sys::fs::remove(f);
      removeToolTemporaries(f);
    }
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
    // -Bsymbolic: the glue's calls of the library's own kernels (NAME_wg,
    // _mlir_ciface_NAME_wg) bind to this library's definitions. Without it
    // they went through the process's global scope, so a library of the
    // same kernel names already there (linked into the program, preloaded,
    // or dlopened RTLD_GLOBAL) ran its kernels instead, without a word.
    std::vector<std::string> link = {clang, "-shared", "-fPIC", obj,
                                     "-Wl,-Bsymbolic", "-o", shared, "-lm"};
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
