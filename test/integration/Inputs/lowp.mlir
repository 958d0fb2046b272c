// Kernels for the low-precision matrix test (LowPrecisionMatrixTest.cpp):
// every prior with f16 and with bf16 storage (all float operands and the
// output share the type), fully dynamic shapes, causal and not, key masks,
// both layouts and small tiles (several tiles, chunks and channel blocks).
// Generated once from the f32 kernels of matrix.mlir and priors.mlir.

func.func @softmax_causal_bf16(%q: tensor<?x?x?x?xbf16>, %k: tensor<?x?x?x?xbf16>, %v: tensor<?x?x?x?xbf16>, %beta_raw: tensor<?xbf16>, %lam: tensor<?x?x?x?xbf16>, %gate: tensor<?x?x?x?xbf16>) -> tensor<?x?x?x?xbf16> {
  %out = fem.mixer softmax q(%q : tensor<?x?x?x?xbf16>) k(%k : tensor<?x?x?x?xbf16>) v(%v : tensor<?x?x?x?xbf16>)
      beta_raw(%beta_raw : tensor<?xbf16>) lam(%lam : tensor<?x?x?x?xbf16>) gate(%gate : tensor<?x?x?x?xbf16>) {causal} -> tensor<?x?x?x?xbf16>
  return %out : tensor<?x?x?x?xbf16>
}

func.func @softmax_full_bf16(%q: tensor<?x?x?x?xbf16>, %k: tensor<?x?x?x?xbf16>, %v: tensor<?x?x?x?xbf16>, %beta_raw: tensor<?xbf16>, %lam: tensor<?x?x?x?xbf16>, %gate: tensor<?x?x?x?xbf16>) -> tensor<?x?x?x?xbf16> {
  %out = fem.mixer softmax q(%q : tensor<?x?x?x?xbf16>) k(%k : tensor<?x?x?x?xbf16>) v(%v : tensor<?x?x?x?xbf16>)
      beta_raw(%beta_raw : tensor<?xbf16>) lam(%lam : tensor<?x?x?x?xbf16>) gate(%gate : tensor<?x?x?x?xbf16>) -> tensor<?x?x?x?xbf16>
  return %out : tensor<?x?x?x?xbf16>
}

func.func @softmax_causal_mask_bf16(%q: tensor<?x?x?x?xbf16>, %k: tensor<?x?x?x?xbf16>, %v: tensor<?x?x?x?xbf16>, %beta_raw: tensor<?xbf16>, %lam: tensor<?x?x?x?xbf16>, %gate: tensor<?x?x?x?xbf16>, %mask: tensor<?x?xi1>) -> tensor<?x?x?x?xbf16> {
  %out = fem.mixer softmax q(%q : tensor<?x?x?x?xbf16>) k(%k : tensor<?x?x?x?xbf16>) v(%v : tensor<?x?x?x?xbf16>)
      beta_raw(%beta_raw : tensor<?xbf16>) lam(%lam : tensor<?x?x?x?xbf16>) gate(%gate : tensor<?x?x?x?xbf16>) mask(%mask : tensor<?x?xi1>) {causal} -> tensor<?x?x?x?xbf16>
  return %out : tensor<?x?x?x?xbf16>
}

