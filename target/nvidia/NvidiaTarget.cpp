//===- NvidiaTarget.cpp - the NVIDIA GPU targets of femc ------------------===//
//
// Part of the femc project.
//
// The targets sm_80, sm_90 and cuda (= sm_90). What they add to the driver:
// the lowering of passes/nvidia/ (buildNvidiaPipeline), the kernels' launch
// facts read from the lowered module (passes/nvidia/KernelAbi.h), PTX from
// LLVM's NVPTX back end, the cubin from ptxas, and the device half of the
// C glue (target/nvidia/CudaGlue.cpp).
//
//===----------------------------------------------------------------------===//
#include "target/nvidia/NvidiaTarget.h"
#include "target/nvidia/CudaGlue.h"
#include "target/nvidia/TileSpace.h"

#include "passes/nvidia/KernelAbi.h"
#ifdef FEMC_HAVE_NVIDIA_LOWERING
#include "passes/nvidia/NvidiaPipeline.h"
#endif

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/PassManager.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/Target/TargetMachine.h"

#include <cstdlib>
#include <mutex>

#ifndef FEMC_PTXAS_DEFAULT
#define FEMC_PTXAS_DEFAULT ""
#endif
#ifndef FEMC_FEMRT_LIBRARY
#define FEMC_FEMRT_LIBRARY ""
#endif

extern "C" {
void LLVMInitializeNVPTXTargetInfo();
void LLVMInitializeNVPTXTarget();
void LLVMInitializeNVPTXTargetMC();
void LLVMInitializeNVPTXAsmPrinter();
}

using llvm::StringRef;

namespace femc::target::nvidia {

std::string findPtxas(std::string &looked) {
  std::vector<std::string> candidates;
  // A ptxas named explicitly is the only one tried.
  if (const char *env = std::getenv("FEMC_PTXAS"); env && *env) {
    looked = std::string("FEMC_PTXAS=") + env;
    return llvm::sys::fs::can_execute(env) ? std::string(env) : std::string();
  }
  if (const char *cuda = std::getenv("CUDA_PATH"); cuda && *cuda) {
    llvm::SmallString<256> p(cuda);
    llvm::sys::path::append(p, "bin", "ptxas");
    candidates.push_back(std::string(p));
  }
  if (*FEMC_PTXAS_DEFAULT)
    candidates.push_back(FEMC_PTXAS_DEFAULT);
  candidates.push_back("/usr/local/cuda/bin/ptxas");
  looked.clear();
  for (const std::string &c : candidates) {
    looked += (looked.empty() ? "" : ", ") + c;
    if (llvm::sys::fs::can_execute(c))
      return c;
  }
  looked += ", ptxas on PATH";
  if (auto p = llvm::sys::findProgramByName("ptxas"))
    return *p;
  return {};
}

std::optional<std::string> checkGpuTiles(const priors::PriorInfo &prior,
                                         const priors::Tiles &tiles) {
  if (prior.grid != priors::GridKind::QueryTiles)
    return "prior '" + std::string(prior.name) +
           "' has no GPU lowering yet (the NVIDIA targets compile the "
           "softmax prior)";
  auto powerOfTwo = [](int64_t v) {
    return v >= 16 && v <= 128 && (v & (v - 1)) == 0;
  };
  if (!powerOfTwo(tiles.q))
    return "query tile (tile-q) of a GPU block must be 16, 32, 64 or 128, "
           "found " + std::to_string(tiles.q);
  if (!powerOfTwo(tiles.k))
    return "key tile (tile-k) of a GPU block must be 16, 32, 64 or 128, "
           "found " + std::to_string(tiles.k);
  return std::nullopt;
}

namespace {

/// One NVIDIA target: compute capability `arch` (80, 90).
class NvidiaTarget final : public driver::Target {
public:
  NvidiaTarget(std::string name, int64_t arch)
      : name_(std::move(name)), arch_(arch) {}

