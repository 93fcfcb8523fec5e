//===- KernelMemory.cpp - global memory and shared staging ----------------===//

#include "KernelEmitter.h"

namespace mlir::nsa::tile::kernel {

//===----------------------------------------------------------------------===//
// Ops: global memory (tile.load, tile.gather, tile.store)
//===----------------------------------------------------------------------===//

ArrayRef<int64_t> rowDimsOf(Operation *op) {
  if (auto load = dyn_cast<LoadOp>(op))
    return load.getRowDims();
  if (auto gather = dyn_cast<GatherOp>(op))
    return gather.getRowDims();
  return cast<StoreOp>(op).getRowDims();
}

Value KernelEmitter::locateRow(RankedTensorType t, ArrayRef<int64_t> rowDims,
                               Value row, SmallVectorImpl<Value> &coords,
                               int64_t stride) {
  for (int64_t d : llvm::reverse(rowDims.drop_front())) {
    coords[d] = arith::RemUIOp::create(b, loc, row, cidx(t.getDimSize(d)));
    row = arith::DivUIOp::create(b, loc, row, cidx(t.getDimSize(d)));
  }
  if (stride != 1)
    row = arith::MulIOp::create(b, loc, row, cidx(stride));
  int64_t first = rowDims.front();
  coords[first] = arith::AddIOp::create(b, loc, coords[first], row);
  return cmpI(arith::CmpIPredicate::ult, coords[first],
              cidx(t.getDimSize(first)));
}

/// tile.load, tile.gather and tile.store: one global access per element the
/// thread owns, out-of-bounds reads give 0 and writes are skipped.
LogicalResult KernelEmitter::emitRowAccess(Operation *op) {
  auto load = dyn_cast<LoadOp>(op);
  auto gather = dyn_cast<GatherOp>(op);
  auto store = dyn_cast<StoreOp>(op);
  if (load && staged.count(load.getResult()))
    return emitStagedLoad(load);
  if (gather && staged.count(gather.getResult()))
    return emitStagedGather(gather);
  Value tensor = load     ? load.getSource()
                 : gather ? gather.getSource()
                          : store.getDest();
  Value tileValue = store ? Value(store.getValue()) : op->getResult(0);
  OperandRange indexOps = load     ? load.getIndices()
                          : gather ? gather.getIndices()
                                   : store.getIndices();
  SmallVector<Value> indices =
      llvm::map_to_vector(indexOps, [&](Value v) { return scalar(v); });
  // A gather's row index counts from 0 on every row dimension.
  if (gather)
    indices = gather.sourceIndices(indices, cidx(0));
  ArrayRef<int64_t> rowDims = rowDimsOf(op);
  auto srcType = cast<RankedTensorType>(tensor.getType());
  auto tileType = cast<RankedTensorType>(tileValue.getType());
  Type elem = srcType.getElementType();
  Value ptr = globalPtr(tensor, op);
  if (!ptr)
    return failure();

  Kind k = kindOf(tileValue);
  bool rank2 = tileType.getRank() == 2;
  int64_t rows = tileType.getDimSize(0),
          cols = rank2 ? tileType.getDimSize(1) : 1;
  int64_t nRows = k == Kind::Col ? colSlots(rows) : rowSlots(rows);
  int64_t nCols = rank2 ? colSlots(cols) : 1;
  // A gather's row indices, one per row slot: in the result's form when it
  // is a rank-1 tile in column form.
  Dist rowsDist;
  if (gather)
    rowsDist = get(gather.getRows(), k == Kind::Col ? Kind::Col : Kind::Row);
  Dist value;
  if (store)
    value = get(store.getValue(), k);

  // Replicated copies of a rank-1 tile store once.
  Value writer;
  if (store && k == Kind::Row)
    writer = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, quadLane,
                                   cidx(0));
  if (store && k == Kind::Col)
    writer = arith::CmpIOp::create(
        b, loc, arith::CmpIPredicate::eq,
        arith::AddIOp::create(b, loc, warpId, groupId), cidx(0));

