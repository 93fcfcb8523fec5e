//===- NSAOps.cpp - NSA op verifiers --------------------------------------===//
//
// Each verifier states its op's layouts (SPEC.md, Shapes and conventions) as
// named dimensions; LayoutChecker reports the first disagreement. Rules that
// are not shapes (dtypes, GQA, operand counts, compression mode) follow.
//
//===----------------------------------------------------------------------===//

#include "nsa/Dialect/NSA/IR/NSADialect.h"

#include "LayoutChecker.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/IR/TypeUtilities.h"
#include "llvm/Support/MathExtras.h"

using namespace mlir;
using namespace mlir::nsa;

#define GET_OP_CLASSES
#include "nsa/Dialect/NSA/IR/NSAOps.cpp.inc"

//===----------------------------------------------------------------------===//
// Shared pieces
//===----------------------------------------------------------------------===//

/// Whether `q` is in the grouped form nsa-group-gqa gives the branch ops:
/// [B, T, HKV, G, Dk], the G query heads of each KV head in a dimension of
/// their own, instead of [B, T, HQ, Dk].
static bool isGrouped(Value q) {
  return cast<RankedTensorType>(q.getType()).getRank() == 5;
}

/// The layout of a query-side tensor (q, o, lse) ending in `trailing`.
static SmallVector<StringRef, 5> queryLayout(bool grouped,
                                             ArrayRef<StringRef> trailing) {
  SmallVector<StringRef, 5> dims = {"B", "T"};
  if (grouped)
    dims.append({"HKV", "G"});
  else
    dims.push_back("HQ");
  dims.append(trailing.begin(), trailing.end());
  return dims;
}

/// q: [B, T, HQ, Dk] (or grouped [B, T, HKV, G, Dk] where `allowGrouped`)
/// in bf16 or f16.
static LogicalResult checkQuery(LayoutChecker &c, Value q,
                                bool allowGrouped) {
  if (failed(c.check(q, "q", queryLayout(allowGrouped && isGrouped(q), {"Dk"}))))
    return failure();
  return c.checkHalf(q, "q");
}

/// k: [B, tokens, HKV, Dk], v: [B, tokens, HKV, Dv], both in q's dtype, and
/// the GQA rule between q and k.
static LogicalResult checkKeysValues(LayoutChecker &c, Value q, Value k,
                                     StringRef kName, Value v, StringRef vName,
                                     StringRef tokens) {
  if (failed(c.check(k, kName, {"B", tokens, "HKV", "Dk"})) ||
      failed(c.check(v, vName, {"B", tokens, "HKV", "Dv"})) ||
      failed(c.checkSameElementType(k, kName, q, "q")) ||
      failed(c.checkSameElementType(v, vName, q, "q")))
    return failure();
  return c.checkGQA();
}

/// o: [B, T, HQ, Dv] in q's dtype; lse: f32 [B, T, HQ].
static LogicalResult checkOutputAndLse(LayoutChecker &c, Value q, Value o,
                                       StringRef oName, Value lse,
                                       StringRef lseName = "lse") {
  bool grouped = isGrouped(q);
  if (failed(c.check(o, oName, queryLayout(grouped, {"Dv"}))) ||
      failed(c.checkSameElementType(o, oName, q, "q")) ||
      failed(c.check(lse, lseName, queryLayout(grouped, {}))))
    return failure();
  return c.checkElementType(lse, lseName, Float32Type::get(q.getContext()));
}

/// Compressed tokens: Nc = Nc(T) whenever T is static.
static void bindNumCompressed(LayoutChecker &c, ConfigAttr config) {
  if (std::optional<int64_t> t = c.size("T"))
    c.bind("Nc", config.getNumCompressed(*t),
           "Nc(T) = (T - l)/d + 1, or 0 if T < l, with T = " +
               std::to_string(*t));
}

