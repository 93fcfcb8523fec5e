//===- ReferenceGrad.h - float64 reference of the NSA backward --*- C++ -*-===//
//
// SPEC.md section 7: the gradients of a scalar loss through the forward of
// Reference.h, one function per forward function, in double precision. The
// oracle for the tiled backward programs and the GPU kernels, so each
// function takes what such a kernel takes (the forward's o and lse, the
// upstream gradient) and returns what it writes.
//
// Selection is a constant: idx comes from the forward and nothing flows into
// q or kc through the block scores behind it.
//
//===----------------------------------------------------------------------===//

#ifndef NSA_REFERENCE_REFERENCEGRAD_H
#define NSA_REFERENCE_REFERENCEGRAD_H

#include "nsa/Reference/Reference.h"

namespace nsa::ref {

/// Gradients of section 1 with respect to its inputs.
struct CompressionGrad {
  Tensor dK;  ///< [B, T, H, D].
  Tensor dW;  ///< [H, l*D, D] in linear mode; absent in mean mode.
  Tensor dPE; ///< [H, l, D] in linear mode with PE given; else absent.
};

/// Section 1 backward: dKc [B, Nc, H, D] is the gradient of the compressed
/// tokens compress(k, mode, w, pe) returned.
CompressionGrad compressGrad(const Tensor &k, CompressionMode mode,
                             const Tensor &w, const Tensor &pe,
                             const Tensor &dKc, const Config &cfg);

/// Gradients of one attention branch: dQ like q, dK like k, dV like v. Every
/// query head of a GQA group adds into its KV head's dK and dV.
struct AttentionGrad {
  Tensor dQ, dK, dV;
};

/// Sections 2, 4 and 5 backward. `fwd` is the branch's forward output (o and
/// lse, as the forward function returned them) and dO [B, T, HQ, Dv] the
/// gradient of o. Probabilities are recomputed from lse, P = exp(s - lse),
/// and with D = rowsum(dO * o):
///   dS = P * (dO . v^T - D),  dQ = scale * dS . k,
///   dK = scale * dS^T . q,    dV = P^T . dO.
/// Queries that see no key (lse = -inf) contribute nothing.
AttentionGrad compressedAttentionGrad(const Tensor &q, const Tensor &kc,
                                      const Tensor &vc, const Attention &fwd,
                                      const Tensor &dO, const Config &cfg);

/// `idx` is the selection the forward used, held constant.
AttentionGrad selectedAttentionGrad(const Tensor &q, const Tensor &k,
                                    const Tensor &v, const IndexTensor &idx,
                                    const Attention &fwd, const Tensor &dO,
                                    const Config &cfg);

AttentionGrad windowAttentionGrad(const Tensor &q, const Tensor &k,
                                  const Tensor &v, const Attention &fwd,
                                  const Tensor &dO, const Config &cfg);

/// Gradients of section 6.
struct CombineGrad {
  Tensor dG;                  ///< [B, T, HQ, 3]: dG[.., c] = <dO, o_c>.
  Tensor dOCmp, dOSlc, dOWin; ///< g_c * dO, the branches' upstream gradients.
};

CombineGrad combineGrad(const Tensor &g, const Tensor &oCmp, const Tensor &oSlc,
                        const Tensor &oWin, const Tensor &dO);

/// Gradients of a source k and v of one branch.
struct KVGrad {
  Tensor dK, dV;
};

/// Gradients of the whole layer (sections 1-6) with respect to every input
/// of forward().
struct ForwardGrad {
  Tensor dQ;
  /// Per branch, with respect to the k, v that branch read; cmp's flow back
  /// through compression.
  KVGrad cmp, slc, win;
  /// cmp + slc + win: filled by the shared-k, v overload only.
  KVGrad shared;
  Tensor dG;
  /// Linear mode only (absent in mean mode); dPE also needs PE given.
  Tensor dWK, dWV, dPEK, dPEV;
  /// The gradients of the compressed tokens kc, vc, before compression's
  /// backward: what a compressed-attention backward kernel writes.
  Tensor dKc, dVc;
};

/// The layer's backward with independent k, v per branch. `fwd` is the
/// forward()/forwardWithIdx() of these inputs (its kc, vc, branch outputs,
/// lse and idx are read, not recomputed) and dO [B, T, HQ, Dv] the gradient of
/// its o.
ForwardGrad forwardGrad(const Tensor &q, const Tensor &kCmp, const Tensor &vCmp,
                        const Tensor &kSlc, const Tensor &vSlc,
                        const Tensor &kWin, const Tensor &vWin, const Tensor &g,
                        CompressionMode mode, const Tensor &wK,
                        const Tensor &wV, const Tensor &peK, const Tensor &peV,
                        const Forward &fwd, const Tensor &dO,
                        const Config &cfg);

/// The same with one k, v shared by all three branches; `shared` holds their
/// gradients.
ForwardGrad forwardGrad(const Tensor &q, const Tensor &k, const Tensor &v,
                        const Tensor &g, CompressionMode mode, const Tensor &wK,
                        const Tensor &wV, const Tensor &peK, const Tensor &peV,
                        const Forward &fwd, const Tensor &dO,
                        const Config &cfg);

} // namespace nsa::ref

#endif // NSA_REFERENCE_REFERENCEGRAD_H
