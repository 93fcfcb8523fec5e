//===- NSAOps.td - NSA dialect operations ------------------*- tablegen -*-===//
//
// Forward ops mirror SPEC.md sections 1-6; backward ops (`*_grad`) take the
// forward's saved results and the cotangent of its outputs and return the
// cotangents of its differentiable inputs (SPEC.md section 7). Selection has
// no backward: its indices are constants.
//
//===----------------------------------------------------------------------===//

#ifndef NSA_OPS_TD
#define NSA_OPS_TD

include "nsa/Dialect/NSA/IR/NSABase.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

class NSA_Op<string mnemonic, list<Trait> traits = []>
    : Op<NSA_Dialect, mnemonic, !listconcat(traits, [Pure])> {
  let hasVerifier = 1;
}

defvar NSA_Tensor = AnyRankedTensor;

//===----------------------------------------------------------------------===//
// Forward
//===----------------------------------------------------------------------===//

def NSA_CompressOp : NSA_Op<"compress", [AttrSizedOperandSegments]> {
  let summary = "token compression (SPEC.md section 1)";
  let description = [{
    Compressed token `i` summarizes positions `[i*d, i*d + l)` of `input`
    (`[B, T, H, D]`), giving `Nc(T) = 0 if T < l else (T - l)/d + 1` tokens.

    - `linear`: `out[i] = vec(input[i*d : i*d+l] + pe_h) . weight_h` with
      `weight: [H, l*D, D]` required and `pe: [H, l, D]` optional (zero when
      absent); `vec` flattens position-major (`r*D + e`).
    - `mean`: `out[i]` is the mean of the block; no weight or pe.

    ```mlir
    %kc = nsa.compress linear %k weight %wk pe %pek config <l = 32, d = 16, l_sel = 64, n = 16, init = 1, local = 2, w = 512>
        : (tensor<1x1000x4x64xbf16>, tensor<4x2048x64xbf16>, tensor<4x32x64xbf16>) -> tensor<1x61x4x64xbf16>
    ```
  }];
  let arguments = (ins NSA_CompressMode:$mode, NSA_Tensor:$input,
                       Optional<NSA_Tensor>:$weight, Optional<NSA_Tensor>:$pe,
                       NSA_ConfigAttr:$config);
  let results = (outs NSA_Tensor:$result);
  let assemblyFormat = [{
    $mode $input (`weight` $weight^)? (`pe` $pe^)? `config` $config attr-dict
    `:` functional-type(operands, results)
  }];
}

def NSA_CompressedAttentionOp : NSA_Op<"compressed_attention"> {
  let summary = "causal attention over compressed tokens (SPEC.md section 2)";
  let description = [{
    Query `t` sees compressed token `i` iff `i*d + l - 1 <= t`. Returns the
    output `o: [B, T, HQ, Dv]` and the natural-log log-sum-exp of the scores
    `lse: [B, T, HQ]` (f32). A query that sees nothing (`t < l - 1`) gets
    `o = 0` and `lse = -inf`. `lse` is what `nsa.select_blocks` needs to
    recover the compressed probabilities `p_cmp = exp(s - lse)` without
    materializing them.
  }];
  let arguments = (ins NSA_Tensor:$q, NSA_Tensor:$k, NSA_Tensor:$v,
                       NSA_ConfigAttr:$config);
  let results = (outs NSA_Tensor:$o, NSA_Tensor:$lse);
  let assemblyFormat = [{
    $q `,` $k `,` $v `config` $config attr-dict
    `:` functional-type(operands, results)
  }];
}

