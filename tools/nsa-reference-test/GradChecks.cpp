//===- GradChecks.cpp - the float64 backward against finite differences ---===//
//
// Every gradient of ReferenceGrad.h is checked against central differences of
// a scalar loss L = <out, R> (R a fixed random tensor), taken element by
// element over every input, in float64. Each op is checked alone (its own
// forward from Reference.h is the function differenced), then the whole
// layer. Selection is not differentiable, so the layer's differences hold idx
// at the selection of the unperturbed point (forwardWithIdx).
//
//===----------------------------------------------------------------------===//

#include "Harness.h"

#include "nsa/Reference/ReferenceGrad.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <iterator>

using namespace nsa::ref;
using namespace nsa::ref::test;

namespace {

/// Central differences err by about step^2 * L''' (truncation) plus
/// eps * |L| / step (cancellation) per element. With 1e-4 every gradient here
/// is within 1e-8 relative, and a vanishing one (dPE_k) reads as noise near
/// 1e-10.
constexpr double kStep = 1e-4;
/// Float64 against float64: far tighter than SPEC's bf16 bar (2e-2).
constexpr double kGradTol = 1e-6;
/// Below this norm a gradient counts as zero and the error is absolute: one
/// that vanishes (a branch no query sees, dPE_k) has no relative error to
/// speak of, only the differences' cancellation noise.
constexpr double kZeroNorm = 1e-3;

/// Paper geometry scaled down: l = 2d, l' = 2l, forced first and local block.
Config gradConfig() {
  Config cfg;
  cfg.l = 8;
  cfg.d = 4;
  cfg.lSel = 16;
  cfg.n = 3;
  cfg.init = 1;
  cfg.local = 1;
  cfg.w = 12;
  return cfg;
}

constexpr int64_t kDk = 4, kDv = 3;
const int64_t kLengths[] = {1, 5, 33, 70};
const int64_t kGroups[] = {1, 2, 4};

/// Two KV heads test the hq / G mapping past head 0; G = 4 uses one, since a
/// check's cost grows as HQ squared (HQ forwards' worth of inputs, each
/// forward HQ times the work).
int64_t kvHeads(int64_t G) { return G == 4 ? 1 : 2; }

/// Batch 2 tests the b index; T = 70, the only length with a real choice of
/// blocks, runs one sequence to keep the program fast.
int64_t batch(int64_t T) { return T == 70 ? 1 : 2; }

/// <a, b> over all elements: the loss for upstream gradient b.
double dot(const Tensor &a, const Tensor &b) {
  if (a.shape != b.shape)
    fatal("dot of tensors of different shapes");
  double acc = 0;
  for (size_t i = 0; i < a.data.size(); ++i)
    acc += a.data[i] * b.data[i];
  return acc;
}

/// dL/dx by central differences. `loss` must read x by reference: every
/// element is perturbed in place and restored.
Tensor numericGrad(Tensor &x, const std::function<double()> &loss) {
  Tensor grad(x.shape);
  for (size_t i = 0; i < x.data.size(); ++i) {
    double saved = x.data[i];
    x.data[i] = saved + kStep;
    double up = loss();
    x.data[i] = saved - kStep;
    double down = loss();
    x.data[i] = saved;
    grad.data[i] = (up - down) / (2 * kStep);
  }
  return grad;
}

/// "" when ||analytic - numeric|| <= kGradTol * max(||numeric||, kZeroNorm).
std::string gradError(const std::string &what, const Tensor &analytic,
                      const Tensor &numeric) {
  if (analytic.shape != numeric.shape)
    return what + " has the wrong shape";
  double diff = 0, norm = 0;
  for (size_t i = 0; i < numeric.data.size(); ++i) {
    double a = analytic.data[i], n = numeric.data[i];
    if (!std::isfinite(a))
      return what + " is not finite at flat index " + std::to_string(i);
    diff += (a - n) * (a - n);
    norm += n * n;
  }
  double err = std::sqrt(diff) / std::max(std::sqrt(norm), kZeroNorm);
  return err <= kGradTol ? "" : what + " relative error " + str(err);
}

/// Collects the first failure of a run and skips the (costly) differences
/// after it.
struct GradExpect {
  std::function<double()> loss;
  std::string error;

  explicit GradExpect(std::function<double()> loss) : loss(std::move(loss)) {}

