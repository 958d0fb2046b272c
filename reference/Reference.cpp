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
#include "dialect/Priors.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <limits>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

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

/// min that propagates NaN from either side, like torch.min/torch.minimum.
static double minNaN(double a, double b) {
  if (std::isnan(a) || std::isnan(b))
    return kNaN;
  return a < b ? a : b;
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
  /// With a carried state, per channel: e^(M_state - M) (0 when the state
  /// has seen no key), the merged L = min of beta * V~, and whether any key
  /// was seen (state or segment). Empty without a state.
  std::vector<double> carriedScale, low;
  std::vector<char> seen;
  /// Every scan prior's record keeps its X sums in an offset form
  /// (docs/semantics.md, "Segments"; offsetForm): per channel, whether the
  /// carried record's is X - 1 (carriedNarrow) and whether the record this
  /// run writes is (outNarrow; it then holds the scan's X - 1 sums, else
  /// its X sums), and e^D - 1 (carriedScaleM1; D = M_state - M, -1
  /// without a carried key).
  std::vector<char> carriedNarrow, outNarrow;
  std::vector<double> carriedScaleM1;

  /// A carried X sum `stored` (record form) with its carried normaliser
  /// `norm` (sum of w) as a plain sum of w X relative to M.
  double carriedPlain(int64_t c, double stored, double norm) const {
    return carriedScale[c] * (carriedNarrow[c] ? stored + norm : stored);
  }
  /// The same as a sum of w (X - 1) relative to M, e^D stored + k norm
  /// with k = e^D - 1 (offset form) or -1; k norm is left out where k is 0
  /// (0 * inf is NaN), as the kernel does.
  double carriedM1(int64_t c, double stored, double norm) const {
    double moved = carriedScale[c] * stored;
    double k = carriedNarrow[c] ? carriedScaleM1[c] : -1.0;
    return k == 0.0 ? moved : moved + k * norm;
  }

  double vt(int64_t s, int64_t c) const { return clipped[s * dv + c]; }
  double x(int64_t s, int64_t c) const { return tilted[s * dv + c]; }
  double xm1(int64_t s, int64_t c) const { return tiltedM1[s * dv + c]; }
};

/// What a prior read produces for one (batch, query head): mu = R(V~) and
/// Z = R(X) for every query row, and whether the row saw any key.
///
/// Also log R(1) and R(X - 1) / R(1) (the weights' mean of X - 1; R is
/// linear in U): log Z = log R(1) + log1p(R(X - 1) / R(1)) keeps the digits
/// of log Z near 0 that F = (log Z + M) / beta needs where beta or the
/// spread beta (max V~ - min V~) is small. A double Z keeps only 1e-16 of
/// Z - 1: at beta ~ 1e-13 (eps <= 1e-14) that is 1e-3 of F, and where
/// every X - 1 is ~1e-22 (ssm's sigmoid of v ~ -50) log Z rounds to 0 and
/// F to max V~ instead of ~ mean V~.
struct HeadRead {
  std::vector<double> mu, z;           ///< T x dv.
  std::vector<double> logOne, meanXm1; ///< T x dv.
  std::vector<char> visible;           ///< T.

  HeadRead(int64_t T, int64_t dv)
      : mu(T * dv, 0.0), z(T * dv, 0.0), logOne(T * dv, 0.0),
        meanXm1(T * dv, 0.0), visible(T, 1) {}
};

} // namespace

static bool keyKept(const Inputs &in, const Problem &p, int64_t b, int64_t s) {
  return !p.hasMask || in.mask[b * p.S + s] != 0;
}

/// Slots of the common part of a state record (docs/semantics.md,
/// "Segments"); the prior's part follows.
enum : int64_t { kSlotShift = 0, kSlotLow = 1, kSlotSeen = 2, kSlotPrior = 3 };

/// The carried record of value channel c of head h in batch b (Ks floats),
/// or null for the empty state.
static const float *stateRecord(const Problem &p, const Inputs &in, int64_t b,
                                int64_t h, int64_t c) {
  if (!in.state)
    return nullptr;
  return in.state + ((b * p.H + h) * p.dv + c) * stateWidth(p);
}

/// Slot `slot` of a carried record (0 for the empty state).
static double slotOf(const float *record, int64_t slot) {
  return record ? double(record[slot]) : 0.0;
}

/// Whether a carried record has seen a key.
static bool recordSeen(const float *record) {
  return slotOf(record, kSlotSeen) > 0.5;
}

/// Whether a record with shift M, low L and `seen` keeps the X sums of
/// its prior in the offset form, sums of w (X - 1) (kernel and
/// reference: M - L <= ln 2 in float32, on the float32 record's values;
/// docs/semantics.md "Segments").
static bool offsetForm(double shift, double low, bool seen) {
  return femc::priors::recordNarrow(float(shift), float(low), seen ? 1.f : 0.f);
}

