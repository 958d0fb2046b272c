//===- VectorsTest.cpp - The reference against the authors' vectors -------===//
//
// Part of the femc project.
//
//===----------------------------------------------------------------------===//
//
// test/data/vectors/<case> (a copy of shared/vectors) holds inputs and results computed by the FEM
// authors' PyTorch implementation (float32). The double reference must match
// out, mu, F and M within 1e-4 * max|ref| per tensor (semantics.md,
// Tolerances).
//
//===----------------------------------------------------------------------===//

#include "reference/Reference.h"
#include "support/Npy.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <map>
#include <sstream>

namespace {

namespace fs = std::filesystem;
using femc::ref::Problem;

/// Relative tolerance of the double reference against float32 vectors.
constexpr double kRelTol = 1e-4;

/// The raw text of `"key": value` in a flat JSON object: the string without
/// quotes, or the literal (true, 1e-06, ...). Enough for case.json.
std::optional<std::string> jsonField(const std::string &json,
                                     const std::string &key) {
  size_t at = json.find("\"" + key + "\"");
  if (at == std::string::npos)
    return std::nullopt;
  at = json.find(':', at);
  if (at == std::string::npos)
    return std::nullopt;
  at = json.find_first_not_of(" \t\r\n", at + 1);
  if (at == std::string::npos)
    return std::nullopt;
  if (json[at] == '"') {
    size_t end = json.find('"', at + 1);
    if (end == std::string::npos)
      return std::nullopt;
    return json.substr(at + 1, end - at - 1);
  }
  size_t end = json.find_first_of(",}\r\n", at);
  std::string literal = json.substr(at, end - at);
  while (!literal.empty() && literal.back() == ' ')
    literal.pop_back();
  return literal;
}

class VectorsTest : public ::testing::TestWithParam<const char *> {
protected:
  fs::path caseDir() const {
    return fs::path(FEMC_SHARED_DIR) / "vectors" / GetParam();
  }

  /// Loads `<caseDir>/<name>.npy`; fails the test on error.
  femc::npy::Array load(const std::string &name) {
    std::string error;
    std::optional<femc::npy::Array> array =
        femc::npy::readNpy((caseDir() / (name + ".npy")).string(), error);
    EXPECT_TRUE(array) << error;
    return array ? *array : femc::npy::Array();
  }

  std::vector<float> loadFloat32(const std::string &name,
                                 const std::vector<int64_t> &shape) {
    femc::npy::Array array = load(name);
    EXPECT_EQ(array.shape, shape)
        << name << ".npy has shape " << femc::npy::formatShape(array.shape)
        << ", the problem expects " << femc::npy::formatShape(shape);
    std::vector<float> values;
    std::string error;
    EXPECT_TRUE(femc::npy::toFloat32(array, values, error)) << error;
    return values;
  }
};

/// max |actual - expected| <= kRelTol * max |expected|.
void expectClose(const std::string &what, const std::vector<double> &actual,
                 const std::vector<float> &expected) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  double maxRef = 0.0, maxErr = 0.0;
  size_t worst = 0;
  for (size_t i = 0; i < actual.size(); ++i) {
    maxRef = std::max(maxRef, std::fabs(double(expected[i])));
    double err = std::fabs(actual[i] - double(expected[i]));
    if (!(err <= maxErr)) {
      maxErr = err;
      worst = i;
    }
  }
  EXPECT_LE(maxErr, kRelTol * maxRef)
      << what << ": max |error| " << maxErr << " at flat index " << worst
      << " (reference " << actual[worst] << ", vector " << expected[worst]
      << "), allowed " << kRelTol * maxRef;
  std::ostringstream relative;
  relative << std::scientific << std::setprecision(2) << maxErr / maxRef;
  ::testing::Test::RecordProperty(what + "_rel_error", relative.str());
}

