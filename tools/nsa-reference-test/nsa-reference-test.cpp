//===- nsa-reference-test.cpp - checks of the float64 NSA reference -------===//
//
// Checks nsa::ref against brute-force computations written independently of
// it (full rows of scores with an explicit mask, block scores from overlap
// lengths, selection by repeated arg-max) and against facts derived by hand
// from SPEC.md, and the backward against finite differences (GradChecks.cpp).
// Prints one line per check and "N passed, M failed"; exits 1 on any failure.
//
//===----------------------------------------------------------------------===//

#include "Harness.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>
#include <string>

using namespace nsa::ref;
using namespace nsa::ref::test;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
/// Reference and brute force differ only in summation order.
constexpr double kTight = 1e-12;

/// "" when relativeError(out, ref) <= tol.
std::string close(const std::string &what, const Tensor &out, const Tensor &ref,
                  double tol = kTight) {
  double err = relativeError(out, ref);
  return err <= tol ? "" : what + " relative error " + str(err);
}

//===----------------------------------------------------------------------===//
// Brute force, written without looking at how the reference computes
//===----------------------------------------------------------------------===//

using Mask = std::function<bool(int64_t b, int64_t t, int64_t h, int64_t u)>;

/// The full row of softmax probabilities of query (b, t, hq) over every key of
/// k, masked keys 0; all zeros when the mask hides every key. Random test data
/// keeps scores small, so exp needs no max shift.
std::vector<double> bruteProbs(const Tensor &q, const Tensor &k, double scale,
                               const Mask &visible, int64_t b, int64_t t,
                               int64_t hq, double *lse = nullptr) {
  int64_t h = hq / (q.dim(2) / k.dim(2));
  std::vector<double> p(k.dim(1), 0.0);
  double sum = 0;
  for (int64_t u = 0; u < k.dim(1); ++u) {
    if (!visible(b, t, h, u))
      continue;
    double s = 0;
    for (int64_t e = 0; e < q.dim(3); ++e)
      s += q.at(b, t, hq, e) * k.at(b, u, h, e);
    p[u] = std::exp(scale * s);
    sum += p[u];
  }
  for (double &x : p)
    x = sum > 0 ? x / sum : 0;
  if (lse)
    *lse = sum > 0 ? std::log(sum) : -kInf;
  return p;
}

Attention bruteAttention(const Tensor &q, const Tensor &k, const Tensor &v,
                         double scale, const Mask &visible) {
  int64_t B = q.dim(0), T = q.dim(1), HQ = q.dim(2), Dv = v.dim(3);
  int64_t G = HQ / k.dim(2);
  Attention out{Tensor({B, T, HQ, Dv}), Tensor({B, T, HQ})};
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t hq = 0; hq < HQ; ++hq) {
        std::vector<double> p =
            bruteProbs(q, k, scale, visible, b, t, hq, &out.lse.at(b, t, hq));
        for (int64_t u = 0; u < k.dim(1); ++u)
          for (int64_t e = 0; e < Dv; ++e)
            out.o.at(b, t, hq, e) += p[u] * v.at(b, u, hq / G, e);
      }
  return out;
}

Mask causalMask() {
  return [](int64_t, int64_t t, int64_t, int64_t u) { return u <= t; };
}

Mask compressedMask(const Config &cfg) {
  return [cfg](int64_t, int64_t t, int64_t, int64_t i) {
    return i * cfg.d + cfg.l - 1 <= t;
  };
}

Mask windowMask(const Config &cfg) {
  return [cfg](int64_t, int64_t t, int64_t, int64_t u) {
    return u <= t && u >= t - cfg.w + 1;
  };
}

Mask selectedMask(const IndexTensor &idx, const Config &cfg) {
  return [&idx, cfg](int64_t b, int64_t t, int64_t h, int64_t u) {
    if (u > t)
      return false;
    for (int64_t s = 0; s < cfg.n; ++s)
      if (idx.at(b, t, h, s) == u / cfg.lSel)
        return true;
    return false;
  };
}

/// kc[b, i, h] = vec(k[i*d : i*d+l] + PE) . W, with vec built as an explicit
/// position-major vector. Absent W means mean mode.
Tensor bruteCompress(const Tensor &k, const Tensor &w, const Tensor &pe,
                     const Config &cfg) {
  int64_t B = k.dim(0), H = k.dim(2), D = k.dim(3);
  int64_t nc = k.dim(1) < cfg.l ? 0 : (k.dim(1) - cfg.l) / cfg.d + 1;
  Tensor kc({B, nc, H, D});
  std::vector<double> vec;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < nc; ++i)
      for (int64_t h = 0; h < H; ++h) {
        vec.clear();
        for (int64_t r = 0; r < cfg.l; ++r)
          for (int64_t e = 0; e < D; ++e)
            vec.push_back(k.at(b, i * cfg.d + r, h, e) +
                          (pe.isAbsent() ? 0 : pe.at(h, r, e)));
        for (int64_t e = 0; e < D; ++e) {
          double acc = 0;
          for (size_t x = 0; x < vec.size(); ++x)
            acc += w.isAbsent() ? (int64_t(x) % D == e ? vec[x] / cfg.l : 0)
                                : vec[x] * w.at(h, int64_t(x), e);
          kc.at(b, i, h, e) = acc;
        }
      }
  return kc;
}

