//===- ApplyTuning.cpp - attach tuned tiles from a tuning database --------===//
//
// fem-apply-tuning: for every fem.mixer of the module, computes the key
// fem-tune records (tools/fem-tune/TuningDb.h: the kernel's semantics, the
// target, the shape bucket, femc's version) from the IR, looks it up in the
// database and, on a hit, sets the mixer's `tiles` to the recorded ones.
// Each mixer is looked up by its own key, so the kernels of one model get
// their own tiles. A miss leaves the mixer alone (fem-tile then takes the
// target's defaults). `femc --tuning-db` runs this pass; fem-opt can too.
//
//===----------------------------------------------------------------------===//
#include "dialect/FEMOps.h"
#include "dialect/FEMPriors.h"
#include "passes/Passes.h"
#include "tools/fem-tune/TuningDb.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/raw_ostream.h"

namespace mlir::fem {
#define GEN_PASS_DEF_FEMAPPLYTUNING
#include "passes/Passes.h.inc"
} // namespace mlir::fem

using namespace mlir;
using namespace mlir::fem;

namespace {

/// Whether line `line` (1-based) of `path` is too long to echo under a
/// diagnostic (more than 200 bytes), or cannot be read.
bool errorLineIsLong(llvm::StringRef path, size_t line) {
  auto buffer = llvm::MemoryBuffer::getFile(path);
  if (!buffer)
    return true;
  llvm::StringRef text = (*buffer)->getBuffer();
  for (size_t l = 1; l < line && !text.empty(); ++l)
    text = text.split('\n').second;
  return text.split('\n').first.size() > 200;
}

/// The module attribute with the tuned pool threads per kernel name.
constexpr llvm::StringLiteral kTunedThreadsAttr = "fem.tuned_threads";

/// The operand of `mixer` that the prior table calls `name`, or null.
Value namedOperand(MixerOp mixer, std::string_view name) {
  if (name == "q")
    return mixer.getQ();
  if (name == "k")
    return mixer.getK();
  if (name == "v")
    return mixer.getV();
  if (name == "beta_raw")
    return mixer.getBetaRaw();
  if (name == "lam")
    return mixer.getLam();
  if (name == "gate")
    return mixer.getGate();
  if (name == "mask")
    return mixer.getMask();
  if (name == "decay")
    return mixer.getDecay();
  if (name == "delta")
    return mixer.getDelta();
  if (name == "A")
    return mixer.getA();
  if (name == "Bs")
    return mixer.getBs();
  if (name == "Cs")
    return mixer.getCs();
  if (name == "D")
    return mixer.getD();
  if (name == "state")
    return mixer.getState();
  if (name == "out")
    return mixer.getResult();
  if (name == "state_out")
    return mixer.getStateOut();
  return {};
}

/// The manifest's dtype name of element type `t`, or empty.
std::string dtypeName(Type t) {
  if (t.isF32())
    return "float32";
  if (t.isF16())
    return "float16";
  if (t.isBF16())
    return "bfloat16";
  if (t.isInteger(8))
    return "uint8";
  return "";
}

/// The kernel `mixer` compiles to, described as femc's manifest describes
/// it (the arguments in the prior table's order, femc::priors::
/// kernelArguments, which is the compiled kernel's order). Fails with `why`
/// for an operand that is not a ranked tensor of a kernel dtype.
FailureOr<femc::tune::KernelFields> describe(MixerOp mixer, StringRef name,
                                             std::string &why) {
  PriorKind kind = mixer.getKind();
  const femc::priors::PriorInfo &info = getPriorInfo(kind);
  femc::tune::KernelFields f;
  f.name = name.str();
  f.prior = stringifyPriorKind(kind).str();
  f.layout = stringifyLayout(mixer.getLayout()).str();
  f.causal = mixer.getCausal() || isAlwaysCausal(kind);
  f.mask = static_cast<bool>(mixer.getMask());
  if (auto s = mixer.getScaleAttr())
    f.scale = s.getValueAsDouble();
  f.cap = mixer.getCapAttr().getValueAsDouble();
  f.eps = mixer.getEpsAttr().getValueAsDouble();
  for (std::string_view arg : femc::priors::kernelArguments(
           info, f.mask, static_cast<bool>(mixer.getState()),
           static_cast<bool>(mixer.getStateOut()))) {
    Value v = namedOperand(mixer, arg);
    auto type = v ? dyn_cast<RankedTensorType>(v.getType()) : nullptr;
    std::string dtype = type ? dtypeName(type.getElementType()) : "";
    if (dtype.empty()) {
      why = "argument '" + std::string(arg) +
            "' is not a ranked tensor of float32, float16, bfloat16 or uint8";
      return failure();
    }
    femc::tune::ArgFields a;
    a.name = std::string(arg);
    a.role = femc::priors::isOutputArgument(arg) ? "output" : "input";
    a.dtype = dtype;
    a.dims = femc::priors::operandDimsString(
        info, arg, mixer.getLayout() == Layout::bhtd, f.causal);
    for (int64_t d : type.getShape())
      a.shape.push_back(ShapedType::isDynamic(d) ? -1 : d);
    f.args.push_back(std::move(a));
  }
  return f;
}

struct FEMApplyTuningPass
    : public fem::impl::FEMApplyTuningBase<FEMApplyTuningPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (db.empty()) {
      module.emitError() << "fem-apply-tuning: no database; give "
                            "db=FILE.json";
      return signalPassFailure();
    }
    std::map<std::string, int64_t> extents;
    std::string error;
    for (const std::string &d : dims)
      if (!femc::tune::parseDim(d, "dims", extents, error)) {
        module.emitError() << "fem-apply-tuning: " << error;
        return signalPassFailure();
      }
    // A missing file would load as an empty database and silently apply
    // nothing; femc (missing-ok) warns about it itself.
    if (!missingOk && !llvm::sys::fs::exists(db)) {
      module.emitError() << "fem-apply-tuning: tuning database '" << db
                         << "' does not exist; fem-tune --db " << db
                         << " creates it (missing-ok=true treats a missing "
                            "file as an empty database)";
      return signalPassFailure();
    }
    femc::tune::Database database;
    femc::tune::JsonPosition where;
    if (!femc::tune::loadDatabase(db, database, error, &where)) {
      // At the database, not at the model's 0:0: a JSON syntax error at
      // its line and column; any other error at the file as a whole (line
      // 0: the JSON nodes keep no position). A long line (a database
      // written by json.dump is one line) is located at column 0, which
      // the diagnostic does not echo: the message names line and column.
      size_t column = where.column;
      if (where.line > 0 && errorLineIsLong(db, where.line))
        column = 0;
      emitError(FileLineColLoc::get(&getContext(), db, where.line, column))
          << "fem-apply-tuning: " << error << "; the file was left untouched";
      return signalPassFailure();
    }
    std::string targetText = femc::tune::targetText(target);
    std::string version =
        femcVersion.empty() ? femc::tune::femcVersionText() : femcVersion;
    // Every mixer in module order: deterministic, and each by its own key.
    SmallVector<std::pair<MixerOp, std::string>> mixers;
    for (auto f : module.getOps<func::FuncOp>()) {
      auto ops = llvm::to_vector(f.getOps<MixerOp>());
      for (auto [i, m] : llvm::enumerate(ops))
        mixers.push_back(
            {m, ops.size() == 1 && !f->hasAttr("fem.layer")
                    ? f.getSymName().str()
                    : (f.getSymName() + " mixer #" + Twine(i)).str()});
    }
    for (auto &[mixer, name] : mixers) {
      std::string why;
      FailureOr<femc::tune::KernelFields> fields = describe(mixer, name, why);
      if (failed(fields)) {
        note(name, "cannot be keyed: " + why);
        continue;
      }
      femc::tune::KernelDesc desc = femc::tune::describeKernel(*fields);
      femc::tune::LookupResult r = femc::tune::lookupKernel(
          database, desc, extents, targetText, version);
      if (!r.error.empty()) {
        mixer.emitError() << "fem-apply-tuning: " << dimOption << r.error.substr(5);
        return signalPassFailure();
      }
      if (!r.entry) {
        std::string miss = r.miss;
        if (size_t at = miss.find("--dim"); at != std::string::npos)
          miss.replace(at, 5, dimOption);
        note(name, "no tiles from " + db + ": " + miss +
                       "; using the target's defaults");
        continue;
      }
      auto tile = [&](const char *t) -> int64_t {
        auto it = r.entry->tiles.find(t);
        return it == r.entry->tiles.end() ? 0 : it->second;
      };
      mixer.setTilesAttr(
          TilesAttr::get(&getContext(), tile("q"), tile("k"), tile("vec")));
      // The tuned pool threads of a kernel (not of a layer's mixers, which
      // share their layer's launch): the module's "fem.tuned_threads"
      // {kernel name: threads}, which femc writes into the manifest.
      bool kernelLevel = name == mixer->getParentOfType<func::FuncOp>()
                                     .getSymName()
                                     .str();
      if (r.entry->threads > 0 && kernelLevel) {
        NamedAttrList threads;
        if (auto old = module->getAttrOfType<DictionaryAttr>(
                kTunedThreadsAttr))
          threads.append(old.getValue());
        threads.set(name, IntegerAttr::get(IntegerType::get(&getContext(), 64),
                                           r.entry->threads));
        module->setAttr(kTunedThreadsAttr,
                        threads.getDictionary(&getContext()));
      }
      note(name, femc::tune::tilesText(r.entry->tiles) + " from " + db +
                     " (bucket " + r.bucket + ", tuned " + r.entry->tunedAt +
                     ", " +
                     llvm::formatv("{0:F4}", r.entry->best.medianMs).str() +
                     " ms vs " +
                     llvm::formatv("{0:F4}", r.entry->defaultTime.medianMs)
                         .str() +
                     " ms with the defaults" +
                     (r.entry->threads > 0 && kernelLevel
                          ? ", " + std::to_string(r.entry->threads) +
                                " pool threads"
                          : std::string()) +
                     ")");
    }
  }

  /// With verbose: where kernel `name`'s tiles come from.
  void note(const std::string &name, const std::string &text) {
    if (verbose)
      llvm::errs() << "femc: tuning: kernel " << name << ": " << text << "\n";
  }
};

} // namespace
