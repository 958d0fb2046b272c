// Kernels for the parallel prefix test (ScanSplitTest.cpp): every scan
// prior with and without a carried state, default and small tiles (chunks
// of 8 or 16 rows, so that segments start inside short sequences). dk = 8
// and N are static: the segment states' width Ks is computed from them.

func.func @linear_causal(%q: tensor<?x?x?x8xf32>, %k: tensor<?x?x?x8xf32>, %v: tensor<?x?x?x?xf32>, %beta_raw: tensor<?xf32>, %lam: tensor<?x?x?x?xf32>, %gate: tensor<?x?x?x?xf32>) -> tensor<?x?x?x?xf32> {
  %out = fem.mixer linear q(%q : tensor<?x?x?x8xf32>) k(%k : tensor<?x?x?x8xf32>) v(%v : tensor<?x?x?x?xf32>) beta_raw(%beta_raw : tensor<?xf32>) lam(%lam : tensor<?x?x?x?xf32>) gate(%gate : tensor<?x?x?x?xf32>) {causal} -> tensor<?x?x?x?xf32>
  return %out : tensor<?x?x?x?xf32>
}

func.func @linear_causal_state(%q: tensor<?x?x?x8xf32>, %k: tensor<?x?x?x8xf32>, %v: tensor<?x?x?x?xf32>, %beta_raw: tensor<?xf32>, %lam: tensor<?x?x?x?xf32>, %gate: tensor<?x?x?x?xf32>, %state: tensor<?x?x?x28xf32>) -> (tensor<?x?x?x?xf32>, tensor<?x?x?x28xf32>) {
  %out, %s = fem.mixer linear q(%q : tensor<?x?x?x8xf32>) k(%k : tensor<?x?x?x8xf32>) v(%v : tensor<?x?x?x?xf32>) beta_raw(%beta_raw : tensor<?xf32>) lam(%lam : tensor<?x?x?x?xf32>) gate(%gate : tensor<?x?x?x?xf32>) state(%state : tensor<?x?x?x28xf32>) {causal} -> tensor<?x?x?x?xf32>, tensor<?x?x?x28xf32>
  return %out, %s : tensor<?x?x?x?xf32>, tensor<?x?x?x28xf32>
}

