//===- NSABase.td - NSA dialect, enums and attributes ------*- tablegen -*-===//
//
// The `nsa` dialect models DeepSeek's Native Sparse Attention at tensor level.
// Semantics: shared/SPEC.md, which every op documentation below refers to by
// section number.
//
//===----------------------------------------------------------------------===//

#ifndef NSA_BASE_TD
#define NSA_BASE_TD

include "mlir/IR/OpBase.td"
include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/EnumAttr.td"

def NSA_Dialect : Dialect {
  let name = "nsa";
  let cppNamespace = "::mlir::nsa";
  let summary = "Native Sparse Attention at tensor level";
  let description = [{
    Ops for the pieces of Native Sparse Attention (Yuan et al., 2025): token
    compression, compressed attention, block selection, selected-block
    attention, sliding-window attention, the gated combination, the composite
    `nsa.attention`, and the backward of each.

    Every op has value semantics on ranked tensors in the `[B, T, H, D]` layout
    (batch, tokens, heads, head dim). Query heads `HQ` and key/value heads `HKV`
    follow GQA: `HQ % HKV == 0`, query head `hq` reads KV head `hq / (HQ/HKV)`.
    Activations are `bf16` or `f16`; log-sum-exps are `f32`; block indices
    are `i32`. Dimensions may be dynamic (`?`); verifiers check every rule
    whose sizes are static.

    The hyper-parameters of NSA travel in one `#nsa.config` attribute so that
    every op of one layer agrees on them.
  }];
  let useDefaultAttributePrinterParser = 1;
  let extraClassDeclaration = [{
    /// Registers the attributes; lives beside their storage classes.
    void registerAttributes();
  }];
}

def NSA_CompressMode : I32EnumAttr<"CompressMode",
    "how a block of l tokens becomes one compressed token", [
      I32EnumAttrCase<"Linear", 0, "linear">,
      I32EnumAttrCase<"Mean", 1, "mean">
    ]> {
  let cppNamespace = "::mlir::nsa";
}

def NSA_ConfigAttr : AttrDef<NSA_Dialect, "Config"> {
  let mnemonic = "config";
  let summary = "NSA hyper-parameters (SPEC.md, Configuration)";
  let description = [{
    `l` compression block length, `d` compression stride, `l_sel` selection
    block size (the paper's l'), `n` selected blocks per query, `init` forced
    initial blocks, `local` forced local blocks, `w` sliding window and
    `scale` the score scale. Keys may be given in any order; an omitted key
    takes the paper's default (l=32, d=16, l_sel=64, n=16, init=1, local=2,
    w=512); an omitted `scale` means `1/sqrt(Dk)`, resolved by each op from
    its query's head dim.

    Rules (each rejected with a message that names it): every value fits
    in int32, every size is positive (`init` may be 0; `local >= 1` so that
    the block holding t is always selected), `d` divides `l`, `d` divides
    `l_sel`, `l <= l_sel`, `n >= init + local`, `w >= 1`, and `scale` is
    finite and positive.

    Example: `#nsa.config<l = 32, d = 16, l_sel = 64, n = 16, init = 1,
    local = 2, w = 512>`.
  }];
  let parameters = (ins
    "int64_t":$l, "int64_t":$d, "int64_t":$l_sel, "int64_t":$n,
    "int64_t":$init, "int64_t":$local, "int64_t":$w,
    OptionalParameter<"::mlir::FloatAttr">:$scale);
  let hasCustomAssemblyFormat = 1;
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    /// The paper's configuration (SPEC.md, section 4.1 defaults).
    static ConfigAttr getPaperDefault(::mlir::MLIRContext *ctx);
    /// Number of compressed tokens for a sequence of `t` tokens:
    /// 0 if t < l, else floor((t - l) / d) + 1.
    int64_t getNumCompressed(int64_t t) const;
    /// Number of selection blocks covering `t` tokens: ceil(t / l_sel).
    int64_t getNumSelectionBlocks(int64_t t) const;
    /// The score scale, or 1/sqrt(headDim) when the config leaves it out.
    double getScaleOr(int64_t headDim) const;
  }];
}

#endif // NSA_BASE_TD
