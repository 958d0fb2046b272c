//===- ScanBadLaunchTest.cpp - bad scan arguments through libfemrt's C API -===//
//
// The bad inputs of issue 8 at launch time, where the kernel's extents are
// dynamic (Inputs/segments.mlir: everything but dk and N): a state of the
// wrong shape or dtype, a decay or ssm operand of the wrong shape or dtype,
// aft with dk not dividing dv, a mask passed to a prior that takes none
// (one argument too many). femrt_kernel_launch must return an error status
// whose femrt_last_error() names the argument, and leave the output
// untouched (nothing runs).
//
//===----------------------------------------------------------------------===//
#include "dialect/Priors.h"
#include "femrt/femrt.h"
#include "reference/Reference.h"
#include "support/Random.h"
#include "test/integration/KernelLibrary.h"
#include "test/integration/TestProblem.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace {

namespace priors = femc::priors;
using femc::ref::Prior;

femc::test::KernelLibrary &runtime() {
  static femc::test::KernelLibrary rt(FEMC_SEGMENTS_LIBRARY);
  return rt;
}

/// One kernel's arguments, valid by default; a test then breaks one.
struct Launch {
  struct Arg {
    std::string name;
    std::vector<int64_t> shape;
    DLDataType dtype = femc::test::kF32;
    std::vector<uint8_t> bytes;
  };
  std::vector<Arg> args;
  femrt_kernel *kernel = nullptr;

  Launch(const char *kernelName, Prior prior, int64_t dk, int64_t dv,
         int64_t N) {
    kernel = runtime().kernel(kernelName);
    femc::ref::Problem p;
    p.prior = prior;
    p.B = 1;
    p.T = p.S = 5;
    p.H = p.Hkv = 2;
    p.dk = dk;
    p.dv = dv;
    p.N = N;
    p.hasState = true;
    const priors::PriorInfo &info =
        priors::priorInfo(static_cast<int>(prior));
    for (std::string_view name : priors::kernelArguments(info, false, true,
                                                         true)) {
      Arg a;
      a.name = std::string(name);
      a.shape = *femc::ref::tensorShape(p, name == "state_out" ? "state"
                                                                : a.name);
      a.bytes.assign(femc::test::numElements(a.shape) * 4, 0);
      args.push_back(a);
    }
  }

  Arg &operator[](const std::string &name) {
    for (Arg &a : args)
      if (a.name == name)
        return a;
    ADD_FAILURE() << "no argument " << name;
    return args.front();
  }

  /// Resizes argument `name` to `shape` (with room for its dtype).
  void reshape(const std::string &name, std::vector<int64_t> shape) {
    Arg &a = (*this)[name];
    a.shape = std::move(shape);
    a.bytes.assign(femc::test::numElements(a.shape) * (a.dtype.bits / 8), 0);
  }

  /// Launches; returns the status and keeps the message.
  femrt_status run(std::string &message) {
    std::vector<DLTensor> dl;
    for (Arg &a : args)
      dl.push_back(femc::test::dlTensor(a.bytes.data(), a.shape, a.dtype));
    std::vector<const DLTensor *> pointers;
    for (DLTensor &t : dl)
      pointers.push_back(&t);
    // The output starts as a pattern the kernel would overwrite.
    Arg &out = (*this)["out"];
    std::fill(out.bytes.begin(), out.bytes.end(), 0xAB);
    femrt_status status = femrt_kernel_launch(
        kernel, pointers.data(), static_cast<int32_t>(pointers.size()),
        nullptr);
    message = status == FEMRT_OK ? "" : femrt_last_error();
    outUntouched = std::all_of(out.bytes.begin(), out.bytes.end(),
                               [](uint8_t b) { return b == 0xAB; });
    return status;
  }
  bool outUntouched = false;
};

void expectRefused(Launch &l, const std::string &substring) {
  std::string message;
  femrt_status status = l.run(message);
  EXPECT_NE(status, FEMRT_OK);
  EXPECT_NE(message.find(substring), std::string::npos) << message;
  EXPECT_TRUE(l.outUntouched) << "the kernel ran: " << message;
  std::printf("refused (status %d): %s\n", static_cast<int>(status),
              message.c_str());
}

TEST(ScanBadLaunch, ValidArgumentsRun) {
  Launch l("gla_state", Prior::Gla, 8, 16, 0);
  std::string message;
  EXPECT_EQ(l.run(message), FEMRT_OK) << message;
  EXPECT_FALSE(l.outUntouched);
}

