//===- TileOps.td - block-level programs -------------------*- tablegen -*-===//
//
// The `tile` dialect is the compiler's middle: Triton-style block-level
// programs. A `tile.program` runs one instance per point of its grid; inside,
// values are tiles (small statically shaped tensors) and ops compute on whole
// tiles. nsa-tile produces it from the nsa branch ops; convert-tile-to-scf
// runs it on the CPU; the GPU conversion maps a program to a thread block.
//
//===----------------------------------------------------------------------===//

#ifndef NSA_TILE_OPS_TD
#define NSA_TILE_OPS_TD

include "mlir/IR/OpBase.td"
include "mlir/IR/EnumAttr.td"
include "mlir/Interfaces/ControlFlowInterfaces.td"
include "mlir/Interfaces/InferTypeOpInterface.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

def Tile_Dialect : Dialect {
  let name = "tile";
  let cppNamespace = "::mlir::nsa::tile";
  let summary = "Block-level programs on tiles (Triton-style)";
  let description = [{
    One `tile.program` instance per grid point computes one tile of its
    outputs. Tiles are statically shaped ranked tensors with value
    semantics; the operands a program reads from and the outputs it stores
    into are whole tensors in the `[B, T, H, ...]` layouts of the `nsa`
    dialect. Reads outside a tensor give zeros and writes outside it are
    dropped, so ragged tails need no special code.
  }];
}

class Tile_Op<string mnemonic, list<Trait> traits = []>
    : Op<Tile_Dialect, mnemonic, traits>;

defvar Tile_Tensor = AnyRankedTensor;

def Tile_ReduceKind : I32EnumAttr<"ReduceKind", "tile reduction", [
    I32EnumAttrCase<"Max", 0, "max">, I32EnumAttrCase<"Sum", 1, "sum">]> {
  let cppNamespace = "::mlir::nsa::tile";
}

//===----------------------------------------------------------------------===//
// Programs
//===----------------------------------------------------------------------===//

def Tile_ProgramOp : Tile_Op<"program", [
    AttrSizedOperandSegments, SingleBlockImplicitTerminator<"EndOp">,
    RecursiveMemoryEffects,
    DeclareOpInterfaceMethods<InferTypeOpInterface>]> {
  let summary = "a grid of independent block-level programs";
  let description = [{
    Runs the body once per point `(i0, ..., ik)` of `grid` (1 to 3 sizes).
    The body's block arguments are the point's coordinates (index), then one
    tensor per `outs` operand; `tile.store` writes tiles into those, and the
    results are the `outs` after every instance has stored. Instances must
    store disjoint elements; they may run in any order or in parallel.

    `min_resident`, when set, asks a GPU target to let that many instances
    run at once on one multiprocessor: it limits each thread's registers so
    that they fit (`.minnctapersm`), trading spills for latency hiding.

    ```mlir
    %o = tile.program grid(%nb, %nh, %nm) outs(%init : tensor<1x100x2x4x16xbf16>) {
    ^bb0(%b: index, %h: index, %m: index, %out: tensor<1x100x2x4x16xbf16>):
      ...
      tile.store %tile into %out[%b, %t0, %h, %c0, %c0] {row_dims = array<i64: 1, 3>}
          : tensor<64x16xbf16> into tensor<1x100x2x4x16xbf16>
    }
    ```
  }];
  let arguments = (ins Variadic<Index>:$grid, Variadic<Tile_Tensor>:$outs,
                       OptionalAttr<StrAttr>:$label,
                       OptionalAttr<ConfinedAttr<I64Attr, [IntPositive]>>:
                           $min_resident);
  let results = (outs Variadic<Tile_Tensor>:$results);
  let regions = (region SizedRegion<1>:$body);
  let assemblyFormat = [{
    `grid` `(` $grid `)` `outs` `(` $outs `:` type($outs) `)` $body attr-dict
  }];
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    ::mlir::Block &getBodyBlock() { return getBody().front(); }
    /// The grid coordinates of the running instance.
    ::mlir::Block::BlockArgListType getIds() {
      return getBodyBlock().getArguments().take_front(getGrid().size());
    }
    /// The body's views of `outs`, the only legal `tile.store` targets.
    ::mlir::Block::BlockArgListType getOutArgs() {
      return getBodyBlock().getArguments().drop_front(getGrid().size());
    }
  }];
}