/// P[b, t, h, j]: every compressed token i adds p_cmp times the number of its
/// stride-d pieces inside block j, i.e. |[i*d, i*d+l) & [j*l', (j+1)*l')| / d.
/// This is what SPEC's shifted Eq. 9 counts, derived without its index sums.
Tensor bruteScores(const Tensor &q, const Tensor &kc, const Config &cfg) {
  int64_t B = q.dim(0), T = q.dim(1), HQ = q.dim(2), HKV = kc.dim(2);
  int64_t numBlocks = (T + cfg.lSel - 1) / cfg.lSel;
  Tensor P({B, T, HKV, numBlocks});
  double scale = cfg.scaleFor(q.dim(3));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t hq = 0; hq < HQ; ++hq) {
        std::vector<double> p =
            bruteProbs(q, kc, scale, compressedMask(cfg), b, t, hq);
        for (int64_t j = 0; j < numBlocks; ++j)
          for (int64_t i = 0; i < kc.dim(1); ++i) {
            int64_t overlap = std::min(i * cfg.d + cfg.l, (j + 1) * cfg.lSel) -
                              std::max(i * cfg.d, j * cfg.lSel);
            if (overlap > 0)
              P.at(b, t, hq / (HQ / HKV), j) += p[i] * (overlap / cfg.d);
          }
      }
  return P;
}

/// Forced blocks first, then repeated arg-max over the rest (a strict > while
/// scanning j upwards keeps the smaller j on ties), emitted in block order.
IndexTensor bruteSelect(const Tensor &P, const Config &cfg) {
  int64_t B = P.dim(0), T = P.dim(1), HKV = P.dim(2);
  IndexTensor idx({B, T, HKV, cfg.n}, -1);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t h = 0; h < HKV; ++h) {
        int64_t cur = t / cfg.lSel;
        std::vector<bool> chosen(cur + 1, false);
        int64_t count = 0;
        for (int64_t j = 0; j <= cur; ++j)
          if (j < cfg.init || j > cur - cfg.local) {
            chosen[j] = true;
            ++count;
          }
        for (; count < std::min(cfg.n, cur + 1); ++count) {
          int64_t best = -1;
          for (int64_t j = 0; j <= cur; ++j)
            if (!chosen[j] &&
                (best < 0 || P.at(b, t, h, j) > P.at(b, t, h, best)))
              best = j;
          chosen[best] = true;
        }
        int64_t slot = 0;
        for (int64_t j = 0; j <= cur; ++j)
          if (chosen[j])
            idx.at(b, t, h, slot++) = static_cast<int32_t>(j);
      }
  return idx;
}

std::string sameIdx(const IndexTensor &got, const IndexTensor &want) {
  if (got.shape != want.shape)
    return "idx shape differs";
  for (size_t i = 0; i < got.data.size(); ++i)
    if (got.data[i] != want.data[i])
      return "idx differs at flat index " + std::to_string(i) + ": got " +
             std::to_string(got.data[i]) + ", want " +
             std::to_string(want.data[i]);
  return "";
}

std::string idxRow(const IndexTensor &idx, int64_t b, int64_t t, int64_t h) {
  std::string s = "{";
  for (int64_t i = 0; i < idx.dim(3); ++i)
    s += (i ? "," : "") + std::to_string(idx.at(b, t, h, i));
  return s + "}";
}

Config smallConfig() {
  Config cfg;
  cfg.l = 8;
  cfg.d = 4;
  cfg.lSel = 16;
  cfg.n = 4;
  cfg.init = 1;
  cfg.local = 2;
  cfg.w = 24;
  return cfg;
}

//===----------------------------------------------------------------------===//
// (a), (b): block scores
//===----------------------------------------------------------------------===//

