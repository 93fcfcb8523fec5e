//===- KernelElementwise.cpp - constants and elementwise math -------------===//

#include "KernelEmitter.h"

namespace mlir::nsa::tile::kernel {

//===----------------------------------------------------------------------===//
// Ops: constants and elementwise math
//===----------------------------------------------------------------------===//

LogicalResult KernelEmitter::emitConstant(arith::ConstantOp op) {
  auto t = dyn_cast<RankedTensorType>(op.getType());
  if (!t) {
    scalars.map(op.getResult(), b.clone(*op)->getResult(0));
    return success();
  }
  auto attr = cast<DenseElementsAttr>(op.getValue());
  if (attr.isSplat()) {
    Value s =
        arith::ConstantOp::create(b, loc, attr.getSplatValue<TypedAttr>());
    dists[op.getResult()] = Dist{Kind::Tile, {}, s};
    return success();
  }
  // A table in global memory, read like a tile.load.
  Type elem = t.getElementType();
  int64_t n = t.getNumElements();
  auto flat = attr.reshape(RankedTensorType::get({n}, elem));
  std::string name = (func.getName() + "_cst" + Twine(constCounter++)).str();
  {
    OpBuilder mb(module.getBodyRegion());
    mb.setInsertionPointToStart(module.getBody());
    LLVM::GlobalOp::create(mb, loc, LLVM::LLVMArrayType::get(elem, n),
                           /*isConstant=*/true, LLVM::Linkage::Internal, name,
                           flat, /*alignment=*/16, /*addrSpace=*/1);
  }
  auto ptrType = LLVM::LLVMPointerType::get(b.getContext(), 1);
  Value base = LLVM::AddressOfOp::create(b, loc, ptrType, name);
  int64_t cols = t.getRank() == 2 ? t.getDimSize(1) : 1;
  dists[op.getResult()] = readDist(kindOf(op.getResult()), t, base, cols, elem);
  return success();
}

Value KernelEmitter::emitScalarMath(Operation *op, ValueRange operands) {
  Type type = getElementTypeOrSelf(op->getResult(0).getType());
  // The hardware's ex2/lg2 (relative error ~2^-22) rather than libdevice,
  // which convert-gpu-to-nvvm would otherwise call and the PTX would need
  // linked. ex2 flushes subnormal results to zero (.ftz): without it ptxas
  // wraps each MUFU.EX2 in a range test and two multiplies to produce them
  // (four instructions instead of one), which softmax weights below 2^-126
  // never need.
  auto approx = [&](StringRef intrinsic, Value x) -> Value {
    return LLVM::CallIntrinsicOp::create(b, loc, type,
                                         b.getStringAttr(intrinsic), x)
        .getResult(0);
  };
  if (isa<math::Exp2Op>(op))
    return approx("llvm.nvvm.ex2.approx.ftz.f32", operands[0]);
  if (isa<math::Log2Op>(op))
    return approx("llvm.nvvm.lg2.approx.f", operands[0]);
  if (isa<math::ExpOp>(op))
    return approx("llvm.nvvm.ex2.approx.ftz.f32",
                  arith::MulFOp::create(b, loc, operands[0],
                                        cst(type, llvm::numbers::log2e)));
  if (isa<MaskedFillOp>(op))
    return arith::SelectOp::create(b, loc, operands[1], operands[2],
                                   operands[0]);
  OperationState state(loc, op->getName());
  state.addOperands(operands);
  state.addTypes(type);
  state.addAttributes(op->getAttrs());
  Operation *scalarOp = b.create(state);
  // Float math may contract (x * c - y as one fma, as the scores' scale and
  // softmax shift are): one rounding instead of two, and one instruction.
  if (auto fm = dyn_cast<arith::ArithFastMathInterface>(scalarOp)) {
    arith::FastMathFlagsAttr flags = fm.getFastMathFlagsAttr();
    scalarOp->setAttr(fm.getFastMathAttrName(),
                      arith::FastMathFlagsAttr::get(
                          b.getContext(), (flags ? flags.getValue()
                                                 : arith::FastMathFlags::none) |
                                              arith::FastMathFlags::contract));
  }
  return scalarOp->getResult(0);
}

LogicalResult KernelEmitter::emitElementwise(Operation *op) {
  if (isa<math::MathDialect>(op->getDialect()) &&
      !isa<math::Exp2Op, math::Log2Op, math::ExpOp>(op))
    return op->emitOpError("convert-tile-to-gpu: unsupported math op");
  Value result = op->getResult(0);
  auto t = cast<RankedTensorType>(result.getType());
  Kind k = kindOf(result);
  SmallVector<Dist> ins;
  bool allSplat = true;
  for (Value operand : op->getOperands()) {
    if (isa<RankedTensorType>(operand.getType()))
      ins.push_back(get(operand, k));
    else
      ins.push_back(Dist{k, {}, scalar(operand)});
    allSplat &= static_cast<bool>(ins.back().splat);
  }
  int64_t n = allSplat ? 1 : count(k, t);
  Dist out{k, {}, Value()};
  for (int64_t i = 0; i < n; ++i) {
    SmallVector<Value> operands;
    for (Dist &d : ins)
      operands.push_back(at(d, i));
    out.elems.push_back(emitScalarMath(op, operands));
  }
  if (allSplat)
    out = Dist{k, {}, out.elems.front()};
  dists[result] = out;
  return success();
}

} // namespace mlir::nsa::tile::kernel
