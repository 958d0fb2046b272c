//===- ShapeMatrixTest.cpp - femc softmax kernels vs the reference ---------===//
//
// Runs the kernels of matrix.mlir (compiled by femc at build time) through
// libfemrt on a matrix of shapes and compares each output with the
// double-precision reference: max |out - ref| <= 1e-4 * max |ref|
// (docs/semantics.md, "Tolerances"). The tolerance is a property of float32
// accumulation and is not tuned per case.
//
//===----------------------------------------------------------------------===//
#include "femrt/femrt.h"
#include "reference/Reference.h"
#include "support/Npy.h"
#include "support/Random.h"
#include "test/integration/KernelLibrary.h"
#include "test/integration/TestProblem.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace {

constexpr double kTolerance = 1e-4;

struct Case : femc::test::CaseShape {
  double gateScale = 3;
  bool maskFirstKeys = false; // rows with no visible key (causal + mask)
  /// When set, beta_raw of query head h is centred on headBetaRaw[h % size]
  /// instead of betaRaw (heads of one kv group with different betas).
  std::vector<double> headBetaRaw;
  // The kernel's attributes (matrix.mlir), for the reference.
  double cap = 40.0, eps = 1e-6;
  std::optional<double> scale;
  std::string kernel;

  std::string str() const {
    std::ostringstream os;
    os << kernel << " B=" << B << " T=" << T << " S=" << S << " H=" << H
       << " Hkv=" << Hkv << " dk=" << dk << " dv=" << dv
       << " beta_raw~" << betaRaw << " |v|<=" << vScale
       << " |gate|<=" << gateScale << " cap=" << cap << " eps=" << eps;
    if (scale)
      os << " scale=" << *scale;
    for (size_t h = 0; h < headBetaRaw.size(); ++h)
      os << (h ? "," : " head beta_raw~") << headBetaRaw[h];
    return os.str();
  }
};

std::string kernelName(bool causal, bool mask, bool bhtd) {
  return std::string("softmax_") + (causal ? "causal" : "full") +
         (mask ? "_mask" : "_nomask") + (bhtd ? "_bhtd" : "_bthd");
}

femc::test::KernelLibrary &runtime() {
  static femc::test::KernelLibrary rt(FEMC_MATRIX_LIBRARY);
  return rt;
}

/// An f32 tensor, or the u8 key mask.
DLTensor tensor(void *data, std::vector<int64_t> &shape, bool isFloat) {
  return femc::test::dlTensor(data, shape,
                              isFloat ? femc::test::kF32 : femc::test::kU8);
}

/// Launches `kernel` on `tensors` in order.
femrt_status launch(femrt_kernel *kernel, std::vector<DLTensor> &tensors) {
  std::vector<const DLTensor *> args;
  for (DLTensor &t : tensors)
    args.push_back(&t);
  return femrt_kernel_launch(kernel, args.data(),
                             static_cast<int32_t>(args.size()), nullptr);
}

