//===- AttentionProgram.cpp - what attention programs share ---------------===//

#include "AttentionProgram.h"

#include <cmath>
#include <limits>

using namespace mlir;
using namespace mlir::nsa;
using namespace mlir::nsa::tiling;

AttentionProgram AttentionProgram::at(Emitter e, const AttentionOperands &x,
                                      Value b, Value h, Value t0,
                                      int64_t tokens) {
  int64_t rows = tokens * x.g;
  Value zero = e.index(0);
  AttentionProgram p{e, x, b, h, t0, e.dim(x.q, 1), tokens, rows, {}, {}, {}};
  p.qTile = e.load(x.q, {b, t0, h, zero, zero}, {1, 3}, {rows, x.dk});
  p.rowToken = e.range(t0, rows, x.g);
  return p;
}

AttentionProgram AttentionProgram::gathered(Emitter e,
                                            const AttentionOperands &x, Value b,
                                            Value h, Value rowToken) {
  int64_t rows = tensorTy(rowToken).getDimSize(0);
  AttentionProgram p{e,          x,    b,  h,  {}, e.dim(x.q, 1),
                     rows / x.g, rows, {}, {}, {}};
  p.rowToken = rowToken;
  // t * G + g, where g = r - G * (r floordiv G); an empty row (t = -1)
  // gives g - G < 0, so it reads zeros.
  Value g = arith::SubIOp::create(
      e.b, e.loc, e.range(e.index(0), rows),
      arith::MulIOp::create(e.b, e.loc, e.range(e.index(0), rows, x.g),
                            e.splatI32(x.g, {rows})));
  p.rowIndex = arith::AddIOp::create(
      e.b, e.loc,
      arith::MulIOp::create(e.b, e.loc, rowToken, e.splatI32(x.g, {rows})), g);
  p.qTile = p.loadRows(x.q);
  return p;
}

Value AttentionProgram::loadRows(Value src) {
  auto type = tensorTy(src);
  Value zero = e.index(0);
  SmallVector<int64_t> shape = {rows};
  if (type.getRank() == 5)
    shape.push_back(type.getDimSize(4));
  if (rowIndex)
    return e.gather(src, {b, h}, rowIndex, {1, 3}, shape);
  SmallVector<Value> at = {b, t0, h, zero};
  if (type.getRank() == 5)
    at.push_back(zero);
  return e.load(src, at, {1, 3}, shape);
}

void AttentionProgram::storeRows(Value tile, Value dest) {
  assert(!rowIndex && "storeRows of a gathered tile");
  Value zero = e.index(0);
  SmallVector<Value> at = {b, t0, h, zero};
  if (tensorTy(dest).getRank() == 5)
    at.push_back(zero);
  tile::StoreOp::create(e.b, e.loc, tile, dest, at, ArrayRef<int64_t>{1, 3});
}

std::pair<Value, Value> AttentionProgram::loadKV(Value start, int64_t n) {
  Value zero = e.index(0);
  return {e.load(x.k, {b, start, h, zero}, {1}, {n, x.dk}),
          e.load(x.v, {b, start, h, zero}, {1}, {n, x.dv})};
}

Value AttentionProgram::products(Value kTile, bool keyMajor) {
  return keyMajor ? e.dot(kTile, qTile, /*rhsTransposed=*/true)
                  : e.dot(qTile, kTile, /*rhsTransposed=*/true);
}

Value AttentionProgram::scores(Value kTile, bool keyMajor) {
  return e.scaled(products(kTile, keyMajor), log2Scale());
}

std::pair<Value, Value> AttentionProgram::positions(Value queries,
                                                    Value keyStart, int64_t n,
                                                    bool keyMajor) {
  if (keyMajor)
    return {e.perColumn(queries, n), e.perRow(e.range(keyStart, n), rows)};
  return {e.perRow(queries, n), e.perColumn(e.range(keyStart, n), rows)};
}

// The masks compare each element once: whatever depends on its row or its
// column alone is folded into a per-row or per-column value first (the
// kernels compute those once per row or column slot). Keys past the end
// need no test of their own: a real row (t < T) cannot see them by
// causality, and rows past T read zeros and are never stored.

