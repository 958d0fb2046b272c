//===- ScanSplitTest.cpp - scan kernels split along the sequence
//-----------===//
//
// The chunk-level parallel prefix (docs/architecture.md, "Both cores at
// B = H = 1"): with FEMC_SCAN_SEGMENTS = S a scan kernel runs its sequence
// as S chunk-aligned segments (phase 1: every segment's state from the
// empty state; phase 2: the prefix over them; phase 3: every segment's rows
// from its initial state). For every scan prior, S in {2, 3, 7} and T in
// {1, 2, 7, 63, 64, 65, 257, 1000} (chunks of 8, 16 and 64 rows, so chunks
// that do and do not divide T), with and without a carried state, the split
// run's output and final state must equal the unsplit run's within
// 1e-4 * max |out| (and max |state|), its output the double reference's,
// and libfemrt must report that the split happened
// (femrt_kernel_last_segments). Non-causal linear kernels are listed too:
// without a state they split (keys in phase 1, rows in phase 3, one centre
// for every segment); with one they must not split (their records keep the
// max shift) and give the same output when a split is forced.
//
//===----------------------------------------------------------------------===//
#include "dialect/Priors.h"
#include "femrt/femrt.h"
#include "reference/Reference.h"
#include "support/Random.h"
#include "support/Slice.h"
#include "test/integration/KernelLibrary.h"
#include "test/integration/TestProblem.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace {

constexpr double kTolerance = 1e-4;
namespace priors = femc::priors;
using femc::ref::Prior;

femc::test::KernelLibrary &runtime() {
  static femc::test::KernelLibrary rt(FEMC_SCAN_SPLIT_LIBRARY);
  return rt;
}

struct Kernel {
  const char *name;
  Prior prior;
  bool causal, state, mask;
  int64_t chunk, N;
};

struct Case {
  Kernel k;
  int64_t T = 1, segments = 2;
  /// Rows run before the tested segment; their final state is the tested
  /// run's initial state (0: the empty state, or no state operand).
  int64_t prefix = 0;
  int64_t B = 1, H = 2, dv = 16;
  femc::test::InputRanges ranges;
  /// Every q/k channel of a row set to the row's first: aft's q^ = 1
  /// exactly and log q^ = 0.
  bool flatQk = false;

  std::string str() const {
    std::ostringstream os;
    os << k.name << " T=" << T << " S=" << segments << " prefix=" << prefix
       << " B=" << B << " H=" << H << " dv=" << dv << " decay in ["
       << ranges.decayLo << ", " << ranges.decayHi << "]"
       << (flatQk ? " flat q/k" : "");
    return os.str();
  }
};

/// Sets FEMC_SCAN_SEGMENTS for one scope.
class ForceSegments {
public:
  explicit ForceSegments(int64_t s) {
    setenv("FEMC_SCAN_SEGMENTS", std::to_string(s).c_str(), 1);
  }
  ~ForceSegments() { unsetenv("FEMC_SCAN_SEGMENTS"); }
};

/// One tensor of the whole sequence [0, prefix + T) (layout bthd).
using Full = femc::test::SequenceInput;

struct Run {
  std::vector<float> out, state;
  int32_t segments = 0;
};

/// Runs kernel c.k over rows [t0, t1) of `full` from `stateIn` (may be
/// empty: zeros) with FEMC_SCAN_SEGMENTS = `segments`.
Run launch(const Case &c, std::map<std::string, Full> &full, int64_t t0,
           int64_t t1, const std::vector<float> &stateIn, int64_t ks,
           int64_t segments) {
  const priors::PriorInfo &info =
      priors::priorInfo(static_cast<int>(c.k.prior));
  int64_t len = t1 - t0;
  femc::test::SegmentInputs seg = femc::test::sliceSegment(full, t0, t1);
  Run run;
  std::vector<int64_t> outShape = {c.B, len, c.H, c.dv};
  std::vector<int64_t> stateShape = {c.B, c.H, c.dv, ks};
  run.out.assign(c.B * len * c.H * c.dv, std::nanf(""));
  std::vector<float> state = stateIn;
  state.resize(c.B * c.H * c.dv * std::max<int64_t>(ks, 0), 0.0f);
  run.state.assign(state.size(), std::nanf(""));
  std::vector<DLTensor> dl;
  for (std::string_view name :
       priors::kernelArguments(info, c.k.mask, c.k.state, c.k.state)) {
    std::string n(name);
    if (n == "out")
      dl.push_back(femc::test::dlTensor(run.out.data(), outShape,
                                        femc::test::kF32));
    else if (n == "state")
      dl.push_back(femc::test::dlTensor(state.data(), stateShape,
                                        femc::test::kF32));
    else if (n == "state_out")
      dl.push_back(femc::test::dlTensor(run.state.data(), stateShape,
                                        femc::test::kF32));
    else if (n == "mask")
      dl.push_back(femc::test::dlTensor(seg.mask.data(), seg.maskShape,
                                        femc::test::kU8));
    else
      dl.push_back(femc::test::dlTensor(
          seg.floats[n].first.data(), seg.floats[n].second, femc::test::kF32));
  }
  femrt_kernel *kernel = runtime().kernel(c.k.name);
  EXPECT_NE(kernel, nullptr);
  if (!kernel)
    return run;
  ForceSegments force(segments);
  EXPECT_EQ(femc::test::launch(kernel, dl), FEMRT_OK) << femrt_last_error();
  EXPECT_EQ(femrt_kernel_last_segments(kernel, &run.segments), FEMRT_OK);
  return run;
}

