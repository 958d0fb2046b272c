//===- CpuTarget.cpp - the x86-64 CPU targets of femc ---------------------===//
//
// Part of the femc project.
//
//===----------------------------------------------------------------------===//
#include "target/cpu/CpuTarget.h"
#include "target/cpu/HostCpu.h"
#include "target/cpu/TileSpace.h"

#include "passes/Passes.h"
#include "passes/cpu/ReadSoftmaxAmx.h"

#include "llvm/IR/Module.h"
#include "llvm/Support/ErrorHandling.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Target/TargetMachine.h"
#include "llvm/TargetParser/Host.h"
#include "llvm/TargetParser/SubtargetFeature.h"
#include "llvm/TargetParser/X86TargetParser.h"

#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>

using llvm::StringRef;

namespace femc::target::cpu {
namespace {

/// The features the glue checks at launch when the code may use them, as
/// both LLVM and __builtin_cpu_supports spell them.
constexpr const char *kCheckedFeatures[] = {"avx512f",    "avx2",     "fma",
                                            "avx512bf16", "amx-tile", "amx-bf16"};

/// The feature suffixes of --target=<cpu>+<feature>: the LLVM features each
/// adds, how descriptions name it, and the femc code path it asks the
/// lowering for (stamped on the module with the LLVM features, never given
/// to LLVM; "" for none).
struct FeatureSuffix {
  const char *name;
  std::vector<std::string> llvm;
  const char *what;
  const char *lowering = "";
};
const std::vector<FeatureSuffix> &featureSuffixes() {
  static const std::vector<FeatureSuffix> all = {
      {"bf16", {"avx512bf16"}, "AVX512-BF16 instructions"},
      // On Intel Sapphire/Emerald Rapids vdpbf16ps has half the
      // multiply-add rate of f32 FMAs, so the read is slower than the f32
      // one there (docs/benchmarks.md, "bf16"): there only on request; the
      // default on Zen 4/5 (dotReadByDefault).
      {"bf16dot",
       {"avx512bf16"},
       "bf16 softmax reads on AVX512-BF16 dot products",
       mlir::fem::cpu::kBf16DotFeature},
      {"amx", {"avx512bf16", "amx-tile", "amx-bf16"}, "AMX-BF16 tiles"},
  };
  return all;
}

/// Whether bf16 softmax reads take the AVX512-BF16 dot-product read
/// (ReadSoftmaxBf16.cpp) without +bf16dot on CPU `cpu` with `features`:
/// on AMD Zen 4 and Zen 5 (znver4, znver5), where vdpbf16ps issues as fast
/// as an f32 FMA with twice its multiply-adds and the read takes 0.72-0.85x
/// the time of the f32 read on widened bf16 loads (Zen 4; Zen 5 unmeasured;
/// docs/benchmarks.md, "bf16 dot products"), unless the CPU has AMX (whose
/// read comes first) or lacks AVX512-BF16 (FEMC_HOST_CPU=znver4 on a CPU
/// without it). Not on Intel: there vdpbf16ps has half the f32 FMA rate.
/// FEMC_BF16_DOT=0 in the environment turns the default off (the f32 read;
/// +bf16dot still asks).
bool dotReadByDefault(StringRef cpu, const llvm::StringMap<bool> &features) {
  if (cpu != "znver4" && cpu != "znver5")
    return false;
  if (const char *off = std::getenv(kBf16DotVariable);
      off && StringRef(off) == "0")
    return false;
  return features.lookup("avx512bf16") &&
         !(features.lookup("amx-tile") && features.lookup("amx-bf16"));
}

/// One x86-64 CPU target: LLVM's native back end with a fixed CPU and
/// feature set, emitting position-independent code.
class CpuTarget final : public driver::Target {
public:
  CpuTarget(std::string name, std::string cpu, std::string features,
            std::string tileTarget, std::string description,
            std::vector<std::string> required, std::string lowering = "")
      : name_(std::move(name)), cpu_(std::move(cpu)),
        features_(std::move(features)), tileTarget_(std::move(tileTarget)),
        description_(std::move(description)), required_(std::move(required)),
        lowering_(std::move(lowering)) {}

