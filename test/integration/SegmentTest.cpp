//===- SegmentTest.cpp - scan kernels run as segments with a carried state -===//
//
// The kernels of Inputs/segments.mlir take the state after the previous
// segment and return the state after theirs (docs/semantics.md,
// "Segments"). A sequence
// run as segments [0, t1), [t1, t2), ... with the state carried must give,
// for every segment, the rows a one-shot run over the prefix [0, t_end)
// gives: this test compares each segment's rows with the double reference
// on that prefix, max |out - ref| <= 1e-4 * max |ref|. Splits include
// one-token segments (decode steps), odd lengths and chunks that do not
// divide a segment. state and state_out must be distinct buffers: the
// runtime refuses outputs that overlap inputs (tested below).
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
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace {

constexpr double kTolerance = 1e-4;
namespace priors = femc::priors;
using femc::ref::Prior;

femc::test::KernelLibrary &runtime() {
  static femc::test::KernelLibrary rt(FEMC_SEGMENTS_LIBRARY);
  return rt;
}

struct Case {
  Prior prior = Prior::Linear;
  std::string kernel;
  bool causal = true, mask = false;
  int64_t B = 2, T = 1, H = 2, dk = 8, dv = 16, N = 0;
  double betaRaw = 0, vScale = 1, decayLo = -2, decayHi = 2;
  /// v grows along the sequence: |v| <= vScale (1 + 4 t / T).
  bool ramp = false;
  /// Segment ends (the last one is T).
  std::vector<int64_t> ends;
  /// Pass the state's own buffer as state_out (the launch must refuse it).
  bool inPlace = false;

  std::string str() const {
    std::ostringstream os;
    os << kernel << " B=" << B << " T=" << T << " H=" << H << " dk=" << dk
       << " dv=" << dv << " N=" << N << " beta_raw~" << betaRaw
       << " |v|<=" << vScale << (inPlace ? " in place" : "") << " segments";
    for (int64_t e : ends)
      os << " " << e;
    return os.str();
  }
};

/// One named tensor of the whole sequence (layout bthd).
using Full = femc::test::SequenceInput;

/// An f32 tensor, or the u8 key mask.
DLTensor dlTensor(void *data, std::vector<int64_t> &shape, bool isFloat) {
  return femc::test::dlTensor(data, shape,
                              isFloat ? femc::test::kF32 : femc::test::kU8);
}

void runSegments(const Case &c, uint64_t seed) {
  SCOPED_TRACE(c.str());
  const priors::PriorInfo &info = priors::priorInfo(static_cast<int>(c.prior));
  femc::ref::Problem p;
  p.prior = c.prior;
  p.causal = c.causal;
  p.B = c.B;
  p.T = p.S = c.T;
  p.H = p.Hkv = c.H;
  p.dk = c.dk;
  p.dv = c.dv;
  p.N = c.N;
  p.hasMask = c.mask;
  std::string error;
  ASSERT_TRUE(femc::ref::validate(p, error)) << error;
  femc::Rng rng(seed);
  std::map<std::string, Full> full;
  for (const std::string &name : femc::ref::inputNames(p)) {
    Full &f = full[name];
    f.shape = *femc::ref::tensorShape(p, name);
    std::vector<std::string_view> dims =
        priors::operandDims(info, name, /*bhtd=*/false, c.causal);
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
    femc::test::InputRanges ranges{c.betaRaw, c.vScale, c.decayLo, c.decayHi};
    for (int64_t i = 0; i < n; ++i) {
      double value = femc::test::drawInput(rng, name, ranges);
      if (name == "v" && c.ramp)
        value *= 1 + 4.0 * ((i / (c.H * c.dv)) % c.T) / c.T;
      f.f32[i] = value;
    }
  }
  int64_t ks = priors::stateChannelWidth(info, c.dk, c.N);
  ASSERT_GT(ks, 0);
  std::vector<int64_t> stateShape = {c.B, c.H, c.dv, ks};
  // The empty state is all zeros.
  std::vector<float> state(c.B * c.H * c.dv * ks, 0.0f), next(state.size());
  femrt_kernel *kernel = runtime().kernel(c.kernel);
  ASSERT_NE(kernel, nullptr);
  int64_t t0 = 0;
  for (int64_t t1 : c.ends) {
    SCOPED_TRACE("segment [" + std::to_string(t0) + ", " +
                 std::to_string(t1) + ")");
    int64_t len = t1 - t0;
    femc::test::SegmentInputs seg = femc::test::sliceSegment(full, t0, t1);
    std::vector<int64_t> outShape = {c.B, len, c.H, c.dv};
    std::vector<float> out(c.B * len * c.H * c.dv, std::nanf(""));
    float *stateOut = c.inPlace ? state.data() : next.data();
    std::vector<DLTensor> dl;
    for (std::string_view name :
         priors::kernelArguments(info, c.mask, true, true)) {
      std::string n(name);
      if (n == "out")
        dl.push_back(dlTensor(out.data(), outShape, true));
      else if (n == "state")
        dl.push_back(dlTensor(state.data(), stateShape, true));
      else if (n == "state_out")
        dl.push_back(dlTensor(stateOut, stateShape, true));
      else if (n == "mask")
        dl.push_back(dlTensor(seg.mask.data(), seg.maskShape, false));
      else
        dl.push_back(
            dlTensor(seg.floats[n].first.data(), seg.floats[n].second, true));
    }
    femrt_status status = femc::test::launch(kernel, dl);
    if (c.inPlace) {
      EXPECT_NE(status, FEMRT_OK);
      EXPECT_NE(std::string(femrt_last_error())
                    .find("output argument 'state_out'"),
                std::string::npos)
          << femrt_last_error();
      EXPECT_NE(std::string(femrt_last_error()).find("'state'"),
                std::string::npos)
          << femrt_last_error();
      return;
    }
    ASSERT_EQ(status, FEMRT_OK) << femrt_last_error();
    state.swap(next);

    // The reference over the prefix [0, t1); compare rows [t0, t1).
    femc::ref::Problem prefix = p;
    prefix.T = prefix.S = t1;
    std::map<std::string, std::vector<float>> pre;
    std::vector<uint8_t> preMask;
    femc::ref::Inputs in;
    for (auto &[name, f] : full) {
      if (name == "mask") {
        preMask = femc::sliceAxis(f.u8, f.shape, f.timeAxis, 0, t1);
        in.mask = preMask.data();
        continue;
      }
      pre[name] = femc::sliceAxis(f.f32, f.shape, f.timeAxis, 0, t1);
      *femc::ref::floatInput(in, name) = pre[name].data();
    }
    auto ref = femc::ref::run(prefix, in, error);
    ASSERT_TRUE(ref.has_value()) << error;
    std::vector<int64_t> refShape = {c.B, t1, c.H, c.dv};
    std::vector<double> rows = femc::sliceAxis(ref->out, refShape, 1, t0, t1);
    ASSERT_EQ(rows.size(), out.size());
    femc::test::MaxError err;
    for (size_t i = 0; i < out.size(); ++i) {
      ASSERT_TRUE(std::isfinite(out[i])) << "element " << i << " is " << out[i];
      err.add(i, out[i], rows[i]);
    }
    EXPECT_LE(err.maxErr, kTolerance * std::max(err.maxRef, 1e-30))
        << "relative error " << err.maxErr / err.maxRef << " at element "
        << err.worst << ": out " << out[err.worst] << ", reference "
        << rows[err.worst];
    if (::testing::Test::HasFailure())
      return;
    t0 = t1;
  }
}

struct Variant {
  Prior prior;
  const char *kernel;
  bool causal, mask;
  int64_t N;
};

class Segments : public ::testing::TestWithParam<Variant> {};

/// Prefill then decode, decode only, and chunked prefill with odd and
/// one-token segments; beta_raw in {-4, 0, 8}, the clip active, dk != dv.
TEST_P(Segments, EqualThePrefixRun) {
  Variant m = GetParam();
  const std::vector<std::vector<int64_t>> splits = {
      {40, 41, 42, 43, 65},      // prefill, three decode steps, a segment
      {1, 2, 3, 4, 5, 6, 7},     // decode from the empty state
      {17, 18, 51, 52, 97, 131}, // odd lengths, chunks that do not divide
  };
  const double betas[] = {-4, 0, 8};
  for (size_t i = 0; i < splits.size(); ++i) {
    Case c;
    c.prior = m.prior;
    c.kernel = m.kernel;
    c.causal = m.causal;
    c.mask = m.mask;
    c.N = m.N;
    c.ends = splits[i];
    c.T = c.ends.back();
    c.betaRaw = betas[i];
    c.vScale = i == 2 ? 100 : 1;
    c.dv = m.prior == Prior::Aft ? 16 : (i == 1 ? 24 : 16);
    c.H = i == 1 ? 1 : 2;
    runSegments(c, 7000 + 10 * i + m.N);
    if (HasFailure())
      return;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Scans, Segments,
    ::testing::Values(
        Variant{Prior::Linear, "linear_causal_state", true, false, 0},
        Variant{Prior::Linear, "linear_causal_state_small", true, false, 0},
        Variant{Prior::Linear, "linear_full_state", false, false, 0},
        Variant{Prior::Linear, "linear_causal_mask_state", true, true, 0},
        Variant{Prior::Gla, "gla_state", true, false, 0},
        Variant{Prior::Gla, "gla_state_small", true, false, 0},
        Variant{Prior::Aft, "aft_state", true, false, 0},
        Variant{Prior::Aft, "aft_state_small", true, false, 0},
        Variant{Prior::Ssm, "ssm_state_n16", true, false, 16},
        Variant{Prior::Ssm, "ssm_state_n1_small", true, false, 1}),
    [](const auto &info) { return std::string(info.param.kernel); });

/// The state updated in place (state_out the state's own buffer) is
/// refused at launch, naming both arguments.
TEST(SegmentsState, InPlaceRefused) {
  Case c;
  c.kernel = "linear_causal_state";
  c.ends = {3};
  c.T = 3;
  c.inPlace = true;
  runSegments(c, 7300);
}

/// Launches linear_causal_state with T = 2, H = 2, dk = 8, dv = 16 and the
/// given state shapes; returns libfemrt's message (empty on success).
std::string launchWithState(std::vector<int64_t> bad,
                            std::vector<int64_t> good) {
  const priors::PriorInfo &info =
      priors::priorInfo(static_cast<int>(Prior::Linear));
  std::vector<int64_t> q = {1, 2, 2, 8}, v = {1, 2, 2, 16}, e = {32};
  // Inputs (read only) share one zero buffer; each output has its own.
  std::vector<float> data(1 * 3 * 16 * 28, 0.0f), out(data.size()),
      stateOut(data.size());
  std::vector<DLTensor> dl;
  for (std::string_view name :
       priors::kernelArguments(info, false, true, true)) {
    std::vector<int64_t> &shape = name == "q" || name == "k" ? q
                                  : name == "beta_raw"       ? e
                                  : name == "state"          ? bad
                                  : name == "state_out"      ? good
                                                             : v;
    float *buffer = name == "out"         ? out.data()
                    : name == "state_out" ? stateOut.data()
                                          : data.data();
    dl.push_back(dlTensor(buffer, shape, true));
  }
  femrt_kernel *kernel = runtime().kernel("linear_causal_state");
  if (!kernel)
    return "no kernel";
  if (femc::test::launch(kernel, dl) == FEMRT_OK)
    return "";
  return femrt_last_error();
}

/// A state of the wrong width, or whose heads or channels disagree with the
/// other arguments, is refused at launch, naming the argument.
TEST(SegmentsState, WrongShapeRefusedAtLaunch) {
  std::string width = launchWithState({1, 2, 16, 27}, {1, 2, 16, 28});
  EXPECT_NE(width.find("argument 'state' (#6): dimension 3 (Ks) must be 28, "
                       "got 27"),
            std::string::npos)
      << width;
  std::string heads = launchWithState({1, 3, 16, 28}, {1, 3, 16, 28});
  EXPECT_NE(heads.find("argument 'state' (#6) dimension 1 (H) is 3 but "
                       "argument 'q' has H = 2"),
            std::string::npos)
      << heads;
  std::string outWidth = launchWithState({1, 2, 16, 28}, {1, 2, 8, 28});
  EXPECT_NE(outWidth.find("argument 'state_out' (#8) dimension 2 (dv) is 8 "
                          "but argument 'v' has dv = 16"),
            std::string::npos)
      << outWidth;
  EXPECT_EQ(launchWithState({1, 2, 16, 28}, {1, 2, 16, 28}), "");
}

/// gla whose cumulative log-decay saturates at -60 inside the first
/// segment: the carried C stays at -60 and the decay stays stopped.
TEST(SegmentsGla, SaturatedDecayCarried) {
  for (const char *kernel : {"gla_state", "gla_state_small"}) {
    Case c;
    c.prior = Prior::Gla;
    c.kernel = kernel;
    c.ends = {20, 21, 45, 90};
    c.T = 90;
    c.decayLo = 2;
    c.decayHi = 6;
    runSegments(c, 7100);
  }
}

/// A later segment with larger values than the carried keys: the shift M
/// grows and the carried X sums are rescaled (and aft's kmax grows).
TEST(SegmentsShift, LargerShiftLater) {
  for (auto [prior, kernel, N] :
       {std::tuple{Prior::Linear, "linear_causal_state", 0},
        std::tuple{Prior::Gla, "gla_state", 0},
        std::tuple{Prior::Aft, "aft_state", 0},
        std::tuple{Prior::Ssm, "ssm_state_n16", 16}}) {
    Case c;
    c.prior = prior;
    c.kernel = kernel;
    c.N = N;
    c.ends = {9, 10, 30};
    c.T = 30;
    c.betaRaw = 1;
    c.ramp = true;  // every segment raises M
    c.vScale = 0.01; // every beta*v within ln 2: narrow channels (offset 1)
    SCOPED_TRACE(kernel);
    runSegments(c, 7200);
    c.vScale = 5;
    runSegments(c, 7201);
  }
}

} // namespace
