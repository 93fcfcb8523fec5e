// RUN: nsa-opt %s -split-input-file -nsa-tile="query-tokens=8 key-tokens=16 compress-tokens=4 select-blocks=2" -verify-diagnostics | FileCheck %s
// RUN: nsa-opt %s -split-input-file -nsa-tile="target=sm90a" -verify-diagnostics | FileCheck %s --check-prefix=SM90
// RUN: not nsa-opt %s -split-input-file -nsa-tile="target=gpu" 2>&1 | FileCheck %s --check-prefix=TARGET
// RUN: not nsa-opt %s -split-input-file -nsa-tile="key-tokens=-1" 2>&1 | FileCheck %s --check-prefix=NEGATIVE

// TARGET: error: nsa-tile: unknown target 'gpu' (expected cpu or sm90a)
// NEGATIVE: error: nsa-tile: key-tokens must be >= 0 (0: the target's), got -1

// On sm90a a query tile has at least 64 rows whatever G (here 16 tokens x
// G = 4) and a step covers 64 keys; the programs that scan every compressed
// token (compressed attention, selection) take 128 rows (scan-rows).
// SM90-LABEL: func.func @window
// SM90: tile.load {{.*}} {row_dims = array<i64: 1, 3>} : tensor<1x100x2x4x32xbf16> -> tensor<64x32xbf16>
// SM90: tile.load {{.*}} : tensor<1x100x2x32xbf16> -> tensor<64x32xbf16>
// SM90-LABEL: func.func @compressed
// SM90: tile.load {{.*}} {row_dims = array<i64: 1, 3>} : tensor<1x100x2x1x32xf16> -> tensor<128x32xf16>

// Window: one program per (b, KV head, 8 tokens); tile rows are the 8 tokens
// times G = 4 heads; keys from max(0, t0 - w + 1) rounded down to 16 up to
// min(T, t0 + 8); the mask t - w < u <= t as one unsigned test,
// u + (w - 1) - t >u w - 1. The masked products go to online_softmax with
// the base-2 scale (32^-0.5 * log2 e).
// CHECK-LABEL: func.func @window
// CHECK-DAG: %[[W1:.*]] = arith.constant dense<39> : tensor<32x16xi32>
// CHECK-DAG: %[[NINF:.*]] = arith.constant 0xFF800000 : f32
// CHECK: %{{.*}}:2 = tile.program grid(%c1, %c2, %c13) outs(%{{.*}}, %{{.*}} : tensor<1x100x2x4x16xbf16>, tensor<1x100x2x4xf32>)
// CHECK: ^bb0(%[[B:.*]]: index, %[[H:.*]]: index, %[[M:.*]]: index, %[[O:.*]]: tensor<1x100x2x4x16xbf16>, %[[L:.*]]: tensor<1x100x2x4xf32>):
// CHECK: %[[T0:.*]] = arith.muli %[[M]], %c8
// CHECK: %[[Q:.*]] = tile.load %{{.*}}[%[[B]], %[[T0]], %[[H]], %c0, %c0] {row_dims = array<i64: 1, 3>} : tensor<1x100x2x4x32xbf16> -> tensor<32x32xbf16>
// CHECK: %[[ROW:.*]] = tile.range %[[T0]] {divisor = 4 : i64} : tensor<32xi32>
// CHECK: scf.for %[[J:.*]] = %{{.*}} to %{{.*}} step %c16 iter_args
// CHECK:   %[[K:.*]] = tile.load %{{.*}}[%[[B]], %[[J]], %[[H]], %c0] {row_dims = array<i64: 1>} : tensor<1x100x2x32xbf16> -> tensor<16x32xbf16>
// CHECK:   %[[V:.*]] = tile.load {{.*}} -> tensor<16x16xbf16>
// CHECK:   %[[SHIFTED:.*]] = arith.addi %{{.*}}, %[[W1]]
// CHECK:   %[[REL:.*]] = arith.subi %[[SHIFTED]], %{{.*}}
// CHECK:   %[[MASK:.*]] = arith.cmpi ugt, %[[REL]], %[[W1]]
// CHECK:   %[[S:.*]] = tile.dot %[[Q]], %[[K]] {rhs_transposed}
// CHECK:   %[[S2:.*]] = tile.masked_fill %[[S]], %[[MASK]], %[[NINF]]
// CHECK:   tile.online_softmax %[[S2]], %[[V]], {{.*}} {scale = 0.255034864 : f32}
// CHECK: %[[OUT:.*]], %[[LSE:.*]] = tile.softmax_finalize
// CHECK: tile.store %[[OUT]] into %[[O]][%[[B]], %[[T0]], %[[H]], %c0, %c0] {row_dims = array<i64: 1, 3>}
// CHECK: tile.store %[[LSE]] into %[[L]][%[[B]], %[[T0]], %[[H]], %c0] {row_dims = array<i64: 1, 3>}
// Each program is labelled with the op it implements (the kernel manifest's
// "op").
// CHECK: } {label = "window_attention"}
func.func @window(%q: tensor<1x100x2x4x32xbf16>, %k: tensor<1x100x2x32xbf16>, %v: tensor<1x100x2x16xbf16>)
    -> (tensor<1x100x2x4x16xbf16>, tensor<1x100x2x4xf32>) {
  %o, %lse = nsa.window_attention %q, %k, %v config <w = 40>
      : (tensor<1x100x2x4x32xbf16>, tensor<1x100x2x32xbf16>, tensor<1x100x2x16xbf16>)
      -> (tensor<1x100x2x4x16xbf16>, tensor<1x100x2x4xf32>)
  return %o, %lse : tensor<1x100x2x4x16xbf16>, tensor<1x100x2x4xf32>
}

