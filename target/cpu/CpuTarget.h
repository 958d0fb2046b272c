//===- CpuTarget.h - the x86-64 CPU targets of femc ------------*- C++ -*-===//
//
// Part of the femc project.
//
// host (this machine's CPU and features, or those of the CPU FEMC_HOST_CPU
// names, masked: HostCpu.h), x86-64-v3 (AVX2, FMA) and
// x86-64-v4 (AVX-512), any LLVM x86-64 CPU name with optional +bf16 /
// +bf16dot / +amx features (lookupCpuTarget): LLVM's native x86-64 back end, vector widths
// of 8 or 16 lanes, and a glue that checks the CPU's features before a
// kernel runs. Every one stamps its CPU's LLVM features (features(): the
// host's, or namedCpuFeatures of HostCpu.h for a CPU name) on the module as
// fem.target_features, which the lowering reads.
//
//===----------------------------------------------------------------------===//
#ifndef FEMC_TARGET_CPU_CPUTARGET_H
#define FEMC_TARGET_CPU_CPUTARGET_H

#include "driver/Target.h"

#include <string>
#include <vector>

namespace femc::target::cpu {

/// The environment variable that turns the bf16 dot-product read's default
/// on Zen 4/5 off: FEMC_BF16_DOT=0 keeps bf16 softmax reads on the f32 read
/// for host and for CPU names such as znver4 (an explicit +bf16dot still
/// asks for the dot read). Unset or any other value: the default.
inline constexpr const char *kBf16DotVariable = "FEMC_BF16_DOT";

/// The CPU targets, in the order --target lists them: host, x86-64-v3,
/// x86-64-v4.
const std::vector<const driver::Target *> &cpuTargets();

/// Why femc cannot compile for "host" ("" when it can): FEMC_HOST_CPU names
/// no x86-64 CPU, or the host (as FEMC_HOST_CPU masks it) lacks AVX2 or FMA.
/// lookupCpuTarget("host") then fails with this message.
std::string hostUnsupported();

/// The CPU target `name` names: one of cpuTargets(), or
/// <cpu>[+<feature>...] with <cpu> x86-64-v3, x86-64-v4 or any 64-bit x86
/// CPU LLVM knows (sapphirerapids, znver4, ...) and <feature> bf16
/// (AVX512-BF16), bf16dot (bf16 softmax reads on AVX512-BF16 dot products:
/// the default on znver4 and znver5, and on a host that is one, unless
/// FEMC_BF16_DOT=0) or amx (AMX-BF16 tiles, with AVX512-BF16). The glue of such
/// a target checks every vector, BF16 and AMX feature the CPU has. Returns
/// null and sets `error` (without "femc: error: ") when the name is none.
const driver::Target *lookupCpuTarget(llvm::StringRef name,
                                      std::string &error);

} // namespace femc::target::cpu

#endif // FEMC_TARGET_CPU_CPUTARGET_H