/// The scan reads' shift is P = M - h, h = clamp(M - L - free, 0, 32)
/// with free = max(0, 85 + ln eps), in float32 on the float32 M and L as the
/// kernels compute it (passes/cpu/Prepass.cpp, placeShift; docs/semantics.md
/// "Arithmetic"): X = e^(beta V~ - P) then stays within [e^-free, e^32], so
/// eps X is a normal float32. Returns h. M cancels in exact arithmetic, so
/// this matters to the state records only (slot M holds P, the shift of
/// their X sums), which the reference must write as the kernels do.
static double tiltDrop(const Problem &p, double shift, double low) {
  using femc::priors::kTiltFloor, femc::priors::kTiltMax;
  float free = float(std::max(0.0, double(kTiltFloor) + std::log(p.eps)));
  float span = float(shift) - float(low);
  float h = span - free;
  if (std::isnan(h))
    return 0.0; // shift is NaN (or low: then shift is too)
  return double(std::min(std::max(h, 0.0f), kTiltMax));
}

/// Section 1: beta, clip, shift and tilt for query head h of batch b. With
/// a carried state, M is the max over the keys the state has seen and the
/// segment's (docs/semantics.md, "Segments": M = max(M_state, M_segment)).
static HeadStreams computeStreams(const Problem &p, const Inputs &in,
                                  const Indexer &idx, int64_t b, int64_t h) {
  HeadStreams hs;
  hs.dv = p.dv;
  hs.beta.resize(p.dv);
  hs.clipped.resize(p.S * p.dv);
  hs.tilted.resize(p.S * p.dv);
  hs.tiltedM1.resize(p.S * p.dv);
  hs.shift.assign(p.dv, 0.0);
  if (p.hasState) {
    hs.carriedScale.assign(p.dv, 0.0);
    hs.low.assign(p.dv, 0.0);
    hs.seen.assign(p.dv, 0);
    hs.carriedNarrow.assign(p.dv, 0);
    hs.outNarrow.assign(p.dv, 0);
    hs.carriedScaleM1.assign(p.dv, -1.0);
  }
  int64_t g = idx.kvHead(h);
  for (int64_t c = 0; c < p.dv; ++c) {
    double beta = softplus(in.beta_raw[h * p.dv + c]) + p.eps;
    double bound = p.cap / beta;
    hs.beta[c] = beta;
    bool anyKey = false;
    double shift = 0.0; // Stays 0 when every key is masked.
    double low = 0.0;
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
      low = anyKey ? std::fmin(low, beta * vt) : beta * vt;
      anyKey = true;
    }
    if (p.prior != Prior::Softmax && anyKey) {
      // The scan kernels' shift (tiltShift), from the segment's max and the
      // low merged with a carried record's.
      const float *record = p.hasState ? stateRecord(p, in, b, h, c) : nullptr;
      double merged =
          recordSeen(record) ? minNaN(slotOf(record, kSlotLow), low) : low;
      shift -= tiltDrop(p, shift, merged);
    }
    if (p.hasState) {
      const float *record = stateRecord(p, in, b, h, c);
      if (recordSeen(record)) {
        double mState = slotOf(record, kSlotShift);
        double lState = slotOf(record, kSlotLow);
        shift = anyKey ? maxNaN(mState, shift) : mState;
        // NaN from either side, as M (a NaN beta makes the segment's L
        // NaN; docs/semantics.md, "Segments").
        low = anyKey ? minNaN(lState, low) : lState;
        hs.carriedScale[c] = std::exp(mState - shift);
        hs.carriedScaleM1[c] = std::expm1(mState - shift);
      }
      hs.low[c] = low;
      hs.seen[c] = anyKey || recordSeen(record);
      hs.carriedNarrow[c] =
          offsetForm(slotOf(record, kSlotShift), slotOf(record, kSlotLow),
                     recordSeen(record));
      hs.outNarrow[c] = offsetForm(shift, low, hs.seen[c]);
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
/// U = V~ (into mu) and U = X (into z); the weights' mean of X - 1 (their
/// sum is `sum`) and log R(1) = `logOne`.
static void readRow(const std::vector<int64_t> &keys,
                    const std::vector<double> &weights, double sum,
                    double denominator, double logOne, const HeadStreams &hs,
                    int64_t t, HeadRead &read) {
  for (int64_t c = 0; c < hs.dv; ++c) {
    double mu = 0.0, z = 0.0, zm1 = 0.0;
    for (size_t i = 0; i < keys.size(); ++i) {
      mu += weights[i] * hs.vt(keys[i], c);
      z += weights[i] * hs.x(keys[i], c);
      zm1 += weights[i] * hs.xm1(keys[i], c);
    }
    read.mu[t * hs.dv + c] = mu / denominator;
    read.z[t * hs.dv + c] = z / denominator;
    read.meanXm1[t * hs.dv + c] = zm1 / sum;
    read.logOne[t * hs.dv + c] = logOne;
  }
}

/// log R(1) of gla, log(sum / (sum + 1e-5)), without the rounding of the
/// quotient (F gains it / beta).
static double glaLogOne(double sum) { return -std::log1p(kGlaOffset / sum); }

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
    readRow(keys, weights, sum, sum, 0.0, hs, t, read);
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
    double denominator = maxNaN(sum, p.eps);
    readRow(keys, weights, sum, denominator, std::log(sum / denominator), hs, t,
            read);
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
    readRow(keys, weights, sum, sum + kGlaOffset, glaLogOne(sum), hs, t, read);
  }
  return read;
}

