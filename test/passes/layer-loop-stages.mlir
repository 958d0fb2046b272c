// RUN: fem-opt %s -split-input-file -fem-layer-loop-stages | FileCheck %s --enable-var-scope
// RUN: fem-opt %s -split-input-file -fem-layer-loop-stages=lanes=1 | FileCheck %s --check-prefix=SCALAR
// RUN: not fem-opt %s -split-input-file -fem-layer-loop-stages=lanes=-2 2>&1 | FileCheck %s --check-prefix=BAD
// BAD: error: fem-layer-loop-stages: option lanes must be 0 (from the target) or positive, found -2

// The time-decay conditioning's scan as the importer writes it, bufferized:
// parallel over batch and channels, a recurrence over t. The (b, j) band
// becomes stage <layer>_loop0: the layer calls _run with the buffers and a
// workgroup count; workgroup i runs its chunk of the flattened (b, channel
// group) iterations, each the whole scan over t of 8 channels (no target
// features: 8 lanes) with the carried values as vectors, a partial group
// as the scalar loop. lanes=1: the scalar loop only.
// CHECK-LABEL: func.func @tdc_layer(
//  CHECK-SAME:     %[[A:.*]]: memref<?x?x64xf32>, %[[F:.*]]: memref<?x?x64xf32>)
//       CHECK:   %[[H:.*]] = memref.alloc
//   CHECK-NOT:   scf.for
//       CHECK:   call @tdc_loop0_run(%[[A]], %[[F]], %[[H]], %{{.*}}) : (memref<?x?x64xf32>, memref<?x?x64xf32>, memref<?x?x64xf32>, index) -> ()
//   CHECK-NOT:   scf.for
//       CHECK:   return %[[H]]
//       CHECK: func.func @tdc_loop0_wg(%[[WA:.*]]: memref<?x?x64xf32>, %[[WF:.*]]: memref<?x?x64xf32>, %[[WH:.*]]: memref<?x?x64xf32>, %[[I:.*]]: index) attributes {fem.stage = "loop", llvm.emit_c_interface}
//       CHECK:   %[[FIRST:.*]] = arith.muli %[[I]], %[[CHUNK:.*]] : index
//       CHECK:   %[[END:.*]] = arith.addi %[[FIRST]], %[[CHUNK]] : index
//       CHECK:   %[[LAST:.*]] = arith.minsi %{{.*}}, %[[END]] : index
//       CHECK:   scf.for %[[K:.*]] = %[[FIRST]] to %[[LAST]]
//       CHECK:     arith.remui %[[K]]
//       CHECK:     arith.divui %[[K]]
//       CHECK:     scf.if
//       CHECK:       scf.for {{.*}} iter_args({{.*}}) -> (vector<8xf32>, vector<8xf32>)
//       CHECK:         vector.load %[[WA]]{{.*}} : memref<?x?x64xf32>, vector<8xf32>
//       CHECK:         math.exp {{.*}} : vector<8xf32>
//       CHECK:         vector.store {{.*}}, %[[WH]]
//       CHECK:     } else {
//       CHECK:       scf.for
//       CHECK:         scf.for {{.*}} iter_args({{.*}}) -> (f32, f32)
//       CHECK:           memref.load %[[WA]]
//       CHECK:           math.exp {{.*}} : f32
//       CHECK:           memref.store {{.*}}, %[[WH]]
//       CHECK: func.func private @tdc_loop0_run(memref<?x?x64xf32>, memref<?x?x64xf32>, memref<?x?x64xf32>, index) attributes {fem.stage = "tdc_loop0_wg", llvm.emit_c_interface}
// SCALAR-LABEL: func.func @tdc_loop0_wg(
//   SCALAR-NOT:   vector
//       SCALAR:   scf.for
//       SCALAR:     scf.for {{.*}} iter_args({{.*}}) -> (f32, f32)
//   SCALAR-NOT:   vector
//       SCALAR: func.func private @tdc_loop0_run(
func.func @tdc_layer(%a: memref<?x?x64xf32>, %f: memref<?x?x64xf32>) -> memref<?x?x64xf32>
    attributes {fem.layer = "tdc"} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c64 = arith.constant 64 : index
  %zero = arith.constant 0.0 : f32
  %B = memref.dim %a, %c0 : memref<?x?x64xf32>
  %T = memref.dim %a, %c1 : memref<?x?x64xf32>
  %h = memref.alloc(%B, %T) : memref<?x?x64xf32>
  scf.for %b = %c0 to %B step %c1 {
    scf.for %j = %c0 to %c64 step %c1 {
      %r:2 = scf.for %t = %c0 to %T step %c1 iter_args(%c = %zero, %s = %zero) -> (f32, f32) {
        %x = memref.load %a[%b, %t, %j] : memref<?x?x64xf32>
        %y = memref.load %f[%b, %t, %j] : memref<?x?x64xf32>
        %e = math.exp %x : f32
        %cn = arith.subf %c, %e : f32
        %m = arith.mulf %e, %s : f32
        %sn = arith.addf %m, %y : f32
        memref.store %sn, %h[%b, %t, %j] : memref<?x?x64xf32>
        scf.yield %cn, %sn : f32, f32
      }
    }
  }
  return %h : memref<?x?x64xf32>
}

