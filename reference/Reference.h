//===- Reference.h - Double-precision FEM reference -------------*- C++ -*-===//
//
// Part of the femc project.
//
//===----------------------------------------------------------------------===//
///
/// \file
/// A plain double-precision implementation of the kernel-level Free Energy
/// Mixer semantics in `shared/design/semantics.md`, including every quirk of
/// the authors' reference marked there. It is written for clarity, not speed;
/// every numeric test of femc compares against it.
///
/// Inputs are float32, as a kernel receives them; all arithmetic is double.
/// Memory stays linear in T: attention weights are formed one query row at a
/// time, never as a T x S matrix.
///
/// Decisions beyond semantics.md (all checked by `validate`):
///  - Causal softmax/linear and every gla/aft/ssm problem need S == T
///    (causality is "s <= t" on one time axis). Non-causal softmax/linear
///    allow S != T (cross-attention).
///  - gla, aft and ssm are always causal; `Problem::causal` is ignored for
///    them (a quirk of the reference for gla and aft, the nature of a scan
///    for ssm).
///  - ssm has no keys: it ignores q/k, needs Hkv == H, and does not use dk.
///  - The key-padding mask exists for softmax and linear only. Masked keys
///    are skipped entirely (so even NaN/Inf in their k or v has no effect)
///    and do not enter the shift M. A query row with no visible key gets
///    mu = 0, F = 0 and out = 0. If every key of a (b, h) is masked, M = 0.
///  - NaN and Inf propagate as the formulas say; nothing is sanitised. The
///    max in M (and aft's kmax) propagates NaN, like torch.max.
///  - A scan prior may carry a state (`Problem::hasState`, docs/semantics.md
///    "Segments"): the read continues from `Inputs::state`, the record the
///    kernels take as `state`, and `Result::state` is the record they write
///    as `state_out`. linear and gla then read in the recurrent form of the
///    state (sums over the keys seen), not in the row-by-row weights of the
///    one-shot read, so a segment checked against a one-shot prefix compares
///    two formulations.
///
//===----------------------------------------------------------------------===//

#ifndef FEMC_REFERENCE_REFERENCE_H
#define FEMC_REFERENCE_REFERENCE_H

#include "support/Random.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace femc::ref {

/// The prior that produces the read weights (semantics.md section 2).
enum class Prior { Softmax, Linear, Gla, Aft, Ssm };

/// Memory layout of the per-token tensors: `BTHD` is the authors' (batch,
/// time, head, channel); `BHTD` puts the head before time.
enum class Layout { BTHD, BHTD };

/// "softmax", "linear", "gla", "aft" or "ssm".
const char *priorName(Prior prior);
/// Parses a name printed by `priorName`.
std::optional<Prior> parsePrior(std::string_view name);
/// "bthd" or "bhtd".
const char *layoutName(Layout layout);
/// Parses a name printed by `layoutName`.
std::optional<Layout> parseLayout(std::string_view name);

/// The static description of one kernel call.
struct Problem {
  Prior prior = Prior::Softmax;
  /// Honoured by softmax and linear; gla, aft and ssm are always causal.
  bool causal = true;
  Layout layout = Layout::BTHD;
  /// Batch size.
  int64_t B = 1;
  /// Query positions.
  int64_t T = 1;
  /// Key positions (= T for self-attention; may differ only for non-causal
  /// softmax and linear).
  int64_t S = 1;
  /// Query heads.
  int64_t H = 1;
  /// Key/value heads; query head h reads kv head h / (H / Hkv).
  int64_t Hkv = 1;
  /// Per-head query/key width (unused by ssm).
  int64_t dk = 1;
  /// Per-head value width.
  int64_t dv = 1;
  /// ssm state size (unused by the other priors).
  int64_t N = 0;
  /// Clip bound: beta * V~ lies in [-cap, cap].
  double cap = 40.0;
  /// The eps of semantics.md (beta floor, feature-map offset, clamps).
  double eps = 1e-6;
  /// Softmax logit scale; 1/sqrt(dk) when not set. Only softmax has one.
  std::optional<double> scale;
  /// Whether a key-padding mask is given (softmax and linear only).
  bool hasMask = false;
  /// Whether the read carries a state (the scan priors only): it continues
  /// from `Inputs::state` and returns the state after it in `Result::state`
  /// (docs/semantics.md, "Segments").
  bool hasState = false;

