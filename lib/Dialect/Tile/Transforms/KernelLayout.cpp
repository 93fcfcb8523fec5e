//===- KernelLayout.cpp - rank-1 kinds, distributed values, memory --------===//

#include "KernelEmitter.h"

namespace mlir::nsa::tile::kernel {

//===----------------------------------------------------------------------===//
// Kinds of rank-1 tiles
//===----------------------------------------------------------------------===//

/// Whether `op` is elementwise math on a tile (arith, math, masked_fill).
bool isElementwise(Operation *op) {
  return op->getNumResults() == 1 &&
         (isa<arith::ArithDialect, math::MathDialect>(op->getDialect()) ||
          isa<MaskedFillOp>(op)) &&
         isa<RankedTensorType>(op->getResult(0).getType());
}

/// Whether no op of `program` tells the columns of its tiles apart, so that
/// any assignment of columns to lanes serves it (wideColumns): loads and
/// stores of whole rows, elementwise math, row broadcasts and reductions,
/// splat constants and scalar arithmetic; every [R, C] tile with C a
/// multiple of 32. A rank-2 tile's columns are its tensor's whole last
/// dimension (the verifier's rule), so its rows then start a multiple of 32
/// elements past a 16-byte aligned parameter: 16-byte aligned.
bool columnBlind(ProgramOp program) {
  auto wholeRows = [](Value tile) {
    auto t = cast<RankedTensorType>(tile.getType());
    return t.getRank() == 1 || t.getDimSize(1) % 32 == 0;
  };
  WalkResult result = program.getBody().walk([&](Operation *op) {
    bool fits = false;
    if (auto load = dyn_cast<LoadOp>(op))
      fits = wholeRows(load.getResult());
    else if (auto store = dyn_cast<StoreOp>(op))
      fits = wholeRows(store.getValue());
    else if (auto broadcast = dyn_cast<BroadcastOp>(op))
      fits = broadcast.getDim() == 1;
    else if (auto constant = dyn_cast<arith::ConstantOp>(op))
      fits = !isa<RankedTensorType>(constant.getType()) ||
             cast<DenseElementsAttr>(constant.getValue()).isSplat();
    else
      fits = isa<ReduceOp, EndOp>(op) || isElementwise(op) ||
             (isa<arith::ArithDialect>(op->getDialect()) &&
              llvm::none_of(op->getResultTypes(),
                            llvm::IsaPred<RankedTensorType>));
    for (Type t : op->getResultTypes())
      if (auto rt = dyn_cast<RankedTensorType>(t);
          rt && rt.getRank() == 2 && rt.getDimSize(1) % 32 != 0)
        fits = false;
    return fits ? WalkResult::advance() : WalkResult::interrupt();
  });
  return !result.wasInterrupted();
}

/// A rank-1 tile is kept in column form when some consumer broadcasts it
/// along the rows (directly or through elementwise ops, loops, or as the
/// ranks of a tile.compact whose result is so used); row form serves
/// everything else. The other form is reached through shared memory (a
/// tile.range is computed again in it). The set is the least one closed
/// under these rules, grown to a fixpoint: a loop-carried tile then has
/// column form wherever a use around its cycle asks for it, in whatever
/// order the uses come.
void KernelEmitter::markColumnForms() {
  SmallVector<Value> tiles;
  auto addRank1 = [&](ValueRange values) {
    for (Value x : values)
      if (auto t = dyn_cast<RankedTensorType>(x.getType());
          t && t.getRank() == 1)
        tiles.push_back(x);
  };
  program.getBody().walk([&](Operation *op) {
    addRank1(op->getResults());
    for (Region &region : op->getRegions())
      for (Block &block : region)
        addRank1(block.getArguments());
  });
  auto asksForColumns = [&](Value x) {
    return llvm::any_of(x.getUses(), [&](OpOperand &use) {
      Operation *user = use.getOwner();
      unsigned n = use.getOperandNumber();
      if (auto bc = dyn_cast<BroadcastOp>(user))
        return bc.getDim() == 0;
      if (isElementwise(user))
        return columnForms.contains(user->getResult(0));
      if (auto compact = dyn_cast<CompactOp>(user))
        return x == compact.getRanks() &&
               columnForms.contains(compact.getResult());
      if (isa<scf::YieldOp>(user)) {
        // A loop's next iteration reads it too.
        auto loop = dyn_cast<scf::ForOp>(user->getParentOp());
        return columnForms.contains(user->getParentOp()->getResult(n)) ||
               (loop && columnForms.contains(loop.getRegionIterArgs()[n]));
      }
      if (auto loop = dyn_cast<scf::ForOp>(user); loop && n >= 3)
        return columnForms.contains(loop.getRegionIterArgs()[n - 3]);
      return false;
    });
  };
  for (bool grew = true; grew;) {
    grew = false;
    for (Value x : tiles)
      if (!columnForms.contains(x) && asksForColumns(x)) {
        columnForms.insert(x);
        grew = true;
      }
  }
}

Kind KernelEmitter::kindOf(Value v) {
  auto t = cast<RankedTensorType>(v.getType());
  if (t.getRank() == 2)
    return Kind::Tile;
  return columnForms.contains(v) ? Kind::Col : Kind::Row;
}

//===----------------------------------------------------------------------===//
// Distributed values and shared memory
//===----------------------------------------------------------------------===//

Value KernelEmitter::sharedPtr(int64_t byteOffset) {
  auto ptrType = LLVM::LLVMPointerType::get(b.getContext(), 3);
  Value base = LLVM::AddressOfOp::create(b, loc, ptrType, kSharedSymbol);
  return LLVM::GEPOp::create(b, loc, ptrType, b.getI8Type(), base,
                             ArrayRef<LLVM::GEPArg>{(int32_t)byteOffset});
}

Value KernelEmitter::elementPtr(Value base, Type type, Value index) {
  Value i = index.getType().isIndex()
                ? arith::IndexCastOp::create(b, loc, b.getI64Type(), index)
                : index;
  return LLVM::GEPOp::create(b, loc, base.getType(), type, base, ValueRange{i});
}

Value KernelEmitter::beginScratch(int64_t bytes) {
  gpu::BarrierOp::create(b, loc);
  scratchBytes = std::max(scratchBytes, roundUp(bytes, 16) + 16);
  return Value(); // placeholder, resolved in sharedPtr by offset
}

scf::ForOp KernelEmitter::forLoop(
    int64_t lb, int64_t ub, ValueRange init,
    function_ref<SmallVector<Value>(Value, ValueRange)> body) {
  return scf::ForOp::create(
      b, loc, cidx(lb), cidx(ub), cidx(1), init,
      [&](OpBuilder &nb, Location, Value iv, ValueRange args) {
        OpBuilder::InsertionGuard g(b);
        b.setInsertionPoint(nb.getInsertionBlock(), nb.getInsertionPoint());
        scf::YieldOp::create(b, loc, body(iv, args));
      });
}

void KernelEmitter::writeDist(const Dist &d, RankedTensorType t, Value base,
                              int64_t stride, Type storeType,
                              int64_t trashIndex) {
  // Elements outside the tile go to a trash slot, by default right after it.
  writeElements(d, t, base, storeType,
                trashIndex < 0 ? t.getDimSize(0) * stride : trashIndex,
                [&](Value row, Value col) -> Value {
                  return arith::AddIOp::create(
                      b, loc, arith::MulIOp::create(b, loc, row, cidx(stride)),
                      col);
                });
}

void KernelEmitter::writeStaged(const Dist &d, RankedTensorType t,
                                const Staged &s) {
  writeElements(d, t, sharedPtr(s.offset), s.type, s.trashIndex(),
                [&](Value row, Value col) { return stagedIndex(s, row, col); });
}

void KernelEmitter::writeElements(const Dist &d, RankedTensorType t, Value base,
                                  Type storeType, int64_t trashIndex,
                                  function_ref<Value(Value, Value)> index) {
  int64_t rows = t.getDimSize(0), cols = t.getRank() == 2 ? t.getDimSize(1) : 1;
  Value trash = cidx(trashIndex);
  int64_t n = count(d.kind, t);
  for (int64_t i = 0; i < n; ++i) {
    Value row, col, valid;
    if (d.kind == Kind::Tile) {
      int64_t cs = i % colSlots(cols), rs = i / colSlots(cols);
      row = rowOf(rs);
      col = colOf(cs);
      valid = andOpt(rowValid(rs, rows), colValid(cs, cols));
    } else {
      row = d.kind == Kind::Row ? rowOf(i) : colOf(i);
      col = cidx(0);
      valid = d.kind == Kind::Row ? rowValid(i, rows) : colValid(i, rows);
    }
    Value slot = index(row, col);
    if (valid)
      slot = arith::SelectOp::create(b, loc, valid, slot, trash);
    Value v = at(d, i);
    if (v.getType() != storeType)
      v = castFloat(b, loc, v, cast<FloatType>(storeType));
    LLVM::StoreOp::create(b, loc, v, elementPtr(base, storeType, slot));
  }
}

Dist KernelEmitter::readDist(Kind k, RankedTensorType t, Value base,
                             int64_t stride, Type type) {
  int64_t rows = t.getDimSize(0), cols = t.getRank() == 2 ? t.getDimSize(1) : 1;
  Dist d{k, {}, Value()};
  int64_t n = count(k, t);
  auto clamp = [&](Value v, int64_t size) -> Value {
    return arith::MinUIOp::create(b, loc, v, cidx(size - 1));
  };
  for (int64_t i = 0; i < n; ++i) {
    Value row, col;
    if (k == Kind::Tile) {
      row = clamp(rowOf(i / colSlots(cols)), rows);
      col = clamp(colOf(i % colSlots(cols)), cols);
    } else {
      row = clamp(k == Kind::Row ? rowOf(i) : colOf(i), rows);
      col = cidx(0);
    }
    Value index = arith::AddIOp::create(
        b, loc, arith::MulIOp::create(b, loc, row, cidx(stride)), col);
    d.elems.push_back(
        LLVM::LoadOp::create(b, loc, type, elementPtr(base, type, index)));
  }
  return d;
}

Dist KernelEmitter::get(Value v, Kind k) {
  Dist d = dists.lookup(v);
  if (d.splat)
    return Dist{k, {}, d.splat};
  if (d.kind == k)
    return d;
  // A range is computed again in the other form (a few integer ops) rather
  // than moved: CSE merges equal ranges whatever forms their users want
  // (the selected d_k/d_v's row slots r / G, a column-form queue index
  // outside its visit loop and a row-form gather index inside).
  if (auto range = v.getDefiningOp<RangeOp>())
    return emitRange(range, k);
  auto t = cast<RankedTensorType>(v.getType());
  Type type = t.getElementType();
  // A staged rank-1 tile is read from its region at each use, in that use's
  // form (a few shared loads: nothing is kept in registers between uses).
  if (auto it = staged.find(v); it != staged.end() && t.getRank() == 1) {
    return readDist(k, t, stagedBase(it->second), 1, type);
  }
  // Row <-> column form of a rank-1 tile, through shared memory.
  int64_t bytes = t.getDimSize(0) * byteWidth(type);
  beginScratch(bytes);
  Value base = sharedPtr(stagedBytes);
  writeDist(d, t, base, 1, type);
  gpu::BarrierOp::create(b, loc);
  return readDist(k, t, base, 1, type);
}

SmallVector<Value> KernelEmitter::flatten(Value v, Kind k, int64_t n) {
  Dist d = get(v, k);
  SmallVector<Value> out;
  for (int64_t i = 0; i < n; ++i)
    out.push_back(at(d, i));
  return out;
}

//===----------------------------------------------------------------------===//
// Global tensors
//===----------------------------------------------------------------------===//

Value KernelEmitter::globalPtr(Value tensor, Operation *user) {
  Value p = globals.lookup(tensor);
  if (!p)
    user->emitOpError("convert-tile-to-gpu: reads a tensor that is neither a "
                      "kernel parameter nor a program output");
  return p;
}

Value KernelEmitter::linearOffset(RankedTensorType t, ArrayRef<Value> coords) {
  Value offset = cidx(0);
  int64_t stride = 1;
  for (int64_t d = t.getRank() - 1; d >= 0; --d) {
    if (coords[d])
      offset = arith::AddIOp::create(
          b, loc, offset,
          arith::MulIOp::create(b, loc, coords[d], cidx(stride)));
    stride *= t.getDimSize(d);
  }
  return offset;
}

} // namespace mlir::nsa::tile::kernel