/// Runs one case on the kernel and on the reference; returns the relative
/// error max|out - ref| / max|ref|, or -1 after reporting a failure.
void runCase(const Case &c, uint64_t seed) {
  SCOPED_TRACE(c.str());
  femc::ref::Problem p = c.problem();
  p.cap = c.cap;
  p.eps = c.eps;
  p.scale = c.scale;
  auto shapeOf = [&](const char *name) {
    return *femc::ref::tensorShape(p, name);
  };
  femc::Rng rng(seed);
  auto make = [&](const char *name, double lo, double hi) {
    std::vector<float> data(femc::test::numElements(shapeOf(name)));
    rng.fillUniform(data, lo, hi);
    return data;
  };
  std::vector<float> q = make("q", -2, 2), k = make("k", -2, 2),
                     v = make("v", -c.vScale, c.vScale),
                     beta = make("beta_raw", c.betaRaw - 0.5, c.betaRaw + 0.5),
                     lam = make("lam", -3, 3),
                     gate = make("gate", -c.gateScale, c.gateScale);
  if (!c.headBetaRaw.empty())
    for (size_t i = 0; i < beta.size(); ++i)
      beta[i] += static_cast<float>(
          c.headBetaRaw[(i / c.dv) % c.headBetaRaw.size()] - c.betaRaw);
  std::vector<uint8_t> mask;
  if (c.mask) {
    mask.resize(c.B * c.S);
    for (auto &m : mask)
      m = rng.uniform01() < 0.8;
    if (c.maskFirstKeys)
      for (int64_t s = 0; s < std::min<int64_t>(c.S, 5); ++s)
        mask[s] = 0; // batch 0: rows 0..4 see no key under a causal prior
  }
  std::vector<float> out(c.B * c.T * c.H * c.dv, std::nanf(""));

  std::vector<std::vector<int64_t>> shapes = {
      shapeOf("q"),   shapeOf("k"),    shapeOf("v"),  shapeOf("beta_raw"),
      shapeOf("lam"), shapeOf("gate"), {c.B, c.S},    shapeOf("out")};
  std::vector<DLTensor> dl = {
      tensor(q.data(), shapes[0], true),    tensor(k.data(), shapes[1], true),
      tensor(v.data(), shapes[2], true),    tensor(beta.data(), shapes[3], true),
      tensor(lam.data(), shapes[4], true),  tensor(gate.data(), shapes[5], true)};
  if (c.mask)
    dl.push_back(tensor(mask.data(), shapes[6], false));
  dl.push_back(tensor(out.data(), shapes[7], true));
  femrt_kernel *kernel = runtime().kernel(c.kernel);
  ASSERT_NE(kernel, nullptr);
  ASSERT_EQ(launch(kernel, dl), FEMRT_OK) << femrt_last_error();

  femc::ref::Inputs in;
  in.q = q.data();
  in.k = k.data();
  in.v = v.data();
  in.beta_raw = beta.data();
  in.lam = lam.data();
  in.gate = gate.data();
  in.mask = c.mask ? mask.data() : nullptr;
  std::string error;
  auto ref = femc::ref::run(p, in, error);
  ASSERT_TRUE(ref.has_value()) << error;

  femc::test::MaxError err;
  for (size_t i = 0; i < out.size(); ++i) {
    ASSERT_TRUE(std::isfinite(out[i])) << "element " << i << " is " << out[i];
    err.add(i, out[i], ref->out[i]);
  }
  EXPECT_LE(err.maxErr, kTolerance * err.maxRef)
      << "relative error " << err.maxErr / err.maxRef << " at element "
      << err.worst << ": out " << out[err.worst] << ", reference "
      << ref->out[err.worst];
  if (c.maskFirstKeys && c.causal)
    for (int64_t t = 0; t < std::min<int64_t>(c.T, 5); ++t)
      for (int64_t h = 0; h < c.H; ++h)
        for (int64_t ch = 0; ch < c.dv; ++ch) {
          size_t i = c.bhtd ? ((h * c.T + t) * c.dv + ch)
                            : ((t * c.H + h) * c.dv + ch);
          ASSERT_EQ(out[i], 0.0f) << "row " << t << " has no visible key";
        }
}

/// The listed values of the issue, each used at least once per combination.
const int64_t kT[] = {1, 2, 7, 63, 64, 65, 257, 1000};
const int64_t kB[] = {1, 3};
const int64_t kH[] = {1, 4};
const int64_t kDk[] = {8, 64, 128};
const int64_t kDv[] = {8, 64, 96};
const double kBeta[] = {-4, 0, 8};
const double kVScale[] = {1, 100};

struct Combination {
  bool causal, mask, bhtd, grouped;
};

class ShapeMatrix : public ::testing::TestWithParam<Combination> {};

TEST_P(ShapeMatrix, ListedValues) {
  Combination m = GetParam();
  for (int i = 0; i < 8; ++i) {
    Case c;
    c.causal = m.causal;
    c.mask = m.mask;
    c.bhtd = m.bhtd;
    c.kernel = kernelName(m.causal, m.mask, m.bhtd);
    c.T = kT[i];
    c.B = c.T >= 257 ? 1 : kB[i % 2];
    c.H = m.grouped ? 4 : kH[(i / 2) % 2];
    c.Hkv = m.grouped ? 1 : c.H;
    c.dk = kDk[i % 3];
    c.dv = kDv[(i + 1) % 3];
    if (c.T == 1000) { // keep the reference's O(T^2) cost bounded
      c.dk = 8;
      c.dv = 8;
    }
    c.betaRaw = kBeta[i % 3];
    c.vScale = kVScale[(i / 3) % 2];
    // Cross-attention lengths for non-causal reads.
    c.S = (!m.causal && i % 4 == 3) ? c.T + 5 : c.T;
    c.maskFirstKeys = m.mask && i == 5;
    runCase(c, 1000 + i);
    if (HasFatalFailure())
      return;
  }
}

