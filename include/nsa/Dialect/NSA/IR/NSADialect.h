//===- NSADialect.h - NSA dialect -------------------------------*- C++ -*-===//

#ifndef NSA_DIALECT_NSA_IR_NSADIALECT_H
#define NSA_DIALECT_NSA_IR_NSADIALECT_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "nsa/Dialect/NSA/IR/NSAOpsDialect.h.inc"
#include "nsa/Dialect/NSA/IR/NSAEnums.h.inc"

#define GET_ATTRDEF_CLASSES
#include "nsa/Dialect/NSA/IR/NSAAttrs.h.inc"

#define GET_OP_CLASSES
#include "nsa/Dialect/NSA/IR/NSAOps.h.inc"

namespace mlir::nsa {
/// The forward intermediates that `nsa.attention` may return after `o` and
/// `nsa.attention_grad` may take as `saved`, in this order.
enum class Saved : unsigned {
  Kc,
  Vc,
  OCmp,
  LseCmp,
  Idx,
  OSlc,
  LseSlc,
  OWin,
  LseWin,
  Count
};
} // namespace mlir::nsa

#endif // NSA_DIALECT_NSA_IR_NSADIALECT_H
