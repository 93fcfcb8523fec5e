//===- KernelScratch.cpp - reductions and scratch ops ---------------------===//

#include "KernelEmitter.h"

namespace mlir::nsa::tile::kernel {

//===----------------------------------------------------------------------===//
// Ops: reductions, and what goes through scratch (top-n, compaction,
// extract, reshape)
//===----------------------------------------------------------------------===//

/// Per-row max or sum: the thread's columns, then the quad's four lanes.
LogicalResult KernelEmitter::emitReduce(ReduceOp op) {
  auto t = cast<RankedTensorType>(op.getValue().getType());
  int64_t cols = t.getDimSize(1);
  bool isMax = op.getKind() == ReduceKind::Max;
  Type type = t.getElementType();
  Value identity = cst(type, isMax ? kNegInf : 0.0);
  auto combine = [&](Value x, Value y) -> Value {
    if (isMax)
      return arith::MaximumFOp::create(b, loc, x, y);
    return arith::AddFOp::create(b, loc, x, y);
  };
  Dist in = get(op.getValue(), Kind::Tile);
  Dist out{Kind::Row, {}, Value()};
  for (int64_t rs = 0; rs < rowSlots(t.getDimSize(0)); ++rs) {
    Value acc = identity;
    for (int64_t cs = 0; cs < colSlots(cols); ++cs) {
      Value v = at(in, rs * colSlots(cols) + cs);
      if (Value ok = colValid(cs, cols))
        v = arith::SelectOp::create(b, loc, ok, v, identity);
      acc = combine(acc, v);
    }
    for (int64_t offset : {1, 2}) {
      auto shfl = gpu::ShuffleOp::create(
          b, loc, acc, ci32(offset), ci32(kWarpSize), gpu::ShuffleMode::XOR);
      acc = combine(acc, shfl.getShuffleResult());
    }
    out.elems.push_back(acc);
  }
  dists[op.getResult()] = out;
  return success();
}

/// group_sum through scratch: the result's rows are other warps' (and
/// lanes') than the rows they sum. When a group's G rows are rows of one
/// warp (G a power of two up to 16: row slot pairs hold rows g and g + 8 of
/// 16, g = lane / 4), the warp sums them itself, the two slots of a pair
/// (G = 16) and then over the lane bits of g by shuffles, and each lane
/// writes its group's sums (lanes of one group write equal values to the
/// same words). Other G: the whole tile is written and each result element
/// sums its G rows from scratch. One barrier, and the result is read back.
LogicalResult KernelEmitter::emitGroupSum(GroupSumOp op) {
  auto inType = cast<RankedTensorType>(op.getValue().getType());
  RankedTensorType outType = op.getType();
  int64_t groups = outType.getDimSize(0), cols = outType.getDimSize(1);
  int64_t group = inType.getDimSize(0) / groups;
  Type f32 = b.getF32Type();
  Dist in = get(op.getValue(), Kind::Tile);
  bool inWarp = group <= 16 && 16 % group == 0;
  int64_t sumBytes = roundUp(groups * cols * 4 + 4, 16);
  beginScratch(sumBytes +
               (inWarp ? 0 : roundUp(inType.getNumElements() * 4 + 4, 16)));
  Value sums = sharedPtr(stagedBytes);
  if (inWarp) {
    Dist summed = in;
    if (!in.splat) {
      int64_t cSlots = colSlots(cols);
      for (int64_t rs = 0; rs < rowSlots(inType.getDimSize(0)); rs += 2)
        for (int64_t cs = 0; cs < cSlots; ++cs) {
          Value &top = summed.elems[rs * cSlots + cs];
          Value &bottom = summed.elems[(rs + 1) * cSlots + cs];
          auto overLanes = [&](Value v) {
            for (int64_t offset = 4; offset < 4 * std::min<int64_t>(group, 8);
                 offset *= 2)
              v = arith::AddFOp::create(
                  b, loc, v,
                  gpu::ShuffleOp::create(b, loc, v, ci32(offset),
                                         ci32(kWarpSize), gpu::ShuffleMode::XOR)
                      .getShuffleResult());
            return v;
          };
          if (group == 16) {
            top = bottom =
                overLanes(arith::AddFOp::create(b, loc, top, bottom));
          } else {
            top = overLanes(top);
            bottom = overLanes(bottom);
          }
        }
    } else {
      summed.splat = arith::MulFOp::create(
          b, loc, in.splat,
          cst(in.splat.getType(), static_cast<double>(group)));
    }
    writeElements(summed, inType, sums, f32, groups * cols,
                  [&](Value row, Value col) -> Value {
                    return arith::AddIOp::create(
                        b, loc,
                        arith::MulIOp::create(
                            b, loc,
                            arith::DivUIOp::create(b, loc, row, cidx(group)),
                            cidx(cols)),
                        col);
                  });
    gpu::BarrierOp::create(b, loc);
    dists[op.getResult()] = readDist(Kind::Tile, outType, sums, cols, f32);
    return success();
  }
  Value whole = sharedPtr(stagedBytes + sumBytes);
  writeDist(in, inType, whole, cols, f32);
  gpu::BarrierOp::create(b, loc);
  // Each thread sums its result elements' rows; padding elements read row 0.
  Dist out{Kind::Tile, {}, Value()};
  int64_t cSlots = colSlots(cols);
  for (int64_t i = 0; i < count(Kind::Tile, outType); ++i) {
    int64_t rs = i / cSlots, cs = i % cSlots;
    Value valid = andOpt(rowValid(rs, groups), colValid(cs, cols));
    Value first = arith::MulIOp::create(b, loc, rowOf(rs), cidx(group * cols));
    Value at = arith::AddIOp::create(b, loc, first, colOf(cs));
    if (valid)
      at = arith::SelectOp::create(b, loc, valid, at, cidx(0));
    Value acc = zero(f32);
    for (int64_t r = 0; r < group; ++r)
      acc = arith::AddFOp::create(
          b, loc, acc,
          LLVM::LoadOp::create(
              b, loc, f32,
              elementPtr(whole, f32,
                         arith::AddIOp::create(b, loc, at, cidx(r * cols)))));
    out.elems.push_back(acc);
  }
  dists[op.getResult()] = out;
  return success();
}

/// topk_merge and topk_finalize through shared memory, with the CPU
/// lowering's order: a larger score first, then a smaller index (finalize:
/// ascending indices, -1 last).
///
/// merge: every element of a row's union (its n listed entries and its
/// candidates) counts the elements that come before it; that count is its
/// slot in the merged list, kept when below n. The order is strict (the
/// listed -1 padding entries, equal to each other, go by slot), so the
/// counts are a permutation and fill the n slots: the serial insertion's
/// result, with one thread per element instead of one per row (a row's 16
/// candidates were 16 dependent walks of its list). A candidate behind the
/// row's last listed entry skips the counting, and listed entries count
/// only candidates, so a warp whose candidates all miss the list does a
/// third of the work.
///
/// finalize (once per program): one thread per row re-inserts the row's
/// chosen indices into an ascending list.
LogicalResult KernelEmitter::emitTopk(Operation *op) {
  auto merge = dyn_cast<TopkMergeOp>(op);
  auto finalize = dyn_cast<TopkFinalizeOp>(op);
  Value bestScores = merge ? merge.getBestScores() : finalize.getScores();
  Value bestIndices = merge ? merge.getBestIndices() : finalize.getIndices();
  auto listType = cast<RankedTensorType>(bestScores.getType());
  int64_t rows = listType.getDimSize(0), n = listType.getDimSize(1);
  int64_t cands =
      merge ? cast<RankedTensorType>(merge.getScores().getType()).getDimSize(1)
            : 0;
  Type f32 = b.getF32Type(), i32 = b.getI32Type();
  int64_t listBytes = roundUp(rows * n * 4 + 4, 16);
  int64_t candBytes = roundUp(rows * cands * 4 + 4, 16);
  beginScratch((merge ? 4 : 2) * listBytes + candBytes);
  Value keys = sharedPtr(stagedBytes);
  Value idxs = sharedPtr(stagedBytes + listBytes);
  Value cand = sharedPtr(stagedBytes + 2 * listBytes);
  writeDist(get(bestScores, Kind::Tile), listType, keys, n, f32);
  writeDist(get(bestIndices, Kind::Tile), listType, idxs, n, i32);
  if (merge)
    writeDist(get(merge.getScores(), Kind::Tile),
              cast<RankedTensorType>(merge.getScores().getType()), cand, cands,
              f32);
  gpu::BarrierOp::create(b, loc);

  Value minusOne = ci32(-1);
  auto load = [&](Value base, Type type, Value at) -> Value {
    return LLVM::LoadOp::create(b, loc, type, elementPtr(base, type, at));
  };
  if (merge) {
    Value newKeys = sharedPtr(stagedBytes + 2 * listBytes + candBytes);
    Value newIdxs = sharedPtr(stagedBytes + 3 * listBytes + candBytes);
    Value start =
        arith::IndexCastOp::create(b, loc, i32, scalar(merge.getStart()));
    // (key, index) before (myKey, myIndex) in the list order.
    auto before = [&](Value key, Value index, Value myKey,
                      Value myIndex) -> Value {
      Value tie = arith::AndIOp::create(
          b, loc,
          arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OEQ, key, myKey),
          cmpI(arith::CmpIPredicate::slt, index, myIndex));
      return arith::OrIOp::create(
          b, loc,
          arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OGT, key, myKey),
          tie);
    };
    // Counts are i32: index (i64) adds are two instructions each.
    auto addIf = [&](Value count, Value cond) -> Value {
      return arith::AddIOp::create(
          b, loc, count,
          arith::SelectOp::create(b, loc, cond, ci32(1), ci32(0)));
    };
    int64_t per = n + cands, total = rows * per, threads = warps * kWarpSize;
    forLoop(
        0, ceilDiv(total, threads), {},
        [&](Value iv, ValueRange) -> SmallVector<Value> {
          Value w = arith::AddIOp::create(
              b, loc, tid, arith::MulIOp::create(b, loc, iv, cidx(threads)));
          auto guard = scf::IfOp::create(
              b, loc, cmpI(arith::CmpIPredicate::ult, w, cidx(total)), false);
          OpBuilder::InsertionGuard g(b);
          b.setInsertionPointToStart(guard.thenBlock());
          Value row = arith::DivUIOp::create(b, loc, w, cidx(per));
          Value e = arith::RemUIOp::create(b, loc, w, cidx(per));
          Value listBase = arith::MulIOp::create(b, loc, row, cidx(n));
          Value candBase = arith::MulIOp::create(b, loc, row, cidx(cands));
          Value listed = cmpI(arith::CmpIPredicate::ult, e, cidx(n));
          // Both reads stay in bounds: the other kind's address is clamped.
          Value slot = arith::SelectOp::create(b, loc, listed, e, cidx(0));
          Value c = arith::SelectOp::create(
              b, loc, listed, cidx(0),
              arith::SubIOp::create(b, loc, e, cidx(n)));
          Value listAt = arith::AddIOp::create(b, loc, listBase, slot);
          Value candAt = arith::AddIOp::create(b, loc, candBase, c);
          Value myKey = arith::SelectOp::create(
              b, loc, listed, load(keys, f32, listAt), load(cand, f32, candAt));
          Value myIndex = arith::SelectOp::create(
              b, loc, listed, load(idxs, i32, listAt),
              arith::AddIOp::create(
                  b, loc, start, arith::IndexCastOp::create(b, loc, i32, c)));
          // Whether listed entry `at` comes before this element.
          auto listedBefore = [&](Value at) {
            return before(load(keys, f32, at), load(idxs, i32, at), myKey,
                          myIndex);
          };
          // A candidate that the row's last listed entry comes before has
          // all n listed entries before it: dropped without counting (after
          // the first steps, most candidates are).
          Value behindList = listedBefore(
              arith::AddIOp::create(b, loc, listBase, cidx(n - 1)));
          Value missesList = arith::XOrIOp::create(
              b, loc, behindList, cst(behindList.getType(), 1));
          Value mayEnter = arith::OrIOp::create(b, loc, listed, missesList);
          // When a row is one warp (n + candidates = 32), a vote tells its
          // listed entries whether any candidate may enter; when none may,
          // they keep their slots without counting (late in the scan, most
          // steps change no list).
          Value someEnter;
          if (per == kWarpSize)
            someEnter = NVVM::VoteSyncOp::create(
                b, loc, b.getI1Type(), ci32(-1),
                arith::AndIOp::create(
                    b, loc, missesList,
                    arith::XOrIOp::create(b, loc, listed,
                                          cst(listed.getType(), 1))),
                NVVM::VoteSyncKind::any);
          auto counted = scf::IfOp::create(b, loc, mayEnter, false);
          b.setInsertionPointToStart(counted.thenBlock());
          // Listed entries before a listed one: exactly the earlier slots;
          // a candidate counts them (only its lanes run the loop).
          auto fromList = scf::IfOp::create(b, loc, TypeRange{i32}, listed,
                                            /*withElseRegion=*/true);
          {
            OpBuilder::InsertionGuard g2(b);
            b.setInsertionPointToStart(fromList.thenBlock());
            scf::YieldOp::create(b, loc,
                                 arith::IndexCastOp::create(b, loc, i32, e)
                                     .getResult());
            b.setInsertionPointToStart(fromList.elseBlock());
            Value before0 =
                forLoop(0, n, ValueRange{ci32(0)},
                        [&](Value s, ValueRange it) -> SmallVector<Value> {
                          return {
                              addIf(it[0], listedBefore(arith::AddIOp::create(
                                               b, loc, listBase, s)))};
                        })
                    .getResult(0);
            scf::YieldOp::create(b, loc, before0);
          }
          Value count = fromList.getResult(0);
          auto countCandidates = [&]() -> Value {
            return forLoop(
                       0, cands, ValueRange{count},
                       [&](Value k, ValueRange it) -> SmallVector<Value> {
                         Value key =
                             load(cand, f32,
                                  arith::AddIOp::create(b, loc, candBase, k));
                         Value index = arith::AddIOp::create(
                             b, loc, start,
                             arith::IndexCastOp::create(b, loc, i32, k));
                         return {
                             addIf(it[0], before(key, index, myKey, myIndex))};
                       })
                .getResult(0);
          };
          if (someEnter) {
            auto maybe = scf::IfOp::create(b, loc, TypeRange{i32}, someEnter,
                                           /*withElseRegion=*/true);
            OpBuilder::InsertionGuard g2(b);
            b.setInsertionPointToStart(maybe.thenBlock());
            scf::YieldOp::create(b, loc, countCandidates());
            b.setInsertionPointToStart(maybe.elseBlock());
            scf::YieldOp::create(b, loc, count);
            count = maybe.getResult(0);
          } else {
            count = countCandidates();
          }
          auto keep = scf::IfOp::create(
              b, loc, cmpI(arith::CmpIPredicate::ult, count, ci32(n)), false);
          b.setInsertionPointToStart(keep.thenBlock());
          Value at = arith::AddIOp::create(
              b, loc, listBase,
              arith::IndexCastOp::create(b, loc, b.getIndexType(), count));
          LLVM::StoreOp::create(b, loc, myKey, elementPtr(newKeys, f32, at));
          LLVM::StoreOp::create(b, loc, myIndex, elementPtr(newIdxs, i32, at));
          return {};
        });
    gpu::BarrierOp::create(b, loc);
    dists[merge.getNewScores()] =
        readDist(Kind::Tile, listType, newKeys, n, f32);
    dists[merge.getNewIndices()] =
        readDist(Kind::Tile, listType, newIdxs, n, i32);
    return success();
  }

  auto mine = cmpI(arith::CmpIPredicate::ult, tid, cidx(rows));
  auto guard = scf::IfOp::create(b, loc, mine, /*withElse=*/false);
  {
    OpBuilder::InsertionGuard g(b);
    b.setInsertionPointToStart(guard.thenBlock());
    Value rowBaseIdx = arith::MulIOp::create(b, loc, tid, cidx(n));
    // Inserts index cIdx into the row's ascending list (-1 last), walking
    // its n slots.
    auto insert = [&](Value cIdx) {
      forLoop(0, n, ValueRange{cIdx},
              [&](Value slot, ValueRange it) -> SmallVector<Value> {
                Value ip = elementPtr(
                    idxs, i32, arith::AddIOp::create(b, loc, rowBaseIdx, slot));
                Value sIdx = LLVM::LoadOp::create(b, loc, i32, ip);
                Value swap = arith::AndIOp::create(
                    b, loc, cmpI(arith::CmpIPredicate::ne, it[0], minusOne),
                    arith::OrIOp::create(
                        b, loc, cmpI(arith::CmpIPredicate::eq, sIdx, minusOne),
                        cmpI(arith::CmpIPredicate::slt, it[0], sIdx)));
                LLVM::StoreOp::create(
                    b, loc, arith::SelectOp::create(b, loc, swap, it[0], sIdx),
                    ip);
                return {arith::SelectOp::create(b, loc, swap, sIdx, it[0])};
              });
    };
    // Indices of real entries, re-inserted into an ascending list whose
    // empty slots are -1. The list is rebuilt in place from a copy.
    SmallVector<Value> keysOld, idxOld;
    for (int64_t s = 0; s < n; ++s) {
      Value at = arith::AddIOp::create(b, loc, rowBaseIdx, cidx(s));
      keysOld.push_back(load(keys, f32, at));
      idxOld.push_back(load(idxs, i32, at));
    }
    for (int64_t s = 0; s < n; ++s) {
      Value at = arith::AddIOp::create(b, loc, rowBaseIdx, cidx(s));
      LLVM::StoreOp::create(b, loc, minusOne, elementPtr(idxs, i32, at));
    }
    Value negInf = cst(f32, kNegInf);
    for (int64_t s = 0; s < n; ++s) {
      Value chosen = arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OGT,
                                           keysOld[s], negInf);
      insert(arith::SelectOp::create(b, loc, chosen, idxOld[s], minusOne));
    }
  }
  gpu::BarrierOp::create(b, loc);
  dists[finalize.getResult()] = readDist(Kind::Tile, listType, idxs, n, i32);
  return success();
}