  /// This machine (hostCpu(): its CPU and every feature it has, or the
  /// CPU FEMC_HOST_CPU names, masked); the glue requires the vector
  /// features among them, so the library refuses a smaller CPU.
  static CpuTarget host() {
    const HostCpu &hostCpu = cpu::hostCpu();
    llvm::SubtargetFeatures features;
    for (auto &f : hostCpu.features)
      features.AddFeature(f.first(), f.second);
    std::vector<std::string> required;
    for (const char *f : kCheckedFeatures)
      if (hostCpu.has(f))
        required.push_back(f);
    // The lowering's code path, never given to LLVM (features()).
    std::string lowering;
    if (dotReadByDefault(hostCpu.name, hostCpu.features))
      lowering = std::string("+") + mlir::fem::cpu::kBf16DotFeature;
    return CpuTarget("host", hostCpu.name, features.getString(), "host",
                     "host:" + hostCpu.name, std::move(required),
                     std::move(lowering));
  }

  StringRef name() const override { return name_; }
  std::string description() const override { return description_; }
  std::string triple() const override {
    return llvm::sys::getDefaultTargetTriple();
  }
  std::string cpu() const override { return cpu_; }
  /// The LLVM features, plus the femc code paths the --target suffixes ask
  /// for ("+fem-bf16-dot"): the lowering reads them from the module
  /// (fem.target_features); the target machine gets the LLVM ones only.
  std::string features() const override {
    return lowering_.empty() ? features_ : features_ + "," + lowering_;
  }
  std::string tileTarget() const override { return tileTarget_; }
  int64_t defaultVectorWidth() const override {
    return mlir::fem::defaultVectorWidth(tileTarget_);
  }
  driver::TileSpace
  tileSpace(const priors::PriorInfo &prior) const override {
    return cpuTileSpace(prior, defaultVectorWidth(), onlineCpus());
  }
  std::vector<std::string> requiredFeatures() const override {
    return required_;
  }

  std::unique_ptr<llvm::TargetMachine>
  createTargetMachine(unsigned optLevel, std::string &error) const override {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
    // Position-independent: the kernels are linked into a shared library.
    return driver::createMachine(triple(), cpu_, features_, llvm::Reloc::PIC_,
                                 optLevel, error);
  }

