//===- KernelControlFlow.cpp - scf.for and scf.if in kernels --------------===//

#include "KernelEmitter.h"

namespace mlir::nsa::tile::kernel {

//===----------------------------------------------------------------------===//
// Control flow (scf.for with double-buffered loads, scf.if)
//===----------------------------------------------------------------------===//

SmallVector<Value> KernelEmitter::indicesAt(LoadOp op, scf::ForOp loop,
                                            Value iv) {
  IRMapping mapping;
  mapping.map(loop.getInductionVar(), iv);
  std::function<Value(Value)> at = [&](Value v) -> Value {
    if (Value m = mapping.lookupOrNull(v))
      return m;
    Operation *def = v.getDefiningOp();
    if (!def || def->getParentOp() != loop.getOperation())
      return scalar(v); // defined before the loop
    for (Value operand : def->getOperands())
      at(operand);
    IRMapping local;
    for (Value operand : def->getOperands())
      local.map(operand, mapping.lookupOrDefault(operand) == operand
                             ? scalar(operand)
                             : mapping.lookup(operand));
    Operation *clone = b.clone(*def, local);
    for (auto [from, to] : llvm::zip(def->getResults(), clone->getResults()))
      mapping.map(from, to);
    return mapping.lookup(v);
  };
  return llvm::map_to_vector(op.getIndices(), at);
}

/// Whether `v` is computed in `loop`'s body (directly, not in a nested
/// region) from the induction variable and values from before the loop by
/// side-effect-free scalar ops only.
bool isLoopAffine(Value v, scf::ForOp loop) {
  if (v == loop.getInductionVar())
    return true;
  Operation *def = v.getDefiningOp();
  if (!def)
    return !loop->isAncestor(v.getParentBlock()->getParentOp());
  if (!loop->isAncestor(def))
    return true;
  if (def->getParentOp() != loop.getOperation() ||
      !isa<arith::ArithDialect>(def->getDialect()) ||
      def->getNumRegions() != 0 || !isMemoryEffectFree(def) ||
      llvm::any_of(def->getResultTypes(), llvm::IsaPred<TensorType>))
    return false;
  return llvm::all_of(def->getOperands(),
                      [&](Value o) { return isLoopAffine(o, loop); });
}

LogicalResult KernelEmitter::emitFor(scf::ForOp op) {
  // Double-buffered loads: the prologue copies the first iteration's tiles.
  SmallVector<LoadOp> prefetch = pipelinedLoads.lookup(op);
  for (LoadOp load : prefetch) {
    Staged s = staged.lookup(load.getResult());
    gpu::BarrierOp::create(b, loc);
    issueCopies(load, indicesAt(load, op, scalar(op.getLowerBound())),
                sharedPtr(s.offset));
  }
  if (!prefetch.empty())
    NVVM::CpAsyncCommitGroupOp::create(b, loc);

  SmallVector<Value> init;
  SmallVector<int64_t> sizes;
  SmallVector<Kind> kinds;
  for (auto [arg, value] :
       llvm::zip(op.getRegionIterArgs(), op.getInitArgs())) {
    if (auto t = dyn_cast<RankedTensorType>(value.getType())) {
      Kind k = kindOf(arg);
      SmallVector<Value> flat = flatten(value, k, count(k, t));
      kinds.push_back(k);
      sizes.push_back(flat.size());
      llvm::append_range(init, flat);
    } else {
      kinds.push_back(Kind::Tile);
      sizes.push_back(-1);
      init.push_back(scalar(value));
    }
  }
  // Rebuilds each (tensor or scalar) value from its flattened pieces.
  auto unflatten = [&](ValueRange flat, ValueRange originals) {
    int64_t pos = 0;
    for (auto [i, original] : llvm::enumerate(originals)) {
      if (sizes[i] < 0) {
        scalars.map(original, flat[pos++]);
        continue;
      }
      dists[original] =
          Dist{kinds[i], llvm::to_vector(flat.slice(pos, sizes[i])), Value()};
      pos += sizes[i];
    }
  };
  LogicalResult status = success();
  auto loop = scf::ForOp::create(
      b, loc, scalar(op.getLowerBound()), scalar(op.getUpperBound()),
      scalar(op.getStep()), init,
      [&](OpBuilder &nb, Location, Value iv, ValueRange args) {
        OpBuilder::InsertionGuard g(b);
        b.setInsertionPoint(nb.getInsertionBlock(), nb.getInsertionPoint());
        scalars.map(op.getInductionVar(), iv);
        unflatten(args, op.getRegionIterArgs());
        if (!prefetch.empty()) {
          // Buffer parity of this iteration; the other buffer was read by
          // the previous one (hence the barrier) and receives the next.
          Value step = scalar(op.getStep());
          Value count = arith::DivUIOp::create(
              b, loc,
              arith::SubIOp::create(b, loc, iv, scalar(op.getLowerBound())),
              step);
          Value parity = arith::RemUIOp::create(b, loc, count, cidx(2));
          Value other = arith::SubIOp::create(b, loc, cidx(1), parity);
          Value next = arith::AddIOp::create(b, loc, iv, step);
          Value more = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::slt,
                                             next, scalar(op.getUpperBound()));
          gpu::BarrierOp::create(b, loc);
          auto guard = scf::IfOp::create(b, loc, more, /*withElse=*/false);
          {
            OpBuilder::InsertionGuard g2(b);
            b.setInsertionPointToStart(guard.thenBlock());
            for (LoadOp load : prefetch) {
              Staged s = staged.lookup(load.getResult());
              Value buffer = elementPtr(
                  sharedPtr(s.offset), b.getI8Type(),
                  arith::MulIOp::create(b, loc, other, cidx(s.regionBytes())));
              issueCopies(load, indicesAt(load, op, next), buffer);
            }
          }
          NVVM::CpAsyncCommitGroupOp::create(b, loc);
          NVVM::CpAsyncWaitGroupOp::create(b, loc, b.getI32IntegerAttr(1));
          publishStaged();
          for (LoadOp load : prefetch) {
            Staged s = staged.lookup(load.getResult());
            s.base = elementPtr(
                sharedPtr(s.offset), b.getI8Type(),
                arith::MulIOp::create(b, loc, parity, cidx(s.regionBytes())));
            staged[load.getResult()] = s;
            for (Operation *user : load->getUsers())
              if (auto ext = dyn_cast<arith::ExtFOp>(user))
                staged[ext.getOut()] = s;
          }
        }
        for (Operation &inner : op.getBody()->without_terminator())
          if (failed(emitOp(&inner))) {
            status = failure();
            break;
          }
        landCopies();
        SmallVector<Value> yielded;
        auto yield = cast<scf::YieldOp>(op.getBody()->getTerminator());
        for (auto [i, v] : llvm::enumerate(yield.getOperands())) {
          if (sizes[i] < 0) {
            yielded.push_back(scalar(v));
            continue;
          }
          if (succeeded(status))
            llvm::append_range(yielded, flatten(v, kinds[i], sizes[i]));
        }
        if (succeeded(status))
          scf::YieldOp::create(b, loc, yielded);
        else
          scf::YieldOp::create(b, loc, args);
      });
  if (failed(status))
    return failure();
  if (!prefetch.empty())
    NVVM::CpAsyncWaitGroupOp::create(b, loc, b.getI32IntegerAttr(0));
  unflatten(loop.getResults(), op.getResults());
  return success();
}

