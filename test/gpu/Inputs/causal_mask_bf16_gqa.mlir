// Causal with a key mask, bhtd, bf16 storage, grouped heads (H = 4 on
// Hkv = 2), dk = 32, dv = 48: the tensor-core kernel (mma.sync) with three
// 16-channel blocks per value stream.
func.func @causal_mask_bf16_gqa(%q: tensor<?x4x?x32xbf16>, %k: tensor<?x2x?x32xbf16>,
                                %v: tensor<?x2x?x48xbf16>, %beta_raw: tensor<192xbf16>,
                                %lam: tensor<?x4x?x48xbf16>, %gate: tensor<?x4x?x48xbf16>,
                                %mask: tensor<?x?xi1>) -> tensor<?x4x?x48xbf16> {
  %out = fem.mixer softmax q(%q : tensor<?x4x?x32xbf16>) k(%k : tensor<?x2x?x32xbf16>)
      v(%v : tensor<?x2x?x48xbf16>) beta_raw(%beta_raw : tensor<192xbf16>)
      lam(%lam : tensor<?x4x?x48xbf16>) gate(%gate : tensor<?x4x?x48xbf16>)
      mask(%mask : tensor<?x?xi1>) {causal, layout = #fem.layout<bhtd>} -> tensor<?x4x?x48xbf16>
  return %out : tensor<?x4x?x48xbf16>
}
