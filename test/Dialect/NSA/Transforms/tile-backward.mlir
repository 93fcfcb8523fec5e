// RUN: nsa-opt %s -split-input-file -nsa-tile="query-tokens=8 key-tokens=16 compress-tokens=32" -verify-diagnostics | FileCheck %s

// The backward programs of nsa-tile (docs/tile.md, "Backward programs"):
// deterministic, every output element stored by one program instance. Shapes
// are grouped (nsa-group-gqa): q [B=1, T=100, HKV=2, G=4, Dk=32], Dv = 16, so
// a query tile of 8 tokens has 32 rows.

// Window, w = 16. d_q: a program per query tile, over the keys of the
// forward, recomputing p from lse (base 2) under the forward's mask, with
// Delta = rowsum(d_o * o), which it also stores (f32, like lse) for the
// d_k/d_v programs; d_q = scale * sum ds . k.
// d_k, d_v: a program per block of 16 keys, over the query tiles
// [j0 rounded down to 8, min(T, j0 + 16 + w - 1)); d_k += ds^T . q and
// d_v += p^T . d_o contract over the 32 rows (8 tokens x 4 heads), computed
// key-major: p^T from k . q^T and dp^T from v . d_o^T ([16 keys, 32 rows]),
// so q and d_o are right operands only (no lhs_transposed product).
// CHECK-LABEL: func.func @window
// CHECK-DAG: %[[LOG2E:.*]] = arith.constant dense<1.44269502> : tensor<32xf32>
// CHECK-DAG: %[[SCALE:.*]] = arith.constant dense<0.176776692> : tensor<32x32xf32>
// CHECK: %[[DQ:.*]]:2 = tile.program grid(%c1, %c2, %c13) outs(%{{.*}}, %{{.*}} : tensor<1x100x2x4x32xbf16>, tensor<1x100x2x4xf32>)
// CHECK:   %[[Q:.*]] = tile.load %arg0{{.*}} {row_dims = array<i64: 1, 3>} : tensor<1x100x2x4x32xbf16> -> tensor<32x32xbf16>
// CHECK:   %[[LSE:.*]] = tile.load %arg4{{.*}} -> tensor<32xf32>
// CHECK:   %[[DO:.*]] = tile.load %arg5{{.*}} -> tensor<32x16xbf16>
// CHECK:   %[[O:.*]] = tile.load %arg3{{.*}} -> tensor<32x16xbf16>
// CHECK:   %[[LSE2:.*]] = arith.mulf %[[LSE]], %[[LOG2E]]
// CHECK:   %[[DELTA:.*]] = tile.reduce sum
// CHECK:   tile.store %[[DELTA]] into {{.*}} {row_dims = array<i64: 1, 3>} : tensor<32xf32> into tensor<1x100x2x4xf32>
// CHECK:   %[[ACC:.*]] = scf.for %{{.*}} step %c16 iter_args(%[[IT:.*]] = %{{.*}}) -> (tensor<32x32xf32>)
// CHECK:     %[[K:.*]] = tile.load %arg1
// CHECK:     %[[V:.*]] = tile.load %arg2
// CHECK:     %[[MASK:.*]] = arith.cmpi ugt, %{{.*}}, %{{.*}} : tensor<32x16xi32>
// CHECK:     %[[S:.*]] = tile.dot %[[Q]], %[[K]] {rhs_transposed}
// CHECK:     %[[S2:.*]] = arith.subf
// CHECK:     %[[E:.*]] = math.exp2 %[[S2]]
// CHECK:     %[[P:.*]] = tile.masked_fill %[[E]], %{{.*}}
// CHECK:     %[[DP:.*]] = tile.dot %[[DO]], %[[V]] {rhs_transposed} : tensor<32x16xbf16>, tensor<16x16xbf16> -> tensor<32x16xf32>
// CHECK:     %[[DD:.*]] = arith.subf %[[DP]]
// CHECK:     %[[DS:.*]] = arith.mulf %[[P]], %[[DD]]
// CHECK:     %[[KF:.*]] = arith.extf %[[K]]
// CHECK:     %[[DQT:.*]] = tile.dot %[[DS]], %[[KF]] : tensor<32x16xf32>, tensor<16x32xf32> -> tensor<32x32xf32>
// CHECK:     arith.addf %[[IT]], %[[DQT]]
// CHECK:   %[[SC:.*]] = arith.mulf %[[ACC]], %[[SCALE]]
// CHECK:   %[[T:.*]] = arith.truncf %[[SC]]
// CHECK:   tile.store %[[T]] into {{.*}} {row_dims = array<i64: 1, 3>} : tensor<32x32xbf16> into tensor<1x100x2x4x32xbf16>
// CHECK: } {label = "window_attention_grad"}
// CHECK: %[[DKV:.*]]:2 = tile.program grid(%c1, %c2, %c7) outs(%{{.*}}, %{{.*}} : tensor<1x100x2x32xbf16>, tensor<1x100x2x16xbf16>)
// CHECK:   %[[J0:.*]] = arith.muli %{{.*}}, %c16
// CHECK:   %[[KB:.*]] = tile.load %arg1[%{{.*}}, %[[J0]], %{{.*}}, %c0] {row_dims = array<i64: 1>} : tensor<1x100x2x32xbf16> -> tensor<16x32xbf16>
// CHECK:   %[[HI0:.*]] = arith.addi %[[J0]], %c31
// CHECK:   %[[HI:.*]] = arith.minsi %[[HI0]], %c100
// CHECK:   scf.for %{{.*}} = %{{.*}} to %[[HI]] step %c8
// CHECK-NOT: tile.load %arg3
// CHECK:     tile.load %[[DQ]]#1{{.*}} : tensor<1x100x2x4xf32> -> tensor<32xf32>
// CHECK:     tile.dot %[[KB]], %{{.*}} {rhs_transposed} : tensor<16x32xbf16>, tensor<32x32xbf16> -> tensor<16x32xf32>
// CHECK:     tile.dot %{{.*}}, %{{.*}} {rhs_transposed} : tensor<16x16xbf16>, tensor<32x16xbf16> -> tensor<16x32xf32>
// CHECK:     tile.dot %{{.*}}, %{{.*}} : tensor<16x32xf32>, tensor<32x32xf32> -> tensor<16x32xf32>
// CHECK:     tile.dot %{{.*}}, %{{.*}} : tensor<16x32xf32>, tensor<32x16xf32> -> tensor<16x16xf32>
// CHECK:   tile.store {{.*}} : tensor<16x32xbf16> into tensor<1x100x2x32xbf16>
// CHECK:   tile.store {{.*}} : tensor<16x16xbf16> into tensor<1x100x2x16xbf16>
// CHECK: } {label = "window_attention_grad"}
// CHECK: return %[[DQ]]#0, %[[DKV]]#0, %[[DKV]]#1
func.func @window(%q: tensor<1x100x2x4x32xbf16>, %k: tensor<1x100x2x32xbf16>, %v: tensor<1x100x2x16xbf16>,
    %o: tensor<1x100x2x4x16xbf16>, %lse: tensor<1x100x2x4xf32>, %d_o: tensor<1x100x2x4x16xbf16>)
    -> (tensor<1x100x2x4x32xbf16>, tensor<1x100x2x32xbf16>, tensor<1x100x2x16xbf16>) {
  %dq, %dk, %dv = nsa.window_attention_grad %q, %k, %v, %o, %lse grad %d_o config <w = 16>
      : (tensor<1x100x2x4x32xbf16>, tensor<1x100x2x32xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x4x16xbf16>, tensor<1x100x2x4xf32>, tensor<1x100x2x4x16xbf16>)
      -> (tensor<1x100x2x4x32xbf16>, tensor<1x100x2x32xbf16>, tensor<1x100x2x16xbf16>)
  return %dq, %dk, %dv : tensor<1x100x2x4x32xbf16>, tensor<1x100x2x32xbf16>, tensor<1x100x2x16xbf16>
}

