//===- LayerConfig.h - The fem.layer configuration attribute ----*- C++ -*-===//
//
// Part of the femc project.
//
//===----------------------------------------------------------------------===//
///
/// \file
/// A layer imported from the authors' PyTorch module carries its
/// configuration on its func.func as `fem.layer`: a dictionary of
/// FreeEnergyMixerConfig fields with the sizes resolved (fem_dim = E,
/// qk_dim = H * dk; docs/layers.md). This file turns that attribute into
/// the reference's `femc::ref::LayerConfig` (reference/Layer.h, LLVM-free)
/// and checks the function against it: the dialect's verifier and the
/// driver (which copies it into the manifest) both use it.
///
/// fem-outline-mixers later replaces the attribute with the layer's name (a
/// string): the verifier accepts that form too, and the driver reads the
/// dictionaries before the pipeline runs (`collectLayerConfigs`).
///
//===----------------------------------------------------------------------===//

#ifndef FEMC_DIALECT_LAYERCONFIG_H
#define FEMC_DIALECT_LAYERCONFIG_H

#include "reference/Layer.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Operation.h"

#include <map>
#include <optional>
#include <string>

namespace mlir::fem {

/// The attribute's name.
constexpr llvm::StringLiteral kLayerAttrName = "fem.layer";

/// Parses a `fem.layer` dictionary (resolved form). On failure emits one
/// error at `op` that names the key and what was expected and found.
std::optional<femc::ref::LayerConfig> parseLayerConfig(Operation *op,
                                                       DictionaryAttr dict);

/// The dialect verifier's check of a `fem.layer` attribute on `op`: a
/// dictionary on a function is parsed and the function's arguments are
/// checked against the configuration (x, the optional attention_mask, every
/// parameter by its state_dict name with its PyTorch shape); a string is
/// fem-outline-mixers' marker. Anything else is an error.
LogicalResult verifyLayerAttribute(Operation *op, Attribute value);

/// The configuration of every function of `module` whose `fem.layer` is a
/// dictionary, by function name (the module has been verified).
std::map<std::string, femc::ref::LayerConfig>
collectLayerConfigs(ModuleOp module);

} // namespace mlir::fem

#endif // FEMC_DIALECT_LAYERCONFIG_H
