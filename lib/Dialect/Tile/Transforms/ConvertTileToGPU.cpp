//===- ConvertTileToGPU.cpp - tile programs -> GPU kernels ----------------===//
//
// Compiles every tile.program to a kernel gpu.func (one program instance per
// thread block) and replaces the program by a tile.launch of it.
//
// Tiles live in registers, distributed in the accumulator layout of
// mma.sync.m16n8k16 (see DistributedLayout below), so that a tile.dot's
// left operand and result need no data movement and a row of a tile sits in
// the four lanes of one quad: row reductions are two shuffles. A dot's right
// operand is staged in shared memory: a tile.load that only feeds such
// operands is copied straight from global memory into its own shared region.
// Ops that need other threads' elements (top-n merging, extracting one
// element, changing a rank-1 tile between row and column form) go through a
// scratch region of shared memory between two barriers.
//
// Every op of the program body is emitted per thread, fully unrolled over
// the thread's elements: tile shapes are static and small, and unrolling is
// what keeps the elements in registers.
//
// The file, in order: the distributed layout and the KernelEmitter class;
// constants and elementwise math; global memory accesses; staging in shared
// memory; products; reductions and scratch ops (top-n, extract, reshape);
// control flow; dispatch, the shared-memory layout and the kernel; then the
// pass (warps per program, host elementwise ops, program -> gpu.func).
//
//===----------------------------------------------------------------------===//

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

constexpr int64_t kWarpSize = 32;
/// Shared-memory rows of staged dot operands are padded by 16 bytes so that
/// the eight rows a fragment load touches fall into different banks.
constexpr int64_t kRowPadBytes = 16;
constexpr StringLiteral kSharedSymbol = "__nsa_shared";
/// Dynamic shared memory a thread block may use on sm_90 (227 KiB).
constexpr int64_t kMaxSharedBytes = 232448;
/// Loads are double-buffered while the staged regions stay within this many
/// bytes (of the 227 KiB a block may have), leaving room for scratch.
constexpr int64_t kDoubleBufferBudget = 160 * 1024;

int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t roundUp(int64_t a, int64_t b) { return ceilDiv(a, b) * b; }
int64_t byteWidth(Type t) { return ceilDiv(t.getIntOrFloatBitWidth(), 8); }

//===----------------------------------------------------------------------===//
// Layout
//===----------------------------------------------------------------------===//

/// How a value is spread over the block's threads.
///  - Tile: a [R, C] tile. Warp w owns the rows 16 * (w + W * i) + g + 8 * h
///    (g = lane / 4, row slot 2 * i + h); a lane owns the columns
///    8 * j + 2 * q + e (q = lane % 4, column slot 2 * j + e). Element
///    (row slot rs, column slot cs) is elems[rs * colSlots + cs]. This is
///    mma.sync's accumulator layout, and its A operand layout too.
///  - Row: a [R] tile indexed like the rows of a Tile (one value per row
///    slot, the same in the 4 lanes of a quad): what a row reduction gives
///    and a `broadcast {dim = 1}` reads.
///  - Col: a [C] tile indexed like the columns (one value per column slot):
///    what `broadcast {dim = 0}` reads.
/// Slots past the tile's size hold values nobody reads (rows and columns
/// are padded to whole fragments).
enum class Kind { Tile, Row, Col };

struct Dist {
  Kind kind = Kind::Tile;
  SmallVector<Value> elems;
  /// Set when every element is this value (a splat constant): it then
  /// takes any kind.
  Value splat;
};

/// A tile.load result copied to shared memory as a dot's right operand:
/// rows x cols elements of `type`, row stride `stride` elements, rows and
/// columns beyond the tile's zero-filled up to multiples of 16.
struct Staged {
  int64_t offset, rows, cols, stride;
  Type type;
  /// Set for a double-buffered load inside its loop: the current buffer.
  Value base = Value();
};

class KernelEmitter {
public:
  KernelEmitter(ProgramOp program, gpu::GPUFuncOp func,
                ArrayRef<Value> params, int64_t warps,
                gpu::GPUModuleOp module)
      : program(program), func(func), module(module),
        b(func.getContext()), loc(program.getLoc()), warps(warps) {
    for (auto [i, p] : llvm::enumerate(params))
      globals[p] = func.getArgument(i);
  }

  LogicalResult emit();
  int64_t sharedBytes() const { return stagedBytes + scratchBytes; }

private:
  //---- values ----
  Value cidx(int64_t v) { return arith::ConstantIndexOp::create(b, loc, v); }
  Value ci32(int64_t v) { return arith::ConstantIntOp::create(b, loc, v, 32); }
  Value cst(Type t, double v) {
    if (isa<FloatType>(t))
      return arith::ConstantOp::create(b, loc, b.getFloatAttr(t, v));
    return arith::ConstantOp::create(b, loc,
                                     b.getIntegerAttr(t, (int64_t)v));
  }
  Value zero(Type t) { return cst(t, 0.0); }
  Value andOpt(Value a, Value c) {
    if (!a)
      return c;
    if (!c)
      return a;
    return arith::AndIOp::create(b, loc, a, c);
  }

  //---- layout ----
  int64_t rowSlots(int64_t rows) { return 2 * ceilDiv(rows, 16 * warps); }
  int64_t colSlots(int64_t cols) { return 2 * ceilDiv(cols, 8); }
  int64_t rowStep(int64_t rs) { return rs / 2 * 16 * warps + 8 * (rs % 2); }
  int64_t colStep(int64_t cs) { return cs / 2 * 8 + cs % 2; }
  Value rowOf(int64_t rs) {
    return arith::AddIOp::create(b, loc, rowBase, cidx(rowStep(rs)));
  }
  Value colOf(int64_t cs) {
    return arith::AddIOp::create(b, loc, colBase, cidx(colStep(cs)));
  }
  /// Null when every thread's row slot rs is inside [0, rows).
  Value rowValid(int64_t rs, int64_t rows) {
    if (rowStep(rs) + 16 * (warps - 1) + 7 < rows)
      return Value();
    return arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult, rowOf(rs),
                                 cidx(rows));
  }
  Value colValid(int64_t cs, int64_t cols) {
    if (colStep(cs) + 6 < cols)
      return Value();
    return arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult, colOf(cs),
                                 cidx(cols));
  }
  int64_t count(Kind k, RankedTensorType t) {
    switch (k) {
    case Kind::Tile:
      return rowSlots(t.getDimSize(0)) * colSlots(t.getDimSize(1));
    case Kind::Row:
      return rowSlots(t.getDimSize(0));
    case Kind::Col:
      return colSlots(t.getDimSize(0));
    }
    llvm_unreachable("kind");
  }
  Kind kindOf(Value v);
  bool wantsColumns(Value v);

  //---- distributed values ----
  Dist get(Value v, Kind k);
  Dist get(Value v) { return get(v, kindOf(v)); }
  Value at(const Dist &d, int64_t i) { return d.splat ? d.splat : d.elems[i]; }
  SmallVector<Value> flatten(Value v, Kind k, int64_t n);
  Value scalar(Value v) { return scalars.lookupOrDefault(v); }

  //---- shared memory ----
  Value sharedPtr(int64_t byteOffset);
  Value elementPtr(Value base, Type type, Value index);
  /// Starts a scratch phase: a barrier (earlier readers are done), then the
  /// scratch region's base for `bytes` bytes.
  Value beginScratch(int64_t bytes);
  /// Writes a distributed tile [R, C] (or [R] as [R, 1]) into `base`
  /// row-major; elements outside the tile go to a trash slot past it.
  void writeDist(const Dist &d, RankedTensorType t, Value base,
                 int64_t stride, Type storeType, int64_t trashIndex = -1);
  /// scf.for whose body `body` emits with this emitter's builder.
  scf::ForOp forLoop(int64_t lb, int64_t ub, ValueRange init,
                     function_ref<SmallVector<Value>(Value, ValueRange)> body);
  /// Reads a [R, C] / [R] tile row-major from `base` into kind `k`.
  Dist readDist(Kind k, RankedTensorType t, Value base, int64_t stride,
                Type type);

  //---- globals ----
  Value globalPtr(Value tensor, Operation *user);
  Value linearOffset(RankedTensorType t, ArrayRef<Value> coords);

  //---- ops ----
  LogicalResult emitBlock(Block &block);
  LogicalResult emitOp(Operation *op);
  LogicalResult emitOpImpl(Operation *op);
  LogicalResult emitConstant(arith::ConstantOp op);
  LogicalResult emitElementwise(Operation *op);
  LogicalResult emitRowAccess(Operation *op);
  LogicalResult emitStagedLoad(LoadOp op);
  void issueCopies(LoadOp op, ArrayRef<Value> indices, Value region);
  /// The indices of pipelined load `op` for the loop iteration `iv`: its
  /// index computation in the loop body, re-emitted with the induction
  /// variable replaced.
  SmallVector<Value> indicesAt(LoadOp op, scf::ForOp loop, Value iv);
  LogicalResult emitDot(DotOp op);
  LogicalResult emitMmaDot(DotOp op, Value lhs, Value rhs, Type type);
  LogicalResult emitSplitDot(DotOp op, Type type);
  /// mma.sync product of `a` ([m, k] in registers, converted to `type`) and
  /// the staged right operand `s` ([n][k] when transposed, else [k][n]).
  /// The product of the left operand `a` (registers, [m, k]) or, when
  /// `aStaged` is given, of the transpose of the [k, m] tile staged there,
  /// with the right operand staged in `s`.
  Dist mmaProduct(const Dist &a, int64_t m, int64_t k, const Staged &s,
                  int64_t n, bool transposed, Type type,
                  const Staged *aStaged = nullptr);
  LogicalResult emitTransposedMmaDot(DotOp op, Value rhs, Type type);
  LogicalResult emitExactDot(DotOp op);
  LogicalResult emitReduce(ReduceOp op);
  LogicalResult emitTopk(Operation *op);
  LogicalResult emitExtract(tensor::ExtractOp op);
  LogicalResult emitReshape(Operation *op);
  LogicalResult emitFor(scf::ForOp op);
  LogicalResult emitIf(scf::IfOp op);
  Value emitScalarMath(Operation *op, ValueRange operands);
  static int64_t stagedRegionBytes(const Staged &s) {
    return roundUp(s.rows * s.stride * 2, 16);
  }
  /// The padded shared-memory shape of a right operand of type `t`.
  static Staged stagedShape(RankedTensorType t, Type type);
  /// Stages a right operand held in registers into `s` (after a barrier):
  /// zero padding, then the tile. The caller ends with a barrier.
  void stageTile(const Dist &d, RankedTensorType t, const Staged &s);
  /// Zeroes `bytes` (a multiple of 4) of shared memory at `offset`.
  void zeroShared(int64_t offset, int64_t bytes);
  /// Allocates a region of shared memory for the whole kernel.
  int64_t allocatePersistent(int64_t bytes) {
    int64_t offset = stagedBytes;
    stagedBytes += roundUp(bytes, 16);
    return offset;
  }
  /// Writes `d` into the persistent region `s` (zero padding kept from the
  /// kernel's start) between two barriers.
  void restage(const Dist &d, RankedTensorType t, const Staged &s) {
    gpu::BarrierOp::create(b, loc);
    writeDist(d, t, sharedPtr(s.offset), s.stride, s.type,
              /*trashIndex=*/s.rows * s.stride);
    gpu::BarrierOp::create(b, loc);
  }

  ProgramOp program;
  gpu::GPUFuncOp func;
  gpu::GPUModuleOp module;
  OpBuilder b;
  Location loc;
  int64_t warps;

  Value tid, lane, rowBase, colBase, quadLane, warpId, groupId;
  DenseMap<Value, Value> globals;
  DenseMap<Value, Dist> dists;
  IRMapping scalars;
  DenseMap<Value, bool> columnMemo;
  /// Rank-3 results of tensor.expand_shape, each collapsed right back (a
  /// tile reshape): the rank-2 tile they expand.
  DenseMap<Value, Value> expanded;
  /// Persistent regions of right operands that come from registers (one,
  /// or hi and lo for split products), and of tiles read by tensor.extract.
  DenseMap<Operation *, SmallVector<Staged, 2>> dotRegions;
  DenseMap<Value, int64_t> extractRegions;
  /// Staged loads of a key loop, double-buffered: the next iteration's
  /// copies are issued before this iteration's products.
  DenseMap<Operation *, scf::ForOp> pipelined;
  DenseMap<Operation *, SmallVector<LoadOp>> pipelinedLoads;
  /// tile.load results staged in shared memory, and extf's of them.
  DenseMap<Value, Staged> staged;
  int64_t stagedBytes = 0, scratchBytes = 0;
  int64_t constCounter = 0;
};