LogicalResult KernelEmitter::emitIf(scf::IfOp op) {
  SmallVector<Type> types;
  SmallVector<int64_t> sizes;
  SmallVector<Kind> kinds;
  for (Value r : op.getResults()) {
    if (auto t = dyn_cast<RankedTensorType>(r.getType())) {
      Kind k = kindOf(r);
      kinds.push_back(k);
      sizes.push_back(count(k, t));
      types.append(count(k, t), t.getElementType());
    } else {
      kinds.push_back(Kind::Tile);
      sizes.push_back(-1);
      types.push_back(r.getType());
    }
  }
  auto newIf =
      scf::IfOp::create(b, loc, types, scalar(op.getCondition()),
                        /*withElseRegion=*/!op.getElseRegion().empty());
  auto emitBranch = [&](Region &from, Region &to) -> LogicalResult {
    OpBuilder::InsertionGuard g(b);
    if (to.empty())
      to.emplaceBlock();
    Block &block = to.front();
    if (!block.empty() && block.back().hasTrait<OpTrait::IsTerminator>())
      b.setInsertionPoint(&block.back());
    else
      b.setInsertionPointToEnd(&block);
    for (Operation &inner : from.front().without_terminator())
      if (failed(emitOp(&inner)))
        return failure();
    landCopies();
    auto yield = cast<scf::YieldOp>(from.front().getTerminator());
    SmallVector<Value> yielded;
    for (auto [i, v] : llvm::enumerate(yield.getOperands())) {
      if (sizes[i] < 0)
        yielded.push_back(scalar(v));
      else
        llvm::append_range(yielded, flatten(v, kinds[i], sizes[i]));
    }
    if (block.empty() || !block.back().hasTrait<OpTrait::IsTerminator>())
      scf::YieldOp::create(b, loc, yielded);
    else
      block.back().setOperands(yielded);
    return success();
  };
  if (failed(emitBranch(op.getThenRegion(), newIf.getThenRegion())))
    return failure();
  if (!op.getElseRegion().empty() &&
      failed(emitBranch(op.getElseRegion(), newIf.getElseRegion())))
    return failure();
  int64_t pos = 0;
  for (auto [i, r] : llvm::enumerate(op.getResults())) {
    if (sizes[i] < 0) {
      scalars.map(r, newIf.getResult(pos++));
      continue;
    }
    dists[r] = Dist{kinds[i],
                    SmallVector<Value>(newIf.getResults().slice(pos, sizes[i])),
                    Value()};
    pos += sizes[i];
  }
  return success();
}

} // namespace mlir::nsa::tile::kernel
