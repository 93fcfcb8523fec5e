// RUN: nsa-opt %s -split-input-file -convert-tile-to-scf -verify-diagnostics \
// RUN: | FileCheck %s

// Grouped rows: row r of the tile is token t0 + r / 4 and head r % 4 of the
// query tensor; only the token can run out of bounds (dynamic T: tensor.dim),
// and a row out of bounds reads 0.
// CHECK-LABEL: func.func @load_grouped
// CHECK-SAME:    (%[[Q:.*]]: tensor<1x?x2x4x16xbf16>, %[[T0:.*]]: index, %[[H:.*]]: index)
// CHECK:         %[[C0:.*]] = arith.constant 0 : index
// CHECK:         %[[G:.*]] = tensor.generate {
// CHECK-NEXT:    ^bb0(%[[R:.*]]: index, %[[COL:.*]]: index):
// CHECK-NEXT:      %[[C4:.*]] = arith.constant 4 : index
// CHECK-NEXT:      %[[HEAD:.*]] = arith.remui %[[R]], %[[C4]]
// CHECK-NEXT:      %[[DT:.*]] = arith.divui %[[R]], %[[C4]]
// CHECK-NEXT:      %[[T:.*]] = arith.addi %[[T0]], %[[DT]]
// CHECK-NEXT:      %[[C1:.*]] = arith.constant 1 : index
// CHECK-NEXT:      %[[DIM:.*]] = tensor.dim %[[Q]], %[[C1]]
// CHECK-NEXT:      %[[IN:.*]] = arith.cmpi ult, %[[T]], %[[DIM]]
// CHECK-NEXT:      %[[V:.*]] = scf.if %[[IN]] -> (bf16) {
// CHECK-NEXT:        %[[E:.*]] = tensor.extract %[[Q]][%[[C0]], %[[T]], %[[H]], %[[HEAD]], %[[COL]]]
// CHECK-NEXT:        scf.yield %[[E]] : bf16
// CHECK-NEXT:      } else {
// CHECK-NEXT:        %[[ZERO:.*]] = arith.constant 0.000000e+00 : bf16
// CHECK-NEXT:        scf.yield %[[ZERO]] : bf16
// CHECK-NEXT:      }
// CHECK-NEXT:      tensor.yield %[[V]] : bf16
// CHECK-NEXT:    } : tensor<8x16xbf16>
// CHECK:         return %[[G]]
func.func @load_grouped(%q: tensor<1x?x2x4x16xbf16>, %t0: index, %h: index) -> tensor<8x16xbf16> {
  %c0 = arith.constant 0 : index
  %t = tile.load %q[%c0, %t0, %h, %c0, %c0] {row_dims = array<i64: 1, 3>} : tensor<1x?x2x4x16xbf16> -> tensor<8x16xbf16>
  return %t : tensor<8x16xbf16>
}

// -----

// A rank-1 tile has no column; a static bound is a constant.
// CHECK-LABEL: func.func @load_rank1
// CHECK-SAME:    (%[[X:.*]]: tensor<10xi32>, %[[T0:.*]]: index)
// CHECK:         tensor.generate {
// CHECK-NEXT:    ^bb0(%[[R:.*]]: index):
// CHECK-NEXT:      %[[T:.*]] = arith.addi %[[T0]], %[[R]]
// CHECK-NEXT:      %[[C10:.*]] = arith.constant 10 : index
// CHECK-NEXT:      %[[IN:.*]] = arith.cmpi ult, %[[T]], %[[C10]]
// CHECK-NEXT:      scf.if %[[IN]] -> (i32) {
// CHECK-NEXT:        tensor.extract %[[X]][%[[T]]]
// CHECK:           } else {
// CHECK-NEXT:        arith.constant 0 : i32
// CHECK:         } : tensor<4xi32>
func.func @load_rank1(%x: tensor<10xi32>, %t0: index) -> tensor<4xi32> {
  %t = tile.load %x[%t0] {row_dims = array<i64: 0>} : tensor<10xi32> -> tensor<4xi32>
  return %t : tensor<4xi32>
}

// -----

