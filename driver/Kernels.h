//===- Kernels.h - what the driver knows about each kernel ------*- C++ -*-===//
//
// Part of the femc project.
//
// The driver reads each kernel's and layer's facts from the lowered-enough
// module (the workgroup functions fem-tile made, the layer functions
// fem-outline-mixers marked) into KernelInfo, which the glue, the header
// and the manifest (Glue.h) are written from.
//
//===----------------------------------------------------------------------===//

#ifndef FEMC_DRIVER_KERNELS_H
#define FEMC_DRIVER_KERNELS_H

#include "mlir/IR/BuiltinOps.h"

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace femc::driver {

/// What the glue and the manifest need to know about one kernel.
struct KernelInfo {
  std::string name;     // the model's function name
  std::string wgSymbol; // the workgroup function's C interface
  std::string prior, layout;
  bool causal = false, hasMask = false;
  std::optional<double> scale;
  double cap = 40, eps = 1e-6;
  int64_t tileQ = 0, tileK = 0, vec = 0;
  /// The pool threads fem-tune recorded for the kernel (the module's
  /// fem.tuned_threads, set by fem-apply-tuning); 0: none.
  int64_t threads = 0;
  /// The workgroup grid from fem.grid: (extent index, divisor) for x, y, z.
  std::vector<std::pair<int, int64_t>> grid;
  /// aft: dk must divide 2 dv (checked at launch, from the prior table).
  bool dkDividesDv = false;
  /// The chunk-level parallel prefix (ScanSplitGlue.h): the state width Ks
  /// of the phase functions' records, 0 when the kernel is not split (why
  /// in splitWhy; empty for softmax and layers).
  int64_t splitKs = 0;
  std::string splitWhy, wgName;
  struct Arg {
    std::string name, dims, dtype;
    int bits = 32, code = 2; // DLPack float32
    bool output = false;
    std::vector<int64_t> shape; // -1 dynamic
    std::vector<int> symbols;   // index into kSymbols per dim
  };
  std::vector<Arg> args;
  /// A whole layer (fem-outline-mixers): one workgroup runs the layer
  /// function; `symbolNames` are the extents named by its fem.dims.
  bool layer = false;
  std::vector<std::string> symbolNames;
  std::vector<std::string> mixers; ///< kernels the layer runs
  /// The layer's parallel stages (passes/layer/LayerMatmul.cpp), as the
  /// lowered module calls them: `<layer>_<stage>_run` and its number of
  /// buffers (collectLayerStages).
  std::vector<std::pair<std::string, unsigned>> stages;
  /// An imported layer's fem.layer configuration as JSON (the manifest's
  /// "layer"); empty for other layers and kernels.
  std::string layerConfig;
};

/// Checks, before any pass runs, the names that become C symbols: every
/// public function with a body is a kernel or a layer whose name is the
/// exported C entry point, and no function may take a name femc generates
/// for another one.
bool checkFunctionNames(mlir::ModuleOp module);

/// Reads kernel metadata from the workgroup functions made by fem-tile.
bool collectKernels(mlir::ModuleOp module, std::vector<KernelInfo> &kernels);

/// Reads the signature of the layer functions marked by fem-outline-mixers
/// (before bufferization: tensors with fem.name / fem.dims attributes).
bool collectLayers(mlir::ModuleOp module, std::vector<KernelInfo> &kernels);

/// "ceil(T / 192), Hkv, B" for the header.
std::string gridText(const KernelInfo &k);

/// ["ceil(T/192)", "Hkv", "B"] for the manifest.
std::string gridJson(const KernelInfo &k);

std::string describe(const KernelInfo &k);

} // namespace femc::driver

#endif // FEMC_DRIVER_KERNELS_H
