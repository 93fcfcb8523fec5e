//===- TranslateToPTX.cpp - gpu.module -> PTX text ------------------------===//
//
// The last leg of every kernel's way down: convert-gpu-to-nvvm, attach an
// NVVM target for the chip, and gpu-module-to-binary{format=isa}, whose
// object is the PTX text. MLIR's own serializer drives LLVM's NVPTX backend,
// so no CUDA toolkit is needed to get here.
//
//===----------------------------------------------------------------------===//

#include "nsa/Target/PTX.h"

#include "mlir/Conversion/GPUToNVVM/GPUToNVVMPass.h"
#include "mlir/Conversion/Passes.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/GPU/Transforms/Passes.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Target/LLVM/NVVM/Target.h"
#include "mlir/Target/LLVMIR/Dialect/All.h"
#include "mlir/Tools/mlir-translate/Translation.h"
#include "llvm/Support/CommandLine.h"

using namespace mlir;

void nsa::registerPTXDialects(DialectRegistry &registry) {
  registerAllDialects(registry);
  registerAllExtensions(registry);
  registerAllToLLVMIRTranslations(registry);
  NVVM::registerNVVMTargetInterfaceExternalModels(registry);
}

LogicalResult nsa::translateToPTX(ModuleOp module, const PTXOptions &options,
                                  std::string &ptx) {
  auto gpuModules = llvm::to_vector(module.getOps<gpu::GPUModuleOp>());
  if (gpuModules.size() != 1)
    return module.emitError() << "nsa-to-ptx expects exactly one gpu.module, "
                                 "found "
                              << gpuModules.size();
  StringRef name = gpuModules.front().getName();

  PassManager pm(module->getName());
  ConvertGpuOpsToNVVMOpsOptions toNVVM;
  toNVVM.useBarePtrCallConv = true;
  pm.addNestedPass<gpu::GPUModuleOp>(createConvertGpuOpsToNVVMOps(toNVVM));
  GpuNVVMAttachTargetOptions target;
  target.chip = options.chip;
  target.features = options.features;
  target.optLevel = options.optLevel;
  pm.addPass(createGpuNVVMAttachTarget(target));
  GpuModuleToBinaryPassOptions toBinary;
  toBinary.compilationTarget = "isa";
  pm.addPass(createGpuModuleToBinaryPass(toBinary));
  if (failed(pm.run(module)))
    return failure();

  auto binary = module.lookupSymbol<gpu::BinaryOp>(name);
  if (!binary || binary.getObjects().size() != 1)
    return module.emitError("nsa-to-ptx: gpu-module-to-binary produced no "
                            "single object for @")
           << name;
  ptx += cast<gpu::ObjectAttr>(binary.getObjects()[0]).getObject().getValue();
  return success();
}

void nsa::registerToPTXTranslation() {
  static llvm::cl::opt<std::string> chip(
      "nsa-chip", llvm::cl::desc("GPU chip for --nsa-to-ptx"),
      llvm::cl::init(PTXOptions().chip));
  static llvm::cl::opt<std::string> features(
      "nsa-ptx-features",
      llvm::cl::desc("PTX target features for --nsa-to-ptx"),
      llvm::cl::init(PTXOptions().features));
  TranslateFromMLIRRegistration registration(
      "nsa-to-ptx", "lower the module's gpu.module to PTX text",
      [](Operation *op, raw_ostream &os) -> LogicalResult {
        auto module = dyn_cast<ModuleOp>(op);
        if (!module)
          return op->emitError("nsa-to-ptx expects a builtin.module");
        PTXOptions options;
        options.chip = chip;
        options.features = features;
        std::string ptx;
        if (failed(nsa::translateToPTX(module, options, ptx)))
          return failure();
        os << ptx;
        return success();
      },
      nsa::registerPTXDialects);
}
