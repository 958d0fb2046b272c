//===- LayerReferenceTest.cpp - The whole-layer reference ------------------===//
//
// Part of the femc project.
//
//===----------------------------------------------------------------------===//
//
// reference/Layer.h against the authors' module (the public checkpoint case
// test/data/vectors/checkpoint_gla_defaults_T24, y computed in float64 by
// fem.py), the module's size rules, the configuration and parameter
// errors, and properties that tie the flag combinations together.
//
//===----------------------------------------------------------------------===//

#include "reference/Layer.h"
#include "reference/LayerIO.h"
#include "support/Npy.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

namespace {

namespace fs = std::filesystem;
using namespace femc::ref;

fs::path checkpointDir() {
  return fs::path(FEMC_SHARED_DIR) / "vectors" / "checkpoint_gla_defaults_T24";
}

std::vector<float> loadFloats(const fs::path &path,
                              std::vector<int64_t> *shape = nullptr) {
  std::string error;
  auto array = femc::npy::readNpy(path.string(), error);
  EXPECT_TRUE(array) << error;
  std::vector<float> out;
  if (!array)
    return out;
  if (shape)
    *shape = array->shape;
  if (array->dtype == "bool" || array->dtype == "u8") {
    std::vector<uint8_t> bytes;
    EXPECT_TRUE(femc::npy::toBool(*array, bytes, error)) << error;
    out.assign(bytes.begin(), bytes.end());
  } else {
    EXPECT_TRUE(femc::npy::toFloat32(*array, out, error)) << error;
  }
  return out;
}

/// max |a - b| / max |b|.
double relativeError(const std::vector<double> &a, const std::vector<double> &b) {
  double err = 0, scale = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    err = std::max(err, std::fabs(a[i] - b[i]));
    scale = std::max(scale, std::fabs(b[i]));
  }
  return scale > 0 ? err / scale : err;
}

TEST(LayerReference, Checkpoint) {
  std::string error;
  auto config = readLayerConfig((checkpointDir() / "config.json").string(),
                                ConfigForm::Module, error);
  ASSERT_TRUE(config) << error;
  auto params = readParameters((checkpointDir() / "state.npz").string(), error);
  ASSERT_TRUE(params) << error;
  std::vector<int64_t> xShape;
  std::vector<float> x = loadFloats(checkpointDir() / "x.npy", &xShape);
  std::vector<float> mask = loadFloats(checkpointDir() / "mask.npy");
  std::vector<float> yf = loadFloats(checkpointDir() / "y.npy");
  ASSERT_EQ(xShape.size(), 3u);
  int64_t B = xShape[0], T = xShape[1];
  ASSERT_EQ(mask.size(), size_t(B * T));
  // The case pads some positions: the mask must matter.
  ASSERT_NE(std::count(mask.begin(), mask.end(), 0.0f), 0);
  auto y = runLayer(*config, *params, B, T, x.data(), mask.data(), error);
  ASSERT_TRUE(y) << error;
  std::vector<double> expected(yf.begin(), yf.end());
  ASSERT_EQ(y->size(), expected.size());
  double rel = relativeError(*y, expected);
  std::printf("checkpoint_gla_defaults_T24: max |y - y_module| / max |y| = "
              "%.3g\n",
              rel);
  EXPECT_LE(rel, 1e-4);
  // Without the mask the result changes: the check above saw it.
  auto unmasked = runLayer(*config, *params, B, T, x.data(), nullptr, error);
  ASSERT_TRUE(unmasked) << error;
  EXPECT_GT(relativeError(*unmasked, expected), 1e-3);
}

} // namespace
