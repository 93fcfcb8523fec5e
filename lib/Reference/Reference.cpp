//===- Reference.cpp - float64 reference of the NSA forward pass ----------===//
//
// Each function follows one SPEC.md section literally. Accumulation is in
// double; every attention branch goes through the same softmax-over-a-key-set
// helper, so the branches differ only in which keys a query sees.
//
//===----------------------------------------------------------------------===//

#include "nsa/Reference/Reference.h"
#include "Internal.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <limits>
#include <numeric>

using namespace nsa::ref;
using namespace nsa::ref::detail;

void nsa::ref::fatal(const std::string &message) {
  std::fprintf(stderr, "nsa::ref: %s\n", message.c_str());
  std::fflush(stderr);
  std::abort();
}

void detail::require(bool condition, const std::string &message) {
  if (!condition)
    fatal(message);
}

std::string detail::shapeString(const std::vector<int64_t> &shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

void detail::requireShape(const std::string &name, const Tensor &t,
                          const std::vector<int64_t> &expected) {
  require(t.shape == expected, name + " has shape " + shapeString(t.shape) +
                                   ", expected " + shapeString(expected));
}

void detail::requireValid(const Config &cfg) {
  std::string error = cfg.validate();
  require(error.empty(), "invalid config: " + error);
}

//===----------------------------------------------------------------------===//
// Config
//===----------------------------------------------------------------------===//

std::string Config::validate() const {
  auto atLeast = [](const char *name, int64_t value, int64_t bound) {
    return value >= bound
               ? std::string()
               : std::string(name) + " must be >= " + std::to_string(bound) +
                     " (got " + std::to_string(value) + ")";
  };
  // Positivity first: the divisibility rules below are meaningless otherwise.
  // local >= 1 is what keeps the block holding t selected (SPEC section 4).
  for (std::string error :
       {atLeast("l", l, 1), atLeast("d", d, 1), atLeast("l_sel", lSel, 1),
        atLeast("n", n, 1), atLeast("init", init, 0),
        atLeast("local", local, 1), atLeast("w", w, 1)})
    if (!error.empty())
      return error;
  if (!(scale >= 0) || std::isinf(scale))
    return "scale must be finite and >= 0 (0 means 1/sqrt(Dk))";
  std::string got = " (l=" + std::to_string(l) + ", d=" + std::to_string(d) +
                    ", l_sel=" + std::to_string(lSel) + ")";
  if (l % d != 0)
    return "d must divide l" + got;
  if (lSel % d != 0)
    return "d must divide l_sel" + got;
  if (l > lSel)
    return "l must be <= l_sel" + got;
  if (n < init + local)
    return "n must be >= init + local (n=" + std::to_string(n) +
           ", init=" + std::to_string(init) +
           ", local=" + std::to_string(local) + ")";
  return "";
}

int64_t Config::numCompressed(int64_t T) const {
  return T < l ? 0 : (T - l) / d + 1;
}

int64_t Config::numSelectionBlocks(int64_t T) const {
  return (T + lSel - 1) / lSel;
}

double Config::scaleFor(int64_t dk) const {
  return scale != 0 ? scale : 1.0 / std::sqrt(static_cast<double>(dk));
}

//===----------------------------------------------------------------------===//
// Section 1: compression
//===----------------------------------------------------------------------===//

/// Builds [B, Nc, H, D] from k [B, T, H, D], one element at a time.
static Tensor compressEach(
    const Tensor &k, const Config &cfg,
    const std::function<double(int64_t b, int64_t i, int64_t h, int64_t e)>
        &element) {
  requireValid(cfg);
  require(k.rank() == 4, "k must be [B, T, H, D]");
  int64_t nc = cfg.numCompressed(k.dim(1));
  Tensor kc({k.dim(0), nc, k.dim(2), k.dim(3)});
  for (int64_t b = 0; b < k.dim(0); ++b)
    for (int64_t i = 0; i < nc; ++i)
      for (int64_t h = 0; h < k.dim(2); ++h)
        for (int64_t e = 0; e < k.dim(3); ++e)
          kc.at(b, i, h, e) = element(b, i, h, e);
  return kc;
}

void detail::requireLinearCompressionShapes(const Tensor &k, const Tensor &w,
                                            const Tensor &pe,
                                            const Config &cfg) {
  require(k.rank() == 4, "k must be [B, T, H, D]");
  int64_t heads = k.dim(2), dim = k.dim(3);
  requireShape("W", w, {heads, cfg.l * dim, dim});
  if (!pe.isAbsent())
    requireShape("PE", pe, {heads, cfg.l, dim});
}

Tensor nsa::ref::compressLinear(const Tensor &k, const Tensor &w,
                                const Tensor &pe, const Config &cfg) {
  requireLinearCompressionShapes(k, w, pe, cfg);
  int64_t dim = k.dim(3);
  return compressEach(k, cfg, [&](int64_t b, int64_t i, int64_t h, int64_t e) {
    // vec() is position-major: row r, dim f sits at r*D + f.
    double acc = 0;
    for (int64_t r = 0; r < cfg.l; ++r)
      for (int64_t f = 0; f < dim; ++f) {
        double x = k.at(b, i * cfg.d + r, h, f);
        if (!pe.isAbsent())
          x += pe.at(h, r, f);
        acc += x * w.at(h, r * dim + f, e);
      }
    return acc;
  });
}

Tensor nsa::ref::compressMean(const Tensor &k, const Config &cfg) {
  return compressEach(k, cfg, [&](int64_t b, int64_t i, int64_t h, int64_t e) {
    double acc = 0;
    for (int64_t r = 0; r < cfg.l; ++r)
      acc += k.at(b, i * cfg.d + r, h, e);
    return acc / static_cast<double>(cfg.l);
  });
}

Tensor nsa::ref::compress(const Tensor &k, CompressionMode mode,
                          const Tensor &w, const Tensor &pe,
                          const Config &cfg) {
  return mode == CompressionMode::Linear ? compressLinear(k, w, pe, cfg)
                                         : compressMean(k, cfg);
}

//===----------------------------------------------------------------------===//
// Attention core shared by sections 2, 4 and 5
//===----------------------------------------------------------------------===//

double detail::score(const Tensor &q, const Tensor &k, int64_t b, int64_t t,
                     int64_t hq, int64_t u, int64_t h, double scale) {
  double acc = 0;
  for (int64_t e = 0; e < q.dim(3); ++e)
    acc += q.at(b, t, hq, e) * k.at(b, u, h, e);
  return scale * acc;
}

AttentionShape detail::checkAttentionShapes(const Tensor &q, const Tensor &k,
                                            const Tensor &v,
                                            const Config &cfg) {
  requireValid(cfg);
  require(q.rank() == 4 && k.rank() == 4 && v.rank() == 4,
          "q, k and v must be rank 4");
  AttentionShape s;
  s.B = q.dim(0), s.T = q.dim(1), s.HQ = q.dim(2), s.HKV = k.dim(2);
  s.dk = q.dim(3), s.dv = v.dim(3);
  requireShape("k", k, {s.B, k.dim(1), s.HKV, s.dk});
  requireShape("v", v, {s.B, k.dim(1), s.HKV, s.dv});
  require(s.HKV > 0 && s.HQ % s.HKV == 0, "HQ must be a multiple of HKV");
  s.G = s.HQ / s.HKV;
  s.scale = cfg.scaleFor(s.dk);
  return s;
}

/// Softmax attention of every query over the key set `keysOf` gives it. The
/// maximum is subtracted before exponentiating so that lse stays exact for
/// large scores.
static Attention attend(const Tensor &q, const Tensor &k, const Tensor &v,
                        const Config &cfg, const KeySet &keysOf) {
  auto [B, T, HQ, HKV, G, dk, dv, scale] = checkAttentionShapes(q, k, v, cfg);
  Attention out{Tensor({B, T, HQ, dv}), Tensor({B, T, HQ}, kNegInf)};
  std::vector<int64_t> keys;
  std::vector<double> scores;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t hq = 0; hq < HQ; ++hq) {
        int64_t h = hq / G;
        keys.clear();
        keysOf(b, t, h, keys);
        if (keys.empty())
          continue; // o = 0, lse = -inf.
        scores.resize(keys.size());
        double maxScore = kNegInf;
        for (size_t j = 0; j < keys.size(); ++j) {
          scores[j] = score(q, k, b, t, hq, keys[j], h, scale);
          maxScore = std::max(maxScore, scores[j]);
        }
        double sum = 0;
        for (size_t j = 0; j < keys.size(); ++j) {
          double p = std::exp(scores[j] - maxScore);
          sum += p;
          for (int64_t e = 0; e < dv; ++e)
            out.o.at(b, t, hq, e) += p * v.at(b, keys[j], h, e);
        }
        for (int64_t e = 0; e < dv; ++e)
          out.o.at(b, t, hq, e) /= sum;
        out.lse.at(b, t, hq) = maxScore + std::log(sum);
      }
  return out;
}

