// GPU shape matrix (test/gpu-run/CMakeLists.txt): non-causal, bhtd, f32, H = 8, Hkv = 2, dk = 64, dv = 64, key mask.
func.func @gpu_f32_gqa_mask_bhtd(%q: tensor<?x8x?x64xf32>, %k: tensor<?x2x?x64xf32>, %v: tensor<?x2x?x64xf32>,
    %beta_raw: tensor<512xf32>, %lam: tensor<?x8x?x64xf32>, %gate: tensor<?x8x?x64xf32>, %mask: tensor<?x?xi8>) -> tensor<?x8x?x64xf32> {
  %out = fem.mixer softmax q(%q : tensor<?x8x?x64xf32>) k(%k : tensor<?x2x?x64xf32>) v(%v : tensor<?x2x?x64xf32>)
      beta_raw(%beta_raw : tensor<512xf32>) lam(%lam : tensor<?x8x?x64xf32>) gate(%gate : tensor<?x8x?x64xf32>) mask(%mask : tensor<?x?xi8>) {layout = #fem.layout<bhtd>} -> tensor<?x8x?x64xf32>
  return %out : tensor<?x8x?x64xf32>
}
