//===- PTX.h - gpu.module -> PTX text ---------------------------*- C++ -*-===//

#ifndef NSA_TARGET_PTX_H
#define NSA_TARGET_PTX_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Support/LLVM.h"

#include <string>

namespace mlir::nsa {

/// Where PTX is generated for. sm_90a is the only chip with wgmma and TMA's
/// tensor copies; PTX 8.0 is what LLVM 22 emits for it and what driver 580
/// JIT-loads.
struct PTXOptions {
  std::string chip = "sm_90a";
  std::string features = "+ptx80";
  unsigned optLevel = 3;
};

/// Lowers the single gpu.module in `module` (gpu, arith, memref, scf, math,
/// nvgpu, nvvm ops; memref kernel arguments become one bare pointer each, so
/// their shapes must be static) to NVVM and then PTX text, which is appended
/// to `ptx`. Rewrites `module` in place.
LogicalResult translateToPTX(ModuleOp module, const PTXOptions &options,
                             std::string &ptx);

/// Registers the `--nsa-to-ptx` translation (with `--nsa-chip`,
/// `--nsa-ptx-features`) for nsa-translate.
void registerToPTXTranslation();

/// Dialects and interfaces a module bound for PTX may use.
void registerPTXDialects(DialectRegistry &registry);

} // namespace mlir::nsa

#endif // NSA_TARGET_PTX_H
