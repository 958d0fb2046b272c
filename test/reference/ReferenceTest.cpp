//===- ReferenceTest.cpp - Tests of the double-precision reference --------===//
//
// Part of the femc project.
//
//===----------------------------------------------------------------------===//
//
// Hand-computed small cases for every prior (expected values are worked out
// here from the formulas of shared/design/semantics.md, independently of the
// reference's code) and properties that cannot hold by accident: limits in
// beta and lambda, causality, permutation invariance, masking, layouts and
// grouped heads.
//
//===----------------------------------------------------------------------===//

#include "reference/Reference.h"
#include "support/Random.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <ostream>

namespace femc::ref {
/// Lets gtest print a Prior by name.
void PrintTo(Prior prior, std::ostream *os) { *os << priorName(prior); }
} // namespace femc::ref

namespace {

using femc::ref::Inputs;
using femc::ref::Layout;
using femc::ref::Prior;
using femc::ref::Problem;
using femc::ref::Result;

constexpr double kEps = 1e-6;
constexpr double kInf = std::numeric_limits<double>::infinity();
const double kTiny = std::ldexp(1.0, -126);

constexpr Prior kAllPriors[] = {Prior::Softmax, Prior::Linear, Prior::Gla,
                                Prior::Aft, Prior::Ssm};

//===----------------------------------------------------------------------===//
// Scalar formulas, written out independently of the reference.
//===----------------------------------------------------------------------===//

double softplus(double x) { return std::log1p(std::exp(x)); }
double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
double phi(double x) { return std::max(x, 0.0) + kEps; }
double betaOf(double raw) { return softplus(raw) + kEps; }

/// F from the read of e^(beta V~): (1/beta) log(R(e^(beta V~)) + tiny).
double freeEnergy(double beta, double readOfExp) {
  return std::log(readOfExp + kTiny) / beta;
}

/// The normalised gate g of one (b, t, h) from its dv logits.
std::vector<double> gateOf(const std::vector<double> &logits) {
  std::vector<double> g(logits.size());
  double squares = 0.0;
  for (size_t c = 0; c < logits.size(); ++c) {
    g[c] = softplus(logits[c]) + kEps;
    squares += g[c] * g[c];
  }
  double norm = std::max(std::sqrt(squares), 1e-5);
  for (double &value : g)
    value = value / norm * std::sqrt(double(logits.size()));
  return g;
}

//===----------------------------------------------------------------------===//
// Test fixtures: a problem with owned inputs.
//===----------------------------------------------------------------------===//

/// Row-major flat index of `index` in a tensor of `shape`.
int64_t flat(const std::vector<int64_t> &shape,
             std::initializer_list<int64_t> index) {
  EXPECT_EQ(shape.size(), index.size());
  int64_t offset = 0;
  size_t d = 0;
  for (int64_t i : index) {
    EXPECT_LT(i, shape[d]);
    offset = offset * shape[d++] + i;
  }
  return offset;
}

/// A problem and float32 inputs for it, sized by `tensorShape`.
class Case {
public:
  explicit Case(const Problem &problem) : p(problem) {
    for (const std::string &name : femc::ref::inputNames(p)) {
      std::vector<int64_t> shape = *femc::ref::tensorShape(p, name);
      int64_t count = std::accumulate(shape.begin(), shape.end(), int64_t(1),
                                      std::multiplies<int64_t>());
      if (name == "mask")
        mask.assign(count, 1);
      else
        data[name].assign(count, 0.0f);
      shapes[name] = shape;
    }
  }

  /// Input `name`; throws (and so fails the test) if the problem has none.
  std::vector<float> &operator[](const std::string &name) {
    return data.at(name);
  }

  /// The element of input `name` at `index`.
  float &at(const std::string &name, std::initializer_list<int64_t> index) {
    return (*this)[name][flat(shapes.at(name), index)];
  }

  /// Fills every input with seeded values in the ranges the authors' vectors
  /// use; every key is kept.
  void randomize(uint64_t seed) {
    femc::Rng rng(seed);
    for (auto &[name, values] : data) {
      if (name == "beta_raw")
        rng.fillUniform(values, 1.0, 2.5);
      else if (name == "lam" || name == "gate" || name == "decay")
        rng.fillNormal(values, 0.0, 1.5);
      else if (name == "delta")
        rng.fillUniform(values, 0.05, 0.95);
      else if (name == "A")
        rng.fillUniform(values, -2.0, -0.05);
      else if (name == "Bs" || name == "Cs")
        rng.fillUniform(values, 0.05, 3.0);
      else if (name == "D")
        rng.fillUniform(values, 0.1, 2.0);
      else
        rng.fillNormal(values);
    }
  }

  Inputs inputs() const {
    Inputs in;
    for (const auto &[name, values] : data) {
      const float **field = femc::ref::floatInput(in, name);
      EXPECT_NE(field, nullptr) << "no reference input called " << name;
      if (field)
        *field = values.data();
    }
    in.mask = p.hasMask ? mask.data() : nullptr;
    return in;
  }

  Result run() const {
    std::string error;
    std::optional<Result> result = femc::ref::run(p, inputs(), error);
    EXPECT_TRUE(result) << error;
    return result ? *result : Result();
  }