/// Whether the prior reads only s <= t, whatever `Problem::causal` says.
static bool isCausal(const Problem &p) {
  return p.causal || !(p.prior == Prior::Softmax || p.prior == Prior::Linear);
}

/// linear and gla with a carried state, in the recurrent form the state
/// records (docs/semantics.md, "Segments"): after key s, per feature d and
/// channel c, S_mu[d][c] = sum w phi(k)[d] V~, S_X[d][c] = sum w phi(k)[d] X
/// and z[d] = sum w phi(k)[d] over the keys seen, with w = e^(C_last - C_s)
/// for gla (1 for linear). Row t reads <phi(q_t), S> / den, den =
/// max(<phi(q_t), z>, eps) for linear and <phi(q_t), z> + 1e-5 for gla.
/// Causal rows read the state after their own key; non-causal linear rows
/// read the state after every key of the segment. Writes the prior's part
/// of the head's records to `record(c)`.
template <typename RecordOut>
static HeadRead readLinearCarried(const Problem &p, const Inputs &in,
                                  const Indexer &idx, int64_t b, int64_t h,
                                  const HeadStreams &hs, RecordOut record) {
  HeadRead read(p.T, p.dv);
  const int64_t dk = p.dk, dv = p.dv;
  const int64_t sMuSlot = kSlotPrior + 1, sXSlot = sMuSlot + dk,
                zSlot = sXSlot + dk;
  const bool gla = p.prior == Prior::Gla;
  const int64_t g = idx.kvHead(h);
  // The carried sums; z, C and seen are per head (validate checks that every
  // channel's record holds the same).
  const float *first = stateRecord(p, in, b, h, 0);
  bool anyKey = recordSeen(first);
  double logDecay = gla ? slotOf(first, kSlotPrior) : 0.0;
  // sX, sXm1: the sums of w phi(k) X and w phi(k) (X - 1).
  std::vector<double> sMu(dk * dv), sX(dk * dv), sXm1(dk * dv), z(dk);
  for (int64_t d = 0; d < dk; ++d)
    z[d] = slotOf(first, zSlot + d);
  for (int64_t c = 0; c < dv; ++c) {
    const float *carried = stateRecord(p, in, b, h, c);
    for (int64_t d = 0; d < dk; ++d) {
      sMu[d * dv + c] = slotOf(carried, sMuSlot + d);
      double stored = slotOf(carried, sXSlot + d);
      sX[d * dv + c] = hs.carriedPlain(c, stored, z[d]);
      sXm1[d * dv + c] = hs.carriedM1(c, stored, z[d]);
    }
  }
  std::vector<double> phi(dk);
  auto addKey = [&](int64_t s) {
    if (!keyKept(in, p, b, s))
      return;
    anyKey = true;
    for (int64_t d = 0; d < dk; ++d) {
      double feature = featureMap(p, in.k[idx.k(b, s, g, d)]);
      z[d] += feature;
      for (int64_t c = 0; c < dv; ++c) {
        sMu[d * dv + c] += feature * hs.vt(s, c);
        sX[d * dv + c] += feature * hs.x(s, c);
        sXm1[d * dv + c] += feature * hs.xm1(s, c);
      }
    }
  };
  auto readRowFromState = [&](int64_t t) {
    if (!anyKey) {
      read.visible[t] = 0;
      return;
    }
    double sum = 0.0;
    for (int64_t d = 0; d < dk; ++d) {
      phi[d] = featureMap(p, in.q[idx.q(b, t, h, d)]);
      sum += phi[d] * z[d];
    }
    double den = gla ? sum + kGlaOffset : maxNaN(sum, p.eps);
    double logOne = gla ? glaLogOne(sum) : std::log(sum / den);
    for (int64_t c = 0; c < dv; ++c) {
      double mu = 0.0, zRead = 0.0, zm1 = 0.0;
      for (int64_t d = 0; d < dk; ++d) {
        mu += phi[d] * sMu[d * dv + c];
        zRead += phi[d] * sX[d * dv + c];
        zm1 += phi[d] * sXm1[d * dv + c];
      }
      read.mu[t * dv + c] = mu / den;
      read.z[t * dv + c] = zRead / den;
      read.meanXm1[t * dv + c] = zm1 / sum;
      read.logOne[t * dv + c] = logOne;
    }
  };
  if (!isCausal(p)) {
    for (int64_t s = 0; s < p.S; ++s)
      addKey(s);
    for (int64_t t = 0; t < p.T; ++t)
      readRowFromState(t);
  } else {
    for (int64_t t = 0; t < p.T; ++t) {
      if (gla) {
        // Continuing from the carried (clamped) C gives the one-shot C: the
        // sum only decreases (docs/semantics.md, "Segments").
        double next = clamp(
            logDecay - (relu(in.decay[idx.perHead(b, t, h)]) + p.eps),
            kGlaMinLogDecay, kGlaMaxLogDecay);
        double decay = std::exp(next - logDecay);
        logDecay = next;
        for (double &x : z)
          x *= decay;
        for (int64_t i = 0; i < dk * dv; ++i) {
          sMu[i] *= decay;
          sX[i] *= decay;
          sXm1[i] *= decay;
        }
      }
      addKey(t);
      readRowFromState(t);
    }
  }
  for (int64_t c = 0; c < dv; ++c) {
    double *out = record(c);
    out[kSlotPrior] = logDecay;
    for (int64_t d = 0; d < dk; ++d) {
      out[sMuSlot + d] = sMu[d * dv + c];
      out[sXSlot + d] = (hs.outNarrow[c] ? sXm1 : sX)[d * dv + c];
      out[zSlot + d] = z[d];
    }
  }
  return read;
}

