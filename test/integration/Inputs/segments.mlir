// Kernels for the segment test (SegmentTest.cpp): every scan prior with a
// carried state (docs/semantics.md, "Segments"): `state` in, the state after
// the segment as the second result. dk = 8 (and N) are static because the
// state's last extent Ks is computed from them; everything else is dynamic.
// The _small variants use small chunks and channel blocks (several
// workgroups per head, chunks that do not divide a segment).

func.func @linear_causal_state(%q: tensor<?x?x?x8xf32>, %k: tensor<?x?x?x8xf32>, %v: tensor<?x?x?x?xf32>, %beta_raw: tensor<?xf32>, %lam: tensor<?x?x?x?xf32>, %gate: tensor<?x?x?x?xf32>, %state: tensor<?x?x?x28xf32>) -> (tensor<?x?x?x?xf32>, tensor<?x?x?x28xf32>) {
  %out, %s = fem.mixer linear q(%q : tensor<?x?x?x8xf32>) k(%k : tensor<?x?x?x8xf32>) v(%v : tensor<?x?x?x?xf32>) beta_raw(%beta_raw : tensor<?xf32>) lam(%lam : tensor<?x?x?x?xf32>) gate(%gate : tensor<?x?x?x?xf32>) state(%state : tensor<?x?x?x28xf32>) {causal} -> tensor<?x?x?x?xf32>, tensor<?x?x?x28xf32>
  return %out, %s : tensor<?x?x?x?xf32>, tensor<?x?x?x28xf32>
}