// -----

// Compressed: keys are compressed tokens; token i is hidden from row t when
// i*d + l - 1 > t (or i < 0: selection's windows); i >= Nc needs no test of
// its own (causality).
// CHECK-LABEL: func.func @compressed
// CHECK-DAG: %[[D:.*]] = arith.constant dense<16> : tensor<8x16xi32>
// CHECK-DAG: %[[LM1:.*]] = arith.constant dense<31> : tensor<8x16xi32>
// CHECK-DAG: %[[NEVER:.*]] = arith.constant dense<2147483647> : tensor<8x16xi32>
// CHECK: tile.program grid
// CHECK: scf.for %[[I:.*]] = %c0 to %{{.*}} step %c16
// CHECK:   %[[COL:.*]] = tile.broadcast %{{.*}} {dim = 0 : i64}
// CHECK:   %[[MUL:.*]] = arith.muli %[[COL]], %[[D]]
// CHECK:   %[[LAST:.*]] = arith.addi %[[MUL]], %[[LM1]]
// CHECK:   %[[BEFORE:.*]] = arith.cmpi slt, %[[COL]], %{{.*}}
// CHECK:   %[[COVER:.*]] = arith.select %[[BEFORE]], %[[NEVER]], %[[LAST]]
// CHECK:   arith.cmpi sgt, %[[COVER]], %{{.*}}
// CHECK:   tile.online_softmax
// CHECK: } {label = "compressed_attention"}
func.func @compressed(%q: tensor<1x100x2x1x32xf16>, %kc: tensor<1x5x2x32xf16>, %vc: tensor<1x5x2x16xf16>)
    -> (tensor<1x100x2x1x16xf16>, tensor<1x100x2x1xf32>) {
  %o, %lse = nsa.compressed_attention %q, %kc, %vc config <>
      : (tensor<1x100x2x1x32xf16>, tensor<1x5x2x32xf16>, tensor<1x5x2x16xf16>)
      -> (tensor<1x100x2x1x16xf16>, tensor<1x100x2x1xf32>)
  return %o, %lse : tensor<1x100x2x1x16xf16>, tensor<1x100x2x1xf32>
}

// -----

