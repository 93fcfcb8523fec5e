//===- ProgramBuilder.h - shared pieces of nsa-tile rewrites ----*- C++ -*-===//
//
// Every program nsa-tile writes follows one shape: compute the tile's
// coordinates from the grid ids, load, loop over key (or position) blocks,
// store. These helpers keep that shape in one place; each family of ops has
// its rewrites in a file of its own (TileAttention, TileSelection,
// TileCompression, TileCombine, TileBackward; AttentionProgram.h holds what
// the forward and backward attention programs share), and Tile.cpp is the
// pass.
//
//===----------------------------------------------------------------------===//

#ifndef NSA_LIB_DIALECT_NSA_TRANSFORMS_PROGRAMBUILDER_H
#define NSA_LIB_DIALECT_NSA_TRANSFORMS_PROGRAMBUILDER_H

#include "nsa/Dialect/NSA/IR/NSADialect.h"
#include "nsa/Dialect/Tile/IR/TileDialect.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/PatternMatch.h"

namespace mlir::nsa::tiling {

/// The tile sizes of nsa-tile, resolved for one target (see Passes.td).
struct TileSizes {
  /// Query tokens per program, or 0 for as many as make `minRows` tile rows
  /// (rows = tokens * G), so the rows fill an MMA's M dimension whatever G.
  int64_t queryTokens, minRows;
  /// Tile rows (at least) of the forward programs that scan every
  /// compressed token (compressed attention, selection).
  int64_t scanRows;
  int64_t keyTokens, selectedQueryTokens, compressTokens, selectBlocks;
  /// tile.program min_resident of the select_blocks programs (0: none).
  int64_t selectResident;
  int64_t gradSegments;
  /// Segments of selection's initial blocks, which have a program each.
  int64_t initGradSegments;
  /// Query tokens per tile of the selected d_k/d_v programs, or 0 for
  /// queryTokensFor(g).
  int64_t selectedGradTokens;

  /// Query tokens per program: queryTokens when set, else enough for
  /// `atLeastRows` tile rows.
  int64_t tokensFor(int64_t g, int64_t atLeastRows) const {
    return queryTokens ? queryTokens : std::max<int64_t>(1, atLeastRows / g);
  }
  int64_t queryTokensFor(int64_t g) const { return tokensFor(g, minRows); }
  int64_t scanTokensFor(int64_t g) const { return tokensFor(g, scanRows); }
  /// Tokens per program of the gated combination and its gradient, whose
  /// rows are tokens x all HQ heads (row dimensions kTokenHeadRows of
  /// [B, T, HQ, C]): a token's rows are then one contiguous stretch of
  /// HQ * C elements, which DRAM streams far better than one head's rows,
  /// HQ * C elements apart.
  int64_t headTokensFor(int64_t hq) const {
    return std::max<int64_t>(1, queryTokensFor(1) / hq);
  }
  int64_t selectedGradTokensFor(int64_t g) const {
    return selectedGradTokens ? selectedGradTokens : queryTokensFor(g);
  }
};

/// The row dimensions (T, HQ) of the tiles of TileSizes::headTokensFor.
inline constexpr int64_t kTokenHeadRows[] = {1, 2};

inline RankedTensorType tensorTy(Value v) {
  return cast<RankedTensorType>(v.getType());
}

/// Small helpers over one builder and location, so program bodies read
/// like the math they implement.
struct Emitter {
  OpBuilder &b;
  Location loc;

