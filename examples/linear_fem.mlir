// A kernel-level FEM read with the linear prior (docs/semantics.md):
// w_ts = <phi(q_t), phi(k_s)> with phi(x) = relu(x) + eps, causal, layout
// bthd, 8 heads of width 64, any batch size and length. femc compiles it to
// a chunked O(T) scan (docs/architecture.md).
//
//   femc examples/linear_fem.mlir -o out/
//   fem-run out/linear_fem.so --dim B=2 --dim T=1000 --check
func.func @linear_fem(%q: tensor<?x?x8x64xf32>, %k: tensor<?x?x8x64xf32>,
                      %v: tensor<?x?x8x64xf32>, %beta_raw: tensor<512xf32>,
                      %lam: tensor<?x?x8x64xf32>, %gate: tensor<?x?x8x64xf32>)
    -> tensor<?x?x8x64xf32> {
  %out = fem.mixer linear q(%q : tensor<?x?x8x64xf32>)
      k(%k : tensor<?x?x8x64xf32>) v(%v : tensor<?x?x8x64xf32>)
      beta_raw(%beta_raw : tensor<512xf32>) lam(%lam : tensor<?x?x8x64xf32>)
      gate(%gate : tensor<?x?x8x64xf32>) {causal} -> tensor<?x?x8x64xf32>
  return %out : tensor<?x?x8x64xf32>
}
