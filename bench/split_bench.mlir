// The scan priors at dk = 64 (ssm: N = 16), every other extent dynamic,
// for bench/split_bench.sh (docs/benchmarks.md, "Both cores at B = H = 1").

func.func @linear_split(%q: tensor<?x?x?x64xf32>, %k: tensor<?x?x?x64xf32>, %v: tensor<?x?x?x?xf32>, %beta_raw: tensor<?xf32>, %lam: tensor<?x?x?x?xf32>, %gate: tensor<?x?x?x?xf32>) -> tensor<?x?x?x?xf32> {
  %out = fem.mixer linear q(%q : tensor<?x?x?x64xf32>) k(%k : tensor<?x?x?x64xf32>) v(%v : tensor<?x?x?x?xf32>) beta_raw(%beta_raw : tensor<?xf32>) lam(%lam : tensor<?x?x?x?xf32>) gate(%gate : tensor<?x?x?x?xf32>) {causal} -> tensor<?x?x?x?xf32>
  return %out : tensor<?x?x?x?xf32>
}

func.func @gla_split(%q: tensor<?x?x?x64xf32>, %k: tensor<?x?x?x64xf32>, %v: tensor<?x?x?x?xf32>, %beta_raw: tensor<?xf32>, %lam: tensor<?x?x?x?xf32>, %gate: tensor<?x?x?x?xf32>, %decay: tensor<?x?x?xf32>) -> tensor<?x?x?x?xf32> {
  %out = fem.mixer gla q(%q : tensor<?x?x?x64xf32>) k(%k : tensor<?x?x?x64xf32>) v(%v : tensor<?x?x?x?xf32>) beta_raw(%beta_raw : tensor<?xf32>) lam(%lam : tensor<?x?x?x?xf32>) gate(%gate : tensor<?x?x?x?xf32>) decay(%decay : tensor<?x?x?xf32>) -> tensor<?x?x?x?xf32>
  return %out : tensor<?x?x?x?xf32>
}

func.func @aft_split(%q: tensor<?x?x?x64xf32>, %k: tensor<?x?x?x64xf32>, %v: tensor<?x?x?x?xf32>, %beta_raw: tensor<?xf32>, %lam: tensor<?x?x?x?xf32>, %gate: tensor<?x?x?x?xf32>) -> tensor<?x?x?x?xf32> {
  %out = fem.mixer aft q(%q : tensor<?x?x?x64xf32>) k(%k : tensor<?x?x?x64xf32>) v(%v : tensor<?x?x?x?xf32>) beta_raw(%beta_raw : tensor<?xf32>) lam(%lam : tensor<?x?x?x?xf32>) gate(%gate : tensor<?x?x?x?xf32>) -> tensor<?x?x?x?xf32>
  return %out : tensor<?x?x?x?xf32>
}

func.func @ssm_split(%v: tensor<?x?x?x?xf32>, %beta_raw: tensor<?xf32>, %lam: tensor<?x?x?x?xf32>, %gate: tensor<?x?x?x?xf32>, %delta: tensor<?x?x?xf32>, %A: tensor<?x16xf32>, %Bs: tensor<?x?x16xf32>, %Cs: tensor<?x?x16xf32>, %D: tensor<?xf32>) -> tensor<?x?x?x?xf32> {
  %out = fem.mixer ssm v(%v : tensor<?x?x?x?xf32>) beta_raw(%beta_raw : tensor<?xf32>) lam(%lam : tensor<?x?x?x?xf32>) gate(%gate : tensor<?x?x?x?xf32>) delta(%delta : tensor<?x?x?xf32>) A(%A : tensor<?x16xf32>) Bs(%Bs : tensor<?x?x16xf32>) Cs(%Cs : tensor<?x?x16xf32>) D(%D : tensor<?xf32>) -> tensor<?x?x?x?xf32>
  return %out : tensor<?x?x?x?xf32>
}
