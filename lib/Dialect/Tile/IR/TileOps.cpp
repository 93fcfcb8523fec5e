//===- TileOps.cpp - tile dialect ops and verifiers -----------------------===//

#include "nsa/Dialect/Tile/IR/TileDialect.h"

#include <cmath>

#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/IR/TypeUtilities.h"
#include "llvm/Support/MathExtras.h"

using namespace mlir;
using namespace mlir::nsa::tile;

#include "nsa/Dialect/Tile/IR/TileOpsDialect.cpp.inc"
#include "nsa/Dialect/Tile/IR/TileEnums.cpp.inc"

void TileDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "nsa/Dialect/Tile/IR/TileOps.cpp.inc"
      >();
}

#define GET_OP_CLASSES
#include "nsa/Dialect/Tile/IR/TileOps.cpp.inc"

static RankedTensorType tensorType(Value v) {
  return cast<RankedTensorType>(v.getType());
}

/// `type` must have rank `rank` and, where static, the sizes `shape`
/// (ShapedType::kDynamic matches anything).
static LogicalResult checkShape(Operation *op, StringRef name,
                                RankedTensorType type,
                                ArrayRef<int64_t> shape) {
  if (type.getRank() != static_cast<int64_t>(shape.size()))
    return op->emitOpError() << "'" << name << "' must have rank "
                             << shape.size() << ", got " << type;
  for (auto [i, want] : llvm::enumerate(shape)) {
    int64_t got = type.getDimSize(i);
    if (!ShapedType::isDynamic(want) && !ShapedType::isDynamic(got) &&
        got != want)
      return op->emitOpError() << "'" << name << "' dimension " << i
                               << " must be " << want << ", got " << type;
  }
  return success();
}

static LogicalResult checkStaticTile(Operation *op, StringRef name,
                                     RankedTensorType type) {
  if (!type.hasStaticShape())
    return op->emitOpError() << "tile '" << name
                             << "' must have a static shape, got " << type;
  if (llvm::is_contained(type.getShape(), 0))
    return op->emitOpError() << "tile '" << name << "' must not be empty, got "
                             << type;
  if (!type.getElementType().isIntOrFloat())
    return op->emitOpError() << "tile '" << name
                             << "' must hold integers or floats, got " << type;
  return success();
}

/// A tile of floats (what the softmax and reductions compute on).
static LogicalResult checkFloatTile(Operation *op, StringRef name,
                                    RankedTensorType type) {
  if (failed(checkStaticTile(op, name, type)))
    return failure();
  if (!isa<FloatType>(type.getElementType()))
    return op->emitOpError() << "tile '" << name << "' must hold floats, got "
                             << type;
  return success();
}

//===----------------------------------------------------------------------===//
// ProgramOp
//===----------------------------------------------------------------------===//

LogicalResult ProgramOp::inferReturnTypes(
    MLIRContext *, std::optional<Location>, ValueRange operands,
    DictionaryAttr, OpaqueProperties properties, RegionRange,
    SmallVectorImpl<Type> &inferred) {
  ProgramOp::Adaptor adaptor(operands, DictionaryAttr(), properties, {});
  for (Value out : adaptor.getOuts())
    inferred.push_back(out.getType());
  return success();
}

LogicalResult ProgramOp::verify() {
  size_t rank = getGrid().size();
  if (rank < 1 || rank > 3)
    return emitOpError() << "grid must have 1 to 3 dimensions, got " << rank;
  Block &body = getBodyBlock();
  if (body.getNumArguments() != rank + getOuts().size())
    return emitOpError() << "body must take " << rank
                         << " index coordinates and one tensor per outs ("
                         << rank + getOuts().size() << " arguments), got "
                         << body.getNumArguments();
  for (BlockArgument id : getIds())
    if (!id.getType().isIndex())
      return emitOpError() << "grid coordinate #" << id.getArgNumber()
                           << " must be an index, got " << id.getType();
  for (auto [arg, out] : llvm::zip(getOutArgs(), getOuts()))
    if (arg.getType() != out.getType())
      return emitOpError() << "body argument #" << arg.getArgNumber()
                           << " must have the type of its outs operand ("
                           << out.getType() << "), got " << arg.getType();
  return success();
}

