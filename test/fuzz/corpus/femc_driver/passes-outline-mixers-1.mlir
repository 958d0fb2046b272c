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
