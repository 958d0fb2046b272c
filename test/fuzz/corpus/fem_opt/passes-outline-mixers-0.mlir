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
