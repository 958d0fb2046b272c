// The #fem.tiles of the model are used when no option overrides them.
// CHECK-LABEL: func.func @model_tiles_wg
//       CHECK:   tiles = #fem.tiles<q = 16, k = 32, vec = 8>
func.func @model_tiles(%q: tensor<1x8x1x8xf32>, %b: tensor<8xf32>) -> tensor<1x8x1x8xf32> {
  %0 = fem.mixer softmax q(%q : tensor<1x8x1x8xf32>) k(%q : tensor<1x8x1x8xf32>)
      v(%q : tensor<1x8x1x8xf32>) beta_raw(%b : tensor<8xf32>) lam(%q : tensor<1x8x1x8xf32>)
      gate(%q : tensor<1x8x1x8xf32>) {tiles = #fem.tiles<q = 16, k = 32, vec = 8>} -> tensor<1x8x1x8xf32>
  return %0 : tensor<1x8x1x8xf32>
}
