//===- Reference.h - float64 reference of the NSA forward pass --*- C++ -*-===//
//
// The oracle that the compiler's tiled programs are checked against: SPEC.md
// sections 1-6 written as directly as possible, in double precision, with no
// MLIR or LLVM dependency. Every tensor uses SPEC's [B, T, H, D] layout.
//
//===----------------------------------------------------------------------===//

#ifndef NSA_REFERENCE_REFERENCE_H
#define NSA_REFERENCE_REFERENCE_H

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

namespace nsa::ref {

//===----------------------------------------------------------------------===//
// Configuration
//===----------------------------------------------------------------------===//

/// SPEC's configuration table; the defaults are the paper's.
struct Config {
  int64_t l = 32;    ///< Compression block length.
  int64_t d = 16;    ///< Compression stride.
  int64_t lSel = 64; ///< Selection block size l'.
  int64_t n = 16;    ///< Selected blocks per query.
  int64_t init = 1;  ///< Forced initial blocks.
  int64_t local = 2; ///< Forced local blocks (including the one holding t).
  int64_t w = 512;   ///< Sliding window.
  double scale = 0;  ///< Score scale; 0 means 1/sqrt(Dk).

  /// Returns "" when every rule of SPEC's table holds, else a message naming
  /// the first broken rule.
  std::string validate() const;

  /// Nc(T): the number of compressed tokens of a sequence of T tokens.
  int64_t numCompressed(int64_t T) const;

  /// ceil(T / l'): the number of selection blocks.
  int64_t numSelectionBlocks(int64_t T) const;