LogicalResult LaunchOp::inferReturnTypes(
    MLIRContext *, std::optional<Location>, ValueRange operands,
    DictionaryAttr, OpaqueProperties properties, RegionRange,
    SmallVectorImpl<Type> &inferred) {
  LaunchOp::Adaptor adaptor(operands, DictionaryAttr(), properties, {});
  for (Value out : adaptor.getOuts())
    inferred.push_back(out.getType());
  return success();
}

LogicalResult LaunchOp::verify() {
  size_t rank = getGrid().size();
  if (rank < 1 || rank > 3)
    return emitOpError() << "grid must have 1 to 3 dimensions, got " << rank;
  if (getOuts().empty())
    return emitOpError() << "must have at least one outs operand";
  return success();
}

//===----------------------------------------------------------------------===//
// Row access: load, store
//===----------------------------------------------------------------------===//

/// Rules shared by tile.load, tile.store and tile.gather (see TileOps.td):
/// the tile's shape and element type against `tensor` and its row_dims.
/// Sets `inner` to the size of the row dimensions after the first.
static LogicalResult checkRowDims(Operation *op, RankedTensorType tensor,
                                  StringRef tensorName, StringRef tileName,
                                  ArrayRef<int64_t> rowDims,
                                  RankedTensorType tile, int64_t &inner) {
  int64_t rank = tensor.getRank();
  if (failed(checkStaticTile(op, tileName, tile)))
    return failure();
  if (tile.getRank() != 1 && tile.getRank() != 2)
    return op->emitOpError() << tileName
                             << " must have rank 1 (rows) or 2 (rows x "
                                "columns), got "
                             << tile;
  if (tensor.getElementType() != tile.getElementType())
    return op->emitOpError()
           << tileName << " and '" << tensorName
           << "' must have one element type, got " << tile.getElementType()
           << " and " << tensor.getElementType();
  if (rowDims.empty())
    return op->emitOpError("row_dims must name at least one dimension");
  bool hasColumns = tile.getRank() == 2;
  int64_t firstColumn = hasColumns ? rank - 1 : rank;
  for (auto [i, d] : llvm::enumerate(rowDims)) {
    if (d < 0 || d >= firstColumn)
      return op->emitOpError()
             << "row_dims entry " << d << " is not a row dimension of '"
             << tensorName << "' (0 to " << firstColumn - 1 << ")";
    if (i > 0 && d <= rowDims[i - 1])
      return op->emitOpError("row_dims must be strictly increasing");
  }
  // Row dimensions after the first are covered whole: a static size each.
  inner = 1;
  for (int64_t d : rowDims.drop_front()) {
    if (tensor.isDynamicDim(d))
      return op->emitOpError() << "row dimension " << d << " of '"
                               << tensorName << "' after the first must be "
                                                "static";
    if (llvm::MulOverflow(inner, tensor.getDimSize(d), inner))
      return op->emitOpError() << "the inner row dimensions' size of '"
                               << tensorName << "' overflows int64";
  }
  // The columns are read whole and unchecked: their count must be known.
  if (hasColumns && tensor.isDynamicDim(rank - 1))
    return op->emitOpError() << "the last dimension of '" << tensorName
                             << "' (the " << tileName
                             << "'s columns) must be static, got " << tensor;
  if (hasColumns && tensor.getDimSize(rank - 1) != tile.getDimSize(1))
    return op->emitOpError()
           << tileName << " columns (" << tile.getDimSize(1)
           << ") must equal the last dimension of '" << tensorName << "' ("
           << tensor.getDimSize(rank - 1) << ")";
  return success();
}

/// tile.load and tile.store: one index per dimension, and whole inner row
/// dimensions.
static LogicalResult checkRowAccess(Operation *op, RankedTensorType tensor,
                                    StringRef tensorName, size_t numIndices,
                                    ArrayRef<int64_t> rowDims,
                                    RankedTensorType tile) {
  int64_t rank = tensor.getRank();
  if (static_cast<int64_t>(numIndices) != rank)
    return op->emitOpError()
           << "expected one index per dimension of '" << tensorName << "' ("
           << rank << "), got " << numIndices;
  int64_t inner;
  if (failed(
          checkRowDims(op, tensor, tensorName, "tile", rowDims, tile, inner)))
    return failure();
  if (inner == 0 || tile.getDimSize(0) % inner != 0)
    return op->emitOpError() << "tile rows (" << tile.getDimSize(0)
                             << ") must be a multiple of the inner row "
                                "dimensions' size ("
                             << inner << ")";
  return success();
}

