// The README's demo layer: one FEM layer exactly as the authors' PyTorch
// module computes it (FreeEnergyMixer with its defaults, time-decay
// conditioning included; docs/semantics.md section 7), softmax prior,
// causal, n_embd 256, 4 heads, fem_dim = qk_dim = 256 (dk = dv = 64).
// Written by the checkpoint importer (docs/layers-examples.md) from a
// checkpoint with the configuration
//   {"n_embd": 256, "n_head": 4, "fem_dim": 256, "qk_dim": 256,
//    "prior_type": "softmax", "causal": true}
// (python3 -m femc.import CKPT.npz -o OUT --name fem_layer_lm); the weights
// are arguments, so fem-run draws them like PyTorch's init when none are
// given, and --check compares with the double-precision layer reference.
//
//   femc examples/fem_layer_lm.mlir -o out
//   fem-run out/fem_layer_lm.so --dim B=1 --dim T=1024 --check --bench 10
//
// FEM layer 'fem_layer_lm' imported by femc.import (python/femc/importer.py)
// from the authors' FreeEnergyMixer: n_embd 256, n_head 4, prior_type 'softmax', E = fem_dim 256 (dv 64 per head), qk_dim 256 (dk 64 per head), bias true, use_conv with conv_hidden 64.
// docs/semantics.md section 7; the parameters are the module's
// state_dict in PyTorch layouts, stored in fem_layer_lm.weights/.
func.func @fem_layer_lm(
    %x: tensor<?x?x256xf32> {fem.name = "x", fem.dims = "B,T,D"},
    %p0: tensor<256x256xf32> {fem.name = "W_v.weight"},
    %p1: tensor<256xf32> {fem.name = "W_v.bias"},
    %p2: tensor<256x256xf32> {fem.name = "W_o.weight"},
    %p3: tensor<256xf32> {fem.name = "W_o.bias"},
    %p4: tensor<256x256xf32> {fem.name = "W_q.weight"},
    %p5: tensor<256xf32> {fem.name = "W_q.bias"},
    %p6: tensor<256x256xf32> {fem.name = "W_k.weight"},
    %p7: tensor<256xf32> {fem.name = "W_k.bias"},
    %p8: tensor<256x256xf32> {fem.name = "W_lambda.weight"},
    %p9: tensor<256xf32> {fem.name = "W_lambda.bias"},
    %p10: tensor<256x256xf32> {fem.name = "W_gate.weight"},
    %p11: tensor<256xf32> {fem.name = "W_gate.bias"},
    %p12: tensor<256xf32> {fem.name = "_beta_param"},
    %p13: tensor<256xf32> {fem.name = "tdc.fwd.norm.weight"},
    %p14: tensor<256xf32> {fem.name = "tdc.fwd.norm.bias"},
    %p15: tensor<64x256xf32> {fem.name = "tdc.fwd.in_f.weight"},
    %p16: tensor<64xf32> {fem.name = "tdc.fwd.in_f.bias"},
    %p17: tensor<64x256xf32> {fem.name = "tdc.fwd.x_f.weight"},
    %p18: tensor<64xf32> {fem.name = "tdc.fwd.x_f.bias"},
    %p19: tensor<64x256xf32> {fem.name = "tdc.fwd.shortcut.weight"},
    %p20: tensor<64xf32> {fem.name = "tdc.fwd.shortcut.bias"},
    %p21: tensor<64x1280xf32> {fem.name = "tdc.fwd.out_proj"},
    %p22: tensor<64xf32> {fem.name = "tdc.fwd.ln.weight"},
    %p23: tensor<64xf32> {fem.name = "tdc.fwd.ln.bias"})
    -> (tensor<?x?x256xf32> {fem.name = "y", fem.dims = "B,T,D"})
    attributes {fem.layer = {n_embd = 256 : i64, n_head = 4 : i64, fem_dim = 256 : i64, fem_ratio = 0.5 : f64, qk_dim = 256 : i64, p_t_to_fem_ratio = 4.0 : f64, prior_type = "softmax", softmax_backend = "auto", dropout = 0.0 : f64, causal = true, bias = true, beta_max_init = 1.8 : f64, value_logexp_cap = 40.0 : f64, eps = 1.0e-06 : f64, use_temperature = true, use_lse = true, use_outer_gate = true, use_rope = true, rope_theta = 10000.0 : f64, use_conv = true, conv_hidden = 64 : i64, conv_norm_first = true, conv_bidirectional = false, ssm_rank = 16 : i64, mamba_normalize = true, align_multiple = 1 : i64}} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %B = tensor.dim %x, %c0 : tensor<?x?x256xf32>
  %T = tensor.dim %x, %c1 : tensor<?x?x256xf32>
  %e1 = tensor.empty(%B, %T) : tensor<?x?xf32>
  %cst3 = arith.constant 0.0 : f32
  %z2 = linalg.fill ins(%cst3 : f32) outs(%e1 : tensor<?x?xf32>) -> tensor<?x?xf32>
  %g4 = linalg.generic {indexing_maps = [affine_map<(b, t, k) -> (b, t, k)>, affine_map<(b, t, k) -> (b, t)>], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x : tensor<?x?x256xf32>)
      outs(%z2 : tensor<?x?xf32>) {
    ^bb0(%a0: f32, %acc: f32):
      %s1 = arith.addf %acc, %a0 : f32
      linalg.yield %s1 : f32
    } -> tensor<?x?xf32>
  %e5 = tensor.empty(%B, %T) : tensor<?x?xf32>
  %z6 = linalg.fill ins(%cst3 : f32) outs(%e5 : tensor<?x?xf32>) -> tensor<?x?xf32>
  %g7 = linalg.generic {indexing_maps = [affine_map<(b, t, k) -> (b, t, k)>, affine_map<(b, t, k) -> (b, t)>, affine_map<(b, t, k) -> (b, t)>], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %g4 : tensor<?x?x256xf32>, tensor<?x?xf32>)
      outs(%z6 : tensor<?x?xf32>) {
    ^bb0(%a0: f32, %a1: f32, %acc: f32):
      %s1 = arith.constant 0.00390625 : f32
      %s2 = arith.mulf %a1, %s1 : f32
      %s3 = arith.subf %a0, %s2 : f32
      %s4 = arith.mulf %s3, %s3 : f32
      %s5 = arith.addf %acc, %s4 : f32
      linalg.yield %s5 : f32
    } -> tensor<?x?xf32>
  %e8 = tensor.empty(%B, %T) : tensor<?x?x256xf32>
  %g9 = linalg.generic {indexing_maps = [affine_map<(b, t, k) -> (b, t, k)>, affine_map<(b, t, k) -> (b, t)>, affine_map<(b, t, k) -> (b, t)>, affine_map<(b, t, k) -> (k)>, affine_map<(b, t, k) -> (k)>, affine_map<(b, t, k) -> (b, t, k)>], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%x, %g4, %g7, %p13, %p14 : tensor<?x?x256xf32>, tensor<?x?xf32>, tensor<?x?xf32>, tensor<256xf32>, tensor<256xf32>)
      outs(%e8 : tensor<?x?x256xf32>) {
    ^bb0(%a0: f32, %a1: f32, %a2: f32, %a3: f32, %a4: f32, %acc: f32):
      %s1 = arith.constant 0.00390625 : f32
      %s2 = arith.mulf %a1, %s1 : f32
      %s3 = arith.constant 0.00390625 : f32
      %s4 = arith.mulf %a2, %s3 : f32
      %s5 = arith.constant 9.999999747378752e-06 : f32
      %s6 = arith.addf %s4, %s5 : f32
      %s7 = math.rsqrt %s6 : f32
      %s8 = arith.subf %a0, %s2 : f32
      %s9 = arith.mulf %s8, %s7 : f32
      %s10 = arith.mulf %s9, %a3 : f32
      %s11 = arith.addf %s10, %a4 : f32
      linalg.yield %s11 : f32
    } -> tensor<?x?x256xf32>
  %e10 = tensor.empty(%B, %T) : tensor<?x?x64xf32>
  %g11 = linalg.generic {indexing_maps = [affine_map<(b, t, n) -> (n)>, affine_map<(b, t, n) -> (b, t, n)>], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%p20 : tensor<64xf32>)
      outs(%e10 : tensor<?x?x64xf32>) {
    ^bb0(%a0: f32, %acc: f32):
      linalg.yield %a0 : f32
    } -> tensor<?x?x64xf32>
  %g12 = linalg.generic {indexing_maps = [affine_map<(b, t, n, k) -> (b, t, k)>, affine_map<(b, t, n, k) -> (n, k)>, affine_map<(b, t, n, k) -> (b, t, n)>], iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%g9, %p19 : tensor<?x?x256xf32>, tensor<64x256xf32>)
      outs(%g11 : tensor<?x?x64xf32>) {
    ^bb0(%a0: f32, %a1: f32, %acc: f32):
      %s1 = arith.mulf %a0, %a1 : f32
      %s2 = arith.addf %acc, %s1 : f32
      linalg.yield %s2 : f32
    } -> tensor<?x?x64xf32>
  %e13 = tensor.empty(%B, %T) : tensor<?x?xf32>
  %z14 = linalg.fill ins(%cst3 : f32) outs(%e13 : tensor<?x?xf32>) -> tensor<?x?xf32>
  %g15 = linalg.generic {indexing_maps = [affine_map<(b, t, k) -> (b, t, k)>, affine_map<(b, t, k) -> (b, t)>], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%g12 : tensor<?x?x64xf32>)
      outs(%z14 : tensor<?x?xf32>) {
    ^bb0(%a0: f32, %acc: f32):
      %s1 = math.exp %a0 : f32
      %s2 = math.log1p %s1 : f32
      %s3 = arith.constant 20.0 : f32
      %s4 = arith.cmpf ogt, %a0, %s3 : f32
      %s5 = arith.select %s4, %a0, %s2 : f32
      %s6 = arith.constant 9.99999993922529e-09 : f32
      %s7 = arith.addf %s5, %s6 : f32
      %s8 = arith.mulf %s7, %s7 : f32
      %s9 = arith.addf %acc, %s8 : f32
      linalg.yield %s9 : f32
    } -> tensor<?x?xf32>
  %e16 = tensor.empty(%B, %T) : tensor<?x?x64xf32>
  %g17 = linalg.generic {indexing_maps = [affine_map<(b, t, n) -> (n)>, affine_map<(b, t, n) -> (b, t, n)>], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%p18 : tensor<64xf32>)
      outs(%e16 : tensor<?x?x64xf32>) {
    ^bb0(%a0: f32, %acc: f32):
      linalg.yield %a0 : f32
    } -> tensor<?x?x64xf32>
  %g18 = linalg.generic {indexing_maps = [affine_map<(b, t, n, k) -> (b, t, k)>, affine_map<(b, t, n, k) -> (n, k)>, affine_map<(b, t, n, k) -> (b, t, n)>], iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%g9, %p17 : tensor<?x?x256xf32>, tensor<64x256xf32>)
      outs(%g17 : tensor<?x?x64xf32>) {
    ^bb0(%a0: f32, %a1: f32, %acc: f32):
      %s1 = arith.mulf %a0, %a1 : f32
      %s2 = arith.addf %acc, %s1 : f32
      linalg.yield %s2 : f32
    } -> tensor<?x?x64xf32>
  %e19 = tensor.empty(%B, %T) : tensor<?x?x64xf32>
  %g20 = linalg.generic {indexing_maps = [affine_map<(b, t, n) -> (n)>, affine_map<(b, t, n) -> (b, t, n)>], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%p16 : tensor<64xf32>)
      outs(%e19 : tensor<?x?x64xf32>) {
    ^bb0(%a0: f32, %acc: f32):
      linalg.yield %a0 : f32
    } -> tensor<?x?x64xf32>
  %g21 = linalg.generic {indexing_maps = [affine_map<(b, t, n, k) -> (b, t, k)>, affine_map<(b, t, n, k) -> (n, k)>, affine_map<(b, t, n, k) -> (b, t, n)>], iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%g9, %p15 : tensor<?x?x256xf32>, tensor<64x256xf32>)
      outs(%g20 : tensor<?x?x64xf32>) {
    ^bb0(%a0: f32, %a1: f32, %acc: f32):
      %s1 = arith.mulf %a0, %a1 : f32
      %s2 = arith.addf %acc, %s1 : f32
      linalg.yield %s2 : f32
    } -> tensor<?x?x64xf32>
  %e22 = tensor.empty(%B, %T) : tensor<?x?x64xf32>
  %ch26 = arith.constant 64 : index
  %cst27 = arith.constant 1.0 : f32
  %cst28 = arith.constant 20.0 : f32
  %cst29 = arith.constant 27.63102149963379 : f32
  %rb23 = scf.for %b30 = %c0 to %B step %c1 iter_args(%acc33 = %e22) -> (tensor<?x?x64xf32>) {
    %rj24 = scf.for %j31 = %c0 to %ch26 step %c1 iter_args(%acc34 = %acc33) -> (tensor<?x?x64xf32>) {
      %rt25:3 = scf.for %t32 = %c0 to %T step %c1 iter_args(%acc35 = %acc34, %c36 = %cst3, %r37 = %cst3) -> (tensor<?x?x64xf32>, f32, f32) {
        %a38 = tensor.extract %g21[%b30, %t32, %j31] : tensor<?x?x64xf32>
        %f39 = tensor.extract %g18[%b30, %t32, %j31] : tensor<?x?x64xf32>
        %x40 = math.exp %a38 : f32
        %x41 = math.log1p %x40 : f32
        %x42 = arith.cmpf ogt, %a38, %cst28 : f32
        %x43 = arith.select %x42, %a38, %x41 : f32
        %x44 = arith.subf %c36, %x43 : f32
        %x45 = arith.addf %x44, %cst29 : f32
        %x46 = math.exp %x45 : f32
        %x47 = arith.addf %x46, %cst27 : f32
        %x48 = arith.divf %x46, %x47 : f32
        %x49 = arith.negf %x43 : f32
        %x50 = math.exp %x49 : f32
        %x51 = arith.mulf %x50, %r37 : f32
        %x52 = math.fma %f39, %x48, %x51 : f32
        %x53 = tensor.insert %x52 into %acc35[%b30, %t32, %j31] : tensor<?x?x64xf32>
        scf.yield %x53, %x44, %x52 : tensor<?x?x64xf32>, f32, f32
      }
      scf.yield %rt25#0 : tensor<?x?x64xf32>
    }
    scf.yield %rj24 : tensor<?x?x64xf32>
  }
  %e54 = tensor.empty(%B, %T) : tensor<?x?xf32>
  %z55 = linalg.fill ins(%cst3 : f32) outs(%e54 : tensor<?x?xf32>) -> tensor<?x?xf32>
  %g56 = linalg.generic {indexing_maps = [affine_map<(b, t, k) -> (b, t, k)>, affine_map<(b, t, k) -> (b, t)>], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%rb23 : tensor<?x?x64xf32>)
      outs(%z55 : tensor<?x?xf32>) {
    ^bb0(%a0: f32, %acc: f32):
      %s1 = arith.addf %acc, %a0 : f32
      linalg.yield %s1 : f32
    } -> tensor<?x?xf32>
  %e57 = tensor.empty(%B, %T) : tensor<?x?xf32>
  %z58 = linalg.fill ins(%cst3 : f32) outs(%e57 : tensor<?x?xf32>) -> tensor<?x?xf32>
  %g59 = linalg.generic {indexing_maps = [affine_map<(b, t, k) -> (b, t, k)>, affine_map<(b, t, k) -> (b, t)>, affine_map<(b, t, k) -> (b, t)>], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%rb23, %g56 : tensor<?x?x64xf32>, tensor<?x?xf32>)
      outs(%z58 : tensor<?x?xf32>) {
    ^bb0(%a0: f32, %a1: f32, %acc: f32):
      %s1 = arith.constant 0.015625 : f32
      %s2 = arith.mulf %a1, %s1 : f32
      %s3 = arith.subf %a0, %s2 : f32
      %s4 = arith.mulf %s3, %s3 : f32
      %s5 = arith.addf %acc, %s4 : f32
      linalg.yield %s5 : f32
    } -> tensor<?x?xf32>
  %e60 = tensor.empty(%B, %T) : tensor<?x?x64xf32>
  %g61 = linalg.generic {indexing_maps = [affine_map<(b, t, k) -> (b, t, k)>, affine_map<(b, t, k) -> (b, t)>, affine_map<(b, t, k) -> (b, t)>, affine_map<(b, t, k) -> (k)>, affine_map<(b, t, k) -> (k)>, affine_map<(b, t, k) -> (b, t, k)>], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%rb23, %g56, %g59, %p22, %p23 : tensor<?x?x64xf32>, tensor<?x?xf32>, tensor<?x?xf32>, tensor<64xf32>, tensor<64xf32>)
      outs(%e60 : tensor<?x?x64xf32>) {
    ^bb0(%a0: f32, %a1: f32, %a2: f32, %a3: f32, %a4: f32, %acc: f32):
      %s1 = arith.constant 0.015625 : f32
      %s2 = arith.mulf %a1, %s1 : f32
      %s3 = arith.constant 0.015625 : f32
      %s4 = arith.mulf %a2, %s3 : f32
      %s5 = arith.constant 9.999999747378752e-06 : f32
      %s6 = arith.addf %s4, %s5 : f32
      %s7 = math.rsqrt %s6 : f32
      %s8 = arith.subf %a0, %s2 : f32
      %s9 = arith.mulf %s8, %s7 : f32
      %s10 = arith.mulf %s9, %a3 : f32
      %s11 = arith.addf %s10, %a4 : f32
      linalg.yield %s11 : f32
    } -> tensor<?x?x64xf32>
  %e62 = tensor.empty(%B, %T) : tensor<?x?x64xf32>
  %g63 = linalg.generic {indexing_maps = [affine_map<(b, t, j) -> (b, t, j)>, affine_map<(b, t, j) -> (b, t)>, affine_map<(b, t, j) -> (b, t, j)>, affine_map<(b, t, j) -> (b, t, j)>], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%g12, %g15, %g61 : tensor<?x?x64xf32>, tensor<?x?xf32>, tensor<?x?x64xf32>)
      outs(%e62 : tensor<?x?x64xf32>) {
    ^bb0(%a0: f32, %a1: f32, %a2: f32, %acc: f32):
      %s1 = math.exp %a0 : f32
      %s2 = math.log1p %s1 : f32
      %s3 = arith.constant 20.0 : f32
      %s4 = arith.cmpf ogt, %a0, %s3 : f32
      %s5 = arith.select %s4, %a0, %s2 : f32
      %s6 = arith.constant 9.99999993922529e-09 : f32
      %s7 = arith.addf %s5, %s6 : f32
      %s8 = math.sqrt %a1 : f32
      %s9 = arith.constant 9.99999993922529e-09 : f32
      %s10 = arith.maximumf %s8, %s9 : f32
      %s11 = arith.divf %s7, %s10 : f32
      %s12 = arith.constant 8.0 : f32
      %s13 = arith.mulf %s11, %s12 : f32
      %s14 = arith.mulf %s13, %a2 : f32
      linalg.yield %s14 : f32
    } -> tensor<?x?x64xf32>
  %e64 = tensor.empty(%B, %T) : tensor<?x?x1280xf32>
  %z65 = linalg.fill ins(%cst3 : f32) outs(%e64 : tensor<?x?x1280xf32>) -> tensor<?x?x1280xf32>
  %g66 = linalg.generic {indexing_maps = [affine_map<(b, t, w, j) -> (b, t, j)>, affine_map<(b, t, w, j) -> (j, w)>, affine_map<(b, t, w, j) -> (b, t, w)>], iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%g63, %p21 : tensor<?x?x64xf32>, tensor<64x1280xf32>)
      outs(%z65 : tensor<?x?x1280xf32>) {
    ^bb0(%a0: f32, %a1: f32, %acc: f32):
      %s1 = arith.mulf %a0, %a1 : f32
      %s2 = arith.addf %acc, %s1 : f32
      linalg.yield %s2 : f32
    } -> tensor<?x?x1280xf32>
  %e67 = tensor.empty(%B, %T) : tensor<?x?x4x64xf32>
  %g68 = linalg.generic {indexing_maps = [affine_map<(b, t, h, c) -> (h * 64 + c)>, affine_map<(b, t, h, c) -> (b, t, h, c)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%p1 : tensor<256xf32>)
      outs(%e67 : tensor<?x?x4x64xf32>) {
    ^bb0(%a0: f32, %acc: f32):
      linalg.yield %a0 : f32
    } -> tensor<?x?x4x64xf32>
  %w69 = tensor.expand_shape %p0 [[0, 1], [2]] output_shape [4, 64, 256] : tensor<256x256xf32> into tensor<4x64x256xf32>
  %g70 = linalg.generic {indexing_maps = [affine_map<(b, t, h, c, k) -> (b, t, k)>, affine_map<(b, t, h, c, k) -> (h, c, k)>, affine_map<(b, t, h, c, k) -> (b, t, h, c)>], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]}
      ins(%x, %w69 : tensor<?x?x256xf32>, tensor<4x64x256xf32>)
      outs(%g68 : tensor<?x?x4x64xf32>) {
    ^bb0(%a0: f32, %a1: f32, %acc: f32):
      %s1 = arith.mulf %a0, %a1 : f32
      %s2 = arith.addf %acc, %s1 : f32
      linalg.yield %s2 : f32
    } -> tensor<?x?x4x64xf32>
  %e71 = tensor.empty(%B, %T) : tensor<?x?x4x64xf32>
  %g72 = linalg.generic {indexing_maps = [affine_map<(b, t, h, c) -> (b, t, h, c)>, affine_map<(b, t, h, c) -> (b, t, 0 + h * 64 + c)>, affine_map<(b, t, h, c) -> (b, t, h, c)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%g70, %g66 : tensor<?x?x4x64xf32>, tensor<?x?x1280xf32>)
      outs(%e71 : tensor<?x?x4x64xf32>) {
    ^bb0(%a0: f32, %a1: f32, %acc: f32):
      %s1 = arith.constant 1.0 : f32
      %s2 = arith.addf %a1, %s1 : f32
      %s3 = arith.mulf %a0, %s2 : f32
      linalg.yield %s3 : f32
    } -> tensor<?x?x4x64xf32>
  %e73 = tensor.empty(%B, %T) : tensor<?x?x4x64xf32>
  %g74 = linalg.generic {indexing_maps = [affine_map<(b, t, h, c) -> (h * 64 + c)>, affine_map<(b, t, h, c) -> (b, t, h, c)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%p5 : tensor<256xf32>)
      outs(%e73 : tensor<?x?x4x64xf32>) {
    ^bb0(%a0: f32, %acc: f32):
      linalg.yield %a0 : f32
    } -> tensor<?x?x4x64xf32>
  %w75 = tensor.expand_shape %p4 [[0, 1], [2]] output_shape [4, 64, 256] : tensor<256x256xf32> into tensor<4x64x256xf32>
  %g76 = linalg.generic {indexing_maps = [affine_map<(b, t, h, c, k) -> (b, t, k)>, affine_map<(b, t, h, c, k) -> (h, c, k)>, affine_map<(b, t, h, c, k) -> (b, t, h, c)>], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]}
      ins(%x, %w75 : tensor<?x?x256xf32>, tensor<4x64x256xf32>)
      outs(%g74 : tensor<?x?x4x64xf32>) {
    ^bb0(%a0: f32, %a1: f32, %acc: f32):
      %s1 = arith.mulf %a0, %a1 : f32
      %s2 = arith.addf %acc, %s1 : f32
      linalg.yield %s2 : f32
    } -> tensor<?x?x4x64xf32>
  %e77 = tensor.empty(%B, %T) : tensor<?x?x4x64xf32>
  %g78 = linalg.generic {indexing_maps = [affine_map<(b, t, h, c) -> (h * 64 + c)>, affine_map<(b, t, h, c) -> (b, t, h, c)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%p7 : tensor<256xf32>)
      outs(%e77 : tensor<?x?x4x64xf32>) {
    ^bb0(%a0: f32, %acc: f32):
      linalg.yield %a0 : f32
    } -> tensor<?x?x4x64xf32>
  %w79 = tensor.expand_shape %p6 [[0, 1], [2]] output_shape [4, 64, 256] : tensor<256x256xf32> into tensor<4x64x256xf32>
  %g80 = linalg.generic {indexing_maps = [affine_map<(b, t, h, c, k) -> (b, t, k)>, affine_map<(b, t, h, c, k) -> (h, c, k)>, affine_map<(b, t, h, c, k) -> (b, t, h, c)>], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]}
      ins(%x, %w79 : tensor<?x?x256xf32>, tensor<4x64x256xf32>)
      outs(%g78 : tensor<?x?x4x64xf32>) {
    ^bb0(%a0: f32, %a1: f32, %acc: f32):
      %s1 = arith.mulf %a0, %a1 : f32
      %s2 = arith.addf %acc, %s1 : f32
      linalg.yield %s2 : f32
    } -> tensor<?x?x4x64xf32>
  %e81 = tensor.empty(%B, %T) : tensor<?x?x4x64xf32>
  %g82 = linalg.generic {indexing_maps = [affine_map<(b, t, h, c) -> (b, t, h, c)>, affine_map<(b, t, h, c) -> (b, t, 256 + h * 64 + c)>, affine_map<(b, t, h, c) -> (b, t, h, c)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%g76, %g66 : tensor<?x?x4x64xf32>, tensor<?x?x1280xf32>)
      outs(%e81 : tensor<?x?x4x64xf32>) {
    ^bb0(%a0: f32, %a1: f32, %acc: f32):
      %s1 = arith.constant 1.0 : f32
      %s2 = arith.addf %a1, %s1 : f32
      %s3 = arith.mulf %a0, %s2 : f32
      linalg.yield %s3 : f32
    } -> tensor<?x?x4x64xf32>
  %e83 = tensor.empty(%B, %T) : tensor<?x?x4x64xf32>
  %g84 = linalg.generic {indexing_maps = [affine_map<(b, t, h, c) -> (b, t, h, c)>, affine_map<(b, t, h, c) -> (b, t, 512 + h * 64 + c)>, affine_map<(b, t, h, c) -> (b, t, h, c)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%g80, %g66 : tensor<?x?x4x64xf32>, tensor<?x?x1280xf32>)
      outs(%e83 : tensor<?x?x4x64xf32>) {
    ^bb0(%a0: f32, %a1: f32, %acc: f32):
      %s1 = arith.constant 1.0 : f32
      %s2 = arith.addf %a1, %s1 : f32
      %s3 = arith.mulf %a0, %s2 : f32
      linalg.yield %s3 : f32
    } -> tensor<?x?x4x64xf32>
  %inv_freq85 = arith.constant dense<[1.0, 0.7498942017555237, 0.5623413324356079, 0.4216965138912201, 0.3162277638912201, 0.23713739216327667, 0.17782793939113617, 0.1333521455526352, 0.10000000149011612, 0.07498941570520401, 0.05623412877321243, 0.04216964915394783, 0.03162277862429619, 0.0237137358635664, 0.017782794311642647, 0.01333521492779255, 0.009999999776482582, 0.007498942315578461, 0.005623413249850273, 0.0042169648222625256, 0.003162277862429619, 0.0023713738191872835, 0.0017782794311642647, 0.0013335214462131262, 0.0010000000474974513, 0.0007498941849917173, 0.000562341301701963, 0.00042169654625467956, 0.0003162277862429619, 0.0002371373848291114, 0.00017782794020604342, 0.0001333521504420787]> : tensor<32xf64>
  %e86 = tensor.empty(%T) : tensor<?x32xf32>
  %cos87 = linalg.generic {indexing_maps = [affine_map<(t, i) -> (i)>, affine_map<(t, i) -> (t, i)>], iterator_types = ["parallel", "parallel"]}
      ins(%inv_freq85 : tensor<32xf64>) outs(%e86 : tensor<?x32xf32>) {
    ^bb0(%f: f64, %o: f32):
      %ti = linalg.index 0 : index
      %t64 = arith.index_cast %ti : index to i64
      %tf = arith.sitofp %t64 : i64 to f64
      %ang = arith.mulf %tf, %f : f64
      %r = math.cos %ang : f64
      %r32 = arith.truncf %r : f64 to f32
      linalg.yield %r32 : f32
    } -> tensor<?x32xf32>
  %e88 = tensor.empty(%T) : tensor<?x32xf32>
  %sin89 = linalg.generic {indexing_maps = [affine_map<(t, i) -> (i)>, affine_map<(t, i) -> (t, i)>], iterator_types = ["parallel", "parallel"]}
      ins(%inv_freq85 : tensor<32xf64>) outs(%e88 : tensor<?x32xf32>) {
    ^bb0(%f: f64, %o: f32):
      %ti = linalg.index 0 : index
      %t64 = arith.index_cast %ti : index to i64
      %tf = arith.sitofp %t64 : i64 to f64
      %ang = arith.mulf %tf, %f : f64
      %r = math.sin %ang : f64
      %r32 = arith.truncf %r : f64 to f32
      linalg.yield %r32 : f32
    } -> tensor<?x32xf32>
  %e90 = tensor.empty(%B, %T) : tensor<?x?x4x64xf32>
  %g91 = linalg.generic {indexing_maps = [affine_map<(b, t, h, c) -> (b, t, h, c)>, affine_map<(b, t, h, c) -> (b, t, h, c + 1 - (c mod 2) * 2)>, affine_map<(b, t, h, c) -> (t, c mod 32)>, affine_map<(b, t, h, c) -> (t, c mod 32)>, affine_map<(b, t, h, c) -> (b, t, h, c)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%g82, %g82, %cos87, %sin89 : tensor<?x?x4x64xf32>, tensor<?x?x4x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>)
      outs(%e90 : tensor<?x?x4x64xf32>) {
    ^bb0(%a0: f32, %a1: f32, %a2: f32, %a3: f32, %acc: f32):
      %s1 = linalg.index 3 : index
      %s2 = arith.constant 2 : index
      %s3 = arith.remui %s1, %s2 : index
      %s4 = arith.constant 0 : index
      %s5 = arith.cmpi ne, %s3, %s4 : index
      %s6 = arith.negf %a1 : f32
      %s7 = arith.select %s5, %a1, %s6 : f32
      %s8 = arith.mulf %a0, %a2 : f32
      %s9 = math.fma %s7, %a3, %s8 : f32
      linalg.yield %s9 : f32
    } -> tensor<?x?x4x64xf32>
  %e92 = tensor.empty(%B, %T) : tensor<?x?x4x64xf32>
  %g93 = linalg.generic {indexing_maps = [affine_map<(b, t, h, c) -> (b, t, h, c)>, affine_map<(b, t, h, c) -> (b, t, h, c + 1 - (c mod 2) * 2)>, affine_map<(b, t, h, c) -> (t, c mod 32)>, affine_map<(b, t, h, c) -> (t, c mod 32)>, affine_map<(b, t, h, c) -> (b, t, h, c)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%g84, %g84, %cos87, %sin89 : tensor<?x?x4x64xf32>, tensor<?x?x4x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>)
      outs(%e92 : tensor<?x?x4x64xf32>) {
    ^bb0(%a0: f32, %a1: f32, %a2: f32, %a3: f32, %acc: f32):
      %s1 = linalg.index 3 : index
      %s2 = arith.constant 2 : index
      %s3 = arith.remui %s1, %s2 : index
      %s4 = arith.constant 0 : index
      %s5 = arith.cmpi ne, %s3, %s4 : index
      %s6 = arith.negf %a1 : f32
      %s7 = arith.select %s5, %a1, %s6 : f32
      %s8 = arith.mulf %a0, %a2 : f32
      %s9 = math.fma %s7, %a3, %s8 : f32
      linalg.yield %s9 : f32
    } -> tensor<?x?x4x64xf32>
  %e94 = tensor.empty(%B, %T) : tensor<?x?x4x64xf32>
  %g95 = linalg.generic {indexing_maps = [affine_map<(b, t, h, c) -> (h * 64 + c)>, affine_map<(b, t, h, c) -> (b, t, h, c)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%p9 : tensor<256xf32>)
      outs(%e94 : tensor<?x?x4x64xf32>) {
    ^bb0(%a0: f32, %acc: f32):
      linalg.yield %a0 : f32
    } -> tensor<?x?x4x64xf32>
  %w96 = tensor.expand_shape %p8 [[0, 1], [2]] output_shape [4, 64, 256] : tensor<256x256xf32> into tensor<4x64x256xf32>
  %g97 = linalg.generic {indexing_maps = [affine_map<(b, t, h, c, k) -> (b, t, k)>, affine_map<(b, t, h, c, k) -> (h, c, k)>, affine_map<(b, t, h, c, k) -> (b, t, h, c)>], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]}
      ins(%x, %w96 : tensor<?x?x256xf32>, tensor<4x64x256xf32>)
      outs(%g95 : tensor<?x?x4x64xf32>) {
    ^bb0(%a0: f32, %a1: f32, %acc: f32):
      %s1 = arith.mulf %a0, %a1 : f32
      %s2 = arith.addf %acc, %s1 : f32
      linalg.yield %s2 : f32
    } -> tensor<?x?x4x64xf32>
  %e98 = tensor.empty(%B, %T) : tensor<?x?x4x64xf32>
  %g99 = linalg.generic {indexing_maps = [affine_map<(b, t, h, c) -> (b, t, h, c)>, affine_map<(b, t, h, c) -> (b, t, 768 + h * 64 + c)>, affine_map<(b, t, h, c) -> (b, t, h, c)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%g97, %g66 : tensor<?x?x4x64xf32>, tensor<?x?x1280xf32>)
      outs(%e98 : tensor<?x?x4x64xf32>) {
    ^bb0(%a0: f32, %a1: f32, %acc: f32):
      %s1 = arith.constant 1.0 : f32
      %s2 = arith.addf %a1, %s1 : f32
      %s3 = arith.mulf %a0, %s2 : f32
      linalg.yield %s3 : f32
    } -> tensor<?x?x4x64xf32>
  %e100 = tensor.empty(%B, %T) : tensor<?x?x4x64xf32>
  %g101 = linalg.generic {indexing_maps = [affine_map<(b, t, h, c) -> (h * 64 + c)>, affine_map<(b, t, h, c) -> (b, t, h, c)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%p11 : tensor<256xf32>)
      outs(%e100 : tensor<?x?x4x64xf32>) {
    ^bb0(%a0: f32, %acc: f32):
      linalg.yield %a0 : f32
    } -> tensor<?x?x4x64xf32>
  %w102 = tensor.expand_shape %p10 [[0, 1], [2]] output_shape [4, 64, 256] : tensor<256x256xf32> into tensor<4x64x256xf32>
  %g103 = linalg.generic {indexing_maps = [affine_map<(b, t, h, c, k) -> (b, t, k)>, affine_map<(b, t, h, c, k) -> (h, c, k)>, affine_map<(b, t, h, c, k) -> (b, t, h, c)>], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]}
      ins(%x, %w102 : tensor<?x?x256xf32>, tensor<4x64x256xf32>)
      outs(%g101 : tensor<?x?x4x64xf32>) {
    ^bb0(%a0: f32, %a1: f32, %acc: f32):
      %s1 = arith.mulf %a0, %a1 : f32
      %s2 = arith.addf %acc, %s1 : f32
      linalg.yield %s2 : f32
    } -> tensor<?x?x4x64xf32>
  %e104 = tensor.empty(%B, %T) : tensor<?x?x4x64xf32>
  %g105 = linalg.generic {indexing_maps = [affine_map<(b, t, h, c) -> (b, t, h, c)>, affine_map<(b, t, h, c) -> (b, t, 1024 + h * 64 + c)>, affine_map<(b, t, h, c) -> (b, t, h, c)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%g103, %g66 : tensor<?x?x4x64xf32>, tensor<?x?x1280xf32>)
      outs(%e104 : tensor<?x?x4x64xf32>) {
    ^bb0(%a0: f32, %a1: f32, %acc: f32):
      %s1 = arith.constant 1.0 : f32
      %s2 = arith.addf %a1, %s1 : f32
      %s3 = arith.mulf %a0, %s2 : f32
      linalg.yield %s3 : f32
    } -> tensor<?x?x4x64xf32>
  %read106 = fem.mixer softmax q(%g91 : tensor<?x?x4x64xf32>) k(%g93 : tensor<?x?x4x64xf32>) v(%g72 : tensor<?x?x4x64xf32>) beta_raw(%p12 : tensor<256xf32>) lam(%g99 : tensor<?x?x4x64xf32>) gate(%g105 : tensor<?x?x4x64xf32>) {causal, cap = 40.0 : f64, eps = 1.0e-06 : f64} -> tensor<?x?x4x64xf32>
  %e107 = tensor.empty(%B, %T) : tensor<?x?x256xf32>
  %g108 = linalg.generic {indexing_maps = [affine_map<(b, t, n) -> (n)>, affine_map<(b, t, n) -> (b, t, n)>], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%p3 : tensor<256xf32>)
      outs(%e107 : tensor<?x?x256xf32>) {
    ^bb0(%a0: f32, %acc: f32):
      linalg.yield %a0 : f32
    } -> tensor<?x?x256xf32>
  %w109 = tensor.expand_shape %p2 [[0], [1, 2]] output_shape [256, 4, 64] : tensor<256x256xf32> into tensor<256x4x64xf32>
  %g110 = linalg.generic {indexing_maps = [affine_map<(b, t, n, h, c) -> (b, t, h, c)>, affine_map<(b, t, n, h, c) -> (n, h, c)>, affine_map<(b, t, n, h, c) -> (b, t, n)>], iterator_types = ["parallel", "parallel", "parallel", "reduction", "reduction"]}
      ins(%read106, %w109 : tensor<?x?x4x64xf32>, tensor<256x4x64xf32>)
      outs(%g108 : tensor<?x?x256xf32>) {
    ^bb0(%a0: f32, %a1: f32, %acc: f32):
      %s1 = arith.mulf %a0, %a1 : f32
      %s2 = arith.addf %acc, %s1 : f32
      linalg.yield %s2 : f32
    } -> tensor<?x?x256xf32>
  return %g110 : tensor<?x?x256xf32>
}