// -----

// Compressed (paper config, Nc = 5): d_q visits compressed tokens
// [0, min(Nc, (min(T, t0 + 8) - l)/d + 1)) with the forward's mask
// (i*d + l - 1 > t). Every key block is seen by all later
// queries, so its queries are split into grad-segments = 2 (the cpu
// default) ranges of 50 tokens: the program of (block from i0, segment s)
// visits the query tiles from (i0*d + l - 1) rounded down to 8, starting in
// [50s, 50s + 50), and stores f32 partial d_kc/d_vc; the final program adds
// the two partials in order, scales d_kc and rounds.
// CHECK-LABEL: func.func @compressed
// CHECK-DAG: %[[D:.*]] = arith.constant dense<16> : tensor<32x16xi32>
// CHECK-DAG: %[[LM1:.*]] = arith.constant dense<31> : tensor<32x16xi32>
// CHECK: tile.program grid(%c1, %c2, %c13)
// CHECK:   arith.minsi %{{.*}}, %c5
// CHECK:   scf.for %{{.*}} = %c0 to %{{.*}} step %c16
// CHECK:     %[[COL:.*]] = tile.broadcast %{{.*}} {dim = 0 : i64} : tensor<16xi32> -> tensor<32x16xi32>
// CHECK:     %[[MUL:.*]] = arith.muli %[[COL]], %[[D]]
// CHECK:     %[[LAST:.*]] = arith.addi %[[MUL]], %[[LM1]]
// CHECK:     %[[COVER:.*]] = arith.select %{{.*}}, %{{.*}}, %[[LAST]]
// CHECK:     arith.cmpi sgt, %[[COVER]], %{{.*}}
// CHECK: %[[P:.*]]:2 = tile.program grid(%c1, %c2, %c2) outs(%{{.*}}, %{{.*}} : tensor<1x2x5x2x32xf32>, tensor<1x2x5x2x16xf32>)
// CHECK:   %[[S:.*]] = arith.remsi %{{.*}}, %c2
// CHECK:   %[[BLK:.*]] = arith.floordivsi %{{.*}}, %c2
// CHECK:   %[[I0:.*]] = arith.muli %[[BLK]], %c16
// CHECK:   %[[FROM:.*]] = arith.muli %[[S]], %c50
// CHECK:   %[[TO:.*]] = arith.addi %[[FROM]], %c50
// CHECK:   %[[F0:.*]] = arith.muli %[[I0]], %c16
// CHECK:   %[[F1:.*]] = arith.addi %[[F0]], %c31
// CHECK:   %[[F2:.*]] = arith.floordivsi %[[F1]], %c8
// CHECK:   %[[LO:.*]] = arith.muli %[[F2]], %c8
// CHECK:   %[[GAP:.*]] = arith.subi %[[FROM]], %[[LO]]
// CHECK:   %[[POS:.*]] = arith.maxsi %[[GAP]], %c0
// CHECK:   %[[SKIP:.*]] = arith.ceildivsi %[[POS]], %c8
// CHECK:   %[[SKIPT:.*]] = arith.muli %[[SKIP]], %c8
// CHECK:   %[[FIRST:.*]] = arith.addi %[[LO]], %[[SKIPT]]
// CHECK:   %[[HI:.*]] = arith.minsi %[[TO]], %c100
// CHECK:   scf.for %{{.*}} = %[[FIRST]] to %[[HI]] step %c8
// CHECK:     tile.dot %{{.*}}, %{{.*}} : tensor<16x32xf32>, tensor<32x32xf32> -> tensor<16x32xf32>
// CHECK:     tile.dot %{{.*}}, %{{.*}} : tensor<16x32xf32>, tensor<32x16xf32> -> tensor<16x16xf32>
// CHECK:   tile.store %{{.*}} into %{{.*}}[%{{.*}}, %[[S]], %[[I0]], %{{.*}}, %c0] {row_dims = array<i64: 2>} : tensor<16x32xf32> into tensor<1x2x5x2x32xf32>
// CHECK:   tile.store %{{.*}} into %{{.*}}[%{{.*}}, %[[S]], %[[I0]], %{{.*}}, %c0] {row_dims = array<i64: 2>} : tensor<16x16xf32> into tensor<1x2x5x2x16xf32>
// CHECK: tile.program grid(%c1, %c2, %c1) outs(%{{.*}}, %{{.*}} : tensor<1x5x2x32xbf16>, tensor<1x5x2x16xbf16>)
// CHECK:   scf.for %[[SEG:.*]] = %c0 to %c2 step %c1
// CHECK:     tile.load %[[P]]#0[%{{.*}}, %[[SEG]], %{{.*}}, %{{.*}}, %c0] {row_dims = array<i64: 2>} : tensor<1x2x5x2x32xf32> -> tensor<16x32xf32>
// CHECK:     tile.load %[[P]]#1[%{{.*}}, %[[SEG]], %{{.*}}, %{{.*}}, %c0] {row_dims = array<i64: 2>} : tensor<1x2x5x2x16xf32> -> tensor<16x16xf32>
// CHECK:   tile.store %{{.*}} : tensor<16x32xbf16> into tensor<1x5x2x32xbf16>
// CHECK:   tile.store %{{.*}} : tensor<16x16xbf16> into tensor<1x5x2x16xbf16>
// CHECK-NOT: tile.program
func.func @compressed(%q: tensor<1x100x2x4x32xbf16>, %kc: tensor<1x5x2x32xbf16>, %vc: tensor<1x5x2x16xbf16>,
    %o: tensor<1x100x2x4x16xbf16>, %lse: tensor<1x100x2x4xf32>, %d_o: tensor<1x100x2x4x16xbf16>)
    -> (tensor<1x100x2x4x32xbf16>, tensor<1x5x2x32xbf16>, tensor<1x5x2x16xbf16>) {
  %dq, %dk, %dv = nsa.compressed_attention_grad %q, %kc, %vc, %o, %lse grad %d_o config <>
      : (tensor<1x100x2x4x32xbf16>, tensor<1x5x2x32xbf16>, tensor<1x5x2x16xbf16>, tensor<1x100x2x4x16xbf16>, tensor<1x100x2x4xf32>, tensor<1x100x2x4x16xbf16>)
      -> (tensor<1x100x2x4x32xbf16>, tensor<1x5x2x32xbf16>, tensor<1x5x2x16xbf16>)
  return %dq, %dk, %dv : tensor<1x100x2x4x32xbf16>, tensor<1x5x2x32xbf16>, tensor<1x5x2x16xbf16>
}

