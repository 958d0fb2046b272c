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
#include "femrt/femrt.h"
#include "reference/Reference.h"
#include "support/Npy.h"
#include "support/Random.h"

#ifdef FEMC_HAVE_COMPILER
#include "tools/femc/Compiler.h"
#endif

#include <algorithm>
#include <filesystem>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <unistd.h>
#include <vector>

namespace {

const char *kUsage = R"(fem-run: run a femc kernel on .npy or generated inputs, check it, time it

usage: fem-run LIBRARY.so|MODEL.mlir [options]

  --kernel NAME          kernel to run (default: the library's only kernel)
  --input NAME=FILE.npy  read argument NAME (q, k, v, beta_raw, lam, gate,
                         mask, ...) from a .npy file; repeatable
  --dim SYM=N            extent of a dynamic dimension (B, T, S, H, Hkv, dk,
                         dv, E) for generated inputs; repeatable
  --seed N               seed for generated inputs (default 0)
  --output NAME=FILE.npy write an output (out) to a .npy file
  --save-inputs DIR      write every input (given or generated) as DIR/NAME.npy
  --check                compare with the double-precision reference
  --tolerance X          relative tolerance of --check, as a fraction of
                         max|reference| (default 1e-4, docs/semantics.md)
  --bench N              time N launches after one warm-up; print median/min
  --threads N            CPU threads (default: all cores)
  --tile-q/--tile-k/--vec N  tile sizes when compiling a .mlir
  -h, --help             this text

Exit status: 0 on success, 1 on an error, 3 when --check fails.
Examples:
  femc examples/softmax_fem.mlir -o out
  fem-run out/softmax_fem.so --dim B=1 --dim T=1024 --check --bench 10
)";

struct Args {
  std::string library, kernel, saveInputs;
  std::map<std::string, std::string> inputs, outputs;
  std::map<std::string, int64_t> dims;
  uint64_t seed = 0;
  bool check = false;
  double tolerance = 1e-4;
  int bench = 0, threads = 0;
  int64_t tileQ = 0, tileK = 0, vec = 0;
};

[[noreturn]] void fail(const std::string &message, int code = 1) {
  std::fprintf(stderr, "fem-run: error: %s\n", message.c_str());
  std::exit(code);
}

bool splitPair(const std::string &text, std::string &key, std::string &value) {
  size_t eq = text.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == text.size())
    return false;
  key = text.substr(0, eq);
  value = text.substr(eq + 1);
  return true;
}

int64_t parseInt(const std::string &text, const std::string &what) {
  char *end = nullptr;
  errno = 0;
  long long v = std::strtoll(text.c_str(), &end, 10);
  if (errno || !end || *end || text.empty())
    fail("invalid number '" + text + "' for " + what);
  return v;
}