/// aft (the reference's rnn_softmax, always causal): a per-channel causal
/// softmax over keys, read over the concatenated width W = 2 dv of [V~ | X],
/// then scaled by the normalised query q^. The sums of kappa U and kappa,
/// kappa = e^(k - kmax) + eps, are kept as sum e^(k - kmax) U + eps sum U
/// and sum e^(k - kmax) + eps count: the state's form, in which a carried
/// state moves to a larger kmax exactly (docs/semantics.md, "Segments").
/// With a state, kmax also covers the keys it has seen; writes the prior's
/// part of the head's records to `record(c)`, whose X sums (n_X, u_X) are
/// in the record's offset form, as every scan prior's.
template <typename RecordOut>
static HeadRead readAft(const Problem &p, const Inputs &in, const Indexer &idx,
                        int64_t b, int64_t h, const HeadStreams &hs,
                        RecordOut record) {
  HeadRead read(p.T, p.dv);
  int64_t width = 2 * p.dv;
  int64_t g = idx.kvHead(h);
  // Channel j of the concatenated stream uses q/k channel j mod dk (dk
  // divides 2 dv) and value channel j mod dv's record. Where dk divides dv,
  // j and j + dv share a q/k channel, so one d and kmax serve both halves
  // (d_X and kmax_X are copies, not read); elsewhere the X half has its own.
  auto qk = [&](int64_t j) { return j % p.dk; };
  const bool ownX = p.dv % p.dk != 0;
  auto stream = [&](int64_t s, int64_t j) {
    return j < p.dv ? hs.vt(s, j) : hs.x(s, j - p.dv);
  };
  enum : int64_t {
    kNumMu, kNumX, kSumMu, kSumX, kDen, kKmax, kCount, kDenX, kKmaxX
  };
  // (quirk) kmax runs over all key positions, future ones included.
  std::vector<double> kmax(width);
  for (int64_t j = 0; j < width; ++j)
    for (int64_t s = 0; s < p.S; ++s) {
      double key = in.k[idx.k(b, s, g, qk(j))];
      kmax[j] = s == 0 ? key : maxNaN(kmax[j], key);
    }
  // sum e^(k - kmax) U, sum U and sum e^(k - kmax), with the carried sums;
  // the X half's also for U = X - 1: expNumXm1, plainNumXm1 (dv each).
  std::vector<double> expNum(width, 0.0), plainNum(width, 0.0),
      expDen(width, 0.0), expNumXm1(p.dv, 0.0), plainNumXm1(p.dv, 0.0);
  double count = 0.0;
  if (p.hasState) {
    count = slotOf(stateRecord(p, in, b, h, 0), kSlotPrior + kCount);
    for (int64_t j = 0; j < width; ++j) {
      int64_t c = j % p.dv;
      bool x = j >= p.dv;
      const float *carried = stateRecord(p, in, b, h, c);
      bool own = x && ownX;
      double kOld = slotOf(carried, kSlotPrior + (own ? kKmaxX : kKmax));
      double moved = 0.0; // e^(kmax_state - kmax), 0 without a carried key
      if (recordSeen(carried)) {
        kmax[j] = maxNaN(kOld, kmax[j]);
        moved = std::exp(kOld - kmax[j]);
      }
      double den = slotOf(carried, kSlotPrior + (own ? kDenX : kDen));
      expDen[j] = moved * den;
      if (!x) {
        expNum[j] = moved * slotOf(carried, kSlotPrior + kNumMu);
        plainNum[j] = slotOf(carried, kSlotPrior + kSumMu);
        continue;
      }
      // n_X and u_X in the record's offset form, with their normalisers
      // d_X (relative to the same kmax) and the key count.
      double numX = slotOf(carried, kSlotPrior + kNumX);
      double sumX = slotOf(carried, kSlotPrior + kSumX);
      expNum[j] = moved * hs.carriedPlain(c, numX, den);
      plainNum[j] = hs.carriedPlain(c, sumX, count);
      expNumXm1[c] = moved * hs.carriedM1(c, numX, den);
      plainNumXm1[c] = hs.carriedM1(c, sumX, count);
    }
  }
  std::vector<double> queryWeight(width);
  for (int64_t t = 0; t < p.T; ++t) {
    // Key t joins the running sums of every row from t on.
    count += 1.0;
    for (int64_t j = 0; j < width; ++j) {
      double e = std::exp(in.k[idx.k(b, t, g, qk(j))] - kmax[j]);
      expNum[j] += e * stream(t, j);
      plainNum[j] += stream(t, j);
      expDen[j] += e;
      if (j >= p.dv) {
        expNumXm1[j - p.dv] += e * hs.xm1(t, j - p.dv);
        plainNumXm1[j - p.dv] += hs.xm1(t, j - p.dv);
      }
    }
    double squaredNorm = 0.0, largest = 0.0;
    for (int64_t j = 0; j < width; ++j) {
      queryWeight[j] = softplus(in.q[idx.q(b, t, h, qk(j))]) + p.eps;
      squaredNorm += queryWeight[j] * queryWeight[j];
      largest = j == 0 ? queryWeight[j] : maxNaN(largest, queryWeight[j]);
    }
    double norm = maxNaN(std::sqrt(squaredNorm), kNormFloor);
    // log q^ (part of log R(1)) from u = p / max p: log u - 1/2 log(|u|^2 /
    // W), exactly 0 where every p of the row is equal (|u|^2 = W), as F
    // gains its rounding / beta; below the norm's floor log(p / 1e-5) +
    // 1/2 log W.
    double unitSquares = 0.0;
    for (int64_t j = 0; j < width; ++j)
      unitSquares += (queryWeight[j] / largest) * (queryWeight[j] / largest);
    bool floored = !(std::sqrt(squaredNorm) > kNormFloor);
    for (int64_t j = 0; j < width; ++j) {
      double qHat = queryWeight[j] / norm * std::sqrt(double(width));
      double numerator = expNum[j] + p.eps * plainNum[j];
      double denominator = expDen[j] + p.eps * count;
      double clamped = maxNaN(denominator, p.eps);
      double value = qHat * numerator / clamped;
      if (j < p.dv) {
        read.mu[t * p.dv + j] = value;
        continue;
      }
      int64_t at = t * p.dv + j - p.dv;
      read.z[at] = value;
      read.meanXm1[at] =
          (expNumXm1[j - p.dv] + p.eps * plainNumXm1[j - p.dv]) / denominator;
      double logQHat = floored
                           ? std::log(queryWeight[j] / kNormFloor) +
                                 0.5 * std::log(double(width))
                           : std::log(queryWeight[j] / largest) -
                                 0.5 * std::log(unitSquares / double(width));
      read.logOne[at] = logQHat + std::log(denominator / clamped);
    }
  }
  if (p.hasState)
    for (int64_t c = 0; c < p.dv; ++c) {
      double *out = record(c) + kSlotPrior;
      out[kNumMu] = expNum[c];
      bool narrow = hs.outNarrow[c];
      out[kNumX] = narrow ? expNumXm1[c] : expNum[p.dv + c];
      out[kSumMu] = plainNum[c];
      out[kSumX] = narrow ? plainNumXm1[c] : plainNum[p.dv + c];
      out[kDen] = expDen[c];
      out[kKmax] = kmax[c];
      out[kCount] = count;
      out[kDenX] = expDen[p.dv + c];
      out[kKmaxX] = kmax[p.dv + c];
    }
  return read;
}

