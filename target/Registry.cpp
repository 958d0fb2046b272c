//===- Registry.cpp - the targets femc can compile for --------------------===//
//
// Part of the femc project.
//
// lookupTarget and the list of supported names (driver/Target.h). A new
// target family adds its targets to allTargets().
//
//===----------------------------------------------------------------------===//
#include "driver/Target.h"
#include "target/cpu/CpuTarget.h"

#include "llvm/TargetParser/X86TargetParser.h"

namespace femc::driver {
namespace {

const std::vector<const Target *> &allTargets() {
  static const std::vector<const Target *> all = [] {
    std::vector<const Target *> out;
    for (const Target *t : target::cpu::cpuTargets())
      out.push_back(t);
    return out;
  }();
  return all;
}

} // namespace

const Target *lookupTarget(llvm::StringRef name) {
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
  if (name.contains('+') ||
      llvm::X86::parseArchX86(name, /*Only64Bit=*/true) != llvm::X86::CK_None)
    if (!target::cpu::lookupCpuTarget(name, cpuError) && !cpuError.empty())
      return cpuError;
  std::string message = "unsupported target '" + name.str() + "'; supported: ";
  std::vector<std::string> names = targetNames();
  for (size_t i = 0; i < names.size(); ++i)
    message += (i ? ", " : "") + names[i];
  if (name.starts_with("sm_"))
    message += " (the NVIDIA GPU back end is not built yet)";
  return message;
}

} // namespace femc::driver