/// SPEC's worked example (l=32, d=16, l'=64): block j sums compressed tokens
/// 4j-1 .. 4j+3 with weights 1, 2, 2, 2, 1. Head h puts all of p_cmp on token
/// h (one-hot keys, score -1000 elsewhere), so P[j] must be the weight of
/// token h in block j.
void checkWorkedExampleOneHot(Checker &c) {
  Config cfg;
  cfg.scale = 1;
  int64_t T = 384, nc = cfg.numCompressed(T); // 23 tokens, all seen at T-1.
  Rng rng(1);
  Tensor kc({1, nc, nc, nc}), q({1, T, nc, nc}, -1000.0);
  for (int64_t i = 0; i < nc; ++i)
    for (int64_t h = 0; h < nc; ++h)
      kc.at(0, i, h, i) = 1;
  for (int64_t t = 0; t < T; ++t)
    for (int64_t h = 0; h < nc; ++h)
      q.at(0, t, h, h) = 0;
  Tensor vc = randomTensor({1, nc, nc, 4}, rng);
  Attention cmp = compressedAttention(q, kc, vc, cfg);
  Selection sel = selectBlocks(q, kc, cmp.lse, cfg);

  const int64_t weights[5] = {1, 2, 2, 2, 1};
  std::string error;
  for (int64_t token = 0; token < nc && error.empty(); ++token)
    for (int64_t j = 0; j < cfg.numSelectionBlocks(T); ++j) {
      int64_t k = token - (4 * j - 1);
      double want = k >= 0 && k < 5 ? weights[k] : 0;
      double got = sel.scores.at(0, T - 1, token, j);
      if (std::abs(got - want) > kTight) {
        error = "p_cmp on token " + std::to_string(token) + ": P[" +
                std::to_string(j) + "] = " + str(got) + ", want " + str(want);
        break;
      }
    }
  c.check("(a) worked example: one-hot p_cmp lands with weights 1,2,2,2,1",
          error);
}

/// The same rule on random p_cmp with G = 2: P[j] = sum over the group of
/// p[4j-1] + 2 p[4j] + 2 p[4j+1] + 2 p[4j+2] + p[4j+3].
void checkWorkedExampleRandom(Checker &c) {
  Config cfg;
  int64_t T = 300;
  Rng rng(2);
  Tensor q = randomTensor({1, T, 2, 16}, rng);
  Tensor kc = randomTensor({1, cfg.numCompressed(T), 1, 16}, rng);
  Tensor vc = randomTensor({1, cfg.numCompressed(T), 1, 8}, rng);
  Selection sel =
      selectBlocks(q, kc, compressedAttention(q, kc, vc, cfg).lse, cfg);

  const double weights[5] = {1, 2, 2, 2, 1};
  Tensor want(sel.scores.shape);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t hq = 0; hq < 2; ++hq) {
      std::vector<double> p =
          bruteProbs(q, kc, cfg.scaleFor(16), compressedMask(cfg), 0, t, hq);
      for (int64_t j = 0; j < want.dim(3); ++j)
        for (int64_t k = 0; k < 5; ++k) {
          int64_t i = 4 * j - 1 + k;
          if (i >= 0 && i < int64_t(p.size()))
            want.at(0, t, 0, j) += weights[k] * p[i];
        }
    }
  c.check("(a) worked example: random p_cmp, G=2, T=300",
          close("P", sel.scores, want));
}

/// With l = l' = d every compressed token is exactly one selection block.
void checkScoresEqualProbsWhenBlocksCoincide(Checker &c) {
  Config cfg;
  cfg.l = cfg.lSel = cfg.d = 16;
  cfg.n = 4;
  int64_t T = 100, G = 4;
  Rng rng(3);
  Tensor q = randomTensor({2, T, 2 * G, 8}, rng);
  Tensor kc = randomTensor({2, cfg.numCompressed(T), 2, 8}, rng);
  Tensor vc = randomTensor({2, cfg.numCompressed(T), 2, 8}, rng);
  Selection sel =
      selectBlocks(q, kc, compressedAttention(q, kc, vc, cfg).lse, cfg);
  Tensor want(sel.scores.shape);
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t hq = 0; hq < 2 * G; ++hq) {
        std::vector<double> p =
            bruteProbs(q, kc, cfg.scaleFor(8), compressedMask(cfg), b, t, hq);
        for (int64_t j = 0; j < int64_t(p.size()); ++j)
          want.at(b, t, hq / G, j) += p[j];
      }
  c.check("(b) l = l' = d: P is p_cmp summed over the group (G=4)",
          close("P", sel.scores, want));
}

//===----------------------------------------------------------------------===//
// (c): selection
//===----------------------------------------------------------------------===//