def Tile_LaunchOp : Tile_Op<"launch", [
    AttrSizedOperandSegments,
    DeclareOpInterfaceMethods<InferTypeOpInterface>]> {
  let summary = "a tile.program compiled to a GPU kernel, as its host sees it";
  let description = [{
    What `convert-tile-to-gpu` leaves of a `tile.program`: `kernel` names
    the `gpu.func` (in a `gpu.module`) that runs one program instance per
    thread block; `args` are the tensors the program read from outside, in
    the kernel's parameter order, followed by `outs`; the results are the
    `outs` after the kernel stored into them. Grid dimension i of the
    program is CUDA grid dimension `2 - i` of a 3-D program (x holds the
    last, usually the many query tiles). `label` is the program's (the nsa
    op it implements). `nsa-translate` turns these ops into the host plan
    and the kernel manifest.

    ```mlir
    %o = tile.launch @nsa_layer_kernels::@nsa_layer_k2 grid(%c1, %c4, %c16)
        args(%q, %k : tensor<1x64x4x16x128xbf16>, tensor<1x64x4x128xbf16>)
        outs(%init : tensor<1x64x4x16x128xbf16>) {label = "window_attention"}
    ```
  }];
  let arguments = (ins SymbolRefAttr:$kernel, Variadic<Index>:$grid,
                       Variadic<Tile_Tensor>:$args, Variadic<Tile_Tensor>:$outs,
                       OptionalAttr<StrAttr>:$label);
  let results = (outs Variadic<Tile_Tensor>:$results);
  let assemblyFormat = [{
    $kernel `grid` `(` $grid `)` (`args` `(` $args^ `:` type($args) `)`)?
    `outs` `(` $outs `:` type($outs) `)` attr-dict
  }];
  let hasVerifier = 1;
}

def Tile_EndOp : Tile_Op<"end", [Terminator, HasParent<"ProgramOp">, Pure]> {
  let summary = "end of a tile.program body";
  let assemblyFormat = "attr-dict";
}

//===----------------------------------------------------------------------===//
// Memory: load, gather, store
//===----------------------------------------------------------------------===//

def Tile_LoadOp : Tile_Op<"load", [Pure]> {
  let summary = "read a tile of rows from a tensor, zeros out of bounds";
  let description = [{
    `indices` has one index per dimension of `source`. The dimensions in
    `row_dims` are enumerated by the tile's rows in row-major order: the
    first starts at its index and may run past the end (those rows read
    zeros); the others must have index 0 and are covered whole. A rank-2
    tile's columns are `source`'s last dimension, whole (it must be
    static); a rank-1 tile has no columns. Every other dimension is fixed at its index.

    Example: with grouped queries `q: [B, T, HKV, G, Dk]`,
    `row_dims = [1, 3]` gives row `r = (t - t0) * G + g`, so a tile of
    `BM * G` rows holds `BM` tokens times the `G` heads of KV head `h`.
  }];
  let arguments = (ins Tile_Tensor:$source, Variadic<Index>:$indices,
                       DenseI64ArrayAttr:$row_dims);
  let results = (outs Tile_Tensor:$result);
  let assemblyFormat = [{
    $source `[` $indices `]` attr-dict `:` type($source) `->` type($result)
  }];
  let hasVerifier = 1;
}

