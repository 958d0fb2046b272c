// A whole FEM layer with the gla prior, as docs/semantics.md §7 steps 1-7
// compute it WITHOUT the time-decay conditioning (the module's use_conv off;
// its default is on, which the checkpoint vectors use): x (B,T,D) → q, k, v,
// λ, gate and the gla decay logits as projections → RoPE on q and k → the
// gla FEM read (always causal) → output projection. No key mask and no
// biases (bias = False). D = 256, H = 4 heads, dk = 32, dv = 64.
// Projection weights are stored per head: W (D, H, d), W_decay (D, H),
// Wo (H, dv, D). Arguments and the result name their dynamic extents with
// `fem.dims`. test/integration/LayerTest.cpp checks it against a
// double-precision layer.
//
//   femc examples/fem_layer_gla.mlir -o out
//   fem-run out/fem_layer_gla.so --kernel fem_layer_gla --dim B=1 --dim T=128 --bench 5
#proj_x = affine_map<(b, t, h, d, k) -> (b, t, k)>
#proj_w = affine_map<(b, t, h, d, k) -> (k, h, d)>
#proj_y = affine_map<(b, t, h, d, k) -> (b, t, h, d)>
#head_x = affine_map<(b, t, h, k) -> (b, t, k)>
#head_w = affine_map<(b, t, h, k) -> (k, h)>
#head_y = affine_map<(b, t, h, k) -> (b, t, h)>
#out_o = affine_map<(b, t, e, h, d) -> (b, t, h, d)>
#out_w = affine_map<(b, t, e, h, d) -> (h, d, e)>
#out_y = affine_map<(b, t, e, h, d) -> (b, t, e)>
#id4 = affine_map<(b, t, h, j) -> (b, t, h, j)>

// y[b,t,h,d] = sum_k x[b,t,k] * w[k,h,d]
func.func private @project_qk(%x: tensor<?x?x256xf32>, %w: tensor<256x4x32xf32>)
    -> tensor<?x?x4x32xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %B = tensor.dim %x, %c0 : tensor<?x?x256xf32>
  %T = tensor.dim %x, %c1 : tensor<?x?x256xf32>
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty(%B, %T) : tensor<?x?x4x32xf32>
  %z = linalg.fill ins(%zero : f32) outs(%e : tensor<?x?x4x32xf32>) -> tensor<?x?x4x32xf32>
  %y = linalg.generic {indexing_maps = [#proj_x, #proj_w, #proj_y],
                       iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]}
      ins(%x, %w : tensor<?x?x256xf32>, tensor<256x4x32xf32>) outs(%z : tensor<?x?x4x32xf32>) {
    ^bb0(%a: f32, %b: f32, %acc: f32):
      %m = arith.mulf %a, %b : f32
      %s = arith.addf %acc, %m : f32
      linalg.yield %s : f32
  } -> tensor<?x?x4x32xf32>
  return %y : tensor<?x?x4x32xf32>
}

// The same with the value width dv = 64 (v, λ, gate).
func.func private @project_v(%x: tensor<?x?x256xf32>, %w: tensor<256x4x64xf32>)
    -> tensor<?x?x4x64xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %B = tensor.dim %x, %c0 : tensor<?x?x256xf32>
  %T = tensor.dim %x, %c1 : tensor<?x?x256xf32>
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty(%B, %T) : tensor<?x?x4x64xf32>
  %z = linalg.fill ins(%zero : f32) outs(%e : tensor<?x?x4x64xf32>) -> tensor<?x?x4x64xf32>
  %y = linalg.generic {indexing_maps = [#proj_x, #proj_w, #proj_y],
                       iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]}
      ins(%x, %w : tensor<?x?x256xf32>, tensor<256x4x64xf32>) outs(%z : tensor<?x?x4x64xf32>) {
    ^bb0(%a: f32, %b: f32, %acc: f32):
      %m = arith.mulf %a, %b : f32
      %s = arith.addf %acc, %m : f32
      linalg.yield %s : f32
  } -> tensor<?x?x4x64xf32>
  return %y : tensor<?x?x4x64xf32>
}

