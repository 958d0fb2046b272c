//===- TileSpaceTest.cpp - fem-tune's candidates and pruning rules --------===//
#include "tools/fem-tune/TileSpace.h"

#include <gtest/gtest.h>

#include <set>
#include <tuple>

using femc::priors::Tiles;
using femc::tune::Candidate;
using femc::tune::cpuCandidates;

namespace {

const Candidate *find(const std::vector<Candidate> &cs, int64_t q, int64_t k,
                      int64_t vec) {
  for (const Candidate &c : cs)
    if (c.tiles.q == q && c.tiles.k == k && c.tiles.vec == vec)
      return &c;
  return nullptr;
}

} // namespace

TEST(TileSpace, DefaultFirstAndAlwaysKept) {
  const auto *softmax = femc::priors::findPrior("softmax");
  ASSERT_NE(softmax, nullptr);
  Tiles def = femc::priors::defaultTiles(*softmax, 8);
  // T = 8: the default's 192 rows are far larger than T, but it is the
  // yardstick and stays.
  auto cs = cpuCandidates(*softmax, 8, def, true, {{"T", 8}, {"B", 1}});
  ASSERT_FALSE(cs.empty());
  EXPECT_TRUE(cs[0].isDefault);
  EXPECT_EQ(cs[0].tiles.q, 192);
  EXPECT_EQ(cs[0].pruned, "");
  // No other candidate repeats the default.
  for (size_t i = 1; i < cs.size(); ++i)
    EXPECT_FALSE(cs[i].tiles.q == def.q && cs[i].tiles.k == def.k &&
                 cs[i].tiles.vec == def.vec);
}

TEST(TileSpace, EveryKeptCandidateIsLegal) {
  for (const auto &prior : femc::priors::allPriors()) {
    for (int64_t maxVec : {4, 8, 16}) {
      Tiles def = femc::priors::defaultTiles(prior, maxVec);
      auto cs = cpuCandidates(prior, maxVec, def, true,
                              {{"T", 4096}, {"dv", 64}, {"B", 1}});
      std::set<std::tuple<int64_t, int64_t, int64_t>> seen;
      for (const Candidate &c : cs) {
        EXPECT_TRUE(seen.insert({c.tiles.q, c.tiles.k, c.tiles.vec}).second)
            << "duplicate candidate";
        EXPECT_LE(c.tiles.vec, maxVec);
        auto why = femc::priors::checkTiles(prior, c.tiles);
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
  ASSERT_NE(linear, nullptr);
  Tiles def = femc::priors::defaultTiles(*linear, 16);
  auto cs = cpuCandidates(*linear, 16, def, true, {{"T", 4096}, {"dv", 64}});
  const Candidate *c = find(cs, 64, 8, 16);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->pruned, "illegal: channel block (tile-k) of prior 'linear' "
                       "must be a positive multiple of vec = 16 up to 1024, "
                       "found 8");
}

TEST(TileSpace, TilesLargerThanTheShapeArePruned) {
  const auto *softmax = femc::priors::findPrior("softmax");
  Tiles def = femc::priors::defaultTiles(*softmax, 8);
  // Causal: keys have the length T.
  auto cs = cpuCandidates(*softmax, 8, def, true, {{"T", 40}});
  const Candidate *big = find(cs, 64, 32, 8);
  ASSERT_NE(big, nullptr);
  EXPECT_EQ(big->pruned, "tile-q 64 is larger than T = 40 (rounded up to a "
                         "multiple of 16)");
  const Candidate *fits = find(cs, 32, 32, 8);
  ASSERT_NE(fits, nullptr);
  EXPECT_EQ(fits->pruned, "");
  const Candidate *bigK = find(cs, 32, 64, 8);
  ASSERT_NE(bigK, nullptr);
  EXPECT_EQ(bigK->pruned, "tile-k 64 is larger than T = 40 (rounded up to a "
                          "multiple of 16)");
  // Not causal: keys have the length S.
  cs = cpuCandidates(*softmax, 8, def, false, {{"T", 40}, {"S", 1000}});
  EXPECT_EQ(find(cs, 32, 256, 8)->pruned, "");
  // Scans: q against T, k against dv.
  const auto *linear = femc::priors::findPrior("linear");
  Tiles ldef = femc::priors::defaultTiles(*linear, 8);
  cs = cpuCandidates(*linear, 8, ldef, true, {{"T", 4096}, {"dv", 16}});
  // The default (64, 64, 8) stays whatever its size; others with a channel
  // block above dv = 16 go.
  EXPECT_EQ(cs[0].pruned, "");
  EXPECT_EQ(cs[0].tiles.q, ldef.q);
  EXPECT_EQ(cs[0].tiles.k, ldef.k);
  EXPECT_EQ(find(cs, 64, 32, 8)->pruned,
            "tile-k 32 is larger than dv = 16 (rounded up to a multiple of 8)");
  EXPECT_EQ(find(cs, 128, 32, 8)->pruned,
            "tile-k 32 is larger than dv = 16 (rounded up to a multiple of 8)");
  EXPECT_EQ(find(cs, 64, 16, 8)->pruned, "");
}

TEST(TileSpace, OrderIsDeterministicAndNearestFirst) {
  const auto *softmax = femc::priors::findPrior("softmax");
  Tiles def = femc::priors::defaultTiles(*softmax, 8);
  auto a = cpuCandidates(*softmax, 8, def, true, {{"T", 4096}});
  auto b = cpuCandidates(*softmax, 8, def, true, {{"T", 4096}});
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].tiles.q, b[i].tiles.q);
    EXPECT_EQ(a[i].tiles.k, b[i].tiles.k);
    EXPECT_EQ(a[i].tiles.vec, b[i].tiles.vec);
  }
  // The first non-default candidates differ from the default in one
  // parameter by one step (here q 192 -> 128 or 256, or k 64 -> 32/128, or
  // vec 8 -> 4).
  ASSERT_GT(a.size(), 1u);
  int changed = (a[1].tiles.q != def.q) + (a[1].tiles.k != def.k) +
                (a[1].tiles.vec != def.vec);
  EXPECT_EQ(changed, 1);
}

TEST(TileSpace, TargetRulePrunesWithItsReason) {
  // A target rule on top of the prior table's (as driver::Target::checkTiles
  // adds a target's own limits): its message is the pruning reason.
  const auto *softmax = femc::priors::findPrior("softmax");
  ASSERT_NE(softmax, nullptr);
  Tiles def = femc::priors::defaultTiles(*softmax, 8);
  femc::tune::TileCheck check =
      [](const femc::priors::PriorInfo &p,
         const Tiles &t) -> std::optional<std::string> {
    if (auto why = femc::priors::checkTiles(p, t))
      return why;
    if (t.q > 128 && t.vec == 8)
      return std::string("test target: at most 128 rows with 8 lanes");
    return std::nullopt;
  };
  auto cs = cpuCandidates(*softmax, 8, def, true, {{"T", 4096}, {"B", 1}},
                          check);
  const Candidate *big = find(cs, 256, 64, 8);
  ASSERT_NE(big, nullptr);
  EXPECT_EQ(big->pruned,
            "illegal: test target: at most 128 rows with 8 lanes");
  const Candidate *small = find(cs, 128, 64, 8);
  ASSERT_NE(small, nullptr);
  EXPECT_EQ(small->pruned, "");
  // Without a rule the same candidate is legal.
  auto plain = cpuCandidates(*softmax, 8, def, true, {{"T", 4096}, {"B", 1}});
  EXPECT_EQ(find(plain, 256, 64, 8)->pruned, "");
}