// Selected: one token per program by default; a loop over its n blocks,
// skipping -1, loading the l_sel = 64 keys of each.
// CHECK-LABEL: func.func @selected
// CHECK: tile.program grid(%c1, %c2, %c100)
// CHECK: %[[IDX:.*]] = tile.load %{{.*}} {row_dims = array<i64: 1>} : tensor<1x100x2x4xi32> -> tensor<1x4xi32>
// CHECK: scf.for %[[R:.*]] = %c0 to %c1 step %c1
// CHECK:   scf.for %[[SLOT:.*]] = %c0 to %c4 step %c1
// CHECK:     %[[J:.*]] = tensor.extract %[[IDX]][%[[R]], %[[SLOT]]] : tensor<1x4xi32>
// CHECK:     scf.if
// CHECK:       tile.load {{.*}} -> tensor<64x32xbf16>
// CHECK:       tile.online_softmax
// CHECK: } {label = "selected_attention"}
func.func @selected(%q: tensor<1x100x2x2x32xbf16>, %k: tensor<1x100x2x32xbf16>, %v: tensor<1x100x2x16xbf16>,
    %idx: tensor<1x100x2x4xi32>) -> (tensor<1x100x2x2x16xbf16>, tensor<1x100x2x2xf32>) {
  %o, %lse = nsa.selected_attention %q, %k, %v, %idx config <n = 4>
      : (tensor<1x100x2x2x32xbf16>, tensor<1x100x2x32xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x4xi32>)
      -> (tensor<1x100x2x2x16xbf16>, tensor<1x100x2x2xf32>)
  return %o, %lse : tensor<1x100x2x2x16xbf16>, tensor<1x100x2x2xf32>
}

// -----

// Selection: 2 blocks per step overlap 4*2 + 1 = 9 compressed tokens
// (l=32, d=16, l_sel=64); the overlap matrix (f16, exact) holds SPEC's
// 1,2,2,2,1 weights and maps each row's p (rounded to f16) to blocks;
// tile.group_sum then sums the G = 2 rows of each token; top-n is merged per
// step. With init = 1 and local = 2 every compressed token the mask would
// drop weighs only on forced or future blocks, so p is only kept finite
// (min(., 0) before exp2) and no mask is built.
// CHECK-LABEL: func.func @select
// CHECK-DAG: %[[W:.*]] = arith.constant dense<{{\[}}[1.000000e+00, 0.000000e+00], [2.000000e+00, 0.000000e+00], [2.000000e+00, 0.000000e+00], [2.000000e+00, 0.000000e+00], [1.000000e+00, 1.000000e+00], [0.000000e+00, 2.000000e+00], [0.000000e+00, 2.000000e+00], [0.000000e+00, 2.000000e+00], [0.000000e+00, 1.000000e+00]]> : tensor<9x2xf16>
// CHECK: tile.program grid
// CHECK: tile.load {{.*}} -> tensor<16xf32>
// CHECK: scf.for {{.*}} step %c2
// CHECK:   tile.load {{.*}} -> tensor<9x32xbf16>
// CHECK:   %[[LOGP:.*]] = arith.minnumf
// CHECK:   %[[P:.*]] = math.exp2 %[[LOGP]]
// CHECK-NOT: tile.masked_fill
// CHECK:   %[[P16:.*]] = arith.truncf %[[P]] : tensor<16x9xf32> to tensor<16x9xf16>
// CHECK:   %[[ROWS:.*]] = tile.dot %[[P16]], %[[W]] : tensor<16x9xf16>, tensor<9x2xf16> -> tensor<16x2xf32>
// CHECK:   tile.group_sum %[[ROWS]] : tensor<16x2xf32> -> tensor<8x2xf32>
// CHECK:   tile.topk_merge
// CHECK: %[[IDX:.*]] = tile.topk_finalize
// CHECK: tile.store %[[IDX]] into {{.*}} : tensor<8x16xi32> into tensor<1x100x2x16xi32>
// CHECK: } {label = "select_blocks"}
// On sm90a three select_blocks programs should share a multiprocessor.
// SM90-LABEL: func.func @select
// SM90: } {label = "select_blocks", min_resident = 3 : i64}
func.func @select(%q: tensor<1x100x2x2x32xbf16>, %kc: tensor<1x5x2x32xbf16>, %lse: tensor<1x100x2x2xf32>)
    -> tensor<1x100x2x16xi32> {
  %idx = nsa.select_blocks %q, %kc, %lse config <>
      : (tensor<1x100x2x2x32xbf16>, tensor<1x5x2x32xbf16>, tensor<1x100x2x2xf32>) -> tensor<1x100x2x16xi32>
  return %idx : tensor<1x100x2x16xi32>
}

// -----