//===----------------------------------------------------------------------===//
// Kinds of rank-1 tiles
//===----------------------------------------------------------------------===//

bool isElementwise(Operation *op) {
  return op->getNumResults() == 1 &&
         (isa<arith::ArithDialect, math::MathDialect>(op->getDialect()) ||
          isa<MaskedFillOp>(op)) &&
         isa<RankedTensorType>(op->getResult(0).getType());
}

/// A rank-1 tile is kept in column form when some consumer broadcasts it
/// along the rows (directly or through elementwise ops); row form serves
/// everything else. The other form is reached through shared memory.
bool KernelEmitter::wantsColumns(Value v) {
  auto it = columnMemo.find(v);
  if (it != columnMemo.end())
    return it->second;
  columnMemo[v] = false; // loop-carried cycles default to rows
  bool result = false;
  for (OpOperand &use : v.getUses()) {
    Operation *user = use.getOwner();
    if (auto bc = dyn_cast<BroadcastOp>(user))
      result |= bc.getDim() == 0;
    else if (isElementwise(user) &&
             cast<RankedTensorType>(user->getResult(0).getType()).getRank() ==
                 1)
      result |= wantsColumns(user->getResult(0));
    else if (auto yield = dyn_cast<scf::YieldOp>(user))
      result |= wantsColumns(
          yield->getParentOp()->getResult(use.getOperandNumber()));
    else if (auto loop = dyn_cast<scf::ForOp>(user);
             loop && use.getOperandNumber() >= 3)
      result |= wantsColumns(
          loop.getRegionIterArgs()[use.getOperandNumber() - 3]);
    if (result)
      break;
  }
  return columnMemo[v] = result;
}

Kind KernelEmitter::kindOf(Value v) {
  auto t = cast<RankedTensorType>(v.getType());
  if (t.getRank() == 2)
    return Kind::Tile;
  return wantsColumns(v) ? Kind::Col : Kind::Row;
}

//===----------------------------------------------------------------------===//
// Distributed values and shared memory
//===----------------------------------------------------------------------===//

Value KernelEmitter::sharedPtr(int64_t byteOffset) {
  auto ptrType = LLVM::LLVMPointerType::get(b.getContext(), 3);
  Value base = LLVM::AddressOfOp::create(b, loc, ptrType, kSharedSymbol);
  return LLVM::GEPOp::create(b, loc, ptrType, b.getI8Type(), base,
                             ArrayRef<LLVM::GEPArg>{(int32_t)byteOffset});
}

Value KernelEmitter::elementPtr(Value base, Type type, Value index) {
  Value i = index.getType().isIndex()
                ? arith::IndexCastOp::create(b, loc, b.getI64Type(), index)
                : index;
  return LLVM::GEPOp::create(b, loc, base.getType(), type, base,
                             ValueRange{i});
}

Value KernelEmitter::beginScratch(int64_t bytes) {
  gpu::BarrierOp::create(b, loc);
  scratchBytes = std::max(scratchBytes, roundUp(bytes, 16) + 16);
  return Value(); // placeholder, resolved in sharedPtr by offset
}

scf::ForOp KernelEmitter::forLoop(
    int64_t lb, int64_t ub, ValueRange init,
    function_ref<SmallVector<Value>(Value, ValueRange)> body) {
  return scf::ForOp::create(
      b, loc, cidx(lb), cidx(ub), cidx(1), init,
      [&](OpBuilder &nb, Location, Value iv, ValueRange args) {
        OpBuilder::InsertionGuard g(b);
        b.setInsertionPoint(nb.getInsertionBlock(), nb.getInsertionPoint());
        scf::YieldOp::create(b, loc, body(iv, args));
      });
}

void KernelEmitter::writeDist(const Dist &d, RankedTensorType t, Value base,
                              int64_t stride, Type storeType,
                              int64_t trashIndex) {
  int64_t rows = t.getDimSize(0), cols = t.getRank() == 2 ? t.getDimSize(1) : 1;
  // Elements outside the tile go to a trash slot, by default right after it.
  Value trash = cidx(trashIndex < 0 ? rows * stride : trashIndex);
  int64_t n = count(d.kind, t);
  for (int64_t i = 0; i < n; ++i) {
    Value row, col, valid;
    if (d.kind == Kind::Tile) {
      int64_t cs = i % colSlots(cols), rs = i / colSlots(cols);
      row = rowOf(rs);
      col = colOf(cs);
      valid = andOpt(rowValid(rs, rows), colValid(cs, cols));
    } else {
      row = d.kind == Kind::Row ? rowOf(i) : colOf(i);
      col = cidx(0);
      valid = d.kind == Kind::Row ? rowValid(i, rows) : colValid(i, rows);
    }
    Value index = arith::AddIOp::create(
        b, loc, arith::MulIOp::create(b, loc, row, cidx(stride)), col);
    if (valid)
      index = arith::SelectOp::create(b, loc, valid, index, trash);
    Value v = at(d, i);
    if (v.getType() != storeType)
      v = castFloat(b, loc, v, cast<FloatType>(storeType));
    LLVM::StoreOp::create(b, loc, v, elementPtr(base, storeType, index));
  }
}

Dist KernelEmitter::readDist(Kind k, RankedTensorType t, Value base,
                             int64_t stride, Type type) {
  int64_t rows = t.getDimSize(0), cols = t.getRank() == 2 ? t.getDimSize(1) : 1;
  Dist d{k, {}, Value()};
  int64_t n = count(k, t);
  auto clamp = [&](Value v, int64_t size) -> Value {
    return arith::MinUIOp::create(b, loc, v, cidx(size - 1));
  };
  for (int64_t i = 0; i < n; ++i) {
    Value row, col;
    if (k == Kind::Tile) {
      row = clamp(rowOf(i / colSlots(cols)), rows);
      col = clamp(colOf(i % colSlots(cols)), cols);
    } else {
      row = clamp(k == Kind::Row ? rowOf(i) : colOf(i), rows);
      col = cidx(0);
    }
    Value index = arith::AddIOp::create(
        b, loc, arith::MulIOp::create(b, loc, row, cidx(stride)), col);
    d.elems.push_back(
        LLVM::LoadOp::create(b, loc, type, elementPtr(base, type, index)));
  }
  return d;
}

Dist KernelEmitter::get(Value v, Kind k) {
  Dist d = dists.lookup(v);
  if (d.splat)
    return Dist{k, {}, d.splat};
  if (d.kind == k)
    return d;
  // Row <-> column form of a rank-1 tile, through shared memory.
  auto t = cast<RankedTensorType>(v.getType());
  Type type = t.getElementType();
  int64_t bytes = t.getDimSize(0) * byteWidth(type);
  beginScratch(bytes);
  Value base = sharedPtr(stagedBytes);
  writeDist(d, t, base, 1, type);
  gpu::BarrierOp::create(b, loc);
  return readDist(k, t, base, 1, type);
}

SmallVector<Value> KernelEmitter::flatten(Value v, Kind k, int64_t n) {
  Dist d = get(v, k);
  SmallVector<Value> out;
  for (int64_t i = 0; i < n; ++i)
    out.push_back(at(d, i));
  return out;
}

//===----------------------------------------------------------------------===//
// Global tensors
//===----------------------------------------------------------------------===//

Value KernelEmitter::globalPtr(Value tensor, Operation *user) {
  Value p = globals.lookup(tensor);
  if (!p)
    user->emitOpError("convert-tile-to-gpu: reads a tensor that is neither a "
                      "kernel parameter nor a program output");
  return p;
}

Value KernelEmitter::linearOffset(RankedTensorType t, ArrayRef<Value> coords) {
  Value offset = cidx(0);
  int64_t stride = 1;
  for (int64_t d = t.getRank() - 1; d >= 0; --d) {
    if (coords[d])
      offset = arith::AddIOp::create(
          b, loc, offset,
          arith::MulIOp::create(b, loc, coords[d], cidx(stride)));
    stride *= t.getDimSize(d);
  }
  return offset;
}

//===----------------------------------------------------------------------===//
// Ops: constants and elementwise math
//===----------------------------------------------------------------------===//

LogicalResult KernelEmitter::emitConstant(arith::ConstantOp op) {
  auto t = dyn_cast<RankedTensorType>(op.getType());
  if (!t) {
    scalars.map(op.getResult(), b.clone(*op)->getResult(0));
    return success();
  }
  auto attr = cast<DenseElementsAttr>(op.getValue());
  if (attr.isSplat()) {
    Value s = arith::ConstantOp::create(b, loc, attr.getSplatValue<TypedAttr>());
    dists[op.getResult()] = Dist{Kind::Tile, {}, s};
    return success();
  }
  // A table in global memory, read like a tile.load.
  Type elem = t.getElementType();
  int64_t n = t.getNumElements();
  auto flat = attr.reshape(RankedTensorType::get({n}, elem));
  std::string name = (func.getName() + "_cst" + Twine(constCounter++)).str();
  {
    OpBuilder mb(module.getBodyRegion());
    mb.setInsertionPointToStart(module.getBody());
    LLVM::GlobalOp::create(mb, loc, LLVM::LLVMArrayType::get(elem, n),
                           /*isConstant=*/true, LLVM::Linkage::Internal, name,
                           flat, /*alignment=*/16, /*addrSpace=*/1);
  }
  auto ptrType = LLVM::LLVMPointerType::get(b.getContext(), 1);
  Value base = LLVM::AddressOfOp::create(b, loc, ptrType, name);
  int64_t cols = t.getRank() == 2 ? t.getDimSize(1) : 1;
  dists[op.getResult()] = readDist(kindOf(op.getResult()), t, base, cols, elem);
  return success();
}

Value KernelEmitter::emitScalarMath(Operation *op, ValueRange operands) {
  Type type = getElementTypeOrSelf(op->getResult(0).getType());
  // The hardware's ex2/lg2 (relative error ~2^-22) rather than libdevice,
  // which convert-gpu-to-nvvm would otherwise call and the PTX would need
  // linked.
  auto approx = [&](StringRef intrinsic, Value x) -> Value {
    return LLVM::CallIntrinsicOp::create(b, loc, type,
                                         b.getStringAttr(intrinsic), x)
        .getResult(0);
  };
  if (isa<math::Exp2Op>(op))
    return approx("llvm.nvvm.ex2.approx.f32", operands[0]);
  if (isa<math::Log2Op>(op))
    return approx("llvm.nvvm.lg2.approx.f", operands[0]);
  if (isa<math::ExpOp>(op))
    return approx("llvm.nvvm.ex2.approx.f32",
                  arith::MulFOp::create(b, loc, operands[0],
                                        cst(type, llvm::numbers::log2e)));
  if (isa<MaskedFillOp>(op))
    return arith::SelectOp::create(b, loc, operands[1], operands[2],
                                   operands[0]);
  OperationState state(loc, op->getName());
  state.addOperands(operands);
  state.addTypes(type);
  state.addAttributes(op->getAttrs());
  return b.create(state)->getResult(0);
}