/// max |a - b| <= kTolerance * max |b| (both finite, NaN in the same
/// places).
void expectClose(const std::vector<float> &a, const std::vector<double> &b,
                 const char *what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  femc::test::MaxError err;
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(std::isnan(a[i]), std::isnan(b[i]))
        << what << " element " << i << ": " << a[i] << " vs " << b[i];
    if (!std::isnan(b[i]))
      err.add(i, a[i], b[i]);
  }
  EXPECT_LE(err.maxErr, kTolerance * std::max(err.maxRef, 1e-30))
      << what << ": relative error " << err.relative() << " at element "
      << err.worst << ": " << a[err.worst] << " vs " << b[err.worst];
}

void runCase(const Case &c, uint64_t seed) {
  SCOPED_TRACE(c.str());
  const priors::PriorInfo &info =
      priors::priorInfo(static_cast<int>(c.k.prior));
  int64_t total = c.prefix + c.T;
  femc::ref::Problem p;
  p.prior = c.k.prior;
  p.causal = c.k.causal;
  p.B = c.B;
  p.T = p.S = total;
  p.H = p.Hkv = c.H;
  p.dk = 8;
  p.dv = c.dv;
  p.N = c.k.N;
  p.hasMask = c.k.mask;
  std::string error;
  ASSERT_TRUE(femc::ref::validate(p, error)) << error;
  femc::Rng rng(seed);
  std::map<std::string, Full> full;
  for (const std::string &name : femc::ref::inputNames(p)) {
    Full &f = full[name];
    f.shape = *femc::ref::tensorShape(p, name);
    std::vector<std::string_view> dims =
        priors::operandDims(info, name, /*bhtd=*/false, c.k.causal);
    for (size_t d = 0; d < dims.size(); ++d)
      if (dims[d] == "T" || dims[d] == "S")
        f.timeAxis = static_cast<int>(d);
    int64_t n = femc::test::numElements(f.shape);
    if (name == "mask") {
      f.u8.resize(n);
      for (auto &m : f.u8)
        m = rng.uniform01() < 0.7;
      continue;
    }
    f.f32.resize(n);
    for (auto &x : f.f32)
      x = static_cast<float>(femc::test::drawInput(rng, name, c.ranges));
    if (c.flatQk && (name == "q" || name == "k"))
      for (int64_t i = 0; i < n; ++i)
        f.f32[i] = f.f32[i - i % p.dk];
  }
  int64_t ks = c.k.state ? priors::stateChannelWidth(info, 8, c.k.N) : 0;
  std::vector<float> init;
  if (c.prefix > 0) {
    Run pre = launch(c, full, 0, c.prefix, {}, ks, 1);
    ASSERT_FALSE(::testing::Test::HasFailure());
    init = pre.state;
  }
  Run whole = launch(c, full, c.prefix, total, init, ks, 1);
  Run split = launch(c, full, c.prefix, total, init, ks, c.segments);
  ASSERT_FALSE(::testing::Test::HasFailure());
  // The split happened: min(S, chunks of T) segments (1: not split). A
  // non-causal read with a carried state never splits (TileScan.cpp,
  // whyNotSplit: its records keep the max shift, the split's plain sums a
  // centre shared by all keys); forced, it runs whole.
  int64_t chunks = (c.T + c.k.chunk - 1) / c.k.chunk;
  int64_t expected =
      c.k.causal || !c.k.state ? std::min(c.segments, chunks) : 1;
  EXPECT_EQ(whole.segments, 1);
  EXPECT_EQ(split.segments, expected >= 2 ? expected : 1);

  std::vector<double> wholeOut(whole.out.begin(), whole.out.end());
  expectClose(split.out, wholeOut, "output against the unsplit run");
  if (c.k.state) {
    std::vector<double> wholeState(whole.state.begin(), whole.state.end());
    expectClose(split.state, wholeState, "final state against the unsplit run");
  }
  // The double reference over [0, total), rows [prefix, total).
  femc::ref::Inputs in;
  for (auto &[name, f] : full) {
    if (name == "mask") {
      in.mask = f.u8.data();
      continue;
    }
    *femc::ref::floatInput(in, name) = f.f32.data();
  }
  auto ref = femc::ref::run(p, in, error);
  ASSERT_TRUE(ref.has_value()) << error;
  std::vector<int64_t> refShape = {c.B, total, c.H, c.dv};
  std::vector<double> rows = femc::sliceAxis(ref->out, refShape, 1, c.prefix, total);
  // Not causal: rows of the tested segment see the keys of the prefix and
  // of the segment only (docs/semantics.md, "Segments"), the reference
  // every key; compare only when there is no prefix.
  if (c.k.causal || c.prefix == 0)
    expectClose(split.out, rows, "output against the double reference");
}

