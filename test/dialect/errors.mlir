// RUN: fem-opt %s -split-input-file -verify-diagnostics

// Every verifier message of the fem dialect, one case each.

func.func @rank(%q: tensor<2x8x4xf32>, %k: tensor<2x8x4x16xf32>) {
  // expected-error @+1 {{operand 'q' must have rank 4 (B,T,H,dk), found rank 3}}
  %p = fem.prior softmax q(%q : tensor<2x8x4xf32>) k(%k : tensor<2x8x4x16xf32>) -> !fem.prior<softmax, 2x4x8x8>
  return
}

// -----

func.func @head_dim(%q: tensor<2x8x4x16xf32>, %k: tensor<2x8x4x32xf32>) {
  // expected-error @+1 {{operand 'k' dimension 3 (dk) must be 16 to match operand 'q', found 32}}
  %p = fem.prior softmax q(%q : tensor<2x8x4x16xf32>) k(%k : tensor<2x8x4x32xf32>) -> !fem.prior<softmax, 2x4x8x8>
  return
}

// -----

func.func @batch(%q: tensor<2x8x4x16xf32>, %k: tensor<3x8x4x16xf32>) {
  // expected-error @+1 {{operand 'k' dimension 0 (B) must be 2 to match operand 'q', found 3}}
  %p = fem.prior softmax q(%q : tensor<2x8x4x16xf32>) k(%k : tensor<3x8x4x16xf32>) -> !fem.prior<softmax, 2x4x8x8>
  return
}

// -----

func.func @causal_needs_same_length(%q: tensor<2x8x4x16xf32>, %k: tensor<2x9x4x16xf32>) {
  // expected-error @+1 {{operand 'k' dimension 1 (T) must be 8 to match operand 'q', found 9}}
  %p = fem.prior softmax q(%q : tensor<2x8x4x16xf32>) k(%k : tensor<2x9x4x16xf32>) {causal} -> !fem.prior<softmax, 2x4x8x8>
  return
}

// -----

func.func @beta_length(%q: tensor<1x8x4x16xf32>, %v: tensor<1x8x4x16xf32>, %b: tensor<60xf32>) {
  // expected-error @+1 {{E (operand 'beta_raw') must equal H * dv = 4 * 16 = 64, found 60}}
  %0 = fem.mixer softmax q(%q : tensor<1x8x4x16xf32>) k(%q : tensor<1x8x4x16xf32>) v(%v : tensor<1x8x4x16xf32>)
      beta_raw(%b : tensor<60xf32>) lam(%v : tensor<1x8x4x16xf32>) gate(%v : tensor<1x8x4x16xf32>) -> tensor<1x8x4x16xf32>
  return
}

// -----

func.func @grouped_heads(%q: tensor<1x8x4x16xf32>, %k: tensor<1x8x3x16xf32>) {
  // expected-error @+1 {{the number of query heads H = 4 (operand 'q') must be a multiple of the number of key/value heads Hkv = 3 (operand 'k')}}
  %p = fem.prior softmax q(%q : tensor<1x8x4x16xf32>) k(%k : tensor<1x8x3x16xf32>) -> !fem.prior<softmax, 1x4x8x8>
  return
}

// -----

func.func @aft_dk_divides_2dv(%q: tensor<1x8x4x16xf32>, %v: tensor<1x8x4x24xf32>, %b: tensor<96xf32>) {
  // dk = 16 does not divide dv = 24 but divides the read width 48: accepted
  // (the X half reads q/k channels 8..15, 0..15).
  %0 = fem.mixer aft q(%q : tensor<1x8x4x16xf32>) k(%q : tensor<1x8x4x16xf32>) v(%v : tensor<1x8x4x24xf32>)
      beta_raw(%b : tensor<96xf32>) lam(%v : tensor<1x8x4x24xf32>) gate(%v : tensor<1x8x4x24xf32>) -> tensor<1x8x4x24xf32>
  return
}

// -----

func.func @aft_dk_not_dividing_2dv(%q: tensor<1x8x4x16xf32>, %v: tensor<1x8x4x20xf32>, %b: tensor<80xf32>) {
  // expected-error @+1 {{prior 'aft' requires dk to divide the read width 2 * dv = 40 (its q/k channels tile [V | X]), found dk = 16 and dv = 20}}
  %0 = fem.mixer aft q(%q : tensor<1x8x4x16xf32>) k(%q : tensor<1x8x4x16xf32>) v(%v : tensor<1x8x4x20xf32>)
      beta_raw(%b : tensor<80xf32>) lam(%v : tensor<1x8x4x20xf32>) gate(%v : tensor<1x8x4x20xf32>) -> tensor<1x8x4x20xf32>
  return
}