static void appendRange(std::vector<int64_t> &keys, int64_t begin,
                        int64_t end) {
  for (int64_t u = begin; u < end; ++u)
    keys.push_back(u);
}

//===----------------------------------------------------------------------===//
// Section 2: compressed attention
//===----------------------------------------------------------------------===//

/// Compressed tokens visible to query t are i < this: i*d + l - 1 <= t.
static int64_t numVisibleCompressed(int64_t t, const Config &cfg) {
  return t < cfg.l - 1 ? 0 : (t - cfg.l + 1) / cfg.d + 1;
}

static void requireCompressedShape(const Tensor &q, const Tensor &kc,
                                   const Config &cfg) {
  require(q.rank() == 4 && kc.rank() == 4, "q and kc must be rank 4");
  require(
      kc.dim(1) == cfg.numCompressed(q.dim(1)),
      "kc must hold Nc(T) = " + std::to_string(cfg.numCompressed(q.dim(1))) +
          " compressed tokens");
}

KeySet detail::compressedKeys(const Tensor &q, const Tensor &kc,
                              const Config &cfg) {
  requireCompressedShape(q, kc, cfg);
  return [cfg](int64_t, int64_t t, int64_t, std::vector<int64_t> &keys) {
    appendRange(keys, 0, numVisibleCompressed(t, cfg));
  };
}

