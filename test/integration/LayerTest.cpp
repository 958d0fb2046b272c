//===- LayerTest.cpp - examples/fem_layer.mlir against the reference -------===//
//
// The whole layer compiled by femc (projections, RoPE, the FEM read, output
// projection) against the same layer in double precision: projections and
// RoPE (docs/semantics.md §6, the reference's mixed convention) in double,
// the FEM read by femref, the output projection in double.
//
//===----------------------------------------------------------------------===//
#include "femrt/femrt.h"
#include "reference/Reference.h"
#include "support/Random.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace {

constexpr int64_t D = 256, H = 4, DK = 64, DV = 64;

DLTensor tensor(float *data, std::vector<int64_t> &shape) {
  DLTensor t{};
  t.data = data;
  t.device = {kDLCPU, 0};
  t.ndim = static_cast<int32_t>(shape.size());
  t.dtype = {kDLFloat, 32, 1};
  t.shape = shape.data();
  return t;
}

/// y[b,t,h,d] = sum_k x[b,t,k] w[k,h,d] in double.
std::vector<double> project(const std::vector<float> &x,
                            const std::vector<float> &w, int64_t BT) {
  std::vector<double> y(BT * H * DK, 0.0);
  for (int64_t r = 0; r < BT; ++r)
    for (int64_t k = 0; k < D; ++k)
      for (int64_t j = 0; j < H * DK; ++j)
        y[r * H * DK + j] += double(x[r * D + k]) * w[k * H * DK + j];
  return y;
}

/// RoPE as the reference writes it: frequencies repeated ("half" layout),
/// rotation partners interleaved.
std::vector<double> rope(const std::vector<double> &x, int64_t B, int64_t T) {
  std::vector<double> y(x.size());
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t j = 0; j < DK; ++j) {
          size_t base = ((b * T + t) * H + h) * DK;
          int64_t i = j % (DK / 2);
          double invFreq = std::pow(10000.0, -2.0 * i / DK);
          double angle = t * invFreq;
          double rot = (j % 2 == 0) ? -x[base + j + 1] : x[base + j - 1];
          y[base + j] = x[base + j] * std::cos(angle) + rot * std::sin(angle);
        }
  return y;
}

std::vector<float> toFloat(const std::vector<double> &x) {
  return std::vector<float>(x.begin(), x.end());
}

TEST(FemLayer, MatchesTheReferenceLayer) {
  femrt_context *ctx = nullptr;
  femrt_module *module = nullptr;
  femrt_kernel *kernel = nullptr;
  ASSERT_EQ(femrt_context_create(nullptr, &ctx), FEMRT_OK) << femrt_last_error();
  ASSERT_EQ(femrt_module_load_library(ctx, FEMC_LAYER_LIBRARY, &module),
            FEMRT_OK)
      << femrt_last_error();
  ASSERT_EQ(femrt_module_get_kernel(module, "fem_layer", &kernel), FEMRT_OK)
      << femrt_last_error();

  for (auto [B, T] : {std::pair<int64_t, int64_t>{1, 1}, {2, 37}, {1, 130}}) {
    SCOPED_TRACE("B=" + std::to_string(B) + " T=" + std::to_string(T));
    femc::Rng rng(42 + T);
    std::vector<float> x(B * T * D), beta(H * DV);
    std::vector<std::vector<float>> w(5, std::vector<float>(D * H * DK));
    std::vector<float> wo(H * DV * D);
    rng.fillUniform(x, -1, 1);
    for (auto &m : w)
      rng.fillUniform(m, -0.15, 0.15);
    rng.fillUniform(wo, -0.1, 0.1);
    rng.fillUniform(beta, -1, 2);
    std::vector<float> out(B * T * D, std::nanf(""));

    std::vector<int64_t> sx = {B, T, D}, sw = {D, H, DK}, so = {H, DV, D},
                         sb = {H * DV};
    std::vector<DLTensor> t = {tensor(x.data(), sx),    tensor(w[0].data(), sw),
                               tensor(w[1].data(), sw), tensor(w[2].data(), sw),
                               tensor(w[3].data(), sw), tensor(w[4].data(), sw),
                               tensor(wo.data(), so),   tensor(beta.data(), sb),
                               tensor(out.data(), sx)};
    std::vector<const DLTensor *> args;
    for (auto &d : t)
      args.push_back(&d);
    ASSERT_EQ(femrt_kernel_launch(kernel, args.data(), (int32_t)args.size(),
                                  nullptr),
              FEMRT_OK)
        << femrt_last_error();

    // The reference layer.
    int64_t BT = B * T;
    std::vector<float> q = toFloat(rope(project(x, w[0], BT), B, T));
    std::vector<float> k = toFloat(rope(project(x, w[1], BT), B, T));
    std::vector<float> v = toFloat(project(x, w[2], BT));
    std::vector<float> lam = toFloat(project(x, w[3], BT));
    std::vector<float> gate = toFloat(project(x, w[4], BT));
    femc::ref::Problem p;
    p.causal = true;
    p.B = B;
    p.T = p.S = T;
    p.H = p.Hkv = H;
    p.dk = DK;
    p.dv = DV;
    femc::ref::Inputs in;
    in.q = q.data();
    in.k = k.data();
    in.v = v.data();
    in.beta_raw = beta.data();
    in.lam = lam.data();
    in.gate = gate.data();
    std::string error;
    auto read = femc::ref::run(p, in, error);
    ASSERT_TRUE(read.has_value()) << error;
    double maxErr = 0, maxRef = 0;
    for (int64_t r = 0; r < BT; ++r)
      for (int64_t e = 0; e < D; ++e) {
        double y = 0;
        for (int64_t j = 0; j < H * DV; ++j)
          y += read->out[r * H * DV + j] * wo[j * D + e];
        ASSERT_TRUE(std::isfinite(out[r * D + e]));
        maxErr = std::max(maxErr, std::fabs(y - out[r * D + e]));
        maxRef = std::max(maxRef, std::fabs(y));
      }
    EXPECT_LE(maxErr, 1e-4 * maxRef) << "relative " << maxErr / maxRef;
  }
  femrt_module_destroy(module);
  femrt_context_destroy(ctx);
}

