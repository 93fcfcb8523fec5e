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
  void runOnOperation() override {
    for (auto [name, value] :
         {std::pair<StringRef, int64_t>{"query-tokens", queryTokens},
          {"key-tokens", keyTokens},
          {"selected-query-tokens", selectedQueryTokens},
          {"compress-tokens", compressTokens},
          {"select-blocks", selectBlocks}})
      if (value < 1) {
        getOperation()->emitError()
            << "nsa-tile: " << name << " must be >= 1, got " << value;
        return signalPassFailure();
      }
    TileSizes sizes{queryTokens, keyTokens, selectedQueryTokens, compressTokens,
                    selectBlocks};
    RewritePatternSet patterns(&getContext());
    populateAttentionTilingPatterns(patterns, sizes);
    populateSelectionTilingPatterns(patterns, sizes);
    populateCompressionTilingPatterns(patterns, sizes);
    populateCombineTilingPatterns(patterns, sizes);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      return signalPassFailure();
    // Whatever nsa op is left could not be tiled: say why, and fail.
    WalkResult left = getOperation()->walk([](Operation *op) {
      if (!isa<NSADialect>(op->getDialect()))
        return WalkResult::advance();
      if (isa<AttentionOp, AttentionGradOp>(op))
        op->emitError("nsa-tile: run nsa-decompose first");
      else if (op->getName().getStringRef().ends_with("_grad"))
        op->emitError("nsa-tile: backward ops are not tiled yet");
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
