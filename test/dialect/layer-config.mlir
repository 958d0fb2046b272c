// RUN: fem-opt %s -split-input-file -verify-diagnostics

// The fem.layer configuration of an imported layer (docs/layers.md): every
// message of its verifier, one case each. The layer: n_embd 8, 2 heads,
// E = 8, H * dk = 8, softmax, no biases, no TDC.

// A declaration: only the dictionary is checked.
func.func private @declared(tensor<?x?x8xf32>) -> tensor<?x?x8xf32>
    attributes {fem.layer = {n_embd = 8 : i64, n_head = 2 : i64, fem_dim = 8 : i64,
                             qk_dim = 8 : i64, prior_type = "softmax"}}

// -----

// A whole layer: x, the mask and every parameter in PyTorch's shapes.
func.func @layer(%x: tensor<?x?x8xf32> {fem.name = "x"},
                 %m: tensor<?x?xf32> {fem.name = "attention_mask"},
                 %beta: tensor<8xf32> {fem.name = "_beta_param"},
                 %wv: tensor<8x8xf32> {fem.name = "W_v.weight"},
                 %wo: tensor<8x8xf32> {fem.name = "W_o.weight"},
                 %wq: tensor<8x8xf32> {fem.name = "W_q.weight"},
                 %wk: tensor<8x8xf32> {fem.name = "W_k.weight"},
                 %wl: tensor<8x8xf32> {fem.name = "W_lambda.weight"},
                 %wg: tensor<8x8xf32> {fem.name = "W_gate.weight"}) -> tensor<?x?x8xf32>
    attributes {fem.layer = {n_embd = 8 : i64, n_head = 2 : i64, fem_dim = 8 : i64,
                             qk_dim = 8 : i64, prior_type = "softmax", bias = false,
                             use_conv = false, rope_theta = 10000.0 : f64, eps = 1.0e-06 : f64}} {
  return %x : tensor<?x?x8xf32>
}

// -----

// expected-error @+1 {{'fem.layer': unknown key 'n_layers': FreeEnergyMixerConfig has no such field (fields: n_embd, n_head, fem_dim, fem_ratio, qk_dim, p_t_to_fem_ratio, prior_type, softmax_backend, dropout, causal, bias, beta_max_init, value_logexp_cap, eps, use_temperature, use_lse, use_outer_gate, use_rope, rope_theta, use_conv, conv_hidden, conv_norm_first, conv_bidirectional, ssm_rank, mamba_normalize, align_multiple)}}
func.func private @unknown(tensor<?x?x8xf32>) -> tensor<?x?x8xf32>
    attributes {fem.layer = {n_embd = 8 : i64, n_head = 2 : i64, fem_dim = 8 : i64,
                             qk_dim = 8 : i64, prior_type = "softmax", n_layers = 2 : i64}}

// -----

// expected-error @+1 {{'fem.layer': key 'n_head' expects an integer; found a string}}
func.func private @type(tensor<?x?x8xf32>) -> tensor<?x?x8xf32>
    attributes {fem.layer = {n_embd = 8 : i64, n_head = "2", fem_dim = 8 : i64,
                             qk_dim = 8 : i64, prior_type = "softmax"}}

// -----

// expected-error @+1 {{'fem.layer': key 'causal' expects a bool (true or false); found an integer}}
func.func private @bool(tensor<?x?x8xf32>) -> tensor<?x?x8xf32>
    attributes {fem.layer = {n_embd = 8 : i64, n_head = 2 : i64, fem_dim = 8 : i64,
                             qk_dim = 8 : i64, prior_type = "softmax", causal = 1 : i64}}

// -----

// expected-error @+1 {{'fem.layer': key 'rope_theta' holds [1.000000e+04]; every FreeEnergyMixerConfig field is an integer, a float, a bool or a string}}
func.func private @array(tensor<?x?x8xf32>) -> tensor<?x?x8xf32>
    attributes {fem.layer = {n_embd = 8 : i64, n_head = 2 : i64, fem_dim = 8 : i64,
                             qk_dim = 8 : i64, prior_type = "softmax", rope_theta = [1.0e4]}}

// -----

// expected-error @+1 {{'fem.layer': missing required key 'qk_dim' (a layer's fem.layer configuration names n_embd, n_head, prior_type, fem_dim and, except for mamba, qk_dim)}}
func.func private @missing(tensor<?x?x8xf32>) -> tensor<?x?x8xf32>
    attributes {fem.layer = {n_embd = 8 : i64, n_head = 2 : i64, fem_dim = 8 : i64,
                             prior_type = "softmax"}}

// -----

// expected-error @+1 {{'fem.layer': key 'fem_dim' must be the resolved E, a multiple of 4 * n_head = 8; found 20 (the module would use 16)}}
func.func private @unresolved(tensor<?x?x8xf32>) -> tensor<?x?x8xf32>
    attributes {fem.layer = {n_embd = 8 : i64, n_head = 2 : i64, fem_dim = 20 : i64,
                             qk_dim = 8 : i64, prior_type = "softmax"}}

// -----

// expected-error @+1 {{'fem.layer': key 'prior_type' must be one of softmax, linear, gla, rnn_softmax, mamba; found 'rwkv'}}
func.func private @prior(tensor<?x?x8xf32>) -> tensor<?x?x8xf32>
    attributes {fem.layer = {n_embd = 8 : i64, n_head = 2 : i64, fem_dim = 8 : i64,
                             qk_dim = 8 : i64, prior_type = "rwkv"}}

