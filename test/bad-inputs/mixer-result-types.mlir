// RUN: fem-opt %s -split-input-file -verify-diagnostics
// RUN: not fem-opt %s -split-input-file -fem-expand-mixer 2>&1 | FileCheck %s --check-prefix=NOGATE

// A fem.mixer without a carried state is expanded into fem.expect, fem.lse
// and fem.gate, and fem.gate takes lam, gate and the result as one type. A
// static extent in one of them and a dynamic one in another (legal-looking
// IR: the extents agree where both are static) failed in fem-expand-mixer
// with "'fem.gate' op failed to verify that all of {mu, free_energy, lam,
// gate, result} have same type", naming an op the model does not have (BI
// round 7). The mixer now says which operand and both types.
// NOGATE-NOT: 'fem.gate' op
// NOGATE: func.func @mixed_elsewhere
// NOGATE: fem.gate
// NOGATE-NOT: 'fem.gate' op

func.func @result_dynamic(%q: tensor<1x4x2x8xf32>, %b: tensor<16xf32>) -> tensor<?x4x2x8xf32> {
  // expected-error @+1 {{'fem.mixer' op operand 'lam' has type 'tensor<1x4x2x8xf32>' but the result has type 'tensor<?x4x2x8xf32>': a mixer without a carried state needs lam, gate and its result of one type (write each extent static in all three or dynamic in all three)}}
  %o = fem.mixer softmax q(%q : tensor<1x4x2x8xf32>) k(%q : tensor<1x4x2x8xf32>) v(%q : tensor<1x4x2x8xf32>) beta_raw(%b : tensor<16xf32>) lam(%q : tensor<1x4x2x8xf32>) gate(%q : tensor<1x4x2x8xf32>) -> tensor<?x4x2x8xf32>
  return %o : tensor<?x4x2x8xf32>
}

// -----

func.func @gate_dynamic(%q: tensor<1x4x2x8xf32>, %g: tensor<?x?x?x?xf32>, %b: tensor<16xf32>) -> tensor<1x4x2x8xf32> {
  // expected-error @+1 {{'fem.mixer' op operand 'gate' has type 'tensor<?x?x?x?xf32>' but the result has type 'tensor<1x4x2x8xf32>'}}
  %o = fem.mixer linear q(%q : tensor<1x4x2x8xf32>) k(%q : tensor<1x4x2x8xf32>) v(%q : tensor<1x4x2x8xf32>) beta_raw(%b : tensor<16xf32>) lam(%q : tensor<1x4x2x8xf32>) gate(%g : tensor<?x?x?x?xf32>) {causal} -> tensor<1x4x2x8xf32>
  return %o : tensor<1x4x2x8xf32>
}

// -----

// Other operands may mix static and dynamic extents (q, k, v here), and so
// may lam and gate of a mixer that carries a state (it stays whole and
// becomes one fem.scan_read).
func.func @mixed_elsewhere(%q: tensor<1x4x2x8xf32>, %k: tensor<?x?x2x8xf32>, %b: tensor<16xf32>) -> tensor<1x4x2x8xf32> {
  %o = fem.mixer softmax q(%k : tensor<?x?x2x8xf32>) k(%q : tensor<1x4x2x8xf32>) v(%k : tensor<?x?x2x8xf32>) beta_raw(%b : tensor<16xf32>) lam(%q : tensor<1x4x2x8xf32>) gate(%q : tensor<1x4x2x8xf32>) {causal} -> tensor<1x4x2x8xf32>
  return %o : tensor<1x4x2x8xf32>
}

func.func @state_mixed(%q: tensor<1x4x2x8xf32>, %v: tensor<1x4x2x16xf32>, %b: tensor<32xf32>, %l: tensor<?x?x2x16xf32>, %s: tensor<1x2x16x28xf32>) -> (tensor<1x4x2x16xf32>, tensor<1x2x16x28xf32>) {
  %o, %so = fem.mixer linear q(%q : tensor<1x4x2x8xf32>) k(%q : tensor<1x4x2x8xf32>) v(%v : tensor<1x4x2x16xf32>) beta_raw(%b : tensor<32xf32>) lam(%l : tensor<?x?x2x16xf32>) gate(%v : tensor<1x4x2x16xf32>) state(%s : tensor<1x2x16x28xf32>) {causal} -> tensor<1x4x2x16xf32>, tensor<1x2x16x28xf32>
  return %o, %so : tensor<1x4x2x16xf32>, tensor<1x2x16x28xf32>
}
