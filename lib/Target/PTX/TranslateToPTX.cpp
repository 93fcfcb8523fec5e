//===- TranslateToPTX.cpp - gpu.module -> PTX text ------------------------===//
//
// The last leg of every kernel's way down: scf to cf, convert-gpu-to-nvvm
// (which also lowers arith, cf, index, math and memref through their
// ConvertToLLVM interfaces), attach an NVVM target for the chip, and
// gpu-module-to-binary{format=isa}, whose object is the PTX text. MLIR's own
// serializer drives LLVM's NVPTX backend, so no CUDA toolkit is needed to
// get here. With --nsa-manifest (and --nsa-plan) it also describes the
// host function's launches for the runtime (HostPlan.h); with --nsa-cubin
// the CUDA toolkit's ptxas assembles the PTX ahead of time (the driver would
// otherwise compile it on every machine's first load: 15 to 100 s for a
// backward module on an H100).
//
//===----------------------------------------------------------------------===//

#include "nsa/Target/PTX.h"

#include "nsa/Dialect/Tile/IR/TileDialect.h"
#include "nsa/Target/HostPlan.h"

#include "mlir/Conversion/GPUToNVVM/GPUToNVVMPass.h"
#include "mlir/Conversion/Passes.h"
#include "mlir/Conversion/ReconcileUnrealizedCasts/ReconcileUnrealizedCasts.h"
#include "mlir/Conversion/SCFToControlFlow/SCFToControlFlow.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/GPU/Transforms/Passes.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/FileUtilities.h"
#include "mlir/Target/LLVM/NVVM/Target.h"
#include "mlir/Target/LLVMIR/Dialect/All.h"
#include "mlir/Tools/mlir-translate/Translation.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FileUtilities.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Process.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/ToolOutputFile.h"

using namespace mlir;

void nsa::registerPTXDialects(DialectRegistry &registry) {
  registerAllDialects(registry);
  registry.insert<tile::TileDialect>();
  registerAllExtensions(registry);
  registerAllToLLVMIRTranslations(registry);
  NVVM::registerNVVMTargetInterfaceExternalModels(registry);
}

/// The kernels' index width: 32 bits when the module launches them and
/// every tensor a launch passes is static with at most 2^30 elements, so
/// that an offset, even of a tile row past a tensor's end, fits in 31 bits;
/// else 64. The kernels' address arithmetic and bounds checks then take one
/// instruction each instead of two.
static unsigned kernelIndexBitwidth(ModuleOp module) {
  bool launches = false, small = true;
  module.walk([&](nsa::tile::LaunchOp launch) {
    launches = true;
    for (Type type : launch->getOperandTypes())
      if (auto t = dyn_cast<RankedTensorType>(type))
        small &= t.hasStaticShape() && t.getNumElements() <= (int64_t(1) << 30);
  });
  return launches && small ? 32 : 64;
}

LogicalResult nsa::translateToPTX(ModuleOp module, const PTXOptions &options,
                                  std::string &ptx) {
  auto gpuModules = llvm::to_vector(module.getOps<gpu::GPUModuleOp>());
  if (gpuModules.size() != 1)
    return module.emitError() << "nsa-to-ptx expects exactly one gpu.module, "
                                 "found "
                              << gpuModules.size();
  StringRef name = gpuModules.front().getName();

  // Lower a module holding a copy of the gpu.module alone: a host function
  // beside it has tensors and tile.launch ops that nothing here lowers, and
  // the caller's module stays as it was for the manifest and the plan.
  OwningOpRef<ModuleOp> kernels = ModuleOp::create(module.getLoc());
  (*kernels)->setAttrs(module->getAttrDictionary());
  OpBuilder::atBlockEnd(kernels->getBody()).clone(*gpuModules.front());

  PassManager pm(module->getName());
  pm.addNestedPass<gpu::GPUModuleOp>(createSCFToControlFlowPass());
  ConvertGpuOpsToNVVMOpsOptions toNVVM;
  toNVVM.useBarePtrCallConv = true;
  toNVVM.indexBitwidth = kernelIndexBitwidth(module);
  pm.addNestedPass<gpu::GPUModuleOp>(createConvertGpuOpsToNVVMOps(toNVVM));
  pm.addPass(createReconcileUnrealizedCastsPass());
  GpuNVVMAttachTargetOptions target;
  target.chip = options.chip;
  target.features = options.features;
  target.optLevel = options.optLevel;
  pm.addPass(createGpuNVVMAttachTarget(target));
  GpuModuleToBinaryPassOptions toBinary;
  toBinary.compilationTarget = "isa";
  pm.addPass(createGpuModuleToBinaryPass(toBinary));
  if (failed(pm.run(*kernels)))
    return failure();

  auto binary = kernels->lookupSymbol<gpu::BinaryOp>(name);
  if (!binary || binary.getObjects().size() != 1)
    return module.emitError("nsa-to-ptx: gpu-module-to-binary produced no "
                            "single object for @")
           << name;
  ptx += cast<gpu::ObjectAttr>(binary.getObjects()[0]).getObject().getValue();
  return success();
}

LogicalResult nsa::describeHost(ModuleOp module, const HostFiles &files,
                                StringRef target, std::string &manifest,
                                std::string &plan) {
  if (files.manifest.empty()) {
    if (!files.plan.empty())
      return module.emitError("--nsa-plan needs --nsa-manifest: the plan "
                              "names the manifest of its kernels");
    return success();
  }
  // The runtime's rule: the suffix says what the driver is given.
  if (!StringRef(files.moduleFile).ends_with(".ptx") &&
      !StringRef(files.moduleFile).ends_with(".cubin"))
    return module.emitError("--nsa-module-file must name a .ptx or .cubin "
                            "file, got '")
           << files.moduleFile << "'";
  FailureOr<HostPlan> hostPlan = buildHostPlan(module);
  if (failed(hostPlan))
    return failure();
  llvm::raw_string_ostream manifestText(manifest);
  if (failed(writeKernelManifest(*hostPlan, target, files.moduleFile,
                                 manifestText)))
    return failure();
  if (!files.plan.empty()) {
    llvm::raw_string_ostream planText(plan);
    writeHostPlan(*hostPlan, llvm::sys::path::filename(files.manifest),
                  planText);
  }
  return success();
}

