//===- JsonWriter.h - JSON text for the manifest and the plan ---*- C++ -*-===//
//
// The manifest and the plan are read by people as much as by the runtime,
// so they are written by hand in the layout of docs/runtime-abi.md (one
// kernel field, parameter or launch per line) rather than by llvm::json,
// whose objects do not keep their fields' order.
//
//===----------------------------------------------------------------------===//

#ifndef NSA_LIB_TARGET_PTX_JSONWRITER_H
#define NSA_LIB_TARGET_PTX_JSONWRITER_H

#include "mlir/Support/LLVM.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/raw_ostream.h"

namespace mlir::nsa::json {

/// `s` as a JSON string literal.
inline std::string quoted(StringRef s) {
  std::string text;
  llvm::raw_string_ostream os(text);
  llvm::json::OStream(os).value(s);
  return text;
}

/// Writes `items` as a JSON array, one item per line indented by `indent`
/// spaces, the closing bracket by two fewer; `[]` when empty.
template <typename Range, typename WriteItem>
void writeLines(raw_ostream &os, const Range &items, unsigned indent,
                WriteItem writeItem) {
  if (std::begin(items) == std::end(items)) {
    os << "[]";
    return;
  }
  os << "[";
  llvm::interleave(
      items, os,
      [&](const auto &item) {
        os << "\n";
        os.indent(indent);
        writeItem(item);
      },
      ",");
  os << "\n";
  os.indent(indent - 2) << "]";
}

} // namespace mlir::nsa::json

#endif // NSA_LIB_TARGET_PTX_JSONWRITER_H
