//===- Internal.h - helpers shared by the forward and backward reference --===//
//
// Private to lib/Reference. The forward (Reference.cpp) and the backward
// (ReferenceGrad.cpp) must agree on exactly which keys a query sees and on
// the shape rules, so both take them from here instead of restating them.
//
//===----------------------------------------------------------------------===//

#ifndef NSA_LIB_REFERENCE_INTERNAL_H
#define NSA_LIB_REFERENCE_INTERNAL_H

#include "nsa/Reference/Reference.h"

#include <functional>
#include <limits>

namespace nsa::ref::detail {

inline constexpr double kNegInf = -std::numeric_limits<double>::infinity();

/// fatal(message) unless `condition`.
void require(bool condition, const std::string &message);

std::string shapeString(const std::vector<int64_t> &shape);

void requireShape(const std::string &name, const Tensor &t,
                  const std::vector<int64_t> &expected);

void requireValid(const Config &cfg);

/// The shapes of compressLinear's inputs: k [B, T, H, D], W [H, l*D, D], PE
/// [H, l, D] or absent.
void requireLinearCompressionShapes(const Tensor &k, const Tensor &w,
                                    const Tensor &pe, const Config &cfg);

/// scale * <q[b, t, hq], k[b, u, h]>.
double score(const Tensor &q, const Tensor &k, int64_t b, int64_t t, int64_t hq,
             int64_t u, int64_t h, double scale);

/// The extents of one attention branch, after checking q [B, T, HQ, Dk],
/// k [B, S, HKV, Dk] and v [B, S, HKV, Dv] (S keys, HQ a multiple of HKV).
struct AttentionShape {
  int64_t B, T, HQ, HKV, G, dk, dv;
  double scale;
};
AttentionShape checkAttentionShapes(const Tensor &q, const Tensor &k,
                                    const Tensor &v, const Config &cfg);

/// Writes the keys (positions along k's dim 1) that query t of batch b sees
/// through KV head h.
using KeySet = std::function<void(int64_t b, int64_t t, int64_t h,
                                  std::vector<int64_t> &keys)>;

/// Section 2: compressed tokens i with i*d + l - 1 <= t. Checks that kc holds
/// Nc(T) tokens for q's T.
KeySet compressedKeys(const Tensor &q, const Tensor &kc, const Config &cfg);

/// Section 4: tokens u <= t in the blocks of idx. Checks idx's shape. `idx`
/// must outlive the key set.
KeySet selectedKeys(const Tensor &q, const Tensor &k, const IndexTensor &idx,
                    const Config &cfg);

/// Section 5: u in [max(0, t-w+1), t].
KeySet windowKeys(const Config &cfg);

} // namespace nsa::ref::detail

#endif // NSA_LIB_REFERENCE_INTERNAL_H
