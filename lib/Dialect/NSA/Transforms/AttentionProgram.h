//===- AttentionProgram.h - what attention programs share -------*- C++ -*-===//
//
// The query tile of a grouped attention program and the one mask per branch
// that says which keys a query sees. The forward programs (TileAttention.cpp)
// and the backward ones (TileBackward.cpp) are both written on top of these,
// so a gradient flows through exactly the keys the forward attended to.
//
//===----------------------------------------------------------------------===//

#ifndef NSA_LIB_DIALECT_NSA_TRANSFORMS_ATTENTIONPROGRAM_H
#define NSA_LIB_DIALECT_NSA_TRANSFORMS_ATTENTIONPROGRAM_H

#include "ProgramBuilder.h"

namespace mlir::nsa::tiling {

/// The operands and static sizes of one grouped attention op, forward or
/// backward: q [B, T, HKV, G, Dk] (after nsa-group-gqa), k [B, Tk, HKV, Dk],
/// v [B, Tk, HKV, Dv].
struct AttentionOperands {
  Value q, k, v;
  int64_t g, dk, dv;
  float scale; ///< The softmax scale (the config's, or 1/sqrt(Dk)).

  /// The operands of `op`, or a match failure when it is not grouped or a
  /// tile size (G, Dk, Dv) is dynamic.
  template <typename OpT>
  static FailureOr<AttentionOperands> of(OpT op, PatternRewriter &rewriter) {
    auto qType = tensorTy(op.getQ());
    if (qType.getRank() != 5)
      return rewriter.notifyMatchFailure(op, "run nsa-group-gqa first");
    int64_t g = qType.getDimSize(3), dk = qType.getDimSize(4);
    int64_t dv = tensorTy(op.getV()).getDimSize(3);
    if (ShapedType::isDynamic(g) || ShapedType::isDynamic(dk) ||
        ShapedType::isDynamic(dv))
      return rewriter.notifyMatchFailure(op, "tiles need static G, Dk, Dv");
    return AttentionOperands{op.getQ(),
                             op.getK(),
                             op.getV(),
                             g,
                             dk,
                             dv,
                             static_cast<float>(op.getConfig().getScaleOr(dk))};
  }

  /// G of a query-side op, 1 before nsa-group-gqa (which `of` then rejects).
  template <typename OpT> static int64_t groupSize(OpT op) {
    auto q = tensorTy(op.getQ());
    return q.getRank() == 5 && !q.isDynamicDim(3) ? q.getDimSize(3) : 1;
  }
};

/// One query tile of a grouped attention program: its rows are `tokens`
/// query tokens times the G heads of KV head `h`, either consecutive from t0
/// or gathered (any tokens, each with its G heads).
struct AttentionProgram {
  Emitter e;
  AttentionOperands x;
  Value b, h, t0;  ///< t0 is null for a gathered tile
  Value numTokens; ///< T
  int64_t tokens, rows;
  Value qTile;    ///< [rows, Dk]
  Value rowToken; ///< [rows] i32: the query token of each row (-1: none)
  /// Set for a gathered tile: [rows] i32, each row's t * G + g (negative
  /// for an empty row), the tile.gather index of the query-side tensors.
  Value rowIndex;

  /// The tile of `tokens` tokens from t0; loads its q rows.
  static AttentionProgram at(Emitter e, const AttentionOperands &x, Value b,
                             Value h, Value t0, int64_t tokens);
  /// The tile of the tokens `rowToken` ([tokens * G] i32, each token
  /// repeated for its G rows; -1 for an empty row, which reads zeros);
  /// gathers its q rows.
  static AttentionProgram gathered(Emitter e, const AttentionOperands &x,
                                   Value b, Value h, Value rowToken);

  /// The tile of another query-side tensor ([B, T, HKV, G, C] as
  /// [rows, C], or [B, T, HKV, G] as [rows]: o, lse, d_o); rows past T (and
  /// empty rows of a gathered tile) read zeros.
  Value loadRows(Value src);
  /// The inverse of loadRows into a program output (consecutive tiles).
  void storeRows(Value tile, Value dest);

