//===- ConvertTileToSCF.cpp - tile programs -> loops on tensors -----------===//
//
// Lowers tile programs to upstream ops on tensors that one-shot-bufferize
// handles, so that they run on the CPU. A program becomes an scf.for nest
// over its grid carrying its outputs; reads become tensor.generate with a
// bounds check per element, stores element loops of tensor.insert, and
// dot/reduce linalg.generic. The streaming-softmax ops are decomposed into
// the other tile ops first, so that their -inf guards are written once.
//
//===----------------------------------------------------------------------===//

#include "nsa/Dialect/Tile/IR/TileDialect.h"
#include "nsa/Dialect/Tile/Transforms/Passes.h"
#include "TileRewrites.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Arith/Utils/Utils.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Transforms/DialectConversion.h"
#include "llvm/Support/MathExtras.h"

#include <limits>

namespace mlir::nsa::tile {
#define GEN_PASS_DEF_CONVERTTILETOSCF
#include "nsa/Dialect/Tile/Transforms/Passes.h.inc"
} // namespace mlir::nsa::tile

using namespace mlir;
using namespace mlir::nsa::tile;
using namespace mlir::nsa::tile::rewrites;

namespace {

//===----------------------------------------------------------------------===//
// Element addressing
//===----------------------------------------------------------------------===//

/// One element of a tensor that a tile element reads or writes.
struct Element {
  SmallVector<Value> coords;
  /// Whether the one coordinate that can run out of bounds (the first row
  /// dimension's, or a gathered row's) is inside the tensor.
  Value inBounds;
};

/// Whether `coord` indexes dimension `dim` of `tensor`. The comparison is
/// unsigned so that negative coordinates are out of bounds too.
Value isInBounds(OpBuilder &b, Location loc, Value tensor, int64_t dim,
                 Value coord) {
  Value size = getValueOrCreateConstantIndexOp(
      b, loc, tensor::getMixedSize(b, loc, tensor, dim));
  return arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult, coord, size);
}

/// The element of `tensor` that tile element `tileCoords` (the row, then the
/// column of a rank-2 tile) of a tile.load or tile.store addresses: the
/// row_dims are enumerated row-major by the row, the first one starting at
/// its index; the column is the last dimension; every other dimension is
/// fixed at its index. Only the first row dimension can run out of bounds.
Element locateRowElement(OpBuilder &b, Location loc, Value tensor,
                         ValueRange indices, ArrayRef<int64_t> rowDims,
                         ValueRange tileCoords, int64_t rowStride = 1) {
  RankedTensorType type = tensorType(tensor);
  Element e{llvm::to_vector(indices), Value()};
  Value row = tileCoords.front();
  // The inner row dimensions are covered whole (their index is 0): peel them
  // off the row number, innermost first.
  for (int64_t d : llvm::reverse(rowDims.drop_front())) {
    Value size = arith::ConstantIndexOp::create(b, loc, type.getDimSize(d));
    e.coords[d] = arith::RemUIOp::create(b, loc, row, size);
    row = arith::DivUIOp::create(b, loc, row, size);
  }
  int64_t first = rowDims.front();
  if (rowStride != 1)
    row = arith::MulIOp::create(
        b, loc, row, arith::ConstantIndexOp::create(b, loc, rowStride));
  e.coords[first] = b.createOrFold<arith::AddIOp>(loc, indices[first], row);
  if (tileCoords.size() == 2)
    e.coords.back() = tileCoords[1];
  e.inBounds = isInBounds(b, loc, tensor, first, e.coords[first]);
  return e;
}

/// `tensor[e.coords]`, or 0 when out of bounds. The read sits in an scf.if
/// rather than under a select because an out-of-bounds tensor.extract is
/// undefined behavior.
Value readOrZero(OpBuilder &b, Location loc, Value tensor, const Element &e) {
  Type elementType = tensorType(tensor).getElementType();
  auto ifOp = scf::IfOp::create(
      b, loc, e.inBounds,
      [&](OpBuilder &b, Location loc) {
        Value v = tensor::ExtractOp::create(b, loc, tensor, e.coords);
        scf::YieldOp::create(b, loc, v);
      },
      [&](OpBuilder &b, Location loc) {
        Value zero =
            arith::ConstantOp::create(b, loc, b.getZeroAttr(elementType));
        scf::YieldOp::create(b, loc, zero);
      });
  return ifOp.getResult(0);
}

