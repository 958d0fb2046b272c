//===- FEMOps.td - fem operations --------------------------*- tablegen -*-===//
//
// Shapes use the names of docs/semantics.md. In layout `bthd` (the default):
// q (B,T,H,dk), k (B,S,Hkv,dk), v (B,S,Hkv,dv), lam/gate/out (B,T,H,dv),
// beta_raw (E) with E = H*dv, decay (B,T,H). In layout `bhtd` the T/S and
// head axes swap: q (B,H,T,dk), k (B,Hkv,S,dk), ..., decay (B,H,T).
// ssm operands: delta (B,T,E), A (E,N), Bs and Cs (B,T,N), D (E).
//
//===----------------------------------------------------------------------===//
#ifndef FEM_OPS_TD
#define FEM_OPS_TD

include "dialect/FEMTypes.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "mlir/IR/OpAsmInterface.td"

def FEM_FloatTensor : RankedTensorOf<[F32, F16, BF16]>;
def FEM_MaskTensor : RankedTensorOf<[I1, I8]>;
def FEM_FloatMemRef : MemRefOf<[F32, F16, BF16]>;
def FEM_MaskMemRef : MemRefOf<[I1, I8]>;

// Attributes shared by the ops that know how values are read.
defvar FEM_CapAttr = DefaultValuedAttr<F64Attr, "40.0">;
defvar FEM_EpsAttr = DefaultValuedAttr<F64Attr, "1e-6">;
defvar FEM_LayoutDefault = DefaultValuedAttr<FEM_LayoutAttr, "::mlir::fem::Layout::bthd">;

//===----------------------------------------------------------------------===//
// fem.prior
//===----------------------------------------------------------------------===//