/// ssm (selective scan, always causal): per flat channel e, the scan of U,
/// normalised by the same scan of U = 1. With a state, the scans continue
/// from its x_mu, x_X (moved to the merged M) and x_1; writes the prior's
/// part of the head's records to `record(c)`.
template <typename RecordOut>
static HeadRead readSsm(const Problem &p, const Inputs &in, int64_t b,
                        int64_t h, const HeadStreams &hs, RecordOut record) {
  HeadRead read(p.T, p.dv);
  int64_t E = p.channels();
  for (int64_t c = 0; c < p.dv; ++c) {
    int64_t e = h * p.dv + c;
    // States of the scans of V~, X, X - 1 and 1.
    std::vector<double> stateV(p.N, 0.0), stateX(p.N, 0.0), stateXm1(p.N, 0.0),
        stateOne(p.N, 0.0);
    if (p.hasState) {
      const float *carried = stateRecord(p, in, b, h, c);
      for (int64_t n = 0; n < p.N; ++n) {
        stateV[n] = slotOf(carried, kSlotPrior + n);
        stateOne[n] = slotOf(carried, kSlotPrior + 2 * p.N + n);
        double stored = slotOf(carried, kSlotPrior + p.N + n);
        stateX[n] = hs.carriedPlain(c, stored, stateOne[n]);
        stateXm1[n] = hs.carriedM1(c, stored, stateOne[n]);
      }
    }
    for (int64_t t = 0; t < p.T; ++t) {
      double step = in.delta[(b * p.T + t) * E + e];
      double yV = 0.0, yX = 0.0, yXm1 = 0.0, yOne = 0.0;
      for (int64_t n = 0; n < p.N; ++n) {
        double decay = std::exp(step * double(in.A[e * p.N + n]));
        double input = step * double(in.Bs[(b * p.T + t) * p.N + n]);
        double output = in.Cs[(b * p.T + t) * p.N + n];
        stateV[n] = decay * stateV[n] + input * hs.vt(t, c);
        stateX[n] = decay * stateX[n] + input * hs.x(t, c);
        stateXm1[n] = decay * stateXm1[n] + input * hs.xm1(t, c);
        stateOne[n] = decay * stateOne[n] + input;
        yV += output * stateV[n];
        yX += output * stateX[n];
        yXm1 += output * stateXm1[n];
        yOne += output * stateOne[n];
      }
      double skip = in.D[e];
      yV += skip * hs.vt(t, c);
      yX += skip * hs.x(t, c);
      yXm1 += skip * hs.xm1(t, c);
      yOne += skip;
      double normaliser = maxNaN(yOne, p.eps);
      read.mu[t * p.dv + c] = yV / normaliser;
      read.z[t * p.dv + c] = yX / normaliser;
      read.meanXm1[t * p.dv + c] = yXm1 / yOne;
      read.logOne[t * p.dv + c] = std::log(yOne / normaliser);
    }
    if (p.hasState) {
      double *out = record(c) + kSlotPrior;
      for (int64_t n = 0; n < p.N; ++n) {
        out[n] = stateV[n];
        out[p.N + n] = (hs.outNarrow[c] ? stateXm1 : stateX)[n];
        out[2 * p.N + n] = stateOne[n];
      }
    }
  }
  return read;
}

