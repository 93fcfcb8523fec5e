//===- HostPlan.cpp - the host function as launches over named tensors ----===//
//
// Names every tensor of the host function convert-tile-to-gpu leaves: the
// arguments arg<i>, and the buffer of each launch result <label><k>.<i> (the
// k-th launch of that label), which is where the kernel writes its outs.
// Views (expand_shape, collapse_shape, cast) keep their source's name:
// tensors are row-major and contiguous, so a view is the same memory, and
// the manifest's shape of the kernel parameter says how the kernel sees it.
//
//===----------------------------------------------------------------------===//

#include "nsa/Target/HostPlan.h"

#include "JsonWriter.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/IR/SymbolTable.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/ADT/TypeSwitch.h"
#include "llvm/Support/InterleavedRange.h"

using namespace mlir;
using namespace mlir::nsa;

StringRef nsa::runtimeDtype(Type element) {
  if (element.isBF16())
    return "bf16";
  if (element.isF16())
    return "f16";
  if (element.isF32())
    return "f32";
  if (element.isSignlessInteger(32))
    return "i32";
  if (element.isSignlessInteger(64))
    return "i64";
  return "";
}

/// The manifest's op and the buffer names are made from labels, and the
/// runtime takes op names of this form only.
static bool isIdentifier(StringRef name) {
  return !name.empty() && !llvm::isDigit(name.front()) &&
         llvm::all_of(name,
                      [](char c) { return llvm::isAlnum(c) || c == '_'; });
}

namespace {

/// Walks the host function in order, naming every tensor it passes on.
class PlanBuilder {
public:
  explicit PlanBuilder(HostPlan &plan) : plan(plan) {}

  LogicalResult build() {
    func::FuncOp function = plan.function;
    if (!function.getBody().hasOneBlock())
      return function.emitError("the host function must be a single block");
    for (auto [i, arg] : llvm::enumerate(function.getArguments())) {
      FailureOr<RankedTensorType> type =
          checkTensor(function, arg.getType(), "argument #" + Twine(i));
      if (failed(type))
        return failure();
      names[arg] = "arg" + std::to_string(i);
      plan.inputs.push_back({names[arg], *type});
    }
    for (Operation &op : function.getBody().front())
      if (failed(visit(&op)))
        return failure();
    return success();
  }

private:
  LogicalResult visit(Operation *op) {
    return llvm::TypeSwitch<Operation *, LogicalResult>(op)
        // Grid sizes, and the buffers kernels write.
        .Case<arith::ConstantOp, tensor::EmptyOp>(
            [](Operation *) { return success(); })
        .Case<tensor::ExpandShapeOp, tensor::CollapseShapeOp, tensor::CastOp>(
            [&](Operation *view) -> LogicalResult {
              FailureOr<std::string> name =
                  nameOf(view, view->getOperand(0), "its source");
              if (failed(name))
                return failure();
              names[view->getResult(0)] = *name;
              return success();
            })
        .Case([&](tile::LaunchOp launch) { return addLaunch(launch); })
        .Case([&](func::ReturnOp ret) -> LogicalResult {
          for (auto [i, value] : llvm::enumerate(ret.getOperands())) {
            FailureOr<std::string> name =
                nameOf(ret, value, "result #" + Twine(i));
            if (failed(name))
              return failure();
            plan.outputs.push_back(*name);
          }
          return success();
        })
        .Default([](Operation *other) {
          return other->emitError()
                 << "the host plan cannot express '" << other->getName()
                 << "': a host function holds only tile.launch, tensor.empty, "
                    "views (tensor.expand_shape, collapse_shape, cast), "
                    "arith.constant and func.return";
        });
  }

