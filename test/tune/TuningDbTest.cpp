//===- TuningDbTest.cpp - the tuning database -----------------------------===//
//
// JSON reading and writing, the schema (round trip, version refusal,
// corruption left untouched), the key (deterministic, independent of the
// kernel's name, bucketed) and concurrent writers under the lock.
//
//===----------------------------------------------------------------------===//
#include "tools/fem-tune/TuningDb.h"
#include "femc/Version.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <unistd.h>

using namespace femc::tune;

namespace {

class TempDir {
public:
  TempDir() {
    char tmpl[] = "/tmp/femtune-test-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }
  std::string file(const std::string &name) const { return path + "/" + name; }
  std::string path;
};

std::string readAll(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void writeAll(const std::string &path, const std::string &text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

Entry makeEntry(const std::string &semantics, const std::string &bucket,
                int64_t q) {
  Entry e;
  e.semantics = semantics;
  e.target = "x86-64-v3 (AVX2, FMA); cpu=test; features=avx2,fma; cpus=2";
  e.bucket = bucket;
  e.femcVersion = FEMC_PRODUCER;
  e.kernelHash = hashText(semantics);
  e.key = makeKey(e.semantics, e.target, e.bucket, e.femcVersion);
  e.tileSpaceVersion = 1;
  e.tiles = {{"q", q}, {"k", 64}, {"vec", 8}};
  e.best = {0.25, 0.015, 40};
  e.defaultTiles = {{"q", 192}, {"k", 64}, {"vec", 8}};
  e.defaultTime = {0.5, 0.02, 40};
  e.kernelName = "attn";
  e.tunedAt = "2026-12-01T15:40:00Z";
  e.timed = 12;
  e.discarded = 1;
  e.pruned = 30;
  return e;
}

const char *kManifest = R"JSON({
  "producer": ")JSON" FEMC_PRODUCER R"JSON(", "target": "x86-64-v3 (AVX2, FMA)",
  "kernels": [
    {"name": "NAME", "prior": "softmax", "causal": true, "layout": "bthd",
     "mask": false, ATTRS, "tiles": {"q": 192, "k": 64, "vec": 8},
     "grid": ["ceil(T/192)", "Hkv", "B"],
     "args": [
       {"name": "q", "role": "input", "dtype": "float32", "dims": "B,T,H,dk", "shape": [-1, -1, 8, 64]},
       {"name": "beta_raw", "role": "input", "dtype": "float32", "dims": "E", "shape": [512]},
       {"name": "out", "role": "output", "dtype": "float32", "dims": "B,T,H,dv", "shape": [-1, -1, 8, 64]}
     ]}
  ]
})JSON";

/// kManifest with its kernel named `name` and the attribute fields `attrs`.
std::string manifestFor(const std::string &name,
                        const std::string &attrs =
                            "\"scale\": null, \"cap\": 40, \"eps\": 1e-06") {
  std::string manifest = kManifest;
  manifest.replace(manifest.find("NAME"), 4, name);
  manifest.replace(manifest.find("ATTRS"), 5, attrs);
  return manifest;
}

} // namespace

TEST(Json, RoundTripIsByteStable) {
  const char *text = R"({"b": [1, 2.5, -3e-7, true, null, "x\"\u00e9\n"],
                         "a": {"z": 1, "y": {}}, "c": []})";
  Json v;
  std::string error;
  ASSERT_TRUE(parseJson(text, v, error)) << error;
  std::string once = writeJson(v);
  Json again;
  ASSERT_TRUE(parseJson(once, again, error)) << error;
  EXPECT_EQ(writeJson(again), once);
  // Keys sorted, whole numbers without a fraction.
  EXPECT_LT(once.find("\"a\""), once.find("\"b\""));
  EXPECT_NE(once.find("[1, 2.5, -3e-07, true, null"),
            std::string::npos)
      << once;
  EXPECT_EQ(v.get("b")->array[5].string, "x\"\xc3\xa9\n");
}

