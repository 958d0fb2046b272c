//===- Registry.cpp - the targets femc can compile for --------------------===//
//
// Part of the femc project.
//
// lookupTarget and the list of supported names (driver/Target.h), and the
// defaults of the Target hooks that only device targets implement. A new
// target family adds its targets to allTargets().
//
//===----------------------------------------------------------------------===//
#include "driver/Target.h"
#include "target/cpu/CpuTarget.h"
#include "target/nvidia/NvidiaTarget.h"

#include "mlir/IR/BuiltinOps.h"

#include "llvm/IR/LegacyPassManager.h"
#include "llvm/IR/Module.h"
#include "llvm/MC/TargetRegistry.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/Target/TargetMachine.h"
#include "llvm/Target/TargetOptions.h"
#include "llvm/TargetParser/X86TargetParser.h"

namespace femc::driver {
namespace {

const std::vector<const Target *> &allTargets() {
  static const std::vector<const Target *> all = [] {
    std::vector<const Target *> out;
    for (const Target *t : target::cpu::cpuTargets())
      out.push_back(t);
    for (const Target *t : target::nvidia::nvidiaTargets())
      out.push_back(t);
    return out;
  }();
  return all;
}

} // namespace

std::unique_ptr<llvm::TargetMachine>
createMachine(const std::string &triple, const std::string &cpu,
              const std::string &features,
              std::optional<llvm::Reloc::Model> reloc, unsigned optLevel,
              std::string &error) {
  llvm::Triple llvmTriple(triple);
  const llvm::Target *llvmTarget =
      llvm::TargetRegistry::lookupTarget(llvmTriple, error);
  if (!llvmTarget)
    return nullptr;
  llvm::TargetOptions options;
  std::unique_ptr<llvm::TargetMachine> machine(llvmTarget->createTargetMachine(
      llvmTriple, cpu, features, options, reloc, std::nullopt,
      optLevel == 0   ? llvm::CodeGenOptLevel::None
      : optLevel == 1 ? llvm::CodeGenOptLevel::Less
      : optLevel == 2 ? llvm::CodeGenOptLevel::Default
                      : llvm::CodeGenOptLevel::Aggressive));
  if (!machine)
    error = "LLVM cannot make a target machine for " + llvmTriple.str() +
            " (CPU '" + cpu + "')";
  return machine;
}

bool emitWithMachine(llvm::TargetMachine &machine, llvm::Module &module,
                     llvm::StringRef path, llvm::CodeGenFileType kind) {
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

bool Target::readDeviceKernels(mlir::ModuleOp, std::vector<DeviceKernel> &) const {
  llvm::errs() << "femc: error: target '" << name()
               << "' has no device kernels to read\n";
  return false;
}

bool Target::assembleImage(llvm::StringRef, llvm::StringRef, bool,
                           std::string &, std::string &) const {
  llvm::errs() << "femc: error: target '" << name()
               << "' makes no device image\n";
  return false;
}

void Target::writeDeviceGlue(llvm::raw_ostream &os, llvm::StringRef,
                             const std::vector<GlueKernel> &,
                             llvm::StringRef, llvm::StringRef) const {
  os << "#error \"target '" << name() << "' writes no device glue\"\n";
}

const Target *lookupTarget(llvm::StringRef name) {
  // A host femc cannot compile for (no AVX2/FMA, or a bad FEMC_HOST_CPU).
  if (name == "host" && !target::cpu::hostUnsupported().empty())
    return nullptr;
  for (const Target *t : allTargets())
    if (t->name() == name)
      return t;
  std::string cpuError; // <cpu>[+<feature>...], e.g. sapphirerapids
  return target::cpu::lookupCpuTarget(name, cpuError);
}

std::vector<std::string> targetNames() {
  std::vector<std::string> names;
  for (const Target *t : allTargets())
    names.push_back(t->name().str());
  return names;
}

std::string unsupportedTargetMessage(llvm::StringRef name) {
  // A known x86 CPU or a +feature that cannot be used: say why.
  std::string cpuError;
  if (name == "host" && !(cpuError = target::cpu::hostUnsupported()).empty())
    return "unsupported target 'host': " + cpuError;
  if (name.contains('+') ||
      llvm::X86::parseArchX86(name, /*Only64Bit=*/true) != llvm::X86::CK_None)
    if (!target::cpu::lookupCpuTarget(name, cpuError) && !cpuError.empty())
      return cpuError;
  std::string message = "unsupported target '" + name.str() + "'; supported: ";
  std::vector<std::string> names = targetNames();
  for (size_t i = 0; i < names.size(); ++i)
    message += (i ? ", " : "") + names[i];
  if (name.starts_with("sm_"))
    message += " (the NVIDIA targets are sm_80 and sm_90)";
  return message;
}

} // namespace femc::driver
