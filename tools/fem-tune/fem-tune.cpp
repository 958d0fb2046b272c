//===- fem-tune.cpp - autotune a femc kernel's tiles ------------------------===//
//
//   fem-tune MODEL.mlir [--kernel NAME] --dim T=4096 ... --db tuning.json
//            [--target=host] [--budget SECONDS] [--jobs N] [--retune]
//
// Compiles the legal tile candidates (the target's tile space,
// driver/Target.h and target/<family>/TileSpace.cpp) in
// parallel through the femc driver, loads every library with libfemrt, checks
// each candidate's output against the double-precision reference, times the
// survivors in one process with interleaved rounds, re-measures the leaders
// and records the winner in the tuning database (docs/tuning.md).
//
//===----------------------------------------------------------------------===//
#include "dialect/Priors.h"
#include "driver/Compiler.h"
#include "driver/Target.h"
#include "femrt/femrt.h"
#include "reference/KernelProblem.h"
#include "reference/Reference.h"
#include "support/LowPrecision.h"
#include "support/Memory.h"
#include "support/Npy.h"
#include "support/Paths.h"
#include "support/Random.h"
#include "support/Stdout.h"
#include "support/TempDir.h"
#include "tools/fem-tune/Choice.h"
#include "tools/fem-tune/Plot.h"
#include "tools/fem-tune/TuningDb.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace {

using Candidate = femc::driver::TileCandidate;
using femc::tune::Entry;
using femc::tune::KernelDesc;
using femc::tune::Measurement;
using femc::tune::measure;
using Clock = std::chrono::steady_clock;

const char *kUsage = R"(fem-tune: find the fastest correct tile sizes of a femc kernel and record them

usage: fem-tune MODEL.mlir --db FILE.json [--dim SYM=N ...] [options]

  --db FILE.json      the tuning database to read and update (created when
                      missing; docs/tuning.md). femc --tuning-db FILE.json
                      then compiles with the recorded tiles.
  --kernel NAME       kernel to tune (default: the model's only kernel)
  --dim SYM=N         extent of a dynamic dimension (B, T, S, H, Hkv, dk, dv,
                      E, N as the kernel's arguments name them), N from 1 to
                      2^31; repeatable. The database keys the result by a
                      shape bucket: each dynamic extent rounded up to a
                      power of two.
  --target=TARGET     any femc CPU target (femc --help): host (default),
                      x86-64-v3, x86-64-v4, an LLVM CPU name such as
                      znver3, +bf16/+bf16dot/+amx suffixes on x86-64-v4 or
                      a CPU name with AVX-512 (not on host); the candidates
                      run here, so it must fit this CPU; an NVIDIA target
                      is refused
  --budget SECONDS    rough wall-clock budget for compiling and timing, 1 to
                      86400 (default 60): compiling stops at half of it,
                      timing is planned from one launch of the default
                      (see below)
  --jobs N            candidates compiled at once, 1 to 256 (default: the
                      number of CPUs)
  --max-candidates N  compile at most N candidates (the default tiles and
                      the N-1 nearest to them), 1 to 1000 (default 32)
  --threads N         CPU threads of the timed launches, 0 (all) to
                      MAXTHREADS (default 0). When given, the thread count
                      is not tuned.
  --seed N            seed of the generated inputs, 0 to 2^64-1 (default 0)
  --tolerance X       a candidate whose output differs from the reference
                      by more than X * max|reference| is discarded (default
                      by the output's dtype, as fem-run --check: 1e-4
                      float32, 2e-3 float16, 1e-2 bfloat16)
  --check-length N    check candidates with a dynamic T (and S) of at most
                      N, 0 for the full shape (default 1000: the reference
                      is quadratic in T; timing always uses the full shape)
  --retune            tune again even if the database has this key
  --plot FILE.svg     draw the run: time against each tile parameter, one
                      panel per parameter, the spread as error bars, the
                      default and the chosen tiles marked (never the
                      database's or the model's file)
  -v, --verbose       list every candidate, pruned ones with the reason
  -h, --help          this text

What it does: the candidates are the target's tile space
(target/cpu/TileSpace.cpp for the CPU targets) less what the target's tile
rule refuses (the #fem.tiles verifier's and fem-tile's rule, with its
message) and tiles larger than the extent they tile (listed with -v). The
default tiles always take part. Each candidate is compiled (in parallel,
--jobs), loaded into this process, run once on seeded inputs (float32,
float16 or bfloat16, as fem-run makes them) and checked against the
double-precision reference: a wrong candidate is discarded and reported and
can never win.

Timing is planned from one launch of the default at the tuned shape. When
every candidate fits the budget (a warm-up and at least 3 interleaved rounds
each, then 5 rounds of 4 leaders), all are timed at the tuned shape (every
round runs every candidate once, in a rotating order, so drift hits all
alike) and the three fastest and the default are measured again. When one
launch is too long for that (softmax at T = 16384), a quick first pass at a
shorter T ranks the candidates (those that do not fit it are skipped and
reported), and only the default and the best of the quick pass are timed at
the tuned shape. The choice is stable from run to run: leaders whose noise
intervals (median +- MAD) overlap the fastest one's are a tie within the noise,
and a tie goes to the default, else to the first in the target's order; the
summary and the database say when the choice was a tie. Then the winner is
timed at each of the target's thread counts (all CPUs, halved down to 1) and
the thread count is chosen by the same rule (all CPUs preferred) and
recorded; femc --tuning-db writes it into the manifest and fem-run and
femc.compile launch with it unless given threads. A second run for a key
the database already holds returns at once unless --retune.

Progress goes to stderr (a bar on a terminal, plain lines otherwise); the
summary table to stdout. Exit status: 0 on success, 1 on an error, 2 on a
bad command line.
)";

struct Args {
  std::string model, kernel, target = "host", db, plot;
  std::map<std::string, int64_t> dims;
  double budget = 60;
  int64_t jobs = 0, maxCandidates = 32, threads = 0, checkLength = 1000;
  uint64_t seed = 0;
  double tolerance = 1e-4;
  bool retune = false, verbose = false, toleranceGiven = false;
};

[[noreturn]] void fail(const std::string &message, int code = 1) {
  std::fflush(stdout);
  std::fprintf(stderr, "fem-tune: error: %s\n", message.c_str());
  std::exit(code);
}

uint64_t parseInteger(const std::string &text, const std::string &what,
                      uint64_t min, uint64_t max) {
  bool digits = !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return c >= '0' && c <= '9';
  });
  uint64_t value = 0;
  bool tooLarge = false;
  if (digits)
    for (char c : text) {
      if (value > (std::numeric_limits<uint64_t>::max() - (c - '0')) / 10) {
        tooLarge = true;
        break;
      }
      value = value * 10 + static_cast<uint64_t>(c - '0');
    }
  if (!digits || tooLarge || value < min || value > max)
    fail(what + " expects an integer from " + std::to_string(min) + " to " +
             std::to_string(max) + ", found '" + text + "'",
         2);
  return value;
}

double parsePositive(const std::string &text, const std::string &what,
                     double max) {
  char *end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  if (text.empty() || !end || *end || !(v > 0) || !(v <= max) ||
      std::isspace(static_cast<unsigned char>(text[0])))
    fail(what + " expects a positive number up to " +
             std::to_string(static_cast<int64_t>(max)) + ", found '" + text +
             "'",
         2);
  return v;
}

