//===- MatmulStageAmxTest.cpp - the split-bf16 AMX stages vs f32 ----------===//
//
// fem-layer-matmul's AMX stages (passes/layer/LayerMatmulAmx.cpp) for
// --matmul-precision=bf16x3 and bf16x6, called through their workgroup
// functions in Inputs/matmul_stages.mlir compiled for sapphirerapids (AMX-
// BF16), next to the f32 stages of the same target (--matmul-precision=f32),
// on the same inputs, against the double product. Per case the error is
// max over C of |C - ref| / (|C0| + sum_k |a_k b_k|); bf16x6 must stay
// within 2x of the f32 stages' error (plus one f32 rounding), bf16x3 within
// 2^-15. Shapes with K = 1..4096 and M, N off the 16 x 32 blocks, values
// over 2^±20, sums that cancel, and zeros, infinities and NaNs (the same
// non-finite outputs as the f32 stages). Skipped, naming why, where the CPU
// or Linux does not give this process AMX tiles.
//
//===----------------------------------------------------------------------===//
#include "passes/layer/LayerMatmulBlocking.h"
#include "test/integration/AmxHost.h"

#include <gtest/gtest.h>

#include <dlfcn.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace {

using femc::layer::AmxBlocking;
using femc::layer::MatmulBlocking;
using femc::layer::MatmulPrecision;
using femc::layer::StageMemref;
using femc::layer::stageMemref;

using Fn3 = void (*)(void *, void *, int64_t);
using Fn4 = void (*)(void *, void *, void *, int64_t);
using bf16 = uint16_t;

struct Library {
  void *handle = nullptr;
  void *sym(const char *name) {
    return handle ? dlsym(handle, name) : nullptr;
  }
};

Library open(const char *path) {
  Library l;
  l.handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  return l;
}

enum class Values { Uniform, WideRange, Cancelling };

struct Case {
  int64_t M, N, K;
  Values values;
  bool nt;
};

std::string describe(const Case &c) {
  const char *v = c.values == Values::Uniform     ? "uniform"
                  : c.values == Values::WideRange ? "2^+-20"
                                                  : "cancelling";
  char buf[128];
  std::snprintf(buf, sizeof buf, "M=%lld N=%lld K=%lld %s %s",
                (long long)c.M, (long long)c.N, (long long)c.K, v,
                c.nt ? "nt" : "nn");
  return buf;
}

struct Inputs {
  std::vector<float> A, B, C0; // B as (N, K) if nt, else (K, N)
};

Inputs makeInputs(const Case &c) {
  std::mt19937 rng(c.M * 131 + c.N * 17 + c.K * 7 + int(c.values));
  std::uniform_real_distribution<float> u(-1.0f, 1.0f), e(-20.0f, 20.0f);
  auto draw = [&] {
    float x = u(rng);
    return c.values == Values::WideRange ? std::ldexp(x, int(e(rng))) : x;
  };
  Inputs in;
  in.A.resize(c.M * c.K);
  in.B.resize(c.N * c.K);
  in.C0.resize(c.M * c.N);
  for (float &v : in.A)
    v = draw();
  for (float &v : in.B)
    v = draw();
  for (float &v : in.C0)
    v = draw();
  if (c.values == Values::Cancelling && c.K >= 2) {
    // The second half of K repeats the first with B negated (and nudged):
    // sums far below their terms.
    int64_t h = c.K / 2;
    for (int64_t r = 0; r < c.M; ++r)
      for (int64_t k = 0; k < h; ++k)
        in.A[r * c.K + h + k] = in.A[r * c.K + k];
    for (int64_t n = 0; n < c.N; ++n)
      for (int64_t k = 0; k < h; ++k) {
        float &lo = c.nt ? in.B[n * c.K + k] : in.B[k * c.N + n];
        float &hi = c.nt ? in.B[n * c.K + h + k] : in.B[(h + k) * c.N + n];
        hi = -lo * (1.0f + 0x1p-20f);
      }
    for (float &v : in.C0)
      v *= 0x1p-10f;
  }
  return in;
}

class AmxStages : public ::testing::Test {
protected:
  void SetUp() override {
    if (std::string why = femc::test::amxUnavailable(); !why.empty())
      GTEST_SKIP() << why << ": the AMX matmul stages are compiled but not run";
    f32 = open(FEMC_MATMUL_AMX_F32_LIBRARY);
    x3 = open(FEMC_MATMUL_AMX_BF16X3_LIBRARY);
    x6 = open(FEMC_MATMUL_AMX_BF16X6_LIBRARY);
    ASSERT_TRUE(f32.handle && x3.handle && x6.handle) << dlerror();
  }
  void TearDown() override {
    for (Library *l : {&f32, &x3, &x6})
      if (l->handle)
        dlclose(l->handle);
  }

