//===- TileSelection.cpp - nsa.select_blocks -> programs ------------------===//

#include "AttentionProgram.h"
#include "mlir/Dialect/Math/IR/Math.h"

#include <cmath>
#include <limits>

using namespace mlir;
using namespace mlir::nsa;
using namespace mlir::nsa::tiling;

namespace {

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

/// Whether the compressed branch's mask can be left out of the block scores:
/// every compressed token it excludes for a query t (before 0, or not yet
/// complete at t) overlaps only blocks whose scores selection overwrites
/// (forced, or after t's block). Then p needs only to stay finite (a
/// product adds inf * 0 = NaN to every column), which min(., 0) in the
/// exponent ensures: a visible token's p is at most 1. The rule repeats
/// with period lSel once t is past the initial blocks; t is tried up to a
/// few periods beyond them and the window.
bool maskOnlyHitsOverwrittenBlocks(int64_t l, int64_t d, int64_t lSel,
                                   int64_t init, int64_t local) {
  int64_t perBlock = lSel / d, perToken = l / d;
  int64_t tEnd = lSel * (init + local + l / lSel + 4);
  for (int64_t t = 0; t < tEnd; ++t) {
    int64_t current = t / lSel;
    for (int64_t x = -(perToken - 1); x * d <= t + lSel; ++x) {
      if (x >= 0 && x * d + l - 1 <= t)
        continue;
      for (int64_t j = 0; j <= current; ++j) {
        bool overwritten = j < init || j > current - local;
        if (!overwritten &&
            overlapWeight(x + perToken - 1 - perBlock * j, perBlock, perToken))
          return false;
      }
    }
  }
  return true;
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
    int64_t bm = sizes.scanTokensFor(g), rows = bm * g;
    float log2e = static_cast<float>(M_LOG2E);
    float inf = std::numeric_limits<float>::infinity();

    Location loc = op.getLoc();
    Emitter outer{rewriter, loc};
    Value q = op.getQ(), kc = op.getK(), lse = op.getLse();
    Value batch = outer.dim(q, 0), numTokens = outer.dim(q, 1);
    auto idxType = tensorTy(op.getIdx());
    Value init0 =
        emptyLike(rewriter, loc, idxType, {{0, batch}, {1, numTokens}});
    Value grid[3] = {batch, outer.dim(q, 2), outer.ceilDiv(numTokens, bm)};

    // The compressed branch's query tile (no values: p_cmp is all it needs).
    AttentionOperands cmpOperands{
        q, kc, Value(), g, dk, 0, static_cast<float>(cfg.getScaleOr(dk))};
    auto program = buildProgram(
        rewriter, op, grid, init0,
        [&](Emitter &e, ValueRange ids, ValueRange outArgs) {
          Value b = ids[0], h = ids[1], zero = e.index(0);
          Value t0 = heaviestFirstStart(e, ids[2], grid[2], bm);
          AttentionProgram cmp =
              AttentionProgram::at(e, cmpOperands, b, h, t0, bm);
          Value lse2 = e.scaled(cmp.loadRows(lse), log2e);
          Value tokenBlock = arith::DivSIOp::create(e.b, e.loc, e.range(t0, bm),
                                                    e.splatI32(lSel, {bm}));
          // Maps compressed tokens to blocks. f16 holds the weights exactly
          // and p (in [0, 1]) to 2^-11 relative, so a block score is within
          // 2^-11 of itself: SPEC's selection tolerance is 1e-3 of the
          // largest score.
          Value overlap = e.constMatrix(
              width, nb, e.b.getF16Type(), [&](int64_t x, int64_t j) {
                return overlapWeight(x - perBlock * j, perBlock, perToken);
              });
          bool unmasked =
              maskOnlyHitsOverwrittenBlocks(l, d, lSel, init, local);
          Value end = e.min(numTokens, e.add(t0, e.index(bm)));
          Value numBlocks = e.add(
              e.divFloor(e.sub(end, e.index(1)), e.index(lSel)), e.index(1));
          Value best[2] = {e.constTensor({bm, n}, -inf),
                           e.splatI32(-1, {bm, n})};

          ValueRange top = e.loop(
              zero, numBlocks, e.index(nb), best,
              [&](Value j0, ValueRange iter) -> SmallVector<Value> {
                Value cStart =
                    e.sub(e.mul(j0, e.index(perBlock)), e.index(perToken - 1));
                Value kTile =
                    e.load(kc, {b, cStart, h, zero}, {1}, {width, dk});
                Value logP = e.subF(cmp.scores(kTile), e.perRow(lse2, width));
                Value p;
                if (unmasked) {
                  p = math::Exp2Op::create(
                      e.b, e.loc,
                      arith::MinNumFOp::create(
                          e.b, e.loc, logP, e.constTensor({rows, width}, 0)));
                } else {
                  // The compressed branch's mask: tokens before 0 or not yet
                  // complete at the row's token (those past Nc included)
                  // contribute nothing (also replaces the NaN of rows whose
                  // lse is -inf).
                  p = tile::MaskedFillOp::create(
                      e.b, e.loc, math::Exp2Op::create(e.b, e.loc, logP),
                      cmp.compressedMask(cStart, width, l, d),
                      e.f32(0.0f));
                }
                // Block scores per row first, then the group's sum: both
                // orders are SPEC's double sum, but this one keeps the wide
                // product ([rows, width] x [width, nb]) on every warp's rows
                // and leaves only [rows, nb] to cross the rows of a group.
                Value perRow =
                    e.dot(e.truncTo(p, e.b.getF16Type()), overlap, false);
                Value scores = tile::GroupSumOp::create(
                    e.b, e.loc,
                    RankedTensorType::get({bm, nb}, e.b.getF32Type()), perRow);
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
                    e.cmp(arith::CmpIPredicate::sgt, j, current), e.f32(-inf));
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
    if (sizes.selectResident)
      program.setMinResidentAttr(
          rewriter.getI64IntegerAttr(sizes.selectResident));
    rewriter.replaceOp(op, program.getResults());
    return success();
  }
};

} // namespace

void tiling::populateSelectionTilingPatterns(RewritePatternSet &patterns,
                                             TileSizes sizes) {
  patterns.add<TileSelectBlocks>(patterns.getContext(), sizes);
}
