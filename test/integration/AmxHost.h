//===- AmxHost.h - whether this process may run AMX code (tests) ---------===//
//
// Shared by the tests that run AMX kernels (AmxSoftmaxTest.cpp,
// MatmulStageAmxTest.cpp): why they must skip, or "". Link
// target/cpu/HostCpu.cpp (FEMC_HOST_CPU masks features off).
//
//===----------------------------------------------------------------------===//
#ifndef FEMC_TEST_INTEGRATION_AMXHOST_H
#define FEMC_TEST_INTEGRATION_AMXHOST_H

#include "target/cpu/HostCpu.h"

#include <cerrno>
#include <cstring>
#include <string>

#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace femc::test {

/// Why the CPU lacks `feature` (as __builtin_cpu_supports names it) for
/// this test, or "": missing, or masked off by FEMC_HOST_CPU (the host as
/// femc sees it, target/cpu/HostCpu.h, so an AVX2-only host can be
/// simulated).
inline std::string cpuLacks(const char *feature, bool supported) {
  if (!supported)
    return std::string("this host has no ") + feature;
  if (!femc::target::cpu::hostCpu().has(feature))
    return std::string("this host has no ") + feature + " (FEMC_HOST_CPU=" +
           femc::target::cpu::hostCpu().simulated + " masks it off)";
  return "";
}

/// Why this process cannot run AMX code, or "" when it can: a missing CPU
/// feature, or Linux refusing AMX tile data to the process (Linux before
/// 5.16, or a sandbox that denies the request). The kernels' glue makes the
/// same request; asking here too lets the tests skip instead of failing
/// (and lets them call workgroup functions without the glue).
inline std::string amxUnavailable() {
  __builtin_cpu_init();
  for (std::string why :
       {cpuLacks("amx-tile", __builtin_cpu_supports("amx-tile")),
        cpuLacks("amx-bf16", __builtin_cpu_supports("amx-bf16"))})
    if (!why.empty())
      return why;
#if defined(__linux__)
  constexpr int kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
  if (syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) != 0)
    return std::string("Linux refused AMX tile data to this process "
                       "(arch_prctl ARCH_REQ_XCOMP_PERM: ") +
           std::strerror(errno) + ")";
#endif
  return "";
}

} // namespace femc::test

#endif // FEMC_TEST_INTEGRATION_AMXHOST_H