// -----

// Selected (l' = 64, n = 4). d_q: one token per program as in the forward,
// each slot of its idx row (skipping -1), rows of other tokens masked.
// d_k, d_v: a program per selection block j (64 keys) scans the queries from
// the block's start in chunks of 64 tokens: one gather of the chunk's idx
// rows (one per token, not per row) finds the tokens that chose j;
// tile.compact appends them to a queue carried across chunks (its tile rows
// and its length) and counts them; each full tile of 8 tokens (32 rows with
// G = 4) is gathered (q, lse, d_o, Delta: the G heads of each token) and
// visited, and the visit compacts the queue's next tile; one more trip
// after the last chunk flushes the partial tile left in the queue through
// the same visit. No stored index, no atomics. The initial block
// (init = 1) is chosen by every token: the main program leaves it (its query
// range is empty), a program per (block, segment) of 50 queries stores its f32
// partials, and the final program adds them for block 0 and takes the main
// program's result for the others.
// CHECK-LABEL: func.func @selected
// CHECK: tile.program grid(%c1, %c2, %c100)
// CHECK:   %[[IDX:.*]] = tile.load %arg3{{.*}} : tensor<1x100x2x4xi32> -> tensor<1x4xi32>
// CHECK:   scf.for %{{.*}} = %c0 to %c1 step %c1
// CHECK:     %[[OTHER:.*]] = arith.cmpi ne
// CHECK:     scf.for %{{.*}} = %c0 to %c4 step %c1
// CHECK:       tensor.extract %[[IDX]]
// CHECK:       scf.if
// CHECK:         tile.load %arg1{{.*}} -> tensor<64x32xbf16>
// CHECK:         %[[SEEN:.*]] = arith.select %[[OTHER]], %{{.*}}, %{{.*}} : tensor<4xi1>, tensor<4xi32>
// CHECK:         tile.broadcast %[[SEEN]] {dim = 1 : i64} : tensor<4xi32> -> tensor<4x64xi32>
// CHECK:         tile.dot {{.*}} : tensor<4x64xf32>, tensor<64x32xf32> -> tensor<4x32xf32>
// CHECK: %[[MAIN:.*]]:2 = tile.program grid(%c1, %c2, %c2) outs(%{{.*}}, %{{.*}} : tensor<1x100x2x32xbf16>, tensor<1x100x2x16xbf16>)
// CHECK:   %[[J0:.*]] = arith.muli %[[BLK:.*]], %c64
// CHECK:   %[[WHOLE:.*]] = arith.cmpi sge, %[[BLK]], %c1
// CHECK:   %[[TO:.*]] = arith.select %[[WHOLE]], %c100, %c0
// CHECK:   %[[J:.*]] = arith.floordivsi %[[J0]], %c64
// CHECK:   %[[JI:.*]] = arith.index_cast %[[J]] : index to i32
// CHECK:   %[[HI:.*]] = arith.minsi %[[TO]], %c100
// CHECK:   %[[CHUNKS:.*]] = arith.ceildivsi %{{.*}}, %c64
// CHECK:   %[[TRIPS:.*]] = arith.addi %[[CHUNKS]], %c1
// CHECK:   scf.for %[[I:[^ ]+]] = %c0 to %[[TRIPS]] step %c1 iter_args(%{{[^ ]+}} = %{{[^ ]+}}, %{{[^ ]+}} = %{{[^ ]+}}, %[[QUEUE:[^ ]+]] = %{{[^ ]+}}, %[[QLEN:[^ ]+]] = %c0) -> (tensor<64x32xf32>, tensor<64x16xf32>, tensor<32xi32>, index)
// CHECK:     %[[C0:.*]] = arith.addi
// CHECK:     %[[FLUSH:.*]] = arith.cmpi eq, %[[I]], %[[CHUNKS]]
// CHECK:     %[[TOKS:.*]] = tile.range %[[C0]] : tensor<64xi32>
// CHECK:     %[[TCHOSEN:.*]] = tile.gather %arg3[%{{.*}}, %{{.*}}] rows %[[TOKS]] {row_dims = array<i64: 1>} : tensor<1x100x2x4xi32>, tensor<64xi32> -> tensor<64x4xi32>
// CHECK:     %[[JS:.*]] = tensor.splat %[[JI]] : tensor<64x4xi32>
// CHECK:     arith.cmpi eq, %[[TCHOSEN]], %[[JS]]
// CHECK:     %[[PERTOK:.*]] = tile.reduce sum %{{.*}} : tensor<64x4xf32> -> tensor<64xf32>
// CHECK:     %[[HIT:.*]] = arith.cmpf ogt, %[[PERTOK]]
// CHECK:     %[[CHOSEN:.*]] = arith.andi %{{.*}}, %[[HIT]] : tensor<64xi1>
// CHECK:     %[[HEAD:.*]], %[[COUNT:.*]] = tile.compact %[[TOKS]], %[[CHOSEN]], %{{.*}} : tensor<64xi32>, tensor<64xi1>, tensor<32xi32>
// CHECK:     %[[TILE0:.*]] = arith.select %{{.*}}, %[[QUEUE]], %[[HEAD]] : tensor<32xi1>, tensor<32xi32>
// CHECK:     %[[TOTAL:.*]] = arith.addi %[[QLEN]], %[[COUNT]] : index
// CHECK:     %[[WHOLE_TILES:.*]] = arith.floordivsi %[[TOTAL]], %c8
// CHECK:     %[[ALL:.*]] = arith.ceildivsi %[[TOTAL]], %c8
// CHECK:     %[[FULL:.*]] = arith.select %[[FLUSH]], %[[ALL]], %[[WHOLE_TILES]]
// CHECK:     scf.for %[[S:[^ ]+]] = %c0 to %[[FULL]] step %c1 iter_args(%{{[^ ]+}} = %{{[^ ]+}}, %{{[^ ]+}} = %{{[^ ]+}}, %[[TILETOK:[^ ]+]] = %[[TILE0]])
// CHECK:         %[[ROWS:.*]] = arith.addi
// CHECK:         tile.gather %arg0[%{{.*}}, %{{.*}}] rows %[[ROWS]] {row_dims = array<i64: 1, 3>} : tensor<1x100x2x4x32xbf16>, tensor<32xi32> -> tensor<32x32xbf16>
// CHECK:         tile.gather %arg5[%{{.*}}, %{{.*}}] rows %[[ROWS]] {row_dims = array<i64: 1, 3>} : tensor<1x100x2x4xf32>, tensor<32xi32> -> tensor<32xf32>
// CHECK:         tile.gather %arg6[%{{.*}}, %{{.*}}] rows %[[ROWS]] {row_dims = array<i64: 1, 3>} : tensor<1x100x2x4x16xbf16>, tensor<32xi32> -> tensor<32x16xbf16>
// Key-major: s^T = k . q^T and dp^T = v . d_o^T ([keys, rows]), so d_v and
// d_k are plain products of p^T and ds^T.
// CHECK:         %[[SEEN:.*]] = arith.select %{{.*}}, %{{.*}}, %[[TILETOK]] : tensor<32xi1>, tensor<32xi32>
// CHECK:         tile.broadcast %[[SEEN]] {dim = 0 : i64} : tensor<32xi32> -> tensor<64x32xi32>
// CHECK:         tile.dot {{.*}} {rhs_transposed} : tensor<64x32xbf16>, tensor<32x32xbf16> -> tensor<64x32xf32>
// CHECK:         tile.dot {{.*}} {rhs_transposed} : tensor<64x16xbf16>, tensor<32x16xbf16> -> tensor<64x32xf32>
// CHECK:         tile.dot {{.*}} : tensor<64x32xf32>, tensor<32x32xf32> -> tensor<64x32xf32>
// CHECK:         tile.dot {{.*}} : tensor<64x32xf32>, tensor<32x16xf32> -> tensor<64x16xf32>
// The visit compacts the queue's next tile: row slot u = (s + 1) * 8 + r / G
// takes rank u - queued, or a queued token when u < queued.
// CHECK:         %[[S1:.*]] = arith.addi %[[S]], %c1 : index
// CHECK:         arith.muli %[[S1]], %c8 : index
// CHECK:         %[[U:.*]] = arith.addi %{{.*}}, %{{.*}} : tensor<32xi32>
// CHECK:         %[[RANKS:.*]] = arith.subi %[[U]], %{{.*}} : tensor<32xi32>
// CHECK:         %[[NEXTC:.*]], %{{.*}} = tile.compact %[[TOKS]], %[[CHOSEN]], %[[RANKS]] : tensor<64xi32>, tensor<64xi1>, tensor<32xi32>
// CHECK:         %[[QUEUED:.*]] = arith.cmpi slt, %[[U]], %{{.*}} : tensor<32xi32>
// CHECK:         %[[NEXT:.*]] = arith.select %[[QUEUED]], %[[QUEUE]], %[[NEXTC]] : tensor<32xi1>, tensor<32xi32>
// CHECK:         scf.yield %{{.*}}, %{{.*}}, %[[NEXT]] : tensor<64x32xf32>, tensor<64x16xf32>, tensor<32xi32>
// The queue keeps what the full tiles leave.
// CHECK:       %[[USED:.*]] = arith.muli %[[FULL]], %c8 : index
// CHECK:       %[[LEFT:.*]] = arith.subi %[[TOTAL]], %[[USED]] : index
// CHECK:       %[[QLEFT:.*]] = arith.maxsi %[[LEFT]], %c0 : index
// CHECK:       scf.yield %{{.*}}#0, %{{.*}}#1, %{{.*}}#2, %[[QLEFT]]
// CHECK: %[[P:.*]]:2 = tile.program grid(%c1, %c2, %c2) outs(%{{.*}}, %{{.*}} : tensor<1x2x64x2x32xf32>, tensor<1x2x64x2x16xf32>)
// CHECK:   tile.store {{.*}} {row_dims = array<i64: 2>} : tensor<64x32xf32> into tensor<1x2x64x2x32xf32>
// CHECK: tile.program grid(%c1, %c2, %c2) outs(%{{.*}}, %{{.*}} : tensor<1x100x2x32xbf16>, tensor<1x100x2x16xbf16>)
// CHECK:   %[[MK:.*]] = tile.load %[[MAIN]]#0
// CHECK:   %[[MV:.*]] = tile.load %[[MAIN]]#1
// CHECK:   %[[SEGD:.*]] = arith.cmpi slt, %{{.*}}, %c1
// CHECK:   %[[R:.*]]:2 = scf.if %[[SEGD]]
// CHECK:     scf.for %[[SEG:.*]] = %c0 to %c2 step %c1
// CHECK:       tile.load %[[P]]#0[%{{.*}}, %[[SEG]], %{{.*}}, %{{.*}}, %c0]
// CHECK:   } else {
// CHECK:     scf.yield %[[MK]], %[[MV]]
// CHECK:   tile.store %[[R]]#0
// CHECK:   tile.store %[[R]]#1
// CHECK-NOT: tile.program
func.func @selected(%q: tensor<1x100x2x4x32xbf16>, %k: tensor<1x100x2x32xbf16>, %v: tensor<1x100x2x16xbf16>,
    %idx: tensor<1x100x2x4xi32>, %o: tensor<1x100x2x4x16xbf16>, %lse: tensor<1x100x2x4xf32>, %d_o: tensor<1x100x2x4x16xbf16>)
    -> (tensor<1x100x2x4x32xbf16>, tensor<1x100x2x32xbf16>, tensor<1x100x2x16xbf16>) {
  %dq, %dk, %dv = nsa.selected_attention_grad %q, %k, %v, %idx, %o, %lse grad %d_o config <n = 4>
      : (tensor<1x100x2x4x32xbf16>, tensor<1x100x2x32xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x4xi32>, tensor<1x100x2x4x16xbf16>, tensor<1x100x2x4xf32>, tensor<1x100x2x4x16xbf16>)
      -> (tensor<1x100x2x4x32xbf16>, tensor<1x100x2x32xbf16>, tensor<1x100x2x16xbf16>)
  return %dq, %dk, %dv : tensor<1x100x2x4x32xbf16>, tensor<1x100x2x32xbf16>, tensor<1x100x2x16xbf16>
}