// The i32 row index is sign-extended, so -1 fails the unsigned bounds check
// like an index past the end.
// CHECK-LABEL: func.func @gather
// CHECK-SAME:    (%[[K:.*]]: tensor<1x?x2x32xbf16>, %[[B:.*]]: index, %[[H:.*]]: index, %[[ROWS:.*]]: tensor<16xi32>)
// CHECK:         tensor.generate {
// CHECK-NEXT:    ^bb0(%[[R:.*]]: index, %[[COL:.*]]: index):
// CHECK-NEXT:      %[[I32:.*]] = tensor.extract %[[ROWS]][%[[R]]]
// CHECK-NEXT:      %[[I:.*]] = arith.index_cast %[[I32]] : i32 to index
// CHECK-NEXT:      arith.constant 0 : index
// CHECK-NEXT:      %[[C1:.*]] = arith.constant 1 : index
// CHECK-NEXT:      %[[DIM:.*]] = tensor.dim %[[K]], %[[C1]]
// CHECK-NEXT:      %[[IN:.*]] = arith.cmpi ult, %[[I]], %[[DIM]]
// CHECK-NEXT:      scf.if %[[IN]] -> (bf16) {
// CHECK-NEXT:        tensor.extract %[[K]][%[[B]], %[[I]], %[[H]], %[[COL]]]
// CHECK:           } else {
// CHECK-NEXT:        arith.constant 0.000000e+00 : bf16
// CHECK:         } : tensor<16x32xbf16>
func.func @gather(%k: tensor<1x?x2x32xbf16>, %b: index, %h: index, %rows: tensor<16xi32>) -> tensor<16x32xbf16> {
  %t = tile.gather %k[%b, %h] rows %rows {row_dims = array<i64: 1>} : tensor<1x?x2x32xbf16>, tensor<16xi32> -> tensor<16x32xbf16>
  return %t : tensor<16x32xbf16>
}

// -----

// Rows over two row dimensions: index t * 4 + g reads token t, head g of
// grouped queries; a rank-1 result has no columns. Only the token is
// bounds-checked (the head is a remainder).
// CHECK-LABEL: func.func @gather_grouped
// CHECK-SAME:    (%[[L:.*]]: tensor<1x?x2x4xf32>, %[[B:.*]]: index, %[[H:.*]]: index, %[[ROWS:.*]]: tensor<8xi32>)
// CHECK:         tensor.generate {
// CHECK-NEXT:    ^bb0(%[[R:.*]]: index):
// CHECK-NEXT:      %[[I32:.*]] = tensor.extract %[[ROWS]][%[[R]]]
// CHECK-NEXT:      %[[I:.*]] = arith.index_cast %[[I32]] : i32 to index
// CHECK:           %[[C4:.*]] = arith.constant 4 : index
// CHECK-NEXT:      %[[G:.*]] = arith.remui %[[I]], %[[C4]]
// CHECK-NEXT:      %[[T:.*]] = arith.divui %[[I]], %[[C4]]
// CHECK:           %[[IN:.*]] = arith.cmpi ult, %[[T]], %{{.*}}
// CHECK-NEXT:      scf.if %[[IN]] -> (f32) {
// CHECK-NEXT:        tensor.extract %[[L]][%[[B]], %[[T]], %[[H]], %[[G]]]
// CHECK:         } : tensor<8xf32>
func.func @gather_grouped(%lse: tensor<1x?x2x4xf32>, %b: index, %h: index, %rows: tensor<8xi32>) -> tensor<8xf32> {
  %t = tile.gather %lse[%b, %h] rows %rows {row_dims = array<i64: 1, 3>} : tensor<1x?x2x4xf32>, tensor<8xi32> -> tensor<8xf32>
  return %t : tensor<8xf32>
}

// -----

