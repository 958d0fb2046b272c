//===- PriorMatrixTest.cpp - femc scan-prior kernels vs the reference ------===//
//
// Runs the kernels of priors.mlir (linear, gla, aft, ssm; compiled by femc at
// build time) through libfemrt on a matrix of shapes per prior and compares
// each output with the double-precision reference: max |out - ref| <=
// 1e-4 * max |ref| (docs/semantics.md, "Tolerances"), and checks the authors'
// vectors in test/data/vectors. Arguments are passed in the order the prior
// table (dialect/Priors.h) gives, with the shapes the reference gives.
//
//===----------------------------------------------------------------------===//
#include "dialect/Priors.h"
#include "femrt/femrt.h"
#include "reference/Reference.h"
#include "support/Npy.h"
#include "support/Random.h"
#include "test/integration/KernelLibrary.h"
#include "test/integration/TestProblem.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace {

constexpr double kTolerance = 1e-4;
namespace priors = femc::priors;
using femc::ref::Prior;

using femc::test::dlTensor;
using femc::test::kF32;
using femc::test::kU8;

struct Case : femc::test::CaseShape {
  Case() { prior = Prior::Linear; }
  /// gla decay logits are drawn from [decayLo, decayHi].
  double decayLo = -2, decayHi = 2;
  /// gla, layout bthd: the decay logit of (b = 0, t, h = 0) is NaN at this
  /// t (none when negative). Rows before it must match the reference; the
  /// head's later rows are not compared.
  int64_t nanDecayAt = -1;
  std::string kernel;

  std::string str() const {
    std::ostringstream os;
    os << kernel << shape();
    if (prior == Prior::Gla)
      os << " decay in [" << decayLo << ", " << decayHi << "]";
    if (nanDecayAt >= 0)
      os << " NaN decay at t=" << nanDecayAt;
    return os.str();
  }
};

femc::test::KernelLibrary &runtime() {
  static femc::test::KernelLibrary rt(FEMC_PRIORS_LIBRARY);
  return rt;
}

/// The inputs of one case, by name.
struct Tensors {
  std::map<std::string, std::vector<float>> data;
  std::map<std::string, std::vector<int64_t>> shape;
  std::vector<uint8_t> mask;

  femc::ref::Inputs inputs() {
    femc::ref::Inputs in;
    for (const auto &[name, values] : data) {
      const float **field = femc::ref::floatInput(in, name);
      EXPECT_NE(field, nullptr) << "no reference input called " << name;
      if (field)
        *field = values.data();
    }
    in.mask = mask.empty() ? nullptr : mask.data();
    return in;
  }
};

/// Runs `kernel` on `tensors` (inputs by name) and writes `out`; arguments
/// in the prior table's order.
void launch(const std::string &kernelName, Prior prior, bool hasMask,
            Tensors &tensors, std::vector<float> &out,
            std::vector<int64_t> outShape) {
  const priors::PriorInfo &info = priors::priorInfo(static_cast<int>(prior));
  std::vector<DLTensor> dl;
  for (std::string_view name : priors::kernelArguments(info, hasMask)) {
    std::string n(name);
    if (n == "out")
      dl.push_back(dlTensor(out.data(), outShape, kF32));
    else if (n == "mask")
      dl.push_back(dlTensor(tensors.mask.data(), tensors.shape[n], kU8));
    else
      dl.push_back(dlTensor(tensors.data[n].data(), tensors.shape[n], kF32));
  }
  femrt_kernel *kernel = runtime().kernel(kernelName);
  ASSERT_NE(kernel, nullptr);
  ASSERT_EQ(femc::test::launch(kernel, dl), FEMRT_OK) << femrt_last_error();
}

