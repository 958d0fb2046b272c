// RUN: fem-opt %s -fem-lower-to-gpu | FileCheck %s
// RUN: fem-opt %s -fem-lower-to-gpu=tensor-cores=false | FileCheck %s --check-prefix=CC

// A bf16 read with dk % 16 == 0 and dv % 8 == 0 gets the tensor-core kernel:
// 4 warps of 16 query rows (grid divisor 64), K and the transposed panel as
// packed pairs of halves in shared memory (32 keys x dk/2, 3dv x 32/2:
// clamp(v), X hi and X lo).
// CHECK:       gpu.func @bf_gpu
// CHECK-SAME:    workgroup(%[[SK:.*]] : memref<512xi32, #gpu.address_space<workgroup>>, %[[SP:.*]] : memref<2304xi32, #gpu.address_space<workgroup>>
// CHECK-SAME:    fem.gpu.block = [128, 1, 1]
// CHECK-SAME:    fem.gpu.dtype = "bf16"
// CHECK-SAME:    fem.gpu.grid = {{\[\["T", 64\], \["H", 1\], \["B", 1\]\]}}
// Q fragments: pairs of halves loaded as i32, once.
// CHECK:       llvm.load %{{.*}} : !llvm.ptr<1> -> i32
// CHECK:       scf.for
// CHECK:         gpu.barrier
// CHECK:         memref.store %{{.*}}, %[[SK]]
// CHECK:         memref.store %{{.*}}, %[[SP]]
// CHECK:         gpu.barrier
// S = Q K^T: dk/16 = 2 steps per 8 keys, in bf16.
// CHECK:         memref.load %[[SK]]
// CHECK:         nvvm.mma.sync A[{{.*}}] B[{{.*}}] C[{{.*}}] {layoutA = #nvvm.mma_layout<row>, layoutB = #nvvm.mma_layout<col>, multiplicandAPtxType = #nvvm.mma_type<bf16>, multiplicandBPtxType = #nvvm.mma_type<bf16>, shape = #nvvm.shape<m = 16, n = 8, k = 16>} : (i32, i32, f32) -> !llvm.struct<(f32, f32, f32, f32)>
// The row max over the 4 lanes of a row, then P [V~ | X] from the panel.
// CHECK:         gpu.shuffle  xor
// CHECK:         llvm.call_intrinsic "llvm.exp2.f32"
// CHECK:         memref.load %[[SP]]
// CHECK:         nvvm.mma.sync
// CHECK:         scf.yield
// CHECK:       gpu.return

// CC: gpu.func @bf_gpu
// CC-SAME: fem.gpu.block = [256, 1, 1]
// CC-SAME: fem.gpu.dtype = "bf16"
// CC-NOT: nvvm.mma.sync
// CC: gpu.return
func.func @bf_wg(%q: memref<?x?x2x32xbf16>, %k: memref<?x?x2x32xbf16>, %v: memref<?x?x2x48xbf16>,
                 %b: memref<96xbf16>, %l: memref<?x?x2x48xbf16>, %g: memref<?x?x2x48xbf16>,
                 %o: memref<?x?x2x48xbf16>, %x: index, %y: index, %z: index)
    attributes {fem.arg_names = ["q", "k", "v", "beta_raw", "lam", "gate", "out"], fem.kernel = "bf"} {
  fem.tile_read softmax q(%q : memref<?x?x2x32xbf16>) k(%k : memref<?x?x2x32xbf16>)
      v(%v : memref<?x?x2x48xbf16>) beta_raw(%b : memref<96xbf16>) lam(%l : memref<?x?x2x48xbf16>)
      gate(%g : memref<?x?x2x48xbf16>) out(%o : memref<?x?x2x48xbf16>)
      at(%x, %y, %z) {causal, tiles = #fem.tiles<q = 64, k = 32, vec = 8>}
  return
}
