//===- Tile.cpp - nsa-tile: nsa ops -> tile.program grids -----------------===//
//
// The pass: it gathers the rewrites of every op family (see
// ProgramBuilder.h) and reports whatever nsa op it could not tile.
//
//===----------------------------------------------------------------------===//

#include "ProgramBuilder.h"
#include "nsa/Dialect/NSA/Transforms/Passes.h"

#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace mlir::nsa {
#define GEN_PASS_DEF_NSATILE
#include "nsa/Dialect/NSA/Transforms/Passes.h.inc"
} // namespace mlir::nsa

using namespace mlir;
using namespace mlir::nsa;
using namespace mlir::nsa::tiling;

namespace {

struct NSATile : nsa::impl::NSATileBase<NSATile> {
  using NSATileBase::NSATileBase;

  /// The options, with every 0 replaced by the target's default.
  std::optional<TileSizes> resolveSizes() {
    // cpu keeps tiles small so the CI's interpreted loops stay fast; sm90a
    // fills wgmma's M = 64 with tile rows and steps 64 keys at a time.
    bool cpu = target == "cpu";
    if (!cpu && target != "sm90a") {
      getOperation()->emitError()
          << "nsa-tile: unknown target '" << target
          << "' (expected cpu or sm90a)";
      return std::nullopt;
    }
    for (auto [name, value] :
         {std::pair<StringRef, int64_t>{"query-tokens", queryTokens},
          {"scan-rows", scanRows},
          {"key-tokens", keyTokens},
          {"selected-query-tokens", selectedQueryTokens},
          {"compress-tokens", compressTokens},
          {"select-blocks", selectBlocks},
          {"select-resident", selectResident},
          {"grad-segments", gradSegments},
          {"init-grad-segments", initGradSegments},
          {"selected-grad-tokens", selectedGradTokens}})
      if (value < 0) {
        getOperation()->emitError()
            << "nsa-tile: " << name << " must be >= 0 (0: the target's), got "
            << value;
        return std::nullopt;
      }
    auto pick = [](int64_t option, int64_t byDefault) {
      return option ? option : byDefault;
    };
    return TileSizes{/*queryTokens=*/cpu ? pick(queryTokens, 16) : queryTokens,
                     /*minRows=*/64,
                     // sm90a: 128 rows (8 tokens at G = 16) share each
                     // compressed key tile; the window's short loop and the
                     // backward gain nothing and spill (performance.md v16).
                     /*scanRows=*/pick(scanRows, cpu ? 64 : 128),
                     pick(keyTokens, cpu ? 32 : 64),
                     pick(selectedQueryTokens, 1),
                     pick(compressTokens, cpu ? 16 : 64),
                     pick(selectBlocks, 16),
                     // sm90a: 3 (two programs a multiprocessor left it
                     // latency-bound at 227 registers; three fit in 168).
                     cpu ? selectResident : pick(selectResident, 3),
                     pick(gradSegments, cpu ? 2 : 8),
                     pick(initGradSegments, cpu ? 2 : 64),
                     /*selectedGradTokens=*/selectedGradTokens};
  }

  void runOnOperation() override {
    std::optional<TileSizes> sizes = resolveSizes();
    if (!sizes)
      return signalPassFailure();
    RewritePatternSet patterns(&getContext());
    populateAttentionTilingPatterns(patterns, *sizes);
    populateSelectionTilingPatterns(patterns, *sizes);
    populateCompressionTilingPatterns(patterns, *sizes);
    populateCombineTilingPatterns(patterns, *sizes);
    populateBackwardTilingPatterns(patterns, *sizes);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      return signalPassFailure();
    // Whatever nsa op is left could not be tiled: say why, and fail.
    WalkResult left = getOperation()->walk([](Operation *op) {
      if (!isa<NSADialect>(op->getDialect()))
        return WalkResult::advance();
      if (isa<AttentionOp, AttentionGradOp>(op))
        op->emitError("nsa-tile: run nsa-decompose first");
      else
        op->emitError("nsa-tile: cannot tile this op: it needs the grouped "
                      "form of nsa-group-gqa (where it has q) and static "
                      "head dimensions");
      return WalkResult::interrupt();
    });
    if (left.wasInterrupted())
      signalPassFailure();
  }
};

} // namespace