// -----

// Linear compression with PE (l = 32, d = 16, D = 16). d_input: a program
// per phase s of 32 strides (compress-tokens; 1 tile x 16 phases), looping
// over the l/d = 2 compressed tokens covering each: the d_kc rows
// m0 - a .. m0 - a + 31 times W_{a*d+s}^T, a [32, 16] product stored with
// row stride d = 16 from token m0*d + s. d_weight and d_pe: a program per
// (head, position r), over batch and every compressed token: x^T . d_kc with
// x = k[i*d + r] + PE[r], and the sum of d_kc (as a product by ones) times
// W_r^T for d_pe[r].
// CHECK-LABEL: func.func @compress_linear
// CHECK: %[[DIN:.*]] = tile.program grid(%c1, %c2, %c16) outs(%{{.*}} : tensor<1x100x2x16xbf16>)
// CHECK:   %[[S:.*]] = arith.remsi %{{.*}}, %c16
// CHECK:   %[[TILE:.*]] = arith.floordivsi %{{.*}}, %c16
// CHECK:   %[[M0:.*]] = arith.muli %[[TILE]], %c32
// CHECK:   %[[ACC:.*]] = scf.for %[[A:.*]] = %c0 to %c2 step %c1 iter_args(%[[IT:.*]] = %{{.*}}) -> (tensor<32x16xf32>)
// CHECK:     %[[FIRST:.*]] = arith.subi %[[M0]], %[[A]]
// CHECK:     %[[AD:.*]] = arith.muli %[[A]], %c16
// CHECK:     %[[POSW:.*]] = arith.addi %[[AD]], %[[S]]
// CHECK:     %[[WROW:.*]] = arith.muli %[[POSW]], %c16
// CHECK:     %[[W:.*]] = tile.load %arg1[%{{.*}}, %[[WROW]], %c0] {row_dims = array<i64: 1>} : tensor<2x512x16xbf16> -> tensor<16x16xbf16>
// CHECK:     %[[R:.*]] = tile.range %[[FIRST]] : tensor<32xi32>
// CHECK:     %[[G:.*]] = tile.gather %arg3[%{{.*}}, %{{.*}}] rows %[[R]] {row_dims = array<i64: 1>} : tensor<1x5x2x16xbf16>, tensor<32xi32> -> tensor<32x16xbf16>
// CHECK:     tile.dot %[[G]], %[[W]] {rhs_transposed} : tensor<32x16xbf16>, tensor<16x16xbf16> -> tensor<32x16xf32>
// CHECK:   %[[U:.*]] = arith.muli %[[M0]], %c16
// CHECK:   %[[U0:.*]] = arith.addi %[[U]], %[[S]]
// CHECK:   %[[CT:.*]] = arith.truncf %[[ACC]]
// CHECK:   tile.store %[[CT]] into %{{.*}}[%{{.*}}, %[[U0]], %{{.*}}, %c0] {row_dims = array<i64: 1>, row_stride = 16 : i64} : tensor<32x16xbf16> into tensor<1x100x2x16xbf16>
// CHECK: %[[DP:.*]]:2 = tile.program grid(%c2, %c32) outs(%{{.*}}, %{{.*}} : tensor<2x512x16xbf16>, tensor<2x32x16xbf16>)
// CHECK: ^bb0(%[[H:.*]]: index, %[[POS:.*]]: index,
// CHECK:   %[[PE:.*]] = tile.load %arg2[%[[H]], %[[POS]], %c0] {row_dims = array<i64: 2>} : tensor<2x32x16xbf16> -> tensor<16xbf16>
// CHECK:   %[[SUMS:.*]]:2 = scf.for %{{.*}} = %c0 to %c1 step %c1
// CHECK:     scf.for %{{.*}} = %c0 to %c5 step %c32
// CHECK:       %[[DKC:.*]] = tile.load %arg3
// CHECK:       %[[X:.*]] = tile.gather %arg0
// CHECK:       %[[XP:.*]] = arith.addf
// CHECK:       tile.dot %[[XP]], %{{.*}} {lhs_transposed} : tensor<32x16xf32>, tensor<32x16xf32> -> tensor<16x16xf32>
// CHECK:       tile.dot %{{.*}}, %{{.*}} : tensor<1x32xf32>, tensor<32x16xf32> -> tensor<1x16xf32>
// CHECK:   %[[ROW:.*]] = arith.muli %[[POS]], %c16
// CHECK:   tile.store %{{.*}} into %{{.*}}[%[[H]], %[[ROW]], %c0] {row_dims = array<i64: 1>} : tensor<16x16xbf16> into tensor<2x512x16xbf16>
// CHECK:   %[[WR:.*]] = tile.load %arg1[%[[H]], %[[ROW]], %c0]
// CHECK:   tile.dot %[[SUMS]]#1, %{{.*}} {rhs_transposed} : tensor<1x16xf32>, tensor<16x16xf32> -> tensor<1x16xf32>
// CHECK:   tile.store %{{.*}} into %{{.*}}[%[[H]], %[[POS]], %c0] {row_dims = array<i64: 1>} : tensor<1x16xbf16> into tensor<2x32x16xbf16>
// CHECK: } {label = "compress_grad"}
// CHECK: return %[[DIN]], %[[DP]]#0, %[[DP]]#1
func.func @compress_linear(%k: tensor<1x100x2x16xbf16>, %w: tensor<2x512x16xbf16>, %pe: tensor<2x32x16xbf16>, %dkc: tensor<1x5x2x16xbf16>)
    -> (tensor<1x100x2x16xbf16>, tensor<2x512x16xbf16>, tensor<2x32x16xbf16>) {
  %dk, %dw, %dpe = nsa.compress_grad linear %k weight %w pe %pe grad %dkc config <>
      : (tensor<1x100x2x16xbf16>, tensor<2x512x16xbf16>, tensor<2x32x16xbf16>, tensor<1x5x2x16xbf16>)
      -> (tensor<1x100x2x16xbf16>, tensor<2x512x16xbf16>, tensor<2x32x16xbf16>)
  return %dk, %dw, %dpe : tensor<1x100x2x16xbf16>, tensor<2x512x16xbf16>, tensor<2x32x16xbf16>
}

