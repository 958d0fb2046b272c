// RUN: fem-opt %s -split-input-file -verify-diagnostics

// A carried state (docs/semantics.md, "Segments") is a (B, H, dv, Ks) f32
// tensor with Ks fixed by the prior, dk and N (dialect/Priors.h): wrong
// shapes, dtypes and priors are refused naming the operand.

func.func @wrong_ks(%q: tensor<?x?x2x8xf32>, %k: tensor<?x?x2x8xf32>, %v: tensor<?x?x2x16xf32>, %b: tensor<32xf32>, %l: tensor<?x?x2x16xf32>, %g: tensor<?x?x2x16xf32>, %s: tensor<?x2x16x27xf32>) -> (tensor<?x?x2x16xf32>) {
  // expected-error @+1 {{'fem.mixer' op operand 'state' dimension 3 (Ks) must be 28 for prior 'linear'}}
  %o = fem.mixer linear q(%q : tensor<?x?x2x8xf32>) k(%k : tensor<?x?x2x8xf32>) v(%v : tensor<?x?x2x16xf32>) beta_raw(%b : tensor<32xf32>) lam(%l : tensor<?x?x2x16xf32>) gate(%g : tensor<?x?x2x16xf32>) state(%s : tensor<?x2x16x27xf32>) {causal} -> tensor<?x?x2x16xf32>
  return %o : tensor<?x?x2x16xf32>
}

// -----

func.func @f16_state(%q: tensor<?x?x2x8xf32>, %k: tensor<?x?x2x8xf32>, %v: tensor<?x?x2x16xf32>, %b: tensor<32xf32>, %l: tensor<?x?x2x16xf32>, %g: tensor<?x?x2x16xf32>, %s: tensor<?x2x16x28xf16>) -> (tensor<?x?x2x16xf32>) {
  // expected-error @+1 {{'fem.mixer' op operand 'state' (the carried state) must be f32, found 'f16'}}
  %o = fem.mixer linear q(%q : tensor<?x?x2x8xf32>) k(%k : tensor<?x?x2x8xf32>) v(%v : tensor<?x?x2x16xf32>) beta_raw(%b : tensor<32xf32>) lam(%l : tensor<?x?x2x16xf32>) gate(%g : tensor<?x?x2x16xf32>) state(%s : tensor<?x2x16x28xf16>) {causal} -> tensor<?x?x2x16xf32>
  return %o : tensor<?x?x2x16xf32>
}

// -----

func.func @wrong_heads(%q: tensor<?x?x2x8xf32>, %k: tensor<?x?x2x8xf32>, %v: tensor<?x?x2x16xf32>, %b: tensor<32xf32>, %l: tensor<?x?x2x16xf32>, %g: tensor<?x?x2x16xf32>, %s: tensor<?x3x16x28xf32>) -> (tensor<?x?x2x16xf32>) {
  // expected-error @+1 {{'fem.mixer' op operand 'state' dimension 1 (H) must be 2 to match operand 'q', found 3}}
  %o = fem.mixer linear q(%q : tensor<?x?x2x8xf32>) k(%k : tensor<?x?x2x8xf32>) v(%v : tensor<?x?x2x16xf32>) beta_raw(%b : tensor<32xf32>) lam(%l : tensor<?x?x2x16xf32>) gate(%g : tensor<?x?x2x16xf32>) state(%s : tensor<?x3x16x28xf32>) {causal} -> tensor<?x?x2x16xf32>
  return %o : tensor<?x?x2x16xf32>
}

// -----

func.func @wrong_rank(%q: tensor<?x?x2x8xf32>, %k: tensor<?x?x2x8xf32>, %v: tensor<?x?x2x16xf32>, %b: tensor<32xf32>, %l: tensor<?x?x2x16xf32>, %g: tensor<?x?x2x16xf32>, %s: tensor<?x2x16xf32>) -> (tensor<?x?x2x16xf32>) {
  // expected-error @+1 {{'fem.mixer' op operand 'state' must have rank 4 (B,H,dv,Ks), found rank 3}}
  %o = fem.mixer linear q(%q : tensor<?x?x2x8xf32>) k(%k : tensor<?x?x2x8xf32>) v(%v : tensor<?x?x2x16xf32>) beta_raw(%b : tensor<32xf32>) lam(%l : tensor<?x?x2x16xf32>) gate(%g : tensor<?x?x2x16xf32>) state(%s : tensor<?x2x16xf32>) {causal} -> tensor<?x?x2x16xf32>
  return %o : tensor<?x?x2x16xf32>
}

