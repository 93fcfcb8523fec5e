//===- Decompose.cpp - nsa.attention(_grad) -> branch ops -----------------===//

#include "nsa/Dialect/NSA/IR/NSADialect.h"
#include "nsa/Dialect/NSA/Transforms/Passes.h"

#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace mlir::nsa {
#define GEN_PASS_DEF_NSADECOMPOSE
#include "nsa/Dialect/NSA/Transforms/Passes.h.inc"
} // namespace mlir::nsa

using namespace mlir;
using namespace mlir::nsa;

namespace {

enum Branch { Cmp = 0, Slc = 1, Win = 2 };

/// The operands nsa.attention and nsa.attention_grad share, with a shared
/// K/V resolved per branch.
struct LayerOperands {
  Value q, gates;
  ValueRange keys, values, weights, pe;
  CompressMode mode;
  ConfigAttr config;

  template <typename OpT> static LayerOperands of(OpT op) {
    return {op.getQ(),       op.getGates(), op.getKeys(), op.getValues(),
            op.getWeights(), op.getPe(),    op.getMode(), op.getConfig()};
  }
  bool sharedKV() const { return keys.size() == 1; }
  Value key(Branch b) const { return keys[sharedKV() ? 0 : b]; }
  Value value(Branch b) const { return values[sharedKV() ? 0 : b]; }
  /// Compression parameter `i` (0: keys, 1: values), or null.
  Value weight(int i) const { return weights.empty() ? Value() : weights[i]; }
  Value posEnc(int i) const { return pe.empty() ? Value() : pe[i]; }
};

/// Every forward intermediate the backward needs, in `Saved` order.
struct Forward {
  Value kc, vc, oCmp, lseCmp, idx, oSlc, lseSlc, oWin, lseWin;

  static Forward fromSaved(ValueRange saved) {
    auto at = [&](Saved s) { return saved[unsigned(s)]; };
    return {at(Saved::Kc),     at(Saved::Vc),   at(Saved::OCmp),
            at(Saved::LseCmp), at(Saved::Idx),  at(Saved::OSlc),
            at(Saved::LseSlc), at(Saved::OWin), at(Saved::LseWin)};
  }
  SmallVector<Value> saved() const {
    return {kc, vc, oCmp, lseCmp, idx, oSlc, lseSlc, oWin, lseWin};
  }
};

RankedTensorType tensorOf(ArrayRef<int64_t> shape, Type elt) {
  return RankedTensorType::get(shape, elt);
}

ArrayRef<int64_t> shapeOf(Value v) {
  return cast<RankedTensorType>(v.getType()).getShape();
}

Type eltOf(Value v) {
  return cast<RankedTensorType>(v.getType()).getElementType();
}

/// [B, Nc, H, D] of compressing `src` [B, T, H, D]; Nc is dynamic when T is.
RankedTensorType compressedType(Value src, ConfigAttr config) {
  SmallVector<int64_t> shape(shapeOf(src));
  if (!ShapedType::isDynamic(shape[1]))
    shape[1] = config.getNumCompressed(shape[1]);
  return tensorOf(shape, eltOf(src));
}

Forward buildForward(OpBuilder &b, Location loc, const LayerOperands &in) {
  MLIRContext *ctx = b.getContext();
  ArrayRef<int64_t> q = shapeOf(in.q);
  int64_t dv = shapeOf(in.value(Cmp))[3];
  auto oType = tensorOf({q[0], q[1], q[2], dv}, eltOf(in.q));
  auto lseType = tensorOf({q[0], q[1], q[2]}, Float32Type::get(ctx));
  int64_t hkv = shapeOf(in.key(Slc))[2];
  auto idxType =
      tensorOf({q[0], q[1], hkv, in.config.getN()}, IntegerType::get(ctx, 32));

  Forward f;
  f.kc = CompressOp::create(b, loc, compressedType(in.key(Cmp), in.config),
                            in.mode, in.key(Cmp), in.weight(0), in.posEnc(0),
                            in.config);
  f.vc = CompressOp::create(b, loc, compressedType(in.value(Cmp), in.config),
                            in.mode, in.value(Cmp), in.weight(1), in.posEnc(1),
                            in.config);
  auto cmp = CompressedAttentionOp::create(b, loc, oType, lseType, in.q, f.kc,
                                           f.vc, in.config);
  f.oCmp = cmp.getO();
  f.lseCmp = cmp.getLse();
  f.idx =
      SelectBlocksOp::create(b, loc, idxType, in.q, f.kc, f.lseCmp, in.config);
  auto win = WindowAttentionOp::create(b, loc, oType, lseType, in.q,
                                       in.key(Win), in.value(Win), in.config);
  f.oWin = win.getO();
  f.lseWin = win.getLse();
  // The selected branch last: its program, the longest, also computes the
  // combination (nsa-tile: fusableCombine), whose other operands then exist.
  auto slc =
      SelectedAttentionOp::create(b, loc, oType, lseType, in.q, in.key(Slc),
                                  in.value(Slc), f.idx, in.config);
  f.oSlc = slc.getO();
  f.lseSlc = slc.getLse();
  return f;
}

struct DecomposeAttention : OpRewritePattern<AttentionOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(AttentionOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    Forward f = buildForward(rewriter, loc, LayerOperands::of(op));
    SmallVector<Value> results = {CombineOp::create(
        rewriter, loc, op.getO().getType(), op.getGates(), f.oCmp, f.oSlc,
        f.oWin)};
    if (!op.getSaved().empty())
      llvm::append_range(results, f.saved());
    rewriter.replaceOp(op, results);
    return success();
  }
};

