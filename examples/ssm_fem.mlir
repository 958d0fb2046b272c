// A kernel-level FEM read with the ssm prior (a selective scan,
// docs/semantics.md): no queries or keys; per flat channel e = h*dv + c a
// state of N = 16 driven by the step sizes delta (B,T,E), the decay rates
// A (E,N), the projections Bs and Cs (B,T,N) and the skip weights D (E).
// v is the value before the sigmoid squash. 4 heads of width 64 (E = 256).
//
//   femc examples/ssm_fem.mlir -o out/
//   fem-run out/ssm_fem.so --dim B=2 --dim T=1000 --check
func.func @ssm_fem(%v: tensor<?x?x4x64xf32>, %beta_raw: tensor<256xf32>,
                   %lam: tensor<?x?x4x64xf32>, %gate: tensor<?x?x4x64xf32>,
                   %delta: tensor<?x?x256xf32>, %A: tensor<256x16xf32>,
                   %Bs: tensor<?x?x16xf32>, %Cs: tensor<?x?x16xf32>,
                   %D: tensor<256xf32>) -> tensor<?x?x4x64xf32> {
  %out = fem.mixer ssm v(%v : tensor<?x?x4x64xf32>)
      beta_raw(%beta_raw : tensor<256xf32>) lam(%lam : tensor<?x?x4x64xf32>)
      gate(%gate : tensor<?x?x4x64xf32>) delta(%delta : tensor<?x?x256xf32>)
      A(%A : tensor<256x16xf32>) Bs(%Bs : tensor<?x?x16xf32>)
      Cs(%Cs : tensor<?x?x16xf32>) D(%D : tensor<256xf32>)
      -> tensor<?x?x4x64xf32>
  return %out : tensor<?x?x4x64xf32>
}
