//===- Reference.cpp - Double-precision FEM reference ---------------------===//
//
// Part of the femc project.
//
//===----------------------------------------------------------------------===//
//
// The section numbers in comments refer to shared/design/semantics.md.
//
//===----------------------------------------------------------------------===//

#include "reference/Reference.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <utility>

namespace femc::ref {

/// float32's smallest normal number, 2^-126 (the floor of the log restore).
static constexpr double kTiny = 0x1p-126;
/// Floor of the L2 norms in the gate and in aft's query normalisation.
static constexpr double kNormFloor = 1e-5;
/// gla's normaliser offset, added to the weight sum (not a clamp).
static constexpr double kGlaOffset = 1e-5;
/// gla's bounds on the cumulative log decay.
static constexpr double kGlaMinLogDecay = -60.0;
static constexpr double kGlaMaxLogDecay = 50.0;
/// softplus(x) = x above this threshold (torch's default, as in float32).
static constexpr double kSoftplusThreshold = 20.0;

static constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
static constexpr double kInf = std::numeric_limits<double>::infinity();

static double softplus(double x) {
  return x > kSoftplusThreshold ? x : std::log1p(std::exp(x));
}

static double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

/// relu that keeps NaN, like torch.relu.
static double relu(double x) { return x > 0.0 || std::isnan(x) ? x : 0.0; }

/// max that propagates NaN from either side, like torch.max/torch.maximum.
static double maxNaN(double a, double b) {
  if (std::isnan(a) || std::isnan(b))
    return kNaN;
  return a > b ? a : b;
}

/// clamp(x, lo, hi) that keeps NaN, like torch.clamp.
static double clamp(double x, double lo, double hi) {
  return x < lo ? lo : (x > hi ? hi : x);
}

/// log(e^a + e^b), exact for infinite arguments.
static double logAddExp(double a, double b) {
  if (std::isnan(a) || std::isnan(b))
    return kNaN;
  if (a == -kInf)
    return b;
  if (b == -kInf)
    return a;
  double hi = a > b ? a : b;
  return hi + std::log1p(std::exp(-std::fabs(a - b)));
}

namespace {

/// Flat offsets of the tensors of one problem, in its layout.
class Indexer {
public:
  explicit Indexer(const Problem &p) : p(p) {}

  /// q[b, t, h, i].
  int64_t q(int64_t b, int64_t t, int64_t h, int64_t i) const {
    return token(b, t, h, p.T, p.H) * p.dk + i;
  }
  /// k[b, s, g, i] for kv head g.
  int64_t k(int64_t b, int64_t s, int64_t g, int64_t i) const {
    return token(b, s, g, p.S, p.Hkv) * p.dk + i;
  }
  /// v[b, s, g, c] for kv head g.
  int64_t v(int64_t b, int64_t s, int64_t g, int64_t c) const {
    return token(b, s, g, p.S, p.Hkv) * p.dv + c;
  }
  /// lam/gate/out/mu/F[b, t, h, c].
  int64_t perChannel(int64_t b, int64_t t, int64_t h, int64_t c) const {
    return token(b, t, h, p.T, p.H) * p.dv + c;
  }
  /// decay[b, t, h].
  int64_t perHead(int64_t b, int64_t t, int64_t h) const {
    return token(b, t, h, p.T, p.H);
  }
  /// The kv head that query head h reads.
  int64_t kvHead(int64_t h) const { return h / (p.H / p.Hkv); }

private:
  /// Index of the (batch, time, head) triple in a tensor with `time`
  /// positions and `heads` heads.
  int64_t token(int64_t b, int64_t t, int64_t h, int64_t time,
                int64_t heads) const {
    if (p.layout == Layout::BTHD)
      return (b * time + t) * heads + h;
    return (b * heads + h) * time + t;
  }