/// tile.compact: values and mask go through scratch; every warp then votes
/// the mask, 32 elements a ballot, and each lane holding a set element
/// writes its value at its rank (the set bits before it: earlier words'
/// populations, then a popcount under its lane) into a list of the warp's
/// own, so that a warp sync, not a block barrier, orders the list before
/// its reads; an element reads list[rank] when its rank is in [0, count).
/// (PTX fns, the k-th set bit, would read the bit set directly but is 56
/// instructions on sm_90: the selected d_k/d_v went 38.7 -> 40.6 ms.)
LogicalResult KernelEmitter::emitCompact(CompactOp op) {
  auto type = cast<RankedTensorType>(op.getValues().getType());
  int64_t size = type.getDimSize(0);
  Type i32 = b.getI32Type();
  // Operands first: a change of kind goes through scratch too.
  auto resultType = cast<RankedTensorType>(op.getResult().getType());
  Kind kind = kindOf(op.getResult());
  Dist ranks = get(op.getRanks(), kind);
  Dist valueDist = get(op.getValues());
  Dist mask = get(op.getMask());
  // values, mask (each with a trash slot), then a list per warp and a trash
  // slot for lanes whose element is not set.
  int64_t tileBytes = roundUp(size * 4 + 4, 16);
  beginScratch(2 * tileBytes + warps * size * 4 + 4);
  Value values = sharedPtr(stagedBytes);
  Value maskBase = sharedPtr(stagedBytes + tileBytes);
  Value lists = sharedPtr(stagedBytes + 2 * tileBytes);
  writeDist(valueDist, type, values, 1, i32);
  for (Value &v : mask.elems)
    v = arith::ExtUIOp::create(b, loc, i32, v);
  if (mask.splat)
    mask.splat = arith::ExtUIOp::create(b, loc, i32, mask.splat);
  writeDist(mask, type, maskBase, 1, i32);
  gpu::BarrierOp::create(b, loc);

  Value listBase = arith::MulIOp::create(b, loc, warpId, cidx(size));
  Value below = arith::SubIOp::create(
      b, loc,
      arith::ShLIOp::create(b, loc, ci32(1),
                            arith::IndexCastOp::create(b, loc, i32, lane)),
      ci32(1));
  Value total = ci32(0);
  for (int64_t w = 0; w < ceilDiv(size, kWarpSize); ++w) {
    Value at = arith::AddIOp::create(b, loc, lane, cidx(w * kWarpSize));
    Value clamped = arith::MinUIOp::create(b, loc, at, cidx(size - 1));
    Value set = arith::AndIOp::create(
        b, loc, cmpI(arith::CmpIPredicate::ult, at, cidx(size)),
        cmpI(arith::CmpIPredicate::ne,
             LLVM::LoadOp::create(b, loc, i32,
                                  elementPtr(maskBase, i32, clamped)),
             ci32(0)));
    Value word = NVVM::VoteSyncOp::create(b, loc, i32, ci32(-1), set,
                                          NVVM::VoteSyncKind::ballot);
    Value rank = arith::AddIOp::create(
        b, loc, total,
        LLVM::CtPopOp::create(b, loc, i32,
                              arith::AndIOp::create(b, loc, word, below)));
    Value slot = arith::SelectOp::create(
        b, loc, set,
        arith::AddIOp::create(
            b, loc, listBase,
            arith::IndexCastOp::create(b, loc, b.getIndexType(), rank)),
        cidx(warps * size));
    LLVM::StoreOp::create(
        b, loc,
        LLVM::LoadOp::create(b, loc, i32, elementPtr(values, i32, clamped)),
        elementPtr(lists, i32, slot));
    total = arith::AddIOp::create(b, loc, total,
                                  LLVM::CtPopOp::create(b, loc, i32, word));
  }
  NVVM::SyncWarpOp::create(b, loc, ci32(-1));
  scalars.map(
      op.getCount(),
      arith::IndexCastOp::create(b, loc, b.getIndexType(), total).getResult());

  Dist out{kind, {}, Value()};
  for (int64_t i = 0; i < count(kind, resultType); ++i) {
    Value rank = at(ranks, i);
    Value listed = cmpI(arith::CmpIPredicate::ult, rank, total);
    Value slot = arith::AddIOp::create(
        b, loc, listBase,
        arith::IndexCastOp::create(
            b, loc, b.getIndexType(),
            arith::SelectOp::create(b, loc, listed, rank, ci32(0))));
    Value value =
        LLVM::LoadOp::create(b, loc, i32, elementPtr(lists, i32, slot));
    out.elems.push_back(
        arith::SelectOp::create(b, loc, listed, value, ci32(-1)));
  }
  dists[op.getResult()] = out;
  return success();
}

