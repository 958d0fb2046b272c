// Scan-prior benchmark kernels (bench/scan_bench.py): B and T dynamic, H = 8
// heads of width dk = dv = 64; ssm with E = H*dv = 512 channels and N = 16.
func.func @linear_causal(%q: tensor<?x?x8x64xf32>, %k: tensor<?x?x8x64xf32>,
                         %v: tensor<?x?x8x64xf32>, %beta_raw: tensor<512xf32>,
                         %lam: tensor<?x?x8x64xf32>, %gate: tensor<?x?x8x64xf32>)
    -> tensor<?x?x8x64xf32> {
  %out = fem.mixer linear q(%q : tensor<?x?x8x64xf32>)
      k(%k : tensor<?x?x8x64xf32>) v(%v : tensor<?x?x8x64xf32>)
      beta_raw(%beta_raw : tensor<512xf32>) lam(%lam : tensor<?x?x8x64xf32>)
      gate(%gate : tensor<?x?x8x64xf32>) {causal} -> tensor<?x?x8x64xf32>
  return %out : tensor<?x?x8x64xf32>
}

func.func @gla(%q: tensor<?x?x8x64xf32>, %k: tensor<?x?x8x64xf32>,
               %v: tensor<?x?x8x64xf32>, %beta_raw: tensor<512xf32>,
               %lam: tensor<?x?x8x64xf32>, %gate: tensor<?x?x8x64xf32>,
               %decay: tensor<?x?x8xf32>) -> tensor<?x?x8x64xf32> {
  %out = fem.mixer gla q(%q : tensor<?x?x8x64xf32>)
      k(%k : tensor<?x?x8x64xf32>) v(%v : tensor<?x?x8x64xf32>)
      beta_raw(%beta_raw : tensor<512xf32>) lam(%lam : tensor<?x?x8x64xf32>)
      gate(%gate : tensor<?x?x8x64xf32>) decay(%decay : tensor<?x?x8xf32>)
      -> tensor<?x?x8x64xf32>
  return %out : tensor<?x?x8x64xf32>
}

func.func @aft(%q: tensor<?x?x8x64xf32>, %k: tensor<?x?x8x64xf32>,
               %v: tensor<?x?x8x64xf32>, %beta_raw: tensor<512xf32>,
               %lam: tensor<?x?x8x64xf32>, %gate: tensor<?x?x8x64xf32>)
    -> tensor<?x?x8x64xf32> {
  %out = fem.mixer aft q(%q : tensor<?x?x8x64xf32>)
      k(%k : tensor<?x?x8x64xf32>) v(%v : tensor<?x?x8x64xf32>)
      beta_raw(%beta_raw : tensor<512xf32>) lam(%lam : tensor<?x?x8x64xf32>)
      gate(%gate : tensor<?x?x8x64xf32>) -> tensor<?x?x8x64xf32>
  return %out : tensor<?x?x8x64xf32>
}

func.func @ssm(%v: tensor<?x?x8x64xf32>, %beta_raw: tensor<512xf32>,
               %lam: tensor<?x?x8x64xf32>, %gate: tensor<?x?x8x64xf32>,
               %delta: tensor<?x?x512xf32>, %A: tensor<512x16xf32>,
               %Bs: tensor<?x?x16xf32>, %Cs: tensor<?x?x16xf32>,
               %D: tensor<512xf32>) -> tensor<?x?x8x64xf32> {
  %out = fem.mixer ssm v(%v : tensor<?x?x8x64xf32>)
      beta_raw(%beta_raw : tensor<512xf32>) lam(%lam : tensor<?x?x8x64xf32>)
      gate(%gate : tensor<?x?x8x64xf32>) delta(%delta : tensor<?x?x512xf32>)
      A(%A : tensor<512x16xf32>) Bs(%Bs : tensor<?x?x16xf32>)
      Cs(%Cs : tensor<?x?x16xf32>) D(%D : tensor<512xf32>)
      -> tensor<?x?x8x64xf32>
  return %out : tensor<?x?x8x64xf32>
}