Value AttentionProgram::windowMask(Value keyStart, int64_t n, int64_t w,
                                   bool keyMajor) {
  auto [row, col] = positions(keyStart, n, keyMajor);
  ArrayRef<int64_t> shape = tensorTy(row).getShape();
  // t - w < u <= t as one unsigned range test: u - t + w - 1 in [0, w).
  Value shifted = arith::SubIOp::create(
      e.b, e.loc,
      arith::AddIOp::create(e.b, e.loc, col, e.splatI32(w - 1, shape)), row);
  return e.cmp(arith::CmpIPredicate::ugt, shifted, e.splatI32(w - 1, shape));
}

Value AttentionProgram::compressedMask(Value keyStart, int64_t n, int64_t l,
                                       int64_t d, bool keyMajor) {
  auto [row, col] = positions(keyStart, n, keyMajor);
  ArrayRef<int64_t> shape = tensorTy(row).getShape();
  // Compressed token i is complete at t when i*d + l - 1 <= t. Selection's
  // token windows start before token 0 (block 0's overlap): those never are.
  Value lastCovered = arith::SelectOp::create(
      e.b, e.loc, e.cmp(arith::CmpIPredicate::slt, col, e.splatI32(0, shape)),
      e.splatI32(std::numeric_limits<int32_t>::max(), shape),
      arith::AddIOp::create(
          e.b, e.loc,
          arith::MulIOp::create(e.b, e.loc, col, e.splatI32(d, shape)),
          e.splatI32(l - 1, shape)));
  return e.cmp(arith::CmpIPredicate::sgt, lastCovered, row);
}

Value AttentionProgram::selectedMask(Value keyStart, int64_t n,
                                     Value otherRows, bool keyMajor) {
  // An excluded row sees no key (u > -1 for every key u).
  Value lastSeen = arith::SelectOp::create(
      e.b, e.loc, otherRows, e.splatI32(-1, {rows}), rowToken);
  auto [row, col] = positions(lastSeen, keyStart, n, keyMajor);
  return e.cmp(arith::CmpIPredicate::sgt, col, row);
}

Value tiling::heaviestFirstStart(Emitter &e, Value id, Value numTiles,
                                 int64_t tokens) {
  return e.mul(e.sub(e.sub(numTiles, e.index(1)), id), e.index(tokens));
}

std::pair<Value, Value> tiling::windowKeyRange(Emitter &e, Value t0,
                                               int64_t tokens, Value numTokens,
                                               int64_t w, int64_t step) {
  Value lo = e.max(e.index(0), e.sub(t0, e.index(w - 1)));
  lo = e.mul(e.divFloor(lo, e.index(step)), e.index(step));
  return {lo, e.min(numTokens, e.add(t0, e.index(tokens)))};
}

std::pair<Value, Value> tiling::windowQueryRange(Emitter &e, Value j0,
                                                 int64_t n, Value numTokens,
                                                 int64_t w, int64_t step) {
  // The block's last key j0 + n - 1 is in the window of queries up to
  // j0 + n - 1 + w - 1; none before j0 sees any of it (causal).
  Value lo = e.mul(e.divFloor(j0, e.index(step)), e.index(step));
  return {lo, e.min(numTokens, e.add(j0, e.index(n + w - 1)))};
}

std::pair<Value, Value> tiling::compressedKeyRange(Emitter &e, Value t0,
                                                   int64_t tokens,
                                                   Value numTokens,
                                                   Value numCompressed,
                                                   int64_t l, int64_t d) {
  // The last row's token sees compressed tokens i with i*d + l - 1 <= last,
  // i.e. i < (last + 1 - l)/d + 1 when last + 1 >= l; clamp to [0, Nc].
  Value end = e.min(numTokens, e.add(t0, e.index(tokens)));
  Value visible =
      e.add(e.divFloor(e.sub(end, e.index(l)), e.index(d)), e.index(1));
  return {e.index(0), e.max(e.index(0), e.min(numCompressed, visible))};
}

std::pair<Value, Value> tiling::compressedQueryRange(Emitter &e, Value i0,
                                                     Value numTokens, int64_t l,
                                                     int64_t d, int64_t step) {
  // The first query that sees compressed token i0 is i0*d + l - 1.
  Value first = e.add(e.mul(i0, e.index(d)), e.index(l - 1));
  return {e.mul(e.divFloor(first, e.index(step)), e.index(step)), numTokens};
}
