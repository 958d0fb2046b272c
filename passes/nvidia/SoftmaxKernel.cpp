//===- SoftmaxKernel.cpp - the GPU kernel of a softmax fem.tile_read ------===//
//
// Emits one `gpu.func` kernel for the fused online-softmax FEM read of a
// `fem.tile_read` (docs/gpu.md). Block (x, y, z) = (query tile, query head
// h, batch); the block's threads are `rows` groups of `lanesPerRow`
// consecutive lanes, group r owning query row t0 + r, lane p owning the q
// channels and value channels p, p + P, p + 2P, ... (P = lanesPerRow).
//
//   pre-pass (fused): max v, min v, the sum and count of v and a NaN flag
//     per channel of kv head h / (H/Hkv) over the unmasked keys the block's
//     rows see (all of them, or [0, t0 + rows) when causal), reduced
//     through shared memory; then per channel beta = softplus(beta_raw) +
//     eps, bound = cap/beta, the shift (vmax = clamp(max v), or the centre
//     near the mean where the span allows) and the offset flag (narrow or
//     centred), all as passes/cpu/ReadSoftmax.cpp computes them.
//   per key tile of Bk keys (causal: only tiles starting at or before the
//   block's last row):
//     stage K (Bk x dk) and the value panel [clamp(v) | X - offset]
//     (Bk x 2dv, X = e^(beta*(clamp(v) - shift)), X - 1 on offset
//     channels by expm1 near the shift, zero for keys out of range or
//     masked) in shared memory;
//     scores: each lane dots its q channels with the key, a butterfly of
//     shuffles over the row's P lanes completes the dot product;
//     online softmax in registers: m' = max(m, tile max), alpha =
//     2^((m - m')*scale*log2 e), p = 2^((s - m')*scale*log2 e), l = alpha*l
//     + sum p; then acc = alpha*acc + sum_j p_j * panel[j] for the lane's
//     channels of both streams (mu and Z in one pass over the panel).
//   epilogue (fused): gate norm over the row's dv channels (max and sum of
//     squares by butterfly), mu = acc/l, the exact log restore of F, the
//     lambda mix and one store per output element.
//
// That is the f32 (CUDA-core) kernel: all arithmetic is f32; f16/bf16
// tensors are widened on load and narrowed on the final store.
//
// The tensor-core kernel (emitMma; f16/bf16 with dk % 16 == 0, dv % 8 == 0,
// dk, dv <= 128) has the same pre-pass, online-softmax rules and epilogue
// on 4 (or 8) warps of 16 query rows: Q in A fragments, S = Q K^T on
// mma.sync.m16n8k16 from K staged as pairs of halves, P reused as the A
// fragment of P [V~ | X] against the panel staged transposed in bf16 (X as
// hi + lo, two mma per X block; l over the bf16-rounded P), f32
// accumulators in registers (the fragment layouts are in docs/gpu.md).
//
// Global memory is addressed through plain `!llvm.ptr<1>` arguments
// (KernelAbi.h) with 64-bit element offsets.
//
//===----------------------------------------------------------------------===//
#include "passes/nvidia/SoftmaxKernel.h"
#include "passes/nvidia/KernelAbi.h"
#include "passes/cpu/Builder.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "llvm/Support/MathExtras.h"

#include <cmath>
#include <tuple>
#include <limits>

using namespace mlir;
using namespace mlir::fem;
using namespace mlir::fem::nvidia;

namespace {

constexpr double kLog2E = 1.44269504088896340736;
constexpr int64_t kThreads = 256;
constexpr int64_t kLanesPerRow = 8;
/// The tensor-core variant (query rows per block: KernelAbi.h): keys per
/// tile, largest dk and dv (the 2dv/8 accumulator fragments of 4 floats
/// stay in registers).
constexpr int64_t kMmaKeys = 32;
constexpr int64_t kMmaMaxHeadDim = 128;

/// The scalar vocabulary (index and float arithmetic, NaN-transparent
/// max/min/clamp, softplus, scf loops) is the CPU emitters' EmitterBuilder:
/// one definition of the read's arithmetic (expm1 on narrow channels
/// included) for both targets. Its adds, subtracts and multiplies allow
/// contraction into FMA here whatever the back end's default (the CPU read
/// writes its FMAs explicitly). The GPU adds unsigned division, LLVM
/// intrinsics, global pointers and shuffles.
class KernelEmitter : public cpu::EmitterBuilder {
public:
  KernelEmitter(TileReadOp op, func::FuncOp wg, gpu::GPUModuleOp module,
                const SoftmaxKernelShape &shape, int64_t arch)
      : EmitterBuilder(op, op.getLayout(), /*lanes=*/1), op(op), wg(wg),
        module(module), s(shape), arch(arch) {
    addMulFlags = arith::FastMathFlags::contract;
  }

  FailureOr<gpu::GPUFuncOp> emit();

private:
  // --- scalar builders beyond EmitterBuilder ---------------------------------
  Value divU(Value x, Value y) { return arith::DivUIOp::create(b, x, y); }
  Value remU(Value x, Value y) { return arith::RemUIOp::create(b, x, y); }
  Value icmp(arith::CmpIPredicate p, Value x, Value y) {
    return arith::CmpIOp::create(b, p, x, y);
  }
  Value lt(Value x, Value y) { return icmp(arith::CmpIPredicate::slt, x, y); }
  Value andI(Value x, Value y) { return arith::AndIOp::create(b, x, y); }
  Value orI(Value x, Value y) { return arith::OrIOp::create(b, x, y); }
  /// 2^x on the special-function unit (ex2.approx.f32, 2 ulp): the softmax
  /// weights, whose relative error cancels in mu = acc/l and Z = acc'/l.
  Value exp2(Value x) { return intrinsic("llvm.exp2.f32", x); }
  /// A call of an f32 LLVM intrinsic (convert-gpu-to-nvvm would turn the
  /// llvm.intr.* ops into libdevice calls).
  Value intrinsic(StringRef name, Value x) {
    return LLVM::CallIntrinsicOp::create(b, f32, b.getStringAttr(name),
                                         ValueRange{x})
        .getResult(0);
  }
  Value shuffleXor(Value v, int64_t offset) {
    return gpu::ShuffleOp::create(b, v, static_cast<int32_t>(offset), 32,
                                  gpu::ShuffleMode::XOR)
        .getShuffleResult();
  }

  // --- memory ---------------------------------------------------------------
  Value i64(Value index) {
    return arith::IndexCastOp::create(b, b.getI64Type(), index);
  }
  Value gep(Value ptr, Type elem, Value index) {
    return LLVM::GEPOp::create(b, ptr.getType(), elem, ptr,
                               ValueRange{i64(index)});
  }
  /// Element `index` of global tensor `t` (an operand of the tile read),
  /// widened to f32.
  Value gload(Value t, Value index) {
    Type elem = elemType(t);
    Value v = LLVM::LoadOp::create(b, elem, gep(ptrOf(t), elem, index));
    return elem.isF32() ? v : arith::ExtFOp::create(b, f32, v).getResult();
  }
  void gstore(Value t, Value index, Value v) {
    Type elem = elemType(t);
    if (!elem.isF32())
      v = arith::TruncFOp::create(b, elem, v);
    LLVM::StoreOp::create(b, v, gep(ptrOf(t), elem, index));
  }
  /// Whether key `s` (in range) is kept by the mask.
  Value maskKeep(Value bi, Value sIdx) {
    Value m = op.getMask();
    Type i8 = b.getI8Type();
    Value byte = LLVM::LoadOp::create(
        b, i8, gep(ptrOf(m), i8, add(mul(bi, S), sIdx)));
    return icmp(arith::CmpIPredicate::ne, byte,
                arith::ConstantIntOp::create(b, i8, 0));
  }
  Value sload(Value m, Value i) { return memref::LoadOp::create(b, m, i); }
  void sstore(Value v, Value m, Value i) { memref::StoreOp::create(b, v, m, i); }
  Type elemType(Value t) {
    return cast<MemRefType>(t.getType()).getElementType();
  }
  Value ptrOf(Value t) { return ptrs.lookup(t); }

