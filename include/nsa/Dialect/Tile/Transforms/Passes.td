//===- Passes.td - tile dialect passes ---------------------*- tablegen -*-===//

#ifndef NSA_DIALECT_TILE_TRANSFORMS_PASSES_TD
#define NSA_DIALECT_TILE_TRANSFORMS_PASSES_TD

include "mlir/Pass/PassBase.td"

def ConvertTileToSCF : Pass<"convert-tile-to-scf"> {
  let summary = "Lower tile programs to loops and linalg on tensors (CPU)";
  let description = [{
    Rewrites every `tile` op into upstream ops on tensors that
    one-shot-bufferize handles, so that tile programs run on the CPU:

    - `tile.program` becomes an `scf.for` nest over its grid that carries
      the `outs` as iteration arguments; the body is inlined and each
      `tile.store` becomes an element loop of bounds-checked
      `tensor.insert`s into the current value of its output.
    - `tile.load`, `tile.gather`, `tile.range`, `tile.broadcast` and
      `tile.masked_fill` become `tensor.generate`; reads are guarded by a
      bounds check and give 0 outside the source.
    - `tile.dot` and `tile.reduce` become `linalg.generic` (f32 accumulation
      for dot).
    - `tile.online_softmax` and `tile.softmax_finalize` are first decomposed
      into the ops above and `arith`/`math` on tensors (run
      `convert-elementwise-to-linalg` afterwards to lower those).

    A program's `outs` arguments may only be used by `tile.store`.
  }];
  let dependentDialects = [
    "::mlir::arith::ArithDialect", "::mlir::linalg::LinalgDialect",
    "::mlir::math::MathDialect", "::mlir::scf::SCFDialect",
    "::mlir::tensor::TensorDialect"
  ];
}

#endif // NSA_DIALECT_TILE_TRANSFORMS_PASSES_TD
