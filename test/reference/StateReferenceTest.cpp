//===- StateReferenceTest.cpp - the reference with a carried state --------===//
//
// Part of the femc project.
//
//===----------------------------------------------------------------------===//
//
// The reference's stateful mode (Problem::hasState, docs/semantics.md
// "Segments"): a sequence run through the reference as segments, each from
// the float32 state the previous one returned, must give for every segment
// the rows of a one-shot reference run over the prefix [0, t_end). For
// linear and gla the two use different formulations (recurrent sums against
// row-by-row weights), so this checks the state's definition, not a copy of
// the one-shot code. The state after the last segment must equal the state
// after one segment over the whole sequence. Also: the empty state, the
// state record's fields, the refusals of states no kernel writes, and the
// comparison that fem-run --check uses.
//
//===----------------------------------------------------------------------===//

#include "reference/Reference.h"
#include "support/Random.h"
#include "support/Slice.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace {

using femc::ref::Inputs;
using femc::ref::Layout;
using femc::ref::Prior;
using femc::ref::Problem;
using femc::ref::Result;

struct Variant {
  const char *name;
  Prior prior;
  bool causal = true, mask = false;
  Layout layout = Layout::BTHD;
  int64_t H = 2, Hkv = 2, dk = 3, dv = 6, N = 0;
  /// Added to every gla decay logit: large values saturate C at -60.
  double decayShift = 0;
  double vScale = 3;
  std::vector<int64_t> ends; ///< segment ends, the last one is T
};

std::ostream &operator<<(std::ostream &os, const Variant &v) {
  return os << v.name;
}

int64_t count(const std::vector<int64_t> &shape) {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

/// The position axis of input `name` (-1: none).
int timeAxis(const Problem &p, const std::string &name) {
  if (name == "beta_raw" || name == "A" || name == "D" || name == "state")
    return -1;
  if (name == "delta" || name == "Bs" || name == "Cs" || name == "mask")
    return 1;
  return p.layout == Layout::BTHD ? 1 : 2;
}

template <typename E>
std::vector<E> slice(const std::vector<E> &data,
                     const std::vector<int64_t> &shape, int axis, int64_t t0,
                     int64_t t1) {
  return femc::sliceAxis(data, shape, axis, t0, t1);
}

/// A whole sequence's inputs.
struct Sequence {
  Problem p;
  std::map<std::string, std::vector<float>> f32;
  std::vector<uint8_t> mask;

  Sequence(const Variant &v, int64_t B, uint64_t seed) {
    p.prior = v.prior;
    p.causal = v.causal;
    p.layout = v.layout;
    p.B = B;
    p.T = p.S = v.ends.back();
    p.H = v.H;
    p.Hkv = v.Hkv;
    p.dk = v.dk;
    p.dv = v.dv;
    p.N = v.N;
    p.hasMask = v.mask;
    femc::Rng rng(seed);
    for (const std::string &name : femc::ref::inputNames(p)) {
      int64_t n = count(*femc::ref::tensorShape(p, name));
      if (name == "mask") {
        mask.resize(n);
        for (uint8_t &m : mask)
          m = rng.uniform01() < 0.6;
        continue;
      }
      std::vector<float> &values = f32[name];
      values.resize(n);
      femc::ref::generateInput(name, values, rng);
      for (float &x : values) {
        if (name == "v")
          x *= static_cast<float>(v.vScale);
        if (name == "decay")
          x += static_cast<float>(v.decayShift);
      }
    }
  }

  /// The problem and inputs of positions [t0, t1), with or without a state.
  struct Part {
    Problem p;
    std::map<std::string, std::vector<float>> f32;
    std::vector<uint8_t> mask;
    Inputs in;
  };
  Part part(int64_t t0, int64_t t1, bool hasState,
            const std::vector<float> *state) const {
    Part s;
    s.p = p;
    s.p.T = s.p.S = t1 - t0;
    s.p.hasState = hasState;
    for (auto &[name, values] : f32) {
      s.f32[name] = slice(values, *femc::ref::tensorShape(p, name),
                          timeAxis(p, name), t0, t1);
      *femc::ref::floatInput(s.in, name) = s.f32[name].data();
    }
    if (p.hasMask) {
      s.mask = slice(mask, {p.B, p.S}, 1, t0, t1);
      s.in.mask = s.mask.data();
    }
    if (state)
      s.in.state = state->data();
    return s;
  }
};

Result runOrFail(const Problem &p, const Inputs &in) {
  std::string error;
  auto result = femc::ref::run(p, in, error);
  EXPECT_TRUE(result.has_value()) << error;
  return result ? *result : Result();
}

/// max |a - b| / max |b| over the elements, NaN only where both are NaN.
double relativeError(const std::vector<double> &a,
                     const std::vector<double> &b) {
  EXPECT_EQ(a.size(), b.size());
  double err = 0, scale = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    EXPECT_EQ(std::isnan(a[i]), std::isnan(b[i])) << "element " << i;
    if (std::isnan(a[i]) || std::isnan(b[i]))
      continue;
    err = std::max(err, std::fabs(a[i] - b[i]));
    scale = std::max(scale, std::fabs(b[i]));
  }
  return scale > 0 ? err / scale : err;
}

