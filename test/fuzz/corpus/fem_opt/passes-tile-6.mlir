func.func @negative_bad_key_tile(%q: tensor<1x8x1x8xf32>, %b: tensor<8xf32>) -> tensor<1x8x1x8xf32> {
  // expected-error @+1 {{fem-tile: key tile (tile-k) must be a positive multiple of 2 * vec = 16 up to 1024, found 24}}
  %0 = fem.mixer softmax q(%q : tensor<1x8x1x8xf32>) k(%q : tensor<1x8x1x8xf32>)
      v(%q : tensor<1x8x1x8xf32>) beta_raw(%b : tensor<8xf32>) lam(%q : tensor<1x8x1x8xf32>)
      gate(%q : tensor<1x8x1x8xf32>) {tiles = #fem.tiles<q = 32, k = 24, vec = 8>} -> tensor<1x8x1x8xf32>
  return %0 : tensor<1x8x1x8xf32>
}
