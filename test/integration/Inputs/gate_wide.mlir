// Scan kernels for fem-run-gate-wide.test: H = 2, dk = 16, dv = 32 (ssm:
// E = 64, N = 4), B and T dynamic, run on the gate logits of gate_wide.npy
// (1 x 40 x 2 x 32) that span softplus's branches.
func.func @linear(%q: tensor<?x?x2x16xf32>, %k: tensor<?x?x2x16xf32>,
                  %v: tensor<?x?x2x32xf32>, %beta_raw: tensor<64xf32>,
                  %lam: tensor<?x?x2x32xf32>, %gate: tensor<?x?x2x32xf32>)
    -> tensor<?x?x2x32xf32> {
  %out = fem.mixer linear q(%q : tensor<?x?x2x16xf32>)
      k(%k : tensor<?x?x2x16xf32>) v(%v : tensor<?x?x2x32xf32>)
      beta_raw(%beta_raw : tensor<64xf32>) lam(%lam : tensor<?x?x2x32xf32>)
      gate(%gate : tensor<?x?x2x32xf32>) {causal} -> tensor<?x?x2x32xf32>
  return %out : tensor<?x?x2x32xf32>
}

func.func @gla(%q: tensor<?x?x2x16xf32>, %k: tensor<?x?x2x16xf32>,
               %v: tensor<?x?x2x32xf32>, %beta_raw: tensor<64xf32>,
               %lam: tensor<?x?x2x32xf32>, %gate: tensor<?x?x2x32xf32>,
               %decay: tensor<?x?x2xf32>) -> tensor<?x?x2x32xf32> {
  %out = fem.mixer gla q(%q : tensor<?x?x2x16xf32>)
      k(%k : tensor<?x?x2x16xf32>) v(%v : tensor<?x?x2x32xf32>)
      beta_raw(%beta_raw : tensor<64xf32>) lam(%lam : tensor<?x?x2x32xf32>)
      gate(%gate : tensor<?x?x2x32xf32>) decay(%decay : tensor<?x?x2xf32>)
      -> tensor<?x?x2x32xf32>
  return %out : tensor<?x?x2x32xf32>
}

func.func @aft(%q: tensor<?x?x2x16xf32>, %k: tensor<?x?x2x16xf32>,
               %v: tensor<?x?x2x32xf32>, %beta_raw: tensor<64xf32>,
               %lam: tensor<?x?x2x32xf32>, %gate: tensor<?x?x2x32xf32>)
    -> tensor<?x?x2x32xf32> {
  %out = fem.mixer aft q(%q : tensor<?x?x2x16xf32>)
      k(%k : tensor<?x?x2x16xf32>) v(%v : tensor<?x?x2x32xf32>)
      beta_raw(%beta_raw : tensor<64xf32>) lam(%lam : tensor<?x?x2x32xf32>)
      gate(%gate : tensor<?x?x2x32xf32>) -> tensor<?x?x2x32xf32>
  return %out : tensor<?x?x2x32xf32>
}

func.func @ssm(%v: tensor<?x?x2x32xf32>, %beta_raw: tensor<64xf32>,
               %lam: tensor<?x?x2x32xf32>, %gate: tensor<?x?x2x32xf32>,
               %delta: tensor<?x?x64xf32>, %A: tensor<64x4xf32>,
               %Bs: tensor<?x?x4xf32>, %Cs: tensor<?x?x4xf32>,
               %D: tensor<64xf32>) -> tensor<?x?x2x32xf32> {
  %out = fem.mixer ssm v(%v : tensor<?x?x2x32xf32>)
      beta_raw(%beta_raw : tensor<64xf32>) lam(%lam : tensor<?x?x2x32xf32>)
      gate(%gate : tensor<?x?x2x32xf32>) delta(%delta : tensor<?x?x64xf32>)
      A(%A : tensor<64x4xf32>) Bs(%Bs : tensor<?x?x4xf32>)
      Cs(%Cs : tensor<?x?x4xf32>) D(%D : tensor<64xf32>)
      -> tensor<?x?x2x32xf32>
  return %out : tensor<?x?x2x32xf32>
}