/// A cotangent has exactly the type of its primal.
static LogicalResult checkGradType(Operation *op, Value grad,
                                   StringRef gradName, Value primal,
                                   StringRef primalName) {
  if (grad.getType() != primal.getType())
    return op->emitOpError()
           << "'" << gradName << "' must have the type of '" << primalName
           << "' (" << primal.getType() << "), got " << grad.getType();
  return success();
}

/// The three attention branches' forward checks; `tokens` names the
/// dimension k and v run over ("Nc" compressed, "T" otherwise).
static LogicalResult checkBranch(LayoutChecker &c, ConfigAttr config, Value q,
                                 Value k, Value v, Value o, Value lse,
                                 StringRef tokens) {
  if (failed(checkQuery(c, q, /*allowGrouped=*/true)))
    return failure();
  if (tokens == "Nc")
    bindNumCompressed(c, config);
  if (failed(checkKeysValues(c, q, k, "k", v, "v", tokens)))
    return failure();
  return checkOutputAndLse(c, q, o, "o", lse);
}

/// Backward of a branch: forward checks on the saved o and lse, d_o like o,
/// and d_q, d_k, d_v like q, k, v.
template <typename GradOp>
static LogicalResult checkBranchGrad(GradOp op, LayoutChecker &c,
                                     StringRef tokens) {
  if (failed(checkBranch(c, op.getConfig(), op.getQ(), op.getK(), op.getV(),
                         op.getO(), op.getLse(), tokens)) ||
      failed(checkGradType(op, op.getDO(), "d_o", op.getO(), "o")) ||
      failed(checkGradType(op, op.getDQ(), "d_q", op.getQ(), "q")) ||
      failed(checkGradType(op, op.getDK(), "d_k", op.getK(), "k")))
    return failure();
  return checkGradType(op, op.getDV(), "d_v", op.getV(), "v");
}

/// idx: i32 [B, T, HKV, n] with n from the config.
static LogicalResult checkIndices(LayoutChecker &c, ConfigAttr config,
                                  Value idx) {
  c.bind("n", config.getN(), "config");
  if (failed(c.check(idx, "idx", {"B", "T", "HKV", "n"})))
    return failure();
  return c.checkElementType(idx, "idx",
                            IntegerType::get(idx.getContext(), 32));
}

/// What the compression operands are called in the op being verified.
struct CompressNames {
  StringRef input, weight, pe;
};
constexpr CompressNames kCompressNames = {"input", "weight", "pe"};

/// Compression operands: input [B, T, H, D]; linear needs weight
/// [H, l*D, D] and may take pe [H, l, D]; mean takes neither.
static LogicalResult checkCompressOperands(Operation *op, LayoutChecker &c,
                                           CompressMode mode,
                                           ConfigAttr config, Value input,
                                           Value weight, Value pe,
                                           CompressNames names) {
  if (failed(c.check(input, names.input, {"B", "T", "H", "D"})) ||
      failed(c.checkHalf(input, names.input)))
    return failure();
  if (mode == CompressMode::Mean) {
    if (weight || pe)
      return op->emitOpError(
          "mean compression takes no weight or pe (they belong to linear)");
    return success();
  }
  if (!weight)
    return op->emitOpError("linear compression needs a weight [H, l*D, D]");
  c.bind("l", config.getL(), "config");
  // D may be static only in the weight, so bind l*D before and after
  // checking it: the second check catches a weight that disagrees with
  // itself.
  for (int pass = 0; pass < 2; ++pass) {
    if (std::optional<int64_t> d = c.size("D")) {
      int64_t lTimesD;
      if (llvm::MulOverflow(config.getL(), *d, lTimesD))
        return op->emitOpError() << "l * D overflows (l = " << config.getL()
                                 << ", D = " << *d << ")";
      c.bind("l*D", lTimesD,
             "config l times D = " + std::to_string(*d));
    }
    if (failed(c.check(weight, names.weight, {"H", "l*D", "D"})))
      return failure();
  }
  if (failed(c.checkSameElementType(weight, names.weight, input, names.input)))
    return failure();
  if (!pe)
    return success();
  if (failed(c.check(pe, names.pe, {"H", "l", "D"})))
    return failure();
  return c.checkSameElementType(pe, names.pe, input, names.input);
}