// The decay logits, one per head: y[b,t,h] = sum_k x[b,t,k] * w[k,h]
func.func private @project_decay(%x: tensor<?x?x256xf32>, %w: tensor<256x4xf32>)
    -> tensor<?x?x4xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %B = tensor.dim %x, %c0 : tensor<?x?x256xf32>
  %T = tensor.dim %x, %c1 : tensor<?x?x256xf32>
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty(%B, %T) : tensor<?x?x4xf32>
  %z = linalg.fill ins(%zero : f32) outs(%e : tensor<?x?x4xf32>) -> tensor<?x?x4xf32>
  %y = linalg.generic {indexing_maps = [#head_x, #head_w, #head_y],
                       iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%x, %w : tensor<?x?x256xf32>, tensor<256x4xf32>) outs(%z : tensor<?x?x4xf32>) {
    ^bb0(%a: f32, %b: f32, %acc: f32):
      %m = arith.mulf %a, %b : f32
      %s = arith.addf %acc, %m : f32
      linalg.yield %s : f32
  } -> tensor<?x?x4xf32>
  return %y : tensor<?x?x4xf32>
}

// RoPE as the reference writes it (docs/semantics.md §6), at dk = 32:
// inv_freq[i] = 10000^(-2i/dk) repeated ("half" layout: channel j uses
// i = j mod dk/2), rotation partners interleaved: rot(x)[2i] = -x[2i+1],
// rot(x)[2i+1] = x[2i]; x' = x cos(t inv_freq) + rot(x) sin(t inv_freq).
func.func private @rope(%x: tensor<?x?x4x32xf32>) -> tensor<?x?x4x32xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %B = tensor.dim %x, %c0 : tensor<?x?x4x32xf32>
  %T = tensor.dim %x, %c1 : tensor<?x?x4x32xf32>
  %e = tensor.empty(%B, %T) : tensor<?x?x4x32xf32>
  %y = linalg.generic {indexing_maps = [#id4, #id4],
                       iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%x : tensor<?x?x4x32xf32>) outs(%e : tensor<?x?x4x32xf32>) {
    ^bb0(%a: f32, %unused: f32):
      %b = linalg.index 0 : index
      %t = linalg.index 1 : index
      %h = linalg.index 2 : index
      %j = linalg.index 3 : index
      %c1i = arith.constant 1 : index
      %c16 = arith.constant 16 : index
      %pj = arith.xori %j, %c1i : index
      %partner = tensor.extract %x[%b, %t, %h, %pj] : tensor<?x?x4x32xf32>
      %odd = arith.andi %j, %c1i : index
      %isOdd = arith.cmpi ne, %odd, %c0 : index
      %neg = arith.negf %partner : f32
      %rot = arith.select %isOdd, %partner, %neg : f32
      %i = arith.remui %j, %c16 : index
      %ii = arith.index_cast %i : index to i64
      %if = arith.sitofp %ii : i64 to f32
      // inv_freq = exp(-(2 i / 32) ln 10000)
      %k = arith.constant -0.575646273248511 : f32
      %lf = arith.mulf %if, %k : f32
      %inv = math.exp %lf : f32
      %ti = arith.index_cast %t : index to i64
      %tf = arith.sitofp %ti : i64 to f32
      %ang = arith.mulf %tf, %inv : f32
      %cos = math.cos %ang : f32
      %sin = math.sin %ang : f32
      %u = arith.mulf %a, %cos : f32
      %w = arith.mulf %rot, %sin : f32
      %r = arith.addf %u, %w : f32
      linalg.yield %r : f32
  } -> tensor<?x?x4x32xf32>
  return %y : tensor<?x?x4x32xf32>
}