LogicalResult KernelEmitter::emitElementwise(Operation *op) {
  if (isa<math::MathDialect>(op->getDialect()) &&
      !isa<math::Exp2Op, math::Log2Op, math::ExpOp>(op))
    return op->emitOpError("convert-tile-to-gpu: unsupported math op");
  Value result = op->getResult(0);
  auto t = cast<RankedTensorType>(result.getType());
  Kind k = kindOf(result);
  SmallVector<Dist> ins;
  bool allSplat = true;
  for (Value operand : op->getOperands()) {
    if (isa<RankedTensorType>(operand.getType()))
      ins.push_back(get(operand, k));
    else
      ins.push_back(Dist{k, {}, scalar(operand)});
    allSplat &= static_cast<bool>(ins.back().splat);
  }
  int64_t n = allSplat ? 1 : count(k, t);
  Dist out{k, {}, Value()};
  for (int64_t i = 0; i < n; ++i) {
    SmallVector<Value> operands;
    for (Dist &d : ins)
      operands.push_back(at(d, i));
    out.elems.push_back(emitScalarMath(op, operands));
  }
  if (allSplat)
    out = Dist{k, {}, out.elems.front()};
  dists[result] = out;
  return success();
}

//===----------------------------------------------------------------------===//
// Ops: global memory (tile.load, tile.gather, tile.store)
//===----------------------------------------------------------------------===//

/// tile.load, tile.gather and tile.store: one global access per element the
/// thread owns, out-of-bounds reads give 0 and writes are skipped.
LogicalResult KernelEmitter::emitRowAccess(Operation *op) {
  auto load = dyn_cast<LoadOp>(op);
  auto gather = dyn_cast<GatherOp>(op);
  auto store = dyn_cast<StoreOp>(op);
  if (load && staged.count(load.getResult()))
    return emitStagedLoad(load);
  Value tensor = load     ? load.getSource()
                 : gather ? gather.getSource()
                          : store.getDest();
  Value tileValue = store ? Value(store.getValue()) : op->getResult(0);
  OperandRange indexOps = load     ? load.getIndices()
                          : gather ? gather.getIndices()
                                   : store.getIndices();
  SmallVector<Value> indices =
      llvm::map_to_vector(indexOps, [&](Value v) { return scalar(v); });
  auto srcType = cast<RankedTensorType>(tensor.getType());
  auto tileType = cast<RankedTensorType>(tileValue.getType());
  Type elem = srcType.getElementType();
  Value ptr = globalPtr(tensor, op);
  if (!ptr)
    return failure();

  Kind k = kindOf(tileValue);
  bool rank2 = tileType.getRank() == 2;
  int64_t rows = tileType.getDimSize(0), cols = rank2 ? tileType.getDimSize(1) : 1;
  int64_t nRows = k == Kind::Col ? colSlots(rows) : rowSlots(rows);
  int64_t nCols = rank2 ? colSlots(cols) : 1;
  Dist rowsDist;
  if (gather)
    rowsDist = get(gather.getRows(), Kind::Row);
  Dist value;
  if (store)
    value = get(store.getValue(), k);

  // Replicated copies of a rank-1 tile store once.
  Value writer;
  if (store && k == Kind::Row)
    writer = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, quadLane,
                                   cidx(0));
  if (store && k == Kind::Col)
    writer = arith::CmpIOp::create(
        b, loc, arith::CmpIPredicate::eq,
        arith::AddIOp::create(b, loc, warpId, groupId), cidx(0));

  Dist out{k, {}, Value()};
  for (int64_t r = 0; r < nRows; ++r) {
    Value row = k == Kind::Col ? colOf(r) : rowOf(r);
    Value valid = k == Kind::Col ? colValid(r, rows) : rowValid(r, rows);
    SmallVector<Value> coords(indices);
    Value inBounds;
    if (gather) {
      // indices fix every dimension but the gathered one and the last.
      int64_t d = gather.getRowDim();
      coords.assign(srcType.getRank(), Value());
      auto fixed = indices.begin();
      for (int64_t dim = 0; dim + 1 < srcType.getRank(); ++dim)
        if (dim != d)
          coords[dim] = *fixed++;
      coords[d] = arith::IndexCastOp::create(b, loc, b.getIndexType(),
                                             at(rowsDist, r));
      inBounds = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult,
                                       coords[d],
                                       cidx(srcType.getDimSize(d)));
    } else {
      ArrayRef<int64_t> rowDims =
          load ? load.getRowDims() : store.getRowDims();
      Value rest = row;
      for (int64_t d : llvm::reverse(rowDims.drop_front())) {
        coords[d] = arith::RemUIOp::create(b, loc, rest,
                                           cidx(srcType.getDimSize(d)));
        rest = arith::DivUIOp::create(b, loc, rest,
                                      cidx(srcType.getDimSize(d)));
      }
      int64_t first = rowDims.front();
      if (store && store.getRowStride() != 1)
        rest = arith::MulIOp::create(b, loc, rest,
                                     cidx(store.getRowStride()));
      coords[first] = arith::AddIOp::create(b, loc, indices[first], rest);
      inBounds = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult,
                                       coords[first],
                                       cidx(srcType.getDimSize(first)));
    }
    if (rank2)
      coords.back() = Value();
    Value rowOffset = linearOffset(srcType, coords);
    Value rowOk = andOpt(valid, inBounds);
    // Column slots 2m and 2m + 1 are adjacent columns (colStep). With an even
    // row length the pair starts at an even element, so it is in or out of
    // bounds as a whole and aligned to its size (tensor parameters are
    // 16-byte aligned): one access of two elements moves it.
    int64_t width = rank2 && cols % 2 == 0 ? 2 : 1;
    auto vecType = VectorType::get({width}, elem);
    unsigned align = width * byteWidth(elem);
    for (int64_t c = 0; c < nCols; c += width) {
      Value offset = rowOffset, ok = rowOk;
      if (rank2) {
        offset = arith::AddIOp::create(b, loc, rowOffset, colOf(c));
        ok = andOpt(ok, colValid(c, cols));
      }
      int64_t i = r * nCols + c;
      if (store) {
        ok = andOpt(ok, writer);
        auto guard = scf::IfOp::create(b, loc, ok, /*withElse=*/false);
        OpBuilder::InsertionGuard g(b);
        b.setInsertionPointToStart(guard.thenBlock());
        Value v = at(value, i);
        if (width == 2) {
          v = LLVM::InsertElementOp::create(
              b, loc, LLVM::PoisonOp::create(b, loc, vecType), v, ci32(0));
          v = LLVM::InsertElementOp::create(b, loc, v, at(value, i + 1),
                                            ci32(1));
        }
        LLVM::StoreOp::create(b, loc, v, elementPtr(ptr, elem, offset), align);
        continue;
      }
      Value safe = arith::SelectOp::create(b, loc, ok, offset, cidx(0));
      Value addr = elementPtr(ptr, elem, safe);
      if (width == 1) {
        Value v = LLVM::LoadOp::create(b, loc, elem, addr);
        out.elems.push_back(arith::SelectOp::create(b, loc, ok, v, zero(elem)));
        continue;
      }
      Value pair = LLVM::LoadOp::create(b, loc, vecType, addr, align);
      for (int64_t e = 0; e < width; ++e) {
        Value v = LLVM::ExtractElementOp::create(b, loc, pair, ci32(e));
        out.elems.push_back(arith::SelectOp::create(b, loc, ok, v, zero(elem)));
      }
    }
  }
  if (!store)
    dists[tileValue] = out;
  return success();
}

//===----------------------------------------------------------------------===//
// Staging in shared memory (cp.async copies, persistent regions)
//===----------------------------------------------------------------------===//

/// Copies a [R, C] tile.load into its shared region with 16-byte vector
/// accesses (C is a multiple of 8 16-bit elements), zero-filling padding.
LogicalResult KernelEmitter::emitStagedLoad(LoadOp op) {
  if (pipelined.count(op))
    return success(); // copied ahead by its loop (emitFor)
  Staged s = staged.lookup(op.getResult());
  if (!globalPtr(op.getSource(), op))
    return failure();
  SmallVector<Value> indices =
      llvm::map_to_vector(op.getIndices(), [&](Value v) { return scalar(v); });
  gpu::BarrierOp::create(b, loc); // earlier readers of the region are done
  issueCopies(op, indices, sharedPtr(s.offset));
  NVVM::CpAsyncCommitGroupOp::create(b, loc);
  NVVM::CpAsyncWaitGroupOp::create(b, loc, b.getI32IntegerAttr(0));
  gpu::BarrierOp::create(b, loc);
  return success();
}

/// cp.async of the [R, C] tile.load `op` at `indices` into `region`, 16
/// bytes per chunk (C is a multiple of 8 16-bit elements); no commit.
void KernelEmitter::issueCopies(LoadOp op, ArrayRef<Value> indices,
                                Value region) {
  Staged s = staged.lookup(op.getResult());
  auto srcType = cast<RankedTensorType>(op.getSource().getType());
  auto tileType = op.getResult().getType();
  Value ptr = globals.lookup(op.getSource());
  int64_t rows = tileType.getDimSize(0), cols = tileType.getDimSize(1);
  int64_t chunksPerRow = s.cols / 8, chunks = s.rows * chunksPerRow;
  int64_t threads = warps * kWarpSize;
  forLoop(0, ceilDiv(chunks, threads), {}, [&](Value iv, ValueRange) {
    Value chunk = arith::AddIOp::create(
        b, loc, tid, arith::MulIOp::create(b, loc, iv, cidx(threads)));
    Value inRegion = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult,
                                           chunk, cidx(chunks));
    auto guard = scf::IfOp::create(b, loc, inRegion, /*withElse=*/false);
    OpBuilder::InsertionGuard g(b);
    b.setInsertionPointToStart(guard.thenBlock());
    Value row = arith::DivUIOp::create(b, loc, chunk, cidx(chunksPerRow));
    Value col = arith::MulIOp::create(
        b, loc, arith::RemUIOp::create(b, loc, chunk, cidx(chunksPerRow)),
        cidx(8));
    SmallVector<Value> coords(indices);
    Value rest = row;
    ArrayRef<int64_t> rowDims = op.getRowDims();
    for (int64_t d : llvm::reverse(rowDims.drop_front())) {
      coords[d] =
          arith::RemUIOp::create(b, loc, rest, cidx(srcType.getDimSize(d)));
      rest = arith::DivUIOp::create(b, loc, rest, cidx(srcType.getDimSize(d)));
    }
    int64_t first = rowDims.front();
    coords[first] = arith::AddIOp::create(b, loc, indices[first], rest);
    coords.back() = col;
    Value ok = arith::AndIOp::create(
        b, loc,
        arith::AndIOp::create(
            b, loc,
            arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult, row,
                                  cidx(rows)),
            arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult, col,
                                  cidx(cols))),
        arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult, coords[first],
                              cidx(srcType.getDimSize(first))));
    Value offset = arith::SelectOp::create(
        b, loc, ok, linearOffset(srcType, coords), cidx(0));
    Value dst = arith::AddIOp::create(
        b, loc, arith::MulIOp::create(b, loc, row, cidx(s.stride)), col);
    // cp.async: the copy needs no registers and does not wait, so a thread
    // has all its chunks in flight at once. Reading 0 source bytes
    // zero-fills the chunk (rows past the tensor, padding).
    Value srcBytes = arith::SelectOp::create(b, loc, ok, ci32(16), ci32(0));
    NVVM::CpAsyncOp::create(
        b, loc, elementPtr(region, b.getI16Type(), dst),
        elementPtr(ptr, b.getI16Type(), offset), b.getI32IntegerAttr(16),
        NVVM::LoadCacheModifierKindAttr::get(
            b.getContext(), NVVM::LoadCacheModifierKind::CG),
        srcBytes);
    return SmallVector<Value>();
  });
}

/// `v` (a tile of the dot's right operand, already in registers) copied to
/// scratch shared memory in the padded layout of a staged load.
Staged KernelEmitter::stagedShape(RankedTensorType t, Type type) {
  Staged s;
  s.offset = 0;
  s.rows = roundUp(t.getDimSize(0), 16);
  s.cols = roundUp(t.getDimSize(1), 16);
  s.stride = s.cols + kRowPadBytes / 2;
  s.type = type;
  return s;
}