Attention nsa::ref::compressedAttention(const Tensor &q, const Tensor &kc,
                                        const Tensor &vc, const Config &cfg) {
  return attend(q, kc, vc, cfg, compressedKeys(q, kc, cfg));
}

//===----------------------------------------------------------------------===//
// Section 3: block selection
//===----------------------------------------------------------------------===//

/// Paper Eq. 9 with SPEC's shift: block j sums the compressed tokens that
/// overlap it, each once per stride-d piece that lies inside the block.
static double blockScore(const std::vector<double> &pCmp, int64_t numVisible,
                         int64_t j, const Config &cfg) {
  int64_t perBlock = cfg.lSel / cfg.d, perToken = cfg.l / cfg.d;
  double acc = 0;
  for (int64_t m = 0; m < perBlock; ++m)
    for (int64_t n = 0; n < perToken; ++n) {
      int64_t i = perBlock * j + m + n - (perToken - 1);
      if (i >= 0 && i < numVisible)
        acc += pCmp[i];
    }
  return acc;
}

/// Whether candidate block j (j <= t / l') is forced for query t.
static bool isForced(int64_t j, int64_t t, const Config &cfg) {
  return j < cfg.init || j > t / cfg.lSel - cfg.local;
}

Selection nsa::ref::selectBlocks(const Tensor &q, const Tensor &kc,
                                 const Tensor &lseCmp, const Config &cfg) {
  requireValid(cfg);
  requireCompressedShape(q, kc, cfg);
  int64_t B = q.dim(0), T = q.dim(1), HQ = q.dim(2), HKV = kc.dim(2);
  requireShape("kc", kc, {B, kc.dim(1), HKV, q.dim(3)});
  requireShape("lse", lseCmp, {B, T, HQ});
  require(HKV > 0 && HQ % HKV == 0, "HQ must be a multiple of HKV");
  int64_t G = HQ / HKV, numBlocks = cfg.numSelectionBlocks(T);
  double scale = cfg.scaleFor(q.dim(3));

  Selection sel{IndexTensor({B, T, HKV, cfg.n}, -1),
                Tensor({B, T, HKV, numBlocks})};
  // Eq. 10: P sums the block scores of the G query heads sharing a KV head.
  std::vector<double> pCmp(kc.dim(1));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t hq = 0; hq < HQ; ++hq) {
        int64_t h = hq / G, numVisible = numVisibleCompressed(t, cfg);
        for (int64_t i = 0; i < numVisible; ++i)
          pCmp[i] = std::exp(score(q, kc, b, t, hq, i, h, scale) -
                             lseCmp.at(b, t, hq));
        for (int64_t j = 0; j < numBlocks; ++j)
          sel.scores.at(b, t, h, j) += blockScore(pCmp, numVisible, j, cfg);
      }

  std::vector<int64_t> candidates;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t h = 0; h < HKV; ++h) {
        candidates.resize(t / cfg.lSel + 1);
        std::iota(candidates.begin(), candidates.end(), 0);
        auto ranksBefore = [&](int64_t x, int64_t y) {
          bool forcedX = isForced(x, t, cfg), forcedY = isForced(y, t, cfg);
          if (forcedX != forcedY)
            return forcedX;
          double px = sel.scores.at(b, t, h, x), py = sel.scores.at(b, t, h, y);
          if (px != py)
            return px > py;
          return x < y;
        };
        std::sort(candidates.begin(), candidates.end(), ranksBefore);
        candidates.resize(std::min<int64_t>(cfg.n, candidates.size()));
        std::sort(candidates.begin(), candidates.end());
        for (size_t s = 0; s < candidates.size(); ++s)
          sel.idx.at(b, t, h, s) = static_cast<int32_t>(candidates[s]);
      }
  return sel;
}

