//===- TileBackward.cpp - *_grad ops -> programs --------------------------===//
//
// The backward ops as deterministic programs: every output element is
// written by exactly one program instance, which computes it with sums in a
// fixed order, so no atomics are needed and two runs give the same bits.
//
// Attention grads (FlashAttention-2 without its atomic d_q): two grids.
//   d_q       one program per query tile, as in the forward, visiting the
//             keys that tile sees: with the forward's lse, Delta =
//             rowsum(d_o * o), p = exp2(s * scale * log2 e - lse * log2 e)
//             under the forward's mask, dp = d_o . v^T,
//             ds = p * (dp - Delta), d_q += ds . k (times scale at the end).
//   d_k, d_v  one program per key block, visiting the query tiles that can
//             see it: d_v += p^T . d_o, d_k += ds^T . q (times scale). The G
//             heads of a group are rows of the query tile, so the products
//             sum them.
// For the selected branch, the d_k/d_v program of selection block j scans
// the idx rows from the block's start and gathers the tokens that chose j
// into query tiles of bm tokens each (chosenTokensLoop): an inverted
// block-to-query index built on the fly, in token order, with nothing
// stored.
//
// Compression grads: d_input per tile of source tokens, d_weight and d_pe
// per (head, position); see TileCompressGrad.
// Combine grad: per token tile.
//
//===----------------------------------------------------------------------===//

#include "AttentionProgram.h"

#include "mlir/Dialect/Math/IR/Math.h"

#include <cmath>

using namespace mlir;
using namespace mlir::nsa;
using namespace mlir::nsa::tiling;

namespace {

/// The sum of each row of a rank-2 tile.
Value rowSum(Emitter &e, Value x) {
  auto type = tensorTy(x);
  return tile::ReduceOp::create(
      e.b, e.loc,
      RankedTensorType::get({type.getDimSize(0)}, type.getElementType()),
      tile::ReduceKind::Sum, x);
}

//===----------------------------------------------------------------------===//
// Attention
//===----------------------------------------------------------------------===//

/// A query tile of a backward program with what its rows need besides q:
/// lse in base 2, Delta = rowsum(d_o * o), and d_o.
struct GradTile {
  AttentionProgram p;
  Value lse2, delta, dO;

  /// The grad tile of `p`; Delta is computed from `o` (`fromO`) or loaded
  /// from a tensor of it laid out like lse.
  static GradTile of(AttentionProgram p, Value oOrDelta, bool fromO, Value lse,
                     Value dO) {
    Emitter &e = p.e;
    GradTile t{p, {}, {}, {}};
    // Every load before any math on them: the GPU lowering waits for a
    // tile copied by cp.async where it is first read, so the loads are in
    // flight together.
    Value lseRows = t.p.loadRows(lse);
    t.dO = t.p.loadRows(dO);
    Value rows = t.p.loadRows(oOrDelta);
    t.lse2 = e.scaled(lseRows, static_cast<float>(M_LOG2E));
    t.delta = fromO ? rowSum(e, e.mulF(e.extF32(t.dO), e.extF32(rows))) : rows;
    return t;
  }

  /// The probabilities and score gradients of a key block: p is 0 where
  /// `mask` excludes a key, which also covers rows whose lse is -inf (they
  /// see no key) and whose exp2 is therefore +inf. `keyMajor`: their
  /// transposes p^T, ds^T ([n, rows], `mask` too), from k . q^T and
  /// v . d_o^T.
  std::pair<Value, Value> probabilities(Value kTile, Value vTile, Value mask,
                                        bool keyMajor) {
    Emitter &e = p.e;
    int64_t n = tensorTy(kTile).getDimSize(0);
    Value prob = math::Exp2Op::create(
        e.b, e.loc,
        e.subF(p.scores(kTile, keyMajor), p.perQuery(lse2, n, keyMajor)));
    prob = tile::MaskedFillOp::create(e.b, e.loc, prob, mask, e.f32(0.0f));
    Value dp = keyMajor ? e.dot(vTile, dO, /*rhsTransposed=*/true)
                        : e.dot(dO, vTile, /*rhsTransposed=*/true);
    Value ds = e.mulF(prob, e.subF(dp, p.perQuery(delta, n, keyMajor)));
    return {prob, ds};
  }

  /// d_q += ds . k
  Value addDq(Value dq, Value kTile, Value vTile, Value mask) {
    Value ds = probabilities(kTile, vTile, mask, /*keyMajor=*/false).second;
    return p.e.addF(dq, p.e.dot(ds, kTile, /*rhsTransposed=*/false));
  }