std::string combinationName(const ::testing::TestParamInfo<Combination> &info) {
  const Combination &m = info.param;
  return std::string(m.causal ? "causal" : "full") + (m.mask ? "_mask" : "_nomask") +
         (m.bhtd ? "_bhtd" : "_bthd") + (m.grouped ? "_gqa4" : "_mha");
}

std::vector<Combination> allCombinations() {
  std::vector<Combination> out;
  for (int i = 0; i < 16; ++i)
    out.push_back({bool(i & 1), bool(i & 2), bool(i & 4), bool(i & 8)});
  return out;
}

INSTANTIATE_TEST_SUITE_P(Softmax, ShapeMatrix,
                         ::testing::ValuesIn(allCombinations()),
                         combinationName);

TEST(ShapeMatrixRandom, SeededSample) {
  femc::Rng rng(20261128);
  for (int i = 0; i < 24; ++i) {
    Case c;
    c.causal = rng.below(2);
    c.mask = rng.below(2);
    c.bhtd = rng.below(2);
    c.kernel = kernelName(c.causal, c.mask, c.bhtd);
    c.T = 1 + static_cast<int64_t>(rng.below(300));
    c.S = c.causal ? c.T : 1 + static_cast<int64_t>(rng.below(300));
    c.B = 1 + static_cast<int64_t>(rng.below(2));
    c.Hkv = 1 + static_cast<int64_t>(rng.below(2));
    c.H = c.Hkv * (1 + static_cast<int64_t>(rng.below(3)));
    c.dk = 1 + static_cast<int64_t>(rng.below(80));
    c.dv = 1 + static_cast<int64_t>(rng.below(80));
    c.betaRaw = rng.uniform(-6, 9);
    c.vScale = rng.uniform(0.1, 120);
    runCase(c, 5000 + i);
    if (HasFatalFailure())
      return;
  }
}

TEST(ShapeMatrixTiles, SmallAndWideTiles) {
  for (int64_t T : {1, 15, 16, 17, 100}) {
    Case c;
    c.causal = true;
    c.mask = true;
    c.kernel = "softmax_causal_mask_bthd_small_tiles";
    c.T = c.S = T;
    c.B = 2;
    c.H = 2;
    c.Hkv = 1;
    c.dk = 12;
    c.dv = 20;
    c.maskFirstKeys = true;
    runCase(c, 7000 + T);
  }
  for (int64_t T : {1, 127, 128, 129, 300}) {
    Case c;
    c.causal = false;
    c.bhtd = true;
    c.kernel = "softmax_full_nomask_bhtd_wide_tiles";
    c.T = T;
    c.S = T + 3;
    c.H = 3;
    c.Hkv = 3;
    c.dk = 16;
    c.dv = 24;
    runCase(c, 8000 + T);
  }
}

TEST(ShapeMatrixStatic, StaticHeads) {
  for (int64_t T : {1, 64, 129}) {
    Case c;
    c.causal = true;
    c.kernel = "softmax_causal_static_heads";
    c.T = c.S = T;
    c.B = 2;
    c.H = 4;
    c.Hkv = 4;
    c.dk = 64;
    c.dv = 64;
    c.betaRaw = 1.8;
    runCase(c, 9000 + T);
  }
}

/// One kv group whose query heads differ in kind: beta_raw ~ -30 (beta ~
/// 1e-6, every channel narrow: the value panel stores X - 1 = expm1(z)) and
/// beta_raw ~ 2 (no narrow channel: the panel without expm1), in both
/// orders within a group (heads [narrow, wide] and [wide, narrow]). The
/// per-head choice of panel must not leak from one head of the group to
/// the next: a narrow head read with the wide-only panel errs by ~1e5 x.
TEST(ShapeMatrixHeads, NarrowAndWideHeadsInOneGroup) {
  int seed = 0;
  for (bool causal : {true, false})
    for (bool bhtd : {false, true})
      for (int64_t T : {1, 65, 200}) {
        Case c;
        c.causal = causal;
        c.mask = !causal;
        c.bhtd = bhtd;
        c.kernel = kernelName(c.causal, c.mask, c.bhtd);
        c.T = T;
        c.S = T;
        c.H = 4;
        c.Hkv = 2;
        c.dk = 16;
        c.dv = 40; // not a multiple of the vector width
        c.betaRaw = 0;
        c.headBetaRaw = {-30, 2, 2, -30};
        c.vScale = 1;
        runCase(c, 13000 + seed++);
        if (HasFatalFailure())
          return;
      }
}