def FEM_PriorOp : FEM_Op<"prior", [Pure, AttrSizedOperandSegments]> {
  let summary = "A prior over key indices, defined lazily";
  let description = [{
    Defines p(s | b, h, t) without materialising it. The operands depend on
    the kind:

    - `softmax`: `q`, `k`, optional key-padding `mask` (B,S) (non-zero =
      keep), attributes `causal` and `scale` (default 1/sqrt(dk)); grouped
      heads when k has Hkv < H heads (H divisible by Hkv).
    - `linear`: `q`, `k`, feature map relu(x) + eps, `causal`.
    - `gla`: `q`, `k`, `decay` (always causal).
    - `aft`: `q`, `k` (always causal; requires dk | dv of the values read).
    - `ssm`: `delta`, `A`, `Bs`, `Cs`, `D` (a selective scan).

    Example:

    ```mlir
    %p = fem.prior softmax q(%q : tensor<?x?x8x64xf32>)
                           k(%k : tensor<?x?x8x64xf32>) {causal}
         -> !fem.prior<softmax, ?x8x?x?>
    ```
  }];
  let arguments = (ins FEM_PriorKindAttr:$kind,
      Optional<FEM_FloatTensor>:$q, Optional<FEM_FloatTensor>:$k,
      Optional<FEM_MaskTensor>:$mask, Optional<FEM_FloatTensor>:$decay,
      Optional<FEM_FloatTensor>:$delta, Optional<FEM_FloatTensor>:$A,
      Optional<FEM_FloatTensor>:$Bs, Optional<FEM_FloatTensor>:$Cs,
      Optional<FEM_FloatTensor>:$D,
      UnitAttr:$causal, OptionalAttr<F64Attr>:$scale,
      FEM_LayoutDefault:$layout, FEM_EpsAttr:$eps);
  let results = (outs FEM_PriorType:$result);
  let assemblyFormat = [{
    custom<PriorKind>($kind) (`q` `(` $q^ `:` type($q) `)`)? (`k` `(` $k^ `:` type($k) `)`)?
    (`mask` `(` $mask^ `:` type($mask) `)`)?
    (`decay` `(` $decay^ `:` type($decay) `)`)?
    (`delta` `(` $delta^ `:` type($delta) `)`)? (`A` `(` $A^ `:` type($A) `)`)?
    (`Bs` `(` $Bs^ `:` type($Bs) `)`)? (`Cs` `(` $Cs^ `:` type($Cs) `)`)?
    (`D` `(` $D^ `:` type($D) `)`)?
    attr-dict `->` qualified(type($result))
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// fem.tilt
//===----------------------------------------------------------------------===//

def FEM_TiltOp : FEM_Op<"tilt", [Pure]> {
  let summary = "Clip, shift and exponentially tilt the values";
  let description = [{
    With beta = softplus(beta_raw) + eps per flat channel e = h*dv + c:
    `clipped` = clamp(v, -cap/beta, cap/beta) (v is first squashed by a
    sigmoid when `squash` is set, as the ssm prior does); `shift` M = max over
    all unmasked key positions of beta*clipped, shaped (B,H,dv); `tilted` =
    exp(beta*clipped - M). v may have fewer (Hkv) heads than beta_raw
    implies: query head h reads kv head h / (H/Hkv). Results have H heads.

    Example:

    ```mlir
    %vt, %x, %m = fem.tilt %v, %beta_raw
        : tensor<2x64x4x16xf32>, tensor<64xf32>
        -> tensor<2x64x4x16xf32>, tensor<2x64x4x16xf32>, tensor<2x4x16xf32>
    ```
  }];
  let arguments = (ins FEM_FloatTensor:$v, FEM_FloatTensor:$beta_raw,
      Optional<FEM_MaskTensor>:$mask, FEM_CapAttr:$cap, FEM_EpsAttr:$eps,
      FEM_LayoutDefault:$layout, UnitAttr:$squash);
  let results = (outs FEM_FloatTensor:$clipped, FEM_FloatTensor:$tilted,
                      FEM_FloatTensor:$shift);
  let assemblyFormat = [{
    $v `,` $beta_raw (`mask` `(` $mask^ `:` type($mask) `)`)? attr-dict
    `:` type($v) `,` type($beta_raw) `->` type($clipped) `,` type($tilted)
    `,` type($shift)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// fem.expect / fem.lse
//===----------------------------------------------------------------------===//

def FEM_ExpectOp : FEM_Op<"expect", [Pure]> {
  let summary = "The mean read: mu = sum_s p(s|t) u_s under a prior";
  let description = [{
    Reads `values` (B,S,H,dv) (usually the clipped values of `fem.tilt`)
    under the prior and returns (B,T,H,dv).

    Example:

    ```mlir
    %mu = fem.expect %p, %vt : !fem.prior<softmax, 2x4x64x64>,
        tensor<2x64x4x16xf32> -> tensor<2x64x4x16xf32>
    ```
  }];
  let arguments = (ins FEM_PriorType:$prior, FEM_FloatTensor:$values,
                       FEM_LayoutDefault:$layout);
  let results = (outs FEM_FloatTensor:$result);
  let assemblyFormat = [{
    $prior `,` $values attr-dict `:` qualified(type($prior)) `,`
    type($values) `->` type($result)
  }];
  let hasVerifier = 1;
}

def FEM_LseOp : FEM_Op<"lse", [Pure]> {
  let summary = "The free-energy read with exact log restore";
  let description = [{
    F = (logaddexp(log R(tilted), log(tiny) - M) + M) / beta, where R is the
    read under the prior, M the `shift` of `fem.tilt`, tiny = 2^-126 and
    log R = -inf where R <= 0.

    Example:

    ```mlir
    %F = fem.lse %p, %x, %m, %beta_raw : !fem.prior<softmax, 2x4x64x64>,
        tensor<2x64x4x16xf32>, tensor<2x4x16xf32>, tensor<64xf32>
        -> tensor<2x64x4x16xf32>
    ```
  }];
  let arguments = (ins FEM_PriorType:$prior, FEM_FloatTensor:$tilted,
      FEM_FloatTensor:$shift, FEM_FloatTensor:$beta_raw, FEM_EpsAttr:$eps,
      FEM_LayoutDefault:$layout);
  let results = (outs FEM_FloatTensor:$result);
  let assemblyFormat = [{
    $prior `,` $tilted `,` $shift `,` $beta_raw attr-dict `:`
    qualified(type($prior)) `,` type($tilted) `,` type($shift) `,`
    type($beta_raw) `->` type($result)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// fem.gate
//===----------------------------------------------------------------------===//

def FEM_GateOp : FEM_Op<"gate", [Pure, AllTypesMatch<["mu", "free_energy",
                                                     "lam", "gate", "result"]>]> {
  let summary = "The two-level gate: g * ((1 - lambda) * mu + lambda * F)";
  let description = [{
    lambda = sigmoid(lam); g+ = softplus(gate) + eps; g = g+ /
    max(||g+||_2, 1e-5) * sqrt(dv) with the norm over the dv channels of one
    (b, t, h). All operands and the result have the shape (B,T,H,dv).

    Example:

    ```mlir
    %out = fem.gate %mu, %F, %lam, %gate : tensor<2x64x4x16xf32>
    ```
  }];
  let arguments = (ins FEM_FloatTensor:$mu, FEM_FloatTensor:$free_energy,
      FEM_FloatTensor:$lam, FEM_FloatTensor:$gate, FEM_EpsAttr:$eps,
      FEM_LayoutDefault:$layout);
  let results = (outs FEM_FloatTensor:$result);
  let assemblyFormat = [{
    $mu `,` $free_energy `,` $lam `,` $gate attr-dict `:` type($result)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// fem.mixer
//===----------------------------------------------------------------------===//

def FEM_MixerOp : FEM_Op<"mixer", [Pure, AttrSizedOperandSegments]> {
  let summary = "The whole FEM read of one layer at the kernel boundary";
  let description = [{
    The kernel-level FEM read of docs/semantics.md: from projected q, k, v,
    the temperature parameter `beta_raw` and the logits `lam` and `gate` to
    the gated output (B,T,H,dv). Prior-specific operands as for `fem.prior`.
    `fem-expand-mixer` rewrites it into prior/tilt/expect/lse/gate.

    The scan priors (linear, gla, aft, ssm) may carry a state across
    segments of a sequence (docs/semantics.md, "Segments"): `state` is the
    state after the previous segment, a (B, H, dv, Ks) f32 tensor, and a
    second result type asks for the state after this segment (same type).
    An all-zero state is the empty state. A mixer with a state stays whole
    until `fem-tile`, which makes it one `fem.scan_read`.

    Example:

    ```mlir
    %out = fem.mixer softmax q(%q : tensor<?x?x4x16xf32>)
        k(%k : tensor<?x?x4x16xf32>) v(%v : tensor<?x?x4x16xf32>)
        beta_raw(%b : tensor<64xf32>) lam(%l : tensor<?x?x4x16xf32>)
        gate(%g : tensor<?x?x4x16xf32>) {causal} -> tensor<?x?x4x16xf32>
    ```
  }];
  let arguments = (ins FEM_PriorKindAttr:$kind,
      Optional<FEM_FloatTensor>:$q, Optional<FEM_FloatTensor>:$k,
      FEM_FloatTensor:$v, FEM_FloatTensor:$beta_raw, FEM_FloatTensor:$lam,
      FEM_FloatTensor:$gate, Optional<FEM_MaskTensor>:$mask,
      Optional<FEM_FloatTensor>:$decay, Optional<FEM_FloatTensor>:$delta,
      Optional<FEM_FloatTensor>:$A, Optional<FEM_FloatTensor>:$Bs,
      Optional<FEM_FloatTensor>:$Cs, Optional<FEM_FloatTensor>:$D,
      Optional<FEM_FloatTensor>:$state,
      UnitAttr:$causal, OptionalAttr<F64Attr>:$scale, FEM_CapAttr:$cap,
      FEM_EpsAttr:$eps, FEM_LayoutDefault:$layout,
      OptionalAttr<FEM_TilesAttr>:$tiles);
  let results = (outs FEM_FloatTensor:$result,
      Optional<FEM_FloatTensor>:$state_out);
  let assemblyFormat = [{
    custom<PriorKind>($kind) (`q` `(` $q^ `:` type($q) `)`)? (`k` `(` $k^ `:` type($k) `)`)?
    `v` `(` $v `:` type($v) `)` `beta_raw` `(` $beta_raw `:` type($beta_raw) `)`
    `lam` `(` $lam `:` type($lam) `)` `gate` `(` $gate `:` type($gate) `)`
    (`mask` `(` $mask^ `:` type($mask) `)`)?
    (`decay` `(` $decay^ `:` type($decay) `)`)?
    (`delta` `(` $delta^ `:` type($delta) `)`)? (`A` `(` $A^ `:` type($A) `)`)?
    (`Bs` `(` $Bs^ `:` type($Bs) `)`)? (`Cs` `(` $Cs^ `:` type($Cs) `)`)?
    (`D` `(` $D^ `:` type($D) `)`)?
    (`state` `(` $state^ `:` type($state) `)`)?
    attr-dict `->` type($result) (`,` type($state_out)^)?
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// fem.fused_read
//===----------------------------------------------------------------------===//

def FEM_FusedReadOp : FEM_Op<"fused_read", [Pure]> {
  let summary = "Both reads of one prior as a single read, gate as epilogue";
  let description = [{
    The result of `fem-fuse-reads`: one read under `prior` of the panel
    [clipped | exp(beta*clipped - M)] (width 2*dv, the paper's trick), then
    the log restore of the second half and the gate as the epilogue. The tilt
    is recomputed from the raw values `v` (squashed by a sigmoid first when
    `squash` is set); `mask`, when present, is the prior's key-padding mask
    and also excludes keys from the shift M. Result (B,T,H,dv).

    Example:

    ```mlir
    %out = fem.fused_read %p, %v, %beta_raw, %lam, %gate
        : !fem.prior<softmax, 2x4x64x64>, tensor<2x64x4x16xf32>,
          tensor<64xf32>, tensor<2x64x4x16xf32>, tensor<2x64x4x16xf32>
        -> tensor<2x64x4x16xf32>
    ```
  }];
  let arguments = (ins FEM_PriorType:$prior, FEM_FloatTensor:$v,
      FEM_FloatTensor:$beta_raw, FEM_FloatTensor:$lam, FEM_FloatTensor:$gate,
      Optional<FEM_MaskTensor>:$mask, FEM_CapAttr:$cap, FEM_EpsAttr:$eps,
      FEM_LayoutDefault:$layout, UnitAttr:$squash,
      OptionalAttr<FEM_TilesAttr>:$tiles);
  let results = (outs FEM_FloatTensor:$result);
  let assemblyFormat = [{
    $prior `,` $v `,` $beta_raw `,` $lam `,` $gate
    (`mask` `(` $mask^ `:` type($mask) `)`)? attr-dict `:`
    qualified(type($prior)) `,` type($v) `,` type($beta_raw) `,` type($lam)
    `,` type($gate) `->` type($result)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// fem.tile_read
//===----------------------------------------------------------------------===//

def FEM_TileReadOp : FEM_Op<"tile_read"> {
  let summary = "One workgroup of a tiled, fused softmax FEM read on buffers";
  let description = [{
    The result of `fem-tile`: workgroup (`wg_x`, `wg_y`, `wg_z`) =
    (query tile, kv head, batch) of the fused read, on memrefs in
    destination-passing style. With n = ceil(T / tiles.q) query tiles, the
    workgroup owns query tile n - 1 - wg_x (the longest causal rows run
    first), i.e. rows [(n-1-wg_x)*tiles.q, ...) of every query head in
    kv-head group wg_y of batch wg_z, and walks the keys in steps of tiles.k
    with online softmax rescaling. `fem-lower-to-cpu` turns it into loops
    and vectors.

    Example:

    ```mlir
    fem.tile_read softmax q(%q : memref<?x?x4x16xf32>)
        k(%k : memref<?x?x4x16xf32>) v(%v : memref<?x?x4x16xf32>)
        beta_raw(%b : memref<64xf32>) lam(%l : memref<?x?x4x16xf32>)
        gate(%g : memref<?x?x4x16xf32>) out(%o : memref<?x?x4x16xf32>)
        at(%x, %y, %z) {causal, tiles = #fem.tiles<q = 32, k = 64, vec = 8>}
    ```
  }];
  let arguments = (ins FEM_PriorKindAttr:$kind,
      Arg<FEM_FloatMemRef, "", [MemRead]>:$q,
      Arg<FEM_FloatMemRef, "", [MemRead]>:$k,
      Arg<FEM_FloatMemRef, "", [MemRead]>:$v,
      Arg<FEM_FloatMemRef, "", [MemRead]>:$beta_raw,
      Arg<FEM_FloatMemRef, "", [MemRead]>:$lam,
      Arg<FEM_FloatMemRef, "", [MemRead]>:$gate,
      Arg<Optional<FEM_MaskMemRef>, "", [MemRead]>:$mask,
      Arg<FEM_FloatMemRef, "", [MemWrite]>:$out,
      Index:$wg_x, Index:$wg_y, Index:$wg_z,
      UnitAttr:$causal, OptionalAttr<F64Attr>:$scale, FEM_CapAttr:$cap,
      FEM_EpsAttr:$eps, FEM_LayoutDefault:$layout, FEM_TilesAttr:$tiles);
  let assemblyFormat = [{
    custom<PriorKind>($kind) `q` `(` $q `:` type($q) `)` `k` `(` $k `:` type($k) `)`
    `v` `(` $v `:` type($v) `)` `beta_raw` `(` $beta_raw `:` type($beta_raw) `)`
    `lam` `(` $lam `:` type($lam) `)` `gate` `(` $gate `:` type($gate) `)`
    (`mask` `(` $mask^ `:` type($mask) `)`)?
    `out` `(` $out `:` type($out) `)` `at` `(` $wg_x `,` $wg_y `,` $wg_z `)`
    attr-dict
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// fem.scan_read
//===----------------------------------------------------------------------===//

def FEM_ScanReadOp : FEM_Op<"scan_read", [AttrSizedOperandSegments]> {
  let summary = "One workgroup of a tiled, fused scan-family FEM read on buffers";
  let description = [{
    The result of `fem-tile` for the priors whose grid is a whole-sequence
    scan (`linear`, `gla`, `aft`, `ssm`; see dialect/Priors.h): workgroup
    (`wg_x`, `wg_y`, `wg_z`) = (value-channel block, query head, batch). With
    `tiles = #fem.tiles<q = C, k = Bc, vec = L>` the workgroup owns channels
    [wg_x*Bc, min(dv, (wg_x+1)*Bc)) of query head wg_y in batch wg_z, for
    every position, and walks the sequence in chunks of C rows carrying its
    state: S (dk x 2*Bc) and z (dk) for linear and gla (intra-chunk quadratic
    form, decay factors relative to the chunk start for gla), running sums
    per channel for aft, and x (Bc x N, three streams) for ssm. The value
    panel is [clipped | exp(beta*clipped - M)] as for `fem.tile_read`; the
    log restore and the gate are the epilogue. `causal` matters for linear
    only (the other priors are always causal). Operands as for `fem.mixer`,
    on memrefs in destination-passing style. With `state` the workgroup
    starts from the carried state of its channels instead of the empty
    state; with `state_out` it writes its channels' final state there
    ((B, H, dv, Ks) f32, docs/semantics.md "Segments"; each workgroup reads
    and writes only its own channels, so the two may be one buffer).

    `state_only` is phase 1 of the chunk-level parallel prefix
    (docs/architecture.md, "Both cores at B = H = 1"): the workgroup walks its
    keys and writes only `state_out`, whose records have one more slot than
    the state (Ks + 1: the segment's total log decay, gla's unclamped sum
    of a or ssm's sum of delta, 0 for the other priors); `out` is not
    written and the rows are not read.

    `keys(%b, %e)` (non-causal `linear` only) is the split of a non-causal
    read (docs/architecture.md, "Both cores at B = H = 1"): the workgroup
    adds only keys [b, e) to its state, its tilt still centred on all S
    keys' values (the pre-pass reads every key), and `state` / `state_out`
    hold the plain sums of that centred form (S_mu, S_(X-o), z at their
    record slots; the common part [M, L, seen] is neither read nor
    written). Every segment computes the same centre from the same values,
    so their sums add: phase 1 (`state_only`) writes the sums of its keys,
    phase 3 reads the rows from the total with an empty range.

    Example:

    ```mlir
    fem.scan_read gla q(%q : memref<?x?x4x16xf32>)
        k(%k : memref<?x?x4x16xf32>) v(%v : memref<?x?x4x16xf32>)
        beta_raw(%b : memref<64xf32>) lam(%l : memref<?x?x4x16xf32>)
        gate(%g : memref<?x?x4x16xf32>) decay(%d : memref<?x?x4xf32>)
        out(%o : memref<?x?x4x16xf32>) at(%x, %y, %z)
        {tiles = #fem.tiles<q = 64, k = 32, vec = 8>}
    ```
  }];
  let arguments = (ins FEM_PriorKindAttr:$kind,
      Arg<Optional<FEM_FloatMemRef>, "", [MemRead]>:$q,
      Arg<Optional<FEM_FloatMemRef>, "", [MemRead]>:$k,
      Arg<FEM_FloatMemRef, "", [MemRead]>:$v,
      Arg<FEM_FloatMemRef, "", [MemRead]>:$beta_raw,
      Arg<FEM_FloatMemRef, "", [MemRead]>:$lam,
      Arg<FEM_FloatMemRef, "", [MemRead]>:$gate,
      Arg<Optional<FEM_MaskMemRef>, "", [MemRead]>:$mask,
      Arg<Optional<FEM_FloatMemRef>, "", [MemRead]>:$decay,
      Arg<Optional<FEM_FloatMemRef>, "", [MemRead]>:$delta,
      Arg<Optional<FEM_FloatMemRef>, "", [MemRead]>:$A,
      Arg<Optional<FEM_FloatMemRef>, "", [MemRead]>:$Bs,
      Arg<Optional<FEM_FloatMemRef>, "", [MemRead]>:$Cs,
      Arg<Optional<FEM_FloatMemRef>, "", [MemRead]>:$D,
      Arg<Optional<FEM_FloatMemRef>, "", [MemRead]>:$state,
      Arg<FEM_FloatMemRef, "", [MemWrite]>:$out,
      Arg<Optional<FEM_FloatMemRef>, "", [MemWrite]>:$state_out,
      Optional<Index>:$key_begin, Optional<Index>:$key_end,
      Index:$wg_x, Index:$wg_y, Index:$wg_z,
      UnitAttr:$causal, FEM_CapAttr:$cap, FEM_EpsAttr:$eps,
      FEM_LayoutDefault:$layout, FEM_TilesAttr:$tiles, UnitAttr:$state_only);
  let assemblyFormat = [{
    custom<PriorKind>($kind) (`q` `(` $q^ `:` type($q) `)`)? (`k` `(` $k^ `:` type($k) `)`)?
    `v` `(` $v `:` type($v) `)` `beta_raw` `(` $beta_raw `:` type($beta_raw) `)`
    `lam` `(` $lam `:` type($lam) `)` `gate` `(` $gate `:` type($gate) `)`
    (`mask` `(` $mask^ `:` type($mask) `)`)?
    (`decay` `(` $decay^ `:` type($decay) `)`)?
    (`delta` `(` $delta^ `:` type($delta) `)`)? (`A` `(` $A^ `:` type($A) `)`)?
    (`Bs` `(` $Bs^ `:` type($Bs) `)`)? (`Cs` `(` $Cs^ `:` type($Cs) `)`)?
    (`D` `(` $D^ `:` type($D) `)`)?
    (`state` `(` $state^ `:` type($state) `)`)?
    `out` `(` $out `:` type($out) `)`
    (`state_out` `(` $state_out^ `:` type($state_out) `)`)?
    (`keys` `(` $key_begin^ `,` $key_end `)`)?
    `at` `(` $wg_x `,` $wg_y `,` $wg_z `)`
    attr-dict
  }];
  let hasVerifier = 1;
}

#endif // FEM_OPS_TD
