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
/// index, cf, llvm, nvgpu, nvvm ops; memref kernel arguments become one bare
/// pointer each, so their shapes must be static) to NVVM and then PTX text,
/// which is appended to `ptx`. Works on a copy of the gpu.module: `module`
/// is left as it is, and whatever else it holds (a host function) is
/// ignored.
LogicalResult translateToPTX(ModuleOp module, const PTXOptions &options,
                             std::string &ptx);

/// Assembles `ptx` for `chip` with the CUDA toolkit's ptxas into the cubin
/// file `cubinPath`. ptxas is `$NSA_PTXAS` when set, else the first found in
/// PATH, `$CUDA_HOME/bin` and `/usr/local/cuda/bin`; errors (no ptxas, its
/// diagnostics) are reported on `module`.
LogicalResult assembleCubin(ModuleOp module, StringRef ptx, StringRef chip,
                            StringRef cubinPath);

/// The files `--nsa-to-ptx` writes beside the PTX: paths of the kernel
/// manifest and the host plan (empty: not written) and the module file name
/// the manifest records.
struct HostFiles {
  std::string manifest;
  std::string plan;
  std::string moduleFile = "kernels.ptx";
};

/// Renders the kernel manifest and the host plan of `module`'s host
/// function (HostPlan.h) into `manifest` and `plan`, as far as `files`
/// asks for them; `target` is the chip the manifest names.
LogicalResult describeHost(ModuleOp module, const HostFiles &files,
                           StringRef target, std::string &manifest,
                           std::string &plan);

/// Registers the `--nsa-to-ptx` translation (with `--nsa-chip`,
/// `--nsa-ptx-features`, `--nsa-manifest`, `--nsa-plan`,
/// `--nsa-module-file`, `--nsa-cubin`) for nsa-translate.
void registerToPTXTranslation();

/// Dialects and interfaces a module bound for PTX may use.
void registerPTXDialects(DialectRegistry &registry);

} // namespace mlir::nsa

#endif // NSA_TARGET_PTX_H