  /// The scale in effect for queries of head dim `dk`.
  double scaleFor(int64_t dk) const;
};

//===----------------------------------------------------------------------===//
// Tensor
//===----------------------------------------------------------------------===//

/// A dense row-major tensor. A default-constructed one (rank 0, no data)
/// stands for an absent optional input. Indexing is always bounds-checked: an
/// oracle that silently reads past a buffer is worse than a slow one.
template <typename T> struct BasicTensor {
  std::vector<int64_t> shape;
  std::vector<T> data;

  BasicTensor() = default;
  explicit BasicTensor(std::vector<int64_t> shape, T fill = T())
      : shape(std::move(shape)), data(numElements(this->shape), fill) {}

  bool isAbsent() const { return shape.empty(); }
  int64_t rank() const { return static_cast<int64_t>(shape.size()); }
  int64_t dim(int64_t i) const { return shape.at(i); }

  template <typename... Idx> T &at(Idx... idx) {
    return data[offset({static_cast<int64_t>(idx)...})];
  }
  template <typename... Idx> const T &at(Idx... idx) const {
    return data[offset({static_cast<int64_t>(idx)...})];
  }

  static int64_t numElements(const std::vector<int64_t> &shape) {
    int64_t count = 1;
    for (int64_t extent : shape)
      count *= extent;
    return count;
  }

private:
  int64_t offset(std::initializer_list<int64_t> idx) const;
};

using Tensor = BasicTensor<double>;
using IndexTensor = BasicTensor<int32_t>;

/// Prints `message` and aborts. Used for broken preconditions (bad shapes,
/// invalid configuration) since the reference is built without exceptions.
[[noreturn]] void fatal(const std::string &message);

template <typename T>
int64_t BasicTensor<T>::offset(std::initializer_list<int64_t> idx) const {
  if (idx.size() != shape.size())
    fatal("tensor indexed with the wrong number of indices");
  int64_t flat = 0;
  const int64_t *extent = shape.data();
  for (int64_t i : idx) {
    if (i < 0 || i >= *extent)
      fatal("tensor index out of bounds");
    flat = flat * *extent++ + i;
  }
  return flat;
}

//===----------------------------------------------------------------------===//
// The forward pass, one function per SPEC section
//===----------------------------------------------------------------------===//

/// Output and log-sum-exp of one attention branch: o [B, T, HQ, Dv] and
/// lse [B, T, HQ]; o = 0 and lse = -inf where a query attends to nothing.
struct Attention {
  Tensor o;
  Tensor lse;
};

/// Selected block indices idx (int32 [B, T, HKV, n], ascending, -1 padded) and
/// the GQA-summed block scores P [B, T, HKV, numSelectionBlocks] behind them.
struct Selection {
  IndexTensor idx;
  Tensor scores;
};

enum class CompressionMode { Linear, Mean };

/// Section 1, `linear`: k [B, T, H, D], W [H, l*D, D], PE [H, l, D] or absent;
/// returns [B, Nc, H, D].
Tensor compressLinear(const Tensor &k, const Tensor &w, const Tensor &pe,
                      const Config &cfg);

/// Section 1, `mean`: k [B, T, H, D] -> [B, Nc, H, D].
Tensor compressMean(const Tensor &k, const Config &cfg);

/// Section 1 in either mode; W and PE are read in linear mode only.
Tensor compress(const Tensor &k, CompressionMode mode, const Tensor &w,
                const Tensor &pe, const Config &cfg);

/// Section 2: q [B, T, HQ, Dk], kc [B, Nc, HKV, Dk], vc [B, Nc, HKV, Dv].
Attention compressedAttention(const Tensor &q, const Tensor &kc,
                              const Tensor &vc, const Config &cfg);

/// Section 3: recomputes p_cmp from q, kc and compressed attention's lse, and
/// ranks the candidate blocks of every query.
Selection selectBlocks(const Tensor &q, const Tensor &kc, const Tensor &lseCmp,
                       const Config &cfg);

/// Section 4: attention over the tokens u <= t in the blocks of idx.
Attention selectedAttention(const Tensor &q, const Tensor &k, const Tensor &v,
                            const IndexTensor &idx, const Config &cfg);

/// Section 5: attention over u in [max(0, t-w+1), t].
Attention windowAttention(const Tensor &q, const Tensor &k, const Tensor &v,
                          const Config &cfg);

/// Section 6: g [B, T, HQ, 3] gates the three branch outputs.
Tensor combine(const Tensor &g, const Tensor &oCmp, const Tensor &oSlc,
               const Tensor &oWin);

/// Every intermediate of one forward pass.
struct Forward {
  Tensor kc, vc;
  Attention cmp, slc, win;
  Selection selection;
  Tensor o;
};

/// Sections 1-6 with independent keys and values per branch. W and PE are
/// used in linear mode only (PE may be absent there).
Forward forward(const Tensor &q, const Tensor &kCmp, const Tensor &vCmp,
                const Tensor &kSlc, const Tensor &vSlc, const Tensor &kWin,
                const Tensor &vWin, const Tensor &g, CompressionMode mode,
                const Tensor &wK, const Tensor &wV, const Tensor &peK,
                const Tensor &peV, const Config &cfg);

/// The same with one k, v shared by all three branches.
Forward forward(const Tensor &q, const Tensor &k, const Tensor &v,
                const Tensor &g, CompressionMode mode, const Tensor &wK,
                const Tensor &wV, const Tensor &peK, const Tensor &peV,
                const Config &cfg);

/// forward() with the selection given instead of made: idx [B, T, HKV, n] is
/// used as is and selection.scores is left absent. Selection carries no
/// gradient (SPEC section 7), so finite differences of the backward must hold
/// idx fixed at the unperturbed point, and a test replaying another
/// implementation's idx compares outputs on the same selection (section 3).
/// For shared k, v pass them as every branch's.
Forward forwardWithIdx(const Tensor &q, const Tensor &kCmp, const Tensor &vCmp,
                       const Tensor &kSlc, const Tensor &vSlc,
                       const Tensor &kWin, const Tensor &vWin, const Tensor &g,
                       CompressionMode mode, const Tensor &wK, const Tensor &wV,
                       const Tensor &peK, const Tensor &peV,
                       const IndexTensor &idx, const Config &cfg);

//===----------------------------------------------------------------------===//
// Test helpers
//===----------------------------------------------------------------------===//

/// SPEC's acceptance rule for a selection `idx` made by another
/// implementation, judged with the reference scores P. Returns "" or a message
/// describing the first violation.
std::string acceptSelection(const IndexTensor &idx, const Tensor &scores,
                            const Config &cfg);

/// ||out - ref|| / ||ref||; +inf when out holds a NaN or an infinity the
/// reference does not have at the same place. Elements where ref is infinite
/// (lse = -inf of an empty key set) must match exactly and count in neither
/// norm.
double relativeError(const Tensor &out, const Tensor &ref);

} // namespace nsa::ref

#endif // NSA_REFERENCE_REFERENCE_H