//===----------------------------------------------------------------------===//
// Sections 4-6
//===----------------------------------------------------------------------===//

KeySet detail::selectedKeys(const Tensor &q, const Tensor &k,
                            const IndexTensor &idx, const Config &cfg) {
  require(q.rank() == 4 && k.rank() == 4, "q and k must be rank 4");
  require(idx.shape ==
              std::vector<int64_t>({q.dim(0), q.dim(1), k.dim(2), cfg.n}),
          "idx has shape " + shapeString(idx.shape) + ", expected [B, T, " +
              "HKV, n]");
  return
      [&idx, cfg](int64_t b, int64_t t, int64_t h, std::vector<int64_t> &keys) {
        for (int64_t s = 0; s < cfg.n; ++s) {
          int64_t j = idx.at(b, t, h, s);
          if (j < 0)
            continue;
          appendRange(keys, j * cfg.lSel, std::min((j + 1) * cfg.lSel, t + 1));
        }
      };
}

KeySet detail::windowKeys(const Config &cfg) {
  return [cfg](int64_t, int64_t t, int64_t, std::vector<int64_t> &keys) {
    appendRange(keys, std::max<int64_t>(0, t - cfg.w + 1), t + 1);
  };
}

Attention nsa::ref::selectedAttention(const Tensor &q, const Tensor &k,
                                      const Tensor &v, const IndexTensor &idx,
                                      const Config &cfg) {
  return attend(q, k, v, cfg, selectedKeys(q, k, idx, cfg));
}

Attention nsa::ref::windowAttention(const Tensor &q, const Tensor &k,
                                    const Tensor &v, const Config &cfg) {
  return attend(q, k, v, cfg, windowKeys(cfg));
}