/// `store` as an element loop of bounds-checked tensor.inserts into `dest`,
/// the current value of its output; returns the updated value.
Value lowerStore(OpBuilder &b, StoreOp store, Value dest) {
  Location loc = store.getLoc();
  Value tile = store.getValue();
  RankedTensorType tileType = tensorType(tile);
  Value zero = arith::ConstantIndexOp::create(b, loc, 0);
  Value one = arith::ConstantIndexOp::create(b, loc, 1);
  SmallVector<Value> lbs(tileType.getRank(), zero),
      steps(tileType.getRank(), one);
  SmallVector<Value> ubs;
  for (int64_t size : tileType.getShape())
    ubs.push_back(arith::ConstantIndexOp::create(b, loc, size));
  scf::LoopNest nest = scf::buildLoopNest(
      b, loc, lbs, ubs, steps, dest,
      [&](OpBuilder &b, Location loc, ValueRange ivs,
          ValueRange iter) -> scf::ValueVector {
        Element e =
            locateRowElement(b, loc, iter[0], store.getIndices(),
                             store.getRowDims(), ivs, store.getRowStride());
        auto ifOp = scf::IfOp::create(
            b, loc, e.inBounds,
            [&](OpBuilder &b, Location loc) {
              Value v = tensor::ExtractOp::create(b, loc, tile, ivs);
              Value updated =
                  tensor::InsertOp::create(b, loc, v, iter[0], e.coords);
              scf::YieldOp::create(b, loc, updated);
            },
            [&](OpBuilder &b, Location loc) {
              scf::YieldOp::create(b, loc, iter[0]);
            });
        return {ifOp.getResult(0)};
      });
  return nest.results.front();
}

//===----------------------------------------------------------------------===//
// Programs
//===----------------------------------------------------------------------===//

/// tile.program -> an scf.for nest over the grid whose iteration arguments
/// are the outputs. Stores are rewritten in program order, each into the
/// value the previous store to the same output produced, and the last values
/// are yielded.
struct LowerProgram : OpConversionPattern<ProgramOp> {
  using OpConversionPattern::OpConversionPattern;

  LogicalResult
  matchAndRewrite(ProgramOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    Block &body = op.getBodyBlock();
    size_t numIds = op.getGrid().size();
    Value zero = arith::ConstantIndexOp::create(rewriter, loc, 0);
    Value one = arith::ConstantIndexOp::create(rewriter, loc, 1);
    SmallVector<Value> lbs(numIds, zero), steps(numIds, one);
    scf::LoopNest nest = scf::buildLoopNest(
        rewriter, loc, lbs, adaptor.getGrid(), steps, adaptor.getOuts(),
        [&](OpBuilder &b, Location, ValueRange ids,
            ValueRange outs) -> scf::ValueVector {
          Block *loopBody = b.getInsertionBlock();
          Block::iterator loopStart = b.getInsertionPoint();
          // The pass checked that stores are the outs arguments' only users,
          // so once they are gone the arguments are dead.
          SmallVector<Value> current(outs);
          for (StoreOp store :
               llvm::make_early_inc_range(body.getOps<StoreOp>())) {
            auto dest = cast<BlockArgument>(store.getDest());
            Value &out = current[dest.getArgNumber() - numIds];
            rewriter.setInsertionPoint(store);
            out = lowerStore(rewriter, store, out);
            rewriter.eraseOp(store);
          }
          rewriter.eraseOp(body.getTerminator());
          SmallVector<Value> args(ids);
          llvm::append_range(args, outs);
          rewriter.inlineBlockBefore(&body, loopBody, loopStart, args);
          return current;
        });
    rewriter.replaceOp(op, nest.results);
    return success();
  }
};

//===----------------------------------------------------------------------===//
// Reads
//===----------------------------------------------------------------------===//

struct LowerLoad : OpConversionPattern<LoadOp> {
  using OpConversionPattern::OpConversionPattern;

