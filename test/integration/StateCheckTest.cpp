//===- StateCheckTest.cpp - scan kernels from a carried state vs reference ===//
//
// fem-run --check on a kernel with a carried state compares its output and
// its state_out, field by field, with the reference continued from the same
// state (reference/Reference.h, Problem::hasState; docs/semantics.md
// "Segments"). This test does what that check does, with the same
// comparison functions (femc::ref::compare, compareState), on every state
// kernel of Inputs/segments.mlir from a random valid state: the state the
// reference leaves after a random prefix, rounded to float32 as a kernel
// passes it on. Then it perturbs the kernel's output, and each field of its
// state_out in turn, by 1e-3 of that field's size: the comparison must fail
// for exactly the perturbed part, so the check can fail.
//
//===----------------------------------------------------------------------===//
#include "dialect/Priors.h"
#include "femrt/femrt.h"
#include "reference/Reference.h"
#include "support/Random.h"
#include "test/integration/KernelLibrary.h"
#include "test/integration/TestProblem.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
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

struct Variant {
  const char *kernel;
  Prior prior;
  bool causal, mask;
  int64_t N;
};

std::ostream &operator<<(std::ostream &os, const Variant &v) {
  return os << v.kernel;
}

/// Random inputs of `p` (generateInput's ranges, |v| up to ~3 so the clip
/// is active at large beta), the mask keeping ~70% of the keys.
struct Inputs {
  std::map<std::string, std::vector<float>> f32;
  std::vector<uint8_t> mask;
  femc::ref::Inputs in;

  Inputs(const femc::ref::Problem &p, uint64_t seed) {
    femc::Rng rng(seed);
    for (const std::string &name : femc::ref::inputNames(p)) {
      int64_t n = femc::test::numElements(*femc::ref::tensorShape(p, name));
      if (name == "mask") {
        mask.resize(n);
        for (uint8_t &m : mask)
          m = rng.uniform01() < 0.7;
        in.mask = mask.data();
        continue;
      }
      if (name == "state")
        continue;
      std::vector<float> &values = f32[name];
      values.resize(n);
      femc::ref::generateInput(name, values, rng);
      if (name == "v")
        for (float &x : values)
          x *= 3;
      *femc::ref::floatInput(in, name) = values.data();
    }
  }
};

/// Runs kernel `m` on segment `seg` of problem `p` from `state`; fills
/// `out` and `stateOut` (sized here).
void launchFromState(const Variant &m, const femc::ref::Problem &p,
                     Inputs &seg, std::vector<float> &state,
                     std::vector<float> &out, std::vector<float> &stateOut) {
  const priors::PriorInfo &info = priors::priorInfo(static_cast<int>(m.prior));
  std::vector<int64_t> outShape = *femc::ref::tensorShape(p, "out");
  std::vector<int64_t> stateShape = *femc::ref::tensorShape(p, "state");
  ASSERT_EQ(stateShape.back(),
            priors::stateChannelWidth(info, p.dk, p.N)); // the kernels' Ks
  out.assign(femc::test::numElements(outShape), std::nanf(""));
  stateOut.assign(state.size(), std::nanf(""));
  std::map<std::string, std::vector<int64_t>> shapes;
  std::vector<DLTensor> dl;
  for (std::string_view name :
       priors::kernelArguments(info, m.mask, true, true)) {
    std::string n(name);
    if (n == "out") {
      dl.push_back(femc::test::dlTensor(out.data(), outShape,
                                        femc::test::kF32));
    } else if (n == "state" || n == "state_out") {
      dl.push_back(femc::test::dlTensor(
          n == "state" ? state.data() : stateOut.data(), stateShape,
          femc::test::kF32));
    } else {
      shapes[n] = *femc::ref::tensorShape(p, n);
      void *data = n == "mask" ? static_cast<void *>(seg.mask.data())
                               : seg.f32.at(n).data();
      dl.push_back(femc::test::dlTensor(
          data, shapes[n], n == "mask" ? femc::test::kU8 : femc::test::kF32));
    }
  }
  femrt_kernel *kernel = runtime().kernel(m.kernel);
  ASSERT_NE(kernel, nullptr);
  ASSERT_EQ(femc::test::launch(kernel, dl), FEMRT_OK) << femrt_last_error();
}

/// A valid carried state of `p`: the reference's after a prefix of
/// `prefixT` tokens (inputs from `seed`); empty after a failed assertion.
std::vector<float> stateAfterPrefix(femc::ref::Problem p, int64_t prefixT,
                                    uint64_t seed) {
  p.T = p.S = prefixT;
  Inputs prefix(p, seed);
  std::string error;
  auto before = femc::ref::run(p, prefix.in, error);
  EXPECT_TRUE(before) << error;
  if (!before)
    return {};
  return std::vector<float>(before->state.begin(), before->state.end());
}

/// What the comparisons of a kernel's run with the reference found.
struct Checks {
  femc::ref::Comparison out;
  std::vector<femc::ref::Comparison> state; ///< one per state field
};

/// Expects the kernel's `out` and each field of its `stateOut` to match the
/// reference's `ref` of `p` within kTolerance (fem-run --check's
/// comparisons), naming the field and the worst element when one does not.
Checks expectMatchesReference(const femc::ref::Problem &p,
                              const std::vector<float> &out,
                              const std::vector<float> &stateOut,
                              const femc::ref::Result &ref) {
  Checks c{femc::ref::compare(out.data(), ref.out.data(),
                              static_cast<int64_t>(out.size())),
           femc::ref::compareState(p, stateOut.data(), ref.state)};
  EXPECT_TRUE(c.out.pass(kTolerance))
      << "out: relative error " << c.out.relative() << " at #" << c.out.worst;
  std::vector<femc::ref::StateField> fields = femc::ref::stateFields(p);
  EXPECT_EQ(c.state.size(), fields.size());
  for (size_t i = 0; i < c.state.size() && i < fields.size(); ++i)
    EXPECT_TRUE(c.state[i].pass(kTolerance))
        << "state_out " << fields[i].name << ": relative error "
        << c.state[i].relative() << " at #" << c.state[i].worst
        << ": kernel " << stateOut[c.state[i].worst] << ", reference "
        << ref.state[c.state[i].worst];
  return c;
}