/// One element of a tile, the same in every thread: through scratch.
LogicalResult KernelEmitter::emitExtract(tensor::ExtractOp op) {
  auto t = cast<RankedTensorType>(op.getTensor().getType());
  if (t.getRank() > 2)
    return op.emitOpError("convert-tile-to-gpu: tiles have rank 1 or 2");
  Type type = t.getElementType();
  int64_t cols = t.getRank() == 2 ? t.getDimSize(1) : 1;
  Value base;
  if (auto it = extractRegions.find(op.getTensor());
      it != extractRegions.end()) {
    // Published when it was computed.
    base = sharedPtr(it->second);
  } else {
    beginScratch(t.getNumElements() * byteWidth(type));
    base = sharedPtr(stagedBytes);
    writeDist(get(op.getTensor()), t, base, cols, type);
    gpu::BarrierOp::create(b, loc);
  }
  Value index = scalar(op.getIndices()[0]);
  if (t.getRank() == 2)
    index = arith::AddIOp::create(
        b, loc, arith::MulIOp::create(b, loc, index, cidx(cols)),
        scalar(op.getIndices()[1]));
  scalars.map(op.getResult(),
              LLVM::LoadOp::create(b, loc, type, elementPtr(base, type, index))
                  .getResult());
  return success();
}