const Kernel kKernels[] = {
    {"linear_causal", Prior::Linear, true, false, false, 64, 0},
    {"linear_causal_state", Prior::Linear, true, true, false, 64, 0},
    {"linear_causal_state_small", Prior::Linear, true, true, false, 16, 0},
    {"linear_causal_mask_small", Prior::Linear, true, true, true, 16, 0},
    {"linear_full_state", Prior::Linear, false, true, false, 64, 0},
    {"linear_full_small", Prior::Linear, false, false, false, 16, 0},
    {"gla", Prior::Gla, true, false, false, 64, 0},
    {"gla_state_small", Prior::Gla, true, true, false, 16, 0},
    {"aft_state", Prior::Aft, true, true, false, 64, 0},
    {"aft_small", Prior::Aft, true, false, false, 8, 0},
    {"ssm_state_n16", Prior::Ssm, true, true, false, 64, 16},
    {"ssm_n1_small", Prior::Ssm, true, false, false, 8, 1},
    {"ssm_state_n1_small", Prior::Ssm, true, true, false, 8, 1},
};

class ScanSplit : public ::testing::TestWithParam<Kernel> {};

/// The lengths and segment counts, from the empty state and (for
/// kernels with a state) from the state after a 37-row prefix.
TEST_P(ScanSplit, EqualsTheUnsplitRun) {
  Kernel k = GetParam();
  for (int64_t T : {1, 2, 7, 63, 64, 65, 257, 1000})
    for (int64_t S : {2, 3, 7})
      for (int64_t prefix : {int64_t(0), int64_t(37)}) {
        if (prefix && !k.state)
          continue;
        Case c;
        c.k = k;
        c.T = T;
        c.segments = S;
        c.prefix = prefix;
        // dk (8) != dv; aft needs dk | 2 dv: dv = 16 (dk | dv), and 4 (dk
        // = 2 dv) or 12 (dk | 2 dv only), where the X half reads its own
        // q/k channels and carries its own d_X and kmax_X.
        c.dv = k.prior != Prior::Aft ? 24 : T % 3 == 0 ? 4 : T % 3 == 1 ? 16 : 12;
        c.ranges.betaRaw = T % 2 ? 0 : -4;
        c.ranges.vScale = T == 1000 ? 100 : 1; // the clip active
        runCase(c, 9000 + T * 10 + S + prefix);
        if (HasFailure())
          return;
      }
}

INSTANTIATE_TEST_SUITE_P(
    Scans, ScanSplit, ::testing::ValuesIn(kKernels),
    [](const auto &info) { return std::string(info.param.name); });

/// gla whose cumulative log decay saturates at -60: in the first segment
/// (every later fold starts saturated, so they run one after the other),
/// and in a later segment (a ~ -0.1 per row: C reaches -60 near row 600 of
/// 1000), with and without a carried state.
TEST(ScanSplitGla, SaturatedDecay) {
  for (const Kernel &k : kKernels) {
    if (k.prior != Prior::Gla)
      continue;
    for (auto [lo, hi] : {std::pair{2.0, 6.0}, std::pair{0.05, 0.15}})
      for (int64_t S : {2, 3, 7})
        for (int64_t prefix : {int64_t(0), int64_t(37)}) {
          if (prefix && !k.state)
            continue;
          Case c;
          c.k = k;
          c.T = 1000;
          c.segments = S;
          c.prefix = prefix;
          c.ranges.decayLo = lo;
          c.ranges.decayHi = hi;
          runCase(c, 9500 + S + prefix);
          if (HasFailure())
            return;
        }
  }
}