//===----------------------------------------------------------------------===//
// Forward ops
//===----------------------------------------------------------------------===//

LogicalResult CompressOp::verify() {
  LayoutChecker c(*this);
  if (failed(checkCompressOperands(*this, c, getMode(), getConfig(),
                                   getInput(), getWeight(), getPe(), kCompressNames)))
    return failure();
  bindNumCompressed(c, getConfig());
  if (failed(c.check(getResult(), "result", {"B", "Nc", "H", "D"})))
    return failure();
  return c.checkSameElementType(getResult(), "result", getInput(), "input");
}

LogicalResult CompressedAttentionOp::verify() {
  LayoutChecker c(*this);
  return checkBranch(c, getConfig(), getQ(), getK(), getV(), getO(), getLse(),
                     "Nc");
}

LogicalResult SelectBlocksOp::verify() {
  LayoutChecker c(*this);
  if (failed(checkQuery(c, getQ(), /*allowGrouped=*/true)))
    return failure();
  bindNumCompressed(c, getConfig());
  if (failed(c.check(getK(), "k", {"B", "Nc", "HKV", "Dk"})) ||
      failed(c.checkSameElementType(getK(), "k", getQ(), "q")) ||
      failed(c.checkGQA()) ||
      failed(c.check(getLse(), "lse", queryLayout(isGrouped(getQ()), {}))) ||
      failed(c.checkElementType(getLse(), "lse",
                                Float32Type::get(getContext()))))
    return failure();
  return checkIndices(c, getConfig(), getIdx());
}

LogicalResult SelectedAttentionOp::verify() {
  LayoutChecker c(*this);
  if (failed(checkBranch(c, getConfig(), getQ(), getK(), getV(), getO(),
                         getLse(), "T")))
    return failure();
  return checkIndices(c, getConfig(), getIdx());
}

LogicalResult WindowAttentionOp::verify() {
  LayoutChecker c(*this);
  return checkBranch(c, getConfig(), getQ(), getK(), getV(), getO(), getLse(),
                     "T");
}

/// gates [B, T, HQ, 3]; the branch outputs and the result [B, T, HQ, Dv], all
/// in one bf16/f16 dtype.
static LogicalResult checkCombine(LayoutChecker &c, Value gates,
                                  ArrayRef<std::pair<Value, StringRef>> outs) {
  c.bind("branches", 3, "cmp, slc, win");
  if (failed(c.check(gates, "gates", {"B", "T", "HQ", "branches"})) ||
      failed(c.checkHalf(gates, "gates")))
    return failure();
  for (auto [value, name] : outs)
    if (failed(c.check(value, name, {"B", "T", "HQ", "Dv"})) ||
        failed(c.checkSameElementType(value, name, gates, "gates")))
      return failure();
  return success();
}

LogicalResult CombineOp::verify() {
  LayoutChecker c(*this);
  return checkCombine(c, getGates(),
                      {{getCmp(), "cmp"}, {getSlc(), "slc"},
                       {getWin(), "win"}, {getO(), "o"}});
}