/// A tile reshape, written as tensor.expand_shape to rank 3 and
/// tensor.collapse_shape back to rank 2 (row-major order is kept): the tile
/// goes through scratch and comes back in its new shape.
LogicalResult KernelEmitter::emitReshape(Operation *op) {
  if (auto expand = dyn_cast<tensor::ExpandShapeOp>(op)) {
    bool pair = expand.getSrcType().getRank() == 2 &&
                llvm::all_of(expand->getUsers(),
                             llvm::IsaPred<tensor::CollapseShapeOp>);
    if (!pair)
      return op->emitOpError("convert-tile-to-gpu: a tile reshape must be a "
                             "rank-2 expand_shape whose users collapse it "
                             "back to rank 2");
    expanded[expand.getResult()] = expand.getSrc();
    return success();
  }
  auto collapse = cast<tensor::CollapseShapeOp>(op);
  Value source = expanded.lookup(collapse.getSrc());
  if (!source && collapse.getSrcType().getRank() == 2)
    source = collapse.getSrc();
  auto resultType = collapse.getResultType();
  if (!source || resultType.getRank() != 2)
    return op->emitOpError("convert-tile-to-gpu: a tile reshape must collapse "
                           "an expanded rank-2 tile to rank 2");
  auto sourceType = cast<RankedTensorType>(source.getType());
  Type type = sourceType.getElementType();
  beginScratch(sourceType.getNumElements() * byteWidth(type));
  Value base = sharedPtr(stagedBytes);
  writeDist(get(source, Kind::Tile), sourceType, base, sourceType.getDimSize(1),
            type);
  gpu::BarrierOp::create(b, loc);
  dists[collapse.getResult()] =
      readDist(Kind::Tile, resultType, base, resultType.getDimSize(1), type);
  return success();
}

} // namespace mlir::nsa::tile::kernel