  /// d_k += ds^T . q and d_v += p^T . d_o, contracting over the tile's
  /// rows; `mask` is [n, rows]. The products are key-major, so that p^T and
  /// ds^T come out of `k . q^T` and `v . d_o^T` as left operands and q, d_o
  /// are right operands only: the GPU lowering then copies a loaded q and
  /// d_o from global to shared memory asynchronously (double buffered
  /// across the query loop) instead of loading them into registers and
  /// staging them, with p and ds transposed, through shared memory at every
  /// visit (compressed d_kc/d_vc 60 -> 47 ms at T = 65536 on an H100).
  /// Gathered tiles (the selected branch) too: with wgmma their rows are
  /// copied by cp.async and k, v read from shared memory (selected 44.7 ->
  /// 37.9 ms); on mma.sync alone key-major spills there (44 -> 69 ms), a
  /// cost the pre-Hopper path pays.
  std::pair<Value, Value> addDkv(Value dk, Value dv, Value kTile, Value vTile,
                                 Value mask) {
    Emitter &e = p.e;
    auto [probT, dsT] = probabilities(kTile, vTile, mask, /*keyMajor=*/true);
    return {e.addF(dk, e.dot(dsT, p.qTile, /*rhsTransposed=*/false)),
            e.addF(dv, e.dot(probT, dO, /*rhsTransposed=*/false))};
  }
};

/// The key block of a d_k/d_v program.
struct KeyBlock {
  Emitter e;
  const AttentionOperands &x;
  Value delta, lse, dO;
  Value b, h, j0, numTokens;
  int64_t n;          ///< keys in the block
  Value kTile, vTile; ///< [n, Dk], [n, Dv]
  /// When set, the queries this program visits are one segment of the
  /// block's (see tileAttentionGrad): the query tiles whose first token is
  /// in [from, to) (`loop`), or the tokens in it (chosenTokensLoop).
  Value from, to;

  /// The query tile of `tokens` tokens from t0, or of the tokens
  /// `rowToken` (see AttentionProgram::gathered).
  GradTile queryTile(Value t0, int64_t tokens) {
    return GradTile::of(AttentionProgram::at(e, x, b, h, t0, tokens), delta,
                        /*fromO=*/false, lse, dO);
  }
  GradTile gatheredTile(Value rowToken) {
    return GradTile::of(AttentionProgram::gathered(e, x, b, h, rowToken), delta,
                        /*fromO=*/false, lse, dO);
  }