// With local = 1 the compressed tokens of t's own block that are not yet
// complete overlap block floor(t/l') - 1, a candidate: p is masked.
// CHECK-LABEL: func.func @select_local1
// CHECK:   %[[P:.*]] = math.exp2
// CHECK:   %[[MASKED:.*]] = tile.masked_fill %[[P]]
// CHECK:   arith.truncf %[[MASKED]]
// CHECK:   tile.group_sum
func.func @select_local1(%q: tensor<1x100x2x2x32xbf16>, %kc: tensor<1x5x2x32xbf16>, %lse: tensor<1x100x2x2xf32>)
    -> tensor<1x100x2x16xi32> {
  %idx = nsa.select_blocks %q, %kc, %lse config <local = 1>
      : (tensor<1x100x2x2x32xbf16>, tensor<1x5x2x32xbf16>, tensor<1x100x2x2xf32>) -> tensor<1x100x2x16xi32>
  return %idx : tensor<1x100x2x16xi32>
}

// -----

// Linear compression: for each of the l = 32 positions of a block, gather
// the rows (i0 + c)*d + r, add PE row r, multiply by W rows [r*D, r*D + D).
// CHECK-LABEL: func.func @compress_linear
// CHECK: tile.program grid(%c1, %c2, %c2)
// CHECK: scf.for %[[R:.*]] = %c0 to %c32 step %c1
// CHECK:   tile.gather %{{.*}}[%{{.*}}, %{{.*}}] rows %{{.*}} {row_dims = array<i64: 1>} : tensor<1x100x2x16xbf16>, tensor<4xi32> -> tensor<4x16xbf16>
// CHECK:   tile.load %{{.*}}[%{{.*}}, %[[R]], %c0] {row_dims = array<i64: 2>} : tensor<2x32x16xbf16> -> tensor<16xbf16>
// CHECK:   tile.load {{.*}} {row_dims = array<i64: 1>} : tensor<2x512x16xbf16> -> tensor<16x16xbf16>
// CHECK:   tile.dot {{.*}} : tensor<4x16xf32>, tensor<16x16xf32> -> tensor<4x16xf32>
// CHECK: tile.store {{.*}} : tensor<4x16xbf16> into tensor<1x5x2x16xbf16>
// CHECK: } {label = "compress"}
func.func @compress_linear(%k: tensor<1x100x2x16xbf16>, %w: tensor<2x512x16xbf16>, %pe: tensor<2x32x16xbf16>)
    -> tensor<1x5x2x16xbf16> {
  %c = nsa.compress linear %k weight %w pe %pe config <>
      : (tensor<1x100x2x16xbf16>, tensor<2x512x16xbf16>, tensor<2x32x16xbf16>) -> tensor<1x5x2x16xbf16>
  return %c : tensor<1x5x2x16xbf16>
}

// -----

// Mean compression with dynamic T: Nc = max(0, (T - l + d) floordiv d).
// CHECK-LABEL: func.func @compress_mean
// CHECK: %[[T:.*]] = tensor.dim %{{.*}}, %c1
// CHECK: arith.floordivsi
// CHECK: tile.program
// CHECK-NOT: tile.dot
// CHECK: arith.mulf %{{.*}}, %{{.*}} : tensor<4x16xf32>
func.func @compress_mean(%k: tensor<1x?x2x16xbf16>) -> tensor<1x?x2x16xbf16> {
  %c = nsa.compress mean %k config <> : (tensor<1x?x2x16xbf16>) -> tensor<1x?x2x16xbf16>
  return %c : tensor<1x?x2x16xbf16>
}

// -----

