//===- TileSpaceTest.cpp - the targets' tile spaces and pruning rules -----===//
//
// The candidates fem-tune tries are declared by the targets
// (Target::tileSpace, target/<family>/TileSpace.cpp) and pruned by
// driver::tileCandidates with the target's checkTiles: the CPU lists and
// thread counts, the NVIDIA space (the default only), legality with the
// verifier's message, tiles larger than the shape, the fixed order.
//
//===----------------------------------------------------------------------===//
#include "driver/Target.h"
#include "target/cpu/TileSpace.h"

#include "llvm/Target/TargetMachine.h"

#include <gtest/gtest.h>

#include <set>
#include <tuple>

using femc::driver::lookupTarget;
using femc::driver::Target;
using femc::driver::TileCandidate;
using femc::driver::tileCandidates;
using femc::priors::Tiles;

namespace {

const TileCandidate *find(const std::vector<TileCandidate> &cs, int64_t q,
                          int64_t k, int64_t vec) {
  for (const TileCandidate &c : cs)
    if (c.tiles.q == q && c.tiles.k == k && c.tiles.vec == vec)
      return &c;
  return nullptr;
}

const Target &target(const char *name) {
  const Target *t = lookupTarget(name);
  EXPECT_NE(t, nullptr) << name;
  return *t;
}

/// x86-64-v3: 8 lanes, the same candidates on every x86-64 host.
const Target &v3() { return target("x86-64-v3"); }

} // namespace

TEST(TileSpace, CpuListsAndThreadsComeFromTheTarget) {
  const auto *softmax = femc::priors::findPrior("softmax");
  const auto *linear = femc::priors::findPrior("linear");
  ASSERT_NE(softmax, nullptr);
  ASSERT_NE(linear, nullptr);
  auto s = v3().tileSpace(*softmax);
  EXPECT_EQ(s.q, (std::vector<int64_t>{32, 64, 96, 128, 192, 256, 384, 512}));
  EXPECT_EQ(s.k, (std::vector<int64_t>{32, 64, 128, 256}));
  EXPECT_EQ(s.vec, (std::vector<int64_t>{4, 8}));
  EXPECT_GE(s.version, 2);
  auto v4 = target("x86-64-v4").tileSpace(*softmax);
  EXPECT_EQ(v4.vec, (std::vector<int64_t>{4, 8, 16}));
  auto l = v3().tileSpace(*linear);
  EXPECT_EQ(l.q, (std::vector<int64_t>{16, 32, 64, 128, 256}));
  EXPECT_EQ(l.k, (std::vector<int64_t>{8, 16, 32, 64, 128}));
  // Threads: all CPUs first, then halved down to 1.
  EXPECT_EQ(s.threads.front(), femc::target::cpu::onlineCpus());
  EXPECT_EQ(s.threads.back(), 1);
  auto six = femc::target::cpu::cpuTileSpace(*softmax, 8, 6);
  EXPECT_EQ(six.threads, (std::vector<int64_t>{6, 3, 1}));
  auto one = femc::target::cpu::cpuTileSpace(*softmax, 8, 1);
  EXPECT_EQ(one.threads, (std::vector<int64_t>{1}));
}

TEST(TileSpace, NvidiaSpaceIsTheDefaultOnly) {
  const auto *softmax = femc::priors::findPrior("softmax");
  const Target &gpu = target("sm_90");
  auto s = gpu.tileSpace(*softmax);
  Tiles def = gpu.defaultTiles(*softmax);
  EXPECT_EQ(s.q, (std::vector<int64_t>{def.q}));
  EXPECT_EQ(s.k, (std::vector<int64_t>{def.k}));
  EXPECT_TRUE(s.threads.empty());
  EXPECT_NE(s.note.find("does not read #fem.tiles"), std::string::npos);
  auto cs = tileCandidates(gpu, *softmax, def, true, {{"T", 4096}});
  ASSERT_EQ(cs.size(), 1u);
  EXPECT_TRUE(cs[0].isDefault);
  EXPECT_EQ(cs[0].pruned, "");
}