Args parseArgs(int argc, char **argv) {
  Args a;
  auto value = [&](int &i) -> std::string {
    std::string flag = argv[i];
    size_t eq = flag.find('=');
    if (flag.rfind("--", 0) == 0 && eq != std::string::npos &&
        flag.find('=') < flag.size())
      return flag.substr(eq + 1);
    if (i + 1 >= argc)
      fail("option " + flag + " needs a value (see --help)");
    return argv[++i];
  };
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::string flag = arg.substr(0, arg.find('='));
    if (arg == "-h" || arg == "--help") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (flag == "--kernel") {
      a.kernel = value(i);
    } else if (flag == "--input" || flag == "--output" || flag == "--dim") {
      // --input q=file: the value itself contains '='.
      std::string v = (arg.size() > flag.size() && arg[flag.size()] == '=')
                          ? arg.substr(flag.size() + 1)
                          : (i + 1 < argc ? argv[++i] : "");
      std::string key, val;
      if (!splitPair(v, key, val))
        fail(flag + " expects NAME=VALUE, found '" + v + "'");
      if (flag == "--input")
        a.inputs[key] = val;
      else if (flag == "--output")
        a.outputs[key] = val;
      else
        a.dims[key] = parseInt(val, "--dim " + key);
    } else if (flag == "--save-inputs") {
      a.saveInputs = value(i);
    } else if (flag == "--seed") {
      a.seed = static_cast<uint64_t>(parseInt(value(i), "--seed"));
    } else if (flag == "--check") {
      a.check = true;
    } else if (flag == "--tolerance") {
      std::string v = value(i);
      char *end = nullptr;
      a.tolerance = std::strtod(v.c_str(), &end);
      if (!end || *end || !(a.tolerance > 0))
        fail("--tolerance expects a positive number, found '" + v + "'");
    } else if (flag == "--bench") {
      a.bench = static_cast<int>(parseInt(value(i), "--bench"));
      if (a.bench < 1)
        fail("--bench expects a count of at least 1");
    } else if (flag == "--threads") {
      a.threads = static_cast<int>(parseInt(value(i), "--threads"));
      if (a.threads < 0)
        fail("--threads expects 0 (all cores) or a positive count");
    } else if (flag == "--tile-q") {
      a.tileQ = parseInt(value(i), "--tile-q");
    } else if (flag == "--tile-k") {
      a.tileK = parseInt(value(i), "--tile-k");
    } else if (flag == "--vec") {
      a.vec = parseInt(value(i), "--vec");
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
    fail("no kernel library given; usage: fem-run LIBRARY.so [options] (see "
         "--help)");
  return a;
}

void check(femrt_status status, const std::string &what) {
  if (status != FEMRT_OK)
    fail(what + ": " + femrt_last_error());
}

std::vector<std::string> splitDims(const char *dims) {
  std::vector<std::string> out;
  std::stringstream ss(dims ? dims : "");
  std::string item;
  while (std::getline(ss, item, ','))
    out.push_back(item);
  return out;
}

/// key=value pairs of a kernel description ("prior=softmax causal=1 ...").
std::map<std::string, std::string> parseDescription(const char *text) {
  std::map<std::string, std::string> out;
  std::stringstream ss(text ? text : "");
  std::string item, key, value;
  while (ss >> item)
    if (splitPair(item, key, value))
      out[key] = value;
  return out;
}

/// One kernel argument: its expectation, its data and its tensor.
struct Tensor {
  const femrt_arg_info *info = nullptr;
  std::vector<int64_t> shape;
  std::vector<float> f32;
  std::vector<uint8_t> u8;
  DLTensor dl{};
  bool fromFile = false;
  int64_t elements() const {
    int64_t n = 1;
    for (int64_t d : shape)
      n *= d;
    return n;
  }
};

std::string shapeText(const std::vector<int64_t> &shape) {
  return femc::npy::formatShape(shape);
}

} // namespace