// Combine: gates column c times branch c, on tiles whose rows are 8 / HQ = 2
// tokens with all their HQ = 4 heads (row dimensions T and HQ: a token's
// rows are contiguous in memory).
// CHECK-LABEL: func.func @combine
// CHECK: tile.program grid(%c1, %c50)
// CHECK: %[[T0:.*]] = arith.muli %{{.*}}, %c2
// CHECK: tile.load %{{.*}}[%{{.*}}, %[[T0]], %c0, %c0] {row_dims = array<i64: 1, 2>} : tensor<1x100x4x3xbf16> -> tensor<8xbf16>
// CHECK: tile.load %{{.*}}[%{{.*}}, %[[T0]], %c0, %c0] {row_dims = array<i64: 1, 2>} : tensor<1x100x4x16xbf16> -> tensor<8x16xbf16>
// CHECK: tile.load %{{.*}}[%{{.*}}, %[[T0]], %c0, %c1] {row_dims = array<i64: 1, 2>} : tensor<1x100x4x3xbf16> -> tensor<8xbf16>
// CHECK: tile.load %{{.*}}[%{{.*}}, %[[T0]], %c0, %c2] {row_dims = array<i64: 1, 2>} : tensor<1x100x4x3xbf16> -> tensor<8xbf16>
// CHECK: tile.store {{.*}} {row_dims = array<i64: 1, 2>} : tensor<8x16xbf16> into tensor<1x100x4x16xbf16>
// CHECK: } {label = "combine"}
func.func @combine(%g: tensor<1x100x4x3xbf16>, %a: tensor<1x100x4x16xbf16>, %b: tensor<1x100x4x16xbf16>,
    %c: tensor<1x100x4x16xbf16>) -> tensor<1x100x4x16xbf16> {
  %o = nsa.combine %g, %a, %b, %c
      : (tensor<1x100x4x3xbf16>, tensor<1x100x4x16xbf16>, tensor<1x100x4x16xbf16>, tensor<1x100x4x16xbf16>)
      -> tensor<1x100x4x16xbf16>
  return %o : tensor<1x100x4x16xbf16>
}

// -----

// The combination of a branch computed last (its other operands exist
// before it) is fused into that branch's program: a third output, the
// gates of the program's rows loaded per column, the other branches' rows
// loaded, and no combine program.
// CHECK-LABEL: func.func @combine_fused
// CHECK-DAG: %[[G5:.*]] = tensor.expand_shape %{{.*}} {{\[\[}}0], [1], [2, 3], [4]] output_shape [1, 100, 2, 2, 3]
// CHECK-DAG: %[[C5:.*]] = tensor.expand_shape %{{.*}} {{\[\[}}0], [1], [2, 3], [4]] output_shape [1, 100, 2, 2, 16]
// CHECK: %[[P:.*]]:3 = tile.program grid(%c1, %c2, %c100) outs({{.*}}, {{.*}}, {{.*}} : tensor<1x100x2x2x16xbf16>, tensor<1x100x2x2xf32>, tensor<1x100x2x2x16xbf16>)
// CHECK:   scf.for
// CHECK:   tile.softmax_finalize
// CHECK:   tile.load %[[G5]][{{.*}}, %c0] {row_dims = array<i64: 1, 3>} : tensor<1x100x2x2x3xbf16> -> tensor<2xbf16>
// CHECK:   tile.load %[[C5]][{{.*}}] {row_dims = array<i64: 1, 3>} : tensor<1x100x2x2x16xbf16> -> tensor<2x16xbf16>
// CHECK:   tile.load %[[G5]][{{.*}}, %c1] {row_dims = array<i64: 1, 3>}
// CHECK:   tile.load %[[G5]][{{.*}}, %c2] {row_dims = array<i64: 1, 3>}
// CHECK:   tile.store {{.*}} : tensor<2x16xbf16> into tensor<1x100x2x2x16xbf16>
// CHECK: } {label = "selected_attention"}
// CHECK: %[[O:.*]] = tensor.collapse_shape %[[P]]#2
// CHECK-NOT: label = "combine"
// CHECK: return %[[O]]
func.func @combine_fused(%g: tensor<1x100x4x3xbf16>, %cmp: tensor<1x100x4x16xbf16>,
    %win: tensor<1x100x4x16xbf16>, %q: tensor<1x100x2x2x32xbf16>, %k: tensor<1x100x2x32xbf16>,
    %v: tensor<1x100x2x16xbf16>, %idx: tensor<1x100x2x4xi32>) -> tensor<1x100x4x16xbf16> {
  %o, %lse = nsa.selected_attention %q, %k, %v, %idx config <n = 4>
      : (tensor<1x100x2x2x32xbf16>, tensor<1x100x2x32xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x4xi32>)
      -> (tensor<1x100x2x2x16xbf16>, tensor<1x100x2x2xf32>)
  %slc = tensor.collapse_shape %o [[0], [1], [2, 3], [4]] : tensor<1x100x2x2x16xbf16> into tensor<1x100x4x16xbf16>
  %out = nsa.combine %g, %cmp, %slc, %win
      : (tensor<1x100x4x3xbf16>, tensor<1x100x4x16xbf16>, tensor<1x100x4x16xbf16>, tensor<1x100x4x16xbf16>)
      -> tensor<1x100x4x16xbf16>
  return %out : tensor<1x100x4x16xbf16>
}

