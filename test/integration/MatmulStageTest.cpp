//===- MatmulStageTest.cpp - fem-layer-matmul's stages on edge shapes ----===//
//
// The pack and matmul stages of fem-layer-matmul (passes/layer/
// LayerMatmul.cpp), called through their public workgroup functions in a
// layer library (Inputs/matmul_stages.mlir) compiled for x86-64-v3 (8 lanes,
// the 6 x 2 register block) and x86-64-v4 (16 lanes, 14 x 2), on shapes the
// layers in the other tests never have: M, N, K off every block (register
// rows, panels, K blocks of kc, tiles), M = 1, K = 1, N below one vector,
// and C not zero on entry (the stage adds to it, as it does to a bias).
// Grids from passes/layer/LayerMatmulBlocking.h; checked against a double
// product.
//
//===----------------------------------------------------------------------===//
#include "AmxHost.h"
#include "passes/layer/LayerMatmulBlocking.h"

#include <gtest/gtest.h>

#include <dlfcn.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

namespace {

template <int R> using Memref = femc::layer::StageMemref<R>;
using femc::layer::stageMemref;

using PackFn = void (*)(void *, void *, int64_t);
using MatmulFn = void (*)(void *, void *, void *, int64_t);

struct Shape {
  int64_t M, N, K;
};

class MatmulStages : public ::testing::TestWithParam<int64_t> {
protected:
  void SetUp() override {
    lanes = GetParam();
    // The CPU as femc sees it (target/cpu/HostCpu.h): FEMC_HOST_CPU=znver3
    // masks AVX-512 off on a host that has it, as it does for the kernels.
    if (lanes == 16) {
      __builtin_cpu_init();
      std::string why =
          femc::test::cpuLacks("avx512f", __builtin_cpu_supports("avx512f"));
      if (!why.empty())
        GTEST_SKIP() << "x86-64-v4 stages need AVX-512F: " << why;
    }
    const char *lib = lanes == 16 ? FEMC_MATMUL_STAGES_V4_LIBRARY
                                  : FEMC_MATMUL_STAGES_V3_LIBRARY;
    handle = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
    ASSERT_NE(handle, nullptr) << dlerror();
    packNt = reinterpret_cast<PackFn>(
        dlsym(handle, "_mlir_ciface_mm_stages_mm_pack_nt_wg"));
    packNn = reinterpret_cast<PackFn>(
        dlsym(handle, "_mlir_ciface_mm_stages_mm_pack_nn_wg"));
    packA = reinterpret_cast<PackFn>(
        dlsym(handle, "_mlir_ciface_mm_stages_mm_pack_a_wg"));
    mm = reinterpret_cast<MatmulFn>(
        dlsym(handle, "_mlir_ciface_mm_stages_mm_wg"));
    ASSERT_TRUE(packNt && packNn && packA && mm)
        << lib << " lacks a matmul stage";
  }
  void TearDown() override {
    if (handle)
      dlclose(handle);
  }

  /// C0 + A·B through the stages against the double product; B as (N, K)
  /// if nt, else (K, N).
  void check(Shape s, bool nt) {
    SCOPED_TRACE(testing::Message() << "M=" << s.M << " N=" << s.N
                                    << " K=" << s.K << (nt ? " nt" : " nn"));
    femc::layer::MatmulBlocking blk = femc::layer::matmulBlocking(lanes);
    std::mt19937 rng(s.M * 131 + s.N * 17 + s.K);
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    std::vector<float> A(s.M * s.K), B(s.N * s.K), C(s.M * s.N);
    for (float &v : A)
      v = dist(rng);
    for (float &v : B)
      v = dist(rng);
    for (float &v : C)
      v = dist(rng);
    std::vector<float> C0 = C;
    int64_t panels = blk.packGroups(s.N);
    // Filled with NaN: the pack must write every element, padding included.
    std::vector<float> P(panels * s.K * blk.panel(), std::nanf(""));
    Memref<2> a = stageMemref<2>(A.data(), {s.M, s.K});
    Memref<2> b = nt ? stageMemref<2>(B.data(), {s.N, s.K})
                     : stageMemref<2>(B.data(), {s.K, s.N});
    Memref<3> p = stageMemref<3>(P.data(), {panels, s.K, blk.panel()});
    Memref<2> c = stageMemref<2>(C.data(), {s.M, s.N});
    int64_t blocks = blk.packAGroups(s.M);
    std::vector<float> Ap(blocks * s.K * blk.rows, std::nanf(""));
    Memref<3> ap = stageMemref<3>(Ap.data(), {blocks, s.K, blk.rows});
    for (int64_t i = 0; i < blocks; ++i)
      packA(&a, &ap, i);
    for (int64_t i = 0; i < panels; ++i)
      (nt ? packNt : packNn)(&b, &p, i);
    for (int64_t i = 0, n = blk.matmulGroups(s.M, s.N); i < n; ++i)
      mm(&ap, &p, &c, i);
    double worst = 0;
    int64_t at = -1;
    for (int64_t r = 0; r < s.M; ++r)
      for (int64_t j = 0; j < s.N; ++j) {
        double ref = C0[r * s.N + j];
        for (int64_t k = 0; k < s.K; ++k)
          ref += double(A[r * s.K + k]) *
                 (nt ? B[j * s.K + k] : B[k * s.N + j]);
        double err = std::fabs(ref - C[r * s.N + j]);
        if (!(err <= worst)) { // NaN too
          worst = std::isnan(err) ? INFINITY : err;
          at = r * s.N + j;
        }
      }
    // f32 sums of K products of magnitude <= 1.
    double tol = 1e-6 * (s.K + 1) + 1e-6;
    EXPECT_LE(worst, tol) << "worst at row " << at / s.N << " column "
                          << at % s.N;
  }

  int64_t lanes = 0;
  void *handle = nullptr;
  PackFn packNt = nullptr, packNn = nullptr, packA = nullptr;
  MatmulFn mm = nullptr;
};

TEST_P(MatmulStages, EdgeShapesMatchTheDoubleProduct) {
  femc::layer::MatmulBlocking blk = femc::layer::matmulBlocking(lanes);
  int64_t mr = blk.rows, nr = blk.panel(), kc = blk.kc;
  const Shape shapes[] = {
      {1, 1, 1},
      {1, 5, 3},                     // N below one vector
      {7, lanes + 3, 1},             // K = 1, N between one and two vectors
      {mr, nr, kc},                  // exactly one block
      {mr + 1, nr + 1, kc + 1},      // one past each
      {2 * mr - 1, 2 * nr - 1, 2 * kc - 1},
      {mr - 1, 3 * nr, 5},           // fewer rows than one register block
      {37, 45, 19},
      {300, 33, 7},                  // several row tiles, one row left over
      {257, 300, 130},               // two row tiles, two column tiles
      {513, 2 * nr + 5, 600},        // three K blocks, the last partial
  };
  for (bool nt : {true, false})
    for (const Shape &s : shapes)
      check(s, nt);
}

std::string lanesName(const ::testing::TestParamInfo<int64_t> &info) {
  return info.param == 16 ? "x86_64_v4" : "x86_64_v3";
}

INSTANTIATE_TEST_SUITE_P(Targets, MatmulStages, ::testing::Values(8, 16),
                         lanesName);

} // namespace
