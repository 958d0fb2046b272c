//===- LayerMatmulBlocking.h - the blocking of fem-layer-matmul's stages --===//
//
// The contract between fem-layer-matmul's matmul stages
// (passes/layer/LayerMatmul.cpp) and whoever calls their workgroup
// functions directly (the stage tests, bench/matmul_stage_bench.cpp): how
// wide a packed panel of B is, and how many rows of C one matmul workgroup
// owns, for a target's vector width. The layer computes the same counts in
// its own IR; this header is the one place the numbers live. Header-only, no
// MLIR: the tests and the bench include it without linking the passes.
//
//   pack (nn, nt):  P = (⌈N / panel⌉, K, panel), workgroup i packs panel i;
//   matmul:         workgroup i owns a tile of C: groupRows(M) rows (row
//                   tile i / colTiles(N)) by groupPanels(N) panels (column
//                   tile i % colTiles(N)), in register blocks of `rows` x
//                   `panel`, K in blocks of kc.
//
//===----------------------------------------------------------------------===//
#ifndef FEMC_PASSES_LAYER_LAYERMATMULBLOCKING_H
#define FEMC_PASSES_LAYER_LAYERMATMULBLOCKING_H

#include <cstdint>

namespace femc::layer {

struct MatmulBlocking {
  /// f32 lanes of one vector (16 on AVX-512, 8 on AVX2, 4 otherwise).
  int64_t lanes;
  /// Rows of the register block (MR).
  int64_t rows;
  /// Vectors per row of the register block: the panel is vectors·lanes
  /// columns wide (NR).
  int64_t vectors;
  /// The K block: the register block walks kc steps of K at a time, so the
  /// panel's slice (kc x NR floats) stays in L1 while the workgroup's row
  /// blocks pass over it.
  int64_t kc;

  /// A matmul workgroup owns a tile of C of about kTileRows x kTileCols
  /// (rows a multiple of `rows`, columns whole panels): its panels of P and
  /// its rows of A, K block by K block, stay in L2 while it runs (2·256·256
  /// flops per float read), and equal shares of M and N keep the tiles of
  /// one matmul nearly equal for the pool's threads.
  static constexpr int64_t kTileRows = 256;
  static constexpr int64_t kTileCols = 256;

  constexpr int64_t panel() const { return vectors * lanes; }
  static constexpr int64_t ceilDiv(int64_t x, int64_t d) {
    return (x + d - 1) / d;
  }
  /// Workgroups of the pack stage for N columns: one per panel.
  constexpr int64_t packGroups(int64_t n) const { return ceilDiv(n, panel()); }
  /// Rows of a workgroup's tile for M rows: ⌈M / kTileRows⌉ equal shares of
  /// the row blocks.
  constexpr int64_t groupRows(int64_t m) const {
    int64_t shares = ceilDiv(m, kTileRows);
    shares = shares < 1 ? 1 : shares;
    int64_t per = ceilDiv(ceilDiv(m, rows), shares);
    return (per < 1 ? 1 : per) * rows;
  }
  /// Panels of a workgroup's tile for N columns, likewise.
  constexpr int64_t groupPanels(int64_t n) const {
    int64_t shares = ceilDiv(n, kTileCols);
    shares = shares < 1 ? 1 : shares;
    int64_t per = ceilDiv(packGroups(n), shares);
    return per < 1 ? 1 : per;
  }
  /// Workgroups of the matmul stage: workgroup i owns row tile
  /// i / colTiles(N) and column tile i % colTiles(N).
  constexpr int64_t colTiles(int64_t n) const {
    return ceilDiv(packGroups(n), groupPanels(n));
  }
  constexpr int64_t matmulGroups(int64_t m, int64_t n) const {
    return ceilDiv(m, groupRows(m)) * colTiles(n);
  }
};

/// The memref descriptor the stages' C interface takes (a pointer to one per
/// buffer argument: A and C rank 2, P rank 3), for a contiguous row-major
/// buffer.
template <int R> struct StageMemref {
  float *allocated, *aligned;
  int64_t offset, sizes[R], strides[R];
};
template <int R>
StageMemref<R> stageMemref(float *p, const int64_t (&sizes)[R]) {
  StageMemref<R> m{p, p, 0, {}, {}};
  int64_t stride = 1;
  for (int d = R - 1; d >= 0; --d) {
    m.sizes[d] = sizes[d];
    m.strides[d] = stride;
    stride *= sizes[d];
  }
  return m;
}

/// The blocking fem-layer-matmul uses for vectors of `lanes` f32: on
/// AVX-512 (32 registers) 14 rows x 2 vectors (28 accumulators, two panel
/// vectors, one broadcast); with 16 registers (AVX2, SSE) 6 x 2.
constexpr MatmulBlocking matmulBlocking(int64_t lanes) {
  return lanes >= 16 ? MatmulBlocking{lanes, 14, 2, 256}
                     : MatmulBlocking{lanes, 6, 2, 256};
}

} // namespace femc::layer

#endif // FEMC_PASSES_LAYER_LAYERMATMULBLOCKING_H