func.func @fem_layer_gla(
    %x: tensor<?x?x256xf32> {fem.name = "x", fem.dims = "B,T,D"},
    %wq: tensor<256x4x32xf32> {fem.name = "wq", fem.dims = "D,H,dk"},
    %wk: tensor<256x4x32xf32> {fem.name = "wk", fem.dims = "D,H,dk"},
    %wv: tensor<256x4x64xf32> {fem.name = "wv", fem.dims = "D,H,dv"},
    %wl: tensor<256x4x64xf32> {fem.name = "wl", fem.dims = "D,H,dv"},
    %wg: tensor<256x4x64xf32> {fem.name = "wg", fem.dims = "D,H,dv"},
    %wd: tensor<256x4xf32> {fem.name = "wd", fem.dims = "D,H"},
    %wo: tensor<4x64x256xf32> {fem.name = "wo", fem.dims = "H,dv,D"},
    %beta_raw: tensor<256xf32> {fem.name = "beta_raw", fem.dims = "E"})
    -> (tensor<?x?x256xf32> {fem.dims = "B,T,D"}) {
  %q0 = func.call @project_qk(%x, %wq) : (tensor<?x?x256xf32>, tensor<256x4x32xf32>) -> tensor<?x?x4x32xf32>
  %k0 = func.call @project_qk(%x, %wk) : (tensor<?x?x256xf32>, tensor<256x4x32xf32>) -> tensor<?x?x4x32xf32>
  %v = func.call @project_v(%x, %wv) : (tensor<?x?x256xf32>, tensor<256x4x64xf32>) -> tensor<?x?x4x64xf32>
  %lam = func.call @project_v(%x, %wl) : (tensor<?x?x256xf32>, tensor<256x4x64xf32>) -> tensor<?x?x4x64xf32>
  %gate = func.call @project_v(%x, %wg) : (tensor<?x?x256xf32>, tensor<256x4x64xf32>) -> tensor<?x?x4x64xf32>
  %decay = func.call @project_decay(%x, %wd) : (tensor<?x?x256xf32>, tensor<256x4xf32>) -> tensor<?x?x4xf32>
  %q = func.call @rope(%q0) : (tensor<?x?x4x32xf32>) -> tensor<?x?x4x32xf32>
  %k = func.call @rope(%k0) : (tensor<?x?x4x32xf32>) -> tensor<?x?x4x32xf32>
  %o = fem.mixer gla q(%q : tensor<?x?x4x32xf32>) k(%k : tensor<?x?x4x32xf32>)
      v(%v : tensor<?x?x4x64xf32>) beta_raw(%beta_raw : tensor<256xf32>)
      lam(%lam : tensor<?x?x4x64xf32>) gate(%gate : tensor<?x?x4x64xf32>)
      decay(%decay : tensor<?x?x4xf32>) -> tensor<?x?x4x64xf32>
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %B = tensor.dim %x, %c0 : tensor<?x?x256xf32>
  %T = tensor.dim %x, %c1 : tensor<?x?x256xf32>
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty(%B, %T) : tensor<?x?x256xf32>
  %z = linalg.fill ins(%zero : f32) outs(%e : tensor<?x?x256xf32>) -> tensor<?x?x256xf32>
  %y = linalg.generic {indexing_maps = [#out_o, #out_w, #out_y],
                       iterator_types = ["parallel", "parallel", "parallel", "reduction", "reduction"]}
      ins(%o, %wo : tensor<?x?x4x64xf32>, tensor<4x64x256xf32>) outs(%z : tensor<?x?x256xf32>) {
    ^bb0(%a: f32, %b: f32, %acc: f32):
      %m = arith.mulf %a, %b : f32
      %s = arith.addf %acc, %m : f32
      linalg.yield %s : f32
  } -> tensor<?x?x256xf32>
  return %y : tensor<?x?x256xf32>
}