// -----

func.func @softmax_state(%q: tensor<?x?x2x8xf32>, %k: tensor<?x?x2x8xf32>, %v: tensor<?x?x2x16xf32>, %b: tensor<32xf32>, %l: tensor<?x?x2x16xf32>, %g: tensor<?x?x2x16xf32>, %s: tensor<?x2x16x28xf32>) -> (tensor<?x?x2x16xf32>) {
  // expected-error @+1 {{'fem.mixer' op operand 'state' is not used by prior 'softmax'}}
  %o = fem.mixer softmax q(%q : tensor<?x?x2x8xf32>) k(%k : tensor<?x?x2x8xf32>) v(%v : tensor<?x?x2x16xf32>) beta_raw(%b : tensor<32xf32>) lam(%l : tensor<?x?x2x16xf32>) gate(%g : tensor<?x?x2x16xf32>) state(%s : tensor<?x2x16x28xf32>) {causal} -> tensor<?x?x2x16xf32>
  return %o : tensor<?x?x2x16xf32>
}

// -----

func.func @wrong_ks_out(%q: tensor<?x?x2x8xf32>, %k: tensor<?x?x2x8xf32>, %v: tensor<?x?x2x16xf32>, %b: tensor<32xf32>, %l: tensor<?x?x2x16xf32>, %g: tensor<?x?x2x16xf32>, %d: tensor<?x?x2xf32>) -> (tensor<?x?x2x16xf32>, tensor<?x2x16x10xf32>) {
  // expected-error @+1 {{'fem.mixer' op operand 'state_out' dimension 3 (Ks) must be 28 for prior 'gla'}}
  %o, %so = fem.mixer gla q(%q : tensor<?x?x2x8xf32>) k(%k : tensor<?x?x2x8xf32>) v(%v : tensor<?x?x2x16xf32>) beta_raw(%b : tensor<32xf32>) lam(%l : tensor<?x?x2x16xf32>) gate(%g : tensor<?x?x2x16xf32>) decay(%d : tensor<?x?x2xf32>)  -> tensor<?x?x2x16xf32>, tensor<?x2x16x10xf32>
  return %o, %so : tensor<?x?x2x16xf32>, tensor<?x2x16x10xf32>
}

// -----

func.func @dynamic_dk(%q: tensor<?x?x2x?xf32>, %k: tensor<?x?x2x?xf32>, %v: tensor<?x?x2x16xf32>, %b: tensor<32xf32>, %l: tensor<?x?x2x16xf32>, %g: tensor<?x?x2x16xf32>, %s: tensor<?x2x16x28xf32>) -> (tensor<?x?x2x16xf32>) {
  // expected-error @+1 {{'fem.mixer' op operand 'state' needs a static dk: the state's last extent Ks is computed from it}}
  %o = fem.mixer linear q(%q : tensor<?x?x2x?xf32>) k(%k : tensor<?x?x2x?xf32>) v(%v : tensor<?x?x2x16xf32>) beta_raw(%b : tensor<32xf32>) lam(%l : tensor<?x?x2x16xf32>) gate(%g : tensor<?x?x2x16xf32>) state(%s : tensor<?x2x16x28xf32>) {causal} -> tensor<?x?x2x16xf32>
  return %o : tensor<?x?x2x16xf32>
}

// -----

func.func @aft_out_mismatch(%q: tensor<?x?x2x8xf32>, %k: tensor<?x?x2x8xf32>, %v: tensor<?x?x2x16xf32>, %b: tensor<32xf32>, %l: tensor<?x?x2x16xf32>, %g: tensor<?x?x2x16xf32>, %s: tensor<?x2x16x12xf32>) -> (tensor<?x?x2x16xf32>, tensor<?x2x16x9xf32>) {
  // expected-error @+1 {{'fem.mixer' op operand 'state_out' dimension 3 (Ks) must be 12 to match operand 'state', found 9}}
  %o, %so = fem.mixer aft q(%q : tensor<?x?x2x8xf32>) k(%k : tensor<?x?x2x8xf32>) v(%v : tensor<?x?x2x16xf32>) beta_raw(%b : tensor<32xf32>) lam(%l : tensor<?x?x2x16xf32>) gate(%g : tensor<?x?x2x16xf32>) state(%s : tensor<?x2x16x12xf32>)  -> tensor<?x?x2x16xf32>, tensor<?x2x16x9xf32>
  return %o, %so : tensor<?x?x2x16xf32>, tensor<?x2x16x9xf32>
}