TEST_P(VectorsTest, MatchesAuthorsImplementation) {
  if (!fs::is_directory(caseDir()))
    GTEST_SKIP() << "reference vectors not found at " << caseDir().string()
                 << " (set FEMC_SHARED_DIR to the shared/ folder)";

  std::ifstream file(caseDir() / "case.json");
  ASSERT_TRUE(file) << "cannot read " << (caseDir() / "case.json").string();
  std::stringstream text;
  text << file.rdbuf();
  std::string json = text.str();

  Problem p;
  std::optional<std::string> prior = jsonField(json, "prior");
  std::optional<std::string> causal = jsonField(json, "causal");
  std::optional<std::string> layout = jsonField(json, "layout");
  ASSERT_TRUE(prior && causal && layout) << "case.json lacks a field";
  std::optional<femc::ref::Prior> parsedPrior = femc::ref::parsePrior(*prior);
  std::optional<femc::ref::Layout> parsedLayout =
      femc::ref::parseLayout(*layout);
  ASSERT_TRUE(parsedPrior) << "unknown prior " << *prior;
  ASSERT_TRUE(parsedLayout) << "unknown layout " << *layout;
  p.prior = *parsedPrior;
  p.layout = *parsedLayout;
  p.causal = *causal == "true";
  if (std::optional<std::string> eps = jsonField(json, "eps"))
    p.eps = std::stod(*eps);
  if (std::optional<std::string> cap = jsonField(json, "cap"))
    p.cap = std::stod(*cap);

  // Dimensions from the files themselves.
  bool bthd = p.layout == femc::ref::Layout::BTHD;
  std::vector<int64_t> lamShape = load("lam").shape;
  std::vector<int64_t> vShape = load("v").shape;
  ASSERT_EQ(lamShape.size(), 4u);
  ASSERT_EQ(vShape.size(), 4u);
  p.B = lamShape[0];
  p.T = lamShape[bthd ? 1 : 2];
  p.H = lamShape[bthd ? 2 : 1];
  p.dv = lamShape[3];
  p.S = vShape[bthd ? 1 : 2];
  p.Hkv = vShape[bthd ? 2 : 1];
  if (p.prior == femc::ref::Prior::Ssm) {
    std::vector<int64_t> aShape = load("A").shape;
    ASSERT_EQ(aShape.size(), 2u);
    p.N = aShape[1];
  } else {
    std::vector<int64_t> qShape = load("q").shape;
    ASSERT_EQ(qShape.size(), 4u);
    p.dk = qShape[3];
  }
  std::string error;
  ASSERT_TRUE(femc::ref::validate(p, error)) << error;

  std::map<std::string, std::vector<float>> data;
  for (const std::string &name : femc::ref::inputNames(p))
    data[name] = loadFloat32(name, *femc::ref::tensorShape(p, name));
  ASSERT_FALSE(HasFailure());
  femc::ref::Inputs in;
  for (const auto &[name, values] : data) {
    const float **field = femc::ref::floatInput(in, name);
    ASSERT_NE(field, nullptr) << "no reference input called " << name;
    *field = values.data();
  }

  std::optional<femc::ref::Result> result = femc::ref::run(p, in, error);
  ASSERT_TRUE(result) << error;

  std::vector<int64_t> outShape = *femc::ref::tensorShape(p, "out");
  expectClose("out", result->out, loadFloat32("out", outShape));
  expectClose("mu", result->mu, loadFloat32("mu", outShape));
  expectClose("F", result->F, loadFloat32("F", outShape));
  // The vectors store M as (B, 1, H, dv): the same order as (B, H, dv).
  expectClose("M", result->M, loadFloat32("M", {p.B, 1, p.H, p.dv}));
}

INSTANTIATE_TEST_SUITE_P(
    Cases, VectorsTest,
    ::testing::Values("softmax_causal", "linear_causal", "gla", "aft", "ssm"),
    [](const ::testing::TestParamInfo<const char *> &info) {
      return std::string(info.param);
    });

} // namespace