/// Structural facts of every row: count, order, padding, forced blocks.
std::string selectionInvariants(const IndexTensor &idx, const Config &cfg) {
  for (int64_t b = 0; b < idx.dim(0); ++b)
    for (int64_t t = 0; t < idx.dim(1); ++t)
      for (int64_t h = 0; h < idx.dim(2); ++h) {
        int64_t cur = t / cfg.lSel, count = std::min(cfg.n, cur + 1);
        std::string where =
            "t=" + std::to_string(t) + " " + idxRow(idx, b, t, h);
        std::vector<bool> has(cur + 1, false);
        for (int64_t s = 0; s < cfg.n; ++s) {
          int32_t j = idx.at(b, t, h, s);
          if (s >= count) {
            if (j != -1)
              return where + ": not -1 padded";
          } else if (j < 0 || j > cur ||
                     (s > 0 && j <= idx.at(b, t, h, s - 1))) {
            return where + ": not ascending candidates";
          } else {
            has[j] = true;
          }
        }
        for (int64_t j = 0; j <= cur; ++j)
          if ((j < cfg.init || j > cur - cfg.local) && !has[j])
            return where + ": forced block " + std::to_string(j) + " missing";
        if (!has[cur])
          return where + ": block holding t missing";
      }
  return "";
}

void checkSelectionAgainstBruteForce(Checker &c) {
  Config cfg = smallConfig();
  cfg.n = 5;
  int64_t T = 257;
  Rng rng(4);
  Tensor q = randomTensor({2, T, 4, 8}, rng, -3, 3);
  Tensor kc = randomTensor({2, cfg.numCompressed(T), 2, 8}, rng, -3, 3);
  Tensor vc = randomTensor({2, cfg.numCompressed(T), 2, 8}, rng);
  Selection sel =
      selectBlocks(q, kc, compressedAttention(q, kc, vc, cfg).lse, cfg);
  Tensor P = bruteScores(q, kc, cfg);
  c.check("(c) P matches overlap-weighted brute force (l=8, d=4, l'=16)",
          close("P", sel.scores, P));
  c.check("(c) forced, block of t, ascending, -1 padding, count = min(n, "
          "candidates)",
          selectionInvariants(sel.idx, cfg));
  c.check("(c) idx equals brute-force ranking",
          sameIdx(sel.idx, bruteSelect(P, cfg)));
  c.check("(c) acceptSelection accepts the reference's own idx",
          acceptSelection(sel.idx, P, cfg));
}

/// q = 0 makes p_cmp uniform: at t = 1023 (l=32, d=16, l'=64) all 63 tokens
/// are visible, inner blocks 1..14 score 8/63, blocks 0 and 15 score 7/63.
/// With init = local = 1 and n = 4, the two free slots go to the smallest
/// tied blocks: idx = {0, 1, 2, 15}.
void checkTieBreak(Checker &c) {
  Config cfg;
  cfg.n = 4;
  cfg.init = 1;
  cfg.local = 1;
  int64_t T = 1024;
  Rng rng(5);
  Tensor q({1, T, 1, 4});
  Tensor kc = randomTensor({1, cfg.numCompressed(T), 1, 4}, rng);
  Tensor vc = randomTensor({1, cfg.numCompressed(T), 1, 4}, rng);
  Selection sel =
      selectBlocks(q, kc, compressedAttention(q, kc, vc, cfg).lse, cfg);
  std::string got = idxRow(sel.idx, 0, T - 1, 0);
  c.check("(c) equal scores: smaller j wins",
          got == "{0,1,2,15}" ? "" : "idx = " + got + ", want {0,1,2,15}");
  std::string inner =
      std::abs(sel.scores.at(0, T - 1, 0, 7) - 8.0 / 63) < kTight &&
              std::abs(sel.scores.at(0, T - 1, 0, 0) - 7.0 / 63) < kTight
          ? ""
          : "P[7] or P[0] not 8/63, 7/63";
  c.check("(c) uniform p_cmp: inner block 8/63, block 0 7/63", inner);

  // Other members of the tie are equally right; a low scorer is not.
  IndexTensor otherTie = sel.idx;
  otherTie.at(0, T - 1, 0, 1) = 13;
  otherTie.at(0, T - 1, 0, 2) = 14;
  c.check("(c) acceptSelection accepts another choice among tied blocks",
          acceptSelection(otherTie, sel.scores, cfg));
}

/// Fewer candidates than n: every candidate, then -1.
void checkFewCandidates(Checker &c) {
  Config cfg; // n = 16.
  int64_t T = 71;
  Rng rng(6);
  Tensor q = randomTensor({1, T, 2, 4}, rng);
  Tensor kc = randomTensor({1, cfg.numCompressed(T), 1, 4}, rng);
  Tensor vc = randomTensor({1, cfg.numCompressed(T), 1, 4}, rng);
  Selection sel =
      selectBlocks(q, kc, compressedAttention(q, kc, vc, cfg).lse, cfg);
  std::string got = idxRow(sel.idx, 0, 70, 0);
  std::string want = "{0,1";
  for (int i = 2; i < 16; ++i)
    want += ",-1";
  want += "}";
  c.check("(c) fewer candidates than n: all of them, then -1 padding",
          got == want ? "" : "t=70: idx = " + got);
  got = idxRow(sel.idx, 0, 0, 0);
  c.check("(c) t = 0 (no compressed token visible) selects block 0",
          got.rfind("{0,-1", 0) == 0 ? "" : "idx = " + got);
}

