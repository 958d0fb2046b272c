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
};

/// The field of `in` that holds the float input called `name` (q, k, v,
/// beta_raw, lam, gate, decay, delta, A, Bs, Cs, D), or null for any other
/// name (the byte mask is `in.mask`). Tools bind a kernel's arguments to the
/// reference by name with it.
const float **floatInput(Inputs &in, std::string_view name);

/// Binds the kernel argument `name` with its `data` to the reference: a
/// float input (floatInput) when `isFloat`, the byte mask when `name` is
/// "mask" and not `isFloat`. False when the reference has no such input of
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
};

/// The names of the tensors `problem` reads, in the order of semantics.md:
/// a subset of q, k, v, beta_raw, lam, gate, decay, delta, A, Bs, Cs, D,
/// mask.
std::vector<std::string> inputNames(const Problem &problem);

/// The shape of the tensor called `name` (an input name, or "out", "mu",
/// "F", "M") for `problem`, or std::nullopt if the problem does not use it.
std::optional<std::vector<int64_t>> tensorShape(const Problem &problem,
                                                std::string_view name);

/// Checks that `problem` is consistent. On failure `error` names the
/// argument and says what was expected and what was found.
bool validate(const Problem &problem, std::string &error);

/// As above, and also checks that exactly the inputs the problem needs are
/// given (non-null) and every other pointer is null.
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