  Dist out{k, {}, Value()};
  for (int64_t r = 0; r < nRows; ++r) {
    Value row = k == Kind::Col ? colOf(r) : rowOf(r);
    Value valid = k == Kind::Col ? colValid(r, rows) : rowValid(r, rows);
    SmallVector<Value> coords(indices);
    // The row dimensions enumerate the tile's row, or a gather's index
    // (index_cast sign-extends: -1 padding becomes out of bounds).
    Value rest = gather ? arith::IndexCastOp::create(b, loc, b.getIndexType(),
                                                     at(rowsDist, r))
                        : row;
    Value inBounds = locateRow(srcType, rowDims, rest, coords,
                               store ? store.getRowStride() : 1);
    if (rank2)
      coords.back() = Value();
    Value rowOffset = linearOffset(srcType, coords);
    Value rowOk = andOpt(valid, inBounds);
    // Column slots 2m and 2m + 1 are adjacent columns (colStep). With an even
    // row length the pair starts at an even element, so it is in or out of
    // bounds as a whole and aligned to its size (tensor parameters are
    // 16-byte aligned): one access of two elements moves it. With
    // wideColumns, slots 8m to 8m + 7 are adjacent columns in rows that
    // start 16-byte aligned (columnBlind): 16 bytes an access.
    int64_t width = !rank2        ? 1
                    : wideColumns ? std::min<int64_t>(8, 16 / byteWidth(elem))
                                  : (cols % 2 == 0 ? 2 : 1);
    auto vecType = VectorType::get({width}, elem);
    unsigned align = width * byteWidth(elem);
    for (int64_t c = 0; c < nCols; c += width) {
      Value offset = rowOffset, ok = rowOk;
      if (rank2) {
        offset = arith::AddIOp::create(b, loc, rowOffset, colOf(c));
        ok = andOpt(ok, colValid(c, cols));
      }
      int64_t i = r * nCols + c;
      if (store) {
        ok = andOpt(ok, writer);
        auto guard = scf::IfOp::create(b, loc, ok, /*withElse=*/false);
        OpBuilder::InsertionGuard g(b);
        b.setInsertionPointToStart(guard.thenBlock());
        Value v = at(value, i);
        if (width > 1) {
          v = LLVM::PoisonOp::create(b, loc, vecType);
          for (int64_t e = 0; e < width; ++e)
            v = LLVM::InsertElementOp::create(b, loc, v, at(value, i + e),
                                              ci32(e));
        }
        LLVM::StoreOp::create(b, loc, v, elementPtr(ptr, elem, offset), align);
        continue;
      }
      Value safe = arith::SelectOp::create(b, loc, ok, offset, cidx(0));
      Value addr = elementPtr(ptr, elem, safe);
      if (width == 1) {
        Value v = LLVM::LoadOp::create(b, loc, elem, addr);
        out.elems.push_back(arith::SelectOp::create(b, loc, ok, v, zero(elem)));
        continue;
      }
      Value vec = LLVM::LoadOp::create(b, loc, vecType, addr, align);
      for (int64_t e = 0; e < width; ++e) {
        Value v = LLVM::ExtractElementOp::create(b, loc, vec, ci32(e));
        out.elems.push_back(arith::SelectOp::create(b, loc, ok, v, zero(elem)));
      }
    }
  }
  if (!store)
    dists[tileValue] = out;
  return success();
}

//===----------------------------------------------------------------------===//
// Staging in shared memory (cp.async copies, persistent regions)
//===----------------------------------------------------------------------===//

/// Copies a [R, C] tile.load into its shared region with 16-byte vector
/// accesses (C is a multiple of 8 16-bit elements), zero-filling padding.
LogicalResult KernelEmitter::emitStagedLoad(LoadOp op) {
  if (pipelined.count(op))
    return success(); // copied ahead by its loop (emitFor)
  Staged s = staged.lookup(op.getResult());
  if (!globalPtr(op.getSource(), op))
    return failure();
  SmallVector<Value> indices =
      llvm::map_to_vector(op.getIndices(), [&](Value v) { return scalar(v); });
  gpu::BarrierOp::create(b, loc); // earlier readers of the region are done
  issueCopies(op, indices, sharedPtr(s.offset));
  // The selected attention's K and V blocks are then in flight together,
  // one round trip to L2 instead of two.
  commitInFlight(op.getResult());
  return success();
}