TEST(Json, ErrorsNameLineColumnAndByte) {
  Json v;
  std::string error;
  EXPECT_FALSE(parseJson("{\n  \"a\": 1,\n  \"b\" 2\n}", v, error));
  EXPECT_EQ(error, "line 3, column 7 (byte 18): expected ':' after a member "
                   "name, found '2'");
  EXPECT_FALSE(parseJson("{\"a\": 1, \"a\": 2}", v, error));
  EXPECT_EQ(error, "line 1, column 10 (byte 9): duplicate member name \"a\"");
  EXPECT_FALSE(parseJson("[1, 2", v, error));
  EXPECT_EQ(error, "line 1, column 6 (byte 5): expected ',' or ']' in an "
                   "array, found the end of the file");
  EXPECT_FALSE(parseJson("{} x", v, error));
  EXPECT_EQ(error, "line 1, column 4 (byte 3): expected the end of the "
                   "document, found 'x'");
  EXPECT_FALSE(parseJson(std::string(300, '['), v, error));
  EXPECT_NE(error.find("nesting deeper than 200 levels"), std::string::npos);
}

TEST(TuningDb, MissingFileIsEmpty) {
  TempDir dir;
  Database db;
  std::string error;
  ASSERT_TRUE(loadDatabase(dir.file("none.json"), db, error)) << error;
  EXPECT_TRUE(db.entries.empty());
}

TEST(TuningDb, RoundTrip) {
  TempDir dir;
  std::string path = dir.file("db.json");
  Entry a = makeEntry("prior=softmax sem-a", "B=1,T=4096", 64);
  Entry b = makeEntry("prior=softmax sem-b", "B=1,T=1024", 128);
  std::string error;
  ASSERT_TRUE(updateDatabase(path, {a}, error)) << error;
  ASSERT_TRUE(updateDatabase(path, {b}, error)) << error;
  Database db;
  ASSERT_TRUE(loadDatabase(path, db, error)) << error;
  ASSERT_EQ(db.entries.size(), 2u);
  const Entry *got = lookup(db, a.key);
  ASSERT_NE(got, nullptr);
  EXPECT_EQ(got->tiles, a.tiles);
  EXPECT_EQ(got->defaultTiles, a.defaultTiles);
  EXPECT_EQ(got->best.medianMs, a.best.medianMs);
  EXPECT_EQ(got->best.spread, a.best.spread);
  EXPECT_EQ(got->best.samples, a.best.samples);
  EXPECT_EQ(got->defaultTime.medianMs, a.defaultTime.medianMs);
  EXPECT_EQ(got->target, a.target);
  EXPECT_EQ(got->bucket, a.bucket);
  EXPECT_EQ(got->semantics, a.semantics);
  EXPECT_EQ(got->kernelHash, a.kernelHash);
  EXPECT_EQ(got->tileSpaceVersion, 1);
  EXPECT_EQ(got->tunedAt, a.tunedAt);
  EXPECT_EQ(got->discarded, 1);
  EXPECT_EQ(lookup(db, b.key)->tiles.at("q"), 128);
  // Serialising what was read gives the file back, byte for byte.
  EXPECT_EQ(serializeDatabase(db), readAll(path));
  // A retune replaces the entry under the same key.
  Entry a2 = a;
  a2.tiles["q"] = 32;
  ASSERT_TRUE(updateDatabase(path, {a2}, error)) << error;
  ASSERT_TRUE(loadDatabase(path, db, error)) << error;
  EXPECT_EQ(db.entries.size(), 2u);
  EXPECT_EQ(lookup(db, a.key)->tiles.at("q"), 32);
  // No temporary file is left behind.
  EXPECT_EQ(std::system(("test -z \"$(ls " + dir.path +
                         " | grep tmp)\"").c_str()),
            0);
}

