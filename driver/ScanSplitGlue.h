//===- ScanSplitGlue.h - C glue of the scans' parallel prefix -----*- C++ -*-===//
//
// The chunk-level parallel prefix of a scan kernel (docs/architecture.md,
// "Both cores at B = H = 1"): when a kernel's grid has fewer workgroups than
// the launch has threads and its sequence is long enough, the glue splits
// the sequence into chunk-aligned segments and runs
//   phase 0  gla only, per (batch, head): the clamped log decay C at each
//            segment's start (the -60 clamp makes a segment's sums depend
//            on it),
//   phase 1  every (segment, workgroup): the segment's state from the empty
//            state, gla's from C (@<k>_wg_local, state_only; fem-tile's
//            addScanSplitFunctions),
//   phase 2  per state record: the prefix over the segment states, each
//            segment's initial state (the combine rule of the prior's state
//            layout, dialect/Priors.h StateSlot, written here as C),
//   phase 3  every (segment, workgroup): the segment's rows from its initial
//            state (@<k>_wg_segment); the last segment writes state_out,
// each phase a parallel loop of libfemrt's pool (femrt_host).
//
//===----------------------------------------------------------------------===//
#ifndef FEMC_DRIVER_SCANSPLITGLUE_H
#define FEMC_DRIVER_SCANSPLITGLUE_H

#include "dialect/Priors.h"

#include "llvm/Support/raw_ostream.h"

#include <string>
#include <vector>

namespace femc::driver {

/// The sequence length from which a kernel splits by default (measured,
/// docs/benchmarks.md "Both cores at B = H = 1"); FEMC_SCAN_SPLIT_MIN_T
/// overrides it at launch.
constexpr int64_t kDefaultSplitMinT = 1024;
/// The most segments a launch splits into.
constexpr int64_t kMaxSplitSegments = 64;

/// What the split glue of one kernel needs.
struct SplitGlueKernel {
  std::string id;     ///< femc_k<i>
  std::string wgName; ///< the workgroup function, e.g. "k_wg"
  const femc::priors::PriorInfo *prior = nullptr;
  bool causal = true;
  int64_t chunk = 0; ///< tiles.q: segments start at multiples of it
  int64_t ks = 0;    ///< the state record width Ks
  /// The read's eps as a C float literal without the suffix (gla's decay
  /// a = -(relu(decay) + eps) in phase 0).
  std::string epsLiteral = "1e-06";
  struct Arg {
    std::string name;
    std::vector<int> symbols; ///< kExtents index per dimension, -1 for Ks
    int bytes = 4;            ///< element size
  };
  std::vector<Arg> args; ///< the kernel's arguments, in order
};

/// The helpers every split kernel's glue uses (once per file).
void emitSplitCommon(llvm::raw_ostream &os);
/// `static int <id>_split(void *const *args, const int64_t grid[3], const
/// femrt_host *host)` (femrt_kernel_info::split) and its phases.
void emitSplitKernel(llvm::raw_ostream &os, const SplitGlueKernel &k);

} // namespace femc::driver

#endif // FEMC_DRIVER_SCANSPLITGLUE_H