// The grid becomes a loop nest carrying the outs; each store is an element
// loop of bounds-checked inserts into the value the previous store to that
// out produced, and the last values are yielded.
// CHECK-LABEL: func.func @program
// CHECK-SAME:    (%[[X:.*]]: tensor<?x16xf32>, %[[N:.*]]: index, %[[O0:.*]]: tensor<?x16xf32>, %[[O1:.*]]: tensor<?xf32>)
// CHECK-DAG:     %[[C0:.*]] = arith.constant 0 : index
// CHECK-DAG:     %[[C1:.*]] = arith.constant 1 : index
// CHECK-DAG:     %[[C2:.*]] = arith.constant 2 : index
// CHECK:         %[[RES:.*]]:2 = scf.for %[[I:[^ ]+]] = %[[C0]] to %[[N]] step %[[C1]] iter_args(%[[A0:.*]] = %[[O0]], %[[A1:.*]] = %[[O1]])
// CHECK:           %[[INNER:.*]]:2 = scf.for %[[J:[^ ]+]] = %[[C0]] to %[[C2]] step %[[C1]] iter_args(%[[B0:.*]] = %[[A0]], %[[B1:.*]] = %[[A1]])
// CHECK:             %[[TILE:.*]] = tensor.generate
// First store, rows i.. of out0.
// CHECK:             %[[S0:.*]] = scf.for %[[R:[^ ]+]] = {{.*}} iter_args(%[[D0:.*]] = %[[B0]]) -> (tensor<?x16xf32>)
// CHECK-NEXT:          %[[S0C:.*]] = scf.for %[[COL:[^ ]+]] = {{.*}} iter_args(%[[D1:.*]] = %[[D0]]) -> (tensor<?x16xf32>)
// CHECK-NEXT:            %[[ROW:.*]] = arith.addi %[[I]], %[[R]]
// CHECK:                 %[[DIM:.*]] = tensor.dim %[[D1]]
// CHECK-NEXT:            %[[IN:.*]] = arith.cmpi ult, %[[ROW]], %[[DIM]]
// CHECK-NEXT:            %[[W:.*]] = scf.if %[[IN]] -> (tensor<?x16xf32>) {
// CHECK-NEXT:              %[[E:.*]] = tensor.extract %[[TILE]][%[[R]], %[[COL]]]
// CHECK-NEXT:              %[[INS:.*]] = tensor.insert %[[E]] into %[[D1]][%[[ROW]], %[[COL]]]
// CHECK-NEXT:              scf.yield %[[INS]]
// CHECK-NEXT:            } else {
// CHECK-NEXT:              scf.yield %[[D1]]
// CHECK-NEXT:            }
// CHECK-NEXT:            scf.yield %[[W]]
// CHECK-NEXT:          }
// CHECK-NEXT:          scf.yield %[[S0C]]
// CHECK-NEXT:        }
// CHECK:             %[[SUM:.*]] = linalg.generic
// Rank-1 store into out1.
// CHECK:             %[[S1:.*]] = scf.for {{.*}} iter_args(%[[E1:.*]] = %[[B1]]) -> (tensor<?xf32>)
// CHECK:               tensor.insert {{.*}} into %[[E1]]
// Second store to out0 continues from the first one's result.
// CHECK:             %[[S2:.*]] = scf.for {{.*}} iter_args(%{{.*}} = %[[S0]]) -> (tensor<?x16xf32>)
// CHECK:             scf.yield %[[S2]], %[[S1]] : tensor<?x16xf32>, tensor<?xf32>
// CHECK:           scf.yield %[[INNER]]#0, %[[INNER]]#1
// CHECK:         return %[[RES]]#0, %[[RES]]#1
// CHECK-NOT:     tile.
func.func @program(%x: tensor<?x16xf32>, %n: index, %o0: tensor<?x16xf32>, %o1: tensor<?xf32>) -> (tensor<?x16xf32>, tensor<?xf32>) {
  %c2 = arith.constant 2 : index
  %r:2 = tile.program grid(%n, %c2) outs(%o0, %o1 : tensor<?x16xf32>, tensor<?xf32>) {
  ^bb0(%i: index, %j: index, %out0: tensor<?x16xf32>, %out1: tensor<?xf32>):
    %c0 = arith.constant 0 : index
    %t = tile.load %x[%i, %c0] {row_dims = array<i64: 0>} : tensor<?x16xf32> -> tensor<8x16xf32>
    tile.store %t into %out0[%i, %c0] {row_dims = array<i64: 0>} : tensor<8x16xf32> into tensor<?x16xf32>
    %s = tile.reduce sum %t : tensor<8x16xf32> -> tensor<8xf32>
    tile.store %s into %out1[%j] {row_dims = array<i64: 0>} : tensor<8xf32> into tensor<?xf32>
    tile.store %t into %out0[%j, %c0] {row_dims = array<i64: 0>} : tensor<8x16xf32> into tensor<?x16xf32>
  }
  return %r#0, %r#1 : tensor<?x16xf32>, tensor<?xf32>
}

// -----

// Grouped store: the same row mapping as the load.
// CHECK-LABEL: func.func @store_grouped
// CHECK:         scf.for
// CHECK:           scf.for %[[R:[^ ]+]] =
// CHECK-NEXT:        scf.for %[[COL:[^ ]+]] =
// CHECK-NEXT:        %[[C4:.*]] = arith.constant 4 : index
// CHECK-NEXT:        %[[HEAD:.*]] = arith.remui %[[R]], %[[C4]]
// CHECK-NEXT:        %[[DT:.*]] = arith.divui %[[R]], %[[C4]]
// CHECK-NEXT:        %[[T:.*]] = arith.addi %{{.*}}, %[[DT]]
// CHECK:             arith.cmpi ult, %[[T]]
// CHECK:             tensor.insert {{.*}}[%{{.*}}, %[[T]], %{{.*}}, %[[HEAD]], %[[COL]]]
func.func @store_grouped(%t: tensor<8x16xbf16>, %o: tensor<1x?x2x4x16xbf16>) -> tensor<1x?x2x4x16xbf16> {
  %c2 = arith.constant 2 : index
  %r = tile.program grid(%c2) outs(%o : tensor<1x?x2x4x16xbf16>) {
  ^bb0(%i: index, %out: tensor<1x?x2x4x16xbf16>):
    %c0 = arith.constant 0 : index
    tile.store %t into %out[%c0, %i, %c0, %c0, %c0] {row_dims = array<i64: 1, 3>} : tensor<8x16xbf16> into tensor<1x?x2x4x16xbf16>
  }
  return %r : tensor<1x?x2x4x16xbf16>
}

