//===- Passes.td - fem passes ------------------------------*- tablegen -*-===//
#ifndef FEM_PASSES_TD
#define FEM_PASSES_TD

include "mlir/Pass/PassBase.td"

def FEMExpandMixer : Pass<"fem-expand-mixer"> {
  let summary = "Expand fem.mixer into prior, tilt, expect, lse and gate";
  let description = [{
    Rewrites every `fem.mixer` into the ops of the read it stands for:
    `fem.prior` (with the prior-specific operands), `fem.tilt` (clip, shift,
    tilt), `fem.expect` (mean read of the clipped values), `fem.lse`
    (free-energy read of the tilted values) and `fem.gate`. A `tiles`
    attribute on the mixer is kept on the prior as `fem.tiles`.
  }];
  let dependentDialects = ["::mlir::fem::FEMDialect"];
}

def FEMFuseReads : Pass<"fem-fuse-reads"> {
  let summary = "Fuse the two reads of one prior and the gate into fem.fused_read";
  let description = [{
    Matches `fem.gate(fem.expect(p, clipped), fem.lse(p, tilted, shift, beta),
    lam, gate)` where clipped/tilted/shift come from one `fem.tilt` and both
    reads use the same prior `p`, and replaces it with one `fem.fused_read`
    whose value panel is [clipped | tilted] and whose epilogue is the log
    restore and the gate. Reads of different priors, reads of values that do
    not come from one tilt, or ops whose eps/layout disagree stay apart.
  }];
  let dependentDialects = ["::mlir::fem::FEMDialect"];
}