TEST(TuningDb, ChoiceThreadsAndQuartilesRoundTrip) {
  TempDir dir;
  std::string path = dir.file("db.json");
  Entry a = makeEntry("prior=softmax sem-a", "B=1,T=4096", 64);
  a.best.q1Ms = 0.24;
  a.best.q3Ms = 0.26;
  a.choiceRule = "tie, the default kept";
  a.tie = true;
  a.tied = 2;
  a.fastestTiles = {{"q", 96}, {"k", 64}, {"vec", 8}};
  a.threads = 1;
  a.threadCandidates = {2, 1};
  a.threadsTie = false;
  a.skipped = 3;
  a.quickOnly = 7;
  // An entry as written before these members existed.
  Entry old = makeEntry("prior=softmax sem-b", "B=1,T=1024", 128);
  std::string error;
  ASSERT_TRUE(updateDatabase(path, {a, old}, error)) << error;
  Database db;
  ASSERT_TRUE(loadDatabase(path, db, error)) << error;
  const Entry *got = lookup(db, a.key);
  ASSERT_NE(got, nullptr);
  EXPECT_EQ(got->best.q1Ms, 0.24);
  EXPECT_EQ(got->best.q3Ms, 0.26);
  EXPECT_EQ(got->choiceRule, "tie, the default kept");
  EXPECT_TRUE(got->tie);
  EXPECT_EQ(got->tied, 2);
  EXPECT_EQ(got->fastestTiles, a.fastestTiles);
  EXPECT_EQ(got->threads, 1);
  EXPECT_EQ(got->threadCandidates, (std::vector<int64_t>{2, 1}));
  EXPECT_FALSE(got->threadsTie);
  EXPECT_EQ(got->skipped, 3);
  EXPECT_EQ(got->quickOnly, 7);
  const Entry *plain = lookup(db, old.key);
  ASSERT_NE(plain, nullptr);
  EXPECT_EQ(plain->threads, 0);
  EXPECT_EQ(plain->choiceRule, "");
  EXPECT_EQ(plain->best.q1Ms, 0);
  std::string text = readAll(path);
  EXPECT_EQ(serializeDatabase(db), text);
  // The members an old entry lacks are not written for it.
  size_t oldAt = text.find("\"" + old.key + "\"");
  ASSERT_NE(oldAt, std::string::npos);
  size_t aAt = text.find("\"" + a.key + "\"");
  std::string oldText = text.substr(oldAt, aAt > oldAt ? aAt - oldAt
                                                       : std::string::npos);
  EXPECT_EQ(oldText.find("\"threads\""), std::string::npos);
  EXPECT_EQ(oldText.find("\"choice\""), std::string::npos);
}

TEST(TuningDb, BadChoiceOrThreadsIsASchemaError) {
  TempDir dir;
  std::string path = dir.file("db.json");
  Entry a = makeEntry("prior=softmax sem-a", "B=1,T=4096", 64);
  a.choiceRule = "fastest";
  a.threads = 2;
  a.threadCandidates = {2, 1};
  std::string error;
  ASSERT_TRUE(updateDatabase(path, {a}, error)) << error;
  std::string good = readAll(path);
  auto expectError = [&](const std::string &from, const std::string &to,
                         const std::string &message) {
    std::string text = good;
    size_t at = text.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    text.replace(at, from.size(), to);
    writeAll(path, text);
    Database db;
    EXPECT_FALSE(loadDatabase(path, db, error));
    EXPECT_NE(error.find(message), std::string::npos) << error;
    EXPECT_EQ(readAll(path), text); // left untouched
  };
  expectError("\"chosen\": 2", "\"chosen\": 0",
              "member \"threads\" must be an object whose \"chosen\" is a "
              "whole number from 1 to 1024");
  // Was accepted and copied into the manifest as 1000000 threads.
  expectError("\"chosen\": 2", "\"chosen\": 1025",
              "member \"threads\" must be an object whose \"chosen\" is a "
              "whole number from 1 to 1024");
  expectError("\"rule\": \"fastest\"", "\"rules\": \"fastest\"",
              "member \"choice\" must be an object with rule, tie and tied");
}

