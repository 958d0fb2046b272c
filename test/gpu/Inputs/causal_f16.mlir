// Causal, bthd, f16 storage (f32 arithmetic), H = 2, dk = dv = 64.
func.func @causal_f16(%q: tensor<?x?x2x64xf16>, %k: tensor<?x?x2x64xf16>,
                      %v: tensor<?x?x2x64xf16>, %beta_raw: tensor<128xf16>,
                      %lam: tensor<?x?x2x64xf16>, %gate: tensor<?x?x2x64xf16>)
    -> tensor<?x?x2x64xf16> {
  %out = fem.mixer softmax q(%q : tensor<?x?x2x64xf16>) k(%k : tensor<?x?x2x64xf16>)
      v(%v : tensor<?x?x2x64xf16>) beta_raw(%beta_raw : tensor<128xf16>)
      lam(%lam : tensor<?x?x2x64xf16>) gate(%gate : tensor<?x?x2x64xf16>) {causal}
      -> tensor<?x?x2x64xf16>
  return %out : tensor<?x?x2x64xf16>
}
