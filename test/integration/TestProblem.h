//===- TestProblem.h - what the kernel-vs-reference tests share -*- C++ -*-===//
//
// The integration tests run femc's kernels through libfemrt and compare each
// output with the double-precision reference (reference/Reference.h). This
// holds what they do alike: the case's shape as a reference problem, the
// input distributions, DLTensors over host buffers and the error measure
// max |out - ref| against max |ref|.
//
//===----------------------------------------------------------------------===//
#ifndef FEMC_TEST_INTEGRATION_TESTPROBLEM_H
#define FEMC_TEST_INTEGRATION_TESTPROBLEM_H

#include "femrt/femrt.h"
#include "reference/Reference.h"
#include "support/Random.h"
#include "support/Slice.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace femc::test {

inline constexpr DLDataType kF32{kDLFloat, 32, 1};
inline constexpr DLDataType kU8{kDLUInt, 8, 1};

/// A host DLTensor over `data`; `shape` must outlive it.
inline DLTensor dlTensor(void *data, std::vector<int64_t> &shape,
                         DLDataType dtype) {
  DLTensor t{};
  t.data = data;
  t.device = {kDLCPU, 0};
  t.ndim = static_cast<int32_t>(shape.size());
  t.dtype = dtype;
  t.shape = shape.data();
  return t;
}

