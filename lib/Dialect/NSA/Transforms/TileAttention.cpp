//===- TileAttention.cpp - attention branches -> programs -----------------===//

#include "AttentionProgram.h"
#include "HeadGroups.h"

#include "mlir/IR/Dominance.h"

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

/// One key block: masked products q . k (mask true = excluded), online
/// softmax, which scales them to base-2 scores inside its exponent.
SoftmaxState step(AttentionProgram &p, Value kTile, Value vTile, Value mask,
                  SoftmaxState s) {
  Emitter &e = p.e;
  Value products = tile::MaskedFillOp::create(
      e.b, e.loc, p.products(kTile), mask,
      e.f32(-std::numeric_limits<float>::infinity()));
  auto update = tile::OnlineSoftmaxOp::create(
      e.b, e.loc, s.max.getType(), s.sum.getType(), s.acc.getType(), products,
      vTile, s.max, s.sum, s.acc, e.b.getF32FloatAttr(p.log2Scale()));
  return {update.getNewMax(), update.getNewSum(), update.getNewAcc()};
}

/// A key loop `for x in [lo, hi) step` carrying the softmax state.
SoftmaxState loop(Emitter &e, Value lo, Value hi, Value stepSize,
                  SoftmaxState init,
                  function_ref<SoftmaxState(Value, SoftmaxState)> body) {
  return SoftmaxState::of(
      e.loop(lo, hi, stepSize, init.asRange(), [&](Value iv, ValueRange iter) {
        return body(iv, SoftmaxState::of(iter)).asRange();
      }));
}

/// Sets up the program for `op` (any grouped attention branch) on a grid of
/// (B, HKV, query tiles of `tokens`), runs `keyLoop` from the empty softmax
/// state and stores o and lse. When fusableCombine(op) names an nsa.combine,
/// the program also stores the combination of its rows, which replaces that
/// op: the branch output is not read back and the combination needs no
/// launch of its own.
template <typename OpT>
LogicalResult tileAttention(
    OpT op, PatternRewriter &rewriter, int64_t tokens,
    function_ref<SoftmaxState(AttentionProgram &, SoftmaxState)> keyLoop) {
  FailureOr<AttentionOperands> x = AttentionOperands::of(op, rewriter);
  if (failed(x))
    return failure();
  Location loc = op.getLoc();
  Emitter outer{rewriter, loc};
  Value batch = outer.dim(op.getQ(), 0), numTokens = outer.dim(op.getQ(), 1);
  Value heads = outer.dim(op.getQ(), 2);
  auto oType = tensorTy(op.getO()), lseType = tensorTy(op.getLse());
  SmallVector<std::pair<int64_t, Value>> dyn = {{0, batch}, {1, numTokens}};
  SmallVector<Value> outs = {emptyLike(rewriter, loc, oType, dyn),
                             emptyLike(rewriter, loc, lseType, dyn)};
  // The combination's operands in the program's layout (its gates, then
  // its branches, this one's left null), and its output.
  FusedCombine combine = fusableCombine(op);
  SmallVector<Value> combineOperands;
  if (combine) {
    int64_t hkv = oType.getDimSize(2);
    for (auto [i, v] : llvm::enumerate(combine.op->getOperands()))
      combineOperands.push_back(i == combine.branch + 1
                                    ? Value()
                                    : groupHeads(rewriter, loc, v, hkv, x->g));
    outs.push_back(
        emptyLike(rewriter, loc,
                  groupedType(combine.op.getO().getType(), hkv, x->g), dyn));
  }
  Value grid[3] = {batch, heads, outer.ceilDiv(numTokens, tokens)};

  auto program = buildProgram(
      rewriter, op, grid, outs,
      [&](Emitter &e, ValueRange ids, ValueRange outArgs) {
        Value t0 = e.mul(ids[2], e.index(tokens));
        AttentionProgram p =
            AttentionProgram::at(e, *x, ids[0], ids[1], t0, tokens);
        SoftmaxState init = {
            e.constTensor({p.rows}, -std::numeric_limits<float>::infinity()),
            e.constTensor({p.rows}, 0.0f),
            e.constTensor({p.rows, x->dv}, 0.0f)};
        SoftmaxState s = keyLoop(p, init);
        auto fin = tile::SoftmaxFinalizeOp::create(
            e.b, e.loc,
            RankedTensorType::get({p.rows, x->dv}, oType.getElementType()),
            s.max.getType(), s.max, s.sum, s.acc);
        p.storeRows(fin.getOut(), outArgs[0]);
        p.storeRows(fin.getLse(), outArgs[1]);
        if (!combine)
          return;
        // This branch's rows as stored (rounded), as nsa.combine reads them.
        Value zero = e.index(0), gates[3], branches[3];
        for (int64_t c = 0; c < 3; ++c) {
          gates[c] = e.load(combineOperands[0],
                            {p.b, t0, p.h, zero, e.index(c)}, {1, 3}, {p.rows});
          branches[c] = c == combine.branch
                            ? fin.getOut()
                            : p.loadRows(combineOperands[c + 1]);
        }
        p.storeRows(e.truncTo(gatedSum(e, gates, branches),
                              tensorTy(outArgs[2]).getElementType()),
                    outArgs[2]);
      });
  rewriter.replaceOp(op, program.getResults().take_front(2));
  if (combine)
    rewriter.replaceOp(combine.op,
                       ungroupHeads(rewriter, loc, program.getResult(2)));
  return success();
}

