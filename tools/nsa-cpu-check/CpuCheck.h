//===- CpuCheck.h - shared declarations of nsa-cpu-check --------*- C++ -*-===//
//
// The case description, the host buffers and CaseRunner, whose steps live in
// their own files:
//   Options.cpp       command line, case labels and pipelines, the matrix
//   Buffers.cpp       host buffers, element rounding, random inputs
//   ModuleWriter.cpp  the MLIR text of the forward (and backward) module
//   Jit.cpp           registration, parse, pass pipeline, memref
//                     descriptors, ExecutionEngine
//   Checks.cpp        comparisons against the reference, tolerances,
//                     PASS/FAIL lines (CheckGrad.cpp: the backward's)
// nsa-cpu-check.cpp says what the tool proves and runs the cases.
//
//===----------------------------------------------------------------------===//

#ifndef NSA_TOOLS_NSA_CPU_CHECK_CPUCHECK_H
#define NSA_TOOLS_NSA_CPU_CHECK_CPUCHECK_H

#include "nsa/Reference/Reference.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace mlir {
class MLIRContext;
} // namespace mlir

namespace cpucheck {

namespace ref = ::nsa::ref;

//===----------------------------------------------------------------------===//
// Case description (Options.cpp)
//===----------------------------------------------------------------------===//

/// nsa-tile's options; 0 (or an empty target) leaves the pass default.
struct TileOptions {
  std::string target;
  int64_t queryTokens = 0, keyTokens = 0, selectedQueryTokens = 0,
          compressTokens = 0, selectBlocks = 0, gradSegments = 0,
          initGradSegments = 0, selectedGradTokens = 0;

  std::string passOptions() const;
};

struct Case {
  int64_t B = 1, T = 33, HQ = 2, HKV = 1, Dk = 32, Dv = 16;
  bool f16 = false;      ///< Element type: f16, else bf16.
  bool linear = true;    ///< Compression: linear, else mean.
  bool pe = true;        ///< Linear with a position encoding.
  bool sharedKV = false; ///< One k, v for all branches.
  ref::Config cfg;
  TileOptions tiles;
  uint64_t seed = 1;
  /// Standard deviation of q: large values make peaked softmaxes (scores of
  /// magnitude ~100 overflow exp in fp32 unless the maximum is subtracted).
  double qScale = 1;
  /// Test hook: after the run, corrupt one element of this output (proves
  /// that the checks can fail). Empty: none.
  std::string perturb;
  /// Debug aid: idx is an input holding the float64 reference selection,
  /// and nsa.select_blocks is left out of the module (isolates the other
  /// programs from it).
  bool idxFromReference = false;
  /// Also run the backward (--backward): the grad ops of nsa-decompose's
  /// decomposition of nsa.attention_grad on a random d_o, every gradient
  /// checked.
  bool backward = false;

  /// The k (v) input that a branch ("cmp", "slc" or "win") reads.
  std::string kName(const char *branch) const {
    return sharedKV ? "k" : std::string("k_") + branch;
  }
  std::string vName(const char *branch) const {
    return sharedKV ? "v" : std::string("v_") + branch;
  }

  std::string label() const;
  /// The pass pipeline, inside builtin.module(...).
  std::string pipeline() const;
  /// "" when the case can run, else why not.
  std::string validate() const;
};

/// What the command line asks for.
struct Options {
  Case single; ///< The case the flags describe.
  bool runMatrix = false, emit = false, verbose = false;

  /// The built-in matrix (with --idx-from-reference applied to every case)
  /// or the single case.
  std::vector<Case> cases() const;
};

/// Parses the command line into `opts`; returns the exit status when the
/// program should stop here (--help, a bad argument).
std::optional<int> parseCommandLine(int argc, char **argv, Options &opts);

/// The built-in matrix of cases (--matrix).
std::vector<Case> matrix();

//===----------------------------------------------------------------------===//
// Host buffers (Buffers.cpp)
//===----------------------------------------------------------------------===//

enum class Elem { BF16, F16, F32, I32 };

const char *elemName(Elem e);

/// What poison() leaves in an i32 buffer: no selection holds it.
constexpr int32_t kIdxPoison = 12345;

/// A dense row-major host buffer; Jit.cpp passes it to the compiled
/// function through a memref descriptor.
struct Buffer {
  std::string name;
  std::vector<int64_t> shape;
  Elem elem;
  std::vector<uint64_t> storage; // 8-byte aligned, never empty

