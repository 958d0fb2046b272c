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
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace llvm {
class Module;
class TargetMachine;
class raw_ostream;
} // namespace llvm
namespace mlir {
class ModuleOp;
class OpPassManager;
} // namespace mlir

namespace femc::driver {

/// One kernel of a device target's code, as the lowering left it (for the
/// NVIDIA targets: passes/nvidia/KernelAbi.h).
struct DeviceKernel {
  std::string name;   ///< the model function's name (fem.kernel)
  std::string symbol; ///< the entry point in the image, e.g. "NAME_gpu"
  /// The launch grid x, y, z: ceil(extent / divisor), extents named as in
  /// dialect/Priors.h (kExtents).
  std::vector<std::pair<std::string, int64_t>> grid;
  int64_t block[3] = {1, 1, 1};
  int64_t sharedBytes = 0;       ///< dynamic shared memory per block
  int64_t staticSharedBytes = 0; ///< static shared memory (information)
  int64_t arch = 0;              ///< e.g. 90 for sm_90
  std::string dtype;             ///< q/k/v element type: f32, f16, bf16
};

/// What the driver knows about one kernel when a device target writes its
/// part of the C glue (Target::writeDeviceGlue). The kernel's argument
/// table `<id>_args`, its extent table `<id>_syms` and the glue's
/// `femc_bind` are already written by the driver.
struct GlueKernel {
  std::string id;           ///< "femc_k<i>": prefix of the kernel's tables
  std::string name;         ///< the C entry point (the model function)
  std::string nameLiteral;  ///< `name` as an escaped C string literal
  std::vector<std::string> params; ///< C parameter names, argument order
  std::vector<bool> outputs;       ///< per argument: is it an output
  std::vector<int> elementBytes;   ///< per argument: bytes per element
  bool causal = false;             ///< keys have the length T (no S)
  bool dkDividesDv = false;        ///< aft's launch check
  const DeviceKernel *device = nullptr; ///< the lowered kernel
};

/// What fem-tune may vary for one read on a target (Target::tileSpace).
/// Each list holds candidate values of one parameter; their product, less
/// what the target's checkTiles refuses and what is larger than the shape,
/// is the candidate set (tileCandidates).
struct TileSpace {
  /// Bumped whenever the lists change; a tuning database entry records the
  /// version it was tuned with (older entries stay valid: their tiles are
  /// still legal).
  int64_t version = 1;
  std::vector<int64_t> q, k, vec;
  /// Pool thread counts to try for the winner (CPU); empty: not tuned.
  std::vector<int64_t> threads;
  /// Why the lists are what they are on this target, for fem-tune -v.
  std::string note;
};

/// One candidate of a tile space.
struct TileCandidate {
  priors::Tiles tiles;
  bool isDefault = false;
  /// Empty when the candidate is kept; otherwise why it was pruned.
  std::string pruned;
};

class Target;

/// The candidates of `target`'s tile space for a read of `prior` with the
/// default tiles `defaults` and the problem `extents` (T, S, dv, ...): the
/// default first and always kept (the yardstick), the others by distance
/// from it (then by vec, q, k: a fixed order, the stable choice's
/// tie-break). Pruned, with the reason: tiles the target's checkTiles
/// refuses (the #fem.tiles verifier's and fem-tile's rule plus the
/// target's own limits; its message) and tiles larger than the extent they
/// tile rounded up to the tile quantum.
std::vector<TileCandidate>
tileCandidates(const Target &target, const priors::PriorInfo &prior,
               const priors::Tiles &defaults, bool causal,
               const std::map<std::string, int64_t> &extents);

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
  /// The driver drops AMX and AVX512-BF16 from them for a library whose
  /// kernels do not use them (featuresUsed in Compiler.cpp).
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
  /// The values fem-tune tries for a read of `prior` on this target (its
  /// tile space, declared in target/<family>/TileSpace.cpp). The default:
  /// nothing beyond the default tiles.
  virtual TileSpace tileSpace(const priors::PriorInfo &prior) const;

