// Benchmark kernels: B and T dynamic, H = 8 heads of width dk = dv = 64,
// causal and non-causal (bench/run_bench.py).
func.func @fem_causal(%q: tensor<?x?x8x64xf32>, %k: tensor<?x?x8x64xf32>,
                      %v: tensor<?x?x8x64xf32>, %beta_raw: tensor<512xf32>,
                      %lam: tensor<?x?x8x64xf32>, %gate: tensor<?x?x8x64xf32>)
    -> tensor<?x?x8x64xf32> {
  %out = fem.mixer softmax q(%q : tensor<?x?x8x64xf32>)
      k(%k : tensor<?x?x8x64xf32>) v(%v : tensor<?x?x8x64xf32>)
      beta_raw(%beta_raw : tensor<512xf32>) lam(%lam : tensor<?x?x8x64xf32>)
      gate(%gate : tensor<?x?x8x64xf32>) {causal} -> tensor<?x?x8x64xf32>
  return %out : tensor<?x?x8x64xf32>
}

func.func @fem_full(%q: tensor<?x?x8x64xf32>, %k: tensor<?x?x8x64xf32>,
                    %v: tensor<?x?x8x64xf32>, %beta_raw: tensor<512xf32>,
                    %lam: tensor<?x?x8x64xf32>, %gate: tensor<?x?x8x64xf32>)
    -> tensor<?x?x8x64xf32> {
  %out = fem.mixer softmax q(%q : tensor<?x?x8x64xf32>)
      k(%k : tensor<?x?x8x64xf32>) v(%v : tensor<?x?x8x64xf32>)
      beta_raw(%beta_raw : tensor<512xf32>) lam(%lam : tensor<?x?x8x64xf32>)
      gate(%gate : tensor<?x?x8x64xf32>) -> tensor<?x?x8x64xf32>
  return %out : tensor<?x?x8x64xf32>
}
