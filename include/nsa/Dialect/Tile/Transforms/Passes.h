//===- Passes.h - tile dialect passes ---------------------------*- C++ -*-===//

#ifndef NSA_DIALECT_TILE_TRANSFORMS_PASSES_H
#define NSA_DIALECT_TILE_TRANSFORMS_PASSES_H

#include "mlir/Pass/Pass.h"

namespace mlir::nsa::tile {

#define GEN_PASS_DECL
#include "nsa/Dialect/Tile/Transforms/Passes.h.inc"

/// Lowers a module of functions on tensors that contain tile programs to the
/// LLVM dialect, for running on the CPU (mlir-runner, CI without a GPU).
void buildLowerTileToLLVMPipeline(OpPassManager &pm);

/// Registers `nsa-lower-tile-to-llvm` (buildLowerTileToLLVMPipeline).
void registerTilePipelines();

#define GEN_PASS_REGISTRATION
#include "nsa/Dialect/Tile/Transforms/Passes.h.inc"

} // namespace mlir::nsa::tile

#endif // NSA_DIALECT_TILE_TRANSFORMS_PASSES_H
