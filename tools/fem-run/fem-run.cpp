//===- fem-run.cpp - run, check and time femc kernels ----------------------===//
//
//   fem-run LIB.so|MODEL.mlir [--kernel NAME] [--input q=q.npy ...]
//           [--dim T=1024 ...] [--seed N] [--output out=out.npy]
//           [--check] [--tolerance X] [--bench N] [--threads N]
//
// Inputs come from .npy files by name; the others are generated from the
// seed with the shapes that the given inputs and --dim fix. --check runs the
// double-precision reference (reference/) on the same inputs. Uses only
// libfemrt, the reference and the npy support, so it builds without LLVM;
// a .mlir input is compiled by the linked femc driver when one is built in.
//
//===----------------------------------------------------------------------===//
#include "dialect/Priors.h"
#include "femrt/femrt.h"
#include "reference/KernelProblem.h"
#include "reference/LayerIO.h"
#include "reference/Reference.h"
#include "support/Json.h"
#include "support/LowPrecision.h"
#include "support/Memory.h"
#include "support/Npy.h"
#include "support/Paths.h"
#include "support/Random.h"
#include "support/Stdout.h"
#include "support/TempDir.h"

#ifdef FEMC_HAVE_COMPILER
#include "driver/Compiler.h"
#endif

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace {

/// The most threads fem-run asks libfemrt for: the runtime's documented
/// maximum (femrt_context_create refuses more).
constexpr int64_t kMaxThreads = FEMRT_MAX_THREADS;
constexpr int64_t kMaxBench = 1000000;
constexpr int64_t kMaxTile = 1 << 20;

const char *kUsage =
    R"(fem-run: run a femc kernel on .npy or generated inputs, check it, time it

usage: fem-run LIBRARY.so|MODEL.mlir [options]

  --kernel NAME          kernel to run (default: the library's only kernel,
                         or its only layer when it holds one layer and the
                         layer's FEM read kernels)
  --input NAME=FILE.npy  read argument NAME (q, k, v, beta_raw, lam, gate,
                         mask, ...; a scan kernel's carried state) from a
                         .npy file (a regular file); repeatable; a
                         generated state is the empty (all-zero) one
  --dim SYM=N            extent of a dynamic dimension for generated inputs;
                         SYM is one the kernel's arguments name (B, T, S, H,
                         Hkv, dk, dv, E; causal kernels have no S), N from 0
                         to 2^63-1 (buffers must fit in memory); repeatable
  --seed N               seed for generated inputs, 0 to 2^64-1 (default 0)
  --output NAME=FILE.npy write an output (out, or state_out: the state
                         after the segment) to a .npy file
  --inputs DIR           read every input found as DIR/NAME.npy (NAME its
                         fem.name, '/' written as '_'; an --input of the
                         same name wins), e.g. an imported layer's weights;
                         the others are generated (a warning names .npy
                         files there that no input reads)
  --save-inputs DIR      write every input (given or generated) as DIR/NAME.npy
                         (DIR must exist; '/' in NAME as '_', the files
                         --inputs reads); an --output may not name one of
                         them
  --check                compare with the double-precision reference (a
                         scan kernel with a carried state: from that state,
                         and state_out field by field too; a layer: the
                         layer reference, when its manifest holds its
                         fem.layer configuration; docs/layers.md); its
                         heads run on all cores (FEMC_REF_THREADS=N)
  --tolerance X          relative tolerance of --check, as a fraction of
                         max|reference|, positive and finite (default by the
                         output's dtype: 1e-4 float32, 2e-3 float16, 1e-2
                         bfloat16; docs/semantics.md)
  --bench N              time N launches after one warm-up, N from 1 to
                         1000000; print median/min (a layer: its scratch kept)
  --threads N            CPU threads, 0 (all cores) to MAXTHREADS (default:
                         the kernel's tuned threads when its manifest has
                         them, from femc --tuning-db; else all cores)
  --device cpu|cuda      where the kernel runs (default cpu). cuda: a
                         library from femc --target=sm_80/sm_90 (a .mlir is
                         compiled for sm_90) on CUDA device 0; the inputs
                         are copied to the device, the output back; --bench
                         times each launch to its completion on the device
  --list-devices         list the CUDA devices and exit (status 4: none)
  --tile-q/--tile-k/--vec N  tile sizes when compiling a .mlir (a library
                         has its tiles), 0 (femc's default) to 1048576
  -h, --help             this text

float16 and bfloat16 arguments (16-bit storage): generated inputs are
rounded to the argument's format (nearest even) before the kernel and the
reference see them. A float16 input file is '<f2'; a bfloat16 one holds the
raw bit patterns as '<u2' (x.view(np.uint16) of an ml_dtypes.bfloat16
array); either also takes any float file ('<f2', '<f4', '<f8'), rounded.
--output and --save-inputs write float16 as '<f2' and bfloat16 as '<u2'.
Values beyond the format's range become +-Inf (a warning says how many).
A key mask file is bool, uint8, int8, int32 or int64: a nonzero
element keeps its key.

A LIBRARY without '/' is read from the current directory.
Exit status: 0 on success, 1 on an error, 3 when --check fails, 4 when
--device cuda (or --list-devices) finds no CUDA device ("no CUDA device:
<reason>"; the GPU tests take 4 as a skip).

Examples:
  femc examples/softmax_fem.mlir -o out
  fem-run out/softmax_fem.so --dim B=1 --dim T=1024 --check --bench 10
)";

struct Args {
  std::string library, kernel, saveInputs;
  std::string inputsDir; ///< --inputs
  std::map<std::string, std::string> inputs, outputs;
  std::map<std::string, int64_t> dims;
  uint64_t seed = 0;
  bool check = false;
  double tolerance = 1e-4;
  bool toleranceGiven = false;
  int64_t bench = 0, threads = 0;
  bool threadsGiven = false;
  std::string device = "cpu";
  int64_t tileQ = 0, tileK = 0, vec = 0;
};

[[noreturn]] void fail(const std::string &message, int code = 1) {
  std::fflush(stdout);
  std::fprintf(stderr, "fem-run: error: %s\n", message.c_str());
  std::exit(code);
}

/// The file --inputs reads and --save-inputs writes for input `name`:
/// DIR/NAME.npy with '/' written as '_' (a layer's fem.name may hold '/';
/// "../x" must not leave DIR).
std::string inputFile(const std::string &dir, const std::string &name) {
  std::string file = name;
  std::replace(file.begin(), file.end(), '/', '_');
  return dir + "/" + file + ".npy";
}

using femc::tools::sameFile;

bool splitPair(const std::string &text, std::string &key, std::string &value) {
  size_t eq = text.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == text.size())
    return false;
  key = text.substr(0, eq);
  value = text.substr(eq + 1);
  return true;
}

/// Parses a decimal integer in [min, max] (min >= 0): digits only, no sign,
/// no spaces, no trailing characters, no wrap-around. Refuses anything else
/// naming the option, the range and what was found.
uint64_t parseInteger(const std::string &text, const std::string &what,
                      uint64_t min, uint64_t max) {
  const char *why = nullptr;
  uint64_t value = 0;
  if (text.empty()) {
    why = "empty";
  } else if (text[0] == '-' && text.size() > 1 &&
             std::all_of(text.begin() + 1, text.end(),
                         [](char c) { return c >= '0' && c <= '9'; })) {
    why = "negative";
  } else if (!std::all_of(text.begin(), text.end(),
                          [](char c) { return c >= '0' && c <= '9'; })) {
    why = "not a whole number";
  } else {
    for (char c : text) {
      unsigned digit = c - '0';
      if (value > (std::numeric_limits<uint64_t>::max() - digit) / 10) {
        why = "too large";
        break;
      }
      value = value * 10 + digit;
    }
    if (!why && value > max)
      why = "too large";
    else if (!why && value < min)
      why = "too small";
  }
  if (why)
    fail(what + " expects an integer from " + std::to_string(min) + " to " +
         std::to_string(max) + ", found '" + text + "' (" + why + ")");
  return value;
}

int64_t parseExtent(const std::string &text, const std::string &what,
                    int64_t min, int64_t max) {
  return static_cast<int64_t>(parseInteger(text, what, min, max));
}

int listCudaDevices();

/// A model fem-run compiles itself (NAME.mlir), not a library.
bool isModelPath(const std::string &path) {
  return path.size() > 5 && path.compare(path.size() - 5, 5, ".mlir") == 0;
}

Args parseArgs(int argc, char **argv) {
  Args a;
  auto value = [&](int &i) -> std::string {
    std::string flag = argv[i];
    size_t eq = flag.find('=');
    std::string v;
    if (flag.rfind("--", 0) == 0 && eq != std::string::npos) {
      v = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
    } else if (i + 1 >= argc) {
      fail("option " + flag + " needs a value (see --help)");
    } else {
      v = argv[++i];
    }
    if (v.empty())
      fail("option " + flag + " needs a value (see --help)");
    return v;
  };
  auto noValue = [&](const std::string &arg, const std::string &flag) {
    if (arg != flag)
      fail("option " + flag + " takes no value, found '" + arg + "'");
  };
  // An option of one value given twice used to take the last value without
  // a word (--kernel a --kernel b ran b; --dim, --input and --output name
  // their key and are checked per key below).
  const std::set<std::string> once = {
      "--kernel",    "--inputs", "--save-inputs", "--seed",
      "--tolerance", "--bench",  "--device",      "--threads",
      "--tile-q",    "--tile-k", "--vec"};
  std::set<std::string> seen;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::string flag = arg.substr(0, arg.find('='));
    if (once.count(flag) && !seen.insert(flag).second)
      fail("option " + flag + " is given twice; give it once");
    if (arg == "-h" || flag == "--help") {
      noValue(arg, flag);
      std::string usage = kUsage;
      usage.replace(usage.find("MAXTHREADS"), 10, std::to_string(kMaxThreads));
      std::fputs(usage.c_str(), stdout);
      std::exit(0);
    } else if (flag == "--kernel") {
      a.kernel = value(i);
    } else if (flag == "--input" || flag == "--output" || flag == "--dim") {
      // --input q=file: the value itself contains '='.
      std::string v;
      if (arg.size() > flag.size() && arg[flag.size()] == '=')
        v = arg.substr(flag.size() + 1);
      else if (i + 1 < argc)
        v = argv[++i];
      else
        fail("option " + flag + " needs a value NAME=VALUE (see --help)");
      std::string key, val;
      if (!splitPair(v, key, val))
        fail(flag + " expects NAME=VALUE, found '" + v + "'");
      bool repeated = flag == "--input"    ? a.inputs.count(key)
                      : flag == "--output" ? a.outputs.count(key)
                                           : a.dims.count(key);
      if (repeated)
        fail(flag + " " + key + " is given twice");
      if (flag == "--input")
        a.inputs[key] = val;
      else if (flag == "--output")
        a.outputs[key] = val;
      else
        a.dims[key] = parseExtent(val, "--dim " + key, 0,
                                  std::numeric_limits<int64_t>::max());
    } else if (flag == "--inputs") {
      a.inputsDir = value(i);
    } else if (flag == "--save-inputs") {
      a.saveInputs = value(i);
    } else if (flag == "--seed") {
      a.seed = parseInteger(value(i), "--seed", 0,
                            std::numeric_limits<uint64_t>::max());
    } else if (flag == "--check") {
      noValue(arg, flag);
      a.check = true;
    } else if (flag == "--tolerance") {
      std::string v = value(i);
      char *end = nullptr;
      errno = 0;
      a.tolerance = std::strtod(v.c_str(), &end);
      if (!end || *end || std::isspace(static_cast<unsigned char>(v[0])) ||
          !(a.tolerance > 0) || !std::isfinite(a.tolerance))
        fail("--tolerance expects a positive finite number, found '" + v +
             "'");
      a.toleranceGiven = true;
    } else if (flag == "--bench") {
      a.bench = parseExtent(value(i), "--bench", 1, kMaxBench);
    } else if (flag == "--device") {
      a.device = value(i);
      if (a.device != "cpu" && a.device != "cuda")
        fail("--device expects cpu or cuda, found '" + a.device + "'");
    } else if (flag == "--list-devices") {
      noValue(arg, flag);
      std::exit(listCudaDevices());
    } else if (flag == "--threads") {
      a.threads = parseExtent(value(i), "--threads", 0, kMaxThreads);
      a.threadsGiven = true;
    } else if (flag == "--tile-q") {
      a.tileQ = parseExtent(value(i), "--tile-q", 0, kMaxTile);
    } else if (flag == "--tile-k") {
      a.tileK = parseExtent(value(i), "--tile-k", 0, kMaxTile);
    } else if (flag == "--vec") {
      a.vec = parseExtent(value(i), "--vec", 0, kMaxTile);
    } else if (!arg.empty() && arg[0] == '-') {
      fail("unknown option '" + arg + "' (see --help)");
    } else if (a.library.empty()) {
      a.library = arg;
    } else {
      fail("more than one library given: '" + a.library + "' and '" + arg +
           "'");
    }
  }
  if (a.library.empty())
    fail("no kernel library given; usage: fem-run LIBRARY.so|MODEL.mlir "
         "[options] (see --help)");
  // Options that only act with another were ignored without a word:
  // --tolerance without --check compared nothing, and --tile-q/--tile-k/
  // --vec with a compiled library ran the library's own tiles.
  if (a.toleranceGiven && !a.check)
    fail("--tolerance sets the tolerance of --check, which is not given; "
         "add --check (without it nothing is compared)");
  bool mlir = isModelPath(a.library);
  for (auto [flag, value] :
       {std::pair<const char *, int64_t>{"--tile-q", a.tileQ},
        {"--tile-k", a.tileK},
        {"--vec", a.vec}})
    if (seen.count(flag) && !mlir)
      fail(std::string(flag) + " " + std::to_string(value) +
           " chooses tiles when fem-run compiles a .mlir; " + a.library +
           " is compiled already, with the tiles femc chose (its manifest "
           "and header list them): compile the model with femc " +
           flag + "=N, or give fem-run the .mlir");
  return a;
}

void check(femrt_status status, const std::string &what) {
  if (status != FEMRT_OK)
    fail(what + ": " + femrt_last_error());
}

/// The extent names of an argument, one per dimension: its dim_names, or
/// "NAME.d" where the library names fewer extents than the rank.
std::vector<std::string> argDims(const femrt_arg_info &info) {
  std::vector<std::string> out;
  std::stringstream ss(info.dim_names ? info.dim_names : "");
  std::string item;
  while (std::getline(ss, item, ','))
    out.push_back(item);
  out.resize(std::max(info.rank, 0));
  for (int d = 0; d < info.rank; ++d)
    if (out[d].empty())
      out[d] = std::string(info.name) + "." + std::to_string(d);
  return out;
}

/// One kernel argument: its expectation, its data and its tensor.
struct Tensor {
  const femrt_arg_info *info = nullptr;
  std::vector<std::string> dims;
  std::vector<int64_t> shape;
  std::vector<float> f32;
  std::vector<uint8_t> u8;
  /// 16-bit storage: what the kernel reads or writes; f32 then holds the
  /// same values widened (exactly), for the reference and the comparison.
  std::vector<uint16_t> bits16;
  DLTensor dl{};
  bool fromFile = false;
  int64_t numElements = 0;
  uint64_t bytes = 0;
  bool isFloat() const {
    return info->dtype_code == kDLFloat || info->dtype_code == kDLBfloat;
  }
  /// The 16-bit format of a float16 or bfloat16 argument.
  std::optional<femc::lowp::Format> half() const {
    return femc::lowp::formatOfDLType(info->dtype_code, info->dtype_bits);
  }
  /// Rounds f32 to the 16-bit storage (nearest even) and keeps the rounded
  /// values in f32: the kernel and the reference read the same numbers.
  void roundToStorage() {
    if (auto format = half())
      femc::lowp::roundToStorage(f32, bits16, *format);
  }
  /// Widens the 16-bit storage (a kernel's output) into f32.
  void widenFromStorage() {
    if (auto format = half())
      femc::lowp::widenFromStorage(bits16, f32, *format);
  }
  /// Writes the argument as .npy: f32 as '<f4', float16 as '<f2', bfloat16
  /// bits as '<u2', masks as '|b1'.
  bool write(const std::string &path, std::string &error) const {
    if (auto format = half())
      return femc::npy::writeBits16(
          path, *format == femc::lowp::Format::F16 ? "f16" : "u16", shape,
          bits16.data(), error);
    return isFloat() ? femc::npy::writeFloat32(path, shape, f32.data(), error)
                     : femc::npy::writeBool(path, shape, u8.data(), error);
  }
};

/// The NaN and +-Inf elements of `values`.
int64_t countNonFinite(const std::vector<float> &values) {
  int64_t n = 0;
  for (float x : values)
    n += !std::isfinite(x);
  return n;
}

/// The NaN and +-Inf elements of a float .npy array (f16, f32 or f64) in
/// its own format, before any conversion.
int64_t countNonFinite(const femc::npy::Array &array) {
  size_t size = femc::npy::elementSize(array.dtype);
  if (size == 0)
    return 0;
  int64_t n = 0, count = std::min<int64_t>(array.numElements(),
                                           int64_t(array.bytes.size() / size));
  const uint8_t *p = array.bytes.data();
  for (int64_t i = 0; i < count; ++i) {
    if (array.dtype == "f16") {
      uint16_t h;
      std::memcpy(&h, p + 2 * i, 2);
      n += (h & 0x7c00) == 0x7c00;
    } else if (array.dtype == "f32") {
      float f;
      std::memcpy(&f, p + 4 * i, 4);
      n += !std::isfinite(f);
    } else if (array.dtype == "f64") {
      double d;
      std::memcpy(&d, p + 8 * i, 8);
      n += !std::isfinite(d);
    }
  }
  return n;
}

std::string shapeText(const std::vector<int64_t> &shape) {
  return femc::npy::formatShape(shape);
}

using femc::tune::checkedMul;
using femc::tune::physicalMemory;

/// Asks for transparent huge pages on the 2 MiB-aligned part of [p, p + n)
/// before its first touch, as numpy does for its large arrays: the scan
/// kernels walk rows H*d floats apart in bthd, a new 4 KiB page every few
/// rows of each operand, and on 4 KiB pages the TLB misses dominate at
/// long T (docs/benchmarks.md, "Scan priors"). Only advice: where THP is
/// off (or absent) madvise fails or does nothing, and nothing changes.
void adviseHugePages(void *p, size_t n) {
  constexpr uintptr_t kHuge = uintptr_t(2) << 20;
  uintptr_t begin = (reinterpret_cast<uintptr_t>(p) + kHuge - 1) & ~(kHuge - 1);
  uintptr_t end = (reinterpret_cast<uintptr_t>(p) + n) & ~(kHuge - 1);
  if (end > begin)
    (void)madvise(reinterpret_cast<void *>(begin), end - begin,
                  MADV_HUGEPAGE);
}

/// Allocates `n` elements of `value` in `out`, or fails naming the argument.
/// Large buffers get huge pages where the host allows them.
template <typename T>
void allocate(std::vector<T> &out, const Tensor &t, T value) {
  try {
    size_t n = static_cast<size_t>(t.numElements);
    if (out.capacity() < n) {
      std::vector<T>().swap(out);
      out.reserve(n); // untouched pages: the advice applies to all of them
      adviseHugePages(out.data(), n * sizeof(T));
    }
    out.assign(n, value);
  } catch (const std::exception &e) {
    fail("cannot allocate " + std::to_string(t.bytes) + " bytes for argument '" +
         t.info->name + "' of shape " + shapeText(t.shape) +
         ": out of memory (" + e.what() + ")");
  }
}

/// Compares the kernel's output with the reference's, honestly about NaN and
/// Inf: a non-finite value must be the same (NaN, +Inf or -Inf) in both;
/// the relative error is taken over the elements where both are finite
/// (femc::ref::compare). `what` names a part of a carried state ("" for
/// the output).
int printComparison(const femc::ref::Comparison &c, const float *out,
                    const double *ref, double tolerance,
                    const std::string &what = "") {
  bool withinTolerance = c.relative() <= tolerance;
  bool ok = c.pass(tolerance);
  std::string extra;
  if (c.nonFiniteSame)
    extra += ", " + std::to_string(c.nonFiniteSame) +
             " NaN/Inf elements agree";
  if (c.nonFiniteMismatch)
    extra +=
        ", " + std::to_string(c.nonFiniteMismatch) + " NaN/Inf mismatches";
  std::string label = what.empty() ? "check: " : "check: " + what + ": ";
  char floor[64] = "";
  if (c.scaleFloor > c.maxRef)
    std::snprintf(floor, sizeof floor, " (under the scale floor %.3g)",
                  c.scaleFloor);
  std::printf("%smax |out - ref| = %.3g, max |ref| = %.3g%s, relative "
              "%.3g (tolerance %.3g)%s: %s\n",
              label.c_str(), c.maxErr, c.maxRef, floor, c.relative(), tolerance,
              extra.c_str(), ok ? "PASS" : "FAIL");
  if (!withinTolerance && c.worst >= 0)
    std::printf("%sworst element #%lld: out %.9g, reference %.9g\n",
                label.c_str(), static_cast<long long>(c.worst), out[c.worst],
                ref[c.worst]);
  if (c.firstMismatch >= 0)
    std::printf("%sfirst NaN/Inf mismatch #%lld: out %.9g, reference "
                "%.9g\n",
                label.c_str(), static_cast<long long>(c.firstMismatch),
                out[c.firstMismatch], ref[c.firstMismatch]);
  return ok ? 0 : 3;
}

/// Compares a kernel's output with the reference. An f16 output stores a
/// finite result at or beyond 65520 (which rounds past 65504) as +-Inf
/// (docs/semantics.md, "Low-precision storage"); the reference value is
/// rounded the same way first, so such an element agrees.
int compareWithReference(const std::vector<float> &out, std::vector<double> ref,
                         double tolerance, bool f16 = false,
                         double scaleFloor = 0) {
  if (f16)
    for (double &r : ref)
      if (std::isfinite(r) && std::fabs(r) >= 65520.0)
        r = std::copysign(HUGE_VAL, r);
  femc::ref::Comparison c = femc::ref::compare(
      out.data(), ref.data(), static_cast<int64_t>(out.size()));
  c.scaleFloor = scaleFloor;
  return printComparison(c, out.data(), ref.data(), tolerance);
}

/// Compares a kernel's state_out with the reference's state after the
/// segment, field by field (femc::ref::compareState).
int compareStateWithReference(const femc::ref::Problem &problem,
                              const std::vector<float> &stateOut,
                              const std::vector<double> &ref,
                              double tolerance) {
  std::vector<femc::ref::StateField> fields = femc::ref::stateFields(problem);
  std::vector<femc::ref::Comparison> all =
      femc::ref::compareState(problem, stateOut.data(), ref);
  int code = 0;
  for (size_t i = 0; i < fields.size(); ++i)
    code = std::max(code, printComparison(all[i], stateOut.data(), ref.data(),
                                          tolerance,
                                          "state_out " + fields[i].name));
  return code;
}

//===----------------------------------------------------------------------===//
// --device cuda
//===----------------------------------------------------------------------===//

/// Exit status when no CUDA device is there (a skip for the GPU tests).
constexpr int kNoCudaDevice = 4;

[[noreturn]] void failNoCudaDevice() {
  std::fflush(stdout);
  std::fprintf(stderr, "fem-run: no CUDA device: %s\n", femrt_last_error());
  std::exit(kNoCudaDevice);
}

/// --list-devices: one line per CUDA device; kNoCudaDevice when none.
int listCudaDevices() {
  int32_t count = 0;
  if (femrt_cuda_device_count(&count) != FEMRT_OK)
    failNoCudaDevice();
  femrt_context *ctx = nullptr;
  check(femrt_context_create(nullptr, &ctx), "creating the runtime");
  for (int32_t i = 0; i < count; ++i) {
    femrt_device *device = nullptr;
    const char *name = nullptr;
    int32_t major = 0, minor = 0;
    if (femrt_device_open_cuda(ctx, i, &device) != FEMRT_OK ||
        femrt_device_get_name(device, &name) != FEMRT_OK ||
        femrt_cuda_device_compute_capability(device, &major, &minor) !=
            FEMRT_OK)
      fail("CUDA device " + std::to_string(i) + ": " + femrt_last_error());
    std::printf("cuda:%d %s (compute capability %d.%d, femc --target=sm_%d%d)\n",
                i, name, major, minor, major, minor);
    femrt_device_destroy(device);
  }
  femrt_context_destroy(ctx);
  if (count == 0) {
    std::fprintf(stderr, "fem-run: no CUDA device: the driver reports 0 "
                         "devices\n");
    return kNoCudaDevice;
  }
  return 0;
}

/// A kernel run with --device cuda: the device, the library's launch entry
/// (femc_cuda_launch of a femc --target=sm_XX library, target/nvidia/
/// CudaGlue.cpp) and the device copies of the arguments.
struct CudaRun {
  using LaunchFn = int (*)(int32_t, femrt_device *, void *, void *const *,
                           char *, size_t);
  femrt_device *device = nullptr;
  void *library = nullptr;
  LaunchFn launch = nullptr;
  int32_t kernelIndex = 0;
  std::string name;
  std::vector<femrt_memref> memrefs;
  std::vector<void *> buffers, args;
};

/// Finds the launch entry of `path` (a library femrt already loaded as
/// `module`) and the index of `kernel`, then opens CUDA device 0; exits
/// with kNoCudaDevice when there is none.
CudaRun openCudaRun(femrt_context *ctx, femrt_module *module,
                    femrt_kernel *kernel, const std::string &path) {
  CudaRun run;
  run.library = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (run.library)
    run.launch = reinterpret_cast<CudaRun::LaunchFn>(
        dlsym(run.library, "femc_cuda_launch"));
  if (!run.launch) {
    const char *target = nullptr;
    femrt_module_get_info(module, nullptr, &target);
    fail("--device cuda: " + path + " was compiled for " +
         (target ? target : "?") +
         ", not for a CUDA device (it has no femc_cuda_launch); compile the "
         "model with femc --target=sm_90 (or sm_80)");
  }
  int32_t n = 0;
  check(femrt_module_num_kernels(module, &n), "listing kernels");
  for (int32_t i = 0; i < n; ++i) {
    femrt_kernel *k = nullptr;
    check(femrt_module_get_kernel_by_index(module, i, &k), "kernel index");
    if (k == kernel)
      run.kernelIndex = i;
  }
  if (femrt_device_open_cuda(ctx, 0, &run.device) != FEMRT_OK)
    failNoCudaDevice();
  const char *name = nullptr;
  int32_t major = 0, minor = 0;
  check(femrt_device_get_name(run.device, &name), "CUDA device name");
  check(femrt_cuda_device_compute_capability(run.device, &major, &minor),
        "CUDA compute capability");
  run.name = "cuda:0 " + std::string(name ? name : "?") + " (sm_" +
             std::to_string(major) + std::to_string(minor) + ")";
  return run;
}

/// Copies every argument (the inputs, and the outputs' NaN fill, so that an
/// element the kernel leaves unwritten shows) to device memory and describes
/// it as a femrt_memref with a device address.
template <typename TensorT>
void uploadCuda(CudaRun &run, std::vector<TensorT> &tensors) {
  run.memrefs.assign(tensors.size(), femrt_memref{});
  for (size_t i = 0; i < tensors.size(); ++i) {
    TensorT &t = tensors[i];
    void *p = nullptr;
    if (t.bytes) {
      check(femrt_cuda_malloc(run.device, t.bytes, &p),
            "--device cuda: allocating " + std::to_string(t.bytes) +
                " bytes for argument '" + t.info->name + "'");
      check(femrt_cuda_memcpy_htod(run.device, p, t.dl.data, t.bytes),
            "--device cuda: copying argument '" + std::string(t.info->name) +
                "' to the device");
    }
    run.buffers.push_back(p);
    femrt_memref &m = run.memrefs[i];
    m.allocated = m.aligned = p;
    m.offset = 0;
    int64_t stride = 1;
    for (int d = t.info->rank - 1; d >= 0; --d) {
      m.dims[d] = t.shape[d];
      m.dims[t.info->rank + d] = stride;
      stride *= t.shape[d];
    }
  }
  for (femrt_memref &m : run.memrefs)
    run.args.push_back(&m);
}

/// One launch on the default stream, waited for (a kernel fault is
/// reported here).
void launchCuda(CudaRun &run, const std::string &kernelName,
                bool wait = true) {
  char err[1024] = "";
  if (run.launch(run.kernelIndex, run.device, nullptr, run.args.data(), err,
                 sizeof err))
    fail("launch: kernel '" + kernelName + "': " + err);
  if (wait)
    check(femrt_cuda_synchronize(run.device, nullptr),
          "launch: kernel '" + kernelName + "' on the device");
}

/// Copies the outputs back into their host buffers.
template <typename TensorT>
void downloadCuda(CudaRun &run, std::vector<TensorT> &tensors) {
  for (size_t i = 0; i < tensors.size(); ++i) {
    TensorT &t = tensors[i];
    if (t.info->role == FEMRT_ARG_OUTPUT && t.bytes)
      check(femrt_cuda_memcpy_dtoh(run.device, t.dl.data, run.buffers[i],
                                   t.bytes),
            "--device cuda: copying output '" + std::string(t.info->name) +
                "' back");
  }
}

/// An imported layer's configuration (docs/layers.md): the "layer" entry of
/// kernel `kernel` in the manifest NAME.json that femc wrote next to
/// NAME.so. std::nullopt with `why` set when there is none; a manifest that
/// cannot be read or a configuration that is not valid is an error.
/// "a number", "an object", ...: what a JSON value is, for messages.
std::string jsonKind(const femc::tune::Json &value) {
  if (value.isObject())
    return "an object";
  if (value.isArray())
    return "an array";
  if (value.isString())
    return "a string";
  if (value.isNumber())
    return "a number";
  if (value.isBool())
    return "a bool";
  return "null";
}

/// The manifest's shape as femc writes it: an object whose "kernels" is an
/// array of objects, each with a "name" string, no name twice. A manifest
/// edited into another shape used to be ignored without a word (its
/// threads and layer configuration then silently absent).
void checkManifestKernels(const femc::tune::Json &json,
                          const std::string &manifest) {
  const femc::tune::Json *kernels =
      json.isObject() ? json.get("kernels") : nullptr;
  if (!json.isObject() || !kernels || !kernels->isArray())
    fail("manifest " + manifest + ": expected an object whose \"kernels\" " +
         "is an array of kernel entries (as femc writes it), found " +
         (!json.isObject() ? jsonKind(json)
          : kernels        ? "\"kernels\" holding " + jsonKind(*kernels)
                           : std::string("no \"kernels\"")));
  std::set<std::string> names;
  for (size_t i = 0; i < kernels->array.size(); ++i) {
    const femc::tune::Json &entry = kernels->array[i];
    std::optional<std::string> name =
        entry.isObject() ? entry.getString("name") : std::nullopt;
    if (!name)
      fail("manifest " + manifest + ": kernel entry #" + std::to_string(i) +
           " must be an object with a \"name\" string, found " +
           (entry.isObject() ? "an object without one" : jsonKind(entry)));
    if (!names.insert(*name).second)
      fail("manifest " + manifest + ": kernel '" + *name +
           "' has two entries; femc writes one per kernel");
  }
}

/// Why an output file `path` cannot be written (a folder, or its folder
/// missing or read-only), or "" when it can (or is an existing device or
/// FIFO, written in place).
std::string folderRefusal(const std::string &path) {
  return femc::tools::outputFileRefusal(path);
}

/// The manifest NAME.json of library NAME.so (of anything else: + ".json").
std::string manifestOf(const std::string &library) {
  std::string manifest = library;
  if (manifest.size() > 3 &&
      manifest.compare(manifest.size() - 3, 3, ".so") == 0)
    manifest.resize(manifest.size() - 3);
  return manifest + ".json";
}

/// Reads the manifest NAME.json next to `library` (NAME.so) into `json`;
/// false when there is none (`manifest` names it either way). A manifest
/// that cannot be read is an error.
bool readManifest(const std::string &library, femc::tune::Json &json,
                  std::string &manifest) {
  manifest = manifestOf(library);
  std::error_code ec;
  if (!std::filesystem::is_regular_file(manifest, ec))
    return false;
  std::ifstream in(manifest);
  std::stringstream text;
  text << in.rdbuf();
  std::string error;
  if (!in || !femc::tune::parseJson(text.str(), json, error))
    fail("manifest " + manifest + ": " + (error.empty() ? "cannot read" : error));
  checkManifestKernels(json, manifest);
  return true;
}

/// The pool threads fem-tune recorded for kernel `kernel` (the "threads" of
/// its manifest entry, written by femc --tuning-db); 0 when there are none.
/// A "threads" that is not an integer from 1 to kMaxThreads is refused like
/// the manifest's other malformed fields (it was ignored or clamped).
int64_t manifestThreads(const std::string &library, const std::string &kernel) {
  femc::tune::Json json;
  std::string manifest;
  if (!readManifest(library, json, manifest))
    return 0;
  if (const femc::tune::Json *kernels = json.get("kernels");
      kernels && kernels->isArray())
    for (const femc::tune::Json &entry : kernels->array) {
      if (entry.getString("name") != kernel)
        continue;
      const femc::tune::Json *threads = entry.get("threads");
      if (!threads)
        return 0;
      std::optional<int64_t> n = entry.getInteger("threads");
      std::string shown = femc::tune::writeJson(*threads);
      shown.pop_back(); // writeJson ends the text with a newline
      if (!n || *n < 1 || *n > kMaxThreads)
        fail("manifest " + manifest + ": the \"threads\" of kernel '" +
             kernel + "' is " + shown +
             "; expected an integer from 1 to " +
             std::to_string(kMaxThreads) +
             " (the pool threads fem-tune recorded; --threads overrides it)");
      return *n;
    }
  return 0;
}

std::optional<femc::ref::LayerConfig>
manifestLayerConfig(const std::string &library, const std::string &kernel,
                    std::string &why) {
  femc::tune::Json json;
  std::string manifest, error;
  if (!readManifest(library, json, manifest)) {
    why = "has no manifest " + manifest + " next to its library";
    return std::nullopt;
  }
  const femc::tune::Json *kernels = json.get("kernels");
  if (kernels && kernels->isArray())
    for (const femc::tune::Json &entry : kernels->array) {
      if (entry.getString("name") != kernel)
        continue;
      const femc::tune::Json *layer = entry.get("layer");
      if (!layer) {
        why = "has no fem.layer configuration (no \"layer\" in its entry of " +
              manifest + ")";
        return std::nullopt;
      }
      auto config = femc::ref::layerConfigFromJson(
          *layer, femc::ref::ConfigForm::Resolved, error);
      if (!config)
        fail("manifest " + manifest + ": the \"layer\" of kernel '" + kernel +
             "': " + error);
      return config;
    }
  why = "is not listed in the manifest " + manifest;
  return std::nullopt;
}

int runFemRun(int argc, char **argv);

int runFemRun(int argc, char **argv) {
  Args args = parseArgs(argc, argv);

  std::string libraryPath = args.library;
  std::string tempDir;
  if (isModelPath(libraryPath)) {
#ifdef FEMC_HAVE_COMPILER
    // Removed at exit and when fem-run is killed (TempDir.h).
    std::string why;
    if (!femc::tools::makeTempDir("fem-run", tempDir, why))
      fail(why + " (to compile " + libraryPath + ")");
    femc::driver::CompileOptions options;
    options.input = libraryPath;
    options.outDir = tempDir;
    if (args.device == "cuda")
      options.target = "cuda";
    options.tileQ = args.tileQ;
    options.tileK = args.tileK;
    options.vec = args.vec;
    femc::driver::CompileResult result;
    std::fprintf(stderr, "fem-run: compiling %s\n", libraryPath.c_str());
    if (!femc::driver::compile(options, result))
      fail("compiling " + libraryPath + " failed (diagnostics above)");
    libraryPath = result.library;
#else
    fail("this fem-run was built without the compiler; compile " +
         libraryPath + " with femc first and pass the .so");
#endif
  } else if (libraryPath.find('/') == std::string::npos) {
    // dlopen searches LD_LIBRARY_PATH and the system for a bare name; the
    // user means the file in the current directory.
    libraryPath = "./" + libraryPath;
  }

  femrt_context_options ctxOptions;
  femrt_context_options_init(&ctxOptions);
  ctxOptions.num_threads = static_cast<int32_t>(args.threads);
  femrt_context *ctx = nullptr;
  check(femrt_context_create(&ctxOptions, &ctx), "creating the runtime");
  femrt_module *module = nullptr;
  check(femrt_module_load_library(ctx, libraryPath.c_str(), &module),
        "loading " + libraryPath);
  femrt_kernel *kernel = nullptr;
  if (args.kernel.empty()) {
    // The default: the library's only kernel, or its only layer (a layer's
    // library also holds the layer's FEM read kernels, which are not layers).
    int32_t n = 0;
    check(femrt_module_num_kernels(module, &n), "listing kernels");
    std::string names;
    std::vector<femrt_kernel *> layers;
    for (int32_t i = 0; i < n; ++i) {
      femrt_kernel *k = nullptr;
      const char *name = nullptr;
      const femrt_kernel_traits *kTraits = nullptr;
      bool isLayer = false;
      if (femrt_module_get_kernel_by_index(module, i, &k) == FEMRT_OK) {
        if (femrt_kernel_get_name(k, &name) != FEMRT_OK)
          name = nullptr;
        isLayer = femrt_kernel_get_traits(k, &kTraits) == FEMRT_OK &&
                  kTraits && (kTraits->flags & FEMRT_KERNEL_LAYER);
      }
      if (isLayer)
        layers.push_back(k);
      names += std::string(i ? ", " : "") + (name ? name : "?") +
               (isLayer ? " (layer)" : "");
    }
    if (n == 1)
      check(femrt_module_get_kernel_by_index(module, 0, &kernel), "kernel 0");
    else if (layers.size() == 1)
      kernel = layers.front();
    else
      fail("the library has " + std::to_string(n) + " kernels and " +
           (layers.empty() ? std::string("no layer")
                           : std::to_string(layers.size()) + " layers") +
           "; choose one with --kernel (" + names + ")");
  } else {
    check(femrt_module_get_kernel(module, args.kernel.c_str(), &kernel),
          "kernel '" + args.kernel + "'");
  }
  const char *kernelNameText = nullptr, *descriptionText = nullptr;
  check(femrt_kernel_get_name(kernel, &kernelNameText), "kernel name");
  check(femrt_kernel_get_description(kernel, &descriptionText),
        "kernel description");
  std::string kernelName = kernelNameText ? kernelNameText : "";
  // The description is printed for humans; what the kernel is comes from its
  // structured traits (kernel ABI version 2).
  std::string descriptionString = descriptionText ? descriptionText : "";
  const femrt_kernel_traits *traits = nullptr;
  check(femrt_kernel_get_traits(kernel, &traits), "kernel traits");
  bool causal = traits && (traits->flags & FEMRT_KERNEL_CAUSAL);
  bool layer = traits && (traits->flags & FEMRT_KERNEL_LAYER);
  std::string layerConfigWhy;
  std::optional<femc::ref::LayerConfig> layerConfig;
  if (layer)
    layerConfig = manifestLayerConfig(libraryPath, kernelName, layerConfigWhy);
  // The pool threads fem-tune recorded for the kernel (docs/tuning.md),
  // unless --threads says otherwise.
  if (!args.threadsGiven && args.device != "cuda")
    if (int64_t tuned = manifestThreads(libraryPath, kernelName); tuned > 0)
      check(femrt_context_set_num_threads(ctx, static_cast<int32_t>(tuned)),
            "setting the kernel's tuned threads (" + std::to_string(tuned) +
                ", from its manifest)");
  int32_t numArgs = 0;
  check(femrt_kernel_num_args(kernel, &numArgs), "kernel arguments");
  // --device cuda: the library's launch entry and the device, before any
  // input is made (no device: exit status 4 at once).
  CudaRun gpu;
  if (args.device == "cuda")
    gpu = openCudaRun(ctx, module, kernel, libraryPath);

  std::vector<Tensor> tensors(numArgs);
  std::map<std::string, int> byName;
  // The extents the kernel's arguments name, in order of first appearance.
  std::vector<std::string> known;
  for (int32_t i = 0; i < numArgs; ++i) {
    Tensor &t = tensors[i];
    check(femrt_kernel_get_arg_info(kernel, i, &t.info), "argument");
    byName[t.info->name] = i;
    t.dims = argDims(*t.info);
    for (const std::string &d : t.dims)
      if (std::find(known.begin(), known.end(), d) == known.end())
        known.push_back(d);
    bool isF32 = t.info->dtype_code == kDLFloat && t.info->dtype_bits == 32;
    bool isHalf = (t.info->dtype_code == kDLFloat ||
                   t.info->dtype_code == kDLBfloat) &&
                  t.info->dtype_bits == 16;
    bool isByte = t.info->dtype_code != kDLFloat && t.info->dtype_bits == 8;
    if (!isF32 && !isHalf && !isByte)
      fail("argument '" + std::string(t.info->name) + "' of kernel '" +
           kernelName + "' has dtype code " +
           std::to_string(t.info->dtype_code) + " with " +
           std::to_string(t.info->dtype_bits) +
           " bits; fem-run handles float32, float16, bfloat16 and 8-bit "
           "mask arguments only");
  }
  auto listOf = [&](int role) {
    std::string names;
    for (auto &t : tensors)
      if (t.info->role == role)
        names += std::string(names.empty() ? "" : ", ") + t.info->name;
    return names;
  };
  if (!args.inputsDir.empty()) {
    std::error_code ec;
    if (!std::filesystem::is_directory(args.inputsDir, ec))
      fail("--inputs " + args.inputsDir + ": not a directory");
    int found = 0;
    std::set<std::string> matched; // file names an input reads
    std::string missing;           // inputs with no file there (generated)
    for (auto &t : tensors) {
      // An output's file (out.npy from --output) is no stray either.
      std::string path = inputFile(args.inputsDir, t.info->name);
      matched.insert(std::filesystem::path(path).filename().string());
      if (t.info->role != FEMRT_ARG_INPUT)
        continue;
      if (!std::filesystem::exists(path, ec)) {
        if (!args.inputs.count(t.info->name))
          missing += (missing.empty() ? "" : ", ") + std::string(t.info->name);
        continue;
      }
      ++found;
      args.inputs.emplace(t.info->name, path); // an --input wins
    }
    if (!found)
      fail("--inputs " + args.inputsDir + ": no NAME.npy there for any input "
           "of kernel '" + kernelName + "' (inputs: " +
           listOf(FEMRT_ARG_INPUT) + ")");
    // An input generated next to a .npy file no input reads is most likely
    // a misspelt file (Q.npy, q.npy.npy, W_q_weight.npy): said, where the
    // run went on without a word with q generated.
    if (!missing.empty()) {
      std::vector<std::string> stray;
      for (auto it = std::filesystem::directory_iterator(args.inputsDir, ec);
           !ec && it != std::filesystem::directory_iterator();
           it.increment(ec)) {
        std::string file = it->path().filename().string();
        if (file.size() > 4 && file.compare(file.size() - 4, 4, ".npy") == 0 &&
            !matched.count(file))
          stray.push_back(file);
      }
      std::sort(stray.begin(), stray.end());
      if (!stray.empty()) {
        std::string list;
        for (size_t i = 0; i < stray.size() && i < 8; ++i)
          list += (i ? ", " : "") + stray[i];
        if (stray.size() > 8)
          list += ", ... (" + std::to_string(stray.size()) + " files)";
        std::fprintf(
            stderr,
            "fem-run: warning: --inputs %s: %s %s no input of kernel "
            "'%s', whose input%s %s %s generated (is a file "
            "misnamed? inputs: %s)\n",
            args.inputsDir.c_str(), list.c_str(),
            stray.size() == 1 ? "matches" : "match", kernelName.c_str(),
            missing.find(',') == std::string::npos ? "" : "s", missing.c_str(),
            missing.find(',') == std::string::npos ? "is" : "are",
            listOf(FEMRT_ARG_INPUT).c_str());
      }
    }
  }
  for (auto &[name, file] : args.inputs) {
    auto it = byName.find(name);
    if (it == byName.end() ||
        tensors[it->second].info->role != FEMRT_ARG_INPUT)
      fail("--input " + name + ": kernel '" + kernelName +
           "' has no input called '" + name + "' (inputs: " +
           listOf(FEMRT_ARG_INPUT) + ")");
  }
  for (auto &[name, file] : args.outputs) {
    auto it = byName.find(name);
    if (it == byName.end() ||
        tensors[it->second].info->role != FEMRT_ARG_OUTPUT)
      fail("--output " + name + ": kernel '" + kernelName +
           "' has no output called '" + name + "' (outputs: " +
           listOf(FEMRT_ARG_OUTPUT) + ")");
    // An output never replaces an input file (e.g. --output state_out= the
    // file of --input state): the input would be lost.
    for (auto &[input, path] : args.inputs) {
      std::error_code ec;
      if (std::filesystem::equivalent(file, path, ec))
        fail("--output " + name + "=" + file + " names the file of input '" +
             input + "' (" + path + "); fem-run does not overwrite its "
             "inputs, write the output to another file");
    }
    // Nor the library (or model) it runs, nor the library's manifest.
    std::string manifest = manifestOf(args.library);
    for (const std::string &own : {args.library, manifest})
      if (sameFile(file, own))
        fail("--output " + name + "=" + file + " names the " +
             (own == args.library ? (tempDir.empty() ? "library" : "model")
                                  : "manifest") +
             " fem-run reads (" + own + "); write the output to another "
             "file");
    // Nor another output's file, nor a file --save-inputs writes: one of
    // the two would be lost.
    for (auto &[other, path] : args.outputs)
      if (other < name && sameFile(file, path))
        fail("--output " + name + "=" + file + " and --output " + other +
             "=" + path + " name the same file; write each output to its "
             "own file");
    if (!args.saveInputs.empty())
      for (auto &t : tensors)
        if (t.info->role == FEMRT_ARG_INPUT &&
            sameFile(file, inputFile(args.saveInputs, t.info->name)))
          fail("--output " + name + "=" + file + " names the file "
               "--save-inputs writes for input '" + t.info->name + "' (" +
               inputFile(args.saveInputs, t.info->name) + "); write the "
               "output to another file");
    // Its folder must take the file (written as F.tmp-PID-N and renamed): a
    // missing or read-only folder failed only after the kernel had run.
    if (std::string why = folderRefusal(file); !why.empty())
      fail("--output " + name + "=" + file + ": " + why +
           " (checked before the kernel runs)");
  }
  // --save-inputs writes NAME.npy with '/' as '_' (what --inputs reads):
  // two names must not share one file.
  if (!args.saveInputs.empty()) {
    std::map<std::string, std::string> savedAs;
    for (auto &t : tensors) {
      if (t.info->role != FEMRT_ARG_INPUT)
        continue;
      std::string path = inputFile(args.saveInputs, t.info->name);
      auto [it, fresh] = savedAs.emplace(path, t.info->name);
      if (!fresh)
        fail("--save-inputs: inputs '" + it->second + "' and '" +
             t.info->name + "' would both be saved as " + path + " ('/' is "
             "written as '_', as --inputs reads them); rename one of the two "
             "(its fem.name)");
    }
  }
  std::string knownText;
  for (const std::string &d : known)
    knownText += (knownText.empty() ? "" : ", ") + d;
  for (auto &[sym, value] : args.dims) {
    if (std::find(known.begin(), known.end(), sym) != known.end())
      continue;
    std::string hint;
    if (sym == "S" && causal)
      hint = "; the kernel is causal, so its keys have the length T";
    fail("--dim " + sym + ": kernel '" + kernelName +
         "' has no extent called '" + sym + "' (its arguments name: " +
         knownText + ")" + hint);
  }

  // Extents: --dim, the kernel's static shapes and the given inputs. A
  // conflict is an error.
  std::map<std::string, std::pair<int64_t, std::string>> dims;
  auto bind = [&](const std::string &sym, int64_t value, const std::string &from) {
    auto it = dims.find(sym);
    if (it == dims.end()) {
      dims[sym] = {value, from};
    } else if (it->second.first != value) {
      fail(from + " has " + sym + " = " + std::to_string(value) + " but " +
           it->second.second + " has " + sym + " = " +
           std::to_string(it->second.first));
    }
  };
  for (auto &[sym, value] : args.dims)
    bind(sym, value, "--dim");
  for (auto &t : tensors)
    for (int d = 0; d < t.info->rank; ++d)
      if (t.info->shape[d] >= 0)
        bind(t.dims[d], t.info->shape[d],
             std::string("the kernel's argument '") + t.info->name + "'");
  for (auto &t : tensors) {
    auto it = args.inputs.find(t.info->name);
    if (it == args.inputs.end())
      continue;
    std::string error;
    auto array = femc::npy::readNpy(it->second, error);
    if (!array)
      fail("input '" + std::string(t.info->name) + "': " + error);
    std::string what = "input '" + std::string(t.info->name) + "' (" + it->second + ")";
    if (static_cast<int>(array->shape.size()) != t.info->rank)
      fail(what + " has rank " + std::to_string(array->shape.size()) + " " +
           shapeText(array->shape) + "; expected rank " +
           std::to_string(t.info->rank) + " (" + t.info->dim_names + ")");
    if (!t.isFloat()) {
      // Any integer mask numpy makes (np.ones((B, T), int) is int64): a
      // nonzero element keeps its key. int64 was refused with "expected
      // bool (or uint8)", which int8 was not either.
      if (array->dtype != "bool" && array->dtype != "u8" &&
          array->dtype != "i8" && array->dtype != "i32" &&
          array->dtype != "i64")
        fail(what + " has dtype " + array->dtype +
             "; a mask is bool, uint8, int8, int32 or int64 (a nonzero "
             "element keeps its key)");
      if (!femc::npy::toBool(*array, t.u8, error))
        fail(what + ": " + error);
    } else if (auto format = t.half()) {
      // 16-bit storage: its own bits ('<f2' float16, '<u2' bfloat16), or
      // any float file rounded to the format.
      bool bf16 = *format == femc::lowp::Format::BF16;
      int64_t nonFiniteInFile = 0;
      if (bf16 && array->dtype == "u16") {
        t.bits16.resize(static_cast<size_t>(array->numElements()));
        std::memcpy(t.bits16.data(), array->bytes.data(),
                    t.bits16.size() * 2);
        t.f32.resize(t.bits16.size());
        t.widenFromStorage();
        nonFiniteInFile = countNonFinite(t.f32);
      } else if (array->dtype == "f16" || array->dtype == "f32" ||
                 array->dtype == "f64") {
        nonFiniteInFile = countNonFinite(*array);
        if (!femc::npy::toFloat32(*array, t.f32, error))
          fail(what + ": " + error);
        t.roundToStorage();
      } else {
        fail(what + " has dtype " + array->dtype + "; the argument is " +
             (bf16 ? "bfloat16: expected u2 (the raw bfloat16 bits, "
                     "x.view(np.uint16)) or a float dtype (f2, f4, f8), "
                     "rounded to nearest even"
                   : "float16: expected f2 (np.float16) or f4/f8, rounded "
                     "to nearest even"));
      }
      // Values beyond the format's range became +-Inf in the rounding
      // (float16 ends at 65504): said, as NaN/Inf in a float32 input are.
      int64_t bad = countNonFinite(t.f32);
      if (bad) {
        std::string overflowed;
        if (bad > nonFiniteInFile)
          overflowed = " (" + std::to_string(bad - nonFiniteInFile) +
                       " of them finite values in the file beyond " +
                       (bf16 ? "bfloat16" : "float16") +
                       "'s range, rounded to Inf)";
        std::fprintf(stderr,
                     "fem-run: warning: input '%s' has %lld NaN/Inf values%s; "
                     "they propagate as in the reference\n",
                     t.info->name, static_cast<long long>(bad),
                     overflowed.c_str());
      }
    } else {
      if (array->dtype != "f32")
        fail(what + " has dtype " + array->dtype +
             "; expected f32 (float32): convert it with .astype(np.float32)");
      if (!femc::npy::toFloat32(*array, t.f32, error))
        fail(what + ": " + error);
      int64_t bad = 0;
      for (float x : t.f32)
        bad += !std::isfinite(x);
      if (bad)
        std::fprintf(stderr,
                     "fem-run: warning: input '%s' has %lld NaN/Inf values; "
                     "they propagate as in the reference\n",
                     t.info->name, static_cast<long long>(bad));
    }
    t.shape = array->shape;
    t.fromFile = true;
    for (int d = 0; d < t.info->rank; ++d)
      bind(t.dims[d], t.shape[d], what);
  }
  // Derived extents, only for extents the kernel names: E = H * dv,
  // H = E / dv, Hkv = H (no grouped heads), S = T (non-causal kernels).
  auto isKnown = [&](const char *sym) {
    return std::find(known.begin(), known.end(), sym) != known.end();
  };
  auto has = [&](const char *sym) { return dims.count(sym) != 0; };
  if (isKnown("E") && !has("E") && has("H") && has("dv")) {
    auto e = checkedMul(dims["H"].first, dims["dv"].first);
    if (!e)
      fail("E = H * dv = " + std::to_string(dims["H"].first) + " * " +
           std::to_string(dims["dv"].first) + " overflows 64 bits");
    dims["E"] = {*e, "H * dv"};
  }
  if (isKnown("H") && !has("H") && has("E") && has("dv") &&
      dims["dv"].first > 0 && dims["E"].first % dims["dv"].first == 0)
    dims["H"] = {dims["E"].first / dims["dv"].first, "E / dv"};
  // E is H * dv (the flat channels): a file that fixes E against H and dv
  // is named here, not as a generated argument at launch.
  if (isKnown("E") && has("E") && has("H") && has("dv")) {
    auto e = checkedMul(dims["H"].first, dims["dv"].first);
    if (!e || *e != dims["E"].first)
      fail(dims["E"].second + " has E = " + std::to_string(dims["E"].first) +
           " but E must be H * dv = " + std::to_string(dims["H"].first) +
           " * " + std::to_string(dims["dv"].first) + " (H from " +
           dims["H"].second + ", dv from " + dims["dv"].second + ")");
  }
  if (isKnown("Hkv") && !has("Hkv") && has("H"))
    dims["Hkv"] = {dims["H"].first, "H (no grouped heads)"};
  if (isKnown("S") && !has("S") && has("T"))
    dims["S"] = {dims["T"].first, "T"};

  // The shapes of the generated inputs and the outputs. Every extent no
  // input fixes is named in one message, with the --dim options to add
  // (example values), so one correction is enough: the message said
  // "give it with --dim T=N" for the first one only.
  std::vector<std::pair<std::string, std::string>> unfixed; // sym, argument
  for (auto &t : tensors) {
    if (t.fromFile)
      continue;
    for (int d = 0; d < t.info->rank; ++d)
      if (!dims.count(t.dims[d]) &&
          std::none_of(unfixed.begin(), unfixed.end(),
                       [&](auto &u) { return u.first == t.dims[d]; }))
        unfixed.push_back({t.dims[d], t.info->name});
  }
  if (!unfixed.empty()) {
    auto unfixedHas = [&](const char *sym) {
      return std::any_of(unfixed.begin(), unfixed.end(),
                         [&](auto &u) { return u.first == sym; });
    };
    // S is T unless given, E is H * dv: the --dim options need not give
    // them when they give T, or H and dv.
    std::vector<std::string> toGive;
    for (auto &[sym, arg] : unfixed)
      if (!(sym == "S" && unfixedHas("T")) &&
          !(sym == "E" && (unfixedHas("H") || unfixedHas("dv"))))
        toGive.push_back(sym);
    auto example = [](const std::string &sym) -> const char * {
      if (sym == "B")
        return "1";
      if (sym == "T" || sym == "S")
        return "1024";
      if (sym == "H" || sym == "Hkv")
        return "8";
      if (sym == "dk" || sym == "dv")
        return "64";
      if (sym == "E" || sym == "D")
        return "512";
      return "16";
    };
    std::string names, options, where;
    bool oneArgument = true;
    for (size_t i = 0; i < unfixed.size(); ++i) {
      names += (i == 0                    ? ""
                : i + 1 == unfixed.size() ? " and "
                                          : ", ") +
               unfixed[i].first;
      oneArgument = oneArgument && unfixed[i].second == unfixed[0].second;
    }
    for (const std::string &sym : toGive)
      options +=
          (options.empty() ? "--dim " : " --dim ") + sym + "=" + example(sym);
    const Tensor *first = nullptr;
    for (auto &t : tensors)
      if (t.info->name == unfixed[0].second)
        first = &t;
    if (oneArgument) {
      where = " of argument '" + unfixed[0].second + "'";
      if (first && first->info->dim_names && *first->info->dim_names)
        where += " (" + std::string(first->info->dim_names) + ")";
    } else {
      // Grouped by argument: "(B and T of argument 'q', S of argument 'k')".
      where = " (";
      for (size_t i = 0; i < unfixed.size();) {
        size_t j = i;
        std::string group;
        while (j < unfixed.size() && unfixed[j].second == unfixed[i].second) {
          group += (j == i ? "" : " and ") + unfixed[j].first;
          ++j;
        }
        where += (i ? ", " : "") + group + " of argument '" +
                 unfixed[i].second + "'";
        i = j;
      }
      where += ")";
    }
    bool many = unfixed.size() > 1;
    // What toGive left out, and why.
    std::string derived =
        std::string(unfixedHas("S") && unfixedHas("T") ? "; S is T unless given"
                                                       : "") +
        (unfixedHas("E") && (unfixedHas("H") || unfixedHas("dv"))
             ? "; E is H * dv unless given"
             : "");
    fail(std::string(many ? "dimensions " : "dimension ") + names + where +
         (many ? " are dynamic and no input fixes them; add their extents"
               : " is dynamic and no input fixes it; add its extent") +
         " to the command line, e.g. " + options + derived);
  }
  for (auto &t : tensors) {
    if (t.fromFile)
      continue;
    t.shape.clear();
    for (int d = 0; d < t.info->rank; ++d)
      t.shape.push_back(dims.at(t.dims[d]).first);
  }
  // Every buffer's size, overflow-checked, against the physical memory,
  // before anything is allocated.
  uint64_t memory = physicalMemory(), total = 0;
  for (auto &t : tensors) {
    std::optional<int64_t> n = 1;
    for (int64_t d : t.shape)
      if (n)
        n = checkedMul(*n, d);
    std::optional<int64_t> bytes =
        n ? checkedMul(*n, t.info->dtype_bits / 8) : std::nullopt;
    std::string what = "argument '" + std::string(t.info->name) +
                       "' with shape " + shapeText(t.shape);
    if (!bytes)
      fail(what + " has more elements than a 64-bit byte count can hold");
    t.numElements = *n;
    t.bytes = static_cast<uint64_t>(*bytes);
    if (memory && t.bytes > memory)
      fail(what + " needs " + std::to_string(t.bytes) +
           " bytes, more than this machine's physical memory (" +
           std::to_string(memory) + " bytes)");
    total += t.bytes; // Each term <= memory: no overflow.
  }
  // --check's reference keeps out, mu and F in double.
  uint64_t referenceBytes = 0;
  if (args.check && byName.count("out")) {
    uint64_t outElements =
        static_cast<uint64_t>(tensors[byName["out"]].numElements);
    referenceBytes = outElements > memory / 24 ? memory + 1 : outElements * 24;
  }
  if (memory && total + referenceBytes > memory)
    fail("the kernel's arguments need " + std::to_string(total) +
         " bytes together" +
         (referenceBytes ? " and the --check reference " +
                               std::to_string(referenceBytes) + " more"
                         : std::string()) +
         ", more than this machine's physical memory (" +
         std::to_string(memory) + " bytes)");

  // Generate the missing inputs; allocate outputs. An imported layer's
  // parameters are drawn as PyTorch initialises them (reference/Layer.h),
  // its attention_mask keeps ~85% of the positions.
  femc::Rng rng(args.seed);
  femc::ref::ParameterMap layerParameters;
  if (layerConfig) {
    std::string error;
    auto sizes = femc::ref::resolve(*layerConfig,
                                    femc::ref::ConfigForm::Resolved, error);
    if (!sizes)
      fail("the layer's configuration: " + error);
    layerParameters =
        femc::ref::generateLayerParameters(*layerConfig, *sizes, rng);
  }
  for (auto &t : tensors) {
    if (t.fromFile)
      continue;
    std::string name = t.info->name;
    if (!t.isFloat()) {
      allocate<uint8_t>(t.u8, t, 0);
      for (auto &m : t.u8)
        m = rng.uniform01() < 0.85 ? 1 : 0;
    } else if (t.info->role == FEMRT_ARG_OUTPUT) {
      allocate(t.f32, t, std::nanf(""));
      if (t.half())
        allocate<uint16_t>(t.bits16, t, 0x7fc0); // NaN in f16 and bf16
    } else {
      allocate(t.f32, t, 0.0f);
      auto parameter = layerParameters.find(name);
      if (parameter != layerParameters.end()) {
        if (parameter->second.data.size() != t.f32.size())
          fail("argument '" + name + "' has shape " + shapeText(t.shape) +
               " but the layer's configuration gives the parameter " +
               std::to_string(parameter->second.data.size()) + " values");
        t.f32 = parameter->second.data;
      } else if (layerConfig && name == "attention_mask") {
        for (float &m : t.f32)
          m = rng.uniform01() < 0.85 ? 1.0f : 0.0f;
      } else {
        femc::ref::generateInput(name, t.f32, rng);
      }
      if (t.half())
        allocate<uint16_t>(t.bits16, t, 0);
      t.roundToStorage();
    }
  }
  for (auto &t : tensors) {
    t.dl.data = t.half()      ? static_cast<void *>(t.bits16.data())
                : t.isFloat() ? static_cast<void *>(t.f32.data())
                              : static_cast<void *>(t.u8.data());
    t.dl.device = {kDLCPU, 0};
    t.dl.ndim = t.info->rank;
    t.dl.dtype = {t.info->dtype_code, t.info->dtype_bits, 1};
    t.dl.shape = t.shape.data();
    t.dl.strides = nullptr;
    t.dl.byte_offset = 0;
  }
  std::vector<const DLTensor *> dl;
  for (auto &t : tensors)
    dl.push_back(&t.dl);

  // --check: everything the reference needs is checked before the kernel
  // runs, so that a problem it cannot take is an error up front, not after
  // a launch.
  namespace ref = femc::ref;
  std::optional<ref::Problem> problem;
  ref::Inputs refInputs;
  int64_t keyLength = 0;
  enum class CheckKind {
    None,
    Layer,
    LayerReference,
    Empty,
    NoKeys,
    Reference
  } checkKind = CheckKind::None;
  if (args.check) {
    auto extent = [&](const char *sym) -> int64_t {
      auto it = dims.find(sym);
      return it == dims.end() ? 0 : it->second.first;
    };
    // Causal kernels have one time axis: their keys have the length T.
    keyLength = isKnown("S") ? extent("S") : extent("T");
    if (layer) {
      checkKind = layerConfig ? CheckKind::LayerReference : CheckKind::Layer;
    } else if (!byName.count("out") ||
               !tensors[byName["out"]].isFloat()) {
      fail("--check: kernel '" + kernelName +
           "' has no float output called 'out' to compare");
    } else if (!femc::ref::traitsPrior(traits)) {
      // The empty and key-less launches below are judged without the
      // reference, but only for a FEM read: a kernel femc did not make (no
      // traits) or that is no read gets the reference's refusal whatever
      // the extents (it got PASS or FAIL at T = 0 before).
      ref::Problem unused;
      fail("--check: kernel '" + kernelName + "' " +
           ref::problemFromTraits(
               traits, "",
               [](const char *) -> std::optional<int64_t> {
                 return std::nullopt;
               },
               false, unused));
    } else if (tensors[byName["out"]].numElements == 0) {
      checkKind = CheckKind::Empty;
    } else if (keyLength == 0) {
      checkKind = CheckKind::NoKeys;
    } else {
      checkKind = CheckKind::Reference;
      ref::Problem p;
      // The problem comes from the kernel's traits, which libfemrt
      // validated when it loaded the library (known prior and layout, finite
      // numbers).
      const femc::priors::PriorInfo *info = femc::ref::traitsPrior(traits);
      std::string why = ref::problemFromTraits(
          traits, info ? info->name : "",
          [&](const char *sym) -> std::optional<int64_t> {
            if (!isKnown(sym))
              return std::nullopt;
            return extent(sym);
          },
          byName.count("state") || byName.count("state_out"), p);
      std::string error;
      if (!why.empty())
        fail("--check: kernel '" + kernelName + "' " + why);
      // Every input the kernel has goes to the reference under its name;
      // validate() then says which one the prior does not read or lacks.
      for (auto &t : tensors) {
        if (t.info->role != FEMRT_ARG_INPUT)
          continue;
        std::string name = t.info->name;
        // A carried state continues the reference from it (the all-zero
        // state: from the start of a sequence).
        if (!ref::bindInput(refInputs, name, t.isFloat(),
                            t.isFloat() ? static_cast<const void *>(t.f32.data())
                                        : t.u8.data()))
          fail("--check: the reference has no input called '" + name +
               "' of this dtype (kernel '" + kernelName + "')");
      }
      if (!ref::validate(p, refInputs, error))
        fail("--check: the reference cannot check this problem: " + error);
      for (auto &t : tensors) {
        auto expected = ref::tensorShape(p, t.info->name);
        if (expected && *expected != t.shape)
          fail("--check: argument '" + std::string(t.info->name) +
               "' has shape " + shapeText(t.shape) +
               " but the reference expects " + shapeText(*expected) +
               " for this problem");
      }
      problem = p;
    }
  }

  if (!args.saveInputs.empty()) {
    for (auto &t : tensors) {
      if (t.info->role != FEMRT_ARG_INPUT)
        continue;
      std::string path = inputFile(args.saveInputs, t.info->name);
      // The file it was read from already holds it (as given: a float
      // file of a bfloat16 argument is not replaced by its rounding).
      auto given = args.inputs.find(t.info->name);
      if (given != args.inputs.end() && sameFile(given->second, path))
        continue;
      std::string error;
      bool ok = t.write(path, error);
      if (!ok)
        fail("--save-inputs: " + error);
    }
  }

  std::printf("kernel %s: %s\n", kernelName.c_str(), descriptionString.c_str());
  for (auto &t : tensors)
    std::printf("  %-9s %s %s\n", t.info->name, shapeText(t.shape).c_str(),
                t.info->role == FEMRT_ARG_OUTPUT
                    ? "output"
                    : (t.fromFile ? "from file" : "generated"));
  int32_t threads = 0;
  check(femrt_context_get_num_threads(ctx, &threads), "threads");

  auto launch = [&] {
    if (gpu.device)
      launchCuda(gpu, kernelName);
    else
      check(femrt_kernel_launch(kernel, dl.data(), numArgs, nullptr),
            "launch");
  };
  if (gpu.device)
    uploadCuda(gpu, tensors);
  launch();
  if (gpu.device)
    downloadCuda(gpu, tensors);

  if (args.bench > 0) {
    std::vector<double> ms;
    for (int64_t i = 0; i < args.bench; ++i) {
      auto t0 = std::chrono::steady_clock::now();
      launch();
      auto t1 = std::chrono::steady_clock::now();
      ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    }
    std::sort(ms.begin(), ms.end());
    double median = ms[ms.size() / 2];
    auto extent = [&](const char *sym) -> double {
      auto it = dims.find(sym);
      return it == dims.end() ? 0.0 : static_cast<double>(it->second.first);
    };
    double B = extent("B"), T = extent("T"),
           S = isKnown("S") ? extent("S") : T, H = extent("H"),
           dk = extent("dk"), dv = extent("dv");
    // The T x S count holds for the reads over query tiles (softmax); the
    // scans (dialect/Priors.h) do O(T) work and get no GFLOP/s figure.
    const femc::priors::PriorInfo *prior = femc::ref::traitsPrior(traits);
    bool quadratic =
        prior && prior->grid == femc::priors::GridKind::QueryTiles;
    double flops = layer || !quadratic
                       ? 0
                       : (2 * T * S * dk + 4 * T * S * dv) * B * H;
    if (causal)
      flops /= 2;
    std::string on = gpu.device ? gpu.name : std::to_string(threads) +
                                                 " threads";
    std::printf("bench: %lld runs on %s: median %.3f ms, min %.3f ms",
                static_cast<long long>(args.bench), on.c_str(), median,
                ms.front());
    if (flops > 0 && median > 0)
      std::printf(", %.1f GFLOP/s at the median", flops / median * 1e-6);
    if (gpu.device) {
      // The same launches queued back to back and waited for once: the
      // device's time per launch without the host's launch latency.
      auto t0 = std::chrono::steady_clock::now();
      for (int64_t i = 0; i < args.bench; ++i)
        launchCuda(gpu, kernelName, /*wait=*/false);
      check(femrt_cuda_synchronize(gpu.device, nullptr),
            "launch: kernel '" + kernelName + "' on the device");
      auto t1 = std::chrono::steady_clock::now();
      double mean =
          std::chrono::duration<double, std::milli>(t1 - t0).count() /
          static_cast<double>(args.bench);
      std::printf("; back to back %.4f ms per launch", mean);
      if (flops > 0 && mean > 0)
        std::printf(", %.2f TFLOP/s", flops / mean * 1e-9);
    }
    std::printf("\n");
    // A layer's intermediates reuse the blocks libfemrt kept from the
    // launch before (docs/runtime.md, "Layer scratch memory").
    uint64_t kept = 0, reused = 0;
    if (layer && !gpu.device &&
        femrt_module_scratch(module, 0, &kept, &reused) == FEMRT_OK)
      std::printf("layer scratch: %.1f MiB kept between launches, %llu "
                  "block requests served from it\n",
                  static_cast<double>(kept) / (1 << 20),
                  static_cast<unsigned long long>(reused));
  }

  for (auto &t : tensors)
    if (t.info->role == FEMRT_ARG_OUTPUT)
      t.widenFromStorage();
  for (auto &[name, file] : args.outputs) {
    Tensor &t = tensors[byName[name]];
    std::string error;
    bool ok = t.write(file, error);
    if (!ok)
      fail("writing output '" + name + "': " + error);
    std::printf("wrote %s to %s\n", name.c_str(), file.c_str());
  }

  int exitCode = 0;
  const std::vector<float> *out =
      byName.count("out") ? &tensors[byName["out"]].f32 : nullptr;
  switch (checkKind) {
  case CheckKind::None:
    break;
  case CheckKind::Layer:
    std::printf("check: fem-run has no reference for whole layers without a "
                "fem.layer configuration: layer '%s' %s. The layer reference "
                "(docs/layers.md) checks layers in the form of the authors' "
                "module. Not checked.\n",
                kernelName.c_str(), layerConfigWhy.c_str());
    break;
  case CheckKind::LayerReference: {
    // x, the optional attention_mask and the parameters by name.
    femc::ref::ParameterMap parameters;
    const Tensor *x = nullptr;
    std::vector<float> mask;
    bool masked = false;
    for (auto &t : tensors) {
      if (t.info->role != FEMRT_ARG_INPUT)
        continue;
      std::string name = t.info->name;
      if (name == "x") {
        x = &t;
      } else if (name == "attention_mask") {
        masked = true;
        if (t.isFloat())
          mask = t.f32;
        else
          mask.assign(t.u8.begin(), t.u8.end());
      } else {
        parameters[name] = {t.shape, t.f32};
      }
    }
    if (!x || x->shape.size() != 3 || !out)
      fail("--check: layer '" + kernelName +
           "' needs an input 'x' (B, T, n_embd) and an output to compare");
    std::string error;
    std::optional<std::vector<double>> y;
    try {
      y = femc::ref::runLayer(*layerConfig, parameters, x->shape[0],
                              x->shape[1], x->f32.data(),
                              masked ? mask.data() : nullptr, error);
    } catch (const std::bad_alloc &) {
      fail("--check: out of memory in the layer reference");
    }
    if (!y)
      fail("--check: the layer reference: " + error);
    std::printf("check: the layer reference (%s prior, docs/layers.md)\n",
                layerConfig->prior_type.c_str());
    // Outputs at float32's underflow (an all-padded layer without biases)
    // are judged on the layer's scale floor (docs/semantics.md).
    exitCode = compareWithReference(
        *out, *y, args.tolerance, false,
        femc::ref::layerScaleFloor(*layerConfig, parameters));
    break;
  }
  case CheckKind::Empty:
    std::printf("check: the output is empty, nothing to compare: PASS\n");
    // A segment without tokens leaves the carried state as it was (the
    // empty state: all zeros).
    if (byName.count("state_out") && tensors[byName["state_out"]].numElements) {
      const std::vector<float> &next = tensors[byName["state_out"]].f32;
      std::vector<double> before(next.size(), 0.0);
      if (byName.count("state"))
        before.assign(tensors[byName["state"]].f32.begin(),
                      tensors[byName["state"]].f32.end());
      femc::ref::Comparison c = femc::ref::compare(
          next.data(), before.data(), static_cast<int64_t>(next.size()));
      exitCode = printComparison(c, next.data(), before.data(), 0.0,
                                 "state_out (no token: the state unchanged)");
    }
    break;
  case CheckKind::NoKeys: {
    // No key at all: every row has no visible key and reads 0.
    bool zero = std::all_of(out->begin(), out->end(),
                            [](float x) { return x == 0.0f; });
    std::printf("check: %s = 0 keys, so every row has no visible key and "
                "must read 0: %s\n",
                isKnown("S") ? "S" : "T", zero ? "PASS" : "FAIL");
    if (!zero)
      exitCode = 3;
    break;
  }
  case CheckKind::Reference: {
    std::string error;
    std::optional<ref::Result> result;
    try {
      result = ref::run(*problem, refInputs, error);
    } catch (const std::bad_alloc &) {
      fail("--check: out of memory in the reference");
    }
    if (!result)
      fail("reference: " + error);
    double tolerance = args.tolerance;
    auto format = tensors[byName["out"]].half();
    if (format && !args.toleranceGiven)
      tolerance = femc::lowp::defaultTolerance(*format);
    // Below a format's smallest normal a result's spacing is fixed whatever
    // max|ref| is, so a few such steps are within tolerance
    // (docs/semantics.md, "Known limit (f16 outputs below f16's normal
    // range)"): f16 one step, 2^-24; bf16 one step, 2^-133 (its 7 bits
    // below 2^-126: a bf16 output of 2e-39 is 4.6e-41 off at best); f32
    // eight steps, 2^-146, as the float32 computation itself forms the
    // subnormal F = tiny/beta and its gated products (v = 0 at beta 1e4:
    // outputs of 3e-42 came 2 to 2.7 steps, 2.8e-45 to 3.8e-45, off the
    // reference; helper C's spec_fuzz seed 8401 --draw zero_v --cref).
    bool f16 = format == femc::lowp::Format::F16;
    int floorExp = f16 ? -24
                   : format == femc::lowp::Format::BF16 ? -133
                                                         : -146;
    exitCode = compareWithReference(*out, result->out, tolerance, f16,
                                    std::ldexp(1.0, floorExp) / tolerance);
    if (byName.count("state_out"))
      exitCode = std::max(
          exitCode,
          compareStateWithReference(*problem, tensors[byName["state_out"]].f32,
                                    result->state, tolerance));
    break;
  }
  }
  if (gpu.device)
    femrt_device_destroy(gpu.device); // frees its allocations
  if (gpu.library)
    dlclose(gpu.library);
  femrt_module_destroy(module);
  femrt_context_destroy(ctx);
  if (!tempDir.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(tempDir, ec);
  }
  return exitCode;
}

} // namespace

int main(int argc, char **argv) {
  // A file size limit (ulimit -f) makes a write fail with EFBIG, reported
  // as a write error, instead of killing fem-run with SIGXFSZ.
  std::signal(SIGXFSZ, SIG_IGN);
  // Every bad input has its own message above; this is the backstop for a
  // bug, so that no exception ends fem-run with std::terminate.
  try {
    return femc::tools::checkStdout("fem-run", runFemRun(argc, argv));
  } catch (const std::exception &e) {
    fail(std::string("internal: ") + e.what());
  } catch (...) {
    fail("internal: an unknown exception");
  }
}
