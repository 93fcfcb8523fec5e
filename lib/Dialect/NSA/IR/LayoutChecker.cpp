//===- LayoutChecker.cpp - Named-dimension checks for NSA verifiers -------===//

#include "LayoutChecker.h"

#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/TypeUtilities.h"
#include "llvm/ADT/STLExtras.h"

using namespace mlir;
using namespace mlir::nsa;

static std::string layoutString(ArrayRef<StringRef> dims) {
  std::string s = "[";
  llvm::interleave(
      dims, [&](StringRef d) { s += d.str(); }, [&] { s += ", "; });
  return s + "]";
}

void LayoutChecker::bind(StringRef dim, int64_t size, StringRef origin) {
  bound[dim] = {size, origin.str()};
}

std::optional<int64_t> LayoutChecker::size(StringRef dim) const {
  auto it = bound.find(dim);
  if (it == bound.end())
    return std::nullopt;
  return it->second.first;
}

LogicalResult LayoutChecker::check(Value value, StringRef name,
                                   ArrayRef<StringRef> dims) {
  auto type = dyn_cast<RankedTensorType>(value.getType());
  if (!type)
    return op->emitOpError() << "'" << name << "' must be a ranked tensor "
                             << layoutString(dims) << ", got "
                             << value.getType();
  if (type.getRank() != static_cast<int64_t>(dims.size()))
    return op->emitOpError()
           << "'" << name << "' must have rank " << dims.size() << " "
           << layoutString(dims) << ", got " << type;
  for (auto [i, dim] : llvm::enumerate(dims)) {
    int64_t size = type.getDimSize(i);
    if (ShapedType::isDynamic(size))
      continue;
    auto [it, inserted] = bound.try_emplace(dim, size, "'" + name.str() + "'");
    if (!inserted && it->second.first != size)
      return op->emitOpError()
             << "'" << name << "' dimension " << i << " (" << dim << ") is "
             << size << ", expected " << dim << " = " << it->second.first
             << " (from " << it->second.second << ")";
  }
  return success();
}

LogicalResult LayoutChecker::checkHalf(Value value, StringRef name) {
  Type elt = getElementTypeOrSelf(value.getType());
  if (!elt.isBF16() && !elt.isF16())
    return op->emitOpError() << "'" << name
                             << "' must have bf16 or f16 elements, got "
                             << elt;
  return success();
}

LogicalResult LayoutChecker::checkSameElementType(Value value, StringRef name,
                                                  Value expected,
                                                  StringRef expectedName) {
  Type elt = getElementTypeOrSelf(value.getType());
  Type want = getElementTypeOrSelf(expected.getType());
  if (elt != want)
    return op->emitOpError() << "'" << name << "' must have the element type of '"
                             << expectedName << "' (" << want << "), got "
                             << elt;
  return success();
}

LogicalResult LayoutChecker::checkElementType(Value value, StringRef name,
                                              Type type) {
  Type elt = getElementTypeOrSelf(value.getType());
  if (elt != type)
    return op->emitOpError() << "'" << name << "' must have " << type
                             << " elements, got " << elt;
  return success();
}

LogicalResult LayoutChecker::checkGQA() {
  std::optional<int64_t> hq = size("HQ"), hkv = size("HKV");
  if (hq && hkv && (*hkv == 0 || *hq % *hkv != 0))
    return op->emitOpError() << "GQA requires HQ to be a multiple of HKV, got HQ = "
                             << *hq << ", HKV = " << *hkv;
  return success();
}
