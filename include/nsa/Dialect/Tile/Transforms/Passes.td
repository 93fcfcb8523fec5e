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

def ConvertTileToGPU : Pass<"convert-tile-to-gpu", "ModuleOp"> {
  let summary = "Compile tile programs to GPU kernels (mma.sync, sm_80+)";
  let description = [{
    Every `tile.program` of a function `@F` becomes a kernel `gpu.func`
    in `gpu.module @F_kernels`, one program instance per thread block, and
    the program itself is replaced by a `tile.launch` of that kernel. The
    kernel takes one `!llvm.ptr<1>` per tensor the program reads from
    outside (its `args`, in first-use order) and per `outs` operand; tensor
    constants are rebuilt inside.

    Tiles are distributed over the block's warps in the accumulator layout
    of `mma.sync.m16n8k16` (docs/gpu.md): warp w owns rows
    `16 * (w + W * i) + lane / 4 + {0, 8}`, lane owns columns
    `8 * j + 2 * (lane % 4) + {0, 1}`. Elementwise ops, broadcasts and
    masks are register-local; row reductions combine the four lanes of a
    row with shuffles; `tile.dot` with 16-bit right operands runs on tensor
    cores with its left operand in registers and its right operand staged
    in shared memory (a `tile.load` whose only consumers are such operands
    is copied straight from global to shared memory); f32 products run
    exactly on the CUDA cores. Cross-thread steps (top-n merging, element
    extraction) go through shared memory.
  }];
  let options = [
    Option<"minWarps", "min-warps", "int64_t", /*default=*/"1",
           "Warps per thread block at least (more warps than a program's rows "
           "need still share its copies to shared memory)">,
    Option<"maxWarps", "max-warps", "int64_t", /*default=*/"4",
           "Warps per thread block at most (fewer when a program's tiles have "
           "fewer rows)">,
    Option<"wgmma", "wgmma", "bool", /*default=*/"false",
           "Products of whole warpgroups (64-row blocks of 4-warp blocks) on "
           "sm_90a's wgmma, their right operands staged in its 128-byte "
           "swizzled layout (default: mma.sync, sm_80 and later)">,
  ];
  let dependentDialects = [
    "::mlir::arith::ArithDialect", "::mlir::gpu::GPUDialect",
    "::mlir::LLVM::LLVMDialect", "::mlir::NVVM::NVVMDialect",
    "::mlir::scf::SCFDialect", "::mlir::tensor::TensorDialect",
    "::mlir::nsa::tile::TileDialect"
  ];
}

#endif // NSA_DIALECT_TILE_TRANSFORMS_PASSES_TD
