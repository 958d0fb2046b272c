//===- femc.cpp - the femc driver ------------------------------------------===//
//
//   femc MODEL.mlir [-o OUTDIR] [--target=T] [--emit=lib|obj|llvm|asm|mlir]
//        [--tile-q/--tile-k/--vec N] [--tuning-db tuning.json
//        [--tuning-dim T=4096 ...]] ... (femc --help; docs/user-guide.md)
//
//===----------------------------------------------------------------------===//
#include "tools/fem-tune/TuningDb.h"
#include "driver/Compiler.h"

#include "llvm/ADT/SmallString.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <map>
#include <optional>
#include <vector>

using namespace llvm;

static cl::OptionCategory category("femc options");
static cl::opt<std::string> input(cl::Positional, cl::desc("<model.mlir>"),
                                  cl::cat(category));
static cl::opt<std::string> outDir("o", cl::desc("Output folder (default: .)"),
                                   cl::value_desc("dir"), cl::init("."),
                                   cl::cat(category));
static cl::opt<std::string>
    target("target",
           cl::desc("Code generation target: host (this CPU and its "
                    "features, default; FEMC_HOST_CPU=<cpu> masks them to "
                    "an x86-64 CPU's, e.g. znver3, to build as for a "
                    "smaller host), x86-64-v3 (AVX2+FMA), x86-64-v4 "
                    "(AVX-512), or <cpu>[+bf16][+bf16dot][+amx] with <cpu> "
                    "x86-64-v4 or an LLVM x86-64 CPU name (e.g. "
                    "sapphirerapids; not host, whose features are its own; "
                    "+amx: bf16 softmax reads on AMX tiles; +bf16dot: on "
                    "AVX512-BF16 dot products, the default on znver4, "
                    "znver5 and such a host unless FEMC_BF16_DOT=0); or an "
                    "NVIDIA "
                    "GPU: sm_80, sm_90, cuda (= sm_90), which writes a "
                    "cubin, its PTX and a host glue library that launches "
                    "it through libfemrt (softmax prior; docs/gpu-run.md)"),
           cl::init("host"), cl::cat(category));
static cl::opt<std::string> emit(
    "emit",
    cl::desc("What to write: lib (default: NAME.o, NAME.so, NAME.h, "
             "NAME.glue.c, NAME.json), obj (no .so), llvm (NAME.ll), asm (NAME.s), mlir "
             "(the IR after --after=PASS, or the final LLVM dialect)"),
    cl::init("lib"), cl::cat(category));
static cl::opt<std::string>
    after("after",
          cl::desc("With --emit=mlir: dump the IR after this pass (see "
                   "--list-passes), e.g. fem-fuse-reads or fem-tile"),
          cl::cat(category));
static cl::opt<unsigned> optLevel("O", cl::desc("LLVM optimisation level 0-3 "
                                                "(default 3)"),
                                  cl::Prefix, cl::init(3), cl::cat(category));
static cl::opt<int64_t>
    tileQ("tile-q",
          cl::desc("softmax: query rows per workgroup, a multiple of 2*vec "
                   "up to 1024; scan priors (linear, gla, aft, ssm): rows "
                   "per chunk, a multiple of vec up to 512 (default: the "
                   "model's #fem.tiles, else softmax 384 with 16 lanes and "
                   "192 with 4 or 8, the scans 64); GPU targets: the "
                   "tensor-core kernel's query rows per block, 64 (default) "
                   "or 128"),
          cl::init(0), cl::cat(category));
static cl::opt<int64_t>
    tileK("tile-k",
          cl::desc("softmax: keys per inner step, a multiple of 2*vec up "
                   "to 1024; scan priors: value channels per workgroup, a "
                   "multiple of vec up to 1024 (default: the model's "
                   "#fem.tiles, else 64)"),
          cl::init(0), cl::cat(category));
static cl::opt<int64_t> vec("vec",
                            cl::desc("Vector lanes 4, 8 or 16 (default: from "
                                     "the target)"),
                            cl::init(0), cl::cat(category));
static cl::opt<std::string> matmulPrecision(
    "matmul-precision",
    cl::desc("Layer projections: f32 (f32 FMAs), bf16x3 or bf16x6 (AMX-BF16 "
             "tiles: f32 values split exactly into 2 or 3 bf16 pieces, 3 or "
             "6 products of them summed in f32; bf16x6 about as accurate as "
             "f32, bf16x3 to ~2^-16 relative), or auto (default: bf16x6 on "
             "targets with AMX-BF16, else f32); docs/layers.md"),
    cl::value_desc("mode"), cl::init("auto"), cl::cat(category));
static cl::opt<std::string> sanitize(
    "sanitize",
    cl::desc("Compile the C glue with -fsanitize=LIST, e.g. "
             "address,undefined (for programs built with the same "
             "sanitizers; the kernels themselves are not instrumented)"),
    cl::value_desc("list"), cl::cat(category));
