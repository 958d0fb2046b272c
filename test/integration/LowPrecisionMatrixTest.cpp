//===- LowPrecisionMatrixTest.cpp - f16/bf16 kernels vs the reference -----===//
//
// Runs the kernels of Inputs/lowp.mlir (every prior with f16 and with bf16
// storage; compiled by femc at build time for x86-64-v3, which every AVX2
// host runs, and for the build host) through libfemrt on a matrix of shapes,
// and compares each output with the double-precision reference computed on
// the same rounded inputs: max |out - ref| <= tol * max |ref| with tol 1e-2
// for bf16 and 2e-3 for f16 (docs/semantics.md, "Low-precision storage").
// Inputs are drawn in f32 and rounded to the format (nearest even) before
// both the kernel and the reference see them, so the error measured is the
// kernel's own: f32 arithmetic plus the one rounding of the output.
//
//===----------------------------------------------------------------------===//
#include "dialect/Priors.h"
#include "femrt/femrt.h"
#include "reference/Reference.h"
#include "support/LowPrecision.h"
#include "support/Random.h"
#include "test/integration/KernelLibrary.h"
#include "test/integration/TestProblem.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace {

namespace priors = femc::priors;
namespace lowp = femc::lowp;
using femc::ref::Prior;

/// The two builds of Inputs/lowp.mlir.
struct Library {
  const char *name, *path;
};
const Library kLibraries[] = {{"x86-64-v3", FEMC_LOWP_V3_LIBRARY},
                              {"host", FEMC_LOWP_HOST_LIBRARY}};

femc::test::KernelLibrary &library(int i) {
  static std::unique_ptr<femc::test::KernelLibrary> libs[2];
  if (!libs[i])
    libs[i] = std::make_unique<femc::test::KernelLibrary>(kLibraries[i].path);
  return *libs[i];
}

/// The largest relative error seen per format, printed at the end (the
/// measured errors docs/semantics.md quotes).
std::map<std::string, double> &worstSeen() {
  static std::map<std::string, double> worst;
  return worst;
}

const char *formatName(lowp::Format f) {
  return f == lowp::Format::F16 ? "f16" : "bf16";
}

struct Case : femc::test::CaseShape {
  lowp::Format format = lowp::Format::BF16;
  /// Puts NaN into a few elements of v and lam (they must reach the output
  /// where they reach the reference's).
  bool nanInputs = false;
  std::string kernel;

  std::string str() const {
    std::ostringstream os;
    os << kernel << shape();
    return os.str();
  }
};

/// One argument: the rounded values (for the reference) and their 16-bit
/// patterns (for the kernel).
struct Arg {
  std::vector<float> values;
  std::vector<uint16_t> bits;
  std::vector<uint8_t> bytes; // the key mask
  std::vector<int64_t> shape;
};