/// acceptSelection must reject each way a selection can be wrong.
void checkAcceptanceRejects(Checker &c) {
  Config cfg = smallConfig();
  int64_t T = 160, t = 159; // 10 candidates, forced {0, 8, 9}.
  Rng rng(7);
  Tensor q = randomTensor({1, T, 1, 8}, rng, -3, 3);
  Tensor kc = randomTensor({1, cfg.numCompressed(T), 1, 8}, rng, -3, 3);
  Tensor vc = randomTensor({1, cfg.numCompressed(T), 1, 8}, rng);
  Selection sel =
      selectBlocks(q, kc, compressedAttention(q, kc, vc, cfg).lse, cfg);
  auto rejects = [&](const std::string &what, auto mutate) {
    IndexTensor bad = sel.idx;
    mutate(bad);
    std::string msg = acceptSelection(bad, sel.scores, cfg);
    c.check("(c) acceptSelection rejects " + what,
            msg.empty() ? "accepted " + idxRow(bad, 0, t, 0) : "");
  };
  // The single free slot holds the best free block; take the worst instead.
  int64_t best = -1, worst = -1;
  for (int64_t j = 1; j <= 7; ++j) {
    double p = sel.scores.at(0, t, 0, j);
    if (best < 0 || p > sel.scores.at(0, t, 0, best))
      best = j;
    if (worst < 0 || p < sel.scores.at(0, t, 0, worst))
      worst = j;
  }
  rejects("a low-scoring block", [&](IndexTensor &bad) {
    bad.at(0, t, 0, 0) = 0;
    bad.at(0, t, 0, 1) = static_cast<int32_t>(worst);
    bad.at(0, t, 0, 2) = 8;
    bad.at(0, t, 0, 3) = 9;
  });
  rejects("a missing forced block", [&](IndexTensor &bad) {
    bad.at(0, t, 0, 0) = static_cast<int32_t>(best == 1 ? 2 : 1);
    std::sort(&bad.at(0, t, 0, 0), &bad.at(0, t, 0, 0) + 4);
  });
  rejects("descending order", [&](IndexTensor &bad) {
    std::swap(bad.at(0, t, 0, 0), bad.at(0, t, 0, 3));
  });
  rejects("a missing -1 pad", [&](IndexTensor &bad) {
    bad.at(0, 20, 0, 2) = 0; // t = 20 has 2 candidates.
  });
}

//===----------------------------------------------------------------------===//
// (d), (e): attention branches
//===----------------------------------------------------------------------===//

void checkCompressedAttention(Checker &c) {
  Config cfg;
  Rng rng(8);
  for (int64_t T : {1, 31, 33, 100, 257}) {
    Tensor q = randomTensor({2, T, 4, 12}, rng);
    Tensor kc = randomTensor({2, cfg.numCompressed(T), 2, 12}, rng);
    Tensor vc = randomTensor({2, cfg.numCompressed(T), 2, 6}, rng);
    Attention got = compressedAttention(q, kc, vc, cfg);
    Attention want =
        bruteAttention(q, kc, vc, cfg.scaleFor(12), compressedMask(cfg));
    c.check("(d) compressed attention vs masked brute force, T=" +
                std::to_string(T),
            firstError(
                {close("o", got.o, want.o), close("lse", got.lse, want.lse)}));
  }

  // t < l - 1 = 31 sees nothing; t in [31, 46] sees token 0 alone (token 1
  // needs 1*16 + 31 <= t); t = 47 sees two.
  int64_t T = 48;
  Tensor q = randomTensor({1, T, 1, 4}, rng);
  Tensor kc = randomTensor({1, cfg.numCompressed(T), 1, 4}, rng);
  Tensor vc = randomTensor({1, cfg.numCompressed(T), 1, 4}, rng);
  Attention got = compressedAttention(q, kc, vc, cfg);
  std::string error;
  for (int64_t t = 0; t < T && error.empty(); ++t)
    for (int64_t e = 0; e < 4; ++e) {
      double o = got.o.at(0, t, 0, e), lse = got.lse.at(0, t, 0);
      bool ok = t < 31    ? o == 0 && lse == -kInf
                : t <= 46 ? std::abs(o - vc.at(0, 0, 0, e)) < kTight
                          : std::abs(o - vc.at(0, 0, 0, e)) > kTight;
      if (!ok)
        error = "t=" + std::to_string(t) + ": o=" + str(o) + " lse=" + str(lse);
    }
  c.check("(d) t < l-1: o = 0, lse = -inf; token i visible iff i*d+l-1 <= t",
          error);
}

