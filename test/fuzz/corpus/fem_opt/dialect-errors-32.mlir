func.func @gate_rank(%x: tensor<8x4x16xf32>) {
  // expected-error @+1 {{result must have rank 4 (B,T,H,dv), found rank 3}}
  %o = fem.gate %x, %x, %x, %x : tensor<8x4x16xf32>
  return
}
