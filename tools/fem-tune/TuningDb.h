//===- TuningDb.h - the persistent tile tuning database ---------*- C++ -*-===//
//
// What `fem-tune` writes and `femc --tuning-db` reads (docs/tuning.md). One
// JSON file:
//
//   {"schema_version": 1,
//    "entries": {"<key>": {"kernel_hash": ..., "semantics": ..., "target":
//                 ..., "bucket": ..., "femc_version": ...,
//                 "tile_space_version": 1, "tiles": {"q":..,"k":..,"vec":..},
//                 "best": {"median_ms":..,"spread":..,"samples":..},
//                 "default": {"tiles": {...}, "median_ms":..,...},
//                 "kernel_name": ..., "tuned_at": "2026-12-01T15:40:00Z",
//                 "candidates": {"timed":..,"discarded":..,"pruned":..,
//                                "skipped":..,"quick_only":..},
//                 "choice": {"rule":..,"tie":..,"tied":..,"fastest":{...}},
//                 "threads": {"chosen":..,"candidates":[..],"tie":..}}}}
// ("choice" and "threads" are optional: older entries lack them.)
//
// <key> is a hash of (kernel semantics, target, shape bucket, femc version)
// and is all a lookup needs. Builds without LLVM (like libfemrt).
//
//===----------------------------------------------------------------------===//
#ifndef FEMC_TOOLS_FEM_TUNE_TUNINGDB_H
#define FEMC_TOOLS_FEM_TUNE_TUNINGDB_H

#include "support/Json.h"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace femc::tune {

/// The schema this code reads and writes; files with a larger version are
/// refused (and left untouched).
constexpr int64_t kSchemaVersion = 1;

struct Measurement {
  double medianMs = 0;
  /// Relative spread of the samples: median absolute deviation / median.
  double spread = 0;
  int64_t samples = 0;
  /// First and third quartile of the samples (0 when not recorded: entries
  /// written before they were).
  double q1Ms = 0, q3Ms = 0;
};

struct Entry {
  std::string key;
  // The parts of the key, for people reading the file.
  std::string kernelHash, semantics, target, bucket, femcVersion;
  int64_t tileSpaceVersion = 0;
  std::map<std::string, int64_t> tiles;
  Measurement best;
  std::map<std::string, int64_t> defaultTiles;
  Measurement defaultTime;
  /// Informational: the kernel's name in the model it was tuned from (not
  /// part of the key: a renamed kernel keeps its entry).
  std::string kernelName;
  std::string tunedAt;
  int64_t timed = 0, discarded = 0, pruned = 0;
  /// Candidates not compiled or not timed for lack of budget, and those
  /// ranked only by the quick first pass (not timed at the tuned shape).
  int64_t skipped = 0, quickOnly = 0;
  /// How the winner was chosen (Choice.h, chooseStable): "fastest", "tie,
  /// the default kept", "tie, first in the target's order"; `tied`
  /// contenders were within the noise of the fastest, whose tiles are
  /// `fastestTiles`. Empty rule: an entry written before it was recorded.
  std::string choiceRule;
  bool tie = false;
  int64_t tied = 0;
  std::map<std::string, int64_t> fastestTiles;
  /// The pool threads the kernel runs best with (0: not tuned, all of the
  /// context's threads), the counts tried, and whether the choice was a tie
  /// within the noise.
  int64_t threads = 0;
  std::vector<int64_t> threadCandidates;
  bool threadsTie = false;
};

struct Database {
  std::map<std::string, Entry> entries;
  /// The document as read (null for a database not read from a file):
  /// serializeDatabase writes back what this femc does not read (members
  /// it does not know, at the top or in an entry) as they were, and the
  /// entries not replaced since as they were read.
  Json document;
};

/// Reads `path`. A missing file is an empty database. Returns false with
/// `error` naming the file (and line, column and byte for JSON errors) when
/// the file cannot be read, is not valid JSON, does not follow the schema,
/// or has a newer schema_version; for a JSON syntax error, its line and
/// column also go to `*where` (left alone otherwise).
bool loadDatabase(const std::string &path, Database &db, std::string &error,
                  JsonPosition *where = nullptr);

/// Adds (or replaces, by key) `entries` in the database at `path`: under an
/// exclusive flock on `path + ".lock"`, re-reads the file, merges, writes a
/// temporary file in the same folder and renames it over `path`. A file that
/// cannot be read as a database is left untouched and reported in `error`.
/// A `path` that is a symbolic link updates the file it names (the link
/// stays a link; the lock and temporary file are next to that file). The
/// lock file is removed when the update ends.
bool updateDatabase(const std::string &path, const std::vector<Entry> &entries,
                    std::string &error);

/// The lock file of the database at `path`: next to the file `path` names
/// through any symbolic links.
std::string lockPathFor(const std::string &path);

/// Whether updateDatabase could create the lock file of `path` (false with
/// "cannot create 'LOCK': reason" in `error`); leaves no file behind.
bool canCreateLock(const std::string &path, std::string &error);