void runCase(const Case &c, uint64_t seed) {
  SCOPED_TRACE(c.str());
  femc::ref::Problem p = c.problem();
  std::string error;
  ASSERT_TRUE(femc::ref::validate(p, error)) << error;
  femc::Rng rng(seed);
  Tensors t;
  for (const std::string &name : femc::ref::inputNames(p)) {
    std::vector<int64_t> shape = *femc::ref::tensorShape(p, name);
    int64_t n = femc::test::numElements(shape);
    t.shape[name] = shape;
    if (name == "mask") {
      t.mask.resize(n);
      for (auto &m : t.mask)
        m = rng.uniform01() < 0.8;
      continue;
    }
    std::vector<float> &x = t.data[name];
    x.resize(n);
    femc::test::InputRanges ranges{c.betaRaw, c.vScale, c.decayLo, c.decayHi};
    for (float &value : x)
      value = femc::test::drawInput(rng, name, ranges);
  }
  std::vector<int64_t> outShape = *femc::ref::tensorShape(p, "out");
  std::vector<float> out(c.B * c.T * c.H * c.dv, std::nanf(""));
  size_t nanAt = static_cast<size_t>(c.nanDecayAt * c.H); // (0, t, 0), bthd
  if (c.nanDecayAt >= 0)
    t.data["decay"][nanAt] = std::nanf("");
  launch(c.kernel, c.prior, c.mask, t, out, outShape);
  if (::testing::Test::HasFatalFailure())
    return;
  // The reference never reads the NaN for the rows compared (causal).
  if (c.nanDecayAt >= 0)
    t.data["decay"][nanAt] = 0.0f;
  auto ref = femc::ref::run(p, t.inputs(), error);
  ASSERT_TRUE(ref.has_value()) << error;
  femc::test::MaxError err;
  for (size_t i = 0; i < out.size(); ++i) {
    if (c.nanDecayAt >= 0) {
      int64_t row = static_cast<int64_t>(i) / c.dv; // (b * T + t) * H + h
      if (row % c.H == 0 && row / c.H < c.T && row / c.H >= c.nanDecayAt)
        continue;
    }
    ASSERT_TRUE(std::isfinite(out[i])) << "element " << i << " is " << out[i];
    err.add(i, out[i], ref->out[i]);
  }
  EXPECT_LE(err.maxErr, kTolerance * err.maxRef)
      << "relative error " << err.maxErr / err.maxRef << " at element "
      << err.worst << ": out " << out[err.worst] << ", reference "
      << ref->out[err.worst];
}

struct Variant {
  Prior prior;
  const char *kernel;
  bool causal, bhtd;
};

class PriorMatrix : public ::testing::TestWithParam<Variant> {};

TEST_P(PriorMatrix, ListedValues) {
  Variant m = GetParam();
  for (int i = 0; i < 8; ++i) {
    Case c;
    c.prior = m.prior;
    c.kernel = m.kernel;
    c.causal = m.causal;
    c.bhtd = m.bhtd;
    // The listed values of the issue, each used at least once per prior
    // and kernel variant.
    c.setListedValues(i);
    // Non-causal linear: cross-attention lengths too.
    if (m.prior == Prior::Linear && !m.causal && i % 4 == 3)
      c.S = c.T + 5;
    runCase(c, 1000 + i);
    if (HasFatalFailure())
      return;
  }
}

std::string variantName(const ::testing::TestParamInfo<Variant> &info) {
  return info.param.kernel;
}

INSTANTIATE_TEST_SUITE_P(
    Scans, PriorMatrix,
    ::testing::Values(Variant{Prior::Linear, "linear_causal", true, false},
                      Variant{Prior::Linear, "linear_causal_bhtd", true, true},
                      Variant{Prior::Linear, "linear_full", false, false},
                      Variant{Prior::Linear, "linear_causal_small", true,
                              false},
                      Variant{Prior::Gla, "gla", true, false},
                      Variant{Prior::Gla, "gla_bhtd", true, true},
                      Variant{Prior::Gla, "gla_small", true, false},
                      Variant{Prior::Aft, "aft", true, false},
                      Variant{Prior::Aft, "aft_bhtd", true, true},
                      Variant{Prior::Aft, "aft_small", true, false},
                      Variant{Prior::Ssm, "ssm", true, false},
                      Variant{Prior::Ssm, "ssm_bhtd", true, true},
                      Variant{Prior::Ssm, "ssm_small", true, false}),
    variantName);

/// A case of `kernel` (prior `prior`) on T = S = `T` tokens, `B` batches,
/// H = Hkv = 2 heads and widths `dk`, `dv`; the rest as Case's defaults.
Case headsCase(Prior prior, const char *kernel, int64_t T, int64_t B,
               int64_t dk, int64_t dv) {
  Case c;
  c.prior = prior;
  c.kernel = kernel;
  c.T = c.S = T;
  c.B = B;
  c.H = c.Hkv = 2;
  c.dk = dk;
  c.dv = dv;
  return c;
}

/// gla whose cumulative log-decay saturates at -60 within a few steps: from
/// there on the decay stops (the reference's quirk), across chunk borders.
TEST(PriorMatrixGla, SaturatedDecay) {
  for (const char *kernel : {"gla", "gla_small"})
    for (int64_t T : {7, 65, 300}) {
      Case c = headsCase(Prior::Gla, kernel, T, 2, 8, 16);
      c.decayLo = 2;
      c.decayHi = 6; // a_t <= -2: C reaches -60 by t = 30
      runCase(c, 3000 + T);
    }
}