// -----

// A branch whose combination needs a branch computed after it keeps its two
// outputs; the combination gets its own program.
// CHECK-LABEL: func.func @combine_unfused
// CHECK: tile.program {{.*}} outs({{.*}}, {{.*}} : tensor<1x100x2x2x16xbf16>, tensor<1x100x2x2xf32>)
// CHECK: } {label = "window_attention"}
// CHECK: tile.program {{.*}} outs({{.*}}, {{.*}} : tensor<1x100x2x2x16xbf16>, tensor<1x100x2x2xf32>)
// CHECK: } {label = "selected_attention"}
// CHECK: } {label = "combine"}
// CHECK: } {label = "combine"}
func.func @combine_unfused(%g: tensor<1x100x4x3xbf16>, %cmp: tensor<1x100x4x16xbf16>,
    %q: tensor<1x100x2x2x32xbf16>, %k: tensor<1x100x2x32xbf16>, %v: tensor<1x100x2x16xbf16>,
    %idx: tensor<1x100x2x4xi32>) -> (tensor<1x100x4x16xbf16>, tensor<1x100x4x16xbf16>) {
  %ow, %lw = nsa.window_attention %q, %k, %v config <>
      : (tensor<1x100x2x2x32xbf16>, tensor<1x100x2x32xbf16>, tensor<1x100x2x16xbf16>)
      -> (tensor<1x100x2x2x16xbf16>, tensor<1x100x2x2xf32>)
  %win = tensor.collapse_shape %ow [[0], [1], [2, 3], [4]] : tensor<1x100x2x2x16xbf16> into tensor<1x100x4x16xbf16>
  %os, %ls = nsa.selected_attention %q, %k, %v, %idx config <n = 4>
      : (tensor<1x100x2x2x32xbf16>, tensor<1x100x2x32xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x4xi32>)
      -> (tensor<1x100x2x2x16xbf16>, tensor<1x100x2x2xf32>)
  %slc = tensor.collapse_shape %os [[0], [1], [2, 3], [4]] : tensor<1x100x2x2x16xbf16> into tensor<1x100x4x16xbf16>
  // The window's program cannot compute it (the selected branch comes
  // after); the selected one reads %win twice, so it does not either.
  %out = nsa.combine %g, %cmp, %slc, %slc
      : (tensor<1x100x4x3xbf16>, tensor<1x100x4x16xbf16>, tensor<1x100x4x16xbf16>, tensor<1x100x4x16xbf16>)
      -> tensor<1x100x4x16xbf16>
  %out2 = nsa.combine %g, %cmp, %win, %win
      : (tensor<1x100x4x3xbf16>, tensor<1x100x4x16xbf16>, tensor<1x100x4x16xbf16>, tensor<1x100x4x16xbf16>)
      -> tensor<1x100x4x16xbf16>
  return %out, %out2 : tensor<1x100x4x16xbf16>, tensor<1x100x4x16xbf16>
}

// -----

func.func @ungrouped(%q: tensor<1x100x4x32xbf16>, %k: tensor<1x100x2x32xbf16>, %v: tensor<1x100x2x16xbf16>)
    -> tensor<1x100x4x16xbf16> {
  // expected-error @+1 {{nsa-tile: cannot tile this op: it needs the grouped form of nsa-group-gqa}}
  %o, %lse = nsa.window_attention %q, %k, %v config <>
      : (tensor<1x100x4x32xbf16>, tensor<1x100x2x32xbf16>, tensor<1x100x2x16xbf16>)
      -> (tensor<1x100x4x16xbf16>, tensor<1x100x4xf32>)
  return %o : tensor<1x100x4x16xbf16>
}
