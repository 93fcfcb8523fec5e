//===- KernelEmitter.h - one tile.program as a GPU kernel -------*- C++ -*-===//
//
// The state and the op emitters of convert-tile-to-gpu's KernelEmitter,
// which compiles one tile.program into the body of a kernel gpu.func. Tiles
// live in registers, distributed in the accumulator layout of
// mma.sync.m16n8k16 (see `Kind` below), so that a tile.dot's left operand
// and result need no data movement and a row of a tile sits in the four
// lanes of one quad: row reductions are two shuffles. A dot's right operand
// is staged in shared memory: a tile.load that only feeds such operands is
// copied straight from global memory into its own shared region. Ops that
// need other threads' elements (top-n merging, extracting one element,
// changing a rank-1 tile between row and column form) go through a scratch
// region of shared memory between two barriers.
//
// Every op of the program body is emitted per thread, fully unrolled over
// the thread's elements: tile shapes are static and small, and unrolling is
// what keeps the elements in registers.
//
// The emitter's methods live in one file per topic: KernelLayout.cpp (kinds
// of rank-1 tiles, distributed values, shared and global memory),
// KernelElementwise.cpp, KernelMemory.cpp (tile.load/gather/store, staging),
// KernelProducts.cpp, KernelScratch.cpp (reductions, top-n, compaction,
// extract, reshape), KernelControlFlow.cpp, KernelEmit.cpp (dispatch, the
// shared-memory layout and the kernel). ConvertTileToGPU.cpp is the pass.
//
//===----------------------------------------------------------------------===//

#ifndef NSA_LIB_DIALECT_TILE_TRANSFORMS_KERNELEMITTER_H
#define NSA_LIB_DIALECT_TILE_TRANSFORMS_KERNELEMITTER_H

#include "TileRewrites.h"

#include "nsa/Dialect/Tile/IR/TileDialect.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/IRMapping.h"

namespace mlir::nsa::tile::kernel {

using namespace mlir::nsa::tile::rewrites;

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

inline int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline int64_t roundUp(int64_t a, int64_t b) { return ceilDiv(a, b) * b; }
inline int64_t byteWidth(Type t) {
  return ceilDiv(t.getIntOrFloatBitWidth(), 8);
}

//===----------------------------------------------------------------------===//
// Layout
//===----------------------------------------------------------------------===//

/// How a value is spread over the block's threads.
///  - Tile: a [R, C] tile. Warp w owns the rows 16 * (w + W * i) + g + 8 * h
///    (g = lane / 4, row slot 2 * i + h); a lane owns the columns
///    8 * j + 2 * q + e (q = lane % 4, column slot 2 * j + e). Element
///    (row slot rs, column slot cs) is elems[rs * colSlots + cs]. This is
///    mma.sync's accumulator layout, and its A operand layout too. In a
///    program that never tells columns apart (`wideColumns`) a lane owns
///    the columns 32 * j + 8 * q + e (column slot 8 * j + e) instead: eight
///    adjacent columns, one 16-byte access for 16-bit elements.
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

/// A tile staged in shared memory: a rank-1 tile (vectorShape: cols and
/// stride 1, no padding), or a dot operand of rows x cols elements of
/// `type`, rows and columns beyond the tile's zero-filled up to multiples of
/// 16. Two layouts of dot operands:
///  - padded: row-major, row stride `stride` elements (16 bytes of padding
///    put the eight rows a fragment load touches into different banks);
///  - swizzled (16-bit right operands whose columns are a multiple of 64):
///    wgmma's 128-byte swizzle. Columns are cut into blocks of 64 (128
///    bytes a row), each block stored row after row, and the 16-byte chunk
///    c of row r sits at chunk c ^ (r % 8). wgmma reads it through a matrix
///    descriptor (K-major for an [N][K] operand, MN-major for [K][N]); ldmatrix
///    and cp.async address it through `stagedIndex`. The region is 1024-byte
///    aligned.
struct Staged {
  /// `stride` is the padded layout's row stride (unused when swizzled).
  int64_t offset, rows, cols, stride;
  Type type;
  bool swizzled = false;
  /// Set for a double-buffered load inside its loop: the current buffer.
  Value base = Value();

