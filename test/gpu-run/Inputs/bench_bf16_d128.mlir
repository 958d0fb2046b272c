// GPU benchmark (scripts/gpu-check.sh, docs/gpu-run.md): non-causal, bthd, bf16, H = 16, Hkv = 16, dk = 128, dv = 128.
func.func @bench_bf16_d128(%q: tensor<?x?x16x128xbf16>, %k: tensor<?x?x16x128xbf16>, %v: tensor<?x?x16x128xbf16>,
    %beta_raw: tensor<2048xbf16>, %lam: tensor<?x?x16x128xbf16>, %gate: tensor<?x?x16x128xbf16>) -> tensor<?x?x16x128xbf16> {
  %out = fem.mixer softmax q(%q : tensor<?x?x16x128xbf16>) k(%k : tensor<?x?x16x128xbf16>) v(%v : tensor<?x?x16x128xbf16>)
      beta_raw(%beta_raw : tensor<2048xbf16>) lam(%lam : tensor<?x?x16x128xbf16>) gate(%gate : tensor<?x?x16x128xbf16>) -> tensor<?x?x16x128xbf16>
  return %out : tensor<?x?x16x128xbf16>
}
