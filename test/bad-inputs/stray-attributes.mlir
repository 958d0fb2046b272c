// RUN: fem-opt %s -split-input-file -verify-diagnostics

// Every fem op refuses an attribute that is neither one of its own nor
// carries a dialect prefix (dialect/StrayAttributes.h). MLIR keeps an
// unknown name as a discardable attribute, so a misspelt `capp = 2.0` on a
// fem.mixer compiled with the default cap (40) and no word, and a `cap` on
// fem.prior (the cap belongs to the tilt) was ignored the same way.

func.func @mixer_typo(%q: tensor<1x8x2x16xf32>, %v: tensor<1x8x2x16xf32>, %b: tensor<32xf32>, %d: tensor<1x8x2xf32>) -> tensor<1x8x2x16xf32> {
  // expected-error @+1 {{'fem.mixer' op has no attribute 'capp' (its attributes: cap, causal, eps, kind, layout, scale, tiles); an attribute of another dialect needs its prefix, e.g. 'fem.capp'}}
  %o = fem.mixer gla q(%q : tensor<1x8x2x16xf32>) k(%q : tensor<1x8x2x16xf32>) v(%v : tensor<1x8x2x16xf32>) beta_raw(%b : tensor<32xf32>) lam(%v : tensor<1x8x2x16xf32>) gate(%v : tensor<1x8x2x16xf32>) decay(%d : tensor<1x8x2xf32>) {capp = 2.0} -> tensor<1x8x2x16xf32>
  return %o : tensor<1x8x2x16xf32>
}

// -----

func.func @mixer_tile_typo(%v: tensor<1x8x2x16xf32>, %b: tensor<32xf32>, %delta: tensor<1x8x32xf32>, %A: tensor<32x4xf32>, %Bs: tensor<1x8x4xf32>) -> tensor<1x8x2x16xf32> {
  // expected-error @+1 {{'fem.mixer' op has no attribute 'tile'}}
  %o = fem.mixer ssm v(%v : tensor<1x8x2x16xf32>) beta_raw(%b : tensor<32xf32>) lam(%v : tensor<1x8x2x16xf32>) gate(%v : tensor<1x8x2x16xf32>) delta(%delta : tensor<1x8x32xf32>) A(%A : tensor<32x4xf32>) Bs(%Bs : tensor<1x8x4xf32>) Cs(%Bs : tensor<1x8x4xf32>) D(%b : tensor<32xf32>) {tile = #fem.tiles<q = 16, k = 16, vec = 8>} -> tensor<1x8x2x16xf32>
  return %o : tensor<1x8x2x16xf32>
}

// -----

func.func @prior_cap(%q: tensor<1x8x2x16xf32>) -> !fem.prior<linear, 1x2x8x8> {
  // expected-error @+1 {{'fem.prior' op has no attribute 'cap' (its attributes: causal, eps, kind, layout, scale)}}
  %p = fem.prior linear q(%q : tensor<1x8x2x16xf32>) k(%q : tensor<1x8x2x16xf32>) {cap = 2.0} -> !fem.prior<linear, 1x2x8x8>
  return %p : !fem.prior<linear, 1x2x8x8>
}

// -----

func.func @tilt_causal(%v: tensor<1x8x2x16xf32>, %b: tensor<32xf32>) -> tensor<1x8x2x16xf32> {
  // expected-error @+1 {{'fem.tilt' op has no attribute 'causal' (its attributes: cap, eps, layout, squash)}}
  %c, %t, %s = fem.tilt %v, %b {causal} : tensor<1x8x2x16xf32>, tensor<32xf32> -> tensor<1x8x2x16xf32>, tensor<1x8x2x16xf32>, tensor<1x2x16xf32>
  return %c : tensor<1x8x2x16xf32>
}

// -----

func.func @gate_eps_typo(%a: tensor<1x8x2x16xf32>) -> tensor<1x8x2x16xf32> {
  // expected-error @+1 {{'fem.gate' op has no attribute 'epsilon' (its attributes: eps, layout)}}
  %g = fem.gate %a, %a, %a, %a {epsilon = 1.0e-3} : tensor<1x8x2x16xf32>
  return %g : tensor<1x8x2x16xf32>
}

// -----

func.func @scan_read_typo(%q: memref<?x?x2x8xf32>, %b: memref<16xf32>, %x: index) {
  // expected-error @+1 {{'fem.scan_read' op has no attribute 'stateonly'}}
  fem.scan_read linear q(%q : memref<?x?x2x8xf32>) k(%q : memref<?x?x2x8xf32>) v(%q : memref<?x?x2x8xf32>) beta_raw(%b : memref<16xf32>) lam(%q : memref<?x?x2x8xf32>) gate(%q : memref<?x?x2x8xf32>) out(%q : memref<?x?x2x8xf32>) at(%x, %x, %x) {tiles = #fem.tiles<q = 64, k = 8, vec = 8>, stateonly}
  return
}

// -----

// Attributes with a dialect prefix stay allowed (passes attach such
// discardable attributes, e.g. fem.tiles on fem.prior).
func.func @prefixed_is_fine(%q: tensor<1x8x2x16xf32>, %v: tensor<1x8x2x16xf32>, %b: tensor<32xf32>) -> tensor<1x8x2x16xf32> {
  %p = fem.prior linear q(%q : tensor<1x8x2x16xf32>) k(%q : tensor<1x8x2x16xf32>) {fem.tiles = #fem.tiles<q = 16, k = 16, vec = 8>, my.note = "kept"} -> !fem.prior<linear, 1x2x8x8>
  %o = fem.mixer linear q(%q : tensor<1x8x2x16xf32>) k(%q : tensor<1x8x2x16xf32>) v(%v : tensor<1x8x2x16xf32>) beta_raw(%b : tensor<32xf32>) lam(%v : tensor<1x8x2x16xf32>) gate(%v : tensor<1x8x2x16xf32>) {cap = 2.0, my.note = 1 : i32} -> tensor<1x8x2x16xf32>
  return %o : tensor<1x8x2x16xf32>
}
