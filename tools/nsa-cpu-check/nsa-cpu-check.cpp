//===- nsa-cpu-check.cpp - run compiled NSA programs against the reference ===//
//
// Proves on the CPU (CI has no GPU) that the compiler's grouped and tiled
// programs compute SPEC.md's forward pass. For one configuration (flags) or
// for a built-in matrix of them (--matrix; Options.cpp), it
//
//   1. writes an MLIR module with one function @nsa on memrefs: the branch
//      ops (nsa.compress x2, nsa.compressed_attention, nsa.select_blocks,
//      nsa.selected_attention, nsa.window_attention, nsa.combine), every
//      intermediate stored into its own output buffer (ModuleWriter.cpp);
//   2. compiles it with
//        func.func(nsa-group-gqa, nsa-tile{sizes}), cse, nsa-lower-tile-to-llvm
//      and JITs it with mlir::ExecutionEngine (Jit.cpp);
//   3. fills the inputs with seeded random values rounded to bf16/f16
//      (the reference reads the rounded values) and poisons every output
//      (NaN, or 12345 for idx) so that an unwritten element fails
//      (Buffers.cpp);
//   4. checks each op against the float64 reference (nsa::ref) GIVEN THE
//      COMPILED VALUES OF ITS INPUTS, so that errors do not compound and a
//      failure names the op that is wrong, then o end to end with the
//      compiled idx substituted for the reference selection (SPEC: compare
//      attention outputs given the same idx); Checks.cpp lists the checks
//      and the tolerances.
//
// With --backward the module also runs the grad ops on a random d_o
// (nsa-decompose's decomposition of nsa.attention_grad, written out), and
// every gradient is checked the same way, op by op and end to end
// (CheckGrad.cpp).
//
// Prints `PASS <check> err=...` or `FAIL <check> ...` per check and a final
// `N passed, M failed`; exits 1 on any failure.
//
//===----------------------------------------------------------------------===//

#include "CpuCheck.h"

#include "mlir/IR/MLIRContext.h"

#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"

#include <chrono>

using namespace cpucheck;

int main(int argc, char **argv) {
  Options opts;
  if (std::optional<int> status = parseCommandLine(argc, argv, opts))
    return *status;
  std::vector<Case> cases = opts.cases();
  for (const Case &k : cases) {
    std::string error = k.validate();
    if (!error.empty()) {
      llvm::errs() << "nsa-cpu-check: invalid case " << k.label() << ": "
                   << error << "\n";
      return 2;
    }
  }

  std::unique_ptr<mlir::MLIRContext> ctx = createContext();
  Totals totals;
  auto start = std::chrono::steady_clock::now();
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case &k = cases[i];
    Totals before = totals;
    CaseRunner runner(k, *ctx, totals, opts.verbose);
    runner.makeBuffers();
    if (opts.emit) {
      llvm::outs() << runner.moduleText();
      continue;
    }
    llvm::outs() << "# case " << (i + 1) << "/" << cases.size() << ": "
                 << k.label() << "\n";
    llvm::outs().flush();
    auto caseStart = std::chrono::steady_clock::now();
    if (runner.compileAndRun())
      runner.check();
    double secs = std::chrono::duration<double>(
                      std::chrono::steady_clock::now() - caseStart)
                      .count();
    llvm::outs() << llvm::format("# case %zu: %d passed, %d failed, %.1f s\n",
                                 i + 1, totals.passed - before.passed,
                                 totals.failed - before.failed, secs);
  }
  if (opts.emit)
    return 0;
  double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  llvm::outs() << llvm::format("# %zu case(s) in %.1f s\n", cases.size(), secs);
  llvm::outs() << totals.passed << " passed, " << totals.failed << " failed\n";
  return totals.failed ? 1 : 0;
}
