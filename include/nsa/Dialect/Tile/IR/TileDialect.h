//===- TileDialect.h - block-level programs ---------------------*- C++ -*-===//

#ifndef NSA_DIALECT_TILE_IR_TILEDIALECT_H
#define NSA_DIALECT_TILE_IR_TILEDIALECT_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "nsa/Dialect/Tile/IR/TileOpsDialect.h.inc"
#include "nsa/Dialect/Tile/IR/TileEnums.h.inc"

#define GET_OP_CLASSES
#include "nsa/Dialect/Tile/IR/TileOps.h.inc"

#endif // NSA_DIALECT_TILE_IR_TILEDIALECT_H