  /// Bytes of one column block of a swizzled region.
  int64_t blockBytes() const { return rows * 128; }
  /// Bytes of the region (one buffer), a trash slot past the tile included.
  int64_t regionBytes() const {
    return swizzled ? roundUp(rows * cols * 2 + 16, 1024)
                    : roundUp((rows + 1) * stride * byteWidth(type), 16);
  }
  /// Element index of the trash slot writes of padding elements go to.
  int64_t trashIndex() const { return swizzled ? rows * cols : rows * stride; }
};

class KernelEmitter {
public:
  KernelEmitter(ProgramOp program, gpu::GPUFuncOp func, ArrayRef<Value> params,
                int64_t warps, bool wgmma, gpu::GPUModuleOp module)
      : program(program), func(func), module(module), b(func.getContext()),
        loc(program.getLoc()), warps(warps), wgmma(wgmma) {
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
    return arith::ConstantOp::create(b, loc, b.getIntegerAttr(t, (int64_t)v));
  }
  Value zero(Type t) { return cst(t, 0.0); }
  Value cmpI(arith::CmpIPredicate p, Value x, Value y) {
    return arith::CmpIOp::create(b, loc, p, x, y);
  }
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
  int64_t colStep(int64_t cs) {
    return wideColumns ? cs / 8 * 32 + cs % 8 : cs / 2 * 8 + cs % 2;
  }
  /// The largest colBase (lane 3's first column).
  int64_t maxColBase() { return wideColumns ? 24 : 6; }
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
    if (colStep(cs) + maxColBase() < cols)
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
  /// Computes columnForms (see KernelLayout.cpp).
  void markColumnForms();

  //---- distributed values ----
  Dist get(Value v, Kind k);
  Dist get(Value v) { return get(v, kindOf(v)); }
  Value at(const Dist &d, int64_t i) { return d.splat ? d.splat : d.elems[i]; }
  SmallVector<Value> flatten(Value v, Kind k, int64_t n);
  Value scalar(Value v) { return scalars.lookupOrDefault(v); }

  //---- shared memory ----
  Value sharedPtr(int64_t byteOffset);
  /// The current buffer of staged region `s`.
  Value stagedBase(const Staged &s) {
    return s.base ? s.base : sharedPtr(s.offset);
  }
  Value elementPtr(Value base, Type type, Value index);
  /// Starts a scratch phase: a barrier (earlier readers are done), then the
  /// scratch region's base for `bytes` bytes.
  Value beginScratch(int64_t bytes);
  /// Writes a distributed tile [R, C] (or [R] as [R, 1]) into `base`
  /// row-major; elements outside the tile go to a trash slot past it.
  void writeDist(const Dist &d, RankedTensorType t, Value base, int64_t stride,
                 Type storeType, int64_t trashIndex = -1);
  /// Writes a distributed tile into the staged region `s`, in its layout.
  void writeStaged(const Dist &d, RankedTensorType t, const Staged &s);
  /// writeDist's loop: element (row, col) goes to `index(row, col)`.
  void writeElements(const Dist &d, RankedTensorType t, Value base,
                     Type storeType, int64_t trashIndex,
                     function_ref<Value(Value, Value)> index);
  /// Element index of (row, col) in the staged region `s`.
  Value stagedIndex(const Staged &s, Value row, Value col);
  /// Ends the writes of staged operands: a barrier, after the proxy fence
  /// that orders them before wgmma's (async proxy) reads.
  void publishStaged();
  /// scf.for whose body `body` emits with this emitter's builder.
  scf::ForOp forLoop(int64_t lb, int64_t ub, ValueRange init,
                     function_ref<SmallVector<Value>(Value, ValueRange)> body);
  /// Reads a [R, C] / [R] tile row-major from `base` into kind `k`.
  Dist readDist(Kind k, RankedTensorType t, Value base, int64_t stride,
                Type type);

  //---- globals ----
  Value globalPtr(Value tensor, Operation *user);
  Value linearOffset(RankedTensorType t, ArrayRef<Value> coords);
  /// Row `row` of `rowDims` (row-major, times `stride`) from `coords`: sets
  /// the inner row dimensions' coordinates (covered whole: remainders,
  /// innermost first) and adds the rest to the first's. Returns whether the
  /// row is inside the tensor (its first row dimension is in bounds).
  Value locateRow(RankedTensorType t, ArrayRef<int64_t> rowDims, Value row,
                  SmallVectorImpl<Value> &coords, int64_t stride = 1);