Tensor nsa::ref::combine(const Tensor &g, const Tensor &oCmp,
                         const Tensor &oSlc, const Tensor &oWin) {
  require(oCmp.rank() == 4, "branch outputs must be [B, T, HQ, Dv]");
  requireShape("o_slc", oSlc, oCmp.shape);
  requireShape("o_win", oWin, oCmp.shape);
  requireShape("g", g, {oCmp.dim(0), oCmp.dim(1), oCmp.dim(2), 3});
  Tensor o(oCmp.shape);
  for (int64_t b = 0; b < o.dim(0); ++b)
    for (int64_t t = 0; t < o.dim(1); ++t)
      for (int64_t hq = 0; hq < o.dim(2); ++hq)
        for (int64_t e = 0; e < o.dim(3); ++e)
          o.at(b, t, hq, e) = g.at(b, t, hq, 0) * oCmp.at(b, t, hq, e) +
                              g.at(b, t, hq, 1) * oSlc.at(b, t, hq, e) +
                              g.at(b, t, hq, 2) * oWin.at(b, t, hq, e);
  return o;
}

/// forward() and forwardWithIdx(): selects blocks unless `givenIdx` is set.
static Forward
forwardImpl(const Tensor &q, const Tensor &kCmp, const Tensor &vCmp,
            const Tensor &kSlc, const Tensor &vSlc, const Tensor &kWin,
            const Tensor &vWin, const Tensor &g, CompressionMode mode,
            const Tensor &wK, const Tensor &wV, const Tensor &peK,
            const Tensor &peV, const IndexTensor *givenIdx, const Config &cfg) {
  requireValid(cfg);
  Forward f;
  f.kc = compress(kCmp, mode, wK, peK, cfg);
  f.vc = compress(vCmp, mode, wV, peV, cfg);
  f.cmp = compressedAttention(q, f.kc, f.vc, cfg);
  if (givenIdx)
    f.selection.idx = *givenIdx;
  else
    f.selection = selectBlocks(q, f.kc, f.cmp.lse, cfg);
  f.slc = selectedAttention(q, kSlc, vSlc, f.selection.idx, cfg);
  f.win = windowAttention(q, kWin, vWin, cfg);
  f.o = combine(g, f.cmp.o, f.slc.o, f.win.o);
  return f;
}

Forward nsa::ref::forward(const Tensor &q, const Tensor &kCmp,
                          const Tensor &vCmp, const Tensor &kSlc,
                          const Tensor &vSlc, const Tensor &kWin,
                          const Tensor &vWin, const Tensor &g,
                          CompressionMode mode, const Tensor &wK,
                          const Tensor &wV, const Tensor &peK,
                          const Tensor &peV, const Config &cfg) {
  return forwardImpl(q, kCmp, vCmp, kSlc, vSlc, kWin, vWin, g, mode, wK, wV,
                     peK, peV, nullptr, cfg);
}

Forward nsa::ref::forwardWithIdx(
    const Tensor &q, const Tensor &kCmp, const Tensor &vCmp, const Tensor &kSlc,
    const Tensor &vSlc, const Tensor &kWin, const Tensor &vWin, const Tensor &g,
    CompressionMode mode, const Tensor &wK, const Tensor &wV, const Tensor &peK,
    const Tensor &peV, const IndexTensor &idx, const Config &cfg) {
  return forwardImpl(q, kCmp, vCmp, kSlc, vSlc, kWin, vWin, g, mode, wK, wV,
                     peK, peV, &idx, cfg);
}

Forward nsa::ref::forward(const Tensor &q, const Tensor &k, const Tensor &v,
                          const Tensor &g, CompressionMode mode,
                          const Tensor &wK, const Tensor &wV, const Tensor &peK,
                          const Tensor &peV, const Config &cfg) {
  return forward(q, k, v, k, v, k, v, g, mode, wK, wV, peK, peV, cfg);
}

//===----------------------------------------------------------------------===//
// Test helpers
//===----------------------------------------------------------------------===//