  LogicalResult
  matchAndRewrite(LoadOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    Value source = adaptor.getSource();
    rewriter.replaceOpWithNewOp<tensor::GenerateOp>(
        op, op.getType(), ValueRange(),
        [&](OpBuilder &b, Location loc, ValueRange ivs) {
          Element e = locateRowElement(b, loc, source, adaptor.getIndices(),
                                       op.getRowDims(), ivs);
          tensor::YieldOp::create(b, loc, readOrZero(b, loc, source, e));
        });
    return success();
  }
};

struct LowerGather : OpConversionPattern<GatherOp> {
  using OpConversionPattern::OpConversionPattern;

  LogicalResult
  matchAndRewrite(GatherOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    Value source = adaptor.getSource();
    rewriter.replaceOpWithNewOp<tensor::GenerateOp>(
        op, op.getType(), ValueRange(),
        [&](OpBuilder &b, Location loc, ValueRange ivs) {
          // Row rows[r] of a tile.load from index 0 on the row dimensions.
          // index_cast sign-extends, so -1 padding becomes a huge unsigned
          // coordinate that the bounds check rejects.
          Value index =
              tensor::ExtractOp::create(b, loc, adaptor.getRows(), ivs[0]);
          SmallVector<Value> coords(ivs);
          coords[0] =
              arith::IndexCastOp::create(b, loc, b.getIndexType(), index);
          Value zero = arith::ConstantIndexOp::create(b, loc, 0);
          Element e = locateRowElement(
              b, loc, source, op.sourceIndices(adaptor.getIndices(), zero),
              op.getRowDims(), coords);
          tensor::YieldOp::create(b, loc, readOrZero(b, loc, source, e));
        });
    return success();
  }
};

//===----------------------------------------------------------------------===//
// Elementwise tiles
//===----------------------------------------------------------------------===//

struct LowerRange : OpConversionPattern<RangeOp> {
  using OpConversionPattern::OpConversionPattern;

  LogicalResult
  matchAndRewrite(RangeOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    rewriter.replaceOpWithNewOp<tensor::GenerateOp>(
        op, op.getType(), ValueRange(),
        [&](OpBuilder &b, Location loc, ValueRange ivs) {
          // The position is non-negative: unsigned division is floordiv.
          Value divisor =
              arith::ConstantIndexOp::create(b, loc, op.getDivisor());
          Value quotient = arith::DivUIOp::create(b, loc, ivs[0], divisor);
          Value pos =
              arith::AddIOp::create(b, loc, adaptor.getStart(), quotient);
          Value v = arith::IndexCastOp::create(b, loc, b.getI32Type(), pos);
          tensor::YieldOp::create(b, loc, v);
        });
    return success();
  }
};

struct LowerBroadcast : OpConversionPattern<BroadcastOp> {
  using OpConversionPattern::OpConversionPattern;

  LogicalResult
  matchAndRewrite(BroadcastOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    // dim = 1 repeats value[i] along row i, dim = 0 value[j] along column j.
    int64_t kept = 1 - op.getDim();
    rewriter.replaceOpWithNewOp<tensor::GenerateOp>(
        op, op.getType(), ValueRange(),
        [&](OpBuilder &b, Location loc, ValueRange ivs) {
          Value v =
              tensor::ExtractOp::create(b, loc, adaptor.getValue(), ivs[kept]);
          tensor::YieldOp::create(b, loc, v);
        });
    return success();
  }
};

struct LowerMaskedFill : OpConversionPattern<MaskedFillOp> {
  using OpConversionPattern::OpConversionPattern;

  LogicalResult
  matchAndRewrite(MaskedFillOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    rewriter.replaceOpWithNewOp<tensor::GenerateOp>(
        op, op.getType(), ValueRange(),
        [&](OpBuilder &b, Location loc, ValueRange ivs) {
          Value mask =
              tensor::ExtractOp::create(b, loc, adaptor.getMask(), ivs);
          Value v = tensor::ExtractOp::create(b, loc, adaptor.getValue(), ivs);
          Value r = arith::SelectOp::create(b, loc, mask, adaptor.getFill(), v);
          tensor::YieldOp::create(b, loc, r);
        });
    return success();
  }
};

//===----------------------------------------------------------------------===//
// Contractions
//===----------------------------------------------------------------------===//

