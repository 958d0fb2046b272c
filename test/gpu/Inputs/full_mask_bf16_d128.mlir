// Non-causal with a key mask, bthd, bf16 storage, H = 4 query heads on one
// kv head, dk = dv = 128 (the 16-key shared-memory tile).
func.func @full_mask_bf16_d128(%q: tensor<?x?x4x128xbf16>, %k: tensor<?x?x1x128xbf16>,
                               %v: tensor<?x?x1x128xbf16>, %beta_raw: tensor<512xbf16>,
                               %lam: tensor<?x?x4x128xbf16>, %gate: tensor<?x?x4x128xbf16>,
                               %mask: tensor<?x?xi1>) -> tensor<?x?x4x128xbf16> {
  %out = fem.mixer softmax q(%q : tensor<?x?x4x128xbf16>) k(%k : tensor<?x?x1x128xbf16>)
      v(%v : tensor<?x?x1x128xbf16>) beta_raw(%beta_raw : tensor<512xbf16>)
      lam(%lam : tensor<?x?x4x128xbf16>) gate(%gate : tensor<?x?x4x128xbf16>)
      mask(%mask : tensor<?x?xi1>) -> tensor<?x?x4x128xbf16>
  return %out : tensor<?x?x4x128xbf16>
}