  bool emitKernelFile(llvm::TargetMachine &machine, llvm::Module &module,
                      StringRef path,
                      llvm::CodeGenFileType kind) const override {
    return driver::emitWithMachine(machine, module, path, kind);
  }

private:
  std::string name_, cpu_, features_, tileTarget_, description_;
  std::vector<std::string> required_;
  std::string lowering_;
};

/// `name` = <cpu>[+<feature>...] resolved: the CPU is x86-64-v3, x86-64-v4
/// or any 64-bit x86 CPU LLVM knows (e.g. sapphirerapids), each feature one
/// of featureSuffixes(). Sets `error` when the name is not one.
std::unique_ptr<CpuTarget> parseCpuTarget(StringRef name, std::string &error) {
  llvm::SmallVector<StringRef> parts;
  name.split(parts, '+');
  StringRef cpu = parts.front();
  // "host+amx" said "'host' is not a 64-bit x86 CPU LLVM knows".
  if (cpu == "host") {
    error = "unsupported target '" + name.str() +
            "': host takes no +features (it is this CPU with the features "
            "it has); name a CPU that has them, e.g. sapphirerapids+amx or "
            "x86-64-v4+bf16";
    return nullptr;
  }
  if (llvm::X86::parseArchX86(cpu, /*Only64Bit=*/true) == llvm::X86::CK_None) {
    error = "unsupported target '" + name.str() + "': '" + cpu.str() +
            "' is not a 64-bit x86 CPU LLVM knows";
    return nullptr;
  }
  // The CPU's features, its baseline and what they imply: stamped on the
  // module (fem.target_features) for the lowering and given to LLVM.
  llvm::StringMap<bool> enabled = namedCpuFeatures(cpu);
  // bf16 and amx imply AVX-512 in LLVM; femc asks for it of the CPU itself.
  bool cpuAvx512 = enabled.lookup("avx512f");
  llvm::SubtargetFeatures lowering;
  for (StringRef part : llvm::drop_begin(parts)) {
    const FeatureSuffix *suffix = nullptr;
    for (const FeatureSuffix &s : featureSuffixes())
      if (part == s.name)
        suffix = &s;
    if (!suffix) {
      error = "unsupported target '" + name.str() + "': unknown feature '" +
              part.str() + "'; the features are";
      for (const FeatureSuffix &s : featureSuffixes())
        error += std::string(" +") + s.name + " (" + s.what + ")";
      return nullptr;
    }
    for (const std::string &f : suffix->llvm) {
      enabled[f] = true; // and what it implies (amx-bf16: amx-tile)
      llvm::X86::updateImpliedFeatures(f, true, enabled);
    }
    if (*suffix->lowering)
      lowering.AddFeature(suffix->lowering);
  }
  if (!enabled.lookup("avx2") || !enabled.lookup("fma")) {
    error = "unsupported target '" + name.str() + "': '" + cpu.str() +
            "' has no AVX2 and FMA, which femc's CPU code needs (x86-64-v3 "
            "or later)";
    return nullptr;
  }
  bool avx512 = enabled.lookup("avx512f");
  if (!cpuAvx512 && parts.size() > 1) {
    error = "unsupported target '" + name.str() + "': +" +
            parts.back().str() +
            " needs AVX-512 (x86-64-v4 or a CPU with AVX-512F)";
    return nullptr;
  }
  if (dotReadByDefault(cpu, enabled) &&
      lowering.getString().find(mlir::fem::cpu::kBf16DotFeature) ==
          std::string::npos)
    lowering.AddFeature(mlir::fem::cpu::kBf16DotFeature);
  llvm::SubtargetFeatures features;
  std::vector<std::string> sorted;
  for (auto &f : enabled)
    if (f.second)
      sorted.push_back(f.first().str());
  llvm::sort(sorted);
  for (const std::string &f : sorted)
    features.AddFeature(f);
  std::vector<std::string> required;
  for (const char *f : kCheckedFeatures)
    if (enabled.lookup(f))
      required.push_back(f);
  std::string description = name.str() + (avx512 ? " (AVX-512" : " (AVX2, FMA");
  if (enabled.lookup("avx512bf16"))
    description += ", AVX512-BF16";
  if (enabled.lookup("amx-bf16") && enabled.lookup("amx-tile"))
    description += ", AMX-BF16";
  if (lowering.getString().find(mlir::fem::cpu::kBf16DotFeature) !=
      std::string::npos)
    description += ", bf16 dot-product read";
  description += ")";
  return std::make_unique<CpuTarget>(
      name.str(), cpu.str(), features.getString(), avx512 ? "avx512" : "avx2",
      description, std::move(required), lowering.getString());
}

} // namespace

std::string hostUnsupported() { return hostCpu().unsupported(); }

const driver::Target *lookupCpuTarget(StringRef name, std::string &error) {
  error.clear();
  if (name == "host" && !(error = hostUnsupported()).empty())
    return nullptr;
  for (const driver::Target *t : cpuTargets())
    if (t->name() == name)
      return t;
  // Names made on demand live as long as the process (lookupTarget hands
  // out plain pointers).
  static std::mutex mutex;
  static std::map<std::string, std::unique_ptr<CpuTarget>, std::less<>> made;
  std::lock_guard<std::mutex> lock(mutex);
  if (auto it = made.find(name); it != made.end())
    return it->second.get();
  std::unique_ptr<CpuTarget> target = parseCpuTarget(name, error);
  if (!target)
    return nullptr;
  const driver::Target *result = target.get();
  made.emplace(name.str(), std::move(target));
  return result;
}

const std::vector<const driver::Target *> &cpuTargets() {
  static const CpuTarget host = CpuTarget::host();
  // The levels are CPU names like any other: their features are stamped
  // like a named CPU's (x86-64-v4: +avx512f, ...; never AMX or BF16).
  static const auto level = [](StringRef name) {
    std::string error;
    std::unique_ptr<CpuTarget> target = parseCpuTarget(name, error);
    if (!target) // LLVM knows both levels, each with AVX2 and FMA.
      llvm::report_fatal_error(llvm::Twine("femc: ") + error);
    return target;
  };
  static const std::unique_ptr<CpuTarget> v3 = level("x86-64-v3");
  static const std::unique_ptr<CpuTarget> v4 = level("x86-64-v4");
  static const std::vector<const driver::Target *> all = {&host, v3.get(),
                                                          v4.get()};
  return all;
}

} // namespace femc::target::cpu
