// A layer whose only use is its matmul stages (MatmulStageTest.cpp): an nt
// projection (W as (H, d, D), nn.Linear's (out, in)) and an nn one (W as
// (D, H, d)), so the library has mm_pack_nt, mm_pack_nn and mm. The test
// calls those workgroup functions on shapes of its own; the FEM read is only
// there because femc compiles layers around one.
#x = affine_map<(b, t, h, d, k) -> (b, t, k)>
#wnt = affine_map<(b, t, h, d, k) -> (h, d, k)>
#wnn = affine_map<(b, t, h, d, k) -> (k, h, d)>
#y = affine_map<(b, t, h, d, k) -> (b, t, h, d)>
func.func @mm_stages(
    %x: tensor<?x?x64xf32> {fem.name = "x", fem.dims = "B,T,D"},
    %wq: tensor<1x64x64xf32> {fem.name = "wq", fem.dims = "H,dk,D"},
    %wk: tensor<64x1x64xf32> {fem.name = "wk", fem.dims = "D,H,dk"},
    %beta_raw: tensor<64xf32> {fem.name = "beta_raw", fem.dims = "E"})
    -> (tensor<?x?x1x64xf32> {fem.dims = "B,T,H,dv"}) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %B = tensor.dim %x, %c0 : tensor<?x?x64xf32>
  %T = tensor.dim %x, %c1 : tensor<?x?x64xf32>
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty(%B, %T) : tensor<?x?x1x64xf32>
  %z = linalg.fill ins(%zero : f32) outs(%e : tensor<?x?x1x64xf32>) -> tensor<?x?x1x64xf32>
  %q = linalg.generic {indexing_maps = [#x, #wnt, #y],
                       iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]}
      ins(%x, %wq : tensor<?x?x64xf32>, tensor<1x64x64xf32>) outs(%z : tensor<?x?x1x64xf32>) {
    ^bb0(%a: f32, %b: f32, %acc: f32):
      %m = arith.mulf %a, %b : f32
      %s = arith.addf %acc, %m : f32
      linalg.yield %s : f32
  } -> tensor<?x?x1x64xf32>
  %k = linalg.generic {indexing_maps = [#x, #wnn, #y],
                       iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]}
      ins(%x, %wk : tensor<?x?x64xf32>, tensor<64x1x64xf32>) outs(%z : tensor<?x?x1x64xf32>) {
    ^bb0(%a: f32, %b: f32, %acc: f32):
      %m = arith.mulf %a, %b : f32
      %s = arith.addf %acc, %m : f32
      linalg.yield %s : f32
  } -> tensor<?x?x1x64xf32>
  %o = fem.mixer softmax q(%q : tensor<?x?x1x64xf32>) k(%k : tensor<?x?x1x64xf32>)
      v(%q : tensor<?x?x1x64xf32>) beta_raw(%beta_raw : tensor<64xf32>)
      lam(%k : tensor<?x?x1x64xf32>) gate(%q : tensor<?x?x1x64xf32>) {causal}
      -> tensor<?x?x1x64xf32>
  return %o : tensor<?x?x1x64xf32>
}