  //===--------------------------------------------------------------------===//
  // Device targets (code that runs on an accelerator, not the host). The CPU
  // targets keep the defaults; the driver takes the host path for them.
  //===--------------------------------------------------------------------===//

  /// The device the kernels run on, as the manifest's "device" says:
  /// "cpu" for host code, "cuda" for NVIDIA GPUs.
  virtual std::string device() const { return "cpu"; }
  bool isDevice() const { return device() != "cpu"; }

  /// Device targets: why a kernel of `prior` cannot be compiled for this
  /// target, or nothing when it can.
  virtual std::optional<std::string>
  unsupportedPrior(const priors::PriorInfo &prior) const {
    (void)prior;
    return std::nullopt;
  }
  /// Device targets: adds the passes that lower the module after fem-tile
  /// to LLVM-dialect device kernels; `tileQ` is femc's --tile-q (0 when not
  /// given: the lowering's own choice). Returns false with `error` set when
  /// this build cannot.
  virtual bool buildDeviceLowering(mlir::OpPassManager &pm, int64_t tileQ,
                                   std::string &error) const {
    (void)pm;
    (void)tileQ;
    error = "target '" + name().str() + "' has no device lowering";
    return false;
  }
  /// Device targets: reads the kernels of the lowered module (their entry
  /// points and launch facts). Reports located errors and returns false.
  virtual bool readDeviceKernels(mlir::ModuleOp module,
                                 std::vector<DeviceKernel> &out) const;
  /// Device targets: turns the assembly the LLVM back end wrote at
  /// `assemblyPath` into the image the runtime loads, written to
  /// `imagePath` and returned in `image`; `report` gets the assembler's
  /// resource report. Reports failures on stderr and returns false.
  virtual bool assembleImage(llvm::StringRef assemblyPath,
                             llvm::StringRef imagePath, bool verbose,
                             std::string &image, std::string &report) const;
  /// The extension of the assembly (".ptx") and of the image (".cubin").
  virtual std::string assemblyExtension() const { return ".s"; }
  virtual std::string imageExtension() const { return ".o"; }
  /// Device targets: the message a host launch of the library gets (its
  /// prepare refuses before anything runs).
  virtual std::string hostLaunchRefusal() const { return ""; }
  /// Device targets: the C parameters the entry points take before the
  /// tensors (e.g. "femrt_device *femc_device, void *femc_stream, ").
  virtual std::string entryParameters() const { return ""; }
  /// Device targets: writes the device part of the glue (the image and
  /// the `assembly` it came from, their loading, the launch entry points)
  /// after the kernels' tables.
  virtual void writeDeviceGlue(llvm::raw_ostream &os, llvm::StringRef stem,
                               const std::vector<GlueKernel> &kernels,
                               llvm::StringRef image,
                               llvm::StringRef assembly) const;
  /// Device targets: extra clang arguments to link the glue library (e.g.
  /// libfemrt, which the glue calls).
  virtual std::vector<std::string> glueLinkArguments() const { return {}; }
};

/// Writes `module` with `machine` to `path` as an object or assembly file
/// (LLVM's legacy code generation pass manager); reports failures on
/// stderr ("femc: error: ...") and returns false.
bool emitWithMachine(llvm::TargetMachine &machine, llvm::Module &module,
                     llvm::StringRef path, llvm::CodeGenFileType kind);

/// LLVM's target machine for `triple`, `cpu` and `features` at `optLevel`
/// (0-3) with relocation model `reloc` (nothing: the target's default); the
/// LLVM target must be initialised. On failure returns null and sets
/// `error`.
std::unique_ptr<llvm::TargetMachine>
createMachine(const std::string &triple, const std::string &cpu,
              const std::string &features,
              std::optional<llvm::Reloc::Model> reloc, unsigned optLevel,
              std::string &error);

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
