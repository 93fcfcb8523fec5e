//===- TileRewrites.cpp - helpers shared by the tile lowerings ------------===//
//
// See TileRewrites.h.
//
//===----------------------------------------------------------------------===//

#include "TileRewrites.h"

#include "nsa/Dialect/Tile/IR/TileDialect.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/IR/TypeUtilities.h"
#include "mlir/Transforms/DialectConversion.h"
#include "llvm/Support/MathExtras.h"

using namespace mlir;
using namespace mlir::nsa::tile;

namespace mlir::nsa::tile::rewrites {
RankedTensorType tensorType(Value v) {
  return cast<RankedTensorType>(v.getType());
}

/// A float tensor of `type` with every element `value`.
Value splat(OpBuilder &b, Location loc, RankedTensorType type, double value) {
  return arith::ConstantOp::create(
      b, loc,
      DenseElementsAttr::get(type,
                             b.getFloatAttr(type.getElementType(), value)));
}

/// `value` (a float or a tensor of floats) converted to element type `to`.
Value castFloat(OpBuilder &b, Location loc, Value value, FloatType to) {
  auto from = cast<FloatType>(getElementTypeOrSelf(value));
  if (from == to)
    return value;
  Type type = to;
  if (auto tensor = dyn_cast<RankedTensorType>(value.getType()))
    type = tensor.clone(to);
  if (from.getWidth() < to.getWidth())
    return arith::ExtFOp::create(b, loc, type, value);
  return arith::TruncFOp::create(b, loc, type, value);
}

/// `row` ([M]) repeated along the columns of `like` ([M, N]).
Value broadcastRows(OpBuilder &b, Location loc, Value row, Value like) {
  auto type = tensorType(like).clone(tensorType(row).getElementType());
  return BroadcastOp::create(b, loc, type, row, /*dim=*/1);
}

} // namespace mlir::nsa::tile::rewrites

using namespace mlir::nsa::tile::rewrites;

namespace {
//===----------------------------------------------------------------------===//
// Streaming softmax
//===----------------------------------------------------------------------===//

/// tile.online_softmax spelled out as in its description with tile.reduce,
/// tile.broadcast, tile.dot and arith/math on tensors.
struct DecomposeOnlineSoftmax : OpConversionPattern<OnlineSoftmaxOp> {
  using OpConversionPattern::OpConversionPattern;

  LogicalResult
  matchAndRewrite(OnlineSoftmaxOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    Value scores = adaptor.getScores(), max = adaptor.getMax(),
          sum = adaptor.getSum(), acc = adaptor.getAcc();
    RankedTensorType rowType = tensorType(max);

    // The scale multiplies the row maxima and, in p's exponent, each score
    // (one fused multiply-add with the shift): the scores themselves are
    // never scaled.
    float scaleValue = op.getScale().convertToFloat();
    auto inBase2 = [&](Value x) -> Value {
      if (scaleValue == 1.0f)
        return x;
      return arith::MulFOp::create(
          rewriter, loc, x,
          splat(rewriter, loc, tensorType(x), static_cast<double>(scaleValue)));
    };
    Value rowMax = inBase2(
        ReduceOp::create(rewriter, loc, rowType, ReduceKind::Max, scores));
    Value newMax = arith::MaximumFOp::create(rewriter, loc, max, rowMax);
    // A row that has seen no finite score (max' = -inf) must not compute
    // -inf - -inf = NaN: subtract 0 instead. Its scores are all -inf, so p is
    // exp2(-inf) = 0 as required; c is forced to 1 below.
    Value unseen =
        arith::CmpFOp::create(rewriter, loc, arith::CmpFPredicate::OEQ, newMax,
                              splat(rewriter, loc, rowType, kNegInf));
    Value shift = arith::SelectOp::create(
        rewriter, loc, unseen, splat(rewriter, loc, rowType, 0.0), newMax);
    Value p = math::Exp2Op::create(
        rewriter, loc,
        arith::SubFOp::create(rewriter, loc, inBase2(scores),
                              broadcastRows(rewriter, loc, shift, scores)));
    Value c = arith::SelectOp::create(
        rewriter, loc, unseen, splat(rewriter, loc, rowType, 1.0),
        math::Exp2Op::create(rewriter, loc,
                             arith::SubFOp::create(rewriter, loc, max, shift)));

    Value rowSum = ReduceOp::create(rewriter, loc, rowType, ReduceKind::Sum, p);
    Value newSum = arith::AddFOp::create(
        rewriter, loc, arith::MulFOp::create(rewriter, loc, sum, c), rowSum);
    // p stays f32: the values are widened rather than p rounded to theirs.
    Value values =
        castFloat(rewriter, loc, adaptor.getValues(), rewriter.getF32Type());
    // The rescaled accumulator first: the GPU's wgmma then accumulates p . v
    // into it (convert-tile-to-gpu's accumulatingAdd).
    Value scaled = arith::MulFOp::create(rewriter, loc, acc,
                                         broadcastRows(rewriter, loc, c, acc));
    Value pv = DotOp::create(rewriter, loc, acc.getType(), p, values,
                             /*rhs_transposed=*/false);
    Value newAcc = arith::AddFOp::create(rewriter, loc, scaled, pv);
    rewriter.replaceOp(op, {newMax, newSum, newAcc});
    return success();
  }
};

/// tile.softmax_finalize spelled out as in its description. A row with
/// sum = 0 divides by 1 and takes log2(1) instead, so that neither 0 / 0 nor
/// log2(0) is computed, then selects out = 0 and lse = -inf.
struct DecomposeSoftmaxFinalize : OpConversionPattern<SoftmaxFinalizeOp> {
  using OpConversionPattern::OpConversionPattern;

  LogicalResult
  matchAndRewrite(SoftmaxFinalizeOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    Value max = adaptor.getMax(), sum = adaptor.getSum(),
          acc = adaptor.getAcc();
    RankedTensorType rowType = tensorType(sum);

    Value empty =
        arith::CmpFOp::create(rewriter, loc, arith::CmpFPredicate::OEQ, sum,
                              splat(rewriter, loc, rowType, 0.0));
    Value safeSum = arith::SelectOp::create(
        rewriter, loc, empty, splat(rewriter, loc, rowType, 1.0), sum);

    Value ratio = arith::DivFOp::create(
        rewriter, loc, acc, broadcastRows(rewriter, loc, safeSum, acc));
    Value zero = arith::ConstantOp::create(rewriter, loc,
                                           rewriter.getF32FloatAttr(0.0f));
    Value out = MaskedFillOp::create(
        rewriter, loc, ratio, broadcastRows(rewriter, loc, empty, acc), zero);
    out = castFloat(rewriter, loc, out,
                    cast<FloatType>(op.getOut().getType().getElementType()));

    Value log2Sum = math::Log2Op::create(rewriter, loc, safeSum);
    Value lse = arith::MulFOp::create(
        rewriter, loc, arith::AddFOp::create(rewriter, loc, max, log2Sum),
        splat(rewriter, loc, rowType, llvm::numbers::ln2));
    lse = arith::SelectOp::create(rewriter, loc, empty,
                                  splat(rewriter, loc, rowType, kNegInf), lse);
    rewriter.replaceOp(op, {out, lse});
    return success();
  }
};

} // namespace

void mlir::nsa::tile::rewrites::populateDecomposeSoftmaxPatterns(
    RewritePatternSet &patterns) {
  patterns.add<DecomposeOnlineSoftmax, DecomposeSoftmaxFinalize>(
      patterns.getContext());
}
