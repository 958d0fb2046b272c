// GPU shape matrix (test/gpu-run/CMakeLists.txt): non-causal, bthd, f32, H = 4, Hkv = 4, dk = 32, dv = 128.
func.func @gpu_f32_wide(%q: tensor<?x?x4x32xf32>, %k: tensor<?x?x4x32xf32>, %v: tensor<?x?x4x128xf32>,
    %beta_raw: tensor<512xf32>, %lam: tensor<?x?x4x128xf32>, %gate: tensor<?x?x4x128xf32>) -> tensor<?x?x4x128xf32> {
  %out = fem.mixer softmax q(%q : tensor<?x?x4x32xf32>) k(%k : tensor<?x?x4x32xf32>) v(%v : tensor<?x?x4x128xf32>)
      beta_raw(%beta_raw : tensor<512xf32>) lam(%lam : tensor<?x?x4x128xf32>) gate(%gate : tensor<?x?x4x128xf32>) -> tensor<?x?x4x128xf32>
  return %out : tensor<?x?x4x128xf32>
}