  void operator()(const std::string &what, const Tensor &analytic,
                  Tensor &input) {
    if (error.empty())
      error = gradError(what, analytic, numericGrad(input, loss));
  }
  void absent(const std::string &what, const Tensor &t) {
    if (error.empty() && !t.isAbsent())
      error = what + " should be absent";
  }
};

std::string shapeName(int64_t T, int64_t G) {
  return "T=" + std::to_string(T) + ", G=" + std::to_string(G);
}

//===----------------------------------------------------------------------===//
// Single ops
//===----------------------------------------------------------------------===//

void checkCompressGrad(Checker &c) {
  Config cfg = gradConfig();
  Rng rng(101);
  struct Variant {
    const char *name;
    CompressionMode mode;
    bool pe;
  } variants[] = {{"linear with PE", CompressionMode::Linear, true},
                  {"linear without PE", CompressionMode::Linear, false},
                  {"mean", CompressionMode::Mean, false}};
  for (const Variant &variant : variants)
    for (int64_t T : kLengths) {
      bool linear = variant.mode == CompressionMode::Linear;
      int64_t H = 2;
      Tensor k = randomTensor({2, T, H, kDk}, rng);
      Tensor w = linear ? randomTensor({H, cfg.l * kDk, kDk}, rng, -0.5, 0.5)
                        : Tensor();
      Tensor pe = variant.pe ? randomTensor({H, cfg.l, kDk}, rng) : Tensor();
      Tensor R = randomTensor({2, cfg.numCompressed(T), H, kDk}, rng);
      CompressionGrad grad = compressGrad(k, variant.mode, w, pe, R, cfg);
      GradExpect expect{
          [&] { return dot(compress(k, variant.mode, w, pe, cfg), R); }};
      expect("dK", grad.dK, k);
      if (linear)
        expect("dW", grad.dW, w);
      else
        expect.absent("dW", grad.dW);
      if (variant.pe)
        expect("dPE", grad.dPE, pe);
      else
        expect.absent("dPE", grad.dPE);
      c.check(std::string("(grad) compressGrad, ") + variant.name +
                  ", T=" + std::to_string(T) + " vs finite differences",
              expect.error);
    }
}

/// One branch's forward as a function of (q, k, v), and its backward.
using BranchForward =
    std::function<Attention(const Tensor &, const Tensor &, const Tensor &)>;
using BranchBackward =
    std::function<AttentionGrad(const Tensor &, const Tensor &, const Tensor &,
                                const Attention &, const Tensor &)>;

/// The branch's backward at (q, k, v) against differences of its forward.
std::string checkBranchRun(Tensor q, Tensor k, Tensor v,
                           const BranchForward &forwardOf,
                           const BranchBackward &backwardOf, Rng &rng) {
  Attention fwd = forwardOf(q, k, v);
  Tensor R = randomTensor(fwd.o.shape, rng);
  AttentionGrad grad = backwardOf(q, k, v, fwd, R);
  GradExpect expect{[&] { return dot(forwardOf(q, k, v).o, R); }};
  expect("dQ", grad.dQ, q);
  expect("dK", grad.dK, k);
  expect("dV", grad.dV, v);
  return expect.error;
}

void checkAttentionGrads(Checker &c) {
  Config cfg = gradConfig();
  Rng rng(102);
  for (int64_t T : kLengths)
    for (int64_t G : kGroups) {
      int64_t B = batch(T), HKV = kvHeads(G), nc = cfg.numCompressed(T);
      Tensor q = randomTensor({B, T, G * HKV, kDk}, rng);
      Tensor kc = randomTensor({B, nc, HKV, kDk}, rng);
      Tensor vc = randomTensor({B, nc, HKV, kDv}, rng);
      c.check("(grad) compressedAttentionGrad, " + shapeName(T, G) +
                  " vs finite differences",
              checkBranchRun(
                  q, kc, vc,
                  [&](const Tensor &q, const Tensor &k, const Tensor &v) {
                    return compressedAttention(q, k, v, cfg);
                  },
                  [&](const Tensor &q, const Tensor &k, const Tensor &v,
                      const Attention &fwd, const Tensor &dO) {
                    return compressedAttentionGrad(q, k, v, fwd, dO, cfg);
                  },
                  rng));

      // A real selection (forced blocks plus the best-scoring free one),
      // then held fixed.
      IndexTensor idx =
          selectBlocks(q, kc, compressedAttention(q, kc, vc, cfg).lse, cfg).idx;
      Tensor k = randomTensor({B, T, HKV, kDk}, rng);
      Tensor v = randomTensor({B, T, HKV, kDv}, rng);
      c.check("(grad) selectedAttentionGrad, " + shapeName(T, G) +
                  " vs finite differences",
              checkBranchRun(
                  q, k, v,
                  [&](const Tensor &q, const Tensor &k, const Tensor &v) {
                    return selectedAttention(q, k, v, idx, cfg);
                  },
                  [&](const Tensor &q, const Tensor &k, const Tensor &v,
                      const Attention &fwd, const Tensor &dO) {
                    return selectedAttentionGrad(q, k, v, idx, fwd, dO, cfg);
                  },
                  rng));

      c.check("(grad) windowAttentionGrad (w=12), " + shapeName(T, G) +
                  " vs finite differences",
              checkBranchRun(
                  q, k, v,
                  [&](const Tensor &q, const Tensor &k, const Tensor &v) {
                    return windowAttention(q, k, v, cfg);
                  },
                  [&](const Tensor &q, const Tensor &k, const Tensor &v,
                      const Attention &fwd, const Tensor &dO) {
                    return windowAttentionGrad(q, k, v, fwd, dO, cfg);
                  },
                  rng));
    }
}

void checkCombineGrad(Checker &c) {
  Rng rng(103);
  std::vector<int64_t> shape = {2, 5, 4, kDv};
  Tensor g = randomTensor({2, 5, 4, 3}, rng, 0, 1);
  Tensor o[3] = {randomTensor(shape, rng), randomTensor(shape, rng),
                 randomTensor(shape, rng)};
  Tensor R = randomTensor(shape, rng);
  CombineGrad grad = combineGrad(g, o[0], o[1], o[2], R);
  GradExpect expect{[&] { return dot(combine(g, o[0], o[1], o[2]), R); }};
  expect("dG", grad.dG, g);
  expect("dO_cmp", grad.dOCmp, o[0]);
  expect("dO_slc", grad.dOSlc, o[1]);
  expect("dO_win", grad.dOWin, o[2]);
  c.check("(grad) combineGrad vs finite differences", expect.error);
}

//===----------------------------------------------------------------------===//
// The whole layer
//===----------------------------------------------------------------------===//

/// Inputs of one layer run. kv holds k, v of cmp, slc, win in that order;
/// with shared k, v only kv[0], kv[1] are read, by every branch.
struct LayerInputs {
  Tensor q, kv[6], g, wK, wV, peK, peV;
  CompressionMode mode;
  bool shared;

