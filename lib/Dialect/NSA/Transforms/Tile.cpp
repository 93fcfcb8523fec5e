//===- Tile.cpp - nsa branch ops -> tile.program grids --------------------===//
//
// Every program here follows one shape: compute the tile's coordinates from
// the grid ids, load the query-side tile, loop over key (or position)
// blocks, store. The attention branches differ only in which key blocks
// they visit and how they mask them, so one builder (AttentionProgram)
// serves all three with a per-branch key loop.
//
//===----------------------------------------------------------------------===//

#include "nsa/Dialect/NSA/IR/NSADialect.h"
#include "nsa/Dialect/NSA/Transforms/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

#include <cmath>
#include <limits>

namespace mlir::nsa {
#define GEN_PASS_DEF_NSATILE
#include "nsa/Dialect/NSA/Transforms/Passes.h.inc"
} // namespace mlir::nsa

using namespace mlir;
using namespace mlir::nsa;

namespace {

struct TileSizes {
  int64_t queryTokens, keyTokens, selectedQueryTokens, compressTokens,
      selectBlocks;
};

RankedTensorType tensorTy(Value v) {
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
  Value add(Value x, Value y) { return b.createOrFold<arith::AddIOp>(loc, x, y); }
  Value sub(Value x, Value y) { return b.createOrFold<arith::SubIOp>(loc, x, y); }
  Value mul(Value x, Value y) { return b.createOrFold<arith::MulIOp>(loc, x, y); }
  Value divFloor(Value x, Value y) {
    return b.createOrFold<arith::FloorDivSIOp>(loc, x, y);
  }
  Value ceilDiv(Value x, int64_t y) {
    return b.createOrFold<arith::CeilDivSIOp>(loc, x, index(y));
  }
  Value min(Value x, Value y) { return b.createOrFold<arith::MinSIOp>(loc, x, y); }
  Value max(Value x, Value y) { return b.createOrFold<arith::MaxSIOp>(loc, x, y); }
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
    return arith::ConstantOp::create(b, loc,
                                     DenseElementsAttr::get(type, v));
  }
  /// An f32 matrix with `entry(i, j)` at [i, j].
  Value constMatrix(int64_t rows, int64_t cols,
                    function_ref<float(int64_t, int64_t)> entry) {
    SmallVector<float> values;
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j)
        values.push_back(entry(i, j));
    auto type = RankedTensorType::get({rows, cols}, b.getF32Type());
    return arith::ConstantOp::create(
        b, loc, DenseElementsAttr::get(type, ArrayRef<float>(values)));
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
  /// rows x cols i32 matrices from a per-row or per-column vector.
  Value perRow(Value v, int64_t cols) {
    auto t = tensorTy(v);
    return tile::BroadcastOp::create(
        b, loc, RankedTensorType::get({t.getDimSize(0), cols}, t.getElementType()),
        v, 1);
  }
  Value perColumn(Value v, int64_t rows) {
    auto t = tensorTy(v);
    return tile::BroadcastOp::create(
        b, loc, RankedTensorType::get({rows, t.getDimSize(0)}, t.getElementType()),
        v, 0);
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
    auto type = RankedTensorType::get(tileShape, tensorTy(src).getElementType());
    return tile::LoadOp::create(b, loc, type, src, indices, rowDims);
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
template <typename OpT>
struct TilePattern : OpRewritePattern<OpT> {
  TilePattern(MLIRContext *ctx, TileSizes sizes)
      : OpRewritePattern<OpT>(ctx), sizes(sizes) {}
  TileSizes sizes;
};

/// Creates `tile.program grid(...) outs(...)` and lets `body` fill it.
tile::ProgramOp
buildProgram(OpBuilder &b, Location loc, ValueRange grid, ValueRange outs,
             function_ref<void(Emitter &, ValueRange ids, ValueRange outArgs)>
                 body) {
  auto program = tile::ProgramOp::create(b, loc, grid, outs);
  SmallVector<Type> argTypes(grid.size(), b.getIndexType());
  llvm::append_range(argTypes, outs.getTypes());
  SmallVector<Location> argLocs(argTypes.size(), loc);
  OpBuilder::InsertionGuard guard(b);
  Block *block = b.createBlock(&program.getBody(), {}, argTypes, argLocs);
  tile::ProgramOp::ensureTerminator(program.getBody(), b, loc);
  b.setInsertionPoint(block->getTerminator());
  Emitter e{b, loc};
  body(e, program.getIds(), program.getOutArgs());
  return program;
}

/// An empty tensor of `type` whose dynamic sizes come from `like`'s.
Value emptyLike(OpBuilder &b, Location loc, RankedTensorType type,
                ArrayRef<std::pair<int64_t, Value>> dynamicFrom) {
  SmallVector<Value> dynSizes;
  for (auto [i, size] : llvm::enumerate(type.getShape()))
    if (ShapedType::isDynamic(size))
      for (auto [d, v] : dynamicFrom)
        if (d == static_cast<int64_t>(i))
          dynSizes.push_back(v);
  return tensor::EmptyOp::create(b, loc, type, dynSizes);
}

//===----------------------------------------------------------------------===//
// Attention branches
//===----------------------------------------------------------------------===//

/// The running state of the streaming softmax of a tile's rows.
struct SoftmaxState {
  Value max, sum, acc;
  SmallVector<Value> asRange() const { return {max, sum, acc}; }
  static SoftmaxState of(ValueRange v) { return {v[0], v[1], v[2]}; }
};

/// One program of a grouped attention branch: tile rows are `tokens`
/// consecutive query tokens times the G heads of KV head `h`.
struct AttentionProgram {
  Emitter e;
  Value q, k, v;
  Value b, h, t0;       // batch, KV head, first query token
  Value numTokens;      // T
  int64_t tokens, g, rows, dk, dv;
  float log2Scale;      // scale * log2(e)
  Value qTile, rowToken; // [rows, Dk]; [rows] i32 token of each row

  /// One key block: scores, mask (true = excluded), online softmax.
  SoftmaxState step(Value kTile, Value vTile, Value mask, SoftmaxState s) {
    int64_t n = tensorTy(kTile).getDimSize(0);
    auto scoreType = RankedTensorType::get({rows, n}, e.b.getF32Type());
    Value scores = tile::DotOp::create(e.b, e.loc, scoreType, qTile, kTile,
                                       /*rhs_transposed=*/true);
    scores = arith::MulFOp::create(
        e.b, e.loc, scores, e.constTensor({rows, n}, log2Scale));
    scores = tile::MaskedFillOp::create(
        e.b, e.loc, scores, mask,
        e.f32(-std::numeric_limits<float>::infinity()));
    auto update = tile::OnlineSoftmaxOp::create(
        e.b, e.loc, s.max.getType(), s.sum.getType(), s.acc.getType(), scores,
        vTile, s.max, s.sum, s.acc);
    return {update.getNewMax(), update.getNewSum(), update.getNewAcc()};
  }

  /// Loads `n` key and value rows from token `start` of k and v.
  std::pair<Value, Value> loadKV(Value start, int64_t n) {
    Value zero = e.index(0);
    return {e.load(k, {b, start, h, zero}, {1}, {n, dk}),
            e.load(v, {b, start, h, zero}, {1}, {n, dv})};
  }

  /// `[rows, n]` matrices of each row's token and each column's position.
  std::pair<Value, Value> positions(Value columnStart, int64_t n,
                                    int64_t columnDivisor = 1) {
    return {e.perRow(rowToken, n),
            e.perColumn(e.range(columnStart, n, columnDivisor), rows)};
  }

  SoftmaxState initialState() {
    return {e.constTensor({rows}, -std::numeric_limits<float>::infinity()),
            e.constTensor({rows}, 0.0f), e.constTensor({rows, dv}, 0.0f)};
  }

  /// A key loop `for x in [lo, hi) step` carrying the softmax state.
  SoftmaxState loop(Value lo, Value hi, Value stepSize, SoftmaxState init,
                    function_ref<SoftmaxState(Value, SoftmaxState)> body) {
    return SoftmaxState::of(e.loop(
        lo, hi, stepSize, init.asRange(), [&](Value iv, ValueRange iter) {
          return body(iv, SoftmaxState::of(iter)).asRange();
        }));
  }
};

/// Sets up the program for `op` (any grouped attention branch), runs
/// `keyLoop` and stores o and lse.
template <typename OpT>
LogicalResult
tileAttention(OpT op, PatternRewriter &rewriter, int64_t tokens,
              function_ref<SoftmaxState(AttentionProgram &, SoftmaxState)>
                  keyLoop) {
  auto qType = tensorTy(op.getQ());
  if (qType.getRank() != 5)
    return rewriter.notifyMatchFailure(op, "run nsa-group-gqa first");
  ArrayRef<int64_t> qs = qType.getShape();
  int64_t g = qs[3], dk = qs[4], dv = tensorTy(op.getV()).getDimSize(3);
  if (ShapedType::isDynamic(g) || ShapedType::isDynamic(dk) ||
      ShapedType::isDynamic(dv))
    return rewriter.notifyMatchFailure(op, "tiles need static G, Dk, Dv");

  Location loc = op.getLoc();
  Emitter outer{rewriter, loc};
  Value batch = outer.dim(op.getQ(), 0), numTokens = outer.dim(op.getQ(), 1);
  Value heads = outer.dim(op.getQ(), 2);
  auto oType = tensorTy(op.getO()), lseType = tensorTy(op.getLse());
  SmallVector<std::pair<int64_t, Value>> dyn = {{0, batch}, {1, numTokens}};
  Value outs[2] = {emptyLike(rewriter, loc, oType, dyn),
                   emptyLike(rewriter, loc, lseType, dyn)};
  Value grid[3] = {batch, heads, outer.ceilDiv(numTokens, tokens)};
  float log2Scale =
      static_cast<float>(op.getConfig().getScaleOr(dk) * M_LOG2E);

  auto program = buildProgram(
      rewriter, loc, grid, outs,
      [&](Emitter &e, ValueRange ids, ValueRange outArgs) {
        Value zero = e.index(0);
        Value t0 = e.mul(ids[2], e.index(tokens));
        int64_t rows = tokens * g;
        AttentionProgram p{e,        op.getQ(), op.getK(), op.getV(),
                           ids[0],   ids[1],    t0,        numTokens,
                           tokens,   g,         rows,      dk,
                           dv,       log2Scale, {},        {}};
        p.qTile = e.load(op.getQ(), {ids[0], t0, ids[1], zero, zero}, {1, 3},
                         {rows, dk});
        p.rowToken = e.range(t0, rows, g);
        SoftmaxState s = keyLoop(p, p.initialState());
        auto fin = tile::SoftmaxFinalizeOp::create(
            e.b, e.loc, RankedTensorType::get({rows, dv}, oType.getElementType()),
            s.max.getType(), s.max, s.sum, s.acc);
        tile::StoreOp::create(e.b, e.loc, fin.getOut(), outArgs[0],
                              ValueRange{ids[0], t0, ids[1], zero, zero},
                              ArrayRef<int64_t>{1, 3});
        tile::StoreOp::create(e.b, e.loc, fin.getLse(), outArgs[1],
                              ValueRange{ids[0], t0, ids[1], zero},
                              ArrayRef<int64_t>{1, 3});
      });
  rewriter.replaceOp(op, program.getResults());
  return success();
}

struct TileWindowAttention : TilePattern<WindowAttentionOp> {
  using TilePattern::TilePattern;
  LogicalResult matchAndRewrite(WindowAttentionOp op,
                                PatternRewriter &rewriter) const override {
    int64_t w = op.getConfig().getW(), bn = sizes.keyTokens;
    return tileAttention(
        op, rewriter, sizes.queryTokens,
        [&](AttentionProgram &p, SoftmaxState init) {
          Emitter &e = p.e;
          // Keys [max(0, t0 - w + 1), min(T, t0 + tokens)), from a multiple
          // of the key block.
          Value lo = e.max(e.index(0), e.sub(p.t0, e.index(w - 1)));
          lo = e.mul(e.divFloor(lo, e.index(bn)), e.index(bn));
          Value hi = e.min(p.numTokens, e.add(p.t0, e.index(p.tokens)));
          return p.loop(lo, hi, e.index(bn), init, [&](Value j0, SoftmaxState s) {
            auto [kTile, vTile] = p.loadKV(j0, bn);
            auto [row, col] = p.positions(j0, bn);
            Value lowest = e.sub(row, e.splat(e.toI32(e.index(w - 1)),
                                              {p.rows, bn}));
            Value mask = e.orI(
                e.orI(e.cmp(arith::CmpIPredicate::sgt, col, row),
                      e.cmp(arith::CmpIPredicate::slt, col, lowest)),
                e.cmp(arith::CmpIPredicate::sge, col,
                      e.splat(e.toI32(p.numTokens), {p.rows, bn})));
            return p.step(kTile, vTile, mask, s);
          });
        });
  }
};

struct TileCompressedAttention : TilePattern<CompressedAttentionOp> {
  using TilePattern::TilePattern;
  LogicalResult matchAndRewrite(CompressedAttentionOp op,
                                PatternRewriter &rewriter) const override {
    int64_t l = op.getConfig().getL(), d = op.getConfig().getD();
    int64_t bn = sizes.keyTokens;
    Value kc = op.getK();
    return tileAttention(
        op, rewriter, sizes.queryTokens,
        [&](AttentionProgram &p, SoftmaxState init) {
          Emitter &e = p.e;
          // The last row's token sees compressed tokens i with
          // i*d + l - 1 <= last, i.e. i < (last + 1 - l)/d + 1 when
          // last + 1 >= l; clamp to [0, Nc].
          Value numCompressed = e.dim(kc, 1);
          Value end = e.min(p.numTokens, e.add(p.t0, e.index(p.tokens)));
          Value visible = e.add(
              e.divFloor(e.sub(end, e.index(l)), e.index(d)), e.index(1));
          Value hi = e.max(e.index(0), e.min(numCompressed, visible));
          return p.loop(e.index(0), hi, e.index(bn), init,
                        [&](Value i0, SoftmaxState s) {
            auto [kTile, vTile] = p.loadKV(i0, bn);
            auto [row, col] = p.positions(i0, bn);
            Value lastCovered = arith::AddIOp::create(
                e.b, e.loc,
                arith::MulIOp::create(e.b, e.loc, col,
                                      e.splat(e.toI32(e.index(d)), {p.rows, bn})),
                e.splat(e.toI32(e.index(l - 1)), {p.rows, bn}));
            Value mask = e.orI(
                e.cmp(arith::CmpIPredicate::sgt, lastCovered, row),
                e.cmp(arith::CmpIPredicate::sge, col,
                      e.splat(e.toI32(numCompressed), {p.rows, bn})));
            return p.step(kTile, vTile, mask, s);
          });
        });
  }
};

struct TileSelectedAttention : TilePattern<SelectedAttentionOp> {
  using TilePattern::TilePattern;
  LogicalResult matchAndRewrite(SelectedAttentionOp op,
                                PatternRewriter &rewriter) const override {
    int64_t lSel = op.getConfig().getLSel(), n = op.getConfig().getN();
    int64_t tokens = sizes.selectedQueryTokens;
    Value idx = op.getIdx();
    return tileAttention(
        op, rewriter, tokens, [&](AttentionProgram &p, SoftmaxState init) {
          Emitter &e = p.e;
          Value zero = e.index(0);
          Value idxTile = e.load(idx, {p.b, p.t0, p.h, zero}, {1}, {tokens, n});
          // Each (token r, slot i) block updates only the rows of token r,
          // so blocks several tokens share are never counted twice.
          return p.loop(zero, e.index(tokens), e.index(1), init,
                        [&](Value r, SoftmaxState s) {
            return p.loop(e.index(0), e.index(n), e.index(1), s,
                          [&](Value slot, SoftmaxState s) {
              Value j = tensor::ExtractOp::create(e.b, e.loc, idxTile,
                                                  ValueRange{r, slot});
              Value token = e.add(p.t0, r);
              Value valid = arith::AndIOp::create(
                  e.b, e.loc,
                  e.cmp(arith::CmpIPredicate::sge, j,
                        arith::ConstantIntOp::create(e.b, e.loc, 0, 32)),
                  arith::CmpIOp::create(e.b, e.loc, arith::CmpIPredicate::slt,
                                        token, p.numTokens));
              ValueRange updated = e.ifElse(
                  valid,
                  [&] {
                    Value start = e.mul(e.toIndex(j), e.index(lSel));
                    auto [kTile, vTile] = p.loadKV(start, lSel);
                    auto [row, col] = p.positions(start, lSel);
                    Value bound = e.splat(e.toI32(p.numTokens), {p.rows, lSel});
                    Value own = e.splat(e.toI32(token), {p.rows, lSel});
                    Value mask = e.orI(
                        e.orI(e.cmp(arith::CmpIPredicate::sgt, col, row),
                              e.cmp(arith::CmpIPredicate::sge, col, bound)),
                        e.cmp(arith::CmpIPredicate::ne, row, own));
                    return p.step(kTile, vTile, mask, s).asRange();
                  },
                  s.asRange());
              return SoftmaxState::of(updated);
            });
          });
        });
  }
};

//===----------------------------------------------------------------------===//
// Selection
//===----------------------------------------------------------------------===//

/// How many terms of SPEC's Eq. 9 double sum (m < lSel/d, n < l/d) land on
/// compressed token `offset` of a selection block, counting from the block's
/// first overlapping token.
int64_t overlapWeight(int64_t offset, int64_t perBlock, int64_t perToken) {
  int64_t count = 0;
  for (int64_t m = 0; m < perBlock; ++m) {
    int64_t n = offset - m;
    count += n >= 0 && n < perToken;
  }
  return count;
}

struct TileSelectBlocks : TilePattern<SelectBlocksOp> {
  using TilePattern::TilePattern;
  LogicalResult matchAndRewrite(SelectBlocksOp op,
                                PatternRewriter &rewriter) const override {
    auto qType = tensorTy(op.getQ());
    if (qType.getRank() != 5)
      return rewriter.notifyMatchFailure(op, "run nsa-group-gqa first");
    int64_t g = qType.getDimSize(3), dk = qType.getDimSize(4);
    if (ShapedType::isDynamic(g) || ShapedType::isDynamic(dk))
      return rewriter.notifyMatchFailure(op, "tiles need static G and Dk");
    ConfigAttr cfg = op.getConfig();
    int64_t l = cfg.getL(), d = cfg.getD(), lSel = cfg.getLSel();
    int64_t n = cfg.getN(), init = cfg.getInit(), local = cfg.getLocal();
    // A chunk of `nb` blocks overlaps compressed tokens
    // [perBlock*j0 - (perToken-1), perBlock*(j0+nb)): `width` of them.
    int64_t perBlock = lSel / d, perToken = l / d, nb = sizes.selectBlocks;
    int64_t width = perBlock * nb + perToken - 1;
    int64_t bm = sizes.queryTokens, rows = bm * g;
    float log2e = static_cast<float>(M_LOG2E);
    float log2Scale = static_cast<float>(cfg.getScaleOr(dk) * M_LOG2E);
    float inf = std::numeric_limits<float>::infinity();

    Location loc = op.getLoc();
    Emitter outer{rewriter, loc};
    Value q = op.getQ(), kc = op.getK(), lse = op.getLse();
    Value batch = outer.dim(q, 0), numTokens = outer.dim(q, 1);
    auto idxType = tensorTy(op.getIdx());
    Value init0 = emptyLike(rewriter, loc, idxType,
                            {{0, batch}, {1, numTokens}});
    Value grid[3] = {batch, outer.dim(q, 2), outer.ceilDiv(numTokens, bm)};

    auto program = buildProgram(
        rewriter, loc, grid, init0,
        [&](Emitter &e, ValueRange ids, ValueRange outArgs) {
          Value b = ids[0], h = ids[1], zero = e.index(0);
          Value t0 = e.mul(ids[2], e.index(bm));
          Value qTile = e.load(q, {b, t0, h, zero, zero}, {1, 3}, {rows, dk});
          Value lse2 = arith::MulFOp::create(
              e.b, e.loc, e.load(lse, {b, t0, h, zero}, {1, 3}, {rows}),
              e.constTensor({rows}, log2e));
          Value rowToken = e.range(t0, rows, g);
          Value tokenBlock = arith::DivSIOp::create(
              e.b, e.loc, e.range(t0, bm), e.splatI32(lSel, {bm}));
          // Sums the G rows of each token; maps compressed tokens to blocks.
          Value groupSum = e.constMatrix(
              bm, rows, [&](int64_t i, int64_t r) { return r / g == i; });
          Value overlap = e.constMatrix(width, nb, [&](int64_t x, int64_t j) {
            return overlapWeight(x - perBlock * j, perBlock, perToken);
          });
          Value numCompressed = e.dim(kc, 1);
          Value end = e.min(numTokens, e.add(t0, e.index(bm)));
          Value numBlocks =
              e.add(e.divFloor(e.sub(end, e.index(1)), e.index(lSel)),
                    e.index(1));
          Value best[2] = {e.constTensor({bm, n}, -inf),
                           e.splatI32(-1, {bm, n})};

          ValueRange top = e.loop(
              zero, numBlocks, e.index(nb), best,
              [&](Value j0, ValueRange iter) -> SmallVector<Value> {
                Value cStart = e.sub(e.mul(j0, e.index(perBlock)),
                                     e.index(perToken - 1));
                Value kTile = e.load(kc, {b, cStart, h, zero}, {1},
                                     {width, dk});
                Value s = tile::DotOp::create(
                    e.b, e.loc,
                    RankedTensorType::get({rows, width}, e.b.getF32Type()),
                    qTile, kTile, /*rhs_transposed=*/true);
                s = arith::SubFOp::create(
                    e.b, e.loc,
                    arith::MulFOp::create(e.b, e.loc, s,
                                          e.constTensor({rows, width}, log2Scale)),
                    e.perRow(lse2, width));
                Value p = math::Exp2Op::create(e.b, e.loc, s);
                // Compressed tokens outside [0, Nc) or not yet complete at
                // the row's token contribute nothing (also replaces the NaN
                // of rows whose lse is -inf).
                Value ci = e.perColumn(e.range(cStart, width), rows);
                Value lastCovered = arith::AddIOp::create(
                    e.b, e.loc,
                    arith::MulIOp::create(e.b, e.loc, ci,
                                          e.splatI32(d, {rows, width})),
                    e.splatI32(l - 1, {rows, width}));
                Value hidden = e.orI(
                    e.orI(e.cmp(arith::CmpIPredicate::slt, ci,
                                e.splatI32(0, {rows, width})),
                          e.cmp(arith::CmpIPredicate::sge, ci,
                                e.splat(e.toI32(numCompressed), {rows, width}))),
                    e.cmp(arith::CmpIPredicate::sgt, lastCovered,
                          e.perRow(rowToken, width)));
                p = tile::MaskedFillOp::create(e.b, e.loc, p, hidden,
                                               e.f32(0.0f));
                auto f32Type = [&](int64_t r, int64_t c) {
                  return RankedTensorType::get({r, c}, e.b.getF32Type());
                };
                Value perToken = tile::DotOp::create(
                    e.b, e.loc, f32Type(bm, width), groupSum, p, false);
                Value scores = tile::DotOp::create(
                    e.b, e.loc, f32Type(bm, nb), perToken, overlap, false);
                Value j = e.perColumn(e.range(j0, nb), bm);
                Value current = e.perRow(tokenBlock, nb);
                Value forced = e.orI(
                    e.cmp(arith::CmpIPredicate::slt, j,
                          e.splatI32(init, {bm, nb})),
                    e.cmp(arith::CmpIPredicate::sgt, j,
                          arith::SubIOp::create(e.b, e.loc, current,
                                                e.splatI32(local, {bm, nb}))));
                scores = tile::MaskedFillOp::create(e.b, e.loc, scores, forced,
                                                    e.f32(inf));
                scores = tile::MaskedFillOp::create(
                    e.b, e.loc, scores,
                    e.cmp(arith::CmpIPredicate::sgt, j, current),
                    e.f32(-inf));
                auto merged = tile::TopkMergeOp::create(
                    e.b, e.loc, iter[0].getType(), iter[1].getType(), iter[0],
                    iter[1], scores, j0);
                return {merged.getNewScores(), merged.getNewIndices()};
              });
          Value idx = tile::TopkFinalizeOp::create(e.b, e.loc, top[1].getType(),
                                                   top[0], top[1]);
          tile::StoreOp::create(e.b, e.loc, idx, outArgs[0],
                                ValueRange{b, t0, h, zero},
                                ArrayRef<int64_t>{1});
        });
    rewriter.replaceOp(op, program.getResults());
    return success();
  }
};

//===----------------------------------------------------------------------===//
// Compression and combination
//===----------------------------------------------------------------------===//

struct TileCompress : TilePattern<CompressOp> {
  using TilePattern::TilePattern;
  LogicalResult matchAndRewrite(CompressOp op,
                                PatternRewriter &rewriter) const override {
    auto outType = tensorTy(op.getResult());
    int64_t dd = outType.getDimSize(3);
    if (ShapedType::isDynamic(dd))
      return rewriter.notifyMatchFailure(op, "tiles need a static D");
    ConfigAttr cfg = op.getConfig();
    int64_t l = cfg.getL(), d = cfg.getD(), bc = sizes.compressTokens;
    bool linear = op.getMode() == CompressMode::Linear;
    Location loc = op.getLoc();
    Emitter outer{rewriter, loc};
    Value input = op.getInput();
    Value batch = outer.dim(input, 0), heads = outer.dim(input, 2);
    Value numCompressed = outer.dim(op.getResult(), 1);
    if (ShapedType::isDynamic(outType.getDimSize(1))) {
      // Nc(T) = T < l ? 0 : (T - l)/d + 1 = max(0, (T - l + d) floordiv d).
      Value t = outer.dim(input, 1);
      numCompressed = outer.max(
          outer.index(0),
          outer.divFloor(outer.add(outer.sub(t, outer.index(l)), outer.index(d)),
                         outer.index(d)));
    }
    Value init = emptyLike(rewriter, loc, outType,
                           {{0, batch}, {1, numCompressed}});
    Value grid[3] = {batch, heads, outer.ceilDiv(numCompressed, bc)};

    auto program = buildProgram(
        rewriter, loc, grid, init,
        [&](Emitter &e, ValueRange ids, ValueRange outArgs) {
          Value b = ids[0], h = ids[1], zero = e.index(0);
          Value i0 = e.mul(ids[2], e.index(bc));
          // Position of each row's block start: (i0 + c) * d.
          Value starts = arith::MulIOp::create(
              e.b, e.loc, e.range(i0, bc), e.splat(e.toI32(e.index(d)), {bc}));
          Value acc0 = e.constTensor({bc, dd}, 0.0f);
          Value acc = e.loop(
              zero, e.index(l), e.index(1), acc0,
              [&](Value r, ValueRange iter) -> SmallVector<Value> {
                Value pos = arith::AddIOp::create(e.b, e.loc, starts,
                                                  e.splat(e.toI32(r), {bc}));
                auto rowsType = RankedTensorType::get(
                    {bc, dd}, tensorTy(input).getElementType());
                Value x = e.extF32(tile::GatherOp::create(
                    e.b, e.loc, rowsType, input, ValueRange{b, h}, pos, 1));
                if (linear) {
                  if (Value pe = op.getPe())
                    x = arith::AddFOp::create(
                        e.b, e.loc, x,
                        e.extF32(e.perColumn(
                            e.load(pe, {h, r, zero}, {2}, {dd}), bc)));
                  Value w = e.extF32(e.load(op.getWeight(),
                                            {h, e.mul(r, e.index(dd)), zero},
                                            {1}, {dd, dd}));
                  x = tile::DotOp::create(
                      e.b, e.loc,
                      RankedTensorType::get({bc, dd}, e.b.getF32Type()), x, w,
                      /*rhs_transposed=*/false);
                }
                return {arith::AddFOp::create(e.b, e.loc, iter[0], x)};
              })[0];
          if (!linear)
            acc = arith::MulFOp::create(e.b, e.loc, acc,
                                        e.constTensor({bc, dd}, 1.0f / l));
          tile::StoreOp::create(e.b, e.loc,
                                e.truncTo(acc, outType.getElementType()),
                                outArgs[0], ValueRange{b, i0, h, zero},
                                ArrayRef<int64_t>{1});
        });
    rewriter.replaceOp(op, program.getResults());
    return success();
  }
};

struct TileCombine : TilePattern<CombineOp> {
  using TilePattern::TilePattern;
  LogicalResult matchAndRewrite(CombineOp op,
                                PatternRewriter &rewriter) const override {
    auto outType = tensorTy(op.getO());
    int64_t dv = outType.getDimSize(3), bm = sizes.queryTokens;
    if (ShapedType::isDynamic(dv))
      return rewriter.notifyMatchFailure(op, "tiles need a static Dv");
    Location loc = op.getLoc();
    Emitter outer{rewriter, loc};
    Value batch = outer.dim(op.getGates(), 0), t = outer.dim(op.getGates(), 1);
    Value init =
        emptyLike(rewriter, loc, outType, {{0, batch}, {1, t}});
    Value grid[3] = {batch, outer.dim(op.getGates(), 2), outer.ceilDiv(t, bm)};
    Value branches[3] = {op.getCmp(), op.getSlc(), op.getWin()};

    auto program = buildProgram(
        rewriter, loc, grid, init,
        [&](Emitter &e, ValueRange ids, ValueRange outArgs) {
          Value b = ids[0], hq = ids[1], zero = e.index(0);
          Value t0 = e.mul(ids[2], e.index(bm));
          Value acc = e.constTensor({bm, dv}, 0.0f);
          for (auto [c, branch] : llvm::enumerate(branches)) {
            Value gate = e.load(op.getGates(),
                                {b, t0, hq, e.index(static_cast<int64_t>(c))},
                                {1}, {bm});
            Value o = e.load(branch, {b, t0, hq, zero}, {1}, {bm, dv});
            acc = arith::AddFOp::create(
                e.b, e.loc, acc,
                arith::MulFOp::create(e.b, e.loc, e.extF32(e.perRow(gate, dv)),
                                      e.extF32(o)));
          }
          tile::StoreOp::create(e.b, e.loc,
                                e.truncTo(acc, outType.getElementType()),
                                outArgs[0], ValueRange{b, t0, hq, zero},
                                ArrayRef<int64_t>{1});
        });
    rewriter.replaceOp(op, program.getResults());
    return success();
  }
};

struct NSATile : nsa::impl::NSATileBase<NSATile> {
  using NSATileBase::NSATileBase;
  void runOnOperation() override {
    for (auto [name, value] :
         {std::pair<StringRef, int64_t>{"query-tokens", queryTokens},
          {"key-tokens", keyTokens},
          {"selected-query-tokens", selectedQueryTokens},
          {"compress-tokens", compressTokens},
          {"select-blocks", selectBlocks}})
      if (value < 1) {
        getOperation()->emitError() << "nsa-tile: " << name
                                    << " must be >= 1, got " << value;
        return signalPassFailure();
      }
    TileSizes sizes{queryTokens, keyTokens, selectedQueryTokens,
                    compressTokens, selectBlocks};
    MLIRContext *ctx = &getContext();
    RewritePatternSet patterns(ctx);
    patterns.add<TileWindowAttention, TileCompressedAttention,
                 TileSelectedAttention, TileSelectBlocks, TileCompress,
                 TileCombine>(ctx, sizes);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      return signalPassFailure();
    // Whatever nsa op is left could not be tiled: say why, and fail.
    WalkResult left = getOperation()->walk([](Operation *op) {
      if (!isa<NSADialect>(op->getDialect()))
        return WalkResult::advance();
      if (isa<AttentionOp, AttentionGradOp>(op))
        op->emitError("nsa-tile: run nsa-decompose first");
      else if (op->getName().getStringRef().ends_with("_grad"))
        op->emitError("nsa-tile: backward ops are not tiled yet");
      else
        op->emitError("nsa-tile: cannot tile this op: it needs the grouped "
                      "form of nsa-group-gqa (where it has q) and static "
                      "head dimensions");
      return WalkResult::interrupt();
    });
    if (left.wasInterrupted())
      signalPassFailure();
  }
};

} // namespace