void checkWindowAttention(Checker &c) {
  Rng rng(9);
  Config cfg = smallConfig(); // w = 24.
  Tensor q = randomTensor({2, 100, 4, 8}, rng);
  Tensor k = randomTensor({2, 100, 1, 8}, rng);
  Tensor v = randomTensor({2, 100, 1, 5}, rng);
  Attention got = windowAttention(q, k, v, cfg);
  Attention want = bruteAttention(q, k, v, cfg.scaleFor(8), windowMask(cfg));
  c.check(
      "(e) window attention (w=24) vs masked brute force",
      firstError({close("o", got.o, want.o), close("lse", got.lse, want.lse)}));

  for (int64_t w : {1, 100, 512}) {
    cfg.w = w;
    got = windowAttention(q, k, v, cfg);
    want = bruteAttention(q, k, v, cfg.scaleFor(8),
                          w >= 100 ? causalMask() : windowMask(cfg));
    c.check("(e) window w=" + std::to_string(w) +
                (w >= 100 ? " >= T equals full causal attention"
                          : " vs masked brute force"),
            firstError(
                {close("o", got.o, want.o), close("lse", got.lse, want.lse)}));
  }
}

/// A random valid selection: forced blocks plus random others.
IndexTensor randomSelection(int64_t B, int64_t T, int64_t HKV,
                            const Config &cfg, Rng &rng) {
  Tensor noise = randomTensor({B, T, HKV, cfg.numSelectionBlocks(T)}, rng);
  return bruteSelect(noise, cfg);
}

void checkSelectedAttention(Checker &c) {
  Rng rng(10);
  Config cfg = smallConfig();
  int64_t T = 150;
  Tensor q = randomTensor({1, T, 4, 8}, rng);
  Tensor k = randomTensor({1, T, 2, 8}, rng);
  Tensor v = randomTensor({1, T, 2, 6}, rng);
  IndexTensor idx = randomSelection(1, T, 2, cfg, rng);
  Attention got = selectedAttention(q, k, v, idx, cfg);
  Attention want =
      bruteAttention(q, k, v, cfg.scaleFor(8), selectedMask(idx, cfg));
  c.check(
      "(e) selected attention on random idx vs masked brute force",
      firstError({close("o", got.o, want.o), close("lse", got.lse, want.lse)}));

  cfg.n = cfg.numSelectionBlocks(T);
  idx = randomSelection(1, T, 2, cfg, rng);
  got = selectedAttention(q, k, v, idx, cfg);
  want = bruteAttention(q, k, v, cfg.scaleFor(8), causalMask());
  c.check("(e) selecting all blocks equals full causal attention",
          firstError({selectionInvariants(idx, cfg), close("o", got.o, want.o),
                      close("lse", got.lse, want.lse)}));
}

//===----------------------------------------------------------------------===//
// (f), (g): compression and configuration
//===----------------------------------------------------------------------===//