  /// `for t0 in [lo, hi) step tokens` over query tiles carrying (d_k, d_v),
  /// restricted to the tiles that start in [from, to) (the same grid of
  /// tiles from lo, so the segments of a block partition its tiles); `body`
  /// adds the contribution of the tile from t0 (loading it with queryTile,
  /// which it may skip).
  std::pair<Value, Value>
  loop(Value lo, Value hi, int64_t tokens, std::pair<Value, Value> init,
       function_ref<std::pair<Value, Value>(Value, Value, Value)> body) {
    if (from) {
      Value skip = e.ceilDiv(e.max(e.sub(from, lo), e.index(0)), tokens);
      lo = e.add(lo, e.mul(skip, e.index(tokens)));
      hi = e.min(hi, to);
    }
    ValueRange r = e.loop(lo, hi, e.index(tokens), {init.first, init.second},
                          [&](Value t0, ValueRange acc) -> SmallVector<Value> {
                            auto [dk, dv] = body(t0, acc[0], acc[1]);
                            return {dk, dv};
                          });
    return {r[0], r[1]};
  }
};

/// Rewrites an attention grad op into its d_q grid (query tiles of
/// `queryTokens`, `keysOf` visiting a tile's keys) and its d_k/d_v grid
/// (key blocks of `keyTokens`, `queriesOf` visiting the query tiles that see
/// a block).
///
/// The first `segmentedBlocks` key blocks (all when negative) are seen by
/// every later query: one program over all of them would be the kernel's
/// tail (compressed attention has few key blocks, T/d keys; selection's
/// initial blocks are chosen by every token). With `segments` > 1 their
/// queries are split into `segments` ranges of T/segments tokens: a program
/// per (block, segment) stores f32 partial d_k, d_v, and a final program
/// per block adds the partials in segment order (deterministic) or, for a
/// block that was not segmented, takes the main program's result.
template <typename OpT>
LogicalResult tileAttentionGrad(
    OpT op, PatternRewriter &rewriter, int64_t queryTokens, int64_t keyTokens,
    int64_t segments, int64_t segmentedBlocks,
    function_ref<Value(GradTile &, Value)> keysOf,
    function_ref<std::pair<Value, Value>(KeyBlock &, Value, Value)> queriesOf) {
  FailureOr<AttentionOperands> x = AttentionOperands::of(op, rewriter);
  if (failed(x))
    return failure();
  if (segmentedBlocks == 0)
    segments = 1;
  Location loc = op.getLoc();
  Emitter outer{rewriter, loc};
  Value batch = outer.dim(x->q, 0), numTokens = outer.dim(x->q, 1);
  Value heads = outer.dim(x->q, 2), numKeys = outer.dim(x->k, 1);
  Type elt = tensorTy(x->q).getElementType();
  auto empty = [&](Value like, Value tokens) {
    return emptyLike(rewriter, loc, tensorTy(like), {{0, batch}, {1, tokens}});
  };

  // The d_q programs also store Delta = rowsum(d_o * o) (f32, laid out like
  // lse): the d_k/d_v programs, which visit each query tile once per key
  // block it sees, load it instead of o.
  Value dqGrid[3] = {batch, heads, outer.ceilDiv(numTokens, queryTokens)};
  Value dqInit[2] = {empty(op.getDQ(), numTokens),
                     empty(op.getLse(), numTokens)};
  auto dq = buildProgram(
      rewriter, op, dqGrid, dqInit,
      [&](Emitter &e, ValueRange ids, ValueRange outArgs) {
        Value t0 = e.mul(ids[2], e.index(queryTokens));
        GradTile t = GradTile::of(
            AttentionProgram::at(e, *x, ids[0], ids[1], t0, queryTokens),
            op.getO(), /*fromO=*/true, op.getLse(), op.getDO());
        t.p.storeRows(t.delta, outArgs[1]);
        Value acc = keysOf(t, e.constTensor({t.p.rows, x->dk}, 0.0f));
        t.p.storeRows(e.truncTo(e.scaled(acc, x->scale), elt), outArgs[0]);
      });
  Value delta = dq.getResult(1);

  // One key block's d_k, d_v over the queries in [from, to), unscaled f32.
  auto keyBlock = [&](Emitter &e, Value b, Value h, Value j0, Value from,
                      Value to) {
    Value zero = e.index(0);
    KeyBlock kb{e,  *x,        delta,     op.getLse(), op.getDO(), b,    h,
                j0, numTokens, keyTokens, {},          {},         from, to};
    kb.kTile = e.load(x->k, {b, j0, h, zero}, {1}, {keyTokens, x->dk});
    kb.vTile = e.load(x->v, {b, j0, h, zero}, {1}, {keyTokens, x->dv});
    return queriesOf(kb, e.constTensor({keyTokens, x->dk}, 0.0f),
                     e.constTensor({keyTokens, x->dv}, 0.0f));
  };
  // d_k, d_v as stored: d_k scaled, both rounded to the element type.
  auto finished = [&](Emitter &e, Value dk, Value dv) -> SmallVector<Value> {
    return {e.truncTo(e.scaled(dk, x->scale), elt), e.truncTo(dv, elt)};
  };
  auto store = [](Emitter &e, ValueRange tiles, ValueRange outArgs,
                  ValueRange at, int64_t rowDim) {
    for (auto [value, out] : llvm::zip(tiles, outArgs))
      tile::StoreOp::create(e.b, e.loc, value, out, at,
                            ArrayRef<int64_t>{rowDim});
  };

  Value numBlocks = outer.ceilDiv(numKeys, keyTokens);
  Value dkvInit[2] = {empty(op.getDK(), numKeys), empty(op.getDV(), numKeys)};
  bool allSegmented = segments > 1 && segmentedBlocks < 0;
  Value segmented = segments == 1 ? outer.index(0)
                    : segmentedBlocks < 0
                        ? numBlocks
                        : outer.min(numBlocks, outer.index(segmentedBlocks));
  Value mainK, mainV;
  if (!allSegmented) {
    // The blocks left whole, over all their queries (a segmented block's
    // range here is empty).
    Value dkvGrid[3] = {batch, heads, numBlocks};
    auto dkv = buildProgram(
        rewriter, op, dkvGrid, dkvInit,
        [&](Emitter &e, ValueRange ids, ValueRange outArgs) {
          Value b = ids[0], h = ids[1];
          Value j0 = e.mul(ids[2], e.index(keyTokens));
          Value from, to;
          if (segments > 1) {
            from = e.index(0);
            to = arith::SelectOp::create(
                e.b, e.loc, e.cmp(arith::CmpIPredicate::sge, ids[2], segmented),
                numTokens, from);
          }
          auto [dk, dv] = keyBlock(e, b, h, j0, from, to);
          store(e, finished(e, dk, dv), outArgs, {b, j0, h, e.index(0)}, 1);
        });
    if (segments == 1) {
      rewriter.replaceOp(op,
                         {dq.getResult(0), dkv.getResult(0), dkv.getResult(1)});
      return success();
    }
    mainK = dkv.getResult(0);
    mainV = dkv.getResult(1);
  }

  // Partial sums of the segmented blocks: [B, segments, keys, H, D] f32.
  int64_t segKeys = segmentedBlocks < 0 ? tensorTy(x->k).getDimSize(1)
                                        : segmentedBlocks * keyTokens;
  auto partialType = [&](int64_t dim) {
    return RankedTensorType::get({tensorTy(x->k).getDimSize(0), segments,
                                  segKeys, tensorTy(x->k).getDimSize(2), dim},
                                 rewriter.getF32Type());
  };
  SmallVector<std::pair<int64_t, Value>> partialDyn = {{0, batch}};
  if (segmentedBlocks < 0)
    partialDyn.push_back({2, numKeys});
  Value partialInit[2] = {
      emptyLike(rewriter, loc, partialType(x->dk), partialDyn),
      emptyLike(rewriter, loc, partialType(x->dv), partialDyn)};
  Value segLen = outer.ceilDiv(numTokens, segments);
  Value partGrid[3] = {batch, heads,
                       outer.mul(segmented, outer.index(segments))};
  auto partial = buildProgram(
      rewriter, op, partGrid, partialInit,
      [&](Emitter &e, ValueRange ids, ValueRange outArgs) {
        Value b = ids[0], h = ids[1], zero = e.index(0);
        Value s = e.rem(ids[2], e.index(segments));
        Value j0 =
            e.mul(e.divFloor(ids[2], e.index(segments)), e.index(keyTokens));
        Value from = e.mul(s, segLen);
        auto [dk, dv] = keyBlock(e, b, h, j0, from, e.add(from, segLen));
        store(e, {dk, dv}, outArgs, {b, s, j0, h, zero}, 2);
      });

  Value finalGrid[3] = {batch, heads, numBlocks};
  Value finalInit[2] = {empty(op.getDK(), numKeys), empty(op.getDV(), numKeys)};
  auto final = buildProgram(
      rewriter, op, finalGrid, finalInit,
      [&](Emitter &e, ValueRange ids, ValueRange outArgs) {
        Value b = ids[0], h = ids[1], zero = e.index(0);
        Value j0 = e.mul(ids[2], e.index(keyTokens));
        auto sum = [&]() -> SmallVector<Value> {
          return e.loop(zero, e.index(segments), e.index(1),
                        {e.constTensor({keyTokens, x->dk}, 0.0f),
                         e.constTensor({keyTokens, x->dv}, 0.0f)},
                        [&](Value s, ValueRange acc) -> SmallVector<Value> {
                          SmallVector<Value> at = {b, s, j0, h, zero};
                          return {
                              e.addF(acc[0], e.load(partial.getResult(0), at,
                                                    {2}, {keyTokens, x->dk})),
                              e.addF(acc[1], e.load(partial.getResult(1), at,
                                                    {2}, {keyTokens, x->dv}))};
                        });
        };
        auto summed = [&]() -> SmallVector<Value> {
          SmallVector<Value> acc = sum();
          return finished(e, acc[0], acc[1]);
        };
        SmallVector<Value> at = {b, j0, h, zero};
        SmallVector<Value> dkv;
        if (allSegmented) {
          dkv = summed();
        } else {
          ValueRange r = e.ifElse(
              e.cmp(arith::CmpIPredicate::slt, ids[2], segmented), summed,
              {e.load(mainK, at, {1}, {keyTokens, x->dk}),
               e.load(mainV, at, {1}, {keyTokens, x->dv})});
          dkv.assign(r.begin(), r.end());
        }
        store(e, dkv, outArgs, at, 1);
      });
  rewriter.replaceOp(op,
                     {dq.getResult(0), final.getResult(0), final.getResult(1)});
  return success();
}

struct TileWindowAttentionGrad : TilePattern<WindowAttentionGradOp> {
  using TilePattern::TilePattern;
  LogicalResult matchAndRewrite(WindowAttentionGradOp op,
                                PatternRewriter &rewriter) const override {
    int64_t w = op.getConfig().getW(), bn = sizes.keyTokens;
    int64_t bm = sizes.queryTokensFor(AttentionOperands::groupSize(op));
    // A key block's queries are a window's worth: never segmented.
    return tileAttentionGrad(
        op, rewriter, bm, bn, /*segments=*/1, /*segmentedBlocks=*/0,
        [&](GradTile &t, Value dq) {
          Emitter &e = t.p.e;
          auto [lo, hi] = windowKeyRange(e, t.p.t0, bm, t.p.numTokens, w, bn);
          return e.loop(lo, hi, e.index(bn), dq,
                        [&](Value j0, ValueRange acc) -> SmallVector<Value> {
                          auto [kTile, vTile] = t.p.loadKV(j0, bn);
                          return {t.addDq(acc[0], kTile, vTile,
                                          t.p.windowMask(j0, bn, w))};
                        })[0];
        },
        [&](KeyBlock &kb, Value dk, Value dv) {
          auto [lo, hi] =
              windowQueryRange(kb.e, kb.j0, kb.n, kb.numTokens, w, bm);
          return kb.loop(lo, hi, bm, {dk, dv},
                         [&](Value t0, Value dk, Value dv) {
                           GradTile t = kb.queryTile(t0, bm);
                           return t.addDkv(dk, dv, kb.kTile, kb.vTile,
                                           t.p.windowMask(kb.j0, kb.n, w,
                                                          /*keyMajor=*/true));
                         });
        });
  }
};

struct TileCompressedAttentionGrad : TilePattern<CompressedAttentionGradOp> {
  using TilePattern::TilePattern;
  LogicalResult matchAndRewrite(CompressedAttentionGradOp op,
                                PatternRewriter &rewriter) const override {
    int64_t l = op.getConfig().getL(), d = op.getConfig().getD();
    int64_t bn = sizes.keyTokens;
    int64_t bm = sizes.queryTokensFor(AttentionOperands::groupSize(op));
    Value kc = op.getK();
    // Every key block is seen by all later queries.
    return tileAttentionGrad(
        op, rewriter, bm, bn, sizes.gradSegments, /*segmentedBlocks=*/-1,
        [&](GradTile &t, Value dq) {
          Emitter &e = t.p.e;
          Value numCompressed = e.dim(kc, 1);
          auto [lo, hi] = compressedKeyRange(e, t.p.t0, bm, t.p.numTokens,
                                             numCompressed, l, d);
          return e.loop(lo, hi, e.index(bn), dq,
                        [&](Value i0, ValueRange acc) -> SmallVector<Value> {
                          auto [kTile, vTile] = t.p.loadKV(i0, bn);
                          Value mask = t.p.compressedMask(i0, bn, l, d);
                          return {t.addDq(acc[0], kTile, vTile, mask)};
                        })[0];
        },
        [&](KeyBlock &kb, Value dk, Value dv) {
          auto [lo, hi] =
              compressedQueryRange(kb.e, kb.j0, kb.numTokens, l, d, bm);
          return kb.loop(lo, hi, bm, {dk, dv},
                         [&](Value t0, Value dk, Value dv) {
                           GradTile t = kb.queryTile(t0, bm);
                           Value mask = t.p.compressedMask(
                               kb.j0, kb.n, l, d, /*keyMajor=*/true);
                           return t.addDkv(dk, dv, kb.kTile, kb.vTile, mask);
                         });
        });
  }
};

/// The d_k/d_v loop of a selected block over the tokens that chose it, `bm`
/// per query tile (an inverted block-to-query index built on the fly, so a
/// tile holds bm chosen tokens rather than the one or two of bm consecutive
/// tokens that chose a block far back). It scans the block's queries
/// `chunk` tokens at a time: `hits(tokens)` ([chunk] f32) counts the idx
/// slots of each token (i32 [chunk]) that hold the block, 1 for a token that
/// chose it (SPEC's idx has no repeats; a token counts once whatever its
/// count). tile.compact packs the chosen tokens after the `q` tokens
/// still queued from earlier chunks; each full tile of the queue is visited
/// (`visit(rowToken, dk, dv)`, rowToken as AttentionProgram::gathered takes
/// it), the rest (fewer than bm tokens, carried as tile rows) waits for the
/// next chunk, and the last partial tile is visited when the scan ends.
/// Tokens enter tiles in increasing order, so the sums are deterministic.
/// Only the tokens in the block's segment [from, to), when set, count.
std::pair<Value, Value> chosenTokensLoop(
    KeyBlock &kb, int64_t bm, int64_t chunk, std::pair<Value, Value> init,
    function_ref<Value(Value)> hits,
    function_ref<std::pair<Value, Value>(Value, Value, Value)> visit) {
  Emitter &e = kb.e;
  int64_t rows = bm * kb.x.g;
  auto select = [&](Value cond, Value x, Value y) {
    return arith::SelectOp::create(e.b, e.loc, cond, x, y);
  };
  auto andI = [&](Value x, Value y) {
    return arith::AndIOp::create(e.b, e.loc, x, y);
  };
  // Tokens before j0 cannot choose the block (causal).
  Value from = kb.from ? e.max(kb.from, kb.j0) : kb.j0;
  Value hi = kb.from ? e.min(kb.numTokens, kb.to) : kb.numTokens;
  Value first = e.mul(e.divFloor(from, e.index(chunk)), e.index(chunk));
  Value slot = e.range(e.index(0), rows, kb.x.g); // r / G

  // One iteration past the last chunk flushes the queue (its hits are all
  // 0), so that the tile visit is emitted once: each emitted product stages
  // its register operands in shared memory regions of its own.
  Value chunks = e.ceilDiv(e.max(e.sub(hi, first), e.index(0)), chunk);
  ValueRange r = e.loop(
      e.index(0), e.add(chunks, e.index(1)), e.index(1),
      {init.first, init.second, e.splatI32(-1, {rows}), e.index(0)},
      [&](Value i, ValueRange acc) -> SmallVector<Value> {
        Value c0 = e.add(first, e.mul(i, e.index(chunk)));
        Value flush = e.cmp(arith::CmpIPredicate::eq, i, chunks);
        Value token = e.range(c0, chunk);
        Value inRange = andI(e.cmp(arith::CmpIPredicate::sge, token,
                                   e.splat(e.toI32(from), {chunk})),
                             e.cmp(arith::CmpIPredicate::slt, token,
                                   e.splat(e.toI32(hi), {chunk})));
        Value chosen = andI(
            inRange,
            arith::CmpFOp::create(e.b, e.loc, arith::CmpFPredicate::OGT,
                                  hits(token), e.constTensor({chunk}, 0.0f)));
        Value pending = acc[2], queued = acc[3];
        Value queuedRows = e.splat(e.toI32(queued), {rows});
        // The tokens of queue tile s, and the chunk's chosen count: position
        // u = s * bm + r / G of the queue is a queued token when u < q,
        // else the chunk's chosen token of rank u - q (-1 past the last).
        auto queueTile = [&](Value s) -> std::pair<Value, Value> {
          Value u = arith::AddIOp::create(
              e.b, e.loc, slot,
              e.splat(e.toI32(e.mul(s, e.index(bm))), {rows}));
          auto compact = tile::CompactOp::create(
              e.b, e.loc, token, chosen,
              arith::SubIOp::create(e.b, e.loc, u, queuedRows));
          return {select(e.cmp(arith::CmpIPredicate::slt, u, queuedRows),
                         pending, compact.getResult()),
                  compact.getCount()};
        };
        auto [head, count] = queueTile(e.index(0));
        Value total = e.add(queued, count);
        // Full tiles, and when flushing the partial one too. Each visit
        // compacts the next tile; after the last, that is the queue left.
        Value whole = e.divFloor(total, e.index(bm));
        Value all = e.ceilDiv(total, bm);
        Value full = select(flush, all, whole);
        ValueRange sums =
            e.loop(e.index(0), full, e.index(1), {acc[0], acc[1], head},
                   [&](Value s, ValueRange it) -> SmallVector<Value> {
                     auto [dk, dv] = visit(it[2], it[0], it[1]);
                     return {dk, dv, queueTile(e.add(s, e.index(1))).first};
                   });
        return {sums[0], sums[1], sums[2],
                e.max(e.sub(total, e.mul(full, e.index(bm))), e.index(0))};
      });
  return {r[0], r[1]};
}

struct TileSelectedAttentionGrad : TilePattern<SelectedAttentionGradOp> {
  using TilePattern::TilePattern;
  LogicalResult matchAndRewrite(SelectedAttentionGradOp op,
                                PatternRewriter &rewriter) const override {
    int64_t lSel = op.getConfig().getLSel(), n = op.getConfig().getN();
    int64_t tokens = sizes.selectedQueryTokens;
    int64_t bm = sizes.selectedGradTokensFor(AttentionOperands::groupSize(op));
    Value idx = op.getIdx();
    // The initial blocks are chosen by every later token.
    return tileAttentionGrad(
        op, rewriter, tokens, /*keyTokens=*/lSel, sizes.initGradSegments,
        op.getConfig().getInit(),
        // d_q: as the forward, each token's blocks update only its rows.
        [&](GradTile &t, Value dq) {
          Emitter &e = t.p.e;
          Value zero = e.index(0);
          Value idxTile =
              e.load(idx, {t.p.b, t.p.t0, t.p.h, zero}, {1}, {tokens, n});
          return e.loop(
              zero, e.index(tokens), e.index(1), dq,
              [&](Value r, ValueRange acc) -> SmallVector<Value> {
                Value token = e.add(t.p.t0, r);
                Value otherRows = e.cmp(arith::CmpIPredicate::ne, t.p.rowToken,
                                        e.splat(e.toI32(token), {t.p.rows}));
                return e.loop(
                    zero, e.index(n), e.index(1), acc,
                    [&](Value slot, ValueRange acc) -> SmallVector<Value> {
                      Value j = tensor::ExtractOp::create(e.b, e.loc, idxTile,
                                                          ValueRange{r, slot});
                      Value valid = arith::AndIOp::create(
                          e.b, e.loc,
                          e.cmp(
                              arith::CmpIPredicate::sge, j,
                              arith::ConstantIntOp::create(e.b, e.loc, 0, 32)),
                          e.cmp(arith::CmpIPredicate::slt, token,
                                t.p.numTokens));
                      return e.ifElse(
                          valid,
                          [&]() -> SmallVector<Value> {
                            Value start = e.mul(e.toIndex(j), e.index(lSel));
                            auto [kTile, vTile] = t.p.loadKV(start, lSel);
                            Value mask =
                                t.p.selectedMask(start, lSel, otherRows);
                            return {t.addDq(acc[0], kTile, vTile, mask)};
                          },
                          acc);
                    });
              })[0];
        },
        // d_k, d_v of block j = j0 / l_sel: the queries from j0 on whose
        // idx row holds j, bm of them per tile.
        [&](KeyBlock &kb, Value dk, Value dv) {
          Emitter &e = kb.e;
          Value j = e.toI32(e.divFloor(kb.j0, e.index(lSel)));
          // The slots of each token's idx row that hold j.
          auto hits = [&](Value tokens) {
            int64_t rows = tensorTy(tokens).getDimSize(0);
            Value chosen = e.gather(idx, {kb.b, kb.h}, tokens, {1}, {rows, n});
            return rowSum(
                e, arith::UIToFPOp::create(
                       e.b, e.loc,
                       RankedTensorType::get({rows, n}, e.b.getF32Type()),
                       e.cmp(arith::CmpIPredicate::eq, chosen,
                             e.splat(j, {rows, n}))));
          };
          return chosenTokensLoop(
              kb, bm, /*chunk=*/std::max<int64_t>(64, bm), {dk, dv}, hits,
              [&](Value rowToken, Value dk, Value dv) {
                GradTile t = kb.gatheredTile(rowToken);
                Value empty = e.cmp(arith::CmpIPredicate::slt, rowToken,
                                    e.splatI32(0, {t.p.rows}));
                Value mask =
                    t.p.selectedMask(kb.j0, kb.n, empty, /*keyMajor=*/true);
                return t.addDkv(dk, dv, kb.kTile, kb.vTile, mask);
              });
        });
  }
};

//===----------------------------------------------------------------------===//
// Compression
//===----------------------------------------------------------------------===//

/// d_input[u] sums, over the compressed tokens i whose block covers u, the
/// gradient of row r = u - i*d of that block: d_kc[i] . W_r^T (linear) or
/// d_kc[i] / l (mean). Writing u = m*d + s (phase s < d), the covering
/// blocks are i = m - a for a < l/d, at r = a*d + s. Every token is written
/// by one program, which loops over a:
///   linear  a program owns one phase s of `bm` strides m in [m0, m0 + bm):
///           d_kc rows [m0 - a, m0 - a + bm) times W_{a*d+s}^T, a [bm, D]
///           product, stored with row stride d (tokens m*d + s). Keeping
///           the phases apart keeps the tile at [bm, D] whatever d is (all
///           d phases side by side would be [bm, d*D]: 2048 columns, over
///           500 KiB of shared memory, at the paper's d = 16 and D = 128);
///   mean    a program owns `bm` whole strides: d_kc row m - a repeated for
///           the d tokens of stride m (a gather with row indices
///           m0 - a + j floordiv d).
/// Rows below 0 or from Nc on read zeros, which is exactly "no block".
///
/// d_weight rows r*D .. r*D + D are sum over (batch, i) of
/// (k[i*d + r] + PE[r])^T . d_kc[i], one program per (head, r); d_pe[r] is
/// sum over (batch, i) of d_kc[i] . W_r^T = (sum of d_kc) . W_r^T, so the
/// same program sums d_kc on the way and writes d_pe[r] too.
struct TileCompressGrad : TilePattern<CompressGradOp> {
  using TilePattern::TilePattern;
  LogicalResult matchAndRewrite(CompressGradOp op,
                                PatternRewriter &rewriter) const override {
    auto inType = tensorTy(op.getInput());
    int64_t dd = inType.getDimSize(3);
    if (ShapedType::isDynamic(dd))
      return rewriter.notifyMatchFailure(op, "tiles need a static D");
    ConfigAttr cfg = op.getConfig();
    int64_t l = cfg.getL(), d = cfg.getD(), bc = sizes.compressTokens;
    bool linear = op.getMode() == CompressMode::Linear;
    Value input = op.getInput(), dKc = op.getDResult(), weight = op.getWeight();
    Type elt = inType.getElementType();
    Location loc = op.getLoc();
    Emitter outer{rewriter, loc};
    Value batch = outer.dim(input, 0), numTokens = outer.dim(input, 1);
    Value heads = outer.dim(input, 2), numCompressed = outer.dim(dKc, 1);

    // d_input. Linear: compress-tokens strides of one phase per program;
    // mean: compress-tokens source tokens, rounded up to whole strides.
    int64_t phases = linear ? d : 1;
    int64_t bm = linear ? bc : std::max<int64_t>(1, bc / d);
    int64_t rows = linear ? bm : bm * d;
    Value strides = outer.ceilDiv(numTokens, d);
    Value grid[3] = {
        batch, heads,
        outer.mul(outer.ceilDiv(strides, bm), outer.index(phases))};
    auto dInput = buildProgram(
        rewriter, op, grid,
        emptyLike(rewriter, loc, inType, {{0, batch}, {1, numTokens}}),
        [&](Emitter &e, ValueRange ids, ValueRange outArgs) {
          Value b = ids[0], h = ids[1], zero = e.index(0);
          Value s = e.rem(ids[2], e.index(phases));
          Value m0 = e.mul(e.divFloor(ids[2], e.index(phases)), e.index(bm));
          auto gatherRows = [&](Value first, int64_t n, int64_t divisor) {
            return e.gather(dKc, {b, h}, e.range(first, n, divisor), {1},
                            {n, dd});
          };
          Value acc = e.loop(
              zero, e.index(l / d), e.index(1), e.constTensor({rows, dd}, 0.0f),
              [&](Value a, ValueRange acc) -> SmallVector<Value> {
                Value first = e.sub(m0, a);
                if (!linear)
                  return {e.addF(acc[0], e.extF32(gatherRows(first, rows, d)))};
                Value r = e.add(e.mul(a, e.index(d)), s);
                Value w = e.load(weight, {h, e.mul(r, e.index(dd)), zero}, {1},
                                 {dd, dd});
                return {e.addF(acc[0], e.dot(gatherRows(first, bm, 1), w,
                                             /*rhsTransposed=*/true))};
              })[0];
          if (!linear)
            acc = e.scaled(acc, 1.0f / l);
          tile::StoreOp::create(
              e.b, e.loc, e.truncTo(acc, elt), outArgs[0],
              ValueRange{b, e.add(e.mul(m0, e.index(d)), s), h, zero},
              ArrayRef<int64_t>{1}, phases);
        });
    SmallVector<Value> results = {dInput.getResult(0)};
    if (!linear) {
      rewriter.replaceOp(op, results);
      return success();
    }

    // d_weight and d_pe, per (head, position r).
    Value pe = op.getPe();
    SmallVector<Value> outs = {
        emptyLike(rewriter, loc, tensorTy(weight), {{0, heads}})};
    if (pe)
      outs.push_back(emptyLike(rewriter, loc, tensorTy(pe), {{0, heads}}));
    Value paramGrid[2] = {heads, outer.index(l)};
    auto dParams = buildProgram(
        rewriter, op, paramGrid, outs,
        [&](Emitter &e, ValueRange ids, ValueRange outArgs) {
          Value h = ids[0], r = ids[1], zero = e.index(0);
          SmallVector<Value> init = {e.constTensor({dd, dd}, 0.0f)};
          if (pe)
            init.push_back(e.constTensor({1, dd}, 0.0f));
          Value ones = e.constTensor({1, bc}, 1.0f);
          Value peRow; // PE[r] for every row, f32 [bc, D]
          if (pe)
            peRow =
                e.extF32(e.perColumn(e.load(pe, {h, r, zero}, {2}, {dd}), bc));
          ValueRange acc = e.loop(
              zero, batch, e.index(1), init,
              [&](Value b, ValueRange acc) -> SmallVector<Value> {
                return e.loop(
                    zero, numCompressed, e.index(bc), acc,
                    [&](Value i0, ValueRange acc) -> SmallVector<Value> {
                      Value g = e.extF32(
                          e.load(dKc, {b, i0, h, zero}, {1}, {bc, dd}));
                      // Row c is k[(i0 + c)*d + r].
                      Value pos = arith::AddIOp::create(
                          e.b, e.loc,
                          arith::MulIOp::create(e.b, e.loc, e.range(i0, bc),
                                                e.splatI32(d, {bc})),
                          e.splat(e.toI32(r), {bc}));
                      Value x =
                          e.extF32(e.gather(input, {b, h}, pos, {1}, {bc, dd}));
                      if (pe)
                        x = e.addF(x, peRow);
                      SmallVector<Value> next = {e.addF(
                          acc[0], e.dot(x, g, false, /*lhsTransposed=*/true))};
                      if (pe)
                        next.push_back(e.addF(acc[1], e.dot(ones, g, false)));
                      return next;
                    });
              });
          Value rowStart = e.mul(r, e.index(dd));
          tile::StoreOp::create(e.b, e.loc, e.truncTo(acc[0], elt), outArgs[0],
                                ValueRange{h, rowStart, zero},
                                ArrayRef<int64_t>{1});
          if (pe) {
            Value wr = e.load(weight, {h, rowStart, zero}, {1}, {dd, dd});
            Value dpe = e.dot(acc[1], wr, /*rhsTransposed=*/true);
            tile::StoreOp::create(e.b, e.loc, e.truncTo(dpe, elt), outArgs[1],
                                  ValueRange{h, r, zero}, ArrayRef<int64_t>{1});
          }
        });
    llvm::append_range(results, dParams.getResults());
    rewriter.replaceOp(op, results);
    return success();
  }
};

//===----------------------------------------------------------------------===//
// Combine
//===----------------------------------------------------------------------===//

/// d_gates[c] = rowsum(d_o * o_c) and d_c = g_c * d_o for the three branches
/// c; one program per TileSizes::headTokensFor tokens, all their heads as
/// rows.
struct TileCombineGrad : TilePattern<CombineGradOp> {
  using TilePattern::TilePattern;
  LogicalResult matchAndRewrite(CombineGradOp op,
                                PatternRewriter &rewriter) const override {
    auto oType = tensorTy(op.getDO());
    int64_t hq = oType.getDimSize(2), dv = oType.getDimSize(3);
    if (ShapedType::isDynamic(hq) || ShapedType::isDynamic(dv))
      return rewriter.notifyMatchFailure(op, "tiles need static HQ and Dv");
    int64_t tokens = sizes.headTokensFor(hq), rows = tokens * hq;
    Location loc = op.getLoc();
    Emitter outer{rewriter, loc};
    Value gates = op.getGates();
    Value batch = outer.dim(gates, 0), t = outer.dim(gates, 1);
    SmallVector<std::pair<int64_t, Value>> dyn = {{0, batch}, {1, t}};
    Value outs[4] = {emptyLike(rewriter, loc, tensorTy(gates), dyn),
                     emptyLike(rewriter, loc, oType, dyn),
                     emptyLike(rewriter, loc, oType, dyn),
                     emptyLike(rewriter, loc, oType, dyn)};
    Value grid[2] = {batch, outer.ceilDiv(t, tokens)};
    Value branches[3] = {op.getCmp(), op.getSlc(), op.getWin()};
    Type elt = oType.getElementType();

    auto program = buildProgram(
        rewriter, op, grid, outs,
        [&](Emitter &e, ValueRange ids, ValueRange outArgs) {
          Value b = ids[0], zero = e.index(0);
          Value t0 = e.mul(ids[1], e.index(tokens));
          Value dO = e.extF32(e.load(op.getDO(), {b, t0, zero, zero},
                                     kTokenHeadRows, {rows, dv}));
          for (auto [c, branch] : llvm::enumerate(branches)) {
            Value column = e.index(static_cast<int64_t>(c));
            Value gate =
                e.load(gates, {b, t0, zero, column}, kTokenHeadRows, {rows});
            Value o =
                e.load(branch, {b, t0, zero, zero}, kTokenHeadRows, {rows, dv});
            Value dGate = rowSum(e, e.mulF(dO, e.extF32(o)));
            tile::StoreOp::create(e.b, e.loc, e.truncTo(dGate, elt), outArgs[0],
                                  ValueRange{b, t0, zero, column},
                                  kTokenHeadRows);
            Value dBranch = e.mulF(e.extF32(e.perRow(gate, dv)), dO);
            tile::StoreOp::create(e.b, e.loc, e.truncTo(dBranch, elt),
                                  outArgs[1 + c], ValueRange{b, t0, zero, zero},
                                  kTokenHeadRows);
          }
        });
    rewriter.replaceOp(op, program.getResults());
    return success();
  }
};

} // namespace

void tiling::populateBackwardTilingPatterns(RewritePatternSet &patterns,
                                            TileSizes sizes) {
  patterns.add<TileWindowAttentionGrad, TileCompressedAttentionGrad,
               TileSelectedAttentionGrad, TileCompressGrad, TileCombineGrad>(
      patterns.getContext(), sizes);
}
