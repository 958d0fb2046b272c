// A whole FEM layer in the form of the authors' PyTorch module
// (FreeEnergyMixer, docs/layers.md): the `fem.layer` attribute holds its
// FreeEnergyMixerConfig with the sizes resolved, and the arguments are x,
// the attention_mask and the module's parameters under their state_dict
// names, in the state_dict's order and PyTorch's layouts (nn.Linear weight
// (out, in), heads split as flat channel h * dv + c). So `fem-run --check`
// compares it with the double-precision layer reference (reference/Layer.h).
//
// Configuration: n_embd 256, 4 heads, E = fem_dim = 256 (dv = 64),
// H * dk = qk_dim = 256 (dk = 64), softmax prior, causal, biases, RoPE,
// use_conv = false (no time-decay conditioning: the module's default is
// on; an importer writes that part too). semantics.md section 7:
//   V, Q, K = split(W x + b); K, V *= mask; RoPE on Q, K;
//   lambda = W_lambda x + b, gate = W_gate x + b (logits: the FEM read
//   applies sigmoid and the normalised softplus); y = W_o merge(out) + b.
//
//   femc examples/fem_layer_torch.mlir -o out
//   fem-run out/fem_layer_torch.so --dim B=1 --dim T=256 --check --bench 5
#lin_x = affine_map<(b, t, h, c, k) -> (b, t, k)>
#lin_w = affine_map<(b, t, h, c, k) -> (h * 64 + c, k)>
#lin_y = affine_map<(b, t, h, c, k) -> (b, t, h, c)>
#bias4 = affine_map<(b, t, h, c) -> (h * 64 + c)>
#row4 = affine_map<(b, t, h, c) -> (b, t)>
#id4 = affine_map<(b, t, h, c) -> (b, t, h, c)>
#out_o = affine_map<(b, t, o, h, c) -> (b, t, h, c)>
#out_w = affine_map<(b, t, o, h, c) -> (o, h * 64 + c)>
#out_y = affine_map<(b, t, o, h, c) -> (b, t, o)>
#bias3 = affine_map<(b, t, o) -> (o)>
#id3 = affine_map<(b, t, o) -> (b, t, o)>

// y[b,t,h,c] = b[h*64+c] + sum_k x[b,t,k] * W[h*64+c, k]: nn.Linear with
// the heads split.
func.func private @linear_heads(%x: tensor<?x?x256xf32>, %w: tensor<256x256xf32>,
                                %bias: tensor<256xf32>) -> tensor<?x?x4x64xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %B = tensor.dim %x, %c0 : tensor<?x?x256xf32>
  %T = tensor.dim %x, %c1 : tensor<?x?x256xf32>
  %e = tensor.empty(%B, %T) : tensor<?x?x4x64xf32>
  %init = linalg.generic {indexing_maps = [#bias4, #id4],
                          iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%bias : tensor<256xf32>) outs(%e : tensor<?x?x4x64xf32>) {
    ^bb0(%a: f32, %unused: f32):
      linalg.yield %a : f32
  } -> tensor<?x?x4x64xf32>
  %y = linalg.generic {indexing_maps = [#lin_x, #lin_w, #lin_y],
                       iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]}
      ins(%x, %w : tensor<?x?x256xf32>, tensor<256x256xf32>) outs(%init : tensor<?x?x4x64xf32>) {
    ^bb0(%a: f32, %b: f32, %acc: f32):
      %m = arith.mulf %a, %b : f32
      %s = arith.addf %acc, %m : f32
      linalg.yield %s : f32
  } -> tensor<?x?x4x64xf32>
  return %y : tensor<?x?x4x64xf32>
}

// The module's padding: K and V are multiplied by the mask (1 keep, 0 pad).
func.func private @apply_mask(%v: tensor<?x?x4x64xf32>, %m: tensor<?x?xf32>)
    -> tensor<?x?x4x64xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %B = tensor.dim %v, %c0 : tensor<?x?x4x64xf32>
  %T = tensor.dim %v, %c1 : tensor<?x?x4x64xf32>
  %e = tensor.empty(%B, %T) : tensor<?x?x4x64xf32>
  %y = linalg.generic {indexing_maps = [#id4, #row4, #id4],
                       iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%v, %m : tensor<?x?x4x64xf32>, tensor<?x?xf32>) outs(%e : tensor<?x?x4x64xf32>) {
    ^bb0(%a: f32, %keep: f32, %unused: f32):
      %r = arith.mulf %a, %keep : f32
      linalg.yield %r : f32
  } -> tensor<?x?x4x64xf32>
  return %y : tensor<?x?x4x64xf32>
}