  //---- ops ----
  LogicalResult emitBlock(Block &block);
  LogicalResult emitOp(Operation *op);
  LogicalResult emitOpImpl(Operation *op);
  LogicalResult emitConstant(arith::ConstantOp op);
  /// The positions of tile.range `range` in form `k`.
  Dist emitRange(RangeOp range, Kind k);
  LogicalResult emitElementwise(Operation *op);
  LogicalResult emitRowAccess(Operation *op);
  LogicalResult emitStagedLoad(LoadOp op);
  LogicalResult emitStagedGather(GatherOp op);
  /// Closes the cp.async group of the staged tile `v` (a load outside a
  /// pipelined loop, or a gather), which is then waited for where it is
  /// first read (landCopies), so the ops in between issue meanwhile.
  void commitInFlight(Value v) {
    NVVM::CpAsyncCommitGroupOp::create(b, loc);
    inFlight.insert(v);
  }
  /// Whether `op` must wait for the staged tiles in flight: it reads one of
  /// them (directly or widened) or has regions.
  bool needsLandedCopies(Operation *op);
  /// Waits for the copies in flight, if any, and publishes them (fence,
  /// barrier). Also the end of every emitted block: copies issued in a
  /// block land in it.
  void landCopies();
  /// cp.async of the [R, C] tile.load or tile.gather `op` into `region`, 16
  /// bytes per chunk (C is a multiple of 8 16-bit elements), or of a rank-1
  /// load by issueElementCopies; no commit.
  /// `indices` has one coordinate per source dimension (a gather's are 0 on
  /// its row dimensions); tile row r reads row r of the row dimensions (a
  /// load) or row `rowIndex[r]` (i32 in shared memory: a gather).
  void issueCopies(Operation *op, ArrayRef<Value> indices, Value region,
                   Value rowIndex = Value());
  /// cp.async of the rank-1 tile.load or tile.gather `op` (32-bit elements)
  /// into `region`, one element a row slot; `rows` holds a gather's row
  /// indices in row form. No commit.
  void issueElementCopies(Operation *op, ArrayRef<Value> indices, Value region,
                          const Dist *rows);
  /// The indices of pipelined load `op` for the loop iteration `iv`: its
  /// index computation in the loop body, re-emitted with the induction
  /// variable replaced.
  SmallVector<Value> indicesAt(LoadOp op, scf::ForOp loop, Value iv);
  LogicalResult emitDot(DotOp op);
  LogicalResult emitMmaDot(DotOp op, Value lhs, Value rhs, Type type);
  LogicalResult emitSplitDot(DotOp op, Type type);
  /// The product of the left operand `a` (registers, [m, k], converted to
  /// `type`) or, when `aStaged` is given, of the tile staged there: [m, k]
  /// when `aKMajor` (wgmma only), else the transpose of a [k, m] tile; the
  /// right operand is staged in `s` ([n][k] when transposed, else [k][n]).
  /// On mma.sync, or on wgmma where onWarpgroups. `init` (wgmma only) is
  /// the accumulator the product is added to.
  Dist mmaProduct(const Dist &a, int64_t m, int64_t k, const Staged &s,
                  int64_t n, bool transposed, Type type,
                  const Staged *aStaged = nullptr, const Dist *init = nullptr,
                  bool aKMajor = false);
  /// Whether every 64-row block of an [m, *] result fills a warpgroup.
  bool fillsWarpgroups(int64_t m) {
    return warps % 4 == 0 && 16 * (warps - 1) < m - rowStep(rowSlots(m) - 2);
  }
  /// Whether an [m, *] product with the right operand in `s` and the left
  /// one in registers or (lhs-transposed) staged in `aStaged` runs on wgmma.
  bool onWarpgroups(const Staged &s, int64_t m, const Staged *aStaged) {
    return s.swizzled && (!aStaged || aStaged->swizzled) && fillsWarpgroups(m);
  }
  /// Whether `dot`'s right operand is staged swizzled and its result rows
  /// fill warpgroups: wgmma, if its left operand allows.
  bool rightOnWarpgroups(DotOp dot);
  /// Whether `dot` runs on wgmma with its left operand read from shared
  /// memory (K-major) were it a staged load.
  bool leftOnWarpgroups(DotOp dot);
  /// Whether a tile.load feeds only tensor-core dots (directly or widened):
  /// as their right operand, or as the left one of wgmma products. It then
  /// goes straight to shared memory.
  bool onlyMmaOperand(Value v);
  /// The `acc + dot` that a wgmma product can accumulate into `acc`
  /// directly (its only use, `acc` already emitted), or null.
  arith::AddFOp accumulatingAdd(DotOp op);
  /// The accumulators of row block `i` (64 rows a warpgroup) by
  /// wgmma.m64nNk16, A from registers (`aFragments(step)`) or, when
  /// `aStaged` is given, from that swizzled region: [M][K] (`aKMajor`) or
  /// [K][M] (M-major); B from the swizzled region `s`, both through matrix
  /// descriptors. Laid out as mma.sync's (four per 8 columns); the chain
  /// starts from `init` if set.
  SmallVector<Value>
  wgmmaRowBlock(int64_t i, function_ref<SmallVector<Value>(int64_t)> aFragments,
                const Staged *aStaged, bool aKMajor, int64_t k, const Staged &s,
                int64_t n, bool transposed, Type type, ArrayRef<Value> init);
  /// The f32 results of a side-effecting inline asm (one per "=" in
  /// `constraints`; the asm is volatile, so it keeps its place).
  SmallVector<Value> asmResults(StringRef text, StringRef constraints,
                                ValueRange operands);
  /// Emits the product through `product(init)`, accumulating into `acc`
  /// when the op is `acc + dot` and `wgmma` says the product runs there.
  void emitAccumulating(DotOp op, bool wgmma,
                        function_ref<Dist(const Dist *)> product);
  LogicalResult emitTransposedMmaDot(DotOp op, Value rhs, Type type);
  LogicalResult emitExactDot(DotOp op);
  LogicalResult emitReduce(ReduceOp op);
  LogicalResult emitGroupSum(GroupSumOp op);
  LogicalResult emitTopk(Operation *op);
  LogicalResult emitCompact(CompactOp op);
  LogicalResult emitExtract(tensor::ExtractOp op);
  LogicalResult emitReshape(Operation *op);
  LogicalResult emitFor(scf::ForOp op);
  LogicalResult emitIf(scf::IfOp op);
  Value emitScalarMath(Operation *op, ValueRange operands);
  /// The shared-memory shape of an operand tile `t` staged as `type`:
  /// swizzled when it is a 16-bit right operand that wgmma can read.
  Staged stagedShape(RankedTensorType t, Type type, bool rightOperand);
  /// The shared-memory shape of a rank-1 tile `t` of 32-bit elements
  /// staged by cp.async (one element a row, a trash slot past them).
  Staged vectorShape(RankedTensorType t);
  /// Allocates `buffers` persistent regions of shape `s`.
  Staged allocate(Staged s, int64_t buffers = 1);
  /// Allocates `buffers` persistent regions for the operand tile `t`.
  Staged allocateStaged(RankedTensorType t, Type type, bool rightOperand,
                        int64_t buffers = 1);
  /// Stages a right operand held in registers into `s` (after a barrier):
  /// zero padding, then the tile. The caller ends with a barrier.
  void stageTile(const Dist &d, RankedTensorType t, const Staged &s);
  /// Zeroes `bytes` (a multiple of 4) of shared memory at `offset`.
  void zeroShared(int64_t offset, int64_t bytes);
  /// Allocates a region of shared memory for the whole kernel.
  int64_t allocatePersistent(int64_t bytes, int64_t align = 16) {
    int64_t offset = roundUp(stagedBytes, align);
    stagedBytes = offset + roundUp(bytes, 16);
    return offset;
  }
  /// Writes `d` into the persistent region `s` (zero padding kept from the
  /// kernel's start) between two barriers.
  void restage(const Dist &d, RankedTensorType t, const Staged &s) {
    gpu::BarrierOp::create(b, loc);
    writeStaged(d, t, s);
    publishStaged();
  }

