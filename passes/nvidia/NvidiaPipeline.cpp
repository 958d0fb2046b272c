//===- NvidiaPipeline.cpp - fem-lower-to-gpu and the NVVM pipeline --------===//
//
//   fem-lower-to-gpu          @K_wg { fem.tile_read } → gpu.module
//                             @fem_kernels { gpu.func @K_gpu kernel }
//   fem-gpu-expand-math       exp/log/log1p → f32 polynomials; fma, sqrt,
//                             absf, exp2 → LLVM intrinsics (no libdevice)
//   canonicalize, cse, convert-scf-to-cf,
//   convert-gpu-to-nvvm       gpu/arith/cf/memref/index → LLVM + NVVM
//   reconcile-unrealized-casts
//   fem-gpu-extract-kernels   the kernels become the module, with the
//                             NVPTX triple and data layout
//
//===----------------------------------------------------------------------===//
#include "passes/nvidia/NvidiaPipeline.h"
#include "passes/nvidia/KernelAbi.h"
#include "passes/nvidia/SoftmaxKernel.h"

#include "dialect/FEMOps.h"
#include "mlir/Conversion/GPUToNVVM/GPUToNVVMPass.h"
#include "mlir/Conversion/ReconcileUnrealizedCasts/ReconcileUnrealizedCasts.h"
#include "mlir/Conversion/SCFToControlFlow/SCFToControlFlow.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Math/Transforms/Passes.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"
#include "mlir/Transforms/Passes.h"

namespace mlir::fem {
#define GEN_PASS_DEF_FEMLOWERTOGPU
#define GEN_PASS_DEF_FEMGPUEXPANDMATH
#define GEN_PASS_DEF_FEMGPUEXTRACTKERNELS
#include "passes/nvidia/NvidiaPasses.h.inc"
} // namespace mlir::fem

using namespace mlir;
using namespace mlir::fem;

namespace {

constexpr llvm::StringLiteral kKernelModule = "fem_kernels";

struct FEMLowerToGPUPass
    : public fem::impl::FEMLowerToGPUBase<FEMLowerToGPUPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (arch != 80 && arch != 90) {
      module.emitError() << "fem-lower-to-gpu: unsupported compute capability "
                         << static_cast<int64_t>(arch) << ", expected 80 or 90";
      return signalPassFailure();
    }
    bool failed = false;
    // The scan priors and layers have no GPU lowering yet (issue 12 item 5).
    module.walk([&](ScanReadOp op) {
      op.emitError() << "fem-lower-to-gpu: prior '"
                     << stringifyPriorKind(op.getKind())
                     << "' has no GPU lowering yet (issue 12 item 5)";
      failed = true;
    });
    module.walk([&](Operation *op) {
      if (isa<MixerOp, FusedReadOp>(op)) {
        op->emitError() << "fem-lower-to-gpu: '" << op->getName()
                        << "' is not tiled; run fem-tile first";
        failed = true;
      }
    });
    if (failed)
      return signalPassFailure();

    SmallVector<std::pair<func::FuncOp, TileReadOp>> work;
    for (auto f : module.getOps<func::FuncOp>()) {
      if (f->hasAttr("fem.layer")) {
        f.emitError() << "fem-lower-to-gpu: layer function '@"
                      << f.getSymName()
                      << "' has no GPU lowering yet; compile its FEM kernels "
                         "as kernel-level functions";
        failed = true;
        continue;
      }
      auto reads = llvm::to_vector(f.getOps<TileReadOp>());
      if (reads.size() != 1 || !f->getAttrOfType<StringAttr>("fem.kernel")) {
        if (f.isExternal())
          continue;
        f.emitError() << "fem-lower-to-gpu: function '@" << f.getSymName()
                      << "' is not a workgroup function of fem-tile (one "
                         "fem.tile_read and a fem.kernel name); the GPU "
                         "target compiles only FEM kernels";
        failed = true;
        continue;
      }
      TileReadOp read = reads.front();
      for (Value v : read->getOperands())
        if (isa<MemRefType>(v.getType()) &&
            (!isa<BlockArgument>(v) ||
             cast<BlockArgument>(v).getOwner()->getParentOp() != f)) {
          read.emitError() << "fem-lower-to-gpu: every buffer of the tile "
                              "read must be an argument of '@"
                           << f.getSymName() << "'";
          failed = true;
        }
      work.push_back({f, read});
    }
    if (failed)
      return signalPassFailure();
    if (work.empty()) {
      module.emitError() << "fem-lower-to-gpu: found no fem.tile_read to "
                            "lower (run fem-tile first)";
      return signalPassFailure();
    }

    OpBuilder b(module.getContext());
    b.setInsertionPointToEnd(module.getBody());
    auto gpuModule = gpu::GPUModuleOp::create(b, module.getLoc(), kKernelModule);
    module->setAttr(gpu::GPUDialect::getContainerModuleAttrName(),
                    b.getUnitAttr());
    for (auto [f, read] : work) {
      FailureOr<nvidia::SoftmaxKernelShape> shape =
          nvidia::planSoftmaxKernel(read, tensorCores, mmaRows);
      if (llvm::failed(shape) ||
          llvm::failed(nvidia::emitSoftmaxKernel(read, f, gpuModule, *shape,
                                                 arch)))
        return signalPassFailure();
      f.erase();
    }
  }
};

