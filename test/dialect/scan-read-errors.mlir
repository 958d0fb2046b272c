// RUN: fem-opt %s -split-input-file -verify-diagnostics

// The scan form checks its operands against the prior table
// (dialect/Priors.h): required and forbidden operands, shapes, tiles.

func.func @gla_without_decay(%q: memref<?x?x2x8xf32>, %v: memref<?x?x2x8xf32>, %b: memref<16xf32>, %o: memref<?x?x2x8xf32>, %x: index) {
  // expected-error @+1 {{prior 'gla' requires operand 'decay'}}
  fem.scan_read gla q(%q : memref<?x?x2x8xf32>) k(%q : memref<?x?x2x8xf32>) v(%v : memref<?x?x2x8xf32>) beta_raw(%b : memref<16xf32>) lam(%o : memref<?x?x2x8xf32>) gate(%o : memref<?x?x2x8xf32>) out(%o : memref<?x?x2x8xf32>) at(%x, %x, %x) {tiles = #fem.tiles<q = 64, k = 8, vec = 8>}
  return
}

// -----

func.func @linear_with_decay(%q: memref<?x?x2x8xf32>, %b: memref<16xf32>, %d: memref<?x?x2xf32>, %x: index) {
  // expected-error @+1 {{operand 'decay' is not used by prior 'linear'}}
  fem.scan_read linear q(%q : memref<?x?x2x8xf32>) k(%q : memref<?x?x2x8xf32>) v(%q : memref<?x?x2x8xf32>) beta_raw(%b : memref<16xf32>) lam(%q : memref<?x?x2x8xf32>) gate(%q : memref<?x?x2x8xf32>) decay(%d : memref<?x?x2xf32>) out(%q : memref<?x?x2x8xf32>) at(%x, %x, %x) {tiles = #fem.tiles<q = 64, k = 8, vec = 8>}
  return
}

// -----

func.func @softmax_is_not_a_scan(%q: memref<?x?x2x8xf32>, %b: memref<16xf32>, %x: index) {
  // expected-error @+1 {{prior 'softmax' is not read by a scan; its tiled form is fem.tile_read}}
  fem.scan_read softmax q(%q : memref<?x?x2x8xf32>) k(%q : memref<?x?x2x8xf32>) v(%q : memref<?x?x2x8xf32>) beta_raw(%b : memref<16xf32>) lam(%q : memref<?x?x2x8xf32>) gate(%q : memref<?x?x2x8xf32>) out(%q : memref<?x?x2x8xf32>) at(%x, %x, %x) {tiles = #fem.tiles<q = 64, k = 8, vec = 8>}
  return
}

// -----

func.func @aft_dk_not_dividing_dv(%q: memref<?x?x2x3xf32>, %v: memref<?x?x2x8xf32>, %b: memref<16xf32>, %x: index) {
  // expected-error @+1 {{prior 'aft' requires dk to divide the read width 2 * dv = 16 (its q/k channels tile [V | X]), found dk = 3 and dv = 8}}
  fem.scan_read aft q(%q : memref<?x?x2x3xf32>) k(%q : memref<?x?x2x3xf32>) v(%v : memref<?x?x2x8xf32>) beta_raw(%b : memref<16xf32>) lam(%v : memref<?x?x2x8xf32>) gate(%v : memref<?x?x2x8xf32>) out(%v : memref<?x?x2x8xf32>) at(%x, %x, %x) {tiles = #fem.tiles<q = 64, k = 8, vec = 8>}
  return
}

// -----

func.func @ssm_state_size_mismatch(%v: memref<?x?x2x8xf32>, %b: memref<16xf32>, %delta: memref<?x?x16xf32>, %A: memref<16x4xf32>, %Bs: memref<?x?x5xf32>, %x: index) {
  // expected-error @+1 {{operand 'Bs' dimension 2 (N) must be 4 to match operand 'A', found 5}}
  fem.scan_read ssm v(%v : memref<?x?x2x8xf32>) beta_raw(%b : memref<16xf32>) lam(%v : memref<?x?x2x8xf32>) gate(%v : memref<?x?x2x8xf32>) delta(%delta : memref<?x?x16xf32>) A(%A : memref<16x4xf32>) Bs(%Bs : memref<?x?x5xf32>) Cs(%Bs : memref<?x?x5xf32>) D(%b : memref<16xf32>) out(%v : memref<?x?x2x8xf32>) at(%x, %x, %x) {tiles = #fem.tiles<q = 64, k = 8, vec = 8>}
  return
}

// -----

func.func @chunk_not_multiple_of_vec(%q: memref<?x?x2x8xf32>, %b: memref<16xf32>, %x: index) {
  // expected-error @+1 {{tiles #fem.tiles<q = 12, k = 8, vec = 8>: chunk (tile-q) of prior 'linear' must be a positive multiple of vec = 8 up to 512, found 12}}
  fem.scan_read linear q(%q : memref<?x?x2x8xf32>) k(%q : memref<?x?x2x8xf32>) v(%q : memref<?x?x2x8xf32>) beta_raw(%b : memref<16xf32>) lam(%q : memref<?x?x2x8xf32>) gate(%q : memref<?x?x2x8xf32>) out(%q : memref<?x?x2x8xf32>) at(%x, %x, %x) {tiles = #fem.tiles<q = 12, k = 8, vec = 8>}
  return
}

// -----

func.func @ssm_with_keys(%q: memref<?x?x2x8xf32>, %b: memref<16xf32>, %x: index) {
  // expected-error @+1 {{operand 'q' is not used by prior 'ssm'}}
  fem.scan_read ssm q(%q : memref<?x?x2x8xf32>) v(%q : memref<?x?x2x8xf32>) beta_raw(%b : memref<16xf32>) lam(%q : memref<?x?x2x8xf32>) gate(%q : memref<?x?x2x8xf32>) out(%q : memref<?x?x2x8xf32>) at(%x, %x, %x) {tiles = #fem.tiles<q = 64, k = 8, vec = 8>}
  return
}

// -----

// The carried state of the tiled form: (B, H, dv, Ks) with the prior's Ks.
func.func @scan_state_width(%q: memref<?x?x2x8xf32>, %v: memref<?x?x2x16xf32>, %b: memref<32xf32>, %s: memref<?x2x16x27xf32>, %x: index) {
  // expected-error @+1 {{operand 'state' dimension 3 (Ks) must be 28 for prior 'linear'}}
  fem.scan_read linear q(%q : memref<?x?x2x8xf32>) k(%q : memref<?x?x2x8xf32>) v(%v : memref<?x?x2x16xf32>) beta_raw(%b : memref<32xf32>) lam(%v : memref<?x?x2x16xf32>) gate(%v : memref<?x?x2x16xf32>) state(%s : memref<?x2x16x27xf32>) out(%v : memref<?x?x2x16xf32>) at(%x, %x, %x) {causal, tiles = #fem.tiles<q = 64, k = 8, vec = 8>}
  return
}

// -----

func.func @scan_state_out_heads(%q: memref<?x?x2x8xf32>, %v: memref<?x?x2x16xf32>, %b: memref<32xf32>, %s: memref<?x4x16x28xf32>, %x: index) {
  // expected-error @+1 {{operand 'state_out' dimension 1 (H) must be 2 to match operand 'q', found 4}}
  fem.scan_read linear q(%q : memref<?x?x2x8xf32>) k(%q : memref<?x?x2x8xf32>) v(%v : memref<?x?x2x16xf32>) beta_raw(%b : memref<32xf32>) lam(%v : memref<?x?x2x16xf32>) gate(%v : memref<?x?x2x16xf32>) out(%v : memref<?x?x2x16xf32>) state_out(%s : memref<?x4x16x28xf32>) at(%x, %x, %x) {causal, tiles = #fem.tiles<q = 64, k = 8, vec = 8>}
  return
}
