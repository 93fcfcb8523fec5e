//===- TileRewrites.h - helpers shared by the tile lowerings ----*- C++ -*-===//
//
// What the CPU (convert-tile-to-scf) and GPU (convert-tile-to-gpu) lowerings
// share: small builders on tile tensors and the decomposition of the
// streaming-softmax ops into the other tile ops, so that the -inf guards of
// online softmax are written once for both targets.
//
//===----------------------------------------------------------------------===//

#ifndef NSA_LIB_DIALECT_TILE_TRANSFORMS_TILEREWRITES_H
#define NSA_LIB_DIALECT_TILE_TRANSFORMS_TILEREWRITES_H

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/PatternMatch.h"

#include <limits>

namespace mlir::nsa::tile::rewrites {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

RankedTensorType tensorType(Value v);

/// A float tensor of `type` with every element `value`.
Value splat(OpBuilder &b, Location loc, RankedTensorType type, double value);

/// `value` (a float or a tensor of floats) converted to element type `to`.
Value castFloat(OpBuilder &b, Location loc, Value value, FloatType to);

/// `row` ([M]) repeated along the columns of `like` ([M, N]).
Value broadcastRows(OpBuilder &b, Location loc, Value row, Value like);

/// tile.online_softmax and tile.softmax_finalize spelled out with
/// tile.reduce, tile.broadcast, tile.dot, tile.masked_fill and arith/math on
/// tensors (conversion patterns: the ops are illegal afterwards).
void populateDecomposeSoftmaxPatterns(RewritePatternSet &patterns);

} // namespace mlir::nsa::tile::rewrites

#endif // NSA_LIB_DIALECT_TILE_TRANSFORMS_TILEREWRITES_H
