//===- HeadGroups.h - query heads grouped by KV head ------------*- C++ -*-===//
//
// nsa-group-gqa's layout: [B, T, HQ, ...] as [B, T, HKV, G, ...], dimension
// 2 split in two. Shared by that pass and by the tiling patterns that bring
// another query-side tensor into a grouped program.
//
//===----------------------------------------------------------------------===//

#ifndef NSA_LIB_DIALECT_NSA_TRANSFORMS_HEADGROUPS_H
#define NSA_LIB_DIALECT_NSA_TRANSFORMS_HEADGROUPS_H

#include "mlir/Dialect/Tensor/IR/Tensor.h"

namespace mlir::nsa {

/// The reassociation of a [B, T, HQ, ...] tensor of `rank` dimensions.
inline SmallVector<ReassociationIndices> headSplit(int64_t rank) {
  SmallVector<ReassociationIndices> groups = {{0}, {1}, {2, 3}};
  for (int64_t i = 4; i <= rank; ++i)
    groups.push_back({i});
  return groups;
}

inline RankedTensorType groupedType(Type type, int64_t hkv, int64_t g) {
  auto t = cast<RankedTensorType>(type);
  SmallVector<int64_t> shape(t.getShape());
  shape[2] = hkv;
  shape.insert(shape.begin() + 3, g);
  return RankedTensorType::get(shape, t.getElementType());
}

/// [B, T, HQ, ...] -> [B, T, HKV, G, ...] (folds an ungroup).
inline Value groupHeads(OpBuilder &b, Location loc, Value v, int64_t hkv,
                        int64_t g) {
  auto type = cast<RankedTensorType>(v.getType());
  return b.createOrFold<tensor::ExpandShapeOp>(loc, groupedType(type, hkv, g),
                                               v, headSplit(type.getRank()));
}

/// [B, T, HKV, G, ...] -> [B, T, HQ, ...].
inline Value ungroupHeads(OpBuilder &b, Location loc, Value v) {
  auto type = cast<RankedTensorType>(v.getType());
  return b.createOrFold<tensor::CollapseShapeOp>(loc, v,
                                                 headSplit(type.getRank() - 1));
}

} // namespace mlir::nsa

#endif // NSA_LIB_DIALECT_NSA_TRANSFORMS_HEADGROUPS_H
