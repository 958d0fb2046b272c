func.func @negative_layer_mask(%x: tensor<1x8x2x8xf32>, %b: tensor<16xf32>, %m: tensor<1x8xi1>) -> tensor<1x8x2x8xf32> {
  %q = arith.addf %x, %x : tensor<1x8x2x8xf32>
  // expected-error @+1 {{fem-outline-mixers: a key mask inside a layer function is not supported yet; pass the mask to a kernel-level function}}
  %0 = fem.mixer softmax q(%q : tensor<1x8x2x8xf32>) k(%x : tensor<1x8x2x8xf32>)
      v(%x : tensor<1x8x2x8xf32>) beta_raw(%b : tensor<16xf32>) lam(%x : tensor<1x8x2x8xf32>)
      gate(%x : tensor<1x8x2x8xf32>) mask(%m : tensor<1x8xi1>) -> tensor<1x8x2x8xf32>
  return %0 : tensor<1x8x2x8xf32>
}