// -----

// expected-error @+1 {{'fem.layer' must be a dictionary of FreeEnergyMixerConfig fields (docs/layers.md); found 3 : i64}}
func.func private @notdict(tensor<?x?x8xf32>) -> tensor<?x?x8xf32>
    attributes {fem.layer = 3 : i64}

// -----

func.func @notfunc() {
  // expected-error @+1 {{'fem.layer' belongs on a function (the layer); found it on 'arith.constant'}}
  %0 = arith.constant {fem.layer = {n_embd = 8 : i64}} 0 : i32
  return
}

// -----

// expected-error @+1 {{'fem.layer': parameter 'W_gate.weight' of shape (8, 8) has no argument (fem.name = "W_gate.weight")}}
func.func @noparam(%x: tensor<?x?x8xf32> {fem.name = "x"},
                   %beta: tensor<8xf32> {fem.name = "_beta_param"},
                   %wv: tensor<8x8xf32> {fem.name = "W_v.weight"},
                   %wo: tensor<8x8xf32> {fem.name = "W_o.weight"},
                   %wq: tensor<8x8xf32> {fem.name = "W_q.weight"},
                   %wk: tensor<8x8xf32> {fem.name = "W_k.weight"},
                   %wl: tensor<8x8xf32> {fem.name = "W_lambda.weight"}) -> tensor<?x?x8xf32>
    attributes {fem.layer = {n_embd = 8 : i64, n_head = 2 : i64, fem_dim = 8 : i64,
                             qk_dim = 8 : i64, prior_type = "softmax", bias = false,
                             use_conv = false}} {
  return %x : tensor<?x?x8xf32>
}

// -----

// expected-error @+1 {{'fem.layer': parameter 'W_q.weight' (argument #4) has type 'tensor<8x2x4xf32>'; the configuration needs a f32 tensor of shape (8, 8)}}
func.func @shape(%x: tensor<?x?x8xf32> {fem.name = "x"},
                 %beta: tensor<8xf32> {fem.name = "_beta_param"},
                 %wv: tensor<8x8xf32> {fem.name = "W_v.weight"},
                 %wo: tensor<8x8xf32> {fem.name = "W_o.weight"},
                 %wq: tensor<8x2x4xf32> {fem.name = "W_q.weight"},
                 %wk: tensor<8x8xf32> {fem.name = "W_k.weight"},
                 %wl: tensor<8x8xf32> {fem.name = "W_lambda.weight"},
                 %wg: tensor<8x8xf32> {fem.name = "W_gate.weight"}) -> tensor<?x?x8xf32>
    attributes {fem.layer = {n_embd = 8 : i64, n_head = 2 : i64, fem_dim = 8 : i64,
                             qk_dim = 8 : i64, prior_type = "softmax", bias = false,
                             use_conv = false}} {
  return %x : tensor<?x?x8xf32>
}

// -----

// expected-error @+1 {{'fem.layer': argument #8 ('W_q.bias') is neither x, attention_mask nor a parameter of this configuration}}
func.func @extra(%x: tensor<?x?x8xf32> {fem.name = "x"},
                 %beta: tensor<8xf32> {fem.name = "_beta_param"},
                 %wv: tensor<8x8xf32> {fem.name = "W_v.weight"},
                 %wo: tensor<8x8xf32> {fem.name = "W_o.weight"},
                 %wq: tensor<8x8xf32> {fem.name = "W_q.weight"},
                 %wk: tensor<8x8xf32> {fem.name = "W_k.weight"},
                 %wl: tensor<8x8xf32> {fem.name = "W_lambda.weight"},
                 %wg: tensor<8x8xf32> {fem.name = "W_gate.weight"},
                 %bq: tensor<8xf32> {fem.name = "W_q.bias"}) -> tensor<?x?x8xf32>
    attributes {fem.layer = {n_embd = 8 : i64, n_head = 2 : i64, fem_dim = 8 : i64,
                             qk_dim = 8 : i64, prior_type = "softmax", bias = false,
                             use_conv = false}} {
  return %x : tensor<?x?x8xf32>
}

// -----

// expected-error @+1 {{'fem.layer': argument 'x' must be a (B, T, n_embd = 8) f32 tensor; found 'tensor<?x?x16xf32>'}}
func.func @xshape(%x: tensor<?x?x16xf32> {fem.name = "x"}) -> tensor<?x?x16xf32>
    attributes {fem.layer = {n_embd = 8 : i64, n_head = 2 : i64, fem_dim = 8 : i64,
                             qk_dim = 8 : i64, prior_type = "softmax"}} {
  return %x : tensor<?x?x16xf32>
}

// -----

// expected-error @+1 {{'fem.layer': argument #0 has no fem.name; a layer's arguments are x, attention_mask and its parameters, each named by fem.name}}
func.func @unnamed(%x: tensor<?x?x8xf32>) -> tensor<?x?x8xf32>
    attributes {fem.layer = {n_embd = 8 : i64, n_head = 2 : i64, fem_dim = 8 : i64,
                             qk_dim = 8 : i64, prior_type = "softmax"}} {
  return %x : tensor<?x?x8xf32>
}

// -----

// fem-outline-mixers' marker form: the layer's name.
func.func private @marker(tensor<?x?x8xf32>) -> tensor<?x?x8xf32>
    attributes {fem.layer = "marker"}