/// A tensor of `type` filled with `value` (the init of a linalg reduction).
Value filled(OpBuilder &b, Location loc, RankedTensorType type, double value) {
  Value empty =
      tensor::EmptyOp::create(b, loc, type.getShape(), type.getElementType());
  Value v = arith::ConstantOp::create(
      b, loc, b.getFloatAttr(type.getElementType(), value));
  return linalg::FillOp::create(b, loc, v, empty).getResult(0);
}

/// tile.dot -> linalg.generic over (m, n, k) that widens each operand to f32
/// before multiplying, so bf16/f16 products accumulate in f32.
struct LowerDot : OpConversionPattern<DotOp> {
  using OpConversionPattern::OpConversionPattern;

  LogicalResult
  matchAndRewrite(DotOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    MLIRContext *ctx = rewriter.getContext();
    AffineExpr m, n, k;
    bindDims(ctx, m, n, k);
    auto map = [&](ArrayRef<AffineExpr> results) {
      return AffineMap::get(3, 0, results, ctx);
    };
    SmallVector<AffineMap> maps = {
        op.getLhsTransposed() ? map({k, m}) : map({m, k}),
        op.getRhsTransposed() ? map({n, k}) : map({k, n}), map({m, n})};
    SmallVector<utils::IteratorType> iterators = {
        utils::IteratorType::parallel, utils::IteratorType::parallel,
        utils::IteratorType::reduction};
    RankedTensorType type = op.getType();
    Value init = filled(rewriter, loc, type, 0.0);
    rewriter.replaceOpWithNewOp<linalg::GenericOp>(
        op, type, ValueRange{adaptor.getLhs(), adaptor.getRhs()}, init, maps,
        iterators, [&](OpBuilder &b, Location loc, ValueRange args) {
          Value a = castFloat(b, loc, args[0], b.getF32Type());
          Value c = castFloat(b, loc, args[1], b.getF32Type());
          Value product = arith::MulFOp::create(b, loc, a, c);
          Value sum = arith::AddFOp::create(b, loc, args[2], product);
          linalg::YieldOp::create(b, loc, sum);
        });
    return success();
  }
};

/// tile.reduce -> linalg.generic reducing (i, j) to (i), from the identity of
/// the reduction, so that an all -inf row's max is -inf.
struct LowerReduce : OpConversionPattern<ReduceOp> {
  using OpConversionPattern::OpConversionPattern;

  LogicalResult
  matchAndRewrite(ReduceOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    RankedTensorType type = op.getType();
    if (!isa<FloatType>(type.getElementType()))
      return rewriter.notifyMatchFailure(op, "only float tiles are reduced");
    Location loc = op.getLoc();
    MLIRContext *ctx = rewriter.getContext();
    bool isMax = op.getKind() == ReduceKind::Max;
    Value init = filled(rewriter, loc, type, isMax ? kNegInf : 0.0);
    AffineMap in = AffineMap::getMultiDimIdentityMap(2, ctx);
    AffineMap out = AffineMap::get(2, 0, getAffineDimExpr(0, ctx), ctx);
    SmallVector<utils::IteratorType> iterators = {
        utils::IteratorType::parallel, utils::IteratorType::reduction};
    rewriter.replaceOpWithNewOp<linalg::GenericOp>(
        op, type, adaptor.getValue(), init, ArrayRef<AffineMap>{in, out},
        iterators, [&](OpBuilder &b, Location loc, ValueRange args) {
          Value r;
          if (isMax)
            r = arith::MaximumFOp::create(b, loc, args[0], args[1]);
          else
            r = arith::AddFOp::create(b, loc, args[0], args[1]);
          linalg::YieldOp::create(b, loc, r);
        });
    return success();
  }
};

/// group_sum: the rows as [R/G, G, C], reduced over the middle dimension.
struct LowerGroupSum : OpConversionPattern<GroupSumOp> {
  using OpConversionPattern::OpConversionPattern;