/// The accepted ends of the cap, eps and scale ranges (dialect/FEMOps.cpp,
/// docs/dialect.md "Attribute ranges"), one kernel each per vector width, on
/// the inputs that used to give wrong results: a tiny beta (beta_raw down to
/// -30, where F divides log Z by beta ~ 1e-6), a large one, gate logits of
/// +-1e30 (the norm of g+ overflowed float32 and gave 0), values of 1e30 and
/// T = 1 and odd lengths across the tiles (q = 48 or 64, k = 32).
struct Limit {
  const char *name;
  double cap = 40.0, eps = 1e-6;
  std::optional<double> scale;
};
const Limit kLimits[] = {
    {"default"},
    {"cap_min", 1e-5},
    {"cap_max", 43.0},
    {"eps_min", 40.0, 1e-30},
    {"eps_max", 40.0, 1e30},
    {"scale_min", 40.0, 1e-6, 1.17549435e-38},
    {"scale_max", 40.0, 1e-6, 3.40282347e38},
    {"all_min", 1e-5, 1e-30, 1.17549435e-38},
    {"all_max", 43.0, 1e30, 3.40282347e38},
};

struct LimitCase {
  double betaRaw, vScale, gateScale;
  int64_t T;
};
const LimitCase kLimitCases[] = {
    {-30, 1, 3, 1},       {-30, 100, 3, 65},  {-20, 1, 3, 7},
    {-20, 100, 3, 97},    {-10, 1, 3, 33},    {-10, 100, 3, 130},
    {0, 1, 3, 1},         {0, 1, 1e30, 51},   {-20, 1, 1e30, 7},
    {30, 1, 3, 65},       {30, 100, 3, 1},    {30, 1, 1e30, 33},
    {0, 1e30, 3, 49},     {-30, 1e30, 3, 7},  {30, 1e30, 1e30, 64},
    {-10, 0.01, 3, 129},
};

class Limits : public ::testing::TestWithParam<std::pair<Limit, int>> {};

TEST_P(Limits, MatchTheReference) {
  auto [limit, vec] = GetParam();
  int seed = 0;
  for (const LimitCase &lc : kLimitCases) {
    Case c;
    c.causal = true;
    c.kernel = std::string("softmax_limits_") + limit.name + "_vec" +
               std::to_string(vec);
    c.cap = limit.cap;
    c.eps = limit.eps;
    c.scale = limit.scale;
    c.T = c.S = lc.T;
    c.B = 1;
    c.H = 2;
    c.Hkv = 1;
    c.dk = 12;
    c.dv = 20; // not a multiple of either vector width
    c.betaRaw = lc.betaRaw;
    c.vScale = lc.vScale;
    c.gateScale = lc.gateScale;
    runCase(c, 11000 + seed++);
    if (HasFatalFailure())
      return;
  }
}

std::vector<std::pair<Limit, int>> allLimits() {
  std::vector<std::pair<Limit, int>> out;
  for (const Limit &l : kLimits)
    for (int vec : {8, 16})
      out.push_back({l, vec});
  return out;
}

INSTANTIATE_TEST_SUITE_P(
    Softmax, Limits, ::testing::ValuesIn(allLimits()),
    [](const ::testing::TestParamInfo<std::pair<Limit, int>> &info) {
      return std::string(info.param.first.name) + "_vec" +
             std::to_string(info.param.second);
    });

/// A kernel refuses shapes that contradict its static extents, naming the
/// argument, instead of reading out of bounds.
TEST(ShapeMatrixErrors, WrongShapeIsAnError) {
  std::vector<float> buf(4 * 64 * 64);
  std::vector<int64_t> q = {1, 4, 4, 64}, k = {1, 4, 4, 32}, b = {256};
  DLTensor tq = tensor(buf.data(), q, true), tk = tensor(buf.data(), k, true),
           tb = tensor(buf.data(), b, true);
  std::vector<DLTensor> t = {tq, tk, tq, tb, tq, tq, tq};
  femrt_kernel *kernel = runtime().kernel("softmax_causal_static_heads");
  ASSERT_NE(kernel, nullptr);
  EXPECT_NE(launch(kernel, t), FEMRT_OK);
  EXPECT_NE(std::string(femrt_last_error()).find("'k'"), std::string::npos)
      << femrt_last_error();
}

