//===- FEMTypes.td - fem types -----------------------------*- tablegen -*-===//
#ifndef FEM_TYPES_TD
#define FEM_TYPES_TD

include "dialect/FEMAttrs.td"
include "mlir/IR/BuiltinTypeInterfaces.td"

def FEM_PriorType : TypeDef<FEM_Dialect, "Prior"> {
  let mnemonic = "prior";
  let summary = "A distribution over key indices for every query, never materialised";
  let description = [{
    The value of a `fem.prior` op: p(s | b, h, t) for batch b, query head h,
    query position t and key position s. Its shape is B x H x T x S; any
    extent may be dynamic (`?`). It is never stored as a T x S tensor; the
    reads that consume it are fused and tiled by the lowering.

    Example: `!fem.prior<softmax, ?x8x?x?>`
  }];
  let parameters = (ins "PriorKind":$kind,
                        ArrayRefParameter<"int64_t">:$shape);
  let hasCustomAssemblyFormat = 1;
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    int64_t getBatch() const { return getShape()[0]; }
    int64_t getHeads() const { return getShape()[1]; }
    int64_t getQueries() const { return getShape()[2]; }
    int64_t getKeys() const { return getShape()[3]; }
  }];
}

#endif // FEM_TYPES_TD
