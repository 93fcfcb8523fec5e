// RUN: nsa-opt %s --nsa-lower-tile-to-llvm \
// RUN: | mlir-runner -e main -entry-point-result=void \
// RUN:     -shared-libs=%mlir_runner_utils,%mlir_c_runner_utils \
// RUN: | FileCheck %s

// Tile programs executed on the CPU. Inputs are small integers and powers of
// two, so bf16 holds them exactly and every expected number below is exact
// (the lse values are multiples of ln 2, printed to 6 digits). main prints
// the results in the order of the CHECK blocks.

// Ragged tails: 2 programs of 4 rows over 5 rows. The second one loads rows
// 4..7, of which 5..7 read zeros (`dump`), and its store of x + 1 drops them
// (`out` has 5 rows).
func.func @ragged(%x: tensor<5x2xf32>, %o: tensor<5x2xf32>,
                  %d: tensor<2x4x2xf32>) -> (tensor<5x2xf32>, tensor<2x4x2xf32>) {
  %c2 = arith.constant 2 : index
  %r:2 = tile.program grid(%c2) outs(%o, %d : tensor<5x2xf32>, tensor<2x4x2xf32>) {
  ^bb0(%i: index, %out: tensor<5x2xf32>, %dump: tensor<2x4x2xf32>):
    %c0 = arith.constant 0 : index
    %c4 = arith.constant 4 : index
    %t0 = arith.muli %i, %c4 : index
    %t = tile.load %x[%t0, %c0] {row_dims = array<i64: 0>} : tensor<5x2xf32> -> tensor<4x2xf32>
    %one = arith.constant dense<1.0> : tensor<4x2xf32>
    %t1 = arith.addf %t, %one : tensor<4x2xf32>
    tile.store %t1 into %out[%t0, %c0] {row_dims = array<i64: 0>} : tensor<4x2xf32> into tensor<5x2xf32>
    tile.store %t into %dump[%i, %c0, %c0] {row_dims = array<i64: 1>} : tensor<4x2xf32> into tensor<2x4x2xf32>
  }
  return %r#0, %r#1 : tensor<5x2xf32>, tensor<2x4x2xf32>
}

// CHECK:      sizes = [5, 2]
// CHECK-NEXT: [2,   3],
// CHECK-NEXT: [4,   5],
// CHECK-NEXT: [6,   7],
// CHECK-NEXT: [8,   9],
// CHECK-NEXT: [10,   11]]
// CHECK:      sizes = [2, 4, 2]
// CHECK-NEXT: [1,    2],
// CHECK-NEXT: [3,    4],
// CHECK-NEXT: [5,    6],
// CHECK-NEXT: [7,    8]],
// CHECK-NEXT: [9,    10],
// CHECK-NEXT: [0,    0],
// CHECK-NEXT: [0,    0],
// CHECK-NEXT: [0,    0]]]

// Grouped rows: q [B=1, T=3, HKV=2, G=2, D=2] holds 0..23; a program per
// (block of 2 tokens, KV head) loads row r = (t - t0) * G + g. The copy
// through the same row_dims reproduces q (all of `out`, which starts at -1,
// is written; the second block's token 3 is dropped), and `dump` shows the
// tiles: the second block's rows 2 and 3 (token 3) are zeros.
func.func @grouped(%q: tensor<1x3x2x2x2xf32>, %o: tensor<1x3x2x2x2xf32>,
                   %d: tensor<2x2x4x2xf32>) -> (tensor<1x3x2x2x2xf32>, tensor<2x2x4x2xf32>) {
  %c2 = arith.constant 2 : index
  %r:2 = tile.program grid(%c2, %c2) outs(%o, %d : tensor<1x3x2x2x2xf32>, tensor<2x2x4x2xf32>) {
  ^bb0(%blk: index, %h: index, %out: tensor<1x3x2x2x2xf32>, %dump: tensor<2x2x4x2xf32>):
    %c0 = arith.constant 0 : index
    %c2i = arith.constant 2 : index
    %t0 = arith.muli %blk, %c2i : index
    %t = tile.load %q[%c0, %t0, %h, %c0, %c0] {row_dims = array<i64: 1, 3>} : tensor<1x3x2x2x2xf32> -> tensor<4x2xf32>
    tile.store %t into %out[%c0, %t0, %h, %c0, %c0] {row_dims = array<i64: 1, 3>} : tensor<4x2xf32> into tensor<1x3x2x2x2xf32>
    tile.store %t into %dump[%blk, %h, %c0, %c0] {row_dims = array<i64: 2>} : tensor<4x2xf32> into tensor<2x2x4x2xf32>
  }
  return %r#0, %r#1 : tensor<1x3x2x2x2xf32>, tensor<2x2x4x2xf32>
}