/// Section 2: the read of the problem's prior. With a carried state, the
/// scan priors write the prior's part of the head's records to
/// `record(c)`.
template <typename RecordOut>
static HeadRead readPrior(const Problem &p, const Inputs &in,
                          const Indexer &idx, int64_t b, int64_t h,
                          const HeadStreams &hs, RecordOut record) {
  switch (p.prior) {
  case Prior::Softmax:
    return readSoftmax(p, in, idx, b, h, hs);
  case Prior::Linear:
    if (p.hasState)
      return readLinearCarried(p, in, idx, b, h, hs, record);
    return readLinear(p, in, idx, b, h, hs);
  case Prior::Gla:
    if (p.hasState)
      return readLinearCarried(p, in, idx, b, h, hs, record);
    return readGla(p, in, idx, b, h, hs);
  case Prior::Aft:
    return readAft(p, in, idx, b, h, hs, record);
  case Prior::Ssm:
    return readSsm(p, in, b, h, hs, record);
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
                           "delta", "A", "Bs", "Cs", "D", "mask", "state"})
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
  if ((name == "state" || name == "state_out") && p.hasState &&
      stateWidth(p) > 0)
    return std::vector<int64_t>{p.B, p.H, p.dv, stateWidth(p)};
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
  if (p.prior == Prior::Aft && 2 * p.dv % p.dk != 0)
    return fail("dk: prior 'aft' needs dk to divide the read width 2 * dv = " +
                std::to_string(2 * p.dv) + "; found dk = " +
                std::to_string(p.dk));
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
  if (p.hasState && p.prior == Prior::Softmax)
    return fail("hasState: prior 'softmax' carries no state; the scan priors "
                "linear, gla, aft and ssm do");
  for (const char *name :
       {"q", "k", "v", "lam", "delta", "A", "mask", "state"}) {
    std::optional<std::vector<int64_t>> shape = tensorShape(p, name);
    int64_t count = 0;
    if (shape && !checkedCount(*shape, count))
      return fail(std::string(name) + ": too many elements (more than 2^62)");
  }
  return true;
}

int64_t stateWidth(const Problem &p) {
  switch (p.prior) {
  case Prior::Softmax:
    return 0;
  case Prior::Linear:
  case Prior::Gla:
    return kSlotPrior + 1 + 3 * p.dk;
  case Prior::Aft:
    return kSlotPrior + 9;
  case Prior::Ssm:
    return kSlotPrior + 3 * p.N;
  }
  return 0;
}