  LayerInputs(int64_t T, int64_t G, CompressionMode mode, bool shared,
              const Config &cfg, Rng &rng)
      : mode(mode), shared(shared) {
    int64_t B = batch(T), HKV = kvHeads(G), HQ = G * HKV;
    q = randomTensor({B, T, HQ, kDk}, rng);
    for (int i = 0; i < 6; ++i)
      kv[i] = randomTensor({B, T, HKV, i % 2 ? kDv : kDk}, rng);
    g = randomTensor({B, T, HQ, 3}, rng, 0, 1);
    if (mode == CompressionMode::Linear) {
      wK = randomTensor({HKV, cfg.l * kDk, kDk}, rng, -0.5, 0.5);
      wV = randomTensor({HKV, cfg.l * kDv, kDv}, rng, -0.5, 0.5);
      peK = randomTensor({HKV, cfg.l, kDk}, rng);
      peV = randomTensor({HKV, cfg.l, kDv}, rng);
    }
  }

  /// k (which = 0) or v (which = 1) of branch 0 (cmp), 1 (slc) or 2 (win).
  Tensor &source(int branch, int which) {
    return kv[shared ? which : 2 * branch + which];
  }

  Forward run(const IndexTensor *idx, const Config &cfg) {
    Tensor &kCmp = source(0, 0), &vCmp = source(0, 1);
    Tensor &kSlc = source(1, 0), &vSlc = source(1, 1);
    Tensor &kWin = source(2, 0), &vWin = source(2, 1);
    return idx ? forwardWithIdx(q, kCmp, vCmp, kSlc, vSlc, kWin, vWin, g, mode,
                                wK, wV, peK, peV, *idx, cfg)
               : forward(q, kCmp, vCmp, kSlc, vSlc, kWin, vWin, g, mode, wK, wV,
                         peK, peV, cfg);
  }
};

/// forwardWithIdx given forward()'s own idx must be forward() itself,
/// bit for bit, or the layer differences below would difference another
/// function.
void checkForwardWithIdx(Checker &c) {
  Config cfg = gradConfig();
  Rng rng(104);
  std::string error;
  for (bool shared : {false, true}) {
    LayerInputs in(70, 2, CompressionMode::Linear, shared, cfg, rng);
    Forward f = in.run(nullptr, cfg);
    Forward given = in.run(&f.selection.idx, cfg);
    if (given.o.data != f.o.data || given.slc.lse.data != f.slc.lse.data)
      error = std::string(shared ? "shared" : "per-branch") + ": o differs";
    else if (!given.selection.scores.isAbsent())
      error = "selection.scores should be absent";
  }
  c.check("(grad) forwardWithIdx(forward's idx) reproduces forward exactly",
          error);
}

std::string checkLayerRun(int64_t T, int64_t G, CompressionMode mode,
                          bool shared, Rng &rng) {
  Config cfg = gradConfig();
  LayerInputs in(T, G, mode, shared, cfg, rng);
  Forward f = in.run(nullptr, cfg);
  IndexTensor idx = f.selection.idx;
  Tensor R = randomTensor(f.o.shape, rng);
  ForwardGrad grad = shared
                         ? forwardGrad(in.q, in.kv[0], in.kv[1], in.g, mode,
                                       in.wK, in.wV, in.peK, in.peV, f, R, cfg)
                         : forwardGrad(in.q, in.kv[0], in.kv[1], in.kv[2],
                                       in.kv[3], in.kv[4], in.kv[5], in.g, mode,
                                       in.wK, in.wV, in.peK, in.peV, f, R, cfg);

  GradExpect expect{[&] { return dot(in.run(&idx, cfg).o, R); }};
  expect("dQ", grad.dQ, in.q);
  expect("dG", grad.dG, in.g);
  if (shared) {
    expect("dK (shared)", grad.shared.dK, in.kv[0]);
    expect("dV (shared)", grad.shared.dV, in.kv[1]);
  } else {
    const KVGrad *branch[3] = {&grad.cmp, &grad.slc, &grad.win};
    const char *names[3] = {"cmp", "slc", "win"};
    for (int i = 0; i < 3; ++i) {
      expect(std::string("dK_") + names[i], branch[i]->dK, in.kv[2 * i]);
      expect(std::string("dV_") + names[i], branch[i]->dV, in.kv[2 * i + 1]);
    }
    expect.absent("shared dK", grad.shared.dK);
  }
  if (mode == CompressionMode::Linear) {
    expect("dW_k", grad.dWK, in.wK);
    expect("dW_v", grad.dWV, in.wV);
    expect("dPE_k", grad.dPEK, in.peK);
    expect("dPE_v", grad.dPEV, in.peV);
  } else {
    expect.absent("dW_k", grad.dWK);
    expect.absent("dPE_k", grad.dPEK);
  }
  return expect.error;
}

/// Linear mode's PE_k shifts every compressed key of a head by the same
/// vector vec(PE_k) . W_k, which adds the same amount to all of a query's
/// scores and cancels in softmax (and in the block scores): nothing depends
/// on PE_k and its gradient is zero. A kernel's dPE_k must therefore be
/// judged by an absolute bound, not relative to this reference.
void checkPEKVanishes(Checker &c) {
  Config cfg = gradConfig();
  Rng rng(106);
  LayerInputs in(70, 2, CompressionMode::Linear, false, cfg, rng);
  Forward f = in.run(nullptr, cfg);
  Tensor R = randomTensor(f.o.shape, rng);
  ForwardGrad grad = forwardGrad(in.q, in.kv[0], in.kv[1], in.kv[2], in.kv[3],
                                 in.kv[4], in.kv[5], in.g, in.mode, in.wK,
                                 in.wV, in.peK, in.peV, f, R, cfg);
  double ratio =
      std::sqrt(dot(grad.dPEK, grad.dPEK) / dot(grad.dPEV, grad.dPEV));
  c.check("(grad) linear mode: dPE_k = 0 (a shift shared by all compressed "
          "keys cancels in softmax)",
          ratio <= 1e-12 ? "" : "||dPE_k|| / ||dPE_v|| = " + str(ratio));
}

void checkLayerGrad(Checker &c) {
  // Every (T, G) runs once; the four (mode, k/v) combinations rotate so that
  // each meets three of the four lengths and every G.
  const std::pair<CompressionMode, bool> combos[] = {
      {CompressionMode::Linear, false},
      {CompressionMode::Mean, true},
      {CompressionMode::Mean, false},
      {CompressionMode::Linear, true}};
  Rng rng(105);
  for (size_t ti = 0; ti < std::size(kLengths); ++ti)
    for (size_t gi = 0; gi < std::size(kGroups); ++gi) {
      auto [mode, shared] = combos[(ti + gi) % 4];
      int64_t T = kLengths[ti], G = kGroups[gi];
      c.check("(grad) forwardGrad, " + shapeName(T, G) +
                  (mode == CompressionMode::Linear ? ", linear with PE"
                                                   : ", mean") +
                  (shared ? ", shared k/v" : ", per-branch k/v") +
                  ", Dk=4, Dv=3 vs finite differences (idx frozen)",
              checkLayerRun(T, G, mode, shared, rng));
    }
  checkPEKVanishes(c);
}

} // namespace

void nsa::ref::test::checkGradients(Checker &c) {
  checkCompressGrad(c);
  checkAttentionGrads(c);
  checkCombineGrad(c);
  checkForwardWithIdx(c);
  checkLayerGrad(c);
}
