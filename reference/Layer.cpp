//===- Layer.cpp - Double-precision reference of a whole FEM layer ---------===//
//
// Part of the femc project.
//
//===----------------------------------------------------------------------===//
//
// Section numbers refer to shared/design/semantics.md; "the module" is the
// authors' FreeEnergyMixer (fem.py).
//
//===----------------------------------------------------------------------===//

#include "reference/Layer.h"

#include "support/Json.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>
#include <numeric>
#include <set>

namespace femc::ref {

namespace {

/// LayerNorm's epsilon (torch's default; the module does not change it).
constexpr double kLayerNormEps = 1e-5;
/// The TDC shortcut's softplus offset and normalisation floor.
constexpr double kShortcutEps = 1e-8;
/// The TDC accumulation's floor: out = D * cumsum(f / (D + 1e-12)).
constexpr double kDecayFloor = 1e-12;
/// The gate's normalisation floor (section 4).
constexpr double kGateNormFloor = 1e-5;
/// layerScaleFloor's unit: 2^-100, 2^26 times section 3's tiny (2^-126).
constexpr double kScaleFloorUnit = 0x1p-100;

double softplus(double x) { return x > 20.0 ? x : std::log1p(std::exp(x)); }
double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

std::string shapeText(const std::vector<int64_t> &shape) {
  std::string out = "(";
  for (size_t i = 0; i < shape.size(); ++i)
    out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + (shape.size() == 1 ? ",)" : ")");
}

std::string formatDouble(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.17g", value);
  return buffer;
}

std::string lower(std::string_view text) {
  std::string out(text);
  for (char &c : out)
    c = char(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

/// The module's five prior_type names and the kernel reference's priors.
const std::vector<std::pair<std::string, Prior>> &priorTypes() {
  static const std::vector<std::pair<std::string, Prior>> table = {
      {"softmax", Prior::Softmax},
      {"linear", Prior::Linear},
      {"gla", Prior::Gla},
      {"rnn_softmax", Prior::Aft},
      {"mamba", Prior::Ssm}};
  return table;
}

/// The module's _round_channels(x, multiple, n_head, per_head_unit,
/// "nearest"): the valid value (a multiple of lcm(multiple, n_head *
/// per_head_unit)) closest to x, ties to the larger one, at least one unit.
int64_t roundChannels(int64_t x, int64_t multiple, int64_t nHead,
                      int64_t perHeadUnit) {
  nHead = std::max<int64_t>(nHead, 1);
  int64_t m = multiple <= 0 ? 1 : multiple;
  int64_t baseReq = nHead * std::max<int64_t>(perHeadUnit, 1);
  int64_t base = std::lcm(m, baseReq);
  if (base <= 0)
    base = baseReq;
  // Python's round() rounds half to even, as nearbyint does by default.
  int64_t q = int64_t(std::nearbyint(double(x) / double(base)));
  q = std::max<int64_t>(q, 1);
  int64_t cand = q * base;
  int64_t low = q > 1 ? (q - 1) * base : base;
  int64_t high = (q + 1) * base;
  auto dist = [&](int64_t v) { return v > x ? v - x : x - v; };
  if (dist(cand) < dist(low) && dist(cand) <= dist(high))
    return cand;
  return dist(high) <= dist(low) ? high : low;
}

bool usesBranch(const LayerConfig &c) { return c.use_temperature || c.use_lse; }

/// Rows x (T x in) times W^T (W: out x in, float) plus bias: T x out.
std::vector<double> linear(const std::vector<double> &x, int64_t T,
                           const Tensor &weight, const Tensor *bias) {
  int64_t out = weight.shape[0], in = weight.shape[1];
  std::vector<double> y(T * out);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t o = 0; o < out; ++o) {
      double sum = bias ? double(bias->data[o]) : 0.0;
      const float *w = weight.data.data() + o * in;
      const double *row = x.data() + t * in;
      for (int64_t i = 0; i < in; ++i)
        sum += row[i] * double(w[i]);
      y[t * out + o] = sum;
    }
  return y;
}

/// LayerNorm over rows of `width` (biased variance, eps 1e-5).
std::vector<double> layerNorm(const std::vector<double> &x, int64_t T,
                              int64_t width, const Tensor &weight,
                              const Tensor *bias) {
  std::vector<double> y(T * width);
  for (int64_t t = 0; t < T; ++t) {
    const double *row = x.data() + t * width;
    double mean = 0.0;
    for (int64_t i = 0; i < width; ++i)
      mean += row[i];
    mean /= double(width);
    double variance = 0.0;
    for (int64_t i = 0; i < width; ++i)
      variance += (row[i] - mean) * (row[i] - mean);
    variance /= double(width);
    double scale = 1.0 / std::sqrt(variance + kLayerNormEps);
    for (int64_t i = 0; i < width; ++i)
      y[t * width + i] = (row[i] - mean) * scale * double(weight.data[i]) +
                         (bias ? double(bias->data[i]) : 0.0);
  }
  return y;
}

/// Looks parameters up by state_dict name (validateParameters has checked
/// that every one the configuration needs is there).
class Params {
public:
  explicit Params(const ParameterMap &map) : map(map) {}
  const Tensor &operator[](const std::string &name) const {
    return map.at(name);
  }
  const Tensor *optional(const std::string &name) const {
    auto it = map.find(name);
    return it == map.end() ? nullptr : &it->second;
  }
  std::vector<double> linear(const std::string &module,
                             const std::vector<double> &x, int64_t T) const {
    return femc::ref::linear(x, T, (*this)[module + ".weight"],
                             optional(module + ".bias"));
  }

private:
  const ParameterMap &map;
};

/// One TimeDecayConditionLayer (`prefix` = "tdc.fwd." or "tdc.bwd.") on the
/// rows x (T x D); adds its output (T x width) to `out`.
void timeDecayCondition(const LayerConfig &config, const LayerSizes &sizes,
                        const Params &params, const std::string &prefix,
                        const std::vector<double> &x, int64_t T,
                        std::vector<double> &out) {
  int64_t h = sizes.tdcHidden, width = sizes.tdcWidth;
  std::vector<double> xhat =
      config.conv_norm_first
          ? layerNorm(x, T, sizes.D, params[prefix + "norm.weight"],
                      params.optional(prefix + "norm.bias"))
          : x;
  // s = normalize(softplus(shortcut x^) + 1e-8) * sqrt(h).
  std::vector<double> s = params.linear(prefix + "shortcut", xhat, T);
  for (int64_t t = 0; t < T; ++t) {
    double squared = 0.0;
    for (int64_t j = 0; j < h; ++j) {
      double &v = s[t * h + j];
      v = softplus(v) + kShortcutEps;
      squared += v * v;
    }
    double scale = std::sqrt(double(h)) /
                   std::max(std::sqrt(squared), kShortcutEps);
    for (int64_t j = 0; j < h; ++j)
      s[t * h + j] *= scale;
  }
  std::vector<double> f = params.linear(prefix + "x_f", xhat, T);
  std::vector<double> a = params.linear(prefix + "in_f", xhat, T);
  // r_t = exp(c_t) sum_{s<=t} f_s / (exp(c_s) + 1e-12), c the inclusive
  // cumulative sum of a = -softplus(in_f x^). (quirk) The 1e-12 floor
  // matters once c falls below about -25. Stable form, the same value:
  //   r_t = exp(a_t) r_{t-1} + f_t exp(c_t) / (exp(c_t) + 1e-12)
  //       = exp(a_t) r_{t-1} + f_t sigmoid(c_t - ln 1e-12),
  // which never forms exp(-c).
  std::vector<double> r(T * h);
  const double logFloor = std::log(kDecayFloor);
  for (int64_t j = 0; j < h; ++j) {
    double c = 0.0, carried = 0.0;
    for (int64_t t = 0; t < T; ++t) {
      double step = -softplus(a[t * h + j]);
      c += step;
      carried = std::exp(step) * carried + f[t * h + j] * sigmoid(c - logFloor);
      r[t * h + j] = carried;
    }
  }
  std::vector<double> normed = layerNorm(r, T, h, params[prefix + "ln.weight"],
                                         params.optional(prefix + "ln.bias"));
  // out += (s * LayerNorm(r)) P, P = out_proj (h x width), no transpose.
  const Tensor &P = params[prefix + "out_proj"];
  for (int64_t t = 0; t < T; ++t)
    for (int64_t j = 0; j < h; ++j) {
      double coefficient = s[t * h + j] * normed[t * h + j];
      const float *row = P.data.data() + j * width;
      for (int64_t w = 0; w < width; ++w)
        out[t * width + w] += coefficient * double(row[w]);
    }
}

/// Section 6 on the rows of `x` (T x H*dk), in place.
void applyRope(const LayerConfig &config, const LayerSizes &sizes,
               std::vector<double> &x, int64_t T) {
  int64_t dk = sizes.dk, half = dk / 2;
  // inv_freq = theta^(-2i/dk) in double (section 6), one libm pow each, as
  // femc.layer_config.rope_inv_freq takes them (the module's float32 buffer
  // is within 6e-8 of these).
  std::vector<double> invFreq(half);
  for (int64_t i = 0; i < half; ++i)
    invFreq[i] = std::pow(config.rope_theta, -2.0 * double(i) / double(dk));
  std::vector<double> row(dk);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t hd = 0; hd < sizes.H; ++hd) {
      double *q = x.data() + t * sizes.H * dk + hd * dk;
      std::copy(q, q + dk, row.begin());
      for (int64_t j = 0; j < dk; ++j) {
        // (quirk) Frequencies repeated ("half" layout), rotation partners
        // interleaved: rot(x)[2i] = -x[2i+1], rot(x)[2i+1] = x[2i].
        double angle = double(t) * invFreq[j % half];
        double rotated = j % 2 == 0 ? -row[j + 1] : row[j - 1];
        q[j] = row[j] * std::cos(angle) + rotated * std::sin(angle);
      }
    }
}

} // namespace

ConfigValue ConfigValue::ofBool(bool b) {
  ConfigValue v;
  v.kind = Kind::Bool;
  v.boolean = b;
  return v;
}
ConfigValue ConfigValue::ofInteger(int64_t i) {
  ConfigValue v;
  v.kind = Kind::Integer;
  v.integer = i;
  return v;
}
ConfigValue ConfigValue::ofFloat(double d) {
  ConfigValue v;
  v.kind = Kind::Float;
  v.number = d;
  return v;
}
ConfigValue ConfigValue::ofString(std::string s) {
  ConfigValue v;
  v.kind = Kind::String;
  v.string = std::move(s);
  return v;
}

const char *configKindName(ConfigValue::Kind kind) {
  switch (kind) {
  case ConfigValue::Kind::Null:
    return "null";
  case ConfigValue::Kind::Bool:
    return "a bool";
  case ConfigValue::Kind::Integer:
    return "an integer";
  case ConfigValue::Kind::Float:
    return "a float";
  case ConfigValue::Kind::String:
    return "a string";
  }
  return "unknown";
}

namespace {

/// One configuration field: its name and where it lives in LayerConfig.
struct Field {
  const char *name;
  int64_t LayerConfig::*integer = nullptr;
  std::optional<int64_t> LayerConfig::*optionalInteger = nullptr;
  double LayerConfig::*number = nullptr;
  bool LayerConfig::*boolean = nullptr;
  std::string LayerConfig::*string = nullptr;
};

const std::vector<Field> &fields() {
  static const std::vector<Field> table = [] {
    std::vector<Field> t;
    auto integer = [&](const char *n, int64_t LayerConfig::*m) {
      Field f{n};
      f.integer = m;
      t.push_back(f);
    };
    auto optionalInteger = [&](const char *n,
                               std::optional<int64_t> LayerConfig::*m) {
      Field f{n};
      f.optionalInteger = m;
      t.push_back(f);
    };
    auto number = [&](const char *n, double LayerConfig::*m) {
      Field f{n};
      f.number = m;
      t.push_back(f);
    };
    auto boolean = [&](const char *n, bool LayerConfig::*m) {
      Field f{n};
      f.boolean = m;
      t.push_back(f);
    };
    auto string = [&](const char *n, std::string LayerConfig::*m) {
      Field f{n};
      f.string = m;
      t.push_back(f);
    };
    integer("n_embd", &LayerConfig::n_embd);
    integer("n_head", &LayerConfig::n_head);
    optionalInteger("fem_dim", &LayerConfig::fem_dim);
    number("fem_ratio", &LayerConfig::fem_ratio);
    optionalInteger("qk_dim", &LayerConfig::qk_dim);
    number("p_t_to_fem_ratio", &LayerConfig::p_t_to_fem_ratio);
    string("prior_type", &LayerConfig::prior_type);
    string("softmax_backend", &LayerConfig::softmax_backend);
    number("dropout", &LayerConfig::dropout);
    boolean("causal", &LayerConfig::causal);
    boolean("bias", &LayerConfig::bias);
    number("beta_max_init", &LayerConfig::beta_max_init);
    number("value_logexp_cap", &LayerConfig::value_logexp_cap);
    number("eps", &LayerConfig::eps);
    boolean("use_temperature", &LayerConfig::use_temperature);
    boolean("use_lse", &LayerConfig::use_lse);
    boolean("use_outer_gate", &LayerConfig::use_outer_gate);
    boolean("use_rope", &LayerConfig::use_rope);
    number("rope_theta", &LayerConfig::rope_theta);
    boolean("use_conv", &LayerConfig::use_conv);
    integer("conv_hidden", &LayerConfig::conv_hidden);
    boolean("conv_norm_first", &LayerConfig::conv_norm_first);
    boolean("conv_bidirectional", &LayerConfig::conv_bidirectional);
    integer("ssm_rank", &LayerConfig::ssm_rank);
    boolean("mamba_normalize", &LayerConfig::mamba_normalize);
    integer("align_multiple", &LayerConfig::align_multiple);
    return t;
  }();
  return table;
}

} // namespace

const std::vector<std::string> &layerConfigKeys() {
  static const std::vector<std::string> keys = [] {
    std::vector<std::string> out;
    for (const Field &f : fields())
      out.push_back(f.name);
    return out;
  }();
  return keys;
}

bool setConfigField(LayerConfig &config, std::string_view key,
                    const ConfigValue &value, std::string &error) {
  using Kind = ConfigValue::Kind;
  const Field *field = nullptr;
  for (const Field &f : fields())
    if (key == f.name)
      field = &f;
  if (!field) {
    std::string known;
    for (const std::string &k : layerConfigKeys())
      known += (known.empty() ? "" : ", ") + k;
    error = "unknown key '" + std::string(key) +
            "': FreeEnergyMixerConfig has no such field (fields: " + known +
            ")";
    return false;
  }
  auto wrong = [&](const char *expected) {
    error = "key '" + std::string(key) + "' expects " + expected +
            "; found " + configKindName(value.kind);
    return false;
  };
  if (field->integer || field->optionalInteger) {
    if (value.kind == Kind::Null && field->optionalInteger) {
      config.*field->optionalInteger = std::nullopt;
      return true;
    }
    if (value.kind != Kind::Integer)
      return wrong(field->optionalInteger ? "an integer or null"
                                          : "an integer");
    if (field->integer)
      config.*field->integer = value.integer;
    else
      config.*field->optionalInteger = value.integer;
    return true;
  }
  if (field->number) {
    if (value.kind == Kind::Float)
      config.*field->number = value.number;
    else if (value.kind == Kind::Integer)
      config.*field->number = double(value.integer);
    else
      return wrong("a float");
    return true;
  }
  if (field->boolean) {
    if (value.kind != Kind::Bool)
      return wrong("a bool (true or false)");
    config.*field->boolean = value.boolean;
    return true;
  }
  if (value.kind != Kind::String)
    return wrong("a string");
  config.*field->string = value.string;
  return true;
}

std::optional<LayerConfig>
parseLayerConfig(const std::vector<std::pair<std::string, ConfigValue>> &list,
                 ConfigForm form, std::string &error) {
  LayerConfig config;
  std::set<std::string> seen;
  for (const auto &[key, value] : list) {
    if (!seen.insert(key).second) {
      error = "key '" + key + "' is given twice";
      return std::nullopt;
    }
    if (!setConfigField(config, key, value, error))
      return std::nullopt;
  }
  std::vector<std::string> required = {"n_embd", "n_head"};
  if (form == ConfigForm::Resolved) {
    required = {"n_embd", "n_head", "prior_type", "fem_dim"};
    if (lower(config.prior_type) != "mamba")
      required.push_back("qk_dim");
  }
  for (const std::string &key : required)
    if (!seen.count(key)) {
      error = "missing required key '" + key + "'" +
              (form == ConfigForm::Resolved
                   ? std::string(" (a layer's fem.layer configuration names "
                                 "n_embd, n_head, prior_type, fem_dim and, "
                                 "except for mamba, qk_dim)")
                   : std::string());
      return std::nullopt;
    }
  if (form == ConfigForm::Resolved && !config.fem_dim) {
    error = "key 'fem_dim' must be an integer here (the resolved E), not null";
    return std::nullopt;
  }
  if (form == ConfigForm::Resolved && lower(config.prior_type) != "mamba" &&
      !config.qk_dim) {
    error = "key 'qk_dim' must be an integer here (the resolved H * dk), not "
            "null";
    return std::nullopt;
  }
  if (!resolve(config, form, error))
    return std::nullopt;
  return config;
}

std::optional<LayerSizes> resolve(const LayerConfig &config, ConfigForm form,
                                  std::string &error) {
  auto fail = [&](const std::string &message) -> std::optional<LayerSizes> {
    error = message;
    return std::nullopt;
  };
  // Sizes past 2^24 would overflow the products below long before a layer
  // that large could run; refuse them up front.
  const int64_t kMaxSize = int64_t(1) << 24;
  auto inRange = [&](const char *key, int64_t value, int64_t min) {
    if (value >= min && value <= kMaxSize)
      return true;
    error = std::string("key '") + key + "' must be from " +
            std::to_string(min) + " to " + std::to_string(kMaxSize) +
            "; found " + std::to_string(value);
    return false;
  };
  if (!inRange("n_embd", config.n_embd, 1) ||
      !inRange("n_head", config.n_head, 1) ||
      !inRange("conv_hidden", config.conv_hidden,
               config.conv_bidirectional ? 2 : 1) ||
      !inRange("ssm_rank", config.ssm_rank, 1) ||
      !inRange("align_multiple", config.align_multiple, -kMaxSize))
    return std::nullopt;
  if (config.fem_dim && !inRange("fem_dim", *config.fem_dim, 1))
    return std::nullopt;
  if (config.qk_dim && !inRange("qk_dim", *config.qk_dim, 1))
    return std::nullopt;
  LayerSizes sizes;
  std::string prior = lower(config.prior_type);
  bool known = false;
  for (const auto &[name, kind] : priorTypes())
    if (prior == name) {
      sizes.prior = kind;
      known = true;
    }
  if (!known)
    return fail("key 'prior_type' must be one of softmax, linear, gla, "
                "rnn_softmax, mamba; found '" +
                config.prior_type + "'");
  std::string backend = lower(config.softmax_backend);
  if (backend != "auto" && backend != "flash" && backend != "naive")
    return fail("key 'softmax_backend' must be one of auto, flash, naive; "
                "found '" +
                config.softmax_backend + "'");
  auto positiveFinite = [&](const char *key, double value) {
    if (value > 0 && std::isfinite(value))
      return true;
    error = std::string("key '") + key +
            "' must be a positive finite number; found " + formatDouble(value);
    return false;
  };
  if (!positiveFinite("eps", config.eps) ||
      !positiveFinite("value_logexp_cap", config.value_logexp_cap) ||
      !positiveFinite("rope_theta", config.rope_theta))
    return std::nullopt;
  if (!(config.dropout >= 0 && config.dropout <= 1))
    return fail("key 'dropout' must be in [0, 1]; found " +
                formatDouble(config.dropout));
  if (!config.fem_dim && !(std::isfinite(config.fem_ratio) &&
                           config.fem_ratio > 0 && config.fem_ratio < 1e6))
    return fail("key 'fem_ratio' must be a positive finite number when "
                "fem_dim is null; found " +
                formatDouble(config.fem_ratio));
  if (!config.qk_dim && prior != "mamba" &&
      !(std::isfinite(config.p_t_to_fem_ratio) &&
        config.p_t_to_fem_ratio > 0 && config.p_t_to_fem_ratio < 1e6))
    return fail("key 'p_t_to_fem_ratio' must be a positive finite number "
                "when qk_dim is null; found " +
                formatDouble(config.p_t_to_fem_ratio));
  if (prior == "mamba" && !config.mamba_normalize)
    return fail("key 'mamba_normalize' = false is not supported: femc's ssm "
                "read is the normalised scan of semantics.md section 2");

  int64_t D = config.n_embd, H = config.n_head;
  sizes.D = D;
  sizes.H = H;
  int64_t multiple = config.align_multiple;
  // fem_dim: E / H a multiple of 4.
  if (config.fem_dim) {
    sizes.E = roundChannels(*config.fem_dim, multiple, H, 4);
    if (form == ConfigForm::Resolved && sizes.E != *config.fem_dim)
      return fail("key 'fem_dim' must be the resolved E, a multiple of 4 * "
                  "n_head = " +
                  std::to_string(4 * H) + "; found " +
                  std::to_string(*config.fem_dim) +
                  " (the module would use " + std::to_string(sizes.E) + ")");
  } else {
    int64_t target = int64_t(std::nearbyint(config.fem_ratio * double(D)));
    sizes.E = roundChannels(target, multiple, H, 4);
  }
  if (sizes.E > kMaxSize)
    return fail("fem_dim resolves to " + std::to_string(sizes.E) +
                ", more than " + std::to_string(kMaxSize));
  sizes.dv = sizes.E / H;
  if (prior != "mamba") {
    int64_t total;
    if (config.qk_dim) {
      total = roundChannels(*config.qk_dim, multiple, H, 2);
      if (form == ConfigForm::Resolved && total != *config.qk_dim)
        return fail("key 'qk_dim' must be the resolved H * dk, a multiple of "
                    "2 * n_head = " +
                    std::to_string(2 * H) + "; found " +
                    std::to_string(*config.qk_dim) +
                    " (the module would use " + std::to_string(total) + ")");
    } else {
      int64_t target = int64_t(
          std::nearbyint(0.5 * config.p_t_to_fem_ratio * double(sizes.E)));
      total = roundChannels(std::max(target, 2 * H), multiple, H, 2);
    }
    if (total > kMaxSize)
      return fail("qk_dim resolves to " + std::to_string(total) +
                  ", more than " + std::to_string(kMaxSize));
    sizes.dk = total / H;
  } else {
    sizes.N = config.ssm_rank;
  }
  if (sizes.prior == Prior::Aft && 2 * sizes.dv % sizes.dk != 0)
    return fail("prior_type 'rnn_softmax' needs the per-head qk width dk = " +
                std::to_string(sizes.dk) + " to divide the read width 2 * dv = " +
                std::to_string(2 * sizes.dv) +
                " (the module tiles q and k over [V | X])");
  sizes.tdcHidden =
      config.conv_bidirectional ? config.conv_hidden / 2 : config.conv_hidden;
  sizes.tdcWidth = sizes.E + 2 * H * sizes.dk +
                   (usesBranch(config) ? sizes.E : 0) +
                   (config.use_outer_gate ? sizes.E : 0) +
                   (sizes.prior == Prior::Gla ? H : 0);
  return sizes;
}

LayerConfig resolvedConfig(const LayerConfig &config, const LayerSizes &sizes) {
  LayerConfig out = config;
  out.prior_type = lower(config.prior_type);
  out.fem_dim = sizes.E;
  if (sizes.prior == Prior::Ssm)
    out.qk_dim = std::nullopt;
  else
    out.qk_dim = sizes.H * sizes.dk;
  return out;
}

std::string layerConfigJson(const LayerConfig &config) {
  std::string out = "{";
  auto quote = [](const std::string &s) { return tune::jsonQuote(s); };
  for (const Field &f : fields()) {
    out += (out.size() > 1 ? ", " : "") + quote(f.name) + ": ";
    if (f.integer)
      out += std::to_string(config.*f.integer);
    else if (f.optionalInteger)
      out += (config.*f.optionalInteger)
                 ? std::to_string(*(config.*f.optionalInteger))
                 : "null";
    else if (f.number)
      out += formatDouble(config.*f.number);
    else if (f.boolean)
      out += config.*f.boolean ? "true" : "false";
    else
      out += quote(config.*f.string);
  }
  return out + "}";
}

std::vector<ParameterSpec> layerParameters(const LayerConfig &config,
                                           const LayerSizes &s) {
  std::vector<ParameterSpec> out;
  auto add = [&](std::string name, std::vector<int64_t> shape) {
    out.push_back({std::move(name), std::move(shape)});
  };
  auto linear = [&](const std::string &name, int64_t outFeatures,
                    int64_t inFeatures) {
    add(name + ".weight", {outFeatures, inFeatures});
    if (config.bias)
      add(name + ".bias", {outFeatures});
  };
  auto layerNorm = [&](const std::string &name, int64_t width) {
    add(name + ".weight", {width});
    if (config.bias)
      add(name + ".bias", {width});
  };
  // state_dict order: the module's own parameters first (in assignment
  // order), then each submodule's, in assignment order.
  if (s.prior == Prior::Ssm) {
    add("A_log", {s.E, s.N});
    add("D_diag", {s.E});
  }
  add("_beta_param", {s.E});
  linear("W_v", s.E, s.D);
  linear("W_o", s.D, s.E);
  if (s.prior != Prior::Ssm) {
    linear("W_q", s.H * s.dk, s.D);
    linear("W_k", s.H * s.dk, s.D);
  }
  if (s.prior == Prior::Gla)
    linear("W_decay", s.H, s.D);
  if (s.prior == Prior::Ssm)
    linear("W_p", s.E + 2 * s.N, s.D);
  if (usesBranch(config))
    linear("W_lambda", s.E, s.D);
  if (config.use_outer_gate)
    linear("W_gate", s.E, s.D);
  if (config.use_conv) {
    std::vector<std::string> parts = {"tdc.fwd."};
    if (config.conv_bidirectional)
      parts.push_back("tdc.bwd.");
    for (const std::string &p : parts) {
      add(p + "out_proj", {s.tdcHidden, s.tdcWidth});
      if (config.conv_norm_first)
        layerNorm(p + "norm", s.D);
      linear(p + "in_f", s.tdcHidden, s.D);
      linear(p + "x_f", s.tdcHidden, s.D);
      linear(p + "shortcut", s.tdcHidden, s.D);
      layerNorm(p + "ln", s.tdcHidden);
    }
  }
  return out;
}

ParameterMap generateLayerParameters(const LayerConfig &config,
                                     const LayerSizes &sizes, Rng &rng) {
  std::vector<ParameterSpec> specs = layerParameters(config, sizes);
  std::map<std::string, std::vector<int64_t>> shapes;
  for (const ParameterSpec &spec : specs)
    shapes[spec.name] = spec.shape;
  auto endsWith = [](const std::string &s, const std::string &suffix) {
    return s.size() >= suffix.size() &&
           s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  ParameterMap out;
  for (const ParameterSpec &spec : specs) {
    Tensor t;
    t.shape = spec.shape;
    int64_t count = 1;
    for (int64_t d : spec.shape)
      count *= d;
    t.data.resize(count);
    const std::string &n = spec.name;
    bool norm = n.find(".norm.") != std::string::npos ||
                n.find(".ln.") != std::string::npos;
    if (n == "_beta_param") {
      rng.fillUniform(t.data, -1.0, 2.0);
    } else if (n == "A_log" || n == "D_diag") {
      rng.fillNormal(t.data);
    } else if (endsWith(n, "out_proj")) {
      double bound = 1.0 / std::sqrt(double(spec.shape[0]));
      rng.fillUniform(t.data, -bound, bound);
    } else if (norm && endsWith(n, ".weight")) {
      rng.fillNormal(t.data, 1.0, 0.1);
    } else if (norm) {
      rng.fillNormal(t.data, 0.0, 0.1);
    } else {
      // nn.Linear: weight and bias uniform in +-1/sqrt(in_features).
      std::string module = n.substr(0, n.rfind('.'));
      double in = double(shapes[module + ".weight"][1]);
      double bound = 1.0 / std::sqrt(in);
      rng.fillUniform(t.data, -bound, bound);
    }
    out[n] = std::move(t);
  }
  return out;
}

bool validateParameters(const LayerConfig &config, const LayerSizes &sizes,
                        const ParameterMap &parameters, std::string &error) {
  std::vector<ParameterSpec> specs = layerParameters(config, sizes);
  std::set<std::string> expected;
  for (const ParameterSpec &spec : specs) {
    expected.insert(spec.name);
    auto it = parameters.find(spec.name);
    if (it == parameters.end()) {
      error = "parameter '" + spec.name + "' of shape " +
              shapeText(spec.shape) + " is missing";
      return false;
    }
    if (it->second.shape != spec.shape) {
      error = "parameter '" + spec.name + "' has shape " +
              shapeText(it->second.shape) + "; the configuration needs " +
              shapeText(spec.shape);
      return false;
    }
    int64_t count = 1;
    for (int64_t d : spec.shape)
      count *= d;
    if (int64_t(it->second.data.size()) != count) {
      error = "parameter '" + spec.name + "' holds " +
              std::to_string(it->second.data.size()) +
              " values; its shape needs " + std::to_string(count);
      return false;
    }
  }
  for (const auto &[name, tensor] : parameters) {
    if (expected.count(name))
      continue;
    if (sizes.prior == Prior::Ssm && name.rfind("W_delta.", 0) == 0) {
      error = "parameter '" + name +
              "' belongs to the module's mamba fallback without the "
              "mamba_ssm package (an EMA over W_delta), which femc does not "
              "implement; femc reads the selective-scan form (W_p, A_log, "
              "D_diag)";
      return false;
    }
    error = "unexpected parameter '" + name + "' of shape " +
            shapeText(tensor.shape) + ": this configuration has no such "
            "parameter";
    return false;
  }
  return true;
}

std::optional<std::vector<double>>
runLayer(const LayerConfig &config, const ParameterMap &parameters, int64_t B,
         int64_t T, const float *x, const float *mask, std::string &error) {
  std::optional<LayerSizes> resolved = resolve(config, ConfigForm::Module,
                                               error);
  if (!resolved)
    return std::nullopt;
  const LayerSizes &s = *resolved;
  if (!validateParameters(config, s, parameters, error))
    return std::nullopt;
  if (B < 0 || T < 0) {
    error = "x: extents must be >= 0; found B = " + std::to_string(B) +
            ", T = " + std::to_string(T);
    return std::nullopt;
  }
  const int64_t D = s.D, H = s.H, E = s.E, dv = s.dv, dk = s.dk, N = s.N;
  std::vector<double> y(B * T * D, 0.0);
  if (B == 0 || T == 0)
    return y;
  Params params(parameters);
  bool branch = usesBranch(config);
  bool ssm = s.prior == Prior::Ssm;

  // (quirk-free) beta = 1 without use_temperature: the kernel reference
  // always has beta = softplus(beta_raw) + eps, so it runs with beta_raw = 1
  // (beta_k ~ 1.31) on V / beta_k, and mu and F are scaled back by beta_k:
  // both are linear in that scale (F = log R(e^V) / 1). For mamba the kernel
  // squashes v itself, so it gets logit(sigmoid(V) / beta_k) (beta_k > 1
  // keeps that in (0, 1)). Without the branch there is no clip: cap = inf.
  const float unitBetaRaw = 1.0f;
  const double unitBeta = softplus(double(unitBetaRaw)) + config.eps;
  bool unitScale = branch && !config.use_temperature;

  Problem problem;
  problem.prior = s.prior;
  problem.causal = config.causal;
  problem.layout = Layout::BTHD;
  problem.B = B;
  problem.T = T;
  problem.S = T;
  problem.H = H;
  problem.Hkv = H;
  problem.dk = ssm ? 1 : dk;
  problem.dv = dv;
  problem.N = N;
  problem.cap = config.use_temperature
                    ? config.value_logexp_cap
                    : std::numeric_limits<double>::infinity();
  problem.eps = config.eps;

  std::vector<float> q, k, v(B * T * E), decay, delta, Bs, Cs, A, Dskip;
  std::vector<float> betaRaw(E), zeros(B * T * E, 0.0f);
  if (!ssm) {
    q.resize(B * T * H * dk);
    k.resize(B * T * H * dk);
  }
  if (s.prior == Prior::Gla)
    decay.resize(B * T * H);
  if (ssm) {
    delta.resize(B * T * E);
    Bs.resize(B * T * N);
    Cs.resize(B * T * N);
    A.resize(E * N);
    Dskip.resize(E);
    const Tensor &aLog = params["A_log"], &dDiag = params["D_diag"];
    for (int64_t i = 0; i < E * N; ++i)
      A[i] = float(-softplus(aLog.data[i]));
    for (int64_t e = 0; e < E; ++e)
      Dskip[e] = float(softplus(dDiag.data[e]) + config.eps);
  }
  if (config.use_temperature)
    betaRaw = params["_beta_param"].data;
  else
    std::fill(betaRaw.begin(), betaRaw.end(), unitBetaRaw);

  // lambda = sigmoid(...) and the normalised gate, (B, T, E), in double.
  std::vector<double> lambda(branch ? B * T * E : 0);
  std::vector<double> gate(config.use_outer_gate ? B * T * E : 0);

  for (int64_t b = 0; b < B; ++b) {
    std::vector<double> xb(x + b * T * D, x + (b + 1) * T * D);
    // 1. Projections.
    std::vector<double> V = params.linear("W_v", xb, T);
    std::vector<double> Q, K;
    if (!ssm) {
      Q = params.linear("W_q", xb, T);
      K = params.linear("W_k", xb, T);
    }
    // 2. The mask multiplies K and V (Q is not masked).
    if (mask)
      for (int64_t t = 0; t < T; ++t) {
        double m = mask[b * T + t];
        for (int64_t e = 0; e < E; ++e)
          V[t * E + e] *= m;
        for (size_t i = 0; i < (ssm ? 0 : size_t(H * dk)); ++i)
          K[t * H * dk + i] *= m;
      }
    // 3. Time-decay conditioning: scales (1 + s) for V, Q, K, lambda, gate.
    std::vector<double> tdc;
    int64_t W = s.tdcWidth;
    if (config.use_conv) {
      tdc.assign(T * W, 0.0);
      timeDecayCondition(config, s, params, "tdc.fwd.", xb, T, tdc);
      // (quirk) bwd also runs forward in time.
      if (config.conv_bidirectional)
        timeDecayCondition(config, s, params, "tdc.bwd.", xb, T, tdc);
    }
    auto scale = [&](std::vector<double> &target, int64_t width,
                     int64_t offset) {
      if (tdc.empty())
        return;
      for (int64_t t = 0; t < T; ++t)
        for (int64_t i = 0; i < width; ++i)
          target[t * width + i] *= 1.0 + tdc[t * W + offset + i];
    };
    int64_t offset = 0;
    scale(V, E, offset);
    offset += E;
    if (!ssm) {
      scale(Q, H * dk, offset);
      scale(K, H * dk, offset + H * dk);
    }
    offset += 2 * H * dk;
    int64_t lambdaOffset = offset;
    if (branch)
      offset += E;
    int64_t gateOffset = offset;
    // (quirk) The gla part of the TDC output is not used.

    // 4. RoPE on Q and K.
    if (config.use_rope && !ssm) {
      applyRope(config, s, Q, T);
      applyRope(config, s, K, T);
    }
    // 5. lambda and the gate.
    if (branch) {
      std::vector<double> l = params.linear("W_lambda", xb, T);
      scale(l, E, lambdaOffset);
      for (int64_t i = 0; i < T * E; ++i)
        lambda[b * T * E + i] = sigmoid(l[i]);
    }
    if (config.use_outer_gate) {
      std::vector<double> g = params.linear("W_gate", xb, T);
      scale(g, E, gateOffset);
      for (int64_t t = 0; t < T; ++t)
        for (int64_t h = 0; h < H; ++h) {
          double *row = g.data() + t * E + h * dv;
          double squared = 0.0;
          for (int64_t c = 0; c < dv; ++c) {
            row[c] = softplus(row[c]) + config.eps;
            squared += row[c] * row[c];
          }
          double factor = std::sqrt(double(dv)) /
                          std::max(std::sqrt(squared), kGateNormFloor);
          for (int64_t c = 0; c < dv; ++c)
            gate[(b * T + t) * E + h * dv + c] = row[c] * factor;
        }
    }
    // The kernel read's float32 inputs.
    for (int64_t i = 0; i < T * E; ++i) {
      double value = V[i];
      if (unitScale && ssm) {
        double u = sigmoid(value) / unitBeta;
        value = std::log(u) - std::log1p(-u);
      } else if (unitScale) {
        value /= unitBeta;
      }
      v[b * T * E + i] = float(value);
    }
    for (size_t i = 0; i < Q.size(); ++i) {
      q[b * T * H * dk + i] = float(Q[i]);
      k[b * T * H * dk + i] = float(K[i]);
    }
    if (s.prior == Prior::Gla) {
      std::vector<double> d = params.linear("W_decay", xb, T);
      for (int64_t i = 0; i < T * H; ++i)
        decay[b * T * H + i] = float(d[i]);
    }
    if (ssm) {
      std::vector<double> p = params.linear("W_p", xb, T);
      int64_t width = E + 2 * N;
      for (int64_t t = 0; t < T; ++t) {
        for (int64_t e = 0; e < E; ++e)
          delta[(b * T + t) * E + e] =
              float(std::exp(-softplus(p[t * width + e])));
        for (int64_t n = 0; n < N; ++n) {
          Bs[(b * T + t) * N + n] =
              float(softplus(p[t * width + E + n]) + config.eps);
          Cs[(b * T + t) * N + n] =
              float(softplus(p[t * width + E + N + n]) + config.eps);
        }
      }
    }
  }

  // 6-7. The prior read (sections 1-3) by the kernel reference.
  Inputs in;
  in.v = v.data();
  in.beta_raw = betaRaw.data();
  in.lam = zeros.data();
  in.gate = zeros.data();
  if (!ssm) {
    in.q = q.data();
    in.k = k.data();
  }
  if (s.prior == Prior::Gla)
    in.decay = decay.data();
  if (ssm) {
    in.delta = delta.data();
    in.A = A.data();
    in.Bs = Bs.data();
    in.Cs = Cs.data();
    in.D = Dskip.data();
  }
  std::string message;
  std::optional<Result> read = run(problem, in, message);
  if (!read) {
    error = "the FEM read: " + message;
    return std::nullopt;
  }
  // out_h = g * ((1 - lambda) mu + lambda F) (or mu alone without the
  // branch), then y = W_o merge(out_h).
  double back = unitScale ? unitBeta : 1.0;
  // rnn_softmax reading mu only: the module's read is over V alone (W = dv),
  // so q^ = p sqrt(dv) / max(||p||_dv, 1e-5); the kernel reference's is over
  // [V | X] (W = 2 dv), the same except where the clamp binds, where it is
  // sqrt(2) times the module's (every p of a row below ~1e-5 / sqrt(dv)).
  // muScale[(bt, h)] = max(n, 1e-5 / sqrt(2)) / max(n, 1e-5), n = ||p||_dv,
  // p = softplus(q[c mod dk]) + eps of the float32 q the read took.
  std::vector<double> muScale;
  if (s.prior == Prior::Aft && !branch) {
    muScale.assign(B * T * H, 1.0);
    for (int64_t bt = 0; bt < B * T; ++bt)
      for (int64_t h = 0; h < H; ++h) {
        double squared = 0.0;
        for (int64_t c = 0; c < dv; ++c) {
          double p =
              softplus(double(q[(bt * H + h) * dk + c % dk])) + config.eps;
          squared += p * p;
        }
        double n = std::sqrt(squared);
        muScale[bt * H + h] =
            std::max(n, 1e-5 / std::sqrt(2.0)) / std::max(n, 1e-5);
      }
  }
  const Tensor &wo = params["W_o.weight"];
  const Tensor *bo = params.optional("W_o.bias");
  std::vector<double> mixed(E);
  for (int64_t bt = 0; bt < B * T; ++bt) {
    for (int64_t e = 0; e < E; ++e) {
      int64_t at = bt * E + e;
      double mu = read->mu[at] * back;
      if (!muScale.empty())
        mu *= muScale[bt * H + e / dv];
      double value = mu;
      if (branch) {
        double F = read->F[at] * back;
        value = (1.0 - lambda[at]) * mu + lambda[at] * F;
      }
      if (config.use_outer_gate)
        value *= gate[at];
      mixed[e] = value;
    }
    for (int64_t o = 0; o < D; ++o) {
      double sum = bo ? double(bo->data[o]) : 0.0;
      const float *row = wo.data.data() + o * E;
      for (int64_t e = 0; e < E; ++e)
        sum += mixed[e] * double(row[e]);
      y[bt * D + o] = sum;
    }
  }
  return y;
}

double layerScaleFloor(const LayerConfig &config,
                       const ParameterMap &parameters) {
  std::string error;
  std::optional<LayerSizes> s = resolve(config, ConfigForm::Module, error);
  auto wo = parameters.find("W_o.weight");
  if (!s || wo == parameters.end() ||
      wo->second.data.size() != size_t(s->D * s->E))
    return 0.0;
  // beta's least value: softplus(_beta_param) + eps, or 1 (use_lse alone;
  // without the branch F is not read and 1 is as good as any).
  double beta = 1.0;
  auto raw = parameters.find("_beta_param");
  if (config.use_temperature && raw != parameters.end()) {
    beta = std::numeric_limits<double>::infinity();
    for (float r : raw->second.data)
      beta = std::min(beta, softplus(double(r)) + config.eps);
  }
  // The output projection's reach: max over outputs of sum |W_o[o, e]|.
  double reach = 0.0;
  for (int64_t o = 0; o < s->D; ++o) {
    double sum = 0.0;
    for (int64_t e = 0; e < s->E; ++e)
      sum += std::fabs(double(wo->second.data[o * s->E + e]));
    reach = std::max(reach, sum);
  }
  double floor = kScaleFloorUnit / beta * std::sqrt(double(s->dv)) * reach;
  return std::isfinite(floor) ? floor : 0.0;
}

} // namespace femc::ref
