// GPU benchmark (scripts/gpu-check.sh, docs/gpu-run.md): causal, bthd, bf16, H = 16, Hkv = 16, dk = 64, dv = 64.
func.func @bench_bf16_d64_causal(%q: tensor<?x?x16x64xbf16>, %k: tensor<?x?x16x64xbf16>, %v: tensor<?x?x16x64xbf16>,
    %beta_raw: tensor<1024xbf16>, %lam: tensor<?x?x16x64xbf16>, %gate: tensor<?x?x16x64xbf16>) -> tensor<?x?x16x64xbf16> {
  %out = fem.mixer softmax q(%q : tensor<?x?x16x64xbf16>) k(%k : tensor<?x?x16x64xbf16>) v(%v : tensor<?x?x16x64xbf16>)
      beta_raw(%beta_raw : tensor<1024xbf16>) lam(%lam : tensor<?x?x16x64xbf16>) gate(%gate : tensor<?x?x16x64xbf16>) {causal} -> tensor<?x?x16x64xbf16>
  return %out : tensor<?x?x16x64xbf16>
}