func.func @linear_causal_state_small(%q: tensor<?x?x?x8xf32>, %k: tensor<?x?x?x8xf32>, %v: tensor<?x?x?x?xf32>, %beta_raw: tensor<?xf32>, %lam: tensor<?x?x?x?xf32>, %gate: tensor<?x?x?x?xf32>, %state: tensor<?x?x?x28xf32>) -> (tensor<?x?x?x?xf32>, tensor<?x?x?x28xf32>) {
  %out, %s = fem.mixer linear q(%q : tensor<?x?x?x8xf32>) k(%k : tensor<?x?x?x8xf32>) v(%v : tensor<?x?x?x?xf32>) beta_raw(%beta_raw : tensor<?xf32>) lam(%lam : tensor<?x?x?x?xf32>) gate(%gate : tensor<?x?x?x?xf32>) state(%state : tensor<?x?x?x28xf32>) {causal, tiles = #fem.tiles<q = 16, k = 8, vec = 8>} -> tensor<?x?x?x?xf32>, tensor<?x?x?x28xf32>
  return %out, %s : tensor<?x?x?x?xf32>, tensor<?x?x?x28xf32>
}

func.func @linear_full_state(%q: tensor<?x?x?x8xf32>, %k: tensor<?x?x?x8xf32>, %v: tensor<?x?x?x?xf32>, %beta_raw: tensor<?xf32>, %lam: tensor<?x?x?x?xf32>, %gate: tensor<?x?x?x?xf32>, %state: tensor<?x?x?x28xf32>) -> (tensor<?x?x?x?xf32>, tensor<?x?x?x28xf32>) {
  %out, %s = fem.mixer linear q(%q : tensor<?x?x?x8xf32>) k(%k : tensor<?x?x?x8xf32>) v(%v : tensor<?x?x?x?xf32>) beta_raw(%beta_raw : tensor<?xf32>) lam(%lam : tensor<?x?x?x?xf32>) gate(%gate : tensor<?x?x?x?xf32>) state(%state : tensor<?x?x?x28xf32>) -> tensor<?x?x?x?xf32>, tensor<?x?x?x28xf32>
  return %out, %s : tensor<?x?x?x?xf32>, tensor<?x?x?x28xf32>
}

func.func @linear_causal_mask_state(%q: tensor<?x?x?x8xf32>, %k: tensor<?x?x?x8xf32>, %v: tensor<?x?x?x?xf32>, %beta_raw: tensor<?xf32>, %lam: tensor<?x?x?x?xf32>, %gate: tensor<?x?x?x?xf32>, %mask: tensor<?x?xi1>, %state: tensor<?x?x?x28xf32>) -> (tensor<?x?x?x?xf32>, tensor<?x?x?x28xf32>) {
  %out, %s = fem.mixer linear q(%q : tensor<?x?x?x8xf32>) k(%k : tensor<?x?x?x8xf32>) v(%v : tensor<?x?x?x?xf32>) beta_raw(%beta_raw : tensor<?xf32>) lam(%lam : tensor<?x?x?x?xf32>) gate(%gate : tensor<?x?x?x?xf32>) mask(%mask : tensor<?x?xi1>) state(%state : tensor<?x?x?x28xf32>) {causal, tiles = #fem.tiles<q = 16, k = 8, vec = 8>} -> tensor<?x?x?x?xf32>, tensor<?x?x?x28xf32>
  return %out, %s : tensor<?x?x?x?xf32>, tensor<?x?x?x28xf32>
}

func.func @gla_state(%q: tensor<?x?x?x8xf32>, %k: tensor<?x?x?x8xf32>, %v: tensor<?x?x?x?xf32>, %beta_raw: tensor<?xf32>, %lam: tensor<?x?x?x?xf32>, %gate: tensor<?x?x?x?xf32>, %decay: tensor<?x?x?xf32>, %state: tensor<?x?x?x28xf32>) -> (tensor<?x?x?x?xf32>, tensor<?x?x?x28xf32>) {
  %out, %s = fem.mixer gla q(%q : tensor<?x?x?x8xf32>) k(%k : tensor<?x?x?x8xf32>) v(%v : tensor<?x?x?x?xf32>) beta_raw(%beta_raw : tensor<?xf32>) lam(%lam : tensor<?x?x?x?xf32>) gate(%gate : tensor<?x?x?x?xf32>) decay(%decay : tensor<?x?x?xf32>) state(%state : tensor<?x?x?x28xf32>) -> tensor<?x?x?x?xf32>, tensor<?x?x?x28xf32>
  return %out, %s : tensor<?x?x?x?xf32>, tensor<?x?x?x28xf32>
}

func.func @gla_state_small(%q: tensor<?x?x?x8xf32>, %k: tensor<?x?x?x8xf32>, %v: tensor<?x?x?x?xf32>, %beta_raw: tensor<?xf32>, %lam: tensor<?x?x?x?xf32>, %gate: tensor<?x?x?x?xf32>, %decay: tensor<?x?x?xf32>, %state: tensor<?x?x?x28xf32>) -> (tensor<?x?x?x?xf32>, tensor<?x?x?x28xf32>) {
  %out, %s = fem.mixer gla q(%q : tensor<?x?x?x8xf32>) k(%k : tensor<?x?x?x8xf32>) v(%v : tensor<?x?x?x?xf32>) beta_raw(%beta_raw : tensor<?xf32>) lam(%lam : tensor<?x?x?x?xf32>) gate(%gate : tensor<?x?x?x?xf32>) decay(%decay : tensor<?x?x?xf32>) state(%state : tensor<?x?x?x28xf32>) {tiles = #fem.tiles<q = 16, k = 8, vec = 8>} -> tensor<?x?x?x?xf32>, tensor<?x?x?x28xf32>
  return %out, %s : tensor<?x?x?x?xf32>, tensor<?x?x?x28xf32>
}

func.func @aft_state(%q: tensor<?x?x?x8xf32>, %k: tensor<?x?x?x8xf32>, %v: tensor<?x?x?x?xf32>, %beta_raw: tensor<?xf32>, %lam: tensor<?x?x?x?xf32>, %gate: tensor<?x?x?x?xf32>, %state: tensor<?x?x?x12xf32>) -> (tensor<?x?x?x?xf32>, tensor<?x?x?x12xf32>) {
  %out, %s = fem.mixer aft q(%q : tensor<?x?x?x8xf32>) k(%k : tensor<?x?x?x8xf32>) v(%v : tensor<?x?x?x?xf32>) beta_raw(%beta_raw : tensor<?xf32>) lam(%lam : tensor<?x?x?x?xf32>) gate(%gate : tensor<?x?x?x?xf32>) state(%state : tensor<?x?x?x12xf32>) -> tensor<?x?x?x?xf32>, tensor<?x?x?x12xf32>
  return %out, %s : tensor<?x?x?x?xf32>, tensor<?x?x?x12xf32>
}

func.func @aft_state_small(%q: tensor<?x?x?x8xf32>, %k: tensor<?x?x?x8xf32>, %v: tensor<?x?x?x?xf32>, %beta_raw: tensor<?xf32>, %lam: tensor<?x?x?x?xf32>, %gate: tensor<?x?x?x?xf32>, %state: tensor<?x?x?x12xf32>) -> (tensor<?x?x?x?xf32>, tensor<?x?x?x12xf32>) {
  %out, %s = fem.mixer aft q(%q : tensor<?x?x?x8xf32>) k(%k : tensor<?x?x?x8xf32>) v(%v : tensor<?x?x?x?xf32>) beta_raw(%beta_raw : tensor<?xf32>) lam(%lam : tensor<?x?x?x?xf32>) gate(%gate : tensor<?x?x?x?xf32>) state(%state : tensor<?x?x?x12xf32>) {tiles = #fem.tiles<q = 8, k = 8, vec = 8>} -> tensor<?x?x?x?xf32>, tensor<?x?x?x12xf32>
  return %out, %s : tensor<?x?x?x?xf32>, tensor<?x?x?x12xf32>
}

func.func @ssm_state_n16(%v: tensor<?x?x?x?xf32>, %beta_raw: tensor<?xf32>, %lam: tensor<?x?x?x?xf32>, %gate: tensor<?x?x?x?xf32>, %delta: tensor<?x?x?xf32>, %A: tensor<?x16xf32>, %Bs: tensor<?x?x16xf32>, %Cs: tensor<?x?x16xf32>, %D: tensor<?xf32>, %state: tensor<?x?x?x51xf32>) -> (tensor<?x?x?x?xf32>, tensor<?x?x?x51xf32>) {
  %out, %s = fem.mixer ssm v(%v : tensor<?x?x?x?xf32>) beta_raw(%beta_raw : tensor<?xf32>) lam(%lam : tensor<?x?x?x?xf32>) gate(%gate : tensor<?x?x?x?xf32>) delta(%delta : tensor<?x?x?xf32>) A(%A : tensor<?x16xf32>) Bs(%Bs : tensor<?x?x16xf32>) Cs(%Cs : tensor<?x?x16xf32>) D(%D : tensor<?xf32>) state(%state : tensor<?x?x?x51xf32>) -> tensor<?x?x?x?xf32>, tensor<?x?x?x51xf32>
  return %out, %s : tensor<?x?x?x?xf32>, tensor<?x?x?x51xf32>
}

func.func @ssm_state_n1_small(%v: tensor<?x?x?x?xf32>, %beta_raw: tensor<?xf32>, %lam: tensor<?x?x?x?xf32>, %gate: tensor<?x?x?x?xf32>, %delta: tensor<?x?x?xf32>, %A: tensor<?x1xf32>, %Bs: tensor<?x?x1xf32>, %Cs: tensor<?x?x1xf32>, %D: tensor<?xf32>, %state: tensor<?x?x?x6xf32>) -> (tensor<?x?x?x?xf32>, tensor<?x?x?x6xf32>) {
  %out, %s = fem.mixer ssm v(%v : tensor<?x?x?x?xf32>) beta_raw(%beta_raw : tensor<?xf32>) lam(%lam : tensor<?x?x?x?xf32>) gate(%gate : tensor<?x?x?x?xf32>) delta(%delta : tensor<?x?x?xf32>) A(%A : tensor<?x1xf32>) Bs(%Bs : tensor<?x?x1xf32>) Cs(%Cs : tensor<?x?x1xf32>) D(%D : tensor<?xf32>) state(%state : tensor<?x?x?x6xf32>) {tiles = #fem.tiles<q = 8, k = 8, vec = 8>} -> tensor<?x?x?x?xf32>, tensor<?x?x?x6xf32>
  return %out, %s : tensor<?x?x?x?xf32>, tensor<?x?x?x6xf32>
}
