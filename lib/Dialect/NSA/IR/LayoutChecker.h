//===- LayoutChecker.h - Named-dimension checks for NSA verifiers -*- C++ -*-=//
//
// Every NSA operand has a documented layout such as [B, T, HQ, Dk]. The
// checker binds each dimension name to the first static size it sees and
// reports any later operand that disagrees, naming both operands, so that one
// table per op states all of its shape rules.
//
//===----------------------------------------------------------------------===//

#ifndef NSA_LIB_DIALECT_NSA_IR_LAYOUTCHECKER_H
#define NSA_LIB_DIALECT_NSA_IR_LAYOUTCHECKER_H

#include "mlir/IR/Operation.h"
#include "llvm/ADT/StringMap.h"

#include <optional>
#include <string>

namespace mlir::nsa {

class LayoutChecker {
public:
  explicit LayoutChecker(Operation *op) : op(op) {}

  /// Binds `dim` to `size` on behalf of `origin` (e.g. "config"), so that
  /// later operands are checked against it.
  void bind(StringRef dim, int64_t size, StringRef origin);

  /// `value`, called `name`, must be a ranked tensor with one dimension per
  /// entry of `dims`, every static size agreeing with its name's binding.
  LogicalResult check(Value value, StringRef name, ArrayRef<StringRef> dims);

  /// The static size bound to `dim`, if any.
  std::optional<int64_t> size(StringRef dim) const;

  /// `value`'s element type must be bf16 or f16 (SPEC.md: inputs).
  LogicalResult checkHalf(Value value, StringRef name);

  /// `value`'s element type must equal `expected`'s, because `why`.
  LogicalResult checkSameElementType(Value value, StringRef name,
                                     Value expected, StringRef expectedName);

  /// `value`'s element type must be exactly `type` (`f32` for lse, ...).
  LogicalResult checkElementType(Value value, StringRef name, Type type);

  /// GQA: HQ must be a multiple of HKV.
  LogicalResult checkGQA();

private:
  Operation *op;
  /// Dimension name -> (size, the operand or source that fixed it).
  llvm::StringMap<std::pair<int64_t, std::string>> bound;
};

} // namespace mlir::nsa

#endif // NSA_LIB_DIALECT_NSA_IR_LAYOUTCHECKER_H