void checkCompression(Checker &c) {
  Config cfg = smallConfig(); // l = 8, d = 4.
  Rng rng(11);
  int64_t T = 21, H = 2, D = 3; // Nc = 4.
  Tensor k = randomTensor({2, T, H, D}, rng);
  Tensor w = randomTensor({H, cfg.l * D, D}, rng);
  Tensor pe = randomTensor({H, cfg.l, D}, rng);
  c.check(
      "(f) compressLinear vs direct vec(k + PE) . W",
      close("kc", compressLinear(k, w, pe, cfg), bruteCompress(k, w, pe, cfg)));
  c.check("(f) compressLinear without PE vs direct vec(k) . W",
          close("kc", compressLinear(k, w, Tensor(), cfg),
                bruteCompress(k, w, Tensor(), cfg)));

  // W that copies row r of the block: kc[i] = k[i*d + r] + PE[r]. Catches a
  // dim-major flattening.
  std::string error;
  for (int64_t r : {int64_t(0), cfg.l - 1}) {
    Tensor pick({H, cfg.l * D, D});
    for (int64_t h = 0; h < H; ++h)
      for (int64_t e = 0; e < D; ++e)
        pick.at(h, r * D + e, e) = 1;
    Tensor kc = compressLinear(k, pick, pe, cfg);
    for (int64_t i = 0; i < 4; ++i)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t e = 0; e < D; ++e)
          if (std::abs(kc.at(1, i, h, e) - (k.at(1, i * cfg.d + r, h, e) +
                                            pe.at(h, r, e))) > kTight)
            error =
                "row " + std::to_string(r) + " of block " + std::to_string(i);
  }
  c.check(
      "(f) compressLinear is position-major: a row-picking W copies the row",
      error);

  c.check("(f) compressMean vs direct average",
          close("kc", compressMean(k, cfg),
                bruteCompress(k, Tensor(), Tensor(), cfg)));
  Tensor ramp({1, T, 1, 1});
  for (int64_t t = 0; t < T; ++t)
    ramp.at(0, t, 0, 0) = double(t);
  Tensor mean = compressMean(ramp, cfg);
  error = mean.dim(1) == 4 ? "" : "Nc = " + std::to_string(mean.dim(1));
  for (int64_t i = 0; i < mean.dim(1) && error.empty(); ++i)
    if (mean.at(0, i, 0, 0) != i * cfg.d + (cfg.l - 1) / 2.0)
      error = "token " + std::to_string(i) + " = " + str(mean.at(0, i, 0, 0));
  c.check("(f) compressMean of k[t] = t is i*d + (l-1)/2", error);

  Config paper;
  error.clear();
  const int64_t nc[][2] = {{1, 0},  {31, 0}, {32, 1}, {33, 1},
                           {47, 1}, {48, 2}, {100, 5}};
  for (auto [len, want] : nc)
    if (paper.numCompressed(len) != want)
      error += " Nc(" + std::to_string(len) +
               ")=" + std::to_string(paper.numCompressed(len));
  c.check("(f) Nc(T) for T in {1,31,32,33,47,48,100} = {0,0,1,1,1,2,5}", error);
  error.clear();
  const int64_t blocks[][2] = {{1, 1}, {64, 1}, {65, 2}, {257, 5}};
  for (auto [len, want] : blocks)
    if (paper.numSelectionBlocks(len) != want)
      error += " blocks(" + std::to_string(len) +
               ")=" + std::to_string(paper.numSelectionBlocks(len));
  c.check("(f) ceil(T/l') for T in {1,64,65,257} = {1,1,2,5}", error);
}

void checkValidation(Checker &c) {
  c.check("(g) default config is valid", Config().validate());
  // The message must start with the rule; "d must divide l" is a prefix of
  // "d must divide l_sel", hence the trailing " (" there.
  auto rejects = [&](const std::string &rule,
                     std::function<void(Config &)> set) {
    Config cfg;
    set(cfg);
    std::string msg = cfg.validate();
    c.check("(g) rejects: " + rule,
            msg.rfind(rule, 0) == 0 ? "" : "message was '" + msg + "'");
  };
  rejects("d must divide l (", [](Config &cfg) {
    cfg.l = 40;
    cfg.lSel = 80;
  });
  rejects("d must divide l_sel (", [](Config &cfg) { cfg.lSel = 72; });
  rejects("l must be <= l_sel", [](Config &cfg) { cfg.l = 128; });
  rejects("n must be >= init + local", [](Config &cfg) { cfg.n = 2; });
  rejects("w must be >= 1", [](Config &cfg) { cfg.w = 0; });
  rejects("l must be >= 1", [](Config &cfg) { cfg.l = 0; });
  rejects("d must be >= 1", [](Config &cfg) { cfg.d = -16; });
  rejects("l_sel must be >= 1", [](Config &cfg) { cfg.lSel = 0; });
  rejects("n must be >= 1", [](Config &cfg) {
    cfg.n = 0;
    cfg.init = 0;
  });
  rejects("init must be >= 0", [](Config &cfg) { cfg.init = -1; });
  rejects("local must be >= 1", [](Config &cfg) { cfg.local = 0; });
  rejects("scale must be finite and >= 0", [](Config &cfg) { cfg.scale = -1; });
}

//===----------------------------------------------------------------------===//
// (h): the whole forward pass on ragged shapes
//===----------------------------------------------------------------------===//