void KernelEmitter::stageTile(const Dist &d, RankedTensorType t,
                              const Staged &s) {
  // Zero the padding first: the tile may not cover whole fragments.
  zeroShared(s.offset, s.rows * s.stride * byteWidth(s.type));
  gpu::BarrierOp::create(b, loc);
  // Transposed or not, the operand is stored as given ([N][K] or [K][N]).
  writeDist(d, t, sharedPtr(s.offset), s.stride, s.type,
            /*trashIndex=*/s.rows * s.stride);
}

void KernelEmitter::zeroShared(int64_t offset, int64_t bytes) {
  Value base = sharedPtr(offset);
  int64_t words = bytes / 4;
  int64_t threads = warps * kWarpSize;
  forLoop(0, ceilDiv(words, threads), {}, [&](Value iv, ValueRange) {
    Value w = arith::AddIOp::create(
        b, loc, tid, arith::MulIOp::create(b, loc, iv, cidx(threads)));
    Value ok = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult, w,
                                     cidx(words));
    auto guard = scf::IfOp::create(b, loc, ok, /*withElse=*/false);
    OpBuilder::InsertionGuard g(b);
    b.setInsertionPointToStart(guard.thenBlock());
    LLVM::StoreOp::create(b, loc, ci32(0),
                          elementPtr(base, b.getI32Type(), w));
    return SmallVector<Value>();
  });
}

//===----------------------------------------------------------------------===//
// Ops: products (tile.dot on mma.sync, split bf16, exact f32)
//===----------------------------------------------------------------------===//

/// The 16-bit type a dot's operand is a widening of (or has), if any.
std::pair<Value, Type> narrowSource(Value v) {
  if (auto ext = v.getDefiningOp<arith::ExtFOp>())
    v = ext.getIn();
  Type t = getElementTypeOrSelf(v.getType());
  if (t.isBF16() || t.isF16())
    return {v, t};
  return {v, Type()};
}

/// Whether every element of the constant `v` is a bf16 value (the 0/1 and
/// small-count matrices of selection).
bool isBF16Constant(Value v) {
  DenseElementsAttr attr;
  if (!matchPattern(v, m_Constant(&attr)) ||
      !isa<FloatType>(attr.getElementType()))
    return false;
  return llvm::all_of(attr.getValues<APFloat>(), [](APFloat x) {
    bool losesInfo = false;
    x.convert(APFloat::BFloat(), APFloat::rmNearestTiesToEven, &losesInfo);
    return !losesInfo;
  });
}

/// An f32 product one of whose operands is a bf16-exact constant runs on
/// tensor cores with the other operand split into bf16 hi + lo parts (about
/// 16 bits of mantissa, selection's scores stay at f32 accuracy): bf16, or
/// null when the product must stay on the CUDA cores.
Type splitType(DotOp op) {
  if (op.getLhsTransposed())
    return Type();
  bool lhsConst = isBF16Constant(op.getLhs());
  bool rhsConst = isBF16Constant(op.getRhs());
  if (lhsConst == rhsConst)
    return Type();
  return BFloat16Type::get(op.getContext());
}

LogicalResult KernelEmitter::emitDot(DotOp op) {
  auto [rhs, rhsType] = narrowSource(op.getRhs());
  if (rhsType && op.getLhsTransposed())
    return emitTransposedMmaDot(op, rhs, rhsType);
  if (rhsType) {
    auto [lhs, lhsType] = narrowSource(op.getLhs());
    // An f32 left operand is rounded to the right operand's type, as
    // attention rounds p before p . v.
    return emitMmaDot(op, lhsType == rhsType ? lhs : op.getLhs(), rhs,
                      rhsType);
  }
  if (Type type = splitType(op))
    return emitSplitDot(op, type);
  return emitExactDot(op);
}

/// A product on tensor cores: the left operand from registers, the right
/// one staged (straight from global memory when it is a staged load).
LogicalResult KernelEmitter::emitMmaDot(DotOp op, Value lhs, Value rhs,
                                        Type type) {
  auto lhsType = cast<RankedTensorType>(lhs.getType());
  auto resultType = op.getResult().getType();
  int64_t m = resultType.getDimSize(0), n = resultType.getDimSize(1);
  Staged s;
  auto it = staged.find(rhs);
  if (it != staged.end()) {
    s = it->second;
  } else {
    s = dotRegions[op][0];
    restage(get(rhs, Kind::Tile), cast<RankedTensorType>(rhs.getType()), s);
  }
  dists[op.getResult()] =
      mmaProduct(get(lhs, Kind::Tile), m, lhsType.getDimSize(1), s, n,
                 op.getRhsTransposed(), type);
  return success();
}

/// lhs^T . rhs (the backward's p^T . d_o and ds^T . q) on tensor cores: the
/// left operand, rounded to the right one's type as FlashAttention-2 rounds
/// p and ds, is staged as it is ([K][M]) and read transposed into A
/// fragments by ldmatrix.x4.trans; the right operand is staged too unless
/// it is a staged load.
LogicalResult KernelEmitter::emitTransposedMmaDot(DotOp op, Value rhs,
                                                  Type type) {
  auto lt = cast<RankedTensorType>(op.getLhs().getType());
  auto resultType = op.getResult().getType();
  int64_t m = resultType.getDimSize(0), n = resultType.getDimSize(1);
  ArrayRef<Staged> regions = dotRegions[op];
  Staged sa = regions[0];
  auto it = staged.find(rhs);
  bool rhsStaged = it != staged.end();
  Staged sb = rhsStaged ? it->second : regions[1];
  gpu::BarrierOp::create(b, loc);
  writeDist(get(op.getLhs(), Kind::Tile), lt, sharedPtr(sa.offset), sa.stride,
            sa.type, /*trashIndex=*/sa.rows * sa.stride);
  if (!rhsStaged)
    writeDist(get(rhs, Kind::Tile), cast<RankedTensorType>(rhs.getType()),
              sharedPtr(sb.offset), sb.stride, sb.type,
              /*trashIndex=*/sb.rows * sb.stride);
  gpu::BarrierOp::create(b, loc);
  dists[op.getResult()] =
      mmaProduct(Dist{Kind::Tile, {}, Value()}, m, lt.getDimSize(0), sb, n,
                 op.getRhsTransposed(), type, &sa);
  return success();
}

/// x = hi + lo with hi = bf16(x), lo = bf16(x - hi), elementwise.
static std::pair<Dist, Dist> splitBF16(OpBuilder &b, Location loc,
                                       const Dist &x) {
  Type bf16 = b.getBF16Type(), f32 = b.getF32Type();
  Dist hi{x.kind, {}, Value()}, lo{x.kind, {}, Value()};
  auto split = [&](Value v) -> std::pair<Value, Value> {
    Value h = arith::TruncFOp::create(b, loc, bf16, v);
    Value rest =
        arith::SubFOp::create(b, loc, v, arith::ExtFOp::create(b, loc, f32, h));
    return {h, arith::TruncFOp::create(b, loc, bf16, rest)};
  };
  if (x.splat) {
    auto [h, l] = split(x.splat);
    return {Dist{x.kind, {}, h}, Dist{x.kind, {}, l}};
  }
  for (Value v : x.elems) {
    auto [h, l] = split(v);
    hi.elems.push_back(h);
    lo.elems.push_back(l);
  }
  return {hi, lo};
}

static Dist addDists(OpBuilder &b, Location loc, const Dist &x,
                     const Dist &y) {
  Dist out{x.kind, {}, Value()};
  for (auto [u, v] : llvm::zip(x.elems, y.elems))
    out.elems.push_back(arith::AddFOp::create(b, loc, u, v));
  return out;
}

LogicalResult KernelEmitter::emitSplitDot(DotOp op, Type type) {
  auto lt = cast<RankedTensorType>(op.getLhs().getType());
  auto rt = cast<RankedTensorType>(op.getRhs().getType());
  auto resultType = op.getResult().getType();
  int64_t m = resultType.getDimSize(0), n = resultType.getDimSize(1);
  int64_t k = lt.getDimSize(1);
  bool transposed = op.getRhsTransposed();
  Dist lhs = get(op.getLhs(), Kind::Tile), rhs = get(op.getRhs(), Kind::Tile);
  if (isBF16Constant(op.getLhs())) {
    auto [hi, lo] = splitBF16(b, loc, rhs);
    Staged sHi = dotRegions[op][0], sLo = dotRegions[op][1];
    gpu::BarrierOp::create(b, loc);
    writeDist(hi, rt, sharedPtr(sHi.offset), sHi.stride, type,
              sHi.rows * sHi.stride);
    writeDist(lo, rt, sharedPtr(sLo.offset), sLo.stride, type,
              sLo.rows * sLo.stride);
    gpu::BarrierOp::create(b, loc);
    dists[op.getResult()] =
        addDists(b, loc, mmaProduct(lhs, m, k, sHi, n, transposed, type),
                 mmaProduct(lhs, m, k, sLo, n, transposed, type));
    return success();
  }
  // The constant right operand was staged once, at the kernel's start.
  Staged sc = staged.lookup(op.getRhs());
  auto [hi, lo] = splitBF16(b, loc, lhs);
  dists[op.getResult()] =
      addDists(b, loc, mmaProduct(hi, m, k, sc, n, transposed, type),
               mmaProduct(lo, m, k, sc, n, transposed, type));
  return success();
}