// CHECK:      sizes = [1, 3, 2, 2, 2]
// CHECK-NEXT: [0,      1],
// CHECK-NEXT: [2,      3]],
// CHECK-NEXT: [4,      5],
// CHECK-NEXT: [6,      7]]],
// CHECK-NEXT: [8,      9],
// CHECK-NEXT: [10,      11]],
// CHECK-NEXT: [12,      13],
// CHECK-NEXT: [14,      15]]],
// CHECK-NEXT: [16,      17],
// CHECK-NEXT: [18,      19]],
// CHECK-NEXT: [20,      21],
// CHECK-NEXT: [22,      23]]]]]
// CHECK:      sizes = [2, 2, 4, 2]
// CHECK-NEXT: [0,     1],
// CHECK-NEXT: [2,     3],
// CHECK-NEXT: [8,     9],
// CHECK-NEXT: [10,     11]],
// CHECK-NEXT: [4,     5],
// CHECK-NEXT: [6,     7],
// CHECK-NEXT: [12,     13],
// CHECK-NEXT: [14,     15]]],
// CHECK-NEXT: [16,     17],
// CHECK-NEXT: [18,     19],
// CHECK-NEXT: [0,     0],
// CHECK-NEXT: [0,     0]],
// CHECK-NEXT: [20,     21],
// CHECK-NEXT: [22,     23],
// CHECK-NEXT: [0,     0],
// CHECK-NEXT: [0,     0]]]]

// Gather: src[h, t, d] = 8h + 2t + d + 1 (T = 4), rows [2, -1, 4, 0, 3]
// (loaded as a rank-1 tile); -1 and 4 read zero rows. The same rows over
// both dimensions (t, d), as a rank-1 tile: 2 is (1, 0), 4 is (2, 0), 3 is
// (1, 1); -1 reads zero.
func.func @gather(%src: tensor<2x4x2xf32>, %rows: tensor<5xi32>,
                  %o: tensor<2x5x2xf32>, %o2: tensor<2x5xf32>)
    -> (tensor<2x5x2xf32>, tensor<2x5xf32>) {
  %c2 = arith.constant 2 : index
  %r:2 = tile.program grid(%c2) outs(%o, %o2 : tensor<2x5x2xf32>, tensor<2x5xf32>) {
  ^bb0(%h: index, %out: tensor<2x5x2xf32>, %out2: tensor<2x5xf32>):
    %c0 = arith.constant 0 : index
    %rt = tile.load %rows[%c0] {row_dims = array<i64: 0>} : tensor<5xi32> -> tensor<5xi32>
    %g = tile.gather %src[%h] rows %rt {row_dims = array<i64: 1>} : tensor<2x4x2xf32>, tensor<5xi32> -> tensor<5x2xf32>
    tile.store %g into %out[%h, %c0, %c0] {row_dims = array<i64: 1>} : tensor<5x2xf32> into tensor<2x5x2xf32>
    %g2 = tile.gather %src[%h] rows %rt {row_dims = array<i64: 1, 2>} : tensor<2x4x2xf32>, tensor<5xi32> -> tensor<5xf32>
    tile.store %g2 into %out2[%h, %c0] {row_dims = array<i64: 1>} : tensor<5xf32> into tensor<2x5xf32>
  }
  return %r#0, %r#1 : tensor<2x5x2xf32>, tensor<2x5xf32>
}

