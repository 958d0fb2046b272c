// Whole layers with the linear, aft and ssm priors, and a softmax layer with
// a key mask argument, for LayerTest.cpp (the
// softmax and gla layers are examples/fem_layer.mlir and
// examples/fem_layer_gla.mlir): projections (no biases), RoPE on q and k,
// the FEM read, output projection; D = 256, H = 4, dk = 32, dv = 64. The
// ssm layer forms its Δ, A, Bs, Cs and D as docs/semantics.md §2 says the
// reference does; it is femc's test layer, not the authors' Mamba module.
#proj_x = affine_map<(b, t, h, d, k) -> (b, t, k)>
#proj_w = affine_map<(b, t, h, d, k) -> (k, h, d)>
#proj_y = affine_map<(b, t, h, d, k) -> (b, t, h, d)>
#out_o = affine_map<(b, t, e, h, d) -> (b, t, h, d)>
#out_w = affine_map<(b, t, e, h, d) -> (h, d, e)>
#out_y = affine_map<(b, t, e, h, d) -> (b, t, e)>
#id4 = affine_map<(b, t, h, j) -> (b, t, h, j)>

#flat_x = affine_map<(b, t, e, k) -> (b, t, k)>
#flat_w = affine_map<(b, t, e, k) -> (k, e)>
#flat_y = affine_map<(b, t, e, k) -> (b, t, e)>
#id1 = affine_map<(e) -> (e)>
#id2 = affine_map<(e, n) -> (e, n)>
#id3 = affine_map<(b, t, e) -> (b, t, e)>

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


// y[b,t,e] = sum_k x[b,t,k] * w[k,e] for the ssm's flat channels E = 256
func.func private @project_e(%x: tensor<?x?x256xf32>, %w: tensor<256x256xf32>)
    -> tensor<?x?x256xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %B = tensor.dim %x, %c0 : tensor<?x?x256xf32>
  %T = tensor.dim %x, %c1 : tensor<?x?x256xf32>
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty(%B, %T) : tensor<?x?x256xf32>
  %z = linalg.fill ins(%zero : f32) outs(%e : tensor<?x?x256xf32>) -> tensor<?x?x256xf32>
  %y = linalg.generic {indexing_maps = [#flat_x, #flat_w, #flat_y],
                       iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%x, %w : tensor<?x?x256xf32>, tensor<256x256xf32>) outs(%z : tensor<?x?x256xf32>) {
    ^bb0(%a: f32, %b: f32, %acc: f32):
      %m = arith.mulf %a, %b : f32
      %s = arith.addf %acc, %m : f32
      linalg.yield %s : f32
  } -> tensor<?x?x256xf32>
  return %y : tensor<?x?x256xf32>
}

// The same for the state size N = 16 (Bs, Cs)
func.func private @project_n(%x: tensor<?x?x256xf32>, %w: tensor<256x16xf32>)
    -> tensor<?x?x16xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %B = tensor.dim %x, %c0 : tensor<?x?x256xf32>
  %T = tensor.dim %x, %c1 : tensor<?x?x256xf32>
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty(%B, %T) : tensor<?x?x16xf32>
  %z = linalg.fill ins(%zero : f32) outs(%e : tensor<?x?x16xf32>) -> tensor<?x?x16xf32>
  %y = linalg.generic {indexing_maps = [#flat_x, #flat_w, #flat_y],
                       iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%x, %w : tensor<?x?x256xf32>, tensor<256x16xf32>) outs(%z : tensor<?x?x16xf32>) {
    ^bb0(%a: f32, %b: f32, %acc: f32):
      %m = arith.mulf %a, %b : f32
      %s = arith.addf %acc, %m : f32
      linalg.yield %s : f32
  } -> tensor<?x?x16xf32>
  return %y : tensor<?x?x16xf32>
}

// Δ = exp(-softplus(z)) in (0, 1), softplus(z) = max(z, 0) + log1p(exp(-|z|))
func.func private @step_sizes(%z: tensor<?x?x256xf32>) -> tensor<?x?x256xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %B = tensor.dim %z, %c0 : tensor<?x?x256xf32>
  %T = tensor.dim %z, %c1 : tensor<?x?x256xf32>
  %e = tensor.empty(%B, %T) : tensor<?x?x256xf32>
  %y = linalg.generic {indexing_maps = [#id3, #id3], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%z : tensor<?x?x256xf32>) outs(%e : tensor<?x?x256xf32>) {
    ^bb0(%a: f32, %unused: f32):
      %zero = arith.constant 0.0 : f32
      %pos = arith.maximumf %a, %zero : f32
      %abs = math.absf %a : f32
      %nabs = arith.negf %abs : f32
      %ex = math.exp %nabs : f32
      %lp = math.log1p %ex : f32
      %sp = arith.addf %pos, %lp : f32
      %n = arith.negf %sp : f32
      %d = math.exp %n : f32
      linalg.yield %d : f32
  } -> tensor<?x?x256xf32>
  return %y : tensor<?x?x256xf32>
}