def Tile_GatherOp : Tile_Op<"gather", [Pure]> {
  let summary = "read rows chosen by an index tile, zeros for invalid ones";
  let description = [{
    Row `r` of the result is the row `rows[r]` (i32) of the dimensions in
    `row_dims`, numbered row-major as tile.load numbers them from index 0:
    with `row_dims = [1, 3]` over grouped queries `[B, T, HKV, G, Dk]`,
    `rows[r] = t * G + g`. `indices` fixes every other dimension but the
    last when the result has rank 2 (its columns, a static dimension); a
    rank-1 result has no columns. A row `< 0` or past the end reads zeros (so `-1` padding in
    selection indices is harmless).

    With one row dimension this reads whole rows of one dimension (the idx
    rows of chosen tokens); with several, the G heads of chosen tokens (the
    query rows of a selected block's d_k/d_v program).
  }];
  let arguments = (ins Tile_Tensor:$source, Variadic<Index>:$indices,
                       Tile_Tensor:$rows, DenseI64ArrayAttr:$row_dims);
  let results = (outs Tile_Tensor:$result);
  let assemblyFormat = [{
    $source `[` $indices `]` `rows` $rows attr-dict `:` type($source) `,`
    type($rows) `->` type($result)
  }];
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    /// One index per dimension of `source`: `fixed` (this op's indices, or
    /// what a lowering maps them to) in order, and `zero` on the row
    /// dimensions and, for a rank-2 result, the columns.
    ::llvm::SmallVector<::mlir::Value> sourceIndices(::mlir::ValueRange fixed,
                                                     ::mlir::Value zero);
  }];
}

