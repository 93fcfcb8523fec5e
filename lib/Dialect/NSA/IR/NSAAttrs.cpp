//===- NSAAttrs.cpp - #nsa.config ---------------------------------------===//

#include "nsa/Dialect/NSA/IR/NSADialect.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/StringSwitch.h"
#include "llvm/ADT/TypeSwitch.h"

#include <cmath>
#include <limits>

using namespace mlir;
using namespace mlir::nsa;

#include "nsa/Dialect/NSA/IR/NSAEnums.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "nsa/Dialect/NSA/IR/NSAAttrs.cpp.inc"

void NSADialect::registerAttributes() {
  addAttributes<
#define GET_ATTRDEF_LIST
#include "nsa/Dialect/NSA/IR/NSAAttrs.cpp.inc"
      >();
}

namespace {
/// The integer keys of #nsa.config in printing order, with the paper's
/// defaults (SPEC.md, Configuration).
struct IntKey {
  StringLiteral name;
  int64_t paperDefault;
};
constexpr IntKey kIntKeys[] = {{"l", 32},   {"d", 16},    {"l_sel", 64},
                               {"n", 16},   {"init", 1},  {"local", 2},
                               {"w", 512}};
constexpr size_t kNumIntKeys = std::size(kIntKeys);
} // namespace

ConfigAttr ConfigAttr::getPaperDefault(MLIRContext *ctx) {
  int64_t v[kNumIntKeys];
  for (size_t i = 0; i < kNumIntKeys; ++i)
    v[i] = kIntKeys[i].paperDefault;
  return ConfigAttr::get(ctx, v[0], v[1], v[2], v[3], v[4], v[5], v[6],
                         FloatAttr());
}

int64_t ConfigAttr::getNumCompressed(int64_t t) const {
  return t < getL() ? 0 : (t - getL()) / getD() + 1;
}

int64_t ConfigAttr::getNumSelectionBlocks(int64_t t) const {
  return (t + getLSel() - 1) / getLSel();
}

double ConfigAttr::getScaleOr(int64_t headDim) const {
  if (FloatAttr s = getScale())
    return s.getValueAsDouble();
  return 1.0 / std::sqrt(static_cast<double>(headDim));
}

LogicalResult
ConfigAttr::verify(function_ref<InFlightDiagnostic()> emitError, int64_t l,
                   int64_t d, int64_t lSel, int64_t n, int64_t init,
                   int64_t local, int64_t w, FloatAttr scale) {
  for (auto [name, value] :
       {std::pair<StringRef, int64_t>{"l", l}, {"d", d}, {"l_sel", lSel},
        {"n", n}, {"init", init}, {"local", local}, {"w", w}})
    // Kernels index tokens and blocks with int32, and bounding every value
    // keeps sums such as init + local from overflowing.
    if (value > std::numeric_limits<int32_t>::max())
      return emitError() << "nsa.config: " << name
                         << " must fit in int32, got " << value;
  for (auto [name, value] :
       {std::pair<StringRef, int64_t>{"l", l}, {"d", d}, {"l_sel", lSel},
        {"n", n}})
    if (value <= 0)
      return emitError() << "nsa.config: " << name
                         << " must be positive, got " << value;
  if (init < 0)
    return emitError() << "nsa.config: init must be >= 0, got " << init;
  if (local < 1)
    return emitError() << "nsa.config: local must be >= 1 (the block holding "
                          "t is always selected), got "
                       << local;
  if (l % d != 0)
    return emitError() << "nsa.config: d must divide l (l = " << l
                       << ", d = " << d << ")";
  if (lSel % d != 0)
    return emitError() << "nsa.config: d must divide l_sel (l_sel = " << lSel
                       << ", d = " << d << ")";
  if (l > lSel)
    return emitError() << "nsa.config: l <= l_sel is required (l = " << l
                       << ", l_sel = " << lSel << ")";
  if (n < init + local)
    return emitError() << "nsa.config: n >= init + local is required (n = "
                       << n << ", init + local = " << init + local << ")";
  if (w < 1)
    return emitError() << "nsa.config: w >= 1 is required, got " << w;
  if (scale) {
    double s = scale.getValueAsDouble();
    if (!std::isfinite(s) || s <= 0)
      return emitError() << "nsa.config: scale must be finite and positive, got "
                         << s;
  }
  return success();
}

/// `<` (key `=` value (`,` key `=` value)*)? `>`, keys in any order, each at
/// most once; omitted integer keys take the paper's defaults.
Attribute ConfigAttr::parse(AsmParser &parser, Type) {
  int64_t values[kNumIntKeys];
  bool seen[kNumIntKeys + 1] = {};
  for (size_t i = 0; i < kNumIntKeys; ++i)
    values[i] = kIntKeys[i].paperDefault;
  FloatAttr scale;

  auto parseEntry = [&]() -> ParseResult {
    SMLoc loc = parser.getCurrentLocation();
    StringRef key;
    if (parser.parseKeyword(&key) || parser.parseEqual())
      return failure();
    size_t slot = kNumIntKeys;
    if (key != "scale") {
      slot = llvm::find_if(kIntKeys,
                           [&](const IntKey &k) { return k.name == key; }) -
             std::begin(kIntKeys);
      if (slot == kNumIntKeys)
        return parser.emitError(loc)
               << "nsa.config: unknown key '" << key
               << "' (expected l, d, l_sel, n, init, local, w or scale)";
    }
    if (seen[slot])
      return parser.emitError(loc)
             << "nsa.config: key '" << key << "' given twice";
    seen[slot] = true;
    if (slot < kNumIntKeys)
      return parser.parseInteger(values[slot]);
    // Parsed as an attribute so that `2`, `2.0` and `-0.5` all read as
    // numbers (AsmParser::parseFloat takes an integer token as raw bits).
    Attribute number;
    if (parser.parseAttribute(number))
      return failure();
    double s;
    if (auto f = dyn_cast<FloatAttr>(number))
      s = f.getValueAsDouble();
    else if (auto i = dyn_cast<IntegerAttr>(number))
      s = static_cast<double>(i.getValue().getSExtValue());
    else
      return parser.emitError(loc) << "nsa.config: scale must be a number";
    scale = FloatAttr::get(Float64Type::get(parser.getContext()), s);
    return success();
  };

  // Rule violations point at the attribute, not at the op holding it.
  SMLoc start = parser.getCurrentLocation();
  if (parser.parseLess())
    return {};
  if (failed(parser.parseOptionalGreater())) {
    if (parser.parseCommaSeparatedList(parseEntry) || parser.parseGreater())
      return {};
  }
  return ConfigAttr::getChecked(
      [&] { return parser.emitError(start); },
      parser.getContext(), values[0], values[1], values[2], values[3],
      values[4], values[5], values[6], scale);
}

void ConfigAttr::print(AsmPrinter &printer) const {
  int64_t values[] = {getL(), getD(), getLSel(), getN(),
                      getInit(), getLocal(), getW()};
  printer << "<";
  for (size_t i = 0; i < kNumIntKeys; ++i)
    printer << (i ? ", " : "") << kIntKeys[i].name << " = " << values[i];
  if (FloatAttr s = getScale()) {
    printer << ", scale = ";
    printer.printFloat(s.getValue());
  }
  printer << ">";
}