  /// The thread's slots f = tid + i*threads (i = 0, 1, ...) below `n` of a
  /// block-strided loop, in groups of `group` slots: `load(f)` for every
  /// slot of a group first (f clamped to n - 1, so that every address is in
  /// bounds), then `use(f, loaded)` for each slot, under f < n where some
  /// thread's slot can be past n. The loads of a group are in flight
  /// together: as one scf.for iteration per slot, each slot's loads waited
  /// for the previous slot's use, one memory latency per slot (staging a
  /// key tile took ~16 latencies, most of the kernel's time on an H200).
  /// The groups are an scf.for of their own (not unrolled), which keeps
  /// ptxas from hoisting every group's loads at once: at dk = dv = 128 the
  /// tensor-core kernel has no registers to spare for that.
  template <typename Load, typename Use>
  void stagedLoop(int64_t n, int64_t group, Load load, Use use) {
    int64_t slots = llvm::divideCeil(n, s.threads);
    group = std::max<int64_t>(1, std::min(group, slots));
    int64_t groups = llvm::divideCeil(slots, group);
    bool ragged = n != groups * group * s.threads;
    auto body = [&](Value first) {
      SmallVector<Value> f, ok;
      SmallVector<SmallVector<Value>> loaded;
      for (int64_t i = 0; i < group; ++i) {
        Value fi = add(first, idx(i * s.threads));
        f.push_back(ragged ? minI(fi, idx(n - 1)) : fi);
        ok.push_back(ragged ? lt(fi, idx(n)) : Value());
        loaded.push_back(load(f.back()));
      }
      for (int64_t i = 0; i < group; ++i) {
        if (ok[i])
          when(ok[i], [&] { use(f[i], loaded[i]); });
        else
          use(f[i], loaded[i]);
      }
    };
    if (groups == 1)
      body(tid);
    else
      loop(tid, idx(groups * group * s.threads), idx(group * s.threads), body);
  }

  /// Element offset of (batch, time, head, channel) in a tensor whose time
  /// and head extents are `tExt`, `hExt` and whose rows are `d` wide.
  Value offset(Value bi, Value t, Value h, Value c, Value tExt, Value hExt,
               int64_t d) {
    Value row = layout == Layout::bthd ? add(mul(add(mul(bi, tExt), t), hExt), h)
                                       : add(mul(add(mul(bi, hExt), h), tExt), t);
    return add(mul(row, idx(d)), c);
  }
  Value qOffset(Value t, Value c, int64_t d) {
    return offset(batch, t, head, c, T, H, d);
  }
  Value kOffset(Value key, Value c, int64_t d) {
    return offset(batch, key, kvHead, c, S, Hkv, d);
  }

  void emitPrePass();
  /// Whether key `key` exists and is not padded out.
  Value keyOk(Value key);
  /// sCol[j] = 1 for the keys s0 + j of the tile that keyOk, else 0.
  void stageColumnMask(Value s0);
  /// The loads of a panel entry (panelEntry): v of key `key` (clamped to
  /// S - 1), channel `c`, and keyOk(key).
  SmallVector<Value> panelLoad(Value key, Value c);
  /// [clamp(v) | X - offset] of channel `c` for this head's beta from
  /// panelLoad's {v, ok}: X = e^z, or expm1(z) on narrow channels, z =
  /// beta*(clamp(v) - vmax); both 0 for keys that are not ok, even if v is
  /// not finite.
  std::pair<Value, Value> panelEntry(ArrayRef<Value> loaded, Value c);
  SmallVector<Value> emitKeyTile(Value kt, ValueRange state);
  void emitEpilogue(ValueRange state);
  // The tensor-core variant.
  void emitMma();
  SmallVector<Value> emitMmaTile(Value kt, ValueRange state,
                                 ArrayRef<SmallVector<Value, 4>> qa);
  /// Two f32 values rounded to `elem` (f16 or bf16) and packed low, high
  /// into the i32 of an mma operand.
  Value pack(Value lo, Value hi, Type elem);
  /// The i32 pair of halves at even element `index` of global tensor `t`.
  Value loadPair(Value t, Value index) {
    Type elem = elemType(t);
    return LLVM::LoadOp::create(b, b.getI32Type(), gep(ptrOf(t), elem, index));
  }
  /// D = A B + C on mma.sync.m16n8k16 (row, col; f16 or bf16 operands as
  /// `bf16` says, f32 accumulators).
  SmallVector<Value, 4> mma(ArrayRef<Value> a, ArrayRef<Value> bOp,
                            ArrayRef<Value> c, bool bf16);
  // Per-thread coordinates of the tensor-core variant.
  Value warpRow, groupRow, quad;
  /// The epilogue of one query row whose channels `chan` (clamped to dv - 1;
  /// `chanValid` null where every channel is valid) are spread over `lanes`
  /// consecutive lanes (a power of two, xor-butterfly partners): the gate
  /// norm, the log restore and the guarded store at row `tStore`.
  void emitRowEpilogue(Value tStore, Value tLoadRow, Value rowOk, Value l,
                       ArrayRef<Value> chan, ArrayRef<Value> chanValid,
                       ValueRange muAcc, ValueRange zAcc, int64_t lanes);

  TileReadOp op;
  func::FuncOp wg;
  gpu::GPUModuleOp module;
  SoftmaxKernelShape s;
  int64_t arch;
  DenseMap<Value, Value> ptrs;