LogicalResult LoadOp::verify() {
  return checkRowAccess(*this, tensorType(getSource()), "source",
                        getIndices().size(), getRowDims(),
                        tensorType(getResult()));
}

LogicalResult StoreOp::verify() {
  if (failed(checkRowAccess(*this, tensorType(getDest()), "dest",
                            getIndices().size(), getRowDims(),
                            tensorType(getValue()))))
    return failure();
  // The attribute's getter is unsigned: read it signed so -1 is seen as -1.
  int64_t stride = getRowStrideAttr().getInt();
  if (stride < 1)
    return emitOpError() << "row_stride must be at least 1, got " << stride;
  if (stride != 1 && getRowDims().size() != 1)
    return emitOpError("row_stride needs exactly one row dimension");
  auto program = cast<ProgramOp>((*this)->getParentOp());
  auto arg = dyn_cast<BlockArgument>(getDest());
  if (!arg || arg.getOwner() != &program.getBodyBlock() ||
      arg.getArgNumber() < program.getGrid().size())
    return emitOpError("dest must be an outs argument of the enclosing "
                       "tile.program");
  return success();
}

SmallVector<Value> GatherOp::sourceIndices(ValueRange fixed, Value zero) {
  int64_t rank = tensorType(getSource()).getRank();
  bool hasColumns = tensorType(getResult()).getRank() == 2;
  SmallVector<Value> indices;
  auto next = fixed.begin();
  for (int64_t d = 0; d < rank; ++d)
    indices.push_back(llvm::is_contained(getRowDims(), d) ||
                              (hasColumns && d == rank - 1)
                          ? zero
                          : *next++);
  return indices;
}

LogicalResult GatherOp::verify() {
  RankedTensorType src = tensorType(getSource()), tile = tensorType(getResult());
  RankedTensorType rows = tensorType(getRows());
  int64_t inner;
  if (failed(checkRowDims(*this, src, "source", "result", getRowDims(), tile,
                          inner)) ||
      failed(checkStaticTile(*this, "rows", rows)))
    return failure();
  // A row index is split by the inner row dimensions' size.
  if (inner == 0)
    return emitOpError() << "the inner row dimensions of 'source' must not "
                            "be empty, got "
                         << src;
  bool hasColumns = tile.getRank() == 2;
  int64_t fixed = src.getRank() - static_cast<int64_t>(getRowDims().size()) -
                  (hasColumns ? 1 : 0);
  if (static_cast<int64_t>(getIndices().size()) != fixed)
    return emitOpError() << "expected one index per dimension of 'source' "
                            "but the row"
                         << (hasColumns ? " and column" : "") << " ones ("
                         << fixed << "), got " << getIndices().size();
  if (!rows.getElementType().isInteger(32))
    return emitOpError() << "rows must hold i32 indices, got " << rows;
  return checkShape(*this, "rows", rows, {tile.getDimSize(0)});
}

//===----------------------------------------------------------------------===//
// Compute
//===----------------------------------------------------------------------===//

LogicalResult RangeOp::verify() {
  RankedTensorType type = tensorType(getResult());
  if (failed(checkStaticTile(*this, "result", type)) ||
      failed(checkShape(*this, "result", type, {ShapedType::kDynamic})))
    return failure();
  if (!type.getElementType().isInteger(32))
    return emitOpError() << "result must hold i32, got " << type;
  int64_t divisor = getDivisorAttr().getInt();
  if (divisor < 1)
    return emitOpError() << "divisor must be >= 1, got " << divisor;
  return success();
}