// Tiles femc cannot compile, edited into a database by hand: an unknown
// tile name was ignored and q = 100000 or vec = 3 reached fem-tile, whose
// message did not name the database; now each is a schema error naming the
// tile and its value, and the file is left untouched.
TEST(TuningDb, TilesFemcCannotCompileAreASchemaError) {
  TempDir dir;
  std::string path = dir.file("db.json");
  Entry a = makeEntry("prior=gla sem-tiles", "B=1,T=4096", 64);
  std::string error;
  ASSERT_TRUE(updateDatabase(path, {a}, error)) << error;
  std::string good = readAll(path);
  // The last occurrence of `from`: the entry's "tiles" come after its
  // "default" tiles (members are written by name).
  auto edit = [&](const std::string &from, const std::string &to) {
    std::string text = good;
    size_t at = text.rfind(from);
    EXPECT_NE(at, std::string::npos) << from << " in " << text;
    if (at != std::string::npos)
      text.replace(at, from.size(), to);
    return text;
  };
  auto expectError = [&](const std::string &text, const std::string &message) {
    writeAll(path, text);
    Database db;
    EXPECT_FALSE(loadDatabase(path, db, error)) << text;
    EXPECT_NE(error.find(message), std::string::npos) << error;
    EXPECT_EQ(readAll(path), text); // left untouched
  };
  expectError(edit("\"q\": 64,", "\"q\": 100000,"),
              "member \"tiles\" must be q and k from 1 to 1024 and vec 4, 8 "
              "or 16, as #fem.tiles takes them (\"q\" is 100000)");
  expectError(edit("\"vec\": 8", "\"vec\": 3"),
              "member \"tiles\" must be q and k from 1 to 1024 and vec 4, 8 "
              "or 16, as #fem.tiles takes them (\"vec\" is 3)");
  expectError(edit("\"q\": 64,", "\"q\": 64, \"zz\": 5,"),
              "member \"tiles\" must be an object of the tiles q, k and vec "
              "(\"zz\" is none of them)");
  expectError(edit("\"q\": 192", "\"q\": 2048"),
              "member \"default.tiles\" must be q and k from 1 to 1024");
  // Tiles in range that the entry's prior (gla, a scan) cannot use: a
  // chunk above 512, a channel block not a multiple of vec.
  expectError(edit("\"q\": 64,", "\"q\": 1024,"),
              "member \"tiles\" must be tiles prior 'gla' can use (chunk "
              "(tile-q) of prior 'gla' must be a positive multiple of vec = 8 "
              "up to 512, found 1024)");
  expectError(edit("\"k\": 64,", "\"k\": 12,"),
              "member \"tiles\" must be tiles prior 'gla' can use (channel "
              "block (tile-k) of prior 'gla' must be a positive multiple of "
              "vec = 8 up to 1024, found 12)");
  // The edges are accepted.
  good = edit("\"q\": 64,", "\"q\": 512,");
  good = edit("\"k\": 64,", "\"k\": 1024,");
  writeAll(path, edit("\"vec\": 8", "\"vec\": 16"));
  Database db;
  EXPECT_TRUE(loadDatabase(path, db, error)) << error;
  // Softmax (query tiles): multiples of 2 * vec up to 1024; q = 1024 is
  // legal there, q = 24 at vec 8 is not.
  Entry s = makeEntry("prior=softmax sem-tiles", "B=1,T=4096", 1024);
  s.tiles["k"] = 1024;
  std::filesystem::remove(path);
  ASSERT_TRUE(updateDatabase(path, {s}, error)) << error;
  EXPECT_TRUE(loadDatabase(path, db, error)) << error;
  good = readAll(path);
  expectError(edit("\"q\": 1024,", "\"q\": 24,"),
              "member \"tiles\" must be tiles prior 'softmax' can use (query "
              "tile (tile-q) must be a positive multiple of 2 * vec = 16 up "
              "to 1024, found 24)");
}

// A --db that is a symbolic link (e.g. to a database shared between
// checkouts): the file it names is updated and the link kept. Was: rename
// replaced the link with a private copy, and the shared database never saw
// the result.
TEST(TuningDb, UpdateThroughASymbolicLinkUpdatesItsTarget) {
  TempDir dir;
  std::string shared = dir.file("shared.json");
  std::string link = dir.file("link.json");
  Entry a = makeEntry("prior=softmax sem-a", "B=1,T=4096", 64);
  Entry b = makeEntry("prior=softmax sem-b", "B=1,T=1024", 128);
  std::string error;
  ASSERT_TRUE(updateDatabase(shared, {a}, error)) << error;
  ASSERT_EQ(::symlink("shared.json", link.c_str()), 0);
  ASSERT_TRUE(updateDatabase(link, {b}, error)) << error;
  EXPECT_TRUE(std::filesystem::is_symlink(link));
  Database db;
  ASSERT_TRUE(loadDatabase(shared, db, error)) << error;
  EXPECT_EQ(db.entries.size(), 2u);
  EXPECT_NE(lookup(db, b.key), nullptr);
  // A link to a database not yet written creates it where the link points.
  std::string dangling = dir.file("new-link.json");
  ASSERT_EQ(::symlink("created.json", dangling.c_str()), 0);
  ASSERT_TRUE(updateDatabase(dangling, {a}, error)) << error;
  EXPECT_TRUE(std::filesystem::is_symlink(dangling));
  ASSERT_TRUE(loadDatabase(dir.file("created.json"), db, error)) << error;
  EXPECT_NE(lookup(db, a.key), nullptr);
}

TEST(TuningDb, FutureSchemaIsRefusedAndLeftUntouched) {
  TempDir dir;
  std::string path = dir.file("db.json");
  std::string text = "{\"schema_version\": 2, \"entries\": {}, \"new\": 1}\n";
  writeAll(path, text);
  Database db;
  std::string error;
  EXPECT_FALSE(loadDatabase(path, db, error));
  EXPECT_EQ(error, "tuning database '" + path + "' has schema_version 2, "
                   "newer than this femc reads (1); use the femc that wrote "
                   "it or another database");
  EXPECT_FALSE(updateDatabase(path, {makeEntry("s", "T=8", 32)}, error));
  EXPECT_NE(error.find("left untouched"), std::string::npos) << error;
  EXPECT_EQ(readAll(path), text);
}