// -----

// Mean compression: the d_kc row of each covering compressed token repeated
// for the d tokens of its stride (a gather with divisor d), times 1/l.
// CHECK-LABEL: func.func @compress_mean
// CHECK-DAG: %[[INV:.*]] = arith.constant dense<3.125000e-02> : tensor<32x16xf32>
// CHECK: tile.program grid(%c1, %c2, %c4) outs(%{{.*}} : tensor<1x100x2x16xf16>)
// CHECK:   scf.for
// CHECK:     %[[R:.*]] = tile.range %{{.*}} {divisor = 16 : i64} : tensor<32xi32>
// CHECK:     tile.gather %arg1[%{{.*}}, %{{.*}}] rows %[[R]] {row_dims = array<i64: 1>} : tensor<1x5x2x16xf16>, tensor<32xi32> -> tensor<32x16xf16>
// CHECK:   arith.mulf %{{.*}}, %[[INV]]
// CHECK:   tile.store {{.*}} : tensor<32x16xf16> into tensor<1x100x2x16xf16>
// CHECK-NOT: tile.program
func.func @compress_mean(%k: tensor<1x100x2x16xf16>, %dkc: tensor<1x5x2x16xf16>) -> tensor<1x100x2x16xf16> {
  %dk = nsa.compress_grad mean %k grad %dkc config <>
      : (tensor<1x100x2x16xf16>, tensor<1x5x2x16xf16>) -> tensor<1x100x2x16xf16>
  return %dk : tensor<1x100x2x16xf16>
}