  Problem p;
  std::map<std::string, std::vector<float>> data;
  std::map<std::string, std::vector<int64_t>> shapes;
  std::vector<uint8_t> mask;
};

/// A self-attention problem in layout bthd.
Problem makeProblem(Prior prior, bool causal = true, int64_t B = 2,
                    int64_t T = 5, int64_t H = 2, int64_t dk = 4,
                    int64_t dv = 4) {
  Problem p;
  p.prior = prior;
  p.causal = causal;
  p.B = B;
  p.T = p.S = T;
  p.H = p.Hkv = H;
  p.dk = dk;
  p.dv = dv;
  p.N = prior == Prior::Ssm ? 3 : 0;
  return p;
}

/// Index of (b, t, h, c) in a (B, T, H, dv) result.
int64_t outIndex(const Problem &p, int64_t b, int64_t t, int64_t h, int64_t c) {
  return ((b * p.T + t) * p.H + h) * p.dv + c;
}

/// |actual - expected| <= tol * (1 + |expected|) elementwise, NaN equal to
/// NaN.
void expectAllNear(const std::vector<double> &actual,
                   const std::vector<double> &expected, double tol,
                   const std::string &what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  for (size_t i = 0; i < actual.size(); ++i) {
    if (std::isnan(expected[i]) && std::isnan(actual[i]))
      continue;
    ASSERT_LE(std::fabs(actual[i] - expected[i]),
              tol * (1.0 + std::fabs(expected[i])))
        << what << " differs at flat index " << i << ": " << actual[i] << " vs "
        << expected[i];
  }
}

void expectSameResult(const Result &actual, const Result &expected,
                      double tol) {
  expectAllNear(actual.out, expected.out, tol, "out");
  expectAllNear(actual.mu, expected.mu, tol, "mu");
  expectAllNear(actual.F, expected.F, tol, "F");
  expectAllNear(actual.M, expected.M, tol, "M");
}

std::string priorParamName(const ::testing::TestParamInfo<Prior> &info) {
  return femc::ref::priorName(info.param);
}

//===----------------------------------------------------------------------===//
// Hand-computed cases.
//===----------------------------------------------------------------------===//

/// softmax, T = S = 2, dk = 3, dv = 2, causal and not: every number from the
/// formulas, including the scale 1/sqrt(dk) (not dv), the gate and M.
TEST(ReferenceHandTest, SoftmaxT2) {
  for (bool causal : {true, false}) {
    Case c(makeProblem(Prior::Softmax, causal, 1, 2, 1, 3, 2));
    c["q"] = {0.5f, -1.0f, 2.0f, 1.0f, 0.25f, -0.5f};
    c["k"] = {0.3f, 0.8f, -0.2f, -1.2f, 0.4f, 0.9f};
    c["v"] = {1.5f, -0.7f, -2.0f, 0.4f};
    c["beta_raw"] = {0.3f, -0.5f};
    c["lam"] = {0.2f, -1.0f, 1.5f, 0.0f};
    c["gate"] = {0.7f, -0.3f, -1.1f, 2.0f};
    Result r = c.run();

    auto q = [&](int t, int i) { return double(c.at("q", {0, t, 0, i})); };
    auto k = [&](int s, int i) { return double(c.at("k", {0, s, 0, i})); };
    auto v = [&](int s, int ch) { return double(c.at("v", {0, s, 0, ch})); };
    for (int t = 0; t < 2; ++t) {
      // Visible keys and their softmax weights.
      int visible = causal ? t + 1 : 2;
      std::vector<double> weight(visible);
      double sum = 0.0;
      for (int s = 0; s < visible; ++s) {
        double logit =
            (q(t, 0) * k(s, 0) + q(t, 1) * k(s, 1) + q(t, 2) * k(s, 2)) /
            std::sqrt(3.0);
        weight[s] = std::exp(logit);
        sum += weight[s];
      }
      std::vector<double> gate =
          gateOf({c.at("gate", {0, t, 0, 0}), c.at("gate", {0, t, 0, 1})});
      for (int ch = 0; ch < 2; ++ch) {
        double beta = betaOf(c["beta_raw"][ch]);
        double mu = 0.0, readOfExp = 0.0;
        for (int s = 0; s < visible; ++s) {
          mu += weight[s] / sum * v(s, ch);
          readOfExp += weight[s] / sum * std::exp(beta * v(s, ch));
        }
        double F = freeEnergy(beta, readOfExp);
        double lambda = sigmoid(c.at("lam", {0, t, 0, ch}));
        double out = gate[ch] * ((1 - lambda) * mu + lambda * F);
        int64_t i = outIndex(c.p, 0, t, 0, ch);
        EXPECT_NEAR(r.mu[i], mu, 1e-12) << "t=" << t << " c=" << ch;
        EXPECT_NEAR(r.F[i], F, 1e-12) << "t=" << t << " c=" << ch;
        EXPECT_NEAR(r.out[i], out, 1e-12) << "t=" << t << " c=" << ch;
        if (t == 0) {
          double M = std::max(beta * v(0, ch), beta * v(1, ch));
          EXPECT_NEAR(r.M[ch], M, 1e-12);
        }
      }
    }
  }
}

/// The clip bounds beta * V~ to [-cap, cap] and applies to both reads.
TEST(ReferenceHandTest, ClipAppliesToBothReads) {
  Case c(makeProblem(Prior::Softmax, true, 1, 1, 1, 1, 2));
  c["q"] = {1.0f};
  c["k"] = {1.0f};
  c["v"] = {100.0f, -250.0f};
  c["beta_raw"] = {0.5f, 1.0f};
  c.p.cap = 30.0;
  Result r = c.run();
  for (int ch = 0; ch < 2; ++ch) {
    double beta = betaOf(c["beta_raw"][ch]);
    double clipped = (ch == 0 ? 1 : -1) * 30.0 / beta;
    EXPECT_NEAR(r.mu[ch], clipped, 1e-12);
    EXPECT_NEAR(r.F[ch], clipped, 1e-12);
    EXPECT_NEAR(r.M[ch], ch == 0 ? 30.0 : -30.0, 1e-12);
  }
}

/// The log restore keeps a floor of tiny = 2^-126: with cap = 200 a value
/// clipped to -200/beta has e^(beta V~) = e^-200, far below tiny, so
/// F = log(e^-200 + tiny)/beta ~ log(tiny)/beta, not V~. Where X underflows
/// to 0 in double (cap = 1e4 and M = 500 from a later key), Z = 0 and
/// log Z = -inf, so F = log(tiny)/beta exactly.
TEST(ReferenceHandTest, LogRestoreFloorsAtTiny) {
  Case c(makeProblem(Prior::Softmax, true, 1, 2, 1, 1, 1));
  c.p.cap = 200.0;
  c["q"] = {1.0f, 1.0f};
  c["k"] = {1.0f, 1.0f};
  c["v"] = {-1000.0f, -1000.0f};
  c["beta_raw"] = {1.0f};
  Result r = c.run();
  double beta = betaOf(1.0);
  EXPECT_NEAR(r.mu[0], -200.0 / beta, 1e-12);
  EXPECT_NEAR(r.F[0], std::log(std::exp(-200.0) + kTiny) / beta, 1e-12);
  EXPECT_GT(r.F[0] - r.mu[0], 100.0 / beta);

  c.p.cap = 1e4;
  c["v"] = {-5.0f, 5.0f};
  c["beta_raw"] = {100.0f}; // beta = 100 + eps: M = 500, X_0 = e^-1000 = 0.
  r = c.run();
  beta = 100.0 + kEps;
  EXPECT_NEAR(r.M[0], 5.0 * beta, 1e-9);
  EXPECT_NEAR(r.F[0], std::log(kTiny) / beta, 1e-12);
  EXPECT_EQ(r.mu[0], -5.0);
}

/// linear, T = 2, dk = dv = 2: phi = relu + eps and the max(sum, eps) floor.
TEST(ReferenceHandTest, LinearT2) {
  Case c(makeProblem(Prior::Linear, true, 1, 2, 1, 2, 2));
  c["q"] = {0.5f, -1.0f, 2.0f, 0.25f};
  c["k"] = {1.5f, 0.5f, -0.5f, 3.0f};
  c["v"] = {1.0f, -2.0f, 0.5f, 3.0f};
  c["beta_raw"] = {0.0f, 1.0f};
  c["gate"] = {0.0f, 0.0f, 1.0f, -1.0f};
  c["lam"] = {0.0f, 0.0f, 2.0f, -2.0f};
  Result r = c.run();
  auto w = [&](int t, int s) {
    return phi(c.at("q", {0, t, 0, 0})) * phi(c.at("k", {0, s, 0, 0})) +
           phi(c.at("q", {0, t, 0, 1})) * phi(c.at("k", {0, s, 0, 1}));
  };
  for (int t = 0; t < 2; ++t) {
    std::vector<double> gate =
        gateOf({c.at("gate", {0, t, 0, 0}), c.at("gate", {0, t, 0, 1})});
    for (int ch = 0; ch < 2; ++ch) {
      double beta = betaOf(c["beta_raw"][ch]);
      double sum = 0.0, mu = 0.0, readOfExp = 0.0;
      for (int s = 0; s <= t; ++s) {
        double value = c.at("v", {0, s, 0, ch});
        sum += w(t, s);
        mu += w(t, s) * value;
        readOfExp += w(t, s) * std::exp(beta * value);
      }
      mu /= std::max(sum, kEps);
      readOfExp /= std::max(sum, kEps);
      double F = freeEnergy(beta, readOfExp);
      double lambda = sigmoid(c.at("lam", {0, t, 0, ch}));
      int64_t i = outIndex(c.p, 0, t, 0, ch);
      EXPECT_NEAR(r.mu[i], mu, 1e-12);
      EXPECT_NEAR(r.F[i], F, 1e-12);
      EXPECT_NEAR(r.out[i], gate[ch] * ((1 - lambda) * mu + lambda * F), 1e-12);
    }
  }
}

/// linear with all-negative q and k: every weight is dk * eps^2, the sum is
/// below eps, so the normaliser is the eps floor and mu shrinks.
TEST(ReferenceHandTest, LinearEpsFloor) {
  Case c(makeProblem(Prior::Linear, false, 1, 2, 1, 2, 1));
  c["q"] = {-1.0f, -2.0f, -3.0f, -4.0f};
  c["k"] = {-1.0f, -1.0f, -5.0f, -0.5f};
  c["v"] = {2.0f, 3.0f};
  c["beta_raw"] = {1.0f};
  Result r = c.run();
  double w = 2 * kEps * kEps; // Each key's weight.
  for (int t = 0; t < 2; ++t)
    EXPECT_NEAR(r.mu[t], w * (2.0 + 3.0) / kEps, 1e-18); // = 1e-5.
}

/// gla, T = 3, with a decay that drives the cumulative sum past -60: C is
/// clamped to -60, after which the decay stops (quirk), and the normaliser
/// adds 1e-5.
TEST(ReferenceHandTest, GlaDecayStopsAtMinus60) {
  Case c(makeProblem(Prior::Gla, true, 1, 3, 1, 2, 1));
  c["q"] = {0.5f, 1.0f, 2.0f, -1.0f, 1.5f, 0.5f};
  c["k"] = {1.0f, 0.5f, 0.25f, 2.0f, -1.0f, 1.0f};
  c["v"] = {1.0f, -2.0f, 0.5f};
  c["beta_raw"] = {0.5f};
  c["decay"] = {0.5f, 100.0f, 3.0f};
  Result r = c.run();

  // a = -(relu(decay) + eps); C = clamp(cumsum(a), -60, 50), by hand:
  // cumsum = -0.500001, -100.500002, -103.500003.
  const double C[3] = {-0.500001, -60.0, -60.0};
  auto dot = [&](int t, int s) {
    return phi(c.at("q", {0, t, 0, 0})) * phi(c.at("k", {0, s, 0, 0})) +
           phi(c.at("q", {0, t, 0, 1})) * phi(c.at("k", {0, s, 0, 1}));
  };
  double beta = betaOf(c["beta_raw"][0]);
  for (int t = 0; t < 3; ++t) {
    double sum = 0.0, mu = 0.0, readOfExp = 0.0;
    for (int s = 0; s <= t; ++s) {
      double w = std::exp(C[t] - C[s]) * dot(t, s);
      double value = c["v"][s];
      sum += w;
      mu += w * value;
      readOfExp += w * std::exp(beta * value);
    }
    EXPECT_NEAR(r.mu[t], mu / (sum + 1e-5), 1e-12) << "t=" << t;
    EXPECT_NEAR(r.F[t], freeEnergy(beta, readOfExp / (sum + 1e-5)), 1e-12)
        << "t=" << t;
  }
  // Row 2 weighs key 1 with exp(0) = 1 (not exp(-3.000001)), so mu_2 is the
  // dot-weighted mean of keys 1 and 2 (key 0 weighs e^-59.5).
  double w21 = dot(2, 1), w22 = dot(2, 2);
  EXPECT_NEAR(r.mu[2], (w21 * -2.0 + w22 * 0.5) / (w21 + w22 + 1e-5), 1e-12);
}

/// gla's 1e-5 is added to the weight sum, not a clamp: with tiny weights
/// the read is far from a convex average.
TEST(ReferenceHandTest, GlaOffsetIsAdded) {
  Case c(makeProblem(Prior::Gla, true, 1, 1, 1, 2, 1));
  c["q"] = {-1.0f, -1.0f};
  c["k"] = {-1.0f, -1.0f};
  c["v"] = {3.0f};
  c["beta_raw"] = {1.0f};
  c["decay"] = {0.0f};
  Result r = c.run();
  double w = 2 * kEps * kEps;
  EXPECT_NEAR(r.mu[0], w * 3.0 / (w + 1e-5), 1e-18);
  EXPECT_LT(std::fabs(r.mu[0]), 1e-6);
}

/// aft, T = 2, dk = dv = 2 (W = 4): q^ tiles q over W and normalises over
/// all W entries; kmax runs over both keys.
TEST(ReferenceHandTest, AftT2) {
  Case c(makeProblem(Prior::Aft, true, 1, 2, 1, 2, 2));
  c["q"] = {0.5f, -1.0f, 2.0f, 0.25f};
  c["k"] = {1.0f, -0.5f, -2.0f, 1.5f};
  c["v"] = {1.0f, -2.0f, 0.5f, 3.0f};
  c["beta_raw"] = {0.0f, 1.0f};
  Result r = c.run();
  auto k = [&](int s, int i) { return double(c.at("k", {0, s, 0, i})); };
  double kmax[2] = {std::max(k(0, 0), k(1, 0)), std::max(k(0, 1), k(1, 1))};
  for (int t = 0; t < 2; ++t) {
    double p0 = softplus(c.at("q", {0, t, 0, 0})) + kEps;
    double p1 = softplus(c.at("q", {0, t, 0, 1})) + kEps;
    double norm = std::sqrt(2 * (p0 * p0 + p1 * p1)); // Over W = 4 entries.
    double qHat[2] = {p0 / norm * 2.0, p1 / norm * 2.0};
    for (int ch = 0; ch < 2; ++ch) {
      double beta = betaOf(c["beta_raw"][ch]);
      double num = 0.0, den = 0.0, numExp = 0.0;
      for (int s = 0; s <= t; ++s) {
        double kappa = std::exp(k(s, ch) - kmax[ch]) + kEps;
        double value = c.at("v", {0, s, 0, ch});
        num += kappa * value;
        numExp += kappa * std::exp(beta * value);
        den += kappa;
      }
      int64_t i = outIndex(c.p, 0, t, 0, ch);
      EXPECT_NEAR(r.mu[i], qHat[ch] * num / den, 1e-12);
      EXPECT_NEAR(r.F[i], freeEnergy(beta, qHat[ch] * numExp / den), 1e-12);
    }
  }
}

/// aft with dk = 2 < dv = 4: value channel j uses q/k channel j mod dk.
TEST(ReferenceHandTest, AftTilesQueryChannels) {
  Case c(makeProblem(Prior::Aft, true, 1, 1, 1, 2, 4));
  c["q"] = {0.5f, -1.0f};
  c["k"] = {0.3f, 0.7f};
  c["v"] = {1.0f, 1.0f, 1.0f, 1.0f};
  c["beta_raw"] = {0.0f, 0.0f, 0.0f, 0.0f};
  Result r = c.run();
  // One key: mu = q^ * v = q^. p tiles as [p0, p1, p0, p1] over dv and again
  // over the X half: the norm runs over W = 8 entries.
  double p0 = softplus(0.5) + kEps, p1 = softplus(-1.0) + kEps;
  double norm = std::sqrt(4 * (p0 * p0 + p1 * p1));
  double expected[4] = {p0, p1, p0, p1};
  for (int ch = 0; ch < 4; ++ch)
    EXPECT_NEAR(r.mu[ch], expected[ch] / norm * std::sqrt(8.0), 1e-12);
}

/// aft's kmax sees future keys (quirk): a huge key at s = 2 turns row 1's
/// weights into eps each, i.e. a plain average.
TEST(ReferenceHandTest, AftKmaxSeesFutureKeys) {
  Case c(makeProblem(Prior::Aft, true, 1, 3, 1, 2, 2));
  c.randomize(11);
  Result before = c.run();
  c.at("k", {0, 2, 0, 0}) = 40.0f;
  c.at("k", {0, 2, 0, 1}) = 40.0f;
  Result after = c.run();
  for (int ch = 0; ch < 2; ++ch) {
    // Row 0 reads one key: q^ * V~ whatever kmax is.
    EXPECT_NEAR(after.mu[outIndex(c.p, 0, 0, 0, ch)],
                before.mu[outIndex(c.p, 0, 0, 0, ch)], 1e-12);
    // Row 1: kappa_s = exp(k_s - 40) + eps ~ eps.
    double p0 = softplus(c.at("q", {0, 1, 0, 0})) + kEps;
    double p1 = softplus(c.at("q", {0, 1, 0, 1})) + kEps;
    double qHat = (ch == 0 ? p0 : p1) / std::sqrt(2 * (p0 * p0 + p1 * p1)) * 2;
    double kappa0 = std::exp(c.at("k", {0, 0, 0, ch}) - 40.0) + kEps;
    double kappa1 = std::exp(c.at("k", {0, 1, 0, ch}) - 40.0) + kEps;
    double v0 = c.at("v", {0, 0, 0, ch}), v1 = c.at("v", {0, 1, 0, ch});
    double mu = qHat * (kappa0 * v0 + kappa1 * v1) / (kappa0 + kappa1);
    int64_t i = outIndex(c.p, 0, 1, 0, ch);
    EXPECT_NEAR(after.mu[i], mu, 1e-12);
    EXPECT_NEAR(after.mu[i], qHat * (v0 + v1) / 2, 1e-6);
    EXPECT_GT(std::fabs(after.mu[i] - before.mu[i]), 1e-3)
        << "row 1 should depend on the future key through kmax";
  }
}

/// ssm, T = 2, N = 2: the scan of the squashed value, normalised by the scan
/// of 1 (whose D term counts too).
TEST(ReferenceHandTest, SsmT2) {
  Problem p = makeProblem(Prior::Ssm, true, 1, 2, 1, 1, 1);
  p.N = 2;
  Case c(p);
  c["v"] = {0.7f, -1.3f};
  c["beta_raw"] = {0.5f};
  c["delta"] = {0.3f, 0.6f};
  c["A"] = {-0.5f, -1.5f};
  c["Bs"] = {1.0f, 0.5f, 2.0f, 0.25f};
  c["Cs"] = {0.75f, 1.5f, 0.5f, 1.25f};
  c["D"] = {0.4f};
  c["gate"] = {0.3f, -0.2f};
  c["lam"] = {0.5f, -0.5f};
  Result r = c.run();

  double beta = betaOf(c["beta_raw"][0]);
  double d[2] = {c["delta"][0], c["delta"][1]};
  double A[2] = {c["A"][0], c["A"][1]};
  auto Bs = [&](int t, int n) { return double(c.at("Bs", {0, t, n})); };
  auto Cs = [&](int t, int n) { return double(c.at("Cs", {0, t, n})); };
  double D = c["D"][0];
  auto scan = [&](double u0, double u1, double y[2]) {
    double x0[2], x1[2];
    for (int n = 0; n < 2; ++n) {
      x0[n] = d[0] * Bs(0, n) * u0;
      x1[n] = std::exp(d[1] * A[n]) * x0[n] + d[1] * Bs(1, n) * u1;
    }
    y[0] = Cs(0, 0) * x0[0] + Cs(0, 1) * x0[1] + D * u0;
    y[1] = Cs(1, 0) * x1[0] + Cs(1, 1) * x1[1] + D * u1;
  };
  double u0 = sigmoid(c["v"][0]), u1 = sigmoid(c["v"][1]);
  double yV[2], yOne[2], yExp[2];
  scan(u0, u1, yV);
  scan(1.0, 1.0, yOne);
  scan(std::exp(beta * u0), std::exp(beta * u1), yExp);
  for (int t = 0; t < 2; ++t) {
    double mu = yV[t] / yOne[t];
    double F = freeEnergy(beta, yExp[t] / yOne[t]);
    double g = gateOf({c["gate"][t]})[0]; // = 1 for dv = 1.
    double lambda = sigmoid(c["lam"][t]);
    EXPECT_NEAR(r.mu[t], mu, 1e-12) << "t=" << t;
    EXPECT_NEAR(r.F[t], F, 1e-12) << "t=" << t;
    EXPECT_NEAR(r.out[t], g * ((1 - lambda) * mu + lambda * F), 1e-12);
  }
  EXPECT_NEAR(r.mu[0], u0, 1e-15); // At T = 1 the read returns V~ exactly.
  EXPECT_NEAR(r.M[0], beta * std::max(u0, u1), 1e-12);
}

//===----------------------------------------------------------------------===//
// Limits in beta and lambda.
//===----------------------------------------------------------------------===//

class ReferencePriorTest : public ::testing::TestWithParam<Prior> {};

/// The priors that read keys (all but ssm).
class ReferenceKeyPriorTest : public ::testing::TestWithParam<Prior> {};

/// beta -> 0 (beta_raw = -30 gives beta = eps + 1e-13): F = log(R(e^(beta
/// V~)))/beta -> log(R(1))/beta + mu/R(1), with the read mass R(1) worked
/// out here: 1 for softmax, linear (sum >= eps) and ssm; sum/(sum + 1e-5)
/// for gla; q^ for aft. Softmax, linear and ssm therefore give F ~ mu.
TEST_P(ReferencePriorTest, BetaToZero) {
  Prior prior = GetParam();
  Problem p = makeProblem(prior, true, 1, 4, 1, 2, 2);
  Case c(p);
  c.randomize(3);
  femc::Rng rng(5);
  rng.fillUniform(c["v"], -1.0, 1.0); // Var <= 1: F - mu ~ beta Var / 2.
  for (float &raw : c["beta_raw"])
    raw = -30.0f;
  Result r = c.run();

  auto featureDot = [&](int t, int s) {
    return phi(c.at("q", {0, t, 0, 0})) * phi(c.at("k", {0, s, 0, 0})) +
           phi(c.at("q", {0, t, 0, 1})) * phi(c.at("k", {0, s, 0, 1}));
  };
  for (int t = 0; t < 4; ++t) {
    for (int ch = 0; ch < 2; ++ch) {
      double mass = 1.0;
      if (prior == Prior::Linear) {
        double sum = 0.0;
        for (int s = 0; s <= t; ++s)
          sum += featureDot(t, s);
        mass = sum / std::max(sum, kEps);
      } else if (prior == Prior::Gla) {
        double C[4], cumulative = 0.0;
        for (int u = 0; u < 4; ++u) {
          cumulative -= std::max(double(c.at("decay", {0, u, 0})), 0.0) + kEps;
          C[u] = std::clamp(cumulative, -60.0, 50.0);
        }
        double sum = 0.0;
        for (int s = 0; s <= t; ++s)
          sum += std::exp(C[t] - C[s]) * featureDot(t, s);
        mass = sum / (sum + 1e-5);
      } else if (prior == Prior::Aft) {
        double p0 = softplus(c.at("q", {0, t, 0, 0})) + kEps;
        double p1 = softplus(c.at("q", {0, t, 0, 1})) + kEps;
        mass = (ch == 0 ? p0 : p1) / std::sqrt(2 * (p0 * p0 + p1 * p1)) * 2;
      }
      double beta = betaOf(-30.0);
      int64_t i = outIndex(c.p, 0, t, 0, ch);
      EXPECT_NEAR(r.F[i], std::log(mass) / beta + r.mu[i] / mass, 1e-6)
          << "t=" << t << " c=" << ch << " read mass " << mass;
      if (mass == 1.0) {
        EXPECT_NEAR(r.F[i], r.mu[i], 1e-6);
      }
    }
  }
}

/// F where log Z lies within 1e-16 of 0, for every prior, one-shot and (the
/// scan priors) from the empty state in their recurrent form. A double Z
/// keeps 1e-16 of Z - 1; log Z = log R(1) + log1p(R(X - 1) / R(1)) keeps
/// log Z's own digits, which F = (log Z + M) / beta needs:
///  - a tiny spread at beta ~ 1: values ~1e-30 (ssm: v ~ -50, sigmoid(v)
///    ~ 2e-22), so every X - 1 lies below 1e-16: F ~ mu, where log of a
///    double Z (= 1) gave F = max V~ (helper C's ssm case: 0.755 max|out|);
///  - beta ~ 1e-14 (eps = 1e-14, beta_raw = -40), values ~1: F =
///    log(R(1)) / beta + mu / R(1) up to beta Var ~ 1e-14, where log of a
///    double Z left ~1e-2.
/// R(1), worked out here, is 1 but for linear where sum w < eps (sum /
/// eps) and gla (sum / (sum + 1e-5); features ~1e4 keep log(R(1)) / beta
/// ~ 1, and at beta ~ 1 it hides mu: no tiny spread case); aft takes q = 0
/// (q^ = 1) and dk = 1, so that mu and Z read the same keys' weights.
TEST_P(ReferencePriorTest, SmallLogZ) {
  Prior prior = GetParam();
  for (bool tinyBeta : {false, true})
    for (bool hasState : {false, true}) {
      if ((hasState && prior == Prior::Softmax) ||
          (!tinyBeta && prior == Prior::Gla))
        continue;
      SCOPED_TRACE(std::string(tinyBeta ? "beta ~ 1e-14" : "tiny spread") +
                   (hasState ? ", from the empty state" : ""));
      Problem p = makeProblem(prior, true, 1, 6, 1, 1, 3);
      p.hasState = hasState;
      p.eps = tinyBeta ? 1e-14 : kEps;
      Case c(p);
      c.randomize(29);
      if (hasState)
        std::fill(c["state"].begin(), c["state"].end(), 0.0f);
      femc::Rng rng(31);
      if (prior == Prior::Ssm && !tinyBeta)
        rng.fillUniform(c["v"], -50.5, -49.5);
      else
        rng.fillUniform(c["v"], -1.0, 1.0);
      for (float &value : c["v"])
        value *= tinyBeta || prior == Prior::Ssm ? 1.0f : 1e-30f;
      std::fill(c["beta_raw"].begin(), c["beta_raw"].end(),
                tinyBeta ? -40.0f : 0.0f);
      if (prior == Prior::Aft)
        std::fill(c["q"].begin(), c["q"].end(), 0.0f);
      if (prior == Prior::Gla) {
        rng.fillUniform(c["q"], 1e4, 2e4);
        rng.fillUniform(c["k"], 1e4, 2e4);
      }
      Result r = c.run();

      double beta = softplus(tinyBeta ? -40.0 : 0.0) + p.eps;
      double scale = 0.0;
      for (double mu : r.mu)
        scale = std::max(scale, std::fabs(mu));
      ASSERT_GT(scale, 0.0);
      std::vector<double> C(p.T);
      double cumulative = 0.0;
      for (int64_t u = 0; u < p.T && prior == Prior::Gla; ++u) {
        cumulative -= std::max(double(c.at("decay", {0, u, 0})), 0.0) + p.eps;
        C[u] = std::clamp(cumulative, -60.0, 50.0);
      }
      for (int64_t t = 0; t < p.T; ++t) {
        double logMass = 0.0;
        if (prior == Prior::Linear || prior == Prior::Gla) {
          double sum = 0.0;
          for (int64_t s = 0; s <= t; ++s) {
            double dot = 0.0;
            for (int64_t d = 0; d < p.dk; ++d)
              dot += (std::max(double(c.at("q", {0, t, 0, d})), 0.0) + p.eps) *
                     (std::max(double(c.at("k", {0, s, 0, d})), 0.0) + p.eps);
            sum += std::exp(C[t] - C[s]) * dot; // C = 0 for linear
          }
          logMass = prior == Prior::Gla ? -std::log1p(1e-5 / sum)
                                        : std::log(sum / std::max(sum, p.eps));
        }
        for (int64_t ch = 0; ch < p.dv; ++ch) {
          int64_t i = outIndex(p, 0, t, 0, ch);
          // and the tiny floor, log(1 + tiny e^-M / Z) / beta ~ tiny / beta
          // (1.7e-38 at beta ~ 1: 1e-8 of the tiny spread's F)
          double want = logMass / beta + r.mu[i] / std::exp(logMass) +
                        kTiny / (beta * std::exp(logMass));
          EXPECT_NEAR(r.F[i], want, 1e-9 * (scale + std::fabs(logMass / beta)))
              << "t=" << t << " c=" << ch
              << ": F - mu / R(1) = " << r.F[i] - r.mu[i] / std::exp(logMass);
        }
      }
    }
}

/// lambda = 0 (lam = -inf or a large negative logit) gives out = g * mu;
/// lambda = 1 (lam = +inf) gives out = g * F.
TEST_P(ReferencePriorTest, LambdaLimits) {
  for (float lam : {-std::numeric_limits<float>::infinity(), -200.0f,
                    std::numeric_limits<float>::infinity()}) {
    Case c(makeProblem(GetParam()));
    c.randomize(17);
    for (float &value : c["lam"])
      value = lam;
    Result r = c.run();
    const Problem &p = c.p;
    for (int64_t b = 0; b < p.B; ++b)
      for (int64_t t = 0; t < p.T; ++t)
        for (int64_t h = 0; h < p.H; ++h) {
          std::vector<double> logits;
          for (int64_t ch = 0; ch < p.dv; ++ch)
            logits.push_back(c.at("gate", {b, t, h, ch}));
          std::vector<double> g = gateOf(logits);
          for (int64_t ch = 0; ch < p.dv; ++ch) {
            int64_t i = outIndex(p, b, t, h, ch);
            double read = lam > 0 ? r.F[i] : r.mu[i];
            EXPECT_NEAR(r.out[i], g[ch] * read, 1e-12 * (1 + std::fabs(read)));
          }
        }
  }
}

/// The gate is normalised per head: with V~ = 1 everywhere, mu = F = 1 and
/// out = g, whose squared norm over the dv channels is dv.
TEST(ReferenceGateTest, SquaredNormIsDv) {
  Case c(makeProblem(Prior::Softmax, true, 2, 3, 2, 4, 8));
  c.randomize(23);
  femc::Rng rng(29);
  rng.fillUniform(c["gate"], -5.0, 5.0);
  for (float &value : c["v"])
    value = 1.0f;
  Result r = c.run();
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t t = 0; t < 3; ++t)
      for (int64_t h = 0; h < 2; ++h) {
        double squares = 0.0;
        for (int64_t ch = 0; ch < 8; ++ch)
          squares += std::pow(r.out[outIndex(c.p, b, t, h, ch)], 2);
        EXPECT_NEAR(squares, 8.0, 1e-12);
      }
}