/// mma.sync.m16n8k16 with f32 accumulation. Warp w computes the row blocks
/// it owns, for every 8 columns of the result.
Dist KernelEmitter::mmaProduct(const Dist &a, int64_t m, int64_t k,
                               const Staged &s, int64_t n, bool transposed,
                               Type type, const Staged *aStaged) {
  Value base = s.base ? s.base : sharedPtr(s.offset);
  int64_t aCols = colSlots(k);
  MLIRContext *ctx = b.getContext();
  Type f32 = b.getF32Type();
  bool bf16 = type.isBF16();
  auto pairType = VectorType::get({2}, type);
  Type regType = bf16 ? Type(b.getI32Type()) : Type(pairType);
  auto pack = [&](Value lo, Value hi) -> Value {
    Value v = LLVM::PoisonOp::create(b, loc, pairType);
    v = LLVM::InsertElementOp::create(b, loc, v, lo, ci32(0));
    v = LLVM::InsertElementOp::create(b, loc, v, hi, ci32(1));
    return bf16 ? LLVM::BitcastOp::create(b, loc, regType, v).getResult() : v;
  };
  Value typeZero = zero(type);
  // Element (rs, column slot cs) of the left operand in `type`; zero past K.
  auto aElem = [&](int64_t rs, int64_t cs) -> Value {
    if (cs >= aCols)
      return typeZero;
    Value v = at(a, rs * aCols + cs);
    if (v.getType() != type)
      v = castFloat(b, loc, v, cast<FloatType>(type));
    if (Value ok = colValid(cs, k))
      v = arith::SelectOp::create(b, loc, ok, v, typeZero);
    return v;
  };
  // B fragments with ldmatrix.x2: two 8x8 matrices, k in [k0, k0 + 8) and
  // [k0 + 8, k0 + 16), columns n0 .. n0 + 7. Lanes 0-15 give the rows'
  // addresses. [N][K] storage is read as is; [K][N] storage transposed.
  Value laneRow = arith::RemUIOp::create(b, loc, lane, cidx(8));
  Value laneHalf = arith::RemUIOp::create(
      b, loc, arith::DivUIOp::create(b, loc, lane, cidx(8)), cidx(2));
  Value half8 = arith::MulIOp::create(b, loc, laneHalf, cidx(8));
  Value laneOffset;
  if (transposed)
    laneOffset = arith::AddIOp::create(
        b, loc, arith::MulIOp::create(b, loc, laneRow, cidx(s.stride)), half8);
  else
    laneOffset = arith::MulIOp::create(
        b, loc, arith::AddIOp::create(b, loc, laneRow, half8), cidx(s.stride));
  Value laneBase = elementPtr(base, type, laneOffset);
  auto ldShape = NVVM::LdStMatrixShapeAttr::get(ctx, 8, 8);
  auto ldType =
      NVVM::LdStMatrixEltTypeAttr::get(ctx, NVVM::LdStMatrixEltType::B16);
  // ldmatrix of `count` 8x8 matrices at each lane's `ptr` (`col`: .trans):
  // one register per matrix, in the MMA operand's register type.
  auto ldmatrix = [&](Value ptr, int64_t count,
                      NVVM::MMALayout layout) -> SmallVector<Value> {
    auto structType = LLVM::LLVMStructType::getLiteral(
        ctx, SmallVector<Type>(count, b.getI32Type()));
    Value matrices = NVVM::LdMatrixOp::create(
        b, loc, structType, ptr, b.getI32IntegerAttr(count),
        NVVM::MMALayoutAttr::get(ctx, layout), ldShape, ldType);
    SmallVector<Value> regs;
    for (int64_t e = 0; e < count; ++e) {
      Value r =
          LLVM::ExtractValueOp::create(b, loc, matrices, ArrayRef<int64_t>{e});
      regs.push_back(bf16 ? r : LLVM::BitcastOp::create(b, loc, regType, r));
    }
    return regs;
  };
  auto bFragments = [&](int64_t n0, int64_t k0) -> SmallVector<Value> {
    int64_t offset = transposed ? n0 * s.stride + k0 : k0 * s.stride + n0;
    return ldmatrix(elementPtr(laneBase, type, cidx(offset)), 2,
                    transposed ? NVVM::MMALayout::row : NVVM::MMALayout::col);
  };

  // A fragments of a staged [K][M] left operand, transposed: ldmatrix.x4
  // .trans, lanes 8i .. 8i + 7 addressing the rows of matrix i, which holds
  // k0 + 8*(i/2) .. + 7 by m0 + 8*(i%2) .. + 7 (the fragment's register
  // order: rows g and g + 8, then k + 8).
  Value aLaneBase;
  if (aStaged) {
    Value laneK = arith::AddIOp::create(
        b, loc, laneRow,
        arith::MulIOp::create(
            b, loc, arith::DivUIOp::create(b, loc, lane, cidx(16)), cidx(8)));
    Value laneM = arith::AddIOp::create(
        b, loc, half8, arith::MulIOp::create(b, loc, warpId, cidx(16)));
    aLaneBase = elementPtr(
        sharedPtr(aStaged->offset), type,
        arith::AddIOp::create(
            b, loc, arith::MulIOp::create(b, loc, laneK, cidx(aStaged->stride)),
            laneM));
  }
  auto aFragments = [&](int64_t i, int64_t step) -> SmallVector<Value> {
    if (!aStaged) {
      int64_t r0 = 2 * i, r1 = 2 * i + 1, c0 = 4 * step, c1 = 4 * step + 2;
      return {pack(aElem(r0, c0), aElem(r0, c0 + 1)),
              pack(aElem(r1, c0), aElem(r1, c0 + 1)),
              pack(aElem(r0, c1), aElem(r0, c1 + 1)),
              pack(aElem(r1, c1), aElem(r1, c1 + 1))};
    }
    int64_t offset = 16 * step * aStaged->stride + rowStep(2 * i);
    return ldmatrix(elementPtr(aLaneBase, type, cidx(offset)), 4,
                    NVVM::MMALayout::col);
  };

  auto structType = LLVM::LLVMStructType::getLiteral(ctx, {f32, f32, f32, f32});
  Dist out{Kind::Tile, {}, Value()};
  int64_t rSlots = rowSlots(m), cSlots = colSlots(n);
  out.elems.assign(rSlots * cSlots, Value());
  Value fzero = zero(f32);
  NVVM::MMATypes mmaType = bf16 ? NVVM::MMATypes::bf16 : NVVM::MMATypes::f16;
  // One row block (16 rows) of the warp: every 8 columns, over K.
  auto rowBlock = [&](int64_t i) -> SmallVector<Value> {
    SmallVector<Value> results;
    for (int64_t j = 0; j < cSlots / 2; ++j) {
      SmallVector<Value> acc(4, fzero);
      for (int64_t step = 0; step < ceilDiv(k, 16); ++step) {
        SmallVector<Value> fa = aFragments(i, step);
        SmallVector<Value> fb = bFragments(8 * j, 16 * step);
        auto mma = NVVM::MmaOp::create(
            b, loc, structType, fa, fb, acc, {16, 8, 16}, std::nullopt,
            std::nullopt, std::array<NVVM::MMATypes, 2>{mmaType, mmaType},
            std::array<NVVM::MMALayout, 2>{NVVM::MMALayout::row,
                                           NVVM::MMALayout::col});
        for (int64_t e = 0; e < 4; ++e)
          acc[e] = LLVM::ExtractValueOp::create(b, loc, mma.getResult(),
                                                ArrayRef<int64_t>{e});
      }
      llvm::append_range(results, acc);
    }
    return results;
  };
  for (int64_t i = 0; i < rSlots / 2; ++i) {
    SmallVector<Value> acc;
    if (rowStep(2 * i) + 16 * (warps - 1) < m) {
      acc = rowBlock(i);
    } else {
      // Warps whose block is all padding rows skip its products (the test
      // is warp-uniform, as mma.sync needs).
      Value firstRow = arith::AddIOp::create(
          b, loc, arith::MulIOp::create(b, loc, warpId, cidx(16)),
          cidx(rowStep(2 * i)));
      Value live = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult,
                                         firstRow, cidx(m));
      SmallVector<Type> types(4 * (cSlots / 2), f32);
      auto guard = scf::IfOp::create(b, loc, types, live,
                                     /*withElseRegion=*/true);
      OpBuilder::InsertionGuard g(b);
      b.setInsertionPointToStart(guard.thenBlock());
      scf::YieldOp::create(b, loc, rowBlock(i));
      b.setInsertionPointToStart(guard.elseBlock());
      scf::YieldOp::create(b, loc, SmallVector<Value>(types.size(), fzero));
      acc.assign(guard.getResults().begin(), guard.getResults().end());
    }
    for (int64_t j = 0; j < cSlots / 2; ++j) {
      out.elems[(2 * i) * cSlots + 2 * j] = acc[4 * j];
      out.elems[(2 * i) * cSlots + 2 * j + 1] = acc[4 * j + 1];
      out.elems[(2 * i + 1) * cSlots + 2 * j] = acc[4 * j + 2];
      out.elems[(2 * i + 1) * cSlots + 2 * j + 1] = acc[4 * j + 3];
    }
  }
  return out;
}

/// f32 products (selection's score sums, small and exact-sensitive) on the
/// CUDA cores: both operands in scratch, one dot product per element.
LogicalResult KernelEmitter::emitExactDot(DotOp op) {
  auto lt = cast<RankedTensorType>(op.getLhs().getType());
  auto rt = cast<RankedTensorType>(op.getRhs().getType());
  auto resultType = op.getResult().getType();
  Type f32 = b.getF32Type();
  int64_t lBytes = lt.getNumElements() * 4 + 16;
  int64_t rBytes = rt.getNumElements() * 4 + 16;
  beginScratch(lBytes + rBytes);
  Value lBase = sharedPtr(stagedBytes);
  Value rBase = sharedPtr(stagedBytes + roundUp(lBytes, 16));
  writeDist(get(op.getLhs(), Kind::Tile), lt, lBase, lt.getDimSize(1), f32);
  writeDist(get(op.getRhs(), Kind::Tile), rt, rBase, rt.getDimSize(1), f32);
  gpu::BarrierOp::create(b, loc);
  int64_t m = resultType.getDimSize(0), n = resultType.getDimSize(1);
  int64_t k = op.getLhsTransposed() ? lt.getDimSize(0) : lt.getDimSize(1);
  Dist out{Kind::Tile, {}, Value()};
  for (int64_t rs = 0; rs < rowSlots(m); ++rs) {
    Value row = rowOf(rs);
    for (int64_t cs = 0; cs < colSlots(n); ++cs) {
      Value col = colOf(cs);
      auto dotProduct = [&]() -> Value {
        auto loop = forLoop(
            0, k, ValueRange{zero(f32)},
            [&](Value kk, ValueRange acc) -> SmallVector<Value> {
              auto idx = [&](Value r, Value c, int64_t stride) -> Value {
                return arith::AddIOp::create(
                    b, loc, arith::MulIOp::create(b, loc, r, cidx(stride)), c);
              };
              Value li = op.getLhsTransposed() ? idx(kk, row, lt.getDimSize(1))
                                               : idx(row, kk, lt.getDimSize(1));
              Value ri = op.getRhsTransposed() ? idx(col, kk, rt.getDimSize(1))
                                               : idx(kk, col, rt.getDimSize(1));
              Value lv =
                  LLVM::LoadOp::create(b, loc, f32, elementPtr(lBase, f32, li));
              Value rv =
                  LLVM::LoadOp::create(b, loc, f32, elementPtr(rBase, f32, ri));
              return {arith::AddFOp::create(
                  b, loc, acc[0], arith::MulFOp::create(b, loc, lv, rv))};
            });
        return loop.getResult(0);
      };
      // Padding elements skip the loop (a warp whose rows are all padding
      // skips the whole product).
      Value valid = andOpt(rowValid(rs, m), colValid(cs, n));
      if (!valid) {
        out.elems.push_back(dotProduct());
        continue;
      }
      auto guard = scf::IfOp::create(b, loc, TypeRange{f32}, valid,
                                     /*withElseRegion=*/true);
      {
        OpBuilder::InsertionGuard g(b);
        b.setInsertionPointToStart(guard.thenBlock());
        scf::YieldOp::create(b, loc, dotProduct());
        b.setInsertionPointToStart(guard.elseBlock());
        scf::YieldOp::create(b, loc, zero(f32));
      }
      out.elems.push_back(guard.getResult(0));
    }
  }
  dists[op.getResult()] = out;
  return success();
}

//===----------------------------------------------------------------------===//
// Ops: reductions, and what goes through scratch (top-n, extract, reshape)
//===----------------------------------------------------------------------===//

/// Per-row max or sum: the thread's columns, then the quad's four lanes.
LogicalResult KernelEmitter::emitReduce(ReduceOp op) {
  auto t = cast<RankedTensorType>(op.getValue().getType());
  int64_t cols = t.getDimSize(1);
  bool isMax = op.getKind() == ReduceKind::Max;
  Type type = t.getElementType();
  Value identity = cst(type, isMax ? kNegInf : 0.0);
  auto combine = [&](Value x, Value y) -> Value {
    if (isMax)
      return arith::MaximumFOp::create(b, loc, x, y);
    return arith::AddFOp::create(b, loc, x, y);
  };
  Dist in = get(op.getValue(), Kind::Tile);
  Dist out{Kind::Row, {}, Value()};
  for (int64_t rs = 0; rs < rowSlots(t.getDimSize(0)); ++rs) {
    Value acc = identity;
    for (int64_t cs = 0; cs < colSlots(cols); ++cs) {
      Value v = at(in, rs * colSlots(cols) + cs);
      if (Value ok = colValid(cs, cols))
        v = arith::SelectOp::create(b, loc, ok, v, identity);
      acc = combine(acc, v);
    }
    for (int64_t offset : {1, 2}) {
      auto shfl = gpu::ShuffleOp::create(b, loc, acc, ci32(offset),
                                         ci32(kWarpSize),
                                         gpu::ShuffleMode::XOR);
      acc = combine(acc, shfl.getShuffleResult());
    }
    out.elems.push_back(acc);
  }
  dists[op.getResult()] = out;
  return success();
}