// -----

func.func @gla_needs_decay(%q: tensor<1x8x4x16xf32>, %b: tensor<64xf32>) {
  // expected-error @+1 {{prior 'gla' requires operand 'decay'}}
  %0 = fem.mixer gla q(%q : tensor<1x8x4x16xf32>) k(%q : tensor<1x8x4x16xf32>) v(%q : tensor<1x8x4x16xf32>)
      beta_raw(%b : tensor<64xf32>) lam(%q : tensor<1x8x4x16xf32>) gate(%q : tensor<1x8x4x16xf32>) -> tensor<1x8x4x16xf32>
  return
}

// -----

func.func @decay_only_for_gla(%q: tensor<1x8x4x16xf32>, %d: tensor<1x8x4xf32>) {
  // expected-error @+1 {{operand 'decay' is not used by prior 'softmax'}}
  %p = fem.prior softmax q(%q : tensor<1x8x4x16xf32>) k(%q : tensor<1x8x4x16xf32>) decay(%d : tensor<1x8x4xf32>) -> !fem.prior<softmax, 1x4x8x8>
  return
}

// -----

func.func @mask_not_for_gla(%q: tensor<1x8x4x16xf32>, %d: tensor<1x8x4xf32>, %m: tensor<1x8xi1>) {
  // expected-error @+1 {{operand 'mask' is not used by prior 'gla'}}
  %p = fem.prior gla q(%q : tensor<1x8x4x16xf32>) k(%q : tensor<1x8x4x16xf32>) mask(%m : tensor<1x8xi1>) decay(%d : tensor<1x8x4xf32>) -> !fem.prior<gla, 1x4x8x8>
  return
}

// -----

func.func @mask_shape(%q: tensor<1x8x4x16xf32>, %m: tensor<2x8xi1>) {
  // expected-error @+1 {{operand 'mask' dimension 0 (B) must be 1 to match operand 'q', found 2}}
  %p = fem.prior softmax q(%q : tensor<1x8x4x16xf32>) k(%q : tensor<1x8x4x16xf32>) mask(%m : tensor<2x8xi1>) -> !fem.prior<softmax, 1x4x8x8>
  return
}

// -----

func.func @ssm_without_keys(%q: tensor<1x8x4x16xf32>, %delta: tensor<1x8x64xf32>, %A: tensor<64x8xf32>, %Bs: tensor<1x8x8xf32>, %D: tensor<64xf32>) {
  // expected-error @+1 {{operand 'q' is not used by prior 'ssm'}}
  %p = fem.prior ssm q(%q : tensor<1x8x4x16xf32>) delta(%delta : tensor<1x8x64xf32>) A(%A : tensor<64x8xf32>)
      Bs(%Bs : tensor<1x8x8xf32>) Cs(%Bs : tensor<1x8x8xf32>) D(%D : tensor<64xf32>) -> !fem.prior<ssm, 1x4x8x8>
  return
}

// -----

func.func @ssm_state_size(%delta: tensor<1x8x64xf32>, %A: tensor<64x8xf32>, %Bs: tensor<1x8x8xf32>, %Cs: tensor<1x8x4xf32>, %D: tensor<64xf32>) {
  // expected-error @+1 {{operand 'Cs' dimension 2 (N) must be 8 to match operand 'A', found 4}}
  %p = fem.prior ssm delta(%delta : tensor<1x8x64xf32>) A(%A : tensor<64x8xf32>)
      Bs(%Bs : tensor<1x8x8xf32>) Cs(%Cs : tensor<1x8x4xf32>) D(%D : tensor<64xf32>) -> !fem.prior<ssm, 1x8x8x8>
  return
}

// -----

func.func @element_types(%q: tensor<1x8x4x16xf32>, %k: tensor<1x8x4x16xf16>) {
  // expected-error @+1 {{operand 'k' has element type 'f16', expected 'f32' (the element type of 'q')}}
  %p = fem.prior softmax q(%q : tensor<1x8x4x16xf32>) k(%k : tensor<1x8x4x16xf16>) -> !fem.prior<softmax, 1x4x8x8>
  return
}

// -----