// -----

// CHECK-LABEL: func.func @range
// CHECK-SAME:    (%[[START:.*]]: index)
// CHECK:         tensor.generate {
// CHECK-NEXT:    ^bb0(%[[I:.*]]: index):
// CHECK-NEXT:      %[[C4:.*]] = arith.constant 4 : index
// CHECK-NEXT:      %[[Q:.*]] = arith.divui %[[I]], %[[C4]]
// CHECK-NEXT:      %[[P:.*]] = arith.addi %[[START]], %[[Q]]
// CHECK-NEXT:      %[[V:.*]] = arith.index_cast %[[P]] : index to i32
// CHECK-NEXT:      tensor.yield %[[V]] : i32
// CHECK-NEXT:    } : tensor<64xi32>
func.func @range(%start: index) -> tensor<64xi32> {
  %r = tile.range %start {divisor = 4} : tensor<64xi32>
  return %r : tensor<64xi32>
}

// -----

// CHECK-LABEL: func.func @broadcast
// CHECK-SAME:    (%[[V:.*]]: tensor<64xi32>, %[[W:.*]]: tensor<16xi32>)
// CHECK:         tensor.generate {
// CHECK-NEXT:    ^bb0(%[[I:.*]]: index, %{{.*}}: index):
// CHECK-NEXT:      tensor.extract %[[V]][%[[I]]]
// CHECK:         } : tensor<64x16xi32>
// CHECK:         tensor.generate {
// CHECK-NEXT:    ^bb0(%{{.*}}: index, %[[J:.*]]: index):
// CHECK-NEXT:      tensor.extract %[[W]][%[[J]]]
// CHECK:         } : tensor<64x16xi32>
func.func @broadcast(%v: tensor<64xi32>, %w: tensor<16xi32>) -> (tensor<64x16xi32>, tensor<64x16xi32>) {
  %r = tile.broadcast %v {dim = 1} : tensor<64xi32> -> tensor<64x16xi32>
  %c = tile.broadcast %w {dim = 0} : tensor<16xi32> -> tensor<64x16xi32>
  return %r, %c : tensor<64x16xi32>, tensor<64x16xi32>
}

// -----

// CHECK-LABEL: func.func @masked_fill
// CHECK-SAME:    (%[[S:.*]]: tensor<64x16xf32>, %[[M:.*]]: tensor<64x16xi1>)
// CHECK:         %[[NINF:.*]] = arith.constant 0xFF800000 : f32
// CHECK:         tensor.generate {
// CHECK-NEXT:    ^bb0(%[[I:.*]]: index, %[[J:.*]]: index):
// CHECK-NEXT:      %[[MV:.*]] = tensor.extract %[[M]][%[[I]], %[[J]]]
// CHECK-NEXT:      %[[SV:.*]] = tensor.extract %[[S]][%[[I]], %[[J]]]
// CHECK-NEXT:      %[[R:.*]] = arith.select %[[MV]], %[[NINF]], %[[SV]] : f32
// CHECK-NEXT:      tensor.yield %[[R]]
// CHECK-NEXT:    } : tensor<64x16xf32>
func.func @masked_fill(%s: tensor<64x16xf32>, %m: tensor<64x16xi1>) -> tensor<64x16xf32> {
  %ninf = arith.constant 0xFF800000 : f32
  %r = tile.masked_fill %s, %m, %ninf : tensor<64x16xf32>, tensor<64x16xi1>, f32
  return %r : tensor<64x16xf32>
}

// -----