  Value index(int64_t v) { return arith::ConstantIndexOp::create(b, loc, v); }
  Value dim(Value t, int64_t d) {
    return b.createOrFold<tensor::DimOp>(loc, t, d);
  }
  Value add(Value x, Value y) {
    return b.createOrFold<arith::AddIOp>(loc, x, y);
  }
  Value sub(Value x, Value y) {
    return b.createOrFold<arith::SubIOp>(loc, x, y);
  }
  Value mul(Value x, Value y) {
    return b.createOrFold<arith::MulIOp>(loc, x, y);
  }
  Value rem(Value x, Value y) {
    return b.createOrFold<arith::RemSIOp>(loc, x, y);
  }
  Value divFloor(Value x, Value y) {
    return b.createOrFold<arith::FloorDivSIOp>(loc, x, y);
  }
  Value ceilDiv(Value x, int64_t y) {
    return b.createOrFold<arith::CeilDivSIOp>(loc, x, index(y));
  }
  Value min(Value x, Value y) {
    return b.createOrFold<arith::MinSIOp>(loc, x, y);
  }
  Value max(Value x, Value y) {
    return b.createOrFold<arith::MaxSIOp>(loc, x, y);
  }
  Value toI32(Value x) {
    return b.createOrFold<arith::IndexCastOp>(loc, b.getI32Type(), x);
  }
  Value toIndex(Value x) {
    return b.createOrFold<arith::IndexCastOp>(loc, b.getIndexType(), x);
  }
  Value splat(Value scalar, ArrayRef<int64_t> shape) {
    return tensor::SplatOp::create(
        b, loc, RankedTensorType::get(shape, scalar.getType()), scalar);
  }
  Value constTensor(ArrayRef<int64_t> shape, float v) {
    auto type = RankedTensorType::get(shape, b.getF32Type());
    return arith::ConstantOp::create(b, loc, DenseElementsAttr::get(type, v));
  }
  /// A matrix of `elt` with `entry(i, j)` (rounded to `elt`) at [i, j].
  Value constMatrix(int64_t rows, int64_t cols, FloatType elt,
                    function_ref<float(int64_t, int64_t)> entry) {
    SmallVector<APFloat> values;
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j) {
        APFloat x(entry(i, j));
        bool losesInfo = false;
        x.convert(elt.getFloatSemantics(), APFloat::rmNearestTiesToEven,
                  &losesInfo);
        values.push_back(x);
      }
    auto type = RankedTensorType::get({rows, cols}, elt);
    return arith::ConstantOp::create(b, loc,
                                     DenseElementsAttr::get(type, values));
  }
  Value splatI32(int64_t v, ArrayRef<int64_t> shape) {
    auto type = RankedTensorType::get(shape, b.getI32Type());
    return arith::ConstantOp::create(
        b, loc, DenseElementsAttr::get(type, static_cast<int32_t>(v)));
  }
  Value f32(float v) {
    return arith::ConstantOp::create(b, loc, b.getF32FloatAttr(v));
  }
  Value extF32(Value t) {
    auto type = tensorTy(t);
    if (type.getElementType().isF32())
      return t;
    return arith::ExtFOp::create(b, loc, type.clone(b.getF32Type()), t);
  }
  Value truncTo(Value t, Type elt) {
    auto type = tensorTy(t);
    if (type.getElementType() == elt)
      return t;
    return arith::TruncFOp::create(b, loc, type.clone(elt), t);
  }
  Value addF(Value x, Value y) { return arith::AddFOp::create(b, loc, x, y); }
  Value subF(Value x, Value y) { return arith::SubFOp::create(b, loc, x, y); }
  Value mulF(Value x, Value y) { return arith::MulFOp::create(b, loc, x, y); }
  /// `x * c` for a constant c, elementwise on an f32 tile.
  Value scaled(Value x, float c) {
    return mulF(x, constTensor(tensorTy(x).getShape(), c));
  }
  /// tile.dot with its f32 result type: `lhs . rhs`, reading lhs as [K, M]
  /// when `lhsTransposed` and rhs as [N, K] when `rhsTransposed`. Operands
  /// of different float types are both widened to f32.
  Value dot(Value lhs, Value rhs, bool rhsTransposed,
            bool lhsTransposed = false) {
    if (tensorTy(lhs).getElementType() != tensorTy(rhs).getElementType()) {
      lhs = extF32(lhs);
      rhs = extF32(rhs);
    }
    ArrayRef<int64_t> a = tensorTy(lhs).getShape(),
                      c = tensorTy(rhs).getShape();
    auto type = RankedTensorType::get(
        {lhsTransposed ? a[1] : a[0], rhsTransposed ? c[0] : c[1]},
        b.getF32Type());
    return tile::DotOp::create(b, loc, type, lhs, rhs, rhsTransposed,
                               lhsTransposed);
  }
  /// rows x cols i32 matrices from a per-row or per-column vector.
  Value perRow(Value v, int64_t cols) {
    auto t = tensorTy(v);
    return tile::BroadcastOp::create(
        b, loc,
        RankedTensorType::get({t.getDimSize(0), cols}, t.getElementType()), v,
        1);
  }
  Value perColumn(Value v, int64_t rows) {
    auto t = tensorTy(v);
    return tile::BroadcastOp::create(
        b, loc,
        RankedTensorType::get({rows, t.getDimSize(0)}, t.getElementType()), v,
        0);
  }
  Value range(Value start, int64_t n, int64_t divisor = 1) {
    return tile::RangeOp::create(
        b, loc, RankedTensorType::get({n}, b.getI32Type()), start, divisor);
  }
  Value cmp(arith::CmpIPredicate pred, Value x, Value y) {
    return arith::CmpIOp::create(b, loc, pred, x, y);
  }
  Value orI(Value x, Value y) { return arith::OrIOp::create(b, loc, x, y); }
  Value load(Value src, ValueRange indices, ArrayRef<int64_t> rowDims,
             ArrayRef<int64_t> tileShape) {
    auto type =
        RankedTensorType::get(tileShape, tensorTy(src).getElementType());
    return tile::LoadOp::create(b, loc, type, src, indices, rowDims);
  }