func.func @softmax_full_mask_bhtd_small_bf16(%q: tensor<?x?x?x?xbf16>, %k: tensor<?x?x?x?xbf16>, %v: tensor<?x?x?x?xbf16>, %beta_raw: tensor<?xbf16>, %lam: tensor<?x?x?x?xbf16>, %gate: tensor<?x?x?x?xbf16>, %mask: tensor<?x?xi1>) -> tensor<?x?x?x?xbf16> {
  %out = fem.mixer softmax q(%q : tensor<?x?x?x?xbf16>) k(%k : tensor<?x?x?x?xbf16>) v(%v : tensor<?x?x?x?xbf16>)
      beta_raw(%beta_raw : tensor<?xbf16>) lam(%lam : tensor<?x?x?x?xbf16>) gate(%gate : tensor<?x?x?x?xbf16>) mask(%mask : tensor<?x?xi1>) {layout = #fem.layout<bhtd>, tiles = #fem.tiles<q = 32, k = 32, vec = 8>} -> tensor<?x?x?x?xbf16>
  return %out : tensor<?x?x?x?xbf16>
}

func.func @linear_causal_bf16(%q: tensor<?x?x?x?xbf16>, %k: tensor<?x?x?x?xbf16>, %v: tensor<?x?x?x?xbf16>, %beta_raw: tensor<?xbf16>, %lam: tensor<?x?x?x?xbf16>, %gate: tensor<?x?x?x?xbf16>) -> tensor<?x?x?x?xbf16> {
  %out = fem.mixer linear q(%q : tensor<?x?x?x?xbf16>) k(%k : tensor<?x?x?x?xbf16>) v(%v : tensor<?x?x?x?xbf16>) beta_raw(%beta_raw : tensor<?xbf16>) lam(%lam : tensor<?x?x?x?xbf16>) gate(%gate : tensor<?x?x?x?xbf16>) {causal} -> tensor<?x?x?x?xbf16>
  return %out : tensor<?x?x?x?xbf16>
}

func.func @linear_full_mask_bf16(%q: tensor<?x?x?x?xbf16>, %k: tensor<?x?x?x?xbf16>, %v: tensor<?x?x?x?xbf16>, %beta_raw: tensor<?xbf16>, %lam: tensor<?x?x?x?xbf16>, %gate: tensor<?x?x?x?xbf16>, %mask: tensor<?x?xi1>) -> tensor<?x?x?x?xbf16> {
  %out = fem.mixer linear q(%q : tensor<?x?x?x?xbf16>) k(%k : tensor<?x?x?x?xbf16>) v(%v : tensor<?x?x?x?xbf16>) beta_raw(%beta_raw : tensor<?xbf16>) lam(%lam : tensor<?x?x?x?xbf16>) gate(%gate : tensor<?x?x?x?xbf16>) mask(%mask : tensor<?x?xi1>) -> tensor<?x?x?x?xbf16>
  return %out : tensor<?x?x?x?xbf16>
}

func.func @linear_causal_bhtd_small_bf16(%q: tensor<?x?x?x?xbf16>, %k: tensor<?x?x?x?xbf16>, %v: tensor<?x?x?x?xbf16>, %beta_raw: tensor<?xbf16>, %lam: tensor<?x?x?x?xbf16>, %gate: tensor<?x?x?x?xbf16>) -> tensor<?x?x?x?xbf16> {
  %out = fem.mixer linear q(%q : tensor<?x?x?x?xbf16>) k(%k : tensor<?x?x?x?xbf16>) v(%v : tensor<?x?x?x?xbf16>) beta_raw(%beta_raw : tensor<?xbf16>) lam(%lam : tensor<?x?x?x?xbf16>) gate(%gate : tensor<?x?x?x?xbf16>) {causal, layout = #fem.layout<bhtd>, tiles = #fem.tiles<q = 16, k = 8, vec = 8>} -> tensor<?x?x?x?xbf16>
  return %out : tensor<?x?x?x?xbf16>
}

func.func @gla_bf16(%q: tensor<?x?x?x?xbf16>, %k: tensor<?x?x?x?xbf16>, %v: tensor<?x?x?x?xbf16>, %beta_raw: tensor<?xbf16>, %lam: tensor<?x?x?x?xbf16>, %gate: tensor<?x?x?x?xbf16>, %decay: tensor<?x?x?xbf16>) -> tensor<?x?x?x?xbf16> {
  %out = fem.mixer gla q(%q : tensor<?x?x?x?xbf16>) k(%k : tensor<?x?x?x?xbf16>) v(%v : tensor<?x?x?x?xbf16>) beta_raw(%beta_raw : tensor<?xbf16>) lam(%lam : tensor<?x?x?x?xbf16>) gate(%gate : tensor<?x?x?x?xbf16>) decay(%decay : tensor<?x?x?xbf16>) -> tensor<?x?x?x?xbf16>
  return %out : tensor<?x?x?x?xbf16>
}

func.func @gla_small_bf16(%q: tensor<?x?x?x?xbf16>, %k: tensor<?x?x?x?xbf16>, %v: tensor<?x?x?x?xbf16>, %beta_raw: tensor<?xbf16>, %lam: tensor<?x?x?x?xbf16>, %gate: tensor<?x?x?x?xbf16>, %decay: tensor<?x?x?xbf16>) -> tensor<?x?x?x?xbf16> {
  %out = fem.mixer gla q(%q : tensor<?x?x?x?xbf16>) k(%k : tensor<?x?x?x?xbf16>) v(%v : tensor<?x?x?x?xbf16>) beta_raw(%beta_raw : tensor<?xbf16>) lam(%lam : tensor<?x?x?x?xbf16>) gate(%gate : tensor<?x?x?x?xbf16>) decay(%decay : tensor<?x?x?xbf16>) {tiles = #fem.tiles<q = 16, k = 8, vec = 8>} -> tensor<?x?x?x?xbf16>
  return %out : tensor<?x?x?x?xbf16>
}

func.func @aft_bf16(%q: tensor<?x?x?x?xbf16>, %k: tensor<?x?x?x?xbf16>, %v: tensor<?x?x?x?xbf16>, %beta_raw: tensor<?xbf16>, %lam: tensor<?x?x?x?xbf16>, %gate: tensor<?x?x?x?xbf16>) -> tensor<?x?x?x?xbf16> {
  %out = fem.mixer aft q(%q : tensor<?x?x?x?xbf16>) k(%k : tensor<?x?x?x?xbf16>) v(%v : tensor<?x?x?x?xbf16>) beta_raw(%beta_raw : tensor<?xbf16>) lam(%lam : tensor<?x?x?x?xbf16>) gate(%gate : tensor<?x?x?x?xbf16>) -> tensor<?x?x?x?xbf16>
  return %out : tensor<?x?x?x?xbf16>
}

func.func @aft_small_bhtd_bf16(%q: tensor<?x?x?x?xbf16>, %k: tensor<?x?x?x?xbf16>, %v: tensor<?x?x?x?xbf16>, %beta_raw: tensor<?xbf16>, %lam: tensor<?x?x?x?xbf16>, %gate: tensor<?x?x?x?xbf16>) -> tensor<?x?x?x?xbf16> {
  %out = fem.mixer aft q(%q : tensor<?x?x?x?xbf16>) k(%k : tensor<?x?x?x?xbf16>) v(%v : tensor<?x?x?x?xbf16>) beta_raw(%beta_raw : tensor<?xbf16>) lam(%lam : tensor<?x?x?x?xbf16>) gate(%gate : tensor<?x?x?x?xbf16>) {layout = #fem.layout<bhtd>, tiles = #fem.tiles<q = 8, k = 8, vec = 8>} -> tensor<?x?x?x?xbf16>
  return %out : tensor<?x?x?x?xbf16>
}

func.func @ssm_bf16(%v: tensor<?x?x?x?xbf16>, %beta_raw: tensor<?xbf16>, %lam: tensor<?x?x?x?xbf16>, %gate: tensor<?x?x?x?xbf16>, %delta: tensor<?x?x?xbf16>, %A: tensor<?x?xbf16>, %Bs: tensor<?x?x?xbf16>, %Cs: tensor<?x?x?xbf16>, %D: tensor<?xbf16>) -> tensor<?x?x?x?xbf16> {
  %out = fem.mixer ssm v(%v : tensor<?x?x?x?xbf16>) beta_raw(%beta_raw : tensor<?xbf16>) lam(%lam : tensor<?x?x?x?xbf16>) gate(%gate : tensor<?x?x?x?xbf16>) delta(%delta : tensor<?x?x?xbf16>) A(%A : tensor<?x?xbf16>) Bs(%Bs : tensor<?x?x?xbf16>) Cs(%Cs : tensor<?x?x?xbf16>) D(%D : tensor<?xbf16>) -> tensor<?x?x?x?xbf16>
  return %out : tensor<?x?x?x?xbf16>
}

func.func @ssm_small_bf16(%v: tensor<?x?x?x?xbf16>, %beta_raw: tensor<?xbf16>, %lam: tensor<?x?x?x?xbf16>, %gate: tensor<?x?x?x?xbf16>, %delta: tensor<?x?x?xbf16>, %A: tensor<?x?xbf16>, %Bs: tensor<?x?x?xbf16>, %Cs: tensor<?x?x?xbf16>, %D: tensor<?xbf16>) -> tensor<?x?x?x?xbf16> {
  %out = fem.mixer ssm v(%v : tensor<?x?x?x?xbf16>) beta_raw(%beta_raw : tensor<?xbf16>) lam(%lam : tensor<?x?x?x?xbf16>) gate(%gate : tensor<?x?x?x?xbf16>) delta(%delta : tensor<?x?x?xbf16>) A(%A : tensor<?x?xbf16>) Bs(%Bs : tensor<?x?x?xbf16>) Cs(%Cs : tensor<?x?x?xbf16>) D(%D : tensor<?xbf16>) {tiles = #fem.tiles<q = 8, k = 8, vec = 8>} -> tensor<?x?x?x?xbf16>
  return %out : tensor<?x?x?x?xbf16>
}

func.func @softmax_causal_f16(%q: tensor<?x?x?x?xf16>, %k: tensor<?x?x?x?xf16>, %v: tensor<?x?x?x?xf16>, %beta_raw: tensor<?xf16>, %lam: tensor<?x?x?x?xf16>, %gate: tensor<?x?x?x?xf16>) -> tensor<?x?x?x?xf16> {
  %out = fem.mixer softmax q(%q : tensor<?x?x?x?xf16>) k(%k : tensor<?x?x?x?xf16>) v(%v : tensor<?x?x?x?xf16>)
      beta_raw(%beta_raw : tensor<?xf16>) lam(%lam : tensor<?x?x?x?xf16>) gate(%gate : tensor<?x?x?x?xf16>) {causal} -> tensor<?x?x?x?xf16>
  return %out : tensor<?x?x?x?xf16>
}

func.func @softmax_full_f16(%q: tensor<?x?x?x?xf16>, %k: tensor<?x?x?x?xf16>, %v: tensor<?x?x?x?xf16>, %beta_raw: tensor<?xf16>, %lam: tensor<?x?x?x?xf16>, %gate: tensor<?x?x?x?xf16>) -> tensor<?x?x?x?xf16> {
  %out = fem.mixer softmax q(%q : tensor<?x?x?x?xf16>) k(%k : tensor<?x?x?x?xf16>) v(%v : tensor<?x?x?x?xf16>)
      beta_raw(%beta_raw : tensor<?xf16>) lam(%lam : tensor<?x?x?x?xf16>) gate(%gate : tensor<?x?x?x?xf16>) -> tensor<?x?x?x?xf16>
  return %out : tensor<?x?x?x?xf16>
}

func.func @softmax_causal_mask_f16(%q: tensor<?x?x?x?xf16>, %k: tensor<?x?x?x?xf16>, %v: tensor<?x?x?x?xf16>, %beta_raw: tensor<?xf16>, %lam: tensor<?x?x?x?xf16>, %gate: tensor<?x?x?x?xf16>, %mask: tensor<?x?xi1>) -> tensor<?x?x?x?xf16> {
  %out = fem.mixer softmax q(%q : tensor<?x?x?x?xf16>) k(%k : tensor<?x?x?x?xf16>) v(%v : tensor<?x?x?x?xf16>)
      beta_raw(%beta_raw : tensor<?xf16>) lam(%lam : tensor<?x?x?x?xf16>) gate(%gate : tensor<?x?x?x?xf16>) mask(%mask : tensor<?x?xi1>) {causal} -> tensor<?x?x?x?xf16>
  return %out : tensor<?x?x?x?xf16>
}

func.func @softmax_full_mask_bhtd_small_f16(%q: tensor<?x?x?x?xf16>, %k: tensor<?x?x?x?xf16>, %v: tensor<?x?x?x?xf16>, %beta_raw: tensor<?xf16>, %lam: tensor<?x?x?x?xf16>, %gate: tensor<?x?x?x?xf16>, %mask: tensor<?x?xi1>) -> tensor<?x?x?x?xf16> {
  %out = fem.mixer softmax q(%q : tensor<?x?x?x?xf16>) k(%k : tensor<?x?x?x?xf16>) v(%v : tensor<?x?x?x?xf16>)
      beta_raw(%beta_raw : tensor<?xf16>) lam(%lam : tensor<?x?x?x?xf16>) gate(%gate : tensor<?x?x?x?xf16>) mask(%mask : tensor<?x?xi1>) {layout = #fem.layout<bhtd>, tiles = #fem.tiles<q = 32, k = 32, vec = 8>} -> tensor<?x?x?x?xf16>
  return %out : tensor<?x?x?x?xf16>
}

func.func @linear_causal_f16(%q: tensor<?x?x?x?xf16>, %k: tensor<?x?x?x?xf16>, %v: tensor<?x?x?x?xf16>, %beta_raw: tensor<?xf16>, %lam: tensor<?x?x?x?xf16>, %gate: tensor<?x?x?x?xf16>) -> tensor<?x?x?x?xf16> {
  %out = fem.mixer linear q(%q : tensor<?x?x?x?xf16>) k(%k : tensor<?x?x?x?xf16>) v(%v : tensor<?x?x?x?xf16>) beta_raw(%beta_raw : tensor<?xf16>) lam(%lam : tensor<?x?x?x?xf16>) gate(%gate : tensor<?x?x?x?xf16>) {causal} -> tensor<?x?x?x?xf16>
  return %out : tensor<?x?x?x?xf16>
}

func.func @linear_full_mask_f16(%q: tensor<?x?x?x?xf16>, %k: tensor<?x?x?x?xf16>, %v: tensor<?x?x?x?xf16>, %beta_raw: tensor<?xf16>, %lam: tensor<?x?x?x?xf16>, %gate: tensor<?x?x?x?xf16>, %mask: tensor<?x?xi1>) -> tensor<?x?x?x?xf16> {
  %out = fem.mixer linear q(%q : tensor<?x?x?x?xf16>) k(%k : tensor<?x?x?x?xf16>) v(%v : tensor<?x?x?x?xf16>) beta_raw(%beta_raw : tensor<?xf16>) lam(%lam : tensor<?x?x?x?xf16>) gate(%gate : tensor<?x?x?x?xf16>) mask(%mask : tensor<?x?xi1>) -> tensor<?x?x?x?xf16>
  return %out : tensor<?x?x?x?xf16>
}

func.func @linear_causal_bhtd_small_f16(%q: tensor<?x?x?x?xf16>, %k: tensor<?x?x?x?xf16>, %v: tensor<?x?x?x?xf16>, %beta_raw: tensor<?xf16>, %lam: tensor<?x?x?x?xf16>, %gate: tensor<?x?x?x?xf16>) -> tensor<?x?x?x?xf16> {
  %out = fem.mixer linear q(%q : tensor<?x?x?x?xf16>) k(%k : tensor<?x?x?x?xf16>) v(%v : tensor<?x?x?x?xf16>) beta_raw(%beta_raw : tensor<?xf16>) lam(%lam : tensor<?x?x?x?xf16>) gate(%gate : tensor<?x?x?x?xf16>) {causal, layout = #fem.layout<bhtd>, tiles = #fem.tiles<q = 16, k = 8, vec = 8>} -> tensor<?x?x?x?xf16>
  return %out : tensor<?x?x?x?xf16>
}

func.func @gla_f16(%q: tensor<?x?x?x?xf16>, %k: tensor<?x?x?x?xf16>, %v: tensor<?x?x?x?xf16>, %beta_raw: tensor<?xf16>, %lam: tensor<?x?x?x?xf16>, %gate: tensor<?x?x?x?xf16>, %decay: tensor<?x?x?xf16>) -> tensor<?x?x?x?xf16> {
  %out = fem.mixer gla q(%q : tensor<?x?x?x?xf16>) k(%k : tensor<?x?x?x?xf16>) v(%v : tensor<?x?x?x?xf16>) beta_raw(%beta_raw : tensor<?xf16>) lam(%lam : tensor<?x?x?x?xf16>) gate(%gate : tensor<?x?x?x?xf16>) decay(%decay : tensor<?x?x?xf16>) -> tensor<?x?x?x?xf16>
  return %out : tensor<?x?x?x?xf16>
}

func.func @gla_small_f16(%q: tensor<?x?x?x?xf16>, %k: tensor<?x?x?x?xf16>, %v: tensor<?x?x?x?xf16>, %beta_raw: tensor<?xf16>, %lam: tensor<?x?x?x?xf16>, %gate: tensor<?x?x?x?xf16>, %decay: tensor<?x?x?xf16>) -> tensor<?x?x?x?xf16> {
  %out = fem.mixer gla q(%q : tensor<?x?x?x?xf16>) k(%k : tensor<?x?x?x?xf16>) v(%v : tensor<?x?x?x?xf16>) beta_raw(%beta_raw : tensor<?xf16>) lam(%lam : tensor<?x?x?x?xf16>) gate(%gate : tensor<?x?x?x?xf16>) decay(%decay : tensor<?x?x?xf16>) {tiles = #fem.tiles<q = 16, k = 8, vec = 8>} -> tensor<?x?x?x?xf16>
  return %out : tensor<?x?x?x?xf16>
}

func.func @aft_f16(%q: tensor<?x?x?x?xf16>, %k: tensor<?x?x?x?xf16>, %v: tensor<?x?x?x?xf16>, %beta_raw: tensor<?xf16>, %lam: tensor<?x?x?x?xf16>, %gate: tensor<?x?x?x?xf16>) -> tensor<?x?x?x?xf16> {
  %out = fem.mixer aft q(%q : tensor<?x?x?x?xf16>) k(%k : tensor<?x?x?x?xf16>) v(%v : tensor<?x?x?x?xf16>) beta_raw(%beta_raw : tensor<?xf16>) lam(%lam : tensor<?x?x?x?xf16>) gate(%gate : tensor<?x?x?x?xf16>) -> tensor<?x?x?x?xf16>
  return %out : tensor<?x?x?x?xf16>
}

func.func @aft_small_bhtd_f16(%q: tensor<?x?x?x?xf16>, %k: tensor<?x?x?x?xf16>, %v: tensor<?x?x?x?xf16>, %beta_raw: tensor<?xf16>, %lam: tensor<?x?x?x?xf16>, %gate: tensor<?x?x?x?xf16>) -> tensor<?x?x?x?xf16> {
  %out = fem.mixer aft q(%q : tensor<?x?x?x?xf16>) k(%k : tensor<?x?x?x?xf16>) v(%v : tensor<?x?x?x?xf16>) beta_raw(%beta_raw : tensor<?xf16>) lam(%lam : tensor<?x?x?x?xf16>) gate(%gate : tensor<?x?x?x?xf16>) {layout = #fem.layout<bhtd>, tiles = #fem.tiles<q = 8, k = 8, vec = 8>} -> tensor<?x?x?x?xf16>
  return %out : tensor<?x?x?x?xf16>
}

func.func @ssm_f16(%v: tensor<?x?x?x?xf16>, %beta_raw: tensor<?xf16>, %lam: tensor<?x?x?x?xf16>, %gate: tensor<?x?x?x?xf16>, %delta: tensor<?x?x?xf16>, %A: tensor<?x?xf16>, %Bs: tensor<?x?x?xf16>, %Cs: tensor<?x?x?xf16>, %D: tensor<?xf16>) -> tensor<?x?x?x?xf16> {
  %out = fem.mixer ssm v(%v : tensor<?x?x?x?xf16>) beta_raw(%beta_raw : tensor<?xf16>) lam(%lam : tensor<?x?x?x?xf16>) gate(%gate : tensor<?x?x?x?xf16>) delta(%delta : tensor<?x?x?xf16>) A(%A : tensor<?x?xf16>) Bs(%Bs : tensor<?x?x?xf16>) Cs(%Cs : tensor<?x?x?xf16>) D(%D : tensor<?xf16>) -> tensor<?x?x?x?xf16>
  return %out : tensor<?x?x?x?xf16>
}

func.func @ssm_small_f16(%v: tensor<?x?x?x?xf16>, %beta_raw: tensor<?xf16>, %lam: tensor<?x?x?x?xf16>, %gate: tensor<?x?x?x?xf16>, %delta: tensor<?x?x?xf16>, %A: tensor<?x?xf16>, %Bs: tensor<?x?x?xf16>, %Cs: tensor<?x?x?xf16>, %D: tensor<?xf16>) -> tensor<?x?x?x?xf16> {
  %out = fem.mixer ssm v(%v : tensor<?x?x?x?xf16>) beta_raw(%beta_raw : tensor<?xf16>) lam(%lam : tensor<?x?x?x?xf16>) gate(%gate : tensor<?x?x?x?xf16>) delta(%delta : tensor<?x?x?xf16>) A(%A : tensor<?x?xf16>) Bs(%Bs : tensor<?x?x?xf16>) Cs(%Cs : tensor<?x?x?xf16>) D(%D : tensor<?xf16>) {tiles = #fem.tiles<q = 8, k = 8, vec = 8>} -> tensor<?x?x?x?xf16>
  return %out : tensor<?x?x?x?xf16>
}
