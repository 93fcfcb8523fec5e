//===- HostPlan.h - the host side of compiled kernels -----------*- C++ -*-===//
//
// After convert-tile-to-gpu, a host function is a straight line of
// tile.launch ops over tensors. The host plan names every tensor in it (the
// function's arguments, the buffers the kernels write) and lists the
// launches in order; the kernel manifest describes each launched gpu.func
// for the runtime. Both are JSON files of docs/runtime-abi.md.
//
//===----------------------------------------------------------------------===//

#ifndef NSA_TARGET_HOSTPLAN_H
#define NSA_TARGET_HOSTPLAN_H

#include "nsa/Dialect/Tile/IR/TileDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/IR/BuiltinOps.h"

#include <array>
#include <string>

namespace mlir::nsa {

/// A tensor of the plan: a function argument or a buffer a kernel writes.
struct PlanTensor {
  std::string name;
  RankedTensorType type;
};

struct PlanLaunch {
  tile::LaunchOp op;
  gpu::GPUFuncOp kernel;
  /// The launch's label, or "program" when it has none.
  std::string label;
  /// The CUDA grid (x, y, z): program grid dimension i is CUDA's rank-1-i.
  std::array<int64_t, 3> grid;
  /// The names of the tensors passed, args then outs; an outs operand is the
  /// buffer of the corresponding result.
  SmallVector<std::string> operands;
};

struct HostPlan {
  func::FuncOp function;
  SmallVector<PlanTensor> inputs;
  SmallVector<PlanTensor> buffers;
  SmallVector<PlanLaunch> launches;
  SmallVector<std::string> outputs;
};

/// The manifest's name of a tensor element type (`bf16`, `f16`, `f32`,
/// `i32`, `i64`), or "" for a type the runtime does not take.
StringRef runtimeDtype(Type element);

/// Builds the plan of the one func.func in `module` that holds tile.launch
/// ops. Emits an error naming the problem for anything the plan cannot
/// express (another host op, an outs operand that is not a tensor.empty, a
/// dynamic shape, ...).
FailureOr<HostPlan> buildHostPlan(ModuleOp module);

/// Writes the plan as JSON; `manifest` is the manifest's file name.
void writeHostPlan(const HostPlan &plan, StringRef manifest, raw_ostream &os);

/// Writes the kernel manifest (version 1) of every launched gpu.func:
/// `target` is the chip, `moduleFile` the PTX or cubin file holding them.
/// Fails, with an error, on a kernel without `known_block_size`.
LogicalResult writeKernelManifest(const HostPlan &plan, StringRef target,
                                  StringRef moduleFile, raw_ostream &os);

} // namespace mlir::nsa

#endif // NSA_TARGET_HOSTPLAN_H
