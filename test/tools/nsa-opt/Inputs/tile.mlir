// Seed for fuzz.py: tile programs using every tile op (from Dialect/Tile's
// ops.mlir and Transforms tests); fuzzed plainly, with -nsa-decompose and
// with --convert-tile-to-scf.

// Grouped-query window attention: load, dot (both forms), range, broadcast,
// masked_fill, online_softmax, softmax_finalize, reduce, store.
func.func @attention(%q: tensor<1x100x2x4x32xbf16>, %k: tensor<1x?x2x32xbf16>, %v: tensor<1x?x2x16xbf16>, %o0: tensor<1x100x2x4x16xbf16>, %l0: tensor<1x100x2x4xf32>) -> (tensor<1x100x2x4x16xbf16>, tensor<1x100x2x4xf32>) {
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %c7 = arith.constant 7 : index
  %r:2 = tile.program grid(%c1, %c2, %c7) outs(%o0, %l0 : tensor<1x100x2x4x16xbf16>, tensor<1x100x2x4xf32>) {
  ^bb0(%b: index, %h: index, %m: index, %out: tensor<1x100x2x4x16xbf16>, %lout: tensor<1x100x2x4xf32>):
    %c0 = arith.constant 0 : index
    %qt = tile.load %q[%b, %m, %h, %c0, %c0] {row_dims = array<i64: 1, 3>} : tensor<1x100x2x4x32xbf16> -> tensor<64x32xbf16>
    %kt = tile.load %k[%b, %c0, %h, %c0] {row_dims = array<i64: 1>} : tensor<1x?x2x32xbf16> -> tensor<16x32xbf16>
    %vt = tile.load %v[%b, %c0, %h, %c0] {row_dims = array<i64: 1>} : tensor<1x?x2x16xbf16> -> tensor<16x16xbf16>
    %s = tile.dot %qt, %kt {rhs_transposed} : tensor<64x32xbf16>, tensor<16x32xbf16> -> tensor<64x16xf32>
    %rows = tile.range %m {divisor = 4} : tensor<64xi32>
    %cols = tile.range %c0 : tensor<16xi32>
    %rb = tile.broadcast %rows {dim = 1} : tensor<64xi32> -> tensor<64x16xi32>
    %cb = tile.broadcast %cols {dim = 0} : tensor<16xi32> -> tensor<64x16xi32>
    %mask = arith.cmpi sgt, %cb, %rb : tensor<64x16xi32>
    %ninf = arith.constant 0xFF800000 : f32
    %sm = tile.masked_fill %s, %mask, %ninf : tensor<64x16xf32>, tensor<64x16xi1>, f32
    %m0 = arith.constant dense<0xFF800000> : tensor<64xf32>
    %z0 = arith.constant dense<0.0> : tensor<64xf32>
    %a0 = arith.constant dense<0.0> : tensor<64x16xf32>
    %m1, %s1, %a1 = tile.online_softmax %sm, %vt, %m0, %z0, %a0 : tensor<64x16xf32>, tensor<16x16xbf16>, tensor<64xf32>, tensor<64x16xf32>
    %ot, %lse = tile.softmax_finalize %m1, %s1, %a1 : tensor<64xf32>, tensor<64x16xf32> -> tensor<64x16xbf16>
    %mx = tile.reduce max %s : tensor<64x16xf32> -> tensor<64xf32>
    %sum = tile.reduce sum %sm : tensor<64x16xf32> -> tensor<64xf32>
    tile.store %ot into %out[%b, %m, %h, %c0, %c0] {row_dims = array<i64: 1, 3>} : tensor<64x16xbf16> into tensor<1x100x2x4x16xbf16>
    tile.store %lse into %lout[%b, %m, %h, %c0] {row_dims = array<i64: 1, 3>} : tensor<64xf32> into tensor<1x100x2x4xf32>
  }
  return %r#0, %r#1 : tensor<1x100x2x4x16xbf16>, tensor<1x100x2x4xf32>
}

// -----

