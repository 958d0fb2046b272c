//===- Compiler.h - the femc compilation driver as a library -----*- C++ -*-===//
//
// Parses a model description, runs the fem-to-cpu pipeline, emits an object,
// a shared library, a C header and a JSON manifest. Used by `femc` and by
// `fem-run` (which compiles a .mlir into a temporary folder before running)
// and `fem-tune`. What depends on the target is asked of driver/Target.h.
//
//===----------------------------------------------------------------------===//
#ifndef FEMC_DRIVER_COMPILER_H
#define FEMC_DRIVER_COMPILER_H

#include <cstdint>
#include <string>
#include <vector>

namespace femc::driver {

struct CompileOptions {
  std::string input;              ///< path of the .mlir model description
  std::string outDir = ".";       ///< where outputs go (created if missing)
  std::string target = "host";    ///< a name lookupTarget knows (Target.h)
  std::string emit = "lib";       ///< lib, obj, llvm, asm, mlir
  std::string after;              ///< with emit=mlir: print IR after this pass
  int64_t tileQ = 0, tileK = 0, vec = 0; ///< 0: attribute or target default
  /// Layer projections (fem-layer-matmul's precision): auto, f32, bf16x3,
  /// bf16x6 (docs/layers.md, "Matmul precision").
  std::string matmulPrecision = "auto";
  unsigned optLevel = 3;
  /// With lib/obj: compile the C glue with -fsanitize=this (e.g.
  /// "address,undefined"), for programs built with the same sanitizers.
  std::string sanitize;
  bool verbose = false;
  /// Stop once the kernels are known and return the C glue, the header and
  /// the manifest as text in CompileResult instead of building them: no
  /// lowering, no file written (outDir is still created), no tool run, and
  /// `emit` is not used. For tests and the fuzzer (test/fuzz); no
  /// command-line option sets it.
  bool glueOnly = false;
  /// A tuning database (docs/tuning.md): when set and no tile is given
  /// above, fem-apply-tuning attaches each mixer's recorded tiles before
  /// fem-tile. `tuningDims` are the dynamic extents to look up ("T=4096").
  std::string tuningDb;
  std::vector<std::string> tuningDims;
};

struct CompileResult {
  std::vector<std::string> files; ///< every file written
  std::string library;            ///< the shared library, if emitted
  std::vector<std::string> kernels;
  /// With glueOnly: NAME.glue.c, NAME.h and NAME.json as compile() would
  /// write them for --emit=lib.
  std::string glue, header, manifest;
};

/// Compiles; diagnostics go to stderr with source locations. Returns false on
/// any error (nothing half-written is left under the final names).
bool compile(const CompileOptions &options, CompileResult &result);

/// The list of passes of the CPU pipeline, by argument, for --after.
std::vector<std::string> pipelinePassNames();

/// Version string of this femc.
const char *version();

} // namespace femc::driver

#endif // FEMC_DRIVER_COMPILER_H