  LogicalResult
  matchAndRewrite(GroupSumOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    RankedTensorType type = op.getType();
    Location loc = op.getLoc();
    MLIRContext *ctx = rewriter.getContext();
    int64_t groups = type.getDimSize(0), cols = type.getDimSize(1);
    int64_t group = op.getValue().getType().getDimSize(0) / groups;
    Value grouped = tensor::ExpandShapeOp::create(
        rewriter, loc,
        RankedTensorType::get({groups, group, cols}, type.getElementType()),
        adaptor.getValue(), ArrayRef<ReassociationIndices>{{0, 1}, {2}});
    AffineMap in = AffineMap::getMultiDimIdentityMap(3, ctx);
    AffineMap out = AffineMap::get(
        3, 0, {getAffineDimExpr(0, ctx), getAffineDimExpr(2, ctx)}, ctx);
    SmallVector<utils::IteratorType> iterators = {
        utils::IteratorType::parallel, utils::IteratorType::reduction,
        utils::IteratorType::parallel};
    rewriter.replaceOpWithNewOp<linalg::GenericOp>(
        op, type, grouped, filled(rewriter, loc, type, 0.0),
        ArrayRef<AffineMap>{in, out}, iterators,
        [&](OpBuilder &b, Location loc, ValueRange args) {
          linalg::YieldOp::create(
              b, loc,
              arith::AddFOp::create(b, loc, args[0], args[1]).getResult());
        });
    return success();
  }
};

//===----------------------------------------------------------------------===//
// Top-n selection
//===----------------------------------------------------------------------===//

/// One insertion step shared by topk_merge and topk_finalize: walks the
/// ranked slots of row `row` and, wherever `better(candidate, slot)` holds,
/// swaps the candidate into the slot and carries the slot's old entry on.
/// Entries are (key, index) pairs held in `keys` (may be null: indices
/// only) and `indices`. Returns the updated (keys, indices).
std::pair<Value, Value> insertRanked(
    OpBuilder &b, Location loc, Value keys, Value indices, Value row,
    Value candKey, Value candIndex,
    function_ref<Value(OpBuilder &, Location, Value, Value, Value, Value)>
        better) {
  int64_t n = tensorType(indices).getDimSize(1);
  Value zero = arith::ConstantIndexOp::create(b, loc, 0);
  Value one = arith::ConstantIndexOp::create(b, loc, 1);
  Value bound = arith::ConstantIndexOp::create(b, loc, n);
  SmallVector<Value> init = {indices, candIndex};
  if (keys)
    init.append({keys, candKey});
  auto loop = scf::ForOp::create(
      b, loc, zero, bound, one, init,
      [&](OpBuilder &b, Location loc, Value slot, ValueRange it) {
        Value idx = it[0], cIdx = it[1];
        Value key = keys ? it[2] : Value(), cKey = keys ? it[3] : Value();
        SmallVector<Value> at = {row, slot};
        Value sIdx = tensor::ExtractOp::create(b, loc, idx, at);
        Value sKey = keys ? tensor::ExtractOp::create(b, loc, key, at)
                          : Value();
        Value swap = better(b, loc, cKey, cIdx, sKey, sIdx);
        auto pick = [&](Value x, Value y) {
          return arith::SelectOp::create(b, loc, swap, x, y).getResult();
        };
        SmallVector<Value> next = {
            tensor::InsertOp::create(b, loc, pick(cIdx, sIdx), idx, at),
            pick(sIdx, cIdx)};
        if (keys)
          next.append(
              {tensor::InsertOp::create(b, loc, pick(cKey, sKey), key, at),
               pick(sKey, cKey)});
        scf::YieldOp::create(b, loc, next);
      });
  return {keys ? loop.getResult(2) : Value(), loop.getResult(0)};
}

/// An i32 tile of -1 (no index), the start of top-n lists and compactions.
Value minusOnes(OpBuilder &b, Location loc, RankedTensorType type) {
  return arith::ConstantOp::create(
      b, loc, DenseElementsAttr::get(type, static_cast<int32_t>(-1)));
}

/// Every (row, column) of a rows x cols space, carrying `init`.
ValueRange forEachElement(
    OpBuilder &b, Location loc, int64_t rows, int64_t cols, ValueRange init,
    function_ref<SmallVector<Value>(OpBuilder &, Location, Value, Value,
                                    ValueRange)>
        body) {
  Value zero = arith::ConstantIndexOp::create(b, loc, 0);
  Value one = arith::ConstantIndexOp::create(b, loc, 1);
  SmallVector<Value> lbs = {zero, zero}, steps = {one, one};
  SmallVector<Value> ubs = {arith::ConstantIndexOp::create(b, loc, rows),
                            arith::ConstantIndexOp::create(b, loc, cols)};
  return scf::buildLoopNest(
             b, loc, lbs, ubs, steps, init,
             [&](OpBuilder &b, Location loc, ValueRange ivs,
                 ValueRange iter) -> scf::ValueVector {
               SmallVector<Value> r = body(b, loc, ivs[0], ivs[1], iter);
               return scf::ValueVector(r.begin(), r.end());
             })
      .results;
}