/// Below norm 1e-5 the gate is floored: g = g+ / 1e-5 * sqrt(dv).
TEST(ReferenceGateTest, NormFloor) {
  Case c(makeProblem(Prior::Softmax, true, 1, 1, 1, 1, 4));
  c.randomize(31);
  for (float &value : c["v"])
    value = 1.0f;
  for (float &value : c["gate"])
    value = -40.0f; // g+ = softplus(-40) + eps ~ 1e-6; norm 2e-6 < 1e-5.
  Result r = c.run();
  double gPlus = softplus(-40.0) + kEps;
  for (int ch = 0; ch < 4; ++ch)
    EXPECT_NEAR(r.out[ch], gPlus / 1e-5 * 2.0, 1e-12);
}

/// Huge logits favouring one visible key make the softmax one-hot: mu and F
/// both return that key's (clipped) value.
TEST(ReferenceSoftmaxTest, OneHotReturnsThatKey) {
  for (bool causal : {true, false}) {
    Case c(makeProblem(Prior::Softmax, causal, 1, 5, 1, 4, 3));
    c.randomize(37);
    int favoured = causal ? 0 : 3;
    for (int t = 0; t < 5; ++t)
      for (int i = 0; i < 4; ++i) {
        c.at("q", {0, t, 0, i}) = i == 0 ? 30.0f : 0.0f;
        c.at("k", {0, t, 0, i}) = i == 0 && t == favoured ? 30.0f : 0.0f;
      }
    Result r = c.run();
    for (int t = 0; t < 5; ++t)
      for (int ch = 0; ch < 3; ++ch) {
        double value = c.at("v", {0, favoured, 0, ch});
        int64_t i = outIndex(c.p, 0, t, 0, ch);
        EXPECT_NEAR(r.mu[i], value, 1e-12) << "t=" << t;
        EXPECT_NEAR(r.F[i], value, 1e-12) << "t=" << t;
      }
  }
}

