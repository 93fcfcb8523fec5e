//===- TileAttention.cpp - attention branches -> programs
//-------------------===//

#include "ProgramBuilder.h"

#include <cmath>
#include <limits>

using namespace mlir;
using namespace mlir::nsa;
using namespace mlir::nsa::tiling;

namespace {

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
  Value b, h, t0;  // batch, KV head, first query token
  Value numTokens; // T
  int64_t tokens, g, rows, dk, dv;
  float log2Scale;       // scale * log2(e)
  Value qTile, rowToken; // [rows, Dk]; [rows] i32 token of each row

  /// One key block: scores, mask (true = excluded), online softmax.
  SoftmaxState step(Value kTile, Value vTile, Value mask, SoftmaxState s) {
    int64_t n = tensorTy(kTile).getDimSize(0);
    auto scoreType = RankedTensorType::get({rows, n}, e.b.getF32Type());
    Value scores = tile::DotOp::create(e.b, e.loc, scoreType, qTile, kTile,
                                       /*rhs_transposed=*/true);
    scores = arith::MulFOp::create(e.b, e.loc, scores,
                                   e.constTensor({rows, n}, log2Scale));
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
/// G of a grouped query-side op (1 before nsa-group-gqa, which tileAttention
/// then rejects).
template <typename OpT> int64_t groupSize(OpT op) {
  auto q = tensorTy(op.getQ());
  return q.getRank() == 5 && !q.isDynamicDim(3) ? q.getDimSize(3) : 1;
}

template <typename OpT>
LogicalResult tileAttention(
    OpT op, PatternRewriter &rewriter, int64_t tokens,
    function_ref<SoftmaxState(AttentionProgram &, SoftmaxState)> keyLoop) {
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
  float log2Scale = static_cast<float>(op.getConfig().getScaleOr(dk) * M_LOG2E);

  auto program = buildProgram(
      rewriter, loc, grid, outs,
      [&](Emitter &e, ValueRange ids, ValueRange outArgs) {
        Value zero = e.index(0);
        Value t0 = e.mul(ids[2], e.index(tokens));
        int64_t rows = tokens * g;
        AttentionProgram p{e,  op.getQ(), op.getK(), op.getV(), ids[0], ids[1],
                           t0, numTokens, tokens,    g,         rows,   dk,
                           dv, log2Scale, {},        {}};
        p.qTile = e.load(op.getQ(), {ids[0], t0, ids[1], zero, zero}, {1, 3},
                         {rows, dk});
        p.rowToken = e.range(t0, rows, g);
        SoftmaxState s = keyLoop(p, p.initialState());
        auto fin = tile::SoftmaxFinalizeOp::create(
            e.b, e.loc,
            RankedTensorType::get({rows, dv}, oType.getElementType()),
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
        op, rewriter, sizes.queryTokensFor(groupSize(op)),
        [&](AttentionProgram &p, SoftmaxState init) {
          Emitter &e = p.e;
          // Keys [max(0, t0 - w + 1), min(T, t0 + tokens)), from a multiple
          // of the key block.
          Value lo = e.max(e.index(0), e.sub(p.t0, e.index(w - 1)));
          lo = e.mul(e.divFloor(lo, e.index(bn)), e.index(bn));
          Value hi = e.min(p.numTokens, e.add(p.t0, e.index(p.tokens)));
          return p.loop(
              lo, hi, e.index(bn), init, [&](Value j0, SoftmaxState s) {
                auto [kTile, vTile] = p.loadKV(j0, bn);
                auto [row, col] = p.positions(j0, bn);
                Value lowest =
                    e.sub(row, e.splat(e.toI32(e.index(w - 1)), {p.rows, bn}));
                Value mask =
                    e.orI(e.orI(e.cmp(arith::CmpIPredicate::sgt, col, row),
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
        op, rewriter, sizes.queryTokensFor(groupSize(op)),
        [&](AttentionProgram &p, SoftmaxState init) {
          Emitter &e = p.e;
          // The last row's token sees compressed tokens i with
          // i*d + l - 1 <= last, i.e. i < (last + 1 - l)/d + 1 when
          // last + 1 >= l; clamp to [0, Nc].
          Value numCompressed = e.dim(kc, 1);
          Value end = e.min(p.numTokens, e.add(p.t0, e.index(p.tokens)));
          Value visible =
              e.add(e.divFloor(e.sub(end, e.index(l)), e.index(d)), e.index(1));
          Value hi = e.max(e.index(0), e.min(numCompressed, visible));
          return p.loop(
              e.index(0), hi, e.index(bn), init, [&](Value i0, SoftmaxState s) {
                auto [kTile, vTile] = p.loadKV(i0, bn);
                auto [row, col] = p.positions(i0, bn);
                Value lastCovered = arith::AddIOp::create(
                    e.b, e.loc,
                    arith::MulIOp::create(
                        e.b, e.loc, col,
                        e.splat(e.toI32(e.index(d)), {p.rows, bn})),
                    e.splat(e.toI32(e.index(l - 1)), {p.rows, bn}));
                Value mask =
                    e.orI(e.cmp(arith::CmpIPredicate::sgt, lastCovered, row),
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
          return p.loop(
              zero, e.index(tokens), e.index(1), init,
              [&](Value r, SoftmaxState s) {
                return p.loop(
                    e.index(0), e.index(n), e.index(1), s,
                    [&](Value slot, SoftmaxState s) {
                      Value j = tensor::ExtractOp::create(e.b, e.loc, idxTile,
                                                          ValueRange{r, slot});
                      Value token = e.add(p.t0, r);
                      Value valid = arith::AndIOp::create(
                          e.b, e.loc,
                          e.cmp(
                              arith::CmpIPredicate::sge, j,
                              arith::ConstantIntOp::create(e.b, e.loc, 0, 32)),
                          arith::CmpIOp::create(e.b, e.loc,
                                                arith::CmpIPredicate::slt,
                                                token, p.numTokens));
                      ValueRange updated = e.ifElse(
                          valid,
                          [&] {
                            Value start = e.mul(e.toIndex(j), e.index(lSel));
                            auto [kTile, vTile] = p.loadKV(start, lSel);
                            auto [row, col] = p.positions(start, lSel);
                            Value bound =
                                e.splat(e.toI32(p.numTokens), {p.rows, lSel});
                            Value own = e.splat(e.toI32(token), {p.rows, lSel});
                            Value mask = e.orI(
                                e.orI(
                                    e.cmp(arith::CmpIPredicate::sgt, col, row),
                                    e.cmp(arith::CmpIPredicate::sge, col,
                                          bound)),
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

} // namespace

void tiling::populateAttentionTilingPatterns(RewritePatternSet &patterns,
                                             TileSizes sizes) {
  patterns
      .add<TileWindowAttention, TileCompressedAttention, TileSelectedAttention>(
          patterns.getContext(), sizes);
}