  LogicalResult addLaunch(tile::LaunchOp launch) {
    SymbolRefAttr symbol = launch.getKernelAttr();
    auto kernel =
        SymbolTable::lookupNearestSymbolFrom<gpu::GPUFuncOp>(launch, symbol);
    if (!kernel)
      return launch.emitError() << "kernel " << symbol << " is not a gpu.func";
    if (!kernel.isKernel())
      return launch.emitError()
             << "@" << kernel.getName() << " is not a kernel (a gpu.func "
             << "without the kernel attribute)";
    size_t numTensors = launch.getArgs().size() + launch.getOuts().size();
    if (kernel.getNumArguments() != numTensors)
      return launch.emitError()
             << "kernel @" << kernel.getName() << " takes "
             << kernel.getNumArguments() << " parameters, the launch passes "
             << numTensors << " tensors";

    std::string label = launch.getLabel().value_or("program").str();
    if (!isIdentifier(label))
      return launch.emitError()
             << "label \"" << label
             << "\" is not an identifier ([A-Za-z_][A-Za-z0-9_]*): the "
                "manifest's op and the buffer names are made from it";
    PlanLaunch entry{launch, kernel, label, {1, 1, 1}, {}};
    size_t rank = launch.getGrid().size();
    for (auto [i, size] : llvm::enumerate(launch.getGrid())) {
      std::optional<int64_t> value = getConstantIntValue(size);
      if (!value)
        return launch.emitError()
               << "grid size #" << i
               << " is not an arith.constant: the manifest needs static grids";
      entry.grid[rank - 1 - i] = *value;
    }

    for (auto [i, arg] : llvm::enumerate(launch.getArgs())) {
      std::string what = "args #" + std::to_string(i);
      if (failed(checkTensor(launch, arg.getType(), what)))
        return failure();
      FailureOr<std::string> name = nameOf(launch, arg, what);
      if (failed(name))
        return failure();
      entry.operands.push_back(*name);
    }
    std::string prefix = label + std::to_string(labelCounts[label]++);
    for (auto [i, out, result] :
         llvm::enumerate(launch.getOuts(), launch.getResults())) {
      FailureOr<RankedTensorType> type =
          checkTensor(launch, out.getType(), "outs #" + Twine(i));
      if (failed(type))
        return failure();
      if (!out.getDefiningOp<tensor::EmptyOp>())
        return launch.emitError()
               << "outs #" << i
               << " must be tensor.empty: a kernel writes a buffer of its own";
      std::string name = prefix + "." + std::to_string(i);
      if (!bufferNames.insert(name).second)
        return launch.emitError()
               << "buffer name '" << name
               << "' is taken by an earlier launch; rename a label";
      names[result] = name;
      plan.buffers.push_back({name, *type});
      entry.operands.push_back(name);
    }
    plan.launches.push_back(std::move(entry));
    return success();
  }

  FailureOr<RankedTensorType> checkTensor(Operation *at, Type type,
                                          const Twine &what) {
    auto tensor = dyn_cast<RankedTensorType>(type);
    if (!tensor || !tensor.hasStaticShape() ||
        runtimeDtype(tensor.getElementType()).empty())
      return at->emitError()
             << what << " must be a statically shaped tensor of bf16, f16, "
             << "f32, i32 or i64, got " << type;
    return tensor;
  }

  FailureOr<std::string> nameOf(Operation *user, Value value,
                                const Twine &what) {
    auto it = names.find(value);
    if (it != names.end())
      return it->second;
    InFlightDiagnostic diag = user->emitError()
                              << what << " is not a function argument, a "
                              << "launch result or a view of one";
    if (Operation *def = value.getDefiningOp())
      diag << " (it comes from '" << def->getName() << "')";
    return diag;
  }

  HostPlan &plan;
  DenseMap<Value, std::string> names;
  llvm::StringMap<unsigned> labelCounts;
  llvm::StringSet<> bufferNames;
};

} // namespace

FailureOr<HostPlan> nsa::buildHostPlan(ModuleOp module) {
  HostPlan plan;
  for (auto function : module.getOps<func::FuncOp>()) {
    bool launches =
        function->walk([](tile::LaunchOp) { return WalkResult::interrupt(); })
            .wasInterrupted();
    if (!launches)
      continue;
    if (plan.function)
      return function.emitError()
             << "a second host function with tile.launch (the first is @"
             << plan.function.getName() << "): a host plan describes one";
    plan.function = function;
  }
  if (!plan.function)
    return module.emitError(
        "no func.func launches a kernel (tile.launch): there is no host "
        "function for the manifest and the host plan to describe");
  if (failed(PlanBuilder(plan).build()))
    return failure();
  return plan;
}

void nsa::writeHostPlan(const HostPlan &plan, StringRef manifest,
                        raw_ostream &os) {
  using json::quoted;
  auto writeTensor = [&](const PlanTensor &tensor) {
    os << "{\"name\": " << quoted(tensor.name) << ", \"dtype\": \""
       << runtimeDtype(tensor.type.getElementType())
       << "\", \"shape\": " << llvm::interleaved_array(tensor.type.getShape())
       << "}";
  };
  auto writeNames = [&](ArrayRef<std::string> names) {
    os << "[";
    llvm::interleaveComma(names, os,
                          [&](const std::string &name) { os << quoted(name); });
    os << "]";
  };
  os << "{\n  \"format\": \"nsa-host-plan\",\n  \"version\": 1,\n"
     << "  \"function\": " << quoted(func::FuncOp(plan.function).getName())
     << ",\n"
     << "  \"manifest\": " << quoted(manifest) << ",\n  \"inputs\": ";
  json::writeLines(os, plan.inputs, 4, writeTensor);
  os << ",\n  \"buffers\": ";
  json::writeLines(os, plan.buffers, 4, writeTensor);
  os << ",\n  \"launches\": ";
  json::writeLines(os, plan.launches, 4, [&](const PlanLaunch &launch) {
    os << "{\"kernel\": " << quoted(gpu::GPUFuncOp(launch.kernel).getName())
       << ", \"label\": " << quoted(launch.label) << ", \"args\": ";
    writeNames(launch.operands);
    os << "}";
  });
  os << ",\n  \"outputs\": ";
  writeNames(plan.outputs);
  os << "\n}\n";
}