/// Query features loaded as whole vectors, transposed in registers, and a
/// tail of features past the last whole vector (dk not a multiple of the
/// kernel's lanes: 16 for the default tiles, 8 for the _small ones), with
/// chunks that do and do not divide T.
TEST(PriorMatrixLinearFamily, FeatureVectorsAndTail) {
  for (auto [prior, kernel, causal] :
       {std::tuple{Prior::Linear, "linear_causal", true},
        std::tuple{Prior::Linear, "linear_full", false},
        std::tuple{Prior::Linear, "linear_causal_small", true},
        std::tuple{Prior::Gla, "gla", true},
        std::tuple{Prior::Gla, "gla_small", true}})
    for (int64_t dk : {20, 40})
      for (int64_t T : {1, 64, 130}) {
        Case c = headsCase(prior, kernel, T, 2, dk, 24);
        c.causal = causal;
        runCase(c, 4000 + dk + T);
        if (HasFatalFailure())
          return;
      }
}

/// gla with a NaN decay logit inside a chunk: the rows before it keep
/// their values (the chunk's scores must not route the NaN into them), in
/// the first chunk and in a later one.
TEST(PriorMatrixGla, NaNDecayLeavesEarlierRows) {
  for (const char *kernel : {"gla", "gla_small"})
    for (int64_t at : {5, 21, 70}) {
      Case c = headsCase(Prior::Gla, kernel, 90, 1, 16, 16);
      c.nanDecayAt = at;
      runCase(c, 5000 + at);
      if (HasFatalFailure())
        return;
    }
}

/// linear with a key-padding mask: masked keys leave every sum and the
/// shift; rows that see no key at all output 0.
TEST(PriorMatrixLinear, KeyMask) {
  for (bool causal : {true, false})
    for (int64_t T : {1, 7, 65, 200}) {
      Case c;
      c.prior = Prior::Linear;
      c.kernel = causal ? "linear_causal_mask" : "linear_full_mask";
      c.causal = causal;
      c.mask = true;
      c.T = T;
      c.S = causal ? T : T + 3;
      c.B = 2;
      c.H = 2;
      c.Hkv = 1;
      c.dk = 8;
      c.dv = 24;
      c.betaRaw = 1;
      runCase(c, 4000 + T);
    }
}

/// The authors' vectors (B=2, T=64, H=4, dk=dv=16) through femc.
class AuthorsVectors
    : public ::testing::TestWithParam<std::pair<const char *, const char *>> {
};

TEST_P(AuthorsVectors, Reproduced) {
  auto [caseName, kernelName] = GetParam();
  std::string dir = std::string(FEMC_SHARED_DIR) + "/vectors/" + caseName;
  if (!std::filesystem::exists(dir))
    GTEST_SKIP() << "reference vectors not found at " << dir;
  Prior prior = *femc::ref::parsePrior(
      std::string_view(kernelName).substr(0, std::string_view(kernelName).find('_')));
  const priors::PriorInfo &info = priors::priorInfo(static_cast<int>(prior));
  Tensors t;
  std::string error;
  auto load = [&](const std::string &name, std::vector<float> &into,
                  std::vector<int64_t> &shape) {
    auto a = femc::npy::readNpy(dir + "/" + name + ".npy", error);
    ASSERT_TRUE(a.has_value()) << error;
    ASSERT_TRUE(femc::npy::toFloat32(*a, into, error)) << error;
    shape = a->shape;
  };
  for (std::string_view name : priors::kernelArguments(info, false)) {
    if (name == "out")
      continue;
    std::string n(name);
    load(n, t.data[n], t.shape[n]);
    if (HasFatalFailure())
      return;
  }
  std::vector<float> expected;
  std::vector<int64_t> outShape;
  load("out", expected, outShape);
  if (HasFatalFailure())
    return;
  std::vector<float> out(expected.size(), std::nanf(""));
  launch(kernelName, prior, false, t, out, outShape);
  if (HasFatalFailure())
    return;
  double maxErr = 0, maxRef = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    maxErr = std::max(maxErr, std::fabs(double(out[i]) - expected[i]));
    maxRef = std::max(maxRef, std::fabs(double(expected[i])));
  }
  EXPECT_LE(maxErr, kTolerance * maxRef)
      << "relative error " << maxErr / maxRef;
}

INSTANTIATE_TEST_SUITE_P(
    Scans, AuthorsVectors,
    ::testing::Values(std::pair{"linear_causal", "linear_causal"},
                      std::pair{"gla", "gla"}, std::pair{"aft", "aft"},
                      std::pair{"ssm", "ssm"}),
    [](const auto &info) { return std::string(info.param.first); });

} // namespace
