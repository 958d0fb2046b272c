//===- CpuTarget.cpp - the x86-64 CPU targets of femc ---------------------===//
//
// Part of the femc project.
//
//===----------------------------------------------------------------------===//
#include "target/cpu/CpuTarget.h"

#include "passes/Passes.h"

#include "llvm/IR/LegacyPassManager.h"
#include "llvm/IR/Module.h"
#include "llvm/MC/TargetRegistry.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/Target/TargetMachine.h"
#include "llvm/Target/TargetOptions.h"
#include "llvm/TargetParser/Host.h"
#include "llvm/TargetParser/SubtargetFeature.h"

using llvm::StringRef;

namespace femc::target::cpu {
namespace {

/// One x86-64 CPU target: LLVM's native back end with a fixed CPU and
/// feature set, emitting position-independent code.
class CpuTarget final : public driver::Target {
public:
  CpuTarget(std::string name, std::string cpu, std::string features,
            std::string tileTarget, std::string description,
            std::vector<std::string> required)
      : name_(std::move(name)), cpu_(std::move(cpu)),
        features_(std::move(features)), tileTarget_(std::move(tileTarget)),
        description_(std::move(description)), required_(std::move(required)) {
  }

  /// This machine: its CPU and every feature it has; the glue requires the
  /// vector features among them, so the library refuses a smaller CPU.
  static CpuTarget host() {
    std::string cpu = llvm::sys::getHostCPUName().str();
    llvm::StringMap<bool> hostFeatures = llvm::sys::getHostCPUFeatures();
    llvm::SubtargetFeatures features;
    for (auto &f : hostFeatures)
      features.AddFeature(f.first(), f.second);
    std::vector<std::string> required;
    for (const char *f : {"avx512f", "avx2", "fma"})
      if (hostFeatures.lookup(f))
        required.push_back(f);
    return CpuTarget("host", cpu, features.getString(), "host", "host:" + cpu,
                     std::move(required));
  }

  StringRef name() const override { return name_; }
  std::string description() const override { return description_; }
  std::string triple() const override {
    return llvm::sys::getDefaultTargetTriple();
  }
  std::string cpu() const override { return cpu_; }
  std::string features() const override { return features_; }
  std::string tileTarget() const override { return tileTarget_; }
  int64_t defaultVectorWidth() const override {
    return mlir::fem::defaultVectorWidth(tileTarget_);
  }
  std::vector<std::string> requiredFeatures() const override {
    return required_;
  }

  std::unique_ptr<llvm::TargetMachine>
  createTargetMachine(unsigned optLevel, std::string &error) const override {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
    llvm::Triple llvmTriple(triple());
    const llvm::Target *llvmTarget =
        llvm::TargetRegistry::lookupTarget(llvmTriple, error);
    if (!llvmTarget)
      return nullptr;
    llvm::TargetOptions options;
    std::unique_ptr<llvm::TargetMachine> machine(
        llvmTarget->createTargetMachine(
            llvmTriple, cpu_, features_, options, llvm::Reloc::PIC_,
            std::nullopt,
            optLevel == 0   ? llvm::CodeGenOptLevel::None
            : optLevel == 1 ? llvm::CodeGenOptLevel::Less
            : optLevel == 2 ? llvm::CodeGenOptLevel::Default
                            : llvm::CodeGenOptLevel::Aggressive));
    if (!machine)
      error = "LLVM cannot make a target machine for " + llvmTriple.str() +
              " (CPU '" + cpu_ + "')";
    return machine;
  }

  bool emitKernelFile(llvm::TargetMachine &machine, llvm::Module &module,
                      StringRef path,
                      llvm::CodeGenFileType kind) const override {
    std::error_code ec;
    llvm::raw_fd_ostream os(path, ec, llvm::sys::fs::OF_None);
    if (ec) {
      llvm::errs() << "femc: error: cannot write '" << path
                   << "': " << ec.message() << "\n";
      return false;
    }
    llvm::legacy::PassManager codegen;
    if (machine.addPassesToEmitFile(codegen, os, nullptr, kind)) {
      llvm::errs() << "femc: error: the target cannot emit this file type\n";
      return false;
    }
    codegen.run(module);
    return true;
  }

private:
  std::string name_, cpu_, features_, tileTarget_, description_;
  std::vector<std::string> required_;
};

} // namespace

const std::vector<const driver::Target *> &cpuTargets() {
  static const CpuTarget host = CpuTarget::host();
  static const CpuTarget v3("x86-64-v3", "x86-64-v3", "", "avx2",
                            "x86-64-v3 (AVX2, FMA)", {"avx2", "fma"});
  static const CpuTarget v4("x86-64-v4", "x86-64-v4", "", "avx512",
                            "x86-64-v4 (AVX-512)", {"avx512f", "avx2", "fma"});
  static const std::vector<const driver::Target *> all = {&host, &v3, &v4};
  return all;
}

} // namespace femc::target::cpu