Args parseArgs(int argc, char **argv) {
  Args a;
  // An option of one value given twice used to take the last value without
  // a word (--db a.json --db b.json recorded in b.json only).
  const std::set<std::string> once = {
      "--kernel", "--target",         "--db",           "--budget",
      "--jobs",   "--max-candidates", "--check-length", "--threads",
      "--seed",   "--tolerance",      "--plot"};
  std::set<std::string> seen;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::string flag = arg, inlineValue;
    bool hasInline = false;
    if (arg.rfind("--", 0) == 0 && arg.find('=') != std::string::npos) {
      flag = arg.substr(0, arg.find('='));
      inlineValue = arg.substr(arg.find('=') + 1);
      hasInline = true;
    }
    if (once.count(flag) && !seen.insert(flag).second)
      fail("option " + flag + " is given twice; give it once", 2);
    auto value = [&]() -> std::string {
      std::string v;
      if (hasInline)
        v = inlineValue;
      else if (i + 1 < argc)
        v = argv[++i];
      else
        fail("option " + flag + " needs a value (see --help)", 2);
      if (v.empty())
        fail("option " + flag + " needs a value (see --help)", 2);
      return v;
    };
    auto noValue = [&] {
      if (hasInline)
        fail("option " + flag + " takes no value, found '" + arg + "'", 2);
    };
    if (flag == "-h" || flag == "--help") {
      noValue();
      std::string usage = kUsage;
      usage.replace(usage.find("MAXTHREADS"), 10,
                    std::to_string(FEMRT_MAX_THREADS));
      std::fputs(usage.c_str(), stdout);
      std::exit(0);
    } else if (flag == "--kernel") {
      a.kernel = value();
    } else if (flag == "--dim") {
      std::string v = value();
      size_t eq = v.find('=');
      if (eq == std::string::npos || eq == 0 || eq + 1 == v.size())
        fail("--dim expects SYM=N, found '" + v + "'", 2);
      std::string sym = v.substr(0, eq);
      if (a.dims.count(sym))
        fail("--dim " + sym + " is given twice", 2);
      a.dims[sym] = static_cast<int64_t>(
          parseInteger(v.substr(eq + 1), "--dim " + sym, 1, int64_t(1) << 31));
    } else if (flag == "--target") {
      a.target = value();
    } else if (flag == "--db") {
      a.db = value();
    } else if (flag == "--budget") {
      std::string text = value();
      a.budget = parsePositive(text, "--budget", 86400);
      if (a.budget < 1) // as written: 1e-300 was shown as '0.000000'
        fail("--budget expects at least 1 second, found '" + text + "'", 2);
    } else if (flag == "--jobs") {
      a.jobs = static_cast<int64_t>(parseInteger(value(), "--jobs", 1, 256));
    } else if (flag == "--max-candidates") {
      a.maxCandidates =
          static_cast<int64_t>(parseInteger(value(), "--max-candidates", 1, 1000));
    } else if (flag == "--check-length") {
      a.checkLength = static_cast<int64_t>(
          parseInteger(value(), "--check-length", 0, int64_t(1) << 31));
    } else if (flag == "--threads") {
      a.threads = static_cast<int64_t>(
          parseInteger(value(), "--threads", 0, FEMRT_MAX_THREADS));
    } else if (flag == "--seed") {
      a.seed = parseInteger(value(), "--seed", 0,
                            std::numeric_limits<uint64_t>::max());
    } else if (flag == "--tolerance") {
      a.tolerance = parsePositive(value(), "--tolerance", 1);
      a.toleranceGiven = true;
    } else if (flag == "--plot") {
      a.plot = value();
    } else if (flag == "--retune") {
      noValue();
      a.retune = true;
    } else if (flag == "-v" || flag == "--verbose") {
      noValue();
      a.verbose = true;
    } else if (!arg.empty() && arg[0] == '-') {
      fail("unknown option '" + arg + "' (see --help)", 2);
    } else if (a.model.empty()) {
      a.model = arg;
    } else {
      fail("more than one model given: '" + a.model + "' and '" + arg + "'",
           2);
    }
  }
  if (a.model.empty())
    fail("no model given; usage: fem-tune MODEL.mlir --db FILE.json --dim "
         "T=N ... (see --help)",
         2);
  if (a.db.empty())
    fail("no database given: fem-tune needs --db FILE.json (see --help)", 2);
  if (a.jobs == 0) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    a.jobs = n > 0 ? n : 1;
  }
  return a;
}

//===----------------------------------------------------------------------===//
// Progress
//===----------------------------------------------------------------------===//

class Progress {
public:
  explicit Progress(Clock::time_point start)
      : start(start), tty(isatty(STDERR_FILENO)) {}

  double elapsed() const {
    return std::chrono::duration<double>(Clock::now() - start).count();
  }

  /// Phase `phase`: `done` of `total` steps; `what` names the last one.
  void update(const char *phase, size_t done, size_t total,
              const std::string &what, Clock::time_point phaseStart) {
    double phaseElapsed =
        std::chrono::duration<double>(Clock::now() - phaseStart).count();
    double eta = done ? phaseElapsed / done * (total - done) : 0;
    char line[256];
    if (tty) {
      int width = 24;
      int filled = total ? static_cast<int>(width * done / total) : width;
      std::string bar(filled, '#');
      bar += std::string(width - filled, '.');
      std::snprintf(line, sizeof line,
                    "\r%-9s [%s] %zu/%zu  elapsed %.1fs  about %.1fs left  ",
                    phase, bar.c_str(), done, total, elapsed(), eta);
      std::fputs(line, stderr);
      if (done == total)
        std::fputs("\n", stderr);
    } else {
      // Plain lines: every step of short phases, every tenth of long ones.
      if (total > 20 && done != total && done * 10 / total == (done - 1) * 10 / total)
        return;
      std::snprintf(line, sizeof line,
                    "fem-tune: %s %zu/%zu %s (elapsed %.1fs, about %.1fs "
                    "left)\n",
                    phase, done, total, what.c_str(), elapsed(), eta);
      std::fputs(line, stderr);
    }
    std::fflush(stderr);
  }

private:
  Clock::time_point start;
  bool tty;
};

//===----------------------------------------------------------------------===//
// Candidates
//===----------------------------------------------------------------------===//

struct Run {
  Candidate cand;
  std::string dir, library, log;
  std::string status; ///< "", "compile failed", "skipped", "wrong", ...
  std::string detail;
  femrt_module *module = nullptr;
  femrt_kernel *kernel = nullptr;
  /// Times of the first pass (interleaved rounds at the tuned shape, or
  /// the quick pass at a shorter length) and of the leaders' rounds.
  std::vector<double> samples, final;
  Measurement first, second;
  bool wrongHook = false;
  /// Launches timed so far (the fake-time hook's jitter index).
  int64_t launches = 0;
};

std::map<std::string, int64_t> tilesMap(const femc::priors::Tiles &t) {
  return {{"q", t.q}, {"k", t.k}, {"vec", t.vec}};
}

std::string tilesText(const femc::priors::Tiles &t) {
  return femc::tune::tilesText(tilesMap(t));
}

/// The test-only hook FEMC_TUNE_TEST_WRONG="q=..,k=..,vec=..": that
/// candidate's output is corrupted after every launch and its time reads 0,
/// so it would win if validation did not discard it.
std::optional<femc::priors::Tiles> wrongHook() {
  const char *env = std::getenv("FEMC_TUNE_TEST_WRONG");
  if (!env || !*env)
    return std::nullopt;
  femc::priors::Tiles t;
  std::stringstream ss(env);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t eq = item.find('=');
    if (eq == std::string::npos)
      continue;
    int64_t v = std::atoll(item.c_str() + eq + 1);
    std::string name = item.substr(0, eq);
    if (name == "q")
      t.q = v;
    else if (name == "k")
      t.k = v;
    else if (name == "vec")
      t.vec = v;
  }
  return t;
}

bool sameTiles(const femc::priors::Tiles &a, const femc::priors::Tiles &b) {
  return a.q == b.q && a.k == b.k && a.vec == b.vec;
}

//===----------------------------------------------------------------------===//
// Inputs and the reference (as fem-run generates and checks them)
//===----------------------------------------------------------------------===//

struct Tensor {
  const femrt_arg_info *info = nullptr;
  std::vector<int64_t> shape;
  std::vector<float> f32;
  std::vector<uint8_t> u8;
  /// 16-bit storage (f16, bf16): what the kernel reads or writes; f32 holds
  /// the same values widened, for the reference and the comparison.
  std::vector<uint16_t> bits16;
  DLTensor dl{};
  bool isFloat() const {
    return info->dtype_code == kDLFloat || info->dtype_code == kDLBfloat;
  }
  std::optional<femc::lowp::Format> half() const {
    return femc::lowp::formatOfDLType(info->dtype_code, info->dtype_bits);
  }
  /// Fills the output with NaN (in its storage too) before a launch.
  void poison() {
    std::fill(f32.begin(), f32.end(), std::nanf(""));
    if (half())
      std::fill(bits16.begin(), bits16.end(), uint16_t(0x7fc0));
  }
};