// CHECK:      sizes = [2, 5, 2]
// CHECK-NEXT: [5,    6],
// CHECK-NEXT: [0,    0],
// CHECK-NEXT: [0,    0],
// CHECK-NEXT: [1,    2],
// CHECK-NEXT: [7,    8]],
// CHECK-NEXT: [13,    14],
// CHECK-NEXT: [0,    0],
// CHECK-NEXT: [0,    0],
// CHECK-NEXT: [9,    10],
// CHECK-NEXT: [15,    16]]]
// CHECK:      sizes = [2, 5]
// CHECK-NEXT: [3,   0,   5,   1,   4],
// CHECK-NEXT: [11,   0,   13,   9,   12]]

// Dot, all four forms, bf16 operands: a . b, a . bt^T (rhs_transposed),
// at^T . b (lhs_transposed) and at^T . bt^T (both) with at = a^T, bt = b^T
// all give [[5.75, 21], [18.125, 257.5]]; 257.5 = 256 + 1 + 0.5 is not a
// bf16, so it shows the f32 accumulation.
func.func @dot(%a: tensor<2x3xbf16>, %b: tensor<3x2xbf16>, %bt: tensor<2x3xbf16>,
               %at: tensor<3x2xbf16>, %o1: tensor<2x2xf32>, %o2: tensor<2x2xf32>,
               %o3: tensor<2x2xf32>, %o4: tensor<2x2xf32>)
    -> (tensor<2x2xf32>, tensor<2x2xf32>, tensor<2x2xf32>, tensor<2x2xf32>) {
  %c1 = arith.constant 1 : index
  %r:4 = tile.program grid(%c1) outs(%o1, %o2, %o3, %o4 : tensor<2x2xf32>, tensor<2x2xf32>, tensor<2x2xf32>, tensor<2x2xf32>) {
  ^bb0(%i: index, %out1: tensor<2x2xf32>, %out2: tensor<2x2xf32>, %out3: tensor<2x2xf32>, %out4: tensor<2x2xf32>):
    %c0 = arith.constant 0 : index
    %atile = tile.load %a[%c0, %c0] {row_dims = array<i64: 0>} : tensor<2x3xbf16> -> tensor<2x3xbf16>
    %btile = tile.load %b[%c0, %c0] {row_dims = array<i64: 0>} : tensor<3x2xbf16> -> tensor<3x2xbf16>
    %bttile = tile.load %bt[%c0, %c0] {row_dims = array<i64: 0>} : tensor<2x3xbf16> -> tensor<2x3xbf16>
    %attile = tile.load %at[%c0, %c0] {row_dims = array<i64: 0>} : tensor<3x2xbf16> -> tensor<3x2xbf16>
    %d1 = tile.dot %atile, %btile : tensor<2x3xbf16>, tensor<3x2xbf16> -> tensor<2x2xf32>
    %d2 = tile.dot %atile, %bttile {rhs_transposed} : tensor<2x3xbf16>, tensor<2x3xbf16> -> tensor<2x2xf32>
    %d3 = tile.dot %attile, %btile {lhs_transposed} : tensor<3x2xbf16>, tensor<3x2xbf16> -> tensor<2x2xf32>
    %d4 = tile.dot %attile, %bttile {lhs_transposed, rhs_transposed} : tensor<3x2xbf16>, tensor<2x3xbf16> -> tensor<2x2xf32>
    tile.store %d1 into %out1[%c0, %c0] {row_dims = array<i64: 0>} : tensor<2x2xf32> into tensor<2x2xf32>
    tile.store %d2 into %out2[%c0, %c0] {row_dims = array<i64: 0>} : tensor<2x2xf32> into tensor<2x2xf32>
    tile.store %d3 into %out3[%c0, %c0] {row_dims = array<i64: 0>} : tensor<2x2xf32> into tensor<2x2xf32>
    tile.store %d4 into %out4[%c0, %c0] {row_dims = array<i64: 0>} : tensor<2x2xf32> into tensor<2x2xf32>
  }
  return %r#0, %r#1, %r#2, %r#3 : tensor<2x2xf32>, tensor<2x2xf32>, tensor<2x2xf32>, tensor<2x2xf32>
}

