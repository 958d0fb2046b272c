// Causal with a key mask, bthd, grouped heads (H = 4 on Hkv = 2),
// dk = dv = 256: the largest head width, the 8-key shared-memory tile.
func.func @causal_mask_gqa_d256(%q: tensor<?x?x4x256xf32>, %k: tensor<?x?x2x256xf32>,
                                %v: tensor<?x?x2x256xf32>, %beta_raw: tensor<1024xf32>,
                                %lam: tensor<?x?x4x256xf32>, %gate: tensor<?x?x4x256xf32>,
                                %mask: tensor<?x?xi1>) -> tensor<?x?x4x256xf32> {
  %out = fem.mixer softmax q(%q : tensor<?x?x4x256xf32>) k(%k : tensor<?x?x2x256xf32>)
      v(%v : tensor<?x?x2x256xf32>) beta_raw(%beta_raw : tensor<1024xf32>)
      lam(%lam : tensor<?x?x4x256xf32>) gate(%gate : tensor<?x?x4x256xf32>)
      mask(%mask : tensor<?x?xi1>) {causal} -> tensor<?x?x4x256xf32>
  return %out : tensor<?x?x4x256xf32>
}
