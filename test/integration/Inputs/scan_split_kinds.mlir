// Kernels for femc-scan-split.test: one a launch may split along its
// sequence, and the three kinds femc never splits (docs/architecture.md,
// "Both cores at B = H = 1").

// Splits: T dynamic, dk static (the segment states' width Ks = 4 + 3 dk).
func.func @splits(%q: tensor<?x?x?x8xf32>, %k: tensor<?x?x?x8xf32>, %v: tensor<?x?x?x?xf32>, %beta_raw: tensor<?xf32>, %lam: tensor<?x?x?x?xf32>, %gate: tensor<?x?x?x?xf32>) -> tensor<?x?x?x?xf32> {
  %out = fem.mixer linear q(%q : tensor<?x?x?x8xf32>) k(%k : tensor<?x?x?x8xf32>) v(%v : tensor<?x?x?x?xf32>) beta_raw(%beta_raw : tensor<?xf32>) lam(%lam : tensor<?x?x?x?xf32>) gate(%gate : tensor<?x?x?x?xf32>) {causal, tiles = #fem.tiles<q = 16, k = 8, vec = 8>} -> tensor<?x?x?x?xf32>
  return %out : tensor<?x?x?x?xf32>
}

// A static sequence length: segments would need other lengths.
func.func @static_len(%q: tensor<1x64x1x8xf32>, %k: tensor<1x64x1x8xf32>, %v: tensor<1x64x1x8xf32>, %beta_raw: tensor<8xf32>, %lam: tensor<1x64x1x8xf32>, %gate: tensor<1x64x1x8xf32>) -> tensor<1x64x1x8xf32> {
  %out = fem.mixer linear q(%q : tensor<1x64x1x8xf32>) k(%k : tensor<1x64x1x8xf32>) v(%v : tensor<1x64x1x8xf32>) beta_raw(%beta_raw : tensor<8xf32>) lam(%lam : tensor<1x64x1x8xf32>) gate(%gate : tensor<1x64x1x8xf32>) {causal} -> tensor<1x64x1x8xf32>
  return %out : tensor<1x64x1x8xf32>
}

// A dynamic dk: the glue could not size the segment states.
func.func @dynamic_dk(%q: tensor<?x?x?x?xf32>, %k: tensor<?x?x?x?xf32>, %v: tensor<?x?x?x?xf32>, %beta_raw: tensor<?xf32>, %lam: tensor<?x?x?x?xf32>, %gate: tensor<?x?x?x?xf32>) -> tensor<?x?x?x?xf32> {
  %out = fem.mixer linear q(%q : tensor<?x?x?x?xf32>) k(%k : tensor<?x?x?x?xf32>) v(%v : tensor<?x?x?x?xf32>) beta_raw(%beta_raw : tensor<?xf32>) lam(%lam : tensor<?x?x?x?xf32>) gate(%gate : tensor<?x?x?x?xf32>) {causal} -> tensor<?x?x?x?xf32>
  return %out : tensor<?x?x?x?xf32>
}

// Softmax is not a scan: no split entry at all.
func.func @softmax(%q: tensor<?x?x?x8xf32>, %k: tensor<?x?x?x8xf32>, %v: tensor<?x?x?x8xf32>, %beta_raw: tensor<?xf32>, %lam: tensor<?x?x?x8xf32>, %gate: tensor<?x?x?x8xf32>) -> tensor<?x?x?x8xf32> {
  %out = fem.mixer softmax q(%q : tensor<?x?x?x8xf32>) k(%k : tensor<?x?x?x8xf32>) v(%v : tensor<?x?x?x8xf32>) beta_raw(%beta_raw : tensor<?xf32>) lam(%lam : tensor<?x?x?x8xf32>) gate(%gate : tensor<?x?x?x8xf32>) {causal} -> tensor<?x?x?x8xf32>
  return %out : tensor<?x?x?x8xf32>
}

// Splits in layout bhtd (the views narrow axis 2), gla's phase 0 reading
// decay as (B, H, T).
func.func @gla_bhtd(%q: tensor<?x?x?x8xf32>, %k: tensor<?x?x?x8xf32>, %v: tensor<?x?x?x?xf32>, %beta_raw: tensor<?xf32>, %lam: tensor<?x?x?x?xf32>, %gate: tensor<?x?x?x?xf32>, %decay: tensor<?x?x?xf32>) -> tensor<?x?x?x?xf32> {
  %out = fem.mixer gla q(%q : tensor<?x?x?x8xf32>) k(%k : tensor<?x?x?x8xf32>) v(%v : tensor<?x?x?x?xf32>) beta_raw(%beta_raw : tensor<?xf32>) lam(%lam : tensor<?x?x?x?xf32>) gate(%gate : tensor<?x?x?x?xf32>) decay(%decay : tensor<?x?x?xf32>) {layout = #fem.layout<bhtd>, tiles = #fem.tiles<q = 16, k = 8, vec = 8>} -> tensor<?x?x?x?xf32>
  return %out : tensor<?x?x?x?xf32>
}

// Not causal, keys (S) apart from rows (T): segments cut both.
func.func @linear_full(%q: tensor<?x?x?x8xf32>, %k: tensor<?x?x?x8xf32>, %v: tensor<?x?x?x?xf32>, %beta_raw: tensor<?xf32>, %lam: tensor<?x?x?x?xf32>, %gate: tensor<?x?x?x?xf32>) -> tensor<?x?x?x?xf32> {
  %out = fem.mixer linear q(%q : tensor<?x?x?x8xf32>) k(%k : tensor<?x?x?x8xf32>) v(%v : tensor<?x?x?x?xf32>) beta_raw(%beta_raw : tensor<?xf32>) lam(%lam : tensor<?x?x?x?xf32>) gate(%gate : tensor<?x?x?x?xf32>) {tiles = #fem.tiles<q = 16, k = 8, vec = 8>} -> tensor<?x?x?x?xf32>
  return %out : tensor<?x?x?x?xf32>
}
