//===- Priors.cpp - the prior table ----------------------------------------===//
#include "dialect/Priors.h"

#include <algorithm>
#include <cstdlib>

namespace femc::priors {

int extentIndex(std::string_view name) {
  for (int i = 0; i < kNumExtents; ++i)
    if (kExtents[i] == name)
      return i;
  return -1;
}

const std::vector<PriorInfo> &allPriors() {
  // Order = the dialect's PriorKind enum.
  static const std::vector<PriorInfo> table = {
      {"softmax", /*usesKeys=*/true, /*alwaysCausal=*/false,
       /*maskAllowed=*/true, /*scaleAllowed=*/true, /*squashValues=*/false,
       /*dkDividesWidth=*/false, GridKind::QueryTiles,
       ReadAlgorithm::OnlineSoftmax, {},
       "query rows per workgroup", "keys per inner step"},
      {"linear", true, false, true, false, false, false, GridKind::Scan,
       ReadAlgorithm::ChunkedLinear, {},
       "chunk length (rows per chunk)", "value channels per workgroup"},
      {"gla", true, true, false, false, false, false, GridKind::Scan,
       ReadAlgorithm::ChunkedLinear, {"decay"}, "chunk length (rows per chunk)",
       "value channels per workgroup"},
      {"aft", true, true, false, false, false, true, GridKind::Scan,
       ReadAlgorithm::AftScan, {},
       "rows per step of the time loop", "value channels per workgroup"},
      {"ssm", false, true, false, false, true, false, GridKind::Scan,
       ReadAlgorithm::SsmScan, {"delta", "A", "Bs", "Cs", "D"}, "rows per step of the time loop",
       "value channels per workgroup"},
  };
  return table;
}

const PriorInfo &priorInfo(int kind) {
  const auto &table = allPriors();
  if (kind < 0 || kind >= static_cast<int>(table.size()))
    std::abort();
  return table[kind];
}

std::optional<std::string> dkDividesWidthError(const PriorInfo &info,
                                               int64_t dk, int64_t dv) {
  if (!info.dkDividesWidth || dk < 0 || dv < 0 || (dk > 0 && 2 * dv % dk == 0))
    return std::nullopt;
  return "prior '" + std::string(info.name) +
         "' requires dk to divide the read width 2 * dv = " +
         std::to_string(2 * dv) + " (its q/k channels tile [V | X]), found dk = " +
         std::to_string(dk) + " and dv = " + std::to_string(dv);
}

const PriorInfo *findPrior(std::string_view name) {
  for (const PriorInfo &info : allPriors())
    if (info.name == name)
      return &info;
  return nullptr;
}

int priorIndex(const PriorInfo &info) {
  return static_cast<int>(&info - allPriors().data());
}

const std::vector<std::string_view> &allOperandNames() {
  static const std::vector<std::string_view> names = {
      "q",     "k", "v",  "beta_raw", "lam", "gate", "decay",
      "delta", "A", "Bs", "Cs",       "D",   "mask", "out", "state",
      "state_out"};
  return names;
}

std::vector<std::string_view> operandDims(std::string_view name, bool bhtd,
                                          bool keysOnQueryAxis) {
  std::string_view key = keysOnQueryAxis ? "T" : "S";
  auto four = [&](std::string_view t, std::string_view h,
                  std::string_view d) -> std::vector<std::string_view> {
    if (bhtd)
      return {"B", h, t, d};
    return {"B", t, h, d};
  };
  if (name == "q")
    return four("T", "H", "dk");
  if (name == "k")
    return four(key, "Hkv", "dk");
  if (name == "v")
    return four(key, "Hkv", "dv");
  if (name == "lam" || name == "gate" || name == "out")
    return four("T", "H", "dv");
  if (name == "beta_raw" || name == "D")
    return {"E"};
  if (name == "mask")
    return {"B", key};
  if (name == "decay")
    return bhtd ? std::vector<std::string_view>{"B", "H", "T"}
                : std::vector<std::string_view>{"B", "T", "H"};
  if (name == "delta")
    return {"B", "T", "E"};
  if (name == "A")
    return {"E", "N"};
  if (name == "Bs" || name == "Cs")
    return {"B", "T", "N"};
  if (name == "state" || name == "state_out")
    return {"B", "H", "dv", kStateExtent};
  return {};
}

std::vector<std::string_view> operandDims(const PriorInfo &info,
                                          std::string_view name, bool bhtd,
                                          bool causal) {
  std::vector<std::string_view> dims =
      operandDims(name, bhtd, keysOnQueryAxis(info, causal));
  if (!info.usesKeys && name == "v")
    for (std::string_view &d : dims)
      if (d == "Hkv")
        d = "H";
  return dims;
}

static std::string join(const std::vector<std::string_view> &dims) {
  std::string out;
  for (std::string_view d : dims) {
    if (!out.empty())
      out += ',';
    out += d;
  }
  return out;
}

std::string operandDimsString(std::string_view name, bool bhtd,
                              bool keysOnQueryAxis) {
  return join(operandDims(name, bhtd, keysOnQueryAxis));
}

std::string operandDimsString(const PriorInfo &info, std::string_view name,
                              bool bhtd, bool causal) {
  return join(operandDims(info, name, bhtd, causal));
}

bool usesOperand(const PriorInfo &info, std::string_view name, bool hasMask) {
  if (name == "q" || name == "k")
    return info.usesKeys;
  if (name == "v" || name == "beta_raw" || name == "lam" || name == "gate" ||
      name == "out")
    return true;
  if (name == "mask")
    return hasMask && info.maskAllowed;
  if (name == "state" || name == "state_out")
    return hasState(info);
  return std::find(info.extraOperands.begin(), info.extraOperands.end(),
                   name) != info.extraOperands.end();
}

std::vector<std::string_view> kernelArguments(const PriorInfo &info,
                                              bool hasMask, bool hasStateIn,
                                              bool hasStateOut) {
  std::vector<std::string_view> args;
  if (info.usesKeys)
    args.insert(args.end(), {"q", "k"});
  args.insert(args.end(), {"v", "beta_raw", "lam", "gate"});
  if (hasMask && info.maskAllowed)
    args.push_back("mask");
  args.insert(args.end(), info.extraOperands.begin(), info.extraOperands.end());
  if (hasStateIn && hasState(info))
    args.push_back("state");
  args.push_back("out");
  if (hasStateOut && hasState(info))
    args.push_back("state_out");
  return args;
}

bool isOutputArgument(std::string_view name) {
  return name == "out" || name == "state_out";
}

bool hasState(const PriorInfo &info) { return info.grid == GridKind::Scan; }

int64_t stateChannelWidth(const PriorInfo &info, int64_t dk, int64_t n) {
  switch (info.algorithm) {
  case ReadAlgorithm::ChunkedLinear:
    return dk < 0 ? -1 : kStatePriorPart + 1 + 3 * dk;
  case ReadAlgorithm::AftScan:
    return kStatePriorPart + 9;
  case ReadAlgorithm::SsmScan:
    return n < 0 ? -1 : kStatePriorPart + 3 * n;
  case ReadAlgorithm::OnlineSoftmax:
    break;
  }
  return -1;
}

Tiles defaultTiles(const PriorInfo &info, int64_t vec) {
  if (info.grid == GridKind::QueryTiles)
    // Rows: a multiple of the lowering's row quantum at 4, 8 or 16 lanes.
    // 384 with 16 lanes: the value panel and the shift pre-pass, repeated
    // by every query tile, cost half as much per row, and at T = 4096 on
    // two cores the read took 0.8x the time of 192 rows (docs/benchmarks.md,
    // "Where the time goes"); with 8 lanes 384 was no faster, so 192 stays.
    return {vec == 16 ? 384 : 192, std::max<int64_t>(64, 2 * vec), vec};
  // Scans: 64-row chunks and 64-channel blocks (docs/benchmarks.md, "Scan
  // priors"). The channel block trades parallel workgroups at small B*H
  // against the work every block repeats per row: the q.k scores of linear
  // and gla, the gate norm of every prior, aft's q features. At B = 1,
  // H = 8, dv = 64 on two cores, 64 beat 32 (linear 1.2x, aft 2.3x, ssm
  // 1.3x) and 16; 32- and 128-row chunks were no faster than 64.
  return {64, std::max<int64_t>(64, vec), vec};
}

std::optional<std::string> checkTiles(const PriorInfo &info,
                                      const Tiles &tiles) {
  int64_t vec = tiles.vec;
  if (vec != 4 && vec != 8 && vec != 16)
    return "vector width must be 4, 8 or 16 lanes, found " +
           std::to_string(vec);
  if (info.grid == GridKind::QueryTiles) {
    if (tiles.q <= 0 || tiles.q % (2 * vec) != 0 || tiles.q > 1024)
      return "query tile (tile-q) must be a positive multiple of 2 * vec = " +
             std::to_string(2 * vec) + " up to 1024, found " +
             std::to_string(tiles.q);
    if (tiles.k <= 0 || tiles.k % (2 * vec) != 0 || tiles.k > 1024)
      return "key tile (tile-k) must be a positive multiple of 2 * vec = " +
             std::to_string(2 * vec) + " up to 1024, found " +
             std::to_string(tiles.k);
    return std::nullopt;
  }
  std::string prior(info.name);
  if (tiles.q <= 0 || tiles.q % vec != 0 || tiles.q > 512)
    return "chunk (tile-q) of prior '" + prior +
           "' must be a positive multiple of vec = " + std::to_string(vec) +
           " up to 512, found " + std::to_string(tiles.q);
  if (tiles.k <= 0 || tiles.k % vec != 0 || tiles.k > 1024)
    return "channel block (tile-k) of prior '" + prior +
           "' must be a positive multiple of vec = " + std::to_string(vec) +
           " up to 1024, found " + std::to_string(tiles.k);
  return std::nullopt;
}

std::vector<GridAxis> workgroupGrid(const PriorInfo &info, const Tiles &tiles) {
  if (info.grid == GridKind::QueryTiles)
    return {{"T", tiles.q}, {"Hkv", 1}, {"B", 1}};
  return {{"dv", tiles.k}, {"H", 1}, {"B", 1}};
}

} // namespace femc::priors