/// nsa.attention and nsa.attention_grad share their operands and rules.
template <typename OpT>
static LogicalResult checkAttentionOperands(OpT op, LayoutChecker &c) {
  size_t numKV = op.getKeys().size();
  if (numKV != 1 && numKV != 3)
    return op.emitOpError() << "keys must hold 1 tensor (shared by all "
                               "branches) or 3 (cmp, slc, win), got "
                            << numKV;
  if (op.getValues().size() != numKV)
    return op.emitOpError() << "values must hold as many tensors as keys ("
                            << numKV << "), got " << op.getValues().size();
  if (failed(checkQuery(c, op.getQ(), /*allowGrouped=*/false)))
    return failure();
  for (size_t i = 0; i < numKV; ++i) {
    std::string k = "keys#" + std::to_string(i);
    std::string v = "values#" + std::to_string(i);
    if (failed(checkKeysValues(c, op.getQ(), op.getKeys()[i], k,
                               op.getValues()[i], v, "T")))
      return failure();
  }
  if (failed(checkCombine(c, op.getGates(), {})) ||
      failed(c.checkSameElementType(op.getGates(), "gates", op.getQ(), "q")))
    return failure();

  size_t numW = op.getWeights().size(), numPE = op.getPe().size();
  if (op.getMode() == CompressMode::Mean) {
    if (numW || numPE)
      return op.emitOpError(
          "mean compression takes no weights or pe (they belong to linear)");
    return success();
  }
  if (numW != 2)
    return op.emitOpError() << "linear compression needs 2 weights (W_k, "
                               "W_v), got "
                            << numW;
  if (numPE != 0 && numPE != 2)
    return op.emitOpError() << "pe must hold 0 or 2 tensors (PE_k, PE_v), got "
                            << numPE;
  // Compression runs on the cmp branch's keys (i = 0) and values (i = 1).
  const CompressNames names[2] = {{"keys#0", "weights#0", "pe#0"},
                                  {"values#0", "weights#1", "pe#1"}};
  Value sources[2] = {op.getKeys()[0], op.getValues()[0]};
  for (size_t i = 0; i < 2; ++i) {
    LayoutChecker one(op);
    Value pe = numPE ? op.getPe()[i] : Value();
    if (failed(checkCompressOperands(op, one, CompressMode::Linear,
                                     op.getConfig(), sources[i],
                                     op.getWeights()[i], pe, names[i])))
      return failure();
  }
  return success();
}

/// `saved` of nsa.attention(_grad): empty, or the nine forward
/// intermediates in `Saved` order, each in the layout of the branch op that
/// makes it.
static LogicalResult checkSaved(Operation *op, LayoutChecker &c, Value q,
                                ConfigAttr config, ValueRange saved) {
  static constexpr StringLiteral names[] = {
      "kc", "vc", "o_cmp", "lse_cmp", "idx", "o_slc", "lse_slc", "o_win",
      "lse_win"};
  static_assert(std::size(names) == size_t(Saved::Count));
  if (saved.empty())
    return success();
  if (saved.size() != size_t(Saved::Count))
    return op->emitOpError()
           << "saved must hold no tensor or 9 (kc, vc, o_cmp, lse_cmp, idx, "
              "o_slc, lse_slc, o_win, lse_win), got "
           << saved.size();
  auto at = [&](Saved s) { return saved[unsigned(s)]; };
  auto name = [&](Saved s) { return names[unsigned(s)]; };
  bindNumCompressed(c, config);
  if (failed(c.check(at(Saved::Kc), name(Saved::Kc), {"B", "Nc", "HKV", "Dk"})) ||
      failed(c.check(at(Saved::Vc), name(Saved::Vc), {"B", "Nc", "HKV", "Dv"})))
    return failure();
  for (Saved s : {Saved::Kc, Saved::Vc})
    if (failed(c.checkSameElementType(at(s), name(s), q, "q")))
      return failure();
  for (auto [o, lse] : {std::pair{Saved::OCmp, Saved::LseCmp},
                        {Saved::OSlc, Saved::LseSlc},
                        {Saved::OWin, Saved::LseWin}})
    if (failed(checkOutputAndLse(c, q, at(o), name(o), at(lse), name(lse))))
      return failure();
  return checkIndices(c, config, at(Saved::Idx));
}

LogicalResult AttentionOp::verify() {
  LayoutChecker c(*this);
  if (failed(checkAttentionOperands(*this, c)) ||
      failed(c.check(getO(), "o", {"B", "T", "HQ", "Dv"})) ||
      failed(c.checkSameElementType(getO(), "o", getQ(), "q")))
    return failure();
  return checkSaved(*this, c, getQ(), getConfig(), getSaved());
}

//===----------------------------------------------------------------------===//
// Backward ops
//===----------------------------------------------------------------------===//