/// Each score of the block enters its row's ranked list: larger score first,
/// then smaller index. A -inf candidate never wins a slot (empty slots are
/// -inf with index -1, and candidates' indices are >= 0).
struct LowerTopkMerge : OpConversionPattern<TopkMergeOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult
  matchAndRewrite(TopkMergeOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    RankedTensorType scores = tensorType(adaptor.getScores());
    Value start = adaptor.getStart();
    ValueRange merged = forEachElement(
        rewriter, loc, scores.getDimSize(0), scores.getDimSize(1),
        {adaptor.getBestScores(), adaptor.getBestIndices()},
        [&](OpBuilder &b, Location loc, Value row, Value col,
            ValueRange best) -> SmallVector<Value> {
          Value key = tensor::ExtractOp::create(b, loc, adaptor.getScores(),
                                                ValueRange{row, col});
          Value index = arith::IndexCastOp::create(
              b, loc, b.getI32Type(),
              arith::AddIOp::create(b, loc, start, col));
          auto [keys, indices] = insertRanked(
              b, loc, best[0], best[1], row, key, index,
              [](OpBuilder &b, Location loc, Value cKey, Value cIdx,
                 Value sKey, Value sIdx) -> Value {
                Value higher = arith::CmpFOp::create(
                    b, loc, arith::CmpFPredicate::OGT, cKey, sKey);
                Value tie = arith::AndIOp::create(
                    b, loc,
                    arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OEQ,
                                          cKey, sKey),
                    arith::CmpIOp::create(b, loc, arith::CmpIPredicate::slt,
                                          cIdx, sIdx));
                return arith::OrIOp::create(b, loc, higher, tie);
              });
          return {keys, indices};
        });
    rewriter.replaceOp(op, merged);
    return success();
  }
};

/// The indices of entries scoring more than -inf, ascending, then -1: each
/// such index enters an ascending list whose empty slots are -1.
struct LowerTopkFinalize : OpConversionPattern<TopkFinalizeOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult
  matchAndRewrite(TopkFinalizeOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    RankedTensorType type = tensorType(adaptor.getIndices());
    Value none = minusOnes(rewriter, loc, type);
    Value negInf = arith::ConstantOp::create(
        rewriter, loc, rewriter.getF32FloatAttr(kNegInf));
    ValueRange sorted = forEachElement(
        rewriter, loc, type.getDimSize(0), type.getDimSize(1), {none},
        [&](OpBuilder &b, Location loc, Value row, Value slot,
            ValueRange acc) -> SmallVector<Value> {
          Value key = tensor::ExtractOp::create(b, loc, adaptor.getScores(),
                                                ValueRange{row, slot});
          Value index = tensor::ExtractOp::create(b, loc, adaptor.getIndices(),
                                                  ValueRange{row, slot});
          Value minusOne = arith::ConstantIntOp::create(b, loc, -1, 32);
          Value chosen = arith::CmpFOp::create(
              b, loc, arith::CmpFPredicate::OGT, key, negInf);
          Value cand = arith::SelectOp::create(b, loc, chosen, index, minusOne);
          auto [unused, indices] = insertRanked(
              b, loc, Value(), acc[0], row, Value(), cand,
              [&](OpBuilder &b, Location loc, Value, Value cIdx, Value,
                  Value sIdx) -> Value {
                Value valid = arith::CmpIOp::create(
                    b, loc, arith::CmpIPredicate::ne, cIdx, minusOne);
                Value empty = arith::CmpIOp::create(
                    b, loc, arith::CmpIPredicate::eq, sIdx, minusOne);
                Value smaller = arith::CmpIOp::create(
                    b, loc, arith::CmpIPredicate::slt, cIdx, sIdx);
                return arith::AndIOp::create(
                    b, loc, valid, arith::OrIOp::create(b, loc, empty, smaller));
              });
          return {indices};
        });
    rewriter.replaceOp(op, sorted);
    return success();
  }
};