// CHECK:      sizes = [2, 2]
// CHECK-NEXT: [5.75,   21],
// CHECK-NEXT: [18.125,   257.5]]
// CHECK:      sizes = [2, 2]
// CHECK-NEXT: [5.75,   21],
// CHECK-NEXT: [18.125,   257.5]]
// CHECK:      sizes = [2, 2]
// CHECK-NEXT: [5.75,   21],
// CHECK-NEXT: [18.125,   257.5]]
// CHECK:      sizes = [2, 2]
// CHECK-NEXT: [5.75,   21],
// CHECK-NEXT: [18.125,   257.5]]

// range/broadcast/masked_fill/reduce, a causal-style mask: row positions
// [0, 0, 1, 1] (divisor 2), column positions [1, 2, 3]; mask col > row fills
// -inf, so rows 0 and 1 are fully masked and their max is -inf.
func.func @mask(%s: tensor<4x3xf32>, %orb: tensor<4x3xi32>, %ocb: tensor<4x3xi32>,
                %om: tensor<4x3xf32>, %omax: tensor<4xf32>, %osum: tensor<4xf32>)
    -> (tensor<4x3xi32>, tensor<4x3xi32>, tensor<4x3xf32>, tensor<4xf32>, tensor<4xf32>) {
  %c1 = arith.constant 1 : index
  %r:5 = tile.program grid(%c1) outs(%orb, %ocb, %om, %omax, %osum : tensor<4x3xi32>, tensor<4x3xi32>, tensor<4x3xf32>, tensor<4xf32>, tensor<4xf32>) {
  ^bb0(%i: index, %rbo: tensor<4x3xi32>, %cbo: tensor<4x3xi32>, %mo: tensor<4x3xf32>, %maxo: tensor<4xf32>, %sumo: tensor<4xf32>):
    %c0 = arith.constant 0 : index
    %c1i = arith.constant 1 : index
    %st = tile.load %s[%c0, %c0] {row_dims = array<i64: 0>} : tensor<4x3xf32> -> tensor<4x3xf32>
    %rows = tile.range %c0 {divisor = 2} : tensor<4xi32>
    %cols = tile.range %c1i : tensor<3xi32>
    %rb = tile.broadcast %rows {dim = 1} : tensor<4xi32> -> tensor<4x3xi32>
    %cb = tile.broadcast %cols {dim = 0} : tensor<3xi32> -> tensor<4x3xi32>
    %mask = arith.cmpi sgt, %cb, %rb : tensor<4x3xi32>
    %ninf = arith.constant 0xFF800000 : f32
    %sm = tile.masked_fill %st, %mask, %ninf : tensor<4x3xf32>, tensor<4x3xi1>, f32
    %mx = tile.reduce max %sm : tensor<4x3xf32> -> tensor<4xf32>
    %sum = tile.reduce sum %st : tensor<4x3xf32> -> tensor<4xf32>
    tile.store %rb into %rbo[%c0, %c0] {row_dims = array<i64: 0>} : tensor<4x3xi32> into tensor<4x3xi32>
    tile.store %cb into %cbo[%c0, %c0] {row_dims = array<i64: 0>} : tensor<4x3xi32> into tensor<4x3xi32>
    tile.store %sm into %mo[%c0, %c0] {row_dims = array<i64: 0>} : tensor<4x3xf32> into tensor<4x3xf32>
    tile.store %mx into %maxo[%c0] {row_dims = array<i64: 0>} : tensor<4xf32> into tensor<4xf32>
    tile.store %sum into %sumo[%c0] {row_dims = array<i64: 0>} : tensor<4xf32> into tensor<4xf32>
  }
  return %r#0, %r#1, %r#2, %r#3, %r#4 : tensor<4x3xi32>, tensor<4x3xi32>, tensor<4x3xf32>, tensor<4xf32>, tensor<4xf32>
}

