// Benchmark kernels: B and T dynamic, H = 8 heads of width dk = dv = 64,
// causal and non-causal, in f32 and in bf16 (bench/run_bench.py; on a host
// with AMX-BF16 the bf16 kernels run both contractions on AMX tiles).
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

func.func @fem_causal_bf16(%q: tensor<?x?x8x64xbf16>, %k: tensor<?x?x8x64xbf16>,
                      %v: tensor<?x?x8x64xbf16>, %beta_raw: tensor<512xbf16>,
                      %lam: tensor<?x?x8x64xbf16>, %gate: tensor<?x?x8x64xbf16>)
    -> tensor<?x?x8x64xbf16> {
  %out = fem.mixer softmax q(%q : tensor<?x?x8x64xbf16>)
      k(%k : tensor<?x?x8x64xbf16>) v(%v : tensor<?x?x8x64xbf16>)
      beta_raw(%beta_raw : tensor<512xbf16>) lam(%lam : tensor<?x?x8x64xbf16>)
      gate(%gate : tensor<?x?x8x64xbf16>) {causal} -> tensor<?x?x8x64xbf16>
  return %out : tensor<?x?x8x64xbf16>
}

func.func @fem_full_bf16(%q: tensor<?x?x8x64xbf16>, %k: tensor<?x?x8x64xbf16>,
                      %v: tensor<?x?x8x64xbf16>, %beta_raw: tensor<512xbf16>,
                      %lam: tensor<?x?x8x64xbf16>, %gate: tensor<?x?x8x64xbf16>)
    -> tensor<?x?x8x64xbf16> {
  %out = fem.mixer softmax q(%q : tensor<?x?x8x64xbf16>)
      k(%k : tensor<?x?x8x64xbf16>) v(%v : tensor<?x?x8x64xbf16>)
      beta_raw(%beta_raw : tensor<512xbf16>) lam(%lam : tensor<?x?x8x64xbf16>)
      gate(%gate : tensor<?x?x8x64xbf16>) -> tensor<?x?x8x64xbf16>
  return %out : tensor<?x?x8x64xbf16>
}