/// Large beta: F approaches the per-channel max of V~ over the *visible*
/// keys (not the M of all keys). Bounds: max + log(alpha*)/beta <= F <= max,
/// alpha* the softmax mass of the keys attaining the max. With cap = 40 the
/// clip bounds V~ at 40/beta = 0.04; with cap = 400 the values in
/// [-0.3, 0.3] are not clipped and beta * V~ stays within [-300, 300], so X
/// does not underflow in double (cap is meant to keep it from doing so).
TEST(ReferenceSoftmaxTest, LargeBetaApproachesVisibleMax) {
  for (double cap : {40.0, 400.0})
    for (bool causal : {true, false}) {
      Case c(makeProblem(Prior::Softmax, causal, 1, 6, 1, 4, 4));
      c.p.cap = cap;
      c.randomize(41);
      femc::Rng rng(43);
      rng.fillNormal(c["q"], 0.0, 0.5);
      rng.fillNormal(c["k"], 0.0, 0.5);
      rng.fillUniform(c["v"], -0.3, 0.3);
      for (float &raw : c["beta_raw"])
        raw = 1000.0f; // beta = 1000 + eps (softplus(x) = x above 20).
      Result r = c.run();
      double beta = 1000.0 + kEps;
      for (int t = 0; t < 6; ++t) {
        int visible = causal ? t + 1 : 6;
        std::vector<double> alpha(visible);
        double sum = 0.0;
        for (int s = 0; s < visible; ++s) {
          double logit = 0.0;
          for (int i = 0; i < 4; ++i)
            logit += double(c.at("q", {0, t, 0, i})) * c.at("k", {0, s, 0, i});
          alpha[s] = std::exp(logit / 2.0);
          sum += alpha[s];
        }
        for (int ch = 0; ch < 4; ++ch) {
          std::vector<double> clipped(visible);
          for (int s = 0; s < visible; ++s)
            clipped[s] = std::clamp(double(c.at("v", {0, s, 0, ch})),
                                    -cap / beta, cap / beta);
          double top = *std::max_element(clipped.begin(), clipped.end());
          double topMass = 0.0;
          for (int s = 0; s < visible; ++s)
            if (clipped[s] == top)
              topMass += alpha[s] / sum;
          // F = (1/beta) log(sum_s alpha_s e^(beta V~_s) + tiny) lies
          // between the top keys' share alone and all mass on the top.
          double upper = freeEnergy(beta, std::exp(beta * top));
          double lower = freeEnergy(beta, topMass * std::exp(beta * top));
          double F = r.F[outIndex(c.p, 0, t, 0, ch)];
          EXPECT_LE(F, upper + 1e-12) << "t=" << t << " c=" << ch;
          EXPECT_GE(F, lower - 1e-12) << "t=" << t << " c=" << ch;
          EXPECT_LT(upper - lower, 0.01); // The bounds are tight.
          // The tiny in the log restore floors F at log(tiny)/beta = -0.087;
          // away from that floor the upper bound is the max itself.
          if (beta * top > -70.0) {
            EXPECT_NEAR(upper, top, 1e-9);
          }
        }
      }
    }
}

