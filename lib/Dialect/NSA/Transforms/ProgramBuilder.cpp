//===- ProgramBuilder.cpp - program skeletons
//-------------------------------===//

#include "ProgramBuilder.h"

using namespace mlir;
using namespace mlir::nsa;
using namespace mlir::nsa::tiling;

tile::ProgramOp tiling::buildProgram(
    OpBuilder &b, Operation *op, ValueRange grid, ValueRange outs,
    function_ref<void(Emitter &, ValueRange ids, ValueRange outArgs)> body) {
  Location loc = op->getLoc();
  auto program = tile::ProgramOp::create(
      b, loc, grid, outs, b.getStringAttr(op->getName().stripDialect()),
      /*min_resident=*/IntegerAttr());
  SmallVector<Type> argTypes(grid.size(), b.getIndexType());
  llvm::append_range(argTypes, outs.getTypes());
  SmallVector<Location> argLocs(argTypes.size(), loc);
  OpBuilder::InsertionGuard guard(b);
  Block *block = b.createBlock(&program.getBody(), {}, argTypes, argLocs);
  tile::ProgramOp::ensureTerminator(program.getBody(), b, loc);
  b.setInsertionPoint(block->getTerminator());
  Emitter e{b, loc};
  body(e, program.getIds(), program.getOutArgs());
  return program;
}

/// An empty tensor of `type` whose dynamic sizes come from `like`'s.
Value tiling::emptyLike(OpBuilder &b, Location loc, RankedTensorType type,
                        ArrayRef<std::pair<int64_t, Value>> dynamicFrom) {
  SmallVector<Value> dynSizes;
  for (auto [i, size] : llvm::enumerate(type.getShape()))
    if (ShapedType::isDynamic(size))
      for (auto [d, v] : dynamicFrom)
        if (d == static_cast<int64_t>(i))
          dynSizes.push_back(v);
  return tensor::EmptyOp::create(b, loc, type, dynSizes);
}