def Tile_StoreOp : Tile_Op<"store", [HasParent<"ProgramOp">]> {
  let summary = "write a tile into a program output, dropping rows out of bounds";
  let description = [{
    The inverse of `tile.load` with the same `indices`/`row_dims` rules;
    rows past the end of the first row dimension are not written. `dest` must
    be one of the enclosing program's `outs` block arguments, and the store
    must sit directly in the program body.

    `row_stride` (one row dimension only) spaces the rows: tile row `r` goes
    to index `indices[row_dims[0]] + r * row_stride`. It lets a program own
    one phase of a strided set of rows (the compression backward writes the
    source tokens `m*d + s` of one phase `s`) without a scatter.
  }];
  let arguments = (ins Tile_Tensor:$value, Tile_Tensor:$dest,
                       Variadic<Index>:$indices, DenseI64ArrayAttr:$row_dims,
                       DefaultValuedAttr<I64Attr, "1">:$row_stride);
  let assemblyFormat = [{
    $value `into` $dest `[` $indices `]` attr-dict `:` type($value) `into`
    type($dest)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Compute
//===----------------------------------------------------------------------===//

def Tile_RangeOp : Tile_Op<"range", [Pure]> {
  let summary = "positions: start + i floordiv divisor";
  let description = [{
    `result[i] = start + i floordiv divisor` (i32). With `divisor = G` it
    gives the token of each row of a grouped query tile.
  }];
  let arguments = (ins Index:$start,
                       DefaultValuedAttr<I64Attr, "1">:$divisor);
  let results = (outs Tile_Tensor:$result);
  let assemblyFormat = "$start attr-dict `:` type($result)";
  let hasVerifier = 1;
}

def Tile_BroadcastOp : Tile_Op<"broadcast", [Pure]> {
  let summary = "repeat a rank-1 tile along a new dimension";
  let description = [{
    `dim = 1`: `result[i, j] = value[i]` (one value per row);
    `dim = 0`: `result[i, j] = value[j]` (one value per column).
  }];
  let arguments = (ins Tile_Tensor:$value, I64Attr:$dim);
  let results = (outs Tile_Tensor:$result);
  let assemblyFormat = "$value attr-dict `:` type($value) `->` type($result)";
  let hasVerifier = 1;
}

def Tile_DotOp : Tile_Op<"dot", [Pure]> {
  let summary = "tile matrix product with f32 accumulation";
  let description = [{
    `result = lhs . rhs` with `lhs: [M, K]` and `rhs: [K, N]`. With
    `rhs_transposed` the rhs is given as `[N, K]` (`lhs . rhs^T`, the layout
    K tiles have: scores `q . k^T`); with `lhs_transposed` the lhs is given
    as `[K, M]` (`lhs^T . rhs`: the backward's `p^T . d_o` and
    `ds^T . q`, which contract over the query rows); both may be set.
    Operands are bf16, f16 or f32; products are accumulated in f32.
  }];
  let arguments = (ins Tile_Tensor:$lhs, Tile_Tensor:$rhs,
                       UnitAttr:$rhs_transposed, UnitAttr:$lhs_transposed);
  let results = (outs Tile_Tensor:$result);
  let assemblyFormat = [{
    $lhs `,` $rhs attr-dict `:` type($lhs) `,` type($rhs) `->` type($result)
  }];
  let hasVerifier = 1;
}

def Tile_MaskedFillOp : Tile_Op<"masked_fill", [Pure,
    AllTypesMatch<["value", "result"]>]> {
  let summary = "replace the elements where mask is true";
  let description = [{
    `result = mask ? fill : value`, elementwise, as PyTorch's `masked_fill`.
  }];
  let arguments = (ins Tile_Tensor:$value, Tile_Tensor:$mask, AnyType:$fill);
  let results = (outs Tile_Tensor:$result);
  let assemblyFormat = [{
    $value `,` $mask `,` $fill attr-dict `:` type($value) `,` type($mask)
    `,` type($fill)
  }];
  let hasVerifier = 1;
}

def Tile_ReduceOp : Tile_Op<"reduce", [Pure]> {
  let summary = "max or sum of a rank-2 tile along its rows";
  let description = [{
    `result[i] = kind_j value[i, j]`; `max` of an empty or all `-inf` row
    is `-inf`.
  }];
  let arguments = (ins Tile_ReduceKind:$kind, Tile_Tensor:$value);
  let results = (outs Tile_Tensor:$result);
  let assemblyFormat = "$kind $value attr-dict `:` type($value) `->` type($result)";
  let hasVerifier = 1;
}

def Tile_GroupSumOp : Tile_Op<"group_sum", [Pure]> {
  let summary = "sums of consecutive groups of rows of a rank-2 tile";
  let description = [{
    `result[i, j] = sum_{r < G} value[i * G + r, j]` with `G` the ratio of
    the row counts: selection's GQA sum (SPEC Eq. 10), whose G rows of one
    query token are consecutive. Each group's sum is its own: a NaN in one
    group stays there (a 0/1 product matrix would spread it).
  }];
  let arguments = (ins Tile_Tensor:$value);
  let results = (outs Tile_Tensor:$result);
  let assemblyFormat = "$value attr-dict `:` type($value) `->` type($result)";
  let hasVerifier = 1;
}

def Tile_OnlineSoftmaxOp : Tile_Op<"online_softmax", [Pure,
    AllTypesMatch<["max", "sum", "new_max", "new_sum"]>,
    AllTypesMatch<["acc", "new_acc"]>]> {
  let summary = "one key block's update of a streaming softmax . V";
  let description = [{
    `scale * scores: f32 [M, N]` are the scores in base 2 (`scale` is
    `softmax scale * log2(e)` when `scores = q.k`; default 1) with masked
    entries `-inf`; `scale` is positive; `values: [N, Dv]`; the running
    state is `max: f32 [M]`, `sum: f32 [M]` and `acc: f32 [M, Dv]`.
    Computes

        max' = max(max, scale * rowmax(scores))
        p    = exp2(scale * scores - max')        (0 where max' = -inf)
        c    = exp2(max - max')           (1 where max' = -inf)
        sum' = sum * c + rowsum(p)
        acc' = acc * c + p . values

    so that after the last block `acc / sum` is the softmax-weighted sum.
    Start from `max = -inf`, `sum = 0`, `acc = 0`.
  }];
  let arguments = (ins Tile_Tensor:$scores, Tile_Tensor:$values,
                       Tile_Tensor:$max, Tile_Tensor:$sum, Tile_Tensor:$acc,
                       DefaultValuedAttr<F32Attr, "1.0">:$scale);
  let results = (outs Tile_Tensor:$new_max, Tile_Tensor:$new_sum,
                      Tile_Tensor:$new_acc);
  let assemblyFormat = [{
    $scores `,` $values `,` $max `,` $sum `,` $acc attr-dict `:`
    type($scores) `,` type($values) `,` type($max) `,` type($acc)
  }];
  let hasVerifier = 1;
}

def Tile_SoftmaxFinalizeOp : Tile_Op<"softmax_finalize", [Pure,
    AllTypesMatch<["max", "sum", "lse"]>]> {
  let summary = "output and natural-log lse of a streaming softmax";
  let description = [{
    `out = acc / sum` converted to the result's element type and
    `lse = (max + log2(sum)) * ln(2)`; a row that saw no key (`sum = 0`)
    gets `out = 0` and `lse = -inf` (SPEC.md: nothing visible).
  }];
  let arguments = (ins Tile_Tensor:$max, Tile_Tensor:$sum, Tile_Tensor:$acc);
  let results = (outs Tile_Tensor:$out, Tile_Tensor:$lse);
  let assemblyFormat = [{
    $max `,` $sum `,` $acc attr-dict `:` type($max) `,` type($acc) `->`
    type($out)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Top-n selection
//===----------------------------------------------------------------------===//

def Tile_TopkMergeOp : Tile_Op<"topk_merge", [Pure,
    AllTypesMatch<["best_scores", "new_scores"]>,
    AllTypesMatch<["best_indices", "new_indices"]>]> {
  let summary = "merge a block of scores into each row's running top n";
  let description = [{
    Each row of `best_scores: f32 [M, n]` / `best_indices: i32 [M, n]`
    lists its best entries so far, best first (larger score, then smaller
    index; unused slots are `-inf` / `-1`). Column `c` of
    `scores: f32 [M, N]` is the score of index `start + c`; entries scoring
    `-inf` are not candidates. The result is the top n of both. Start from
    all `-inf` / `-1`. Streaming over blocks of candidates this way selects
    without holding every score of a row at once.
  }];
  let arguments = (ins Tile_Tensor:$best_scores, Tile_Tensor:$best_indices,
                       Tile_Tensor:$scores, Index:$start);
  let results = (outs Tile_Tensor:$new_scores, Tile_Tensor:$new_indices);
  let assemblyFormat = [{
    $best_scores `,` $best_indices `,` $scores `,` $start attr-dict `:`
    type($best_scores) `,` type($best_indices) `,` type($scores)
  }];
  let hasVerifier = 1;
}

def Tile_TopkFinalizeOp : Tile_Op<"topk_finalize", [Pure,
    AllTypesMatch<["indices", "result"]>]> {
  let summary = "a top-n list as ascending indices padded with -1";
  let description = [{
    `result[i]` holds the indices of row `i` whose score is not `-inf`,
    sorted ascending, then `-1` (SPEC.md section 3's idx layout).
  }];
  let arguments = (ins Tile_Tensor:$scores, Tile_Tensor:$indices);
  let results = (outs Tile_Tensor:$result);
  let assemblyFormat = [{
    $scores `,` $indices attr-dict `:` type($scores) `,` type($indices)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Stream compaction
//===----------------------------------------------------------------------===//

def Tile_CompactOp : Tile_Op<"compact", [Pure,
    AllTypesMatch<["ranks", "result"]>]> {
  let summary = "the values a mask keeps, picked by rank";
  let description = [{
    Of the elements of `values: i32 [C]` whose `mask: i1 [C]` is set, taken
    in order, `result[r]` is the one of rank `ranks[r]: i32` (from 0), or
    -1 when `ranks[r]` is negative or not below `count`, the number of set
    mask elements (index).

    Stream compaction without a [R, C] comparison: a selected block's
    d_k/d_v program packs the tokens of a chunk that chose the block into
    query tiles this way. On the GPU every warp votes the mask, and the
    lane of each set element writes it at its rank into the warp's own list.
  }];
  let arguments = (ins Tile_Tensor:$values, Tile_Tensor:$mask,
                       Tile_Tensor:$ranks);
  let results = (outs Tile_Tensor:$result, Index:$count);
  let assemblyFormat = [{
    $values `,` $mask `,` $ranks attr-dict `:` type($values) `,`
    type($mask) `,` type($ranks)
  }];
  let hasVerifier = 1;
}

#endif // NSA_TILE_OPS_TD