void runCase(const Case &c, uint64_t seed) {
  SCOPED_TRACE(c.str());
  femc::ref::Problem p = c.problem();
  std::string error;
  ASSERT_TRUE(femc::ref::validate(p, error)) << error;
  femc::Rng rng(seed);
  std::map<std::string, Arg> args;
  femc::ref::Inputs in;
  for (const std::string &name : femc::ref::inputNames(p)) {
    Arg &a = args[name];
    a.shape = *femc::ref::tensorShape(p, name);
    int64_t n = femc::test::numElements(a.shape);
    if (name == "mask") {
      a.bytes.resize(n);
      for (auto &m : a.bytes)
        m = rng.uniform01() < 0.8;
      in.mask = a.bytes.data();
      continue;
    }
    a.values.resize(n);
    a.bits.resize(n);
    femc::test::InputRanges ranges{c.betaRaw, c.vScale};
    for (int64_t i = 0; i < n; ++i) {
      double value = femc::test::drawInput(rng, name, ranges);
      a.bits[i] = lowp::toBits(static_cast<float>(value), c.format);
      a.values[i] = lowp::fromBits(a.bits[i], c.format);
    }
    if (c.nanInputs && (name == "v" || name == "lam"))
      for (int64_t i = name == "v" ? 5 : 17; i < n; i += n / 3 + 1) {
        a.bits[i] = c.format == lowp::Format::BF16 ? 0x7fc0 : 0x7e00;
        a.values[i] = std::nanf("");
      }
    *femc::ref::floatInput(in, name) = a.values.data();
  }
  auto ref = femc::ref::run(p, in, error);
  ASSERT_TRUE(ref.has_value()) << error;

  DLDataType half = {static_cast<uint8_t>(c.format == lowp::Format::BF16
                                              ? kDLBfloat
                                              : kDLFloat),
                     16, 1};
  std::vector<int64_t> outShape = *femc::ref::tensorShape(p, "out");
  const priors::PriorInfo &info = priors::priorInfo(static_cast<int>(c.prior));
  for (int lib = 0; lib < 2; ++lib) {
    SCOPED_TRACE(std::string("library built for ") + kLibraries[lib].name);
    std::vector<uint16_t> outBits(ref->out.size(), 0x7fc0); // NaN
    std::vector<DLTensor> dl;
    for (std::string_view name : priors::kernelArguments(info, c.mask)) {
      std::string n(name);
      if (n == "out")
        dl.push_back(femc::test::dlTensor(outBits.data(), outShape, half));
      else if (n == "mask")
        dl.push_back(femc::test::dlTensor(args[n].bytes.data(), args[n].shape,
                                          femc::test::kU8));
      else
        dl.push_back(
            femc::test::dlTensor(args[n].bits.data(), args[n].shape, half));
    }
    femrt_kernel *kernel = library(lib).kernel(c.kernel);
    ASSERT_NE(kernel, nullptr);
    ASSERT_EQ(femc::test::launch(kernel, dl), FEMRT_OK) << femrt_last_error();
    femc::test::MaxError err;
    size_t nans = 0;
    for (size_t i = 0; i < outBits.size(); ++i) {
      double out = lowp::fromBits(outBits[i], c.format);
      if (c.nanInputs && std::isnan(ref->out[i])) {
        ASSERT_TRUE(std::isnan(out)) << "element " << i << " is " << out
                                     << ", the reference's is NaN";
        ++nans;
        continue;
      }
      ASSERT_TRUE(std::isfinite(out)) << "element " << i << " is " << out;
      err.add(i, out, ref->out[i]);
    }
    if (c.nanInputs)
      EXPECT_GT(nans, 0u) << "no NaN reached the reference's output";
    double tolerance = lowp::defaultTolerance(c.format);
    double rel = err.relative();
    double &seen = worstSeen()[formatName(c.format)];
    seen = std::max(seen, rel);
    EXPECT_LE(rel, tolerance)
        << "element " << err.worst << ": out "
        << lowp::fromBits(outBits[err.worst], c.format) << ", reference "
        << ref->out[err.worst];
  }
}

struct Variant {
  Prior prior;
  const char *kernel; // without the _bf16 / _f16 suffix
  bool causal, bhtd, mask;
};

class LowPrecisionMatrix
    : public ::testing::TestWithParam<std::tuple<Variant, lowp::Format>> {};

TEST_P(LowPrecisionMatrix, ListedValues) {
  auto [m, format] = GetParam();
  for (int i = 0; i < 8; ++i) {
    Case c;
    c.prior = m.prior;
    c.format = format;
    c.kernel = std::string(m.kernel) + "_" + formatName(format);
    c.causal = m.causal;
    c.bhtd = m.bhtd;
    c.mask = m.mask;
    // The listed values of the issue (every T, beta_raw in {-4, 0, 8}, |v|
    // up to 1 and up to 100, grouped heads, dk != dv).
    c.setListedValues(i);
    if (m.prior == Prior::Softmax && i == 7)
      c.dk = c.dv = 64; // the model width of the benchmark
    // Cross-attention lengths where the prior allows them.
    if (!m.causal && (m.prior == Prior::Softmax || m.prior == Prior::Linear) &&
        i % 4 == 3)
      c.S = c.T + 5;
    runCase(c, 5000 + i);
    if (HasFatalFailure())
      return;
  }
}

const Variant kVariants[] = {
    {Prior::Softmax, "softmax_causal", true, false, false},
    {Prior::Softmax, "softmax_full", false, false, false},
    {Prior::Softmax, "softmax_causal_mask", true, false, true},
    {Prior::Softmax, "softmax_full_mask_bhtd_small", false, true, true},
    {Prior::Linear, "linear_causal", true, false, false},
    {Prior::Linear, "linear_full_mask", false, false, true},
    {Prior::Linear, "linear_causal_bhtd_small", true, true, false},
    {Prior::Gla, "gla", true, false, false},
    {Prior::Gla, "gla_small", true, false, false},
    {Prior::Aft, "aft", true, false, false},
    {Prior::Aft, "aft_small_bhtd", true, true, false},
    {Prior::Ssm, "ssm", true, false, false},
    {Prior::Ssm, "ssm_small", true, false, false},
};

