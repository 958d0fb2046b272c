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

// Numerics at the limits (ShapeMatrixTest.cpp, "Limits"): each accepted end of
// the cap, eps and scale ranges (docs/dialect.md, "Attribute ranges"), alone
// and together, at both vector widths with the vector width pinned in the
// tiles (16 lanes run as two 8-lane halves on AVX2 hosts).

func.func @softmax_limits_default_vec8(%q: tensor<?x?x?x?xf32>, %k: tensor<?x?x?x?xf32>, %v: tensor<?x?x?x?xf32>, %beta_raw: tensor<?xf32>, %lam: tensor<?x?x?x?xf32>, %gate: tensor<?x?x?x?xf32>) -> tensor<?x?x?x?xf32> {
  %out = fem.mixer softmax q(%q : tensor<?x?x?x?xf32>) k(%k : tensor<?x?x?x?xf32>) v(%v : tensor<?x?x?x?xf32>)
      beta_raw(%beta_raw : tensor<?xf32>) lam(%lam : tensor<?x?x?x?xf32>) gate(%gate : tensor<?x?x?x?xf32>) {causal, tiles = #fem.tiles<q = 48, k = 32, vec = 8>} -> tensor<?x?x?x?xf32>
  return %out : tensor<?x?x?x?xf32>
}

func.func @softmax_limits_default_vec16(%q: tensor<?x?x?x?xf32>, %k: tensor<?x?x?x?xf32>, %v: tensor<?x?x?x?xf32>, %beta_raw: tensor<?xf32>, %lam: tensor<?x?x?x?xf32>, %gate: tensor<?x?x?x?xf32>) -> tensor<?x?x?x?xf32> {
  %out = fem.mixer softmax q(%q : tensor<?x?x?x?xf32>) k(%k : tensor<?x?x?x?xf32>) v(%v : tensor<?x?x?x?xf32>)
      beta_raw(%beta_raw : tensor<?xf32>) lam(%lam : tensor<?x?x?x?xf32>) gate(%gate : tensor<?x?x?x?xf32>) {causal, tiles = #fem.tiles<q = 64, k = 32, vec = 16>} -> tensor<?x?x?x?xf32>
  return %out : tensor<?x?x?x?xf32>
}

func.func @softmax_limits_cap_min_vec8(%q: tensor<?x?x?x?xf32>, %k: tensor<?x?x?x?xf32>, %v: tensor<?x?x?x?xf32>, %beta_raw: tensor<?xf32>, %lam: tensor<?x?x?x?xf32>, %gate: tensor<?x?x?x?xf32>) -> tensor<?x?x?x?xf32> {
  %out = fem.mixer softmax q(%q : tensor<?x?x?x?xf32>) k(%k : tensor<?x?x?x?xf32>) v(%v : tensor<?x?x?x?xf32>)
      beta_raw(%beta_raw : tensor<?xf32>) lam(%lam : tensor<?x?x?x?xf32>) gate(%gate : tensor<?x?x?x?xf32>) {causal, cap = 1.0e-05 : f64, tiles = #fem.tiles<q = 48, k = 32, vec = 8>} -> tensor<?x?x?x?xf32>
  return %out : tensor<?x?x?x?xf32>
}

func.func @softmax_limits_cap_min_vec16(%q: tensor<?x?x?x?xf32>, %k: tensor<?x?x?x?xf32>, %v: tensor<?x?x?x?xf32>, %beta_raw: tensor<?xf32>, %lam: tensor<?x?x?x?xf32>, %gate: tensor<?x?x?x?xf32>) -> tensor<?x?x?x?xf32> {
  %out = fem.mixer softmax q(%q : tensor<?x?x?x?xf32>) k(%k : tensor<?x?x?x?xf32>) v(%v : tensor<?x?x?x?xf32>)
      beta_raw(%beta_raw : tensor<?xf32>) lam(%lam : tensor<?x?x?x?xf32>) gate(%gate : tensor<?x?x?x?xf32>) {causal, cap = 1.0e-05 : f64, tiles = #fem.tiles<q = 64, k = 32, vec = 16>} -> tensor<?x?x?x?xf32>
  return %out : tensor<?x?x?x?xf32>
}

func.func @softmax_limits_cap_max_vec8(%q: tensor<?x?x?x?xf32>, %k: tensor<?x?x?x?xf32>, %v: tensor<?x?x?x?xf32>, %beta_raw: tensor<?xf32>, %lam: tensor<?x?x?x?xf32>, %gate: tensor<?x?x?x?xf32>) -> tensor<?x?x?x?xf32> {
  %out = fem.mixer softmax q(%q : tensor<?x?x?x?xf32>) k(%k : tensor<?x?x?x?xf32>) v(%v : tensor<?x?x?x?xf32>)
      beta_raw(%beta_raw : tensor<?xf32>) lam(%lam : tensor<?x?x?x?xf32>) gate(%gate : tensor<?x?x?x?xf32>) {causal, cap = 43.0 : f64, tiles = #fem.tiles<q = 48, k = 32, vec = 8>} -> tensor<?x?x?x?xf32>
  return %out : tensor<?x?x?x?xf32>
}

func.func @softmax_limits_cap_max_vec16(%q: tensor<?x?x?x?xf32>, %k: tensor<?x?x?x?xf32>, %v: tensor<?x?x?x?xf32>, %beta_raw: tensor<?xf32>, %lam: tensor<?x?x?x?xf32>, %gate: tensor<?x?x?x?xf32>) -> tensor<?x?x?x?xf32> {
  %out = fem.mixer softmax q(%q : tensor<?x?x?x?xf32>) k(%k : tensor<?x?x?x?xf32>) v(%v : tensor<?x?x?x?xf32>)
      beta_raw(%beta_raw : tensor<?xf32>) lam(%lam : tensor<?x?x?x?xf32>) gate(%gate : tensor<?x?x?x?xf32>) {causal, cap = 43.0 : f64, tiles = #fem.tiles<q = 64, k = 32, vec = 16>} -> tensor<?x?x?x?xf32>
  return %out : tensor<?x?x?x?xf32>
}

func.func @softmax_limits_eps_min_vec8(%q: tensor<?x?x?x?xf32>, %k: tensor<?x?x?x?xf32>, %v: tensor<?x?x?x?xf32>, %beta_raw: tensor<?xf32>, %lam: tensor<?x?x?x?xf32>, %gate: tensor<?x?x?x?xf32>) -> tensor<?x?x?x?xf32> {
  %out = fem.mixer softmax q(%q : tensor<?x?x?x?xf32>) k(%k : tensor<?x?x?x?xf32>) v(%v : tensor<?x?x?x?xf32>)
      beta_raw(%beta_raw : tensor<?xf32>) lam(%lam : tensor<?x?x?x?xf32>) gate(%gate : tensor<?x?x?x?xf32>) {causal, eps = 1.0e-30 : f64, tiles = #fem.tiles<q = 48, k = 32, vec = 8>} -> tensor<?x?x?x?xf32>
  return %out : tensor<?x?x?x?xf32>
}

func.func @softmax_limits_eps_min_vec16(%q: tensor<?x?x?x?xf32>, %k: tensor<?x?x?x?xf32>, %v: tensor<?x?x?x?xf32>, %beta_raw: tensor<?xf32>, %lam: tensor<?x?x?x?xf32>, %gate: tensor<?x?x?x?xf32>) -> tensor<?x?x?x?xf32> {
  %out = fem.mixer softmax q(%q : tensor<?x?x?x?xf32>) k(%k : tensor<?x?x?x?xf32>) v(%v : tensor<?x?x?x?xf32>)
      beta_raw(%beta_raw : tensor<?xf32>) lam(%lam : tensor<?x?x?x?xf32>) gate(%gate : tensor<?x?x?x?xf32>) {causal, eps = 1.0e-30 : f64, tiles = #fem.tiles<q = 64, k = 32, vec = 16>} -> tensor<?x?x?x?xf32>
  return %out : tensor<?x?x?x?xf32>
}

func.func @softmax_limits_eps_max_vec8(%q: tensor<?x?x?x?xf32>, %k: tensor<?x?x?x?xf32>, %v: tensor<?x?x?x?xf32>, %beta_raw: tensor<?xf32>, %lam: tensor<?x?x?x?xf32>, %gate: tensor<?x?x?x?xf32>) -> tensor<?x?x?x?xf32> {
  %out = fem.mixer softmax q(%q : tensor<?x?x?x?xf32>) k(%k : tensor<?x?x?x?xf32>) v(%v : tensor<?x?x?x?xf32>)
      beta_raw(%beta_raw : tensor<?xf32>) lam(%lam : tensor<?x?x?x?xf32>) gate(%gate : tensor<?x?x?x?xf32>) {causal, eps = 1.0e+30 : f64, tiles = #fem.tiles<q = 48, k = 32, vec = 8>} -> tensor<?x?x?x?xf32>
  return %out : tensor<?x?x?x?xf32>
}

func.func @softmax_limits_eps_max_vec16(%q: tensor<?x?x?x?xf32>, %k: tensor<?x?x?x?xf32>, %v: tensor<?x?x?x?xf32>, %beta_raw: tensor<?xf32>, %lam: tensor<?x?x?x?xf32>, %gate: tensor<?x?x?x?xf32>) -> tensor<?x?x?x?xf32> {
  %out = fem.mixer softmax q(%q : tensor<?x?x?x?xf32>) k(%k : tensor<?x?x?x?xf32>) v(%v : tensor<?x?x?x?xf32>)
      beta_raw(%beta_raw : tensor<?xf32>) lam(%lam : tensor<?x?x?x?xf32>) gate(%gate : tensor<?x?x?x?xf32>) {causal, eps = 1.0e+30 : f64, tiles = #fem.tiles<q = 64, k = 32, vec = 16>} -> tensor<?x?x?x?xf32>
  return %out : tensor<?x?x?x?xf32>
}

func.func @softmax_limits_scale_min_vec8(%q: tensor<?x?x?x?xf32>, %k: tensor<?x?x?x?xf32>, %v: tensor<?x?x?x?xf32>, %beta_raw: tensor<?xf32>, %lam: tensor<?x?x?x?xf32>, %gate: tensor<?x?x?x?xf32>) -> tensor<?x?x?x?xf32> {
  %out = fem.mixer softmax q(%q : tensor<?x?x?x?xf32>) k(%k : tensor<?x?x?x?xf32>) v(%v : tensor<?x?x?x?xf32>)
      beta_raw(%beta_raw : tensor<?xf32>) lam(%lam : tensor<?x?x?x?xf32>) gate(%gate : tensor<?x?x?x?xf32>) {causal, scale = 1.17549435e-38 : f64, tiles = #fem.tiles<q = 48, k = 32, vec = 8>} -> tensor<?x?x?x?xf32>
  return %out : tensor<?x?x?x?xf32>
}

func.func @softmax_limits_scale_min_vec16(%q: tensor<?x?x?x?xf32>, %k: tensor<?x?x?x?xf32>, %v: tensor<?x?x?x?xf32>, %beta_raw: tensor<?xf32>, %lam: tensor<?x?x?x?xf32>, %gate: tensor<?x?x?x?xf32>) -> tensor<?x?x?x?xf32> {
  %out = fem.mixer softmax q(%q : tensor<?x?x?x?xf32>) k(%k : tensor<?x?x?x?xf32>) v(%v : tensor<?x?x?x?xf32>)
      beta_raw(%beta_raw : tensor<?xf32>) lam(%lam : tensor<?x?x?x?xf32>) gate(%gate : tensor<?x?x?x?xf32>) {causal, scale = 1.17549435e-38 : f64, tiles = #fem.tiles<q = 64, k = 32, vec = 16>} -> tensor<?x?x?x?xf32>
  return %out : tensor<?x?x?x?xf32>
}

func.func @softmax_limits_scale_max_vec8(%q: tensor<?x?x?x?xf32>, %k: tensor<?x?x?x?xf32>, %v: tensor<?x?x?x?xf32>, %beta_raw: tensor<?xf32>, %lam: tensor<?x?x?x?xf32>, %gate: tensor<?x?x?x?xf32>) -> tensor<?x?x?x?xf32> {
  %out = fem.mixer softmax q(%q : tensor<?x?x?x?xf32>) k(%k : tensor<?x?x?x?xf32>) v(%v : tensor<?x?x?x?xf32>)
      beta_raw(%beta_raw : tensor<?xf32>) lam(%lam : tensor<?x?x?x?xf32>) gate(%gate : tensor<?x?x?x?xf32>) {causal, scale = 3.40282347e+38 : f64, tiles = #fem.tiles<q = 48, k = 32, vec = 8>} -> tensor<?x?x?x?xf32>
  return %out : tensor<?x?x?x?xf32>
}

func.func @softmax_limits_scale_max_vec16(%q: tensor<?x?x?x?xf32>, %k: tensor<?x?x?x?xf32>, %v: tensor<?x?x?x?xf32>, %beta_raw: tensor<?xf32>, %lam: tensor<?x?x?x?xf32>, %gate: tensor<?x?x?x?xf32>) -> tensor<?x?x?x?xf32> {
  %out = fem.mixer softmax q(%q : tensor<?x?x?x?xf32>) k(%k : tensor<?x?x?x?xf32>) v(%v : tensor<?x?x?x?xf32>)
      beta_raw(%beta_raw : tensor<?xf32>) lam(%lam : tensor<?x?x?x?xf32>) gate(%gate : tensor<?x?x?x?xf32>) {causal, scale = 3.40282347e+38 : f64, tiles = #fem.tiles<q = 64, k = 32, vec = 16>} -> tensor<?x?x?x?xf32>
  return %out : tensor<?x?x?x?xf32>
}

func.func @softmax_limits_all_min_vec8(%q: tensor<?x?x?x?xf32>, %k: tensor<?x?x?x?xf32>, %v: tensor<?x?x?x?xf32>, %beta_raw: tensor<?xf32>, %lam: tensor<?x?x?x?xf32>, %gate: tensor<?x?x?x?xf32>) -> tensor<?x?x?x?xf32> {
  %out = fem.mixer softmax q(%q : tensor<?x?x?x?xf32>) k(%k : tensor<?x?x?x?xf32>) v(%v : tensor<?x?x?x?xf32>)
      beta_raw(%beta_raw : tensor<?xf32>) lam(%lam : tensor<?x?x?x?xf32>) gate(%gate : tensor<?x?x?x?xf32>) {causal, cap = 1.0e-05 : f64, eps = 1.0e-30 : f64, scale = 1.17549435e-38 : f64, tiles = #fem.tiles<q = 48, k = 32, vec = 8>} -> tensor<?x?x?x?xf32>
  return %out : tensor<?x?x?x?xf32>
}

func.func @softmax_limits_all_min_vec16(%q: tensor<?x?x?x?xf32>, %k: tensor<?x?x?x?xf32>, %v: tensor<?x?x?x?xf32>, %beta_raw: tensor<?xf32>, %lam: tensor<?x?x?x?xf32>, %gate: tensor<?x?x?x?xf32>) -> tensor<?x?x?x?xf32> {
  %out = fem.mixer softmax q(%q : tensor<?x?x?x?xf32>) k(%k : tensor<?x?x?x?xf32>) v(%v : tensor<?x?x?x?xf32>)
      beta_raw(%beta_raw : tensor<?xf32>) lam(%lam : tensor<?x?x?x?xf32>) gate(%gate : tensor<?x?x?x?xf32>) {causal, cap = 1.0e-05 : f64, eps = 1.0e-30 : f64, scale = 1.17549435e-38 : f64, tiles = #fem.tiles<q = 64, k = 32, vec = 16>} -> tensor<?x?x?x?xf32>
  return %out : tensor<?x?x?x?xf32>
}

func.func @softmax_limits_all_max_vec8(%q: tensor<?x?x?x?xf32>, %k: tensor<?x?x?x?xf32>, %v: tensor<?x?x?x?xf32>, %beta_raw: tensor<?xf32>, %lam: tensor<?x?x?x?xf32>, %gate: tensor<?x?x?x?xf32>) -> tensor<?x?x?x?xf32> {
  %out = fem.mixer softmax q(%q : tensor<?x?x?x?xf32>) k(%k : tensor<?x?x?x?xf32>) v(%v : tensor<?x?x?x?xf32>)
      beta_raw(%beta_raw : tensor<?xf32>) lam(%lam : tensor<?x?x?x?xf32>) gate(%gate : tensor<?x?x?x?xf32>) {causal, cap = 43.0 : f64, eps = 1.0e+30 : f64, scale = 3.40282347e+38 : f64, tiles = #fem.tiles<q = 48, k = 32, vec = 8>} -> tensor<?x?x?x?xf32>
  return %out : tensor<?x?x?x?xf32>
}

func.func @softmax_limits_all_max_vec16(%q: tensor<?x?x?x?xf32>, %k: tensor<?x?x?x?xf32>, %v: tensor<?x?x?x?xf32>, %beta_raw: tensor<?xf32>, %lam: tensor<?x?x?x?xf32>, %gate: tensor<?x?x?x?xf32>) -> tensor<?x?x?x?xf32> {
  %out = fem.mixer softmax q(%q : tensor<?x?x?x?xf32>) k(%k : tensor<?x?x?x?xf32>) v(%v : tensor<?x?x?x?xf32>)
      beta_raw(%beta_raw : tensor<?xf32>) lam(%lam : tensor<?x?x?x?xf32>) gate(%gate : tensor<?x?x?x?xf32>) {causal, cap = 43.0 : f64, eps = 1.0e+30 : f64, scale = 3.40282347e+38 : f64, tiles = #fem.tiles<q = 64, k = 32, vec = 16>} -> tensor<?x?x?x?xf32>
  return %out : tensor<?x?x?x?xf32>
}