/// Cross-attention with no key at all: every row has no visible key and
/// reads 0 (docs/semantics.md), for both layouts.
TEST(ShapeMatrixEdges, NoKeys) {
  for (bool bhtd : {false, true}) {
    const int64_t T = 5, H = 2, d = 8;
    std::vector<float> q(T * H * d, 0.5f), beta(H * d, 0.0f),
        out(T * H * d, std::nanf(""));
    std::vector<int64_t> sq = bhtd ? std::vector<int64_t>{1, H, T, d}
                                   : std::vector<int64_t>{1, T, H, d},
                         sk = bhtd ? std::vector<int64_t>{1, H, 0, d}
                                   : std::vector<int64_t>{1, 0, H, d},
                         sb = {H * d};
    std::vector<DLTensor> t = {tensor(q.data(), sq, true), tensor(nullptr, sk, true),
                     tensor(nullptr, sk, true),  tensor(beta.data(), sb, true),
                     tensor(q.data(), sq, true), tensor(q.data(), sq, true),
                     tensor(out.data(), sq, true)};
    femrt_kernel *kernel = runtime().kernel(
        bhtd ? "softmax_full_nomask_bhtd" : "softmax_full_nomask_bthd");
    ASSERT_EQ(launch(kernel, t), FEMRT_OK)
        << femrt_last_error();
    for (float x : out)
      EXPECT_EQ(x, 0.0f);
  }
}

/// A key mask may come as bool, uint8 or int8 bytes (numpy and torch export
/// masks differently); a float mask is refused, naming the argument.
TEST(ShapeMatrixErrors, MaskDtypes) {
  const int64_t T = 8, H = 1, d = 8;
  std::vector<float> x(T * H * d, 0.5f), beta(H * d, 0.0f), out(T * H * d);
  std::vector<uint8_t> mask(T, 1);
  std::vector<int64_t> s4 = {1, T, H, d}, sb = {H * d}, sm = {1, T};
  femrt_kernel *kernel = runtime().kernel("softmax_causal_mask_bthd");
  ASSERT_NE(kernel, nullptr);
  const uint8_t kBool = 6; // kDLBool (DLPack >= 0.8)
  for (DLDataType dtype : {DLDataType{kBool, 8, 1}, DLDataType{kDLUInt, 8, 1},
                           DLDataType{kDLInt, 8, 1}, DLDataType{kDLFloat, 32, 1}}) {
    std::vector<DLTensor> t = {tensor(x.data(), s4, true),    tensor(x.data(), s4, true),
                     tensor(x.data(), s4, true),    tensor(beta.data(), sb, true),
                     tensor(x.data(), s4, true),    tensor(x.data(), s4, true),
                     tensor(mask.data(), sm, false), tensor(out.data(), s4, true)};
    t[6].dtype = dtype;
    femrt_status status = launch(kernel, t);
    if (dtype.code == kDLFloat) {
      EXPECT_EQ(status, FEMRT_ERROR_DTYPE);
      EXPECT_NE(std::string(femrt_last_error()).find("'mask'"), std::string::npos)
          << femrt_last_error();
    } else {
      EXPECT_EQ(status, FEMRT_OK) << femrt_last_error();
    }
  }
}