func.func @cap_positive(%q: tensor<1x8x4x16xf32>, %b: tensor<64xf32>) {
  // expected-error @+1 {{attribute 'cap' must lie in [1e-05, 43], found -1}}
  %0 = fem.mixer softmax q(%q : tensor<1x8x4x16xf32>) k(%q : tensor<1x8x4x16xf32>) v(%q : tensor<1x8x4x16xf32>)
      beta_raw(%b : tensor<64xf32>) lam(%q : tensor<1x8x4x16xf32>) gate(%q : tensor<1x8x4x16xf32>) {cap = -1.0 : f64} -> tensor<1x8x4x16xf32>
  return
}

// -----

func.func @cap_too_small(%q: tensor<1x8x4x16xf32>, %b: tensor<64xf32>) {
  // expected-error @+1 {{attribute 'cap' must lie in [1e-05, 43], found 1e-06}}
  %0 = fem.mixer softmax q(%q : tensor<1x8x4x16xf32>) k(%q : tensor<1x8x4x16xf32>) v(%q : tensor<1x8x4x16xf32>)
      beta_raw(%b : tensor<64xf32>) lam(%q : tensor<1x8x4x16xf32>) gate(%q : tensor<1x8x4x16xf32>) {cap = 1.0e-06 : f64} -> tensor<1x8x4x16xf32>
  return
}

// -----

func.func @cap_too_large(%q: tensor<1x8x4x16xf32>, %b: tensor<64xf32>) {
  // expected-error @+1 {{attribute 'cap' must lie in [1e-05, 43], found 44}}
  %0 = fem.mixer softmax q(%q : tensor<1x8x4x16xf32>) k(%q : tensor<1x8x4x16xf32>) v(%q : tensor<1x8x4x16xf32>)
      beta_raw(%b : tensor<64xf32>) lam(%q : tensor<1x8x4x16xf32>) gate(%q : tensor<1x8x4x16xf32>) {cap = 44.0 : f64} -> tensor<1x8x4x16xf32>
  return
}

// -----

func.func @eps_positive(%q: tensor<1x8x4x16xf32>) {
  // expected-error @+1 {{attribute 'eps' must lie in [1e-30, 1e+30], found 0}}
  %p = fem.prior linear q(%q : tensor<1x8x4x16xf32>) k(%q : tensor<1x8x4x16xf32>) {eps = 0.0 : f64} -> !fem.prior<linear, 1x4x8x8>
  return
}

// -----

func.func @eps_too_small(%q: tensor<1x8x4x16xf32>) {
  // expected-error @+1 {{attribute 'eps' must lie in [1e-30, 1e+30], found 1e-31}}
  %p = fem.prior softmax q(%q : tensor<1x8x4x16xf32>) k(%q : tensor<1x8x4x16xf32>) {eps = 1.0e-31 : f64} -> !fem.prior<softmax, 1x4x8x8>
  return
}

// -----

func.func @eps_too_large(%q: tensor<1x8x4x16xf32>, %b: tensor<64xf32>) {
  // expected-error @+1 {{attribute 'eps' must lie in [1e-30, 1e+30], found 1e+31}}
  %0 = fem.mixer softmax q(%q : tensor<1x8x4x16xf32>) k(%q : tensor<1x8x4x16xf32>) v(%q : tensor<1x8x4x16xf32>)
      beta_raw(%b : tensor<64xf32>) lam(%q : tensor<1x8x4x16xf32>) gate(%q : tensor<1x8x4x16xf32>) {eps = 1.0e31 : f64} -> tensor<1x8x4x16xf32>
  return
}

// -----

func.func @eps_nan(%q: tensor<1x8x4x16xf32>, %b: tensor<64xf32>) {
  // expected-error @+1 {{attribute 'eps' must lie in [1e-30, 1e+30], found nan}}
  %0 = fem.mixer softmax q(%q : tensor<1x8x4x16xf32>) k(%q : tensor<1x8x4x16xf32>) v(%q : tensor<1x8x4x16xf32>)
      beta_raw(%b : tensor<64xf32>) lam(%q : tensor<1x8x4x16xf32>) gate(%q : tensor<1x8x4x16xf32>) {eps = 0x7FF8000000000000 : f64} -> tensor<1x8x4x16xf32>
  return
}

// -----

func.func @scale_positive(%q: tensor<1x8x4x16xf32>) {
  // expected-error @+1 {{attribute 'scale' must lie in [1.17549435e-38, 3.40282347e+38], found -2}}
  %p = fem.prior softmax q(%q : tensor<1x8x4x16xf32>) k(%q : tensor<1x8x4x16xf32>) {scale = -2.0 : f64} -> !fem.prior<softmax, 1x4x8x8>
  return
}