/// math.OP on f32 → a call of the LLVM intrinsic `llvm.NAME.f32`, which
/// the NVPTX back end selects to one instruction. (llvm.intr.* ops would be
/// rewritten to libdevice calls by convert-gpu-to-nvvm; llvm.call_intrinsic
/// is left alone.)
template <typename MathOp>
struct MathToIntrinsic : public OpRewritePattern<MathOp> {
  MathToIntrinsic(MLIRContext *ctx, StringRef name)
      : OpRewritePattern<MathOp>(ctx), name(name.str()) {}
  LogicalResult matchAndRewrite(MathOp op,
                                PatternRewriter &rewriter) const override {
    if (!op.getType().isF32())
      return failure();
    rewriter.replaceOpWithNewOp<LLVM::CallIntrinsicOp>(
        op, op.getType(), rewriter.getStringAttr("llvm." + name + ".f32"),
        op->getOperands());
    return success();
  }
  std::string name;
};

struct FEMGPUExpandMathPass
    : public fem::impl::FEMGPUExpandMathBase<FEMGPUExpandMathPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    populateMathPolynomialApproximationPatterns(patterns);
    MLIRContext *ctx = &getContext();
    patterns.add<MathToIntrinsic<math::FmaOp>>(ctx, "fma");
    patterns.add<MathToIntrinsic<math::SqrtOp>>(ctx, "sqrt");
    patterns.add<MathToIntrinsic<math::AbsFOp>>(ctx, "fabs");
    patterns.add<MathToIntrinsic<math::Exp2Op>>(ctx, "exp2");
    patterns.add<MathToIntrinsic<math::FloorOp>>(ctx, "floor");
    patterns.add<MathToIntrinsic<math::RoundEvenOp>>(ctx, "roundeven");
    patterns.add<MathToIntrinsic<math::CopySignOp>>(ctx, "copysign");
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      return signalPassFailure();
    WalkResult left = getOperation().walk([&](Operation *op) {
      if (isa<math::MathDialect>(op->getDialect())) {
        op->emitError() << "fem-gpu-expand-math: '" << op->getName()
                        << "' has no libdevice-free lowering";
        return WalkResult::interrupt();
      }
      return WalkResult::advance();
    });
    if (left.wasInterrupted())
      signalPassFailure();
  }
};

struct FEMGPUExtractKernelsPass
    : public fem::impl::FEMGPUExtractKernelsBase<FEMGPUExtractKernelsPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto gpuModules = llvm::to_vector(module.getOps<gpu::GPUModuleOp>());
    if (gpuModules.size() != 1) {
      module.emitError() << "fem-gpu-extract-kernels: expected one gpu.module, "
                            "found "
                         << gpuModules.size();
      return signalPassFailure();
    }
    gpu::GPUModuleOp gm = gpuModules.front();
    for (Operation &op : llvm::make_early_inc_range(module.getOps()))
      if (&op != gm.getOperation()) {
        op.emitError() << "fem-gpu-extract-kernels: '" << op.getName()
                       << "' outside the kernels' gpu.module";
        return signalPassFailure();
      }
    Block &body = *module.getBody();
    for (Operation &op : llvm::make_early_inc_range(*gm.getBody()))
      op.moveBefore(&body, body.end());
    gm.erase();
    WalkResult bad = module.walk([&](Operation *op) {
      if (op == module.getOperation() ||
          isa<LLVM::LLVMDialect, NVVM::NVVMDialect>(op->getDialect()))
        return WalkResult::advance();
      op->emitError() << "fem-gpu-extract-kernels: '" << op->getName()
                      << "' was not lowered to the LLVM or NVVM dialect";
      return WalkResult::interrupt();
    });
    if (bad.wasInterrupted())
      return signalPassFailure();
    module->removeAttr(gpu::GPUDialect::getContainerModuleAttrName());
    Builder b(module.getContext());
    module->setAttr(LLVM::LLVMDialect::getTargetTripleAttrName(),
                    b.getStringAttr(femc::nvidia::kTriple));
    module->setAttr(LLVM::LLVMDialect::getDataLayoutAttrName(),
                    b.getStringAttr(femc::nvidia::kDataLayout));
  }
};

} // namespace

void mlir::fem::buildNvidiaPipeline(OpPassManager &pm,
                                    const NvidiaOptions &options) {
  FEMLowerToGPUOptions lower;
  lower.arch = options.sm;
  lower.tensorCores = options.tensorCores;
  lower.mmaRows = options.mmaRows;
  pm.addPass(createFEMLowerToGPU(lower));
  OpPassManager &kernels = pm.nest<gpu::GPUModuleOp>();
  kernels.addPass(createFEMGPUExpandMath());
  kernels.addPass(createCanonicalizerPass());
  kernels.addPass(createCSEPass());
  kernels.addPass(createSCFToControlFlowPass());
  ConvertGpuOpsToNVVMOpsOptions nvvm;
  nvvm.indexBitwidth = 64;
  kernels.addPass(createConvertGpuOpsToNVVMOps(nvvm));
  kernels.addPass(createReconcileUnrealizedCastsPass());
  kernels.addPass(createCanonicalizerPass());
  kernels.addPass(createCSEPass());
  pm.addPass(createFEMGPUExtractKernels());
}

void mlir::fem::registerNvidiaPasses() {
  registerFEMLowerToGPU();
  registerFEMGPUExpandMath();
  registerFEMGPUExtractKernels();
  PassPipelineRegistration<NvidiaOptions>(
      "fem-tiled-to-nvvm",
      "Lower fem-tile's workgroup functions to LLVM-dialect NVVM kernels for "
      "the NVPTX back end, for the sm option's GPU (docs/gpu.md)",
      buildNvidiaPipeline);
}