std::vector<std::string> argDims(const femrt_arg_info &info) {
  std::vector<std::string> out;
  std::stringstream ss(info.dim_names ? info.dim_names : "");
  std::string item;
  while (std::getline(ss, item, ','))
    out.push_back(item);
  out.resize(std::max(info.rank, 0));
  return out;
}

struct Problem {
  /// The extents of the arguments.
  std::map<std::string, int64_t> extents;
  std::vector<Tensor> tensors;
  std::vector<const DLTensor *> dl;
  int outIndex = -1;
  std::vector<double> reference;
};

void fillInputs(Problem &p, uint64_t seed) {
  femc::Rng rng(seed);
  for (auto &t : p.tensors) {
    std::string name = t.info->name;
    int64_t n = 1;
    for (int64_t d : t.shape)
      n *= d;
    if (!t.isFloat()) {
      t.u8.assign(static_cast<size_t>(n), 0);
      for (auto &m : t.u8)
        m = rng.uniform01() < 0.85 ? 1 : 0;
    } else if (t.info->role == FEMRT_ARG_OUTPUT) {
      t.f32.assign(static_cast<size_t>(n), std::nanf(""));
      t.bits16.assign(t.half() ? static_cast<size_t>(n) : 0, 0x7fc0);
    } else {
      // As fem-run generates them: rounded to a 16-bit storage, so the
      // reference reads what the kernel reads.
      t.f32.assign(static_cast<size_t>(n), 0.0f);
      femc::ref::generateInput(name, t.f32, rng);
      if (auto format = t.half())
        femc::lowp::roundToStorage(t.f32, t.bits16, *format);
    }
  }
  for (auto &t : p.tensors) {
    t.dl.data = t.half()      ? static_cast<void *>(t.bits16.data())
                : t.isFloat() ? static_cast<void *>(t.f32.data())
                              : static_cast<void *>(t.u8.data());
    t.dl.device = {kDLCPU, 0};
    t.dl.ndim = t.info->rank;
    t.dl.dtype = {t.info->dtype_code, t.info->dtype_bits, 1};
    t.dl.shape = t.shape.data();
    t.dl.strides = nullptr;
    t.dl.byte_offset = 0;
    p.dl.push_back(&t.dl);
  }
}

/// Refuses a problem whose buffers (the storage fillInputs makes: float32,
/// plus the 16-bit copy of a float16/bfloat16 argument, or bytes) cannot
/// fit in physical memory, before anything is allocated. A huge --dim used
/// to end in "internal: std::bad_alloc" or, where the allocation was
/// granted and then touched, in the OOM killer.
void checkMemory(const Problem &p, const std::string &where) {
  uint64_t memory = femc::tune::physicalMemory(), total = 0;
  for (const Tensor &t : p.tensors) {
    std::optional<int64_t> n = 1;
    for (int64_t d : t.shape)
      if (n)
        n = femc::tune::checkedMul(*n, d);
    int64_t perElement = !t.isFloat() ? 1 : t.half() ? 6 : 4;
    std::optional<int64_t> bytes =
        n ? femc::tune::checkedMul(*n, perElement) : std::nullopt;
    std::string what = "argument '" + std::string(t.info->name) +
                       "' with shape " + femc::npy::formatShape(t.shape) +
                       " at " + where;
    if (!bytes)
      fail(what + " has more elements than a 64-bit byte count can hold");
    if (memory && static_cast<uint64_t>(*bytes) > memory)
      fail(what + " needs " + std::to_string(*bytes) +
           " bytes, more than this machine's physical memory (" +
           std::to_string(memory) + " bytes); tune a smaller shape");
    total += static_cast<uint64_t>(*bytes); // each term <= memory
  }
  if (memory && total > memory)
    fail("the kernel's arguments at " + where + " need " +
         std::to_string(total) +
         " bytes together, more than this machine's physical memory (" +
         std::to_string(memory) + " bytes); tune a smaller shape");
}

/// Runs the reference for the problem; fails with a message when it cannot.
void runReference(Problem &p, femrt_kernel *kernel, const std::string &name,
                  const std::map<std::string, int64_t> &extents) {
  namespace ref = femc::ref;
  const femrt_kernel_traits *traits = nullptr;
  if (femrt_kernel_get_traits(kernel, &traits) != FEMRT_OK)
    fail(std::string("kernel traits: ") + femrt_last_error());
  const femc::priors::PriorInfo *info = ref::traitsPrior(traits);
  bool hasState = false;
  for (auto &t : p.tensors)
    hasState |= std::string(t.info->name) == "state" ||
                std::string(t.info->name) == "state_out";
  ref::Problem rp;
  std::string why = ref::problemFromTraits(
      traits, info ? info->name : "",
      [&](const char *sym) -> std::optional<int64_t> {
        auto it = extents.find(sym);
        if (it == extents.end())
          return std::nullopt;
        return it->second;
      },
      hasState, rp);
  if (!why.empty())
    fail("the reference cannot check kernel '" + name + "': it " + why);
  ref::Inputs in;
  for (auto &t : p.tensors) {
    if (t.info->role != FEMRT_ARG_INPUT)
      continue;
    std::string arg = t.info->name;
    if (!ref::bindInput(in, arg, t.isFloat(),
                        t.isFloat() ? static_cast<const void *>(t.f32.data())
                                    : t.u8.data()))
      fail("the reference has no input called '" + arg + "' (kernel '" +
           name + "')");
  }
  std::string error;
  std::optional<ref::Result> result;
  try {
    result = ref::run(rp, in, error);
  } catch (const std::bad_alloc &) {
    fail("out of memory in the reference; tune a smaller shape");
  }
  if (!result)
    fail("the reference cannot check kernel '" + name + "': " + error);
  p.reference = std::move(result->out);
}

/// Relative max error of `out` against the reference; NaN/Inf must agree.
bool checkOutput(const std::vector<float> &out, const std::vector<double> &ref,
                 double tolerance, std::string &detail) {
  double maxErr = 0, maxRef = 0;
  int64_t nonFinite = 0;
  for (size_t i = 0; i < out.size() && i < ref.size(); ++i) {
    double r = ref[i], o = out[i];
    if (!std::isfinite(r) || !std::isfinite(o)) {
      if (!((std::isnan(r) && std::isnan(o)) || r == o))
        ++nonFinite;
      continue;
    }
    maxRef = std::max(maxRef, std::fabs(r));
    maxErr = std::max(maxErr, std::fabs(o - r));
  }
  double rel = maxRef > 0 ? maxErr / maxRef : maxErr;
  char buf[160];
  std::snprintf(buf, sizeof buf,
                "max |out - ref| / max |ref| = %.3g (tolerance %.3g)%s", rel,
                tolerance, nonFinite ? ", NaN/Inf mismatches" : "");
  detail = buf;
  return rel <= tolerance && nonFinite == 0 && out.size() == ref.size();
}

//===----------------------------------------------------------------------===//
// The run
//===----------------------------------------------------------------------===//

std::string firstLine(const std::string &path) {
  FILE *f = std::fopen(path.c_str(), "r");
  if (!f)
    return "(no log)";
  char buf[512];
  std::string line;
  if (std::fgets(buf, sizeof buf, f))
    line = buf;
  std::fclose(f);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r'))
    line.pop_back();
  return line.empty() ? "(empty log)" : line;
}

