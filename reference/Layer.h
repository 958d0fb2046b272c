//===- Layer.h - Double-precision reference of a whole FEM layer -*- C++ -*-===//
//
// Part of the femc project.
//
//===----------------------------------------------------------------------===//
///
/// \file
/// The whole Free Energy Mixer layer as the authors' PyTorch module
/// (`FreeEnergyMixer.forward(x, attention_mask)` in fem.py) computes it,
/// shared/design/semantics.md section 7, in double precision: projections in
/// PyTorch's layouts (y = x W^T + b, W of shape (out, in)), the key/value
/// mask, the time-decay conditioning (TDC) with its LayerNorms, RoPE
/// (section 6), lambda and the outer gate, and the output projection. The
/// prior read (sections 1-3) is the kernel reference of Reference.h, so the
/// layer and the kernels share one definition of every prior.
///
/// The configuration is the module's `FreeEnergyMixerConfig`, field names
/// exactly; `resolve` computes the sizes the module's `__init__` derives
/// from it (E = fem_dim, dv, dk). Parameters are looked up by their
/// state_dict names ("W_q.weight", "tdc.fwd.norm.bias", ...);
/// `layerParameters` lists them in the state_dict's order with their shapes.
///
/// Precision: everything is double except the kernel read's inputs (q, k,
/// v, the gla decay logits, the ssm step sizes and projections), which the
/// kernel reference takes as float32, as a compiled kernel does; lambda,
/// the gate and everything after the read stay double. Against the
/// authors' module run in float64 this costs ~1e-7 relative.
///
/// Decisions beyond semantics.md (checked by `resolve` / `runLayer`):
///  - mamba needs the selective-scan form (`W_p`, `A_log`, `D_diag`) and
///    `mamba_normalize` = true; the module's fallback without the
///    mamba_ssm package (`W_delta`, an EMA) is refused, naming why.
///  - rnn_softmax (femc's aft) needs dk to divide dv.
///  - RoPE's inverse frequencies are theta^(-2i/dk) in double (section 6;
///    the module's float32 buffer is within 6e-8 of them); the angles and
///    rotations are double.
///  - `dropout` and `softmax_backend` do not change the result (inference);
///    `beta_max_init`, `fem_ratio` and `p_t_to_fem_ratio` only matter
///    through the sizes and initial values.
///
//===----------------------------------------------------------------------===//

#ifndef FEMC_REFERENCE_LAYER_H
#define FEMC_REFERENCE_LAYER_H

#include "reference/Reference.h"
#include "support/Random.h"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace femc::ref {

/// One configuration value, as JSON or an MLIR attribute gives it.
struct ConfigValue {
  enum class Kind { Null, Bool, Integer, Float, String };
  Kind kind = Kind::Null;
  bool boolean = false;
  int64_t integer = 0;
  double number = 0;
  std::string string;

  static ConfigValue null() { return {}; }
  static ConfigValue ofBool(bool b);
  static ConfigValue ofInteger(int64_t i);
  static ConfigValue ofFloat(double d);
  static ConfigValue ofString(std::string s);
};

/// "null", "a bool", "an integer", "a float", "a string".
const char *configKindName(ConfigValue::Kind kind);

/// The module's `FreeEnergyMixerConfig` (fem.py), field for field, with its
/// defaults. `fem_dim` and `qk_dim` may be absent (the module derives them).
struct LayerConfig {
  int64_t n_embd = 0;
  int64_t n_head = 0;
  std::optional<int64_t> fem_dim;
  double fem_ratio = 0.5;
  std::optional<int64_t> qk_dim;
  double p_t_to_fem_ratio = 4.0;
  std::string prior_type = "softmax";
  std::string softmax_backend = "auto";
  double dropout = 0.0;
  bool causal = true;
  bool bias = true;
  double beta_max_init = 1.8;
  double value_logexp_cap = 40.0;
  double eps = 1e-6;
  bool use_temperature = true;
  bool use_lse = true;
  bool use_outer_gate = true;
  bool use_rope = true;
  double rope_theta = 10000.0;
  bool use_conv = true;
  int64_t conv_hidden = 64;
  bool conv_norm_first = true;
  bool conv_bidirectional = false;
  int64_t ssm_rank = 16;
  bool mamba_normalize = true;
  /// Read by the module with getattr(cfg, "align_multiple", 1).
  int64_t align_multiple = 1;
};

/// How a configuration is given: as the module's constructor takes it
/// (config.json: n_embd and n_head required, fem_dim/qk_dim may be null),
/// or resolved, as a layer's `fem.layer` attribute holds it (fem_dim = E
/// and, except for mamba, qk_dim = H * dk required, and already rounded).
enum class ConfigForm { Module, Resolved };

/// The field names, in the dataclass's order (align_multiple last).
const std::vector<std::string> &layerConfigKeys();

