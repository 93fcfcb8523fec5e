//===- Passes.h - NSA dialect passes ----------------------------*- C++ -*-===//

#ifndef NSA_DIALECT_NSA_TRANSFORMS_PASSES_H
#define NSA_DIALECT_NSA_TRANSFORMS_PASSES_H

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Pass/Pass.h"
#include "mlir/Pass/PassManager.h"
#include "nsa/Dialect/Tile/IR/TileDialect.h"

namespace mlir::nsa {

#define GEN_PASS_DECL
#include "nsa/Dialect/NSA/Transforms/Passes.h.inc"

struct NSAToGPUOptions : public PassPipelineOptions<NSAToGPUOptions> {
  // Tile sizes of nsa-tile (0: the sm90a defaults).
  Option<int64_t> queryTokens{*this, "query-tokens",
                              llvm::cl::desc("nsa-tile query-tokens"),
                              llvm::cl::init(0)};
  Option<int64_t> scanRows{*this, "scan-rows",
                            llvm::cl::desc("nsa-tile scan-rows"),
                            llvm::cl::init(0)};
  Option<int64_t> keyTokens{*this, "key-tokens",
                            llvm::cl::desc("nsa-tile key-tokens"),
                            llvm::cl::init(0)};
  Option<int64_t> selectedQueryTokens{
      *this, "selected-query-tokens",
      llvm::cl::desc("nsa-tile selected-query-tokens"), llvm::cl::init(0)};
  Option<int64_t> compressTokens{*this, "compress-tokens",
                                 llvm::cl::desc("nsa-tile compress-tokens"),
                                 llvm::cl::init(0)};
  Option<int64_t> selectBlocks{*this, "select-blocks",
                               llvm::cl::desc("nsa-tile select-blocks"),
                               llvm::cl::init(0)};
  Option<int64_t> selectResident{*this, "select-resident",
                                 llvm::cl::desc("nsa-tile select-resident"),
                                 llvm::cl::init(0)};
  Option<int64_t> gradSegments{*this, "grad-segments",
                               llvm::cl::desc("nsa-tile grad-segments"),
                               llvm::cl::init(0)};
  Option<int64_t> initGradSegments{
      *this, "init-grad-segments",
      llvm::cl::desc("nsa-tile init-grad-segments"), llvm::cl::init(0)};
  Option<int64_t> selectedGradTokens{
      *this, "selected-grad-tokens",
      llvm::cl::desc("nsa-tile selected-grad-tokens"), llvm::cl::init(0)};
  Option<int64_t> minWarps{*this, "min-warps",
                           llvm::cl::desc("convert-tile-to-gpu min-warps"),
                           llvm::cl::init(1)};
  Option<int64_t> maxWarps{*this, "max-warps",
                           llvm::cl::desc("convert-tile-to-gpu max-warps"),
                           llvm::cl::init(4)};
  Option<bool> wgmma{*this, "wgmma",
                     llvm::cl::desc("convert-tile-to-gpu wgmma (sm_90a)"),
                     llvm::cl::init(true)};
};

/// nsa ops -> tile programs for sm_90a -> GPU kernels and tile.launch ops.
void buildNSAToGPUPipeline(OpPassManager &pm,
                           const NSAToGPUOptions &options = {});

/// Registers `nsa-to-gpu` (buildNSAToGPUPipeline).
void registerNSAPipelines();

#define GEN_PASS_REGISTRATION
#include "nsa/Dialect/NSA/Transforms/Passes.h.inc"

} // namespace mlir::nsa

#endif // NSA_DIALECT_NSA_TRANSFORMS_PASSES_H
