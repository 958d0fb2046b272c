// RUN: fem-opt %s -split-input-file -verify-diagnostics

// A static dk = 0 (the priors with keys) or N = 0 (ssm) was accepted and the
// kernel wrote NaN (softmax, gla) or an answer the reference does not define
// (linear, ssm); the reference refuses both. Hkv = 0 said "H = 0 must be a
// multiple of Hkv = 0".

func.func @softmax_dk0(%q: tensor<1x4x8x0xf32>, %v: tensor<1x4x8x64xf32>, %b: tensor<512xf32>) -> tensor<1x4x8x64xf32> {
  // expected-error @+1 {{'fem.mixer' op prior 'softmax' needs dk >= 1 (the width of q and k), found dk = 0 (operand 'q')}}
  %out = fem.mixer softmax q(%q : tensor<1x4x8x0xf32>) k(%q : tensor<1x4x8x0xf32>) v(%v : tensor<1x4x8x64xf32>) beta_raw(%b : tensor<512xf32>) lam(%v : tensor<1x4x8x64xf32>) gate(%v : tensor<1x4x8x64xf32>) {causal} -> tensor<1x4x8x64xf32>
  return %out : tensor<1x4x8x64xf32>
}

// -----

// dk fixed by k when q is dynamic there.
func.func @linear_dk0_from_k(%q: tensor<?x?x2x?xf32>, %k: tensor<?x?x2x0xf32>, %v: tensor<?x?x2x8xf32>, %b: tensor<16xf32>) -> tensor<?x?x2x8xf32> {
  // expected-error @+1 {{'fem.mixer' op prior 'linear' needs dk >= 1 (the width of q and k), found dk = 0 (operand 'k')}}
  %out = fem.mixer linear q(%q : tensor<?x?x2x?xf32>) k(%k : tensor<?x?x2x0xf32>) v(%v : tensor<?x?x2x8xf32>) beta_raw(%b : tensor<16xf32>) lam(%v : tensor<?x?x2x8xf32>) gate(%v : tensor<?x?x2x8xf32>) {causal} -> tensor<?x?x2x8xf32>
  return %out : tensor<?x?x2x8xf32>
}

// -----

// aft: the dk >= 1 message, not "dk = 0 must divide dv".
func.func @aft_dk0(%q: tensor<?x?x2x0xf32>, %v: tensor<?x?x2x8xf32>, %b: tensor<16xf32>) -> tensor<?x?x2x8xf32> {
  // expected-error @+1 {{prior 'aft' needs dk >= 1 (the width of q and k), found dk = 0 (operand 'q')}}
  %out = fem.mixer aft q(%q : tensor<?x?x2x0xf32>) k(%q : tensor<?x?x2x0xf32>) v(%v : tensor<?x?x2x8xf32>) beta_raw(%b : tensor<16xf32>) lam(%v : tensor<?x?x2x8xf32>) gate(%v : tensor<?x?x2x8xf32>) -> tensor<?x?x2x8xf32>
  return %out : tensor<?x?x2x8xf32>
}

// -----

func.func @ssm_n0(%v: tensor<?x?x2x8xf32>, %b: tensor<16xf32>, %delta: tensor<?x?x16xf32>, %A: tensor<16x0xf32>, %Bs: tensor<?x?x0xf32>) -> tensor<?x?x2x8xf32> {
  // expected-error @+1 {{'fem.mixer' op prior 'ssm' needs N >= 1 (the state size of A, Bs and Cs), found N = 0 (operand 'A')}}
  %out = fem.mixer ssm v(%v : tensor<?x?x2x8xf32>) beta_raw(%b : tensor<16xf32>) lam(%v : tensor<?x?x2x8xf32>) gate(%v : tensor<?x?x2x8xf32>) delta(%delta : tensor<?x?x16xf32>) A(%A : tensor<16x0xf32>) Bs(%Bs : tensor<?x?x0xf32>) Cs(%Bs : tensor<?x?x0xf32>) D(%b : tensor<16xf32>) -> tensor<?x?x2x8xf32>
  return %out : tensor<?x?x2x8xf32>
}

// -----

func.func @hkv0(%q: tensor<1x4x0x64xf32>, %b: tensor<0xf32>) -> tensor<1x4x0x64xf32> {
  // expected-error @+1 {{'fem.mixer' op the number of key/value heads Hkv (operand 'k') must be at least 1, found 0}}
  %out = fem.mixer softmax q(%q : tensor<1x4x0x64xf32>) k(%q : tensor<1x4x0x64xf32>) v(%q : tensor<1x4x0x64xf32>) beta_raw(%b : tensor<0xf32>) lam(%q : tensor<1x4x0x64xf32>) gate(%q : tensor<1x4x0x64xf32>) {causal} -> tensor<1x4x0x64xf32>
  return %out : tensor<1x4x0x64xf32>
}

// -----

