//===- TileSpace.h - the CPU targets' tile space -----------------*- C++ -*-===//
//
// Part of the femc project.
//
//===----------------------------------------------------------------------===//
#ifndef FEMC_TARGET_CPU_TILESPACE_H
#define FEMC_TARGET_CPU_TILESPACE_H

#include "driver/Target.h"

namespace femc::target::cpu {

/// The values fem-tune tries for a read of `prior` on a CPU target whose
/// widest vector is `maxVec` lanes, on a machine with `cpus` CPUs (the
/// thread counts: cpus, then halved down to 1).
driver::TileSpace cpuTileSpace(const priors::PriorInfo &prior, int64_t maxVec,
                               int64_t cpus);

/// The CPUs of this machine (sysconf), at least 1.
int64_t onlineCpus();

} // namespace femc::target::cpu

#endif // FEMC_TARGET_CPU_TILESPACE_H