// -----

// The inner loop writes one column for every j: only the batch loop is
// parallel, so the band is (b) alone.
// CHECK-LABEL: func.func @outer_only_layer(
//       CHECK:   call @outer_only_loop0_run(
//       CHECK: func.func @outer_only_loop0_wg(
//       CHECK:   scf.for %[[K:.*]] =
//   CHECK-NOT:     arith.remui
//   CHECK-NOT:     vector
//       CHECK:     scf.for %[[J:.*]] =
//       CHECK:       scf.for
//       CHECK:         memref.store %{{.*}}, %{{.*}}[%{{.*}}, %{{.*}}, %c0{{.*}}]
func.func @outer_only_layer(%a: memref<?x?x64xf32>) -> memref<?x?x64xf32>
    attributes {fem.layer = "outer_only"} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c64 = arith.constant 64 : index
  %B = memref.dim %a, %c0 : memref<?x?x64xf32>
  %T = memref.dim %a, %c1 : memref<?x?x64xf32>
  %h = memref.alloc(%B, %T) : memref<?x?x64xf32>
  scf.for %b = %c0 to %B step %c1 {
    scf.for %j = %c0 to %c64 step %c1 {
      scf.for %t = %c0 to %T step %c1 {
        %x = memref.load %a[%b, %t, %j] : memref<?x?x64xf32>
        memref.store %x, %h[%b, %t, %c0] : memref<?x?x64xf32>
      }
    }
  }
  return %h : memref<?x?x64xf32>
}

// -----