  StringRef name() const override { return name_; }
  std::string description() const override {
    return sm() + " (NVIDIA GPU, compute capability " +
           std::to_string(arch_ / 10) + "." + std::to_string(arch_ % 10) + ")";
  }
  std::string triple() const override {
    return std::string(femc::nvidia::kTriple);
  }
  std::string cpu() const override { return sm(); }
  /// PTX ISA 8.0 (CUDA 12.0): the oldest that knows sm_90; ptxas of any
  /// CUDA 12 or 13 accepts it.
  std::string features() const override { return "+ptx80"; }
  /// fem-tile runs with 4-lane vectors; the GPU lowering replaces the
  /// workgroup functions and picks its own block shape.
  std::string tileTarget() const override { return "generic"; }
  int64_t defaultVectorWidth() const override { return 4; }
  std::vector<std::string> requiredFeatures() const override { return {}; }

  std::unique_ptr<llvm::TargetMachine>
  createTargetMachine(unsigned optLevel, std::string &error) const override {
    static std::once_flag once;
    std::call_once(once, [] {
      LLVMInitializeNVPTXTargetInfo();
      LLVMInitializeNVPTXTarget();
      LLVMInitializeNVPTXTargetMC();
      LLVMInitializeNVPTXAsmPrinter();
    });
    return driver::createMachine(triple(), cpu(), features(), std::nullopt,
                                 optLevel, error);
  }

  bool emitKernelFile(llvm::TargetMachine &machine, llvm::Module &module,
                      StringRef path,
                      llvm::CodeGenFileType kind) const override {
    return driver::emitWithMachine(machine, module, path, kind);
  }

  std::optional<std::string>
  checkTiles(const priors::PriorInfo &prior,
             const priors::Tiles &tiles) const override {
    return checkGpuTiles(prior, tiles);
  }
  /// The blocked kernel's shape (passes/nvidia/SoftmaxKernel.h): 32 query
  /// rows and 32 keys per tile.
  priors::Tiles defaultTiles(const priors::PriorInfo &prior) const override {
    (void)prior;
    return {32, 32, 4};
  }
  driver::TileSpace
  tileSpace(const priors::PriorInfo &prior) const override {
    return nvidiaTileSpace(prior, defaultTiles(prior));
  }

  std::string device() const override { return "cuda"; }

  std::optional<std::string>
  unsupportedPrior(const priors::PriorInfo &prior) const override {
    if (prior.grid == priors::GridKind::QueryTiles)
      return std::nullopt;
    return "prior '" + std::string(prior.name) +
           "' has no NVIDIA GPU lowering yet (the GPU targets compile the "
           "softmax prior; the linear family follows in its own issue); "
           "compile it for a CPU target (--target=host, x86-64-v3 or "
           "x86-64-v4)";
  }

  /// --tile-q: the tensor-core kernel's query rows per block (64 or 128,
  /// KernelAbi.h; the pass refuses reads that get the f32 kernel).
  bool buildDeviceLowering(mlir::OpPassManager &pm, int64_t tileQ,
                           std::string &error) const override {
    if (tileQ && !femc::nvidia::isTensorCoreBlockRows(tileQ)) {
      error = "--target=" + name_ +
              ": --tile-q is the tensor-core kernel's query rows per block, " +
              std::string(femc::nvidia::kTensorCoreBlockRowsText) +
              "; found " + std::to_string(tileQ) + " (docs/gpu.md)";
      return false;
    }
#ifdef FEMC_HAVE_NVIDIA_LOWERING
    mlir::fem::NvidiaOptions options;
    options.sm = arch_;
    options.mmaRows = tileQ;
    mlir::fem::buildNvidiaPipeline(pm, options);
    return true;
#else
    (void)pm;
    (void)tileQ;
    error = "this femc was built without the NVIDIA lowering "
            "(passes/nvidia); --target=" + name_ + " cannot lower kernels";
    return false;
#endif
  }

  bool readDeviceKernels(mlir::ModuleOp module,
                         std::vector<driver::DeviceKernel> &out) const override;

  bool assembleImage(StringRef assemblyPath, StringRef imagePath,
                     bool verbose, std::string &image,
                     std::string &report) const override;

  std::string assemblyExtension() const override { return ".ptx"; }
  std::string imageExtension() const override { return ".cubin"; }