std::vector<StateField> stateFields(const Problem &p) {
  std::vector<StateField> fields = {{"M", kSlotShift, 1},
                                    {"L", kSlotLow, 1},
                                    {"seen", kSlotSeen, 1}};
  auto add = [&](const char *name, int64_t count) {
    int64_t first = fields.back().first + fields.back().count;
    fields.push_back({name, first, count});
  };
  switch (p.prior) {
  case Prior::Softmax:
    return {};
  case Prior::Linear:
  case Prior::Gla:
    add("C", 1);
    add("S_mu", p.dk);
    add("S_X", p.dk);
    add("z", p.dk);
    break;
  case Prior::Aft:
    for (const char *name :
         {"n_mu", "n_X", "u_mu", "u_X", "d", "kmax", "count", "d_X",
          "kmax_X"})
      add(name, 1);
    break;
  case Prior::Ssm:
    add("x_mu", p.N);
    add("x_X", p.N);
    add("x_1", p.N);
    break;
  }
  return fields;
}

/// Checks that a given state is one a kernel can have written (Reference.h,
/// validate).
static bool validateState(const Problem &p, const Inputs &in,
                          std::string &error) {
  if (!p.hasState || !in.state)
    return true;
  std::vector<StateField> perHead = {{"seen", kSlotSeen, 1}};
  for (const StateField &field : stateFields(p))
    if ((field.name == "C" && p.prior == Prior::Gla) || field.name == "z" ||
        field.name == "count")
      perHead.push_back(field);
  auto where = [&](int64_t b, int64_t h, int64_t c, int64_t slot) {
    return "state[" + std::to_string(b) + ", " + std::to_string(h) + ", " +
           std::to_string(c) + ", " + std::to_string(slot) + "]";
  };
  for (int64_t b = 0; b < p.B; ++b)
    for (int64_t h = 0; h < p.H; ++h) {
      const float *first = stateRecord(p, in, b, h, 0);
      for (int64_t c = 0; c < p.dv; ++c) {
        const float *record = stateRecord(p, in, b, h, c);
        double seen = record[kSlotSeen];
        if (seen != 0.0 && seen != 1.0) {
          error = where(b, h, c, kSlotSeen) + " (seen) is " +
                  formatDouble(seen) + "; expected 0 or 1";
          return false;
        }
        for (const StateField &field : perHead)
          for (int64_t slot = field.first; slot < field.first + field.count;
               ++slot) {
            bool same = record[slot] == first[slot] ||
                        (std::isnan(record[slot]) && std::isnan(first[slot]));
            if (!same) {
              error = where(b, h, c, slot) + " (" + field.name + ") is " +
                      formatDouble(record[slot]) + " but " +
                      where(b, h, 0, slot) + " is " +
                      formatDouble(first[slot]) + "; " + field.name +
                      " is per head, the same in every channel's record";
              return false;
            }
          }
        if (p.prior == Prior::Aft) {
          double count = record[kSlotPrior + 6];
          if (!(count >= 0.0) || count != std::floor(count)) {
            error = where(b, h, c, kSlotPrior + 6) + " (count) is " +
                    formatDouble(count) +
                    "; expected the number of keys seen, a whole number >= 0";
            return false;
          }
        }
      }
    }
  return true;
}

Comparison compare(const float *out, const double *ref, int64_t n) {
  Comparison r;
  for (int64_t i = 0; i < n; ++i) {
    double want = ref[i], got = out[i];
    if (!std::isfinite(want) || !std::isfinite(got)) {
      if ((std::isnan(want) && std::isnan(got)) || want == got) {
        ++r.nonFiniteSame;
      } else {
        if (r.firstMismatch < 0)
          r.firstMismatch = i;
        ++r.nonFiniteMismatch;
      }
      continue;
    }
    r.maxRef = std::max(r.maxRef, std::fabs(want));
    double e = std::fabs(got - want);
    if (e > r.maxErr || r.worst < 0) {
      r.maxErr = e;
      r.worst = i;
    }
  }
  return r;
}

std::vector<Comparison> compareState(const Problem &p, const float *stateOut,
                                     const std::vector<double> &ref) {
  std::vector<Comparison> out;
  const int64_t ks = stateWidth(p);
  const int64_t records = ks ? int64_t(ref.size()) / ks : 0;
  for (const StateField &field : stateFields(p)) {
    std::vector<float> got;
    std::vector<double> want;
    for (int64_t r = 0; r < records; ++r)
      for (int64_t slot = field.first; slot < field.first + field.count;
           ++slot) {
        got.push_back(stateOut[r * ks + slot]);
        want.push_back(ref[r * ks + slot]);
      }
    Comparison c = compare(got.data(), want.data(), int64_t(got.size()));
    // Back to flat indices of the state tensor.
    auto flat = [&](int64_t i) {
      return i < 0 ? i
                   : (i / field.count) * ks + field.first + i % field.count;
    };
    c.worst = flat(c.worst);
    c.firstMismatch = flat(c.firstMismatch);
    out.push_back(c);
  }
  return out;
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
  if (in.state && !p.hasState) {
    error = "inputs.state: expected null; the problem carries no state "
            "(hasState is not set)";
    return false;
  }
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
  return validateState(p, in, error);
}

