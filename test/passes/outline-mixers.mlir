// RUN: fem-opt %s -split-input-file -verify-diagnostics -fem-outline-mixers | FileCheck %s --enable-var-scope

// A mixer among other ops becomes a kernel-level function and a call on
// buffers; the layer is renamed and keeps its name in fem.layer.
// CHECK-LABEL: func.func @layer_layer
//  CHECK-SAME:   attributes {fem.layer = "layer", llvm.emit_c_interface}
//       CHECK:   %[[Q:.*]] = arith.addf
//   CHECK-DAG:   %[[QB:.*]] = bufferization.to_buffer %[[Q]]
//       CHECK:   %[[OUT:.*]] = memref.alloc(%{{.*}}) {alignment = 64 : i64} : memref<1x?x2x8xf32>
//       CHECK:   call @layer_fem0_run(%[[QB]], {{.*}}, %[[OUT]])
//       CHECK:   %[[R:.*]] = bufferization.to_tensor %[[OUT]] restrict writable
//       CHECK:   return %[[R]]
//   CHECK-NOT:   fem.mixer
// CHECK-LABEL: func.func @layer_fem0(
//       CHECK:   fem.mixer softmax
//       CHECK:   return
// CHECK-LABEL: func.func private @layer_fem0_run(memref<1x?x2x8xf32>, memref<1x?x2x8xf32>, memref<1x?x2x8xf32>, memref<16xf32>, memref<1x?x2x8xf32>, memref<1x?x2x8xf32>, memref<1x?x2x8xf32>) attributes {llvm.emit_c_interface}
func.func @layer(%x: tensor<1x?x2x8xf32>, %b: tensor<16xf32>) -> tensor<1x?x2x8xf32> {
  %q = arith.addf %x, %x : tensor<1x?x2x8xf32>
  %0 = fem.mixer softmax q(%q : tensor<1x?x2x8xf32>) k(%x : tensor<1x?x2x8xf32>)
      v(%x : tensor<1x?x2x8xf32>) beta_raw(%b : tensor<16xf32>) lam(%x : tensor<1x?x2x8xf32>)
      gate(%x : tensor<1x?x2x8xf32>) {causal} -> tensor<1x?x2x8xf32>
  return %0 : tensor<1x?x2x8xf32>
}

// -----

// A kernel-level function is left alone.
// CHECK-LABEL: func.func @negative_kernel_level
//       CHECK:   fem.mixer softmax
//   CHECK-NOT:   fem.layer
func.func @negative_kernel_level(%x: tensor<1x8x2x8xf32>, %b: tensor<16xf32>) -> tensor<1x8x2x8xf32> {
  %0 = fem.mixer softmax q(%x : tensor<1x8x2x8xf32>) k(%x : tensor<1x8x2x8xf32>)
      v(%x : tensor<1x8x2x8xf32>) beta_raw(%b : tensor<16xf32>) lam(%x : tensor<1x8x2x8xf32>)
      gate(%x : tensor<1x8x2x8xf32>) -> tensor<1x8x2x8xf32>
  return %0 : tensor<1x8x2x8xf32>
}

// -----

// gla: the decay logits are the kernel's seventh argument (the prior
// table's order); k, v, lam and gate share one value in the layer but get
// an argument each in the kernel.
// CHECK-LABEL: func.func @gla_layer_layer
//       CHECK:   %[[D:.*]] = arith.addf %{{.*}} : tensor<1x?x2xf32>
//       CHECK:   %[[DB:.*]] = bufferization.to_buffer %[[D]]
//       CHECK:   call @gla_layer_fem0_run({{.*}}, %[[DB]], %{{.*}}) : (memref<1x?x2x8xf32>, memref<1x?x2x8xf32>, memref<1x?x2x8xf32>, memref<16xf32>, memref<1x?x2x8xf32>, memref<1x?x2x8xf32>, memref<1x?x2xf32>, memref<1x?x2x8xf32>) -> ()
// CHECK-LABEL: func.func @gla_layer_fem0(
//  CHECK-SAME:     %[[Q:[^:]*]]: tensor<1x?x2x8xf32>, %[[K:[^:]*]]: tensor<1x?x2x8xf32>, %[[V:[^:]*]]: tensor<1x?x2x8xf32>, %[[B:[^:]*]]: tensor<16xf32>, %[[L:[^:]*]]: tensor<1x?x2x8xf32>, %[[G:[^:]*]]: tensor<1x?x2x8xf32>, %[[DK:[^:]*]]: tensor<1x?x2xf32>)
//       CHECK:   fem.mixer gla q(%[[Q]] : {{.*}}) k(%[[K]] : {{.*}}) v(%[[V]] : {{.*}}) beta_raw(%[[B]] : {{.*}}) lam(%[[L]] : {{.*}}) gate(%[[G]] : {{.*}}) decay(%[[DK]] : {{.*}})
// CHECK-LABEL: func.func private @gla_layer_fem0_run(memref<1x?x2x8xf32>, memref<1x?x2x8xf32>, memref<1x?x2x8xf32>, memref<16xf32>, memref<1x?x2x8xf32>, memref<1x?x2x8xf32>, memref<1x?x2xf32>, memref<1x?x2x8xf32>)
func.func @gla_layer(%x: tensor<1x?x2x8xf32>, %b: tensor<16xf32>, %d: tensor<1x?x2xf32>) -> tensor<1x?x2x8xf32> {
  %q = arith.addf %x, %x : tensor<1x?x2x8xf32>
  %dd = arith.addf %d, %d : tensor<1x?x2xf32>
  %0 = fem.mixer gla q(%q : tensor<1x?x2x8xf32>) k(%x : tensor<1x?x2x8xf32>)
      v(%x : tensor<1x?x2x8xf32>) beta_raw(%b : tensor<16xf32>) lam(%x : tensor<1x?x2x8xf32>)
      gate(%x : tensor<1x?x2x8xf32>) decay(%dd : tensor<1x?x2xf32>) -> tensor<1x?x2x8xf32>
  return %0 : tensor<1x?x2x8xf32>
}

