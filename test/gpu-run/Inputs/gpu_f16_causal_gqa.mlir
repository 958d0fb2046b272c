// GPU shape matrix (test/gpu-run/CMakeLists.txt): causal, bthd, f16, H = 8, Hkv = 4, dk = 64, dv = 64.
func.func @gpu_f16_causal_gqa(%q: tensor<?x?x8x64xf16>, %k: tensor<?x?x4x64xf16>, %v: tensor<?x?x4x64xf16>,
    %beta_raw: tensor<512xf16>, %lam: tensor<?x?x8x64xf16>, %gate: tensor<?x?x8x64xf16>) -> tensor<?x?x8x64xf16> {
  %out = fem.mixer softmax q(%q : tensor<?x?x8x64xf16>) k(%k : tensor<?x?x4x64xf16>) v(%v : tensor<?x?x4x64xf16>)
      beta_raw(%beta_raw : tensor<512xf16>) lam(%lam : tensor<?x?x8x64xf16>) gate(%gate : tensor<?x?x8x64xf16>) {causal} -> tensor<?x?x8x64xf16>
  return %out : tensor<?x?x8x64xf16>
}