/// Compiles the kept candidates in child processes, at most `jobs` at once,
/// until half the budget is spent.
void compileAll(std::vector<Run> &runs, const Args &args,
                const std::string &tempDir, Progress &progress) {
  std::vector<size_t> todo;
  for (size_t i = 0; i < runs.size(); ++i)
    if (runs[i].cand.pruned.empty())
      todo.push_back(i);
  auto phaseStart = Clock::now();
  std::map<pid_t, size_t> running;
  size_t next = 0, done = 0;
  auto finish = [&](pid_t pid, int status) {
    Run &r = runs[running[pid]];
    running.erase(pid);
    ++done;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0 &&
        access(r.library.c_str(), R_OK) == 0) {
      r.status = "compiled";
    } else {
      r.status = "compile failed";
      r.detail = firstLine(r.log);
    }
    progress.update("compiling", done, todo.size(),
                    tilesText(r.cand.tiles) + ": " + r.status, phaseStart);
  };
  while (next < todo.size() || !running.empty()) {
    // The default is compiled whatever the budget says: it is the yardstick.
    bool budgetLeft = progress.elapsed() < args.budget / 2 || next == 0;
    while (next < todo.size() && running.size() < static_cast<size_t>(args.jobs) &&
           budgetLeft) {
      size_t index = todo[next++];
      Run &r = runs[index];
      r.dir = tempDir + "/c" + std::to_string(index);
      r.log = r.dir + ".log";
      std::filesystem::create_directories(r.dir);
      std::fflush(stdout);
      std::fflush(stderr);
      pid_t pid = fork();
      if (pid < 0)
        fail("cannot start a compile process: " +
             std::string(std::strerror(errno)));
      if (pid == 0) {
        int fd = ::open(r.log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
          dup2(fd, STDERR_FILENO);
          dup2(fd, STDOUT_FILENO);
        }
        femc::driver::CompileOptions options;
        options.input = args.model;
        options.outDir = r.dir;
        options.target = args.target;
        options.tileQ = r.cand.tiles.q;
        options.tileK = r.cand.tiles.k;
        options.vec = r.cand.tiles.vec;
        femc::driver::CompileResult result;
        bool ok = femc::driver::compile(options, result);
        std::fflush(nullptr);
        _exit(ok ? 0 : 1);
      }
      std::string stem = std::filesystem::path(args.model).stem().string();
      r.library = r.dir + "/" + stem + ".so";
      running[pid] = index;
      budgetLeft = progress.elapsed() < args.budget / 2;
    }
    if (running.empty())
      break;
    int status = 0;
    pid_t pid = waitpid(-1, &status, 0);
    if (pid < 0) {
      if (errno == EINTR)
        continue;
      fail("waiting for a compile process: " + std::string(std::strerror(errno)));
    }
    if (running.count(pid))
      finish(pid, status);
  }
  for (size_t i = next; i < todo.size(); ++i) {
    runs[todo[i]].status = "skipped";
    runs[todo[i]].detail = "the budget ran out while compiling";
  }
}

/// The test-only hook FEMC_TUNE_TEST_TIMES="SPEC:MS;...": every timed
/// launch reads a made-up time instead of the clock, so the choice rules
/// are tested deterministically. SPEC is a candidate's tiles
/// ("q=64,k=64,vec=8": MS at the tuned length, scaled by (length /
/// tuned length)^2 at a shorter one) or "threads=N" (a factor on the time
/// at N pool threads, default 1); candidates not named read 10^6 ms plus
/// their index (slower than any named one). The k-th launch of a candidate is off by {0, -3, +3, -1.5,
/// +1.5} % (k mod 5), a spread the stable choice can see.
struct FakeTimes {
  bool active = false;
  std::vector<std::pair<femc::priors::Tiles, double>> tiles;
  std::map<int64_t, double> threads;
};

FakeTimes fakeTimesHook() {
  FakeTimes f;
  const char *env = std::getenv("FEMC_TUNE_TEST_TIMES");
  if (!env || !*env)
    return f;
  f.active = true;
  std::stringstream ss(env);
  std::string item;
  while (std::getline(ss, item, ';')) {
    if (item.empty())
      continue;
    size_t colon = item.rfind(':');
    char *end = nullptr;
    double ms = colon == std::string::npos
                    ? -1
                    : std::strtod(item.c_str() + colon + 1, &end);
    if (colon == std::string::npos || !end || *end || !(ms > 0))
      fail("FEMC_TUNE_TEST_TIMES: expected SPEC:MS with MS > 0, found '" +
           item + "'");
    std::string spec = item.substr(0, colon);
    if (spec.rfind("threads=", 0) == 0) {
      f.threads[std::atoll(spec.c_str() + 8)] = ms;
      continue;
    }
    femc::priors::Tiles t;
    std::stringstream ts(spec);
    std::string part;
    while (std::getline(ts, part, ',')) {
      size_t eq = part.find('=');
      int64_t v = eq == std::string::npos ? 0 : std::atoll(part.c_str() + eq + 1);
      std::string name = part.substr(0, eq);
      (name == "q" ? t.q : name == "k" ? t.k : t.vec) = v;
    }
    f.tiles.push_back({t, ms});
  }
  return f;
}

bool sameTiles(const femc::priors::Tiles &a, const femc::priors::Tiles &b);

/// The time FEMC_TUNE_TEST_TIMES gives launch `run` of candidate `index`
/// at `threads` pool threads (0: all) on a problem of length `length` when
/// the tuned length is `tunedLength`.
double fakeMs(const FakeTimes &f, Run &run, size_t index, int32_t threads,
              int64_t length, int64_t tunedLength) {
  static const double jitter[] = {0, -0.03, 0.03, -0.015, 0.015};
  double ms = 1e6 + static_cast<double>(index);
  for (auto &[t, v] : f.tiles)
    if (sameTiles(t, run.cand.tiles))
      ms = v;
  if (auto it = f.threads.find(threads); it != f.threads.end())
    ms *= it->second;
  if (length > 0 && tunedLength > 0 && length != tunedLength) {
    double r = static_cast<double>(length) / static_cast<double>(tunedLength);
    ms *= r * r;
  }
  return ms * (1 + jitter[run.launches++ % 5]);
}

const FakeTimes &fakeTimes() {
  static const FakeTimes f = fakeTimesHook();
  return f;
}

int64_t tunedLength = 0; ///< T of the tuned shape (the fake-time hook)

/// One timed launch of `runs[index]` on `p` with at most `threads` pool
/// threads (0: all); its time in ms.
double timeLaunch(std::vector<Run> &runs, size_t index, Problem &p,
                  int32_t threads = 0) {
  Run &run = runs[index];
  femrt_launch_options options;
  femrt_launch_options_init(&options);
  options.max_threads = threads;
  auto t0 = Clock::now();
  if (femrt_kernel_launch(run.kernel, p.dl.data(),
                          static_cast<int32_t>(p.dl.size()),
                          &options) != FEMRT_OK)
    fail("launching candidate " + tilesText(run.cand.tiles) + ": " +
         femrt_last_error());
  auto t1 = Clock::now();
  double ms = std::chrono::duration<double, std::milli>(t1 - t0).count();
  if (fakeTimes().active) {
    auto it = p.extents.find("T");
    ms = fakeMs(fakeTimes(), run, index, threads,
                it == p.extents.end() ? 0 : it->second, tunedLength);
  }
  if (run.wrongHook)
    ms = 0;
  return ms;
}

/// Times `order` in `rounds` interleaved rounds (each round every candidate
/// once, starting one later each round); appends to `samples` (or `final`)
/// of each.
void timeRounds(std::vector<Run> &runs, const std::vector<size_t> &order,
                int64_t rounds, Problem &p, bool final, Progress &progress,
                const char *phase) {
  auto phaseStart = Clock::now();
  size_t n = order.size();
  for (int64_t r = 0; r < rounds; ++r) {
    for (size_t j = 0; j < n; ++j) {
      size_t index = order[(j + static_cast<size_t>(r)) % n];
      double ms = timeLaunch(runs, index, p);
      (final ? runs[index].final : runs[index].samples).push_back(ms);
    }
    progress.update(phase, static_cast<size_t>(r + 1),
                    static_cast<size_t>(rounds),
                    "round " + std::to_string(r + 1), phaseStart);
  }
}

