//===- Jit.cpp - compile and run nsa-cpu-check's module with MLIR's JIT ---===//
//
// Parses the generated module, runs
//   func.func(nsa-group-gqa, nsa-tile{sizes}), cse, nsa-lower-tile-to-llvm
// on it, JITs it with mlir::ExecutionEngine and calls @nsa on the case's
// buffers through memref descriptors.
//
//===----------------------------------------------------------------------===//

#include "CpuCheck.h"

#include "nsa/Dialect/NSA/IR/NSADialect.h"
#include "nsa/Dialect/NSA/Transforms/Passes.h"
#include "nsa/Dialect/Tile/IR/TileDialect.h"
#include "nsa/Dialect/Tile/Transforms/Passes.h"

#include "mlir/ExecutionEngine/CRunnerUtils.h"
#include "mlir/ExecutionEngine/ExecutionEngine.h"
#include "mlir/ExecutionEngine/OptUtils.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Target/LLVMIR/Dialect/All.h"
#include "mlir/Transforms/Passes.h"

#include "llvm/Support/Format.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Support/raw_ostream.h"

#include <chrono>
#include <cstring>

using namespace mlir;

namespace cpucheck {

std::unique_ptr<MLIRContext> createContext() {
  llvm::InitializeNativeTarget();
  llvm::InitializeNativeTargetAsmPrinter();
  registerCSEPass();
  mlir::nsa::registerNSAPasses();
  mlir::nsa::tile::registerTilePasses();
  mlir::nsa::tile::registerTilePipelines();

  DialectRegistry registry;
  registerAllDialects(registry);
  registerAllExtensions(registry);
  registerAllToLLVMIRTranslations(registry);
  registry.insert<mlir::nsa::NSADialect, mlir::nsa::tile::TileDialect>();
  auto ctx = std::make_unique<MLIRContext>(registry);
  ctx->loadAllAvailableDialects();
  return ctx;
}

/// The memref descriptor that the compiled function reads for a dense
/// row-major buffer (StridedMemRefType's layout: allocated and aligned
/// pointers, offset, sizes, strides), kept as 64-bit words so that one type
/// serves every rank and element type.
static_assert(sizeof(StridedMemRefType<uint16_t, 4>) == 8 * (3 + 2 * 4) &&
                  sizeof(StridedMemRefType<float, 3>) == 8 * (3 + 2 * 3),
              "memref descriptors are not 64-bit words");
static std::vector<int64_t> descriptor(Buffer &b) {
  int64_t rank = b.shape.size();
  std::vector<int64_t> d(3 + 2 * rank, 0);
  void *data = b.storage.data();
  std::memcpy(&d[0], &data, sizeof(void *));
  std::memcpy(&d[1], &data, sizeof(void *));
  d[2] = 0;
  int64_t stride = 1;
  for (int64_t i = rank - 1; i >= 0; --i) {
    d[3 + i] = b.shape[i];
    d[3 + rank + i] = stride;
    stride *= b.shape[i];
  }
  return d;
}

bool CaseRunner::compileAndRun() {
  using Clock = std::chrono::steady_clock;
  auto t0 = Clock::now();
  std::string text = moduleText();
  OwningOpRef<ModuleOp> module = parseSourceString<ModuleOp>(text, &ctx);
  if (!module) {
    report("compile", false, "the generated module does not parse");
    llvm::errs() << text;
    return false;
  }
  PassManager pm(&ctx);
  std::string errors;
  llvm::raw_string_ostream errorStream(errors);
  if (failed(parsePassPipeline(c.pipeline(), pm, errorStream))) {
    report("compile", false, "bad pipeline: " + errors);
    return false;
  }
  if (failed(pm.run(*module))) {
    report("compile", false,
           "pipeline failed: reproduce with --emit-mlir | nsa-opt "
           "--pass-pipeline='builtin.module(" +
               c.pipeline() + ")'");
    return false;
  }
  auto t1 = Clock::now();

  ExecutionEngineOptions options;
  // -O2 costs more JIT time than it saves on these small problems; -O1
  // keeps both low.
  auto transformer = makeOptimizingTransformer(1, 0, nullptr);
  options.transformer = transformer;
  options.jitCodeGenOptLevel = llvm::CodeGenOptLevel::Less;
  auto engine = ExecutionEngine::create(*module, options);
  if (!engine) {
    report("compile", false,
           "JIT failed: " + llvm::toString(engine.takeError()));
    return false;
  }
  auto t2 = Clock::now();

  // The C interface takes each memref as a pointer to its descriptor, and
  // invokePacked a pointer to each argument.
  std::vector<std::vector<int64_t>> descriptors;
  for (Buffer &b : inputs)
    descriptors.push_back(descriptor(b));
  for (Buffer &b : outputs)
    descriptors.push_back(descriptor(b));
  std::vector<void *> descriptorPtrs, args;
  for (std::vector<int64_t> &d : descriptors)
    descriptorPtrs.push_back(d.data());
  for (void *&p : descriptorPtrs)
    args.push_back(&p);
  if (llvm::Error error = (*engine)->invokePacked("_mlir_ciface_nsa", args)) {
    report("run", false, "invoke failed: " + llvm::toString(std::move(error)));
    return false;
  }
  auto t3 = Clock::now();
  if (verbose) {
    auto ms = [](auto a, auto b) {
      return std::chrono::duration<double, std::milli>(b - a).count();
    };
    llvm::outs() << llvm::format(
        "# timing: lower %.0f ms, jit %.0f ms, run %.0f ms\n", ms(t0, t1),
        ms(t1, t2), ms(t2, t3));
  }
  return true;
}

} // namespace cpucheck