TEST(TileSpace, DefaultFirstAndAlwaysKept) {
  const auto *softmax = femc::priors::findPrior("softmax");
  ASSERT_NE(softmax, nullptr);
  Tiles def = v3().defaultTiles(*softmax);
  // T = 8: the default's 192 rows are far larger than T, but it is the
  // yardstick and stays.
  auto cs = tileCandidates(v3(), *softmax, def, true, {{"T", 8}, {"B", 1}});
  ASSERT_FALSE(cs.empty());
  EXPECT_TRUE(cs[0].isDefault);
  EXPECT_EQ(cs[0].tiles.q, 192);
  EXPECT_EQ(cs[0].pruned, "");
  for (size_t i = 1; i < cs.size(); ++i)
    EXPECT_FALSE(cs[i].tiles.q == def.q && cs[i].tiles.k == def.k &&
                 cs[i].tiles.vec == def.vec);
}

TEST(TileSpace, EveryKeptCandidateIsLegalForTheTarget) {
  for (const char *name : {"x86-64-v3", "x86-64-v4", "sm_80"}) {
    const Target &t = target(name);
    for (const auto &prior : femc::priors::allPriors()) {
      Tiles def = t.defaultTiles(prior);
      auto cs = tileCandidates(t, prior, def, true,
                               {{"T", 4096}, {"dv", 64}, {"B", 1}});
      std::set<std::tuple<int64_t, int64_t, int64_t>> seen;
      for (const TileCandidate &c : cs) {
        EXPECT_TRUE(seen.insert({c.tiles.q, c.tiles.k, c.tiles.vec}).second)
            << "duplicate candidate";
        EXPECT_LE(c.tiles.vec, t.defaultVectorWidth());
        auto why = t.checkTiles(prior, c.tiles);
        if (c.pruned.empty())
          EXPECT_FALSE(why) << prior.name << ": " << *why;
        else if (why)
          EXPECT_EQ(c.pruned, "illegal: " + *why);
      }
    }
  }
}

TEST(TileSpace, IllegalCandidatesCarryTheVerifiersMessage) {
  const auto *linear = femc::priors::findPrior("linear");
  const Target &v4 = target("x86-64-v4");
  Tiles def = v4.defaultTiles(*linear);
  auto cs = tileCandidates(v4, *linear, def, true, {{"T", 4096}, {"dv", 64}});
  const TileCandidate *c = find(cs, 64, 8, 16);
  ASSERT_NE(c, nullptr);
  // The prior table's rule (dialect/Priors.h), the one the fem.mixer
  // verifier and fem-tile report.
  EXPECT_EQ(c->pruned, "illegal: " + *femc::priors::checkTiles(*linear, c->tiles));
  EXPECT_EQ(c->pruned, "illegal: channel block (tile-k) of prior 'linear' "
                       "must be a positive multiple of vec = 16 up to 1024, "
                       "found 8");
}

TEST(TileSpace, TilesLargerThanTheShapeArePruned) {
  const auto *softmax = femc::priors::findPrior("softmax");
  Tiles def = v3().defaultTiles(*softmax);
  // Causal: keys have the length T.
  auto cs = tileCandidates(v3(), *softmax, def, true, {{"T", 40}});
  const TileCandidate *big = find(cs, 64, 32, 8);
  ASSERT_NE(big, nullptr);
  EXPECT_EQ(big->pruned, "tile-q 64 is larger than T = 40 (rounded up to a "
                         "multiple of 16)");
  const TileCandidate *fits = find(cs, 32, 32, 8);
  ASSERT_NE(fits, nullptr);
  EXPECT_EQ(fits->pruned, "");
  const TileCandidate *bigK = find(cs, 32, 64, 8);
  ASSERT_NE(bigK, nullptr);
  EXPECT_EQ(bigK->pruned, "tile-k 64 is larger than T = 40 (rounded up to a "
                          "multiple of 16)");
  // Not causal: keys have the length S.
  cs = tileCandidates(v3(), *softmax, def, false, {{"T", 40}, {"S", 1000}});
  EXPECT_EQ(find(cs, 32, 256, 8)->pruned, "");
  // Scans: q against T, k against dv.
  const auto *linear = femc::priors::findPrior("linear");
  Tiles ldef = v3().defaultTiles(*linear);
  cs = tileCandidates(v3(), *linear, ldef, true, {{"T", 4096}, {"dv", 16}});
  EXPECT_EQ(cs[0].pruned, "");
  EXPECT_EQ(cs[0].tiles.q, ldef.q);
  EXPECT_EQ(find(cs, 64, 32, 8)->pruned,
            "tile-k 32 is larger than dv = 16 (rounded up to a multiple of 8)");
  EXPECT_EQ(find(cs, 64, 16, 8)->pruned, "");
}

