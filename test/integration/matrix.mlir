// Kernels for the shape-matrix test (ShapeMatrixTest.cpp): every combination
// of causal x key mask x layout, with fully dynamic shapes (grouped heads come
// from the runtime extents), plus small tiles to exercise remainder handling
// and a kernel with static head sizes.

func.func @softmax_causal_nomask_bthd(%q: tensor<?x?x?x?xf32>, %k: tensor<?x?x?x?xf32>, %v: tensor<?x?x?x?xf32>, %beta_raw: tensor<?xf32>, %lam: tensor<?x?x?x?xf32>, %gate: tensor<?x?x?x?xf32>) -> tensor<?x?x?x?xf32> {
  %out = fem.mixer softmax q(%q : tensor<?x?x?x?xf32>) k(%k : tensor<?x?x?x?xf32>) v(%v : tensor<?x?x?x?xf32>)
      beta_raw(%beta_raw : tensor<?xf32>) lam(%lam : tensor<?x?x?x?xf32>) gate(%gate : tensor<?x?x?x?xf32>) {causal} -> tensor<?x?x?x?xf32>
  return %out : tensor<?x?x?x?xf32>
}

func.func @softmax_causal_nomask_bhtd(%q: tensor<?x?x?x?xf32>, %k: tensor<?x?x?x?xf32>, %v: tensor<?x?x?x?xf32>, %beta_raw: tensor<?xf32>, %lam: tensor<?x?x?x?xf32>, %gate: tensor<?x?x?x?xf32>) -> tensor<?x?x?x?xf32> {
  %out = fem.mixer softmax q(%q : tensor<?x?x?x?xf32>) k(%k : tensor<?x?x?x?xf32>) v(%v : tensor<?x?x?x?xf32>)
      beta_raw(%beta_raw : tensor<?xf32>) lam(%lam : tensor<?x?x?x?xf32>) gate(%gate : tensor<?x?x?x?xf32>) {causal, layout = #fem.layout<bhtd>} -> tensor<?x?x?x?xf32>
  return %out : tensor<?x?x?x?xf32>
}

func.func @softmax_causal_mask_bthd(%q: tensor<?x?x?x?xf32>, %k: tensor<?x?x?x?xf32>, %v: tensor<?x?x?x?xf32>, %beta_raw: tensor<?xf32>, %lam: tensor<?x?x?x?xf32>, %gate: tensor<?x?x?x?xf32>, %mask: tensor<?x?xi1>) -> tensor<?x?x?x?xf32> {
  %out = fem.mixer softmax q(%q : tensor<?x?x?x?xf32>) k(%k : tensor<?x?x?x?xf32>) v(%v : tensor<?x?x?x?xf32>)
      beta_raw(%beta_raw : tensor<?xf32>) lam(%lam : tensor<?x?x?x?xf32>) gate(%gate : tensor<?x?x?x?xf32>) mask(%mask : tensor<?x?xi1>) {causal} -> tensor<?x?x?x?xf32>
  return %out : tensor<?x?x?x?xf32>
}

func.func @softmax_causal_mask_bhtd(%q: tensor<?x?x?x?xf32>, %k: tensor<?x?x?x?xf32>, %v: tensor<?x?x?x?xf32>, %beta_raw: tensor<?xf32>, %lam: tensor<?x?x?x?xf32>, %gate: tensor<?x?x?x?xf32>, %mask: tensor<?x?xi1>) -> tensor<?x?x?x?xf32> {
  %out = fem.mixer softmax q(%q : tensor<?x?x?x?xf32>) k(%k : tensor<?x?x?x?xf32>) v(%v : tensor<?x?x?x?xf32>)
      beta_raw(%beta_raw : tensor<?xf32>) lam(%lam : tensor<?x?x?x?xf32>) gate(%gate : tensor<?x?x?x?xf32>) mask(%mask : tensor<?x?xi1>) {causal, layout = #fem.layout<bhtd>} -> tensor<?x?x?x?xf32>
  return %out : tensor<?x?x?x?xf32>
}

func.func @softmax_full_nomask_bthd(%q: tensor<?x?x?x?xf32>, %k: tensor<?x?x?x?xf32>, %v: tensor<?x?x?x?xf32>, %beta_raw: tensor<?xf32>, %lam: tensor<?x?x?x?xf32>, %gate: tensor<?x?x?x?xf32>) -> tensor<?x?x?x?xf32> {
  %out = fem.mixer softmax q(%q : tensor<?x?x?x?xf32>) k(%k : tensor<?x?x?x?xf32>) v(%v : tensor<?x?x?x?xf32>)
      beta_raw(%beta_raw : tensor<?xf32>) lam(%lam : tensor<?x?x?x?xf32>) gate(%gate : tensor<?x?x?x?xf32>) -> tensor<?x?x?x?xf32>
  return %out : tensor<?x?x?x?xf32>
}

func.func @softmax_full_nomask_bhtd(%q: tensor<?x?x?x?xf32>, %k: tensor<?x?x?x?xf32>, %v: tensor<?x?x?x?xf32>, %beta_raw: tensor<?xf32>, %lam: tensor<?x?x?x?xf32>, %gate: tensor<?x?x?x?xf32>) -> tensor<?x?x?x?xf32> {
  %out = fem.mixer softmax q(%q : tensor<?x?x?x?xf32>) k(%k : tensor<?x?x?x?xf32>) v(%v : tensor<?x?x?x?xf32>)
      beta_raw(%beta_raw : tensor<?xf32>) lam(%lam : tensor<?x?x?x?xf32>) gate(%gate : tensor<?x?x?x?xf32>) {layout = #fem.layout<bhtd>} -> tensor<?x?x?x?xf32>
  return %out : tensor<?x?x?x?xf32>
}

func.func @softmax_full_mask_bthd(%q: tensor<?x?x?x?xf32>, %k: tensor<?x?x?x?xf32>, %v: tensor<?x?x?x?xf32>, %beta_raw: tensor<?xf32>, %lam: tensor<?x?x?x?xf32>, %gate: tensor<?x?x?x?xf32>, %mask: tensor<?x?xi1>) -> tensor<?x?x?x?xf32> {
  %out = fem.mixer softmax q(%q : tensor<?x?x?x?xf32>) k(%k : tensor<?x?x?x?xf32>) v(%v : tensor<?x?x?x?xf32>)
      beta_raw(%beta_raw : tensor<?xf32>) lam(%lam : tensor<?x?x?x?xf32>) gate(%gate : tensor<?x?x?x?xf32>) mask(%mask : tensor<?x?xi1>) -> tensor<?x?x?x?xf32>
  return %out : tensor<?x?x?x?xf32>
}

func.func @softmax_full_mask_bhtd(%q: tensor<?x?x?x?xf32>, %k: tensor<?x?x?x?xf32>, %v: tensor<?x?x?x?xf32>, %beta_raw: tensor<?xf32>, %lam: tensor<?x?x?x?xf32>, %gate: tensor<?x?x?x?xf32>, %mask: tensor<?x?xi1>) -> tensor<?x?x?x?xf32> {
  %out = fem.mixer softmax q(%q : tensor<?x?x?x?xf32>) k(%k : tensor<?x?x?x?xf32>) v(%v : tensor<?x?x?x?xf32>)
      beta_raw(%beta_raw : tensor<?xf32>) lam(%lam : tensor<?x?x?x?xf32>) gate(%gate : tensor<?x?x?x?xf32>) mask(%mask : tensor<?x?xi1>) {layout = #fem.layout<bhtd>} -> tensor<?x?x?x?xf32>
  return %out : tensor<?x?x?x?xf32>
}

func.func @softmax_causal_mask_bthd_small_tiles(%q: tensor<?x?x?x?xf32>, %k: tensor<?x?x?x?xf32>, %v: tensor<?x?x?x?xf32>, %beta_raw: tensor<?xf32>, %lam: tensor<?x?x?x?xf32>, %gate: tensor<?x?x?x?xf32>, %mask: tensor<?x?xi1>) -> tensor<?x?x?x?xf32> {
  %out = fem.mixer softmax q(%q : tensor<?x?x?x?xf32>) k(%k : tensor<?x?x?x?xf32>) v(%v : tensor<?x?x?x?xf32>)
      beta_raw(%beta_raw : tensor<?xf32>) lam(%lam : tensor<?x?x?x?xf32>) gate(%gate : tensor<?x?x?x?xf32>) mask(%mask : tensor<?x?xi1>) {causal, tiles = #fem.tiles<q = 16, k = 16, vec = 8>} -> tensor<?x?x?x?xf32>
  return %out : tensor<?x?x?x?xf32>
}

func.func @softmax_full_nomask_bhtd_wide_tiles(%q: tensor<?x?x?x?xf32>, %k: tensor<?x?x?x?xf32>, %v: tensor<?x?x?x?xf32>, %beta_raw: tensor<?xf32>, %lam: tensor<?x?x?x?xf32>, %gate: tensor<?x?x?x?xf32>) -> tensor<?x?x?x?xf32> {
  %out = fem.mixer softmax q(%q : tensor<?x?x?x?xf32>) k(%k : tensor<?x?x?x?xf32>) v(%v : tensor<?x?x?x?xf32>)
      beta_raw(%beta_raw : tensor<?xf32>) lam(%lam : tensor<?x?x?x?xf32>) gate(%gate : tensor<?x?x?x?xf32>) {layout = #fem.layout<bhtd>, tiles = #fem.tiles<q = 128, k = 32, vec = 8>} -> tensor<?x?x?x?xf32>
  return %out : tensor<?x?x?x?xf32>
}

func.func @softmax_causal_static_heads(%q: tensor<?x?x4x64xf32>, %k: tensor<?x?x4x64xf32>, %v: tensor<?x?x4x64xf32>, %beta_raw: tensor<256xf32>, %lam: tensor<?x?x4x64xf32>, %gate: tensor<?x?x4x64xf32>) -> tensor<?x?x4x64xf32> {
  %out = fem.mixer softmax q(%q : tensor<?x?x4x64xf32>) k(%k : tensor<?x?x4x64xf32>) v(%v : tensor<?x?x4x64xf32>)
      beta_raw(%beta_raw : tensor<256xf32>) lam(%lam : tensor<?x?x4x64xf32>) gate(%gate : tensor<?x?x4x64xf32>) {causal} -> tensor<?x?x4x64xf32>
  return %out : tensor<?x?x4x64xf32>
}
