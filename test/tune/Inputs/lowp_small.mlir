// 16-bit kernels for fem-tune (fem-tune-lowp.test): a bf16 softmax and an
// f16 linear read, two heads of width 16, dynamic batch and length.
func.func @softmax_bf16(%q: tensor<?x?x2x16xbf16>, %k: tensor<?x?x2x16xbf16>,
                        %v: tensor<?x?x2x16xbf16>, %beta_raw: tensor<32xbf16>,
                        %lam: tensor<?x?x2x16xbf16>,
                        %gate: tensor<?x?x2x16xbf16>) -> tensor<?x?x2x16xbf16> {
  %out = fem.mixer softmax q(%q : tensor<?x?x2x16xbf16>)
      k(%k : tensor<?x?x2x16xbf16>) v(%v : tensor<?x?x2x16xbf16>)
      beta_raw(%beta_raw : tensor<32xbf16>) lam(%lam : tensor<?x?x2x16xbf16>)
      gate(%gate : tensor<?x?x2x16xbf16>) {causal} -> tensor<?x?x2x16xbf16>
  return %out : tensor<?x?x2x16xbf16>
}

func.func @linear_f16(%q: tensor<?x?x2x16xf16>, %k: tensor<?x?x2x16xf16>,
                      %v: tensor<?x?x2x16xf16>, %beta_raw: tensor<32xf16>,
                      %lam: tensor<?x?x2x16xf16>,
                      %gate: tensor<?x?x2x16xf16>) -> tensor<?x?x2x16xf16> {
  %out = fem.mixer linear q(%q : tensor<?x?x2x16xf16>)
      k(%k : tensor<?x?x2x16xf16>) v(%v : tensor<?x?x2x16xf16>)
      beta_raw(%beta_raw : tensor<32xf16>) lam(%lam : tensor<?x?x2x16xf16>)
      gate(%gate : tensor<?x?x2x16xf16>) {causal} -> tensor<?x?x2x16xf16>
  return %out : tensor<?x?x2x16xf16>
}
