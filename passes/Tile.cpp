//===- Tile.cpp - kernel-level fused read → workgroup function -------------===//
//
// A kernel-level function
//
//   func.func @k(%q: tensor<..>, %k: tensor<..>, ...) -> tensor<..> {
//     %p = fem.prior softmax q(%q) k(%k) ...
//     %o = fem.fused_read %p, %v, %beta_raw, %lam, %gate ...
//     return %o
//   }
//
// becomes the workgroup function of the grid (query tiles, kv heads, batch)
//
//   func.func @k_wg(%q: memref<..>, ..., %out: memref<..>,
//                   %x: index, %y: index, %z: index) {
//     fem.tile_read softmax q(%q) ... out(%out) at(%x, %y, %z) {tiles = ...}
//   }
//
// carrying `fem.kernel` (the original name) and `fem.arg_names` so the driver
// can emit the kernel descriptor. Buffers are in destination-passing style:
// the caller owns every buffer, the kernel allocates only tile-sized scratch.
//
//===----------------------------------------------------------------------===//
#include "dialect/FEMOps.h"
#include "dialect/FEMPriors.h"
#include "passes/Passes.h"
#include "passes/TileScan.h"
#include "target/cpu/HostCpu.h"

#include "mlir/IR/Builders.h"
#include "llvm/ADT/StringSwitch.h"

#define DEBUG_TYPE "fem-tile"

namespace mlir::fem {
#define GEN_PASS_DEF_FEMTILE
#include "passes/Passes.h.inc"
} // namespace mlir::fem

using namespace mlir;
using namespace mlir::fem;

int64_t mlir::fem::defaultVectorWidth(StringRef target) {
  if (target == "avx512")
    return 16;
  if (target == "avx2")
    return 8;
  if (target == "generic")
    return 4;
  // host: AVX-512F where available, else AVX2, else SSE-sized vectors
  // (the host as FEMC_HOST_CPU masks it: target/cpu/HostCpu.h).
  const femc::target::cpu::HostCpu &host = femc::target::cpu::hostCpu();
  if (host.has("avx512f"))
    return 16;
  if (host.has("avx2") || host.has("avx"))
    return 8;
  return 4;
}

bool mlir::fem::isTileTarget(StringRef target) {
  return target == "host" || target == "avx2" || target == "avx512" ||
         target == "generic";
}