  const Problem &p;
};

/// The two value streams of one (batch, query head) after section 1, over
/// the key positions s < S.
struct HeadStreams {
  int64_t dv = 0;
  /// beta for each channel c of the head.
  std::vector<double> beta;
  /// The clipped values V~, S x dv.
  std::vector<double> clipped;
  /// The tilted values X = exp(beta * V~ - M), S x dv.
  std::vector<double> tilted;
  /// X - 1 = expm1(beta * V~ - M), S x dv: exact where X is near 1 (small
  /// beta), where X itself keeps only |X - 1| / 1e-16 digits of it.
  std::vector<double> tiltedM1;
  /// The shift M, dv.
  std::vector<double> shift;

  double vt(int64_t s, int64_t c) const { return clipped[s * dv + c]; }
  double x(int64_t s, int64_t c) const { return tilted[s * dv + c]; }
  double xm1(int64_t s, int64_t c) const { return tiltedM1[s * dv + c]; }
};

/// What a prior read produces for one (batch, query head): mu = R(V~) and
/// Z = R(X) for every query row, and whether the row saw any key.
struct HeadRead {
  std::vector<double> mu, z; ///< T x dv.
  /// R(X - 1), T x dv, where the read's weights sum to exactly 1 (softmax):
  /// there Z - 1 = R(X - 1) and log Z = log1p(R(X - 1)) keeps the digits
  /// that F = log Z / beta needs when beta is small (beta_raw = -30 gives
  /// beta ~ 1e-13: log of a double Z would leave F with ~1e-3 of error).
  std::vector<double> zm1;
  bool normalised = false;
  std::vector<char> visible; ///< T.

