//===- NSADialect.cpp - NSA dialect registration --------------------------===//

#include "nsa/Dialect/NSA/IR/NSADialect.h"

using namespace mlir;
using namespace mlir::nsa;

#include "nsa/Dialect/NSA/IR/NSAOpsDialect.cpp.inc"

void NSADialect::initialize() {
  registerAttributes();
  addOperations<
#define GET_OP_LIST
#include "nsa/Dialect/NSA/IR/NSAOps.cpp.inc"
      >();
}