  std::string hostLaunchRefusal() const override {
    return "this kernel library was compiled for " + description() +
           ": its kernels run on a CUDA device, not on the host; launch "
           "them with the entry points of its header (a femrt_device, a "
           "stream and device pointers) or with fem-run --device cuda";
  }
  std::string entryParameters() const override {
    return "femrt_device *femc_device, void *femc_stream, ";
  }
  void writeDeviceGlue(llvm::raw_ostream &os, StringRef stem,
                       const std::vector<driver::GlueKernel> &kernels,
                       StringRef image, StringRef assembly) const override {
    writeCudaGlue(os, stem, kernels, image, assembly, arch_, description());
  }
  std::vector<std::string> glueLinkArguments() const override {
    std::string library = FEMC_FEMRT_LIBRARY;
    if (const char *env = std::getenv("FEMC_FEMRT_LIBRARY"); env && *env)
      library = env;
    if (library.empty())
      return {"-lfemrt"};
    // The glue calls libfemrt's CUDA API: record it as a dependency (by its
    // soname, so a process that already has libfemrt loaded uses that one)
    // and find it next to the library or where femc's own build put it.
    StringRef dir = llvm::sys::path::parent_path(library);
    return {library, "-Wl,-rpath,$ORIGIN", "-Wl,-rpath," + dir.str()};
  }

private:
  std::string sm() const { return "sm_" + std::to_string(arch_); }