/// A tiny beta (beta_raw = -30, beta ~ 1e-6) on the split that a plain call
/// takes by itself (T >= 1024, B = H = 1, dv = 8: one workgroup on two
/// cores): every X is 1 - O(1e-5), so the segment records must carry X - 1
/// sums, not X sums (dialect/Priors.h, recordNarrow). With X sums, ssm was
/// 4e-3..1.2e-2 x max|out| off the reference (the first case here: 4.4e-3).
/// aft's records take the same offset form (its F is dominated here by
/// log(q^) / beta, docs/semantics.md "Known limit (aft at a tiny beta)").
TEST(ScanSplitTinyBeta, KeepsTheLogRestore) {
  for (const char *name :
       {"ssm_state_n16", "ssm_n1_small", "linear_causal_state",
        "linear_full_state", "gla_state_small", "aft_state", "aft_small"})
    for (int64_t prefix : {int64_t(0), int64_t(37)}) {
      const Kernel *k = nullptr;
      for (const Kernel &each : kKernels)
        if (std::string_view(each.name) == name)
          k = &each;
      ASSERT_NE(k, nullptr) << name;
      if (prefix && !k->state)
        continue;
      Case c;
      c.k = *k;
      c.T = 1100;
      c.B = c.H = 1;
      c.dv = 8;
      c.segments = 2;
      c.prefix = prefix;
      c.ranges.betaRaw = -30;
      c.ranges.vScale = 20;
      runCase(c, 9600 + prefix);
      if (HasFailure())
        return;
      if (k->prior != Prior::Aft)
        continue;
      c.flatQk = true;
      runCase(c, 9600 + prefix);
      if (HasFailure())
        return;
    }
}

/// B > 1 and H = 1 (several workgroups per segment), and a forced count
/// of 1: never split.
TEST(ScanSplitGrid, BatchesAndNoSplit) {
  for (const Kernel &k : kKernels) {
    Case c;
    c.k = k;
    c.T = 257;
    c.B = 3;
    c.H = 1;
    c.segments = 3;
    runCase(c, 9700);
    c.segments = 1;
    runCase(c, 9701);
    if (HasFailure())
      return;
  }
}

/// Unforced, a kernel splits only from FEMC_SCAN_SPLIT_MIN_T rows on and
/// when its grid leaves threads idle: B = H = 1 and dv = 16 is one
/// workgroup.
TEST(ScanSplitAuto, ThresholdAndThreads) {
  if (femrt_context *ctx = runtime().ctx; ctx) {
    int32_t threads = 0;
    ASSERT_EQ(femrt_context_get_num_threads(ctx, &threads), FEMRT_OK);
    if (threads < 2)
      GTEST_SKIP() << "the context runs on one thread: nothing to split for";
  }
  const Kernel &k = kKernels[1]; // linear_causal_state, chunks of 64
  femrt_kernel *kernel = runtime().kernel(k.name);
  ASSERT_NE(kernel, nullptr);
  const priors::PriorInfo &info = priors::priorInfo(static_cast<int>(k.prior));
  for (auto [minT, T, expectSplit] :
       {std::tuple{"256", int64_t(300), true},
        std::tuple{"301", int64_t(300), false}}) {
    SCOPED_TRACE(std::string("FEMC_SCAN_SPLIT_MIN_T=") + minT);
    setenv("FEMC_SCAN_SPLIT_MIN_T", minT, 1);
    unsetenv("FEMC_SCAN_SEGMENTS");
    std::vector<int64_t> q = {1, T, 1, 8}, v = {1, T, 1, 16}, e = {16},
                         s = {1, 1, 16, 28};
    std::vector<float> in(T * 16, 0.5f), out(T * 16), state(16 * 28, 0.0f),
        stateOut(16 * 28);
    std::vector<DLTensor> dl;
    for (std::string_view name :
         priors::kernelArguments(info, false, true, true)) {
      std::vector<int64_t> &shape = name == "q" || name == "k" ? q
                                    : name == "beta_raw"       ? e
                                    : name == "state" ||
                                            name == "state_out"
                                        ? s
                                        : v;
      float *data = name == "out"         ? out.data()
                    : name == "state"     ? state.data()
                    : name == "state_out" ? stateOut.data()
                                          : in.data();
      dl.push_back(femc::test::dlTensor(data, shape, femc::test::kF32));
    }
    ASSERT_EQ(femc::test::launch(kernel, dl), FEMRT_OK) << femrt_last_error();
    int32_t segments = 0;
    ASSERT_EQ(femrt_kernel_last_segments(kernel, &segments), FEMRT_OK);
    if (expectSplit)
      EXPECT_GE(segments, 2);
    else
      EXPECT_EQ(segments, 1);
  }
  unsetenv("FEMC_SCAN_SPLIT_MIN_T");
}

} // namespace
