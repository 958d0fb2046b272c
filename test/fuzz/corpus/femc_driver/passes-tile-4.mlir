func.func @negative_f16(%q: tensor<1x8x1x8xf16>, %b: tensor<8xf16>) -> tensor<1x8x1x8xf16> {
  // expected-error @+1 {{fem-tile: operand 'q' has element type 'f16'; the CPU lowering handles f32 only in this version}}
  %0 = fem.mixer softmax q(%q : tensor<1x8x1x8xf16>) k(%q : tensor<1x8x1x8xf16>)
      v(%q : tensor<1x8x1x8xf16>) beta_raw(%b : tensor<8xf16>) lam(%q : tensor<1x8x1x8xf16>)
      gate(%q : tensor<1x8x1x8xf16>) -> tensor<1x8x1x8xf16>
  return %0 : tensor<1x8x1x8xf16>
}