/// Whether updateDatabase may replace the database at `path`: false, with
/// the reason in `error`, when it is a regular file without its owner's
/// write permission (chmod a-w: a database kept from being changed, which
/// the rename used to replace with a writable copy). A missing file may be
/// created.
bool canReplace(const std::string &path, std::string &error);

/// The database as JSON text (deterministic: same entries, same bytes).
/// Entries found in `document`'s "entries" are written as they were read;
/// the others (new or replaced: updateDatabase removes a replaced entry from
/// `document`) from their fields.
std::string serializeDatabase(const Database &db);

/// The entry for `key`, or null.
const Entry *lookup(const Database &db, const std::string &key);

//===----------------------------------------------------------------------===//
// The key
//===----------------------------------------------------------------------===//

/// 64-bit FNV-1a of `text` as 16 lower-case hex digits.
std::string hashText(const std::string &text);

/// One kernel of a femc manifest, as far as the key needs it.
struct KernelDesc {
  std::string name;
  bool layer = false;
  std::string prior, layout;
  bool causal = false, mask = false;
  /// Canonical text of everything that decides what the kernel computes and
  /// how it is called: prior, causal, layout, mask, scale, cap, eps, each
  /// argument's name, role, dtype, dims and shape (dynamic as ?). Not the
  /// function name, not the tiles.
  std::string semantics;
  /// The tiles the manifest records (the target's defaults when femc was not
  /// given any).
  std::map<std::string, int64_t> tiles;
  /// Extent name -> static value (from argument shapes), and the dynamic
  /// extents' names.
  std::map<std::string, int64_t> staticExtents;
  std::vector<std::string> dynamicExtents;
};

/// One kernel argument as the manifest lists it.
struct ArgFields {
  std::string name, role, dtype, dims;
  std::vector<int64_t> shape; ///< -1: dynamic
};

/// The fields of one kernel that decide its key, whether read from femc's
/// manifest (readKernels) or from the IR (the fem-apply-tuning pass): one
/// description, so both sides compute the same key.
struct KernelFields {
  std::string name, prior, layout;
  bool causal = false, mask = false, layer = false;
  std::optional<double> scale;
  double cap = 0, eps = 0;
  std::map<std::string, int64_t> tiles;
  std::vector<ArgFields> args;
};

/// The kernel's description (semantics text, static and dynamic extents).
KernelDesc describeKernel(const KernelFields &fields);

/// Reads the kernels of a femc manifest (`manifest`, the NAME.json text):
/// prior, causal, layout, mask, scale/cap/eps, tiles and arguments. Returns
/// false with `error` on malformed input.
bool readKernels(const std::string &manifest, std::vector<KernelDesc> &kernels,
                 std::string &error);

/// The extents of `kernel` from `given` (--dim) and the static shapes, with
/// the derivations fem-run makes: E = H * dv, H = E / dv, Hkv = H, S = T.
/// Returns false with `error` when a given extent is not one the kernel
/// names, contradicts a static one, or a dynamic one is missing.
bool resolveExtents(const KernelDesc &kernel,
                    const std::map<std::string, int64_t> &given,
                    std::map<std::string, int64_t> &extents,
                    std::string &error);

/// The shape bucket: each dynamic extent rounded up to a power of two,
/// "B=1,T=4096" in name order; "static" when there is none.
std::string shapeBucket(const KernelDesc &kernel,
                        const std::map<std::string, int64_t> &extents);

/// This machine as the database knows it: femc's target description (e.g.
/// "host:emeraldrapids"), the CPU model from /proc/cpuinfo and the vector
/// features that matter ("avx2,avx512f,fma,...").
std::string targetText(const std::string &compileTarget);

/// The key of (kernel semantics, target, bucket, femc version).
std::string makeKey(const std::string &semantics, const std::string &target,
                    const std::string &bucket, const std::string &femcVersion);

/// The result of looking one kernel up: `entry` on a hit; otherwise `miss`
/// says why (no entry, a dynamic extent not given). `error` is set instead
/// when a given extent is one the kernel does not name or contradicts a
/// static one (a mistake, not a miss); its text starts with "--dim".
struct LookupResult {
  const Entry *entry = nullptr;
  std::string key, bucket, miss, error;
};

/// Looks `kernel` up in `db` for the extents `dims` (fem-tune's --dim),
/// the target text (targetText) and femc version: the one lookup femc,
/// fem-opt's fem-apply-tuning and the Python module share.
LookupResult lookupKernel(const Database &db, const KernelDesc &kernel,
                          const std::map<std::string, int64_t> &dims,
                          const std::string &target,
                          const std::string &femcVersion);

/// Parses "SYM=N" (N from 1 to 2^31) into `dims`; false with `error` for a
/// malformed or repeated one. `option` names the option in the message.
bool parseDim(const std::string &text, const std::string &option,
              std::map<std::string, int64_t> &dims, std::string &error);

/// This femc's version text ("femc 0.1.0"), the database's femc_version.
std::string femcVersionText();

/// The current time as "YYYY-MM-DDTHH:MM:SSZ".
std::string utcNow();

/// "q=192 k=64 vec=16".
std::string tilesText(const std::map<std::string, int64_t> &tiles);

} // namespace femc::tune

#endif // FEMC_TOOLS_FEM_TUNE_TUNINGDB_H
