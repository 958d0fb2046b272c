// A layer whose mixer carries a state: refused (femc-state.test).
func.func @layer(%x: tensor<?x?x2x8xf32> {fem.dims = "B,T,H,dk"}, %b: tensor<16xf32>, %s: tensor<?x2x8x28xf32> {fem.dims = "B,H,dv,Ks"}) -> tensor<?x?x2x8xf32> {
  %y = arith.addf %x, %x : tensor<?x?x2x8xf32>
  %o, %so = fem.mixer linear q(%y : tensor<?x?x2x8xf32>) k(%y : tensor<?x?x2x8xf32>) v(%y : tensor<?x?x2x8xf32>) beta_raw(%b : tensor<16xf32>) lam(%y : tensor<?x?x2x8xf32>) gate(%y : tensor<?x?x2x8xf32>) state(%s : tensor<?x2x8x28xf32>) {causal} -> tensor<?x?x2x8xf32>, tensor<?x2x8x28xf32>
  return %o : tensor<?x?x2x8xf32>
}
