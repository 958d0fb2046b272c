// CHECK-LABEL: func.func @mixer_every_prior
//       CHECK:   fem.mixer linear
//       CHECK:   fem.mixer gla {{.*}} decay(%{{.*}} : tensor<?x?x4xf32>)
//       CHECK:   fem.mixer aft
//       CHECK:   fem.mixer ssm v({{.*}}) {{.*}} delta(%{{.*}} : tensor<?x?x64xf32>) A(%{{.*}} : tensor<64x8xf32>) Bs(%{{.*}} : tensor<?x?x8xf32>) Cs(%{{.*}} : tensor<?x?x8xf32>) D(%{{.*}} : tensor<64xf32>)
func.func @mixer_every_prior(%q: tensor<?x?x4x16xf32>, %k: tensor<?x?x4x16xf32>,
    %v: tensor<?x?x4x16xf32>, %b: tensor<64xf32>, %l: tensor<?x?x4x16xf32>,
    %g: tensor<?x?x4x16xf32>, %decay: tensor<?x?x4xf32>, %delta: tensor<?x?x64xf32>,
    %A: tensor<64x8xf32>, %Bs: tensor<?x?x8xf32>, %Cs: tensor<?x?x8xf32>, %D: tensor<64xf32>)
    -> (tensor<?x?x4x16xf32>, tensor<?x?x4x16xf32>, tensor<?x?x4x16xf32>, tensor<?x?x4x16xf32>) {
  %0 = fem.mixer linear q(%q : tensor<?x?x4x16xf32>) k(%k : tensor<?x?x4x16xf32>)
      v(%v : tensor<?x?x4x16xf32>) beta_raw(%b : tensor<64xf32>) lam(%l : tensor<?x?x4x16xf32>)
      gate(%g : tensor<?x?x4x16xf32>) {causal} -> tensor<?x?x4x16xf32>
  %1 = fem.mixer gla q(%q : tensor<?x?x4x16xf32>) k(%k : tensor<?x?x4x16xf32>)
      v(%v : tensor<?x?x4x16xf32>) beta_raw(%b : tensor<64xf32>) lam(%l : tensor<?x?x4x16xf32>)
      gate(%g : tensor<?x?x4x16xf32>) decay(%decay : tensor<?x?x4xf32>) -> tensor<?x?x4x16xf32>
  %2 = fem.mixer aft q(%q : tensor<?x?x4x16xf32>) k(%k : tensor<?x?x4x16xf32>)
      v(%v : tensor<?x?x4x16xf32>) beta_raw(%b : tensor<64xf32>) lam(%l : tensor<?x?x4x16xf32>)
      gate(%g : tensor<?x?x4x16xf32>) -> tensor<?x?x4x16xf32>
  %3 = fem.mixer ssm v(%v : tensor<?x?x4x16xf32>) beta_raw(%b : tensor<64xf32>)
      lam(%l : tensor<?x?x4x16xf32>) gate(%g : tensor<?x?x4x16xf32>)
      delta(%delta : tensor<?x?x64xf32>) A(%A : tensor<64x8xf32>) Bs(%Bs : tensor<?x?x8xf32>)
      Cs(%Cs : tensor<?x?x8xf32>) D(%D : tensor<64xf32>) -> tensor<?x?x4x16xf32>
  return %0, %1, %2, %3 : tensor<?x?x4x16xf32>, tensor<?x?x4x16xf32>, tensor<?x?x4x16xf32>, tensor<?x?x4x16xf32>
}
