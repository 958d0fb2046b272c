func.func @ssm_state_size_mismatch(%v: memref<?x?x2x8xf32>, %b: memref<16xf32>, %delta: memref<?x?x16xf32>, %A: memref<16x4xf32>, %Bs: memref<?x?x5xf32>, %x: index) {
  // expected-error @+1 {{operand 'Bs' dimension 2 (N) must be 4 to match operand 'A', found 5}}
  fem.scan_read ssm v(%v : memref<?x?x2x8xf32>) beta_raw(%b : memref<16xf32>) lam(%v : memref<?x?x2x8xf32>) gate(%v : memref<?x?x2x8xf32>) delta(%delta : memref<?x?x16xf32>) A(%A : memref<16x4xf32>) Bs(%Bs : memref<?x?x5xf32>) Cs(%Bs : memref<?x?x5xf32>) D(%b : memref<16xf32>) out(%v : memref<?x?x2x8xf32>) at(%x, %x, %x) {tiles = #fem.tiles<q = 64, k = 8, vec = 8>}
  return
}
