//===- Harness.h - shared pieces of nsa-reference-test ----------*- C++ -*-===//
//
// The check counter, the deterministic generator and the comparison helpers
// that every section of nsa-reference-test uses, so that the program prints
// one "N passed, M failed" over all of them.
//
//===----------------------------------------------------------------------===//

#ifndef NSA_TOOLS_NSA_REFERENCE_TEST_HARNESS_H
#define NSA_TOOLS_NSA_REFERENCE_TEST_HARNESS_H

#include "nsa/Reference/Reference.h"

#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <string>
#include <vector>

namespace nsa::ref::test {

struct Checker {
  int passed = 0, failed = 0;

  /// `error` is "" for a pass, else what went wrong.
  void check(const std::string &name, const std::string &error) {
    if (error.empty()) {
      ++passed;
      std::printf("PASS %s\n", name.c_str());
    } else {
      ++failed;
      std::printf("FAIL %s: %s\n", name.c_str(), error.c_str());
    }
    // Checks can take seconds each; show progress when piped.
    std::fflush(stdout);
  }
};

/// splitmix64: a fixed-seed generator whose stream does not depend on the
/// standard library, so every platform checks the same values.
struct Rng {
  uint64_t state;
  explicit Rng(uint64_t seed) : state(seed) {}
  uint64_t next() {
    uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  double uniform(double lo, double hi) {
    return lo + (hi - lo) * static_cast<double>(next() >> 11) * 0x1.0p-53;
  }
};

inline Tensor randomTensor(std::vector<int64_t> shape, Rng &rng, double lo = -1,
                           double hi = 1) {
  Tensor t(std::move(shape));
  for (double &x : t.data)
    x = rng.uniform(lo, hi);
  return t;
}

inline std::string str(double x) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.3g", x);
  return buf;
}

/// The first non-empty error, so one check can cover a whole run.
inline std::string firstError(std::initializer_list<std::string> errors) {
  for (const std::string &e : errors)
    if (!e.empty())
      return e;
  return "";
}

/// GradChecks.cpp: the backward (ReferenceGrad.h) against finite differences.
void checkGradients(Checker &c);

} // namespace nsa::ref::test

#endif // NSA_TOOLS_NSA_REFERENCE_TEST_HARNESS_H
