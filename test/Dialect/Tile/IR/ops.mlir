// RUN: nsa-opt %s | nsa-opt | FileCheck %s

// A window-attention-like program using every tile op.
// CHECK-LABEL: func.func @p
// CHECK: tile.program grid(
// CHECK: tile.load {{.*}} {row_dims = array<i64: 1, 3>}
// CHECK: tile.dot {{.*}} {rhs_transposed}
// CHECK: tile.range {{.*}} {divisor = 4 : i64}
// CHECK: tile.broadcast
// CHECK: tile.masked_fill
// CHECK: tile.online_softmax {{.*}} {scale = 1.250000e-01 : f32}
// CHECK: tile.softmax_finalize
// CHECK: tile.reduce max
// CHECK: tile.group_sum
// CHECK: tile.store
// CHECK: } {min_resident = 2 : i64}
func.func @p(%q: tensor<1x100x2x4x32xbf16>, %k: tensor<1x100x2x32xbf16>, %v: tensor<1x100x2x16xbf16>, %o0: tensor<1x100x2x4x16xbf16>) -> tensor<1x100x2x4x16xbf16> {
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %c7 = arith.constant 7 : index
  %r = tile.program grid(%c1, %c2, %c7) outs(%o0 : tensor<1x100x2x4x16xbf16>) {
  ^bb0(%b: index, %h: index, %m: index, %out: tensor<1x100x2x4x16xbf16>):
    %c0 = arith.constant 0 : index
    %qt = tile.load %q[%b, %m, %h, %c0, %c0] {row_dims = array<i64: 1, 3>} : tensor<1x100x2x4x32xbf16> -> tensor<64x32xbf16>
    %kt = tile.load %k[%b, %c0, %h, %c0] {row_dims = array<i64: 1>} : tensor<1x100x2x32xbf16> -> tensor<16x32xbf16>
    %vt = tile.load %v[%b, %c0, %h, %c0] {row_dims = array<i64: 1>} : tensor<1x100x2x16xbf16> -> tensor<16x16xbf16>
    %s = tile.dot %qt, %kt {rhs_transposed} : tensor<64x32xbf16>, tensor<16x32xbf16> -> tensor<64x16xf32>
    %rows = tile.range %m {divisor = 4} : tensor<64xi32>
    %cols = tile.range %c0 : tensor<16xi32>
    %rb = tile.broadcast %rows {dim = 1} : tensor<64xi32> -> tensor<64x16xi32>
    %cb = tile.broadcast %cols {dim = 0} : tensor<16xi32> -> tensor<64x16xi32>
    %mask = arith.cmpi sgt, %cb, %rb : tensor<64x16xi32>
    %ninf = arith.constant 0xFF800000 : f32
    %sm = tile.masked_fill %s, %mask, %ninf : tensor<64x16xf32>, tensor<64x16xi1>, f32
    %m0 = arith.constant dense<0xFF800000> : tensor<64xf32>
    %l0 = arith.constant dense<0.0> : tensor<64xf32>
    %a0 = arith.constant dense<0.0> : tensor<64x16xf32>
    %m1, %l1, %a1 = tile.online_softmax %sm, %vt, %m0, %l0, %a0 {scale = 1.250000e-01 : f32} : tensor<64x16xf32>, tensor<16x16xbf16>, tensor<64xf32>, tensor<64x16xf32>
    %ot, %lse = tile.softmax_finalize %m1, %l1, %a1 : tensor<64xf32>, tensor<64x16xf32> -> tensor<64x16xbf16>
    %mx = tile.reduce max %s : tensor<64x16xf32> -> tensor<64xf32>
    %gs = tile.group_sum %s : tensor<64x16xf32> -> tensor<16x16xf32>
    tile.store %ot into %out[%b, %m, %h, %c0, %c0] {row_dims = array<i64: 1, 3>} : tensor<64x16xbf16> into tensor<1x100x2x4x16xbf16>
  } {min_resident = 2 : i64}
  return %r : tensor<1x100x2x4x16xbf16>
}

// The backward's contractions over tile rows: lhs given as [K, M].
// CHECK-LABEL: func.func @dot_forms
// CHECK: tile.dot %{{.*}}, %{{.*}} {lhs_transposed} : tensor<64x16xbf16>, tensor<64x32xbf16> -> tensor<16x32xf32>
// CHECK: tile.dot %{{.*}}, %{{.*}} {lhs_transposed, rhs_transposed} : tensor<64x16xf32>, tensor<32x64xf32> -> tensor<16x32xf32>
func.func @dot_forms(%p: tensor<64x16xbf16>, %q: tensor<64x32xbf16>, %pf: tensor<64x16xf32>, %qt: tensor<32x64xf32>)
    -> (tensor<16x32xf32>, tensor<16x32xf32>) {
  %a = tile.dot %p, %q {lhs_transposed} : tensor<64x16xbf16>, tensor<64x32xbf16> -> tensor<16x32xf32>
  %b = tile.dot %pf, %qt {lhs_transposed, rhs_transposed} : tensor<64x16xf32>, tensor<32x64xf32> -> tensor<16x32xf32>
  return %a, %b : tensor<16x32xf32>, tensor<16x32xf32>
}

// Stream compaction: the chosen values picked by rank, and their count.
// CHECK-LABEL: func.func @compact
// CHECK: %{{.*}}, %{{.*}} = tile.compact %{{.*}}, %{{.*}}, %{{.*}} : tensor<64xi32>, tensor<64xi1>, tensor<16xi32>
func.func @compact(%v: tensor<64xi32>, %m: tensor<64xi1>, %r: tensor<16xi32>)
    -> (tensor<16xi32>, index) {
  %p, %n = tile.compact %v, %m, %r : tensor<64xi32>, tensor<64xi1>, tensor<16xi32>
  return %p, %n : tensor<16xi32>, index
}