//===----------------------------------------------------------------------===//
// Causality, permutations, masks.
//===----------------------------------------------------------------------===//

/// Causal rows never read later keys: changing everything at positions
/// > cut (keys, values, queries, decays, ssm inputs, gate logits) leaves rows
/// <= cut unchanged. M does change: it sees future keys (quirk), but it
/// cancels in F up to rounding. For aft only row 0 is independent: kmax
/// also sees future keys (quirk) and with the unscaled +eps that changes
/// rows >= 1 (see AftKmaxSeesFutureKeys); row 0 reads q^ * V~_0 exactly.
TEST_P(ReferencePriorTest, CausalRowsIgnoreLaterPositions) {
  Prior prior = GetParam();
  std::vector<int> cuts = {0};
  if (prior != Prior::Aft)
    cuts.push_back(2);
  for (int cut : cuts) {
    Case c(makeProblem(prior, true, 2, 5, 2, 4, 4));
    c.randomize(47);
    Result before = c.run();
    femc::Rng rng(53);
    for (auto &[name, values] : c.data) {
      const std::vector<int64_t> &shape = c.shapes[name];
      // Per-token inputs have time on axis 1 in bthd (ssm's too).
      if (shape.size() < 3 || name == "A")
        continue;
      int64_t time = shape[1];
      int64_t inner = values.size() / (shape[0] * time);
      for (int64_t b = 0; b < shape[0]; ++b)
        for (int64_t t = cut + 1; t < time; ++t)
          for (int64_t i = 0; i < inner; ++i) {
            float &value = values[(b * time + t) * inner + i];
            if (name == "v")
              value += 8.0f; // Raises M (also through ssm's sigmoid).
            else if (name == "delta")
              value = static_cast<float>(rng.uniform(0.05, 0.95));
            else if (name == "Bs" || name == "Cs")
              value = static_cast<float>(rng.uniform(0.05, 3.0));
            else
              value = static_cast<float>(rng.normal());
          }
    }
    Result after = c.run();
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t t = 0; t <= cut; ++t)
        for (int64_t h = 0; h < 2; ++h)
          for (int64_t ch = 0; ch < 4; ++ch) {
            int64_t i = outIndex(c.p, b, t, h, ch);
            EXPECT_NEAR(after.mu[i], before.mu[i], 1e-12);
            EXPECT_NEAR(after.F[i], before.F[i], 1e-12);
            EXPECT_NEAR(after.out[i], before.out[i], 1e-12);
          }
    for (size_t i = 0; i < before.M.size(); ++i)
      EXPECT_GT(after.M[i], before.M[i]) << "M should see the future keys";
  }
}

