//===- TileSpace.h - the NVIDIA targets' tile space --------------*- C++ -*-===//
//
// Part of the femc project.
//
//===----------------------------------------------------------------------===//
#ifndef FEMC_TARGET_NVIDIA_TILESPACE_H
#define FEMC_TARGET_NVIDIA_TILESPACE_H

#include "driver/Target.h"

namespace femc::target::nvidia {

/// What fem-tune may vary for a read of `prior` on an NVIDIA target whose
/// default tiles are `defaults`.
driver::TileSpace nvidiaTileSpace(const priors::PriorInfo &prior,
                                  const priors::Tiles &defaults);

} // namespace femc::target::nvidia

#endif // FEMC_TARGET_NVIDIA_TILESPACE_H