INSTANTIATE_TEST_SUITE_P(
    Priors, LowPrecisionMatrix,
    ::testing::Combine(::testing::ValuesIn(kVariants),
                       ::testing::Values(lowp::Format::BF16,
                                         lowp::Format::F16)),
    [](const auto &info) {
      return std::string(std::get<0>(info.param).kernel) + "_" +
             formatName(std::get<1>(info.param));
    });

/// A NaN input reaches exactly the outputs it reaches in the reference (the
/// 16-bit store keeps NaN); the other outputs stay within tolerance.
TEST(LowPrecisionNonFinite, NaNPropagates) {
  for (lowp::Format format : {lowp::Format::BF16, lowp::Format::F16})
    for (auto [prior, kernel, causal] :
         {std::tuple{Prior::Softmax, "softmax_causal", true},
          std::tuple{Prior::Softmax, "softmax_full", false},
          std::tuple{Prior::Linear, "linear_causal", true},
          std::tuple{Prior::Aft, "aft", true}}) {
      Case c;
      c.prior = prior;
      c.format = format;
      c.kernel = std::string(kernel) + "_" + formatName(format);
      c.causal = causal;
      c.nanInputs = true;
      c.B = 2;
      c.T = c.S = 70;
      c.H = c.Hkv = 2;
      c.dk = 8;
      c.dv = 24;
      runCase(c, 7000);
      if (::testing::Test::HasFatalFailure())
        return;
    }
}

/// The host conversions agree with the kernels' rounding: a kernel that
/// copies nothing but rounds its f32 result is checked above; here the
/// tools' side, on the values where rounding is subtle.
TEST(LowPrecisionFormats, RoundToNearestEven) {
  // bf16: 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to even (1).
  EXPECT_EQ(lowp::toBF16(1.0f + 0x1p-8f), 0x3f80);
  EXPECT_EQ(lowp::toBF16(1.0f + 0x1p-8f + 0x1p-20f), 0x3f81);
  EXPECT_EQ(lowp::toBF16(1.0f + 3 * 0x1p-8f), 0x3f82); // tie, odd: up
  EXPECT_EQ(lowp::toBF16(3.4e38f), 0x7f80);            // past the max: Inf
  EXPECT_TRUE(std::isnan(lowp::fromBF16(lowp::toBF16(std::nanf("")))));
  // f16: 1 + 2^-11 ties to 1; 65504 is the max, 65520 rounds to Inf.
  EXPECT_EQ(lowp::toF16(1.0f + 0x1p-11f), 0x3c00);
  EXPECT_EQ(lowp::toF16(1.0f + 3 * 0x1p-11f), 0x3c02);
  EXPECT_EQ(lowp::toF16(65504.0f), 0x7bff);
  EXPECT_EQ(lowp::toF16(65519.0f), 0x7bff);
  EXPECT_EQ(lowp::toF16(65520.0f), 0x7c00);
  EXPECT_EQ(lowp::toF16(0x1p-24f), 0x0001); // smallest subnormal
  EXPECT_EQ(lowp::toF16(0x1p-25f), 0x0000); // tie to even: 0
  EXPECT_EQ(lowp::toF16(-2.0f), 0xc000);
  EXPECT_TRUE(std::isnan(lowp::fromF16(lowp::toF16(std::nanf("")))));
  for (uint32_t bits = 0; bits < 0x10000; ++bits) {
    if ((bits & 0x7c00) == 0x7c00 && (bits & 0x3ff))
      continue; // NaN payloads are not kept
    auto h = static_cast<uint16_t>(bits);
    ASSERT_EQ(lowp::toF16(lowp::fromF16(h)), h) << "f16 bits " << bits;
    if ((bits & 0x7f80) == 0x7f80 && (bits & 0x7f))
      continue;
    ASSERT_EQ(lowp::toBF16(lowp::fromBF16(h)), h) << "bf16 bits " << bits;
  }
}

/// Prints the largest relative error per format after the matrix.
class ReportWorst : public ::testing::Environment {
public:
  void TearDown() override {
    for (auto &[format, rel] : worstSeen())
      std::printf("low-precision matrix: largest relative error with %s "
                  "storage: %.3g (tolerance %.3g)\n",
                  format.c_str(), rel,
                  lowp::defaultTolerance(format == "f16" ? lowp::Format::F16
                                                         : lowp::Format::BF16));
  }
};
const auto *kReport =
    ::testing::AddGlobalTestEnvironment(new ReportWorst);

} // namespace
