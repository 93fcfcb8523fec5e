//===- Pipelines.cpp - nsa ops to GPU kernels -----------------------------===//
//
// nsa-to-gpu: the registered way from nsa ops to kernels. nsa-translate
// --nsa-to-ptx then writes the kernels' PTX, the manifest and host plan.
//
//===----------------------------------------------------------------------===//

#include "nsa/Dialect/NSA/Transforms/Passes.h"
#include "nsa/Dialect/Tile/Transforms/Passes.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;

void mlir::nsa::buildNSAToGPUPipeline(OpPassManager &pm,
                                      const NSAToGPUOptions &options) {
  pm.addPass(createNSADecompose());
  pm.addPass(createNSAGroupGQA());
  NSATileOptions tile;
  tile.target = "sm90a";
  tile.queryTokens = options.queryTokens;
  tile.scanRows = options.scanRows;
  tile.keyTokens = options.keyTokens;
  tile.selectedQueryTokens = options.selectedQueryTokens;
  tile.compressTokens = options.compressTokens;
  tile.selectBlocks = options.selectBlocks;
  tile.selectResident = options.selectResident;
  tile.gradSegments = options.gradSegments;
  tile.initGradSegments = options.initGradSegments;
  tile.selectedGradTokens = options.selectedGradTokens;
  pm.addPass(createNSATile(tile));
  pm.addPass(createCSEPass());
  tile::ConvertTileToGPUOptions gpu;
  gpu.minWarps = options.minWarps;
  gpu.maxWarps = options.maxWarps;
  gpu.wgmma = options.wgmma;
  pm.addPass(tile::createConvertTileToGPU(gpu));
  // The kernels repeat index arithmetic per element: fold and share it.
  pm.addNestedPass<gpu::GPUModuleOp>(createCanonicalizerPass());
  pm.addNestedPass<gpu::GPUModuleOp>(createCSEPass());
}

void mlir::nsa::registerNSAPipelines() {
  PassPipelineRegistration<NSAToGPUOptions>(
      "nsa-to-gpu",
      "Compile nsa ops to GPU kernels (sm_90a tiles): decompose, group GQA, "
      "tile, convert-tile-to-gpu; the host function is left as tile.launch "
      "ops for nsa-translate",
      buildNSAToGPUPipeline);
}