TEST(ScanBadLaunch, StateOfTheWrongShapeOrDtype) {
  {
    Launch l("gla_state", Prior::Gla, 8, 16, 0);
    l.reshape("state", {1, 2, 16, 27});
    expectRefused(l, "argument 'state' (#7): dimension 3 (Ks) must be 28, got 27");
  }
  {
    Launch l("gla_state", Prior::Gla, 8, 16, 0);
    l.reshape("state", {1, 3, 16, 28});
    expectRefused(l, "argument 'state' (#7) dimension 1 (H) is 3 but "
                     "argument 'q' has H = 2");
  }
  {
    Launch l("ssm_state_n16", Prior::Ssm, 0, 16, 16);
    l.reshape("state", {1, 2, 16});
    expectRefused(l, "argument 'state' (#9): expected rank 4 (B,H,dv,Ks), "
                     "got rank 3");
  }
  {
    Launch l("aft_state", Prior::Aft, 8, 16, 0);
    l["state"].dtype = {kDLFloat, 64, 1};
    l.reshape("state", l["state"].shape);
    expectRefused(l, "argument 'state' (#6): expected dtype float32, got float64");
  }
  {
    Launch l("aft_state", Prior::Aft, 8, 16, 0);
    l.reshape("state_out", {1, 2, 8, 12});
    expectRefused(l, "argument 'state_out' (#8) dimension 2 (dv) is 8 but "
                     "argument 'v' has dv = 16");
  }
}

TEST(ScanBadLaunch, DecayOfTheWrongShapeOrDtype) {
  {
    Launch l("gla_state", Prior::Gla, 8, 16, 0);
    l.reshape("decay", {1, 5, 3});
    expectRefused(l, "argument 'decay' (#6) dimension 2 (H) is 3 but "
                     "argument 'q' has H = 2");
  }
  {
    Launch l("gla_state", Prior::Gla, 8, 16, 0);
    l.reshape("decay", {1, 4, 2});
    expectRefused(l, "argument 'decay' (#6) dimension 1 (T) is 4 but "
                     "argument 'q' has T = 5");
  }
  {
    Launch l("gla_state", Prior::Gla, 8, 16, 0);
    l.reshape("decay", {1, 5, 2, 1});
    expectRefused(l, "argument 'decay' (#6): expected rank 3 (B,T,H), got "
                     "rank 4");
  }
  {
    Launch l("gla_state", Prior::Gla, 8, 16, 0);
    l["decay"].dtype = {kDLInt, 32, 1};
    expectRefused(l, "argument 'decay' (#6): expected dtype float32, got int32");
  }
}

TEST(ScanBadLaunch, SsmOperandsOfTheWrongShapeOrDtype) {
  for (const char *name : {"delta", "A", "Bs", "Cs", "D"}) {
    SCOPED_TRACE(name);
    Launch l("ssm_state_n16", Prior::Ssm, 0, 16, 16);
    std::vector<int64_t> shape = l[name].shape;
    shape.back() += 1; // E + 1 or N + 1
    l.reshape(name, shape);
    expectRefused(l, std::string("argument '") + name + "'");
  }
  {
    Launch l("ssm_state_n16", Prior::Ssm, 0, 16, 16);
    l["A"].dtype = {kDLFloat, 16, 1};
    l.reshape("A", l["A"].shape);
    expectRefused(l, "argument 'A' (#5): expected dtype float32, got float16");
  }
}

TEST(ScanBadLaunch, AftNeedsDkToDivideTwiceDv) {
  // dv = 12 is accepted (8 divides 24); dv = 10 is not.
  Launch l("aft_state", Prior::Aft, 8, 10, 0);
  expectRefused(l, "prior 'aft' needs dk to divide the read width 2 * dv, "
                   "found dk = 8 (argument 'q') and dv = 10");
}

TEST(ScanBadLaunch, AMaskForAPriorWithoutOne) {
  // The kernel has no mask argument: one argument too many.
  Launch l("gla_state", Prior::Gla, 8, 16, 0);
  Launch::Arg mask;
  mask.name = "mask";
  mask.shape = {1, 5};
  mask.dtype = femc::test::kU8;
  mask.bytes.assign(5, 1);
  l.args.insert(l.args.begin() + 6, mask);
  expectRefused(l, "kernel 'gla_state': takes 10 arguments (q, k, v, "
                   "beta_raw, lam, gate, decay, state, out, state_out), got "
                   "11");
}

} // namespace