/// The causal flag is honoured by softmax and linear only: gla, aft and ssm
/// are always causal.
TEST_P(ReferencePriorTest, CausalFlag) {
  Prior prior = GetParam();
  Case causal(makeProblem(prior, true));
  causal.randomize(59);
  Case full = causal;
  full.p.causal = false;
  Result a = causal.run(), b = full.run();
  bool honoured = prior == Prior::Softmax || prior == Prior::Linear;
  double diff = 0.0;
  for (size_t i = 0; i < a.out.size(); ++i)
    diff = std::max(diff, std::fabs(a.out[i] - b.out[i]));
  if (honoured)
    EXPECT_GT(diff, 1e-3);
  else
    EXPECT_EQ(diff, 0.0);
}

/// Non-causal softmax and linear are invariant under a permutation of the
/// keys (k, v and mask permuted together).
TEST(ReferenceKeysTest, NonCausalPermutationInvariance) {
  for (Prior prior : {Prior::Softmax, Prior::Linear})
    for (bool masked : {false, true}) {
      Problem p = makeProblem(prior, false, 2, 4, 2, 3, 2);
      p.S = 7; // Cross-attention: S != T is allowed here.
      p.hasMask = masked;
      Case c(p);
      c.randomize(61);
      if (masked)
        c.mask = {1, 0, 1, 1, 0, 1, 1, /*b=1*/ 0, 1, 1, 0, 1, 1, 0};
      Case permuted = c;
      const int order[7] = {3, 6, 0, 5, 1, 4, 2};
      for (int64_t b = 0; b < 2; ++b)
        for (int s = 0; s < 7; ++s) {
          if (masked)
            permuted.mask[b * 7 + s] = c.mask[b * 7 + order[s]];
          for (int64_t g = 0; g < 2; ++g) {
            for (int i = 0; i < 3; ++i)
              permuted.at("k", {b, s, g, i}) = c.at("k", {b, order[s], g, i});
            for (int ch = 0; ch < 2; ++ch)
              permuted.at("v", {b, s, g, ch}) = c.at("v", {b, order[s], g, ch});
          }
        }
      expectSameResult(permuted.run(), c.run(), 1e-12);
    }
}

/// Masked keys have no effect at all: not on any sum, not on M, even when
/// they hold NaN or huge values; a non-causal masked run equals the run on
/// the kept keys alone.
TEST(ReferenceMaskTest, MaskedKeysHaveNoEffect) {
  for (Prior prior : {Prior::Softmax, Prior::Linear})
    for (bool causal : {true, false}) {
      Problem p = makeProblem(prior, causal, 1, 6, 2, 3, 2);
      p.hasMask = true;
      Case c(p);
      c.randomize(67);
      c.mask = {1, 0, 1, 1, 0, 1};
      Result base = c.run();

      Case poisoned = c;
      for (int s : {1, 4})
        for (int64_t g = 0; g < 2; ++g) {
          for (int i = 0; i < 3; ++i)
            poisoned.at("k", {0, s, g, i}) = 1e30f;
          for (int ch = 0; ch < 2; ++ch)
            poisoned.at("v", {0, s, g, ch}) =
                std::numeric_limits<float>::quiet_NaN();
        }
      expectSameResult(poisoned.run(), base, 0.0);

      // M is the max over the kept keys only.
      Case huge = c;
      for (int64_t g = 0; g < 2; ++g)
        for (int ch = 0; ch < 2; ++ch)
          huge.at("v", {0, 4, g, ch}) = 1e6f;
      Result hugeResult = huge.run();
      expectSameResult(hugeResult, base, 0.0);
      for (int64_t h = 0; h < 2; ++h)
        for (int ch = 0; ch < 2; ++ch) {
          double beta = betaOf(c["beta_raw"][h * 2 + ch]);
          double top = -kInf;
          for (int s : {0, 2, 3, 5})
            top = std::max(top, beta * c.at("v", {0, s, h, ch}));
          EXPECT_NEAR(hugeResult.M[h * 2 + ch], top, 1e-12);
        }

      if (causal)
        continue;
      // Drop the masked keys: S = 4, no mask.
      Problem q = p;
      q.S = 4;
      q.T = 6;
      q.hasMask = false;
      Case kept(q);
      kept["q"] = c["q"];
      kept["beta_raw"] = c["beta_raw"];
      kept["lam"] = c["lam"];
      kept["gate"] = c["gate"];
      int s2 = 0;
      for (int s : {0, 2, 3, 5}) {
        for (int64_t g = 0; g < 2; ++g) {
          for (int i = 0; i < 3; ++i)
            kept.at("k", {0, s2, g, i}) = c.at("k", {0, s, g, i});
          for (int ch = 0; ch < 2; ++ch)
            kept.at("v", {0, s2, g, ch}) = c.at("v", {0, s, g, ch});
        }
        ++s2;
      }
      expectSameResult(kept.run(), base, 1e-13);
    }
}

