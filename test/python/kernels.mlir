// Kernels for the Python tests (test_femc.py): fully dynamic shapes (grouped
// heads come from the runtime extents), causal and not, with and without a
// key-padding mask, and small tiles so short sequences cross tile edges.

func.func @softmax_causal(%q: tensor<?x?x?x?xf32>, %k: tensor<?x?x?x?xf32>, %v: tensor<?x?x?x?xf32>, %beta_raw: tensor<?xf32>, %lam: tensor<?x?x?x?xf32>, %gate: tensor<?x?x?x?xf32>) -> tensor<?x?x?x?xf32> {
  %out = fem.mixer softmax q(%q : tensor<?x?x?x?xf32>) k(%k : tensor<?x?x?x?xf32>) v(%v : tensor<?x?x?x?xf32>)
      beta_raw(%beta_raw : tensor<?xf32>) lam(%lam : tensor<?x?x?x?xf32>) gate(%gate : tensor<?x?x?x?xf32>) {causal, tiles = #fem.tiles<q = 16, k = 16, vec = 8>} -> tensor<?x?x?x?xf32>
  return %out : tensor<?x?x?x?xf32>
}

func.func @softmax_full_mask(%q: tensor<?x?x?x?xf32>, %k: tensor<?x?x?x?xf32>, %v: tensor<?x?x?x?xf32>, %beta_raw: tensor<?xf32>, %lam: tensor<?x?x?x?xf32>, %gate: tensor<?x?x?x?xf32>, %mask: tensor<?x?xi1>) -> tensor<?x?x?x?xf32> {
  %out = fem.mixer softmax q(%q : tensor<?x?x?x?xf32>) k(%k : tensor<?x?x?x?xf32>) v(%v : tensor<?x?x?x?xf32>)
      beta_raw(%beta_raw : tensor<?xf32>) lam(%lam : tensor<?x?x?x?xf32>) gate(%gate : tensor<?x?x?x?xf32>) mask(%mask : tensor<?x?xi1>) {tiles = #fem.tiles<q = 16, k = 16, vec = 8>} -> tensor<?x?x?x?xf32>
  return %out : tensor<?x?x?x?xf32>
}