  HeadRead(int64_t T, int64_t dv)
      : mu(T * dv, 0.0), z(T * dv, 0.0), zm1(T * dv, 0.0), visible(T, 1) {}
};

} // namespace

static bool keyKept(const Inputs &in, const Problem &p, int64_t b, int64_t s) {
  return !p.hasMask || in.mask[b * p.S + s] != 0;
}

/// Section 1: beta, clip, shift and tilt for query head h of batch b.
static HeadStreams computeStreams(const Problem &p, const Inputs &in,
                                  const Indexer &idx, int64_t b, int64_t h) {
  HeadStreams hs;
  hs.dv = p.dv;
  hs.beta.resize(p.dv);
  hs.clipped.resize(p.S * p.dv);
  hs.tilted.resize(p.S * p.dv);
  hs.tiltedM1.resize(p.S * p.dv);
  hs.shift.assign(p.dv, 0.0);
  int64_t g = idx.kvHead(h);
  for (int64_t c = 0; c < p.dv; ++c) {
    double beta = softplus(in.beta_raw[h * p.dv + c]) + p.eps;
    double bound = p.cap / beta;
    hs.beta[c] = beta;
    bool anyKey = false;
    double shift = 0.0; // Stays 0 when every key is masked.
    for (int64_t s = 0; s < p.S; ++s) {
      double value = in.v[idx.v(b, s, g, c)];
      if (p.prior == Prior::Ssm)
        value = sigmoid(value); // ssm squashes the value before the clip.
      double vt = clamp(value, -bound, bound);
      hs.clipped[s * p.dv + c] = vt;
      if (!keyKept(in, p, b, s))
        continue;
      // (quirk) The max runs over all keys, future ones included.
      shift = anyKey ? maxNaN(shift, beta * vt) : beta * vt;
      anyKey = true;
    }
    hs.shift[c] = shift;
    for (int64_t s = 0; s < p.S; ++s) {
      hs.tilted[s * p.dv + c] = std::exp(beta * hs.vt(s, c) - shift);
      hs.tiltedM1[s * p.dv + c] = std::expm1(beta * hs.vt(s, c) - shift);
    }
  }
  return hs;
}

/// Sets row t of `read` to sum_i weights[i] * U_{keys[i]} / denominator, for
/// U = V~ (into mu) and U = X (into z).
static void readRow(const std::vector<int64_t> &keys,
                    const std::vector<double> &weights, double denominator,
                    const HeadStreams &hs, int64_t t, HeadRead &read) {
  for (int64_t c = 0; c < hs.dv; ++c) {
    double mu = 0.0, z = 0.0, zm1 = 0.0;
    for (size_t i = 0; i < keys.size(); ++i) {
      mu += weights[i] * hs.vt(keys[i], c);
      z += weights[i] * hs.x(keys[i], c);
      zm1 += weights[i] * hs.xm1(keys[i], c);
    }
    read.mu[t * hs.dv + c] = mu / denominator;
    read.z[t * hs.dv + c] = z / denominator;
    read.zm1[t * hs.dv + c] = zm1 / denominator;
  }
}

/// The keys query row t may read under softmax/linear: s <= t if causal,
/// all s otherwise, minus masked keys.
static std::vector<int64_t> visibleKeys(const Problem &p, const Inputs &in,
                                        int64_t b, int64_t t) {
  std::vector<int64_t> keys;
  int64_t end = p.causal ? t + 1 : p.S;
  for (int64_t s = 0; s < end; ++s)
    if (keyKept(in, p, b, s))
      keys.push_back(s);
  return keys;
}

/// relu(x) + eps, the feature map of linear and gla.
static double featureMap(const Problem &p, double x) { return relu(x) + p.eps; }

/// <phi(q_t), phi(k_s)> for query head h and its kv head g.
static double featureDot(const Problem &p, const Inputs &in, const Indexer &idx,
                         int64_t b, int64_t t, int64_t h, int64_t s) {
  int64_t g = idx.kvHead(h);
  double dot = 0.0;
  for (int64_t i = 0; i < p.dk; ++i)
    dot += featureMap(p, in.q[idx.q(b, t, h, i)]) *
           featureMap(p, in.k[idx.k(b, s, g, i)]);
  return dot;
}

/// softmax: alpha_t = softmax over visible s of <q_t, k_s> * scale.
static HeadRead readSoftmax(const Problem &p, const Inputs &in,
                            const Indexer &idx, int64_t b, int64_t h,
                            const HeadStreams &hs) {
  HeadRead read(p.T, p.dv);
  read.normalised = true;
  double scale = p.scale.value_or(1.0 / std::sqrt(double(p.dk)));
  int64_t g = idx.kvHead(h);
  for (int64_t t = 0; t < p.T; ++t) {
    std::vector<int64_t> keys = visibleKeys(p, in, b, t);
    if (keys.empty()) {
      read.visible[t] = 0;
      continue;
    }
    std::vector<double> logits(keys.size());
    double rowMax = 0.0;
    for (size_t i = 0; i < keys.size(); ++i) {
      double dot = 0.0;
      for (int64_t j = 0; j < p.dk; ++j)
        dot += double(in.q[idx.q(b, t, h, j)]) * in.k[idx.k(b, keys[i], g, j)];
      logits[i] = dot * scale;
      rowMax = i == 0 ? logits[i] : maxNaN(rowMax, logits[i]);
    }
    std::vector<double> weights(keys.size());
    double sum = 0.0;
    for (size_t i = 0; i < keys.size(); ++i) {
      weights[i] = std::exp(logits[i] - rowMax);
      sum += weights[i];
    }
    readRow(keys, weights, sum, hs, t, read);
  }
  return read;
}

/// linear: w_ts = <phi(q_t), phi(k_s)>, normalised by max(sum_s w_ts, eps).
static HeadRead readLinear(const Problem &p, const Inputs &in,
                           const Indexer &idx, int64_t b, int64_t h,
                           const HeadStreams &hs) {
  HeadRead read(p.T, p.dv);
  for (int64_t t = 0; t < p.T; ++t) {
    std::vector<int64_t> keys = visibleKeys(p, in, b, t);
    if (keys.empty()) {
      read.visible[t] = 0;
      continue;
    }
    std::vector<double> weights(keys.size());
    double sum = 0.0;
    for (size_t i = 0; i < keys.size(); ++i) {
      weights[i] = featureDot(p, in, idx, b, t, h, keys[i]);
      sum += weights[i];
    }
    readRow(keys, weights, maxNaN(sum, p.eps), hs, t, read);
  }
  return read;
}

/// gla (always causal): w_ts = exp(C_t - C_s) <phi(q_t), phi(k_s)>, with
/// C the clamped inclusive cumulative sum of a_u = -(relu(decay_u) + eps),
/// normalised by sum_s w_ts + 1e-5.
static HeadRead readGla(const Problem &p, const Inputs &in, const Indexer &idx,
                        int64_t b, int64_t h, const HeadStreams &hs) {
  HeadRead read(p.T, p.dv);
  std::vector<double> logDecay(p.T);
  double cumulative = 0.0;
  for (int64_t t = 0; t < p.T; ++t) {
    cumulative += -(relu(in.decay[idx.perHead(b, t, h)]) + p.eps);
    // (quirk) Clamping the running sum (not each step) means that once it
    // passes -60, C stays at -60 and the decay stops.
    logDecay[t] = clamp(cumulative, kGlaMinLogDecay, kGlaMaxLogDecay);
  }
  for (int64_t t = 0; t < p.T; ++t) {
    std::vector<int64_t> keys(t + 1);
    std::vector<double> weights(t + 1);
    double sum = 0.0;
    for (int64_t s = 0; s <= t; ++s) {
      keys[s] = s;
      weights[s] = std::exp(logDecay[t] - logDecay[s]) *
                   featureDot(p, in, idx, b, t, h, s);
      sum += weights[s];
    }
    readRow(keys, weights, sum + kGlaOffset, hs, t, read);
  }
  return read;
}

/// aft (the reference's rnn_softmax, always causal): a per-channel causal
/// softmax over keys, read over the concatenated width W = 2 dv of [V~ | X],
/// then scaled by the normalised query q^.
static HeadRead readAft(const Problem &p, const Inputs &in, const Indexer &idx,
                        int64_t b, int64_t h, const HeadStreams &hs) {
  HeadRead read(p.T, p.dv);
  int64_t width = 2 * p.dv;
  int64_t g = idx.kvHead(h);
  // Channel j of the concatenated stream uses q/k channel j mod dk.
  auto qk = [&](int64_t j) { return j % p.dk; };
  auto stream = [&](int64_t s, int64_t j) {
    return j < p.dv ? hs.vt(s, j) : hs.x(s, j - p.dv);
  };
  // (quirk) kmax runs over all key positions, future ones included.
  std::vector<double> kmax(width);
  for (int64_t j = 0; j < width; ++j)
    for (int64_t s = 0; s < p.S; ++s) {
      double key = in.k[idx.k(b, s, g, qk(j))];
      kmax[j] = s == 0 ? key : maxNaN(kmax[j], key);
    }
  std::vector<double> numerator(width, 0.0), denominator(width, 0.0);
  std::vector<double> queryWeight(width);
  for (int64_t t = 0; t < p.T; ++t) {
    // Key t joins the running sums of every row from t on.
    for (int64_t j = 0; j < width; ++j) {
      double kappa = std::exp(in.k[idx.k(b, t, g, qk(j))] - kmax[j]) + p.eps;
      numerator[j] += kappa * stream(t, j);
      denominator[j] += kappa;
    }
    double squaredNorm = 0.0;
    for (int64_t j = 0; j < width; ++j) {
      queryWeight[j] = softplus(in.q[idx.q(b, t, h, qk(j))]) + p.eps;
      squaredNorm += queryWeight[j] * queryWeight[j];
    }
    double norm = maxNaN(std::sqrt(squaredNorm), kNormFloor);
    for (int64_t j = 0; j < width; ++j) {
      double qHat = queryWeight[j] / norm * std::sqrt(double(width));
      double value = qHat * numerator[j] / maxNaN(denominator[j], p.eps);
      if (j < p.dv)
        read.mu[t * p.dv + j] = value;
      else
        read.z[t * p.dv + j - p.dv] = value;
    }
  }
  return read;
}

/// ssm (selective scan, always causal): per flat channel e, the scan of U,
/// normalised by the same scan of U = 1.
static HeadRead readSsm(const Problem &p, const Inputs &in, int64_t b,
                        int64_t h, const HeadStreams &hs) {
  HeadRead read(p.T, p.dv);
  int64_t E = p.channels();
  for (int64_t c = 0; c < p.dv; ++c) {
    int64_t e = h * p.dv + c;
    // States of the scans of V~, X and 1.
    std::vector<double> stateV(p.N, 0.0), stateX(p.N, 0.0), stateOne(p.N, 0.0);
    for (int64_t t = 0; t < p.T; ++t) {
      double step = in.delta[(b * p.T + t) * E + e];
      double yV = 0.0, yX = 0.0, yOne = 0.0;
      for (int64_t n = 0; n < p.N; ++n) {
        double decay = std::exp(step * double(in.A[e * p.N + n]));
        double input = step * double(in.Bs[(b * p.T + t) * p.N + n]);
        double output = in.Cs[(b * p.T + t) * p.N + n];
        stateV[n] = decay * stateV[n] + input * hs.vt(t, c);
        stateX[n] = decay * stateX[n] + input * hs.x(t, c);
        stateOne[n] = decay * stateOne[n] + input;
        yV += output * stateV[n];
        yX += output * stateX[n];
        yOne += output * stateOne[n];
      }
      double skip = in.D[e];
      yV += skip * hs.vt(t, c);
      yX += skip * hs.x(t, c);
      yOne += skip;
      double normaliser = maxNaN(yOne, p.eps);
      read.mu[t * p.dv + c] = yV / normaliser;
      read.z[t * p.dv + c] = yX / normaliser;
    }
  }
  return read;
}

/// Section 2: the read of the problem's prior.
static HeadRead readPrior(const Problem &p, const Inputs &in,
                          const Indexer &idx, int64_t b, int64_t h,
                          const HeadStreams &hs) {
  switch (p.prior) {
  case Prior::Softmax:
    return readSoftmax(p, in, idx, b, h, hs);
  case Prior::Linear:
    return readLinear(p, in, idx, b, h, hs);
  case Prior::Gla:
    return readGla(p, in, idx, b, h, hs);
  case Prior::Aft:
    return readAft(p, in, idx, b, h, hs);
  case Prior::Ssm:
    return readSsm(p, in, b, h, hs);
  }
  std::abort(); // Unreachable: every Prior is handled above.
}

/// Checked product of `shape`; false on overflow past 2^62 elements.
static bool checkedCount(const std::vector<int64_t> &shape, int64_t &count) {
  const int64_t limit = int64_t(1) << 62;
  count = 1;
  for (int64_t dim : shape) {
    if (dim < 0 || (dim != 0 && count > limit / dim))
      return false;
    count *= dim;
  }
  return true;
}

static bool usesKeys(Prior prior) { return prior != Prior::Ssm; }

static bool allowsMask(Prior prior) {
  return prior == Prior::Softmax || prior == Prior::Linear;
}

/// Whether the prior reads only s <= t, whatever `Problem::causal` says.
static bool isCausal(const Problem &p) {
  return p.causal || !(p.prior == Prior::Softmax || p.prior == Prior::Linear);
}

/// A double as printf's %g writes it ("40", "1e-06", "-inf").
static std::string formatDouble(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%g", value);
  return buffer;
}

static std::string quote(Prior prior) {
  return std::string("'") + priorName(prior) + "'";
}

const char *priorName(Prior prior) {
  switch (prior) {
  case Prior::Softmax:
    return "softmax";
  case Prior::Linear:
    return "linear";
  case Prior::Gla:
    return "gla";
  case Prior::Aft:
    return "aft";
  case Prior::Ssm:
    return "ssm";
  }
  return "unknown";
}

std::optional<Prior> parsePrior(std::string_view name) {
  for (Prior prior :
       {Prior::Softmax, Prior::Linear, Prior::Gla, Prior::Aft, Prior::Ssm})
    if (name == priorName(prior))
      return prior;
  return std::nullopt;
}

const char *layoutName(Layout layout) {
  return layout == Layout::BTHD ? "bthd" : "bhtd";
}

std::optional<Layout> parseLayout(std::string_view name) {
  if (name == "bthd")
    return Layout::BTHD;
  if (name == "bhtd")
    return Layout::BHTD;
  return std::nullopt;
}

std::vector<std::string> inputNames(const Problem &problem) {
  std::vector<std::string> names;
  for (const char *name : {"q", "k", "v", "beta_raw", "lam", "gate", "decay",
                           "delta", "A", "Bs", "Cs", "D", "mask"})
    if (tensorShape(problem, name))
      names.push_back(name);
  return names;
}

std::optional<std::vector<int64_t>> tensorShape(const Problem &p,
                                                std::string_view name) {
  bool bthd = p.layout == Layout::BTHD;
  auto token = [&](int64_t time, int64_t heads,
                   int64_t width) -> std::vector<int64_t> {
    if (bthd)
      return {p.B, time, heads, width};
    return {p.B, heads, time, width};
  };
  int64_t E = p.channels();
  bool ssm = p.prior == Prior::Ssm;
  if (name == "q" && usesKeys(p.prior))
    return token(p.T, p.H, p.dk);
  if (name == "k" && usesKeys(p.prior))
    return token(p.S, p.Hkv, p.dk);
  if (name == "v")
    return token(p.S, p.Hkv, p.dv);
  if (name == "beta_raw")
    return std::vector<int64_t>{E};
  if (name == "lam" || name == "gate" || name == "out" || name == "mu" ||
      name == "F")
    return token(p.T, p.H, p.dv);
  if (name == "M")
    return std::vector<int64_t>{p.B, p.H, p.dv};
  if (name == "decay" && p.prior == Prior::Gla)
    return bthd ? std::vector<int64_t>{p.B, p.T, p.H}
                : std::vector<int64_t>{p.B, p.H, p.T};
  if (name == "delta" && ssm)
    return std::vector<int64_t>{p.B, p.T, E};
  if (name == "A" && ssm)
    return std::vector<int64_t>{E, p.N};
  if ((name == "Bs" || name == "Cs") && ssm)
    return std::vector<int64_t>{p.B, p.T, p.N};
  if (name == "D" && ssm)
    return std::vector<int64_t>{E};
  if (name == "mask" && p.hasMask && allowsMask(p.prior))
    return std::vector<int64_t>{p.B, p.S};
  return std::nullopt;
}

bool validate(const Problem &p, std::string &error) {
  auto fail = [&](const std::string &message) {
    error = message;
    return false;
  };
  auto positive = [&](const char *name, int64_t value) {
    if (value >= 1)
      return true;
    return fail(std::string(name) + ": expected >= 1; found " +
                std::to_string(value));
  };
  if (!positive("B", p.B) || !positive("T", p.T) || !positive("S", p.S) ||
      !positive("H", p.H) || !positive("Hkv", p.Hkv) || !positive("dv", p.dv))
    return false;
  if (usesKeys(p.prior) && !positive("dk", p.dk))
    return false;
  if (p.prior == Prior::Ssm && !positive("N", p.N))
    return false;
  if (p.H % p.Hkv != 0)
    return fail("Hkv: expected a divisor of H = " + std::to_string(p.H) +
                "; found Hkv = " + std::to_string(p.Hkv));
  if (p.prior == Prior::Ssm && p.Hkv != p.H)
    return fail("Hkv: prior 'ssm' has no keys and needs Hkv == H = " +
                std::to_string(p.H) + "; found Hkv = " + std::to_string(p.Hkv));
  if (p.prior == Prior::Aft && p.dv % p.dk != 0)
    return fail("dk: prior 'aft' needs dk to divide dv = " +
                std::to_string(p.dv) + "; found dk = " + std::to_string(p.dk));
  if (isCausal(p) && p.S != p.T) {
    std::string why = p.prior == Prior::Softmax || p.prior == Prior::Linear
                          ? "causal " + quote(p.prior)
                          : "prior " + quote(p.prior) + " (always causal)";
    return fail("S: " + why + " needs S == T = " + std::to_string(p.T) +
                "; found S = " + std::to_string(p.S));
  }
  if (!(p.cap > 0.0))
    return fail("cap: expected a positive value; found " + formatDouble(p.cap));
  if (!(p.eps > 0.0) || std::isinf(p.eps))
    return fail("eps: expected a positive finite value; found " +
                formatDouble(p.eps));
  if (p.scale && p.prior != Prior::Softmax)
    return fail("scale: only prior 'softmax' has a logit scale; found it set "
                "for prior " +
                quote(p.prior));
  if (p.scale && !std::isfinite(*p.scale))
    return fail("scale: expected a finite value; found " +
                formatDouble(*p.scale));
  if (p.hasMask && !allowsMask(p.prior))
    return fail("hasMask: a key-padding mask is supported by softmax and "
                "linear only; found prior " +
                quote(p.prior));
  for (const char *name : {"q", "k", "v", "lam", "delta", "A", "mask"}) {
    std::optional<std::vector<int64_t>> shape = tensorShape(p, name);
    int64_t count = 0;
    if (shape && !checkedCount(*shape, count))
      return fail(std::string(name) + ": too many elements (more than 2^62)");
  }
  return true;
}

bool validate(const Problem &p, const Inputs &in, std::string &error) {
  if (!validate(p, error))
    return false;
  struct Named {
    const char *name;
    const void *pointer;
  };
  const Named pointers[] = {{"q", in.q},         {"k", in.k},
                            {"v", in.v},         {"beta_raw", in.beta_raw},
                            {"lam", in.lam},     {"gate", in.gate},
                            {"decay", in.decay}, {"delta", in.delta},
                            {"A", in.A},         {"Bs", in.Bs},
                            {"Cs", in.Cs},       {"D", in.D},
                            {"mask", in.mask}};
  for (const Named &input : pointers) {
    bool needed = tensorShape(p, input.name).has_value();
    if (needed && !input.pointer) {
      error = std::string("inputs.") + input.name + ": required by prior " +
              quote(p.prior) +
              (std::string(input.name) == "mask" ? " with hasMask set" : "") +
              " but null";
      return false;
    }
    if (!needed && input.pointer) {
      error = std::string("inputs.") + input.name + ": expected null; prior " +
              quote(p.prior) +
              (std::string(input.name) == "mask" ? " without hasMask" : "") +
              " does not read it";
      return false;
    }
  }
  return true;
}

std::optional<Result> run(const Problem &p, const Inputs &in,
                          std::string &error) {
  if (!validate(p, in, error))
    return std::nullopt;
  Indexer idx(p);
  Result result;
  int64_t total = p.B * p.T * p.H * p.dv;
  result.out.assign(total, 0.0);
  result.mu.assign(total, 0.0);
  result.F.assign(total, 0.0);
  result.M.assign(p.B * p.H * p.dv, 0.0);

  for (int64_t b = 0; b < p.B; ++b) {
    for (int64_t h = 0; h < p.H; ++h) {
      // Section 1.
      HeadStreams hs = computeStreams(p, in, idx, b, h);
      for (int64_t c = 0; c < p.dv; ++c)
        result.M[(b * p.H + h) * p.dv + c] = hs.shift[c];

      // Section 2.
      HeadRead read = readPrior(p, in, idx, b, h, hs);

      for (int64_t t = 0; t < p.T; ++t) {
        // A row that sees no key (possible only with a mask) reads zeros.
        if (!read.visible[t])
          continue;
        // Section 4: the gate of this (b, t, h).
        std::vector<double> gate(p.dv);
        double squaredNorm = 0.0;
        for (int64_t c = 0; c < p.dv; ++c) {
          gate[c] = softplus(in.gate[idx.perChannel(b, t, h, c)]) + p.eps;
          squaredNorm += gate[c] * gate[c];
        }
        double gateScale = std::sqrt(double(p.dv)) /
                           maxNaN(std::sqrt(squaredNorm), kNormFloor);
        for (int64_t c = 0; c < p.dv; ++c) {
          int64_t at = idx.perChannel(b, t, h, c);
          double mu = read.mu[t * p.dv + c];
          double z = read.z[t * p.dv + c];
          double beta = hs.beta[c], shift = hs.shift[c];
          // Section 3: F = [logaddexp(log Z, log(tiny) - M) + M] / beta,
          // with log Z = -inf where Z <= 0 (NaN stays NaN).
          double logZ = z <= 0.0 ? -kInf : std::log(z);
          double zm1 = read.zm1[t * p.dv + c];
          if (read.normalised && std::fabs(zm1) < 0.5)
            logZ = std::log1p(zm1);
          double F = (logAddExp(logZ, std::log(kTiny) - shift) + shift) / beta;
          double lambda = sigmoid(in.lam[at]);
          result.mu[at] = mu;
          result.F[at] = F;
          result.out[at] =
              gate[c] * gateScale * ((1.0 - lambda) * mu + lambda * F);
        }
      }
    }
  }
  return result;
}

Result run(const Problem &problem, const Inputs &inputs) {
  std::string error;
  std::optional<Result> result = run(problem, inputs, error);
  if (!result) {
    std::fprintf(stderr, "femc::ref::run: invalid problem: %s\n",
                 error.c_str());
    std::abort();
  }
  return std::move(*result);
}

const float **floatInput(Inputs &in, std::string_view name) {
  const std::pair<std::string_view, const float **> fields[] = {
      {"q", &in.q},         {"k", &in.k},         {"v", &in.v},
      {"beta_raw", &in.beta_raw}, {"lam", &in.lam}, {"gate", &in.gate},
      {"decay", &in.decay}, {"delta", &in.delta}, {"A", &in.A},
      {"Bs", &in.Bs},       {"Cs", &in.Cs},       {"D", &in.D}};
  for (auto &[field, pointer] : fields)
    if (name == field)
      return pointer;
  return nullptr;
}

bool bindInput(Inputs &in, std::string_view name, bool isFloat,
               const void *data) {
  if (!isFloat) {
    if (name != "mask")
      return false;
    in.mask = static_cast<const uint8_t *>(data);
    return true;
  }
  const float **pointer = floatInput(in, name);
  if (!pointer)
    return false;
  *pointer = static_cast<const float *>(data);
  return true;
}

void generateInput(std::string_view name, std::vector<float> &values,
                   Rng &rng) {
  if (name == "beta_raw") {
    rng.fillUniform(values, -1.0, 2.0);
    return;
  }
  if (name == "state") { // the empty carried state (docs/semantics.md)
    std::fill(values.begin(), values.end(), 0.0f);
    return;
  }
  rng.fillNormal(values);
  auto softplus = [](float x) { return x > 20 ? x : std::log1p(std::exp(x)); };
  for (float &x : values) {
    if (name == "delta")
      x = std::exp(-softplus(x));
    else if (name == "A")
      x = -softplus(x);
    else if (name == "Bs" || name == "Cs" || name == "D")
      x = softplus(x) + 1e-6f;
  }
}

} // namespace femc::ref