inline int64_t numElements(const std::vector<int64_t> &shape) {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

/// softplus as torch computes it: x for x > 20, else log1p(e^x).
inline double softplus(double x) {
  return x > 20 ? x : std::log1p(std::exp(x));
}

/// The shape of a test case and the reference problem it stands for. The
/// tests' cases derive from it and add their own fields.
struct CaseShape {
  femc::ref::Prior prior = femc::ref::Prior::Softmax;
  bool causal = true, bhtd = false, mask = false;
  int64_t B = 1, T = 1, S = 1, H = 1, Hkv = 1, dk = 8, dv = 8, N = 0;
  double betaRaw = 0, vScale = 1;

  /// Case `i` (0 to 7) of the listed values that the prior matrices
  /// walk, for this case's prior: every T (= S), B = 3 on the odd cases
  /// below T = 257, H = 4 on cases 2, 3, 6, 7 with grouped kv heads (Hkv =
  /// 2) on every third case for the priors with keys, dk != dv (aft: dk
  /// divides 2 dv, and on cases 2, 5, 7 not dv), the ssm's N 1 or 16,
  /// beta_raw in {-4, 0, 8} and |v| up to 1 or 100 (the clip is active).
  void setListedValues(int i) {
    const int64_t ts[] = {1, 2, 7, 63, 64, 65, 257, 1000};
    const double betas[] = {-4, 0, 8}, vScales[] = {1, 100};
    const int64_t dks[] = {8, 4, 16}, dvs[] = {16, 24, 48};
    T = S = ts[i];
    B = T >= 257 ? 1 : (i % 2 ? 3 : 1);
    H = (i / 2) % 2 ? 4 : 1;
    Hkv = (prior != femc::ref::Prior::Ssm && H == 4 && i % 3 == 0) ? 2 : H;
    dk = dks[i % 3];
    dv = dvs[(i + 1) % 3];
    // aft: dk must divide 2 dv; on cases 2 and 5 dk = 2 dv (the module's
    // default sizes, no tiling) and on case 7 dk = 32 with dv = 48 (3
    // tiles of 2 dv): dk | 2 dv without dk | dv, the X half on its own q/k
    // channels.
    if (prior == femc::ref::Prior::Aft) {
      if (i == 2 || i == 5)
        dk = 2 * dv;
      else if (i == 7)
        dk = 32;
    }
    if (prior == femc::ref::Prior::Ssm)
      N = i % 2 ? 16 : 1;
    betaRaw = betas[i % 3];
    vScale = vScales[(i / 3) % 2];
  }

  /// " B=.. T=.. S=.. H=.. Hkv=.. dk=.. dv=.. N=.. beta_raw~.. |v|<=..", for
  /// a case's trace.
  std::string shape() const {
    std::ostringstream os;
    os << " B=" << B << " T=" << T << " S=" << S << " H=" << H
       << " Hkv=" << Hkv << " dk=" << dk << " dv=" << dv << " N=" << N
       << " beta_raw~" << betaRaw << " |v|<=" << vScale;
    return os.str();
  }

  /// The reference problem: prior, causality, layout, sizes and mask; the
  /// prior's attributes keep the reference's defaults.
  femc::ref::Problem problem() const {
    femc::ref::Problem p;
    p.prior = prior;
    p.causal = causal;
    p.layout = bhtd ? femc::ref::Layout::BHTD : femc::ref::Layout::BTHD;
    p.B = B;
    p.T = T;
    p.S = S;
    p.H = H;
    p.Hkv = Hkv;
    p.dk = dk;
    p.dv = dv;
    p.N = N;
    p.hasMask = mask;
    return p;
  }
};

/// The ranges of the inputs that depend on the case.
struct InputRanges {
  double betaRaw = 0, vScale = 1;
  /// gla decay logits are drawn from [decayLo, decayHi].
  double decayLo = -2, decayHi = 2;
};

/// One element of input `name` of any prior: q and k in [-2, 2], v in
/// [-vScale, vScale], beta_raw within 0.5 of betaRaw, decay in [decayLo,
/// decayHi], the ssm's delta, A, Bs, Cs and D formed from u as the reference
/// forms them, anything else (lam, gate) u itself; u in [-3, 3] is drawn
/// first for every element, so each name takes the same draws in every test.
inline double drawInput(Rng &rng, const std::string &name,
                        const InputRanges &r) {
  double u = rng.uniform(-3, 3);
  if (name == "q" || name == "k")
    return rng.uniform(-2, 2);
  if (name == "v")
    return rng.uniform(-r.vScale, r.vScale);
  if (name == "beta_raw")
    return rng.uniform(r.betaRaw - 0.5, r.betaRaw + 0.5);
  if (name == "decay")
    return rng.uniform(r.decayLo, r.decayHi);
  if (name == "delta")
    return std::exp(-softplus(u));
  if (name == "A")
    return -softplus(u);
  if (name == "Bs" || name == "Cs" || name == "D")
    return softplus(u) + 1e-6;
  return u;
}

/// max |out - ref| over the elements added, max |ref| and the element of
/// the largest error.
struct MaxError {
  double maxErr = 0, maxRef = 0;
  size_t worst = 0;

  void add(size_t i, double out, double ref) {
    double e = std::fabs(out - ref);
    maxRef = std::max(maxRef, std::fabs(ref));
    if (e > maxErr) {
      maxErr = e;
      worst = i;
    }
  }
  /// The error relative to max |ref| (absolute when the reference is 0).
  double relative() const { return maxRef > 0 ? maxErr / maxRef : maxErr; }
};

/// One input of a whole sequence for the segment tests: float values, or
/// the u8 key mask, with the axis of its positions (-1: none, as beta_raw).
struct SequenceInput {
  std::vector<float> f32;
  std::vector<uint8_t> u8;
  std::vector<int64_t> shape;
  int timeAxis = -1;
};

/// Rows [t0, t1) of every input of a sequence (docs/semantics.md,
/// "Segments"): the float inputs by name with their shapes, and the mask.
struct SegmentInputs {
  std::map<std::string, std::pair<std::vector<float>, std::vector<int64_t>>>
      floats;
  std::vector<uint8_t> mask;
  std::vector<int64_t> maskShape;
};

inline SegmentInputs
sliceSegment(const std::map<std::string, SequenceInput> &full, int64_t t0,
             int64_t t1) {
  SegmentInputs seg;
  for (const auto &[name, f] : full) {
    std::vector<int64_t> shape = f.shape;
    if (f.timeAxis >= 0)
      shape[f.timeAxis] = t1 - t0;
    if (name == "mask") {
      seg.mask = femc::sliceAxis(f.u8, f.shape, f.timeAxis, t0, t1);
      seg.maskShape = shape;
    } else {
      seg.floats[name] = {femc::sliceAxis(f.f32, f.shape, f.timeAxis, t0, t1),
                          shape};
    }
  }
  return seg;
}

} // namespace femc::test

#endif // FEMC_TEST_INTEGRATION_TESTPROBLEM_H