// CHECK:      sizes = [4, 3]
// CHECK-NEXT: [0,   0,   0],
// CHECK-NEXT: [0,   0,   0],
// CHECK-NEXT: [1,   1,   1],
// CHECK-NEXT: [1,   1,   1]]
// CHECK:      sizes = [4, 3]
// CHECK-NEXT: [1,   2,   3],
// CHECK-NEXT: [1,   2,   3],
// CHECK-NEXT: [1,   2,   3],
// CHECK-NEXT: [1,   2,   3]]
// CHECK:      sizes = [4, 3]
// CHECK-NEXT: [-inf,   -inf,   -inf],
// CHECK-NEXT: [-inf,   -inf,   -inf],
// CHECK-NEXT: [7,   -inf,   -inf],
// CHECK-NEXT: [10,   -inf,   -inf]]
// CHECK:      sizes = [4]
// CHECK-NEXT: [-inf,  -inf,  7,  10]
// CHECK:      sizes = [4]
// CHECK-NEXT: [6,  15,  24,  33]

// Streaming softmax over 2 key blocks of 2 keys (an scf.for in the program),
// values V = [[1, 2], [3, 4] | [5, 6], [7, 8]] in bf16. Scores per row
// (block 0 | block 1):
//   row 0: [1, -inf] | [0, 0]       max 1, p = [1, 0] | [.5, .5], sum 2
//   row 1: [2, 2] | [-inf, 3]       max 2 -> 3, c = .5 on block 1, sum 2
//   row 2: all -inf                 max -inf, sum 0: out 0, lse -inf
//   row 3: [-inf, -inf] | [0, 0]    masked first: c = 1 then 0, sum 2
// acc = [[7, 9], [9, 11], [0, 0], [12, 14]], out = acc / sum (bf16) and
// lse = (max + 1) * ln 2.
func.func @softmax(%scores: tensor<2x4x2xf32>, %v: tensor<4x2xbf16>,
                   %oo: tensor<4x2xbf16>, %olse: tensor<4xf32>, %om: tensor<4xf32>,
                   %ol: tensor<4xf32>, %oa: tensor<4x2xf32>)
    -> (tensor<4x2xbf16>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4x2xf32>) {
  %c1 = arith.constant 1 : index
  %r:5 = tile.program grid(%c1) outs(%oo, %olse, %om, %ol, %oa : tensor<4x2xbf16>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4x2xf32>) {
  ^bb0(%i: index, %out: tensor<4x2xbf16>, %lseo: tensor<4xf32>, %mo: tensor<4xf32>, %lo: tensor<4xf32>, %ao: tensor<4x2xf32>):
    %c0 = arith.constant 0 : index
    %c1i = arith.constant 1 : index
    %c2 = arith.constant 2 : index
    %m0 = arith.constant dense<0xFF800000> : tensor<4xf32>
    %l0 = arith.constant dense<0.0> : tensor<4xf32>
    %a0 = arith.constant dense<0.0> : tensor<4x2xf32>
    %m, %l, %a = scf.for %j = %c0 to %c2 step %c1i iter_args(%mj = %m0, %lj = %l0, %aj = %a0) -> (tensor<4xf32>, tensor<4xf32>, tensor<4x2xf32>) {
      %s = tile.load %scores[%j, %c0, %c0] {row_dims = array<i64: 1>} : tensor<2x4x2xf32> -> tensor<4x2xf32>
      %k0 = arith.muli %j, %c2 : index
      %vt = tile.load %v[%k0, %c0] {row_dims = array<i64: 0>} : tensor<4x2xbf16> -> tensor<2x2xbf16>
      %m1, %l1, %a1 = tile.online_softmax %s, %vt, %mj, %lj, %aj : tensor<4x2xf32>, tensor<2x2xbf16>, tensor<4xf32>, tensor<4x2xf32>
      scf.yield %m1, %l1, %a1 : tensor<4xf32>, tensor<4xf32>, tensor<4x2xf32>
    }
    %o, %lse = tile.softmax_finalize %m, %l, %a : tensor<4xf32>, tensor<4x2xf32> -> tensor<4x2xbf16>
    tile.store %o into %out[%c0, %c0] {row_dims = array<i64: 0>} : tensor<4x2xbf16> into tensor<4x2xbf16>
    tile.store %lse into %lseo[%c0] {row_dims = array<i64: 0>} : tensor<4xf32> into tensor<4xf32>
    tile.store %m into %mo[%c0] {row_dims = array<i64: 0>} : tensor<4xf32> into tensor<4xf32>
    tile.store %l into %lo[%c0] {row_dims = array<i64: 0>} : tensor<4xf32> into tensor<4xf32>
    tile.store %a into %ao[%c0, %c0] {row_dims = array<i64: 0>} : tensor<4x2xf32> into tensor<4x2xf32>
  }
  return %r#0, %r#1, %r#2, %r#3, %r#4 : tensor<4x2xbf16>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4x2xf32>
}