  /// `n` key and value rows from key `start` of k and v.
  std::pair<Value, Value> loadKV(Value start, int64_t n);
  /// `q . k^T` of a key tile: f32 [rows, n]; `keyMajor`: its transpose
  /// `k . q^T`, [n, rows].
  Value products(Value kTile, bool keyMajor = false);
  /// The factor of base-2 scores: softmax scale * log2(e).
  float log2Scale() const { return static_cast<float>(x.scale * M_LOG2E); }
  /// Base-2 scores `log2Scale() * q . k^T` of a key tile, unmasked (the
  /// layout of `products`).
  Value scores(Value kTile, bool keyMajor = false);

  /// Which of the `n` keys from `keyStart` each row does not see (i1
  /// [rows, n], true = excluded; `keyMajor`: [n, rows], the transpose),
  /// one function per branch (SPEC.md 2, 4, 5).
  /// A row before T never sees a key past the end (causality), and the
  /// compressed branch's mask, which selection reuses, excludes keys before
  /// 0; rows past T are not special: their tiles read zeros (finite scores,
  /// no gradient) and their outputs are not stored.
  Value windowMask(Value keyStart, int64_t n, int64_t w,
                   bool keyMajor = false);
  Value compressedMask(Value keyStart, int64_t n, int64_t l, int64_t d,
                       bool keyMajor = false);
  /// `otherRows` (i1 [rows]) excludes whole rows: the rows of other query
  /// tokens (forward: the block is one token's choice) or the rows whose
  /// token did not choose the block (backward).
  Value selectedMask(Value keyStart, int64_t n, Value otherRows,
                     bool keyMajor = false);

  /// Matrices of each element's query token (or its row's value of
  /// `queries`, [rows] i32) and key position: [rows, n], or [n, rows] when
  /// `keyMajor`.
  std::pair<Value, Value> positions(Value keyStart, int64_t n, bool keyMajor) {
    return positions(rowToken, keyStart, n, keyMajor);
  }
  std::pair<Value, Value> positions(Value queries, Value keyStart, int64_t n,
                                    bool keyMajor);
  /// `x` ([rows] per query row) spread over the n keys like the scores.
  Value perQuery(Value x, int64_t n, bool keyMajor) {
    return keyMajor ? e.perColumn(x, n) : e.perRow(x, n);
  }
};

/// The first token of query tile `id` of `numTiles` tiles of `tokens`,
/// numbered from the end: the GPU starts programs in grid order, so a
/// program whose work grows with t then ends the launch on the shortest
/// tiles instead of a last wave of the longest (select_blocks: 0.73 -> 0.71
/// ms at T = 16384; compressed attention measured slower, 0.88 -> 0.91).
Value heaviestFirstStart(Emitter &e, Value id, Value numTiles, int64_t tokens);

/// An nsa.combine that a branch's program computes too (TileAttention.cpp),
/// and which of its branches (0 cmp, 1 slc, 2 win) that program's is.
struct FusedCombine {
  CombineOp op;
  int64_t branch = -1;
  explicit operator bool() const { return static_cast<bool>(op); }
};
/// The nsa.combine whose branch `branch` (an attention op) computes, when
/// its program can compute the combination too: it takes `branch`'s o
/// (through nsa-group-gqa's ungrouping) once, and its other operands exist
/// before `branch` runs (nsa-decompose emits the selected branch last).
/// Empty otherwise.
FusedCombine fusableCombine(Operation *branch);

/// The key range a query tile [t0, t0 + tokens) sees, and its inverse, the
/// query range that sees a key block [j0, j0 + n), per branch; `step` rounds
/// the start down to a multiple of the loop's step (block-aligned tiles).
/// Window: keys [t0 - w + 1, t0 + tokens); queries [j0, j0 + n + w - 1).
std::pair<Value, Value> windowKeyRange(Emitter &e, Value t0, int64_t tokens,
                                       Value numTokens, int64_t w,
                                       int64_t step);
std::pair<Value, Value> windowQueryRange(Emitter &e, Value j0, int64_t n,
                                         Value numTokens, int64_t w,
                                         int64_t step);
/// Compressed: token t sees compressed token i iff i*d + l - 1 <= t.
std::pair<Value, Value> compressedKeyRange(Emitter &e, Value t0, int64_t tokens,
                                           Value numTokens, Value numCompressed,
                                           int64_t l, int64_t d);
std::pair<Value, Value> compressedQueryRange(Emitter &e, Value i0,
                                             Value numTokens, int64_t l,
                                             int64_t d, int64_t step);

} // namespace mlir::nsa::tiling

#endif // NSA_LIB_DIALECT_NSA_TRANSFORMS_ATTENTIONPROGRAM_H
