func.func @ssm_with_keys(%q: memref<?x?x2x8xf32>, %b: memref<16xf32>, %x: index) {
  // expected-error @+1 {{operand 'q' is not used by prior 'ssm'}}
  fem.scan_read ssm q(%q : memref<?x?x2x8xf32>) v(%q : memref<?x?x2x8xf32>) beta_raw(%b : memref<16xf32>) lam(%q : memref<?x?x2x8xf32>) gate(%q : memref<?x?x2x8xf32>) out(%q : memref<?x?x2x8xf32>) at(%x, %x, %x) {tiles = #fem.tiles<q = 64, k = 8, vec = 8>}
  return
}