// bf16 operands are widened to f32 before the multiply-add.
// CHECK-DAG:   #[[LHS:.*]] = affine_map<(d0, d1, d2) -> (d0, d2)>
// CHECK-DAG:   #[[RHS:.*]] = affine_map<(d0, d1, d2) -> (d2, d1)>
// CHECK-DAG:   #[[OUT:.*]] = affine_map<(d0, d1, d2) -> (d0, d1)>
// CHECK-LABEL: func.func @dot
// CHECK-SAME:    (%[[A:.*]]: tensor<64x32xbf16>, %[[B:.*]]: tensor<32x16xbf16>)
// CHECK:         %[[EMPTY:.*]] = tensor.empty() : tensor<64x16xf32>
// CHECK:         %[[ZERO:.*]] = arith.constant 0.000000e+00 : f32
// CHECK:         %[[INIT:.*]] = linalg.fill ins(%[[ZERO]] : f32) outs(%[[EMPTY]] : tensor<64x16xf32>)
// CHECK:         linalg.generic {indexing_maps = [#[[LHS]], #[[RHS]], #[[OUT]]], iterator_types = ["parallel", "parallel", "reduction"]}
// CHECK-SAME:      ins(%[[A]], %[[B]] : tensor<64x32xbf16>, tensor<32x16xbf16>) outs(%[[INIT]] : tensor<64x16xf32>)
// CHECK-NEXT:    ^bb0(%[[X:.*]]: bf16, %[[Y:.*]]: bf16, %[[ACC:.*]]: f32):
// CHECK-NEXT:      %[[XF:.*]] = arith.extf %[[X]] : bf16 to f32
// CHECK-NEXT:      %[[YF:.*]] = arith.extf %[[Y]] : bf16 to f32
// CHECK-NEXT:      %[[P:.*]] = arith.mulf %[[XF]], %[[YF]] : f32
// CHECK-NEXT:      %[[S:.*]] = arith.addf %[[ACC]], %[[P]] : f32
// CHECK-NEXT:      linalg.yield %[[S]] : f32
func.func @dot(%a: tensor<64x32xbf16>, %b: tensor<32x16xbf16>) -> tensor<64x16xf32> {
  %r = tile.dot %a, %b : tensor<64x32xbf16>, tensor<32x16xbf16> -> tensor<64x16xf32>
  return %r : tensor<64x16xf32>
}

// -----

// rhs [N, K]; f32 operands need no extf.
// CHECK-DAG:   #[[LHS:.*]] = affine_map<(d0, d1, d2) -> (d0, d2)>
// CHECK-DAG:   #[[RHS:.*]] = affine_map<(d0, d1, d2) -> (d1, d2)>
// CHECK-DAG:   #[[OUT:.*]] = affine_map<(d0, d1, d2) -> (d0, d1)>
// CHECK-LABEL: func.func @dot_transposed
// CHECK:         linalg.generic {indexing_maps = [#[[LHS]], #[[RHS]], #[[OUT]]], iterator_types = ["parallel", "parallel", "reduction"]}
// CHECK-NEXT:    ^bb0(%[[X:.*]]: f32, %[[Y:.*]]: f32, %[[ACC:.*]]: f32):
// CHECK-NEXT:      %[[P:.*]] = arith.mulf %[[X]], %[[Y]] : f32
// CHECK-NEXT:      %[[S:.*]] = arith.addf %[[ACC]], %[[P]] : f32
// CHECK-NEXT:      linalg.yield %[[S]] : f32
func.func @dot_transposed(%a: tensor<64x32xf32>, %b: tensor<16x32xf32>) -> tensor<64x16xf32> {
  %r = tile.dot %a, %b {rhs_transposed} : tensor<64x32xf32>, tensor<16x32xf32> -> tensor<64x16xf32>
  return %r : tensor<64x16xf32>
}

// -----

// lhs [K, M] (the backward's p^T . d_o), and both transposed.
// CHECK-DAG:   #[[LHS:.*]] = affine_map<(d0, d1, d2) -> (d2, d0)>
// CHECK-DAG:   #[[RHS:.*]] = affine_map<(d0, d1, d2) -> (d2, d1)>
// CHECK-DAG:   #[[RHST:.*]] = affine_map<(d0, d1, d2) -> (d1, d2)>
// CHECK-DAG:   #[[OUT:.*]] = affine_map<(d0, d1, d2) -> (d0, d1)>
// CHECK-LABEL: func.func @dot_lhs_transposed
// CHECK:         linalg.generic {indexing_maps = [#[[LHS]], #[[RHS]], #[[OUT]]], iterator_types = ["parallel", "parallel", "reduction"]}
// CHECK-SAME:      ins(%{{.*}}, %{{.*}} : tensor<32x64xf32>, tensor<32x16xf32>) outs(%{{.*}} : tensor<64x16xf32>)
// CHECK:         linalg.generic {indexing_maps = [#[[LHS]], #[[RHST]], #[[OUT]]], iterator_types = ["parallel", "parallel", "reduction"]}
// CHECK-SAME:      ins(%{{.*}}, %{{.*}} : tensor<32x64xf32>, tensor<16x32xf32>) outs(%{{.*}} : tensor<64x16xf32>)
func.func @dot_lhs_transposed(%a: tensor<32x64xf32>, %b: tensor<32x16xf32>, %bt: tensor<16x32xf32>)
    -> (tensor<64x16xf32>, tensor<64x16xf32>) {
  %r = tile.dot %a, %b {lhs_transposed} : tensor<32x64xf32>, tensor<32x16xf32> -> tensor<64x16xf32>
  %r2 = tile.dot %a, %bt {lhs_transposed, rhs_transposed} : tensor<32x64xf32>, tensor<16x32xf32> -> tensor<64x16xf32>
  return %r, %r2 : tensor<64x16xf32>, tensor<64x16xf32>
}