/// topk_merge and topk_finalize through shared memory, with the CPU
/// lowering's order: a larger score first, then a smaller index (finalize:
/// ascending indices, -1 last).
///
/// merge: every element of a row's union (its n listed entries and its
/// candidates) counts the elements that come before it; that count is its
/// slot in the merged list, kept when below n. The order is strict (the
/// listed -1 padding entries, equal to each other, go by slot), so the
/// counts are a permutation and fill the n slots: the serial insertion's
/// result, with one thread per element instead of one per row (a row's 16
/// candidates were 16 dependent walks of its list).
///
/// finalize (once per program): one thread per row re-inserts the row's
/// chosen indices into an ascending list.
LogicalResult KernelEmitter::emitTopk(Operation *op) {
  auto merge = dyn_cast<TopkMergeOp>(op);
  auto finalize = dyn_cast<TopkFinalizeOp>(op);
  Value bestScores = merge ? merge.getBestScores() : finalize.getScores();
  Value bestIndices = merge ? merge.getBestIndices() : finalize.getIndices();
  auto listType = cast<RankedTensorType>(bestScores.getType());
  int64_t rows = listType.getDimSize(0), n = listType.getDimSize(1);
  int64_t cands = merge ? cast<RankedTensorType>(merge.getScores().getType())
                              .getDimSize(1)
                        : 0;
  Type f32 = b.getF32Type(), i32 = b.getI32Type();
  int64_t listBytes = roundUp(rows * n * 4 + 4, 16);
  int64_t candBytes = roundUp(rows * cands * 4 + 4, 16);
  beginScratch((merge ? 4 : 2) * listBytes + candBytes);
  Value keys = sharedPtr(stagedBytes);
  Value idxs = sharedPtr(stagedBytes + listBytes);
  Value cand = sharedPtr(stagedBytes + 2 * listBytes);
  writeDist(get(bestScores, Kind::Tile), listType, keys, n, f32);
  writeDist(get(bestIndices, Kind::Tile), listType, idxs, n, i32);
  if (merge)
    writeDist(get(merge.getScores(), Kind::Tile),
              cast<RankedTensorType>(merge.getScores().getType()), cand, cands,
              f32);
  gpu::BarrierOp::create(b, loc);

  Value minusOne = ci32(-1);
  auto load = [&](Value base, Type type, Value at) -> Value {
    return LLVM::LoadOp::create(b, loc, type, elementPtr(base, type, at));
  };
  auto cmpI = [&](arith::CmpIPredicate p, Value x, Value y) -> Value {
    return arith::CmpIOp::create(b, loc, p, x, y);
  };
  if (merge) {
    Value newKeys = sharedPtr(stagedBytes + 2 * listBytes + candBytes);
    Value newIdxs = sharedPtr(stagedBytes + 3 * listBytes + candBytes);
    Value start =
        arith::IndexCastOp::create(b, loc, i32, scalar(merge.getStart()));
    // (key, index) before (myKey, myIndex) in the list order.
    auto before = [&](Value key, Value index, Value myKey,
                      Value myIndex) -> Value {
      Value tie = arith::AndIOp::create(
          b, loc,
          arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OEQ, key, myKey),
          cmpI(arith::CmpIPredicate::slt, index, myIndex));
      return arith::OrIOp::create(
          b, loc,
          arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OGT, key, myKey),
          tie);
    };
    auto addIf = [&](Value count, Value cond) -> Value {
      return arith::AddIOp::create(
          b, loc, count,
          arith::SelectOp::create(b, loc, cond, cidx(1), cidx(0)));
    };
    int64_t per = n + cands, total = rows * per, threads = warps * kWarpSize;
    forLoop(
        0, ceilDiv(total, threads), {},
        [&](Value iv, ValueRange) -> SmallVector<Value> {
          Value w = arith::AddIOp::create(
              b, loc, tid, arith::MulIOp::create(b, loc, iv, cidx(threads)));
          auto guard = scf::IfOp::create(
              b, loc, cmpI(arith::CmpIPredicate::ult, w, cidx(total)), false);
          OpBuilder::InsertionGuard g(b);
          b.setInsertionPointToStart(guard.thenBlock());
          Value row = arith::DivUIOp::create(b, loc, w, cidx(per));
          Value e = arith::RemUIOp::create(b, loc, w, cidx(per));
          Value listBase = arith::MulIOp::create(b, loc, row, cidx(n));
          Value candBase = arith::MulIOp::create(b, loc, row, cidx(cands));
          Value listed = cmpI(arith::CmpIPredicate::ult, e, cidx(n));
          // Both reads stay in bounds: the other kind's address is clamped.
          Value slot = arith::SelectOp::create(b, loc, listed, e, cidx(0));
          Value c = arith::SelectOp::create(
              b, loc, listed, cidx(0),
              arith::SubIOp::create(b, loc, e, cidx(n)));
          Value listAt = arith::AddIOp::create(b, loc, listBase, slot);
          Value candAt = arith::AddIOp::create(b, loc, candBase, c);
          Value myKey = arith::SelectOp::create(
              b, loc, listed, load(keys, f32, listAt), load(cand, f32, candAt));
          Value myIndex = arith::SelectOp::create(
              b, loc, listed, load(idxs, i32, listAt),
              arith::AddIOp::create(
                  b, loc, start, arith::IndexCastOp::create(b, loc, i32, c)));
          // Listed entries before a listed one: exactly the earlier slots.
          Value fromList =
              forLoop(0, n, ValueRange{cidx(0)},
                      [&](Value s, ValueRange it) -> SmallVector<Value> {
                        Value at = arith::AddIOp::create(b, loc, listBase, s);
                        return {addIf(it[0], before(load(keys, f32, at),
                                                    load(idxs, i32, at), myKey,
                                                    myIndex))};
                      })
                  .getResult(0);
          Value count = arith::SelectOp::create(b, loc, listed, e, fromList);
          count =
              forLoop(
                  0, cands, ValueRange{count},
                  [&](Value k, ValueRange it) -> SmallVector<Value> {
                    Value key = load(
                        cand, f32, arith::AddIOp::create(b, loc, candBase, k));
                    Value index = arith::AddIOp::create(
                        b, loc, start,
                        arith::IndexCastOp::create(b, loc, i32, k));
                    return {addIf(it[0], before(key, index, myKey, myIndex))};
                  })
                  .getResult(0);
          auto keep = scf::IfOp::create(
              b, loc, cmpI(arith::CmpIPredicate::ult, count, cidx(n)), false);
          b.setInsertionPointToStart(keep.thenBlock());
          Value at = arith::AddIOp::create(b, loc, listBase, count);
          LLVM::StoreOp::create(b, loc, myKey, elementPtr(newKeys, f32, at));
          LLVM::StoreOp::create(b, loc, myIndex, elementPtr(newIdxs, i32, at));
          return {};
        });
    gpu::BarrierOp::create(b, loc);
    dists[merge.getNewScores()] =
        readDist(Kind::Tile, listType, newKeys, n, f32);
    dists[merge.getNewIndices()] =
        readDist(Kind::Tile, listType, newIdxs, n, i32);
    return success();
  }

  auto mine = cmpI(arith::CmpIPredicate::ult, tid, cidx(rows));
  auto guard = scf::IfOp::create(b, loc, mine, /*withElse=*/false);
  {
    OpBuilder::InsertionGuard g(b);
    b.setInsertionPointToStart(guard.thenBlock());
    Value rowBaseIdx = arith::MulIOp::create(b, loc, tid, cidx(n));
    // Inserts index cIdx into the row's ascending list (-1 last), walking
    // its n slots.
    auto insert = [&](Value cIdx) {
      forLoop(0, n, ValueRange{cIdx},
              [&](Value slot, ValueRange it) -> SmallVector<Value> {
                Value ip = elementPtr(
                    idxs, i32, arith::AddIOp::create(b, loc, rowBaseIdx, slot));
                Value sIdx = LLVM::LoadOp::create(b, loc, i32, ip);
                Value swap = arith::AndIOp::create(
                    b, loc, cmpI(arith::CmpIPredicate::ne, it[0], minusOne),
                    arith::OrIOp::create(
                        b, loc, cmpI(arith::CmpIPredicate::eq, sIdx, minusOne),
                        cmpI(arith::CmpIPredicate::slt, it[0], sIdx)));
                LLVM::StoreOp::create(
                    b, loc, arith::SelectOp::create(b, loc, swap, it[0], sIdx),
                    ip);
                return {arith::SelectOp::create(b, loc, swap, sIdx, it[0])};
              });
    };
    // Indices of real entries, re-inserted into an ascending list whose
    // empty slots are -1. The list is rebuilt in place from a copy.
    SmallVector<Value> keysOld, idxOld;
    for (int64_t s = 0; s < n; ++s) {
      Value at = arith::AddIOp::create(b, loc, rowBaseIdx, cidx(s));
      keysOld.push_back(load(keys, f32, at));
      idxOld.push_back(load(idxs, i32, at));
    }
    for (int64_t s = 0; s < n; ++s) {
      Value at = arith::AddIOp::create(b, loc, rowBaseIdx, cidx(s));
      LLVM::StoreOp::create(b, loc, minusOne, elementPtr(idxs, i32, at));
    }
    Value negInf = cst(f32, kNegInf);
    for (int64_t s = 0; s < n; ++s) {
      Value chosen = arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OGT,
                                           keysOld[s], negInf);
      insert(arith::SelectOp::create(b, loc, chosen, idxOld[s], minusOne));
    }
  }
  gpu::BarrierOp::create(b, loc);
  dists[finalize.getResult()] = readDist(Kind::Tile, listType, idxs, n, i32);
  return success();
}

/// One element of a tile, the same in every thread: through scratch.
LogicalResult KernelEmitter::emitExtract(tensor::ExtractOp op) {
  auto t = cast<RankedTensorType>(op.getTensor().getType());
  if (t.getRank() > 2)
    return op.emitOpError("convert-tile-to-gpu: tiles have rank 1 or 2");
  Type type = t.getElementType();
  int64_t cols = t.getRank() == 2 ? t.getDimSize(1) : 1;
  Value base;
  if (auto it = extractRegions.find(op.getTensor());
      it != extractRegions.end()) {
    // Published when it was computed.
    base = sharedPtr(it->second);
  } else {
    beginScratch(t.getNumElements() * byteWidth(type));
    base = sharedPtr(stagedBytes);
    writeDist(get(op.getTensor()), t, base, cols, type);
    gpu::BarrierOp::create(b, loc);
  }
  Value index = scalar(op.getIndices()[0]);
  if (t.getRank() == 2)
    index = arith::AddIOp::create(
        b, loc, arith::MulIOp::create(b, loc, index, cidx(cols)),
        scalar(op.getIndices()[1]));
  scalars.map(op.getResult(),
              LLVM::LoadOp::create(b, loc, type, elementPtr(base, type, index))
                  .getResult());
  return success();
}

/// A tile reshape, written as tensor.expand_shape to rank 3 and
/// tensor.collapse_shape back to rank 2 (row-major order is kept): the tile
/// goes through scratch and comes back in its new shape.
LogicalResult KernelEmitter::emitReshape(Operation *op) {
  if (auto expand = dyn_cast<tensor::ExpandShapeOp>(op)) {
    bool pair = expand.getSrcType().getRank() == 2 &&
                llvm::all_of(expand->getUsers(),
                             llvm::IsaPred<tensor::CollapseShapeOp>);
    if (!pair)
      return op->emitOpError("convert-tile-to-gpu: a tile reshape must be a "
                             "rank-2 expand_shape whose users collapse it "
                             "back to rank 2");
    expanded[expand.getResult()] = expand.getSrc();
    return success();
  }
  auto collapse = cast<tensor::CollapseShapeOp>(op);
  Value source = expanded.lookup(collapse.getSrc());
  if (!source && collapse.getSrcType().getRank() == 2)
    source = collapse.getSrc();
  auto resultType = collapse.getResultType();
  if (!source || resultType.getRank() != 2)
    return op->emitOpError("convert-tile-to-gpu: a tile reshape must collapse "
                           "an expanded rank-2 tile to rank 2");
  auto sourceType = cast<RankedTensorType>(source.getType());
  Type type = sourceType.getElementType();
  beginScratch(sourceType.getNumElements() * byteWidth(type));
  Value base = sharedPtr(stagedBytes);
  writeDist(get(source, Kind::Tile), sourceType, base,
            sourceType.getDimSize(1), type);
  gpu::BarrierOp::create(b, loc);
  dists[collapse.getResult()] =
      readDist(Kind::Tile, resultType, base, resultType.getDimSize(1), type);
  return success();
}