  /// E = H * dv, the number of flat channels.
  int64_t channels() const { return H * dv; }
};

/// Pointers to the float32 inputs, in the layout given by `Problem::layout`
/// (shapes as returned by `tensorShape`). Pointers a problem does not use
/// must be null.
struct Inputs {
  const float *q = nullptr;        ///< (B,T,H,dk) | (B,H,T,dk)
  const float *k = nullptr;        ///< (B,S,Hkv,dk) | (B,Hkv,S,dk)
  const float *v = nullptr;        ///< (B,S,Hkv,dv) | (B,Hkv,S,dv)
  const float *beta_raw = nullptr; ///< (E)
  const float *lam = nullptr;      ///< (B,T,H,dv) | (B,H,T,dv)
  const float *gate = nullptr;     ///< (B,T,H,dv) | (B,H,T,dv)
  const float *decay = nullptr;    ///< gla: (B,T,H) | (B,H,T)
  const float *delta = nullptr;    ///< ssm: (B,T,E), step sizes in (0,1)
  const float *A = nullptr;        ///< ssm: (E,N), negative decay rates
  const float *Bs = nullptr;       ///< ssm: (B,T,N)
  const float *Cs = nullptr;       ///< ssm: (B,T,N)
  const float *D = nullptr;        ///< ssm: (E), positive skip weights
  /// (B,S), one byte per key: nonzero keeps the key, zero masks it out.
  const uint8_t *mask = nullptr;
  /// (B,H,dv,Ks) with Problem::hasState: the state after the previous
  /// segment, one record of Ks floats per value channel (stateFields). Null
  /// (or all zeros) is the empty state, the start of a sequence.
  const float *state = nullptr;
};

/// The field of `in` that holds the float input called `name` (q, k, v,
/// beta_raw, lam, gate, decay, delta, A, Bs, Cs, D), or null for any other
/// name (the byte mask is `in.mask`). Tools bind a kernel's arguments to the
/// reference by name with it.
const float **floatInput(Inputs &in, std::string_view name);

/// Binds the kernel argument `name` with its `data` to the reference: a
/// float input (floatInput, or the carried "state") when `isFloat`, the
/// byte mask when `name` is "mask" and not `isFloat`. False when the reference has no such input of
/// that kind. `data` may be null for an empty argument. fem-run and
/// fem-tune bind their arguments with it.
bool bindInput(Inputs &in, std::string_view name, bool isFloat,
               const void *data);

/// Fills `values` with random inputs for the argument called `name`, in the
/// ranges the reference's callers form them (semantics.md): beta_raw uniform
/// in [-1, 2); ssm's delta = exp(-softplus(x)) in (0, 1), A = -softplus(x),
/// Bs, Cs, D = softplus(x) + 1e-6; a scan kernel's carried "state" all
/// zeros (the empty state); every other input standard normal.
void generateInput(std::string_view name, std::vector<float> &values,
                   Rng &rng);

/// The outputs and the intermediates the reference vectors also record.
struct Result {
  /// Gated output, in the layout of `lam` ((B,T,H,dv) or (B,H,T,dv)).
  std::vector<double> out;
  /// The expectation read mu, same layout as `out`.
  std::vector<double> mu;
  /// The free-energy read F (before gating), same layout as `out`.
  std::vector<double> F;
  /// The shift M, (B,H,dv) in both layouts (the vectors store it as
  /// (B,1,H,dv), which is the same memory order).
  std::vector<double> M;
  /// With Problem::hasState: the state after the read, (B,H,dv,Ks), as a
  /// kernel writes `state_out` (X sums relative to the merged M, in the
  /// offset form X - 1 where the record is narrow, docs/semantics.md
  /// "Segments").
  std::vector<double> state;
};

