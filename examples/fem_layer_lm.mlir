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
      %s4 = arith.addf %acc, %s3 : f32
      linalg.yield %s4 : f32
    } -> tensor<?x?xf32>
  %e8 = tensor.empty(%B, %T) : tensor<?x?xf32>
  %z9 = linalg.fill ins(%cst3 : f32) outs(%e8 : tensor<?x?xf32>) -> tensor<?x?xf32>
  %g10 = linalg.generic {indexing_maps = [affine_map<(b, t, k) -> (b, t, k)>, affine_map<(b, t, k) -> (b, t)>, affine_map<(b, t, k) -> (b, t)>, affine_map<(b, t, k) -> (b, t)>], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %g4, %g7 : tensor<?x?x256xf32>, tensor<?x?xf32>, tensor<?x?xf32>)
      outs(%z9 : tensor<?x?xf32>) {
    ^bb0(%a0: f32, %a1: f32, %a2: f32, %acc: f32):
      %s1 = arith.constant 0.00390625 : f32
      %s2 = arith.mulf %a1, %s1 : f32
      %s3 = arith.constant 0.00390625 : f32
      %s4 = arith.mulf %a2, %s3 : f32
      %s5 = arith.subf %a0, %s2 : f32
      %s6 = arith.subf %s5, %s4 : f32
      %s7 = arith.mulf %s6, %s6 : f32
      %s8 = arith.addf %acc, %s7 : f32
      linalg.yield %s8 : f32
    } -> tensor<?x?xf32>
  %e11 = tensor.empty(%B, %T) : tensor<?x?x256xf32>
  %g12 = linalg.generic {indexing_maps = [affine_map<(b, t, k) -> (b, t, k)>, affine_map<(b, t, k) -> (b, t)>, affine_map<(b, t, k) -> (b, t)>, affine_map<(b, t, k) -> (b, t)>, affine_map<(b, t, k) -> (k)>, affine_map<(b, t, k) -> (k)>, affine_map<(b, t, k) -> (b, t, k)>], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%x, %g4, %g7, %g10, %p13, %p14 : tensor<?x?x256xf32>, tensor<?x?xf32>, tensor<?x?xf32>, tensor<?x?xf32>, tensor<256xf32>, tensor<256xf32>)
      outs(%e11 : tensor<?x?x256xf32>) {
    ^bb0(%a0: f32, %a1: f32, %a2: f32, %a3: f32, %a4: f32, %a5: f32, %acc: f32):
      %s1 = arith.constant 0.00390625 : f32
      %s2 = arith.mulf %a3, %s1 : f32
      %s3 = arith.constant 9.999999747378752e-06 : f32
      %s4 = arith.addf %s2, %s3 : f32
      %s5 = math.rsqrt %s4 : f32
      %s6 = arith.constant 0.00390625 : f32
      %s7 = arith.mulf %a1, %s6 : f32
      %s8 = arith.constant 0.00390625 : f32
      %s9 = arith.mulf %a2, %s8 : f32
      %s10 = arith.subf %a0, %s7 : f32
      %s11 = arith.subf %s10, %s9 : f32
      %s12 = arith.mulf %s11, %s5 : f32
      %s13 = arith.mulf %s12, %a4 : f32
      %s14 = arith.addf %s13, %a5 : f32
      linalg.yield %s14 : f32
    } -> tensor<?x?x256xf32>
  %e13 = tensor.empty(%B, %T) : tensor<?x?x64xf32>
  %g14 = linalg.generic {indexing_maps = [affine_map<(b, t, n) -> (n)>, affine_map<(b, t, n) -> (b, t, n)>], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%p20 : tensor<64xf32>)
      outs(%e13 : tensor<?x?x64xf32>) {
    ^bb0(%a0: f32, %acc: f32):
      linalg.yield %a0 : f32
    } -> tensor<?x?x64xf32>
  %g15 = linalg.generic {indexing_maps = [affine_map<(b, t, n, k) -> (b, t, k)>, affine_map<(b, t, n, k) -> (n, k)>, affine_map<(b, t, n, k) -> (b, t, n)>], iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%g12, %p19 : tensor<?x?x256xf32>, tensor<64x256xf32>)
      outs(%g14 : tensor<?x?x64xf32>) {
    ^bb0(%a0: f32, %a1: f32, %acc: f32):
      %s1 = arith.mulf %a0, %a1 : f32
      %s2 = arith.addf %acc, %s1 : f32
      linalg.yield %s2 : f32
    } -> tensor<?x?x64xf32>
  %e16 = tensor.empty(%B, %T) : tensor<?x?xf32>
  %z17 = linalg.fill ins(%cst3 : f32) outs(%e16 : tensor<?x?xf32>) -> tensor<?x?xf32>
  %g18 = linalg.generic {indexing_maps = [affine_map<(b, t, k) -> (b, t, k)>, affine_map<(b, t, k) -> (b, t)>], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%g15 : tensor<?x?x64xf32>)
      outs(%z17 : tensor<?x?xf32>) {
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
  %e19 = tensor.empty(%B, %T) : tensor<?x?x64xf32>
  %g20 = linalg.generic {indexing_maps = [affine_map<(b, t, n) -> (n)>, affine_map<(b, t, n) -> (b, t, n)>], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%p18 : tensor<64xf32>)
      outs(%e19 : tensor<?x?x64xf32>) {
    ^bb0(%a0: f32, %acc: f32):
      linalg.yield %a0 : f32
    } -> tensor<?x?x64xf32>
  %g21 = linalg.generic {indexing_maps = [affine_map<(b, t, n, k) -> (b, t, k)>, affine_map<(b, t, n, k) -> (n, k)>, affine_map<(b, t, n, k) -> (b, t, n)>], iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%g12, %p17 : tensor<?x?x256xf32>, tensor<64x256xf32>)
      outs(%g20 : tensor<?x?x64xf32>) {
    ^bb0(%a0: f32, %a1: f32, %acc: f32):
      %s1 = arith.mulf %a0, %a1 : f32
      %s2 = arith.addf %acc, %s1 : f32
      linalg.yield %s2 : f32
    } -> tensor<?x?x64xf32>
  %e22 = tensor.empty(%B, %T) : tensor<?x?x64xf32>
  %g23 = linalg.generic {indexing_maps = [affine_map<(b, t, n) -> (n)>, affine_map<(b, t, n) -> (b, t, n)>], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%p16 : tensor<64xf32>)
      outs(%e22 : tensor<?x?x64xf32>) {
    ^bb0(%a0: f32, %acc: f32):
      linalg.yield %a0 : f32
    } -> tensor<?x?x64xf32>
  %g24 = linalg.generic {indexing_maps = [affine_map<(b, t, n, k) -> (b, t, k)>, affine_map<(b, t, n, k) -> (n, k)>, affine_map<(b, t, n, k) -> (b, t, n)>], iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%g12, %p15 : tensor<?x?x256xf32>, tensor<64x256xf32>)
      outs(%g23 : tensor<?x?x64xf32>) {
    ^bb0(%a0: f32, %a1: f32, %acc: f32):
      %s1 = arith.mulf %a0, %a1 : f32
      %s2 = arith.addf %acc, %s1 : f32
      linalg.yield %s2 : f32
    } -> tensor<?x?x64xf32>
  %e25 = tensor.empty(%B, %T) : tensor<?x?x64xf32>
  %ch29 = arith.constant 64 : index
  %cst30 = arith.constant 1.0 : f32
  %cst31 = arith.constant 20.0 : f32
  %cst32 = arith.constant 27.63102149963379 : f32
  %cst67 = arith.constant -1.0 : f32
  %rb26 = scf.for %b33 = %c0 to %B step %c1 iter_args(%acc36 = %e25) -> (tensor<?x?x64xf32>) {
    %rj27 = scf.for %j34 = %c0 to %ch29 step %c1 iter_args(%acc37 = %acc36) -> (tensor<?x?x64xf32>) {
      %rt28:4 = scf.for %t35 = %c0 to %T step %c1 iter_args(%acc38 = %acc37, %c39 = %cst3, %c40 = %cst3, %r41 = %cst3) -> (tensor<?x?x64xf32>, f32, f32, f32) {
        %a42 = tensor.extract %g24[%b33, %t35, %j34] : tensor<?x?x64xf32>
        %f43 = tensor.extract %g21[%b33, %t35, %j34] : tensor<?x?x64xf32>
        %x44 = math.exp %a42 : f32
        %x45 = math.log1p %x44 : f32
        %x46 = arith.cmpf ogt, %a42, %cst31 : f32
        %x47 = arith.select %x46, %a42, %x45 : f32
        %x53 = arith.negf %x47 : f32
        %x48 = arith.addf %c39, %x53 : f32
        %x58 = arith.subf %x48, %c39 : f32
        %x59 = arith.subf %x48, %x58 : f32
        %x60 = arith.subf %c39, %x59 : f32
        %x61 = arith.subf %x53, %x58 : f32
        %x62 = arith.addf %x60, %x61 : f32
        %x63 = arith.addf %c40, %x62 : f32
        %x64 = arith.maxnumf %x63, %cst67 : f32
        %x65 = arith.minnumf %x64, %cst30 : f32
        %x66 = arith.addf %x48, %cst32 : f32
        %x49 = arith.addf %x66, %x65 : f32
        %x50 = math.exp %x49 : f32
        %x51 = arith.addf %x50, %cst30 : f32
        %x52 = arith.divf %x50, %x51 : f32
        %x54 = math.exp %x53 : f32
        %x55 = arith.mulf %x54, %r41 : f32
        %x56 = math.fma %f43, %x52, %x55 : f32
        %x57 = tensor.insert %x56 into %acc38[%b33, %t35, %j34] : tensor<?x?x64xf32>
        scf.yield %x57, %x48, %x63, %x56 : tensor<?x?x64xf32>, f32, f32, f32
      }
      scf.yield %rt28#0 : tensor<?x?x64xf32>
    }
    scf.yield %rj27 : tensor<?x?x64xf32>
  }
  %e68 = tensor.empty(%B, %T) : tensor<?x?xf32>
  %z69 = linalg.fill ins(%cst3 : f32) outs(%e68 : tensor<?x?xf32>) -> tensor<?x?xf32>
  %g70 = linalg.generic {indexing_maps = [affine_map<(b, t, k) -> (b, t, k)>, affine_map<(b, t, k) -> (b, t)>], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%rb26 : tensor<?x?x64xf32>)
      outs(%z69 : tensor<?x?xf32>) {
    ^bb0(%a0: f32, %acc: f32):
      %s1 = arith.addf %acc, %a0 : f32
      linalg.yield %s1 : f32
    } -> tensor<?x?xf32>
  %e71 = tensor.empty(%B, %T) : tensor<?x?xf32>
  %z72 = linalg.fill ins(%cst3 : f32) outs(%e71 : tensor<?x?xf32>) -> tensor<?x?xf32>
  %g73 = linalg.generic {indexing_maps = [affine_map<(b, t, k) -> (b, t, k)>, affine_map<(b, t, k) -> (b, t)>, affine_map<(b, t, k) -> (b, t)>], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%rb26, %g70 : tensor<?x?x64xf32>, tensor<?x?xf32>)
      outs(%z72 : tensor<?x?xf32>) {
    ^bb0(%a0: f32, %a1: f32, %acc: f32):
      %s1 = arith.constant 0.015625 : f32
      %s2 = arith.mulf %a1, %s1 : f32
      %s3 = arith.subf %a0, %s2 : f32
      %s4 = arith.addf %acc, %s3 : f32
      linalg.yield %s4 : f32
    } -> tensor<?x?xf32>
  %e74 = tensor.empty(%B, %T) : tensor<?x?xf32>
  %z75 = linalg.fill ins(%cst3 : f32) outs(%e74 : tensor<?x?xf32>) -> tensor<?x?xf32>
  %g76 = linalg.generic {indexing_maps = [affine_map<(b, t, k) -> (b, t, k)>, affine_map<(b, t, k) -> (b, t)>, affine_map<(b, t, k) -> (b, t)>, affine_map<(b, t, k) -> (b, t)>], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%rb26, %g70, %g73 : tensor<?x?x64xf32>, tensor<?x?xf32>, tensor<?x?xf32>)
      outs(%z75 : tensor<?x?xf32>) {
    ^bb0(%a0: f32, %a1: f32, %a2: f32, %acc: f32):
      %s1 = arith.constant 0.015625 : f32
      %s2 = arith.mulf %a1, %s1 : f32
      %s3 = arith.constant 0.015625 : f32
      %s4 = arith.mulf %a2, %s3 : f32
      %s5 = arith.subf %a0, %s2 : f32
      %s6 = arith.subf %s5, %s4 : f32
      %s7 = arith.mulf %s6, %s6 : f32
      %s8 = arith.addf %acc, %s7 : f32
      linalg.yield %s8 : f32
    } -> tensor<?x?xf32>
  %e77 = tensor.empty(%B, %T) : tensor<?x?x64xf32>
  %g78 = linalg.generic {indexing_maps = [affine_map<(b, t, k) -> (b, t, k)>, affine_map<(b, t, k) -> (b, t)>, affine_map<(b, t, k) -> (b, t)>, affine_map<(b, t, k) -> (b, t)>, affine_map<(b, t, k) -> (k)>, affine_map<(b, t, k) -> (k)>, affine_map<(b, t, k) -> (b, t, k)>], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%rb26, %g70, %g73, %g76, %p22, %p23 : tensor<?x?x64xf32>, tensor<?x?xf32>, tensor<?x?xf32>, tensor<?x?xf32>, tensor<64xf32>, tensor<64xf32>)
      outs(%e77 : tensor<?x?x64xf32>) {
    ^bb0(%a0: f32, %a1: f32, %a2: f32, %a3: f32, %a4: f32, %a5: f32, %acc: f32):
      %s1 = arith.constant 0.015625 : f32
      %s2 = arith.mulf %a3, %s1 : f32
      %s3 = arith.constant 9.999999747378752e-06 : f32
      %s4 = arith.addf %s2, %s3 : f32
      %s5 = math.rsqrt %s4 : f32
      %s6 = arith.constant 0.015625 : f32
      %s7 = arith.mulf %a1, %s6 : f32
      %s8 = arith.constant 0.015625 : f32
      %s9 = arith.mulf %a2, %s8 : f32
      %s10 = arith.subf %a0, %s7 : f32
      %s11 = arith.subf %s10, %s9 : f32
      %s12 = arith.mulf %s11, %s5 : f32
      %s13 = arith.mulf %s12, %a4 : f32
      %s14 = arith.addf %s13, %a5 : f32
      linalg.yield %s14 : f32
    } -> tensor<?x?x64xf32>
  %e79 = tensor.empty(%B, %T) : tensor<?x?x64xf32>
  %g80 = linalg.generic {indexing_maps = [affine_map<(b, t, j) -> (b, t, j)>, affine_map<(b, t, j) -> (b, t)>, affine_map<(b, t, j) -> (b, t, j)>, affine_map<(b, t, j) -> (b, t, j)>], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%g15, %g18, %g78 : tensor<?x?x64xf32>, tensor<?x?xf32>, tensor<?x?x64xf32>)
      outs(%e79 : tensor<?x?x64xf32>) {
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
  %e81 = tensor.empty(%B, %T) : tensor<?x?x1280xf32>
  %z82 = linalg.fill ins(%cst3 : f32) outs(%e81 : tensor<?x?x1280xf32>) -> tensor<?x?x1280xf32>
  %g83 = linalg.generic {indexing_maps = [affine_map<(b, t, w, j) -> (b, t, j)>, affine_map<(b, t, w, j) -> (j, w)>, affine_map<(b, t, w, j) -> (b, t, w)>], iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%g80, %p21 : tensor<?x?x64xf32>, tensor<64x1280xf32>)
      outs(%z82 : tensor<?x?x1280xf32>) {
    ^bb0(%a0: f32, %a1: f32, %acc: f32):
      %s1 = arith.mulf %a0, %a1 : f32
      %s2 = arith.addf %acc, %s1 : f32
      linalg.yield %s2 : f32
    } -> tensor<?x?x1280xf32>
  %e84 = tensor.empty(%B, %T) : tensor<?x?x4x64xf32>
  %g85 = linalg.generic {indexing_maps = [affine_map<(b, t, h, c) -> (h * 64 + c)>, affine_map<(b, t, h, c) -> (b, t, h, c)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%p1 : tensor<256xf32>)
      outs(%e84 : tensor<?x?x4x64xf32>) {
    ^bb0(%a0: f32, %acc: f32):
      linalg.yield %a0 : f32
    } -> tensor<?x?x4x64xf32>
  %w86 = tensor.expand_shape %p0 [[0, 1], [2]] output_shape [4, 64, 256] : tensor<256x256xf32> into tensor<4x64x256xf32>
  %g87 = linalg.generic {indexing_maps = [affine_map<(b, t, h, c, k) -> (b, t, k)>, affine_map<(b, t, h, c, k) -> (h, c, k)>, affine_map<(b, t, h, c, k) -> (b, t, h, c)>], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]}
      ins(%x, %w86 : tensor<?x?x256xf32>, tensor<4x64x256xf32>)
      outs(%g85 : tensor<?x?x4x64xf32>) {
    ^bb0(%a0: f32, %a1: f32, %acc: f32):
      %s1 = arith.mulf %a0, %a1 : f32
      %s2 = arith.addf %acc, %s1 : f32
      linalg.yield %s2 : f32
    } -> tensor<?x?x4x64xf32>
  %e88 = tensor.empty(%B, %T) : tensor<?x?x4x64xf32>
  %g89 = linalg.generic {indexing_maps = [affine_map<(b, t, h, c) -> (b, t, h, c)>, affine_map<(b, t, h, c) -> (b, t, 0 + h * 64 + c)>, affine_map<(b, t, h, c) -> (b, t, h, c)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%g87, %g83 : tensor<?x?x4x64xf32>, tensor<?x?x1280xf32>)
      outs(%e88 : tensor<?x?x4x64xf32>) {
    ^bb0(%a0: f32, %a1: f32, %acc: f32):
      %s1 = arith.constant 1.0 : f32
      %s2 = arith.addf %a1, %s1 : f32
      %s3 = arith.mulf %a0, %s2 : f32
      linalg.yield %s3 : f32
    } -> tensor<?x?x4x64xf32>
  %e90 = tensor.empty(%B, %T) : tensor<?x?x4x64xf32>
  %g91 = linalg.generic {indexing_maps = [affine_map<(b, t, h, c) -> (h * 64 + c)>, affine_map<(b, t, h, c) -> (b, t, h, c)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%p5 : tensor<256xf32>)
      outs(%e90 : tensor<?x?x4x64xf32>) {
    ^bb0(%a0: f32, %acc: f32):
      linalg.yield %a0 : f32
    } -> tensor<?x?x4x64xf32>
  %w92 = tensor.expand_shape %p4 [[0, 1], [2]] output_shape [4, 64, 256] : tensor<256x256xf32> into tensor<4x64x256xf32>
  %g93 = linalg.generic {indexing_maps = [affine_map<(b, t, h, c, k) -> (b, t, k)>, affine_map<(b, t, h, c, k) -> (h, c, k)>, affine_map<(b, t, h, c, k) -> (b, t, h, c)>], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]}
      ins(%x, %w92 : tensor<?x?x256xf32>, tensor<4x64x256xf32>)
      outs(%g91 : tensor<?x?x4x64xf32>) {
    ^bb0(%a0: f32, %a1: f32, %acc: f32):
      %s1 = arith.mulf %a0, %a1 : f32
      %s2 = arith.addf %acc, %s1 : f32
      linalg.yield %s2 : f32
    } -> tensor<?x?x4x64xf32>
  %e94 = tensor.empty(%B, %T) : tensor<?x?x4x64xf32>
  %g95 = linalg.generic {indexing_maps = [affine_map<(b, t, h, c) -> (h * 64 + c)>, affine_map<(b, t, h, c) -> (b, t, h, c)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%p7 : tensor<256xf32>)
      outs(%e94 : tensor<?x?x4x64xf32>) {
    ^bb0(%a0: f32, %acc: f32):
      linalg.yield %a0 : f32
    } -> tensor<?x?x4x64xf32>
  %w96 = tensor.expand_shape %p6 [[0, 1], [2]] output_shape [4, 64, 256] : tensor<256x256xf32> into tensor<4x64x256xf32>
  %g97 = linalg.generic {indexing_maps = [affine_map<(b, t, h, c, k) -> (b, t, k)>, affine_map<(b, t, h, c, k) -> (h, c, k)>, affine_map<(b, t, h, c, k) -> (b, t, h, c)>], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]}
      ins(%x, %w96 : tensor<?x?x256xf32>, tensor<4x64x256xf32>)
      outs(%g95 : tensor<?x?x4x64xf32>) {
    ^bb0(%a0: f32, %a1: f32, %acc: f32):
      %s1 = arith.mulf %a0, %a1 : f32
      %s2 = arith.addf %acc, %s1 : f32
      linalg.yield %s2 : f32
    } -> tensor<?x?x4x64xf32>
  %e98 = tensor.empty(%B, %T) : tensor<?x?x4x64xf32>
  %g99 = linalg.generic {indexing_maps = [affine_map<(b, t, h, c) -> (b, t, h, c)>, affine_map<(b, t, h, c) -> (b, t, 256 + h * 64 + c)>, affine_map<(b, t, h, c) -> (b, t, h, c)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%g93, %g83 : tensor<?x?x4x64xf32>, tensor<?x?x1280xf32>)
      outs(%e98 : tensor<?x?x4x64xf32>) {
    ^bb0(%a0: f32, %a1: f32, %acc: f32):
      %s1 = arith.constant 1.0 : f32
      %s2 = arith.addf %a1, %s1 : f32
      %s3 = arith.mulf %a0, %s2 : f32
      linalg.yield %s3 : f32
    } -> tensor<?x?x4x64xf32>
  %e100 = tensor.empty(%B, %T) : tensor<?x?x4x64xf32>
  %g101 = linalg.generic {indexing_maps = [affine_map<(b, t, h, c) -> (b, t, h, c)>, affine_map<(b, t, h, c) -> (b, t, 512 + h * 64 + c)>, affine_map<(b, t, h, c) -> (b, t, h, c)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%g97, %g83 : tensor<?x?x4x64xf32>, tensor<?x?x1280xf32>)
      outs(%e100 : tensor<?x?x4x64xf32>) {
    ^bb0(%a0: f32, %a1: f32, %acc: f32):
      %s1 = arith.constant 1.0 : f32
      %s2 = arith.addf %a1, %s1 : f32
      %s3 = arith.mulf %a0, %s2 : f32
      linalg.yield %s3 : f32
    } -> tensor<?x?x4x64xf32>
  %inv_freq102 = arith.constant dense<[1.0, 0.7498942093324559, 0.5623413251903491, 0.4216965034285822, 0.31622776601683794, 0.23713737056616552, 0.1778279410038923, 0.1333521432163324, 0.1, 0.07498942093324558, 0.05623413251903491, 0.042169650342858224, 0.03162277660168379, 0.023713737056616554, 0.01778279410038923, 0.01333521432163324, 0.01, 0.007498942093324558, 0.005623413251903491, 0.004216965034285823, 0.0031622776601683794, 0.0023713737056616554, 0.0017782794100389228, 0.001333521432163324, 0.001, 0.0007498942093324559, 0.0005623413251903491, 0.00042169650342858224, 0.00031622776601683794, 0.00023713737056616554, 0.00017782794100389227, 0.0001333521432163324]> : tensor<32xf64>
  %e103 = tensor.empty(%T) : tensor<?x32xf32>
  %cos104 = linalg.generic {indexing_maps = [affine_map<(t, i) -> (i)>, affine_map<(t, i) -> (t, i)>], iterator_types = ["parallel", "parallel"]}
      ins(%inv_freq102 : tensor<32xf64>) outs(%e103 : tensor<?x32xf32>) {
    ^bb0(%f: f64, %o: f32):
      %ti = linalg.index 0 : index
      %t64 = arith.index_cast %ti : index to i64
      %tf = arith.sitofp %t64 : i64 to f64
      %ang = arith.mulf %tf, %f : f64
      %r = math.cos %ang : f64
      %r32 = arith.truncf %r : f64 to f32
      linalg.yield %r32 : f32
    } -> tensor<?x32xf32>
  %e105 = tensor.empty(%T) : tensor<?x32xf32>
  %sin106 = linalg.generic {indexing_maps = [affine_map<(t, i) -> (i)>, affine_map<(t, i) -> (t, i)>], iterator_types = ["parallel", "parallel"]}
      ins(%inv_freq102 : tensor<32xf64>) outs(%e105 : tensor<?x32xf32>) {
    ^bb0(%f: f64, %o: f32):
      %ti = linalg.index 0 : index
      %t64 = arith.index_cast %ti : index to i64
      %tf = arith.sitofp %t64 : i64 to f64
      %ang = arith.mulf %tf, %f : f64
      %r = math.sin %ang : f64
      %r32 = arith.truncf %r : f64 to f32
      linalg.yield %r32 : f32
    } -> tensor<?x32xf32>
  %e107 = tensor.empty(%B, %T) : tensor<?x?x4x64xf32>
  %g108 = linalg.generic {indexing_maps = [affine_map<(b, t, h, c) -> (b, t, h, c)>, affine_map<(b, t, h, c) -> (b, t, h, c + 1 - (c mod 2) * 2)>, affine_map<(b, t, h, c) -> (t, c mod 32)>, affine_map<(b, t, h, c) -> (t, c mod 32)>, affine_map<(b, t, h, c) -> (b, t, h, c)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%g99, %g99, %cos104, %sin106 : tensor<?x?x4x64xf32>, tensor<?x?x4x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>)
      outs(%e107 : tensor<?x?x4x64xf32>) {
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
  %e109 = tensor.empty(%B, %T) : tensor<?x?x4x64xf32>
  %g110 = linalg.generic {indexing_maps = [affine_map<(b, t, h, c) -> (b, t, h, c)>, affine_map<(b, t, h, c) -> (b, t, h, c + 1 - (c mod 2) * 2)>, affine_map<(b, t, h, c) -> (t, c mod 32)>, affine_map<(b, t, h, c) -> (t, c mod 32)>, affine_map<(b, t, h, c) -> (b, t, h, c)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%g101, %g101, %cos104, %sin106 : tensor<?x?x4x64xf32>, tensor<?x?x4x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>)
      outs(%e109 : tensor<?x?x4x64xf32>) {
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
  %e111 = tensor.empty(%B, %T) : tensor<?x?x4x64xf32>
  %g112 = linalg.generic {indexing_maps = [affine_map<(b, t, h, c) -> (h * 64 + c)>, affine_map<(b, t, h, c) -> (b, t, h, c)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%p9 : tensor<256xf32>)
      outs(%e111 : tensor<?x?x4x64xf32>) {
    ^bb0(%a0: f32, %acc: f32):
      linalg.yield %a0 : f32
    } -> tensor<?x?x4x64xf32>
  %w113 = tensor.expand_shape %p8 [[0, 1], [2]] output_shape [4, 64, 256] : tensor<256x256xf32> into tensor<4x64x256xf32>
  %g114 = linalg.generic {indexing_maps = [affine_map<(b, t, h, c, k) -> (b, t, k)>, affine_map<(b, t, h, c, k) -> (h, c, k)>, affine_map<(b, t, h, c, k) -> (b, t, h, c)>], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]}
      ins(%x, %w113 : tensor<?x?x256xf32>, tensor<4x64x256xf32>)
      outs(%g112 : tensor<?x?x4x64xf32>) {
    ^bb0(%a0: f32, %a1: f32, %acc: f32):
      %s1 = arith.mulf %a0, %a1 : f32
      %s2 = arith.addf %acc, %s1 : f32
      linalg.yield %s2 : f32
    } -> tensor<?x?x4x64xf32>
  %e115 = tensor.empty(%B, %T) : tensor<?x?x4x64xf32>
  %g116 = linalg.generic {indexing_maps = [affine_map<(b, t, h, c) -> (b, t, h, c)>, affine_map<(b, t, h, c) -> (b, t, 768 + h * 64 + c)>, affine_map<(b, t, h, c) -> (b, t, h, c)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%g114, %g83 : tensor<?x?x4x64xf32>, tensor<?x?x1280xf32>)
      outs(%e115 : tensor<?x?x4x64xf32>) {
    ^bb0(%a0: f32, %a1: f32, %acc: f32):
      %s1 = arith.constant 1.0 : f32
      %s2 = arith.addf %a1, %s1 : f32
      %s3 = arith.mulf %a0, %s2 : f32
      linalg.yield %s3 : f32
    } -> tensor<?x?x4x64xf32>
  %e117 = tensor.empty(%B, %T) : tensor<?x?x4x64xf32>
  %g118 = linalg.generic {indexing_maps = [affine_map<(b, t, h, c) -> (h * 64 + c)>, affine_map<(b, t, h, c) -> (b, t, h, c)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%p11 : tensor<256xf32>)
      outs(%e117 : tensor<?x?x4x64xf32>) {
    ^bb0(%a0: f32, %acc: f32):
      linalg.yield %a0 : f32
    } -> tensor<?x?x4x64xf32>
  %w119 = tensor.expand_shape %p10 [[0, 1], [2]] output_shape [4, 64, 256] : tensor<256x256xf32> into tensor<4x64x256xf32>
  %g120 = linalg.generic {indexing_maps = [affine_map<(b, t, h, c, k) -> (b, t, k)>, affine_map<(b, t, h, c, k) -> (h, c, k)>, affine_map<(b, t, h, c, k) -> (b, t, h, c)>], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]}
      ins(%x, %w119 : tensor<?x?x256xf32>, tensor<4x64x256xf32>)
      outs(%g118 : tensor<?x?x4x64xf32>) {
    ^bb0(%a0: f32, %a1: f32, %acc: f32):
      %s1 = arith.mulf %a0, %a1 : f32
      %s2 = arith.addf %acc, %s1 : f32
      linalg.yield %s2 : f32
    } -> tensor<?x?x4x64xf32>
  %e121 = tensor.empty(%B, %T) : tensor<?x?x4x64xf32>
  %g122 = linalg.generic {indexing_maps = [affine_map<(b, t, h, c) -> (b, t, h, c)>, affine_map<(b, t, h, c) -> (b, t, 1024 + h * 64 + c)>, affine_map<(b, t, h, c) -> (b, t, h, c)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%g120, %g83 : tensor<?x?x4x64xf32>, tensor<?x?x1280xf32>)
      outs(%e121 : tensor<?x?x4x64xf32>) {
    ^bb0(%a0: f32, %a1: f32, %acc: f32):
      %s1 = arith.constant 1.0 : f32
      %s2 = arith.addf %a1, %s1 : f32
      %s3 = arith.mulf %a0, %s2 : f32
      linalg.yield %s3 : f32
    } -> tensor<?x?x4x64xf32>
  %read123 = fem.mixer softmax q(%g108 : tensor<?x?x4x64xf32>) k(%g110 : tensor<?x?x4x64xf32>) v(%g89 : tensor<?x?x4x64xf32>) beta_raw(%p12 : tensor<256xf32>) lam(%g116 : tensor<?x?x4x64xf32>) gate(%g122 : tensor<?x?x4x64xf32>) {causal, cap = 40.0 : f64, eps = 1.0e-06 : f64} -> tensor<?x?x4x64xf32>
  %e124 = tensor.empty(%B, %T) : tensor<?x?x256xf32>
  %g125 = linalg.generic {indexing_maps = [affine_map<(b, t, n) -> (n)>, affine_map<(b, t, n) -> (b, t, n)>], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%p3 : tensor<256xf32>)
      outs(%e124 : tensor<?x?x256xf32>) {
    ^bb0(%a0: f32, %acc: f32):
      linalg.yield %a0 : f32
    } -> tensor<?x?x256xf32>
  %w126 = tensor.expand_shape %p2 [[0], [1, 2]] output_shape [256, 4, 64] : tensor<256x256xf32> into tensor<256x4x64xf32>
  %g127 = linalg.generic {indexing_maps = [affine_map<(b, t, n, h, c) -> (b, t, h, c)>, affine_map<(b, t, n, h, c) -> (n, h, c)>, affine_map<(b, t, n, h, c) -> (b, t, n)>], iterator_types = ["parallel", "parallel", "parallel", "reduction", "reduction"]}
      ins(%read123, %w126 : tensor<?x?x4x64xf32>, tensor<256x4x64xf32>)
      outs(%g125 : tensor<?x?x256xf32>) {
    ^bb0(%a0: f32, %a1: f32, %acc: f32):
      %s1 = arith.mulf %a0, %a1 : f32
      %s2 = arith.addf %acc, %s1 : f32
      linalg.yield %s2 : f32
    } -> tensor<?x?x256xf32>
  return %g127 : tensor<?x?x256xf32>
}