class StateCheck : public ::testing::TestWithParam<Variant> {};

TEST_P(StateCheck, OutputAndStateMatchTheReferenceAndPerturbationsFail) {
  const Variant &m = GetParam();
  femc::ref::Problem p;
  p.prior = m.prior;
  p.causal = m.causal;
  p.hasMask = m.mask;
  p.hasState = true;
  p.B = 2;
  p.H = p.Hkv = 2;
  p.dk = 8;
  p.dv = 16;
  p.N = m.N;
  std::vector<float> state = stateAfterPrefix(p, 19, 7);
  ASSERT_FALSE(state.empty());
  // The segment: 23 tokens from that state.
  p.T = p.S = 23;
  Inputs seg(p, 8);
  std::string error;
  seg.in.state = state.data();
  auto ref = femc::ref::run(p, seg.in, error);
  ASSERT_TRUE(ref) << error;

  std::vector<int64_t> stateShape = *femc::ref::tensorShape(p, "state");
  std::vector<float> out, stateOut;
  launchFromState(m, p, seg, state, out, stateOut);
  if (::testing::Test::HasFatalFailure())
    return;

  auto [outCheck, stateCheck] = expectMatchesReference(p, out, stateOut, *ref);
  if (::testing::Test::HasFailure())
    return;
  std::vector<femc::ref::StateField> fields = femc::ref::stateFields(p);

  // One output element off by 1e-3 of max |out|: the check fails.
  std::vector<float> badOut = out;
  badOut[out.size() / 3] += static_cast<float>(1e-3 * outCheck.maxRef);
  EXPECT_FALSE(femc::ref::compare(badOut.data(), ref->out.data(),
                                  static_cast<int64_t>(out.size()))
                   .pass(kTolerance));
  // Each field of state_out in turn: only that field fails.
  int64_t ks = stateShape.back();
  int64_t record = static_cast<int64_t>(state.size()) / ks / 2 + 1;
  for (size_t i = 0; i < fields.size(); ++i) {
    SCOPED_TRACE("perturbed state_out field " + fields[i].name);
    std::vector<float> bad = stateOut;
    int64_t at = record * ks + fields[i].first + fields[i].count - 1;
    bad[at] += static_cast<float>(1e-3 * (stateCheck[i].maxRef + 1));
    auto all = femc::ref::compareState(p, bad.data(), ref->state);
    for (size_t j = 0; j < fields.size(); ++j)
      EXPECT_EQ(all[j].pass(kTolerance), i != j) << fields[j].name;
    EXPECT_EQ(all[i].worst, at);
  }
}

/// gla from a carried log decay C = +50 (the clamp's upper end; a run from
/// the empty state only ever carries C <= 0) with decays that take C down
/// to -60 inside the first chunk: log decays relative to the chunk start
/// span 110, the widest the kernel's per-row and per-key factors meet
/// (ReadLinear.cpp: both stay normal floats).
TEST(StateCheckGla, PositiveCarriedLogDecay) {
  for (const Variant &m : {Variant{"gla_state", Prior::Gla, true, false, 0},
                           Variant{"gla_state_small", Prior::Gla, true, false,
                                   0}}) {
    SCOPED_TRACE(m.kernel);
    femc::ref::Problem p;
    p.prior = Prior::Gla;
    p.hasState = true;
    p.B = 1;
    p.H = p.Hkv = 2;
    p.dk = 8;
    p.dv = 16;
    std::vector<float> state = stateAfterPrefix(p, 9, 11);
    ASSERT_FALSE(state.empty());
    int64_t ks = femc::ref::tensorShape(p, "state")->back();
    for (size_t r = 0; r < state.size(); r += ks)
      state[r + priors::kStatePriorPart] = 50.0f;
    p.T = p.S = 40;
    Inputs seg(p, 12);
    for (float &d : seg.f32.at("decay"))
      d = 9.0f + d; // a_t about -9: C from 50 to -60 in about 12 steps
    seg.in.state = state.data();
    std::string error;
    auto ref = femc::ref::run(p, seg.in, error);
    ASSERT_TRUE(ref) << error;
    std::vector<float> out, stateOut;
    launchFromState(m, p, seg, state, out, stateOut);
    if (HasFatalFailure())
      return;
    expectMatchesReference(p, out, stateOut, *ref);
  }
}

const Variant kVariants[] = {
    {"linear_causal_state", Prior::Linear, true, false, 0},
    {"linear_causal_state_small", Prior::Linear, true, false, 0},
    {"linear_full_state", Prior::Linear, false, false, 0},
    {"linear_causal_mask_state", Prior::Linear, true, true, 0},
    {"gla_state", Prior::Gla, true, false, 0},
    {"gla_state_small", Prior::Gla, true, false, 0},
    {"aft_state", Prior::Aft, true, false, 0},
    {"aft_state_small", Prior::Aft, true, false, 0},
    {"ssm_state_n16", Prior::Ssm, true, false, 16},
    {"ssm_state_n1_small", Prior::Ssm, true, false, 1},
};

INSTANTIATE_TEST_SUITE_P(
    Kernels, StateCheck, ::testing::ValuesIn(kVariants),
    [](const ::testing::TestParamInfo<Variant> &info) {
      return std::string(info.param.kernel);
    });

} // namespace