/// Every intermediate of forward() against brute force, independent k, v per
/// branch, Dk = 12 != Dv = 8.
std::string checkForwardRun(const Config &cfg, int64_t T, int64_t G,
                            CompressionMode mode, Rng &rng) {
  int64_t B = 2, HKV = G == 16 ? 1 : 2, HQ = G * HKV, Dk = 12, Dv = 8;
  Tensor q = randomTensor({B, T, HQ, Dk}, rng);
  Tensor kv[6];
  for (int i = 0; i < 6; ++i)
    kv[i] = randomTensor({B, T, HKV, i % 2 ? Dv : Dk}, rng);
  Tensor g = randomTensor({B, T, HQ, 3}, rng, 0, 1);
  bool linear = mode == CompressionMode::Linear;
  Tensor wK =
      linear ? randomTensor({HKV, cfg.l * Dk, Dk}, rng, -0.2, 0.2) : Tensor();
  Tensor wV =
      linear ? randomTensor({HKV, cfg.l * Dv, Dv}, rng, -0.2, 0.2) : Tensor();
  Tensor peK = linear ? randomTensor({HKV, cfg.l, Dk}, rng) : Tensor();
  Forward f = forward(q, kv[0], kv[1], kv[2], kv[3], kv[4], kv[5], g, mode, wK,
                      wV, peK, Tensor(), cfg);

  double scale = cfg.scaleFor(Dk);
  Tensor kc = bruteCompress(kv[0], wK, peK, cfg);
  Tensor vc = bruteCompress(kv[1], wV, Tensor(), cfg);
  Attention cmp = bruteAttention(q, kc, vc, scale, compressedMask(cfg));
  Tensor P = bruteScores(q, kc, cfg);
  IndexTensor idx = bruteSelect(P, cfg);
  Attention slc = bruteAttention(q, kv[2], kv[3], scale,
                                 selectedMask(f.selection.idx, cfg));
  Attention win = bruteAttention(q, kv[4], kv[5], scale, windowMask(cfg));
  Tensor o(f.o.shape);
  for (size_t i = 0; i < o.data.size(); ++i)
    o.data[i] = g.data[3 * (i / Dv)] * cmp.o.data[i] +
                g.data[3 * (i / Dv) + 1] * slc.o.data[i] +
                g.data[3 * (i / Dv) + 2] * win.o.data[i];
  return firstError(
      {close("kc", f.kc, kc), close("vc", f.vc, vc),
       close("o_cmp", f.cmp.o, cmp.o), close("lse_cmp", f.cmp.lse, cmp.lse),
       close("P", f.selection.scores, P),
       acceptSelection(f.selection.idx, P, cfg), sameIdx(f.selection.idx, idx),
       selectionInvariants(f.selection.idx, cfg),
       close("o_slc", f.slc.o, slc.o), close("lse_slc", f.slc.lse, slc.lse),
       close("o_win", f.win.o, win.o), close("lse_win", f.win.lse, win.lse),
       close("o", f.o, o)});
}

void checkForward(Checker &c) {
  Rng rng(12);
  Config paper;
  paper.w = 40;
  const std::pair<const char *, Config> configs[] = {
      {"l=8,d=4,l'=16,n=4,w=24", smallConfig()}, {"paper blocks, w=40", paper}};
  int run = 0;
  for (const auto &[name, cfg] : configs)
    for (int64_t T : {1, 31, 33, 100, 257})
      for (int64_t G : {1, 2, 4, 16}) {
        CompressionMode mode =
            run++ % 2 ? CompressionMode::Mean : CompressionMode::Linear;
        c.check(std::string("(h) forward ") + name +
                    ", T=" + std::to_string(T) + ", G=" + std::to_string(G) +
                    (mode == CompressionMode::Linear ? ", linear" : ", mean") +
                    ", Dk=12, Dv=8",
                checkForwardRun(cfg, T, G, mode, rng));
      }
}

void checkRelativeError(Checker &c) {
  Tensor ref({2, 2}), out({2, 2});
  ref.data = {3, 0, 0, 4};
  auto errorFor = [&](std::vector<double> values) {
    out.data = std::move(values);
    return relativeError(out, ref);
  };
  std::string error;
  if (std::abs(errorFor({3.3, 0, 0, 4.4}) - 0.1) > kTight)
    error = "1.1x did not give 0.1";
  else if (errorFor({3, std::nan(""), 0, 4}) != kInf)
    error = "NaN did not give +inf";
  else if (errorFor({3, kInf, 0, 4}) != kInf)
    error = "inf did not give +inf";
  ref.data[1] = -kInf;
  if (error.empty() && errorFor({3, -kInf, 0, 4}) != 0)
    error = "matching -inf (lse of an empty key set) not exact";
  c.check("relativeError: 0.1 for 1.1x, +inf for NaN/inf, -inf lse matches",
          error);
}

} // namespace

int main() {
  Checker c;
  checkWorkedExampleOneHot(c);
  checkWorkedExampleRandom(c);
  checkScoresEqualProbsWhenBlocksCoincide(c);
  checkSelectionAgainstBruteForce(c);
  checkTieBreak(c);
  checkFewCandidates(c);
  checkAcceptanceRejects(c);
  checkCompressedAttention(c);
  checkWindowAttention(c);
  checkSelectedAttention(c);
  checkCompression(c);
  checkValidation(c);
  checkForward(c);
  checkRelativeError(c);
  checkGradients(c);
  std::printf("%d passed, %d failed\n", c.passed, c.failed);
  return c.failed ? 1 : 0;
}