// RoPE as the module computes it (semantics.md section 6): inv_freq[i] =
// 1 / 10000^(2i/64) in float32, repeated ("half" layout: channel j uses
// i = j mod 32), rotation partners interleaved: rot(x)[2i] = -x[2i+1],
// rot(x)[2i+1] = x[2i]; x' = x cos(t inv_freq) + rot(x) sin(t inv_freq).
func.func private @rope(%x: tensor<?x?x4x64xf32>) -> tensor<?x?x4x64xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %B = tensor.dim %x, %c0 : tensor<?x?x4x64xf32>
  %T = tensor.dim %x, %c1 : tensor<?x?x4x64xf32>
  %e = tensor.empty(%B, %T) : tensor<?x?x4x64xf32>
  %y = linalg.generic {indexing_maps = [#id4, #id4],
                       iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%x : tensor<?x?x4x64xf32>) outs(%e : tensor<?x?x4x64xf32>) {
    ^bb0(%a: f32, %unused: f32):
      %b = linalg.index 0 : index
      %t = linalg.index 1 : index
      %h = linalg.index 2 : index
      %j = linalg.index 3 : index
      %one = arith.constant 1 : index
      %c32 = arith.constant 32 : index
      %pj = arith.xori %j, %one : index
      %partner = tensor.extract %x[%b, %t, %h, %pj] : tensor<?x?x4x64xf32>
      %odd = arith.andi %j, %one : index
      %isOdd = arith.cmpi ne, %odd, %c0 : index
      %neg = arith.negf %partner : f32
      %rot = arith.select %isOdd, %partner, %neg : f32
      %i = arith.remui %j, %c32 : index
      %ii = arith.index_cast %i : index to i64
      %if = arith.sitofp %ii : i64 to f32
      %two = arith.constant 2.0 : f32
      %dk = arith.constant 64.0 : f32
      %twoi = arith.mulf %if, %two : f32
      %expo = arith.divf %twoi, %dk : f32
      %theta = arith.constant 10000.0 : f32
      %p = math.powf %theta, %expo : f32
      %onef = arith.constant 1.0 : f32
      %inv = arith.divf %onef, %p : f32
      %ti = arith.index_cast %t : index to i64
      %tf = arith.sitofp %ti : i64 to f32
      %ang = arith.mulf %tf, %inv : f32
      %cos = math.cos %ang : f32
      %sin = math.sin %ang : f32
      %u = arith.mulf %a, %cos : f32
      %w = arith.mulf %rot, %sin : f32
      %r = arith.addf %u, %w : f32
      linalg.yield %r : f32
  } -> tensor<?x?x4x64xf32>
  return %y : tensor<?x?x4x64xf32>
}

