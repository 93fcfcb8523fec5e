//===- ReferenceGrad.cpp - float64 reference of the NSA backward ----------===//
//
// Each function differentiates its forward counterpart in Reference.cpp by
// hand. The three attention branches share one softmax-backward helper and
// take their key sets from the same factories as the forward (Internal.h), so
// forward and backward cannot disagree about which keys a query sees.
//
//===----------------------------------------------------------------------===//

#include "nsa/Reference/ReferenceGrad.h"
#include "Internal.h"

#include <cmath>

using namespace nsa::ref;
using namespace nsa::ref::detail;

//===----------------------------------------------------------------------===//
// Section 1: compression
//===----------------------------------------------------------------------===//

CompressionGrad nsa::ref::compressGrad(const Tensor &k, CompressionMode mode,
                                       const Tensor &w, const Tensor &pe,
                                       const Tensor &dKc, const Config &cfg) {
  requireValid(cfg);
  require(k.rank() == 4, "k must be [B, T, H, D]");
  int64_t B = k.dim(0), H = k.dim(2), D = k.dim(3);
  int64_t nc = cfg.numCompressed(k.dim(1));
  requireShape("dKc", dKc, {B, nc, H, D});
  bool linear = mode == CompressionMode::Linear;
  if (linear)
    requireLinearCompressionShapes(k, w, pe, cfg);

  CompressionGrad grad;
  grad.dK = Tensor(k.shape);
  if (linear)
    grad.dW = Tensor(w.shape);
  bool hasPE = linear && !pe.isAbsent();
  if (hasPE)
    grad.dPE = Tensor(pe.shape);
  // Row r of block i is k[i*d + r] (+ PE[r]); its gradient dx goes to both.
  // Blocks overlap when d < l, so a token of k collects from several blocks.
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < nc; ++i)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t r = 0; r < cfg.l; ++r)
          for (int64_t f = 0; f < D; ++f) {
            int64_t u = i * cfg.d + r;
            double dx = 0;
            if (linear) {
              // kc[e] = sum over (r, f) of x[r, f] * W[r*D + f, e].
              double x = k.at(b, u, h, f) + (hasPE ? pe.at(h, r, f) : 0.0);
              for (int64_t e = 0; e < D; ++e) {
                double dkc = dKc.at(b, i, h, e);
                dx += dkc * w.at(h, r * D + f, e);
                grad.dW.at(h, r * D + f, e) += x * dkc;
              }
            } else {
              dx = dKc.at(b, i, h, f) / static_cast<double>(cfg.l);
            }
            grad.dK.at(b, u, h, f) += dx;
            if (hasPE)
              grad.dPE.at(h, r, f) += dx;
          }
  return grad;
}

//===----------------------------------------------------------------------===//
// Softmax backward shared by sections 2, 4 and 5
//===----------------------------------------------------------------------===//

/// The backward of attend() in Reference.cpp over the same key sets. P is
/// recomputed from the forward's lse rather than re-normalized, as the
/// kernels do, so a wrong lse shows up here as a wrong gradient.
static AttentionGrad attendGrad(const Tensor &q, const Tensor &k,
                                const Tensor &v, const Attention &fwd,
                                const Tensor &dO, const Config &cfg,
                                const KeySet &keysOf) {
  auto [B, T, HQ, HKV, G, dk, dv, scale] = checkAttentionShapes(q, k, v, cfg);
  requireShape("o", fwd.o, {B, T, HQ, dv});
  requireShape("lse", fwd.lse, {B, T, HQ});
  requireShape("dO", dO, {B, T, HQ, dv});

  AttentionGrad grad{Tensor(q.shape), Tensor(k.shape), Tensor(v.shape)};
  std::vector<int64_t> keys;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t hq = 0; hq < HQ; ++hq) {
        int64_t h = hq / G;
        keys.clear();
        keysOf(b, t, h, keys);
        double lse = fwd.lse.at(b, t, hq);
        // An lse that disagrees with the key set belongs to another forward.
        require(keys.empty() == (lse == kNegInf),
                "lse must be -inf exactly where a query sees no key");
        if (keys.empty())
          continue; // o = 0 is constant: nothing flows back.
        // D = <dO, o> = sum_u P_u <dO, v_u>: the softmax Jacobian's rank-one
        // part, taken from the forward's o as the kernels do.
        double rowD = 0;
        for (int64_t e = 0; e < dv; ++e)
          rowD += dO.at(b, t, hq, e) * fwd.o.at(b, t, hq, e);
        for (int64_t u : keys) {
          double p = std::exp(score(q, k, b, t, hq, u, h, scale) - lse);
          double dP = 0;
          for (int64_t e = 0; e < dv; ++e) {
            dP += dO.at(b, t, hq, e) * v.at(b, u, h, e);
            grad.dV.at(b, u, h, e) += p * dO.at(b, t, hq, e);
          }
          double dS = p * (dP - rowD);
          for (int64_t e = 0; e < dk; ++e) {
            grad.dQ.at(b, t, hq, e) += scale * dS * k.at(b, u, h, e);
            grad.dK.at(b, u, h, e) += scale * dS * q.at(b, t, hq, e);
          }
        }
      }
  return grad;
}

//===----------------------------------------------------------------------===//
// Sections 2, 4, 5: the attention branches
//===----------------------------------------------------------------------===//

AttentionGrad
nsa::ref::compressedAttentionGrad(const Tensor &q, const Tensor &kc,
                                  const Tensor &vc, const Attention &fwd,
                                  const Tensor &dO, const Config &cfg) {
  return attendGrad(q, kc, vc, fwd, dO, cfg, compressedKeys(q, kc, cfg));
}