// -----

func.func @scale_too_small(%q: tensor<1x8x4x16xf32>) {
  // expected-error @+1 {{attribute 'scale' must lie in [1.17549435e-38, 3.40282347e+38], found 1e-39}}
  %p = fem.prior softmax q(%q : tensor<1x8x4x16xf32>) k(%q : tensor<1x8x4x16xf32>) {scale = 1.0e-39 : f64} -> !fem.prior<softmax, 1x4x8x8>
  return
}

// -----

func.func @scale_overflows_f32(%q: tensor<1x8x4x16xf32>, %b: tensor<64xf32>) {
  // expected-error @+1 {{attribute 'scale' must lie in [1.17549435e-38, 3.40282347e+38], found 3.5e+38}}
  %0 = fem.mixer softmax q(%q : tensor<1x8x4x16xf32>) k(%q : tensor<1x8x4x16xf32>) v(%q : tensor<1x8x4x16xf32>)
      beta_raw(%b : tensor<64xf32>) lam(%q : tensor<1x8x4x16xf32>) gate(%q : tensor<1x8x4x16xf32>) {scale = 3.5e38 : f64} -> tensor<1x8x4x16xf32>
  return
}

// -----

func.func @scale_only_softmax(%q: tensor<1x8x4x16xf32>) {
  // expected-error @+1 {{attribute 'scale' is only valid for prior 'softmax', found prior 'linear'}}
  %p = fem.prior linear q(%q : tensor<1x8x4x16xf32>) k(%q : tensor<1x8x4x16xf32>) {scale = 0.5 : f64} -> !fem.prior<linear, 1x4x8x8>
  return
}

// -----

func.func @prior_kind_mismatch(%q: tensor<1x8x4x16xf32>) {
  // expected-error @+1 {{result type must be a prior of kind 'softmax', found 'linear'}}
  %p = fem.prior softmax q(%q : tensor<1x8x4x16xf32>) k(%q : tensor<1x8x4x16xf32>) -> !fem.prior<linear, 1x4x8x8>
  return
}

// -----

func.func @prior_result_extent(%q: tensor<1x8x4x16xf32>) {
  // expected-error @+1 {{result dimension 1 (H) must be 4 to match operand 'q', found 8}}
  %p = fem.prior softmax q(%q : tensor<1x8x4x16xf32>) k(%q : tensor<1x8x4x16xf32>) -> !fem.prior<softmax, 1x8x8x8>
  return
}

// -----

func.func @tilt_shift_shape(%v: tensor<1x8x4x16xf32>, %b: tensor<64xf32>) {
  // expected-error @+1 {{result 'shift' dimension 2 (dv) must be 16 to match operand 'v', found 8}}
  %c, %x, %m = fem.tilt %v, %b : tensor<1x8x4x16xf32>, tensor<64xf32>
      -> tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>, tensor<1x4x8xf32>
  return
}

// -----

func.func @expect_values(%q: tensor<1x8x4x16xf32>, %vt: tensor<1x9x4x16xf32>) {
  %p = fem.prior softmax q(%q : tensor<1x8x4x16xf32>) k(%q : tensor<1x8x4x16xf32>) -> !fem.prior<softmax, 1x4x8x8>
  // expected-error @+1 {{operand 'values' dimension 1 (S) must be 8 to match operand 'prior', found 9}}
  %mu = fem.expect %p, %vt : !fem.prior<softmax, 1x4x8x8>, tensor<1x9x4x16xf32> -> tensor<1x8x4x16xf32>
  return
}

// -----

func.func @expect_element_type(%q: tensor<1x8x4x16xf32>, %vt: tensor<1x8x4x16xf32>) {
  %p = fem.prior softmax q(%q : tensor<1x8x4x16xf32>) k(%q : tensor<1x8x4x16xf32>) -> !fem.prior<softmax, 1x4x8x8>
  // expected-error @+1 {{result element type 'f16' must match operand 'values' element type 'f32'}}
  %mu = fem.expect %p, %vt : !fem.prior<softmax, 1x4x8x8>, tensor<1x8x4x16xf32> -> tensor<1x8x4x16xf16>
  return
}

// -----