/// A row with no visible key reads zeros (mu = F = out = 0); a batch whose
/// keys are all masked has M = 0.
TEST(ReferenceMaskTest, RowsWithoutVisibleKeys) {
  for (Prior prior : {Prior::Softmax, Prior::Linear}) {
    Problem p = makeProblem(prior, true, 2, 4, 1, 2, 2);
    p.hasMask = true;
    Case c(p);
    c.randomize(71);
    c.mask = {0, 0, 1, 1, /*b=1*/ 0, 0, 0, 0};
    Result r = c.run();
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t t = 0; t < 4; ++t)
        for (int64_t ch = 0; ch < 2; ++ch) {
          int64_t i = outIndex(c.p, b, t, 0, ch);
          bool sees = b == 0 && t >= 2;
          if (sees) {
            EXPECT_NE(r.mu[i], 0.0);
            EXPECT_NE(r.out[i], 0.0);
          } else {
            EXPECT_EQ(r.mu[i], 0.0) << "b=" << b << " t=" << t;
            EXPECT_EQ(r.F[i], 0.0) << "b=" << b << " t=" << t;
            EXPECT_EQ(r.out[i], 0.0) << "b=" << b << " t=" << t;
          }
        }
    EXPECT_EQ(r.M[2], 0.0);
    EXPECT_EQ(r.M[3], 0.0);
    EXPECT_NE(r.M[0], 0.0);
  }
}

//===----------------------------------------------------------------------===//
// Layouts and grouped heads.
//===----------------------------------------------------------------------===//

/// (B, X, Y, W) -> (B, Y, X, W), for the float inputs and the double results.
template <typename T>
std::vector<T> swapAxes12(const std::vector<T> &in, int64_t B, int64_t X,
                          int64_t Y, int64_t W) {
  std::vector<T> out(in.size());
  for (int64_t b = 0; b < B; ++b)
    for (int64_t x = 0; x < X; ++x)
      for (int64_t y = 0; y < Y; ++y)
        for (int64_t w = 0; w < W; ++w)
          out[((b * Y + y) * X + x) * W + w] =
              in[((b * X + x) * Y + y) * W + w];
  return out;
}

/// bhtd on transposed data gives the transposed bthd result.
TEST_P(ReferencePriorTest, BhtdMatchesBthd) {
  Problem p = makeProblem(GetParam(), true, 2, 5, 4, 2, 4);
  if (GetParam() != Prior::Ssm)
    p.Hkv = 2;
  Case bthd(p);
  bthd.randomize(73);
  Problem q = p;
  q.layout = Layout::BHTD;
  Case bhtd(q);
  for (auto &[name, values] : bthd.data) {
    if (name == "q" || name == "lam" || name == "gate")
      bhtd[name] = swapAxes12(values, p.B, p.T, p.H, name == "q" ? p.dk : p.dv);
    else if (name == "k" || name == "v")
      bhtd[name] =
          swapAxes12(values, p.B, p.S, p.Hkv, name == "k" ? p.dk : p.dv);
    else if (name == "decay")
      bhtd[name] = swapAxes12(values, p.B, p.T, p.H, 1);
    else
      bhtd[name] = values; // beta_raw and ssm's layout-free inputs.
  }
  Result a = bthd.run(), b = bhtd.run();
  expectAllNear(b.out, swapAxes12(a.out, p.B, p.T, p.H, p.dv), 0.0, "out");
  expectAllNear(b.mu, swapAxes12(a.mu, p.B, p.T, p.H, p.dv), 0.0, "mu");
  expectAllNear(b.F, swapAxes12(a.F, p.B, p.T, p.H, p.dv), 0.0, "F");
  expectAllNear(b.M, a.M, 0.0, "M");
}

/// Grouped heads (H = 4, Hkv = 2) equal the same problem with every kv head
/// duplicated for the query heads that read it.
TEST_P(ReferenceKeyPriorTest, GqaEqualsDuplicatedKvHeads) {
  Problem p = makeProblem(GetParam(), true, 2, 5, 4, 2, 4);
  p.Hkv = 2;
  Case grouped(p);
  grouped.randomize(79);
  Problem q = p;
  q.Hkv = 4;
  Case full(q);
  for (auto &[name, values] : grouped.data)
    if (name != "k" && name != "v")
      full[name] = values;
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t s = 0; s < 5; ++s)
      for (int64_t h = 0; h < 4; ++h) {
        for (int64_t i = 0; i < 2; ++i)
          full.at("k", {b, s, h, i}) = grouped.at("k", {b, s, h / 2, i});
        for (int64_t ch = 0; ch < 4; ++ch)
          full.at("v", {b, s, h, ch}) = grouped.at("v", {b, s, h / 2, ch});
      }
  expectSameResult(grouped.run(), full.run(), 0.0);
}

/// An explicit softmax scale replaces 1/sqrt(dk).
TEST(ReferenceSoftmaxTest, ExplicitScale) {
  Case c(makeProblem(Prior::Softmax, true, 1, 3, 1, 4, 2));
  c.randomize(83);
  Case halved = c;
  halved.p.scale = 0.5; // = 1/sqrt(4): the default.
  expectSameResult(halved.run(), c.run(), 0.0);
  halved.p.scale = 2.0;
  Result r = halved.run(), d = c.run();
  EXPECT_GT(std::fabs(r.mu[outIndex(c.p, 0, 2, 0, 0)] -
                      d.mu[outIndex(c.p, 0, 2, 0, 0)]),
            1e-6);
}

//===----------------------------------------------------------------------===//
// NaN and Inf.
//===----------------------------------------------------------------------===//

/// NaN propagates as the formulas say: a NaN value at a later key poisons M
/// of its channel (M sees all keys), hence F of that channel in every row,
/// but not mu before that key nor any other channel. A NaN query poisons its
/// own row only.
TEST(ReferenceNaNTest, Propagation) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  Case c(makeProblem(Prior::Softmax, true, 2, 4, 2, 3, 2));
  c.randomize(89);
  c.at("v", {0, 3, 0, 1}) = nan;
  c.at("q", {1, 2, 1, 0}) = nan;
  Result r = c.run();
  EXPECT_TRUE(std::isnan(r.M[1]));
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t t = 0; t < 4; ++t)
      for (int64_t h = 0; h < 2; ++h)
        for (int64_t ch = 0; ch < 2; ++ch) {
          int64_t i = outIndex(c.p, b, t, h, ch);
          bool nanChannel = b == 0 && h == 0 && ch == 1;
          bool nanRow = b == 1 && h == 1 && t == 2;
          EXPECT_EQ(std::isnan(r.F[i]), nanChannel || nanRow)
              << b << t << h << ch;
          EXPECT_EQ(std::isnan(r.mu[i]), (nanChannel && t == 3) || nanRow)
              << b << t << h << ch;
          EXPECT_EQ(std::isnan(r.out[i]), nanChannel || nanRow);
        }
}

/// An infinite value is clipped like any large one.
TEST(ReferenceNaNTest, InfiniteValueIsClipped) {
  Case c(makeProblem(Prior::Linear, true, 1, 3, 1, 2, 2));
  c.randomize(97);
  Case large = c;
  c.at("v", {0, 1, 0, 0}) = std::numeric_limits<float>::infinity();
  large.at("v", {0, 1, 0, 0}) = 1e30f;
  Result r = c.run();
  expectSameResult(r, large.run(), 0.0);
  EXPECT_NEAR(r.M[0], 40.0, 1e-12);
}

//===----------------------------------------------------------------------===//
// Validation, names and shapes.
//===----------------------------------------------------------------------===//

struct InvalidCase {
  const char *what;
  Problem problem;
  std::string message;
};

