// Scan-prior kernels of test/python/test_scans.py: each prior one-shot and
// with a carried state (dk = 8 and N = 4 static: the state's width Ks is
// computed from them).

func.func @linear(%q: tensor<?x?x?x8xf32>, %k: tensor<?x?x?x8xf32>, %v: tensor<?x?x?x?xf32>, %beta_raw: tensor<?xf32>, %lam: tensor<?x?x?x?xf32>, %gate: tensor<?x?x?x?xf32>) -> tensor<?x?x?x?xf32> {
  %out = fem.mixer linear q(%q : tensor<?x?x?x8xf32>) k(%k : tensor<?x?x?x8xf32>) v(%v : tensor<?x?x?x?xf32>) beta_raw(%beta_raw : tensor<?xf32>) lam(%lam : tensor<?x?x?x?xf32>) gate(%gate : tensor<?x?x?x?xf32>) {causal} -> tensor<?x?x?x?xf32>
  return %out : tensor<?x?x?x?xf32>
}

func.func @linear_state(%q: tensor<?x?x?x8xf32>, %k: tensor<?x?x?x8xf32>, %v: tensor<?x?x?x?xf32>, %beta_raw: tensor<?xf32>, %lam: tensor<?x?x?x?xf32>, %gate: tensor<?x?x?x?xf32>, %state: tensor<?x?x?x28xf32>) -> (tensor<?x?x?x?xf32>, tensor<?x?x?x28xf32>) {
  %out, %s = fem.mixer linear q(%q : tensor<?x?x?x8xf32>) k(%k : tensor<?x?x?x8xf32>) v(%v : tensor<?x?x?x?xf32>) beta_raw(%beta_raw : tensor<?xf32>) lam(%lam : tensor<?x?x?x?xf32>) gate(%gate : tensor<?x?x?x?xf32>) state(%state : tensor<?x?x?x28xf32>) {causal} -> tensor<?x?x?x?xf32>, tensor<?x?x?x28xf32>
  return %out, %s : tensor<?x?x?x?xf32>, tensor<?x?x?x28xf32>
}

func.func @linear_full(%q: tensor<?x?x?x8xf32>, %k: tensor<?x?x?x8xf32>, %v: tensor<?x?x?x?xf32>, %beta_raw: tensor<?xf32>, %lam: tensor<?x?x?x?xf32>, %gate: tensor<?x?x?x?xf32>) -> tensor<?x?x?x?xf32> {
  %out = fem.mixer linear q(%q : tensor<?x?x?x8xf32>) k(%k : tensor<?x?x?x8xf32>) v(%v : tensor<?x?x?x?xf32>) beta_raw(%beta_raw : tensor<?xf32>) lam(%lam : tensor<?x?x?x?xf32>) gate(%gate : tensor<?x?x?x?xf32>) -> tensor<?x?x?x?xf32>
  return %out : tensor<?x?x?x?xf32>
}

func.func @linear_full_state(%q: tensor<?x?x?x8xf32>, %k: tensor<?x?x?x8xf32>, %v: tensor<?x?x?x?xf32>, %beta_raw: tensor<?xf32>, %lam: tensor<?x?x?x?xf32>, %gate: tensor<?x?x?x?xf32>, %state: tensor<?x?x?x28xf32>) -> (tensor<?x?x?x?xf32>, tensor<?x?x?x28xf32>) {
  %out, %s = fem.mixer linear q(%q : tensor<?x?x?x8xf32>) k(%k : tensor<?x?x?x8xf32>) v(%v : tensor<?x?x?x?xf32>) beta_raw(%beta_raw : tensor<?xf32>) lam(%lam : tensor<?x?x?x?xf32>) gate(%gate : tensor<?x?x?x?xf32>) state(%state : tensor<?x?x?x28xf32>) -> tensor<?x?x?x?xf32>, tensor<?x?x?x28xf32>
  return %out, %s : tensor<?x?x?x?xf32>, tensor<?x?x?x28xf32>
}