/// Ks, the floats of one value channel's state record: 4 + 3 dk for linear
/// and gla, 12 for aft, 3 + 3 N for ssm; 0 for softmax (no state).
int64_t stateWidth(const Problem &problem);

/// A named part of a state record: slots [first, first + count).
struct StateField {
  std::string name;
  int64_t first = 0, count = 1;
};

/// The fields of the problem's state record in slot order, covering
/// [0, Ks): M, L, seen, then the prior's part (docs/semantics.md,
/// "Segments"): linear/gla C, S_mu, S_X, z; aft n_mu, n_X, u_mu, u_X, d,
/// kmax, count, d_X, kmax_X; ssm x_mu, x_X, x_1.
std::vector<StateField> stateFields(const Problem &problem);

/// A float32 tensor against the reference (docs/semantics.md,
/// "Tolerance"): the largest error where both are finite, the largest
/// |ref|, and the NaN/Inf elements (a non-finite value must be the same
/// NaN, +Inf or -Inf in both).
struct Comparison {
  double maxErr = 0, maxRef = 0;
  int64_t nonFiniteSame = 0, nonFiniteMismatch = 0;
  /// Flat indices of the largest error and of the first NaN/Inf mismatch,
  /// -1 when there is none.
  int64_t worst = -1, firstMismatch = -1;
  /// A floor under max |ref|: an output whose every |ref| is smaller is
  /// judged on this scale instead (0: none). fem-run --check sets it for
  /// layers (layerScaleFloor in Layer.h; docs/semantics.md, "Tolerance").
  double scaleFloor = 0;
  /// max(maxRef, scaleFloor): what relative() divides by.
  double scale() const { return maxRef > scaleFloor ? maxRef : scaleFloor; }
  /// maxErr / scale() (maxErr when the scale is 0).
  double relative() const { return scale() > 0 ? maxErr / scale() : maxErr; }
  /// Within `tolerance` of max |ref| and no NaN/Inf mismatch.
  bool pass(double tolerance) const {
    return relative() <= tolerance && nonFiniteMismatch == 0;
  }
};

/// Compares out[0, n) with ref[0, n).
Comparison compare(const float *out, const double *ref, int64_t n);

/// Compares a kernel's `state_out` with `Result::state`, field by field
/// (each field over every record, so that a small field is not judged
/// against a large one): one comparison per stateFields entry, with flat
/// indices into the state tensor.
std::vector<Comparison> compareState(const Problem &problem,
                                     const float *stateOut,
                                     const std::vector<double> &ref);

/// The names of the tensors `problem` reads, in the order of semantics.md:
/// a subset of q, k, v, beta_raw, lam, gate, decay, delta, A, Bs, Cs, D,
/// mask, state.
std::vector<std::string> inputNames(const Problem &problem);

/// The shape of the tensor called `name` (an input name, or "out", "mu",
/// "F", "M", "state_out") for `problem`, or std::nullopt if the problem does
/// not use it.
std::optional<std::vector<int64_t>> tensorShape(const Problem &problem,
                                                std::string_view name);

/// Checks that `problem` is consistent. On failure `error` names the
/// argument and says what was expected and what was found.
bool validate(const Problem &problem, std::string &error);

/// As above, and also checks that exactly the inputs the problem needs are
/// given (non-null) and every other pointer is null (the state may be null:
/// the empty state), and that a given state is one a kernel can have
/// written: `seen` 0 or 1, the per-head parts (seen; linear/gla C and z;
/// aft's key count) equal in every channel's record of a head, aft's key
/// count a whole number >= 0.
bool validate(const Problem &problem, const Inputs &inputs, std::string &error);

/// Computes the FEM read. Returns std::nullopt with `error` set when
/// `validate(problem, inputs, error)` fails.
std::optional<Result> run(const Problem &problem, const Inputs &inputs,
                          std::string &error);

/// Computes the FEM read of a problem the caller has validated. Prints the
/// validation error and aborts if it is invalid.
Result run(const Problem &problem, const Inputs &inputs);

} // namespace femc::ref

#endif // FEMC_REFERENCE_REFERENCE_H