/// Rows [t0, t1) of a (B, T, H, dv) or (B, H, T, dv) output.
std::vector<double> rows(const Problem &p, const std::vector<double> &out,
                         int64_t t0, int64_t t1) {
  std::vector<int64_t> shape = *femc::ref::tensorShape(p, "out");
  return slice(out, shape, p.layout == Layout::BTHD ? 1 : 2, t0, t1);
}

/// The fields of a state, compared one by one (each relative to its own
/// largest value, as compareState does).
void expectStatesNear(const Problem &p, const std::vector<double> &got,
                      const std::vector<double> &want, double tolerance) {
  ASSERT_EQ(got.size(), want.size());
  int64_t ks = femc::ref::stateWidth(p);
  for (const femc::ref::StateField &field : femc::ref::stateFields(p)) {
    std::vector<double> a, b;
    for (size_t r = 0; r < got.size() / ks; ++r)
      for (int64_t s = field.first; s < field.first + field.count; ++s) {
        a.push_back(got[r * ks + s]);
        b.push_back(want[r * ks + s]);
      }
    EXPECT_LE(relativeError(a, b), tolerance) << "state field " << field.name;
  }
}

class ReferenceSegments : public ::testing::TestWithParam<Variant> {};

TEST_P(ReferenceSegments, EqualThePrefixRunAndTheWholeState) {
  const Variant &v = GetParam();
  Sequence seq(v, /*B=*/2, /*seed=*/17);
  std::string error;
  ASSERT_TRUE(femc::ref::validate(seq.p, error)) << error;
  std::vector<float> state; // float32, as a kernel passes it on
  int64_t t0 = 0;
  for (int64_t t1 : v.ends) {
    SCOPED_TRACE("segment [" + std::to_string(t0) + ", " +
                 std::to_string(t1) + ")");
    auto seg = seq.part(t0, t1, true, t0 ? &state : nullptr);
    Result got = runOrFail(seg.p, seg.in);
    auto prefix = seq.part(0, t1, false, nullptr);
    Result want = runOrFail(prefix.p, prefix.in);
    // The carried state is float32: 6e-8 of its sums, amplified a little.
    EXPECT_LE(relativeError(got.out, rows(prefix.p, want.out, t0, t1)), 1e-6);
    EXPECT_LE(relativeError(got.mu, rows(prefix.p, want.mu, t0, t1)), 1e-6);
    // The merged shift is the prefix's.
    EXPECT_LE(relativeError(got.M, want.M), 1e-7);
    ASSERT_EQ(int64_t(got.state.size()),
              count(*femc::ref::tensorShape(seg.p, "state_out")));
    state.assign(got.state.begin(), got.state.end());
    t0 = t1;
  }
  // The state after the segments is the state after the whole sequence.
  auto whole = seq.part(0, seq.p.T, true, nullptr);
  Result once = runOrFail(whole.p, whole.in);
  std::vector<double> last(state.begin(), state.end());
  expectStatesNear(whole.p, last, once.state, 1e-6);
}

TEST_P(ReferenceSegments, TheEmptyStateIsAllZeros) {
  const Variant &v = GetParam();
  Sequence seq(v, 1, 5);
  auto none = seq.part(0, seq.p.T, true, nullptr);
  std::vector<float> zeros(count(*femc::ref::tensorShape(none.p, "state")),
                           0.0f);
  auto fromZeros = seq.part(0, seq.p.T, true, &zeros);
  Result a = runOrFail(none.p, none.in), b = runOrFail(fromZeros.p, fromZeros.in);
  EXPECT_EQ(a.out, b.out);
  EXPECT_EQ(a.state, b.state);
  // And the stateful read from the empty state is the one-shot read.
  auto plain = seq.part(0, seq.p.T, false, nullptr);
  Result c = runOrFail(plain.p, plain.in);
  EXPECT_LE(relativeError(a.out, c.out), 1e-12);
  EXPECT_TRUE(c.state.empty());
}