TEST(TuningDb, CorruptFileIsReportedAndLeftUntouched) {
  TempDir dir;
  std::string path = dir.file("db.json");
  std::string error;
  ASSERT_TRUE(updateDatabase(path, {makeEntry("s", "T=8", 32)}, error));
  std::string good = readAll(path);
  // Truncated in the middle, as a crash of a non-atomic writer would leave it.
  std::string truncated = good.substr(0, good.size() / 2);
  writeAll(path, truncated);
  Database db;
  EXPECT_FALSE(loadDatabase(path, db, error));
  EXPECT_EQ(error.rfind("tuning database '" + path + "' is not valid JSON: "
                        "line ", 0),
            0u)
      << error;
  EXPECT_FALSE(updateDatabase(path, {makeEntry("t", "T=8", 32)}, error));
  EXPECT_NE(error.find("; the file was left untouched"), std::string::npos);
  EXPECT_EQ(readAll(path), truncated);

  // Valid JSON that breaks the schema.
  const std::pair<std::string, std::string> cases[] = {
      {"[]", "the document must be an object"},
      {"{\"entries\": {}}", "no \"schema_version\" member"},
      {"{\"schema_version\": \"1\", \"entries\": {}}",
       "\"schema_version\" must be a whole number >= 1"},
      {"{\"schema_version\": 1}", "\"entries\" must be an object"},
      {"{\"schema_version\": 1, \"entries\": {\"k\": 3}}",
       "entry \"k\": member \"(the entry itself)\" must be an object"},
  };
  for (auto &[text, message] : cases) {
    writeAll(path, text);
    EXPECT_FALSE(loadDatabase(path, db, error));
    EXPECT_EQ(error, "tuning database '" + path +
                         "' does not follow the schema: " + message);
    EXPECT_FALSE(updateDatabase(path, {makeEntry("t", "T=8", 32)}, error));
    EXPECT_EQ(readAll(path), text);
  }

  // An entry whose key does not match its parts (edited by hand).
  Json root;
  ASSERT_TRUE(parseJson(good, root, error));
  Json &entries = root.object["entries"];
  Json entry = entries.object.begin()->second;
  entry.set("bucket", Json::makeString("T=16"));
  entries.object.begin()->second = entry;
  writeAll(path, writeJson(root));
  EXPECT_FALSE(loadDatabase(path, db, error));
  EXPECT_NE(error.find("does not match its semantics, target, bucket and "
                       "femc_version"),
            std::string::npos)
      << error;
}

TEST(TuningDb, ConcurrentWritersLoseNothing) {
  TempDir dir;
  std::string path = dir.file("db.json");
  constexpr int kProcesses = 6, kEach = 8;
  std::vector<pid_t> children;
  for (int p = 0; p < kProcesses; ++p) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      for (int i = 0; i < kEach; ++i) {
        std::string error;
        Entry e = makeEntry("writer " + std::to_string(p),
                            "T=" + std::to_string(1 << i), 32);
        if (!updateDatabase(path, {e}, error)) {
          std::fprintf(stderr, "%s\n", error.c_str());
          _exit(1);
        }
      }
      _exit(0);
    }
    children.push_back(pid);
  }
  for (pid_t pid : children) {
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  Database db;
  std::string error;
  ASSERT_TRUE(loadDatabase(path, db, error)) << error;
  EXPECT_EQ(db.entries.size(), static_cast<size_t>(kProcesses * kEach));
}

TEST(TuningKey, HashIsFnv1a64) {
  // The key must be the same in every process and on every host.
  EXPECT_EQ(hashText(""), "cbf29ce484222325");
  EXPECT_EQ(hashText("abc"), "e71fa2190541574b");
  EXPECT_EQ(makeKey("s", "t", "b", "v"), makeKey("s", "t", "b", "v"));
  EXPECT_NE(makeKey("s", "t", "b", "v"), makeKey("s", "t", "b2", "v"));
  EXPECT_NE(makeKey("s", "t", "b", "v"), makeKey("s", "t2", "b", "v"));
  EXPECT_NE(makeKey("s", "t", "b", "v"), makeKey("s", "t", "b", "v2"));
}