/// A staged tile.gather: its row indices go through scratch, since the
/// thread that copies a row is not the one that holds its index; single
/// buffered (the indices are computed in the loop, not affine in it).
LogicalResult KernelEmitter::emitStagedGather(GatherOp op) {
  Staged s = staged.lookup(op.getResult());
  if (!globalPtr(op.getSource(), op))
    return failure();
  SmallVector<Value> fixed =
      llvm::map_to_vector(op.getIndices(), [&](Value v) { return scalar(v); });
  SmallVector<Value> indices = op.sourceIndices(fixed, cidx(0));
  // The rows first: a change of form goes through scratch too.
  Dist rows = get(op.getRows(), Kind::Row);
  if (op.getType().getRank() == 1) {
    // The threads that hold the row indices in row form copy the elements.
    gpu::BarrierOp::create(b, loc); // earlier readers of the region are done
    issueElementCopies(op, indices, sharedPtr(s.offset), &rows);
    commitInFlight(op.getResult());
    return success();
  }
  auto rowsType = cast<RankedTensorType>(op.getRows().getType());
  // beginScratch's barrier also ends earlier reads of the region; the slot
  // past the indices takes writeDist's padding slots.
  beginScratch((rowsType.getNumElements() + 1) * 4);
  Value rowIndex = sharedPtr(stagedBytes);
  writeDist(rows, rowsType, rowIndex, 1, b.getI32Type());
  gpu::BarrierOp::create(b, loc);
  issueCopies(op, indices, sharedPtr(s.offset), rowIndex);
  // The next gathers (a selected d_k/d_v visit gathers q, lse, d_o and
  // Delta) then issue while these copies are in flight.
  commitInFlight(op.getResult());
  return success();
}

bool KernelEmitter::needsLandedCopies(Operation *op) {
  if (inFlight.empty())
    return false;
  // The widening of a staged tile emits nothing; its readers wait.
  if (auto ext = dyn_cast<arith::ExtFOp>(op); ext && staged.count(ext.getIn()))
    return false;
  // Regions: their loops count cp.async groups of their own.
  if (op->getNumRegions() > 0)
    return true;
  return llvm::any_of(op->getOperands(), [&](Value v) {
    if (auto ext = v.getDefiningOp<arith::ExtFOp>())
      v = ext.getIn();
    return inFlight.contains(v);
  });
}

void KernelEmitter::landCopies() {
  if (inFlight.empty())
    return;
  NVVM::CpAsyncWaitGroupOp::create(b, loc, b.getI32IntegerAttr(0));
  publishStaged();
  inFlight.clear();
}