  std::string name_;
  int64_t arch_;
};

/// An integer triple from an ArrayAttr of integers or a dense i32/i64
/// array; false when `attr` is neither or has another length.
bool readInts(mlir::Attribute attr, size_t count, std::vector<int64_t> &out) {
  out.clear();
  if (auto dense = llvm::dyn_cast_or_null<mlir::DenseI64ArrayAttr>(attr))
    out.assign(dense.asArrayRef().begin(), dense.asArrayRef().end());
  else if (auto dense = llvm::dyn_cast_or_null<mlir::DenseI32ArrayAttr>(attr))
    out.assign(dense.asArrayRef().begin(), dense.asArrayRef().end());
  else if (auto array = llvm::dyn_cast_or_null<mlir::ArrayAttr>(attr))
    for (mlir::Attribute a : array) {
      auto i = llvm::dyn_cast<mlir::IntegerAttr>(a);
      if (!i)
        return false;
      out.push_back(i.getInt());
    }
  else
    return false;
  return out.size() == count;
}

bool NvidiaTarget::readDeviceKernels(
    mlir::ModuleOp module, std::vector<driver::DeviceKernel> &out) const {
  bool ok = true;
  module.walk([&](mlir::LLVM::LLVMFuncOp f) {
    auto kernel = f->getAttrOfType<mlir::StringAttr>("fem.kernel");
    if (!kernel || f.isExternal())
      return;
    driver::DeviceKernel k;
    k.name = kernel.getValue().str();
    k.symbol = f.getSymName().str();
    auto bad = [&](StringRef attr, StringRef expected) {
      f.emitError() << "femc: GPU kernel @" << k.symbol << " has no valid "
                    << attr << " (expected " << expected
                    << "; passes/nvidia/KernelAbi.h)";
      ok = false;
    };
    auto grid =
        f->getAttrOfType<mlir::ArrayAttr>(femc::nvidia::kAttrGrid.data());
    if (!grid || grid.size() != 3)
      return bad(femc::nvidia::kAttrGrid, "three [extent, divisor] pairs");
    for (mlir::Attribute axis : grid) {
      auto pair = llvm::dyn_cast<mlir::ArrayAttr>(axis);
      auto extent = pair && pair.size() == 2
                        ? llvm::dyn_cast<mlir::StringAttr>(pair[0])
                        : mlir::StringAttr();
      auto divisor = pair && pair.size() == 2
                         ? llvm::dyn_cast<mlir::IntegerAttr>(pair[1])
                         : mlir::IntegerAttr();
      if (!extent || !divisor || divisor.getInt() < 1 ||
          priors::extentIndex(extent.getValue().str()) < 0)
        return bad(femc::nvidia::kAttrGrid,
                   "[extent, divisor] pairs of a named extent and a divisor "
                   ">= 1");
      k.grid.push_back({extent.getValue().str(), divisor.getInt()});
    }
    std::vector<int64_t> block;
    if (!readInts(f->getAttr(femc::nvidia::kAttrBlock.data()), 3, block) ||
        block[0] < 1 || block[1] < 1 || block[2] < 1 ||
        block[0] * block[1] * block[2] > 1024)
      return bad(femc::nvidia::kAttrBlock,
                 "[x, y, z] threads, at most 1024 in all");
    std::copy(block.begin(), block.end(), k.block);
    auto integer = [&](std::string_view name, int64_t &value) {
      auto a = f->getAttrOfType<mlir::IntegerAttr>(name.data());
      if (!a || a.getInt() < 0)
        return false;
      value = a.getInt();
      return true;
    };
    if (!integer(femc::nvidia::kAttrSharedBytes, k.sharedBytes))
      return bad(femc::nvidia::kAttrSharedBytes, "an integer >= 0");
    if (!integer(femc::nvidia::kAttrStaticSharedBytes, k.staticSharedBytes))
      return bad(femc::nvidia::kAttrStaticSharedBytes, "an integer >= 0");
    if (!integer(femc::nvidia::kAttrArch, k.arch) || k.arch != arch_)
      return bad(femc::nvidia::kAttrArch, std::to_string(arch_) +
                                              ", the target's compute "
                                              "capability");
    auto dtype = f->getAttrOfType<mlir::StringAttr>(
        femc::nvidia::kAttrDtype.data());
    if (!dtype || (dtype.getValue() != "f32" && dtype.getValue() != "f16" &&
                   dtype.getValue() != "bf16"))
      return bad(femc::nvidia::kAttrDtype, "\"f32\", \"f16\" or \"bf16\"");
    k.dtype = dtype.getValue().str();
    out.push_back(std::move(k));
  });
  return ok;
}

bool NvidiaTarget::assembleImage(StringRef assemblyPath, StringRef imagePath,
                                 bool verbose, std::string &image,
                                 std::string &report) const {
  std::string looked;
  std::string ptxas = findPtxas(looked);
  if (ptxas.empty()) {
    llvm::errs() << "femc: error: --target=" << name_
                 << " needs ptxas from the CUDA toolkit to make the cubin and "
                    "found none (looked at: "
                 << looked
                 << "); install the CUDA toolkit, or name ptxas with "
                    "FEMC_PTXAS=/path/to/ptxas or CUDA_PATH\n";
    return false;
  }
  llvm::SmallString<128> log;
  if (std::error_code ec =
          llvm::sys::fs::createTemporaryFile("femc-ptxas", "log", log)) {
    llvm::errs() << "femc: error: cannot create a temporary file for ptxas: "
                 << ec.message() << "\n";
    return false;
  }
  std::vector<std::string> argv = {ptxas,        "-arch=" + sm(),
                                   "-O3",        "-v",
                                   "--warn-on-spills", assemblyPath.str(),
                                   "-o",         imagePath.str()};
  if (verbose) {
    llvm::errs() << "femc: running:";
    for (const std::string &a : argv)
      llvm::errs() << " " << a;
    llvm::errs() << "\n";
  }
  llvm::SmallVector<StringRef> args(argv.begin(), argv.end());
  std::optional<StringRef> redirects[] = {std::nullopt, StringRef(log),
                                          StringRef(log)};
  std::string message;
  int rc = llvm::sys::ExecuteAndWait(ptxas, args, std::nullopt, redirects, 0,
                                     0, &message);
  auto text = llvm::MemoryBuffer::getFile(log);
  report = text ? (*text)->getBuffer().str() : "";
  llvm::sys::fs::remove(log);
  if (rc != 0) {
    llvm::errs() << "femc: error: '" << ptxas << "' failed on "
                 << assemblyPath << (message.empty() ? "" : ": ") << message
                 << " (exit " << rc << "):\n"
                 << report;
    return false;
  }
  auto cubin = llvm::MemoryBuffer::getFile(imagePath, /*IsText=*/false,
                                           /*RequiresNullTerminator=*/false);
  if (!cubin) {
    llvm::errs() << "femc: error: ptxas wrote no readable cubin at '"
                 << imagePath << "': " << cubin.getError().message() << "\n";
    return false;
  }
  image = (*cubin)->getBuffer().str();
  return true;
}

} // namespace

const std::vector<const driver::Target *> &nvidiaTargets() {
  static const NvidiaTarget sm80("sm_80", 80), sm90("sm_90", 90),
      cuda("cuda", 90);
  static const std::vector<const driver::Target *> all = {&sm80, &sm90,
                                                          &cuda};
  return all;
}

} // namespace femc::target::nvidia