  /// C0 + A·B through the f32 stages (16 lanes).
  std::vector<float> runF32(const Case &c, const Inputs &in) {
    auto packNt = reinterpret_cast<Fn3>(
        f32.sym("_mlir_ciface_mm_stages_mm_pack_nt_wg"));
    auto packNn = reinterpret_cast<Fn3>(
        f32.sym("_mlir_ciface_mm_stages_mm_pack_nn_wg"));
    auto packA =
        reinterpret_cast<Fn3>(f32.sym("_mlir_ciface_mm_stages_mm_pack_a_wg"));
    auto mm = reinterpret_cast<Fn4>(f32.sym("_mlir_ciface_mm_stages_mm_wg"));
    EXPECT_TRUE(packNt && packNn && packA && mm);
    MatmulBlocking blk = femc::layer::matmulBlocking(16);
    std::vector<float> A = in.A, B = in.B, C = in.C0;
    int64_t panels = blk.packGroups(c.N);
    std::vector<float> P(panels * c.K * blk.panel());
    auto a = stageMemref<2>(A.data(), {c.M, c.K});
    auto b = c.nt ? stageMemref<2>(B.data(), {c.N, c.K})
                  : stageMemref<2>(B.data(), {c.K, c.N});
    auto p = stageMemref<3>(P.data(), {panels, c.K, blk.panel()});
    auto cm = stageMemref<2>(C.data(), {c.M, c.N});
    int64_t blocks = blk.packAGroups(c.M);
    std::vector<float> Ap(blocks * c.K * blk.rows);
    auto ap = stageMemref<3>(Ap.data(), {blocks, c.K, blk.rows});
    for (int64_t i = 0; i < blocks; ++i)
      packA(&a, &ap, i);
    for (int64_t i = 0; i < panels; ++i)
      (c.nt ? packNt : packNn)(&b, &p, i);
    for (int64_t i = 0, n = blk.matmulGroups(c.M, c.N); i < n; ++i)
      mm(&ap, &p, &cm, i);
    return C;
  }

  /// C0 + A·B through the AMX stages of `lib` (pieces per element).
  std::vector<float> runAmx(Library &lib, int64_t pieces, const Case &c,
                            const Inputs &in) {
    auto packA = reinterpret_cast<Fn3>(
        lib.sym("_mlir_ciface_mm_stages_mmx_pack_a_wg"));
    auto packB = reinterpret_cast<Fn3>(
        lib.sym(c.nt ? "_mlir_ciface_mm_stages_mmx_pack_nt_wg"
                     : "_mlir_ciface_mm_stages_mmx_pack_nn_wg"));
    auto mm = reinterpret_cast<Fn4>(lib.sym("_mlir_ciface_mm_stages_mmx_wg"));
    EXPECT_TRUE(packA && packB && mm);
    AmxBlocking blk{pieces};
    std::vector<float> A = in.A, B = in.B, C = in.C0;
    // 0xFFFF is a NaN: the packs must write every element, padding too.
    std::vector<bf16> Ap(blk.packedRowsA(c.M, c.K) * 32, 0xFFFF),
        Bp(blk.packedRowsB(c.N, c.K) * 32, 0xFFFF);
    auto a = stageMemref<2>(A.data(), {c.M, c.K});
    auto b = c.nt ? stageMemref<2>(B.data(), {c.N, c.K})
                  : stageMemref<2>(B.data(), {c.K, c.N});
    auto ap = stageMemref<2, bf16>(Ap.data(), {blk.packedRowsA(c.M, c.K), 32});
    auto bp = stageMemref<2, bf16>(Bp.data(), {blk.packedRowsB(c.N, c.K), 32});
    auto cm = stageMemref<2>(C.data(), {c.M, c.N});
    for (int64_t i = 0; i < AmxBlocking::rowTiles(c.M); ++i)
      packA(&a, &ap, i);
    for (int64_t i = 0; i < AmxBlocking::colTiles(c.N); ++i)
      packB(&b, &bp, i);
    for (int64_t i = 0, n = AmxBlocking::matmulGroups(c.M, c.N); i < n; ++i)
      mm(&ap, &bp, &cm, i);
    return C;
  }

  /// max |C - ref| / (|C0| + sum |a b|), NaN/inf as +inf.
  static double error(const Case &c, const Inputs &in,
                      const std::vector<float> &C) {
    double worst = 0;
    for (int64_t r = 0; r < c.M; ++r)
      for (int64_t j = 0; j < c.N; ++j) {
        double ref = in.C0[r * c.N + j], scale = std::fabs(ref);
        for (int64_t k = 0; k < c.K; ++k) {
          double t = double(in.A[r * c.K + k]) *
                     (c.nt ? in.B[j * c.K + k] : in.B[k * c.N + j]);
          ref += t;
          scale += std::fabs(t);
        }
        double err = std::fabs(ref - C[r * c.N + j]) / scale;
        if (!(err <= worst))
          worst = std::isnan(err) ? INFINITY : err;
      }
    return worst;
  }

