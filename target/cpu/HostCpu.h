//===- HostCpu.h - the CPU femc calls "the host" ----------------*- C++ -*-===//
//
// Part of the femc project.
//
// The one place that reads this machine's CPU: its LLVM name and features
// (llvm::sys::getHostCPUName / getHostCPUFeatures), or, when the environment
// variable FEMC_HOST_CPU names a CPU (any 64-bit x86 CPU LLVM knows, e.g.
// znver3, haswell, x86-64-v3, x86-64-v2), this machine's features masked to
// that CPU's: a feature the named CPU lacks is off, a feature this machine
// lacks stays off. The host target (target/cpu/CpuTarget.cpp), fem-tile's
// "host" vector width (passes/Tile.cpp) and the tests' feature checks all
// read it, so one variable simulates a smaller host on a larger one (an
// AVX2-only AMD Zen 3 on an AVX-512 Intel), never the other way round.
//
// Compiled into FEMPasses (passes/CMakeLists.txt); needs LLVM's
// TargetParser only.
//
//===----------------------------------------------------------------------===//
#ifndef FEMC_TARGET_CPU_HOSTCPU_H
#define FEMC_TARGET_CPU_HOSTCPU_H

#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringRef.h"

#include <string>

namespace femc::target::cpu {

/// The environment variable that names the CPU femc treats as the host.
inline constexpr const char *kHostCpuVariable = "FEMC_HOST_CPU";

/// The CPU femc compiles for as "host".
struct HostCpu {
  /// The LLVM CPU name: this machine's, or FEMC_HOST_CPU's value.
  std::string name;
  /// Every feature LLVM knows on this machine, on or off, masked to the
  /// named CPU's when FEMC_HOST_CPU is set.
  llvm::StringMap<bool> features;
  /// FEMC_HOST_CPU's value ("" when unset or empty).
  std::string simulated;
  /// This machine's own LLVM CPU name.
  std::string real;
  /// Why FEMC_HOST_CPU cannot be used ("" when it can or is unset); the
  /// features are then this machine's, unmasked.
  std::string error;

  bool has(llvm::StringRef feature) const { return features.lookup(feature); }
  /// "znver3 (FEMC_HOST_CPU, on a sapphirerapids)" or "sapphirerapids".
  std::string describe() const;
  /// Why femc cannot compile for this host: FEMC_HOST_CPU's error, or the
  /// CPU lacks AVX2 or FMA (femc's minimum is x86-64-v3); "" when it can.
  std::string unsupported() const;
};

/// Every feature of the 64-bit x86 CPU LLVM calls `cpu` (znver3,
/// sapphirerapids, x86-64-v4, ...): LLVM's list for it, the x86-64 baseline
/// every 64-bit x86 CPU has (which LLVM's lists leave partly out: 64bit and
/// sse2 always, cmov for znver3) and what they imply (avx512vl: avx512f,
/// avx2, ...), each on. Empty when LLVM does not know the name. The named
/// --target CPUs stamp these, and FEMC_HOST_CPU masks the host to them.
llvm::StringMap<bool> namedCpuFeatures(llvm::StringRef cpu);

/// The host of this process, resolved once from the machine and
/// FEMC_HOST_CPU.
const HostCpu &hostCpu();

/// `value` as FEMC_HOST_CPU resolves it against a machine named `realName`
/// with `realFeatures` (hostCpu() is resolveHostCpu(getenv, this machine)).
HostCpu resolveHostCpu(llvm::StringRef value, llvm::StringRef realName,
                       const llvm::StringMap<bool> &realFeatures);

} // namespace femc::target::cpu

#endif // FEMC_TARGET_CPU_HOSTCPU_H