// -----

// ssm: no q or k; delta, A, Bs, Cs and D follow the gate, in that order.
// CHECK-LABEL: func.func @ssm_layer_layer
//       CHECK:   call @ssm_layer_fem0_run(
// CHECK-LABEL: func.func @ssm_layer_fem0(
//  CHECK-SAME:     %[[V:[^:]*]]: tensor<1x8x2x8xf32>, %[[B:[^:]*]]: tensor<16xf32>, %[[L:[^:]*]]: tensor<1x8x2x8xf32>, %[[G:[^:]*]]: tensor<1x8x2x8xf32>, %[[DT:[^:]*]]: tensor<1x8x16xf32>, %[[A:[^:]*]]: tensor<16x4xf32>, %[[BS:[^:]*]]: tensor<1x8x4xf32>, %[[CS:[^:]*]]: tensor<1x8x4xf32>, %[[D:[^:]*]]: tensor<16xf32>)
//       CHECK:   fem.mixer ssm v(%[[V]] : {{.*}}) beta_raw(%[[B]] : {{.*}}) lam(%[[L]] : {{.*}}) gate(%[[G]] : {{.*}}) delta(%[[DT]] : {{.*}}) A(%[[A]] : {{.*}}) Bs(%[[BS]] : {{.*}}) Cs(%[[CS]] : {{.*}}) D(%[[D]] : {{.*}})
// CHECK-LABEL: func.func private @ssm_layer_fem0_run(memref<1x8x2x8xf32>, memref<16xf32>, memref<1x8x2x8xf32>, memref<1x8x2x8xf32>, memref<1x8x16xf32>, memref<16x4xf32>, memref<1x8x4xf32>, memref<1x8x4xf32>, memref<16xf32>, memref<1x8x2x8xf32>)
func.func @ssm_layer(%x: tensor<1x8x2x8xf32>, %b: tensor<16xf32>, %delta: tensor<1x8x16xf32>, %A: tensor<16x4xf32>, %s: tensor<1x8x4xf32>) -> tensor<1x8x2x8xf32> {
  %v = arith.addf %x, %x : tensor<1x8x2x8xf32>
  %0 = fem.mixer ssm v(%v : tensor<1x8x2x8xf32>) beta_raw(%b : tensor<16xf32>)
      lam(%x : tensor<1x8x2x8xf32>) gate(%x : tensor<1x8x2x8xf32>) delta(%delta : tensor<1x8x16xf32>)
      A(%A : tensor<16x4xf32>) Bs(%s : tensor<1x8x4xf32>) Cs(%s : tensor<1x8x4xf32>)
      D(%b : tensor<16xf32>) -> tensor<1x8x2x8xf32>
  return %0 : tensor<1x8x2x8xf32>
}

// -----

// A key mask (softmax, linear) follows the gate; it stays i1, one byte per
// key in memory as the kernel's uint8 mask.
// CHECK-LABEL: func.func @masked_layer_layer
//       CHECK:   call @masked_layer_fem0_run({{.*}}) : (memref<1x8x2x8xf32>, memref<1x8x2x8xf32>, memref<1x8x2x8xf32>, memref<16xf32>, memref<1x8x2x8xf32>, memref<1x8x2x8xf32>, memref<1x8xi1>, memref<1x8x2x8xf32>) -> ()
// CHECK-LABEL: func.func @masked_layer_fem0(
//       CHECK:   fem.mixer linear {{.*}} mask(%{{.*}} : tensor<1x8xi1>)
func.func @masked_layer(%x: tensor<1x8x2x8xf32>, %b: tensor<16xf32>, %m: tensor<1x8xi1>) -> tensor<1x8x2x8xf32> {
  %q = arith.addf %x, %x : tensor<1x8x2x8xf32>
  %0 = fem.mixer linear q(%q : tensor<1x8x2x8xf32>) k(%x : tensor<1x8x2x8xf32>)
      v(%x : tensor<1x8x2x8xf32>) beta_raw(%b : tensor<16xf32>) lam(%x : tensor<1x8x2x8xf32>)
      gate(%x : tensor<1x8x2x8xf32>) mask(%m : tensor<1x8xi1>) -> tensor<1x8x2x8xf32>
  return %0 : tensor<1x8x2x8xf32>
}