void KernelEmitter::issueCopies(Operation *op, ArrayRef<Value> indices,
                                Value region, Value rowIndex) {
  if (cast<RankedTensorType>(op->getResult(0).getType()).getRank() == 1)
    return issueElementCopies(op, indices, region, /*rows=*/nullptr);
  Value tile = op->getResult(0), source = op->getOperand(0);
  ArrayRef<int64_t> rowDims = rowDimsOf(op);
  Staged s = staged.lookup(tile);
  auto srcType = cast<RankedTensorType>(source.getType());
  auto tileType = cast<RankedTensorType>(tile.getType());
  Value ptr = globals.lookup(source);
  int64_t rows = tileType.getDimSize(0), cols = tileType.getDimSize(1);
  int64_t chunksPerRow = s.cols / 8, chunks = s.rows * chunksPerRow;
  int64_t threads = warps * kWarpSize;
  forLoop(0, ceilDiv(chunks, threads), {}, [&](Value iv, ValueRange) {
    Value chunk = arith::AddIOp::create(
        b, loc, tid, arith::MulIOp::create(b, loc, iv, cidx(threads)));
    Value inRegion = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult,
                                           chunk, cidx(chunks));
    auto guard = scf::IfOp::create(b, loc, inRegion, /*withElse=*/false);
    OpBuilder::InsertionGuard g(b);
    b.setInsertionPointToStart(guard.thenBlock());
    Value row = arith::DivUIOp::create(b, loc, chunk, cidx(chunksPerRow));
    Value col = arith::MulIOp::create(
        b, loc, arith::RemUIOp::create(b, loc, chunk, cidx(chunksPerRow)),
        cidx(8));
    Value sourceRow = row;
    if (rowIndex) {
      // Padding rows (row >= rows) read index 0 and are dropped below; a
      // negative index (index_cast sign-extends) is out of bounds.
      Value inTile = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult,
                                           row, cidx(rows));
      Value slot = arith::SelectOp::create(b, loc, inTile, row, cidx(0));
      sourceRow = arith::IndexCastOp::create(
          b, loc, b.getIndexType(),
          LLVM::LoadOp::create(b, loc, b.getI32Type(),
                               elementPtr(rowIndex, b.getI32Type(), slot)));
    }
    SmallVector<Value> coords(indices);
    Value inBounds = locateRow(srcType, rowDims, sourceRow, coords);
    coords.back() = col;
    Value ok = arith::AndIOp::create(
        b, loc,
        arith::AndIOp::create(b, loc,
                              cmpI(arith::CmpIPredicate::ult, row, cidx(rows)),
                              cmpI(arith::CmpIPredicate::ult, col, cidx(cols))),
        inBounds);
    Value offset = arith::SelectOp::create(
        b, loc, ok, linearOffset(srcType, coords), cidx(0));
    Value dst = stagedIndex(s, row, col);
    // cp.async: the copy needs no registers and does not wait, so a thread
    // has all its chunks in flight at once. Reading 0 source bytes
    // zero-fills the chunk (rows past the tensor, padding).
    Value srcBytes = arith::SelectOp::create(b, loc, ok, ci32(16), ci32(0));
    NVVM::CpAsyncOp::create(
        b, loc, elementPtr(region, b.getI16Type(), dst),
        elementPtr(ptr, b.getI16Type(), offset), b.getI32IntegerAttr(16),
        NVVM::LoadCacheModifierKindAttr::get(b.getContext(),
                                             NVVM::LoadCacheModifierKind::CG),
        srcBytes);
    return SmallVector<Value>();
  });
}

Staged KernelEmitter::stagedShape(RankedTensorType t, Type type,
                                  bool rightOperand) {
  Staged s;
  s.offset = 0;
  s.rows = roundUp(t.getDimSize(0), 16);
  s.cols = roundUp(t.getDimSize(1), 16);
  s.stride = s.cols + kRowPadBytes / 2;
  s.type = type;
  s.swizzled =
      wgmma && rightOperand && byteWidth(type) == 2 && s.cols % 64 == 0;
  return s;
}

void KernelEmitter::issueElementCopies(Operation *op, ArrayRef<Value> indices,
                                       Value region, const Dist *rows) {
  Value source = op->getOperand(0);
  ArrayRef<int64_t> rowDims = rowDimsOf(op);
  auto srcType = cast<RankedTensorType>(source.getType());
  Type elem = srcType.getElementType();
  int64_t size =
      cast<RankedTensorType>(op->getResult(0).getType()).getDimSize(0);
  Value ptr = globals.lookup(source);
  // Row slots are replicated across a quad: its first lane copies.
  Value owner = cmpI(arith::CmpIPredicate::eq, quadLane, cidx(0));
  for (int64_t r = 0; r < rowSlots(size); ++r) {
    auto guard = scf::IfOp::create(b, loc, andOpt(owner, rowValid(r, size)),
                                   /*withElse=*/false);
    OpBuilder::InsertionGuard g(b);
    b.setInsertionPointToStart(guard.thenBlock());
    Value row = rowOf(r);
    // A gather's row index (index_cast sign-extends: -1 padding is out of
    // bounds), or the tile's row.
    Value sourceRow =
        rows
            ? arith::IndexCastOp::create(b, loc, b.getIndexType(), at(*rows, r))
            : row;
    SmallVector<Value> coords(indices);
    Value ok = locateRow(srcType, rowDims, sourceRow, coords);
    Value offset = arith::SelectOp::create(
        b, loc, ok, linearOffset(srcType, coords), cidx(0));
    // 4-byte copies exist only through L1 (.ca); 0 source bytes zero-fill.
    NVVM::CpAsyncOp::create(
        b, loc, elementPtr(region, elem, row), elementPtr(ptr, elem, offset),
        b.getI32IntegerAttr(4),
        NVVM::LoadCacheModifierKindAttr::get(b.getContext(),
                                             NVVM::LoadCacheModifierKind::CA),
        arith::SelectOp::create(b, loc, ok, ci32(4), ci32(0)));
  }
}