static cl::opt<bool> verbose("v", cl::desc("Print the kernels found and the "
                                           "tools run"),
                             cl::cat(category));
static cl::opt<std::string> tuningDb(
    "tuning-db",
    cl::desc("Compile with the tiles fem-tune recorded in this database for "
             "the kernel, target and shape bucket (docs/tuning.md); a miss "
             "keeps the defaults (-v says why). --tile-q/--tile-k/--vec "
             "override it"),
    cl::value_desc("file.json"), cl::cat(category));
static cl::list<std::string> tuningDims(
    "tuning-dim",
    cl::desc("With --tuning-db: the extent of a dynamic dimension to look "
             "up, e.g. T=4096 (the bucket rounds it up to a power of two, "
             "as fem-tune does); repeatable"),
    cl::value_desc("SYM=N"), cl::cat(category));
static cl::opt<bool> listPasses("list-passes",
                                cl::desc("List the pipeline's passes in order "
                                         "and exit"),
                                cl::cat(category));

/// Passes --tuning-db and --tuning-dim on to the driver, whose
/// fem-apply-tuning pass looks every mixer up (docs/tuning.md). Returns false
/// for a malformed --tuning-dim.
static bool applyTuning(femc::driver::CompileOptions &options) {
  std::map<std::string, int64_t> dims;
  std::string error;
  for (const std::string &d : tuningDims)
    if (!femc::tune::parseDim(d, "--tuning-dim", dims, error)) {
      errs() << "femc: error: " << error << "\n";
      return false;
    }
  if (options.tileQ || options.tileK || options.vec) {
    // Documented (explicit tiles override the database), but said every
    // time: a script that passes both would otherwise never learn the
    // database it names is unused.
    errs() << "femc: warning: --tile-q/--tile-k/--vec given; the tuning "
              "database "
           << tuningDb << " is not consulted\n";
    return true;
  }
  // A missing database is an empty one (docs/tuning.md), but a mistyped
  // path would otherwise compile every kernel untuned without a word. Only
  // a path that names nothing: exists() is false for a symbolic link loop
  // too, which was then said not to exist before fem-apply-tuning reported
  // "Too many levels of symbolic links".
  sys::fs::file_status dbStatus;
  if (sys::fs::status(tuningDb, dbStatus) ==
      std::errc::no_such_file_or_directory)
    errs() << "femc: warning: tuning database '" << tuningDb
           << "' does not exist; every kernel compiles with the target's "
              "default tiles (fem-tune --db "
           << tuningDb << " creates it)\n";
  options.tuningDb = tuningDb;
  options.tuningDims.assign(tuningDims.begin(), tuningDims.end());
  return true;
}

/// `code`, unless stdout could not take what femc printed (a full disk,
/// /dev/full): then femc says so and exits 1 (LLVM used to end it with
/// "LLVM ERROR: IO failure on output stream"); the files are written.
static int checkStdout(int code) {
  outs().flush();
  if (!outs().has_error())
    return code;
  errs() << "femc: error: cannot write to standard output: "
         << outs().error().message() << "\n";
  outs().clear_error();
  return 1;
}

