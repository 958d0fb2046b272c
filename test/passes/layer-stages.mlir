// RUN: fem-opt %s -split-input-file -fem-layer-matmul | FileCheck %s --enable-var-scope

// Element-wise stages of a layer: the bias broadcast, the fill and the mask
// multiply become workgroup functions `<layer>_ew<N>_wg` (one chunk of the
// leading parallel loops each, vectorised by 16 lanes with a scalar
// remainder) that the layer calls through `<layer>_ew<N>_run` with its
// buffers and the workgroup count.
// CHECK-LABEL: func.func @ew_layer
//   CHECK-NOT:   linalg.generic
//   CHECK-NOT:   linalg.fill
//       CHECK:   call @ew_ew0_run(%{{.*}}, %{{.*}}, %{{.*}}) : (memref<256xf32>, memref<?x?x256xf32>, index) -> ()
//       CHECK:   call @ew_ew1_run(%{{.*}}, %{{.*}}) : (memref<?x?x256xf32>, index) -> ()
//       CHECK:   call @ew_ew2_run(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}) : (memref<?x?x256xf32>, memref<?x?xf32>, memref<?x?x256xf32>, index) -> ()
//       CHECK: func.func @ew_ew2_wg(%{{.*}}: memref<?x?x256xf32>, %{{.*}}: memref<?x?xf32>, %{{.*}}: memref<?x?x256xf32>, %{{.*}}: index) attributes {fem.stage = "ew", llvm.emit_c_interface}
//       CHECK:   scf.for
//       CHECK:     vector.load {{.*}} vector<16xf32>
//       CHECK:     arith.mulf {{.*}} : vector<16xf32>
//       CHECK:     vector.store
//       CHECK:   linalg.generic
//       CHECK: func.func private @ew_ew2_run({{.*}}) attributes {fem.stage = "ew_ew2_wg", llvm.emit_c_interface}
//       CHECK: func.func @ew_ew1_wg
//       CHECK:   arith.constant 0.000000e+00 : f32
//       CHECK: func.func @ew_ew0_wg
#bias = affine_map<(b, t, n) -> (n)>
#id3 = affine_map<(b, t, n) -> (b, t, n)>
#row = affine_map<(b, t, n) -> (b, t)>
module attributes {fem.target_features = "+avx512f,+avx2"} {
func.func @ew_layer(%bias: memref<256xf32>, %y: memref<?x?x256xf32>, %z: memref<?x?x256xf32>,
                    %mask: memref<?x?xf32>, %w: memref<?x?x256xf32>)
    attributes {fem.layer = "ew"} {
  linalg.generic {indexing_maps = [#bias, #id3], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%bias : memref<256xf32>) outs(%y : memref<?x?x256xf32>) {
    ^bb0(%a: f32, %o: f32):
      linalg.yield %a : f32
  }
  %zero = arith.constant 0.0 : f32
  linalg.fill ins(%zero : f32) outs(%z : memref<?x?x256xf32>)
  linalg.generic {indexing_maps = [#id3, #row, #id3], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%y, %mask : memref<?x?x256xf32>, memref<?x?xf32>) outs(%w : memref<?x?x256xf32>) {
    ^bb0(%a: f32, %m: f32, %o: f32):
      %r = arith.mulf %a, %m : f32
      linalg.yield %r : f32
  }
  return
}
}

// -----

// RoPE written per element (as examples/fem_layer.mlir does): the angle's
// cos and sin depend on (t, j) only, so each is computed once into a
// (T, 64) table by a stage of its own, and the rotation reads the tables;
// the rotation itself reads the partner channel from a buffer it does not
// write and stays scalar (its body loads), in chunks on the pool.
// CHECK-LABEL: func.func @rope_layer
//       CHECK:   %[[COS:.*]] = memref.alloc(%{{.*}}) {alignment = 64 : i64} : memref<?x64xf32>
//       CHECK:   call @rope_ew0_run(%[[COS]], %{{.*}}) : (memref<?x64xf32>, index) -> ()
//       CHECK:   %[[SIN:.*]] = memref.alloc(%{{.*}}) {alignment = 64 : i64} : memref<?x64xf32>
//       CHECK:   call @rope_ew1_run(%[[SIN]], %{{.*}}) : (memref<?x64xf32>, index) -> ()
//       CHECK:   call @rope_ew2_run(%{{.*}}, %[[COS]], %[[SIN]], %{{.*}}, %{{.*}})
//       CHECK:   memref.dealloc %[[COS]]
//       CHECK:   memref.dealloc %[[SIN]]
//       CHECK: func.func @rope_ew2_wg
//   CHECK-NOT:   math.cos
//   CHECK-NOT:   math.sin
//       CHECK:   memref.load
//       CHECK: func.func @rope_ew1_wg
//       CHECK:   math.sin
//       CHECK: func.func @rope_ew0_wg
//       CHECK:   math.cos
#id4 = affine_map<(b, t, h, j) -> (b, t, h, j)>
module attributes {fem.target_features = "+avx512f,+avx2"} {
func.func @rope_layer(%x: memref<?x?x4x64xf32>, %y: memref<?x?x4x64xf32>)
    attributes {fem.layer = "rope"} {
  linalg.generic {indexing_maps = [#id4, #id4], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%x : memref<?x?x4x64xf32>) outs(%y : memref<?x?x4x64xf32>) {
    ^bb0(%a: f32, %o: f32):
      %b = linalg.index 0 : index
      %t = linalg.index 1 : index
      %h = linalg.index 2 : index
      %j = linalg.index 3 : index
      %one = arith.constant 1 : index
      %pj = arith.xori %j, %one : index
      %partner = memref.load %x[%b, %t, %h, %pj] : memref<?x?x4x64xf32>
      %ji = arith.index_cast %j : index to i64
      %jf = arith.sitofp %ji : i64 to f32
      %ti = arith.index_cast %t : index to i64
      %tf = arith.sitofp %ti : i64 to f32
      %theta = arith.constant 10000.0 : f32
      %p = math.powf %theta, %jf : f32
      %ang = arith.divf %tf, %p : f32
      %cos = math.cos %ang : f32
      %sin = math.sin %ang : f32
      %u = arith.mulf %a, %cos : f32
      %w = arith.mulf %partner, %sin : f32
      %r = arith.addf %u, %w : f32
      linalg.yield %r : f32
  }
  return
}
}