def NSA_SelectBlocksOp : NSA_Op<"select_blocks"> {
  let summary = "GQA-shared top-n block selection (SPEC.md section 3)";
  let description = [{
    Recomputes `p_cmp = exp(scale * <q, kc> - lse)` from the compressed
    keys `kc: [B, Nc, HKV, Dk]` and the compressed branch's `lse`, maps it to
    selection-block scores (paper Eq. 9 with SPEC's overlap indexing), sums
    them over the G query heads of each KV head (Eq. 10), and returns the `n`
    best candidate blocks `j <= t / l_sel` per token and KV head, forced
    blocks (`j < init` and the `local` most recent) first, as
    `idx: i32 [B, T, HKV, n]` sorted ascending and padded with -1.
    Not differentiable.
  }];
  let arguments = (ins NSA_Tensor:$q, NSA_Tensor:$k, NSA_Tensor:$lse,
                       NSA_ConfigAttr:$config);
  let results = (outs NSA_Tensor:$idx);
  let assemblyFormat = [{
    $q `,` $k `,` $lse `config` $config attr-dict
    `:` functional-type(operands, results)
  }];
}

def NSA_SelectedAttentionOp : NSA_Op<"selected_attention"> {
  let summary = "attention over the selected blocks (SPEC.md section 4)";
  let description = [{
    `o[t]` is softmax attention of `q[t]` over the tokens `u <= t` inside the
    `l_sel`-token blocks listed in `idx[t, h]` (entries -1 are skipped).
    Returns `o: [B, T, HQ, Dv]` and `lse: f32 [B, T, HQ]`.
  }];
  let arguments = (ins NSA_Tensor:$q, NSA_Tensor:$k, NSA_Tensor:$v,
                       NSA_Tensor:$idx, NSA_ConfigAttr:$config);
  let results = (outs NSA_Tensor:$o, NSA_Tensor:$lse);
  let assemblyFormat = [{
    $q `,` $k `,` $v `,` $idx `config` $config attr-dict
    `:` functional-type(operands, results)
  }];
}

def NSA_WindowAttentionOp : NSA_Op<"window_attention"> {
  let summary = "sliding-window attention (SPEC.md section 5)";
  let description = [{
    `o[t]` is softmax attention of `q[t]` over `u in [max(0, t-w+1), t]`.
    Returns `o: [B, T, HQ, Dv]` and `lse: f32 [B, T, HQ]`.
  }];
  let arguments = (ins NSA_Tensor:$q, NSA_Tensor:$k, NSA_Tensor:$v,
                       NSA_ConfigAttr:$config);
  let results = (outs NSA_Tensor:$o, NSA_Tensor:$lse);
  let assemblyFormat = [{
    $q `,` $k `,` $v `config` $config attr-dict
    `:` functional-type(operands, results)
  }];
}

def NSA_CombineOp : NSA_Op<"combine"> {
  let summary = "gated sum of the three branches (SPEC.md section 6)";
  let description = [{
    `o[t, hq] = g[t, hq, 0] * cmp + g[t, hq, 1] * slc + g[t, hq, 2] * win`
    with gates `g: [B, T, HQ, 3]` and branch outputs `[B, T, HQ, Dv]`.
  }];
  let arguments = (ins NSA_Tensor:$gates, NSA_Tensor:$cmp, NSA_Tensor:$slc,
                       NSA_Tensor:$win);
  let results = (outs NSA_Tensor:$o);
  let assemblyFormat = [{
    $gates `,` $cmp `,` $slc `,` $win attr-dict
    `:` functional-type(operands, results)
  }];
}

def NSA_AttentionOp : NSA_Op<"attention", [AttrSizedOperandSegments]> {
  let summary = "the whole NSA layer core (SPEC.md sections 1-6)";
  let description = [{
    Compression, compressed attention, selection, selected and window
    attention and the gated combination in one op; `nsa-decompose` rewrites
    it into those ops.

    `keys`/`values` hold either one tensor shared by the three branches or
    three, in the order (cmp, slc, win). `mode` picks the compressor; for
    `linear`, `weights` holds `(W_k: [HKV, l*Dk, Dk], W_v: [HKV, l*Dv, Dv])`
    and the optional `pe` holds `(PE_k: [HKV, l, Dk], PE_v: [HKV, l, Dv])`.
    `mean` takes neither.

    After `o` it may return the forward's intermediates that the backward
    needs, `saved`: none, or all nine of (kc, vc, o_cmp, lse_cmp, idx,
    o_slc, lse_slc, o_win, lse_win) (the compressed keys and values
    [B, Nc, HKV, D], each branch's output [B, T, HQ, Dv] and f32 lse
    [B, T, HQ], and the selection [B, T, HKV, n] i32). A training step passes
    them to `nsa.attention_grad`, which then recomputes nothing.

    ```mlir
    %o = nsa.attention %q keys(%k) values(%v) gates %g compress mean
        config <l = 32, d = 16, l_sel = 64, n = 16, init = 1, local = 2, w = 512>
        : (tensor<1x1000x16x64xbf16>, tensor<1x1000x4x64xbf16>,
           tensor<1x1000x4x64xbf16>, tensor<1x1000x16x3xbf16>) -> tensor<1x1000x16x64xbf16>
    ```
  }];
  let arguments = (ins NSA_Tensor:$q, Variadic<NSA_Tensor>:$keys,
                       Variadic<NSA_Tensor>:$values, NSA_Tensor:$gates,
                       NSA_CompressMode:$mode, Variadic<NSA_Tensor>:$weights,
                       Variadic<NSA_Tensor>:$pe, NSA_ConfigAttr:$config);
  let results = (outs NSA_Tensor:$o, Variadic<NSA_Tensor>:$saved);
  let assemblyFormat = [{
    $q `keys` `(` $keys `)` `values` `(` $values `)` `gates` $gates
    `compress` $mode (`weights` `(` $weights^ `)`)? (`pe` `(` $pe^ `)`)?
    `config` $config attr-dict `:` functional-type(operands, results)
  }];
}

//===----------------------------------------------------------------------===//
// Backward (SPEC.md section 7)
//===----------------------------------------------------------------------===//

def NSA_CompressGradOp : NSA_Op<"compress_grad", [AttrSizedOperandSegments]> {
  let summary = "backward of nsa.compress";
  let description = [{
    Given the forward's operands and `d_result: [B, Nc, H, D]`, returns one
    gradient per differentiable operand, in operand order and of the
    operand's type: `d_input: [B, T, H, D]`, then `d_weight` when there is a
    weight and `d_pe` when there is a pe (`linear` only).
  }];
  let arguments = (ins NSA_CompressMode:$mode, NSA_Tensor:$input,
                       Optional<NSA_Tensor>:$weight, Optional<NSA_Tensor>:$pe,
                       NSA_Tensor:$d_result, NSA_ConfigAttr:$config);
  // One variadic group: its split follows from the operands, which the
  // declarative format cannot express for several result groups.
  let results = (outs Variadic<NSA_Tensor>:$grads);
  let assemblyFormat = [{
    $mode $input (`weight` $weight^)? (`pe` $pe^)? `grad` $d_result
    `config` $config attr-dict `:` functional-type(operands, results)
  }];
  let extraClassDeclaration = [{
    ::mlir::Value getDInput() { return getGrads()[0]; }
    ::mlir::Value getDWeight() {
      return getWeight() ? ::mlir::Value(getGrads()[1]) : ::mlir::Value();
    }
    ::mlir::Value getDPe() {
      return getPe() ? ::mlir::Value(getGrads()[getWeight() ? 2 : 1])
                     : ::mlir::Value();
    }
  }];
}

class NSA_AttentionGradOp<string mnemonic, string fwd> : NSA_Op<mnemonic> {
  let summary = "backward of nsa." # fwd;
  let description = [{
    Takes the forward's operands, its saved `o` and `lse`, and the output
    cotangent `d_o: [B, T, HQ, Dv]`; returns `d_q`, `d_k`, `d_v` shaped like
    `q`, `k`, `v`. The softmax is recomputed from `lse` (nothing of size
    `[T, keys]` is saved).
  }];
  let results = (outs NSA_Tensor:$d_q, NSA_Tensor:$d_k, NSA_Tensor:$d_v);
}

def NSA_CompressedAttentionGradOp
    : NSA_AttentionGradOp<"compressed_attention_grad", "compressed_attention"> {
  let arguments = (ins NSA_Tensor:$q, NSA_Tensor:$k, NSA_Tensor:$v,
                       NSA_Tensor:$o, NSA_Tensor:$lse, NSA_Tensor:$d_o,
                       NSA_ConfigAttr:$config);
  let assemblyFormat = [{
    $q `,` $k `,` $v `,` $o `,` $lse `grad` $d_o `config` $config attr-dict
    `:` functional-type(operands, results)
  }];
}

def NSA_SelectedAttentionGradOp
    : NSA_AttentionGradOp<"selected_attention_grad", "selected_attention"> {
  let arguments = (ins NSA_Tensor:$q, NSA_Tensor:$k, NSA_Tensor:$v,
                       NSA_Tensor:$idx, NSA_Tensor:$o, NSA_Tensor:$lse,
                       NSA_Tensor:$d_o, NSA_ConfigAttr:$config);
  let assemblyFormat = [{
    $q `,` $k `,` $v `,` $idx `,` $o `,` $lse `grad` $d_o `config` $config
    attr-dict `:` functional-type(operands, results)
  }];
}

def NSA_WindowAttentionGradOp
    : NSA_AttentionGradOp<"window_attention_grad", "window_attention"> {
  let arguments = (ins NSA_Tensor:$q, NSA_Tensor:$k, NSA_Tensor:$v,
                       NSA_Tensor:$o, NSA_Tensor:$lse, NSA_Tensor:$d_o,
                       NSA_ConfigAttr:$config);
  let assemblyFormat = [{
    $q `,` $k `,` $v `,` $o `,` $lse `grad` $d_o `config` $config attr-dict
    `:` functional-type(operands, results)
  }];
}

def NSA_CombineGradOp : NSA_Op<"combine_grad"> {
  let summary = "backward of nsa.combine";
  let description = [{
    Returns `d_gates[t, hq, c] = <d_o[t, hq], o_c[t, hq]>` and
    `d_c = g[., c] * d_o` for each branch c in (cmp, slc, win).
  }];
  let arguments = (ins NSA_Tensor:$gates, NSA_Tensor:$cmp, NSA_Tensor:$slc,
                       NSA_Tensor:$win, NSA_Tensor:$d_o);
  let results = (outs NSA_Tensor:$d_gates, NSA_Tensor:$d_cmp,
                      NSA_Tensor:$d_slc, NSA_Tensor:$d_win);
  let assemblyFormat = [{
    $gates `,` $cmp `,` $slc `,` $win `grad` $d_o attr-dict
    `:` functional-type(operands, results)
  }];
}

def NSA_AttentionGradOp : NSA_Op<"attention_grad", [AttrSizedOperandSegments]> {
  let summary = "backward of nsa.attention";
  let description = [{
    Takes `nsa.attention`'s operands and the output cotangent `d_o`; returns
    one gradient per differentiable operand, in operand order and of the
    operand's type: `d_q`, one per `keys`, one per `values` (a shared K/V
    receives the sum of the three branches' gradients), `d_gates`, one per
    `weights` and one per `pe`. `nsa-decompose` rewrites it into the branch
    `*_grad` ops, fed by `saved` (the nine intermediates `nsa.attention`
    returns after `o`) when given and by a recomputed forward otherwise.
  }];
  let arguments = (ins NSA_Tensor:$q, Variadic<NSA_Tensor>:$keys,
                       Variadic<NSA_Tensor>:$values, NSA_Tensor:$gates,
                       NSA_CompressMode:$mode, Variadic<NSA_Tensor>:$weights,
                       Variadic<NSA_Tensor>:$pe, Variadic<NSA_Tensor>:$saved,
                       NSA_Tensor:$d_o, NSA_ConfigAttr:$config);
  // One variadic group, split by the operand segments (see compress_grad).
  let results = (outs Variadic<NSA_Tensor>:$grads);
  let assemblyFormat = [{
    $q `keys` `(` $keys `)` `values` `(` $values `)` `gates` $gates
    `compress` $mode (`weights` `(` $weights^ `)`)? (`pe` `(` $pe^ `)`)?
    (`saved` `(` $saved^ `)`)? `grad` $d_o `config` $config attr-dict
    `:` functional-type(operands, results)
  }];
  let extraClassDeclaration = [{
    ::mlir::Value getDQ() { return getGrads()[0]; }
    ::mlir::ValueRange getDKeys() {
      return getGrads().slice(1, getKeys().size());
    }
    ::mlir::ValueRange getDValues() {
      return getGrads().slice(1 + getKeys().size(), getValues().size());
    }
    ::mlir::Value getDGates() {
      return getGrads()[1 + getKeys().size() + getValues().size()];
    }
    ::mlir::ValueRange getDWeights() {
      return getGrads().slice(2 + getKeys().size() + getValues().size(),
                              getWeights().size());
    }
    ::mlir::ValueRange getDPe() {
      return getGrads().slice(2 + getKeys().size() + getValues().size() +
                                  getWeights().size(),
                              getPe().size());
    }
    /// q, keys, values, gates, weights, pe: what has a gradient.
    size_t getNumDifferentiableOperands() {
      return 2 + getKeys().size() + getValues().size() + getWeights().size() +
             getPe().size();
    }
  }];
}

#endif // NSA_OPS_TD