int runFemTune(int argc, char **argv) {
  Args args = parseArgs(argc, argv);
  Progress progress(Clock::now());
  // The plot is written after the database: a --plot naming the database
  // (or the model) replaced the result just recorded, and every entry
  // before it, with the drawing.
  if (!args.plot.empty())
    for (const std::string *own : {&args.db, &args.model})
      if (femc::tools::sameFile(args.plot, *own))
        fail("--plot " + args.plot + " names the " +
                 (own == &args.db ? "tuning database" : "model") + " (" + *own +
                 "); write the plot to another file",
             2);
  // Nor a path the plot cannot be written to (a folder, a missing or
  // read-only folder): refused only after the whole search, its result
  // recorded but the plot lost.
  if (!args.plot.empty())
    if (std::string why = femc::tools::outputFileRefusal(args.plot);
        !why.empty())
      fail("--plot " + args.plot + ": " + why + " (checked before tuning)", 2);

  // The GPU targets' tile space is their default only (the NVIDIA lowering
  // picks its block; target/nvidia/TileSpace.cpp) and their kernels do not
  // run on the host: nothing to tune here.
  if (const femc::driver::Target *t = femc::driver::lookupTarget(args.target);
      t && t->isDevice())
    fail("--target=" + args.target + " runs its kernels on a " +
             t->device() + " device; fem-tune times kernels on the host "
             "(--target=host, x86-64-v3, x86-64-v4 or a named x86-64 CPU); "
             "the NVIDIA lowering picks its block shape itself, so its tile "
             "space is the default tiles only (docs/tuning.md)",
         2);

  // What the kernel is: the manifest, without lowering anything.
  femc::driver::CompileOptions glue;
  glue.input = args.model;
  glue.target = args.target;
  glue.glueOnly = true;
  static std::string tempDir;
  {
    std::string why;
    if (!femc::tools::makeTempDir("fem-tune", tempDir, why))
      fail(why);
  }
  glue.outDir = tempDir;
  femc::driver::CompileResult glueResult;
  if (!femc::driver::compile(glue, glueResult))
    fail("compiling " + args.model + " failed (diagnostics above)");
  std::vector<KernelDesc> kernels;
  std::string error;
  if (!femc::tune::readKernels(glueResult.manifest, kernels, error))
    fail(error);
  const KernelDesc *kernel = nullptr;
  std::string names;
  for (const KernelDesc &k : kernels) {
    names += (names.empty() ? "" : ", ") + k.name;
    if (k.name == args.kernel)
      kernel = &k;
  }
  if (!args.kernel.empty() && !kernel)
    fail("model " + args.model + " has no kernel called '" + args.kernel +
         "' (kernels: " + names + ")");
  if (!kernel) {
    if (kernels.size() != 1)
      fail("model " + args.model + " has " + std::to_string(kernels.size()) +
           " kernels; choose one with --kernel (" + names + ")");
    kernel = &kernels[0];
  }
  if (kernel->layer)
    fail("'" + kernel->name + "' is a layer; fem-tune tunes kernels (one "
         "fem.mixer of the function's arguments), whose output the reference "
         "can check");
  const femc::priors::PriorInfo *prior = femc::priors::findPrior(kernel->prior);
  if (!prior)
    fail("kernel '" + kernel->name + "' has prior '" + kernel->prior +
         "', which the prior table does not know");
  std::map<std::string, int64_t> extents;
  if (!femc::tune::resolveExtents(*kernel, args.dims, extents, error))
    fail(error, 2);

  std::string manifestTarget;
  {
    femc::tune::Json m;
    std::string why;
    if (femc::tune::parseJson(glueResult.manifest, m, why))
      manifestTarget = m.getString("target").value_or(args.target);
  }
  std::string target = femc::tune::targetText(manifestTarget);
  std::string bucket = femc::tune::shapeBucket(*kernel, extents);
  std::string version = femc::driver::version();
  std::string key =
      femc::tune::makeKey(kernel->semantics, target, bucket, version);

  femc::tune::Database db;
  if (!femc::tune::loadDatabase(args.db, db, error))
    fail(error + "; the file was left untouched");
  if (const Entry *e = femc::tune::lookup(db, key); e && !args.retune) {
    std::printf("fem-tune: %s (bucket %s) is already tuned in %s: %s "
                "(%.3f ms, default %s %.3f ms, tuned %s); --retune tunes "
                "it again\n",
                kernel->name.c_str(), bucket.c_str(), args.db.c_str(),
                femc::tune::tilesText(e->tiles).c_str(), e->best.medianMs,
                femc::tune::tilesText(e->defaultTiles).c_str(),
                e->defaultTime.medianMs, e->tunedAt.c_str());
    if (!args.plot.empty())
      std::printf("fem-tune: --plot: nothing was timed, so %s was not "
                  "written; --retune tunes and plots\n",
                  args.plot.c_str());
    return 0;
  }
  // Find out now, not after a minute of tuning, that the result cannot be
  // recorded: the update creates the lock file next to the database and
  // replaces the file (a key already tuned is reported above even from a
  // read-only folder or database).
  if (!femc::tune::canCreateLock(args.db, error))
    fail("cannot record results in '" + args.db + "': " + error);
  if (!femc::tune::canReplace(args.db, error))
    fail(error);

  femc::priors::Tiles defaults;
  defaults.q = kernel->tiles.count("q") ? kernel->tiles.at("q") : 0;
  defaults.k = kernel->tiles.count("k") ? kernel->tiles.at("k") : 0;
  defaults.vec = kernel->tiles.count("vec") ? kernel->tiles.at("vec") : 0;
  std::vector<Run> runs;
  // Legality is the target's rule (its own limits on top of the prior
  // table's), the one femc applies when it compiles.
  const femc::driver::Target *compileTarget =
      femc::driver::lookupTarget(args.target);
  if (!compileTarget)
    fail(femc::driver::unsupportedTargetMessage(args.target), 2);
  femc::driver::TileSpace space = compileTarget->tileSpace(*prior);
  for (const Candidate &c : femc::driver::tileCandidates(
           *compileTarget, *prior, defaults, kernel->causal, extents)) {
    Run r;
    r.cand = c;
    runs.push_back(r);
  }
  int64_t kept = 0;
  for (Run &r : runs)
    if (r.cand.pruned.empty() && ++kept > args.maxCandidates)
      r.cand.pruned = "beyond --max-candidates " +
                      std::to_string(args.maxCandidates);
  auto hook = wrongHook();
  for (Run &r : runs)
    r.wrongHook = hook && sameTiles(*hook, r.cand.tiles);

  std::fprintf(stderr,
               "fem-tune: kernel %s, bucket %s, %zu candidates (%lld to "
               "compile), budget %.0fs, %lld job%s\n",
               kernel->name.c_str(), bucket.c_str(), runs.size(),
               static_cast<long long>(std::min(kept, args.maxCandidates)),
               args.budget, static_cast<long long>(args.jobs),
               args.jobs == 1 ? "" : "s");
  compileAll(runs, args, tempDir, progress);
  if (!runs[0].cand.pruned.empty())
    fail("the default tiles " + tilesText(runs[0].cand.tiles) +
         " are not legal: " + runs[0].cand.pruned);
  if (runs[0].status != "compiled")
    fail("the default tiles " + tilesText(runs[0].cand.tiles) +
         " do not compile: " + runs[0].detail);

  // Load every library into this process and check its output.
  femrt_context_options ctxOptions;
  femrt_context_options_init(&ctxOptions);
  ctxOptions.num_threads = static_cast<int32_t>(args.threads);
  femrt_context *ctx = nullptr;
  if (femrt_context_create(&ctxOptions, &ctx) != FEMRT_OK)
    fail(std::string("creating the runtime: ") + femrt_last_error());
  std::vector<size_t> correct;
  // Candidates are checked on `problem` (the reference is O(T^2) for the
  // quadratic priors, so a long dynamic T or S is shortened to
  // --check-length) and timed on `fullProblem`, the shape being tuned.
  Problem problem, fullProblem;
  std::map<std::string, int64_t> checkExtents = extents;
  std::string shortened;
  for (const char *name : {"T", "S"}) {
    bool dynamic = std::find(kernel->dynamicExtents.begin(),
                             kernel->dynamicExtents.end(),
                             name) != kernel->dynamicExtents.end();
    auto it = checkExtents.find(name);
    if (dynamic && args.checkLength > 0 && it != checkExtents.end() &&
        it->second > args.checkLength) {
      shortened += std::string(shortened.empty() ? "" : ", ") + name + "=" +
                   std::to_string(args.checkLength) + " (tuning " + name +
                   "=" + std::to_string(it->second) + ")";
      it->second = args.checkLength;
    }
  }
  if (!shortened.empty())
    std::fprintf(stderr,
                 "fem-tune: checking candidates at %s; --check-length 0 "
                 "checks at the full shape\n",
                 shortened.c_str());
  // The arguments of the kernel with the extents `ext`.
  auto setUp = [&](Problem &p, femrt_kernel *k,
                   const std::map<std::string, int64_t> &ext) {
    p.extents = ext;
    int32_t numArgs = 0;
    if (femrt_kernel_num_args(k, &numArgs) != FEMRT_OK)
      fail(std::string("kernel arguments: ") + femrt_last_error());
    p.tensors.resize(static_cast<size_t>(numArgs));
    for (int32_t a = 0; a < numArgs; ++a) {
      Tensor &t = p.tensors[static_cast<size_t>(a)];
      if (femrt_kernel_get_arg_info(k, a, &t.info) != FEMRT_OK)
        fail(std::string("argument info: ") + femrt_last_error());
      bool isF32 = t.info->dtype_code == kDLFloat && t.info->dtype_bits == 32;
      bool isByte = !t.isFloat() && t.info->dtype_bits == 8;
      if (!isF32 && !isByte && !t.half())
        fail("argument '" + std::string(t.info->name) +
             "' has a dtype fem-tune cannot generate (float32, float16, "
             "bfloat16 and 8-bit masks only)");
      for (const std::string &d : argDims(*t.info)) {
        auto it = ext.find(d);
        if (it == ext.end())
          fail("extent " + d + " of argument '" + t.info->name +
               "' is unknown; give it with --dim " + d + "=N");
        t.shape.push_back(it->second);
      }
      if (t.info->role == FEMRT_ARG_OUTPUT) {
        if (p.outIndex >= 0 || std::string(t.info->name) != "out" ||
            !t.isFloat())
          fail("kernel '" + kernel->name + "' has outputs fem-tune cannot "
               "check (one float32 'out' expected)");
        p.outIndex = a;
      }
    }
    if (p.outIndex < 0)
      fail("kernel '" + kernel->name + "' has no output 'out' to check");
    checkMemory(p, ext == extents ? "the tuning shape" : "the check shape");
  };
  auto checkStart = Clock::now();
  size_t toCheck = 0, checked = 0;
  for (Run &r : runs)
    toCheck += r.status == "compiled";
  for (size_t i = 0; i < runs.size(); ++i) {
    Run &r = runs[i];
    if (r.status != "compiled")
      continue;
    if (femrt_module_load_library(ctx, r.library.c_str(), &r.module) != FEMRT_OK ||
        femrt_module_get_kernel(r.module, kernel->name.c_str(), &r.kernel) !=
            FEMRT_OK) {
      r.status = "load failed";
      r.detail = femrt_last_error();
      continue;
    }
    if (problem.tensors.empty()) {
      setUp(problem, r.kernel, checkExtents);
      fillInputs(problem, args.seed);
      runReference(problem, r.kernel, kernel->name, checkExtents);
      if (checkExtents != extents) {
        setUp(fullProblem, r.kernel, extents);
        fillInputs(fullProblem, args.seed);
      }
    }
    Tensor &outTensor = problem.tensors[problem.outIndex];
    std::vector<float> &out = outTensor.f32;
    outTensor.poison();
    if (femrt_kernel_launch(r.kernel, problem.dl.data(),
                            static_cast<int32_t>(problem.dl.size()),
                            nullptr) != FEMRT_OK) {
      r.status = "launch failed";
      r.detail = femrt_last_error();
    } else {
      if (auto format = outTensor.half())
        femc::lowp::widenFromStorage(outTensor.bits16, out, *format);
      if (r.wrongHook && !out.empty())
        out[out.size() / 2] += 1.0f + std::fabs(out[out.size() / 2]);
      // A 16-bit output is rounded once more than the f32 computation: the
      // tolerance fem-run --check uses for it (support/LowPrecision.h).
      double tolerance = args.tolerance;
      if (auto format = outTensor.half(); format && !args.toleranceGiven)
        tolerance = femc::lowp::defaultTolerance(*format);
      if (checkOutput(out, problem.reference, tolerance, r.detail)) {
        r.status = "correct";
        correct.push_back(i);
      } else {
        r.status = "wrong";
      }
    }
    progress.update("checking", ++checked, toCheck,
                    tilesText(r.cand.tiles) + ": " + r.status, checkStart);
  }
  for (const Run &r : runs)
    if (r.status == "wrong" || r.status == "launch failed" ||
        r.status == "load failed")
      std::fprintf(stderr, "fem-tune: discarded %s: %s: %s\n",
                   tilesText(r.cand.tiles).c_str(), r.status.c_str(),
                   r.detail.c_str());
  if (runs[0].status != "correct")
    fail("the default tiles " + tilesText(runs[0].cand.tiles) +
         (runs[0].status == "wrong"
              ? " give wrong output (" + runs[0].detail + ")"
              : " could not run (" + runs[0].status + ": " + runs[0].detail +
                    ")") +
         "; nothing to compare against");

  // Time. One launch of the default at the tuned shape is its warm-up and
  // the estimate the plan is made from (Choice.h, planTiming).
  Problem &timed = fullProblem.tensors.empty() ? problem : fullProblem;
  {
    auto it = timed.extents.find("T");
    tunedLength = it == timed.extents.end() ? 0 : it->second;
  }
  double launchMs = timeLaunch(runs, 0, timed);
  double left = std::max(0.0, args.budget - progress.elapsed()) * 1000;
  femc::tune::TimingPlan plan = femc::tune::planTiming(
      left, launchMs, static_cast<int64_t>(correct.size()));
  std::fprintf(stderr, "fem-tune: plan: %s\n", plan.why.c_str());
  auto roundsFor = [&](double share, double perRound, int64_t lo, int64_t hi) {
    double n = perRound > 0 ? share / perRound : hi;
    return std::clamp<int64_t>(static_cast<int64_t>(n), lo, hi);
  };
  // What the first pass ranks: every correct candidate, or (quick pass)
  // those that fit its share of the budget.
  std::vector<size_t> ranked, firstPass = correct;
  std::vector<size_t> leaders;
  int64_t rounds = 0, finalRounds = 0;
  std::string quickText; // "T=2048" when the first pass ran shorter
  Problem quickProblem;
  if (!plan.quickPass) {
    std::vector<size_t> others(correct.begin() + 1, correct.end());
    timeRounds(runs, others, 1, timed, false, progress, "warm-up");
    double roundMs = launchMs;
    for (size_t i : others) {
      roundMs += runs[i].samples.back();
      runs[i].samples.clear();
    }
    left = std::max(0.0, args.budget - progress.elapsed()) * 1000;
    rounds = roundsFor(left * 0.6, roundMs, 3, 50);
    timeRounds(runs, correct, rounds, timed, false, progress, "timing");
  } else {
    // The quick pass: the longest length T / 2^j (also S when it is
    // dynamic and not causal) at which a warm-up and 2 rounds of every
    // candidate fit its share, measured on the default; at the shortest
    // length tried (T / 64, at least 64) the candidates nearest the default
    // that fit are kept and the others skipped.
    Problem *quick = &timed;
    double quickLaunch = launchMs;
    bool dynamicT = std::find(kernel->dynamicExtents.begin(),
                              kernel->dynamicExtents.end(),
                              "T") != kernel->dynamicExtents.end();
    auto fits = [&](double ms) {
      return static_cast<double>(correct.size()) * 3 * ms <= plan.quickShareMs;
    };
    if (dynamicT && tunedLength > 0) {
      for (int64_t length = tunedLength / 2;
           !fits(quickLaunch) && length >= std::max<int64_t>(64, tunedLength / 64);
           length /= 2) {
        std::map<std::string, int64_t> ext = extents;
        ext["T"] = length;
        if (ext.count("S") && !kernel->causal &&
            std::find(kernel->dynamicExtents.begin(),
                      kernel->dynamicExtents.end(),
                      "S") != kernel->dynamicExtents.end())
          ext["S"] = std::max<int64_t>(1, ext["S"] * length / tunedLength);
        quickProblem = Problem();
        setUp(quickProblem, runs[0].kernel, ext);
        fillInputs(quickProblem, args.seed);
        quick = &quickProblem;
        quickLaunch = timeLaunch(runs, 0, quickProblem);
        quickText = "T=" + std::to_string(length);
      }
    }
    if (quickText.empty())
      quickText = "T=" + std::to_string(tunedLength) + " (the tuned shape)";
    // Candidates that fit the quick pass, in the fixed order (nearest the
    // default first); at least the default and one other.
    size_t keep = correct.size();
    if (!fits(quickLaunch))
      keep = std::clamp<size_t>(
          static_cast<size_t>(plan.quickShareMs / (3 * quickLaunch)), 2,
          correct.size());
    firstPass.assign(correct.begin(), correct.begin() + keep);
    for (size_t j = keep; j < correct.size(); ++j) {
      runs[correct[j]].status = "skipped";
      runs[correct[j]].detail = "not timed: the quick pass at " + quickText +
                                " had room for " + std::to_string(keep) +
                                " candidates";
    }
    std::vector<size_t> others(firstPass.begin() + 1, firstPass.end());
    timeRounds(runs, others, 1, *quick, false, progress, "warm-up");
    // A round as the warm-up measured it (candidates differ from the
    // default by several times at short lengths).
    double roundMs = quickLaunch;
    for (size_t i : others) {
      roundMs += runs[i].samples.back();
      runs[i].samples.clear();
    }
    left = std::max(0.0, args.budget - progress.elapsed()) * 1000;
    rounds = roundsFor(std::min(plan.quickShareMs, left), roundMs, 2, 20);
    std::fprintf(stderr,
                 "fem-tune: quick pass at %s: %zu candidates, %lld rounds "
                 "(one launch of the default: %.1f ms)%s\n",
                 quickText.c_str(), firstPass.size(),
                 static_cast<long long>(rounds), quickLaunch,
                 keep < correct.size()
                     ? (", " + std::to_string(correct.size() - keep) +
                        " skipped (budget)")
                           .c_str()
                     : "");
    timeRounds(runs, firstPass, rounds, *quick, false, progress, "quick");
  }
  for (size_t i : firstPass)
    runs[i].first = measure(runs[i].samples);
  ranked = firstPass;
  auto byFirst = [&](size_t a, size_t b) {
    if (runs[a].first.medianMs != runs[b].first.medianMs)
      return runs[a].first.medianMs < runs[b].first.medianMs;
    return a < b;
  };
  std::sort(ranked.begin(), ranked.end(), byFirst);
  // The leaders: the fastest of the first pass and the default.
  size_t wanted = static_cast<size_t>(std::max<int64_t>(plan.leaders, 1));
  leaders.push_back(0);
  for (size_t i : ranked)
    if (leaders.size() < wanted && i != 0)
      leaders.push_back(i);
  if (!plan.quickPass) {
    // The standard plan re-measures the 3 fastest and the default.
    leaders.assign(ranked.begin(),
                   ranked.begin() + std::min<size_t>(3, ranked.size()));
    if (std::find(leaders.begin(), leaders.end(), size_t(0)) == leaders.end())
      leaders.push_back(0);
  }
  std::sort(leaders.begin(), leaders.end());
  left = std::max(0.0, args.budget - progress.elapsed()) * 1000;
  if (plan.quickPass) {
    finalRounds = plan.leaderRounds;
  } else {
    double leaderMs = 0;
    for (size_t i : leaders)
      leaderMs += runs[i].first.medianMs;
    finalRounds = roundsFor(left * 0.9, leaderMs, 5, 100);
  }
  timeRounds(runs, leaders, finalRounds, timed, true, progress, "leaders");
  std::vector<femc::tune::Contender> contenders;
  for (size_t i : leaders) {
    runs[i].second = measure(runs[i].final);
    femc::tune::Contender c;
    c.time = runs[i].second;
    c.isDefault = i == 0;
    c.order = static_cast<int64_t>(i); // the target's fixed order
    contenders.push_back(c);
  }
  femc::tune::StableChoice choice = femc::tune::chooseStable(contenders);
  size_t winner = leaders[choice.winner];
  size_t fastest = leaders[choice.fastest];
  std::vector<size_t> tiedRuns; // runs within the noise of the fastest
  for (size_t t : choice.tied)
    tiedRuns.push_back(leaders[t]);
  const Measurement &def = runs[0].second;
  int64_t quickOnly = 0;
  for (size_t i : firstPass)
    quickOnly += plan.quickPass && runs[i].final.empty();

  // Threads: the winner at each of the target's thread counts (those the
  // context has), interleaved, chosen by the same stable rule with all the
  // context's threads as the default. Not tuned when --threads fixes them.
  std::vector<int64_t> threadCounts;
  int32_t poolThreads = 0;
  femrt_context_get_num_threads(ctx, &poolThreads);
  if (args.threads == 0)
    for (int64_t t : space.threads)
      if (t <= poolThreads &&
          std::find(threadCounts.begin(), threadCounts.end(), t) ==
              threadCounts.end())
        threadCounts.push_back(t);
  if (!threadCounts.empty() && threadCounts.front() != poolThreads)
    threadCounts.insert(threadCounts.begin(), poolThreads);
  int64_t chosenThreads = 0;
  bool threadsTie = false;
  std::vector<Measurement> threadTimes;
  std::string threadsText; // where the thread counts were measured
  if (threadCounts.size() > 1) {
    Problem &tp = plan.quickPass && !quickProblem.tensors.empty()
                      ? quickProblem
                      : timed;
    threadsText = &tp == &timed ? "the tuned shape" : quickText;
    double perRound = (&tp == &timed ? runs[winner].second.medianMs
                                     : runs[winner].first.medianMs) *
                      static_cast<double>(threadCounts.size());
    left = std::max(0.0, args.budget - progress.elapsed()) * 1000;
    int64_t threadRounds = roundsFor(left * 0.9, perRound, 3, 30);
    std::vector<std::vector<double>> samples(threadCounts.size());
    auto phaseStart = Clock::now();
    size_t n = threadCounts.size();
    for (int64_t r = 0; r < threadRounds; ++r) {
      for (size_t j = 0; j < n; ++j) {
        size_t c = (j + static_cast<size_t>(r)) % n;
        samples[c].push_back(timeLaunch(
            runs, winner, tp, static_cast<int32_t>(threadCounts[c])));
      }
      progress.update("threads", static_cast<size_t>(r + 1),
                      static_cast<size_t>(threadRounds),
                      "round " + std::to_string(r + 1), phaseStart);
    }
    std::vector<femc::tune::Contender> byThreads;
    for (size_t c = 0; c < n; ++c) {
      femc::tune::Contender k;
      k.time = measure(samples[c]);
      k.isDefault = c == 0;
      k.order = static_cast<int64_t>(c);
      threadTimes.push_back(k.time);
      byThreads.push_back(k);
    }
    femc::tune::StableChoice tc = femc::tune::chooseStable(byThreads);
    chosenThreads = threadCounts[tc.winner];
    threadsTie = tc.tie;
  }

  // Summary.
  std::printf("\nfem-tune: kernel %s, bucket %s, target %s\n",
              kernel->name.c_str(), bucket.c_str(), manifestTarget.c_str());
  std::printf("  %-4s %-22s %11s %8s %9s  %s\n", "rank", "tiles", "median ms",
              "spread", "vs dflt", "");
  std::vector<size_t> shown = ranked;
  std::sort(shown.begin(), shown.end(), [&](size_t a, size_t b) {
    bool la = !runs[a].final.empty(), lb = !runs[b].final.empty();
    if (la != lb)
      return la;
    const Measurement &ma = la ? runs[a].second : runs[a].first;
    const Measurement &mb = lb ? runs[b].second : runs[b].first;
    if (ma.medianMs != mb.medianMs)
      return ma.medianMs < mb.medianMs;
    return a < b;
  });
  int rank = 0;
  for (size_t i : shown) {
    ++rank;
    const Run &r = runs[i];
    const Measurement &m = r.final.empty() ? r.first : r.second;
    const Measurement &d = r.final.empty() ? runs[0].first : def;
    if (rank > 10 && i != 0 && !args.verbose)
      continue;
    std::string note = i == winner ? "<- chosen" : "";
    if (i == 0)
      note += note.empty() ? "default" : ", default";
    if (i != winner && std::find(tiedRuns.begin(), tiedRuns.end(), i) !=
                           tiedRuns.end())
      note += note.empty() ? "tie" : ", tie";
    if (r.final.empty())
      note += std::string(note.empty() ? "" : " ") +
              (plan.quickPass ? "(quick pass at " + quickText + " only)"
                              : "(first round only)");
    std::printf("  %-4d %-22s %11.4f %7.1f%% %8.2fx  %s\n", rank,
                tilesText(r.cand.tiles).c_str(), m.medianMs, m.spread * 100,
                m.medianMs > 0 ? d.medianMs / m.medianMs : 0.0, note.c_str());
  }
  int64_t pruned = 0, discarded = 0, failed = 0, skipped = 0;
  for (const Run &r : runs) {
    if (!r.cand.pruned.empty())
      ++pruned;
    else if (r.status == "wrong" || r.status == "launch failed" ||
             r.status == "load failed")
      ++discarded;
    else if (r.status == "compile failed")
      ++failed;
    else if (r.status == "skipped")
      ++skipped;
    if (args.verbose && (!r.cand.pruned.empty() || r.status == "compile failed" ||
                         r.status == "skipped"))
      std::printf("  %-27s %s: %s\n", tilesText(r.cand.tiles).c_str(),
                  r.cand.pruned.empty() ? r.status.c_str() : "pruned",
                  r.cand.pruned.empty() ? r.detail.c_str()
                                        : r.cand.pruned.c_str());
  }
  const Run &best = runs[winner];
  int64_t timedCount = static_cast<int64_t>(firstPass.size());
  std::printf("  timed %lld, discarded %lld (wrong output), compile failed "
              "%lld, skipped %lld (budget), pruned %lld\n",
              static_cast<long long>(timedCount),
              static_cast<long long>(discarded),
              static_cast<long long>(failed), static_cast<long long>(skipped),
              static_cast<long long>(pruned));
  if (plan.quickPass)
    std::printf("  quick pass at %s ranked %zu candidates; %zu timed at the "
                "tuned shape, %lld ranked by the quick pass only\n",
                quickText.c_str(), firstPass.size(), leaders.size(),
                static_cast<long long>(quickOnly));
  std::printf("  best %s: %.4f ms (spread %.1f%%); default %s: %.4f ms "
              "(spread %.1f%%); speed-up %.2fx\n",
              tilesText(best.cand.tiles).c_str(), best.second.medianMs,
              best.second.spread * 100, tilesText(runs[0].cand.tiles).c_str(),
              def.medianMs, def.spread * 100,
              best.second.medianMs > 0 ? def.medianMs / best.second.medianMs
                                       : 0.0);
  if (choice.tie)
    std::printf("  choice: %s: %zu leaders within the noise of the fastest "
                "%s (median +- MAD intervals overlap)\n",
                choice.rule.c_str(), choice.tied.size(),
                tilesText(runs[fastest].cand.tiles).c_str());
  else
    std::printf("  choice: fastest: no other leader within its noise "
                "(median +- MAD intervals apart)\n");
  if (!threadTimes.empty()) {
    std::string list;
    for (size_t c = 0; c < threadCounts.size(); ++c) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%s%lld: %.4f ms", list.empty() ? "" : ", ",
                    static_cast<long long>(threadCounts[c]),
                    threadTimes[c].medianMs);
      list += buf;
    }
    std::printf("  threads: %lld%s (at %s: %s)\n",
                static_cast<long long>(chosenThreads),
                threadsTie ? " (tie within noise)" : "", threadsText.c_str(),
                list.c_str());
  } else {
    std::printf("  threads: not tuned (%s)\n",
                args.threads != 0 ? "--threads fixes them"
                                  : "the target or machine offers one count");
  }

  Entry e;
  e.kernelHash = femc::tune::hashText(kernel->semantics);
  e.semantics = kernel->semantics;
  e.target = target;
  e.bucket = bucket;
  e.femcVersion = version;
  e.key = key;
  e.tileSpaceVersion = space.version;
  e.tiles = tilesMap(best.cand.tiles);
  e.best = best.second;
  e.defaultTiles = tilesMap(runs[0].cand.tiles);
  e.defaultTime = def;
  e.kernelName = kernel->name;
  e.tunedAt = femc::tune::utcNow();
  e.timed = timedCount;
  e.discarded = discarded;
  e.pruned = pruned;
  e.skipped = skipped;
  e.quickOnly = quickOnly;
  e.choiceRule = choice.rule;
  e.tie = choice.tie;
  e.tied = static_cast<int64_t>(choice.tied.size());
  e.fastestTiles = tilesMap(runs[fastest].cand.tiles);
  if (!threadTimes.empty()) {
    e.threads = chosenThreads;
    e.threadCandidates = threadCounts;
    e.threadsTie = threadsTie;
  }
  for (Run &r : runs)
    if (r.module)
      femrt_module_destroy(r.module);
  femrt_context_destroy(ctx);
  if (!femc::tune::updateDatabase(args.db, {e}, error))
    fail(error);
  std::printf("fem-tune: recorded %s for %s in %s (%s%.1fs)\n",
              tilesText(best.cand.tiles).c_str(), kernel->name.c_str(),
              args.db.c_str(),
              e.threads ? (std::to_string(e.threads) + " threads, ").c_str()
                        : "",
              progress.elapsed());
  if (!args.plot.empty()) {
    // Every timed candidate by its interleaved rounds (the measurement all
    // of them share); the chosen one is marked.
    femc::tune::PlotData plot;
    plot.title = "fem-tune: " + kernel->name + ", " + bucket + ", " +
                 manifestTarget;
    plot.subtitle = "median of " + std::to_string(rounds) +
                    " interleaved rounds per candidate" +
                    (plan.quickPass ? " (quick pass at " + quickText + ")"
                                    : std::string()) +
                    "; chosen after " + std::to_string(finalRounds) +
                    " more rounds of the leaders and the default";
    for (size_t i : firstPass) {
      femc::tune::PlotPoint point;
      point.tiles = tilesMap(runs[i].cand.tiles);
      point.medianMs = runs[i].first.medianMs;
      point.spread = runs[i].first.spread;
      point.isDefault = i == 0;
      point.isChosen = i == winner;
      plot.points.push_back(point);
    }
    std::string svg = femc::tune::plotSvg(plot);
    // A regular file is written next to itself and renamed over it, so a
    // failed write (disk full) leaves the previous plot whole; a device or
    // FIFO is written in place.
    std::error_code ec;
    auto st = std::filesystem::status(args.plot, ec);
    bool inPlace = !ec && std::filesystem::exists(st) &&
                   !std::filesystem::is_regular_file(st);
    std::string temp =
        inPlace ? args.plot : args.plot + ".tmp-" + std::to_string(::getpid());
    FILE *f = std::fopen(temp.c_str(), "wb");
    bool ok = f && std::fwrite(svg.data(), 1, svg.size(), f) == svg.size();
    int err = errno;
    if (f && std::fclose(f) != 0 && ok) {
      ok = false;
      err = errno;
    }
    if (ok && !inPlace && std::rename(temp.c_str(), args.plot.c_str()) != 0) {
      ok = false;
      err = errno;
    }
    if (!ok && !inPlace && f)
      std::remove(temp.c_str());
    if (!ok)
      fail("cannot write the plot '" + args.plot + "': " + std::strerror(err) +
           " (the result is recorded in " + args.db + ")");
    std::printf("fem-tune: wrote %s\n", args.plot.c_str());
  }
  return 0;
}

} // namespace

int main(int argc, char **argv) {
  try {
    return femc::tools::checkStdout("fem-tune", runFemTune(argc, argv));
  } catch (const std::exception &e) {
    fail(std::string("internal: ") + e.what());
  } catch (...) {
    fail("internal: an unknown exception");
  }
}