  ProgramOp program;
  gpu::GPUFuncOp func;
  gpu::GPUModuleOp module;
  OpBuilder b;
  Location loc;
  int64_t warps;
  /// Products of whole warpgroups on wgmma (sm_90a) rather than mma.sync.
  bool wgmma;
  /// Whether loads that are wgmma left operands go to shared memory (set in
  /// emit(): where a loop carries more than 64 f32 values a thread).
  bool stageLeftOperands = false;
  /// Whether the Tile layout gives each lane eight adjacent columns (set in
  /// emit() for programs whose ops never tell columns apart).
  bool wideColumns = false;

  Value tid, lane, rowBase, colBase, quadLane, warpId, groupId;
  DenseMap<Value, Value> globals;
  DenseMap<Value, Dist> dists;
  IRMapping scalars;
  /// The rank-1 tiles kept in column form (set in emit()).
  llvm::DenseSet<Value> columnForms;
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
  /// `acc + dot` ops whose sum a wgmma product computed (skipped).
  llvm::SmallPtrSet<Operation *, 8> fusedAdds;
  /// tile.load and tile.gather results staged in shared memory, and extf's
  /// of them. A rank-1 one is read from there by get(), in the form asked.
  DenseMap<Value, Staged> staged;
  /// Staged tiles whose copies are issued but not yet waited for.
  llvm::SmallPtrSet<Value, 4> inFlight;
  int64_t stagedBytes = 0, scratchBytes = 0;
  int64_t constCounter = 0;
};

// Helpers shared by several Kernel*.cpp files (documented where defined).
bool isElementwise(Operation *op);            // KernelLayout.cpp
bool columnBlind(ProgramOp program);          // KernelLayout.cpp
std::pair<Value, Type> narrowSource(Value v); // KernelProducts.cpp
bool isBF16Constant(Value v);                 // KernelProducts.cpp
Type splitType(DotOp op);                     // KernelProducts.cpp
bool isLoopAffine(Value v, scf::ForOp loop);  // KernelControlFlow.cpp
ArrayRef<int64_t> rowDimsOf(Operation *op);   // KernelMemory.cpp

} // namespace mlir::nsa::tile::kernel

#endif // NSA_LIB_DIALECT_TILE_TRANSFORMS_KERNELEMITTER_H
