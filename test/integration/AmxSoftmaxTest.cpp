//===- AmxSoftmaxTest.cpp - the bf16 softmax reads vs the reference -------===//
//
// Part of the femc project.
//
// Runs the kernels of Inputs/softmax_amx.mlir, compiled at build time for
// x86-64-v4+amx (passes/cpu/ReadSoftmaxAmx.cpp: both contractions on AMX
// tiles, P rounded to bf16 once) and for x86-64-v4+bf16dot
// (passes/cpu/ReadSoftmaxBf16.cpp: both contractions on vdpbf16ps, P
// rounded to bf16 once), through libfemrt on the issue's shape matrix and
// compares each output with the double-precision reference on the same
// bf16-rounded inputs: max |out - ref| <= 1e-2 * max |ref|, the bf16
// tolerance of docs/semantics.md (bf16 panel and P: ~2^-9 relative per
// product, f32 sums, one rounding of the output). On a host without
// AMX-BF16 (AVX512-BF16) the AMX (dot-product) tests are skipped with a
// message naming the missing feature.
//
//===----------------------------------------------------------------------===//
#include "femrt/femrt.h"
#include "reference/Reference.h"
#include "support/LowPrecision.h"
#include "support/Random.h"
#include "target/cpu/HostCpu.h"
#include "test/integration/AmxHost.h"
#include "test/integration/KernelLibrary.h"
#include "test/integration/TestProblem.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#if defined(__linux__)
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace {

namespace lowp = femc::lowp;

/// Returns why the test cannot run when the CPU lacks `feature` (a string
/// literal, as __builtin_cpu_supports takes).
/// A feature FEMC_HOST_CPU masks off counts as missing (the host as femc
/// sees it: target/cpu/HostCpu.h), so an AVX2-only host can be simulated.
#define NEED_CPU(feature)                                                      \
  if (!__builtin_cpu_supports(feature))                                        \
    return "this host has no " feature;                                        \
  if (!femc::target::cpu::hostCpu().has(feature))                              \
  return "this host has no " feature " (FEMC_HOST_CPU=" +                     \
         femc::target::cpu::hostCpu().simulated + " masks it off)"

/// Why this process cannot run AMX code (test/integration/AmxHost.h).
using femc::test::amxUnavailable;

/// Skips the test, naming why, where `unavailable()` gives a reason.
#define SKIP_UNLESS(unavailable, kernels)                                      \
  if (std::string why = unavailable(); !why.empty())                           \
  GTEST_SKIP() << why << ": the " kernels                                      \
                  " kernels are compiled (FileCheck tests) but not run"
#define REQUIRE_AMX() SKIP_UNLESS(amxUnavailable, "AMX")

/// Why this host cannot run the dot-product kernels (compiled for
/// x86-64-v4+bf16dot), or "" when it can.
std::string bf16DotUnavailable() {
  __builtin_cpu_init();
  NEED_CPU("avx512f");
  NEED_CPU("avx512bw");
  NEED_CPU("avx512vl");
  NEED_CPU("avx512bf16");
  return "";
}

#define REQUIRE_BF16_DOT()                                                     \
  SKIP_UNLESS(bf16DotUnavailable, "AVX512-BF16 dot-product")

femc::test::KernelLibrary &amxLibrary() {
  static femc::test::KernelLibrary lib(FEMC_AMX_LIBRARY);
  return lib;
}
femc::test::KernelLibrary &dotLibrary() {
  static femc::test::KernelLibrary lib(FEMC_BF16_DOT_LIBRARY);
  return lib;
}

struct Case : femc::test::CaseShape {
  Case() { dk = dv = 64; }
  bool maskFirstKeys = false; // rows 0..4 of batch 0 see no key (causal)

  std::string kernel() const {
    return std::string("softmax_amx_") + (causal ? "causal" : "full") +
           (mask ? "_mask" : "_nomask") + (bhtd ? "_bhtd" : "_bthd");
  }
  std::string str() const {
    std::ostringstream os;
    os << kernel() << " B=" << B << " T=" << T << " S=" << S << " H=" << H
       << " Hkv=" << Hkv << " dk=" << dk << " dv=" << dv
       << " beta_raw~" << betaRaw << " |v|<=" << vScale;
    return os.str();
  }
};

using femc::test::dlTensor;

void runCase(const Case &c, uint64_t seed,
             femc::test::KernelLibrary &library) {
  SCOPED_TRACE(c.str());
  femc::ref::Problem p = c.problem();
  femc::Rng rng(seed);
  // Inputs drawn in f32, rounded to bf16: the reference sees the rounded
  // values, the kernel their bit patterns.
  std::map<std::string, std::vector<float>> values;
  std::map<std::string, std::vector<uint16_t>> bits;
  std::map<std::string, std::vector<int64_t>> shapes;
  femc::ref::Inputs in;
  std::vector<uint8_t> mask;
  for (const std::string &name : femc::ref::inputNames(p)) {
    shapes[name] = *femc::ref::tensorShape(p, name);
    int64_t n = femc::test::numElements(shapes[name]);
    if (name == "mask") {
      mask.resize(n);
      for (auto &m : mask)
        m = rng.uniform01() < 0.8;
      if (c.maskFirstKeys)
        for (int64_t s = 0; s < std::min<int64_t>(c.S, 5); ++s)
          mask[s] = 0;
      in.mask = mask.data();
      continue;
    }
    double lo = -3, hi = 3;
    if (name == "q" || name == "k")
      lo = -2, hi = 2;
    else if (name == "v")
      lo = -c.vScale, hi = c.vScale;
    else if (name == "beta_raw")
      lo = c.betaRaw - 0.5, hi = c.betaRaw + 0.5;
    auto &v = values[name];
    auto &b = bits[name];
    v.resize(n);
    b.resize(n);
    for (int64_t i = 0; i < n; ++i) {
      b[i] = lowp::toBF16(static_cast<float>(rng.uniform(lo, hi)));
      v[i] = lowp::fromBF16(b[i]);
    }
    *femc::ref::floatInput(in, name) = v.data();
  }
  std::string error;
  auto ref = femc::ref::run(p, in, error);
  ASSERT_TRUE(ref.has_value()) << error;

  DLDataType bf16 = {kDLBfloat, 16, 1};
  std::vector<int64_t> outShape = *femc::ref::tensorShape(p, "out");
  std::vector<uint16_t> out(ref->out.size(), 0x7fc0); // NaN
  std::vector<DLTensor> dl;
  for (const char *name : {"q", "k", "v", "beta_raw", "lam", "gate"})
    dl.push_back(dlTensor(bits[name].data(), shapes[name], bf16));
  if (c.mask)
    dl.push_back(dlTensor(mask.data(), shapes["mask"], femc::test::kU8));
  dl.push_back(dlTensor(out.data(), outShape, bf16));
  femrt_kernel *kernel = library.kernel(c.kernel());
  ASSERT_NE(kernel, nullptr);
  ASSERT_EQ(femc::test::launch(kernel, dl), FEMRT_OK) << femrt_last_error();

  femc::test::MaxError err;
  for (size_t i = 0; i < out.size(); ++i) {
    double o = lowp::fromBF16(out[i]);
    ASSERT_TRUE(std::isfinite(o)) << "element " << i << " is " << o;
    err.add(i, o, ref->out[i]);
  }
  EXPECT_LE(err.relative(), lowp::defaultTolerance(lowp::Format::BF16))
      << "element " << err.worst << ": out " << lowp::fromBF16(out[err.worst])
      << ", reference " << ref->out[err.worst];
  if (c.maskFirstKeys && c.causal)
    for (int64_t t = 0; t < std::min<int64_t>(c.T, 5); ++t)
      for (int64_t h = 0; h < c.H; ++h)
        for (int64_t ch = 0; ch < c.dv; ++ch) {
          size_t i = c.bhtd ? ((h * c.T + t) * c.dv + ch)
                            : ((t * c.H + h) * c.dv + ch);
          ASSERT_EQ(lowp::fromBF16(out[i]), 0.0f)
              << "row " << t << " has no visible key";
        }
}

/// The issue's lengths; dk/dv across the tile edges (16-lane vectors,
/// 32-wide AMX rows): 8, 64, 96, 128 and odd widths.
const int64_t kT[] = {1, 2, 7, 63, 64, 65, 257, 1000};
const int64_t kDk[] = {64, 8, 128, 40};
const int64_t kDv[] = {64, 96, 8, 24};
const double kBeta[] = {0, -4, 8, -30}; // -30: beta ~ 1e-13, narrow channels
const double kVScale[] = {1, 100};      // 100: the clip at cap/beta is active

struct Combination {
  bool causal, mask, bhtd, grouped;
};

/// The issue's shape matrix for one combination of flags.
void runMatrix(const Combination &m, femc::test::KernelLibrary &library) {
  for (int i = 0; i < 8; ++i) {
    Case c;
    c.causal = m.causal;
    c.mask = m.mask;
    c.bhtd = m.bhtd;
    c.T = kT[i];
    c.B = c.T >= 257 ? 1 : (i % 2 ? 2 : 1);
    c.H = m.grouped ? 4 : ((i / 2) % 2 ? 3 : 1);
    c.Hkv = m.grouped ? (i % 2 ? 1 : 2) : c.H;
    c.dk = kDk[i % 4];
    c.dv = kDv[(i + 1) % 4];
    c.betaRaw = kBeta[i % 4];
    c.vScale = kVScale[(i / 4) % 2];
    c.S = (!m.causal && i % 4 == 3) ? c.T + 37 : c.T; // cross attention
    c.maskFirstKeys = m.mask && i == 5;
    runCase(c, 4000 + i, library);
    if (::testing::Test::HasFatalFailure())
      return;
  }
}

class AmxSoftmax : public ::testing::TestWithParam<Combination> {};

TEST_P(AmxSoftmax, ShapeMatrix) {
  REQUIRE_AMX();
  runMatrix(GetParam(), amxLibrary());
}

class Bf16DotSoftmax : public ::testing::TestWithParam<Combination> {};

TEST_P(Bf16DotSoftmax, ShapeMatrix) {
  REQUIRE_BF16_DOT();
  runMatrix(GetParam(), dotLibrary());
}

std::string combinationName(const ::testing::TestParamInfo<Combination> &info) {
  const Combination &m = info.param;
  return std::string(m.causal ? "causal" : "full") +
         (m.mask ? "_mask" : "_nomask") + (m.bhtd ? "_bhtd" : "_bthd") +
         (m.grouped ? "_gqa" : "_mha");
}

std::vector<Combination> allCombinations() {
  std::vector<Combination> out;
  for (int i = 0; i < 16; ++i)
    out.push_back({bool(i & 1), bool(i & 2), bool(i & 4), bool(i & 8)});
  return out;
}

INSTANTIATE_TEST_SUITE_P(Bf16, AmxSoftmax,
                         ::testing::ValuesIn(allCombinations()),
                         combinationName);
INSTANTIATE_TEST_SUITE_P(Bf16, Bf16DotSoftmax,
                         ::testing::ValuesIn(allCombinations()),
                         combinationName);

/// The benchmark's shape at a length that crosses many key tiles and the
/// 16-row blocks unevenly: B = 1, H = 8, d = 64, causal.
Case benchmarkShape() {
  Case c;
  c.T = c.S = 1531;
  c.H = c.Hkv = 8;
  return c;
}

TEST(AmxSoftmaxLong, BenchmarkShape) {
  REQUIRE_AMX();
  runCase(benchmarkShape(), 4100, amxLibrary());
}

TEST(Bf16DotSoftmaxLong, BenchmarkShape) {
  REQUIRE_BF16_DOT();
  runCase(benchmarkShape(), 4100, dotLibrary());
}

#if defined(__linux__)
/// A process whose arch_prctl Linux refuses (a seccomp filter answers EPERM,
/// as a sandbox or a kernel before 5.16 would) is told why AMX is
/// unavailable, so the tests above skip instead of failing. Runs in a child:
/// the filter cannot be removed.
void amxUnavailableUnderDeniedArchPrctl() {
  sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_arch_prctl, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog program = {static_cast<unsigned short>(std::size(filter)),
                        filter};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
      prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) != 0) {
    std::fprintf(stderr, "cannot install the seccomp filter: %s\n",
                 std::strerror(errno));
    std::_Exit(2);
  }
  std::string why = amxUnavailable();
  std::fprintf(stderr, "amx: %s\n", why.c_str());
  std::_Exit(why.empty() ? 1 : 0);
}

TEST(AmxAvailability, SkipsWhenLinuxRefusesTileData) {
  // On an AMX host the reason is the refusal; elsewhere the missing feature.
  __builtin_cpu_init();
  const char *expected =
      __builtin_cpu_supports("amx-tile") && __builtin_cpu_supports("amx-bf16") &&
              femc::target::cpu::hostCpu().has("amx-tile") &&
              femc::target::cpu::hostCpu().has("amx-bf16")
          ? "amx: Linux refused AMX tile data to this process \\(arch_prctl "
            "ARCH_REQ_XCOMP_PERM: Operation not permitted\\)"
          : "amx: this host has no amx-";
  EXPECT_EXIT(amxUnavailableUnderDeniedArchPrctl(),
              ::testing::ExitedWithCode(0), expected);
}
#endif

} // namespace