//===----------------------------------------------------------------------===//
// Stream compaction
//===----------------------------------------------------------------------===//

/// The mask's set elements in order: the k-th of them (count k before it)
/// fills every result element whose rank is k; the others stay -1.
struct LowerCompact : OpConversionPattern<CompactOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult
  matchAndRewrite(CompactOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    RankedTensorType type = tensorType(adaptor.getRanks());
    Value none = minusOnes(rewriter, loc, type);
    Value zero = arith::ConstantIndexOp::create(rewriter, loc, 0);
    Value one = arith::ConstantIndexOp::create(rewriter, loc, 1);
    auto loop = scf::ForOp::create(
        rewriter, loc, zero,
        arith::ConstantIndexOp::create(
            rewriter, loc, tensorType(adaptor.getValues()).getDimSize(0)),
        one, ValueRange{none, zero},
        [&](OpBuilder &b, Location loc, Value c, ValueRange it) {
          Value set = tensor::ExtractOp::create(b, loc, adaptor.getMask(), c);
          Value value =
              tensor::ExtractOp::create(b, loc, adaptor.getValues(), c);
          Value rank =
              arith::IndexCastOp::create(b, loc, b.getI32Type(), it[1]);
          auto fill = scf::ForOp::create(
              b, loc, zero,
              arith::ConstantIndexOp::create(b, loc, type.getDimSize(0)), one,
              ValueRange{it[0]},
              [&](OpBuilder &b, Location loc, Value r, ValueRange acc) {
                Value wanted = arith::AndIOp::create(
                    b, loc, set,
                    arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq,
                                          rank,
                                          tensor::ExtractOp::create(
                                              b, loc, adaptor.getRanks(), r)));
                Value old = tensor::ExtractOp::create(b, loc, acc[0], r);
                Value picked =
                    arith::SelectOp::create(b, loc, wanted, value, old);
                scf::YieldOp::create(b, loc,
                                     ValueRange{tensor::InsertOp::create(
                                                    b, loc, picked, acc[0], r)
                                                    .getResult()});
              });
          Value next = arith::AddIOp::create(
              b, loc, it[1], arith::SelectOp::create(b, loc, set, one, zero));
          scf::YieldOp::create(b, loc, ValueRange{fill.getResult(0), next});
        });
    rewriter.replaceOp(op, loop.getResults());
    return success();
  }
};

//===----------------------------------------------------------------------===//
// Pass
//===----------------------------------------------------------------------===//

/// A program's outs arguments name its outputs only for tile.store: reading
/// them would observe other instances' stores in an unspecified order.
LogicalResult checkOutsOnlyStored(Operation *root) {
  WalkResult result = root->walk([](ProgramOp program) {
    for (auto [i, out] : llvm::enumerate(program.getOutArgs())) {
      for (Operation *user : out.getUsers()) {
        if (isa<StoreOp>(user))
          continue;
        InFlightDiagnostic diag = program.emitOpError()
                                  << "the view of outs #" << i
                                  << " may only be used by tile.store";
        diag.attachNote(user->getLoc())
            << "used by '" << user->getName() << "' here";
        return WalkResult::interrupt();
      }
    }
    return WalkResult::advance();
  });
  return failure(result.wasInterrupted());
}

struct ConvertTileToSCF
    : mlir::nsa::tile::impl::ConvertTileToSCFBase<ConvertTileToSCF> {
  void runOnOperation() override {
    if (failed(checkOutsOnlyStored(getOperation())))
      return signalPassFailure();

    MLIRContext *ctx = &getContext();
    ConversionTarget target(*ctx);
    target.addIllegalDialect<TileDialect>();
    target.markUnknownOpDynamicallyLegal([](Operation *) { return true; });

    RewritePatternSet patterns(ctx);
    patterns
        .add<LowerProgram, LowerLoad, LowerGather, LowerRange, LowerBroadcast,
             LowerMaskedFill, LowerDot, LowerReduce, LowerGroupSum,
             LowerTopkMerge, LowerTopkFinalize, LowerCompact>(ctx);
    populateDecomposeSoftmaxPatterns(patterns);
    if (failed(applyPartialConversion(getOperation(), target,
                                      std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