/// NaN and Inf inputs propagate where the reference's do: out is NaN exactly
/// where the reference's is, and within tolerance elsewhere.
TEST(NonFinite, PropagatesLikeTheReference) {
  struct Poison {
    const char *what;
    int input; // 0 q, 1 k, 2 v, 3 gate, 4 lam
    size_t index;
    float value;
  };
  const Poison cases[] = {
      {"NaN in q (one row)", 0, 3 * 2 * 8 + 5, NAN},
      {"NaN in k (a future key of early rows)", 1, 9 * 2 * 8 + 1, NAN},
      {"NaN in v (the shift of its channel)", 2, 4 * 2 * 8 + 3, NAN},
      {"+Inf in v (clipped to the bound)", 2, 6 * 2 * 8 + 2, INFINITY},
      {"NaN in gate (its row's norm)", 3, 7 * 2 * 8 + 4, NAN},
      {"+Inf in gate (NaN in its channel, 0 in the rest of the row)", 3,
       8 * 2 * 8 + 5, INFINITY},
      {"NaN in lam (one channel)", 4, 2 * 2 * 8 + 6, NAN},
  };
  for (const Poison &poison : cases) {
    SCOPED_TRACE(poison.what);
    const int64_t T = 20, H = 2, dk = 8, dv = 8;
    femc::ref::Problem p;
    p.causal = true;
    p.B = 1;
    p.T = p.S = T;
    p.H = p.Hkv = H;
    p.dk = dk;
    p.dv = dv;
    femc::Rng rng(77);
    std::vector<float> q(T * H * dk), k(T * H * dk), v(T * H * dv),
        beta(H * dv), lam(T * H * dv), gate(T * H * dv),
        out(T * H * dv, 0.0f);
    for (auto *x : {&q, &k, &v, &lam, &gate})
      rng.fillUniform(*x, -2, 2);
    rng.fillUniform(beta, -1, 2);
    std::vector<float> *target[] = {&q, &k, &v, &gate, &lam};
    (*target[poison.input])[poison.index] = poison.value;
    std::vector<int64_t> s4 = {1, T, H, dk}, sb = {H * dv};
    std::vector<DLTensor> t = {tensor(q.data(), s4, true),    tensor(k.data(), s4, true),
                     tensor(v.data(), s4, true),    tensor(beta.data(), sb, true),
                     tensor(lam.data(), s4, true),  tensor(gate.data(), s4, true),
                     tensor(out.data(), s4, true)};
    ASSERT_EQ(launch(runtime().kernel("softmax_causal_nomask_bthd"), t),
              FEMRT_OK)
        << femrt_last_error();
    femc::ref::Inputs in;
    in.q = q.data();
    in.k = k.data();
    in.v = v.data();
    in.beta_raw = beta.data();
    in.lam = lam.data();
    in.gate = gate.data();
    std::string error;
    auto ref = femc::ref::run(p, in, error);
    ASSERT_TRUE(ref.has_value()) << error;
    double maxErr = 0, maxRef = 0;
    int64_t nans = 0;
    for (size_t i = 0; i < out.size(); ++i) {
      bool refNan = std::isnan(ref->out[i]);
      ASSERT_EQ(std::isnan(out[i]), refNan)
          << "element " << i << ": out " << out[i] << ", reference "
          << ref->out[i];
      nans += refNan;
      if (!refNan) {
        maxErr = std::max(maxErr, std::fabs(out[i] - ref->out[i]));
        maxRef = std::max(maxRef, std::fabs(ref->out[i]));
      }
    }
    EXPECT_LE(maxErr, kTolerance * maxRef);
    if (poison.value != INFINITY)
      EXPECT_GT(nans, 0) << "a NaN input must reach the output";
  }
}

/// The authors' softmax vector (B=2, T=64, H=4, dk=dv=16) through femc.
TEST(ReferenceVectors, SoftmaxCausal) {
  std::string dir = std::string(FEMC_SHARED_DIR) + "/vectors/softmax_causal";
  if (!std::filesystem::exists(dir))
    GTEST_SKIP() << "reference vectors not found at " << dir;
  std::string error;
  auto load = [&](const char *name) {
    auto a = femc::npy::readNpy(dir + "/" + name + ".npy", error);
    EXPECT_TRUE(a.has_value()) << error;
    std::vector<float> f;
    EXPECT_TRUE(femc::npy::toFloat32(*a, f, error)) << error;
    return std::make_pair(f, a->shape);
  };
  auto [q, qs] = load("q");
  auto [k, ks] = load("k");
  auto [v, vs] = load("v");
  auto [beta, bs] = load("beta_raw");
  auto [lam, ls] = load("lam");
  auto [gate, gs] = load("gate");
  auto [expected, es] = load("out");
  std::vector<float> out(expected.size());
  std::vector<int64_t> os = es;
  std::vector<DLTensor> t = {tensor(q.data(), qs, true),    tensor(k.data(), ks, true),
                   tensor(v.data(), vs, true),    tensor(beta.data(), bs, true),
                   tensor(lam.data(), ls, true),  tensor(gate.data(), gs, true),
                   tensor(out.data(), os, true)};
  femrt_kernel *kernel = runtime().kernel("softmax_causal_nomask_bthd");
  ASSERT_EQ(launch(kernel, t), FEMRT_OK)
      << femrt_last_error();
  double maxErr = 0, maxRef = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    maxErr = std::max(maxErr, std::fabs(double(out[i]) - expected[i]));
    maxRef = std::max(maxRef, std::fabs(double(expected[i])));
  }
  EXPECT_LE(maxErr, kTolerance * maxRef);
}

} // namespace