LogicalResult BroadcastOp::verify() {
  RankedTensorType in = tensorType(getValue()), out = tensorType(getResult());
  if (failed(checkShape(*this, "value", in, {ShapedType::kDynamic})) ||
      failed(checkStaticTile(*this, "result", out)))
    return failure();
  int64_t dim = getDimAttr().getInt();
  if (dim != 0 && dim != 1)
    return emitOpError() << "dim must be 0 or 1, got " << dim;
  // The kept dimension is the one that is not new.
  int64_t kept = 1 - dim;
  SmallVector<int64_t> want = {ShapedType::kDynamic, ShapedType::kDynamic};
  want[kept] = in.getDimSize(0);
  if (failed(checkShape(*this, "result", out, want)))
    return failure();
  if (in.getElementType() != out.getElementType())
    return emitOpError("result must have the element type of 'value'");
  return success();
}

LogicalResult DotOp::verify() {
  RankedTensorType a = tensorType(getLhs()), b = tensorType(getRhs()),
                   c = tensorType(getResult());
  for (auto [t, name] : {std::pair<RankedTensorType, StringRef>{a, "lhs"},
                         {b, "rhs"}, {c, "result"}})
    if (failed(checkStaticTile(*this, name, t)) ||
        failed(checkShape(*this, name, t,
                          {ShapedType::kDynamic, ShapedType::kDynamic})))
      return failure();
  Type elt = a.getElementType();
  if (!elt.isBF16() && !elt.isF16() && !elt.isF32())
    return emitOpError() << "lhs must hold bf16, f16 or f32, got " << elt;
  if (b.getElementType() != elt)
    return emitOpError("lhs and rhs must have one element type");
  if (!c.getElementType().isF32())
    return emitOpError("result must be f32 (the accumulator)");
  int64_t m = getLhsTransposed() ? a.getDimSize(1) : a.getDimSize(0);
  int64_t k = getLhsTransposed() ? a.getDimSize(0) : a.getDimSize(1);
  int64_t rhsK = getRhsTransposed() ? b.getDimSize(1) : b.getDimSize(0);
  int64_t n = getRhsTransposed() ? b.getDimSize(0) : b.getDimSize(1);
  if (rhsK != k)
    return emitOpError() << "contraction sizes differ: lhs has K = " << k
                         << ", rhs has " << rhsK;
  return checkShape(*this, "result", c, {m, n});
}

LogicalResult MaskedFillOp::verify() {
  RankedTensorType v = tensorType(getValue()), m = tensorType(getMask());
  if (failed(checkStaticTile(*this, "value", v)))
    return failure();
  if (v.getShape() != m.getShape() || !m.getElementType().isInteger(1))
    return emitOpError() << "mask must be i1 of the value's shape, got " << m;
  if (getFill().getType() != v.getElementType())
    return emitOpError() << "fill must have the value's element type ("
                         << v.getElementType() << "), got "
                         << getFill().getType();
  return success();
}

/// A reduction of the float rank-2 tile `value` into a static `result` of
/// the value's element type and shape `resultShape(value)`.
static LogicalResult checkReduction(
    Operation *op, RankedTensorType in, RankedTensorType out,
    function_ref<SmallVector<int64_t>(RankedTensorType)> resultShape) {
  if (failed(checkFloatTile(op, "value", in)) ||
      failed(checkStaticTile(op, "result", out)) ||
      failed(checkShape(op, "value", in,
                        {ShapedType::kDynamic, ShapedType::kDynamic})) ||
      failed(checkShape(op, "result", out, resultShape(in))))
    return failure();
  if (in.getElementType() != out.getElementType())
    return op->emitOpError("result must have the element type of 'value'");
  return success();
}

LogicalResult ReduceOp::verify() {
  return checkReduction(*this, tensorType(getValue()), tensorType(getResult()),
                        [](RankedTensorType in) {
                          return SmallVector<int64_t>{in.getDimSize(0)};
                        });
}

LogicalResult GroupSumOp::verify() {
  RankedTensorType in = tensorType(getValue()), out = tensorType(getResult());
  if (failed(checkReduction(*this, in, out, [](RankedTensorType in) {
        return SmallVector<int64_t>{ShapedType::kDynamic, in.getDimSize(1)};
      })))
    return failure();
  if (out.getDimSize(0) == 0 || in.getDimSize(0) % out.getDimSize(0) != 0)
    return emitOpError() << "result rows (" << out.getDimSize(0)
                         << ") must divide the value's rows ("
                         << in.getDimSize(0) << ") into equal groups";
  return success();
}