/// Checks one query's selection `chosen` (idx[b, t, h, :]) against the
/// reference scores of its candidates. See acceptSelection.
static std::string acceptQuery(const std::vector<int32_t> &chosen,
                               const std::vector<double> &scores, int64_t t,
                               const Config &cfg) {
  int64_t numCandidates = t / cfg.lSel + 1;
  int64_t count = std::min(cfg.n, numCandidates);
  for (int64_t s = 0; s < cfg.n; ++s) {
    int32_t j = chosen[s];
    if (s >= count) {
      if (j != -1)
        return "slot " + std::to_string(s) + " must be -1 padding, got " +
               std::to_string(j);
      continue;
    }
    if (j < 0 || j >= numCandidates)
      return "block " + std::to_string(j) + " is not a candidate";
    if (s > 0 && j <= chosen[s - 1])
      return "blocks not strictly ascending";
  }
  std::vector<bool> isChosen(numCandidates, false);
  for (int64_t s = 0; s < count; ++s)
    isChosen[chosen[s]] = true;

  std::vector<double> free;
  for (int64_t j = 0; j < numCandidates; ++j) {
    if (!isForced(j, t, cfg))
      free.push_back(scores[j]);
    else if (!isChosen[j])
      return "forced block " + std::to_string(j) + " missing";
  }
  int64_t freeSlots =
      count - (numCandidates - static_cast<int64_t>(free.size()));
  // With every free candidate chosen, or no slot left for one, the structural
  // checks above already pin the set down.
  if (freeSlots == 0 || freeSlots == static_cast<int64_t>(free.size()))
    return "";
  std::sort(free.begin(), free.end(), std::greater<double>());
  double threshold = free[freeSlots - 1]; // The n-th best score overall.
  double tolerance =
      1e-3 * *std::max_element(scores.begin(), scores.begin() + numCandidates);
  for (int64_t j = 0; j < numCandidates; ++j) {
    if (isForced(j, t, cfg))
      continue;
    if (isChosen[j] && scores[j] < threshold - tolerance)
      return "chosen block " + std::to_string(j) + " scores " +
             std::to_string(scores[j]) + ", below the n-th best " +
             std::to_string(threshold);
    if (!isChosen[j] && scores[j] > threshold + tolerance)
      return "omitted block " + std::to_string(j) + " scores " +
             std::to_string(scores[j]) + ", above the n-th best " +
             std::to_string(threshold);
  }
  return "";
}

std::string nsa::ref::acceptSelection(const IndexTensor &idx,
                                      const Tensor &scores, const Config &cfg) {
  requireValid(cfg);
  require(idx.rank() == 4 && idx.dim(3) == cfg.n, "idx must be [B, T, HKV, n]");
  int64_t B = idx.dim(0), T = idx.dim(1), HKV = idx.dim(2);
  int64_t numBlocks = cfg.numSelectionBlocks(T);
  requireShape("scores", scores, {B, T, HKV, numBlocks});
  std::vector<int32_t> chosen(cfg.n);
  std::vector<double> rowScores(numBlocks);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t h = 0; h < HKV; ++h) {
        for (int64_t s = 0; s < cfg.n; ++s)
          chosen[s] = idx.at(b, t, h, s);
        for (int64_t j = 0; j < numBlocks; ++j)
          rowScores[j] = scores.at(b, t, h, j);
        std::string error = acceptQuery(chosen, rowScores, t, cfg);
        if (!error.empty())
          return "(b=" + std::to_string(b) + ", t=" + std::to_string(t) +
                 ", h=" + std::to_string(h) + "): " + error;
      }
  return "";
}

double nsa::ref::relativeError(const Tensor &out, const Tensor &ref) {
  requireShape("out", out, ref.shape);
  constexpr double kInf = std::numeric_limits<double>::infinity();
  double diff = 0, norm = 0;
  for (size_t i = 0; i < ref.data.size(); ++i) {
    double x = out.data[i], r = ref.data[i];
    if (std::isinf(r)) {
      if (x != r)
        return kInf;
      continue;
    }
    if (!std::isfinite(x))
      return kInf;
    diff += (x - r) * (x - r);
    norm += r * r;
  }
  if (norm == 0)
    return diff == 0 ? 0 : kInf;
  return std::sqrt(diff / norm);
}
