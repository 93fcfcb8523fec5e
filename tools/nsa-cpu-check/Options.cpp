//===- Options.cpp - nsa-cpu-check's command line and case matrix ---------===//
//
// The flags that describe one case, the built-in matrix of cases (--matrix),
// and what a case prints as its label and compiles with as its pipeline.
//
//===----------------------------------------------------------------------===//

#include "CpuCheck.h"

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <cstdlib>
#include <utility>

namespace cpucheck {

//===----------------------------------------------------------------------===//
// Case description
//===----------------------------------------------------------------------===//

std::string TileOptions::passOptions() const {
  std::string s;
  auto add = [&](const char *name, int64_t v) {
    if (v <= 0)
      return;
    if (!s.empty())
      s += " ";
    s += std::string(name) + "=" + std::to_string(v);
  };
  if (!target.empty())
    s = "target=" + target;
  add("query-tokens", queryTokens);
  add("key-tokens", keyTokens);
  add("selected-query-tokens", selectedQueryTokens);
  add("compress-tokens", compressTokens);
  add("select-blocks", selectBlocks);
  add("grad-segments", gradSegments);
  add("init-grad-segments", initGradSegments);
  add("selected-grad-tokens", selectedGradTokens);
  return s;
}

std::string Case::label() const {
  std::string s = "B" + std::to_string(B) + ",T" + std::to_string(T) + ",HQ" +
                  std::to_string(HQ) + ",HKV" + std::to_string(HKV) + ",Dk" +
                  std::to_string(Dk) + ",Dv" + std::to_string(Dv) + "," +
                  (f16 ? "f16" : "bf16") + "," +
                  (linear ? (pe ? "linear+pe" : "linear") : "mean") + "," +
                  (sharedKV ? "shared" : "per-branch") + ",l" +
                  std::to_string(cfg.l) + ",d" + std::to_string(cfg.d) +
                  ",l_sel" + std::to_string(cfg.lSel) + ",n" +
                  std::to_string(cfg.n) + ",init" + std::to_string(cfg.init) +
                  ",local" + std::to_string(cfg.local) + ",w" +
                  std::to_string(cfg.w) + ",seed" + std::to_string(seed);
  if (qScale != 1)
    s += ",q-scale" + llvm::formatv("{0}", qScale).str();
  std::string t = tiles.passOptions();
  if (!t.empty())
    s += ",{" + t + "}";
  if (idxFromReference)
    s += ",idx-from-reference";
  if (backward)
    s += ",backward";
  return s;
}

std::string Case::pipeline() const {
  std::string t = tiles.passOptions();
  return "func.func(nsa-group-gqa,nsa-tile" +
         (t.empty() ? std::string() : "{" + t + "}") +
         "),cse,nsa-lower-tile-to-llvm";
}

std::string Case::validate() const {
  std::string error = cfg.validate();
  if (error.empty() && (HKV == 0 || HQ % HKV != 0))
    error = "HQ must be a multiple of HKV";
  if (error.empty() && (B == 0 || T == 0 || Dk == 0 || Dv == 0))
    error = "B, T, Dk and Dv must be positive";
  return error;
}

//===----------------------------------------------------------------------===//
// The matrix
//===----------------------------------------------------------------------===//

static ref::Config makeConfig(int64_t l, int64_t d, int64_t lSel, int64_t n,
                              int64_t init, int64_t local, int64_t w) {
  ref::Config c;
  c.l = l;
  c.d = d;
  c.lSel = lSel;
  c.n = n;
  c.init = init;
  c.local = local;
  c.w = w;
  return c;
}

/// A covering design, not the cartesian product. The core is every
/// (T, configuration) pair, 6 x 4 = 24 cases, in which the other axes rotate
/// so that, for each T, all four G, all four tile-size sets and both
/// dtypes appear, and, for each configuration, every G, tile-size set,
/// compression mode and K/V sharing appears. T = 1000 only with HQ <= 4.
/// A few extra cases add B = 2, G = 16 with HKV = 2, G = 8, Dk = Dv = 64 and
/// T an exact multiple of l'.
std::vector<Case> matrix() {
  // The paper's configuration (n = 16 keeps every candidate up to T = 1024,
  // so the ranking is only exercised by the others).
  ref::Config paper = makeConfig(32, 16, 64, 16, 1, 2, 512);
  // l = l' = d.
  ref::Config equal = makeConfig(16, 16, 16, 4, 1, 1, 40);
  // The paper's geometry with a real top-n choice at these T.
  ref::Config ranked = makeConfig(32, 16, 64, 4, 1, 2, 128);
  // init = 0, l/d = 4 overlapping compressed tokens, l' = l.
  ref::Config overlap = makeConfig(32, 8, 32, 3, 0, 1, 64);
  const ref::Config configs[] = {paper, equal, ranked, overlap};

  // nsa-tile target and sizes: query-tokens, key-tokens,
  // selected-query-tokens, compress-tokens, select-blocks; {} keeps the
  // pass defaults (target cpu).
  const TileOptions tiles[] = {
      {},                     // cpu defaults (16, 32, 1, 16, 16)
      {"", 4, 8, 2, 3, 2},    // small: ragged everywhere
      {"", 5, 7, 3, 1, 1},    // not powers of two, one block per step
      {"", 32, 64, 4, 32, 4}, // wide
      {"sm90a"},              // Hopper defaults: 64 rows, 64 keys per step
  };
  const int64_t Ts[] = {1, 31, 33, 100, 257, 1000};
  const int64_t Gs[] = {1, 2, 4, 16};
  const std::pair<int64_t, int64_t> dims[] = {{32, 16}, {16, 16}, {16, 32}};

  std::vector<Case> cases;
  uint64_t seed = 1000;
  // mode: 0 linear+pe, 1 linear, 2 mean. Every case gets the next seed.
  auto add = [&](int64_t B, int64_t T, int64_t HQ, int64_t HKV, int64_t Dk,
                 int64_t Dv, bool f16, int mode, bool shared,
                 const ref::Config &cfg, const TileOptions &t) {
    Case c;
    c.B = B;
    c.T = T;
    c.HQ = HQ;
    c.HKV = HKV;
    c.Dk = Dk;
    c.Dv = Dv;
    c.f16 = f16;
    c.linear = mode != 2;
    c.pe = mode == 0;
    c.sharedKV = shared;
    c.cfg = cfg;
    c.tiles = t;
    c.seed = seed++;
    cases.push_back(c);
  };

  for (int iT = 0; iT < 6; ++iT)
    for (int ic = 0; ic < 4; ++ic) {
      int r = iT * 4 + ic;
      int64_t T = Ts[iT];
      int64_t HKV = 1 + (ic / 2 + iT) % 2;
      int64_t G = Gs[(iT + 3 * ic) % 4];
      if (T >= 1000)
        G = std::min<int64_t>(G, 4 / HKV);
      add(/*B=*/1, T, G * HKV, HKV, dims[r % 3].first, dims[r % 3].second,
          /*f16=*/(ic + iT / 2) % 2, /*mode=*/(r + iT) % 3,
          /*shared=*/(ic + iT) / 2 % 2, configs[ic], tiles[(ic + iT) % std::size(tiles)]);
    }

  add(2, 70, 4, 1, 32, 16, false, 0, false, ranked, tiles[0]);
  add(1, 100, 32, 2, 64, 64, false, 0, false, paper, tiles[1]);
  add(1, 128, 8, 1, 64, 32, true, 1, true, ranked, tiles[2]);
  add(1, 64, 2, 1, 32, 32, false, 2, false, equal, tiles[3]);
  // Peaked softmaxes: scores of magnitude ~100 (fp32 exp overflows unless
  // the running maximum is subtracted).
  add(1, 300, 4, 2, 32, 16, false, 0, false, ranked, tiles[1]);
  cases.back().qScale = 20;
  add(1, 150, 2, 1, 16, 16, true, 2, true, equal, tiles[0]);
  cases.back().qScale = 20;
  return cases;
}

std::vector<Case> Options::cases() const {
  if (!runMatrix)
    return {single};
  std::vector<Case> cases = matrix();
  for (Case &k : cases) {
    k.idxFromReference = single.idxFromReference;
    k.backward = single.backward;
  }
  return cases;
}

//===----------------------------------------------------------------------===//
// Command line
//===----------------------------------------------------------------------===//

static void usage() {
  llvm::outs() << R"(usage: nsa-cpu-check [options]
  --B=N --T=N --HQ=N --HKV=N --Dk=N --Dv=N   shapes (default 1, 33, 2, 1, 32, 16)
  --dtype=bf16|f16                            element type (default bf16)
  --l= --d= --l-sel= --n= --init= --local= --w=   NSA config (paper's defaults)
  --compress=linear|mean  --pe | --no-pe      compression (default linear+pe)
  --shared-kv | --per-branch-kv               one k, v for all branches or not
  --seed=N                                    input seed (default 1)
  --q-scale=X                                 standard deviation of q (default 1)
  --target=cpu|sm90a --query-tokens= --key-tokens= --selected-query-tokens=
  --compress-tokens= --select-blocks=
  --grad-segments= --init-grad-segments=
  --selected-grad-tokens=                     nsa-tile options (default: pass's)
  --matrix                                    run the built-in matrix instead
  --emit-mlir                                 print the generated module, exit
  --perturb=NAME[+X]                          corrupt output NAME (test hook): add
                                              X (default 5% of its norm + 0.5) to
                                              its last element
  --perturb=unwritten:NAME                    re-poison the last element of NAME
  --idx-from-reference                        idx is an input holding the float64
                                              reference selection; no select_blocks
  --backward                                  also run and check the backward ops
                                              on a random d_o
  -v                                          timings and extra information
)";
}

[[noreturn]] static void badValue(llvm::StringRef arg) {
  llvm::errs() << "nsa-cpu-check: bad value in " << arg << "\n";
  std::exit(2);
}

std::optional<int> parseCommandLine(int argc, char **argv, Options &opts) {
  Case &c = opts.single;
  for (int i = 1; i < argc; ++i) {
    llvm::StringRef arg(argv[i]);
    auto [key, value] = arg.split('=');
    auto intArg = [&](auto &field) {
      int64_t v = 0;
      if (value.getAsInteger(10, v) || v < 0)
        badValue(arg);
      field = v;
    };
    if (key == "--B")
      intArg(c.B);
    else if (key == "--T")
      intArg(c.T);
    else if (key == "--HQ")
      intArg(c.HQ);
    else if (key == "--HKV")
      intArg(c.HKV);
    else if (key == "--Dk")
      intArg(c.Dk);
    else if (key == "--Dv")
      intArg(c.Dv);
    else if (key == "--l")
      intArg(c.cfg.l);
    else if (key == "--d")
      intArg(c.cfg.d);
    else if (key == "--l-sel" || key == "--l_sel")
      intArg(c.cfg.lSel);
    else if (key == "--n")
      intArg(c.cfg.n);
    else if (key == "--init")
      intArg(c.cfg.init);
    else if (key == "--local")
      intArg(c.cfg.local);
    else if (key == "--w")
      intArg(c.cfg.w);
    else if (key == "--target")
      c.tiles.target = value.str();
    else if (key == "--query-tokens")
      intArg(c.tiles.queryTokens);
    else if (key == "--key-tokens")
      intArg(c.tiles.keyTokens);
    else if (key == "--selected-query-tokens")
      intArg(c.tiles.selectedQueryTokens);
    else if (key == "--compress-tokens")
      intArg(c.tiles.compressTokens);
    else if (key == "--select-blocks")
      intArg(c.tiles.selectBlocks);
    else if (key == "--grad-segments")
      intArg(c.tiles.gradSegments);
    else if (key == "--init-grad-segments")
      intArg(c.tiles.initGradSegments);
    else if (key == "--selected-grad-tokens")
      intArg(c.tiles.selectedGradTokens);
    else if (key == "--seed")
      intArg(c.seed);
    else if (key == "--q-scale") {
      if (value.getAsDouble(c.qScale) || !(c.qScale > 0))
        badValue(arg);
    } else if (key == "--dtype" && (value == "bf16" || value == "f16"))
      c.f16 = value == "f16";
    else if (key == "--compress" && (value == "linear" || value == "mean"))
      c.linear = value == "linear";
    else if (arg == "--pe")
      c.pe = true;
    else if (arg == "--no-pe")
      c.pe = false;
    else if (arg == "--shared-kv")
      c.sharedKV = true;
    else if (arg == "--per-branch-kv")
      c.sharedKV = false;
    else if (key == "--perturb")
      c.perturb = value.str();
    else if (arg == "--idx-from-reference")
      c.idxFromReference = true;
    else if (arg == "--backward")
      c.backward = true;
    else if (arg == "--matrix")
      opts.runMatrix = true;
    else if (arg == "--emit-mlir")
      opts.emit = true;
    else if (arg == "-v" || arg == "--verbose")
      opts.verbose = true;
    else if (arg == "-h" || arg == "--help") {
      usage();
      return 0;
    } else {
      llvm::errs() << "nsa-cpu-check: unknown argument " << arg << "\n";
      usage();
      return 2;
    }
  }
  if (!c.linear)
    c.pe = false;
  return std::nullopt;
}

} // namespace cpucheck
