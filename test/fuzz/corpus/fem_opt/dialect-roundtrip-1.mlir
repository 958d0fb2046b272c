// CHECK-LABEL: func.func @mixer_softmax_bhtd_tiles
//       CHECK:   fem.mixer softmax q(%{{.*}} : tensor<2x4x64x16xf32>) {{.*}} {layout = #fem.layout<bhtd>, tiles = #fem.tiles<q = 32, k = 64, vec = 8>} -> tensor<2x4x64x16xf32>
func.func @mixer_softmax_bhtd_tiles(%q: tensor<2x4x64x16xf32>, %k: tensor<2x4x64x16xf32>,
    %v: tensor<2x4x64x16xf32>, %b: tensor<64xf32>, %l: tensor<2x4x64x16xf32>,
    %g: tensor<2x4x64x16xf32>) -> tensor<2x4x64x16xf32> {
  %out = fem.mixer softmax q(%q : tensor<2x4x64x16xf32>) k(%k : tensor<2x4x64x16xf32>)
      v(%v : tensor<2x4x64x16xf32>) beta_raw(%b : tensor<64xf32>) lam(%l : tensor<2x4x64x16xf32>)
      gate(%g : tensor<2x4x64x16xf32>)
      {layout = #fem.layout<bhtd>, tiles = #fem.tiles<q = 32, k = 64, vec = 8>} -> tensor<2x4x64x16xf32>
  return %out : tensor<2x4x64x16xf32>
}
