//===- KernelProblem.h - the reference problem of a femc kernel -*- C++ -*-===//
//
// What the double reference must compute to check one launch of a femc
// kernel, from the kernel's structured traits (kernel ABI 2: prior, layout,
// flags, numbers) and the extents of that launch. fem-run --check and
// fem-tune's candidate check both use it, so the two never read a kernel
// differently (and neither parses the human-readable description).
//
// Header-only: the callers already link libfemrt and the prior table
// (dialect/Priors.cpp), the reference library does not.
//
//===----------------------------------------------------------------------===//
#ifndef FEMC_REFERENCE_KERNELPROBLEM_H
#define FEMC_REFERENCE_KERNELPROBLEM_H

#include "dialect/Priors.h"
#include "femrt/femrt.h"
#include "reference/Reference.h"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace femc::ref {

/// The prior of kernel traits, or nullptr when the kernel is not a FEM read
/// (no traits, a layer, or a kernel written by hand).
inline const femc::priors::PriorInfo *
traitsPrior(const femrt_kernel_traits *traits) {
  if (!traits || traits->prior < 0 ||
      traits->prior >= static_cast<int>(femc::priors::allPriors().size()))
    return nullptr;
  return &femc::priors::priorInfo(traits->prior);
}

/// Fills `p` for a kernel whose prior is called `priorName` (the prior table's
/// name of traits->prior, or "" when the index is unknown). `extent(sym)` is
/// the launch's extent of a symbol (B, T, S, H, Hkv, dk, dv, N), nullopt when
/// the kernel has no such extent; `hasState` says whether the kernel carries a
/// scan state (a `state` or `state_out` argument). Returns "" on success, else
/// why the reference cannot check the kernel, to follow "kernel 'NAME' ".
inline std::string
problemFromTraits(const femrt_kernel_traits *traits, std::string_view priorName,
                  const std::function<std::optional<int64_t>(const char *)> &extent,
                  bool hasState, Problem &p) {
  if (!traits)
    return "has no kernel traits (prior, layout, attributes), so the "
           "reference problem is unknown; its library was not made by femc";
  std::optional<Prior> prior = parsePrior(priorName);
  std::optional<Layout> layout =
      parseLayout(traits->layout == FEMRT_LAYOUT_BHTD ? "bhtd" : "bthd");
  if (!prior || !layout)
    return "is not a FEM read the reference knows: its traits give prior " +
           std::to_string(traits->prior) + " and layout " +
           std::to_string(traits->layout);
  auto get = [&](const char *sym) { return extent(sym).value_or(0); };
  p.prior = *prior;
  p.layout = *layout;
  p.causal = traits->flags & FEMRT_KERNEL_CAUSAL;
  p.hasMask = traits->flags & FEMRT_KERNEL_MASK;
  p.scale = std::nullopt;
  if (traits->flags & FEMRT_KERNEL_HAS_SCALE)
    p.scale = traits->scale;
  p.cap = traits->cap;
  p.eps = traits->eps;
  p.B = get("B");
  p.T = get("T");
  // Causal kernels have one time axis: their keys have the length T.
  p.S = extent("S") ? get("S") : p.T;
  p.H = get("H");
  // A prior without keys (ssm) reads its values per query head.
  p.Hkv = extent("Hkv") ? get("Hkv") : p.H;
  p.dk = get("dk");
  p.dv = get("dv");
  p.N = get("N");
  // A scan kernel with a carried state: the reference continues from `state`
  // and gives the state after the segment for `state_out`.
  p.hasState = hasState;
  return "";
}

} // namespace femc::ref

#endif // FEMC_REFERENCE_KERNELPROBLEM_H