  Value B, T, S, H, Hkv, batch, head, kvHead, t0, rows, tid, row, lane, tRow,
      tLoad;
  Value scaleLog2e;
  SmallVector<Value> qReg;
  // Shared memory: K tile, value panel, column mask, per-channel constants
  // (beta, bound, vmax, M, narrow) and the pre-pass reduction.
  Value sK, sPanel, sCol, sChan, sRed;
};

/// Channel `lane + P*i` of a row, and whether it is below `d`.
struct LaneChannel {
  Value index; // clamped to d - 1, so every address is in bounds
  Value valid; // null when every lane's channel is valid (d % P == 0)
};

FailureOr<gpu::GPUFuncOp> KernelEmitter::emit() {
  // Kernel signature: one global pointer per memref argument of @K_wg, then
  // the extents B, T, S, H, Hkv.
  auto ptrTy = LLVM::LLVMPointerType::get(b.getContext(), 1);
  SmallVector<Type> argTypes;
  SmallVector<BlockArgument> memrefArgs;
  for (BlockArgument a : wg.getArguments())
    if (isa<MemRefType>(a.getType())) {
      argTypes.push_back(ptrTy);
      memrefArgs.push_back(a);
    }
  for (int i = 0; i < femc::nvidia::kNumExtentParams; ++i)
    argTypes.push_back(b.getI64Type());

  auto wgSpace = gpu::AddressSpaceAttr::get(b.getContext(),
                                            gpu::AddressSpace::Workgroup);
  auto shared = [&](int64_t n) {
    return MemRefType::get({n}, f32, MemRefLayoutAttrInterface{}, wgSpace);
  };
  auto sharedI32 = [&](int64_t n) {
    return MemRefType::get({n}, b.getI32Type(), MemRefLayoutAttrInterface{},
                           wgSpace);
  };
  SmallVector<Type> sharedTypes = {
      shared(s.keys * s.dk), shared(s.keys * 2 * s.dv), shared(s.keys),
      shared(5 * s.dv), shared(s.prepassParts() * s.threads)};
  if (s.mma) {
    sharedTypes[0] = sharedI32(s.keys * s.dk / 2);
    // [clamp(v) | X hi | X lo], channel-major pairs of keys.
    sharedTypes[1] = sharedI32(3 * s.dv * s.keys / 2);
  }

  StringRef kernelName = wg->getAttrOfType<StringAttr>("fem.kernel").getValue();
  std::string name = (kernelName + femc::nvidia::kKernelSuffix).str();
  b.setInsertionPointToEnd(module.getBody());
  auto func = gpu::GPUFuncOp::create(b, name, b.getFunctionType(argTypes, {}),
                                     sharedTypes);
  func->setAttr(gpu::GPUDialect::getKernelFuncAttrName(), b.getUnitAttr());
  func.setKnownBlockSizeAttr(b.getDenseI32ArrayAttr(
      {static_cast<int32_t>(s.threads), 1, 1}));
  // .minnctapersm 1: one resident block per SM is enough. Without it ptxas
  // caps some kernels at 128 registers for occupancy and spills instead.
  func->setAttr("nvvm.minctasm", b.getI32IntegerAttr(1));
  auto axis = [&](StringRef extent, int64_t divisor) {
    return b.getArrayAttr({b.getStringAttr(extent), b.getI64IntegerAttr(divisor)});
  };
  func->setAttr("fem.kernel", b.getStringAttr(kernelName));
  if (Attribute names = wg->getAttr("fem.arg_names"))
    func->setAttr("fem.arg_names", names);
  func->setAttr(femc::nvidia::kAttrGrid,
                b.getArrayAttr({axis("T", s.rows), axis("H", 1), axis("B", 1)}));
  func->setAttr(femc::nvidia::kAttrBlock,
                b.getI64ArrayAttr({s.threads, 1, 1}));
  func->setAttr(femc::nvidia::kAttrSharedBytes, b.getI64IntegerAttr(0));
  func->setAttr(femc::nvidia::kAttrStaticSharedBytes,
                b.getI64IntegerAttr(s.sharedBytes));
  func->setAttr(femc::nvidia::kAttrArch, b.getI64IntegerAttr(arch));
  Type qElem = elemType(op.getQ());
  func->setAttr(femc::nvidia::kAttrDtype,
                b.getStringAttr(qElem.isF32() ? "f32"
                                : qElem.isF16() ? "f16"
                                                : "bf16"));

  Block &entry = func.getBody().front();
  b.setInsertionPointToStart(&entry);
  for (auto [i, a] : llvm::enumerate(memrefArgs))
    ptrs[a] = entry.getArgument(i);
  ArrayRef<BlockArgument> wgMem = func.getWorkgroupAttributions();
  sK = wgMem[0];
  sPanel = wgMem[1];
  sCol = wgMem[2];
  sChan = wgMem[3];
  sRed = wgMem[4];
  auto extent = [&](int i) {
    return arith::IndexCastOp::create(b, b.getIndexType(),
                                      entry.getArgument(memrefArgs.size() + i))
        .getResult();
  };
  B = extent(0);
  T = extent(1);
  S = extent(2);
  H = extent(3);
  Hkv = extent(4);

  tid = gpu::ThreadIdOp::create(b, gpu::Dimension::x);
  row = divU(tid, idx(s.lanesPerRow));
  lane = remU(tid, idx(s.lanesPerRow));
  head = gpu::BlockIdOp::create(b, gpu::Dimension::y);
  batch = gpu::BlockIdOp::create(b, gpu::Dimension::z);
  kvHead = arith::DivUIOp::create(b, head, arith::DivUIOp::create(b, H, Hkv));
  // Query tiles run in reverse so that the longest causal rows start first.
  Value numQTiles = ceilDiv(T, idx(s.rows));
  Value qTile = sub(sub(numQTiles, idx(1)),
                    gpu::BlockIdOp::create(b, gpu::Dimension::x));
  t0 = mul(qTile, idx(s.rows));
  rows = minI(idx(s.rows), sub(T, t0));
  tRow = add(t0, row);
  // Rows past the end repeat the last row; they are never stored.
  tLoad = minI(tRow, sub(T, idx(1)));
  double scale = op.getScaleAttr() ? op.getScaleAttr().getValueAsDouble()
                                   : 1.0 / std::sqrt(static_cast<double>(s.dk));
  scaleLog2e = cst(static_cast<float>(scale * kLog2E));

  emitPrePass();
  if (s.mma) {
    emitMma();
    gpu::ReturnOp::create(b);
    return func;
  }

  // The lane's q channels, unscaled (the scale multiplies score differences).
  for (int64_t i = 0; i * s.lanesPerRow < s.dk; ++i) {
    Value c = add(lane, idx(i * s.lanesPerRow));
    Value cc = minI(c, idx(s.dk - 1));
    Value q = gload(op.getQ(), qOffset(tLoad, cc, s.dk));
    if (s.dk % s.lanesPerRow != 0)
      q = select(lt(c, idx(s.dk)), q, cst(0.0f));
    qReg.push_back(q);
  }

  // Key tiles: all of them, or (causal) those starting at or before the last
  // row of this query tile; the diagonal tile is masked per element.
  Value numKTiles = op.getCausal() ? ceilDiv(minI(add(t0, rows), S), idx(s.keys))
                                   : ceilDiv(S, idx(s.keys));
  int64_t nv = llvm::divideCeil(s.dv, s.lanesPerRow);
  SmallVector<Value> init = {cst(-std::numeric_limits<float>::infinity()),
                             cst(0.0f)};
  init.append(2 * nv, cst(0.0f));
  SmallVector<Value> state =
      loop(idx(0), numKTiles, idx(1), init,
           [&](Value kt, ValueRange it) { return emitKeyTile(kt, it); });
  emitEpilogue(state);
  gpu::ReturnOp::create(b);
  return func;
}

void KernelEmitter::emitPrePass() {
  Value eps = cst(static_cast<float>(op.getEpsAttr().getValueAsDouble()));
  Value cap = cst(static_cast<float>(op.getCapAttr().getValueAsDouble()));
  Value negInf = cst(-std::numeric_limits<float>::infinity());
  // Threads tid, tid + dvUp, ... share channel tid % dvUp and walk the keys
  // in steps of threads/dvUp; loads are coalesced along the channels.
  int64_t dvUp = llvm::PowerOf2Ceil(s.dv);
  int64_t keyLanes = s.threads / dvUp;
  Value c = remU(tid, idx(dvUp));
  Value cValid = lt(c, idx(s.dv));
  Value cc = minI(c, idx(s.dv - 1));
  Value i1False = arith::ConstantIntOp::create(b, b.getI1Type(), 0);
  // A causal tile takes M, the range and the centre over the keys its rows
  // see, [0, t0 + rows) (passes/cpu/ReadSoftmax.cpp): M cancels, and rows
  // before a late large value read X near 1, not e^-M rounded; every key
  // still passes on a NaN, as the reference's M does. The sum and the
  // count of the kept keys give the centred tilt's mean (dialect/Priors.h,
  // kCentredRange).
  // A kernel that keeps M (the tensor-core one) reduces no sum or count.
  const int64_t parts = s.prepassParts();
  const bool centring = s.centresTilt();
  Value seen = op.getCausal() ? minI(add(t0, rows), S) : S;
  SmallVector<Value> init = {negInf, cst(INFINITY), i1False};
  if (centring)
    init.append({cst(0.0f), cst(0.0f)});
  // kPrePassUnroll keys per iteration, their loads issued before any is
  // used: one memory latency per iteration instead of one per key (the
  // pre-pass walks all S keys in every block).
  constexpr int64_t kPrePassUnroll = 8;
  Value sLast = sub(S, idx(1));
  SmallVector<Value> red = loop(
      divU(tid, idx(dvUp)), S, idx(keyLanes * kPrePassUnroll), init,
      [&](Value key0, ValueRange it) {
        SmallVector<Value> keys, vals, keeps;
        for (int64_t u = 0; u < kPrePassUnroll; ++u) {
          Value key = add(key0, idx(u * keyLanes));
          Value kc = minI(key, sLast);
          keys.push_back(key);
          vals.push_back(gload(op.getV(), kOffset(kc, cc, s.dv)));
          Value keep = andI(cValid, lt(key, S));
          if (op.getMask())
            keep = andI(keep, maskKeep(batch, kc));
          keeps.push_back(keep);
        }
        SmallVector<Value> acc(it.begin(), it.end());
        for (int64_t u = 0; u < kPrePassUnroll; ++u) {
          Value v = vals[u], keep = keeps[u];
          Value nan = orI(acc[2], fcmp(arith::CmpFPredicate::UNO, v, v));
          Value counted = andI(keep, lt(keys[u], seen));
          SmallVector<Value> next = {select(counted, fmax(v, acc[0]), acc[0]),
                                     select(counted, fmin(v, acc[1]), acc[1]),
                                     select(keep, nan, acc[2])};
          if (centring)
            next.append({select(counted, fadd(acc[3], v), acc[3]),
                         select(counted, fadd(acc[4], cst(1.0f)), acc[4])});
          acc = next;
        }
        return acc;
      });
  red[2] = select(red[2], cst(1.0f), cst(0.0f));
  for (int64_t i = 0; i < parts; ++i)
    sstore(red[i], sRed, add(tid, idx(i * s.threads)));
  gpu::BarrierOp::create(b);
  when(lt(tid, idx(s.dv)), [&] {
    SmallVector<Value> start = {negInf, cst(INFINITY), cst(0.0f)};
    if (centring)
      start.append({cst(0.0f), cst(0.0f)});
    SmallVector<Value> all =
        loop(idx(0), idx(keyLanes), idx(1), start, [&](Value l, ValueRange it) {
          Value at = add(tid, mul(l, idx(dvUp)));
          auto part = [&](int64_t i) {
            return sload(sRed, add(at, idx(i * s.threads)));
          };
          SmallVector<Value> next = {fmax(part(0), it[0]), fmin(part(1), it[1]),
                                     fmax(part(2), it[2])};
          if (centring)
            next.append({fadd(part(3), it[3]), fadd(part(4), it[4])});
          return next;
        });
    Value hi = all[0], lo = all[1];
    Value anyNan = fcmp(arith::CmpFPredicate::OGT, all[2], cst(0.5f));
    Value raw = gload(op.getBetaRaw(), add(mul(head, idx(s.dv)), tid));
    Value beta = fadd(softplus(raw), eps);
    Value bound = fdiv(cap, beta);
    Value negBound = arith::NegFOp::create(b, bound);
    Value vMax = clamp(hi, negBound, bound);
    Value minV = fmul(beta, clamp(lo, negBound, bound));
    // No visible key at all: M = 0 (it cancels anyway); a NaN value makes M
    // NaN, as the reference's max does.
    Value none = fcmp(arith::CmpFPredicate::OEQ, hi, negInf);
    vMax = fadd(select(none, cst(0.0f), vMax),
                select(anyNan, cst(NAN), cst(0.0f)));
    Value maxV = fmul(beta, vMax);
    // Narrow channel (every tilted value in [1/2, 1]): the panel stores
    // X - 1 and the epilogue takes log1p (see passes/cpu/ReadSoftmax.cpp).
    Value span = fsub(maxV, minV);
    Value narrow =
        fcmp(arith::CmpFPredicate::OLE, span, cst(femc::priors::kNarrowRange));
    // Centred channel (span <= kCentredRange): the shift near the mean of
    // the kept values, v_c = clip(mean) inside [min, min(max, min +
    // kCentreSpan / beta)], and X - 1 (expm1 near v_c, panelEntry), as the
    // CPU read does. A NaN value fails the span test and keeps M.
    Value vShift = vMax, offset = narrow;
    if (centring) {
      Value mean = clamp(fdiv(all[3], all[4]), negBound, bound);
      Value vc = centreShift(mean, clamp(lo, negBound, bound), vMax,
                             fdiv(cst(femc::priors::kCentreSpan), beta));
      Value centred = andI(fcmp(arith::CmpFPredicate::OLE, span,
                                cst(femc::priors::kCentredRange)),
                           fcmp(arith::CmpFPredicate::UNE, hi, negInf));
      vShift = select(centred, vc, vMax);
      offset = orI(narrow, centred);
    }
    sstore(beta, sChan, tid);
    sstore(bound, sChan, add(tid, idx(s.dv)));
    sstore(vShift, sChan, add(tid, idx(2 * s.dv)));
    sstore(fmul(beta, vShift), sChan, add(tid, idx(3 * s.dv)));
    sstore(select(offset, cst(1.0f), cst(0.0f)), sChan,
           add(tid, idx(4 * s.dv)));
  });
  gpu::BarrierOp::create(b);
}

Value KernelEmitter::keyOk(Value key) {
  Value ok = lt(key, S);
  if (op.getMask())
    ok = andI(ok, maskKeep(batch, minI(key, sub(S, idx(1)))));
  return ok;
}

void KernelEmitter::stageColumnMask(Value s0) {
  loop(tid, idx(s.keys), idx(s.threads), [&](Value j) {
    sstore(select(keyOk(add(s0, j)), cst(1.0f), cst(0.0f)), sCol, j);
  });
}

SmallVector<Value> KernelEmitter::panelLoad(Value key, Value c) {
  Value v = gload(op.getV(), kOffset(minI(key, sub(S, idx(1))), c, s.dv));
  return {v, keyOk(key)};
}

std::pair<Value, Value> KernelEmitter::panelEntry(ArrayRef<Value> loaded,
                                                  Value c) {
  int64_t dv = s.dv;
  Value v = loaded[0], ok = loaded[1];
  Value beta = sload(sChan, c);
  Value bound = sload(sChan, add(c, idx(dv)));
  Value clipped = clamp(v, arith::NegFOp::create(b, bound), bound);
  // z = beta*clipped - shift (M, or the centre), formed from the
  // difference of the values so that small differences survive a small
  // beta; X - o by EmitterBuilder::offsetTilt (expm1 where o = 1 and
  // |z| <= ln 2).
  Value z = fmul(beta, fsub(clipped, sload(sChan, add(c, idx(2 * dv)))));
  // e^z: the f32 kernel's panel is f32, by the CPU read's polynomial (1
  // ulp); the tensor-core kernel's is X as hi + lo bf16 (16 significant
  // bits), for which ex2.approx (relative error ~2^-22, and 2^-24 relative
  // from rounding z log2 e) is exact enough, at a fraction of the
  // polynomial's ~22 instructions per panel element.
  Value ez = s.mma ? exp2(fmul(z, cst(static_cast<float>(kLog2E)))) : exp(z);
  Value tilted = offsetTilt(z, ez, sload(sChan, add(c, idx(4 * dv))));
  return {select(ok, clipped, cst(0.0f)), select(ok, tilted, cst(0.0f))};
}

SmallVector<Value> KernelEmitter::emitKeyTile(Value kt, ValueRange state) {
  int64_t P = s.lanesPerRow, Bk = s.keys, dk = s.dk, dv = s.dv;
  int64_t nv = llvm::divideCeil(dv, P);
  Value s0 = mul(kt, idx(Bk));
  Value sLast = sub(S, idx(1));
  Value threads = idx(s.threads);
  // The previous tile's readers are done with the shared tiles.
  gpu::BarrierOp::create(b);
  // K tile, row-major Bk x dk; keys past S are zero.
  stagedLoop(
      Bk * dk, 8,
      [&](Value f) -> SmallVector<Value> {
        Value key = add(s0, divU(f, idx(dk)));
        return {gload(op.getK(), kOffset(minI(key, sLast), remU(f, idx(dk)), dk))};
      },
      [&](Value f, ArrayRef<Value> k) {
        Value key = add(s0, divU(f, idx(dk)));
        sstore(select(lt(key, S), k[0], cst(0.0f)), sK, f);
      });
  // Column mask: 1 for keys that exist and are not padded out.
  stageColumnMask(s0);
  // Value panel [clamp(v) | X - offset] for this head's beta, Bk x 2dv;
  // keys out of range or masked contribute zeros, even if v is not finite.
  stagedLoop(
      Bk * dv, 4,
      [&](Value f) {
        return panelLoad(add(s0, divU(f, idx(dv))), remU(f, idx(dv)));
      },
      [&](Value f, ArrayRef<Value> loaded) {
        Value j = divU(f, idx(dv));
        Value c = remU(f, idx(dv));
        auto [clipped, tilted] = panelEntry(loaded, c);
        Value base = mul(j, idx(2 * dv));
        sstore(clipped, sPanel, add(base, c));
        sstore(tilted, sPanel, add(base, add(c, idx(dv))));
      });
  gpu::BarrierOp::create(b);

  // Scores of the Bk keys for this row: each lane's partial dot product,
  // completed by a butterfly over the row's P lanes.
  SmallVector<LaneChannel> kChan;
  for (int64_t i = 0; i * P < dk; ++i) {
    Value c = add(lane, idx(i * P));
    LaneChannel lc{minI(c, idx(dk - 1)), Value()};
    if (dk % P != 0)
      lc.valid = lt(c, idx(dk));
    kChan.push_back(lc);
  }
  SmallVector<Value> score, visible;
  for (int64_t j = 0; j < Bk; ++j) {
    Value part = cst(0.0f);
    for (auto [i, lc] : llvm::enumerate(kChan)) {
      Value k = sload(sK, add(idx(j * dk), lc.index));
      if (lc.valid)
        k = select(lc.valid, k, cst(0.0f));
      part = fadd(part, fmul(qReg[i], k));
    }
    for (int64_t off = P / 2; off >= 1; off /= 2)
      part = fadd(part, shuffleXor(part, off));
    score.push_back(part);
    Value vis = fcmp(arith::CmpFPredicate::OGT, sload(sCol, idx(j)), cst(0.5f));
    if (op.getCausal())
      vis = andI(vis, icmp(arith::CmpIPredicate::sle, add(s0, idx(j)), tRow));
    visible.push_back(vis);
  }
  // Online softmax (the same rules as the CPU read): m' = max(m, tile max);
  // alpha = 0 on a row's first non-empty tile, 1 while it has seen no key.
  Value mOld = state[0], lOld = state[1];
  Value negInf = cst(-std::numeric_limits<float>::infinity());
  Value tileMax = negInf;
  for (int64_t j = 0; j < Bk; ++j)
    tileMax = select(visible[j], fmax(score[j], tileMax), tileMax);
  Value mNew = fmax(tileMax, mOld);
  Value empty = fcmp(arith::CmpFPredicate::OEQ, mNew, negInf);
  Value fresh = fcmp(arith::CmpFPredicate::OEQ, mOld, negInf);
  Value alpha = select(fresh, cst(0.0f), exp2(fmul(fsub(mOld, mNew), scaleLog2e)));
  alpha = select(empty, cst(1.0f), alpha);
  SmallVector<Value> weight;
  Value tileSum = cst(0.0f);
  for (int64_t j = 0; j < Bk; ++j) {
    Value p = exp2(fmul(fsub(score[j], mNew), scaleLog2e));
    weight.push_back(select(visible[j], p, cst(0.0f)));
    tileSum = fadd(tileSum, weight.back());
  }
  SmallVector<Value> next = {mNew, fadd(fmul(alpha, lOld), tileSum)};
  // acc = alpha*acc + sum_j p_j * panel[j] for the lane's channels of both
  // streams; padding channels (>= dv) read channel dv - 1 and are never
  // stored.
  for (int64_t half = 0; half < 2; ++half)
    for (int64_t i = 0; i < nv; ++i) {
      Value c = minI(add(lane, idx(i * P)), idx(dv - 1));
      if (half)
        c = add(c, idx(dv));
      Value acc = fmul(alpha, state[2 + half * nv + i]);
      for (int64_t j = 0; j < Bk; ++j)
        acc = fadd(acc, fmul(weight[j], sload(sPanel, add(idx(j * 2 * dv), c))));
      next.push_back(acc);
    }
  return next;
}

void KernelEmitter::emitEpilogue(ValueRange state) {
  int64_t P = s.lanesPerRow, dv = s.dv;
  int64_t nv = llvm::divideCeil(dv, P);
  SmallVector<Value> chan, chanValid;
  for (int64_t i = 0; i < nv; ++i) {
    Value c = add(lane, idx(i * P));
    chanValid.push_back(lt(c, idx(dv)));
    chan.push_back(minI(c, idx(dv - 1)));
  }
  emitRowEpilogue(tRow, tLoad, lt(row, rows), state[1], chan, chanValid,
                  state.slice(2, nv), state.slice(2 + nv, nv), P);
}

void KernelEmitter::emitRowEpilogue(Value tStore, Value tLoadRow, Value rowOk,
                                    Value l, ArrayRef<Value> chan,
                                    ArrayRef<Value> chanValid,
                                    ValueRange muAcc, ValueRange zAcc,
                                    int64_t lanes) {
  int64_t dv = s.dv;
  Value eps = cst(static_cast<float>(op.getEpsAttr().getValueAsDouble()));
  Value negInf = cst(-std::numeric_limits<float>::infinity());
  // A row with no visible key has l = 0 (its output is 0); a NaN score makes
  // l NaN, which must reach the output.
  Value has = fcmp(arith::CmpFPredicate::UNE, l, cst(0.0f));
  Value inv = select(has, fdiv(cst(1.0f), l), cst(0.0f));
  SmallVector<Value> gPlus;
  Value gMax = cst(0.0f);
  for (auto [c, valid] : llvm::zip(chan, chanValid)) {
    // g+ = softplus(gate) + eps; padding channels hold 0.
    Value g = gload(op.getGate(), qOffset(tLoadRow, c, dv));
    Value gp = fadd(softplus(g), eps);
    if (valid)
      gp = select(valid, gp, cst(0.0f));
    gPlus.push_back(gp);
    gMax = fmax(gp, gMax);
  }
  // The gate norm over the row's dv channels (held by `lanes` lanes), scaled
  // as hypot does (see passes/cpu/ReadSoftmax.cpp): max, then the sum of
  // squares of g+/max.
  for (int64_t off = lanes / 2; off >= 1; off /= 2)
    gMax = fmax(shuffleXor(gMax, off), gMax);
  gMax = select(fcmp(arith::CmpFPredicate::OEQ, gMax, cst(INFINITY)),
                cst(1.0f), gMax);
  Value sq = cst(0.0f);
  SmallVector<Value> u;
  for (Value gp : gPlus) {
    u.push_back(fdiv(gp, gMax));
    sq = fadd(sq, fmul(u.back(), u.back()));
  }
  for (int64_t off = lanes / 2; off >= 1; off /= 2)
    sq = fadd(sq, shuffleXor(sq, off));
  Value norm = intrinsic("llvm.sqrt.f32", sq);
  Value sqrtDv = cst(static_cast<float>(std::sqrt(static_cast<double>(dv))));
  Value gScale = fdiv(sqrtDv, fmax(fdiv(cst(1e-5f), gMax), norm));
  for (size_t i = 0; i < chan.size(); ++i) {
    Value c = chan[i];
    Value mu = fmul(muAcc[i], inv);
    Value z = fmul(zAcc[i], inv);
    Value beta = sload(sChan, c);
    Value shift = sload(sChan, add(c, idx(3 * dv)));
    // log Z: log1p of the stored X - 1 where the channel has offset 1
    // (narrow: Z >= 1/2; centred: Z >= e^-kCentreSpan), else log of Z,
    // with log Z = -inf for Z <= 0.
    Value narrow = fcmp(arith::CmpFPredicate::OGT,
                        sload(sChan, add(c, idx(4 * dv))), cst(0.5f));
    Value positive =
        orI(narrow, fcmp(arith::CmpFPredicate::UGT, z, cst(0.0f)));
    Value logZ = select(narrow, math::Log1pOp::create(b, z),
                        math::LogOp::create(b, z));
    logZ = select(positive, logZ, negInf);
    Value tinyTerm = fsub(cst(cpu::kLogTiny), shift);
    // fmax/fmin return their second operand for NaN: keep log Z there.
    Value hi = fmax(tinyTerm, logZ);
    Value lo = fmin(tinyTerm, logZ);
    Value lse = fadd(hi, math::Log1pOp::create(b, exp(fsub(lo, hi))));
    lse = select(positive, lse, tinyTerm);
    Value freeEnergy = fdiv(fadd(lse, shift), beta);
    freeEnergy = select(has, freeEnergy, cst(0.0f));
    mu = select(has, mu, cst(0.0f));
    Value lamLogit = gload(op.getLam(), qOffset(tLoadRow, c, dv));
    Value lambda = fdiv(cst(1.0f),
                        fadd(cst(1.0f), exp(arith::NegFOp::create(b, lamLogit))));
    Value mix = fadd(fmul(fsub(cst(1.0f), lambda), mu), fmul(lambda, freeEnergy));
    Value out = fmul(fmul(u[i], gScale), mix);
    Value ok = chanValid[i] ? andI(rowOk, chanValid[i]) : rowOk;
    when(ok, [&] { gstore(op.getOut(), qOffset(tStore, c, dv), out); });
  }
}

Value KernelEmitter::pack(Value lo, Value hi, Type elem) {
  auto bits = [&](Value f) {
    Value h = arith::TruncFOp::create(b, elem, f);
    Value i = arith::BitcastOp::create(b, b.getI16Type(), h);
    return arith::ExtUIOp::create(b, b.getI32Type(), i).getResult();
  };
  Value high = arith::ShLIOp::create(
      b, bits(hi), arith::ConstantIntOp::create(b, b.getI32Type(), 16));
  return arith::OrIOp::create(b, bits(lo), high);
}

SmallVector<Value, 4> KernelEmitter::mma(ArrayRef<Value> a, ArrayRef<Value> bOp,
                                         ArrayRef<Value> c, bool bf16) {
  SmallVector<Value> aOps(a), bOps(bOp);
  if (!bf16) { // the f16 form takes vector<2xf16> registers
    auto v2 = VectorType::get({2}, b.getF16Type());
    for (Value &v : aOps)
      v = LLVM::BitcastOp::create(b, v2, v);
    for (Value &v : bOps)
      v = LLVM::BitcastOp::create(b, v2, v);
  }
  auto resTy = LLVM::LLVMStructType::getLiteral(b.getContext(),
                                                {f32, f32, f32, f32});
  NVVM::MMATypes ty = bf16 ? NVVM::MMATypes::bf16 : NVVM::MMATypes::f16;
  Value d = NVVM::MmaOp::create(
      b, resTy, aOps, bOps, c, {16, 8, 16}, std::nullopt, std::nullopt,
      std::array<NVVM::MMATypes, 2>{ty, ty},
      std::array<NVVM::MMALayout, 2>{NVVM::MMALayout::row,
                                     NVVM::MMALayout::col});
  SmallVector<Value, 4> out;
  for (int64_t i = 0; i < 4; ++i)
    out.push_back(LLVM::ExtractValueOp::create(b, d, ArrayRef<int64_t>{i}));
  return out;
}

void KernelEmitter::emitMma() {
  int64_t dk = s.dk, dv = s.dv;
  // Lane l of warp w: groupRow = l / 4 and quad = l % 4 in the fragment
  // layouts of mma.m16n8k16. The warp owns query rows 16w .. 16w + 15; the
  // thread's accumulator fragments hold rows 16w + l/4 (c0, c1) and
  // 16w + l/4 + 8 (c2, c3).
  Value warp = divU(tid, idx(32));
  Value ln = remU(tid, idx(32));
  groupRow = divU(ln, idx(4));
  quad = remU(ln, idx(4));
  warpRow = add(mul(warp, idx(16)), groupRow);
  Value tr[2] = {add(t0, warpRow), add(t0, add(warpRow, idx(8)))};
  Value trLoad[2] = {minI(tr[0], sub(T, idx(1))), minI(tr[1], sub(T, idx(1)))};
  // Q as A fragments, one per 16 channels: a0 (row g, k 2q..2q+1), a1 (row
  // g + 8), a2 (row g, k + 8), a3 (row g + 8, k + 8), loaded once.
  SmallVector<SmallVector<Value, 4>> qa;
  for (int64_t ks = 0; ks < dk / 16; ++ks) {
    Value c = add(idx(ks * 16), mul(quad, idx(2)));
    Value c8 = add(c, idx(8));
    qa.push_back({loadPair(op.getQ(), qOffset(trLoad[0], c, dk)),
                  loadPair(op.getQ(), qOffset(trLoad[1], c, dk)),
                  loadPair(op.getQ(), qOffset(trLoad[0], c8, dk)),
                  loadPair(op.getQ(), qOffset(trLoad[1], c8, dk))});
  }
  Value numKTiles = op.getCausal() ? ceilDiv(minI(add(t0, rows), S), idx(s.keys))
                                   : ceilDiv(S, idx(s.keys));
  // State: m (2 rows), this thread's share of l (2 rows), the accumulator
  // fragments of 2dv/8 channel blocks (mu blocks, then Z blocks).
  Value negInf = cst(-std::numeric_limits<float>::infinity());
  SmallVector<Value> init = {negInf, negInf, cst(0.0f), cst(0.0f)};
  init.append(4 * (2 * dv / 8), cst(0.0f));
  SmallVector<Value> state =
      loop(idx(0), numKTiles, idx(1), init,
           [&](Value kt, ValueRange it) { return emitMmaTile(kt, it, qa); });
  // Epilogue per row: l summed over the row's 4 lanes.
  for (int64_t r = 0; r < 2; ++r) {
    Value l = state[2 + r];
    for (int64_t off = 2; off >= 1; off /= 2)
      l = fadd(l, shuffleXor(l, off));
    SmallVector<Value> chan, mu, z;
    for (int64_t nc = 0; nc < dv / 8; ++nc)
      for (int64_t e = 0; e < 2; ++e) {
        chan.push_back(add(idx(nc * 8 + e), mul(quad, idx(2))));
        mu.push_back(state[4 + 4 * nc + 2 * r + e]);
        z.push_back(state[4 + 4 * (dv / 8 + nc) + 2 * r + e]);
      }
    SmallVector<Value> valid(chan.size(), Value());
    Value rowOk = lt(add(warpRow, idx(8 * r)), rows);
    emitRowEpilogue(tr[r], trLoad[r], rowOk, l, chan, valid, mu, z, 4);
  }
}

SmallVector<Value>
KernelEmitter::emitMmaTile(Value kt, ValueRange state,
                           ArrayRef<SmallVector<Value, 4>> qa) {
  int64_t Bk = s.keys, dk = s.dk, dv = s.dv;
  int64_t nvb = 2 * dv / 8; // accumulator blocks of 8 channels
  Value s0 = mul(kt, idx(Bk));
  Value sLast = sub(S, idx(1));
  Value threads = idx(s.threads);
  Value zero32 = arith::ConstantIntOp::create(b, b.getI32Type(), 0);
  gpu::BarrierOp::create(b);
  // K tile: Bk keys x dk/2 pairs of halves; keys past S are zero.
  // Loads in flight per group: fewer where the accumulators of dv = 128
  // leave few registers (ptxas spills at 8 and 4 there).
  stagedLoop(
      Bk * dk / 2, dv <= 64 ? 8 : 4,
      [&](Value f) -> SmallVector<Value> {
        Value key = add(s0, divU(f, idx(dk / 2)));
        Value cp = remU(f, idx(dk / 2));
        return {loadPair(op.getK(),
                         kOffset(minI(key, sLast), mul(cp, idx(2)), dk))};
      },
      [&](Value f, ArrayRef<Value> k) {
        Value key = add(s0, divU(f, idx(dk / 2)));
        sstore(select(lt(key, S), k[0], zero32), sK, f);
      });
  stageColumnMask(s0);
  // The panel transposed, channel-major: pairs of consecutive keys of one
  // channel of [clamp(v) | X hi | X lo] (the B operand of P [V~ | X]; X
  // stands for X - offset), in bf16 for every input type: X = e^(beta*
  // (clamp(v) - vmax)) reaches e^(-2 cap) ~ 1e-35, which bf16 (f32's
  // exponent range) keeps and f16 would flush to zero. X is a pair of bf16,
  // hi = bf16(X) and lo = bf16(X - hi) (16 significant bits), because F =
  // (log Z + M)/beta turns a relative error of Z into an absolute one of
  // 1/beta times it: with X in one bf16, the max shift and l over the
  // unrounded P the CPU's AMX read (the same numerics) failed spec_fuzz
  // draws by up to 611x the bf16 tolerance, and this kernel a needle at the
  // last of 1000 keys by 64x on the emulator (test/gpu/emu-needle.test).
  Type bf16Ty = b.getBF16Type();
  auto roundBf16 = [&](Value f) {
    Value h = arith::TruncFOp::create(b, bf16Ty, f).getResult();
    return arith::ExtFOp::create(b, b.getF32Type(), h).getResult();
  };
  // X - bf16(X), exact in f32; 0 where bf16(X) is not finite.
  auto rest = [&](Value x) {
    Value h = roundBf16(x);
    Value finite = fcmp(arith::CmpFPredicate::OLT,
                        math::AbsFOp::create(b, h), cst(INFINITY));
    return select(finite, fsub(x, h), cst(0.0f));
  };
  stagedLoop(
      dv * Bk / 2, dv <= 64 ? 4 : 2,
      [&](Value f) {
        Value c = remU(f, idx(dv));
        Value key = add(s0, mul(divU(f, idx(dv)), idx(2)));
        SmallVector<Value> both = panelLoad(key, c);
        both.append(panelLoad(add(key, idx(1)), c));
        return both;
      },
      [&](Value f, ArrayRef<Value> loaded) {
        Value c = remU(f, idx(dv));
        Value jp = divU(f, idx(dv));
        Value clippedPair[2], tiltedPair[2];
        for (int64_t e = 0; e < 2; ++e)
          std::tie(clippedPair[e], tiltedPair[e]) =
              panelEntry(loaded.slice(2 * e, 2), c);
        sstore(pack(clippedPair[0], clippedPair[1], bf16Ty), sPanel,
               add(mul(c, idx(Bk / 2)), jp));
        sstore(pack(tiltedPair[0], tiltedPair[1], bf16Ty), sPanel,
               add(mul(add(c, idx(dv)), idx(Bk / 2)), jp));
        sstore(pack(rest(tiltedPair[0]), rest(tiltedPair[1]), bf16Ty), sPanel,
               add(mul(add(c, idx(2 * dv)), idx(Bk / 2)), jp));
      });
  gpu::BarrierOp::create(b);

  // S = Q K^T, 8 keys per mma: B fragment b0 = K[n + g][k 2q, 2q+1],
  // b1 = K[n + g][k + 8 ...]. score[n][e]: row g (e < 2) or g + 8, key
  // 8n + 2q + (e & 1).
  Value tr[2] = {add(t0, warpRow), add(t0, add(warpRow, idx(8)))};
  SmallVector<SmallVector<Value, 4>> score;
  SmallVector<SmallVector<Value, 4>> visible;
  for (int64_t n = 0; n < Bk / 8; ++n) {
    SmallVector<Value, 4> acc(4, cst(0.0f));
    Value rowBase = mul(add(idx(n * 8), groupRow), idx(dk / 2));
    for (int64_t ks = 0; ks < dk / 16; ++ks) {
      Value b0 = sload(sK, add(rowBase, add(idx(ks * 8), quad)));
      Value b1 = sload(sK, add(rowBase, add(idx(ks * 8 + 4), quad)));
      acc = mma(qa[ks], {b0, b1}, acc, elemType(op.getQ()).isBF16());
    }
    score.push_back(acc);
    SmallVector<Value, 4> vis;
    for (int64_t e = 0; e < 4; ++e) {
      Value keyLocal = add(idx(n * 8 + (e & 1)), mul(quad, idx(2)));
      Value v = fcmp(arith::CmpFPredicate::OGT, sload(sCol, keyLocal), cst(0.5f));
      if (op.getCausal())
        v = andI(v, icmp(arith::CmpIPredicate::sle, add(s0, keyLocal), tr[e / 2]));
      vis.push_back(v);
    }
    visible.push_back(vis);
  }
  // Online softmax per row, the row's keys spread over its 4 lanes.
  SmallVector<Value> next;
  Value alpha[2], mNew[2];
  for (int64_t r = 0; r < 2; ++r) {
    Value mOld = state[r];
    Value tileMax = cst(-std::numeric_limits<float>::infinity());
    for (int64_t n = 0; n < Bk / 8; ++n)
      for (int64_t e = 2 * r; e < 2 * r + 2; ++e)
        tileMax = select(visible[n][e], fmax(score[n][e], tileMax), tileMax);
    for (int64_t off = 2; off >= 1; off /= 2)
      tileMax = fmax(shuffleXor(tileMax, off), tileMax);
    mNew[r] = fmax(tileMax, mOld);
    Value empty = fcmp(arith::CmpFPredicate::OEQ, mNew[r],
                       cst(-std::numeric_limits<float>::infinity()));
    Value fresh = fcmp(arith::CmpFPredicate::OEQ, mOld,
                       cst(-std::numeric_limits<float>::infinity()));
    alpha[r] = select(fresh, cst(0.0f),
                      exp2(fmul(fsub(mOld, mNew[r]), scaleLog2e)));
    alpha[r] = select(empty, cst(1.0f), alpha[r]);
  }
  SmallVector<SmallVector<Value, 4>> weight;
  Value partial[2] = {cst(0.0f), cst(0.0f)};
  for (int64_t n = 0; n < Bk / 8; ++n) {
    SmallVector<Value, 4> w;
    for (int64_t e = 0; e < 4; ++e) {
      Value p = exp2(fmul(fsub(score[n][e], mNew[e / 2]), scaleLog2e));
      w.push_back(select(visible[n][e], p, cst(0.0f)));
      // l sums P as the mma multiplies it (rounded to bf16), so that
      // numerator and denominator weigh the keys alike.
      partial[e / 2] = fadd(partial[e / 2], roundBf16(w.back()));
    }
    weight.push_back(w);
  }
  next.push_back(mNew[0]);
  next.push_back(mNew[1]);
  for (int64_t r = 0; r < 2; ++r)
    next.push_back(fadd(fmul(alpha[r], state[2 + r]), partial[r]));
  // acc = alpha * acc + P [V~ | X]: the score fragments of keys 16kk ..
  // 16kk + 15 are the A fragment of P (a0 = row g keys 2q.., a1 = row g + 8,
  // a2, a3 the same 8 keys later); B fragment b0 = panel[c + g][keys 2q,
  // 2q+1], b1 = keys + 8.
  SmallVector<SmallVector<Value, 4>> acc;
  for (int64_t nc = 0; nc < nvb; ++nc) {
    SmallVector<Value, 4> a;
    for (int64_t e = 0; e < 4; ++e)
      a.push_back(fmul(alpha[e / 2], state[4 + 4 * nc + e]));
    acc.push_back(a);
  }
  for (int64_t kk = 0; kk < Bk / 16; ++kk) {
    SmallVector<Value> pa = {
        pack(weight[2 * kk][0], weight[2 * kk][1], bf16Ty),
        pack(weight[2 * kk][2], weight[2 * kk][3], bf16Ty),
        pack(weight[2 * kk + 1][0], weight[2 * kk + 1][1], bf16Ty),
        pack(weight[2 * kk + 1][2], weight[2 * kk + 1][3], bf16Ty)};
    for (int64_t nc = 0; nc < nvb; ++nc) {
      // The X blocks (nc >= dv/8) take the hi rows, then the lo rows.
      for (int64_t piece = 0; piece < (nc < dv / 8 ? 1 : 2); ++piece) {
        Value rowBase = mul(add(idx(nc * 8 + piece * dv), groupRow),
                            idx(Bk / 2));
        Value b0 = sload(sPanel, add(rowBase, add(idx(kk * 8), quad)));
        Value b1 = sload(sPanel, add(rowBase, add(idx(kk * 8 + 4), quad)));
        acc[nc] = mma(pa, {b0, b1}, acc[nc], /*bf16=*/true);
      }
    }
  }
  for (auto &a : acc)
    next.append(a.begin(), a.end());
  return next;
}

} // namespace

