//===- CheckGrad.cpp - nsa-cpu-check's backward checks --------------------===//
//
// --backward: each grad op against the float64 reference backward
// (nsa/Reference/ReferenceGrad.h) GIVEN THE COMPILED VALUES OF ITS INPUTS,
// as the forward checks do, then every gradient end to end against
// ref::forwardGrad of the inputs alone.
//
// Tolerance (SPEC.md): ||out - ref|| / ||ref|| <= 2e-2 for bf16 gradients,
// 1e-2 for f16 (half of bf16's, as for the forward). d_pe_k is the
// exception: PE_k shifts every compressed key of a head by the same vector,
// which the softmax cancels, so its true gradient is 0 and what is left is
// rounding. It is held to the same tolerance relative to the size the sum
// would have if its terms d_kc[i] . W_r^T did not cancel (their root sum of
// squares) rather than to its own: errors of independent terms add up like
// that, and a sum that misses terms stops cancelling and is as large.
//
//===----------------------------------------------------------------------===//

#include "CpuCheck.h"

#include "nsa/Reference/ReferenceGrad.h"

#include "llvm/Support/FormatVariadic.h"

#include <cmath>
#include <functional>
#include <limits>

namespace cpucheck {

void CaseRunner::checkGrad(const std::string &name, const ref::Tensor &out,
                           const ref::Tensor &expected) {
  double tol = c.f16 ? 1e-2 : 2e-2;
  double err = ref::relativeError(out, expected);
  if (std::isnan(err))
    err = std::numeric_limits<double>::infinity();
  reportError(name, err, tol, out, expected);
}

void CaseRunner::checkGradAbs(const std::string &name, const ref::Tensor &out,
                              const ref::Tensor &expected, double scale) {
  double tol = c.f16 ? 1e-2 : 2e-2;
  double diff = 0;
  for (size_t i = 0; i < expected.data.size(); ++i) {
    double e = out.data[i] - expected.data[i];
    diff += e * e;
  }
  double err = scale == 0 ? (diff == 0 ? 0 : diff) : std::sqrt(diff) / scale;
  if (!std::isfinite(err)) // NaN or inf in the output
    err = std::numeric_limits<double>::infinity();
  reportError(name, err, tol, out, expected);
}

/// The size d_pe of compression would have if its terms did not cancel: the
/// root sum of squares of every term d_kc[b, i] . W_r^T that d_pe[r] sums,
/// over all (h, r, f).
static double peTermScale(const ref::Tensor &w, const ref::Tensor &dKc,
                          int64_t l) {
  double sum = 0;
  int64_t D = dKc.dim(3);
  for (int64_t b = 0; b < dKc.dim(0); ++b)
    for (int64_t i = 0; i < dKc.dim(1); ++i)
      for (int64_t h = 0; h < dKc.dim(2); ++h)
        for (int64_t r = 0; r < l; ++r)
          for (int64_t f = 0; f < D; ++f) {
            double term = 0;
            for (int64_t e = 0; e < D; ++e)
              term += dKc.at(b, i, h, e) * w.at(h, r * D + f, e);
            sum += term * term;
          }
  return std::sqrt(sum);
}

/// Whether a compiled lse [B, T, HQ] can stand for the forward's in the
/// reference backward, which requires lse = -inf exactly where a query sees
/// no key (else it aborts): the tokens t < firstSeen.
static bool lseUsable(const ref::Tensor &lse, int64_t firstSeen) {
  for (int64_t b = 0; b < lse.dim(0); ++b)
    for (int64_t t = 0; t < lse.dim(1); ++t)
      for (int64_t h = 0; h < lse.dim(2); ++h) {
        double x = lse.at(b, t, h);
        if (t < firstSeen ? x != -std::numeric_limits<double>::infinity()
                          : !std::isfinite(x))
          return false;
      }
  return true;
}

/// The op-by-op checks (the compiled value of each input, marked *):
///   d_g, d_o_<c>        combineGrad(g, o_cmp*, o_slc*, o_win*, d_o)
///   d_q_cmp, d_kc, d_vc compressedAttentionGrad(q, kc*, vc*, o_cmp*,
///                       lse_cmp*, d_o_cmp*)
///   d_k_cmp, d_w_k, d_pe_k  compressGrad(k_cmp, w_k, pe_k, d_kc*), and the
///                       same for v
///   d_q_slc, ...        selectedAttentionGrad(q, k, v, idx*, o_slc*,
///                       lse_slc*, d_o_slc*)
///   d_q_win, ...        windowAttentionGrad(q, k, v, o_win*, lse_win*,
///                       d_o_win*)
/// then end to end: every gradient of forwardGrad, from the inputs alone
/// with the compiled idx (selection carries no gradient; SPEC 7).
void CaseRunner::checkBackward(bool idxUsable) {
  const ref::Config &cfg = c.cfg;
  auto t = [&](const std::string &name) { return buf(name).toTensor(); };
  auto optional = [&](const std::string &name) {
    return has(name) ? buf(name).toTensor() : ref::Tensor();
  };
  ref::CompressionMode mode =
      c.linear ? ref::CompressionMode::Linear : ref::CompressionMode::Mean;
  ref::Tensor q = t("q"), g = t("g"), dO = t("d_o");
  ref::Tensor kCmp = t(c.kName("cmp")), vCmp = t(c.vName("cmp"));
  ref::Tensor kSlc = t(c.kName("slc")), vSlc = t(c.vName("slc"));
  ref::Tensor kWin = t(c.kName("win")), vWin = t(c.vName("win"));
  ref::Tensor wK = optional("w_k"), wV = optional("w_v"),
              peK = optional("pe_k"), peV = optional("pe_v");
  ref::IndexTensor idx = buf("idx").toIndexTensor();
  // Compiled values.
  ref::Tensor kc = t("kc"), vc = t("vc");
  ref::Attention oCmp{t("o_cmp"), t("lse_cmp")}, oSlc{t("o_slc"), t("lse_slc")},
      oWin{t("o_win"), t("lse_win")};
  ref::Tensor dOCmp = t("d_o_cmp"), dOSlc = t("d_o_slc"), dOWin = t("d_o_win");
  ref::Tensor dKc = t("d_kc"), dVc = t("d_vc");

  ref::CombineGrad gates = ref::combineGrad(g, oCmp.o, oSlc.o, oWin.o, dO);
  checkGrad("d_g", t("d_g"), gates.dG);
  checkGrad("d_o_cmp", dOCmp, gates.dOCmp);
  checkGrad("d_o_slc", dOSlc, gates.dOSlc);
  checkGrad("d_o_win", dOWin, gates.dOWin);

  // An attention grad check needs a compiled lse that is -inf exactly
  // before `firstSeen` (the forward's lse check says what is wrong with it
  // otherwise) and, for the selected branch, a usable idx.
  auto attention = [&](const char *branch, const ref::Attention &fwd,
                       int64_t firstSeen, const std::string &unusable,
                       const std::function<ref::AttentionGrad()> &grad,
                       const std::string &dk, const std::string &dv) {
    std::string dq = std::string("d_q_") + branch;
    std::string why = unusable;
    if (why.empty() && !lseUsable(fwd.lse, firstSeen))
      why = std::string("lse_") + branch + " is NaN or misplaces -inf";
    if (!why.empty()) {
      for (const std::string &name : {dq, dk, dv})
        report(name, false, "cannot judge: " + why);
      return;
    }
    ref::AttentionGrad r = grad();
    checkGrad(dq, t(dq), r.dQ);
    checkGrad(dk, t(dk), r.dK);
    checkGrad(dv, t(dv), r.dV);
  };
  const std::string outOfRange = "idx holds indices out of range";
  attention(
      "cmp", oCmp, cfg.l - 1, "",
      [&] { return ref::compressedAttentionGrad(q, kc, vc, oCmp, dOCmp, cfg); },
      "d_kc", "d_vc");

  auto compression = [&](const char *kv, const ref::Tensor &src,
                         const ref::Tensor &w, const ref::Tensor &pe,
                         const ref::Tensor &dCompressed) {
    std::string suffix = std::string("_") + kv;
    ref::CompressionGrad r =
        ref::compressGrad(src, mode, w, pe, dCompressed, cfg);
    checkGrad(std::string("d_") + kv + "_cmp",
              t(std::string("d_") + kv + "_cmp"), r.dK);
    if (!c.linear)
      return;
    checkGrad("d_w" + suffix, t("d_w" + suffix), r.dW);
    if (!c.pe)
      return;
    if (std::string(kv) == "k")
      checkGradAbs("d_pe_k(abs)", t("d_pe_k"), r.dPE,
                   peTermScale(w, dCompressed, cfg.l));
    else
      checkGrad("d_pe" + suffix, t("d_pe" + suffix), r.dPE);
  };
  compression("k", kCmp, wK, peK, dKc);
  compression("v", vCmp, wV, peV, dVc);

  attention(
      "slc", oSlc, 0, idxUsable ? "" : outOfRange,
      [&] {
        return ref::selectedAttentionGrad(q, kSlc, vSlc, idx, oSlc, dOSlc, cfg);
      },
      "d_k_slc", "d_v_slc");
  attention(
      "win", oWin, 0, "",
      [&] { return ref::windowAttentionGrad(q, kWin, vWin, oWin, dOWin, cfg); },
      "d_k_win", "d_v_win");

  // End to end.
  if (!idxUsable) {
    report("backward(end-to-end)", false, outOfRange);
    return;
  }
  ref::Forward fwd = ref::forwardWithIdx(q, kCmp, vCmp, kSlc, vSlc, kWin, vWin,
                                         g, mode, wK, wV, peK, peV, idx, cfg);
  ref::ForwardGrad r =
      c.sharedKV ? ref::forwardGrad(q, kCmp, vCmp, g, mode, wK, wV, peK, peV,
                                    fwd, dO, cfg)
                 : ref::forwardGrad(q, kCmp, vCmp, kSlc, vSlc, kWin, vWin, g,
                                    mode, wK, wV, peK, peV, fwd, dO, cfg);
  auto e2e = [](const std::string &name) { return name + "(end-to-end)"; };
  checkGrad(e2e("d_q"), t("d_q"), r.dQ);
  checkGrad(e2e("d_g"), t("d_g"), r.dG);
  if (c.sharedKV) {
    checkGrad(e2e("d_k"), t("d_k"), r.shared.dK);
    checkGrad(e2e("d_v"), t("d_v"), r.shared.dV);
  } else {
    for (auto [branch, kv] :
         {std::pair<const char *, ref::KVGrad *>{"cmp", &r.cmp},
          {"slc", &r.slc},
          {"win", &r.win}}) {
      std::string dk = std::string("d_k_") + branch,
                  dv = std::string("d_v_") + branch;
      checkGrad(e2e(dk), t(dk), kv->dK);
      checkGrad(e2e(dv), t(dv), kv->dV);
    }
  }
  if (c.linear) {
    checkGrad(e2e("d_w_k"), t("d_w_k"), r.dWK);
    checkGrad(e2e("d_w_v"), t("d_w_v"), r.dWV);
    if (c.pe) {
      checkGradAbs("d_pe_k(end-to-end,abs)", t("d_pe_k"), r.dPEK,
                   peTermScale(wK, r.dKc, cfg.l));
      checkGrad(e2e("d_pe_v"), t("d_pe_v"), r.dPEV);
    }
  }
}

} // namespace cpucheck