func.func @linear_causal_state_small(%q: tensor<?x?x?x8xf32>, %k: tensor<?x?x?x8xf32>, %v: tensor<?x?x?x?xf32>, %beta_raw: tensor<?xf32>, %lam: tensor<?x?x?x?xf32>, %gate: tensor<?x?x?x?xf32>, %state: tensor<?x?x?x28xf32>) -> (tensor<?x?x?x?xf32>, tensor<?x?x?x28xf32>) {
  %out, %s = fem.mixer linear q(%q : tensor<?x?x?x8xf32>) k(%k : tensor<?x?x?x8xf32>) v(%v : tensor<?x?x?x?xf32>) beta_raw(%beta_raw : tensor<?xf32>) lam(%lam : tensor<?x?x?x?xf32>) gate(%gate : tensor<?x?x?x?xf32>) state(%state : tensor<?x?x?x28xf32>) {causal, tiles = #fem.tiles<q = 16, k = 8, vec = 8>} -> tensor<?x?x?x?xf32>, tensor<?x?x?x28xf32>
  return %out, %s : tensor<?x?x?x?xf32>, tensor<?x?x?x28xf32>
}

func.func @linear_causal_mask_small(%q: tensor<?x?x?x8xf32>, %k: tensor<?x?x?x8xf32>, %v: tensor<?x?x?x?xf32>, %beta_raw: tensor<?xf32>, %lam: tensor<?x?x?x?xf32>, %gate: tensor<?x?x?x?xf32>, %mask: tensor<?x?xi1>, %state: tensor<?x?x?x28xf32>) -> (tensor<?x?x?x?xf32>, tensor<?x?x?x28xf32>) {
  %out, %s = fem.mixer linear q(%q : tensor<?x?x?x8xf32>) k(%k : tensor<?x?x?x8xf32>) v(%v : tensor<?x?x?x?xf32>) beta_raw(%beta_raw : tensor<?xf32>) lam(%lam : tensor<?x?x?x?xf32>) gate(%gate : tensor<?x?x?x?xf32>) mask(%mask : tensor<?x?xi1>) state(%state : tensor<?x?x?x28xf32>) {causal, tiles = #fem.tiles<q = 16, k = 8, vec = 8>} -> tensor<?x?x?x?xf32>, tensor<?x?x?x28xf32>
  return %out, %s : tensor<?x?x?x?xf32>, tensor<?x?x?x28xf32>
}

func.func @linear_full_state(%q: tensor<?x?x?x8xf32>, %k: tensor<?x?x?x8xf32>, %v: tensor<?x?x?x?xf32>, %beta_raw: tensor<?xf32>, %lam: tensor<?x?x?x?xf32>, %gate: tensor<?x?x?x?xf32>, %state: tensor<?x?x?x28xf32>) -> (tensor<?x?x?x?xf32>, tensor<?x?x?x28xf32>) {
  %out, %s = fem.mixer linear q(%q : tensor<?x?x?x8xf32>) k(%k : tensor<?x?x?x8xf32>) v(%v : tensor<?x?x?x?xf32>) beta_raw(%beta_raw : tensor<?xf32>) lam(%lam : tensor<?x?x?x?xf32>) gate(%gate : tensor<?x?x?x?xf32>) state(%state : tensor<?x?x?x28xf32>) -> tensor<?x?x?x?xf32>, tensor<?x?x?x28xf32>
  return %out, %s : tensor<?x?x?x?xf32>, tensor<?x?x?x28xf32>
}

func.func @linear_full_small(%q: tensor<?x?x?x8xf32>, %k: tensor<?x?x?x8xf32>, %v: tensor<?x?x?x?xf32>, %beta_raw: tensor<?xf32>, %lam: tensor<?x?x?x?xf32>, %gate: tensor<?x?x?x?xf32>) -> tensor<?x?x?x?xf32> {
  %out = fem.mixer linear q(%q : tensor<?x?x?x8xf32>) k(%k : tensor<?x?x?x8xf32>) v(%v : tensor<?x?x?x?xf32>) beta_raw(%beta_raw : tensor<?xf32>) lam(%lam : tensor<?x?x?x?xf32>) gate(%gate : tensor<?x?x?x?xf32>) {tiles = #fem.tiles<q = 16, k = 8, vec = 8>} -> tensor<?x?x?x?xf32>
  return %out : tensor<?x?x?x?xf32>
}

func.func @gla(%q: tensor<?x?x?x8xf32>, %k: tensor<?x?x?x8xf32>, %v: tensor<?x?x?x?xf32>, %beta_raw: tensor<?xf32>, %lam: tensor<?x?x?x?xf32>, %gate: tensor<?x?x?x?xf32>, %decay: tensor<?x?x?xf32>) -> tensor<?x?x?x?xf32> {
  %out = fem.mixer gla q(%q : tensor<?x?x?x8xf32>) k(%k : tensor<?x?x?x8xf32>) v(%v : tensor<?x?x?x?xf32>) beta_raw(%beta_raw : tensor<?xf32>) lam(%lam : tensor<?x?x?x?xf32>) gate(%gate : tensor<?x?x?x?xf32>) decay(%decay : tensor<?x?x?xf32>) -> tensor<?x?x?x?xf32>
  return %out : tensor<?x?x?x?xf32>
}

func.func @gla_state_small(%q: tensor<?x?x?x8xf32>, %k: tensor<?x?x?x8xf32>, %v: tensor<?x?x?x?xf32>, %beta_raw: tensor<?xf32>, %lam: tensor<?x?x?x?xf32>, %gate: tensor<?x?x?x?xf32>, %decay: tensor<?x?x?xf32>, %state: tensor<?x?x?x28xf32>) -> (tensor<?x?x?x?xf32>, tensor<?x?x?x28xf32>) {
  %out, %s = fem.mixer gla q(%q : tensor<?x?x?x8xf32>) k(%k : tensor<?x?x?x8xf32>) v(%v : tensor<?x?x?x?xf32>) beta_raw(%beta_raw : tensor<?xf32>) lam(%lam : tensor<?x?x?x?xf32>) gate(%gate : tensor<?x?x?x?xf32>) decay(%decay : tensor<?x?x?xf32>) state(%state : tensor<?x?x?x28xf32>) {tiles = #fem.tiles<q = 16, k = 8, vec = 8>} -> tensor<?x?x?x?xf32>, tensor<?x?x?x28xf32>
  return %out, %s : tensor<?x?x?x?xf32>, tensor<?x?x?x28xf32>
}

func.func @aft_state(%q: tensor<?x?x?x8xf32>, %k: tensor<?x?x?x8xf32>, %v: tensor<?x?x?x?xf32>, %beta_raw: tensor<?xf32>, %lam: tensor<?x?x?x?xf32>, %gate: tensor<?x?x?x?xf32>, %state: tensor<?x?x?x12xf32>) -> (tensor<?x?x?x?xf32>, tensor<?x?x?x12xf32>) {
  %out, %s = fem.mixer aft q(%q : tensor<?x?x?x8xf32>) k(%k : tensor<?x?x?x8xf32>) v(%v : tensor<?x?x?x?xf32>) beta_raw(%beta_raw : tensor<?xf32>) lam(%lam : tensor<?x?x?x?xf32>) gate(%gate : tensor<?x?x?x?xf32>) state(%state : tensor<?x?x?x12xf32>) -> tensor<?x?x?x?xf32>, tensor<?x?x?x12xf32>
  return %out, %s : tensor<?x?x?x?xf32>, tensor<?x?x?x12xf32>
}

func.func @aft_small(%q: tensor<?x?x?x8xf32>, %k: tensor<?x?x?x8xf32>, %v: tensor<?x?x?x?xf32>, %beta_raw: tensor<?xf32>, %lam: tensor<?x?x?x?xf32>, %gate: tensor<?x?x?x?xf32>) -> tensor<?x?x?x?xf32> {
  %out = fem.mixer aft q(%q : tensor<?x?x?x8xf32>) k(%k : tensor<?x?x?x8xf32>) v(%v : tensor<?x?x?x?xf32>) beta_raw(%beta_raw : tensor<?xf32>) lam(%lam : tensor<?x?x?x?xf32>) gate(%gate : tensor<?x?x?x?xf32>) {tiles = #fem.tiles<q = 8, k = 8, vec = 8>} -> tensor<?x?x?x?xf32>
  return %out : tensor<?x?x?x?xf32>
}

func.func @ssm_state_n16(%v: tensor<?x?x?x?xf32>, %beta_raw: tensor<?xf32>, %lam: tensor<?x?x?x?xf32>, %gate: tensor<?x?x?x?xf32>, %delta: tensor<?x?x?xf32>, %A: tensor<?x16xf32>, %Bs: tensor<?x?x16xf32>, %Cs: tensor<?x?x16xf32>, %D: tensor<?xf32>, %state: tensor<?x?x?x51xf32>) -> (tensor<?x?x?x?xf32>, tensor<?x?x?x51xf32>) {
  %out, %s = fem.mixer ssm v(%v : tensor<?x?x?x?xf32>) beta_raw(%beta_raw : tensor<?xf32>) lam(%lam : tensor<?x?x?x?xf32>) gate(%gate : tensor<?x?x?x?xf32>) delta(%delta : tensor<?x?x?xf32>) A(%A : tensor<?x16xf32>) Bs(%Bs : tensor<?x?x16xf32>) Cs(%Cs : tensor<?x?x16xf32>) D(%D : tensor<?xf32>) state(%state : tensor<?x?x?x51xf32>) -> tensor<?x?x?x?xf32>, tensor<?x?x?x51xf32>
  return %out, %s : tensor<?x?x?x?xf32>, tensor<?x?x?x51xf32>
}

func.func @ssm_n1_small(%v: tensor<?x?x?x?xf32>, %beta_raw: tensor<?xf32>, %lam: tensor<?x?x?x?xf32>, %gate: tensor<?x?x?x?xf32>, %delta: tensor<?x?x?xf32>, %A: tensor<?x1xf32>, %Bs: tensor<?x?x1xf32>, %Cs: tensor<?x?x1xf32>, %D: tensor<?xf32>) -> tensor<?x?x?x?xf32> {
  %out = fem.mixer ssm v(%v : tensor<?x?x?x?xf32>) beta_raw(%beta_raw : tensor<?xf32>) lam(%lam : tensor<?x?x?x?xf32>) gate(%gate : tensor<?x?x?x?xf32>) delta(%delta : tensor<?x?x?xf32>) A(%A : tensor<?x1xf32>) Bs(%Bs : tensor<?x?x1xf32>) Cs(%Cs : tensor<?x?x1xf32>) D(%D : tensor<?xf32>) {tiles = #fem.tiles<q = 8, k = 8, vec = 8>} -> tensor<?x?x?x?xf32>
  return %out : tensor<?x?x?x?xf32>
}

func.func @ssm_state_n1_small(%v: tensor<?x?x?x?xf32>, %beta_raw: tensor<?xf32>, %lam: tensor<?x?x?x?xf32>, %gate: tensor<?x?x?x?xf32>, %delta: tensor<?x?x?xf32>, %A: tensor<?x1xf32>, %Bs: tensor<?x?x1xf32>, %Cs: tensor<?x?x1xf32>, %D: tensor<?xf32>, %state: tensor<?x?x?x6xf32>) -> (tensor<?x?x?x?xf32>, tensor<?x?x?x6xf32>) {
  %out, %s = fem.mixer ssm v(%v : tensor<?x?x?x?xf32>) beta_raw(%beta_raw : tensor<?xf32>) lam(%lam : tensor<?x?x?x?xf32>) gate(%gate : tensor<?x?x?x?xf32>) delta(%delta : tensor<?x?x?xf32>) A(%A : tensor<?x1xf32>) Bs(%Bs : tensor<?x?x1xf32>) Cs(%Cs : tensor<?x?x1xf32>) D(%D : tensor<?xf32>) state(%state : tensor<?x?x?x6xf32>) {tiles = #fem.tiles<q = 8, k = 8, vec = 8>} -> tensor<?x?x?x?xf32>, tensor<?x?x?x6xf32>
  return %out, %s : tensor<?x?x?x?xf32>, tensor<?x?x?x6xf32>
}