  Buffer(std::string name, std::vector<int64_t> shape, Elem elem);
  Buffer(const Buffer &) = delete;
  Buffer(Buffer &&) = default;

  int64_t numElements() const {
    int64_t n = 1;
    for (int64_t e : shape)
      n *= e;
    return n;
  }
  size_t elemBytes() const {
    return elem == Elem::BF16 || elem == Elem::F16 ? 2 : 4;
  }
  uint16_t *u16() { return reinterpret_cast<uint16_t *>(storage.data()); }
  const uint16_t *u16() const {
    return reinterpret_cast<const uint16_t *>(storage.data());
  }
  float *f32() { return reinterpret_cast<float *>(storage.data()); }
  const float *f32() const {
    return reinterpret_cast<const float *>(storage.data());
  }
  int32_t *i32() { return reinterpret_cast<int32_t *>(storage.data()); }
  const int32_t *i32() const {
    return reinterpret_cast<const int32_t *>(storage.data());
  }

  std::string shapeText() const;
  std::string memrefType() const { return "memref<" + shapeText() + ">"; }
  std::string tensorType() const { return "tensor<" + shapeText() + ">"; }

  /// Stores x rounded to the element type (round to nearest even); returns
  /// the stored value.
  double set(int64_t i, double x);
  double get(int64_t i) const;
  /// Fills the buffer with a value no program writes by accident (NaN, or
  /// kIdxPoison for i32).
  void poison();

  ref::Tensor toTensor() const;
  ref::IndexTensor toIndexTensor() const;
};

//===----------------------------------------------------------------------===//
// One case: buffers, module, run, checks
//===----------------------------------------------------------------------===//

struct Totals {
  int passed = 0, failed = 0;
};

class CaseRunner {
public:
  CaseRunner(const Case &c, mlir::MLIRContext &ctx, Totals &totals,
             bool verbose)
      : c(c), ctx(ctx), totals(totals), verbose(verbose) {}

  /// Buffers.cpp: allocates the buffers, fills the inputs, poisons the
  /// outputs.
  void makeBuffers();
  /// ModuleWriter.cpp: the module with the function @nsa.
  std::string moduleText() const;
  /// Jit.cpp: compiles and runs; false (after a FAIL line) when anything
  /// fails.
  bool compileAndRun();
  /// Checks.cpp: every output against the reference.
  void check();

private:
  // Buffers.cpp
  const Buffer &buf(const std::string &name) const;
  Buffer &buf(const std::string &name);
  bool has(const std::string &name) const;
  ref::Forward referenceForward();

  // Checks.cpp
  void report(const std::string &check, bool ok, const std::string &detail);
  void reportError(const std::string &name, double err, double tol,
                   const ref::Tensor &out, const ref::Tensor &expected);
  void checkRel(const std::string &name, const ref::Tensor &out,
                const ref::Tensor &expected);
  void checkLse(const std::string &name, const ref::Tensor &out,
                const ref::Tensor &expected);
  void applyPerturbation();

  // CheckGrad.cpp
  /// The backward checks; `idxUsable` says whether idx can be replayed.
  void checkBackward(bool idxUsable);
  void checkGrad(const std::string &name, const ref::Tensor &out,
                 const ref::Tensor &expected);
  /// ||out - expected|| / scale against the gradient tolerance.
  void checkGradAbs(const std::string &name, const ref::Tensor &out,
                    const ref::Tensor &expected, double scale);

  const Case &c;
  mlir::MLIRContext &ctx;
  Totals &totals;
  bool verbose;
  std::vector<Buffer> inputs, outputs;
};

/// Jit.cpp: initializes the native target, registers the passes and
/// dialects, and returns the context that every case compiles in.
std::unique_ptr<mlir::MLIRContext> createContext();

} // namespace cpucheck

#endif // NSA_TOOLS_NSA_CPU_CHECK_CPUCHECK_H