//===----------------------------------------------------------------------===//
// Control flow (scf.for with double-buffered loads, scf.if)
//===----------------------------------------------------------------------===//

SmallVector<Value> KernelEmitter::indicesAt(LoadOp op, scf::ForOp loop,
                                            Value iv) {
  IRMapping mapping;
  mapping.map(loop.getInductionVar(), iv);
  std::function<Value(Value)> at = [&](Value v) -> Value {
    if (Value m = mapping.lookupOrNull(v))
      return m;
    Operation *def = v.getDefiningOp();
    if (!def || def->getParentOp() != loop.getOperation())
      return scalar(v); // defined before the loop
    for (Value operand : def->getOperands())
      at(operand);
    IRMapping local;
    for (Value operand : def->getOperands())
      local.map(operand, mapping.lookupOrDefault(operand) == operand
                             ? scalar(operand)
                             : mapping.lookup(operand));
    Operation *clone = b.clone(*def, local);
    for (auto [from, to] : llvm::zip(def->getResults(), clone->getResults()))
      mapping.map(from, to);
    return mapping.lookup(v);
  };
  return llvm::map_to_vector(op.getIndices(), at);
}

/// Whether `v` is computed in `loop`'s body (directly, not in a nested
/// region) from the induction variable and values from before the loop by
/// side-effect-free scalar ops only.
static bool isLoopAffine(Value v, scf::ForOp loop) {
  if (v == loop.getInductionVar())
    return true;
  Operation *def = v.getDefiningOp();
  if (!def)
    return !loop->isAncestor(v.getParentBlock()->getParentOp());
  if (!loop->isAncestor(def))
    return true;
  if (def->getParentOp() != loop.getOperation() ||
      !isa<arith::ArithDialect>(def->getDialect()) ||
      def->getNumRegions() != 0 || !isMemoryEffectFree(def) ||
      llvm::any_of(def->getResultTypes(), llvm::IsaPred<TensorType>))
    return false;
  return llvm::all_of(def->getOperands(),
                      [&](Value o) { return isLoopAffine(o, loop); });
}

LogicalResult KernelEmitter::emitFor(scf::ForOp op) {
  // Double-buffered loads: the prologue copies the first iteration's tiles.
  SmallVector<LoadOp> prefetch = pipelinedLoads.lookup(op);
  for (LoadOp load : prefetch) {
    Staged s = staged.lookup(load.getResult());
    gpu::BarrierOp::create(b, loc);
    issueCopies(load, indicesAt(load, op, scalar(op.getLowerBound())),
                sharedPtr(s.offset));
  }
  if (!prefetch.empty())
    NVVM::CpAsyncCommitGroupOp::create(b, loc);

  SmallVector<Value> init;
  SmallVector<int64_t> sizes;
  SmallVector<Kind> kinds;
  for (auto [arg, value] : llvm::zip(op.getRegionIterArgs(), op.getInitArgs())) {
    if (auto t = dyn_cast<RankedTensorType>(value.getType())) {
      Kind k = kindOf(arg);
      SmallVector<Value> flat = flatten(value, k, count(k, t));
      kinds.push_back(k);
      sizes.push_back(flat.size());
      llvm::append_range(init, flat);
    } else {
      kinds.push_back(Kind::Tile);
      sizes.push_back(-1);
      init.push_back(scalar(value));
    }
  }
  // Rebuilds each (tensor or scalar) value from its flattened pieces.
  auto unflatten = [&](ValueRange flat, ValueRange originals) {
    int64_t pos = 0;
    for (auto [i, original] : llvm::enumerate(originals)) {
      if (sizes[i] < 0) {
        scalars.map(original, flat[pos++]);
        continue;
      }
      dists[original] = Dist{kinds[i],
                             llvm::to_vector(flat.slice(pos, sizes[i])),
                             Value()};
      pos += sizes[i];
    }
  };
  LogicalResult status = success();
  auto loop = scf::ForOp::create(
      b, loc, scalar(op.getLowerBound()), scalar(op.getUpperBound()),
      scalar(op.getStep()), init,
      [&](OpBuilder &nb, Location, Value iv, ValueRange args) {
        OpBuilder::InsertionGuard g(b);
        b.setInsertionPoint(nb.getInsertionBlock(), nb.getInsertionPoint());
        scalars.map(op.getInductionVar(), iv);
        unflatten(args, op.getRegionIterArgs());
        if (!prefetch.empty()) {
          // Buffer parity of this iteration; the other buffer was read by
          // the previous one (hence the barrier) and receives the next.
          Value step = scalar(op.getStep());
          Value count = arith::DivUIOp::create(
              b, loc,
              arith::SubIOp::create(b, loc, iv, scalar(op.getLowerBound())),
              step);
          Value parity = arith::RemUIOp::create(b, loc, count, cidx(2));
          Value other = arith::SubIOp::create(b, loc, cidx(1), parity);
          Value next = arith::AddIOp::create(b, loc, iv, step);
          Value more = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::slt,
                                             next, scalar(op.getUpperBound()));
          gpu::BarrierOp::create(b, loc);
          auto guard = scf::IfOp::create(b, loc, more, /*withElse=*/false);
          {
            OpBuilder::InsertionGuard g2(b);
            b.setInsertionPointToStart(guard.thenBlock());
            for (LoadOp load : prefetch) {
              Staged s = staged.lookup(load.getResult());
              Value buffer = elementPtr(
                  sharedPtr(s.offset), b.getI8Type(),
                  arith::MulIOp::create(b, loc, other,
                                        cidx(stagedRegionBytes(s))));
              issueCopies(load, indicesAt(load, op, next), buffer);
            }
          }
          NVVM::CpAsyncCommitGroupOp::create(b, loc);
          NVVM::CpAsyncWaitGroupOp::create(b, loc, b.getI32IntegerAttr(1));
          gpu::BarrierOp::create(b, loc);
          for (LoadOp load : prefetch) {
            Staged s = staged.lookup(load.getResult());
            s.base = elementPtr(
                sharedPtr(s.offset), b.getI8Type(),
                arith::MulIOp::create(b, loc, parity,
                                      cidx(stagedRegionBytes(s))));
            staged[load.getResult()] = s;
            for (Operation *user : load->getUsers())
              if (auto ext = dyn_cast<arith::ExtFOp>(user))
                staged[ext.getOut()] = s;
          }
        }
        for (Operation &inner : op.getBody()->without_terminator())
          if (failed(emitOp(&inner))) {
            status = failure();
            break;
          }
        SmallVector<Value> yielded;
        auto yield = cast<scf::YieldOp>(op.getBody()->getTerminator());
        for (auto [i, v] : llvm::enumerate(yield.getOperands())) {
          if (sizes[i] < 0) {
            yielded.push_back(scalar(v));
            continue;
          }
          if (succeeded(status))
            llvm::append_range(yielded, flatten(v, kinds[i], sizes[i]));
        }
        if (succeeded(status))
          scf::YieldOp::create(b, loc, yielded);
        else
          scf::YieldOp::create(b, loc, args);
      });
  if (failed(status))
    return failure();
  if (!prefetch.empty())
    NVVM::CpAsyncWaitGroupOp::create(b, loc, b.getI32IntegerAttr(0));
  unflatten(loop.getResults(), op.getResults());
  return success();
}

LogicalResult KernelEmitter::emitIf(scf::IfOp op) {
  SmallVector<Type> types;
  SmallVector<int64_t> sizes;
  SmallVector<Kind> kinds;
  for (Value r : op.getResults()) {
    if (auto t = dyn_cast<RankedTensorType>(r.getType())) {
      Kind k = kindOf(r);
      kinds.push_back(k);
      sizes.push_back(count(k, t));
      types.append(count(k, t), t.getElementType());
    } else {
      kinds.push_back(Kind::Tile);
      sizes.push_back(-1);
      types.push_back(r.getType());
    }
  }
  auto newIf = scf::IfOp::create(b, loc, types, scalar(op.getCondition()),
                                 /*withElseRegion=*/!op.getElseRegion().empty());
  auto emitBranch = [&](Region &from, Region &to) -> LogicalResult {
    OpBuilder::InsertionGuard g(b);
    if (to.empty())
      to.emplaceBlock();
    Block &block = to.front();
    if (!block.empty() && block.back().hasTrait<OpTrait::IsTerminator>())
      b.setInsertionPoint(&block.back());
    else
      b.setInsertionPointToEnd(&block);
    for (Operation &inner : from.front().without_terminator())
      if (failed(emitOp(&inner)))
        return failure();
    auto yield = cast<scf::YieldOp>(from.front().getTerminator());
    SmallVector<Value> yielded;
    for (auto [i, v] : llvm::enumerate(yield.getOperands())) {
      if (sizes[i] < 0)
        yielded.push_back(scalar(v));
      else
        llvm::append_range(yielded, flatten(v, kinds[i], sizes[i]));
    }
    if (block.empty() || !block.back().hasTrait<OpTrait::IsTerminator>())
      scf::YieldOp::create(b, loc, yielded);
    else
      block.back().setOperands(yielded);
    return success();
  };
  if (failed(emitBranch(op.getThenRegion(), newIf.getThenRegion())))
    return failure();
  if (!op.getElseRegion().empty() &&
      failed(emitBranch(op.getElseRegion(), newIf.getElseRegion())))
    return failure();
  int64_t pos = 0;
  for (auto [i, r] : llvm::enumerate(op.getResults())) {
    if (sizes[i] < 0) {
      scalars.map(r, newIf.getResult(pos++));
      continue;
    }
    dists[r] = Dist{kinds[i],
                    SmallVector<Value>(newIf.getResults().slice(pos, sizes[i])),
                    Value()};
    pos += sizes[i];
  }
  return success();
}

//===----------------------------------------------------------------------===//
// Dispatch, shared-memory layout and the kernel
//===----------------------------------------------------------------------===//

LogicalResult KernelEmitter::emitOp(Operation *op) {
  if (failed(emitOpImpl(op)))
    return failure();
  // A tile that tensor.extract reads goes to its region once, not per read.
  for (Value r : op->getResults()) {
    auto it = extractRegions.find(r);
    if (it == extractRegions.end())
      continue;
    auto t = cast<RankedTensorType>(r.getType());
    gpu::BarrierOp::create(b, loc);
    writeDist(get(r), t, sharedPtr(it->second),
              t.getRank() == 2 ? t.getDimSize(1) : 1, t.getElementType());
    gpu::BarrierOp::create(b, loc);
  }
  return success();
}

