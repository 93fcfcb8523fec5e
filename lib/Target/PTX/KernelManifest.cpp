//===- KernelManifest.cpp - the manifest of a module's kernels ------------===//
//
// Describes every gpu.func a host plan launches in docs/runtime-abi.md's
// manifest, so that the runtime can check and launch it. These kernels are
// compiled for one static shape, so every dimension is an integer, the
// grid is constant and no configuration field is needed (all null).
//
//===----------------------------------------------------------------------===//

#include "nsa/Target/HostPlan.h"

#include "JsonWriter.h"

#include "llvm/ADT/StringSet.h"
#include "llvm/Support/InterleavedRange.h"

#include <algorithm>

using namespace mlir;
using namespace mlir::nsa;

/// What convert-tile-to-gpu records as a kernel's dynamic shared memory.
static constexpr StringLiteral kSharedBytesAttr = "nsa.shared_bytes";

/// The parameter names of a launch: the plan's names of its tensors, made
/// identifiers (the runtime's rule) by turning `.` into `_`; a tensor passed
/// twice gets its position appended, as names are unique in a kernel.
static SmallVector<std::string> paramNames(ArrayRef<std::string> operands) {
  SmallVector<std::string> names;
  llvm::StringSet<> taken;
  for (auto [i, operand] : llvm::enumerate(operands)) {
    std::string name = operand;
    std::replace(name.begin(), name.end(), '.', '_');
    if (!taken.insert(name).second) {
      name += "_p" + std::to_string(i);
      taken.insert(name);
    }
    names.push_back(std::move(name));
  }
  return names;
}

/// The kernels to describe, each with its first launch; a kernel launched
/// again must be launched alike, since the manifest describes it once.
static FailureOr<SmallVector<const PlanLaunch *>>
uniqueKernels(const HostPlan &plan) {
  SmallVector<const PlanLaunch *> kernels;
  DenseMap<Operation *, const PlanLaunch *> first;
  for (const PlanLaunch &launch : plan.launches) {
    auto [it, inserted] = first.try_emplace(launch.kernel, &launch);
    if (inserted) {
      kernels.push_back(&launch);
      continue;
    }
    const PlanLaunch &earlier = *it->second;
    tile::LaunchOp first = earlier.op, again = launch.op;
    if (earlier.label != launch.label || earlier.grid != launch.grid ||
        TypeRange(first.getArgs()) != TypeRange(again.getArgs()) ||
        TypeRange(first.getOuts()) != TypeRange(again.getOuts()))
      return again.emitError()
             << "launches @" << gpu::GPUFuncOp(launch.kernel).getName()
             << " unlike its first launch (label, grid or tensor types "
                "differ): the manifest describes a kernel once";
  }
  return kernels;
}

LogicalResult nsa::writeKernelManifest(const HostPlan &plan, StringRef target,
                                       StringRef moduleFile, raw_ostream &os) {
  FailureOr<SmallVector<const PlanLaunch *>> kernels = uniqueKernels(plan);
  if (failed(kernels))
    return failure();
  for (const PlanLaunch *launch : *kernels) {
    gpu::GPUFuncOp kernel = launch->kernel;
    if (!kernel.getKnownBlockSizeAttr())
      return kernel.emitError()
             << "kernel @" << kernel.getName()
             << " has no known_block_size: the manifest needs its block";
    Attribute shared = kernel->getAttr(kSharedBytesAttr);
    auto bytes = dyn_cast_or_null<IntegerAttr>(shared);
    if (shared && (!bytes || bytes.getValue().isNegative() ||
                   !bytes.getValue().isSignedIntN(32)))
      return kernel.emitError()
             << kSharedBytesAttr << " must be an integer in [0, 2^31), got "
             << shared;
  }

  using json::quoted;
  auto writeKernel = [&](const PlanLaunch *launch) {
    gpu::GPUFuncOp kernel = launch->kernel;
    auto bytes = kernel->getAttrOfType<IntegerAttr>(kSharedBytesAttr);
    tile::LaunchOp op = launch->op;
    SmallVector<Value> tensors(op.getArgs());
    llvm::append_range(tensors, op.getOuts());
    SmallVector<std::string> names = paramNames(launch->operands);

    os << "{\n";
    os.indent(6) << "\"name\": " << quoted(kernel.getName()) << ",\n";
    os.indent(6) << "\"op\": " << quoted(launch->label) << ",\n";
    os.indent(6) << "\"module\": " << quoted(moduleFile) << ",\n";
    os.indent(6) << "\"config\": {";
    llvm::interleaveComma(
        ArrayRef<StringRef>{"l", "d", "l_sel", "n", "init", "local", "w",
                            "scale", "G", "Dk", "Dv", "dtype"},
        os, [&](StringRef field) { os << "\"" << field << "\": null"; });
    os << "},\n";
    os.indent(6) << "\"params\": ";
    json::writeLines(os, llvm::zip(names, tensors), 8, [&](auto param) {
      auto [name, tensor] = param;
      auto type = cast<RankedTensorType>(tensor.getType());
      os << "{\"name\": " << quoted(name)
         << ", \"kind\": \"tensor\", \"dtype\": \""
         << runtimeDtype(type.getElementType())
         << "\", \"shape\": " << llvm::interleaved_array(type.getShape())
         << ", \"align\": 16}";
    });
    os << ",\n";
    os.indent(6) << "\"grid\": [";
    llvm::interleaveComma(launch->grid, os,
                          [&](int64_t size) { os << "\"" << size << "\""; });
    os << "],\n";
    os.indent(6) << "\"block\": "
                 << llvm::interleaved_array(
                        kernel.getKnownBlockSizeAttr().asArrayRef())
                 << ",\n";
    os.indent(6) << "\"shared_bytes\": " << (bytes ? bytes.getInt() : 0)
                 << "\n";
    os.indent(4) << "}";
  };

  os << "{\n  \"format\": \"nsa-kernel-manifest\",\n  \"version\": 1,\n"
     << "  \"target\": " << quoted(target) << ",\n  \"kernels\": ";
  json::writeLines(os, *kernels, 4, writeKernel);
  os << "\n}\n";
  return success();
}