/// The layer's shapes are checked before it runs, naming the argument.
TEST(FemLayer, WrongShapeIsAnError) {
  femrt_context *ctx = nullptr;
  femrt_module *module = nullptr;
  femrt_kernel *kernel = nullptr;
  ASSERT_EQ(femrt_context_create(nullptr, &ctx), FEMRT_OK);
  ASSERT_EQ(femrt_module_load_library(ctx, FEMC_LAYER_LIBRARY, &module),
            FEMRT_OK);
  ASSERT_EQ(femrt_module_get_kernel(module, "fem_layer", &kernel), FEMRT_OK);
  std::vector<float> buf(D * H * DK); // the largest argument
  std::vector<int64_t> sx = {1, 8, D}, sw = {D, H, DK}, so = {H, DV, D},
                       sb = {H * DV}, sbad = {1, 9, D};
  std::vector<DLTensor> t = {tensor(buf.data(), sx), tensor(buf.data(), sw),
                             tensor(buf.data(), sw), tensor(buf.data(), sw),
                             tensor(buf.data(), sw), tensor(buf.data(), sw),
                             tensor(buf.data(), so), tensor(buf.data(), sb)};
  std::vector<float> out(9 * D);
  t.push_back(tensor(out.data(), sbad));
  std::vector<const DLTensor *> args;
  for (auto &d : t)
    args.push_back(&d);
  EXPECT_EQ(femrt_kernel_launch(kernel, args.data(), (int32_t)args.size(),
                                nullptr),
            FEMRT_ERROR_SHAPE_MISMATCH);
  EXPECT_NE(std::string(femrt_last_error()).find("'out'"), std::string::npos)
      << femrt_last_error();
  femrt_module_destroy(module);
  femrt_context_destroy(ctx);
}

} // namespace

namespace {

/// Inputs/many_extents.mlir through libfemrt: 25 arguments naming 97 extents
/// (a0..a8 and b0..b8 share e0..e71). The glue binds every one of them (it
/// once kept 64 and wrote past them).
class ManyExtents : public ::testing::Test {
protected:
  void SetUp() override {
    ASSERT_EQ(femrt_context_create(nullptr, &ctx), FEMRT_OK)
        << femrt_last_error();
    ASSERT_EQ(femrt_module_load_library(ctx, FEMC_MANY_EXTENTS_LIBRARY,
                                        &module),
              FEMRT_OK)
        << femrt_last_error();
    ASSERT_EQ(femrt_module_get_kernel(module, "many", &kernel), FEMRT_OK)
        << femrt_last_error();
    // q, k, v, lam, gate, out: (1, 8, 1, 8); beta_raw: (8); a0..b8: rank 8.
    for (int i = 0; i < 25; ++i) {
      if (i == 3)
        shapes[i] = {8};
      else if (i >= 6 && i < 24)
        shapes[i] = std::vector<int64_t>(8, 1);
      else
        shapes[i] = {1, 8, 1, 8};
      buffers[i].assign(64, 0.25f);
    }
  }
  void TearDown() override {
    femrt_module_destroy(module);
    femrt_context_destroy(ctx);
  }
  femrt_status launch() {
    std::vector<DLTensor> t;
    for (int i = 0; i < 25; ++i)
      t.push_back(tensor(buffers[i].data(), shapes[i]));
    std::vector<const DLTensor *> args;
    for (auto &d : t)
      args.push_back(&d);
    return femrt_kernel_launch(kernel, args.data(), (int32_t)args.size(),
                               nullptr);
  }

  femrt_context *ctx = nullptr;
  femrt_module *module = nullptr;
  femrt_kernel *kernel = nullptr;
  std::vector<int64_t> shapes[25];
  std::vector<float> buffers[25];
};

TEST_F(ManyExtents, TablesNameEveryExtent) {
  const femrt_arg_info *info = nullptr;
  ASSERT_EQ(femrt_kernel_get_arg_info(kernel, 23, &info), FEMRT_OK);
  EXPECT_STREQ(info->name, "b8");
  EXPECT_STREQ(info->dim_names, "e64,e65,e66,e67,e68,e69,e70,e71");
}

TEST_F(ManyExtents, LaunchesAndBinds) {
  ASSERT_EQ(launch(), FEMRT_OK) << femrt_last_error();
  for (int j = 0; j < 64; ++j)
    EXPECT_TRUE(std::isfinite(buffers[24][j])) << j;
  // e71 = 2 in both a8 and b8: consistent.
  shapes[14][7] = shapes[23][7] = 2;
  EXPECT_EQ(launch(), FEMRT_OK) << femrt_last_error();
}

TEST_F(ManyExtents, MismatchBeyond64NamesTheExtent) {
  shapes[23][5] = 2; // b8's e69
  ASSERT_EQ(launch(), FEMRT_ERROR_SHAPE_MISMATCH);
  EXPECT_NE(std::string(femrt_last_error())
                .find("argument 'b8' (#23) dimension 5 (e69) is 2 but "
                      "argument 'a8' has e69 = 1"),
            std::string::npos)
      << femrt_last_error();
}

} // namespace