def FEMOutlineMixers : Pass<"fem-outline-mixers", "::mlir::ModuleOp"> {
  let summary = "Move the fem.mixer ops of layer functions into kernels of their own";
  let description = [{
    A layer function computes more than one FEM read (projections, RoPE,
    the output projection around a `fem.mixer`). Each of its mixers becomes
    a kernel-level function `@<layer>_fem<i>` (its arguments are the
    prior's operands in the prior table's order, `femc::priors::
    kernelArguments`: q, k, v, beta_raw, lam, gate, then the mask, gla's
    decay or ssm's delta, A, Bs, Cs, D as the prior takes them), and the
    mixer itself becomes a call on
    buffers to `@<layer>_fem<i>_run`, which the driver implements by running
    the kernel's workgroup grid: `bufferization.to_buffer` of each operand,
    a `memref.alloc` for the result, the call, and `bufferization.to_tensor`
    of the result. The layer function is renamed `@<layer>_layer` and keeps
    its name in `fem.layer`; the rest of it is bufferized and lowered by
    upstream passes. Kernel-level functions are left alone.
  }];
  let dependentDialects = ["::mlir::fem::FEMDialect",
                           "::mlir::func::FuncDialect",
                           "::mlir::memref::MemRefDialect",
                           "::mlir::bufferization::BufferizationDialect",
                           "::mlir::tensor::TensorDialect"];
}

def FEMTile : Pass<"fem-tile", "::mlir::ModuleOp"> {
  let summary = "Split a kernel-level fused read into a workgroup function";
  let description = [{
    For every kernel-level function (its body a `fem.prior` and a
    `fem.fused_read` of function arguments, returning the read) creates
    `@<name>_wg`: the same computation in destination-passing style on
    memrefs, for one workgroup of the grid the prior table
    (dialect/Priors.h) gives: (query tile, kv head, batch) with a
    `fem.tile_read` for softmax, (value-channel block, query head, batch)
    with a `fem.scan_read` for the scan priors linear, gla, aft and ssm. The
    grid is stamped on the workgroup function as `fem.grid` (three
    [extent, divisor] axes) for the driver. Tile sizes come from the options
    when given, otherwise from a `#fem.tiles` attribute on the read,
    otherwise from the prior's defaults at the target's vector width, and
    are checked against the prior's rules. The tensor function is replaced.
  }];
  let options = [
    Option<"tileQ", "tile-q", "int64_t", /*default=*/"0",
           "Query rows per workgroup (0: attribute or target default)">,
    Option<"tileK", "tile-k", "int64_t", /*default=*/"0",
           "Keys per inner step (0: attribute or target default)">,
    Option<"vectorWidth", "vec", "int64_t", /*default=*/"0",
           "Vector lanes (0: attribute or target default)">,
    Option<"target", "target", "std::string", /*default=*/"\"host\"",
           "Target whose defaults apply: host, avx2, avx512, generic">,
  ];
  let dependentDialects = ["::mlir::fem::FEMDialect",
                           "::mlir::memref::MemRefDialect",
                           "::mlir::func::FuncDialect"];
}

def FEMApplyTuning : Pass<"fem-apply-tuning", "::mlir::ModuleOp"> {
  let summary = "Attach the tiles fem-tune recorded in a tuning database to the mixers";
  let description = [{
    For every `fem.mixer`, computes the key `fem-tune` records (the kernel's
    semantics as femc's manifest describes it, the target, the shape bucket
    of the extents given in `dims`, femc's version; docs/tuning.md) and, when
    the database has it, sets the mixer's `tiles` to the recorded ones. Each
    mixer is looked up by its own key, so the kernels of one model get their
    own tiles; a miss leaves the mixer alone (fem-tile takes the target's
    defaults) and `verbose` says why. A database that cannot be read is an
    error, and so is one that does not exist unless `missing-ok` is set
    (then it is an empty database; femc sets it and warns itself). `femc --tuning-db` runs this pass before fem-tile. An entry that
    records tuned pool threads for a kernel (not a layer's mixer) adds them
    to the module attribute `fem.tuned_threads` ({kernel name: threads}),
    which femc writes into the manifest's "threads".
  }];
  let options = [
    Option<"db", "db", "std::string", /*default=*/"\"\"",
           "The tuning database (JSON, written by fem-tune)">,
    ListOption<"dims", "dims", "std::string",
               "The dynamic extents whose shape bucket is looked up, SYM=N "
               "separated by commas, e.g. B=1,T=4096">,
    Option<"target", "target", "std::string", /*default=*/"\"host\"",
           "The target description of the keys, as femc writes it in the "
           "manifest's \"target\" (e.g. host:emeraldrapids, x86-64-v3 "
           "(AVX2, FMA)); the default, host, is no description femc writes "
           "and matches no entry: give it">,
    Option<"femcVersion", "femc-version", "std::string", /*default=*/"\"\"",
           "The femc version of the keys (default: this build's)">,
    Option<"dimOption", "dim-option", "std::string", /*default=*/"\"dims\"",
           "The option name messages give for the extents (default dims; "
           "femc sets --tuning-dim)">,
    Option<"verbose", "verbose", "bool", /*default=*/"false",
           "Print where each kernel's tiles come from">,
    Option<"missingOk", "missing-ok", "bool", /*default=*/"false",
           "Treat a database file that does not exist as an empty database "
           "(default: an error naming the path)">,
  ];
  let dependentDialects = ["::mlir::fem::FEMDialect"];
}

def FEMLowerToCPU : Pass<"fem-lower-to-cpu", "::mlir::ModuleOp"> {
  let summary = "Lower fem.tile_read and fem.scan_read to scf, vector, memref, arith and math";
  let description = [{
    Expands each `fem.tile_read` into the fused online-softmax loop nest of
    docs/architecture.md: a pre-pass computing the max/min of the raw values
    of the kv head, beta, the clip bound and the shift M per query head of
    the group, and Q^T pre-scaled; then, per key tile (causal tiles above the
    diagonal skipped), per head the [clipped | tilted] value panel, scores
    S^T as vector FMAs with register blocking (query rows on vector lanes),
    online max/sum rescaling and the panel contraction into one accumulator
    of width 2*dv; finally the log restore and the gate as the epilogue.
    Scratch is sized by the tiles and head dims only (never by T).
    Each `fem.scan_read` is expanded by its prior's emitter
    (passes/cpu/Read*.cpp, as `fem-lower-scans-to-cpu` does).
  }];
  let dependentDialects = ["::mlir::scf::SCFDialect",
                           "::mlir::vector::VectorDialect",
                           "::mlir::memref::MemRefDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::math::MathDialect"];
}

def FEMLowerScansToCPU : Pass<"fem-lower-scans-to-cpu", "::mlir::ModuleOp"> {
  let summary = "Lower fem.scan_read (linear, gla, aft, ssm) to scf, vector, memref, arith and math";
  let description = [{
    Expands each `fem.scan_read` with the emitter of its prior's read
    algorithm (dialect/Priors.h; passes/cpu/Read*.cpp): the shift pre-pass
    over the block's channels, then the chunked linear/gla read (intra-chunk
    quadratic form plus a carried dk x 2Bc state), the aft running sums or
    the ssm selective scan, with the log restore and the gate as the shared
    epilogue. `fem-lower-to-cpu` does the same for the scan reads it finds;
    this pass lowers scan reads only, so each emitter can be tested alone.
    Transcendentals stay as math ops (no polynomial expansion here).
  }];
  let dependentDialects = ["::mlir::scf::SCFDialect",
                           "::mlir::vector::VectorDialect",
                           "::mlir::memref::MemRefDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::math::MathDialect"];
}

def FEMLayerStridedMetadata : Pass<"fem-layer-strided-metadata", "::mlir::ModuleOp"> {
  let summary = "Turn the reshapes of bufferized layer functions into strided views";
  let description = [{
    In every layer function (`fem.layer`), rewrites `memref.expand_shape`
    into `memref.reinterpret_cast` of the source's base buffer with the
    op's own `output_shape` (any number of dynamic extents per
    reassociation group, e.g. (B*T, D) to (B, T, H, d)), then applies the
    upstream expand-strided-metadata patterns to the rest
    (`collapse_shape`, `subview`). Upstream's expand_shape rewrite assumes
    at most one dynamic extent per group and crashes on more. Kernel
    functions are left alone.
  }];
  let dependentDialects = ["::mlir::affine::AffineDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::memref::MemRefDialect"];
}

def FEMLayerMatmul : Pass<"fem-layer-matmul", "::mlir::ModuleOp"> {
  let summary = "Lower the projections of bufferized layer functions to packed, register-blocked matmul stages";
  let description = [{
    In every layer function (`fem.layer`), a `linalg.generic` that is a
    contraction C(M,N) += A(M,K)·B on contiguous f32 buffers, with B as
    (K,N) or (N,K) (nn.Linear's W) after collapsing the m, n and k
    dimensions (no batch dimension), becomes parallel stages: a pack of
    B into column panels of two vectors (`<layer>_mm_pack_nn_wg` or
    `<layer>_mm_pack_nt_wg`, one workgroup per panel), a pack of A into
    blocks of the register block's rows (`<layer>_mm_pack_a_wg`, one
    workgroup per block; shared by the contractions that read the same A
    unless an op between them may write it) and a register-blocked matmul
    (`<layer>_mm_wg`, reads the packed A; one workgroup per tile of C of
    about 256 x 128: 14 x 2-vector blocks of FMAs with 32 vector registers, 6 x 2 with 16,
    K in blocks of 512, each block's rows of A against every panel of the
    tile, accumulators initialised from C). The layer calls
    `<layer>_mm_*_run(buffers..., count)`, which the driver's glue runs on
    libfemrt's pool. The vector width follows the module's
    `fem.target_features` where they name a vector extension, else the
    width fem-tile chose for the layer's FEM read (`#fem.tiles` vec), else
    4 lanes (the host's for a module without the attribute). A weight indexed as
    `h * d + c` (the loop c over exactly d) is first expanded to (.., H, d,
    ..) and indexed (h, c), so hand-written per-head maps match too.

    Every other generic of the layer (bias broadcasts, fills, masks, RoPE,
    row-wise ops) whose leading loops (at most two) are parallel and index
    every operand directly becomes an element-wise stage the same glue runs
    on the pool (`<layer>_ew<N>_wg`, one chunk of those loops per
    workgroup; all-parallel bodies of element-wise ops vectorised, the rest
    scalar). Before that, a costly (math or division) value of an
    all-parallel body that depends only on some loop indices, such as
    RoPE's cos and sin written per element, is computed once into a table
    (a stage of its own) that the body reads.

    Option `precision` picks the projections' arithmetic: `f32` (the FMA
    stages above), or `bf16x3` / `bf16x6` (AMX-BF16 tiles: A and B split
    exactly into two or three bf16 pieces, the 3 or 6 leading products of
    the pieces accumulated in f32 tiles; stages `<layer>_mmx_pack_a_wg`,
    `<layer>_mmx_pack_{nn,nt}_wg`, `<layer>_mmx_wg`, layout in
    passes/layer/LayerMatmulBlocking.h). bf16x6 has an f32 dot product's
    error (docs/layers.md, "Matmul precision"); bf16x3 about 2^-16
    relative. `auto` (the default) is bf16x6 where the module's
    `fem.target_features` has amx-tile and amx-bf16, else f32; a split mode
    on a target without them is an error. Option `target` (host, avx2,
    avx512, generic: fem-tile's) sets the f32 stages' vector width
    (defaultVectorWidth); empty, the width is read from the module as
    described above.
  }];
  let options = [
    Option<"target", "target", "std::string", /*default=*/"\"\"",
           "The target whose vector width the f32 stages use (host, avx2, "
           "avx512, generic; empty: from the module's features)">,
    Option<"precision", "precision", "std::string", /*default=*/"\"auto\"",
           "Matmul arithmetic: auto, f32, bf16x3 or bf16x6">,
  ];
  let dependentDialects = ["::mlir::amx::AMXDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::func::FuncDialect",
                           "::mlir::memref::MemRefDialect",
                           "::mlir::scf::SCFDialect",
                           "::mlir::vector::VectorDialect"];
}

def FEMLayerInputsReadOnly : Pass<"fem-layer-inputs-read-only", "::mlir::ModuleOp"> {
  let summary = "Mark the tensor arguments of layer functions read-only for bufferization";
  let description = [{
    A layer's arguments are the caller's arrays (x, the weights). One-shot
    bufferization with function boundaries treats a function's tensor
    arguments as writable, so an op of the layer body whose destination is
    an argument (`linalg.generic ... outs(%x)`, an element-wise op that
    convert-elementwise-to-linalg gives its first operand as destination,
    `tensor.insert_slice` into an argument) was bufferized in place: the
    layer overwrote its caller's input, and the next call with the same
    array computed from the overwritten values. This pass sets
    `bufferization.writable = false` on every tensor argument of every
    function with a `fem.layer` attribute, so bufferization copies such a
    destination first.
  }];
  let dependentDialects = ["::mlir::bufferization::BufferizationDialect"];
}

def FEMDecomposeAggregates : Pass<"fem-decompose-aggregates", "::mlir::ModuleOp"> {
  let summary = "Decompose aggregated linalg ops (linalg.softmax) of layer bodies into linalg.generic";
  let description = [{
    An op that implements linalg's AggregatedOpInterface (`linalg.softmax`
    in MLIR 22) has no lowering to loops of its own: left in a layer body it
    reaches the LLVM translation as an unrealized cast. This pass replaces
    each such op on tensors by its decomposition (`decomposeOperation`:
    for softmax a max reduction, the shifted exponentials, a sum reduction
    and a division, as linalg.generic ops), which bufferize and run as loop
    stages like any generic. An op whose decomposition fails is reported
    with its location.
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::linalg::LinalgDialect",
                           "::mlir::tensor::TensorDialect"];
}

def FEMLowerCopies : Pass<"fem-lower-copies", "::mlir::ModuleOp"> {
  let summary = "Lower the memref.copy ops the LLVM lowering would call memrefCopy for to loops";
  let description = [{
    finalize-memref-to-llvm copies with one memcpy only when both sides
    are contiguous (an identity layout, or a static row-major shape); any
    other copy, such as the one `tensor.insert_slice` into a slice of the
    last dimension bufferizes to, becomes a call of MLIR's runner-utils
    function `memrefCopy`, which no femc library links. This pass rewrites
    exactly those copies into scf.for loops over the copied shape, the
    innermost dimension by 256-bit vector.load/vector.store (and an
    element-wise rest) when both sides have a unit innermost stride,
    element by element otherwise. Copies of unranked memrefs are left
    alone.
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::memref::MemRefDialect",
                           "::mlir::scf::SCFDialect",
                           "::mlir::vector::VectorDialect"];
}

def FEMLayerLoopStages : Pass<"fem-layer-loop-stages", "::mlir::ModuleOp"> {
  let summary = "Run the parallel loop nests of layer functions as stages on the pool";
  let description = [{
    In every layer function (`fem.layer`), after convert-linalg-to-loops,
    a top-level scf.for nest whose leading loops (at most two, perfectly
    nested, no results; the innermost loop is never taken) are parallel
    becomes a stage: `<layer>_loop<N>_wg(buffers..., i)` runs chunk i of
    the band's flattened iterations (at most 64 chunks) in the loops'
    order, and the layer calls `<layer>_loop<N>_run(buffers..., count)`,
    which the driver's glue runs on libfemrt's pool like the stages of
    fem-layer-matmul. This is the time-decay conditioning's scan (parallel
    over batch and channels, sequential over time) and any generic left as
    loops. A loop is parallel when every buffer the nest writes (other than
    its own allocations) is an allocation of the layer accessed only by
    loads and stores of one identity-layout view that index one fixed
    dimension with the loop's induction variable, and no other op of the
    nest writes memory or reads such a buffer; scalars from above must be
    constants or pure arithmetic of buffer extents. Anything else stays in
    the layer as it was.

    Where the band's last loop has step 1 and its body is element-wise
    arith/math on floats, loads and stores whose last index is that loop's
    variable (or does not depend on it), and inner scf.for loops carrying
    floats, each workgroup runs it in groups of `lanes` consecutive
    iterations as vectors (the same ops per lane, so the same bits) and a
    last partial group as the scalar loop: the time-decay conditioning's
    scan runs 16 channels at once on AVX-512.
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::func::FuncDialect",
                           "::mlir::memref::MemRefDialect",
                           "::mlir::scf::SCFDialect",
                           "::mlir::vector::VectorDialect"];
  let options = [
    Option<"lanes", "lanes", "int64_t", /*default=*/"0",
           "Lanes of the band's last loop run as one vector (0: 16 with "
           "AVX-512F in fem.target_features, else 8; 1: no vectors)">,
  ];
}

#endif // FEM_PASSES_TD
