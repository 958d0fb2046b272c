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
//   pack_a:         Ap = (⌈M / rows⌉, K, rows), Ap[g, k, j] = A[g·rows + j, k]
//                   (zero past M), workgroup g packs block g;
//   matmul (Ap, P, C): workgroup i owns a tile of C: groupRows(M) rows (row
//                   tile i / colTiles(N)) by groupPanels(N) panels (column
//                   tile i % colTiles(N)); K in blocks of kc, and per K
//                   block each register block of `rows` rows against
//                   every `panel`-wide panel of the tile.
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
  /// The K block: the register block walks kc steps of K at a time. Per K
  /// block a register block's slice of packed A (rows x kc floats: 28 KiB
  /// with 14 rows) stays in L1 while the tile's panels (kc x NR floats each)
  /// stream past it from L2, and C is loaded and stored once per K block.
  int64_t kc;

  /// A matmul workgroup owns a tile of C of about kTileRows x kTileCols
  /// (rows a multiple of `rows`, columns whole panels): its panels of P, K
  /// block by K block (128 x 512 floats, 256 KiB), stay in L2 while it runs,
  /// and equal shares of M and N keep the tiles of one matmul nearly equal
  /// for the pool's threads (at M = N = 1024, 32 tiles: a small tail on a
  /// few threads).
  static constexpr int64_t kTileRows = 256;
  static constexpr int64_t kTileCols = 128;

  constexpr int64_t panel() const { return vectors * lanes; }
  static constexpr int64_t ceilDiv(int64_t x, int64_t d) {
    return (x + d - 1) / d;
  }
  /// Workgroups of the pack stage for N columns: one per panel.
  constexpr int64_t packGroups(int64_t n) const { return ceilDiv(n, panel()); }
  /// Workgroups of the A pack for M rows: one per block of `rows` rows.
  constexpr int64_t packAGroups(int64_t m) const { return ceilDiv(m, rows); }
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
/// buffer argument: A and C rank 2, Ap and P rank 3), for a contiguous
/// row-major buffer.
template <int R, typename T = float> struct StageMemref {
  T *allocated, *aligned;
  int64_t offset, sizes[R], strides[R];
};
template <int R, typename T = float>
StageMemref<R, T> stageMemref(T *p, const int64_t (&sizes)[R]) {
  StageMemref<R, T> m{p, p, 0, {}, {}};
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
/// vectors, one broadcast); with 16 registers (AVX2, SSE) 6 x 2; K blocks
/// of 512.
constexpr MatmulBlocking matmulBlocking(int64_t lanes) {
  return lanes >= 16 ? MatmulBlocking{lanes, 14, 2, 512}
                     : MatmulBlocking{lanes, 6, 2, 512};
}

/// The matmul precisions of fem-layer-matmul (option `precision`, femc
/// --matmul-precision). f32: the f32 FMA stages above. bf16x3 and bf16x6:
/// the AMX stages (passes/layer/LayerMatmulAmx.cpp): every f32 element of A
/// and B is split into bf16 pieces x = x0 + x1 (+ x2), each the rest
/// rounded to nearest (exact with three pieces), and C += the products
/// of the pieces whose exponents sum to at most 1 (bf16x3: a0b0, a0b1,
/// a1b0; bf16x6: also a0b2, a1b1, a2b0), a0b0 in one f32 accumulator and
/// the rest in another, added once at the end (the names are XLA's
/// BF16_BF16_F32_X3 / _X6 dot algorithms).
enum class MatmulPrecision { F32, Bf16x3, Bf16x6 };

/// The AMX stages' layout (MatmulPrecision bf16x3 / bf16x6). Tiles are 16
/// rows of 64 bytes: an A tile 16 rows x 32 k (bf16), a B tile 16 rows of
/// k pairs x 16 columns in the VNNI layout (row k/2, bf16 element 2n + k%2),
/// a C tile 16 x 16 f32. K is padded with zeros to kT(K) tiles of 32, M to
/// rowTiles(M) tiles of 16, N to colTiles(N) tiles of 16 (an even number:
/// the matmul's block is 1 x 2 tiles of C). Both packed operands are
/// memref<rows x 32 x bf16>, tile after tile (each 16 consecutive rows):
///
///   pack_a (one workgroup per row tile rt):    A tile (rt, piece p, kt)
///   pack_nn / pack_nt (one per column tile ct): B tile (ct, p, kt)
///   at row ((t·pieces + p)·kT + kt)·16 of its buffer;
///   mmx: workgroup i owns a tile of C of groupRowTiles(M) row tiles (row
///   tile i / colGroups(N)) by groupColPairs(N) pairs of column tiles.
struct AmxBlocking {
  /// bf16 pieces per element: 2 (bf16x3) or 3 (bf16x6).
  int64_t pieces;

  static constexpr int64_t kTile = 16;
  static constexpr int64_t kTileK = 32;
  static constexpr int64_t ceilDiv(int64_t x, int64_t d) {
    return (x + d - 1) / d;
  }
  static constexpr int64_t kTiles(int64_t k) { return ceilDiv(k, kTileK); }
  static constexpr int64_t rowTiles(int64_t m) { return ceilDiv(m, kTile); }
  static constexpr int64_t colTiles(int64_t n) {
    return 2 * ceilDiv(n, 2 * kTile);
  }
  /// Rows (of 32 bf16) of the packed A and B buffers.
  constexpr int64_t packedRowsA(int64_t m, int64_t k) const {
    return rowTiles(m) * pieces * kTiles(k) * kTile;
  }
  constexpr int64_t packedRowsB(int64_t n, int64_t k) const {
    return colTiles(n) * pieces * kTiles(k) * kTile;
  }
  /// The matmul's tiles of C: about kGroupRows x kGroupCols (256 x 256),
  /// equal shares of M and N as in the f32 stage (whose tiles are
  /// 256 x 128).
  static constexpr int64_t kGroupRows = 256;
  static constexpr int64_t kGroupCols = 256;
  static constexpr int64_t groupRowTiles(int64_t m) {
    int64_t shares = ceilDiv(m, kGroupRows);
    shares = shares < 1 ? 1 : shares;
    int64_t per = ceilDiv(rowTiles(m), shares);
    return per < 1 ? 1 : per;
  }
  static constexpr int64_t groupColPairs(int64_t n) {
    int64_t shares = ceilDiv(n, kGroupCols);
    shares = shares < 1 ? 1 : shares;
    int64_t per = ceilDiv(colTiles(n) / 2, shares);
    return per < 1 ? 1 : per;
  }
  static constexpr int64_t colGroups(int64_t n) {
    return ceilDiv(colTiles(n) / 2, groupColPairs(n));
  }
  static constexpr int64_t matmulGroups(int64_t m, int64_t n) {
    return ceilDiv(rowTiles(m), groupRowTiles(m)) * colGroups(n);
  }
};

constexpr AmxBlocking amxBlocking(MatmulPrecision p) {
  return AmxBlocking{p == MatmulPrecision::Bf16x6 ? 3 : 2};
}

} // namespace femc::layer

#endif // FEMC_PASSES_LAYER_LAYERMATMULBLOCKING_H