TEST(TuningKey, SemanticsIgnoreNameAndTilesButNotAttributes) {
  auto read = [](const std::string &name, const std::string &attrs,
                 const std::string &tiles) {
    std::string manifest = manifestFor(name, attrs);
    manifest.replace(manifest.find("\"q\": 192"), 8, "\"q\": " + tiles);
    std::vector<KernelDesc> kernels;
    std::string error;
    EXPECT_TRUE(readKernels(manifest, kernels, error)) << error;
    return kernels.empty() ? KernelDesc() : kernels[0];
  };
  const std::string plain = "\"scale\": null, \"cap\": 40, \"eps\": 1e-06";
  KernelDesc a = read("attn", plain, "192");
  KernelDesc b = read("other_name", plain, "64");
  KernelDesc c = read("attn", "\"scale\": 0.125, \"cap\": 40, \"eps\": 1e-06", "192");
  KernelDesc d = read("attn", "\"scale\": null, \"cap\": 20, \"eps\": 1e-06", "192");
  EXPECT_EQ(a.semantics, b.semantics);
  EXPECT_NE(a.semantics, c.semantics);
  EXPECT_NE(a.semantics, d.semantics);
  EXPECT_EQ(a.semantics,
            "prior=softmax causal=1 layout=bthd mask=0 cap=40 eps=1e-06 "
            "q:input:float32:B,T,H,dk:?x?x8x64 beta_raw:input:float32:E:512 "
            "out:output:float32:B,T,H,dv:?x?x8x64");
  EXPECT_EQ(a.tiles.at("q"), 192);
  EXPECT_EQ(a.dynamicExtents, (std::vector<std::string>{"B", "T"}));
  EXPECT_EQ(a.staticExtents.at("H"), 8);
  EXPECT_EQ(a.staticExtents.at("E"), 512);
}

TEST(TuningKey, ExtentsAndBuckets) {
  std::vector<KernelDesc> kernels;
  std::string error;
  ASSERT_TRUE(readKernels(manifestFor("attn"), kernels, error)) << error;
  const KernelDesc &k = kernels[0];
  std::map<std::string, int64_t> extents;
  ASSERT_TRUE(resolveExtents(k, {{"B", 3}, {"T", 3000}}, extents, error))
      << error;
  EXPECT_EQ(shapeBucket(k, extents), "B=4,T=4096");
  ASSERT_TRUE(resolveExtents(k, {{"B", 4}, {"T", 4096}}, extents, error));
  EXPECT_EQ(shapeBucket(k, extents), "B=4,T=4096");
  ASSERT_TRUE(resolveExtents(k, {{"B", 1}, {"T", 4097}}, extents, error));
  EXPECT_EQ(shapeBucket(k, extents), "B=1,T=8192");

  EXPECT_FALSE(resolveExtents(k, {{"B", 1}}, extents, error));
  EXPECT_EQ(error, "extent T of kernel 'attn' is dynamic; give it with --dim "
                   "T=N");
  EXPECT_FALSE(resolveExtents(k, {{"B", 1}, {"T", 8}, {"S", 8}}, extents,
                              error));
  EXPECT_EQ(error, "--dim S: kernel 'attn' has no extent called 'S' (its "
                   "arguments name: B, E, H, T, dk, dv); the kernel is "
                   "causal, so its keys have the length T");
  EXPECT_FALSE(resolveExtents(k, {{"B", 1}, {"T", 8}, {"H", 4}}, extents,
                              error));
  EXPECT_EQ(error, "--dim H=4 contradicts kernel 'attn', whose arguments fix "
                   "H = 8");
}

TEST(TuningKey, TargetNamesCpuAndFeatures) {
  std::string t = targetText("host:test");
  EXPECT_EQ(t.rfind("host:test; cpu=", 0), 0u) << t;
  EXPECT_NE(t.find("; features="), std::string::npos) << t;
  EXPECT_NE(t.find("; cpus="), std::string::npos) << t;
  EXPECT_EQ(targetText("host:test"), t);
}

TEST(TuningKey, ManifestWithoutAttributesIsRefused) {
  // A manifest from before kernel ABI v2 has no scale/cap/eps: the key would
  // not say what the kernel computes, so the kernel is refused.
  std::vector<KernelDesc> kernels;
  std::string error;
  EXPECT_FALSE(readKernels(manifestFor("attn", "\"cap\": 40"), kernels, error));
  EXPECT_NE(error.find("gives no scale, cap and eps for kernel 'attn'"),
            std::string::npos)
      << error;
}
