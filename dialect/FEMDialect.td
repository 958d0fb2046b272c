//===- FEMDialect.td - The fem dialect ---------------------*- tablegen -*-===//
//
// The Free Energy Mixer dialect: ops that mirror the math of the FEM read
// (Lu & Yang, ICLR 2026). See docs/dialect.md.
//
//===----------------------------------------------------------------------===//
#ifndef FEM_DIALECT_TD
#define FEM_DIALECT_TD

include "mlir/IR/OpBase.td"
include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/EnumAttr.td"

def FEM_Dialect : Dialect {
  let name = "fem";
  let cppNamespace = "::mlir::fem";
  let summary = "Free Energy Mixer kernels";
  let description = [{
    Ops for the free-energy read of FEM: a prior over key indices
    (`fem.prior`), the value tilt (`fem.tilt`), the two reads under the prior
    (`fem.expect` for the mean, `fem.lse` for the free energy), the gate
    (`fem.gate`) and the whole read as one op (`fem.mixer`). Lowering passes
    fuse the reads of one prior (`fem.fused_read`), tile them over a
    workgroup grid (`fem.tile_read`) and lower them to loops and vectors.
  }];
  let useDefaultTypePrinterParser = 1;
  let useDefaultAttributePrinterParser = 1;
  // `fem.layer` on a function: an imported layer's configuration
  // (dialect/LayerConfig.h).
  let hasOperationAttrVerify = 1;
  let dependentDialects = ["::mlir::tensor::TensorDialect"];
}

// Every fem op refuses an attribute that is neither one of its own nor
// carries a dialect prefix (dialect/StrayAttributes.h): a misspelt
// attribute (`capp = 2.0`, `tile = #fem.tiles<...>`) was kept as a
// discardable attribute and silently ignored.
def FEM_NoStrayAttributes : NativeOpTrait<"NoStrayAttributes"> {
  let cppNamespace = "::mlir::fem";
}

class FEM_Op<string mnemonic, list<Trait> traits = []>
    : Op<FEM_Dialect, mnemonic, !listconcat(traits, [FEM_NoStrayAttributes])>;

#endif // FEM_DIALECT_TD
