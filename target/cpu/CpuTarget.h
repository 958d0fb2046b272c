//===- CpuTarget.h - the x86-64 CPU targets of femc ------------*- C++ -*-===//
//
// Part of the femc project.
//
// host (this machine's CPU and features), x86-64-v3 (AVX2, FMA) and
// x86-64-v4 (AVX-512): LLVM's native x86-64 back end, vector widths of 8 or
// 16 lanes, and a glue that checks the CPU's features before a kernel runs.
//
//===----------------------------------------------------------------------===//
#ifndef FEMC_TARGET_CPU_CPUTARGET_H
#define FEMC_TARGET_CPU_CPUTARGET_H

#include "driver/Target.h"

#include <vector>

namespace femc::target::cpu {

/// The CPU targets, in the order --target lists them: host, x86-64-v3,
/// x86-64-v4.
const std::vector<const driver::Target *> &cpuTargets();

} // namespace femc::target::cpu

#endif // FEMC_TARGET_CPU_CPUTARGET_H
