// RUN: fem-opt %s -fem-lower-to-gpu | FileCheck %s --enable-var-scope
// RUN: fem-opt %s -fem-lower-to-gpu=sm=90 | FileCheck %s --check-prefix=SM90

// The workgroup function of fem-tile becomes a kernel of the ABI in
// passes/nvidia/KernelAbi.h: one global pointer per buffer, then B, T, S,
// H, Hkv; the launch facts as attributes; the host function is gone.
// CHECK-NOT:   func.func
// CHECK:       module attributes {gpu.container_module}
// CHECK:       gpu.module @fem_kernels
// CHECK:       gpu.func @kern_gpu(%[[Q:[a-z0-9]+]]: !llvm.ptr<1>, %{{.*}}: !llvm.ptr<1>, %{{.*}}: !llvm.ptr<1>, %{{.*}}: !llvm.ptr<1>, %{{.*}}: !llvm.ptr<1>, %{{.*}}: !llvm.ptr<1>, %[[MASK:[a-z0-9]+]]: !llvm.ptr<1>, %[[OUT:[a-z0-9]+]]: !llvm.ptr<1>, %[[B:[a-z0-9]+]]: i64, %[[T:[a-z0-9]+]]: i64, %[[S:[a-z0-9]+]]: i64, %[[H:[a-z0-9]+]]: i64, %[[HKV:[a-z0-9]+]]: i64)
// Shared memory: the K tile (32 keys x dk 16), the panel (32 x 2 dv), the
// column mask, 5 per-channel constants, the pre-pass reduction (5 x 256:
// max, min, NaN flag, sum and count of v).
// CHECK-SAME:    workgroup(%[[SK:.*]] : memref<512xf32, #gpu.address_space<workgroup>>, %[[SP:.*]] : memref<1024xf32, #gpu.address_space<workgroup>>, %{{.*}} : memref<32xf32, #gpu.address_space<workgroup>>, %{{.*}} : memref<80xf32, #gpu.address_space<workgroup>>, %{{.*}} : memref<1280xf32, #gpu.address_space<workgroup>>)
// CHECK-SAME:    kernel
// CHECK-SAME:    fem.arg_names = ["q", "k", "v", "beta_raw", "lam", "gate", "mask", "out"]
// CHECK-SAME:    fem.gpu.arch = 80 : i64
// CHECK-SAME:    fem.gpu.block = [256, 1, 1]
// CHECK-SAME:    fem.gpu.dtype = "f32"
// CHECK-SAME:    fem.gpu.grid = {{\[\["T", 32\], \["H", 1\], \["B", 1\]\]}}
// CHECK-SAME:    fem.gpu.shared_bytes = 0 : i64
// CHECK-SAME:    fem.gpu.static_shared_bytes = 11712 : i64
// CHECK-SAME:    fem.kernel = "kern"
// CHECK-SAME:    known_block_size = array<i32: 256, 1, 1>
// Block (x, y, z) = (query tile, query head, batch); the kv head is
// h / (H / Hkv); query tiles run in reverse.
// CHECK-DAG:     %[[HI:.*]] = arith.index_cast %[[H]] : i64 to index
// CHECK-DAG:     %[[HKVI:.*]] = arith.index_cast %[[HKV]] : i64 to index
// CHECK-DAG:     %[[SI:.*]] = arith.index_cast %[[S]] : i64 to index
// CHECK-DAG:     %[[BY:.*]] = gpu.block_id  y
// CHECK:         %[[GROUP:.*]] = arith.divui %[[HI]], %[[HKVI]] : index
// CHECK:         arith.divui %[[BY]], %[[GROUP]] : index
// CHECK:         gpu.block_id  x
// The fused pre-pass: a strided loop over the keys, a reduction through
// shared memory between two barriers.
// CHECK:         scf.for
// CHECK:           llvm.load %{{.*}} : !llvm.ptr<1> -> i8
// CHECK:         gpu.barrier
// CHECK:         scf.if
// CHECK:         gpu.barrier
// Causal: ceil(min(t0 + rows, S) / Bk) key tiles; each stages K and the
// panel between barriers, then shuffles complete the dot products.
// CHECK:         %[[LAST:.*]] = arith.minsi %{{.*}}, %[[SI]] : index
// CHECK:         %[[NKT:.*]] = arith.ceildivsi %[[LAST]], %{{.*}} : index
// CHECK:         scf.for %{{.*}} = %{{.*}} to %[[NKT]] step %{{.*}} iter_args
// CHECK:           gpu.barrier
// CHECK:           memref.store %{{.*}}, %[[SK]]
// CHECK:           memref.store %{{.*}}, %[[SP]]
// CHECK:           gpu.barrier
// CHECK:           gpu.shuffle  xor
// CHECK:           llvm.call_intrinsic "llvm.exp2.f32"
// CHECK:           scf.yield
// The epilogue: one guarded store per output element.
// CHECK:         llvm.call_intrinsic "llvm.sqrt.f32"
// CHECK:         scf.if
// CHECK:           llvm.store %{{.*}}, %{{.*}} : f32, !llvm.ptr<1>
// CHECK:         gpu.return

// SM90: fem.gpu.arch = 90 : i64
func.func @kern_wg(%q: memref<?x?x4x16xf32>, %k: memref<?x?x2x16xf32>, %v: memref<?x?x2x16xf32>,
                   %b: memref<64xf32>, %l: memref<?x?x4x16xf32>, %g: memref<?x?x4x16xf32>,
                   %m: memref<?x?xi8>, %o: memref<?x?x4x16xf32>, %x: index, %y: index, %z: index)
    attributes {fem.arg_names = ["q", "k", "v", "beta_raw", "lam", "gate", "mask", "out"],
                fem.grid = [["T", 64], ["Hkv", 1], ["B", 1]], fem.kernel = "kern"} {
  fem.tile_read softmax q(%q : memref<?x?x4x16xf32>) k(%k : memref<?x?x2x16xf32>)
      v(%v : memref<?x?x2x16xf32>) beta_raw(%b : memref<64xf32>) lam(%l : memref<?x?x4x16xf32>)
      gate(%g : memref<?x?x4x16xf32>) mask(%m : memref<?x?xi8>) out(%o : memref<?x?x4x16xf32>)
      at(%x, %y, %z) {causal, tiles = #fem.tiles<q = 64, k = 32, vec = 8>}
  return
}