func.func @fem_layer_torch(
    %x: tensor<?x?x256xf32> {fem.name = "x", fem.dims = "B,T,D"},
    %mask: tensor<?x?xf32> {fem.name = "attention_mask", fem.dims = "B,T"},
    %beta: tensor<256xf32> {fem.name = "_beta_param"},
    %wv: tensor<256x256xf32> {fem.name = "W_v.weight"},
    %bv: tensor<256xf32> {fem.name = "W_v.bias"},
    %wo: tensor<256x256xf32> {fem.name = "W_o.weight"},
    %bo: tensor<256xf32> {fem.name = "W_o.bias"},
    %wq: tensor<256x256xf32> {fem.name = "W_q.weight"},
    %bq: tensor<256xf32> {fem.name = "W_q.bias"},
    %wk: tensor<256x256xf32> {fem.name = "W_k.weight"},
    %bk: tensor<256xf32> {fem.name = "W_k.bias"},
    %wl: tensor<256x256xf32> {fem.name = "W_lambda.weight"},
    %bl: tensor<256xf32> {fem.name = "W_lambda.bias"},
    %wg: tensor<256x256xf32> {fem.name = "W_gate.weight"},
    %bg: tensor<256xf32> {fem.name = "W_gate.bias"})
    -> (tensor<?x?x256xf32> {fem.name = "y", fem.dims = "B,T,D"})
    attributes {fem.layer = {n_embd = 256 : i64, n_head = 4 : i64,
                             fem_dim = 256 : i64, qk_dim = 256 : i64,
                             prior_type = "softmax", causal = true, bias = true,
                             use_temperature = true, use_lse = true,
                             use_outer_gate = true, use_rope = true,
                             rope_theta = 10000.0 : f64,
                             value_logexp_cap = 40.0 : f64, eps = 1.0e-06 : f64,
                             use_conv = false}} {
  %v0 = func.call @linear_heads(%x, %wv, %bv) : (tensor<?x?x256xf32>, tensor<256x256xf32>, tensor<256xf32>) -> tensor<?x?x4x64xf32>
  %q0 = func.call @linear_heads(%x, %wq, %bq) : (tensor<?x?x256xf32>, tensor<256x256xf32>, tensor<256xf32>) -> tensor<?x?x4x64xf32>
  %k0 = func.call @linear_heads(%x, %wk, %bk) : (tensor<?x?x256xf32>, tensor<256x256xf32>, tensor<256xf32>) -> tensor<?x?x4x64xf32>
  %v = func.call @apply_mask(%v0, %mask) : (tensor<?x?x4x64xf32>, tensor<?x?xf32>) -> tensor<?x?x4x64xf32>
  %k1 = func.call @apply_mask(%k0, %mask) : (tensor<?x?x4x64xf32>, tensor<?x?xf32>) -> tensor<?x?x4x64xf32>
  %q = func.call @rope(%q0) : (tensor<?x?x4x64xf32>) -> tensor<?x?x4x64xf32>
  %k = func.call @rope(%k1) : (tensor<?x?x4x64xf32>) -> tensor<?x?x4x64xf32>
  %lam = func.call @linear_heads(%x, %wl, %bl) : (tensor<?x?x256xf32>, tensor<256x256xf32>, tensor<256xf32>) -> tensor<?x?x4x64xf32>
  %gate = func.call @linear_heads(%x, %wg, %bg) : (tensor<?x?x256xf32>, tensor<256x256xf32>, tensor<256xf32>) -> tensor<?x?x4x64xf32>
  %o = fem.mixer softmax q(%q : tensor<?x?x4x64xf32>) k(%k : tensor<?x?x4x64xf32>)
      v(%v : tensor<?x?x4x64xf32>) beta_raw(%beta : tensor<256xf32>)
      lam(%lam : tensor<?x?x4x64xf32>) gate(%gate : tensor<?x?x4x64xf32>) {causal}
      -> tensor<?x?x4x64xf32>
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %B = tensor.dim %x, %c0 : tensor<?x?x256xf32>
  %T = tensor.dim %x, %c1 : tensor<?x?x256xf32>
  %e = tensor.empty(%B, %T) : tensor<?x?x256xf32>
  %init = linalg.generic {indexing_maps = [#bias3, #id3],
                          iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%bo : tensor<256xf32>) outs(%e : tensor<?x?x256xf32>) {
    ^bb0(%a: f32, %unused: f32):
      linalg.yield %a : f32
  } -> tensor<?x?x256xf32>
  %y = linalg.generic {indexing_maps = [#out_o, #out_w, #out_y],
                       iterator_types = ["parallel", "parallel", "parallel", "reduction", "reduction"]}
      ins(%o, %wo : tensor<?x?x4x64xf32>, tensor<256x256xf32>) outs(%init : tensor<?x?x256xf32>) {
    ^bb0(%a: f32, %b: f32, %acc: f32):
      %m = arith.mulf %a, %b : f32
      %s = arith.addf %acc, %m : f32
      linalg.yield %s : f32
  } -> tensor<?x?x256xf32>
  return %y : tensor<?x?x256xf32>
}