// -----

// Combine: per (b, 8 / HQ = 1 token with its HQ = 8 heads as rows),
// d_gates[c] = rowsum(d_o * o_c) (a rank-1 tile stored into column c) and
// d_c = g_c * d_o.
// CHECK-LABEL: func.func @combine
// CHECK: tile.program grid(%c1, %c100) outs(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} : tensor<1x100x8x3xbf16>, tensor<1x100x8x16xbf16>, tensor<1x100x8x16xbf16>, tensor<1x100x8x16xbf16>)
// CHECK: ^bb0(%{{.*}}: index, %{{.*}}: index, %[[DG:.*]]: tensor<1x100x8x3xbf16>, %[[D0:.*]]: tensor<1x100x8x16xbf16>, %[[D1:.*]]: tensor<1x100x8x16xbf16>, %[[D2:.*]]: tensor<1x100x8x16xbf16>):
// CHECK:   tile.load {{.*}} {row_dims = array<i64: 1, 2>} : tensor<1x100x8x16xbf16> -> tensor<8x16xbf16>
// CHECK:   tile.reduce sum %{{.*}} : tensor<8x16xf32> -> tensor<8xf32>
// CHECK:   tile.store %{{.*}} into %[[DG]][%{{.*}}, %{{.*}}, %c0, %c0] {row_dims = array<i64: 1, 2>} : tensor<8xbf16> into tensor<1x100x8x3xbf16>
// CHECK:   tile.store %{{.*}} into %[[D0]]
// CHECK:   tile.store %{{.*}} into %[[DG]][%{{.*}}, %{{.*}}, %c0, %c1]
// CHECK:   tile.store %{{.*}} into %[[D1]]
// CHECK:   tile.store %{{.*}} into %[[DG]][%{{.*}}, %{{.*}}, %c0, %c2]
// CHECK:   tile.store %{{.*}} into %[[D2]]
// CHECK: } {label = "combine_grad"}
func.func @combine(%g: tensor<1x100x8x3xbf16>, %a: tensor<1x100x8x16xbf16>, %b: tensor<1x100x8x16xbf16>,
    %c: tensor<1x100x8x16xbf16>, %d_o: tensor<1x100x8x16xbf16>)
    -> (tensor<1x100x8x3xbf16>, tensor<1x100x8x16xbf16>, tensor<1x100x8x16xbf16>, tensor<1x100x8x16xbf16>) {
  %dg, %da, %db, %dc = nsa.combine_grad %g, %a, %b, %c grad %d_o
      : (tensor<1x100x8x3xbf16>, tensor<1x100x8x16xbf16>, tensor<1x100x8x16xbf16>, tensor<1x100x8x16xbf16>, tensor<1x100x8x16xbf16>)
      -> (tensor<1x100x8x3xbf16>, tensor<1x100x8x16xbf16>, tensor<1x100x8x16xbf16>, tensor<1x100x8x16xbf16>)
  return %dg, %da, %db, %dc : tensor<1x100x8x3xbf16>, tensor<1x100x8x16xbf16>, tensor<1x100x8x16xbf16>, tensor<1x100x8x16xbf16>
}

// -----

// An attention grad op must be grouped first, like the forward's.
func.func @ungrouped(%q: tensor<1x40x4x32xbf16>, %k: tensor<1x40x2x32xbf16>, %v: tensor<1x40x2x16xbf16>,
    %o: tensor<1x40x4x16xbf16>, %lse: tensor<1x40x4xf32>, %d_o: tensor<1x40x4x16xbf16>)
    -> tensor<1x40x4x32xbf16> {
  // expected-error @+1 {{nsa-tile: cannot tile this op: it needs the grouped form of nsa-group-gqa}}
  %dq, %dk, %dv = nsa.window_attention_grad %q, %k, %v, %o, %lse grad %d_o config <>
      : (tensor<1x40x4x32xbf16>, tensor<1x40x2x32xbf16>, tensor<1x40x2x16xbf16>, tensor<1x40x4x16xbf16>, tensor<1x40x4xf32>, tensor<1x40x4x16xbf16>)
      -> (tensor<1x40x4x32xbf16>, tensor<1x40x2x32xbf16>, tensor<1x40x2x16xbf16>)
  return %dq : tensor<1x40x4x32xbf16>
}