// -----

// CHECK-DAG:   #[[IN:.*]] = affine_map<(d0, d1) -> (d0, d1)>
// CHECK-DAG:   #[[OUT:.*]] = affine_map<(d0, d1) -> (d0)>
// CHECK-LABEL: func.func @reduce
// CHECK:         %[[NINF:.*]] = arith.constant 0xFF800000 : f32
// CHECK:         %[[MINIT:.*]] = linalg.fill ins(%[[NINF]] : f32)
// CHECK:         %[[MAX:.*]] = linalg.generic {indexing_maps = [#[[IN]], #[[OUT]]], iterator_types = ["parallel", "reduction"]}
// CHECK-SAME:      outs(%[[MINIT]] : tensor<64xf32>)
// CHECK-NEXT:    ^bb0(%[[X:.*]]: f32, %[[M:.*]]: f32):
// CHECK-NEXT:      %[[R:.*]] = arith.maximumf %[[X]], %[[M]] : f32
// CHECK-NEXT:      linalg.yield %[[R]] : f32
// CHECK:         %[[ZERO:.*]] = arith.constant 0.000000e+00 : f32
// CHECK:         %[[SINIT:.*]] = linalg.fill ins(%[[ZERO]] : f32)
// CHECK:         %[[SUM:.*]] = linalg.generic {indexing_maps = [#[[IN]], #[[OUT]]], iterator_types = ["parallel", "reduction"]}
// CHECK-SAME:      outs(%[[SINIT]] : tensor<64xf32>)
// CHECK-NEXT:    ^bb0(%[[Y:.*]]: f32, %[[S:.*]]: f32):
// CHECK-NEXT:      %[[T:.*]] = arith.addf %[[Y]], %[[S]] : f32
// CHECK-NEXT:      linalg.yield %[[T]] : f32
// CHECK:         return %[[MAX]], %[[SUM]]
func.func @reduce(%s: tensor<64x16xf32>) -> (tensor<64xf32>, tensor<64xf32>) {
  %m = tile.reduce max %s : tensor<64x16xf32> -> tensor<64xf32>
  %l = tile.reduce sum %s : tensor<64x16xf32> -> tensor<64xf32>
  return %m, %l : tensor<64xf32>, tensor<64xf32>
}

// -----

// group_sum: the rows as [groups, G, C], summed over G.
// CHECK-DAG:   #[[IN:.*]] = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
// CHECK-DAG:   #[[OUT:.*]] = affine_map<(d0, d1, d2) -> (d0, d2)>
// CHECK-LABEL: func.func @group_sum
// CHECK:         %[[G:.*]] = tensor.expand_shape %{{.*}} {{\[\[}}0, 1], [2]] output_shape [4, 16, 8] : tensor<64x8xf32> into tensor<4x16x8xf32>
// CHECK:         %[[INIT:.*]] = linalg.fill
// CHECK:         %[[SUM:.*]] = linalg.generic {indexing_maps = [#[[IN]], #[[OUT]]], iterator_types = ["parallel", "reduction", "parallel"]}
// CHECK-SAME:      ins(%[[G]] : tensor<4x16x8xf32>) outs(%[[INIT]] : tensor<4x8xf32>)
// CHECK-NEXT:    ^bb0(%[[X:.*]]: f32, %[[S:.*]]: f32):
// CHECK-NEXT:      %[[T:.*]] = arith.addf %[[X]], %[[S]] : f32
// CHECK-NEXT:      linalg.yield %[[T]] : f32
// CHECK:         return %[[SUM]]
func.func @group_sum(%s: tensor<64x8xf32>) -> tensor<4x8xf32> {
  %r = tile.group_sum %s : tensor<64x8xf32> -> tensor<4x8xf32>
  return %r : tensor<4x8xf32>
}

// -----