// Bs, Cs = softplus(z) + eps
func.func private @positive_n(%z: tensor<?x?x16xf32>) -> tensor<?x?x16xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %B = tensor.dim %z, %c0 : tensor<?x?x16xf32>
  %T = tensor.dim %z, %c1 : tensor<?x?x16xf32>
  %e = tensor.empty(%B, %T) : tensor<?x?x16xf32>
  %y = linalg.generic {indexing_maps = [#id3, #id3], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%z : tensor<?x?x16xf32>) outs(%e : tensor<?x?x16xf32>) {
    ^bb0(%a: f32, %unused: f32):
      %zero = arith.constant 0.0 : f32
      %pos = arith.maximumf %a, %zero : f32
      %abs = math.absf %a : f32
      %nabs = arith.negf %abs : f32
      %ex = math.exp %nabs : f32
      %lp = math.log1p %ex : f32
      %sp = arith.addf %pos, %lp : f32
      %eps = arith.constant 1.0e-6 : f32
      %r = arith.addf %sp, %eps : f32
      linalg.yield %r : f32
  } -> tensor<?x?x16xf32>
  return %y : tensor<?x?x16xf32>
}

func.func @fem_layer_linear(
    %x: tensor<?x?x256xf32> {fem.name = "x", fem.dims = "B,T,D"},
    %wq: tensor<256x4x32xf32> {fem.name = "wq", fem.dims = "D,H,dk"},
    %wk: tensor<256x4x32xf32> {fem.name = "wk", fem.dims = "D,H,dk"},
    %wv: tensor<256x4x64xf32> {fem.name = "wv", fem.dims = "D,H,dv"},
    %wl: tensor<256x4x64xf32> {fem.name = "wl", fem.dims = "D,H,dv"},
    %wg: tensor<256x4x64xf32> {fem.name = "wg", fem.dims = "D,H,dv"},
    %wo: tensor<4x64x256xf32> {fem.name = "wo", fem.dims = "H,dv,D"},
    %beta_raw: tensor<256xf32> {fem.name = "beta_raw", fem.dims = "E"})
    -> (tensor<?x?x256xf32> {fem.dims = "B,T,D"}) {
  %q0 = func.call @project_qk(%x, %wq) : (tensor<?x?x256xf32>, tensor<256x4x32xf32>) -> tensor<?x?x4x32xf32>
  %k0 = func.call @project_qk(%x, %wk) : (tensor<?x?x256xf32>, tensor<256x4x32xf32>) -> tensor<?x?x4x32xf32>
  %v = func.call @project_v(%x, %wv) : (tensor<?x?x256xf32>, tensor<256x4x64xf32>) -> tensor<?x?x4x64xf32>
  %lam = func.call @project_v(%x, %wl) : (tensor<?x?x256xf32>, tensor<256x4x64xf32>) -> tensor<?x?x4x64xf32>
  %gate = func.call @project_v(%x, %wg) : (tensor<?x?x256xf32>, tensor<256x4x64xf32>) -> tensor<?x?x4x64xf32>
  %q = func.call @rope(%q0) : (tensor<?x?x4x32xf32>) -> tensor<?x?x4x32xf32>
  %k = func.call @rope(%k0) : (tensor<?x?x4x32xf32>) -> tensor<?x?x4x32xf32>
  %o = fem.mixer linear q(%q : tensor<?x?x4x32xf32>) k(%k : tensor<?x?x4x32xf32>)
      v(%v : tensor<?x?x4x64xf32>) beta_raw(%beta_raw : tensor<256xf32>)
      lam(%lam : tensor<?x?x4x64xf32>) gate(%gate : tensor<?x?x4x64xf32>) {causal}
      -> tensor<?x?x4x64xf32>
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

func.func @fem_layer_aft(
    %x: tensor<?x?x256xf32> {fem.name = "x", fem.dims = "B,T,D"},
    %wq: tensor<256x4x32xf32> {fem.name = "wq", fem.dims = "D,H,dk"},
    %wk: tensor<256x4x32xf32> {fem.name = "wk", fem.dims = "D,H,dk"},
    %wv: tensor<256x4x64xf32> {fem.name = "wv", fem.dims = "D,H,dv"},
    %wl: tensor<256x4x64xf32> {fem.name = "wl", fem.dims = "D,H,dv"},
    %wg: tensor<256x4x64xf32> {fem.name = "wg", fem.dims = "D,H,dv"},
    %wo: tensor<4x64x256xf32> {fem.name = "wo", fem.dims = "H,dv,D"},
    %beta_raw: tensor<256xf32> {fem.name = "beta_raw", fem.dims = "E"})
    -> (tensor<?x?x256xf32> {fem.dims = "B,T,D"}) {
  %q0 = func.call @project_qk(%x, %wq) : (tensor<?x?x256xf32>, tensor<256x4x32xf32>) -> tensor<?x?x4x32xf32>
  %k0 = func.call @project_qk(%x, %wk) : (tensor<?x?x256xf32>, tensor<256x4x32xf32>) -> tensor<?x?x4x32xf32>
  %v = func.call @project_v(%x, %wv) : (tensor<?x?x256xf32>, tensor<256x4x64xf32>) -> tensor<?x?x4x64xf32>
  %lam = func.call @project_v(%x, %wl) : (tensor<?x?x256xf32>, tensor<256x4x64xf32>) -> tensor<?x?x4x64xf32>
  %gate = func.call @project_v(%x, %wg) : (tensor<?x?x256xf32>, tensor<256x4x64xf32>) -> tensor<?x?x4x64xf32>
  %q = func.call @rope(%q0) : (tensor<?x?x4x32xf32>) -> tensor<?x?x4x32xf32>
  %k = func.call @rope(%k0) : (tensor<?x?x4x32xf32>) -> tensor<?x?x4x32xf32>
  %o = fem.mixer aft q(%q : tensor<?x?x4x32xf32>) k(%k : tensor<?x?x4x32xf32>)
      v(%v : tensor<?x?x4x64xf32>) beta_raw(%beta_raw : tensor<256xf32>)
      lam(%lam : tensor<?x?x4x64xf32>) gate(%gate : tensor<?x?x4x64xf32>)
      -> tensor<?x?x4x64xf32>
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

// ssm: no q or k. Δ = exp(-softplus(x W_delta)), A = -softplus(A_log),
// Bs = softplus(x W_B) + eps, Cs = softplus(x W_C) + eps,
// D = softplus(D_raw) + eps (docs/semantics.md §2, "Inputs as the reference
// forms them"); N = 16.
func.func @fem_layer_ssm(
    %x: tensor<?x?x256xf32> {fem.name = "x", fem.dims = "B,T,D"},
    %wv: tensor<256x4x64xf32> {fem.name = "wv", fem.dims = "D,H,dv"},
    %wl: tensor<256x4x64xf32> {fem.name = "wl", fem.dims = "D,H,dv"},
    %wg: tensor<256x4x64xf32> {fem.name = "wg", fem.dims = "D,H,dv"},
    %wdelta: tensor<256x256xf32> {fem.name = "wdelta", fem.dims = "D,E"},
    %a_log: tensor<256x16xf32> {fem.name = "A_log", fem.dims = "E,N"},
    %wb: tensor<256x16xf32> {fem.name = "wB", fem.dims = "D,N"},
    %wc: tensor<256x16xf32> {fem.name = "wC", fem.dims = "D,N"},
    %d_raw: tensor<256xf32> {fem.name = "D_raw", fem.dims = "E"},
    %wo: tensor<4x64x256xf32> {fem.name = "wo", fem.dims = "H,dv,D"},
    %beta_raw: tensor<256xf32> {fem.name = "beta_raw", fem.dims = "E"})
    -> (tensor<?x?x256xf32> {fem.dims = "B,T,D"}) {
  %v = func.call @project_v(%x, %wv) : (tensor<?x?x256xf32>, tensor<256x4x64xf32>) -> tensor<?x?x4x64xf32>
  %lam = func.call @project_v(%x, %wl) : (tensor<?x?x256xf32>, tensor<256x4x64xf32>) -> tensor<?x?x4x64xf32>
  %gate = func.call @project_v(%x, %wg) : (tensor<?x?x256xf32>, tensor<256x4x64xf32>) -> tensor<?x?x4x64xf32>
  %zd = func.call @project_e(%x, %wdelta) : (tensor<?x?x256xf32>, tensor<256x256xf32>) -> tensor<?x?x256xf32>
  %delta = func.call @step_sizes(%zd) : (tensor<?x?x256xf32>) -> tensor<?x?x256xf32>
  %zb = func.call @project_n(%x, %wb) : (tensor<?x?x256xf32>, tensor<256x16xf32>) -> tensor<?x?x16xf32>
  %bs = func.call @positive_n(%zb) : (tensor<?x?x16xf32>) -> tensor<?x?x16xf32>
  %zc = func.call @project_n(%x, %wc) : (tensor<?x?x256xf32>, tensor<256x16xf32>) -> tensor<?x?x16xf32>
  %cs = func.call @positive_n(%zc) : (tensor<?x?x16xf32>) -> tensor<?x?x16xf32>
  %ea = tensor.empty() : tensor<256x16xf32>
  %A = linalg.generic {indexing_maps = [#id2, #id2], iterator_types = ["parallel", "parallel"]}
      ins(%a_log : tensor<256x16xf32>) outs(%ea : tensor<256x16xf32>) {
    ^bb0(%a: f32, %unused: f32):
      %zero = arith.constant 0.0 : f32
      %pos = arith.maximumf %a, %zero : f32
      %abs = math.absf %a : f32
      %nabs = arith.negf %abs : f32
      %ex = math.exp %nabs : f32
      %lp = math.log1p %ex : f32
      %sp = arith.addf %pos, %lp : f32
      %n = arith.negf %sp : f32
      linalg.yield %n : f32
  } -> tensor<256x16xf32>
  %ed = tensor.empty() : tensor<256xf32>
  %D = linalg.generic {indexing_maps = [#id1, #id1], iterator_types = ["parallel"]}
      ins(%d_raw : tensor<256xf32>) outs(%ed : tensor<256xf32>) {
    ^bb0(%a: f32, %unused: f32):
      %zero = arith.constant 0.0 : f32
      %pos = arith.maximumf %a, %zero : f32
      %abs = math.absf %a : f32
      %nabs = arith.negf %abs : f32
      %ex = math.exp %nabs : f32
      %lp = math.log1p %ex : f32
      %sp = arith.addf %pos, %lp : f32
      %eps = arith.constant 1.0e-6 : f32
      %r = arith.addf %sp, %eps : f32
      linalg.yield %r : f32
  } -> tensor<256xf32>
  %o = fem.mixer ssm v(%v : tensor<?x?x4x64xf32>) beta_raw(%beta_raw : tensor<256xf32>)
      lam(%lam : tensor<?x?x4x64xf32>) gate(%gate : tensor<?x?x4x64xf32>)
      delta(%delta : tensor<?x?x256xf32>) A(%A : tensor<256x16xf32>)
      Bs(%bs : tensor<?x?x16xf32>) Cs(%cs : tensor<?x?x16xf32>) D(%D : tensor<256xf32>)
      -> tensor<?x?x4x64xf32>
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

// softmax with a key mask given to the layer (i8, one byte per key, nonzero
// keeps the key) and passed on to its FEM read.
func.func @fem_layer_masked(
    %x: tensor<?x?x256xf32> {fem.name = "x", fem.dims = "B,T,D"},
    %wq: tensor<256x4x32xf32> {fem.name = "wq", fem.dims = "D,H,dk"},
    %wk: tensor<256x4x32xf32> {fem.name = "wk", fem.dims = "D,H,dk"},
    %wv: tensor<256x4x64xf32> {fem.name = "wv", fem.dims = "D,H,dv"},
    %wl: tensor<256x4x64xf32> {fem.name = "wl", fem.dims = "D,H,dv"},
    %wg: tensor<256x4x64xf32> {fem.name = "wg", fem.dims = "D,H,dv"},
    %wo: tensor<4x64x256xf32> {fem.name = "wo", fem.dims = "H,dv,D"},
    %beta_raw: tensor<256xf32> {fem.name = "beta_raw", fem.dims = "E"},
    %mask: tensor<?x?xi8> {fem.name = "mask", fem.dims = "B,T"})
    -> (tensor<?x?x256xf32> {fem.dims = "B,T,D"}) {
  %q0 = func.call @project_qk(%x, %wq) : (tensor<?x?x256xf32>, tensor<256x4x32xf32>) -> tensor<?x?x4x32xf32>
  %k0 = func.call @project_qk(%x, %wk) : (tensor<?x?x256xf32>, tensor<256x4x32xf32>) -> tensor<?x?x4x32xf32>
  %v = func.call @project_v(%x, %wv) : (tensor<?x?x256xf32>, tensor<256x4x64xf32>) -> tensor<?x?x4x64xf32>
  %lam = func.call @project_v(%x, %wl) : (tensor<?x?x256xf32>, tensor<256x4x64xf32>) -> tensor<?x?x4x64xf32>
  %gate = func.call @project_v(%x, %wg) : (tensor<?x?x256xf32>, tensor<256x4x64xf32>) -> tensor<?x?x4x64xf32>
  %q = func.call @rope(%q0) : (tensor<?x?x4x32xf32>) -> tensor<?x?x4x32xf32>
  %k = func.call @rope(%k0) : (tensor<?x?x4x32xf32>) -> tensor<?x?x4x32xf32>
  %o = fem.mixer softmax q(%q : tensor<?x?x4x32xf32>) k(%k : tensor<?x?x4x32xf32>)
      v(%v : tensor<?x?x4x64xf32>) beta_raw(%beta_raw : tensor<256xf32>)
      lam(%lam : tensor<?x?x4x64xf32>) gate(%gate : tensor<?x?x4x64xf32>)
      mask(%mask : tensor<?x?xi8>) {causal}
      -> tensor<?x?x4x64xf32>
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