// CHECK:      sizes = [4]
// CHECK-NEXT: [1,  3,  -inf,  0]
// CHECK:      sizes = [4]
// CHECK-NEXT: [2,  2,  0,  2]
// CHECK:      sizes = [4, 2]
// CHECK-NEXT: [7,   9],
// CHECK-NEXT: [9,   11],
// CHECK-NEXT: [0,   0],
// CHECK-NEXT: [12,   14]]
// CHECK:      sizes = [4, 2]
// CHECK-NEXT: [3.5,   4.5],
// CHECK-NEXT: [4.5,   5.5],
// CHECK-NEXT: [0,   0],
// CHECK-NEXT: [6,   7]]
// CHECK:      sizes = [4]
// CHECK-NEXT: [1.38629,  2.77259,  -inf,  0.693147]

func.func private @printMemrefF32(tensor<*xf32>)
func.func private @printMemrefI32(tensor<*xi32>)

func.func @main() {
  %x = arith.constant dense<[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0], [9.0, 10.0]]> : tensor<5x2xf32>
  %x_o = arith.constant dense<0.0> : tensor<5x2xf32>
  %x_d = arith.constant dense<0.0> : tensor<2x4x2xf32>
  %r0:2 = call @ragged(%x, %x_o, %x_d) : (tensor<5x2xf32>, tensor<5x2xf32>, tensor<2x4x2xf32>) -> (tensor<5x2xf32>, tensor<2x4x2xf32>)
  %p00 = tensor.cast %r0#0 : tensor<5x2xf32> to tensor<*xf32>
  call @printMemrefF32(%p00) : (tensor<*xf32>) -> ()
  %p01 = tensor.cast %r0#1 : tensor<2x4x2xf32> to tensor<*xf32>
  call @printMemrefF32(%p01) : (tensor<*xf32>) -> ()

  %q = arith.constant dense<[[[[[0.0, 1.0], [2.0, 3.0]], [[4.0, 5.0], [6.0, 7.0]]],
                               [[[8.0, 9.0], [10.0, 11.0]], [[12.0, 13.0], [14.0, 15.0]]],
                               [[[16.0, 17.0], [18.0, 19.0]], [[20.0, 21.0], [22.0, 23.0]]]]]> : tensor<1x3x2x2x2xf32>
  %q_o = arith.constant dense<-1.0> : tensor<1x3x2x2x2xf32>
  %q_d = arith.constant dense<-1.0> : tensor<2x2x4x2xf32>
  %r1:2 = call @grouped(%q, %q_o, %q_d) : (tensor<1x3x2x2x2xf32>, tensor<1x3x2x2x2xf32>, tensor<2x2x4x2xf32>) -> (tensor<1x3x2x2x2xf32>, tensor<2x2x4x2xf32>)
  %p10 = tensor.cast %r1#0 : tensor<1x3x2x2x2xf32> to tensor<*xf32>
  call @printMemrefF32(%p10) : (tensor<*xf32>) -> ()
  %p11 = tensor.cast %r1#1 : tensor<2x2x4x2xf32> to tensor<*xf32>
  call @printMemrefF32(%p11) : (tensor<*xf32>) -> ()

  %src = arith.constant dense<[[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0]],
                               [[9.0, 10.0], [11.0, 12.0], [13.0, 14.0], [15.0, 16.0]]]> : tensor<2x4x2xf32>
  %rows = arith.constant dense<[2, -1, 4, 0, 3]> : tensor<5xi32>
  %g_o = arith.constant dense<-1.0> : tensor<2x5x2xf32>
  %g_o2 = arith.constant dense<-1.0> : tensor<2x5xf32>
  %r2:2 = call @gather(%src, %rows, %g_o, %g_o2) : (tensor<2x4x2xf32>, tensor<5xi32>, tensor<2x5x2xf32>, tensor<2x5xf32>) -> (tensor<2x5x2xf32>, tensor<2x5xf32>)
  %p2 = tensor.cast %r2#0 : tensor<2x5x2xf32> to tensor<*xf32>
  call @printMemrefF32(%p2) : (tensor<*xf32>) -> ()
  %p2b = tensor.cast %r2#1 : tensor<2x5xf32> to tensor<*xf32>
  call @printMemrefF32(%p2b) : (tensor<*xf32>) -> ()

  %a = arith.constant dense<[[1.0, 2.0, 3.0], [16.0, 1.0, 0.5]]> : tensor<2x3xbf16>
  %b = arith.constant dense<[[1.0, 16.0], [2.0, 1.0], [0.25, 1.0]]> : tensor<3x2xbf16>
  %bt = arith.constant dense<[[1.0, 2.0, 0.25], [16.0, 1.0, 1.0]]> : tensor<2x3xbf16>
  %at = arith.constant dense<[[1.0, 16.0], [2.0, 1.0], [3.0, 0.5]]> : tensor<3x2xbf16>
  %d_o = arith.constant dense<-1.0> : tensor<2x2xf32>
  %r3:4 = call @dot(%a, %b, %bt, %at, %d_o, %d_o, %d_o, %d_o) : (tensor<2x3xbf16>, tensor<3x2xbf16>, tensor<2x3xbf16>, tensor<3x2xbf16>, tensor<2x2xf32>, tensor<2x2xf32>, tensor<2x2xf32>, tensor<2x2xf32>) -> (tensor<2x2xf32>, tensor<2x2xf32>, tensor<2x2xf32>, tensor<2x2xf32>)
  %p30 = tensor.cast %r3#0 : tensor<2x2xf32> to tensor<*xf32>
  call @printMemrefF32(%p30) : (tensor<*xf32>) -> ()
  %p31 = tensor.cast %r3#1 : tensor<2x2xf32> to tensor<*xf32>
  call @printMemrefF32(%p31) : (tensor<*xf32>) -> ()
  %p32 = tensor.cast %r3#2 : tensor<2x2xf32> to tensor<*xf32>
  call @printMemrefF32(%p32) : (tensor<*xf32>) -> ()
  %p33 = tensor.cast %r3#3 : tensor<2x2xf32> to tensor<*xf32>
  call @printMemrefF32(%p33) : (tensor<*xf32>) -> ()

  %s = arith.constant dense<[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0], [10.0, 11.0, 12.0]]> : tensor<4x3xf32>
  %m_i = arith.constant dense<-1> : tensor<4x3xi32>
  %m_f = arith.constant dense<-1.0> : tensor<4x3xf32>
  %m_r = arith.constant dense<-1.0> : tensor<4xf32>
  %r4:5 = call @mask(%s, %m_i, %m_i, %m_f, %m_r, %m_r) : (tensor<4x3xf32>, tensor<4x3xi32>, tensor<4x3xi32>, tensor<4x3xf32>, tensor<4xf32>, tensor<4xf32>) -> (tensor<4x3xi32>, tensor<4x3xi32>, tensor<4x3xf32>, tensor<4xf32>, tensor<4xf32>)
  %p40 = tensor.cast %r4#0 : tensor<4x3xi32> to tensor<*xi32>
  call @printMemrefI32(%p40) : (tensor<*xi32>) -> ()
  %p41 = tensor.cast %r4#1 : tensor<4x3xi32> to tensor<*xi32>
  call @printMemrefI32(%p41) : (tensor<*xi32>) -> ()
  %p42 = tensor.cast %r4#2 : tensor<4x3xf32> to tensor<*xf32>
  call @printMemrefF32(%p42) : (tensor<*xf32>) -> ()
  %p43 = tensor.cast %r4#3 : tensor<4xf32> to tensor<*xf32>
  call @printMemrefF32(%p43) : (tensor<*xf32>) -> ()
  %p44 = tensor.cast %r4#4 : tensor<4xf32> to tensor<*xf32>
  call @printMemrefF32(%p44) : (tensor<*xf32>) -> ()

  %scores = arith.constant dense<[[[1.0, 0xFF800000], [2.0, 2.0], [0xFF800000, 0xFF800000], [0xFF800000, 0xFF800000]],
                                  [[0.0, 0.0], [0xFF800000, 3.0], [0xFF800000, 0xFF800000], [0.0, 0.0]]]> : tensor<2x4x2xf32>
  %v = arith.constant dense<[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0]]> : tensor<4x2xbf16>
  %s_o = arith.constant dense<-1.0> : tensor<4x2xbf16>
  %s_r = arith.constant dense<-1.0> : tensor<4xf32>
  %s_a = arith.constant dense<-1.0> : tensor<4x2xf32>
  %r5:5 = call @softmax(%scores, %v, %s_o, %s_r, %s_r, %s_r, %s_a) : (tensor<2x4x2xf32>, tensor<4x2xbf16>, tensor<4x2xbf16>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4x2xf32>) -> (tensor<4x2xbf16>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4x2xf32>)
  %p52 = tensor.cast %r5#2 : tensor<4xf32> to tensor<*xf32>
  call @printMemrefF32(%p52) : (tensor<*xf32>) -> ()
  %p53 = tensor.cast %r5#3 : tensor<4xf32> to tensor<*xf32>
  call @printMemrefF32(%p53) : (tensor<*xf32>) -> ()
  %p54 = tensor.cast %r5#4 : tensor<4x2xf32> to tensor<*xf32>
  call @printMemrefF32(%p54) : (tensor<*xf32>) -> ()
  %out = arith.extf %r5#0 : tensor<4x2xbf16> to tensor<4x2xf32>
  %p50 = tensor.cast %out : tensor<4x2xf32> to tensor<*xf32>
  call @printMemrefF32(%p50) : (tensor<*xf32>) -> ()
  %p51 = tensor.cast %r5#1 : tensor<4xf32> to tensor<*xf32>
  call @printMemrefF32(%p51) : (tensor<*xf32>) -> ()
  return
}