TEST(TileSpace, OrderIsDeterministicAndNearestFirst) {
  const auto *softmax = femc::priors::findPrior("softmax");
  Tiles def = v3().defaultTiles(*softmax);
  auto a = tileCandidates(v3(), *softmax, def, true, {{"T", 4096}});
  auto b = tileCandidates(v3(), *softmax, def, true, {{"T", 4096}});
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].tiles.q, b[i].tiles.q);
    EXPECT_EQ(a[i].tiles.k, b[i].tiles.k);
    EXPECT_EQ(a[i].tiles.vec, b[i].tiles.vec);
  }
  // 8 q x 4 k x 2 vec, the default among them.
  EXPECT_EQ(a.size(), 64u);
  ASSERT_GT(a.size(), 1u);
  int changed = (a[1].tiles.q != def.q) + (a[1].tiles.k != def.k) +
                (a[1].tiles.vec != def.vec);
  EXPECT_EQ(changed, 1);
}

namespace {

/// A target whose own rule is stricter than the prior table's (as a GPU's
/// register or shared-memory limit would be).
class StrictTarget final : public Target {
public:
  llvm::StringRef name() const override { return "strict"; }
  std::string description() const override { return "strict"; }
  std::string triple() const override { return "x86_64-unknown-linux-gnu"; }
  std::string cpu() const override { return "x86-64-v3"; }
  std::string features() const override { return ""; }
  std::string tileTarget() const override { return "avx2"; }
  int64_t defaultVectorWidth() const override { return 8; }
  std::vector<std::string> requiredFeatures() const override { return {}; }
  std::unique_ptr<llvm::TargetMachine>
  createTargetMachine(unsigned, std::string &error) const override {
    error = "test target";
    return nullptr;
  }
  bool emitKernelFile(llvm::TargetMachine &, llvm::Module &, llvm::StringRef,
                      llvm::CodeGenFileType) const override {
    return false;
  }
  std::optional<std::string>
  checkTiles(const femc::priors::PriorInfo &p, const Tiles &t) const override {
    if (auto why = femc::priors::checkTiles(p, t))
      return why;
    if (t.q > 128)
      return std::string("test target: at most 128 rows");
    return std::nullopt;
  }
  femc::driver::TileSpace
  tileSpace(const femc::priors::PriorInfo &) const override {
    femc::driver::TileSpace s;
    s.q = {64, 128, 256};
    s.k = {64};
    s.vec = {8};
    return s;
  }
};

} // namespace

TEST(TileSpace, TargetRulePrunesWithItsReason) {
  const auto *softmax = femc::priors::findPrior("softmax");
  StrictTarget strict;
  auto cs = tileCandidates(strict, *softmax, {128, 64, 8}, true,
                           {{"T", 4096}, {"B", 1}});
  ASSERT_EQ(cs.size(), 3u);
  EXPECT_EQ(find(cs, 256, 64, 8)->pruned,
            "illegal: test target: at most 128 rows");
  EXPECT_EQ(find(cs, 64, 64, 8)->pruned, "");
  // The same tiles on a CPU target are legal.
  auto plain = tileCandidates(v3(), *softmax, v3().defaultTiles(*softmax),
                              true, {{"T", 4096}, {"B", 1}});
  EXPECT_EQ(find(plain, 256, 64, 8)->pruned, "");
}