// Nests that stay in the layer: a sum over b into one row (no loop owns
// what it writes), a write into an argument (which may alias an input), a
// call (unknown effects), a read of the written buffer at another row
// (h[b + 1]), and loops that carry a value.
// CHECK-NOT: serial_loop
// CHECK-LABEL: func.func @serial_layer(
//   CHECK-COUNT-10: scf.for
//   CHECK-NOT:   scf.for
//       CHECK:   return
//   CHECK-NOT: serial_loop
func.func private @opaque(f32)
func.func @serial_layer(%a: memref<?x64xf32>, %out: memref<?x64xf32>) -> memref<?x64xf32>
    attributes {fem.layer = "serial"} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c64 = arith.constant 64 : index
  %zero = arith.constant 0.0 : f32
  %B = memref.dim %a, %c0 : memref<?x64xf32>
  %h = memref.alloc(%B) : memref<?x64xf32>
  %row = memref.alloc() : memref<64xf32>
  scf.for %b = %c0 to %B step %c1 {
    scf.for %j = %c0 to %c64 step %c1 {
      %x = memref.load %a[%b, %j] : memref<?x64xf32>
      %s = memref.load %row[%j] : memref<64xf32>
      %n = arith.addf %s, %x : f32
      memref.store %n, %row[%j] : memref<64xf32>
    }
  }
  scf.for %b = %c0 to %B step %c1 {
    scf.for %j = %c0 to %c64 step %c1 {
      %x = memref.load %a[%b, %j] : memref<?x64xf32>
      memref.store %x, %out[%b, %j] : memref<?x64xf32>
    }
  }
  scf.for %b = %c0 to %B step %c1 {
    scf.for %j = %c0 to %c64 step %c1 {
      %x = memref.load %a[%b, %j] : memref<?x64xf32>
      func.call @opaque(%x) : (f32) -> ()
    }
  }
  scf.for %b = %c0 to %B step %c1 {
    scf.for %j = %c0 to %c64 step %c1 {
      %b1 = arith.addi %b, %c1 : index
      %x = memref.load %h[%b1, %j] : memref<?x64xf32>
      memref.store %x, %h[%b, %j] : memref<?x64xf32>
    }
  }
  %r = scf.for %b = %c0 to %B step %c1 iter_args(%acc = %zero) -> (f32) {
    %y = scf.for %j = %c0 to %c64 step %c1 iter_args(%in = %acc) -> (f32) {
      %x = memref.load %a[%b, %j] : memref<?x64xf32>
      %n = arith.addf %in, %x : f32
      memref.store %n, %h[%b, %j] : memref<?x64xf32>
      scf.yield %n : f32
    }
    scf.yield %y : f32
  }
  memref.store %r, %row[%c0] : memref<64xf32>
  memref.dealloc %row : memref<64xf32>
  return %h : memref<?x64xf32>
}

// -----

// A scalar the nest reads from memory before it is not recomputed in the
// stage: the nest stays.
// CHECK-LABEL: func.func @scalar_layer(
//   CHECK-NOT:   call
//       CHECK:   scf.for
func.func @scalar_layer(%a: memref<?x64xf32>, %s: memref<1xf32>) -> memref<?x64xf32>
    attributes {fem.layer = "scalar"} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c64 = arith.constant 64 : index
  %B = memref.dim %a, %c0 : memref<?x64xf32>
  %h = memref.alloc(%B) : memref<?x64xf32>
  %k = memref.load %s[%c0] : memref<1xf32>
  scf.for %b = %c0 to %B step %c1 {
    scf.for %j = %c0 to %c64 step %c1 {
      %x = memref.load %a[%b, %j] : memref<?x64xf32>
      %y = arith.mulf %x, %k : f32
      memref.store %y, %h[%b, %j] : memref<?x64xf32>
    }
  }
  return %h : memref<?x64xf32>
}

// -----

// Parallel over (b, j) but the channel is read reversed (63 - j): no lanes
// (a vector load would need a permutation), the stage runs the scalar loop.
// CHECK-LABEL: func.func @reversed_layer(
//       CHECK:   call @reversed_loop0_run(
//       CHECK: func.func @reversed_loop0_wg(
//   CHECK-NOT:   vector
//       CHECK:     arith.remui
//       CHECK:     arith.subi
//       CHECK:     memref.load
//   CHECK-NOT:   vector
//       CHECK: func.func private @reversed_loop0_run(
func.func @reversed_layer(%a: memref<?x?x64xf32>) -> memref<?x?x64xf32>
    attributes {fem.layer = "reversed"} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c63 = arith.constant 63 : index
  %c64 = arith.constant 64 : index
  %B = memref.dim %a, %c0 : memref<?x?x64xf32>
  %T = memref.dim %a, %c1 : memref<?x?x64xf32>
  %h = memref.alloc(%B, %T) : memref<?x?x64xf32>
  scf.for %b = %c0 to %B step %c1 {
    scf.for %j = %c0 to %c64 step %c1 {
      scf.for %t = %c0 to %T step %c1 {
        %r = arith.subi %c63, %j : index
        %x = memref.load %a[%b, %t, %r] : memref<?x?x64xf32>
        memref.store %x, %h[%b, %t, %j] : memref<?x?x64xf32>
      }
    }
  }
  return %h : memref<?x?x64xf32>
}