TEST(ReferenceValidateTest, RejectsInconsistentProblems) {
  std::vector<InvalidCase> cases;
  auto add = [&](const char *what, Problem p, std::string message) {
    cases.push_back({what, p, std::move(message)});
  };
  Problem p = makeProblem(Prior::Softmax, true, 2, 4, 4, 4, 4);

  Problem bad = p;
  bad.B = 0;
  add("B", bad, "B: expected >= 1; found 0");
  bad = p;
  bad.Hkv = 3;
  add("Hkv", bad, "Hkv: expected a divisor of H = 4; found Hkv = 3");
  bad = makeProblem(Prior::Aft, true, 2, 4, 4, 3, 4);
  add("aft dk", bad,
      "dk: prior 'aft' needs dk to divide the read width 2 * dv = 8; found "
      "dk = 3");
  bad = p;
  bad.cap = 0.0;
  add("cap", bad, "cap: expected a positive value; found 0");
  bad = p;
  bad.cap = std::nan("");
  add("cap NaN", bad, "cap: expected a positive value; found nan");
  bad = p;
  bad.eps = -1e-6;
  add("eps", bad, "eps: expected a positive finite value; found -1e-06");
  bad = p;
  bad.S = 5;
  add("causal S", bad, "S: causal 'softmax' needs S == T = 4; found S = 5");
  bad = makeProblem(Prior::Gla, false, 2, 4, 4, 4, 4);
  bad.S = 5;
  add("gla S", bad,
      "S: prior 'gla' (always causal) needs S == T = 4; found S = 5");
  bad = makeProblem(Prior::Ssm, true, 2, 4, 4, 4, 4);
  bad.Hkv = 2;
  add("ssm Hkv", bad,
      "Hkv: prior 'ssm' has no keys and needs Hkv == H = 4; found Hkv = 2");
  bad = makeProblem(Prior::Ssm, true, 2, 4, 4, 4, 4);
  bad.N = 0;
  add("ssm N", bad, "N: expected >= 1; found 0");
  bad = makeProblem(Prior::Gla);
  bad.hasMask = true;
  add("mask", bad,
      "hasMask: a key-padding mask is supported by softmax and linear only; "
      "found prior 'gla'");
  bad = makeProblem(Prior::Linear);
  bad.scale = 0.5;
  add("scale", bad,
      "scale: only prior 'softmax' has a logit scale; found it set for prior "
      "'linear'");
  bad = p;
  bad.scale = kInf;
  add("scale inf", bad, "scale: expected a finite value; found inf");

  for (const InvalidCase &c : cases) {
    std::string error;
    EXPECT_FALSE(femc::ref::validate(c.problem, error)) << c.what;
    EXPECT_EQ(error, c.message) << c.what;
  }

  // Non-causal softmax and linear may read S != T keys.
  for (Prior prior : {Prior::Softmax, Prior::Linear}) {
    Problem cross = makeProblem(prior, false, 2, 4, 4, 4, 4);
    cross.S = 9;
    std::string error;
    EXPECT_TRUE(femc::ref::validate(cross, error)) << error;
  }
}

TEST(ReferenceValidateTest, RejectsMissingAndExtraInputs) {
  Problem p = makeProblem(Prior::Softmax);
  Case c(p);
  c.randomize(101);
  std::string error;
  Inputs in = c.inputs();
  EXPECT_TRUE(femc::ref::validate(p, in, error)) << error;

  in.q = nullptr;
  EXPECT_FALSE(femc::ref::validate(p, in, error));
  EXPECT_EQ(error, "inputs.q: required by prior 'softmax' but null");
  EXPECT_FALSE(femc::ref::run(p, in, error));
  EXPECT_EQ(error, "inputs.q: required by prior 'softmax' but null");

  in = c.inputs();
  in.decay = c["lam"].data();
  EXPECT_FALSE(femc::ref::validate(p, in, error));
  EXPECT_EQ(error,
            "inputs.decay: expected null; prior 'softmax' does not read it");

  Problem masked = p;
  masked.hasMask = true;
  EXPECT_FALSE(femc::ref::validate(masked, c.inputs(), error));
  EXPECT_EQ(error,
            "inputs.mask: required by prior 'softmax' with hasMask set but "
            "null");

  in = c.inputs();
  uint8_t mask[10] = {};
  in.mask = mask;
  EXPECT_FALSE(femc::ref::validate(p, in, error));
  EXPECT_EQ(error, "inputs.mask: expected null; prior 'softmax' without "
                   "hasMask does not read it");

  Problem ssm = makeProblem(Prior::Ssm);
  Case s(ssm);
  in = s.inputs();
  EXPECT_TRUE(femc::ref::validate(ssm, in, error)) << error;
  in.q = c["q"].data();
  EXPECT_FALSE(femc::ref::validate(ssm, in, error));
  EXPECT_EQ(error, "inputs.q: expected null; prior 'ssm' does not read it");
}

TEST(ReferenceValidateDeathTest, RunAbortsOnInvalidProblem) {
  Problem p = makeProblem(Prior::Softmax);
  Inputs in;
  EXPECT_DEATH(femc::ref::run(p, in),
               "femc::ref::run: invalid problem: inputs.q: required");
}

TEST(ReferenceNamesTest, NamesAndShapes) {
  for (Prior prior : kAllPriors)
    EXPECT_EQ(femc::ref::parsePrior(femc::ref::priorName(prior)), prior);
  EXPECT_FALSE(femc::ref::parsePrior("attention"));
  EXPECT_EQ(femc::ref::parseLayout("bhtd"), Layout::BHTD);
  EXPECT_EQ(femc::ref::parseLayout("bthd"), Layout::BTHD);
  EXPECT_FALSE(femc::ref::parseLayout("BTHD"));

  Problem p = makeProblem(Prior::Softmax, false, 2, 3, 4, 5, 6);
  p.S = 7;
  p.Hkv = 2;
  p.hasMask = true;
  EXPECT_EQ(femc::ref::inputNames(p),
            (std::vector<std::string>{"q", "k", "v", "beta_raw", "lam", "gate",
                                      "mask"}));
  using Shape = std::vector<int64_t>;
  EXPECT_EQ(*femc::ref::tensorShape(p, "k"), (Shape{2, 7, 2, 5}));
  EXPECT_EQ(*femc::ref::tensorShape(p, "mask"), (Shape{2, 7}));
  EXPECT_EQ(*femc::ref::tensorShape(p, "M"), (Shape{2, 4, 6}));
  p.layout = Layout::BHTD;
  EXPECT_EQ(*femc::ref::tensorShape(p, "q"), (Shape{2, 4, 3, 5}));
  EXPECT_EQ(*femc::ref::tensorShape(p, "v"), (Shape{2, 2, 7, 6}));
  EXPECT_EQ(*femc::ref::tensorShape(p, "out"), (Shape{2, 4, 3, 6}));
  EXPECT_FALSE(femc::ref::tensorShape(p, "decay"));

  Problem gla = makeProblem(Prior::Gla, true, 2, 3, 4, 5, 5);
  gla.layout = Layout::BHTD;
  EXPECT_EQ(*femc::ref::tensorShape(gla, "decay"), (Shape{2, 4, 3}));

  Problem ssm = makeProblem(Prior::Ssm, true, 2, 3, 4, 5, 6);
  EXPECT_EQ(femc::ref::inputNames(ssm),
            (std::vector<std::string>{"v", "beta_raw", "lam", "gate", "delta",
                                      "A", "Bs", "Cs", "D"}));
  EXPECT_EQ(*femc::ref::tensorShape(ssm, "delta"), (Shape{2, 3, 24}));
  EXPECT_EQ(*femc::ref::tensorShape(ssm, "A"), (Shape{24, 3}));
  EXPECT_EQ(*femc::ref::tensorShape(ssm, "Bs"), (Shape{2, 3, 3}));
  EXPECT_FALSE(femc::ref::tensorShape(ssm, "q"));
}

INSTANTIATE_TEST_SUITE_P(AllPriors, ReferencePriorTest,
                         ::testing::ValuesIn(kAllPriors), priorParamName);
INSTANTIATE_TEST_SUITE_P(KeyPriors, ReferenceKeyPriorTest,
                         ::testing::Values(Prior::Softmax, Prior::Linear,
                                           Prior::Gla, Prior::Aft),
                         priorParamName);

} // namespace