/// ptxas: $NSA_PTXAS, else PATH, $CUDA_HOME/bin, /usr/local/cuda/bin.
static FailureOr<std::string> findPtxas(ModuleOp module) {
  if (std::optional<std::string> forced =
          llvm::sys::Process::GetEnv("NSA_PTXAS")) {
    if (!llvm::sys::fs::can_execute(*forced))
      return module.emitError("--nsa-cubin: $NSA_PTXAS ('")
             << *forced << "') is not an executable";
    return *forced;
  }
  SmallVector<std::string> hints;
  if (std::optional<std::string> home = llvm::sys::Process::GetEnv("CUDA_HOME"))
    hints.push_back(*home + "/bin");
  hints.push_back("/usr/local/cuda/bin");
  if (auto found = llvm::sys::findProgramByName("ptxas"))
    return *found;
  SmallVector<StringRef> paths(hints.begin(), hints.end());
  if (auto found = llvm::sys::findProgramByName("ptxas", paths))
    return *found;
  return module.emitError("--nsa-cubin needs ptxas (the CUDA toolkit): none "
                          "on PATH, in $CUDA_HOME/bin or /usr/local/cuda/bin "
                          "(or set $NSA_PTXAS)");
}

LogicalResult nsa::assembleCubin(ModuleOp module, StringRef ptx, StringRef chip,
                                 StringRef cubinPath) {
  FailureOr<std::string> ptxas = findPtxas(module);
  if (failed(ptxas))
    return failure();
  SmallString<128> input, log;
  int fd;
  if (llvm::sys::fs::createTemporaryFile("nsa-kernels", "ptx", fd, input) ||
      llvm::sys::fs::createTemporaryFile("nsa-ptxas", "log", log))
    return module.emitError("--nsa-cubin: cannot create a temporary file");
  llvm::FileRemover removeInput(input), removeLog(log);
  {
    llvm::raw_fd_ostream os(fd, /*shouldClose=*/true);
    os << ptx;
  }
  std::string arch = ("-arch=" + chip).str();
  SmallVector<StringRef> args = {*ptxas, arch, input, "-o", cubinPath};
  std::optional<StringRef> redirects[] = {std::nullopt, log.str(), log.str()};
  std::string error;
  int rc =
      llvm::sys::ExecuteAndWait(*ptxas, args, std::nullopt, redirects,
                                /*SecondsToWait=*/0, /*MemoryLimit=*/0, &error);
  if (rc != 0) {
    InFlightDiagnostic diag = module.emitError("--nsa-cubin: ") << *ptxas;
    if (!error.empty())
      diag << " failed: " << error;
    else
      diag << " failed (exit " << rc << ")";
    if (auto text = llvm::MemoryBuffer::getFile(log);
        text && !(*text)->getBuffer().trim().empty())
      diag << ": " << (*text)->getBuffer().trim();
    return diag;
  }
  return success();
}

/// Writes `text` to `path`, unless no path was given.
static LogicalResult writeFile(Operation *op, StringRef path, StringRef text) {
  if (path.empty())
    return success();
  std::string error;
  std::unique_ptr<llvm::ToolOutputFile> file = openOutputFile(path, &error);
  if (!file)
    return op->emitError() << error;
  file->os() << text;
  file->keep();
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
  static llvm::cl::opt<std::string> manifest(
      "nsa-manifest",
      llvm::cl::desc("With --nsa-to-ptx, also write the kernel manifest of "
                     "the host function's launches to this file"));
  static llvm::cl::opt<std::string> plan(
      "nsa-plan", llvm::cl::desc("With --nsa-to-ptx and --nsa-manifest, also "
                                 "write the host plan to this file"));
  static llvm::cl::opt<std::string> moduleFile(
      "nsa-module-file",
      llvm::cl::desc("The PTX or cubin file the manifest says holds the "
                     "kernels, relative to the manifest"),
      llvm::cl::init(HostFiles().moduleFile));
  static llvm::cl::opt<std::string> cubin(
      "nsa-cubin",
      llvm::cl::desc("With --nsa-to-ptx, also assemble the PTX with ptxas "
                     "into this cubin file (name it in --nsa-module-file for "
                     "the manifest to load it)"));
  TranslateFromMLIRRegistration registration(
      "nsa-to-ptx", "lower the module's gpu.module to PTX text",
      [](Operation *op, raw_ostream &os) -> LogicalResult {
        auto module = dyn_cast<ModuleOp>(op);
        if (!module)
          return op->emitError("nsa-to-ptx expects a builtin.module");
        PTXOptions options;
        options.chip = chip;
        options.features = features;
        HostFiles files{manifest, plan, moduleFile};
        // Every check first, so that a failure writes no file.
        std::string manifestText, planText, ptx;
        if (failed(nsa::describeHost(module, files, options.chip, manifestText,
                                     planText)) ||
            failed(nsa::translateToPTX(module, options, ptx)) ||
            (!cubin.empty() &&
             failed(nsa::assembleCubin(module, ptx, options.chip, cubin))) ||
            failed(writeFile(module, files.manifest, manifestText)) ||
            failed(writeFile(module, files.plan, planText)))
          return failure();
        os << ptx;
        return success();
      },
      nsa::registerPTXDialects);
}