func.func @gla(%q: tensor<?x?x?x8xf32>, %k: tensor<?x?x?x8xf32>, %v: tensor<?x?x?x?xf32>, %beta_raw: tensor<?xf32>, %lam: tensor<?x?x?x?xf32>, %gate: tensor<?x?x?x?xf32>, %decay: tensor<?x?x?xf32>) -> tensor<?x?x?x?xf32> {
  %out = fem.mixer gla q(%q : tensor<?x?x?x8xf32>) k(%k : tensor<?x?x?x8xf32>) v(%v : tensor<?x?x?x?xf32>) beta_raw(%beta_raw : tensor<?xf32>) lam(%lam : tensor<?x?x?x?xf32>) gate(%gate : tensor<?x?x?x?xf32>) decay(%decay : tensor<?x?x?xf32>) {tiles = #fem.tiles<q = 16, k = 8, vec = 8>} -> tensor<?x?x?x?xf32>
  return %out : tensor<?x?x?x?xf32>
}

func.func @gla_state(%q: tensor<?x?x?x8xf32>, %k: tensor<?x?x?x8xf32>, %v: tensor<?x?x?x?xf32>, %beta_raw: tensor<?xf32>, %lam: tensor<?x?x?x?xf32>, %gate: tensor<?x?x?x?xf32>, %decay: tensor<?x?x?xf32>, %state: tensor<?x?x?x28xf32>) -> (tensor<?x?x?x?xf32>, tensor<?x?x?x28xf32>) {
  %out, %s = fem.mixer gla q(%q : tensor<?x?x?x8xf32>) k(%k : tensor<?x?x?x8xf32>) v(%v : tensor<?x?x?x?xf32>) beta_raw(%beta_raw : tensor<?xf32>) lam(%lam : tensor<?x?x?x?xf32>) gate(%gate : tensor<?x?x?x?xf32>) decay(%decay : tensor<?x?x?xf32>) state(%state : tensor<?x?x?x28xf32>) {tiles = #fem.tiles<q = 16, k = 8, vec = 8>} -> tensor<?x?x?x?xf32>, tensor<?x?x?x28xf32>
  return %out, %s : tensor<?x?x?x?xf32>, tensor<?x?x?x28xf32>
}

func.func @aft(%q: tensor<?x?x?x8xf32>, %k: tensor<?x?x?x8xf32>, %v: tensor<?x?x?x?xf32>, %beta_raw: tensor<?xf32>, %lam: tensor<?x?x?x?xf32>, %gate: tensor<?x?x?x?xf32>) -> tensor<?x?x?x?xf32> {
  %out = fem.mixer aft q(%q : tensor<?x?x?x8xf32>) k(%k : tensor<?x?x?x8xf32>) v(%v : tensor<?x?x?x?xf32>) beta_raw(%beta_raw : tensor<?xf32>) lam(%lam : tensor<?x?x?x?xf32>) gate(%gate : tensor<?x?x?x?xf32>) -> tensor<?x?x?x?xf32>
  return %out : tensor<?x?x?x?xf32>
}

func.func @aft_state(%q: tensor<?x?x?x8xf32>, %k: tensor<?x?x?x8xf32>, %v: tensor<?x?x?x?xf32>, %beta_raw: tensor<?xf32>, %lam: tensor<?x?x?x?xf32>, %gate: tensor<?x?x?x?xf32>, %state: tensor<?x?x?x12xf32>) -> (tensor<?x?x?x?xf32>, tensor<?x?x?x12xf32>) {
  %out, %s = fem.mixer aft q(%q : tensor<?x?x?x8xf32>) k(%k : tensor<?x?x?x8xf32>) v(%v : tensor<?x?x?x?xf32>) beta_raw(%beta_raw : tensor<?xf32>) lam(%lam : tensor<?x?x?x?xf32>) gate(%gate : tensor<?x?x?x?xf32>) state(%state : tensor<?x?x?x12xf32>) -> tensor<?x?x?x?xf32>, tensor<?x?x?x12xf32>
  return %out, %s : tensor<?x?x?x?xf32>, tensor<?x?x?x12xf32>
}

func.func @ssm(%v: tensor<?x?x?x?xf32>, %beta_raw: tensor<?xf32>, %lam: tensor<?x?x?x?xf32>, %gate: tensor<?x?x?x?xf32>, %delta: tensor<?x?x?xf32>, %A: tensor<?x4xf32>, %Bs: tensor<?x?x4xf32>, %Cs: tensor<?x?x4xf32>, %D: tensor<?xf32>) -> tensor<?x?x?x?xf32> {
  %out = fem.mixer ssm v(%v : tensor<?x?x?x?xf32>) beta_raw(%beta_raw : tensor<?xf32>) lam(%lam : tensor<?x?x?x?xf32>) gate(%gate : tensor<?x?x?x?xf32>) delta(%delta : tensor<?x?x?xf32>) A(%A : tensor<?x4xf32>) Bs(%Bs : tensor<?x?x4xf32>) Cs(%Cs : tensor<?x?x4xf32>) D(%D : tensor<?xf32>) {tiles = #fem.tiles<q = 16, k = 8, vec = 8>} -> tensor<?x?x?x?xf32>
  return %out : tensor<?x?x?x?xf32>
}

func.func @ssm_state(%v: tensor<?x?x?x?xf32>, %beta_raw: tensor<?xf32>, %lam: tensor<?x?x?x?xf32>, %gate: tensor<?x?x?x?xf32>, %delta: tensor<?x?x?xf32>, %A: tensor<?x4xf32>, %Bs: tensor<?x?x4xf32>, %Cs: tensor<?x?x4xf32>, %D: tensor<?xf32>, %state: tensor<?x?x?x15xf32>) -> (tensor<?x?x?x?xf32>, tensor<?x?x?x15xf32>) {
  %out, %s = fem.mixer ssm v(%v : tensor<?x?x?x?xf32>) beta_raw(%beta_raw : tensor<?xf32>) lam(%lam : tensor<?x?x?x?xf32>) gate(%gate : tensor<?x?x?x?xf32>) delta(%delta : tensor<?x?x?xf32>) A(%A : tensor<?x4xf32>) Bs(%Bs : tensor<?x?x4xf32>) Cs(%Cs : tensor<?x?x4xf32>) D(%D : tensor<?xf32>) state(%state : tensor<?x?x?x15xf32>) {tiles = #fem.tiles<q = 16, k = 8, vec = 8>} -> tensor<?x?x?x?xf32>, tensor<?x?x?x15xf32>
  return %out, %s : tensor<?x?x?x?xf32>, tensor<?x?x?x15xf32>
}