struct TileWindowAttention : TilePattern<WindowAttentionOp> {
  using TilePattern::TilePattern;
  LogicalResult matchAndRewrite(WindowAttentionOp op,
                                PatternRewriter &rewriter) const override {
    int64_t w = op.getConfig().getW(), bn = sizes.keyTokens;
    return tileAttention(
        op, rewriter, sizes.queryTokensFor(AttentionOperands::groupSize(op)),
        [&](AttentionProgram &p, SoftmaxState init) {
          Emitter &e = p.e;
          auto [lo, hi] = windowKeyRange(e, p.t0, p.tokens, p.numTokens, w, bn);
          return loop(
              e, lo, hi, e.index(bn), init, [&](Value j0, SoftmaxState s) {
                auto [kTile, vTile] = p.loadKV(j0, bn);
                return step(p, kTile, vTile, p.windowMask(j0, bn, w), s);
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
    return tileAttention(
        op, rewriter, sizes.scanTokensFor(AttentionOperands::groupSize(op)),
        [&](AttentionProgram &p, SoftmaxState init) {
          Emitter &e = p.e;
          Value numCompressed = e.dim(op.getK(), 1);
          auto [lo, hi] = compressedKeyRange(e, p.t0, p.tokens, p.numTokens,
                                             numCompressed, l, d);
          return loop(
              e, lo, hi, e.index(bn), init, [&](Value i0, SoftmaxState s) {
                auto [kTile, vTile] = p.loadKV(i0, bn);
                Value mask = p.compressedMask(i0, bn, l, d);
                return step(p, kTile, vTile, mask, s);
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
          return loop(
              e, zero, e.index(tokens), e.index(1), init,
              [&](Value r, SoftmaxState s) {
                Value token = e.add(p.t0, r);
                Value otherRows = e.cmp(arith::CmpIPredicate::ne, p.rowToken,
                                        e.splat(e.toI32(token), {p.rows}));
                return loop(
                    e, zero, e.index(n), e.index(1), s,
                    [&](Value slot, SoftmaxState s) {
                      Value j = tensor::ExtractOp::create(e.b, e.loc, idxTile,
                                                          ValueRange{r, slot});
                      Value valid = arith::AndIOp::create(
                          e.b, e.loc,
                          e.cmp(
                              arith::CmpIPredicate::sge, j,
                              arith::ConstantIntOp::create(e.b, e.loc, 0, 32)),
                          e.cmp(arith::CmpIPredicate::slt, token, p.numTokens));
                      return SoftmaxState::of(e.ifElse(
                          valid,
                          [&] {
                            Value start = e.mul(e.toIndex(j), e.index(lSel));
                            auto [kTile, vTile] = p.loadKV(start, lSel);
                            Value mask = p.selectedMask(start, lSel, otherRows);
                            return step(p, kTile, vTile, mask, s).asRange();
                          },
                          s.asRange()));
                    });
              });
        });
  }
};

} // namespace

FusedCombine tiling::fusableCombine(Operation *branch) {
  if (!isa<CompressedAttentionOp, SelectedAttentionOp, WindowAttentionOp>(
          branch))
    return {};
  Value o = branch->getResult(0);
  auto ungrouped = dyn_cast_if_present<tensor::CollapseShapeOp>(
      o.hasOneUse() ? *o.getUsers().begin() : nullptr);
  if (!ungrouped)
    return {};
  DominanceInfo dominance;
  for (Operation *user : ungrouped->getUsers()) {
    auto combine = dyn_cast<CombineOp>(user);
    if (!combine)
      continue;
    // Operand 0 is the gates, 1 + c branch c; every other one must exist
    // before `branch` runs.
    SmallVector<Value> operands(combine->getOperands());
    int64_t c = llvm::find(operands, ungrouped.getResult()) - operands.begin();
    if (c == 0 || llvm::count(operands, ungrouped.getResult()) != 1 ||
        !llvm::all_of(operands, [&](Value v) {
          return v == ungrouped.getResult() ||
                 dominance.properlyDominates(v, branch);
        }))
      continue;
    --c;
    return {combine, c};
  }
  return {};
}

void tiling::populateAttentionTilingPatterns(RewritePatternSet &patterns,
                                             TileSizes sizes) {
  patterns
      .add<TileWindowAttention, TileCompressedAttention, TileSelectedAttention>(
          patterns.getContext(), sizes);
}