func.func @lse_element_type(%q: tensor<1x8x4x16xf32>, %x: tensor<1x8x4x16xbf16>, %m: tensor<1x4x16xf32>, %b: tensor<64xf32>) {
  %p = fem.prior softmax q(%q : tensor<1x8x4x16xf32>) k(%q : tensor<1x8x4x16xf32>) -> !fem.prior<softmax, 1x4x8x8>
  // expected-error @+1 {{result element type 'f32' must match operand 'tilted' element type 'bf16'}}
  %f = fem.lse %p, %x, %m, %b : !fem.prior<softmax, 1x4x8x8>, tensor<1x8x4x16xbf16>, tensor<1x4x16xf32>, tensor<64xf32> -> tensor<1x8x4x16xf32>
  return
}

// -----

func.func @lse_result_type(%q: tensor<1x8x4x16xf32>, %x: tensor<1x8x4x16xf32>, %m: tensor<1x4x16xf32>, %b: tensor<64xf32>) {
  %p = fem.prior softmax q(%q : tensor<1x8x4x16xf32>) k(%q : tensor<1x8x4x16xf32>) -> !fem.prior<softmax, 1x4x8x8>
  // expected-error @+1 {{operand 'out' has element type 'bf16', expected 'f32' (the element type of 'beta_raw')}}
  %f = fem.lse %p, %x, %m, %b : !fem.prior<softmax, 1x4x8x8>, tensor<1x8x4x16xf32>, tensor<1x4x16xf32>, tensor<64xf32> -> tensor<1x8x4x16xbf16>
  return
}

// -----

func.func @gate_rank(%x: tensor<8x4x16xf32>) {
  // expected-error @+1 {{result must have rank 4 (B,T,H,dv), found rank 3}}
  %o = fem.gate %x, %x, %x, %x : tensor<8x4x16xf32>
  return
}

// -----

func.func @fused_mask_prior(%q: tensor<1x8x4x16xf32>, %d: tensor<1x8x4xf32>, %b: tensor<64xf32>, %m: tensor<1x8xi1>) {
  %p = fem.prior gla q(%q : tensor<1x8x4x16xf32>) k(%q : tensor<1x8x4x16xf32>) decay(%d : tensor<1x8x4xf32>) -> !fem.prior<gla, 1x4x8x8>
  // expected-error @+1 {{operand 'mask' is not used by prior 'gla'}}
  %o = fem.fused_read %p, %q, %b, %q, %q mask(%m : tensor<1x8xi1>) : !fem.prior<gla, 1x4x8x8>, tensor<1x8x4x16xf32>,
      tensor<64xf32>, tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32> -> tensor<1x8x4x16xf32>
  return
}

// -----

func.func @tile_read_kind(%m: memref<1x8x4x16xf32>, %b: memref<64xf32>, %i: index) {
  // expected-error @+1 {{prior 'aft' is read by a scan; its tiled form is fem.scan_read}}
  fem.tile_read aft q(%m : memref<1x8x4x16xf32>) k(%m : memref<1x8x4x16xf32>) v(%m : memref<1x8x4x16xf32>)
      beta_raw(%b : memref<64xf32>) lam(%m : memref<1x8x4x16xf32>) gate(%m : memref<1x8x4x16xf32>)
      out(%m : memref<1x8x4x16xf32>) at(%i, %i, %i) {tiles = #fem.tiles<q = 16, k = 16, vec = 8>}
  return
}

// -----

// expected-error @+1 {{!fem.prior expects 4 extents (B x H x T x S), found 3}}
func.func private @prior_rank(!fem.prior<softmax, 1x4x8>)

// -----

// expected-error @+1 {{unknown prior kind 'cosine', expected one of softmax, linear, gla, aft, ssm}}
func.func private @prior_unknown(!fem.prior<cosine, 1x4x8x8>)

// -----

// expected-error @+1 {{#fem.tiles: q (query rows per workgroup) must be in [1, 1024], found 0}}
func.func private @tiles_q() attributes {t = #fem.tiles<q = 0, k = 64>}

// -----

// expected-error @+1 {{#fem.tiles: k (keys per step) must be in [1, 1024], found 5000}}
func.func private @tiles_k() attributes {t = #fem.tiles<q = 64, k = 5000>}

// -----

// expected-error @+1 {{#fem.tiles: vec must be 0 (target default), 4, 8 or 16, found 6}}
func.func private @tiles_vec() attributes {t = #fem.tiles<q = 64, k = 64, vec = 6>}

// -----

// expected-error @+1 {{#fem.tiles: k must be a multiple of vec, found k = 20 and vec = 8}}
func.func private @tiles_k_vec() attributes {t = #fem.tiles<q = 64, k = 20, vec = 8>}