int main(int argc, char **argv) {
  Args args = parseArgs(argc, argv);

  std::string libraryPath = args.library;
  std::string tempDir;
  if (libraryPath.size() > 5 &&
      libraryPath.compare(libraryPath.size() - 5, 5, ".mlir") == 0) {
#ifdef FEMC_HAVE_COMPILER
    char tmpl[] = "/tmp/fem-run-XXXXXX";
    if (!mkdtemp(tmpl))
      fail("cannot create a temporary folder for compiling " + libraryPath);
    tempDir = tmpl;
    static std::string cleanup;
    cleanup = tempDir;
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(cleanup, ec);
    });
    femc::driver::CompileOptions options;
    options.input = libraryPath;
    options.outDir = tempDir;
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
  }

  femrt_context_options ctxOptions;
  femrt_context_options_init(&ctxOptions);
  ctxOptions.num_threads = args.threads;
  femrt_context *ctx = nullptr;
  check(femrt_context_create(&ctxOptions, &ctx), "creating the runtime");
  femrt_module *module = nullptr;
  check(femrt_module_load_library(ctx, libraryPath.c_str(), &module),
        "loading " + libraryPath);
  femrt_kernel *kernel = nullptr;
  if (args.kernel.empty()) {
    int32_t n = 0;
    check(femrt_module_num_kernels(module, &n), "listing kernels");
    if (n != 1) {
      std::string names;
      for (int32_t i = 0; i < n; ++i) {
        femrt_kernel *k = nullptr;
        const char *name = nullptr;
        femrt_module_get_kernel_by_index(module, i, &k);
        femrt_kernel_get_name(k, &name);
        names += std::string(i ? ", " : "") + name;
      }
      fail("the library has " + std::to_string(n) +
           " kernels; choose one with --kernel (" + names + ")");
    }
    check(femrt_module_get_kernel_by_index(module, 0, &kernel), "kernel 0");
  } else {
    check(femrt_module_get_kernel(module, args.kernel.c_str(), &kernel),
          "kernel '" + args.kernel + "'");
  }
  const char *kernelName = nullptr, *descriptionText = nullptr;
  femrt_kernel_get_name(kernel, &kernelName);
  femrt_kernel_get_description(kernel, &descriptionText);
  auto description = parseDescription(descriptionText);
  int32_t numArgs = 0;
  check(femrt_kernel_num_args(kernel, &numArgs), "kernel arguments");

  std::vector<Tensor> tensors(numArgs);
  std::map<std::string, int> byName;
  for (int32_t i = 0; i < numArgs; ++i) {
    check(femrt_kernel_get_arg_info(kernel, i, &tensors[i].info), "argument");
    byName[tensors[i].info->name] = i;
  }
  for (auto &[name, file] : args.inputs) {
    auto it = byName.find(name);
    if (it == byName.end() || tensors[it->second].info->role != FEMRT_ARG_INPUT) {
      std::string names;
      for (auto &t : tensors)
        if (t.info->role == FEMRT_ARG_INPUT)
          names += std::string(names.empty() ? "" : ", ") + t.info->name;
      fail("--input " + name + ": kernel '" + kernelName +
           "' has no input called '" + name + "' (inputs: " + names + ")");
    }
  }
  for (auto &[name, file] : args.outputs)
    if (!byName.count(name) || tensors[byName[name]].info->role != FEMRT_ARG_OUTPUT)
      fail("--output " + name + ": kernel '" + std::string(kernelName) +
           "' has no output called '" + name + "'");

  // Read the given inputs; they fix dimension symbols.
  std::map<std::string, std::pair<int64_t, std::string>> dims;
  for (auto &[sym, value] : args.dims) {
    if (value < 0)
      fail("--dim " + sym + " must not be negative");
    dims[sym] = {value, "--dim"};
  }
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
  for (auto &t : tensors) {
    auto symbols = splitDims(t.info->dim_names);
    for (int d = 0; d < t.info->rank; ++d)
      if (t.info->shape[d] >= 0)
        bind(symbols[d], t.info->shape[d],
             std::string("the kernel's argument '") + t.info->name + "'");
  }
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
    bool isMask = t.info->dtype_code != 2;
    if (isMask) {
      if (array->dtype != "bool" && array->dtype != "u8" && array->dtype != "i8")
        fail(what + " has dtype " + array->dtype + "; expected bool (or uint8)");
      if (!femc::npy::toBool(*array, t.u8, error))
        fail(what + ": " + error);
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
    auto symbols = splitDims(t.info->dim_names);
    for (int d = 0; d < t.info->rank; ++d)
      bind(symbols[d], t.shape[d], what);
  }
  // Derived extents: S = T for causal kernels is in dim_names already; E = H*dv.
  if (!dims.count("E") && dims.count("H") && dims.count("dv"))
    dims["E"] = {dims["H"].first * dims["dv"].first, "H * dv"};
  if (!dims.count("H") && dims.count("E") && dims.count("dv") && dims["dv"].first)
    dims["H"] = {dims["E"].first / dims["dv"].first, "E / dv"};
  if (!dims.count("Hkv") && dims.count("H"))
    dims["Hkv"] = {dims["H"].first, "H (no grouped heads)"};
  if (!dims.count("S") && dims.count("T"))
    dims["S"] = {dims["T"].first, "T"};

  // Generate the missing inputs; allocate outputs.
  femc::Rng rng(args.seed);
  for (auto &t : tensors) {
    if (t.fromFile)
      continue;
    auto symbols = splitDims(t.info->dim_names);
    t.shape.clear();
    for (int d = 0; d < t.info->rank; ++d) {
      auto it = dims.find(symbols[d]);
      if (it == dims.end())
        fail("dimension " + symbols[d] + " of argument '" + t.info->name +
             "' is dynamic and no input fixes it; give it with --dim " +
             symbols[d] + "=N");
      t.shape.push_back(it->second.first);
    }
    std::string name = t.info->name;
    if (t.info->dtype_code != 2) {
      t.u8.resize(t.elements());
      for (auto &m : t.u8)
        m = rng.uniform01() < 0.85 ? 1 : 0;
    } else {
      t.f32.resize(t.elements());
      if (t.info->role == FEMRT_ARG_OUTPUT)
        std::fill(t.f32.begin(), t.f32.end(), std::nanf(""));
      else if (name == "beta_raw")
        rng.fillUniform(t.f32, -1.0, 2.0);
      else
        rng.fillNormal(t.f32);
    }
  }
  for (auto &t : tensors) {
    t.dl.data = t.info->dtype_code == 2 ? static_cast<void *>(t.f32.data())
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

  if (!args.saveInputs.empty()) {
    for (auto &t : tensors) {
      if (t.info->role != FEMRT_ARG_INPUT)
        continue;
      std::string path = args.saveInputs + "/" + t.info->name + ".npy";
      std::string error;
      bool ok = t.info->dtype_code == 2
                    ? femc::npy::writeFloat32(path, t.shape, t.f32.data(), error)
                    : femc::npy::writeBool(path, t.shape, t.u8.data(), error);
      if (!ok)
        fail("--save-inputs: " + error);
    }
  }

  std::printf("kernel %s: %s\n", kernelName, descriptionText ? descriptionText : "");
  for (auto &t : tensors)
    std::printf("  %-9s %s %s%s\n", t.info->name, shapeText(t.shape).c_str(),
                t.info->role == FEMRT_ARG_OUTPUT ? "output"
                                                 : (t.fromFile ? "from file" : "generated"),
                "");
  int32_t threads = 0;
  femrt_context_get_num_threads(ctx, &threads);

  check(femrt_kernel_launch(kernel, dl.data(), numArgs, nullptr), "launch");

  if (args.bench > 0) {
    std::vector<double> ms;
    for (int i = 0; i < args.bench; ++i) {
      auto t0 = std::chrono::steady_clock::now();
      check(femrt_kernel_launch(kernel, dl.data(), numArgs, nullptr), "launch");
      auto t1 = std::chrono::steady_clock::now();
      ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    }
    std::sort(ms.begin(), ms.end());
    double median = ms[ms.size() / 2];
    double B = dims["B"].first, T = dims["T"].first, S = dims["S"].first,
           H = dims["H"].first, dk = dims["dk"].first, dv = dims["dv"].first;
    double flops = description.count("layer")
                       ? 0
                       : (2 * T * S * dk + 4 * T * S * dv) * B * H;
    if (description["causal"] == "1")
      flops /= 2;
    std::printf("bench: %d runs on %d threads: median %.3f ms, min %.3f ms",
                args.bench, threads, median, ms.front());
    if (flops > 0)
      std::printf(", %.1f GFLOP/s at the median", flops / median * 1e-6);
    std::printf("\n");
  }

  for (auto &[name, file] : args.outputs) {
    Tensor &t = tensors[byName[name]];
    std::string error;
    if (!femc::npy::writeFloat32(file, t.shape, t.f32.data(), error))
      fail("writing output '" + name + "': " + error);
    std::printf("wrote %s to %s\n", name.c_str(), file.c_str());
  }

  int exitCode = 0;
  if (args.check && description.count("layer")) {
    std::printf("check: fem-run has no reference for whole layers (the "
                "projections and RoPE around the FEM read); "
                "test/integration/LayerTest.cpp checks them. Not checked.\n");
    args.check = false;
  }
  if (args.check && byName.count("out")) {
    // Degenerate shapes the reference does not take: no output element, or
    // no key at all (every row then has no visible key and reads 0).
    const std::vector<float> &out = tensors[byName["out"]].f32;
    if (out.empty()) {
      std::printf("check: the output is empty, nothing to compare: PASS\n");
      args.check = false;
    } else if (dims.count("S") && dims["S"].first == 0) {
      bool zero = std::all_of(out.begin(), out.end(),
                              [](float x) { return x == 0.0f; });
      std::printf("check: S = 0 keys, so every row has no visible key and "
                  "must read 0: %s\n", zero ? "PASS" : "FAIL");
      if (!zero)
        exitCode = 3;
      args.check = false;
    }
  }
  if (args.check) {
    namespace ref = femc::ref;
    ref::Problem p;
    auto prior = ref::parsePrior(description["prior"]);
    auto layout = ref::parseLayout(description["layout"]);
    if (!prior || !layout)
      fail("the kernel's description does not name a prior and layout the "
           "reference knows: '" + std::string(descriptionText) + "'");
    p.prior = *prior;
    p.layout = *layout;
    p.causal = description["causal"] == "1";
    p.hasMask = description["mask"] == "1";
    if (description.count("scale"))
      p.scale = std::stod(description["scale"]);
    if (description.count("cap"))
      p.cap = std::stod(description["cap"]);
    if (description.count("eps"))
      p.eps = std::stod(description["eps"]);
    p.B = dims["B"].first;
    p.T = dims["T"].first;
    p.S = dims["S"].first;
    p.H = dims["H"].first;
    p.Hkv = dims["Hkv"].first;
    p.dk = dims["dk"].first;
    p.dv = dims["dv"].first;
    ref::Inputs in;
    auto f = [&](const char *name) -> const float * {
      auto it = byName.find(name);
      return it == byName.end() ? nullptr : tensors[it->second].f32.data();
    };
    in.q = f("q");
    in.k = f("k");
    in.v = f("v");
    in.beta_raw = f("beta_raw");
    in.lam = f("lam");
    in.gate = f("gate");
    if (byName.count("mask"))
      in.mask = tensors[byName["mask"]].u8.data();
    std::string error;
    auto result = ref::run(p, in, error);
    if (!result)
      fail("reference: " + error);
    const std::vector<float> &out = tensors[byName["out"]].f32;
    double maxErr = 0, maxRef = 0;
    int64_t nanMismatch = 0, worst = -1;
    for (size_t i = 0; i < out.size(); ++i) {
      double r = result->out[i], o = out[i];
      if (std::isnan(r) || std::isnan(o)) {
        nanMismatch += std::isnan(r) != std::isnan(o);
        continue;
      }
      maxRef = std::max(maxRef, std::fabs(r));
      double e = std::fabs(o - r);
      if (e > maxErr) {
        maxErr = e;
        worst = static_cast<int64_t>(i);
      }
    }
    double rel = maxRef > 0 ? maxErr / maxRef : maxErr;
    bool ok = rel <= args.tolerance && nanMismatch == 0;
    std::printf("check: max |out - ref| = %.3g, max |ref| = %.3g, relative "
                "%.3g (tolerance %.3g)%s: %s\n",
                maxErr, maxRef, rel, args.tolerance,
                nanMismatch ? (", " + std::to_string(nanMismatch) +
                               " NaN mismatches").c_str()
                            : "",
                ok ? "PASS" : "FAIL");
    if (!ok && worst >= 0)
      std::printf("check: worst element #%lld: out %.9g, reference %.9g\n",
                  static_cast<long long>(worst), out[worst],
                  result->out[worst]);
    if (!ok)
      exitCode = 3;
  }
  femrt_module_destroy(module);
  femrt_context_destroy(ctx);
  if (!tempDir.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(tempDir, ec);
  }
  return exitCode;
}
