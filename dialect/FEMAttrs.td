//===- FEMAttrs.td - fem enums and attributes --------------*- tablegen -*-===//
#ifndef FEM_ATTRS_TD
#define FEM_ATTRS_TD

include "dialect/FEMDialect.td"

def FEM_PriorKind : I32EnumAttr<"PriorKind", "the prior over key indices", [
    I32EnumAttrCase<"softmax", 0>, I32EnumAttrCase<"linear", 1>,
    I32EnumAttrCase<"gla", 2>, I32EnumAttrCase<"aft", 3>,
    I32EnumAttrCase<"ssm", 4>]> {
  let cppNamespace = "::mlir::fem";
  let genSpecializedAttr = 0;
}
def FEM_PriorKindAttr : EnumAttr<FEM_Dialect, FEM_PriorKind, "prior_kind">;

def FEM_Layout : I32EnumAttr<"Layout", "tensor layout of q, k, v, lam, gate, out", [
    I32EnumAttrCase<"bthd", 0>, I32EnumAttrCase<"bhtd", 1>]> {
  let cppNamespace = "::mlir::fem";
  let genSpecializedAttr = 0;
}
def FEM_LayoutAttr : EnumAttr<FEM_Dialect, FEM_Layout, "layout"> {
  let assemblyFormat = "`<` $value `>`";
}

def FEM_TilesAttr : AttrDef<FEM_Dialect, "Tiles"> {
  let mnemonic = "tiles";
  let summary = "Tile sizes of a fused FEM read";
  let description = [{
    `q` is the number of query rows a workgroup owns (Bq), `k` the number of
    keys per inner-loop step (Bk) and `vec` the vector width in lanes used for
    the contractions (0 lets the target choose). These are the parameters a
    tuner searches.

    Example: `#fem.tiles<q = 64, k = 64, vec = 8>`
  }];
  let parameters = (ins "int64_t":$q, "int64_t":$k,
                        DefaultValuedParameter<"int64_t", "0">:$vec);
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
}

#endif // FEM_ATTRS_TD
