//===- TileCompression.cpp - nsa.compress -> programs
//-----------------------===//

#include "ProgramBuilder.h"

using namespace mlir;
using namespace mlir::nsa;
using namespace mlir::nsa::tiling;

namespace {

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
          outer.index(0), outer.divFloor(outer.add(outer.sub(t, outer.index(l)),
                                                   outer.index(d)),
                                         outer.index(d)));
    }
    Value init =
        emptyLike(rewriter, loc, outType, {{0, batch}, {1, numCompressed}});
    Value grid[3] = {batch, heads, outer.ceilDiv(numCompressed, bc)};

    auto program = buildProgram(
        rewriter, op, grid, init,
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
                Value x = e.extF32(e.gather(input, {b, h}, pos, {1}, {bc, dd}));
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
          tile::StoreOp::create(
              e.b, e.loc, e.truncTo(acc, outType.getElementType()), outArgs[0],
              ValueRange{b, i0, h, zero}, ArrayRef<int64_t>{1});
        });
    rewriter.replaceOp(op, program.getResults());
    return success();
  }
};

} // namespace

void tiling::populateCompressionTilingPatterns(RewritePatternSet &patterns,
                                               TileSizes sizes) {
  patterns.add<TileCompress>(patterns.getContext(), sizes);
}
