// Non-causal, key mask, bhtd, grouped heads (H = 4 query heads on Hkv = 2),
// dk = 20 and dv = 36 (not multiples of the 8 lanes of a row: padding
// channels), an explicit logit scale. B, T and S dynamic.
func.func @full_mask_bhtd_gqa(%q: tensor<?x4x?x20xf32>, %k: tensor<?x2x?x20xf32>,
                              %v: tensor<?x2x?x36xf32>, %beta_raw: tensor<144xf32>,
                              %lam: tensor<?x4x?x36xf32>, %gate: tensor<?x4x?x36xf32>,
                              %mask: tensor<?x?xi1>) -> tensor<?x4x?x36xf32> {
  %out = fem.mixer softmax q(%q : tensor<?x4x?x20xf32>) k(%k : tensor<?x2x?x20xf32>)
      v(%v : tensor<?x2x?x36xf32>) beta_raw(%beta_raw : tensor<144xf32>)
      lam(%lam : tensor<?x4x?x36xf32>) gate(%gate : tensor<?x4x?x36xf32>)
      mask(%mask : tensor<?x?xi1>) {layout = #fem.layout<bhtd>, scale = 0.3 : f64} -> tensor<?x4x?x36xf32>
  return %out : tensor<?x4x?x36xf32>
}
