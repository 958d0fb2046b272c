// Pass options override the model's #fem.tiles; the target sets the lanes.
// CHECK: tiles = #fem.tiles<q = 32, k = 48, vec = 8>
// AVX512: tiles = #fem.tiles<q = 32, k = 32, vec = 16>
// BAD: error: fem-tile: unknown target 'riscv', expected host, avx2, avx512 or generic
func.func @kernel(%q: tensor<1x8x1x8xf32>, %b: tensor<8xf32>) -> tensor<1x8x1x8xf32> {
  %0 = fem.mixer softmax q(%q : tensor<1x8x1x8xf32>) k(%q : tensor<1x8x1x8xf32>)
      v(%q : tensor<1x8x1x8xf32>) beta_raw(%b : tensor<8xf32>) lam(%q : tensor<1x8x1x8xf32>)
      gate(%q : tensor<1x8x1x8xf32>) {tiles = #fem.tiles<q = 32, k = 32>} -> tensor<1x8x1x8xf32>
  return %0 : tensor<1x8x1x8xf32>
}
