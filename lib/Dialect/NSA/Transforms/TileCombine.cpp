//===- TileCombine.cpp - nsa.combine -> programs --------------------------===//

#include "AttentionProgram.h"

using namespace mlir;
using namespace mlir::nsa;
using namespace mlir::nsa::tiling;

Value tiling::gatedSum(Emitter &e, ArrayRef<Value> gates,
                       ArrayRef<Value> branches) {
  int64_t dv = tensorTy(branches[0]).getDimSize(1);
  Value acc;
  for (auto [gate, o] : llvm::zip_equal(gates, branches)) {
    Value term = arith::MulFOp::create(e.b, e.loc, e.extF32(e.perRow(gate, dv)),
                                       e.extF32(o));
    acc = acc ? arith::AddFOp::create(e.b, e.loc, acc, term) : term;
  }
  return acc;
}

namespace {

/// One program per TileSizes::headTokensFor tokens, all their heads as rows.
struct TileCombine : TilePattern<CombineOp> {
  using TilePattern::TilePattern;
  LogicalResult matchAndRewrite(CombineOp op,
                                PatternRewriter &rewriter) const override {
    for (Value branch : {op.getCmp(), op.getSlc(), op.getWin()})
      if (auto ungrouped = branch.getDefiningOp<tensor::CollapseShapeOp>())
        if (Operation *def = ungrouped.getSrc().getDefiningOp())
          if (fusableCombine(def).op == op)
            return rewriter.notifyMatchFailure(op, "a branch program's");
    auto outType = tensorTy(op.getO());
    int64_t hq = outType.getDimSize(2), dv = outType.getDimSize(3);
    if (ShapedType::isDynamic(hq) || ShapedType::isDynamic(dv))
      return rewriter.notifyMatchFailure(op, "tiles need static HQ and Dv");
    int64_t tokens = sizes.headTokensFor(hq);
    int64_t rows = tokens * hq;
    Location loc = op.getLoc();
    Emitter outer{rewriter, loc};
    Value batch = outer.dim(op.getGates(), 0), t = outer.dim(op.getGates(), 1);
    Value init = emptyLike(rewriter, loc, outType, {{0, batch}, {1, t}});
    Value grid[2] = {batch, outer.ceilDiv(t, tokens)};
    Value branches[3] = {op.getCmp(), op.getSlc(), op.getWin()};

    auto program = buildProgram(
        rewriter, op, grid, init,
        [&](Emitter &e, ValueRange ids, ValueRange outArgs) {
          Value b = ids[0], zero = e.index(0);
          Value t0 = e.mul(ids[1], e.index(tokens));
          Value gates[3], rowsOf[3];
          for (auto [c, branch] : llvm::enumerate(branches)) {
            gates[c] = e.load(op.getGates(),
                              {b, t0, zero, e.index(static_cast<int64_t>(c))},
                              kTokenHeadRows, {rows});
            rowsOf[c] =
                e.load(branch, {b, t0, zero, zero}, kTokenHeadRows, {rows, dv});
          }
          Value acc = gatedSum(e, gates, rowsOf);
          tile::StoreOp::create(
              e.b, e.loc, e.truncTo(acc, outType.getElementType()), outArgs[0],
              ValueRange{b, t0, zero, zero}, kTokenHeadRows);
        });
    rewriter.replaceOp(op, program.getResults());
    return success();
  }
};

} // namespace

void tiling::populateCombineTilingPatterns(RewritePatternSet &patterns,
                                           TileSizes sizes) {
  patterns.add<TileCombine>(patterns.getContext(), sizes);
}
