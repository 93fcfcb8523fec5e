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

def NSAGroupGQA : Pass<"nsa-group-gqa"> {
  let summary = "Give the G query heads of each KV head their own dimension";
  let description = [{
    The query-side operands and results of `nsa.compressed_attention`,
    `nsa.select_blocks`, `nsa.selected_attention` and
    `nsa.window_attention`, and of their `*_grad` ops (`q`, `o`, `lse`,
    `d_o` and `d_q`), go from `[B, T, HQ, ...]` to the grouped form
    `[B, T, HKV, G, ...]` (`G = HQ / HKV`) through `tensor.expand_shape` and
    `tensor.collapse_shape`. nsa-tile then makes the `G` heads of one KV head
    rows of the same tile, so each K/V block is loaded once for the whole
    group (the paper's group-centric loading, section 3.4). Any G works,
    G = 1 included. Ops whose HQ or HKV is dynamic are left as they are.
  }];
  let dependentDialects = ["::mlir::tensor::TensorDialect"];
}

def NSATile : Pass<"nsa-tile"> {
  let summary = "Turn nsa branch ops and their grads into grids of "
                "block-level tile programs";
  let description = [{
    Each op becomes a `tile.program` over (batch, head, tile):
    - `nsa.compressed_attention`, `nsa.window_attention`,
      `nsa.selected_attention` (grouped by nsa-group-gqa): one program per
      (b, KV head, `query-tokens` tokens), whose tile rows are those tokens
      times the G heads of the group; a loop over key blocks (compressed
      tokens, the window's band, or the selected blocks) does
      dot, mask, online softmax; the end stores `o` and `lse`.
    - `nsa.compress`: one program per (b, head, `compress-tokens`
      compressed tokens), a loop over the l positions of a block (gather,
      plus PE, times the matching rows of W, or the mean).
    - `nsa.select_blocks` (grouped): one program per (b, KV head,
      `query-tokens` tokens); a loop over `select-blocks` selection blocks
      at a time recomputes `p_cmp = exp(s - lse)` for the compressed tokens
      overlapping them, sums the G heads and maps tokens to blocks (two
      products with constant 0/1 and overlap-count matrices), forces and
      masks blocks, and merges them into a running top-n
      (`tile.topk_merge`): no `[T, Nc]` or `[T, blocks]` tensor exists and
      no host-side sort is needed.
    - `nsa.combine`: one program per (b, query head, `query-tokens`
      tokens).
    - the `*_grad` ops (grouped where they have q), deterministically: every
      output element is stored by one program, without atomics. Attention
      grads get a d_q grid (per query tile, over the keys it sees, as the
      forward) and a d_k/d_v grid (per key block, over the query tiles that
      see it; for the selected branch, one selection block per program and
      a mask of the rows whose idx holds it). `nsa.compress_grad`: d_input
      per `compress-tokens` source tokens (whole strides), d_weight and
      d_pe per (head, position). `nsa.combine_grad`: per (b, query head,
      `query-tokens` tokens).
    Scores are computed in base 2 (`scale * log2(e)` folded into one
    multiply); masked keys are `-inf`.
  }];
  let options = [
    Option<"target", "target", "std::string", /*default=*/"\"cpu\"",
           "whose defaults the sizes left at 0 take: cpu (the CPU path "
           "CI runs) or sm90a (Hopper: >= 64 tile rows for wgmma, 64-key "
           "steps)">,
    Option<"queryTokens", "query-tokens", "int64_t", /*default=*/"0",
           "query tokens per program (tile rows = tokens * G); 0: the "
           "target's (cpu: 16; sm90a: enough for 64 rows)">,
    Option<"scanRows", "scan-rows", "int64_t", /*default=*/"0",
           "tile rows (at least) of the forward programs that scan every "
           "compressed token, compressed attention and nsa.select_blocks "
           "(their key tiles then serve more rows; query-tokens, when set, "
           "applies instead); 0: the target's (cpu: 64; sm90a: 128)">,
    Option<"keyTokens", "key-tokens", "int64_t", /*default=*/"0",
           "keys per step of the compressed and window branches; 0: the "
           "target's (cpu: 32; sm90a: 64)">,
    Option<"selectedQueryTokens", "selected-query-tokens", "int64_t",
           /*default=*/"0",
           "query tokens per program of the selected branch; 0: the "
           "target's (1)">,
    Option<"compressTokens", "compress-tokens", "int64_t", /*default=*/"0",
           "compressed tokens per nsa.compress program (source tokens per "
           "nsa.compress_grad d_input program); 0: the target's (cpu: 16; "
           "sm90a: 64)">,
    Option<"selectBlocks", "select-blocks", "int64_t", /*default=*/"0",
           "selection blocks scored per step of nsa.select_blocks; 0: the "
           "target's (16)">,
    Option<"selectResident", "select-resident", "int64_t", /*default=*/"0",
           "nsa.select_blocks programs that should fit on one GPU "
           "multiprocessor at once (tile.program min_resident: registers are "
           "limited to fit); 0: the target's (cpu: none; sm90a: 3)">,
    Option<"gradSegments", "grad-segments", "int64_t", /*default=*/"0",
           "query segments of the d_k/d_v programs of key blocks that every "
           "later query attends (compressed attention's; selection's "
           "initial blocks have init-grad-segments): one program per "
           "(block, segment) writes f32 "
           "partial sums that a second program adds in order; 1: none; 0: "
           "the target's (cpu: 2; sm90a: 8)">,
    Option<"initGradSegments", "init-grad-segments", "int64_t",
           /*default=*/"0",
           "query segments of the d_k/d_v programs of selection's initial "
           "blocks (as grad-segments; chosen by every token, and only `init` "
           "of them, so more segments fill the GPU); 0: the target's (cpu: "
           "2; sm90a: 64)">,
    Option<"selectedGradTokens", "selected-grad-tokens", "int64_t",
           /*default=*/"0",
           "query tokens per tile of the selected branch's d_k/d_v programs "
           "(gathered tokens that chose the block); 0: as query-tokens">,
  ];
  let dependentDialects = ["::mlir::nsa::tile::TileDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::math::MathDialect",
                           "::mlir::scf::SCFDialect",
                           "::mlir::tensor::TensorDialect"];
}

#endif // NSA_DIALECT_NSA_TRANSFORMS_PASSES_TD