AttentionGrad nsa::ref::selectedAttentionGrad(
    const Tensor &q, const Tensor &k, const Tensor &v, const IndexTensor &idx,
    const Attention &fwd, const Tensor &dO, const Config &cfg) {
  return attendGrad(q, k, v, fwd, dO, cfg, selectedKeys(q, k, idx, cfg));
}

AttentionGrad nsa::ref::windowAttentionGrad(const Tensor &q, const Tensor &k,
                                            const Tensor &v,
                                            const Attention &fwd,
                                            const Tensor &dO,
                                            const Config &cfg) {
  return attendGrad(q, k, v, fwd, dO, cfg, windowKeys(cfg));
}

//===----------------------------------------------------------------------===//
// Section 6: gated output
//===----------------------------------------------------------------------===//

CombineGrad nsa::ref::combineGrad(const Tensor &g, const Tensor &oCmp,
                                  const Tensor &oSlc, const Tensor &oWin,
                                  const Tensor &dO) {
  require(oCmp.rank() == 4, "branch outputs must be [B, T, HQ, Dv]");
  requireShape("o_slc", oSlc, oCmp.shape);
  requireShape("o_win", oWin, oCmp.shape);
  requireShape("dO", dO, oCmp.shape);
  requireShape("g", g, {oCmp.dim(0), oCmp.dim(1), oCmp.dim(2), 3});
  CombineGrad grad{Tensor(g.shape), Tensor(dO.shape), Tensor(dO.shape),
                   Tensor(dO.shape)};
  const Tensor *branchO[3] = {&oCmp, &oSlc, &oWin};
  Tensor *branchDO[3] = {&grad.dOCmp, &grad.dOSlc, &grad.dOWin};
  for (int64_t b = 0; b < dO.dim(0); ++b)
    for (int64_t t = 0; t < dO.dim(1); ++t)
      for (int64_t hq = 0; hq < dO.dim(2); ++hq)
        for (int c = 0; c < 3; ++c)
          for (int64_t e = 0; e < dO.dim(3); ++e) {
            double d = dO.at(b, t, hq, e);
            grad.dG.at(b, t, hq, c) += d * branchO[c]->at(b, t, hq, e);
            branchDO[c]->at(b, t, hq, e) = g.at(b, t, hq, c) * d;
          }
  return grad;
}

//===----------------------------------------------------------------------===//
// The whole layer
//===----------------------------------------------------------------------===//

/// a + b + c, elementwise.
static Tensor sum3(const Tensor &a, const Tensor &b, const Tensor &c) {
  requireShape("summand", b, a.shape);
  requireShape("summand", c, a.shape);
  Tensor out(a.shape);
  for (size_t i = 0; i < out.data.size(); ++i)
    out.data[i] = a.data[i] + b.data[i] + c.data[i];
  return out;
}

ForwardGrad nsa::ref::forwardGrad(const Tensor &q, const Tensor &kCmp,
                                  const Tensor &vCmp, const Tensor &kSlc,
                                  const Tensor &vSlc, const Tensor &kWin,
                                  const Tensor &vWin, const Tensor &g,
                                  CompressionMode mode, const Tensor &wK,
                                  const Tensor &wV, const Tensor &peK,
                                  const Tensor &peV, const Forward &fwd,
                                  const Tensor &dO, const Config &cfg) {
  requireValid(cfg);
  CombineGrad gates = combineGrad(g, fwd.cmp.o, fwd.slc.o, fwd.win.o, dO);
  AttentionGrad cmp =
      compressedAttentionGrad(q, fwd.kc, fwd.vc, fwd.cmp, gates.dOCmp, cfg);
  AttentionGrad slc = selectedAttentionGrad(q, kSlc, vSlc, fwd.selection.idx,
                                            fwd.slc, gates.dOSlc, cfg);
  AttentionGrad win =
      windowAttentionGrad(q, kWin, vWin, fwd.win, gates.dOWin, cfg);
  CompressionGrad kc = compressGrad(kCmp, mode, wK, peK, cmp.dK, cfg);
  CompressionGrad vc = compressGrad(vCmp, mode, wV, peV, cmp.dV, cfg);

  ForwardGrad grad;
  grad.dQ = sum3(cmp.dQ, slc.dQ, win.dQ);
  grad.cmp = {std::move(kc.dK), std::move(vc.dK)};
  grad.slc = {std::move(slc.dK), std::move(slc.dV)};
  grad.win = {std::move(win.dK), std::move(win.dV)};
  grad.dG = std::move(gates.dG);
  grad.dWK = std::move(kc.dW);
  grad.dWV = std::move(vc.dW);
  grad.dPEK = std::move(kc.dPE);
  grad.dPEV = std::move(vc.dPE);
  grad.dKc = std::move(cmp.dK);
  grad.dVc = std::move(cmp.dV);
  return grad;
}

ForwardGrad nsa::ref::forwardGrad(const Tensor &q, const Tensor &k,
                                  const Tensor &v, const Tensor &g,
                                  CompressionMode mode, const Tensor &wK,
                                  const Tensor &wV, const Tensor &peK,
                                  const Tensor &peV, const Forward &fwd,
                                  const Tensor &dO, const Config &cfg) {
  ForwardGrad grad =
      forwardGrad(q, k, v, k, v, k, v, g, mode, wK, wV, peK, peV, fwd, dO, cfg);
  grad.shared = {sum3(grad.cmp.dK, grad.slc.dK, grad.win.dK),
                 sum3(grad.cmp.dV, grad.slc.dV, grad.win.dV)};
  return grad;
}