/// max/sum [M] f32 and acc [M, Dv] f32: the streaming-softmax state.
static LogicalResult checkSoftmaxState(Operation *op, Value max, Value acc) {
  RankedTensorType m = tensorType(max), a = tensorType(acc);
  if (failed(checkStaticTile(op, "acc", a)) ||
      failed(checkShape(op, "acc", a,
                        {ShapedType::kDynamic, ShapedType::kDynamic})) ||
      failed(checkShape(op, "max", m, {a.getDimSize(0)})))
    return failure();
  if (!m.getElementType().isF32() || !a.getElementType().isF32())
    return op->emitOpError("softmax state (max, sum, acc) must be f32");
  return success();
}

LogicalResult OnlineSoftmaxOp::verify() {
  if (failed(checkSoftmaxState(*this, getMax(), getAcc())))
    return failure();
  RankedTensorType acc = tensorType(getAcc());
  RankedTensorType s = tensorType(getScores()), v = tensorType(getValues());
  if (failed(checkFloatTile(*this, "scores", s)) ||
      failed(checkFloatTile(*this, "values", v)) ||
      failed(checkShape(*this, "scores", s,
                        {acc.getDimSize(0), ShapedType::kDynamic})) ||
      failed(checkShape(*this, "values", v,
                        {s.getDimSize(1), acc.getDimSize(1)})))
    return failure();
  if (!s.getElementType().isF32())
    return emitOpError("scores must be f32");
  float scale = getScale().convertToFloat();
  if (!(scale > 0.0f) || std::isinf(scale))
    return emitOpError() << "scale must be positive and finite, got " << scale;
  return success();
}

LogicalResult SoftmaxFinalizeOp::verify() {
  if (failed(checkSoftmaxState(*this, getMax(), getAcc())) ||
      failed(checkFloatTile(*this, "out", tensorType(getOut()))))
    return failure();
  return checkShape(*this, "out", tensorType(getOut()),
                    tensorType(getAcc()).getShape());
}

//===----------------------------------------------------------------------===//
// Top-n selection
//===----------------------------------------------------------------------===//

/// scores f32 [M, n] and indices i32 [M, n]: a ranked top-n list per row.
static LogicalResult checkTopkList(Operation *op, Value scores,
                                   Value indices) {
  RankedTensorType s = tensorType(scores), i = tensorType(indices);
  if (failed(checkStaticTile(op, "scores", s)) ||
      failed(checkShape(op, "scores", s,
                        {ShapedType::kDynamic, ShapedType::kDynamic})) ||
      failed(checkShape(op, "indices", i, s.getShape())))
    return failure();
  if (!s.getElementType().isF32() || !i.getElementType().isInteger(32))
    return op->emitOpError("a top-n list is f32 scores and i32 indices");
  return success();
}

LogicalResult TopkMergeOp::verify() {
  if (failed(checkTopkList(*this, getBestScores(), getBestIndices())))
    return failure();
  RankedTensorType s = tensorType(getScores());
  if (failed(checkStaticTile(*this, "scores", s)) ||
      failed(checkShape(*this, "scores", s,
                        {tensorType(getBestScores()).getDimSize(0),
                         ShapedType::kDynamic})))
    return failure();
  if (!s.getElementType().isF32())
    return emitOpError("scores must be f32");
  return success();
}

LogicalResult TopkFinalizeOp::verify() {
  return checkTopkList(*this, getScores(), getIndices());
}

LogicalResult CompactOp::verify() {
  RankedTensorType values = tensorType(getValues()),
                   mask = tensorType(getMask()), ranks = tensorType(getRanks());
  if (failed(checkStaticTile(*this, "values", values)) ||
      failed(checkShape(*this, "values", values, {ShapedType::kDynamic})) ||
      failed(checkShape(*this, "mask", mask, values.getShape())) ||
      failed(checkStaticTile(*this, "ranks", ranks)) ||
      failed(checkShape(*this, "ranks", ranks, {ShapedType::kDynamic})))
    return failure();
  if (!values.getElementType().isInteger(32) ||
      !ranks.getElementType().isInteger(32))
    return emitOpError("values and ranks must be i32");
  if (!mask.getElementType().isInteger(1))
    return emitOpError("mask must be i1");
  return success();
}
