//===- ConvertTileToGPU.cpp - tile programs -> GPU kernels ----------------===//
//
// Compiles every tile.program to a kernel gpu.func (one program instance per
// thread block) and replaces the program by a tile.launch of it.
//
// The KernelEmitter (KernelEmitter.h, which says how tiles are laid out over
// a block's threads, and the Kernel*.cpp files) compiles one program; this
// file is the pass: warps per program, host elementwise ops as programs of
// their own, and each program -> a gpu.func and a tile.launch.
//
//===----------------------------------------------------------------------===//

#include "KernelEmitter.h"
#include "TileRewrites.h"

#include "nsa/Dialect/Tile/IR/TileDialect.h"
#include "nsa/Dialect/Tile/Transforms/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/Matchers.h"
#include "mlir/Transforms/DialectConversion.h"
#include "llvm/ADT/SetVector.h"
#include "llvm/Support/MathExtras.h"

namespace mlir::nsa::tile {
#define GEN_PASS_DEF_CONVERTTILETOGPU
#include "nsa/Dialect/Tile/Transforms/Passes.h.inc"
} // namespace mlir::nsa::tile

using namespace mlir;
using namespace mlir::nsa::tile;
using namespace mlir::nsa::tile::rewrites;

namespace {

using namespace mlir::nsa::tile::kernel;

//===----------------------------------------------------------------------===//
// Pass
//===----------------------------------------------------------------------===//

/// Warps per block: enough for the rows of the program's widest tile that
/// is computed on (dot results and stored tiles), at most `maxWarps`.
int64_t warpsFor(ProgramOp program, int64_t minWarps, int64_t maxWarps) {
  int64_t rows = 1;
  program.walk([&](Operation *op) {
    if (auto dot = dyn_cast<DotOp>(op))
      rows = std::max(rows, dot.getResult().getType().getDimSize(0));
    if (auto store = dyn_cast<StoreOp>(op))
      rows = std::max(
          rows,
          cast<RankedTensorType>(store.getValue().getType()).getDimSize(0));
  });
  return std::clamp<int64_t>(ceilDiv(rows, 16), minWarps, maxWarps);
}

bool isHostElementwise(Operation *op) {
  return isElementwise(op) && !isa<arith::ConstantOp>(op);
}

/// Whether a host elementwise op is computed inside the program of its only
/// user, another one (a sum of three gradient contributions is one kernel:
/// the partial sum never goes through memory).
bool absorbedByUser(Operation *op) {
  if (!op->getResult(0).hasOneUse())
    return false;
  Operation *user = *op->getResult(0).getUsers().begin();
  return user->getBlock() == op->getBlock() && isHostElementwise(user);
}

/// An elementwise arith op on whole tensors in a host function (gradient
/// contributions summed by nsa-decompose) becomes a program of its own,
/// together with the host elementwise ops it absorbs (absorbedByUser): the
/// host plan only launches kernels. The operands are viewed as [N, C] (C the
/// last dimension), the program computes 64-row tiles, and the result is
/// viewed back in its shape.
LogicalResult hostElementwiseToProgram(Operation *op) {
  auto type = cast<RankedTensorType>(op->getResult(0).getType());
  if (!type.hasStaticShape() || type.getRank() < 1)
    return op->emitOpError("convert-tile-to-gpu: host elementwise op needs a "
                           "static shape");
  constexpr int64_t kRows = 64;
  OpBuilder b(op);
  Location loc = op->getLoc();
  int64_t cols = type.getShape().back();
  int64_t rows = type.getNumElements() / std::max<int64_t>(cols, 1);
  SmallVector<ReassociationIndices> groups;
  if (type.getRank() > 1) {
    ReassociationIndices lead;
    for (int64_t d = 0; d + 1 < type.getRank(); ++d)
      lead.push_back(d);
    groups = {lead, {type.getRank() - 1}};
  }
  auto view = [&](Value v) -> Value {
    auto t = cast<RankedTensorType>(v.getType());
    auto flat = RankedTensorType::get({rows, cols}, t.getElementType());
    if (t.getRank() == 1)
      return tensor::ExpandShapeOp::create(
          b, loc, flat, v, ArrayRef<ReassociationIndices>{{0, 1}});
    return tensor::CollapseShapeOp::create(b, loc, flat, v, groups);
  };
  // The ops computed in the program (producers first, op last) and the
  // tensors they read.
  SmallVector<Operation *> tree;
  SmallVector<Value> leaves;
  std::function<void(Operation *)> collect = [&](Operation *o) {
    for (Value v : o->getOperands()) {
      Operation *def = v.getDefiningOp();
      if (def && isHostElementwise(def) && absorbedByUser(def))
        collect(def);
      else if (!llvm::is_contained(leaves, v))
        leaves.push_back(v);
    }
    tree.push_back(o);
  };
  collect(op);
  SmallVector<Value> operands;
  for (Value v : leaves) {
    if (!isa<RankedTensorType>(v.getType()))
      return op->emitOpError("convert-tile-to-gpu: host elementwise op with a "
                             "scalar operand");
    operands.push_back(view(v));
  }
  auto flatType = RankedTensorType::get({rows, cols}, type.getElementType());
  Value init = tensor::EmptyOp::create(b, loc, flatType.getShape(),
                                       flatType.getElementType());
  Value grid = arith::ConstantIndexOp::create(b, loc, ceilDiv(rows, kRows));
  SmallVector<Value> gridSizes = {grid}, outs = {init};
  SmallVector<Type> resultTypes = {flatType};
  auto program =
      ProgramOp::create(b, loc, TypeRange(resultTypes), ValueRange(gridSizes),
                        ValueRange(outs), b.getStringAttr("elementwise"),
                        /*min_resident=*/IntegerAttr());
  Block *body = b.createBlock(&program.getBody(), {},
                              {b.getIndexType(), flatType}, {loc, loc});
  ProgramOp::ensureTerminator(program.getBody(), b, loc);
  b.setInsertionPoint(body->getTerminator());
  Value row0 =
      arith::MulIOp::create(b, loc, body->getArgument(0),
                            arith::ConstantIndexOp::create(b, loc, kRows));
  Value zeroIdx = arith::ConstantIndexOp::create(b, loc, 0);
  auto rowDims = b.getDenseI64ArrayAttr({0});
  IRMapping tiles;
  for (auto [leaf, v] : llvm::zip(leaves, operands)) {
    auto tileType = RankedTensorType::get(
        {kRows, cols}, cast<RankedTensorType>(v.getType()).getElementType());
    tiles.map(leaf, LoadOp::create(b, loc, tileType, v,
                                   ValueRange{row0, zeroIdx}, rowDims));
  }
  Value result;
  for (Operation *o : tree) {
    OperationState state(o->getLoc(), o->getName());
    for (Value v : o->getOperands())
      state.addOperands(tiles.lookup(v));
    state.addTypes(RankedTensorType::get(
        {kRows, cols}, getElementTypeOrSelf(o->getResult(0).getType())));
    state.addAttributes(o->getAttrs());
    result = b.create(state)->getResult(0);
    tiles.map(o->getResult(0), result);
  }
  StoreOp::create(b, loc, result, body->getArgument(1),
                  ValueRange{row0, zeroIdx}, rowDims);
  b.setInsertionPointAfter(program);
  Value shaped = program.getResult(0);
  if (type.getRank() == 1)
    shaped = tensor::CollapseShapeOp::create(
        b, loc, type, shaped, ArrayRef<ReassociationIndices>{{0, 1}});
  else
    shaped = tensor::ExpandShapeOp::create(b, loc, type, shaped, groups);
  op->getResult(0).replaceAllUsesWith(shaped);
  for (Operation *o : llvm::reverse(tree))
    o->erase();
  return success();
}

struct ConvertTileToGPU
    : mlir::nsa::tile::impl::ConvertTileToGPUBase<ConvertTileToGPU> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    MLIRContext *ctx = &getContext();
    if (minWarps < 1 || maxWarps > 32 || minWarps > maxWarps) {
      module.emitError() << "convert-tile-to-gpu: need 1 <= min-warps <= "
                            "max-warps <= 32, got min-warps = "
                         << minWarps << ", max-warps = " << maxWarps;
      return signalPassFailure();
    }
    // The streaming-softmax ops are spelled out first (shared with the CPU
    // lowering).
    {
      ConversionTarget target(*ctx);
      target.addIllegalOp<OnlineSoftmaxOp, SoftmaxFinalizeOp>();
      target.markUnknownOpDynamicallyLegal([](Operation *) { return true; });
      RewritePatternSet patterns(ctx);
      populateDecomposeSoftmaxPatterns(patterns);
      if (failed(applyPartialConversion(module, target, std::move(patterns))))
        return signalPassFailure();
    }
    for (auto fn : llvm::to_vector(module.getOps<func::FuncOp>()))
      if (failed(convertFunction(fn)))
        return signalPassFailure();
  }

  LogicalResult convertFunction(func::FuncOp fn) {
    for (Operation &op : llvm::make_early_inc_range(fn.getBody().getOps()))
      if (isHostElementwise(&op) && !absorbedByUser(&op) &&
          failed(hostElementwiseToProgram(&op)))
        return failure();
    auto programs = llvm::to_vector(fn.getOps<ProgramOp>());
    if (programs.empty())
      return success();
    MLIRContext *ctx = &getContext();
    ModuleOp module = getOperation();
    module->setAttr(gpu::GPUDialect::getContainerModuleAttrName(),
                    UnitAttr::get(ctx));
    OpBuilder mb(ctx);
    mb.setInsertionPointToEnd(module.getBody());
    auto gpuModule = gpu::GPUModuleOp::create(
        mb, fn.getLoc(), (fn.getName() + "_kernels").str());
    mb.setInsertionPointToStart(gpuModule.getBody());
    LLVM::GlobalOp::create(
        mb, fn.getLoc(), LLVM::LLVMArrayType::get(mb.getI8Type(), 0),
        /*isConstant=*/false, LLVM::Linkage::External, kSharedSymbol,
        Attribute(), /*alignment=*/wgmma ? 1024 : 16, /*addrSpace=*/3);

    for (auto [index, program] : llvm::enumerate(programs)) {
      // Parameters: tensors read from outside (not constants), then outs.
      llvm::SetVector<Value> params;
      program.getBody().walk([&](Operation *op) {
        for (Value v : op->getOperands())
          if (isa<RankedTensorType>(v.getType()) &&
              !program->isAncestor(v.getParentBlock()->getParentOp()) &&
              !v.getDefiningOp<arith::ConstantOp>())
            params.insert(v);
      });
      SmallVector<Value> args(params.begin(), params.end());
      SmallVector<Value> kernelValues(args);
      llvm::append_range(kernelValues, program.getOutArgs());
      // Kernels are specialised to their shapes: addresses and bounds are
      // compile-time strides and sizes.
      for (Value v : kernelValues)
        if (!cast<RankedTensorType>(v.getType()).hasStaticShape())
          return program.emitOpError()
                 << "convert-tile-to-gpu: tensor " << v.getType()
                 << " must have a static shape";

      auto ptrType = LLVM::LLVMPointerType::get(ctx, 1);
      SmallVector<Type> argTypes(kernelValues.size(), ptrType);
      std::string name = (fn.getName() + "_k" + Twine(index)).str();
      mb.setInsertionPointToEnd(gpuModule.getBody());
      auto kernel = gpu::GPUFuncOp::create(mb, program.getLoc(), name,
                                           mb.getFunctionType(argTypes, {}));
      kernel->setAttr(gpu::GPUDialect::getKernelFuncAttrName(),
                      UnitAttr::get(ctx));
      int64_t warps = warpsFor(program, minWarps, maxWarps);
      kernel.setKnownBlockSizeAttr(mb.getDenseI32ArrayAttr(
          {static_cast<int32_t>(warps * kWarpSize), 1, 1}));
      if (IntegerAttr resident = program.getMinResidentAttr())
        kernel->setAttr(NVVM::NVVMDialect::getMinctasmAttrName(), resident);
      for (unsigned i = 0; i < kernel.getNumArguments(); ++i)
        kernel.setArgAttr(i, LLVM::LLVMDialect::getNoAliasAttrName(),
                          UnitAttr::get(ctx));

      KernelEmitter emitter(program, kernel, kernelValues, warps, wgmma,
                            gpuModule);
      if (failed(emitter.emit()))
        return failure();
      // Hopper's limit per block (sm_80: 163 KiB): a program that needs more
      // must be tiled smaller, and saying so here beats a failed launch.
      if (emitter.sharedBytes() > kMaxSharedBytes)
        return program.emitOpError()
               << "convert-tile-to-gpu: the kernel needs "
               << emitter.sharedBytes()
               << " bytes of shared memory, more than the " << kMaxSharedBytes
               << " a thread block can have on sm_90; use smaller tiles";
      kernel->setAttr("nsa.shared_bytes",
                      mb.getI64IntegerAttr(emitter.sharedBytes()));

      OpBuilder hb(program);
      auto launch = LaunchOp::create(
          hb, program.getLoc(),
          SymbolRefAttr::get(gpuModule.getNameAttr(),
                             {FlatSymbolRefAttr::get(kernel.getNameAttr())}),
          program.getGrid(), args, program.getOuts(), program.getLabelAttr());
      program.replaceAllUsesWith(launch.getResults());
      program.erase();
    }
    return success();
  }
};

} // namespace
