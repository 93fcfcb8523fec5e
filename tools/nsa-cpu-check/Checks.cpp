//===- Checks.cpp - nsa-cpu-check's comparisons against the reference -----===//
//
// Each op is checked against the float64 reference (nsa::ref) GIVEN THE
// COMPILED VALUES OF ITS INPUTS, so that errors do not compound and a failure
// names the op that is wrong; then o end to end. One `PASS <check> ...` or
// `FAIL <check> ...` line per check.
//
// Tolerances (SPEC.md): ||out - ref|| / ||ref|| <= 1e-2 (bf16) or 5e-3 (f16)
// for the q-dtype outputs; lse (fp32) within an absolute 1e-3 * max(1, |ref|);
// -inf must match exactly; NaN or inf never passes.
//
//===----------------------------------------------------------------------===//

#include "CpuCheck.h"

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace cpucheck {

void CaseRunner::report(const std::string &check, bool ok,
                        const std::string &detail) {
  (ok ? totals.passed : totals.failed)++;
  llvm::outs() << (ok ? "PASS " : "FAIL ") << check << " " << detail << "\n";
  llvm::outs().flush();
}

/// " at [i, j, ...] (got x, want y)" for the element of `out` farthest from
/// `expected` (any NaN or infinity mismatch first).
static std::string worstElement(const ref::Tensor &out,
                                const ref::Tensor &expected) {
  double worst = -1;
  size_t at = 0;
  for (size_t i = 0; i < expected.data.size(); ++i) {
    double x = out.data[i], r = expected.data[i];
    double e = x == r ? 0 : std::fabs(x - r);
    if (std::isnan(e) || std::isinf(e))
      e = std::numeric_limits<double>::infinity();
    if (e > worst) {
      worst = e;
      at = i;
    }
  }
  if (worst < 0)
    return "";
  std::string coords;
  size_t rest = at;
  for (int64_t d = expected.rank() - 1; d >= 0; --d) {
    coords = std::to_string(rest % expected.dim(d)) +
             (coords.empty() ? "" : ", ") + coords;
    rest /= expected.dim(d);
  }
  return " worst at [" + coords + "] (got " +
         llvm::formatv("{0}", out.data[at]).str() + ", want " +
         llvm::formatv("{0}", expected.data[at]).str() + ")";
}

/// `err=... tol=...`, and where it fails, the worst element.
void CaseRunner::reportError(const std::string &name, double err, double tol,
                             const ref::Tensor &out,
                             const ref::Tensor &expected) {
  report(name, err <= tol,
         "err=" + llvm::formatv("{0:e3}", err).str() +
             " tol=" + llvm::formatv("{0:e1}", tol).str() +
             (err <= tol ? "" : worstElement(out, expected)));
}

void CaseRunner::checkRel(const std::string &name, const ref::Tensor &out,
                          const ref::Tensor &expected) {
  double tol = c.f16 ? 5e-3 : 1e-2;
  double err = ref::relativeError(out, expected);
  if (std::isnan(err)) // a NaN reference (from a NaN input) fails too
    err = std::numeric_limits<double>::infinity();
  reportError(name, err, tol, out, expected);
}

void CaseRunner::checkLse(const std::string &name, const ref::Tensor &out,
                          const ref::Tensor &expected) {
  // lse is an fp32 statistic of exactly representable inputs: only fp32
  // summation and exp2/log2 errors separate it from the reference.
  double worst = 0; // max |out - ref| / max(1, |ref|)
  for (size_t i = 0; i < expected.data.size(); ++i) {
    double x = out.data[i], r = expected.data[i];
    double e;
    if (std::isinf(r))
      e = x == r ? 0 : std::numeric_limits<double>::infinity();
    else if (!std::isfinite(x))
      e = std::numeric_limits<double>::infinity();
    else
      e = std::fabs(x - r) / std::max(1.0, std::fabs(r));
    if (std::isnan(e)) // a NaN reference (from a NaN input) fails too
      e = std::numeric_limits<double>::infinity();
    worst = std::max(worst, e);
  }
  reportError(name, worst, 1e-3, out, expected);
}

void CaseRunner::applyPerturbation() {
  if (c.perturb.empty())
    return;
  llvm::StringRef name(c.perturb);
  bool unwritten = name.consume_front("unwritten:");
  // NAME+X adds X; the default adds 5% of the buffer's norm plus 0.5.
  auto [bufferName, amountText] = name.split('+');
  name = bufferName;
  double amount = -1;
  if (!amountText.empty() && amountText.getAsDouble(amount))
    ref::fatal("bad --perturb amount " + amountText.str());
  Buffer &b = buf(name.str());
  int64_t n = b.numElements();
  if (n == 0)
    return;
  int64_t i = n - 1; // the last token: every branch attends to something
  llvm::outs() << "# perturbed " << c.perturb << "\n";
  if (unwritten) {
    // As if the program had not written the last element.
    std::vector<uint64_t> saved = b.storage;
    b.poison();
    std::memcpy(b.storage.data(), saved.data(), (n - 1) * b.elemBytes());
    return;
  }
  if (b.elem == Elem::I32) {
    // Drop the first chosen block of the last query (the forced block 0,
    // or the lowest one): the selection becomes invalid.
    int64_t nSel = c.cfg.n;
    b.i32()[i - nSel + 1] = b.i32()[i - nSel + 1] == 0 ? -1 : 0;
    return;
  }
  if (amount < 0) {
    double norm = 0;
    for (int64_t j = 0; j < n; ++j)
      if (std::isfinite(b.get(j)))
        norm += b.get(j) * b.get(j);
    amount = 0.05 * std::sqrt(norm) + 0.5;
  }
  b.set(i, b.get(i) + amount);
}

/// The op-by-op checks (the compiled value of each input, marked *):
///   kc, vc          compress(k/v)                     rel L2
///   o_cmp, lse_cmp  compressedAttention(q, kc*, vc*)  rel L2 / abs
///   idx             acceptSelection(idx*, selectBlocks(q, kc*, lse_cmp*))
///   o_slc, lse_slc  selectedAttention(q, k, v, idx*)
///   o_win, lse_win  windowAttention(q, k, v)
///   o               combine(g, o_cmp*, o_slc*, o_win*)
/// then end to end: o against the reference forward computed from the inputs
/// alone with the compiled idx substituted for the reference selection
/// (SPEC: compare attention outputs given the same idx).
void CaseRunner::check() {
  applyPerturbation();
  const ref::Config &cfg = c.cfg;
  ref::Tensor q = buf("q").toTensor(), g = buf("g").toTensor();
  ref::Tensor kCmp = buf(c.kName("cmp")).toTensor(),
              vCmp = buf(c.vName("cmp")).toTensor();
  ref::Tensor kSlc = buf(c.kName("slc")).toTensor(),
              vSlc = buf(c.vName("slc")).toTensor();
  ref::Tensor kWin = buf(c.kName("win")).toTensor(),
              vWin = buf(c.vName("win")).toTensor();
  ref::Tensor wK, wV, peK, peV;
  if (c.linear) {
    wK = buf("w_k").toTensor();
    wV = buf("w_v").toTensor();
    if (c.pe) {
      peK = buf("pe_k").toTensor();
      peV = buf("pe_v").toTensor();
    }
  }
  auto compress = [&](const ref::Tensor &x, const ref::Tensor &w,
                      const ref::Tensor &pe) {
    return c.linear ? ref::compressLinear(x, w, pe, cfg)
                    : ref::compressMean(x, cfg);
  };

  // Compiled values.
  ref::Tensor kc = buf("kc").toTensor(), vc = buf("vc").toTensor();
  ref::Tensor oCmp = buf("o_cmp").toTensor(),
              lseCmp = buf("lse_cmp").toTensor();
  ref::IndexTensor idx = buf("idx").toIndexTensor(); // input or output
  ref::Tensor oSlc = buf("o_slc").toTensor(),
              lseSlc = buf("lse_slc").toTensor();
  ref::Tensor oWin = buf("o_win").toTensor(),
              lseWin = buf("lse_win").toTensor();
  ref::Tensor o = buf("o").toTensor();

  // Each op on the compiled values of its inputs.
  ref::Tensor kcRef = compress(kCmp, wK, peK), vcRef = compress(vCmp, wV, peV);
  checkRel("kc", kc, kcRef);
  checkRel("vc", vc, vcRef);

  ref::Attention cmp = ref::compressedAttention(q, kc, vc, cfg);
  checkRel("o_cmp", oCmp, cmp.o);
  checkLse("lse_cmp", lseCmp, cmp.lse);

  // idx: structure (sorted, padded, forced blocks, candidates) and ranking
  // within SPEC's 1e-3 tie tolerance, judged by the reference scores of the
  // compiled kc and lse_cmp. acceptSelection needs finite lse where the
  // compressed branch attends to something; a poisoned lse fails above.
  if (c.idxFromReference) {
    llvm::outs() << "# idx: the reference selection, given as an input\n";
  } else {
    bool lseOk = true;
    for (double x : lseCmp.data)
      lseOk &= !std::isnan(x);
    bool idxWritten = true;
    for (int32_t j : idx.data)
      idxWritten &= j != kIdxPoison;
    if (!idxWritten) {
      report("idx", false,
             "unwritten elements (poison " + std::to_string(kIdxPoison) +
                 " left)");
    } else if (!lseOk) {
      report("idx", false, "cannot judge: lse_cmp holds NaN");
    } else {
      ref::Selection sel = ref::selectBlocks(q, kc, lseCmp, cfg);
      std::string error = ref::acceptSelection(idx, sel.scores, cfg);
      int64_t exact = 0;
      for (size_t i = 0; i < idx.data.size(); ++i)
        exact += idx.data[i] == sel.idx.data[i];
      report("idx", error.empty(),
             error.empty() ? "(" + std::to_string(exact) + "/" +
                                 std::to_string(idx.data.size()) +
                                 " slots equal to the reference ranking)"
                           : error);
    }
  }

  // idx is validated (or reported); selected attention given the compiled
  // idx. The reference aborts on an out-of-range index, so guard it.
  bool idxUsable = true;
  {
    int64_t numBlocks = cfg.numSelectionBlocks(c.T);
    for (int32_t j : idx.data)
      idxUsable &= j == -1 || (j >= 0 && j < numBlocks);
  }
  const std::string outOfRange = "idx holds indices out of range";
  if (idxUsable) {
    ref::Attention slc = ref::selectedAttention(q, kSlc, vSlc, idx, cfg);
    checkRel("o_slc", oSlc, slc.o);
    checkLse("lse_slc", lseSlc, slc.lse);
  } else {
    report("o_slc", false, outOfRange);
    report("lse_slc", false, outOfRange);
  }

  ref::Attention win = ref::windowAttention(q, kWin, vWin, cfg);
  checkRel("o_win", oWin, win.o);
  checkLse("lse_win", lseWin, win.lse);

  checkRel("o", o, ref::combine(g, oCmp, oSlc, oWin));

  // End to end: the reference forward from the inputs alone, with the
  // compiled idx in place of the reference selection.
  ref::Attention cmpRef = ref::compressedAttention(q, kcRef, vcRef, cfg);
  if (idxUsable) {
    ref::Attention slcRef = ref::selectedAttention(q, kSlc, vSlc, idx, cfg);
    checkRel("o(end-to-end)", o, ref::combine(g, cmpRef.o, slcRef.o, win.o));
  } else {
    report("o(end-to-end)", false, outOfRange);
  }
  if (c.backward)
    checkBackward(idxUsable);
  if (verbose) {
    // Informational: the compiled selection judged by the scores of the
    // fully-reference pipeline (float64 kc). Not a check: bf16 rounding of
    // kc moves scores by more than SPEC's 1e-3 tie tolerance.
    ref::Selection sel = ref::selectBlocks(q, kcRef, cmpRef.lse, cfg);
    std::string error = ref::acceptSelection(idx, sel.scores, cfg);
    llvm::outs() << "# info: idx vs float64-pipeline scores: "
                 << (error.empty() ? "accepted" : error) << "\n";
  }
}

} // namespace cpucheck
