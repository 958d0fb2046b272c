//===- HostCpu.cpp - the CPU femc calls "the host" -------------------------===//
//
// Part of the femc project.
//
//===----------------------------------------------------------------------===//
#include "target/cpu/HostCpu.h"

#include "llvm/ADT/SmallVector.h"
#include "llvm/TargetParser/Host.h"
#include "llvm/TargetParser/X86TargetParser.h"

#include <cstdlib>

using llvm::StringRef;

namespace femc::target::cpu {

std::string HostCpu::describe() const {
  if (simulated.empty() || !error.empty())
    return name;
  return name + " (" + kHostCpuVariable + ", on a " + real + ")";
}

std::string HostCpu::unsupported() const {
  if (!error.empty())
    return error;
  std::string missing;
  for (const char *f : {"avx2", "fma"})
    if (!has(f))
      missing += std::string(missing.empty() ? "" : " and ") + f;
  if (missing.empty())
    return "";
  return "this host's CPU, " + describe() + ", has no " + missing +
         ", which femc's CPU code needs (x86-64-v3 or later); compile for "
         "another machine with --target=x86-64-v3 or --target=<cpu>";
}

llvm::StringMap<bool> namedCpuFeatures(StringRef cpu) {
  llvm::StringMap<bool> named;
  if (llvm::X86::parseArchX86(cpu, /*Only64Bit=*/true) == llvm::X86::CK_None)
    return named;
  named["64bit"] = true;
  named["sse2"] = true;
  llvm::SmallVector<StringRef> list;
  llvm::X86::getFeaturesForCPU("x86-64", list);
  llvm::X86::getFeaturesForCPU(cpu, list);
  for (StringRef f : list) {
    named[f] = true;
    llvm::X86::updateImpliedFeatures(f, true, named);
  }
  return named;
}

HostCpu resolveHostCpu(StringRef value, StringRef realName,
                       const llvm::StringMap<bool> &realFeatures) {
  HostCpu host;
  host.real = realName.str();
  host.name = realName.str();
  host.features = realFeatures;
  host.simulated = value.trim().str();
  if (host.simulated.empty())
    return host;
  StringRef cpu = host.simulated;
  if (llvm::X86::parseArchX86(cpu, /*Only64Bit=*/true) == llvm::X86::CK_None) {
    host.error = std::string(kHostCpuVariable) + "='" + host.simulated +
                 "' is not a 64-bit x86 CPU LLVM knows (e.g. znver3, "
                 "haswell, x86-64-v3, x86-64-v2); unset it to compile for "
                 "this machine's CPU, " +
                 host.real;
    return host;
  }
  llvm::StringMap<bool> named = namedCpuFeatures(cpu);
  // Masked, never added: on only where both have it.
  for (auto &f : host.features)
    f.second = f.second && named.lookup(f.first());
  host.name = host.simulated;
  return host;
}

const HostCpu &hostCpu() {
  static const HostCpu host = [] {
    const char *value = std::getenv(kHostCpuVariable);
    return resolveHostCpu(value ? value : "", llvm::sys::getHostCPUName(),
                          llvm::sys::getHostCPUFeatures());
  }();
  return host;
}

} // namespace femc::target::cpu