FailureOr<SoftmaxKernelShape>
mlir::fem::nvidia::planSoftmaxKernel(TileReadOp op, bool tensorCores,
                                     int64_t mmaRows) {
  if (mmaRows != 0 && !femc::nvidia::isTensorCoreBlockRows(mmaRows))
    return op.emitError() << "fem-lower-to-gpu: the tensor-core kernel takes "
                          << femc::nvidia::kTensorCoreBlockRowsText
                          << " query rows per block (mma-rows), found "
                          << mmaRows;
  if (op.getKind() != PriorKind::softmax)
    return op.emitError() << "fem-lower-to-gpu: prior '"
                          << stringifyPriorKind(op.getKind())
                          << "' has no GPU lowering yet (issue 12 item 5)";
  for (Value v : {op.getQ(), op.getK(), op.getV(), op.getBetaRaw(),
                  op.getLam(), op.getGate(), op.getOut()})
    if (!cast<MemRefType>(v.getType()).getLayout().isIdentity())
      return op.emitError() << "fem-lower-to-gpu: expects memrefs with the "
                               "identity layout, found "
                            << v.getType();
  if (failed(cpu::verifyMaskBytes(op, op.getMask(), "fem-lower-to-gpu")))
    return failure();
  SoftmaxKernelShape shape;
  shape.dk = cast<MemRefType>(op.getQ().getType()).getDimSize(3);
  shape.dv = cast<MemRefType>(op.getV().getType()).getDimSize(3);
  for (auto [name, d] : {std::pair<StringRef, int64_t>{"dk", shape.dk},
                         {"dv", shape.dv}})
    if (ShapedType::isDynamic(d) || d < 1 || d > femc::nvidia::kMaxHeadDim)
      return op.emitError()
             << "fem-lower-to-gpu: the GPU kernel is specialised for a static "
             << name << " between 1 and " << femc::nvidia::kMaxHeadDim
             << ", found "
             << (ShapedType::isDynamic(d) ? std::string("a dynamic extent")
                                          : std::to_string(d));
  Type elem = cast<MemRefType>(op.getQ().getType()).getElementType();
  if (tensorCores && (elem.isF16() || elem.isBF16()) && shape.dk % 16 == 0 &&
      shape.dv % 8 == 0 && shape.dk <= kMmaMaxHeadDim &&
      shape.dv <= kMmaMaxHeadDim) {
    shape.mma = true;
    shape.rows = mmaRows ? mmaRows : femc::nvidia::kTensorCoreDefaultRows;
    shape.threads = shape.rows / 16 * 32;
    shape.lanesPerRow = 4;
    // dv > 64: 16 keys per tile, fewer score registers. At 32 the kernel
    // used 254 or 255 of sm_90's 255 registers for dk = dv = 128 and spilled
    // with some ptxas 13.0 builds.
    shape.keys = shape.dv > 64 ? kMmaKeys / 2 : kMmaKeys;
    // K (Bk x dk) and the transposed panel (3dv x Bk: clamp(v), X hi and
    // X lo) as packed pairs of halves; the column mask, 5 per-channel
    // constants, the pre-pass reduction as f32.
    shape.sharedBytes =
        2 * shape.keys * shape.dk + 2 * 3 * shape.dv * shape.keys +
        4 * (shape.keys + 5 * shape.dv + shape.prepassParts() * shape.threads);
    return shape;
  }
  if (mmaRows)
    return op.emitError()
           << "fem-lower-to-gpu: mma-rows (femc --tile-q) sets the "
              "tensor-core kernel's query rows per block, and this read gets "
              "the f32 CUDA-core kernel (f16/bf16 storage with dk % 16 == 0, "
              "dv % 8 == 0 and dk, dv <= 128 get tensor cores; found "
           << elem << ", dk = " << shape.dk << ", dv = " << shape.dv
           << (tensorCores ? "" : ", tensor-cores=false") << ")";
  // 8 lanes per row up to 128 channels (at most 16 q and 32 accumulator
  // registers per thread); 16 lanes above, so dk = dv = 256 stays spill-free
  // where ptxas allots 128 registers per thread (sm_80 at 256 threads).
  shape.lanesPerRow =
      std::max(shape.dk, shape.dv) > 128 ? 2 * kLanesPerRow : kLanesPerRow;
  shape.threads = kThreads;
  shape.rows = kThreads / shape.lanesPerRow;
  // The largest key tile whose static shared memory fits 48 KiB.
  for (int64_t keys : {32, 16, 8}) {
    int64_t floats = keys * shape.dk + keys * 2 * shape.dv + keys +
                     5 * shape.dv + shape.prepassParts() * shape.threads;
    if (floats * 4 <= femc::nvidia::kDefaultSharedLimit) {
      shape.keys = keys;
      shape.sharedBytes = floats * 4;
      return shape;
    }
  }
  return op.emitError() << "fem-lower-to-gpu: dk = " << shape.dk
                        << " and dv = " << shape.dv
                        << " need more than 48 KiB of shared memory";
}

FailureOr<gpu::GPUFuncOp> mlir::fem::nvidia::emitSoftmaxKernel(
    TileReadOp op, func::FuncOp wg, gpu::GPUModuleOp module,
    const SoftmaxKernelShape &shape, int64_t arch) {
  KernelEmitter emitter(op, wg, module, shape, arch);
  return emitter.emit();
}
