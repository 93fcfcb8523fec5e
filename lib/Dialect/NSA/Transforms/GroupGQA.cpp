//===- GroupGQA.cpp - query heads grouped by KV head ----------------------===//

#include "nsa/Dialect/NSA/IR/NSADialect.h"
#include "nsa/Dialect/NSA/Transforms/Passes.h"

#include "HeadGroups.h"

#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace mlir::nsa {
#define GEN_PASS_DEF_NSAGROUPGQA
#include "nsa/Dialect/NSA/Transforms/Passes.h.inc"
} // namespace mlir::nsa

using namespace mlir;
using namespace mlir::nsa;

namespace {

/// Rewrites one query-side op: `queryOperands` and `queryResults` are the
/// positions of its operands and results in [B, T, HQ, ...]; the others
/// (k, v, idx, and the gradients of k and v) are per KV head already.
template <typename OpT> struct GroupQueryHeads : OpRewritePattern<OpT> {
  GroupQueryHeads(MLIRContext *ctx, SmallVector<unsigned> queryOperands,
                  SmallVector<unsigned> queryResults)
      : OpRewritePattern<OpT>(ctx), queryOperands(std::move(queryOperands)),
        queryResults(std::move(queryResults)) {}

  LogicalResult matchAndRewrite(OpT op,
                                PatternRewriter &rewriter) const override {
    auto q = cast<RankedTensorType>(op.getQ().getType());
    auto k = cast<RankedTensorType>(op.getK().getType());
    if (q.getRank() != 4)
      return rewriter.notifyMatchFailure(op, "already grouped");
    int64_t hq = q.getDimSize(2), hkv = k.getDimSize(2);
    if (ShapedType::isDynamic(hq) || ShapedType::isDynamic(hkv))
      return rewriter.notifyMatchFailure(op, "dynamic head counts");
    int64_t g = hq / hkv;

    Location loc = op.getLoc();
    SmallVector<Value> operands(op->getOperands());
    for (unsigned i : queryOperands)
      operands[i] = groupHeads(rewriter, loc, operands[i], hkv, g);
    SmallVector<Type> resultTypes(op->getResultTypes());
    for (unsigned i : queryResults)
      resultTypes[i] = groupedType(resultTypes[i], hkv, g);

    Operation *grouped = rewriter.create(loc, op->getName().getIdentifier(),
                                         operands, resultTypes, op->getAttrs());
    SmallVector<Value> results(grouped->getResults());
    for (unsigned i : queryResults)
      results[i] = ungroupHeads(rewriter, loc, results[i]);
    rewriter.replaceOp(op, results);
    return success();
  }

  SmallVector<unsigned> queryOperands, queryResults;
};

struct NSAGroupGQA : nsa::impl::NSAGroupGQABase<NSAGroupGQA> {
  void runOnOperation() override {
    MLIRContext *ctx = &getContext();
    RewritePatternSet patterns(ctx);
    // Operand and result positions in [B, T, HQ, ...]: q, and o/lse (or,
    // for selection, the compressed branch's lse).
    patterns.add<GroupQueryHeads<CompressedAttentionOp>>(
        ctx, SmallVector<unsigned>{0}, SmallVector<unsigned>{0, 1});
    patterns.add<GroupQueryHeads<WindowAttentionOp>>(
        ctx, SmallVector<unsigned>{0}, SmallVector<unsigned>{0, 1});
    patterns.add<GroupQueryHeads<SelectedAttentionOp>>(
        ctx, SmallVector<unsigned>{0}, SmallVector<unsigned>{0, 1});
    patterns.add<GroupQueryHeads<SelectBlocksOp>>(
        ctx, SmallVector<unsigned>{0, 2}, SmallVector<unsigned>{});
    // Backward: q, o, lse and d_o in, d_q out (d_k, d_v are per KV head).
    patterns.add<GroupQueryHeads<CompressedAttentionGradOp>>(
        ctx, SmallVector<unsigned>{0, 3, 4, 5}, SmallVector<unsigned>{0});
    patterns.add<GroupQueryHeads<WindowAttentionGradOp>>(
        ctx, SmallVector<unsigned>{0, 3, 4, 5}, SmallVector<unsigned>{0});
    patterns.add<GroupQueryHeads<SelectedAttentionGradOp>>(
        ctx, SmallVector<unsigned>{0, 4, 5, 6}, SmallVector<unsigned>{0});
    tensor::ExpandShapeOp::getCanonicalizationPatterns(patterns, ctx);
    tensor::CollapseShapeOp::getCanonicalizationPatterns(patterns, ctx);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