Staged KernelEmitter::vectorShape(RankedTensorType t) {
  Staged s;
  s.offset = 0;
  s.rows = t.getDimSize(0);
  s.cols = 1;
  s.stride = 1;
  s.type = t.getElementType();
  return s;
}

Staged KernelEmitter::allocate(Staged s, int64_t buffers) {
  s.offset =
      allocatePersistent(buffers * s.regionBytes(), s.swizzled ? 1024 : 16);
  return s;
}

Staged KernelEmitter::allocateStaged(RankedTensorType t, Type type,
                                     bool rightOperand, int64_t buffers) {
  return allocate(stagedShape(t, type, rightOperand), buffers);
}

Value KernelEmitter::stagedIndex(const Staged &s, Value row, Value col) {
  if (!s.swizzled)
    return arith::AddIOp::create(
        b, loc, arith::MulIOp::create(b, loc, row, cidx(s.stride)), col);
  // Block col / 64, row `row` of it, chunk (col % 64) / 8 xor row % 8.
  auto mul = [&](Value v, int64_t c) {
    return arith::MulIOp::create(b, loc, v, cidx(c));
  };
  auto div = [&](Value v, int64_t c) {
    return arith::DivUIOp::create(b, loc, v, cidx(c));
  };
  auto rem = [&](Value v, int64_t c) {
    return arith::RemUIOp::create(b, loc, v, cidx(c));
  };
  Value chunk =
      arith::XOrIOp::create(b, loc, div(rem(col, 64), 8), rem(row, 8));
  Value index = arith::AddIOp::create(b, loc, mul(div(col, 64), s.rows * 64),
                                      mul(row, 64));
  index = arith::AddIOp::create(b, loc, index, mul(chunk, 8));
  return arith::AddIOp::create(b, loc, index, rem(col, 8));
}

void KernelEmitter::publishStaged() {
  if (wgmma)
    NVVM::FenceProxyOp::create(
        b, loc, NVVM::ProxyKind::async_shared,
        NVVM::SharedSpaceAttr::get(b.getContext(),
                                   NVVM::SharedSpace::shared_cta));
  gpu::BarrierOp::create(b, loc);
}

void KernelEmitter::stageTile(const Dist &d, RankedTensorType t,
                              const Staged &s) {
  // Zero the padding first: the tile may not cover whole fragments.
  zeroShared(s.offset, s.regionBytes());
  gpu::BarrierOp::create(b, loc);
  // Transposed or not, the operand is stored as given ([N][K] or [K][N]).
  writeStaged(d, t, s);
}

void KernelEmitter::zeroShared(int64_t offset, int64_t bytes) {
  Value base = sharedPtr(offset);
  int64_t words = bytes / 4;
  int64_t threads = warps * kWarpSize;
  forLoop(0, ceilDiv(words, threads), {}, [&](Value iv, ValueRange) {
    Value w = arith::AddIOp::create(
        b, loc, tid, arith::MulIOp::create(b, loc, iv, cidx(threads)));
    Value ok = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult, w,
                                     cidx(words));
    auto guard = scf::IfOp::create(b, loc, ok, /*withElse=*/false);
    OpBuilder::InsertionGuard g(b);
    b.setInsertionPointToStart(guard.thenBlock());
    LLVM::StoreOp::create(b, loc, ci32(0), elementPtr(base, b.getI32Type(), w));
    return SmallVector<Value>();
  });
}

} // namespace mlir::nsa::tile::kernel