namespace {

struct FEMTilePass : public fem::impl::FEMTileBase<FEMTilePass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (!isTileTarget(target)) {
      module.emitError() << "fem-tile: unknown target '" << target
                         << "', expected host, avx2, avx512 or generic";
      return signalPassFailure();
    }
    // A FEMC_HOST_CPU that names no CPU is refused, not read as this
    // machine in silence (target/cpu/HostCpu.h).
    if (target == "host")
      if (const std::string &why = femc::target::cpu::hostCpu().error;
          !why.empty()) {
        module.emitError() << "fem-tile: target 'host': " << why;
        return signalPassFailure();
      }
    SmallVector<func::FuncOp> kernels;
    module.walk([&](func::FuncOp f) {
      if (!f.getOps<FusedReadOp>().empty())
        kernels.push_back(f);
    });
    for (func::FuncOp f : kernels)
      if (failed(tileKernel(f)))
        return signalPassFailure();
    // Mixers that carry a state stay whole (fem-expand-mixer): one scan read.
    SmallVector<std::pair<func::FuncOp, MixerOp>> stateful;
    module.walk([&](MixerOp m) {
      if (m.getState() || m.getStateOut())
        if (auto f = dyn_cast<func::FuncOp>(m->getParentOp()))
          stateful.push_back({f, m});
    });
    for (auto [f, m] : stateful) {
      FailureOr<TilesAttr> tiles =
          chooseReadTiles(m, m.getKind(), m.getTilesAttr(), tileQ, tileK,
                          vectorWidth, defaultVectorWidth(target));
      if (failed(tiles) || failed(tileStatefulMixer(f, m, *tiles)))
        return signalPassFailure();
    }
    // Reads that were never fused cannot be executed by the tiled lowering.
    WalkResult unfused = module.walk([&](Operation *op) {
      if (isa<ExpectOp, LseOp, MixerOp, GateOp>(op)) {
        op->emitError() << "fem-tile: '" << op->getName()
                        << "' was not fused into a fem.fused_read; only the "
                           "gated FEM read (fem.mixer, or expect + lse + "
                           "gate over one fem.tilt) can be compiled; run "
                           "-fem-expand-mixer -fem-fuse-reads first";
        return WalkResult::interrupt();
      }
      return WalkResult::advance();
    });
    if (unfused.wasInterrupted())
      signalPassFailure();
  }

  /// Tiles from the options, the read's #fem.tiles or the prior's defaults,
  /// checked against the prior's rules (dialect/Priors.h).
  FailureOr<TilesAttr> chooseTiles(FusedReadOp read, PriorKind kind) {
    return chooseReadTiles(read, kind, read.getTilesAttr(), tileQ, tileK,
                           vectorWidth, defaultVectorWidth(target));
  }

  LogicalResult tileKernel(func::FuncOp f) {
    auto reads = llvm::to_vector(f.getOps<FusedReadOp>());
    auto fail = [&](Operation *at) {
      return at->emitError()
             << "fem-tile: function @" << f.getSymName()
             << " is not a kernel-level function: ";
    };
    if (reads.size() != 1)
      return fail(f) << "it has " << reads.size()
                     << " fused reads, expected exactly one";
    FusedReadOp read = reads.front();
    auto prior = read.getPrior().getDefiningOp<PriorOp>();
    if (!prior)
      return fail(read) << "the prior must be defined by fem.prior in the "
                           "same function";
    // Every other op of the body must be the prior, the read or the return.
    for (Operation &op : f.getBody().front()) {
      if (&op == prior.getOperation() || &op == read.getOperation())
        continue;
      if (auto ret = dyn_cast<func::ReturnOp>(op)) {
        if (ret.getNumOperands() != 1 || ret.getOperand(0) != read.getResult())
          return fail(ret) << "it must return exactly the fused read's result";
        continue;
      }
      return fail(&op) << "found '" << op.getName()
                       << "'; a kernel-level function contains only the FEM "
                          "read of its arguments (whole-layer compilation with "
                          "projections is not supported yet: compute them "
                          "outside the kernel)";
    }
    if (getPriorInfo(prior.getKind()).grid == femc::priors::GridKind::Scan) {
      FailureOr<TilesAttr> tiles = chooseTiles(read, prior.getKind());
      if (failed(tiles))
        return failure();
      return tileScanRead(f, prior, read, *tiles);
    }
    SmallVector<std::pair<Value, StringRef>> operands = {
        {prior.getQ(), "q"},         {prior.getK(), "k"},
        {read.getV(), "v"},          {read.getBetaRaw(), "beta_raw"},
        {read.getLam(), "lam"},      {read.getGate(), "gate"}};
    if (read.getMask())
      operands.push_back({read.getMask(), "mask"});
    for (auto [value, name] : operands) {
      if (!isa<BlockArgument>(value) ||
          cast<BlockArgument>(value).getOwner()->getParentOp() != f)
        return fail(read) << "operand '" << name
                          << "' must be a function argument";
      // Every float element type the dialect accepts (f32, f16, bf16) has
      // a CPU lowering (passes/cpu/Builder.h, storage).
    }
    if (prior.getMask() != read.getMask())
      return fail(read) << "the prior and the read must use the same mask";
    for (BlockArgument arg : f.getArguments())
      if (llvm::none_of(operands, [&](auto &o) { return o.first == arg; }))
        return fail(f) << "argument #" << arg.getArgNumber()
                       << " is not an operand of the FEM read; a kernel takes "
                          "exactly the read's operands";

    FailureOr<TilesAttr> tiles = chooseTiles(read, prior.getKind());
    if (failed(tiles))
      return failure();

    // Build the workgroup function.
    OpBuilder b(f);
    Location loc = f.getLoc();
    func::FuncOp wg = createWorkgroupFunction(b, f, operands, read.getResult(),
                                              prior.getKind(), *tiles);
    Block *body = wg.addEntryBlock();
    OpBuilder bb = OpBuilder::atBlockBegin(body);
    auto args = body->getArguments();
    unsigned n = operands.size();
    Value mask = read.getMask() ? args[6] : Value();
    TileReadOp::create(
        bb, read.getLoc(), prior.getKindAttr(), args[0], args[1], args[2],
        args[3], args[4], args[5], mask, args[n], args[n + 1], args[n + 2],
        args[n + 3], prior.getCausalAttr(), prior.getScaleAttr(),
        read.getCapAttr(), read.getEpsAttr(), read.getLayoutAttr(), *tiles);
    func::ReturnOp::create(bb, loc);
    f.erase();
    return success();
  }
};

} // namespace
