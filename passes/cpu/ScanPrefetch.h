//===- ScanPrefetch.h - a scan row's prefetches, by operand -----*- C++ -*-===//
//
// aft and ssm prefetch the rows a few steps ahead one operand row (five
// lines at 64 floats off a line boundary) at a time, placed at different
// points of a step's work, instead of every operand's row in one burst at
// the step's start (as all four scans once did). In bthd each head's rows
// lie H * d floats apart, so the hardware prefetchers do not follow them and
// every prefetched line comes from DRAM at long T; a burst of 25-30 such
// prefetches stalled the core until the misses drained (Zen 2: an aft step
// took 1.5x as long at T = 64k as at 1k, where the lines come from L3; the
// same bytes in bhtd 1.06x), while the same prefetches placed between the
// step's phases overlap with its arithmetic (docs/benchmarks.md, "Scan
// priors").
//
//===----------------------------------------------------------------------===//
#ifndef FEMC_PASSES_CPU_SCANPREFETCH_H
#define FEMC_PASSES_CPU_SCANPREFETCH_H

#include "passes/cpu/ScanRead.h"

namespace mlir::fem::cpu {

/// One per-row operand of a scan read.
enum class ScanRowPart {
  Keys,    // k[b, s, kv head, 0 .. dk)
  Values,  // v[b, s, kv head, block channels]
  Delta,   // ssm: delta[b, s, block's flat channels]
  Queries, // q[b, t, head, 0 .. dk)
  Gate,    // gate[b, t, head, 0 .. dv)
  Lam,     // lam[b, t, head, block channels]
  Out,     // out[b, t, head, block channels], for writing
};

/// Prefetches channels [c0, c0 + width) of row (bi, t, h) into `level`
/// where `far` (ScanWorkgroup::far) holds, else into L1, as Builder.h's
/// prefetchRow (one instruction per line, and the row's last element) does.
void prefetchRowInto(EmitterBuilder &e, PrefetchLevel level, Value far, Value m,
                     Value bi, Value t, Value h, Value c0, Value width,
                     bool write = false);

/// Prefetches `part`'s row t (keys: s = t; clamped to the sequence, so a
/// step near the end fetches the last row again) into `level`, every line
/// of it. Nothing where the read has no such operand.
void prefetchScanRowPart(EmitterBuilder &e, ScanReadOp op,
                         const ScanWorkgroup &w, Value t, ScanRowPart part,
                         PrefetchLevel level = PrefetchLevel::L1);

/// Inside a loop over the block's channel vectors (cv = 0, lanes, ..., up
/// to cwp): prefetches each of `parts`'s row t once, at the iteration
/// j * (cwp / lanes) / parts.size() for the j-th, so that they spread over
/// the loop.
void prefetchScanRowSpread(EmitterBuilder &e, ScanReadOp op,
                           const ScanWorkgroup &w, Value t, Value cv,
                           ArrayRef<ScanRowPart> parts,
                           PrefetchLevel level = PrefetchLevel::L1);

} // namespace mlir::fem::cpu

#endif // FEMC_PASSES_CPU_SCANPREFETCH_H