LogicalResult CompressGradOp::verify() {
  LayoutChecker c(*this);
  if (failed(checkCompressOperands(*this, c, getMode(), getConfig(),
                                   getInput(), getWeight(), getPe(), kCompressNames)))
    return failure();
  bindNumCompressed(c, getConfig());
  if (failed(c.check(getDResult(), "d_result", {"B", "Nc", "H", "D"})) ||
      failed(c.checkSameElementType(getDResult(), "d_result", getInput(),
                                    "input")))
    return failure();
  size_t expected = 1 + bool(getWeight()) + bool(getPe());
  if (getGrads().size() != expected)
    return emitOpError() << "expected one gradient per differentiable operand "
                            "(input, weight, pe present: "
                         << expected << "), got " << getGrads().size();
  if (failed(checkGradType(*this, getDInput(), "d_input", getInput(),
                           "input")))
    return failure();
  if (getWeight() && failed(checkGradType(*this, getDWeight(), "d_weight",
                                          getWeight(), "weight")))
    return failure();
  if (getPe())
    return checkGradType(*this, getDPe(), "d_pe", getPe(), "pe");
  return success();
}

LogicalResult CompressedAttentionGradOp::verify() {
  LayoutChecker c(*this);
  return checkBranchGrad(*this, c, "Nc");
}

LogicalResult SelectedAttentionGradOp::verify() {
  LayoutChecker c(*this);
  if (failed(checkBranchGrad(*this, c, "T")))
    return failure();
  return checkIndices(c, getConfig(), getIdx());
}

LogicalResult WindowAttentionGradOp::verify() {
  LayoutChecker c(*this);
  return checkBranchGrad(*this, c, "T");
}

LogicalResult CombineGradOp::verify() {
  LayoutChecker c(*this);
  if (failed(checkCombine(c, getGates(),
                          {{getCmp(), "cmp"}, {getSlc(), "slc"},
                           {getWin(), "win"}, {getDO(), "d_o"}})) ||
      failed(checkGradType(*this, getDGates(), "d_gates", getGates(),
                           "gates")))
    return failure();
  for (auto [grad, gradName, primal, primalName] :
       {std::tuple<Value, StringRef, Value, StringRef>{getDCmp(), "d_cmp",
                                                       getCmp(), "cmp"},
        {getDSlc(), "d_slc", getSlc(), "slc"},
        {getDWin(), "d_win", getWin(), "win"}})
    if (failed(checkGradType(*this, grad, gradName, primal, primalName)))
      return failure();
  return success();
}

LogicalResult AttentionGradOp::verify() {
  LayoutChecker c(*this);
  if (failed(checkAttentionOperands(*this, c)) ||
      failed(c.check(getDO(), "d_o", {"B", "T", "HQ", "Dv"})) ||
      failed(c.checkSameElementType(getDO(), "d_o", getQ(), "q")) ||
      failed(checkSaved(*this, c, getQ(), getConfig(), getSaved())))
    return failure();
  if (getGrads().size() != getNumDifferentiableOperands())
    return emitOpError() << "expected one gradient per differentiable operand "
                            "(q, keys, values, gates, weights, pe: "
                         << getNumDifferentiableOperands() << "), got "
                         << getGrads().size();
  if (failed(checkGradType(*this, getDQ(), "d_q", getQ(), "q")) ||
      failed(checkGradType(*this, getDGates(), "d_gates", getGates(),
                           "gates")))
    return failure();
  for (auto [grads, primals, group] :
       {std::tuple<ValueRange, ValueRange, StringRef>{getDKeys(), getKeys(),
                                                      "keys"},
        {getDValues(), getValues(), "values"},
        {getDWeights(), getWeights(), "weights"},
        {getDPe(), getPe(), "pe"}})
    for (auto [i, pair] : llvm::enumerate(llvm::zip(grads, primals))) {
      std::string name = group.str() + "#" + std::to_string(i);
      if (failed(checkGradType(*this, std::get<0>(pair), "d_" + name,
                               std::get<1>(pair), name)))
        return failure();
    }
  return success();
}