// max' = max(max, rowmax); a row with max' = -inf subtracts 0 instead (its
// scores are all -inf, so p = 0) and gets c = 1; the values are widened to
// f32 for p . V.
// CHECK-LABEL: func.func @online_softmax
// CHECK-SAME:    (%[[S:.*]]: tensor<64x16xf32>, %[[V:.*]]: tensor<16x32xbf16>, %[[M:.*]]: tensor<64xf32>, %[[L:.*]]: tensor<64xf32>, %[[A:.*]]: tensor<64x32xf32>)
// CHECK:         %[[ROWMAX:.*]] = linalg.generic
// CHECK:           arith.maximumf
// CHECK:         %[[NEWMAX:.*]] = arith.maximumf %[[M]], %[[ROWMAX]] : tensor<64xf32>
// CHECK:         %[[NINF:.*]] = arith.constant dense<0xFF800000> : tensor<64xf32>
// CHECK:         %[[UNSEEN:.*]] = arith.cmpf oeq, %[[NEWMAX]], %[[NINF]] : tensor<64xf32>
// CHECK:         %[[ZEROS:.*]] = arith.constant dense<0.000000e+00> : tensor<64xf32>
// CHECK:         %[[SHIFT:.*]] = arith.select %[[UNSEEN]], %[[ZEROS]], %[[NEWMAX]]
// CHECK:         %[[SHIFT2D:.*]] = tensor.generate
// CHECK:           tensor.extract %[[SHIFT]]
// CHECK:         %[[D:.*]] = arith.subf %[[S]], %[[SHIFT2D]] : tensor<64x16xf32>
// CHECK:         %[[P:.*]] = math.exp2 %[[D]] : tensor<64x16xf32>
// CHECK:         %[[DM:.*]] = arith.subf %[[M]], %[[SHIFT]] : tensor<64xf32>
// CHECK:         %[[E:.*]] = math.exp2 %[[DM]] : tensor<64xf32>
// CHECK:         %[[ONES:.*]] = arith.constant dense<1.000000e+00> : tensor<64xf32>
// CHECK:         %[[C:.*]] = arith.select %[[UNSEEN]], %[[ONES]], %[[E]]
// CHECK:         %[[ROWSUM:.*]] = linalg.generic
// CHECK-SAME:      ins(%[[P]] : tensor<64x16xf32>)
// CHECK:           arith.addf
// CHECK:         %[[LC:.*]] = arith.mulf %[[L]], %[[C]] : tensor<64xf32>
// CHECK:         %[[NEWSUM:.*]] = arith.addf %[[LC]], %[[ROWSUM]] : tensor<64xf32>
// CHECK:         %[[VF:.*]] = arith.extf %[[V]] : tensor<16x32xbf16> to tensor<16x32xf32>
// CHECK:         %[[C2D:.*]] = tensor.generate
// CHECK:           tensor.extract %[[C]]
// CHECK:         %[[AC:.*]] = arith.mulf %[[A]], %[[C2D]] : tensor<64x32xf32>
// CHECK:         %[[PV:.*]] = linalg.generic
// CHECK-SAME:      ins(%[[P]], %[[VF]] : tensor<64x16xf32>, tensor<16x32xf32>)
// CHECK:         %[[NEWACC:.*]] = arith.addf %[[AC]], %[[PV]] : tensor<64x32xf32>
// CHECK:         return %[[NEWMAX]], %[[NEWSUM]], %[[NEWACC]]
func.func @online_softmax(%s: tensor<64x16xf32>, %v: tensor<16x32xbf16>, %m: tensor<64xf32>, %l: tensor<64xf32>, %a: tensor<64x32xf32>) -> (tensor<64xf32>, tensor<64xf32>, tensor<64x32xf32>) {
  %m1, %l1, %a1 = tile.online_softmax %s, %v, %m, %l, %a : tensor<64x16xf32>, tensor<16x32xbf16>, tensor<64xf32>, tensor<64x32xf32>
  return %m1, %l1, %a1 : tensor<64xf32>, tensor<64xf32>, tensor<64x32xf32>
}

// -----

// With a scale, the row maxima and, in p's exponent, the scores are
// multiplied by it (the scores are otherwise used as given).
// CHECK-LABEL: func.func @online_softmax_scaled
// CHECK-SAME:    (%[[S:.*]]: tensor<64x16xf32>
// CHECK:         %[[ROWMAX:.*]] = linalg.generic
// CHECK:         %[[SC:.*]] = arith.constant dense<5.000000e-01> : tensor<64xf32>
// CHECK:         %[[SCALED:.*]] = arith.mulf %[[ROWMAX]], %[[SC]] : tensor<64xf32>
// CHECK:         arith.maximumf %{{.*}}, %[[SCALED]] : tensor<64xf32>
// CHECK:         %[[SC2:.*]] = arith.constant dense<5.000000e-01> : tensor<64x16xf32>
// CHECK:         %[[SS:.*]] = arith.mulf %[[S]], %[[SC2]] : tensor<64x16xf32>
// CHECK:         %[[D:.*]] = arith.subf %[[SS]], %{{.*}} : tensor<64x16xf32>
// CHECK:         math.exp2 %[[D]] : tensor<64x16xf32>
func.func @online_softmax_scaled(%s: tensor<64x16xf32>, %v: tensor<16x32xbf16>, %m: tensor<64xf32>, %l: tensor<64xf32>, %a: tensor<64x32xf32>) -> (tensor<64xf32>, tensor<64xf32>, tensor<64x32xf32>) {
  %m1, %l1, %a1 = tile.online_softmax %s, %v, %m, %l, %a {scale = 5.000000e-01 : f32} : tensor<64x16xf32>, tensor<16x32xbf16>, tensor<64xf32>, tensor<64x32xf32>
  return %m1, %l1, %a1 : tensor<64xf32>, tensor<64xf32>, tensor<64x32xf32>
}