  /// tile.gather of `tileShape`: row r is row `rows[r]` of `rowDims`.
  Value gather(Value src, ValueRange indices, Value rows,
               ArrayRef<int64_t> rowDims, ArrayRef<int64_t> tileShape) {
    auto type =
        RankedTensorType::get(tileShape, tensorTy(src).getElementType());
    return tile::GatherOp::create(b, loc, type, src, indices, rows, rowDims);
  }
  /// `for iv in [lo, hi) step` carrying `init`; `body` emits into the loop
  /// through this same builder and returns the values to yield.
  ValueRange loop(Value lo, Value hi, Value stepSize, ValueRange init,
                  function_ref<SmallVector<Value>(Value, ValueRange)> body) {
    auto forOp = scf::ForOp::create(b, loc, lo, hi, stepSize, init);
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(forOp.getBody());
    scf::YieldOp::create(
        b, loc, body(forOp.getInductionVar(), forOp.getRegionIterArgs()));
    return forOp.getResults();
  }

  /// `cond ? then() : otherwise`, for values of `otherwise`'s types.
  ValueRange ifElse(Value cond, function_ref<SmallVector<Value>()> then,
                    ValueRange otherwise) {
    auto ifOp = scf::IfOp::create(b, loc, otherwise.getTypes(), cond,
                                  /*withElseRegion=*/true);
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(ifOp.thenBlock());
    scf::YieldOp::create(b, loc, then());
    b.setInsertionPointToStart(ifOp.elseBlock());
    scf::YieldOp::create(b, loc, otherwise);
    return ifOp.getResults();
  }
};

/// A rewrite of one nsa op into programs of the given tile sizes.
template <typename OpT> struct TilePattern : OpRewritePattern<OpT> {
  TilePattern(MLIRContext *ctx, TileSizes sizes)
      : OpRewritePattern<OpT>(ctx), sizes(sizes) {}
  TileSizes sizes;
};

/// Creates `tile.program grid(...) outs(...)` for `op` and lets `body` fill
/// it. The program is labelled with op's name without `nsa.`, which the
/// kernel manifest reports as the op a GPU kernel implements.
tile::ProgramOp buildProgram(
    OpBuilder &b, Operation *op, ValueRange grid, ValueRange outs,
    function_ref<void(Emitter &, ValueRange ids, ValueRange outArgs)> body);

/// SPEC.md 6's gated sum of the branches' rows for one tile: f32
/// `sum_c gates[c] * branches[c]`, each gate [rows], each branch [rows, Dv]
/// (nsa.combine's program, and the branch program that computes it).
Value gatedSum(Emitter &e, ArrayRef<Value> gates, ArrayRef<Value> branches);

/// An empty tensor of `type`; its dynamic dimension i takes the size paired
/// with i in `dynamicFrom`.
Value emptyLike(OpBuilder &b, Location loc, RankedTensorType type,
                ArrayRef<std::pair<int64_t, Value>> dynamicFrom);

/// The rewrites of nsa-tile, by family.
void populateAttentionTilingPatterns(RewritePatternSet &patterns,
                                     TileSizes sizes);
void populateSelectionTilingPatterns(RewritePatternSet &patterns,
                                     TileSizes sizes);
void populateCompressionTilingPatterns(RewritePatternSet &patterns,
                                       TileSizes sizes);
void populateCombineTilingPatterns(RewritePatternSet &patterns,
                                   TileSizes sizes);
/// The `*_grad` ops: deterministic programs (every output element written
/// by one program, no atomics), FlashAttention-2 style for attention.
void populateBackwardTilingPatterns(RewritePatternSet &patterns,
                                    TileSizes sizes);

} // namespace mlir::nsa::tiling

#endif // NSA_LIB_DIALECT_NSA_TRANSFORMS_PROGRAMBUILDER_H