/// Threads for `heads` independent heads of about `workPerHead` operations
/// each: FEMC_REF_THREADS (a positive count) or the hardware's, at most one
/// per head, and one for small problems (a thread costs more than it saves).
static unsigned referenceThreads(int64_t heads, double workPerHead) {
  if (heads <= 1 || workPerHead * double(heads) < double(1 << 22))
    return 1;
  unsigned n = std::thread::hardware_concurrency();
  if (const char *env = std::getenv("FEMC_REF_THREADS")) {
    char *end = nullptr;
    long v = std::strtol(env, &end, 10);
    if (end != env && *end == '\0' && v > 0)
      n = static_cast<unsigned>(std::min<long>(v, 1024));
  }
  return static_cast<unsigned>(
      std::max<int64_t>(1, std::min<int64_t>(n ? n : 1, heads)));
}

/// fn(i) for i in [0, n) on `threads` threads, each taking the next index;
/// the first exception of any fn is rethrown once all have stopped. Every i
/// is computed by one call in the same way whatever the thread, so the
/// results do not depend on the thread count.
template <typename Fn>
static void parallelFor(int64_t n, unsigned threads, Fn fn) {
  if (threads <= 1) {
    for (int64_t i = 0; i < n; ++i)
      fn(i);
    return;
  }
  std::atomic<int64_t> next{0};
  std::exception_ptr failure;
  std::mutex failureLock;
  auto work = [&] {
    for (int64_t i; (i = next.fetch_add(1)) < n;) {
      try {
        fn(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(failureLock);
        if (!failure)
          failure = std::current_exception();
        next.store(n);
        return;
      }
    }
  };
  std::vector<std::thread> pool;
  for (unsigned t = 1; t < threads; ++t)
    pool.emplace_back(work);
  work();
  for (std::thread &t : pool)
    t.join();
  if (failure)
    std::rethrow_exception(failure);
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
  const int64_t ks = p.hasState ? stateWidth(p) : 0;
  result.state.assign(p.B * p.H * p.dv * ks, 0.0);

  // The heads are independent (each writes its own outputs, M and state),
  // so they run in parallel (FEMC_REF_THREADS): a long causal softmax read
  // of 8 heads at T = 4099 took 70 s on one core.
  double keys = usesKeys(p.prior) ? double(std::max<int64_t>(p.S, 1)) : 1.0;
  double perHead = double(p.T) * keys * double(p.dk + 2 * p.dv);
  parallelFor(p.B * p.H, referenceThreads(p.B * p.H, perHead), [&](int64_t bh) {
    int64_t b = bh / p.H, h = bh % p.H;
    {
      // Section 1.
      HeadStreams hs = computeStreams(p, in, idx, b, h);
      for (int64_t c = 0; c < p.dv; ++c)
        result.M[(b * p.H + h) * p.dv + c] = hs.shift[c];

      // Section 2; the state after it (docs/semantics.md, "Segments").
      auto record = [&](int64_t c) {
        return result.state.data() + ((b * p.H + h) * p.dv + c) * ks;
      };
      HeadRead read = readPrior(p, in, idx, b, h, hs, record);
      if (p.hasState)
        for (int64_t c = 0; c < p.dv; ++c) {
          double *out = record(c);
          out[kSlotShift] = hs.shift[c];
          out[kSlotLow] = hs.low[c];
          out[kSlotSeen] = hs.seen[c] ? 1.0 : 0.0;
        }

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
          // with log Z = -inf where Z <= 0 (NaN stays NaN); log Z = log R(1)
          // + log1p(R(X - 1) / R(1)) where R(1) > 0 and the mean of X is
          // above 1/2 (HeadRead).
          double logZ = z <= 0.0 ? -kInf : std::log(z);
          double logOne = read.logOne[t * p.dv + c];
          double meanXm1 = read.meanXm1[t * p.dv + c];
          if (z > 0.0 && std::isfinite(logOne) && meanXm1 > -0.5)
            logZ = logOne + std::log1p(meanXm1);
          double F = (logAddExp(logZ, std::log(kTiny) - shift) + shift) / beta;
          double lambda = sigmoid(in.lam[at]);
          result.mu[at] = mu;
          result.F[at] = F;
          result.out[at] =
              gate[c] * gateScale * ((1.0 - lambda) * mu + lambda * F);
        }
      }
    }
  });
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
      {"Bs", &in.Bs},       {"Cs", &in.Cs},       {"D", &in.D},
      {"state", &in.state}};
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
