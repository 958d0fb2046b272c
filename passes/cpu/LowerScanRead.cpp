//===- LowerScanRead.cpp - fem.scan_read → scf/vector/memref/math ----------===//
//
// Checks what the CPU emitters assume and dispatches on the prior table's
// read algorithm (dialect/Priors.h) to one emitter per algorithm.
//
//===----------------------------------------------------------------------===//
#include "passes/cpu/LowerScanRead.h"
#include "passes/cpu/ScanRead.h"
#include "passes/Passes.h"

#define DEBUG_TYPE "fem-lower-scans-to-cpu"

using namespace mlir;
using namespace mlir::fem;

LogicalResult mlir::fem::cpu::lowerScanReadToCPU(ScanReadOp op) {
  SmallVector<Value> floats = {op.getV(), op.getBetaRaw(), op.getLam(),
                               op.getGate(), op.getOut()};
  for (Value v : {op.getQ(), op.getK(), op.getDecay(), op.getDelta(),
                  op.getA(), op.getBs(), op.getCs(), op.getD()})
    if (v)
      floats.push_back(v);
  for (Value v : floats) {
    auto type = cast<MemRefType>(v.getType());
    if (!cpu::storage::isSupported(type.getElementType()) ||
        !type.getLayout().isIdentity())
      return op.emitError() << "fem-lower-to-cpu: expects f32, f16 or bf16 "
                               "memrefs with the identity layout, found "
                            << v.getType();
  }
  if (Value m = op.getMask();
      m && !cast<MemRefType>(m.getType()).getElementType().isInteger(8))
    return op.emitError() << "fem-lower-to-cpu: the key mask must be i8 "
                             "bytes in memory, found "
                          << m.getType();
  switch (getPriorInfo(op.getKind()).algorithm) {
  case femc::priors::ReadAlgorithm::ChunkedLinear:
    cpu::emitChunkedLinearRead(op);
    return success();
  case femc::priors::ReadAlgorithm::AftScan:
    cpu::emitAftScanRead(op);
    return success();
  case femc::priors::ReadAlgorithm::SsmScan:
    cpu::emitSsmScanRead(op);
    return success();
  case femc::priors::ReadAlgorithm::OnlineSoftmax:
    break;
  }
  return op.emitError() << "fem-lower-to-cpu: prior '"
                        << stringifyPriorKind(op.getKind())
                        << "' is not read by a scan";
}

namespace mlir::fem {
#define GEN_PASS_DEF_FEMLOWERSCANSTOCPU
#include "passes/Passes.h.inc"
} // namespace mlir::fem

namespace {
struct FEMLowerScansToCPUPass
    : public fem::impl::FEMLowerScansToCPUBase<FEMLowerScansToCPUPass> {
  void runOnOperation() override {
    SmallVector<ScanReadOp> reads;
    getOperation().walk([&](ScanReadOp op) { reads.push_back(op); });
    for (ScanReadOp op : reads)
      if (failed(cpu::lowerScanReadToCPU(op)))
        return signalPassFailure();
  }
};
} // namespace