// Selected blocks: gather rows by an index tile, dot with a plain rhs [K, N].
func.func @gather_dot(%k: tensor<1x?x2x32xbf16>, %idx: tensor<1x?x2x8xi32>, %w: tensor<32x16xbf16>, %o: tensor<1x?x2x16xf32>, %n: index) -> tensor<1x?x2x16xf32> {
  %c2 = arith.constant 2 : index
  %r = tile.program grid(%n, %c2) outs(%o : tensor<1x?x2x16xf32>) {
  ^bb0(%t: index, %h: index, %out: tensor<1x?x2x16xf32>):
    %c0 = arith.constant 0 : index
    %rows = tile.load %idx[%c0, %t, %h, %c0] {row_dims = array<i64: 3>} : tensor<1x?x2x8xi32> -> tensor<8xi32>
    %kt = tile.gather %k[%c0, %h] rows %rows {row_dims = array<i64: 1>} : tensor<1x?x2x32xbf16>, tensor<8xi32> -> tensor<8x32xbf16>
    %p = tile.dot %kt, %w : tensor<8x32xbf16>, tensor<32x16xbf16> -> tensor<8x16xf32>
    tile.store %p into %out[%c0, %t, %h, %c0] {row_dims = array<i64: 1>} : tensor<8x16xf32> into tensor<1x?x2x16xf32>
  }
  return %r : tensor<1x?x2x16xf32>
}

// -----

// Streaming top-3 over two blocks of 4 candidates, then the ascending list.
func.func @topk(%s: tensor<?x8xf32>, %o: tensor<?x3xi32>, %n: index) -> tensor<?x3xi32> {
  %r = tile.program grid(%n) outs(%o : tensor<?x3xi32>) {
  ^bb0(%i: index, %out: tensor<?x3xi32>):
    %c0 = arith.constant 0 : index
    %c4 = arith.constant 4 : index
    %s0 = tile.load %s[%i, %c0] {row_dims = array<i64: 0>} : tensor<?x8xf32> -> tensor<2x8xf32>
    %bs = arith.constant dense<0xFF800000> : tensor<2x3xf32>
    %bi = arith.constant dense<-1> : tensor<2x3xi32>
    %bs1, %bi1 = tile.topk_merge %bs, %bi, %s0, %c0 : tensor<2x3xf32>, tensor<2x3xi32>, tensor<2x8xf32>
    %bs2, %bi2 = tile.topk_merge %bs1, %bi1, %s0, %c4 : tensor<2x3xf32>, tensor<2x3xi32>, tensor<2x8xf32>
    %idx = tile.topk_finalize %bs2, %bi2 : tensor<2x3xf32>, tensor<2x3xi32>
    tile.store %idx into %out[%i, %c0] {row_dims = array<i64: 0>} : tensor<2x3xi32> into tensor<?x3xi32>
  }
  return %r : tensor<?x3xi32>
}

// -----

// Tile ops outside a program, a rank-1 load and a dot with lhs [K, M].
func.func @loose(%x: tensor<10xi32>, %a: tensor<4x8xf16>, %b: tensor<8x4xf16>, %t0: index) -> (tensor<4xi32>, tensor<4x4xf32>, tensor<4x4xf32>) {
  %t = tile.load %x[%t0] {row_dims = array<i64: 0>} : tensor<10xi32> -> tensor<4xi32>
  %d = tile.dot %a, %b : tensor<4x8xf16>, tensor<8x4xf16> -> tensor<4x4xf32>
  %e = tile.dot %b, %b {lhs_transposed} : tensor<8x4xf16>, tensor<8x4xf16> -> tensor<4x4xf32>
  return %t, %d, %e : tensor<4xi32>, tensor<4x4xf32>, tensor<4x4xf32>
}

// -----

// A program nested in another stores into its own outs; the outer one stores
// the inner's result.
func.func @nested(%x: tensor<?xf32>, %o: tensor<?xf32>, %o2: tensor<8xf32>, %n: index) -> tensor<?xf32> {
  %r = tile.program grid(%n) outs(%o : tensor<?xf32>) {
  ^bb0(%i: index, %out: tensor<?xf32>):
    %t = tile.load %x[%i] {row_dims = array<i64: 0>} : tensor<?xf32> -> tensor<8xf32>
    %r2 = tile.program grid(%n) outs(%o2 : tensor<8xf32>) {
    ^bb0(%j: index, %out2: tensor<8xf32>):
      tile.store %t into %out2[%j] {row_dims = array<i64: 0>} : tensor<8xf32> into tensor<8xf32>
    }
    tile.store %r2 into %out[%i] {row_dims = array<i64: 0>} : tensor<8xf32> into tensor<?xf32>
  }
  return %r : tensor<?xf32>
}
