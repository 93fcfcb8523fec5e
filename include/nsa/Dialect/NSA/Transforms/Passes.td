//===- Passes.td - NSA dialect passes ----------------------*- tablegen -*-===//

#ifndef NSA_DIALECT_NSA_TRANSFORMS_PASSES_TD
#define NSA_DIALECT_NSA_TRANSFORMS_PASSES_TD

include "mlir/Pass/PassBase.td"

def NSADecompose : Pass<"nsa-decompose"> {
  let summary = "Rewrite nsa.attention(_grad) into the branch ops";
  let description = [{
    `nsa.attention` becomes, in SPEC.md order: `nsa.compress` of the cmp
    branch's keys and values, `nsa.compressed_attention`, `nsa.select_blocks`
    (fed by the compressed keys and the compressed branch's lse),
    `nsa.selected_attention`, `nsa.window_attention` and `nsa.combine`. A
    single shared K/V operand feeds all three branches.

    `nsa.attention_grad` becomes the same forward (recomputed: the composite
    saves nothing) followed by `nsa.combine_grad`, the three branch `*_grad`
    ops and two `nsa.compress_grad`. Gradients that several branches
    contribute to (`d_q` always, `d_k`/`d_v` when K/V are shared) are summed
    with `arith.addf`.
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect"];
}

#endif // NSA_DIALECT_NSA_TRANSFORMS_PASSES_TD
