//===- Pipelines.cpp - tile programs to the LLVM dialect ------------------===//
//
// nsa-lower-tile-to-llvm: the CPU path that lets CI (no GPU) execute tile
// programs with mlir-runner.
//
//===----------------------------------------------------------------------===//

#include "nsa/Dialect/Tile/Transforms/Passes.h"

#include "mlir/Conversion/AffineToStandard/AffineToStandard.h"
#include "mlir/Conversion/ArithToLLVM/ArithToLLVM.h"
#include "mlir/Conversion/BufferizationToMemRef/BufferizationToMemRef.h"
#include "mlir/Conversion/ControlFlowToLLVM/ControlFlowToLLVM.h"
#include "mlir/Conversion/FuncToLLVM/ConvertFuncToLLVMPass.h"
#include "mlir/Conversion/MathToLLVM/MathToLLVM.h"
#include "mlir/Conversion/MemRefToLLVM/MemRefToLLVM.h"
#include "mlir/Conversion/ReconcileUnrealizedCasts/ReconcileUnrealizedCasts.h"
#include "mlir/Conversion/SCFToControlFlow/SCFToControlFlow.h"
#include "mlir/Dialect/Arith/Transforms/Passes.h"
#include "mlir/Dialect/Bufferization/Pipelines/Passes.h"
#include "mlir/Dialect/Bufferization/Transforms/Passes.h"
#include "mlir/Dialect/Linalg/Passes.h"
#include "mlir/Dialect/MemRef/Transforms/Passes.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"

using namespace mlir;

void mlir::nsa::tile::buildLowerTileToLLVMPipeline(OpPassManager &pm) {
  // Tensors: tile ops, then the arith/math they and the caller left on
  // tensors, become loops and linalg.
  pm.addPass(createConvertTileToSCF());
  pm.addPass(createConvertElementwiseToLinalgPass());
  // bf16 extf/truncf as integer ops: the CPU then needs no conversion
  // libcalls.
  arith::ArithExpandOpsPassOptions expand;
  expand.includeBf16 = true;
  pm.addPass(arith::createArithExpandOpsPass(expand));

  // Buffers: functions take and return identity-layout memrefs, and every
  // allocation (tiles are allocated inside the grid loops) is freed. Loops
  // over key blocks carry freshly computed tiles (the softmax state), which
  // are new allocations rather than the loop's own buffers.
  bufferization::OneShotBufferizePassOptions bufferize;
  bufferize.bufferizeFunctionBoundaries = true;
  bufferize.allowReturnAllocsFromLoops = true;
  bufferize.functionBoundaryTypeConversion =
      bufferization::LayoutMapOption::IdentityLayoutMap;
  pm.addPass(bufferization::createOneShotBufferizePass(bufferize));
  bufferization::buildBufferDeallocationPipeline(pm);
  // Deallocation leaves bufferization.clone where a function returns a
  // buffer it does not own.
  pm.addPass(createConvertBufferizationToMemRefPass());
  pm.addPass(createConvertLinalgToLoopsPass());

  // LLVM.
  pm.addPass(memref::createExpandStridedMetadataPass());
  pm.addPass(createLowerAffinePass());
  pm.addPass(createFinalizeMemRefToLLVMConversionPass());
  pm.addPass(createSCFToControlFlowPass());
  pm.addPass(createConvertControlFlowToLLVMPass());
  pm.addPass(createConvertMathToLLVMPass());
  pm.addPass(createArithToLLVMConversionPass());
  pm.addPass(createConvertFuncToLLVMPass());
  pm.addPass(createReconcileUnrealizedCastsPass());
}

void mlir::nsa::tile::registerTilePipelines() {
  PassPipelineRegistration<>(
      "nsa-lower-tile-to-llvm",
      "Lower functions on tensors with tile programs to the LLVM dialect "
      "(CPU execution)",
      buildLowerTileToLLVMPipeline);
}