Value sum(OpBuilder &b, Location loc, ArrayRef<Value> terms) {
  Value acc = terms.front();
  for (Value t : terms.drop_front())
    acc = arith::AddFOp::create(b, loc, acc, t);
  return acc;
}

struct DecomposeAttentionGrad : OpRewritePattern<AttentionGradOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(AttentionGradOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    LayerOperands in = LayerOperands::of(op);
    ConfigAttr cfg = in.config;
    Forward f = op.getSaved().empty() ? buildForward(rewriter, loc, in)
                                      : Forward::fromSaved(op.getSaved());

    auto dCombine = CombineGradOp::create(
        rewriter, loc, in.gates.getType(), f.oCmp.getType(), f.oSlc.getType(),
        f.oWin.getType(), in.gates, f.oCmp, f.oSlc, f.oWin, op.getDO());

    auto gradTypes = [](ValueRange primals) {
      SmallVector<Type> types;
      for (Value p : primals)
        if (p)
          types.push_back(p.getType());
      return types;
    };
    auto dCmp = CompressedAttentionGradOp::create(
        rewriter, loc, in.q.getType(), f.kc.getType(), f.vc.getType(), in.q,
        f.kc, f.vc, f.oCmp, f.lseCmp, dCombine.getDCmp(), cfg);
    CompressGradOp dCompress[2];
    Value sources[2] = {in.key(Cmp), in.value(Cmp)};
    Value dCompressed[2] = {dCmp.getDK(), dCmp.getDV()};
    for (int i = 0; i < 2; ++i)
      dCompress[i] = CompressGradOp::create(
          rewriter, loc, gradTypes({sources[i], in.weight(i), in.posEnc(i)}),
          in.mode, sources[i], in.weight(i), in.posEnc(i), dCompressed[i], cfg);
    auto dSlc = SelectedAttentionGradOp::create(
        rewriter, loc, in.q.getType(), in.key(Slc).getType(),
        in.value(Slc).getType(), in.q, in.key(Slc), in.value(Slc), f.idx,
        f.oSlc, f.lseSlc, dCombine.getDSlc(), cfg);
    auto dWin = WindowAttentionGradOp::create(
        rewriter, loc, in.q.getType(), in.key(Win).getType(),
        in.value(Win).getType(), in.q, in.key(Win), in.value(Win), f.oWin,
        f.lseWin, dCombine.getDWin(), cfg);

    Value dKeys[3] = {dCompress[0].getDInput(), dSlc.getDK(), dWin.getDK()};
    Value dValues[3] = {dCompress[1].getDInput(), dSlc.getDV(), dWin.getDV()};
    SmallVector<Value> results;
    results.push_back(
        sum(rewriter, loc, {dCmp.getDQ(), dSlc.getDQ(), dWin.getDQ()}));
    if (in.sharedKV()) {
      results.push_back(sum(rewriter, loc, dKeys));
      results.push_back(sum(rewriter, loc, dValues));
    } else {
      results.append(std::begin(dKeys), std::end(dKeys));
      results.append(std::begin(dValues), std::end(dValues));
    }
    results.push_back(dCombine.getDGates());
    if (!in.weights.empty())
      for (CompressGradOp g : dCompress)
        results.push_back(g.getDWeight());
    if (!in.pe.empty())
      for (CompressGradOp g : dCompress)
        results.push_back(g.getDPe());
    rewriter.replaceOp(op, results);
    return success();
  }
};

struct NSADecompose : nsa::impl::NSADecomposeBase<NSADecompose> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<DecomposeAttention, DecomposeAttentionGrad>(&getContext());
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
