// RUN: fem-opt %s -split-input-file -fem-layer-matmul | FileCheck %s --enable-var-scope

// nn.Linear on buffers: C (M, N) += A (M, K) · W (N, K)ᵀ becomes a pack of W
// (transposed, panels of two 16-lane vectors) and the blocked matmul, both
// as calls to stages the glue runs on the pool; the contraction is gone.
// A is packed too, in blocks of the register block's 14 rows (one k of a
// block's rows adjacent).
// CHECK-LABEL: func.func @linear_layer
//  CHECK-SAME: (%[[A:.*]]: memref<?x256xf32>, %[[W:.*]]: memref<128x256xf32>, %[[C:.*]]: memref<?x128xf32>)
//       CHECK:   %[[AP:.*]] = memref.alloc(%{{.*}}, %{{.*}}) {alignment = 64 : i64} : memref<?x?x14xf32>
//       CHECK:   call @linear_mm_pack_a_run(%{{.*}}, %[[AP]], %{{.*}})
//       CHECK:   %[[P:.*]] = memref.alloc(%{{.*}}, %{{.*}}) {alignment = 64 : i64} : memref<?x?x32xf32>
//       CHECK:   call @linear_mm_pack_nt_run(%{{.*}}, %[[P]], %{{.*}})
//       CHECK:   call @linear_mm_run(%[[AP]], %[[P]], %{{.*}}, %{{.*}})
//       CHECK:   memref.dealloc %[[P]]
//       CHECK:   memref.dealloc %[[AP]]
//   CHECK-NOT:   linalg.generic
// CHECK-LABEL: func.func @linear_mm_wg
//       CHECK:   scf.for
//       CHECK:     vector.create_mask
//       CHECK:     vector.maskedload
//       CHECK:     scf.for {{.*}} iter_args
//       CHECK:       vector.broadcast
//       CHECK:       vector.fma
//       CHECK:     vector.maskedstore
// CHECK-LABEL: func.func @linear_mm_pack_nt_wg
//  CHECK-SAME: fem.stage = "mm_pack_nt"
// CHECK-LABEL: func.func private @linear_mm_pack_nt_run
//  CHECK-SAME: fem.stage = "linear_mm_pack_nt_wg"
// CHECK-LABEL: func.func @linear_mm_pack_a_wg
//  CHECK-SAME: fem.stage = "mm_pack_a"
#x = affine_map<(m, n, k) -> (m, k)>
#w = affine_map<(m, n, k) -> (n, k)>
#y = affine_map<(m, n, k) -> (m, n)>
module attributes {fem.target_features = "+avx512f,+avx2"} {
func.func @linear_layer(%a: memref<?x256xf32>, %w: memref<128x256xf32>, %c: memref<?x128xf32>)
    attributes {fem.layer = "linear"} {
  linalg.generic {indexing_maps = [#x, #w, #y], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%a, %w : memref<?x256xf32>, memref<128x256xf32>) outs(%c : memref<?x128xf32>) {
    ^bb0(%p: f32, %q: f32, %acc: f32):
      %m = arith.mulf %p, %q : f32
      %s = arith.addf %acc, %m : f32
      linalg.yield %s : f32
  }
  return
}
}

// -----

// Per-head weights (D, H, d) and the output projection o (B, T, H, d) ·
// Wo (H, d, D): operands collapse to matrices; B is (K, N), an nn pack.
// 8-lane target: panels of 16.
// CHECK-LABEL: func.func @heads_layer
//       CHECK:   memref.collapse_shape %{{.*}} {{\[\[}}0, 1], [2]] : memref<?x?x256xf32> into memref<?x256xf32>
//       CHECK:   memref.collapse_shape %{{.*}} {{\[\[}}0], [1, 2]] : memref<256x4x64xf32> into memref<256x256xf32>
//       CHECK:   memref.alloc({{.*}}) {alignment = 64 : i64} : memref<?x?x16xf32>
//       CHECK:   call @heads_mm_pack_nn_run
//       CHECK:   call @heads_mm_run
//       CHECK:   memref.collapse_shape %{{.*}} {{\[\[}}0, 1], [2, 3]] : memref<?x?x4x64xf32> into memref<?x256xf32>
//       CHECK:   call @heads_mm_pack_nn_run
//       CHECK:   call @heads_mm_run
//   CHECK-NOT:   linalg.generic
#px = affine_map<(b, t, h, d, k) -> (b, t, k)>
#pw = affine_map<(b, t, h, d, k) -> (k, h, d)>
#py = affine_map<(b, t, h, d, k) -> (b, t, h, d)>
#oo = affine_map<(b, t, e, h, d) -> (b, t, h, d)>
#ow = affine_map<(b, t, e, h, d) -> (h, d, e)>
#oy = affine_map<(b, t, e, h, d) -> (b, t, e)>
module attributes {fem.target_features = "+avx2,+fma"} {
func.func @heads_layer(%x: memref<?x?x256xf32>, %w: memref<256x4x64xf32>, %y: memref<?x?x4x64xf32>,
                       %wo: memref<4x64x256xf32>, %z: memref<?x?x256xf32>)
    attributes {fem.layer = "heads"} {
  linalg.generic {indexing_maps = [#px, #pw, #py],
                  iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<?x?x256xf32>, memref<256x4x64xf32>) outs(%y : memref<?x?x4x64xf32>) {
    ^bb0(%p: f32, %q: f32, %acc: f32):
      %m = arith.mulf %p, %q : f32
      %s = arith.addf %acc, %m : f32
      linalg.yield %s : f32
  }
  linalg.generic {indexing_maps = [#oo, #ow, #oy],
                  iterator_types = ["parallel", "parallel", "parallel", "reduction", "reduction"]}
      ins(%y, %wo : memref<?x?x4x64xf32>, memref<4x64x256xf32>) outs(%z : memref<?x?x256xf32>) {
    ^bb0(%p: f32, %q: f32, %acc: f32):
      %m = arith.mulf %p, %q : f32
      %s = arith.addf %acc, %m : f32
      linalg.yield %s : f32
  }
  return
}
}

// -----

// negative_: a batched contraction (per-head scores) and a body that is not
// a multiply-add stay as they are; functions that are not layers too.
// CHECK-LABEL: func.func @negative_batched_layer
//       CHECK:   linalg.generic
//       CHECK:   linalg.generic
//   CHECK-NOT:   call
// CHECK-LABEL: func.func @negative_not_a_layer
//       CHECK:   linalg.generic
#bq = affine_map<(h, i, j, d) -> (h, i, d)>
#bk = affine_map<(h, i, j, d) -> (h, j, d)>
#bs = affine_map<(h, i, j, d) -> (h, i, j)>
#x2 = affine_map<(m, n, k) -> (m, k)>
#w2 = affine_map<(m, n, k) -> (n, k)>
#y2 = affine_map<(m, n, k) -> (m, n)>
func.func @negative_batched_layer(%q: memref<4x8x16xf32>, %k: memref<4x8x16xf32>, %s: memref<4x8x8xf32>,
                                  %a: memref<8x16xf32>, %w: memref<8x16xf32>, %c: memref<8x8xf32>)
    attributes {fem.layer = "negative_batched"} {
  linalg.generic {indexing_maps = [#bq, #bk, #bs],
                  iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%q, %k : memref<4x8x16xf32>, memref<4x8x16xf32>) outs(%s : memref<4x8x8xf32>) {
    ^bb0(%p: f32, %r: f32, %acc: f32):
      %m = arith.mulf %p, %r : f32
      %t = arith.addf %acc, %m : f32
      linalg.yield %t : f32
  }
  linalg.generic {indexing_maps = [#x2, #w2, #y2], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%a, %w : memref<8x16xf32>, memref<8x16xf32>) outs(%c : memref<8x8xf32>) {
    ^bb0(%p: f32, %r: f32, %acc: f32):
      %m = arith.mulf %p, %r : f32
      %t = arith.maximumf %acc, %m : f32
      linalg.yield %t : f32
  }
  return
}
func.func @negative_not_a_layer(%a: memref<8x16xf32>, %w: memref<8x16xf32>, %c: memref<8x8xf32>) {
  linalg.generic {indexing_maps = [#x2, #w2, #y2], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%a, %w : memref<8x16xf32>, memref<8x16xf32>) outs(%c : memref<8x8xf32>) {
    ^bb0(%p: f32, %r: f32, %acc: f32):
      %m = arith.mulf %p, %r : f32
      %t = arith.addf %acc, %m : f32
      linalg.yield %t : f32
  }
  return
}

// -----

// Hand-written heads: the weight's flat channel indexed as h * 64 + c (and
// the output projection's as o, h * 64 + c). The weights are expanded to
// (4, 64, 256) / (256, 4, 64) and indexed (h, c), the natural form, so both
// projections and the bias fill become stages: an nt pack for W (out, in).
// A map whose inner loop does not run over exactly the stride (here c over
// 32 with h * 64 + c) is left alone: that contraction stays a generic, run
// as an element-wise stage (chunks of b, t) instead of a matmul.
//       CHECK: #[[$LIN:.*]] = affine_map<(d0, d1, d2, d3, d4) -> (d2 * 64 + d3, d4)>
// CHECK-LABEL: func.func @linearised_layer
//       CHECK:   %[[WQ:.*]] = memref.expand_shape %{{.*}} {{\[\[}}0, 1], [2]] output_shape [4, 64, 256] : memref<256x256xf32> into memref<4x64x256xf32>
//       CHECK:   memref.collapse_shape %[[WQ]] {{\[\[}}0, 1], [2]] : memref<4x64x256xf32> into memref<256x256xf32>
//       CHECK:   call @lin_mm_pack_nt_run
//       CHECK:   call @lin_mm_run
//       CHECK:   %[[WO:.*]] = memref.expand_shape %{{.*}} {{\[\[}}0], [1, 2]] output_shape [256, 4, 64] : memref<256x256xf32> into memref<256x4x64xf32>
//       CHECK:   memref.collapse_shape %[[WO]] {{\[\[}}0], [1, 2]] : memref<256x4x64xf32> into memref<256x256xf32>
//       CHECK:   call @lin_mm_pack_nt_run
//       CHECK:   call @lin_mm_run
//   CHECK-NOT:   linalg.generic
//       CHECK:   call @lin_ew0_run(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}) : (memref<?x?x256xf32>, memref<256x256xf32>, memref<?x?x4x32xf32>, index) -> ()
//       CHECK: func.func @lin_ew0_wg
//       CHECK:   linalg.generic {indexing_maps = [#{{.*}}, #[[$LIN]], #{{.*}}]
#lx = affine_map<(b, t, h, c, k) -> (b, t, k)>
#lw = affine_map<(b, t, h, c, k) -> (h * 64 + c, k)>
#ly = affine_map<(b, t, h, c, k) -> (b, t, h, c)>
#lo = affine_map<(b, t, o, h, c) -> (b, t, h, c)>
#low = affine_map<(b, t, o, h, c) -> (o, c + h * 64)>
#loy = affine_map<(b, t, o, h, c) -> (b, t, o)>
module attributes {fem.target_features = "+avx512f,+avx2"} {
func.func @linearised_layer(%x: memref<?x?x256xf32>, %w: memref<256x256xf32>,
                            %y: memref<?x?x4x64xf32>, %wo: memref<256x256xf32>,
                            %z: memref<?x?x256xf32>, %y2: memref<?x?x4x32xf32>)
    attributes {fem.layer = "lin"} {
  linalg.generic {indexing_maps = [#lx, #lw, #ly],
                  iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<?x?x256xf32>, memref<256x256xf32>) outs(%y : memref<?x?x4x64xf32>) {
    ^bb0(%p: f32, %q: f32, %acc: f32):
      %m = arith.mulf %p, %q : f32
      %s = arith.addf %acc, %m : f32
      linalg.yield %s : f32
  }
  linalg.generic {indexing_maps = [#lo, #low, #loy],
                  iterator_types = ["parallel", "parallel", "parallel", "reduction", "reduction"]}
      ins(%y, %wo : memref<?x?x4x64xf32>, memref<256x256xf32>) outs(%z : memref<?x?x256xf32>) {
    ^bb0(%p: f32, %q: f32, %acc: f32):
      %m = arith.mulf %p, %q : f32
      %s = arith.addf %acc, %m : f32
      linalg.yield %s : f32
  }
  linalg.generic {indexing_maps = [#lx, #lw, affine_map<(b, t, h, c, k) -> (b, t, h, c)>],
                  iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<?x?x256xf32>, memref<256x256xf32>) outs(%y2 : memref<?x?x4x32xf32>) {
    ^bb0(%p: f32, %q: f32, %acc: f32):
      %m = arith.mulf %p, %q : f32
      %s = arith.addf %acc, %m : f32
      linalg.yield %s : f32
  }
  return
}
}

// -----

// Projections of one x (a layer's q, k, v, ...) share one pack of it: A is
// packed where the first is and freed after the last. Writes between them
// into fresh buffers (the bias fills) keep the sharing; a write into a
// buffer that may be x (another argument) ends it, so the second
// contraction packs x again.
// CHECK-LABEL: func.func @shared_layer
//       CHECK:   %[[AP:.*]] = memref.alloc({{.*}}) {alignment = 64 : i64} : memref<?x?x6xf32>
//       CHECK:   call @shared_mm_pack_a_run(%{{.*}}, %[[AP]], %{{.*}})
//       CHECK:   call @shared_mm_pack_nt_run
//       CHECK:   call @shared_mm_run(%[[AP]],
//   CHECK-NOT:   memref.dealloc %[[AP]]
//   CHECK-NOT:   call @shared_mm_pack_a_run
//       CHECK:   call @shared_mm_pack_nt_run
//       CHECK:   call @shared_mm_run(%[[AP]],
//       CHECK:   memref.dealloc %[[AP]]
// CHECK-LABEL: func.func @unshared_layer
//       CHECK:   call @unshared_mm_pack_a_run
//       CHECK:   call @unshared_mm_run
//       CHECK:   call @unshared_ew{{[0-9]+}}_run
//       CHECK:   call @unshared_mm_pack_a_run
//       CHECK:   call @unshared_mm_run
#sx = affine_map<(m, n, k) -> (m, k)>
#sw = affine_map<(m, n, k) -> (n, k)>
#sy = affine_map<(m, n, k) -> (m, n)>
module attributes {fem.target_features = "+avx2,+fma"} {
func.func @shared_layer(%x: memref<?x256xf32>, %w1: memref<128x256xf32>, %w2: memref<64x256xf32>,
                        %y1: memref<?x128xf32>, %y2: memref<?x64xf32>)
    attributes {fem.layer = "shared"} {
  %c0 = arith.constant 0 : index
  %zero = arith.constant 0.0 : f32
  %m = memref.dim %x, %c0 : memref<?x256xf32>
  %c1 = memref.alloc(%m) : memref<?x128xf32>
  linalg.fill ins(%zero : f32) outs(%c1 : memref<?x128xf32>)
  linalg.generic {indexing_maps = [#sx, #sw, #sy], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w1 : memref<?x256xf32>, memref<128x256xf32>) outs(%c1 : memref<?x128xf32>) {
    ^bb0(%p: f32, %q: f32, %acc: f32):
      %mul = arith.mulf %p, %q : f32
      %s = arith.addf %acc, %mul : f32
      linalg.yield %s : f32
  }
  %c2 = memref.alloc(%m) : memref<?x64xf32>
  linalg.fill ins(%zero : f32) outs(%c2 : memref<?x64xf32>)
  linalg.generic {indexing_maps = [#sx, #sw, #sy], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w2 : memref<?x256xf32>, memref<64x256xf32>) outs(%c2 : memref<?x64xf32>) {
    ^bb0(%p: f32, %q: f32, %acc: f32):
      %mul = arith.mulf %p, %q : f32
      %s = arith.addf %acc, %mul : f32
      linalg.yield %s : f32
  }
  memref.copy %c1, %y1 : memref<?x128xf32> to memref<?x128xf32>
  memref.copy %c2, %y2 : memref<?x64xf32> to memref<?x64xf32>
  return
}
func.func @unshared_layer(%x: memref<?x256xf32>, %w1: memref<128x256xf32>, %w2: memref<64x256xf32>,
                          %y1: memref<?x128xf32>, %y2: memref<?x64xf32>, %z: memref<?x256xf32>)
    attributes {fem.layer = "unshared"} {
  %zero = arith.constant 0.0 : f32
  linalg.generic {indexing_maps = [#sx, #sw, #sy], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w1 : memref<?x256xf32>, memref<128x256xf32>) outs(%y1 : memref<?x128xf32>) {
    ^bb0(%p: f32, %q: f32, %acc: f32):
      %mul = arith.mulf %p, %q : f32
      %s = arith.addf %acc, %mul : f32
      linalg.yield %s : f32
  }
  linalg.fill ins(%zero : f32) outs(%z : memref<?x256xf32>)
  linalg.generic {indexing_maps = [#sx, #sw, #sy], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w2 : memref<?x256xf32>, memref<64x256xf32>) outs(%y2 : memref<?x64xf32>) {
    ^bb0(%p: f32, %q: f32, %acc: f32):
      %mul = arith.mulf %p, %q : f32
      %s = arith.addf %acc, %mul : f32
      linalg.yield %s : f32
  }
  return
}
}