// -----

// A row with sum = 0 divides by 1 and takes log2(1), then out = 0 and
// lse = -inf are selected.
// CHECK-LABEL: func.func @softmax_finalize
// CHECK-SAME:    (%[[M:.*]]: tensor<64xf32>, %[[L:.*]]: tensor<64xf32>, %[[A:.*]]: tensor<64x32xf32>)
// CHECK:         %[[ZEROS:.*]] = arith.constant dense<0.000000e+00> : tensor<64xf32>
// CHECK:         %[[EMPTY:.*]] = arith.cmpf oeq, %[[L]], %[[ZEROS]] : tensor<64xf32>
// CHECK:         %[[ONES:.*]] = arith.constant dense<1.000000e+00> : tensor<64xf32>
// CHECK:         %[[SAFE:.*]] = arith.select %[[EMPTY]], %[[ONES]], %[[L]]
// CHECK:         %[[SAFE2D:.*]] = tensor.generate
// CHECK:           tensor.extract %[[SAFE]]
// CHECK:         %[[RATIO:.*]] = arith.divf %[[A]], %[[SAFE2D]] : tensor<64x32xf32>
// CHECK:         %[[ZERO:.*]] = arith.constant 0.000000e+00 : f32
// CHECK:         %[[EMPTY2D:.*]] = tensor.generate
// CHECK:           tensor.extract %[[EMPTY]]
// CHECK:         } : tensor<64x32xi1>
// CHECK:         %[[FILLED:.*]] = tensor.generate
// CHECK:           %[[MV:.*]] = tensor.extract %[[EMPTY2D]]
// CHECK:           %[[RV:.*]] = tensor.extract %[[RATIO]]
// CHECK:           arith.select %[[MV]], %[[ZERO]], %[[RV]] : f32
// CHECK:         %[[OUT:.*]] = arith.truncf %[[FILLED]] : tensor<64x32xf32> to tensor<64x32xbf16>
// CHECK:         %[[LOG:.*]] = math.log2 %[[SAFE]] : tensor<64xf32>
// CHECK:         %[[LN2:.*]] = arith.constant dense<0.693147182> : tensor<64xf32>
// CHECK:         %[[ML:.*]] = arith.addf %[[M]], %[[LOG]] : tensor<64xf32>
// CHECK:         %[[LSE:.*]] = arith.mulf %[[ML]], %[[LN2]] : tensor<64xf32>
// CHECK:         %[[NINF:.*]] = arith.constant dense<0xFF800000> : tensor<64xf32>
// CHECK:         %[[R:.*]] = arith.select %[[EMPTY]], %[[NINF]], %[[LSE]]
// CHECK:         return %[[OUT]], %[[R]]
func.func @softmax_finalize(%m: tensor<64xf32>, %l: tensor<64xf32>, %a: tensor<64x32xf32>) -> (tensor<64x32xbf16>, tensor<64xf32>) {
  %o, %lse = tile.softmax_finalize %m, %l, %a : tensor<64xf32>, tensor<64x32xf32> -> tensor<64x32xbf16>
  return %o, %lse : tensor<64x32xbf16>, tensor<64xf32>
}

// -----

// A program cannot read its outputs: other instances store into them in an
// unspecified order.
func.func @outs_read(%o: tensor<8x16xf32>) -> tensor<8x16xf32> {
  %c1 = arith.constant 1 : index
  // expected-error @below {{the view of outs #0 may only be used by tile.store}}
  %r = tile.program grid(%c1) outs(%o : tensor<8x16xf32>) {
  ^bb0(%i: index, %out: tensor<8x16xf32>):
    %c0 = arith.constant 0 : index
    // expected-note @below {{used by 'tile.load' here}}
    %t = tile.load %out[%c0, %c0] {row_dims = array<i64: 0>} : tensor<8x16xf32> -> tensor<8x16xf32>
    tile.store %t into %out[%c0, %c0] {row_dims = array<i64: 0>} : tensor<8x16xf32> into tensor<8x16xf32>
  }
  return %r : tensor<8x16xf32>
}