  Library f32, x3, x6;
};

TEST_F(AmxStages, SplitModesMatchTheDoubleProductAsF32Does) {
  std::vector<Case> cases;
  const int64_t ks[] = {1, 2, 3, 15, 16, 17, 31, 32, 33, 64, 100, 255,
                        256, 257, 1000, 1024, 4096};
  for (int64_t k : ks)
    cases.push_back({k >= 1024 ? 33 : 17, k >= 1024 ? 47 : 33, k,
                     Values::Uniform, k % 2 == 1});
  for (Values v : {Values::Uniform, Values::WideRange, Values::Cancelling})
    for (bool nt : {true, false}) {
      cases.push_back({1, 1, 1, v, nt});
      cases.push_back({1, 5, 3, v, nt});
      cases.push_back({37, 45, 19, v, nt});
      cases.push_back({300, 70, 513, v, nt});  // 2 row shares, 3 col pairs
      cases.push_back({600, 290, 130, v, nt}); // 3 x 2 tiles of C
      cases.push_back({64, 64, 1024, v, nt});
    }
  // K = 4096: the matmul takes a workgroup's row tiles in blocks of
  // 1024 / (pieces · kTiles) = 2 (bf16x6) or 4 (bf16x3) so that their A
  // stays in L2: 10 and 6 row tiles run whole and partial blocks.
  cases.push_back({160, 64, 4096, Values::Uniform, true});
  cases.push_back({90, 40, 4096, Values::Cancelling, false});
  std::printf("%-36s %12s %12s %12s\n", "case", "f32", "bf16x3", "bf16x6");
  for (const Case &c : cases) {
    SCOPED_TRACE(describe(c));
    Inputs in = makeInputs(c);
    double e32 = error(c, in, runF32(c, in));
    double e3 = error(c, in, runAmx(x3, 2, c, in));
    double e6 = error(c, in, runAmx(x6, 3, c, in));
    std::printf("%-36s %12.3e %12.3e %12.3e\n", describe(c).c_str(), e32, e3,
                e6);
    EXPECT_LE(e32, 1e-6 * (c.K + 1)) << "the f32 stages themselves";
    EXPECT_LE(e6, 2 * e32 + 0x1p-24) << "bf16x6 against f32 " << e32;
    EXPECT_LE(e3, 0x1p-15) << "bf16x3";
  }
}

TEST_F(AmxStages, NonFiniteInputsGiveWhatF32Gives) {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (bool nt : {true, false}) {
    Case c{20, 35, 40, Values::Uniform, nt};
    SCOPED_TRACE(describe(c));
    Inputs in = makeInputs(c);
    auto b = [&](int64_t k, int64_t n) -> float & {
      return nt ? in.B[n * c.K + k] : in.B[k * c.N + n];
    };
    in.A[0 * c.K + 3] = inf;    // row 0: +-inf, or NaN where B is 0
    b(3, 5) = 0.0f;             // inf * 0
    b(3, 6) = 1.0f;             // exact bf16: its later pieces are 0
    in.A[1 * c.K + 7] = -inf;   // row 1 with an inf in B too: inf - inf
    b(8, 2) = inf;
    in.A[1 * c.K + 8] = 1.0f;
    in.A[2 * c.K + 9] = nan;    // row 2: NaN
    b(11, 30) = nan;            // column 30: NaN
    // A NaN whose payload is in the low 16 bits only.
    uint32_t bits = 0x7F800001u;
    std::memcpy(&in.A[3 * c.K + 1], &bits, 4);
    for (int64_t k = 0; k < c.K; ++k)
      in.A[4 * c.K + k] = 0.0f; // row 4: zeros
    in.C0[4 * c.N + 9] = 0.0f;
    std::vector<float> ref = runF32(c, in);
    for (auto [lib, pieces] : {std::pair{&x3, 2}, std::pair{&x6, 3}}) {
      std::vector<float> got = runAmx(*lib, pieces, c, in);
      for (int64_t i = 0; i < c.M * c.N; ++i) {
        bool same = std::isnan(ref[i])   ? std::isnan(got[i])
                    : std::isinf(ref[i]) ? got[i] == ref[i]
                                         : std::isfinite(got[i]);
        EXPECT_TRUE(same) << pieces << " pieces: C[" << i / c.N << "]["
                          << i % c.N << "] = " << got[i] << ", f32 "
                          << ref[i];
      }
      // A row of zeros adds nothing: C0 exactly (a zero's sign may differ:
      // AMX sums -0 + -0 products to +0).
      for (int64_t j = 0; j < c.N; ++j)
        if (std::isfinite(ref[4 * c.N + j])) // not B's inf and NaN columns
          EXPECT_EQ(got[4 * c.N + j], in.C0[4 * c.N + j])
            << "row of zeros, column " << j;
    }
  }
}

} // namespace