/// Sets field `key` of `config`. Fails (with `error` naming the key, the
/// expected and the found kind) for an unknown key, a value of the wrong
/// kind (an integer is accepted for a float field), or null where the field
/// is not optional.
bool setConfigField(LayerConfig &config, std::string_view key,
                    const ConfigValue &value, std::string &error);

/// Builds a configuration from (key, value) pairs with `setConfigField`,
/// then checks that every key `form` requires is there and `resolve`s it.
/// `error` names the first problem.
std::optional<LayerConfig>
parseLayerConfig(const std::vector<std::pair<std::string, ConfigValue>> &fields,
                 ConfigForm form, std::string &error);

/// The sizes the module derives from its configuration.
struct LayerSizes {
  int64_t D = 0;  ///< n_embd
  int64_t H = 0;  ///< n_head
  int64_t E = 0;  ///< fem_dim as resolved: the value width of all heads
  int64_t dv = 0; ///< E / H
  int64_t dk = 0; ///< per-head query/key width (0 for mamba)
  int64_t N = 0;  ///< mamba's state size (ssm_rank), 0 otherwise
  /// TDC: hidden width of each of fwd (and bwd), and the output width.
  int64_t tdcHidden = 0, tdcWidth = 0;
  Prior prior = Prior::Softmax; ///< the kernel reference's prior
};

/// Checks the values (positive sizes, a known prior_type, ...) and derives
/// the sizes as the module's __init__ does (its _round_channels for fem_dim
/// and qk_dim). For ConfigForm::Resolved, fem_dim and qk_dim must already be
/// what the module would round them to.
std::optional<LayerSizes> resolve(const LayerConfig &config, ConfigForm form,
                                  std::string &error);

/// `config` with fem_dim = E and qk_dim = H * dk (absent for mamba): the
/// form of the `fem.layer` attribute, which resolves to the same sizes.
LayerConfig resolvedConfig(const LayerConfig &config, const LayerSizes &sizes);

/// Every field of `config` as a one-line JSON object, keys in
/// `layerConfigKeys` order (the manifest's "layer" entry).
std::string layerConfigJson(const LayerConfig &config);

/// One parameter: its state_dict name and shape.
struct ParameterSpec {
  std::string name;
  std::vector<int64_t> shape;
};

/// The parameters of the module built from `config`, in its state_dict's
/// order and PyTorch's shapes (nn.Linear weight (out, in)).
std::vector<ParameterSpec> layerParameters(const LayerConfig &config,
                                           const LayerSizes &sizes);

/// A parameter's values (float32, as a checkpoint holds them).
struct Tensor {
  std::vector<int64_t> shape;
  std::vector<float> data;
};

using ParameterMap = std::map<std::string, Tensor>;

/// Fills every parameter as PyTorch's default initialisation would, so that
/// a layer's output is O(1) for x ~ N(0, 1): nn.Linear weights and biases
/// uniform in +-1/sqrt(in), LayerNorm weights 1 + 0.1 N(0, 1) and biases
/// 0.1 N(0, 1) (not the identity, so that they are exercised), out_proj
/// uniform in +-1/sqrt(hidden) (the module starts it at 0, which would hide
/// the TDC), _beta_param uniform in [-1, 2), A_log and D_diag N(0, 1).
ParameterMap generateLayerParameters(const LayerConfig &config,
                                     const LayerSizes &sizes, Rng &rng);

/// Checks that `parameters` holds exactly the module's parameters with
/// their shapes: a missing, extra or mis-shaped tensor is named with both
/// shapes.
bool validateParameters(const LayerConfig &config, const LayerSizes &sizes,
                        const ParameterMap &parameters, std::string &error);

/// y = FreeEnergyMixer(x, attention_mask), (B, T, n_embd) row-major, in
/// double. `x` is (B, T, n_embd); `mask` is null or (B, T) with the
/// module's meaning (1 keeps a position, 0 pads it; K and V are multiplied
/// by it). Returns std::nullopt with `error` set when the configuration,
/// the parameters or the extents are not usable.
std::optional<std::vector<double>>
runLayer(const LayerConfig &config, const ParameterMap &parameters, int64_t B,
         int64_t T, const float *x, const float *mask, std::string &error);

/// The scale floor of a layer check (Comparison::scaleFloor;
/// docs/semantics.md, "Tolerance"): 2^-100 * sqrt(dv) / min beta * max_o
/// sum_e |W_o[o, e]|, the output F alone reaches when it is 2^-100 / beta.
/// A float32 read cannot resolve F below that: the log restore's tiny term
/// (2^-126 / beta where every value is 0, e.g. an all-padded layer) and
/// terms below e^-80 of Z e^M are under float32's resolution of log Z,
/// while the double reference keeps them. Outputs that small (~1e-30 for
/// ordinary weights) are judged on this scale instead of their own. 0 when
/// the sizes or W_o do not resolve (runLayer then says why).
double layerScaleFloor(const LayerConfig &config,
                       const ParameterMap &parameters);

} // namespace femc::ref

#endif // FEMC_REFERENCE_LAYER_H
