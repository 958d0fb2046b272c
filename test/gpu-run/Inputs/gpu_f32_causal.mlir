// GPU shape matrix (test/gpu-run/CMakeLists.txt): causal, bthd, f32, H = 8, Hkv = 8, dk = 64, dv = 64.
func.func @gpu_f32_causal(%q: tensor<?x?x8x64xf32>, %k: tensor<?x?x8x64xf32>, %v: tensor<?x?x8x64xf32>,
    %beta_raw: tensor<512xf32>, %lam: tensor<?x?x8x64xf32>, %gate: tensor<?x?x8x64xf32>) -> tensor<?x?x8x64xf32> {
  %out = fem.mixer softmax q(%q : tensor<?x?x8x64xf32>) k(%k : tensor<?x?x8x64xf32>) v(%v : tensor<?x?x8x64xf32>)
      beta_raw(%beta_raw : tensor<512xf32>) lam(%lam : tensor<?x?x8x64xf32>) gate(%gate : tensor<?x?x8x64xf32>) {causal} -> tensor<?x?x8x64xf32>
  return %out : tensor<?x?x8x64xf32>
}