// The tiled forms check the same (dialect/FEMPriors.cpp).
func.func @scan_read_gla_dk0(%q: memref<?x?x2x0xf32>, %v: memref<?x?x2x8xf32>, %b: memref<16xf32>, %d: memref<?x?x2xf32>, %x: index) {
  // expected-error @+1 {{'fem.scan_read' op prior 'gla' needs dk >= 1 (the width of q and k), found dk = 0 (operand 'q')}}
  fem.scan_read gla q(%q : memref<?x?x2x0xf32>) k(%q : memref<?x?x2x0xf32>) v(%v : memref<?x?x2x8xf32>) beta_raw(%b : memref<16xf32>) lam(%v : memref<?x?x2x8xf32>) gate(%v : memref<?x?x2x8xf32>) decay(%d : memref<?x?x2xf32>) out(%v : memref<?x?x2x8xf32>) at(%x, %x, %x) {tiles = #fem.tiles<q = 64, k = 8, vec = 8>}
  return
}

// -----

func.func @scan_read_ssm_n0(%v: memref<?x?x2x8xf32>, %b: memref<16xf32>, %delta: memref<?x?x16xf32>, %A: memref<16x0xf32>, %Bs: memref<?x?x0xf32>, %x: index) {
  // expected-error @+1 {{'fem.scan_read' op prior 'ssm' needs N >= 1 (the state size of A, Bs and Cs), found N = 0 (operand 'A')}}
  fem.scan_read ssm v(%v : memref<?x?x2x8xf32>) beta_raw(%b : memref<16xf32>) lam(%v : memref<?x?x2x8xf32>) gate(%v : memref<?x?x2x8xf32>) delta(%delta : memref<?x?x16xf32>) A(%A : memref<16x0xf32>) Bs(%Bs : memref<?x?x0xf32>) Cs(%Bs : memref<?x?x0xf32>) D(%b : memref<16xf32>) out(%v : memref<?x?x2x8xf32>) at(%x, %x, %x) {tiles = #fem.tiles<q = 64, k = 8, vec = 8>}
  return
}

// -----

// H = 0 for ssm (no keys, v carries H): said by fem.mixer itself, not by the
// fem.tilt it decomposes into, as "key/value heads".
func.func @ssm_h0(%v: tensor<?x?x0x8xf32>, %b: tensor<0xf32>, %delta: tensor<?x?x0xf32>, %A: tensor<0x4xf32>, %Bs: tensor<?x?x4xf32>) -> tensor<?x?x0x8xf32> {
  // expected-error @+1 {{'fem.mixer' op the number of heads H (operand 'v') must be at least 1, found 0}}
  %out = fem.mixer ssm v(%v : tensor<?x?x0x8xf32>) beta_raw(%b : tensor<0xf32>) lam(%v : tensor<?x?x0x8xf32>) gate(%v : tensor<?x?x0x8xf32>) delta(%delta : tensor<?x?x0xf32>) A(%A : tensor<0x4xf32>) Bs(%Bs : tensor<?x?x4xf32>) Cs(%Bs : tensor<?x?x4xf32>) D(%b : tensor<0xf32>) -> tensor<?x?x0x8xf32>
  return %out : tensor<?x?x0x8xf32>
}

// -----

// H = 0 with Hkv = 2 (0 is a multiple of 2): refused as well.
func.func @softmax_h0(%q: tensor<1x4x0x64xf32>, %k: tensor<1x4x2x64xf32>, %b: tensor<0xf32>) -> tensor<1x4x0x64xf32> {
  // expected-error @+1 {{'fem.mixer' op the number of heads H (operand 'q') must be at least 1, found 0}}
  %out = fem.mixer softmax q(%q : tensor<1x4x0x64xf32>) k(%k : tensor<1x4x2x64xf32>) v(%k : tensor<1x4x2x64xf32>) beta_raw(%b : tensor<0xf32>) lam(%q : tensor<1x4x0x64xf32>) gate(%q : tensor<1x4x0x64xf32>) {causal} -> tensor<1x4x0x64xf32>
  return %out : tensor<1x4x0x64xf32>
}

// -----

func.func @scan_read_ssm_h0(%v: memref<?x?x0x8xf32>, %b: memref<0xf32>, %delta: memref<?x?x0xf32>, %A: memref<0x4xf32>, %Bs: memref<?x?x4xf32>, %x: index) {
  // expected-error @+1 {{'fem.scan_read' op the number of heads H (operand 'v') must be at least 1, found 0}}
  fem.scan_read ssm v(%v : memref<?x?x0x8xf32>) beta_raw(%b : memref<0xf32>) lam(%v : memref<?x?x0x8xf32>) gate(%v : memref<?x?x0x8xf32>) delta(%delta : memref<?x?x0xf32>) A(%A : memref<0x4xf32>) Bs(%Bs : memref<?x?x4xf32>) Cs(%Bs : memref<?x?x4xf32>) D(%b : memref<0xf32>) out(%v : memref<?x?x0x8xf32>) at(%x, %x, %x) {tiles = #fem.tiles<q = 64, k = 8, vec = 8>}
  return
}

// -----

// Zero extents elsewhere stay accepted: an empty batch, sequence or value
// width makes an empty output.
func.func @empty_sequence_ok(%q: tensor<1x0x2x8xf32>, %b: tensor<16xf32>) -> tensor<1x0x2x8xf32> {
  %out = fem.mixer softmax q(%q : tensor<1x0x2x8xf32>) k(%q : tensor<1x0x2x8xf32>) v(%q : tensor<1x0x2x8xf32>) beta_raw(%b : tensor<16xf32>) lam(%q : tensor<1x0x2x8xf32>) gate(%q : tensor<1x0x2x8xf32>) {causal} -> tensor<1x0x2x8xf32>
  return %out : tensor<1x0x2x8xf32>
}