const Variant kVariants[] = {
    {"linear_causal", Prior::Linear, true, false, Layout::BTHD, 2, 2, 3, 6, 0,
     0, 3, {5, 6, 13, 20}},
    {"linear_causal_grouped_bhtd", Prior::Linear, true, false, Layout::BHTD, 4,
     2, 4, 3, 0, 0, 3, {1, 2, 9, 17}},
    {"linear_noncausal", Prior::Linear, false, false, Layout::BTHD, 2, 2, 3, 6,
     0, 0, 3, {4, 11, 12, 19}},
    {"linear_causal_mask", Prior::Linear, true, true, Layout::BTHD, 2, 2, 3, 6,
     0, 0, 3, {1, 3, 8, 15}},
    {"linear_noncausal_mask", Prior::Linear, false, true, Layout::BTHD, 2, 2, 3,
     6, 0, 0, 3, {2, 9, 16}},
    {"gla", Prior::Gla, true, false, Layout::BTHD, 2, 2, 3, 6, 0, 0, 3,
     {5, 6, 13, 20}},
    {"gla_saturated", Prior::Gla, true, false, Layout::BTHD, 2, 2, 3, 6, 0, 8,
     3, {3, 9, 10, 24}},
    {"gla_bhtd", Prior::Gla, true, false, Layout::BHTD, 2, 1, 5, 2, 0, 0, 1,
     {7, 8, 16}},
    {"aft", Prior::Aft, true, false, Layout::BTHD, 2, 2, 3, 6, 0, 0, 3,
     {5, 6, 13, 20}},
    {"aft_dk_eq_dv_bhtd", Prior::Aft, true, false, Layout::BHTD, 2, 2, 4, 4, 0,
     0, 1, {1, 2, 3, 12}},
    // dk divides 2 dv but not dv: the X half has its own q/k channels, d_X
    // and kmax_X (dk = 2 dv, and dk = 4 with dv = 6).
    {"aft_dk_2dv", Prior::Aft, true, false, Layout::BTHD, 2, 2, 6, 3, 0, 0, 3,
     {5, 6, 13, 20}},
    {"aft_dk_tiles_2dv_bhtd", Prior::Aft, true, false, Layout::BHTD, 2, 1, 4,
     6, 0, 0, 1, {1, 2, 3, 12}},
    {"ssm_n1", Prior::Ssm, true, false, Layout::BTHD, 2, 2, 0, 5, 1, 0, 3,
     {5, 6, 13, 20}},
    {"ssm_n4", Prior::Ssm, true, false, Layout::BTHD, 3, 3, 0, 2, 4, 0, 3,
     {1, 8, 9, 21}},
};

INSTANTIATE_TEST_SUITE_P(
    Priors, ReferenceSegments, ::testing::ValuesIn(kVariants),
    [](const ::testing::TestParamInfo<Variant> &info) {
      return std::string(info.param.name);
    });

Problem stateProblem(Prior prior, int64_t dk = 8, int64_t N = 0) {
  Problem p;
  p.prior = prior;
  p.B = 1;
  p.T = p.S = 4;
  p.H = p.Hkv = 2;
  p.dk = dk;
  p.dv = 8;
  p.N = N;
  p.hasState = true;
  return p;
}

// The record widths are the ones femc's kernels take (the state tensors of
// test/integration/Inputs/segments.mlir: 28, 10, 51, 6).
TEST(ReferenceState, WidthsAndFields) {
  EXPECT_EQ(femc::ref::stateWidth(stateProblem(Prior::Linear, 8)), 28);
  EXPECT_EQ(femc::ref::stateWidth(stateProblem(Prior::Gla, 8)), 28);
  EXPECT_EQ(femc::ref::stateWidth(stateProblem(Prior::Aft, 8)), 12);
  EXPECT_EQ(femc::ref::stateWidth(stateProblem(Prior::Ssm, 0, 16)), 51);
  EXPECT_EQ(femc::ref::stateWidth(stateProblem(Prior::Ssm, 0, 1)), 6);
  for (Prior prior : {Prior::Linear, Prior::Gla, Prior::Aft, Prior::Ssm}) {
    Problem p = stateProblem(prior, 5, 3);
    int64_t next = 0;
    std::set<std::string> names;
    for (const auto &field : femc::ref::stateFields(p)) {
      EXPECT_EQ(field.first, next) << field.name;
      EXPECT_GE(field.count, 1) << field.name;
      EXPECT_TRUE(names.insert(field.name).second) << field.name;
      next = field.first + field.count;
    }
    EXPECT_EQ(next, femc::ref::stateWidth(p)) << femc::ref::priorName(prior);
  }
  Problem softmax = stateProblem(Prior::Softmax);
  EXPECT_EQ(femc::ref::stateWidth(softmax), 0);
  EXPECT_TRUE(femc::ref::stateFields(softmax).empty());
}

/// The error of validate(p, in) for `p` with random inputs and `state`.
std::string stateError(const Problem &p, std::vector<float> &state) {
  Variant v{"x", p.prior, true, false, Layout::BTHD, 2, 2, 3, 6, 0, 0, 3, {}};
  v.H = v.Hkv = p.H;
  v.dk = p.dk;
  v.dv = p.dv;
  v.N = p.N;
  v.ends = {p.T};
  Sequence seq(v, p.B, 3);
  auto seg = seq.part(0, p.T, true, &state);
  std::string error;
  EXPECT_FALSE(femc::ref::validate(seg.p, seg.in, error));
  return error;
}

