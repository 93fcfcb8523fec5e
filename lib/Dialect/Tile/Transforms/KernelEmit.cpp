//===- KernelEmit.cpp - dispatch, shared layout, the kernel ---------------===//

#include "KernelEmitter.h"

namespace mlir::nsa::tile::kernel {

//===----------------------------------------------------------------------===//
// Dispatch, shared-memory layout and the kernel
//===----------------------------------------------------------------------===//

LogicalResult KernelEmitter::emitOp(Operation *op) {
  if (needsLandedCopies(op))
    landCopies();
  if (failed(emitOpImpl(op)))
    return failure();
  // A tile that tensor.extract reads goes to its region once, not per read.
  for (Value r : op->getResults()) {
    auto it = extractRegions.find(r);
    if (it == extractRegions.end())
      continue;
    auto t = cast<RankedTensorType>(r.getType());
    gpu::BarrierOp::create(b, loc);
    writeDist(get(r), t, sharedPtr(it->second),
              t.getRank() == 2 ? t.getDimSize(1) : 1, t.getElementType());
    gpu::BarrierOp::create(b, loc);
  }
  return success();
}

LogicalResult KernelEmitter::emitOpImpl(Operation *op) {
  if (fusedAdds.contains(op))
    return success(); // its product accumulated the sum
  if (auto c = dyn_cast<arith::ConstantOp>(op))
    return emitConstant(c);
  if (auto s = dyn_cast<tensor::SplatOp>(op)) {
    dists[s.getResult()] = Dist{Kind::Tile, {}, scalar(s.getInput())};
    return success();
  }
  if (isa<LoadOp, GatherOp, StoreOp>(op))
    return emitRowAccess(op);
  if (auto range = dyn_cast<RangeOp>(op)) {
    dists[range.getResult()] = emitRange(range, kindOf(range.getResult()));
    return success();
  }
  if (auto bc = dyn_cast<BroadcastOp>(op)) {
    auto t = bc.getResult().getType();
    Kind from = bc.getDim() == 1 ? Kind::Row : Kind::Col;
    Dist in = get(bc.getValue(), from);
    if (in.splat) {
      dists[bc.getResult()] = Dist{Kind::Tile, {}, in.splat};
      return success();
    }
    int64_t cSlots = colSlots(t.getDimSize(1));
    Dist out{Kind::Tile, {}, Value()};
    for (int64_t i = 0; i < count(Kind::Tile, t); ++i)
      out.elems.push_back(at(in, from == Kind::Row ? i / cSlots : i % cSlots));
    dists[bc.getResult()] = out;
    return success();
  }
  if (auto dot = dyn_cast<DotOp>(op))
    return emitDot(dot);
  if (auto reduce = dyn_cast<ReduceOp>(op))
    return emitReduce(reduce);
  if (auto groupSum = dyn_cast<GroupSumOp>(op))
    return emitGroupSum(groupSum);
  if (isa<TopkMergeOp, TopkFinalizeOp>(op))
    return emitTopk(op);
  if (auto compact = dyn_cast<CompactOp>(op))
    return emitCompact(compact);
  if (auto extract = dyn_cast<tensor::ExtractOp>(op))
    return emitExtract(extract);
  if (isa<tensor::ExpandShapeOp, tensor::CollapseShapeOp>(op))
    return emitReshape(op);
  if (auto loop = dyn_cast<scf::ForOp>(op))
    return emitFor(loop);
  if (auto ifOp = dyn_cast<scf::IfOp>(op))
    return emitIf(ifOp);
  if (auto ext = dyn_cast<arith::ExtFOp>(op); ext && staged.count(ext.getIn()))
    return success();
  if (isElementwise(op))
    return emitElementwise(op);
  bool tensors =
      llvm::any_of(op->getOperandTypes(), llvm::IsaPred<TensorType>) ||
      llvm::any_of(op->getResultTypes(), llvm::IsaPred<TensorType>);
  if (!tensors && op->getNumRegions() == 0 &&
      isa<arith::ArithDialect>(op->getDialect())) {
    b.clone(*op, scalars);
    return success();
  }
  return op->emitOpError("convert-tile-to-gpu: unsupported op in a program");
}

Dist KernelEmitter::emitRange(RangeOp range, Kind k) {
  auto t = range.getResult().getType();
  Value start = arith::IndexCastOp::create(b, loc, b.getI32Type(),
                                           scalar(range.getStart()));
  Dist out{k, {}, Value()};
  for (int64_t i = 0; i < count(k, t); ++i) {
    Value pos = k == Kind::Row ? rowOf(i) : colOf(i);
    pos = arith::IndexCastOp::create(b, loc, b.getI32Type(), pos);
    if (range.getDivisor() != 1)
      pos = arith::DivUIOp::create(b, loc, pos, ci32(range.getDivisor()));
    out.elems.push_back(arith::AddIOp::create(b, loc, start, pos));
  }
  return out;
}

LogicalResult KernelEmitter::emitBlock(Block &block) {
  for (Operation &op : block.without_terminator())
    if (failed(emitOp(&op)))
      return failure();
  landCopies();
  return success();
}

bool KernelEmitter::rightOnWarpgroups(DotOp dot) {
  auto [rhs, rhsType] = narrowSource(dot.getRhs());
  return rhsType &&
         stagedShape(cast<RankedTensorType>(rhs.getType()), rhsType, true)
             .swizzled &&
         fillsWarpgroups(dot.getResult().getType().getDimSize(0));
}

bool KernelEmitter::leftOnWarpgroups(DotOp dot) {
  auto [lhs, lhsType] = narrowSource(dot.getLhs());
  return stageLeftOperands && !dot.getLhsTransposed() && lhsType &&
         lhsType == narrowSource(dot.getRhs()).second &&
         cast<RankedTensorType>(lhs.getType()).getDimSize(1) % 64 == 0 &&
         rightOnWarpgroups(dot);
}

bool KernelEmitter::onlyMmaOperand(Value v) {
  auto fits = [&](OpOperand &use) {
    auto dot = dyn_cast<DotOp>(use.getOwner());
    if (!dot || dot.getLhsTransposed())
      return false;
    return use.getOperandNumber() == 1 || leftOnWarpgroups(dot);
  };
  if (v.use_empty())
    return false;
  for (OpOperand &use : v.getUses()) {
    if (auto ext = dyn_cast<arith::ExtFOp>(use.getOwner())) {
      if (!llvm::all_of(ext->getUses(), fits))
        return false;
      continue;
    }
    if (!fits(use))
      return false;
  }
  return true;
}

LogicalResult KernelEmitter::emit() {
  Block *entry = &func.getBody().front();
  b.setInsertionPointToStart(entry);
  tid = gpu::ThreadIdOp::create(b, loc, gpu::Dimension::x);
  warpId = arith::DivUIOp::create(b, loc, tid, cidx(kWarpSize));
  lane = arith::RemUIOp::create(b, loc, tid, cidx(kWarpSize));
  groupId = arith::DivUIOp::create(b, loc, lane, cidx(4));
  quadLane = arith::RemUIOp::create(b, loc, lane, cidx(4));
  rowBase = arith::AddIOp::create(
      b, loc, arith::MulIOp::create(b, loc, warpId, cidx(16)), groupId);
  wideColumns = columnBlind(program);
  markColumnForms();
  colBase = arith::MulIOp::create(b, loc, quadLane, cidx(wideColumns ? 8 : 2));

  // Grid coordinates: program dimension i is CUDA dimension rank - 1 - i.
  auto ids = program.getIds();
  gpu::Dimension dims[] = {gpu::Dimension::x, gpu::Dimension::y,
                           gpu::Dimension::z};
  for (auto [i, id] : llvm::enumerate(ids))
    scalars.map(id, gpu::BlockIdOp::create(b, loc, dims[ids.size() - 1 - i]));

  // wgmma's left operands that are loads go to shared memory (read K-major)
  // only where a loop carries more than 64 f32 accumulator values a thread
  // (d_k and d_v, two [64, 128] tiles): registers are what runs out there
  // (compressed d_k/d_v spills 280 -> 0 bytes, 25.8 -> 23.9 ms at
  // paper-d128, T = 65536). With one accumulator (o, d_q) A stays in
  // registers, where wgmma reads it without shared-memory traffic (staged,
  // compressed attention went 11.1 -> 12.5 ms).
  int64_t carried = 0;
  program.walk([&](scf::ForOp loop) {
    int64_t elements = 0;
    for (Value v : loop.getInitArgs())
      if (auto t = dyn_cast<RankedTensorType>(v.getType());
          t && t.getRank() == 2 && t.getElementType().isF32())
        elements += t.getNumElements();
    carried = std::max(carried, elements);
  });
  stageLeftOperands = carried > 64 * warps * kWarpSize;

  // Regions of the loads and gathers staged in shared memory: the operand
  // tiles of tensor-core products (gathers only with wgmma), and rank-1
  // tiles of 32-bit elements read in a loop (lse, Delta), which are then
  // read from shared memory in whichever form each use wants.
  program.walk([&](Operation *op) {
    auto load = dyn_cast<LoadOp>(op);
    if (!load && !isa<GatherOp>(op))
      return;
    auto t = cast<RankedTensorType>(op->getResult(0).getType());
    Type elem = t.getElementType();
    auto loop = dyn_cast<scf::ForOp>(op->getParentOp());
    bool vector = t.getRank() == 1 && byteWidth(elem) == 4 && loop;
    bool operand = t.getRank() == 2 && (elem.isBF16() || elem.isF16()) &&
                   t.getDimSize(1) % 8 == 0 && (load || wgmma) &&
                   onlyMmaOperand(op->getResult(0));
    if (!vector && !operand)
      return;
    Staged shape =
        vector ? vectorShape(t) : stagedShape(t, elem, /*rightOperand=*/true);
    // A load straight in a key loop's body, at indices computed from the
    // induction variable, gets two buffers: the next iteration's copy
    // overlaps this iteration's products.
    bool pipeline = load && loop &&
                    roundUp(stagedBytes, 1024) + 2 * shape.regionBytes() <=
                        kDoubleBufferBudget &&
                    llvm::all_of(load.getIndices(), [&](Value v) {
                      return isLoopAffine(v, loop);
                    });
    // A rank-1 load that cannot be copied ahead stays a plain load.
    if (vector && load && !pipeline)
      return;
    Staged s = allocate(shape, pipeline ? 2 : 1);
    if (pipeline) {
      pipelined[load] = loop;
      pipelinedLoads[loop].push_back(load);
    }
    staged[op->getResult(0)] = s;
    for (Operation *user : op->getUsers())
      if (auto ext = dyn_cast<arith::ExtFOp>(user))
        staged[ext.getOut()] = s;
  });

  // Constant right operands of tensor-core products (16-bit ones, and
  // bf16-exact ones of f32 products): staged once.
  SmallVector<Value> stagedConstants;
  program.walk([&](DotOp dot) {
    Value rhs = dot.getRhs();
    Type type = splitType(dot) && isBF16Constant(rhs)
                    ? b.getBF16Type()
                    : narrowSource(rhs).second;
    if (!type || !matchPattern(rhs, m_Constant()) || staged.count(rhs))
      return;
    staged[rhs] = allocateStaged(cast<RankedTensorType>(rhs.getType()), type,
                                 /*rightOperand=*/true);
    stagedConstants.push_back(rhs);
  });

  // Operands staged from registers (right operands; the left operand of an
  // lhs-transposed product, first), and tiles read element by element.
  program.walk([&](DotOp dot) {
    auto [rhs, rhsType] = narrowSource(dot.getRhs());
    auto region = [&](Value operand, Type type, bool rightOperand) {
      return allocateStaged(cast<RankedTensorType>(operand.getType()), type,
                            rightOperand);
    };
    if (rhsType) {
      // A transposed left operand goes to wgmma (M-major, swizzled) with a
      // swizzled right operand when its M rows fill warpgroups.
      if (dot.getLhsTransposed())
        dotRegions[dot].push_back(
            region(dot.getLhs(), rhsType, rightOnWarpgroups(dot)));
      if (!staged.count(rhs))
        dotRegions[dot].push_back(region(dot.getRhs(), rhsType, true));
      return;
    }
    if (splitType(dot) && isBF16Constant(dot.getLhs()))
      dotRegions[dot] = {region(dot.getRhs(), b.getBF16Type(), true),
                         region(dot.getRhs(), b.getBF16Type(), true)};
  });
  program.walk([&](tensor::ExtractOp extract) {
    Value source = extract.getTensor();
    auto t = cast<RankedTensorType>(source.getType());
    if (source.getDefiningOp() && t.getRank() <= 2 &&
        !extractRegions.count(source))
      extractRegions[source] = allocatePersistent(
          (t.getNumElements() + 1) * byteWidth(t.getElementType()));
  });
  // Padding of persistent regions stays zero: clear them all once.
  zeroShared(0, stagedBytes);
  gpu::BarrierOp::create(b, loc);

  // Captured constants are rebuilt inside the kernel.
  llvm::SetVector<Value> captured;
  program.getBody().walk([&](Operation *op) {
    for (Value v : op->getOperands())
      if (!program->isAncestor(v.getParentBlock()->getParentOp()) &&
          v.getDefiningOp<arith::ConstantOp>())
        captured.insert(v);
  });
  for (Value v : captured)
    if (failed(emitConstant(v.getDefiningOp<arith::ConstantOp>())))
      return failure();
  for (Value v : stagedConstants) {
    if (!dists.count(v) &&
        failed(emitConstant(v.getDefiningOp<arith::ConstantOp>())))
      return failure();
    stageTile(get(v, Kind::Tile), cast<RankedTensorType>(v.getType()),
              staged[v]);
  }
  if (!stagedConstants.empty())
    publishStaged();

  if (failed(emitBlock(program.getBodyBlock())))
    return failure();
  gpu::ReturnOp::create(b, loc);
  return success();
}

} // namespace mlir::nsa::tile::kernel