int main(int argc, char **argv) {
  InitLLVM init(argc, argv);
  cl::HideUnrelatedOptions(category);
  cl::SetVersionPrinter(
      [](raw_ostream &os) { os << femc::driver::version() << "\n"; });
  cl::ParseCommandLineOptions(
      argc, argv,
      "femc: compile Free Energy Mixer model descriptions to CPU kernels\n"
      "(or NVIDIA GPU kernels: --target=sm_80, sm_90)\n\n"
      "  femc MODEL.mlir -o OUTDIR\n\n"
      "writes OUTDIR/MODEL.o (kernels + descriptor), OUTDIR/MODEL.so, "
      "OUTDIR/MODEL.h\n(one entry point per kernel, with its argument shapes), "
      "OUTDIR/MODEL.glue.c\n(the C glue linked into the .so: launch grid, "
      "argument checks) and OUTDIR/MODEL.json\n(the manifest). Run them with fem-run or load "
      "them with libfemrt (docs/runtime.md).\nA kernel is a func.func whose "
      "body is one fem.mixer of its arguments; a layer\nis a func.func with a "
      "fem.mixer among other ops (docs/user-guide.md).\n\n"
      "Environment: FEMC_HOST_CPU=<cpu> (host as a smaller x86-64 CPU), "
      "FEMC_INCLUDE_DIR\n(libfemrt's headers for the glue), FEMC_PTXAS or "
      "CUDA_PATH (ptxas, for sm_80/sm_90).\nExit status: 0 on success, 1 on "
      "any error.\n");
  // An option of one value given twice (-o a -o b, --emit=lib --emit=obj)
  // was taken at its last value without a word; an empty value of a file or
  // list option (--tuning-db=) as if it were not given. fem-run and fem-tune
  // refuse both.
  auto spelled = [](const cl::Option &o) {
    return (o.ArgStr.size() == 1 ? "-" : "--") + o.ArgStr.str();
  };
  for (cl::Option *o : std::initializer_list<cl::Option *>{
           &outDir, &target, &emit, &after, &optLevel, &tileQ, &tileK, &vec,
           &matmulPrecision, &sanitize, &tuningDb})
    if (o->getNumOccurrences() > 1) {
      errs() << "femc: error: option " << spelled(*o)
             << " is given twice; give it once\n";
      return 1;
    }
  for (cl::opt<std::string> *o : {&outDir, &after, &sanitize, &tuningDb})
    if (o->getNumOccurrences() && o->getValue().empty()) {
      errs() << "femc: error: option " << spelled(*o)
             << " needs a value (see --help)\n";
      return 1;
    }
  // 0 is the options' "not given": --tile-k=0 compiled with the default
  // tiles without a word (and let a tuning database win).
  for (cl::opt<int64_t> *o : {&tileQ, &tileK, &vec})
    if (o->getNumOccurrences() && o->getValue() == 0) {
      errs() << "femc: error: " << spelled(*o) << "=0 is not "
             << (o == &vec ? "a vector width: expected 4, 8 or 16"
                           : "a tile: expected a positive multiple of 2 * vec "
                             "up to 1024")
             << " (leave the option out for the default)\n";
      return 1;
    }
  if (listPasses) {
    for (const std::string &p : femc::driver::pipelinePassNames())
      outs() << p << "\n";
    return checkStdout(0);
  }
  if (input.empty()) {
    errs() << "femc: error: no input file; usage: femc MODEL.mlir -o OUTDIR "
              "(see --help)\n";
    return 1;
  }
  // The outputs are named after the input's stem: '-' (standard input,
  // which MLIR's reader takes) wrote -.so, -.h, ... (a library fem-run and
  // the shell read as an option), and a file named '.mlir' wrote .so, .h,
  // ... (hidden files) and a C library function femc__library.
  if (input == "-" ||
      sys::path::stem(input).find_first_not_of('.') == StringRef::npos) {
    errs() << "femc: error: "
           << (input == "-"
                   ? std::string("cannot read the model from "
                                 "standard input ('-')")
                   : "input '" + input + "' has no name before its extension")
           << ": femc names its outputs after the model file (NAME.so, "
              "NAME.h, NAME.json, ...); save the model as NAME.mlir and give "
              "that file\n";
    return 1;
  }
  if (optLevel > 3) {
    errs() << "femc: error: -O" << optLevel << " is out of range 0-3\n";
    return 1;
  }
  // --after selects the IR that --emit=mlir writes; with any other --emit
  // it was ignored without a word (and the library written).
  if (!after.empty() && emit != "mlir") {
    errs() << "femc: error: --after=" << after
           << " needs --emit=mlir (it chooses the pass after which the IR is "
              "written); --emit="
           << emit << " would ignore it\n";
    return 1;
  }
  femc::driver::CompileOptions options;
  options.input = input;
  options.outDir = outDir;
  options.target = target;
  options.emit = emit;
  options.after = after;
  options.optLevel = optLevel;
  options.tileQ = tileQ;
  options.tileK = tileK;
  options.vec = vec;
  options.matmulPrecision = matmulPrecision;
  options.verbose = verbose;
  options.sanitize = sanitize;
  if (tuningDb.empty() && !tuningDims.empty()) {
    errs() << "femc: error: --tuning-dim " << tuningDims.front()
           << " needs --tuning-db (it names the extent to look up in a "
              "tuning database; the tiles themselves are --tile-q/--tile-k)\n";
    return 1;
  }
  if (!tuningDb.empty() && !applyTuning(options))
    return 1;
  // The folders of -o that do not exist yet, deepest first: compile creates
  // them, and a failed compile removes those it left empty, so that a
  // refused model leaves nothing behind.
  std::vector<std::string> createdDirs;
  for (SmallString<256> dir(options.outDir.empty() ? "." : options.outDir);
       !dir.empty() && !sys::fs::exists(dir);) {
    createdDirs.push_back(std::string(dir));
    size_t before = dir.size();
    sys::path::remove_filename(dir);
    if (dir.size() >= before)
      break;
  }
  femc::driver::CompileResult result;
  if (!femc::driver::compile(options, result)) {
    for (const std::string &dir : createdDirs)
      if (sys::fs::is_directory(dir))
        sys::fs::remove(dir); // fails, harmlessly, unless empty
    return 1;
  }
  for (const std::string &f : result.files)
    outs() << "femc: wrote " << f << "\n";
  return checkStdout(0);
}