TEST(ReferenceState, RefusesStatesNoKernelWrites) {
  Problem lin = stateProblem(Prior::Linear, 2);
  int64_t ks = femc::ref::stateWidth(lin); // 10: M L seen C Smu2 SX2 z2
  std::vector<float> state(2 * 8 * ks, 0.0f);
  state[2] = 0.5f;
  EXPECT_EQ(stateError(lin, state),
            "state[0, 0, 0, 2] (seen) is 0.5; expected 0 or 1");
  state[2] = 0.0f;
  state[3 * ks + 8] = 2.0f; // z[0] of channel 3 of head 0
  EXPECT_EQ(stateError(lin, state),
            "state[0, 0, 3, 8] (z) is 2 but state[0, 0, 0, 8] is 0; z is per "
            "head, the same in every channel's record");
  Problem aft = stateProblem(Prior::Aft, 4);
  std::vector<float> aftState(2 * 8 * 12, 0.0f);
  for (int64_t r = 0; r < 16; ++r)
    aftState[r * 12 + 9] = 1.5f;
  EXPECT_EQ(stateError(aft, aftState),
            "state[0, 0, 0, 9] (count) is 1.5; expected the number of keys "
            "seen, a whole number >= 0");
  // A state without hasState, hasState on softmax.
  Problem plain = lin;
  plain.hasState = false;
  Inputs in;
  in.state = state.data();
  std::string error;
  EXPECT_FALSE(femc::ref::validate(plain, in, error));
  EXPECT_EQ(error, "inputs.state: expected null; the problem carries no state "
                   "(hasState is not set)");
  Problem softmax = stateProblem(Prior::Softmax);
  EXPECT_FALSE(femc::ref::validate(softmax, error));
  EXPECT_EQ(error, "hasState: prior 'softmax' carries no state; the scan "
                   "priors linear, gla, aft and ssm do");
}

TEST(ReferenceCompare, FindsErrorsAndNaNMismatches) {
  std::vector<double> ref = {1.0, -2.0, 4.0, std::nan(""), 0.5};
  std::vector<float> out = {1.0f, -2.0f, 4.0f, std::nanf(""), 0.5f};
  auto same = femc::ref::compare(out.data(), ref.data(), 5);
  EXPECT_TRUE(same.pass(1e-4));
  EXPECT_EQ(same.nonFiniteSame, 1);
  EXPECT_EQ(same.maxRef, 4.0);
  out[1] = -2.001f; // 2.5e-4 of max |ref|
  auto off = femc::ref::compare(out.data(), ref.data(), 5);
  EXPECT_FALSE(off.pass(1e-4));
  EXPECT_EQ(off.worst, 1);
  EXPECT_TRUE(off.pass(1e-3));
  out[1] = -2.0f;
  out[4] = std::nanf("");
  auto nan = femc::ref::compare(out.data(), ref.data(), 5);
  EXPECT_FALSE(nan.pass(1.0));
  EXPECT_EQ(nan.firstMismatch, 4);
}

TEST(ReferenceCompare, StateFieldsAreJudgedAlone) {
  Variant v{"gla", Prior::Gla, true, false, Layout::BTHD, 2, 2, 3, 6, 0, 0, 3, {}};
  v.dk = 2;
  v.dv = 4;
  v.ends = {6};
  Sequence seq(v, 1, 9);
  auto seg = seq.part(0, 6, true, nullptr);
  Result r = runOrFail(seg.p, seg.in);
  std::vector<float> out(r.state.begin(), r.state.end());
  auto fields = femc::ref::stateFields(seg.p);
  auto all = femc::ref::compareState(seg.p, out.data(), r.state);
  ASSERT_EQ(all.size(), fields.size());
  for (const auto &c : all)
    EXPECT_TRUE(c.pass(1e-6));
  // L of one record moved by 1e-2 of the largest |L| fails the L field, and
  // only it.
  int64_t ks = femc::ref::stateWidth(seg.p);
  int64_t at = 3 * ks + 1;
  double maxL = 0;
  for (size_t i = 1; i < r.state.size(); i += ks)
    maxL = std::max(maxL, std::fabs(r.state[i]));
  out[at] += static_cast<float>(1e-2 * (maxL + 1));
  all = femc::ref::compareState(seg.p, out.data(), r.state);
  for (size_t i = 0; i < fields.size(); ++i) {
    EXPECT_EQ(all[i].pass(1e-4), fields[i].name != "L") << fields[i].name;
    if (fields[i].name == "L")
      EXPECT_EQ(all[i].worst, at);
  }
}

} // namespace
