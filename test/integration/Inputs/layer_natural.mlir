// A softmax layer in the authors' layouts (semantics.md §7): nn.Linear
// weights W (out, in) with biases, y = x·Wᵀ + b on (B·T, in); the heads
// split by reshapes (B, T, H·d) → (B, T, H, d) with flat channel h·d + c and
// merged back before the output projection; RoPE on q and k (§6); an
// attention_mask (B, T), 1 = keep, 0 = pad, given to the FEM read as its key
// mask. D = 256, H = 4, dk = 32, dv = 64. For LayerTest.cpp.
#x = affine_map<(m, n, k) -> (m, k)>
#w = affine_map<(m, n, k) -> (n, k)>
#y = affine_map<(m, n, k) -> (m, n)>
#bias = affine_map<(m, n) -> (n)>
#id2 = affine_map<(m, n) -> (m, n)>
#id4 = affine_map<(b, t, h, j) -> (b, t, h, j)>

// y (M, N) = x (M, K) · w (N, K)ᵀ + b (N).
func.func private @linear(%x: tensor<?x256xf32>, %w: tensor<?x256xf32>,
                          %b: tensor<?xf32>) -> tensor<?x?xf32> {
  %c0 = arith.constant 0 : index
  %M = tensor.dim %x, %c0 : tensor<?x256xf32>
  %N = tensor.dim %w, %c0 : tensor<?x256xf32>
  %e = tensor.empty(%M, %N) : tensor<?x?xf32>
  %init = linalg.generic {indexing_maps = [#bias, #id2],
                          iterator_types = ["parallel", "parallel"]}
      ins(%b : tensor<?xf32>) outs(%e : tensor<?x?xf32>) {
    ^bb0(%a: f32, %o: f32):
      linalg.yield %a : f32
  } -> tensor<?x?xf32>
  %y = linalg.generic {indexing_maps = [#x, #w, #y],
                       iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : tensor<?x256xf32>, tensor<?x256xf32>) outs(%init : tensor<?x?xf32>) {
    ^bb0(%a: f32, %b2: f32, %acc: f32):
      %m = arith.mulf %a, %b2 : f32
      %s = arith.addf %acc, %m : f32
      linalg.yield %s : f32
  } -> tensor<?x?xf32>
  return %y : tensor<?x?xf32>
}

// RoPE as LayerTest's reference writes it (dk = 32).
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

func.func @fem_layer_natural(
    %x: tensor<?x?x256xf32> {fem.name = "x", fem.dims = "B,T,D"},
    %mask: tensor<?x?xf32> {fem.name = "attention_mask", fem.dims = "B,T"},
    %wq: tensor<128x256xf32> {fem.name = "W_q.weight", fem.dims = "Ek,D"},
    %bq: tensor<128xf32> {fem.name = "W_q.bias", fem.dims = "Ek"},
    %wk: tensor<128x256xf32> {fem.name = "W_k.weight", fem.dims = "Ek,D"},
    %bk: tensor<128xf32> {fem.name = "W_k.bias", fem.dims = "Ek"},
    %wv: tensor<256x256xf32> {fem.name = "W_v.weight", fem.dims = "E,D"},
    %bv: tensor<256xf32> {fem.name = "W_v.bias", fem.dims = "E"},
    %wl: tensor<256x256xf32> {fem.name = "W_lambda.weight", fem.dims = "E,D"},
    %bl: tensor<256xf32> {fem.name = "W_lambda.bias", fem.dims = "E"},
    %wg: tensor<256x256xf32> {fem.name = "W_gate.weight", fem.dims = "E,D"},
    %bg: tensor<256xf32> {fem.name = "W_gate.bias", fem.dims = "E"},
    %wo: tensor<256x256xf32> {fem.name = "W_o.weight", fem.dims = "D,E"},
    %bo: tensor<256xf32> {fem.name = "W_o.bias", fem.dims = "D"},
    %beta_raw: tensor<256xf32> {fem.name = "_beta_param", fem.dims = "E"})
    -> (tensor<?x?x256xf32> {fem.name = "y", fem.dims = "B,T,D"}) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %B = tensor.dim %x, %c0 : tensor<?x?x256xf32>
  %T = tensor.dim %x, %c1 : tensor<?x?x256xf32>
  %x2 = tensor.collapse_shape %x [[0, 1], [2]] : tensor<?x?x256xf32> into tensor<?x256xf32>
  %wq_ = tensor.cast %wq : tensor<128x256xf32> to tensor<?x256xf32>
  %wk_ = tensor.cast %wk : tensor<128x256xf32> to tensor<?x256xf32>
  %wv_ = tensor.cast %wv : tensor<256x256xf32> to tensor<?x256xf32>
  %wl_ = tensor.cast %wl : tensor<256x256xf32> to tensor<?x256xf32>
  %wg_ = tensor.cast %wg : tensor<256x256xf32> to tensor<?x256xf32>
  %wo_ = tensor.cast %wo : tensor<256x256xf32> to tensor<?x256xf32>
  %bq_ = tensor.cast %bq : tensor<128xf32> to tensor<?xf32>
  %bk_ = tensor.cast %bk : tensor<128xf32> to tensor<?xf32>
  %bv_ = tensor.cast %bv : tensor<256xf32> to tensor<?xf32>
  %bl_ = tensor.cast %bl : tensor<256xf32> to tensor<?xf32>
  %bg_ = tensor.cast %bg : tensor<256xf32> to tensor<?xf32>
  %bo_ = tensor.cast %bo : tensor<256xf32> to tensor<?xf32>
  %q2 = func.call @linear(%x2, %wq_, %bq_) : (tensor<?x256xf32>, tensor<?x256xf32>, tensor<?xf32>) -> tensor<?x?xf32>
  %k2 = func.call @linear(%x2, %wk_, %bk_) : (tensor<?x256xf32>, tensor<?x256xf32>, tensor<?xf32>) -> tensor<?x?xf32>
  %v2 = func.call @linear(%x2, %wv_, %bv_) : (tensor<?x256xf32>, tensor<?x256xf32>, tensor<?xf32>) -> tensor<?x?xf32>
  %l2 = func.call @linear(%x2, %wl_, %bl_) : (tensor<?x256xf32>, tensor<?x256xf32>, tensor<?xf32>) -> tensor<?x?xf32>
  %g2 = func.call @linear(%x2, %wg_, %bg_) : (tensor<?x256xf32>, tensor<?x256xf32>, tensor<?xf32>) -> tensor<?x?xf32>
  %q2s = tensor.cast %q2 : tensor<?x?xf32> to tensor<?x128xf32>
  %k2s = tensor.cast %k2 : tensor<?x?xf32> to tensor<?x128xf32>
  %v2s = tensor.cast %v2 : tensor<?x?xf32> to tensor<?x256xf32>
  %l2s = tensor.cast %l2 : tensor<?x?xf32> to tensor<?x256xf32>
  %g2s = tensor.cast %g2 : tensor<?x?xf32> to tensor<?x256xf32>
  %q0 = tensor.expand_shape %q2s [[0, 1], [2, 3]] output_shape [%B, %T, 4, 32] : tensor<?x128xf32> into tensor<?x?x4x32xf32>
  %k0 = tensor.expand_shape %k2s [[0, 1], [2, 3]] output_shape [%B, %T, 4, 32] : tensor<?x128xf32> into tensor<?x?x4x32xf32>
  %v = tensor.expand_shape %v2s [[0, 1], [2, 3]] output_shape [%B, %T, 4, 64] : tensor<?x256xf32> into tensor<?x?x4x64xf32>
  %lam = tensor.expand_shape %l2s [[0, 1], [2, 3]] output_shape [%B, %T, 4, 64] : tensor<?x256xf32> into tensor<?x?x4x64xf32>
  %gate = tensor.expand_shape %g2s [[0, 1], [2, 3]] output_shape [%B, %T, 4, 64] : tensor<?x256xf32> into tensor<?x?x4x64xf32>
  %q = func.call @rope(%q0) : (tensor<?x?x4x32xf32>) -> tensor<?x?x4x32xf32>
  %k = func.call @rope(%k0) : (tensor<?x?x4x32xf32>) -> tensor<?x?x4x32xf32>
  // The key mask: nonzero attention_mask keeps the key.
  %me = tensor.empty(%B, %T) : tensor<?x?xi8>
  %keep = linalg.generic {indexing_maps = [#id2, #id2],
                          iterator_types = ["parallel", "parallel"]}
      ins(%mask : tensor<?x?xf32>) outs(%me : tensor<?x?xi8>) {
    ^bb0(%m: f32, %o: i8):
      %zero = arith.constant 0.0 : f32
      %nz = arith.cmpf une, %m, %zero : f32
      %b8 = arith.extui %nz : i1 to i8
      linalg.yield %b8 : i8
  } -> tensor<?x?xi8>
  %o = fem.mixer softmax q(%q : tensor<?x?x4x32xf32>) k(%k : tensor<?x?x4x32xf32>)
      v(%v : tensor<?x?x4x64xf32>) beta_raw(%beta_raw : tensor<256xf32>)
      lam(%lam : tensor<?x?x4x64xf32>) gate(%gate : tensor<?x?x4x64xf32>)
      mask(%keep : tensor<?x?xi8>) {causal}
      -> tensor<?x?x4x64xf32>
  %o2 = tensor.collapse_shape %o [[0, 1], [2, 3]] : tensor<?x?x4x64xf32> into tensor<?x256xf32>
  %y2 = func.call @linear(%o2, %wo_, %bo_) : (tensor<?x256xf32>, tensor<?x256xf32>, tensor<?xf32>) -> tensor<?x?xf32>
  %y2s = tensor.cast %y2 : tensor<?x?xf32> to tensor<?x256xf32>
  %y = tensor.expand_shape %y2s [[0, 1], [2]] output_shape [%B, %T, 256] : tensor<?x256xf32> into tensor<?x?x256xf32>
  return %y : tensor<?x?x256xf32>
}