LogicalResult KernelEmitter::emitOpImpl(Operation *op) {
  if (auto c = dyn_cast<arith::ConstantOp>(op))
    return emitConstant(c);
  if (auto s = dyn_cast<tensor::SplatOp>(op)) {
    dists[s.getResult()] = Dist{Kind::Tile, {}, scalar(s.getInput())};
    return success();
  }
  if (isa<LoadOp, GatherOp, StoreOp>(op))
    return emitRowAccess(op);
  if (auto range = dyn_cast<RangeOp>(op)) {
    Kind k = kindOf(range.getResult());
    auto t = range.getResult().getType();
    Value start = arith::IndexCastOp::create(b, loc, b.getI32Type(),
                                             scalar(range.getStart()));
    Dist out{k, {}, Value()};
    for (int64_t i = 0; i < count(k, t); ++i) {
      Value pos = k == Kind::Row ? rowOf(i) : colOf(i);
      pos = arith::IndexCastOp::create(b, loc, b.getI32Type(), pos);
      if (range.getDivisor() != 1)
        pos = arith::DivUIOp::create(b, loc, pos, ci32(range.getDivisor()));
      out.elems.push_back(arith::AddIOp::create(b, loc, start, pos));
    }
    dists[range.getResult()] = out;
    return success();
  }
  if (auto bc = dyn_cast<BroadcastOp>(op)) {
    auto t = bc.getResult().getType();
    Kind from = bc.getDim() == 1 ? Kind::Row : Kind::Col;
    Dist in = get(bc.getValue(), from);
    if (in.splat) {
      dists[bc.getResult()] = Dist{Kind::Tile, {}, in.splat};
      return success();
    }
    int64_t cSlots = colSlots(t.getDimSize(1));
    Dist out{Kind::Tile, {}, Value()};
    for (int64_t i = 0; i < count(Kind::Tile, t); ++i)
      out.elems.push_back(at(in, from == Kind::Row ? i / cSlots : i % cSlots));
    dists[bc.getResult()] = out;
    return success();
  }
  if (auto dot = dyn_cast<DotOp>(op))
    return emitDot(dot);
  if (auto reduce = dyn_cast<ReduceOp>(op))
    return emitReduce(reduce);
  if (isa<TopkMergeOp, TopkFinalizeOp>(op))
    return emitTopk(op);
  if (auto extract = dyn_cast<tensor::ExtractOp>(op))
    return emitExtract(extract);
  if (isa<tensor::ExpandShapeOp, tensor::CollapseShapeOp>(op))
    return emitReshape(op);
  if (auto loop = dyn_cast<scf::ForOp>(op))
    return emitFor(loop);
  if (auto ifOp = dyn_cast<scf::IfOp>(op))
    return emitIf(ifOp);
  if (auto ext = dyn_cast<arith::ExtFOp>(op); ext && staged.count(ext.getIn()))
    return success();
  if (isElementwise(op))
    return emitElementwise(op);
  bool tensors = llvm::any_of(op->getOperandTypes(), llvm::IsaPred<TensorType>) ||
                 llvm::any_of(op->getResultTypes(), llvm::IsaPred<TensorType>);
  if (!tensors && op->getNumRegions() == 0 &&
      isa<arith::ArithDialect>(op->getDialect())) {
    b.clone(*op, scalars);
    return success();
  }
  return op->emitOpError("convert-tile-to-gpu: unsupported op in a program");
}

LogicalResult KernelEmitter::emitBlock(Block &block) {
  for (Operation &op : block.without_terminator())
    if (failed(emitOp(&op)))
      return failure();
  return success();
}

/// A tile.load feeds only tensor-core dots as their right operand (directly
/// or widened): it can go straight to shared memory.
bool onlyMmaRightOperand(Value v) {
  if (v.use_empty())
    return false;
  for (OpOperand &use : v.getUses()) {
    Operation *user = use.getOwner();
    if (auto dot = dyn_cast<DotOp>(user)) {
      if (use.getOperandNumber() != 1 || dot.getLhsTransposed())
        return false;
      continue;
    }
    if (auto ext = dyn_cast<arith::ExtFOp>(user)) {
      for (OpOperand &extUse : ext->getUses()) {
        auto dot = dyn_cast<DotOp>(extUse.getOwner());
        if (!dot || extUse.getOperandNumber() != 1 || dot.getLhsTransposed())
          return false;
      }
      continue;
    }
    return false;
  }
  return true;
}

LogicalResult KernelEmitter::emit() {
  Block *entry = &func.getBody().front();
  b.setInsertionPointToStart(entry);
  tid = gpu::ThreadIdOp::create(b, loc, gpu::Dimension::x);
  warpId = arith::DivUIOp::create(b, loc, tid, cidx(kWarpSize));
  lane = arith::RemUIOp::create(b, loc, tid, cidx(kWarpSize));
  groupId = arith::DivUIOp::create(b, loc, lane, cidx(4));
  quadLane = arith::RemUIOp::create(b, loc, lane, cidx(4));
  rowBase = arith::AddIOp::create(
      b, loc, arith::MulIOp::create(b, loc, warpId, cidx(16)), groupId);
  colBase = arith::MulIOp::create(b, loc, quadLane, cidx(2));

  // Grid coordinates: program dimension i is CUDA dimension rank - 1 - i.
  auto ids = program.getIds();
  gpu::Dimension dims[] = {gpu::Dimension::x, gpu::Dimension::y,
                           gpu::Dimension::z};
  for (auto [i, id] : llvm::enumerate(ids))
    scalars.map(id, gpu::BlockIdOp::create(b, loc, dims[ids.size() - 1 - i]));

  // Regions of the loads staged in shared memory.
  program.walk([&](LoadOp load) {
    auto t = load.getResult().getType();
    Type elem = t.getElementType();
    if (t.getRank() != 2 || !(elem.isBF16() || elem.isF16()) ||
        t.getDimSize(1) % 8 != 0 || !onlyMmaRightOperand(load.getResult()))
      return;
    Staged s{stagedBytes, roundUp(t.getDimSize(0), 16),
             roundUp(t.getDimSize(1), 16), 0, elem};
    s.stride = s.cols + kRowPadBytes / 2;
    // A load straight in a key loop's body, at indices computed from the
    // induction variable, gets two buffers: the next iteration's copy
    // overlaps this iteration's products.
    auto loop = dyn_cast<scf::ForOp>(load->getParentOp());
    bool pipeline =
        loop &&
        stagedBytes + 2 * stagedRegionBytes(s) <= kDoubleBufferBudget &&
        llvm::all_of(load.getIndices(),
                     [&](Value v) { return isLoopAffine(v, loop); });
    stagedBytes += (pipeline ? 2 : 1) * stagedRegionBytes(s);
    if (pipeline) {
      pipelined[load] = loop;
      pipelinedLoads[loop].push_back(load);
    }
    staged[load.getResult()] = s;
    for (Operation *user : load->getUsers())
      if (auto ext = dyn_cast<arith::ExtFOp>(user))
        staged[ext.getOut()] = s;
  });

  // bf16-exact constant right operands of f32 products: staged once.
  SmallVector<Value> stagedConstants;
  program.walk([&](DotOp dot) {
    Value rhs = dot.getRhs();
    if (!splitType(dot) || !isBF16Constant(rhs) || staged.count(rhs))
      return;
    Staged s = stagedShape(cast<RankedTensorType>(rhs.getType()),
                           b.getBF16Type());
    s.offset = stagedBytes;
    stagedBytes += roundUp((s.rows + 1) * s.stride * 2, 16);
    staged[rhs] = s;
    stagedConstants.push_back(rhs);
  });

  // Operands staged from registers (right operands; the left operand of an
  // lhs-transposed product, first), and tiles read element by element.
  program.walk([&](DotOp dot) {
    auto [rhs, rhsType] = narrowSource(dot.getRhs());
    auto region = [&](Value operand, Type type) {
      Staged s = stagedShape(cast<RankedTensorType>(operand.getType()), type);
      s.offset = allocatePersistent((s.rows + 1) * s.stride * byteWidth(type));
      return s;
    };
    if (rhsType) {
      if (dot.getLhsTransposed())
        dotRegions[dot].push_back(region(dot.getLhs(), rhsType));
      if (!staged.count(rhs))
        dotRegions[dot].push_back(region(dot.getRhs(), rhsType));
      return;
    }
    if (splitType(dot) && isBF16Constant(dot.getLhs()))
      dotRegions[dot] = {region(dot.getRhs(), b.getBF16Type()),
                         region(dot.getRhs(), b.getBF16Type())};
  });
  program.walk([&](tensor::ExtractOp extract) {
    Value source = extract.getTensor();
    auto t = cast<RankedTensorType>(source.getType());
    if (source.getDefiningOp() && t.getRank() <= 2 &&
        !extractRegions.count(source))
      extractRegions[source] =
          allocatePersistent((t.getNumElements() + 1) *
                             byteWidth(t.getElementType()));
  });
  // Padding of persistent regions stays zero: clear them all once.
  zeroShared(0, stagedBytes);
  gpu::BarrierOp::create(b, loc);

  // Captured constants are rebuilt inside the kernel.
  llvm::SetVector<Value> captured;
  program.getBody().walk([&](Operation *op) {
    for (Value v : op->getOperands())
      if (!program->isAncestor(v.getParentBlock()->getParentOp()) &&
          v.getDefiningOp<arith::ConstantOp>())
        captured.insert(v);
  });
  for (Value v : captured)
    if (failed(emitConstant(v.getDefiningOp<arith::ConstantOp>())))
      return failure();
  for (Value v : stagedConstants) {
    if (!dists.count(v) &&
        failed(emitConstant(v.getDefiningOp<arith::ConstantOp>())))
      return failure();
    stageTile(get(v, Kind::Tile), cast<RankedTensorType>(v.getType()),
              staged[v]);
  }
  if (!stagedConstants.empty())
    gpu::BarrierOp::create(b, loc);

  if (failed(emitBlock(program.getBodyBlock())))
    return failure();
  gpu::ReturnOp::create(b, loc);
  return success();
}

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
          rows, cast<RankedTensorType>(store.getValue().getType()).getDimSize(0));
  });
  return std::clamp<int64_t>(ceilDiv(rows, 16), minWarps, maxWarps);
}

/// An elementwise arith op on whole tensors in a host function (gradient
/// contributions summed by nsa-decompose) becomes a program of its own: the
/// host plan only launches kernels. The operands are viewed as [N, C] (C the
/// last dimension), the program adds 64-row tiles, and the result is viewed
/// back in its shape.
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
      return tensor::ExpandShapeOp::create(b, loc, flat, v,
                                           ArrayRef<ReassociationIndices>{{0, 1}});
    return tensor::CollapseShapeOp::create(b, loc, flat, v, groups);
  };
  SmallVector<Value> operands;
  for (Value v : op->getOperands()) {
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
  auto program = ProgramOp::create(b, loc, TypeRange(resultTypes),
                                   ValueRange(gridSizes), ValueRange(outs),
                                   b.getStringAttr("elementwise"));
  Block *body = b.createBlock(&program.getBody(), {},
                              {b.getIndexType(), flatType}, {loc, loc});
  ProgramOp::ensureTerminator(program.getBody(), b, loc);
  b.setInsertionPoint(body->getTerminator());
  Value row0 = arith::MulIOp::create(b, loc, body->getArgument(0),
                                     arith::ConstantIndexOp::create(b, loc, kRows));
  Value zeroIdx = arith::ConstantIndexOp::create(b, loc, 0);
  auto rowDims = b.getDenseI64ArrayAttr({0});
  SmallVector<Value> tiles;
  for (Value v : operands) {
    auto tileType = RankedTensorType::get(
        {kRows, cols}, cast<RankedTensorType>(v.getType()).getElementType());
    tiles.push_back(LoadOp::create(b, loc, tileType, v,
                                   ValueRange{row0, zeroIdx}, rowDims));
  }
  OperationState state(loc, op->getName());
  state.addOperands(tiles);
  state.addTypes(RankedTensorType::get({kRows, cols}, type.getElementType()));
  state.addAttributes(op->getAttrs());
  Value result = b.create(state)->getResult(0);
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
  op->erase();
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
      if (isElementwise(&op) && !isa<arith::ConstantOp>(op) &&
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
    auto gpuModule = gpu::GPUModuleOp::create(mb, fn.getLoc(),
                                              (fn.getName() + "_kernels").str());
    mb.setInsertionPointToStart(gpuModule.getBody());
    LLVM::GlobalOp::create(
        mb, fn.getLoc(), LLVM::LLVMArrayType::get(mb.getI8Type(), 0),
        /*isConstant=*/false, LLVM::Linkage::External, kSharedSymbol,
        Attribute(), /*alignment=*/16, /*addrSpace=*/3);

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
      for (unsigned i = 0; i < kernel.getNumArguments(); ++i)
        kernel.setArgAttr(i, LLVM::LLVMDialect::getNoAliasAttrName(),
                          UnitAttr::get(ctx));

      KernelEmitter emitter(program, kernel, kernelValues, warps, gpuModule);
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
