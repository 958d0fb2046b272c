//===- Target.h - what the femc driver asks of a code generation target ---===//
//
// Part of the femc project.
//
// Everything the driver (driver/Compiler.cpp) needs to know about the
// machine it compiles for sits behind `Target`, in the spirit of Triton's
// TargetInfoBase or IREE's HAL target backends: the name given to --target,
// the description the glue, header and manifest carry, the LLVM triple, CPU
// and features, the fem-tile target string and the default vector width,
// the features the generated glue checks before a kernel runs, how the
// kernel object is emitted from LLVM IR, and which tiles are legal. The
// per-prior facts stay in dialect/Priors.h; a target only adds its own.
//
// Implementations live in target/<family>/ (target/cpu/ today); the
// registry (target/Registry.cpp) lists them, and `lookupTarget` finds one
// by name. A new target implements this class, registers itself there, and
// documents itself in docs/architecture.md ("Targets").
//
//===----------------------------------------------------------------------===//
#ifndef FEMC_DRIVER_TARGET_H
#define FEMC_DRIVER_TARGET_H

#include "dialect/Priors.h"

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/CodeGen.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace llvm {
class Module;
class TargetMachine;
} // namespace llvm

namespace femc::driver {

class Target {
public:
  virtual ~Target() = default;

  /// The name --target takes, e.g. "x86-64-v3".
  virtual llvm::StringRef name() const = 0;
  /// What the glue, the header and the manifest say the code was compiled
  /// for, e.g. "x86-64-v3 (AVX2, FMA)" or "host:znver4".
  virtual std::string description() const = 0;

  /// The LLVM target triple, CPU name and feature string of the code.
  virtual std::string triple() const = 0;
  virtual std::string cpu() const = 0;
  virtual std::string features() const = 0;

  /// The `target` option of fem-tile (CPUPipelineOptions::target).
  virtual std::string tileTarget() const = 0;
  /// The vector lanes (f32) fem-tile uses when neither the command line
  /// nor the model's #fem.tiles names them.
  virtual int64_t defaultVectorWidth() const = 0;

  /// The features the generated glue checks at launch, as
  /// __builtin_cpu_supports names; a kernel refuses to run without them.
  virtual std::vector<std::string> requiredFeatures() const = 0;

  /// The LLVM target machine that emits this target's kernel code at
  /// `optLevel` (0-3). On failure returns null and sets `error`.
  virtual std::unique_ptr<llvm::TargetMachine>
  createTargetMachine(unsigned optLevel, std::string &error) const = 0;
  /// Writes `module` (optimised for `machine`) to `path` as an object or
  /// assembly file. Reports failures on stderr ("femc: error: ...") and
  /// returns false.
  virtual bool emitKernelFile(llvm::TargetMachine &machine,
                              llvm::Module &module, llvm::StringRef path,
                              llvm::CodeGenFileType kind) const = 0;

  /// Why `tiles` cannot be used for a read of `prior` on this target, or
  /// nothing when they can. The default is the prior table's rule
  /// (dialect/Priors.h); a target with further limits (registers, shared
  /// memory) adds its own.
  virtual std::optional<std::string>
  checkTiles(const priors::PriorInfo &prior,
             const priors::Tiles &tiles) const {
    return priors::checkTiles(prior, tiles);
  }
  /// The tiles a read of `prior` gets by default on this target.
  virtual priors::Tiles defaultTiles(const priors::PriorInfo &prior) const {
    return priors::defaultTiles(prior, defaultVectorWidth());
  }
};

/// The target --target=`name` names, or null when there is none.
const Target *lookupTarget(llvm::StringRef name);
/// The names lookupTarget knows, in the order the help and errors list them.
std::vector<std::string> targetNames();
/// The message for a --target no target answers to, without the "femc:
/// error: " prefix: the supported names, and why a known future target is
/// missing.
std::string unsupportedTargetMessage(llvm::StringRef name);

} // namespace femc::driver

#endif // FEMC_DRIVER_TARGET_H
