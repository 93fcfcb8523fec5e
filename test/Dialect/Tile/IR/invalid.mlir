// RUN: nsa-opt %s -split-input-file -verify-diagnostics

// One case per verifier rule of the tile dialect (each op's verifier in
// TileOps.cpp, then the ODS-level constraints: operand types, attributes,
// traits). Unless a case says otherwise, shapes are the grouped-query ones of
// ops.mlir: q: [B, T, HKV, G, Dk] = [1, 100, 2, 4, 32], k: [1, 100, 2, 32]
// in bf16, with 64-row tiles (16 tokens x G = 4 heads).
// "The view of outs may only be used by tile.store" is a convert-tile-to-scf
// error: see Transforms/convert-tile-to-scf.mlir.

//===----------------------------------------------------------------------===//
// tile.program
//===----------------------------------------------------------------------===//

// The grid has at least one dimension.
func.func @program_grid_empty(%o: tensor<8xf32>) -> tensor<8xf32> {
  // expected-error @+1 {{'tile.program' op grid must have 1 to 3 dimensions, got 0}}
  %r = tile.program grid() outs(%o : tensor<8xf32>) {
  ^bb0(%out: tensor<8xf32>):
  }
  return %r : tensor<8xf32>
}

// -----

// The grid has at most three dimensions.
func.func @program_grid_rank4(%o: tensor<8xf32>, %n: index) -> tensor<8xf32> {
  // expected-error @+1 {{'tile.program' op grid must have 1 to 3 dimensions, got 4}}
  %r = tile.program grid(%n, %n, %n, %n) outs(%o : tensor<8xf32>) {
  ^bb0(%a: index, %b: index, %c: index, %d: index, %out: tensor<8xf32>):
  }
  return %r : tensor<8xf32>
}

// -----

// An occupancy hint asks for at least one resident program.
func.func @program_min_resident_zero(%o: tensor<8xf32>, %n: index) -> tensor<8xf32> {
  %r = tile.program grid(%n) outs(%o : tensor<8xf32>) {
  ^bb0(%i: index, %out: tensor<8xf32>):
  // expected-error @+1 {{'tile.program' op attribute 'min_resident' failed to satisfy constraint: 64-bit signless integer attribute whose value is positive}}
  } {min_resident = 0 : i64}
  return %r : tensor<8xf32>
}

// -----

// The body takes one index per grid dimension and one view per outs (too few).
func.func @program_body_too_few_args(%o0: tensor<8xf32>, %o1: tensor<4xi32>, %n: index) -> (tensor<8xf32>, tensor<4xi32>) {
  // expected-error @+1 {{'tile.program' op body must take 2 index coordinates and one tensor per outs (4 arguments), got 3}}
  %r:2 = tile.program grid(%n, %n) outs(%o0, %o1 : tensor<8xf32>, tensor<4xi32>) {
  ^bb0(%i: index, %j: index, %out0: tensor<8xf32>):
  }
  return %r#0, %r#1 : tensor<8xf32>, tensor<4xi32>
}

// -----

// ... and no more (a third coordinate for a 2-D grid).
func.func @program_body_too_many_args(%o: tensor<8xf32>, %n: index) -> tensor<8xf32> {
  // expected-error @+1 {{'tile.program' op body must take 2 index coordinates and one tensor per outs (3 arguments), got 4}}
  %r = tile.program grid(%n, %n) outs(%o : tensor<8xf32>) {
  ^bb0(%i: index, %j: index, %k: index, %out: tensor<8xf32>):
  }
  return %r : tensor<8xf32>
}

// -----

// Grid coordinates are index.
func.func @program_coordinate_not_index(%o: tensor<8xf32>, %n: index) -> tensor<8xf32> {
  // expected-error @+1 {{'tile.program' op grid coordinate #1 must be an index, got 'i32'}}
  %r = tile.program grid(%n, %n) outs(%o : tensor<8xf32>) {
  ^bb0(%i: index, %j: i32, %out: tensor<8xf32>):
  }
  return %r : tensor<8xf32>
}

// -----

// The view of an out has the out's type.
func.func @program_out_arg_type(%o: tensor<8xf32>, %n: index) -> tensor<8xf32> {
  // expected-error @+1 {{'tile.program' op body argument #1 must have the type of its outs operand ('tensor<8xf32>'), got 'tensor<?xf32>'}}
  %r = tile.program grid(%n) outs(%o : tensor<8xf32>) {
  ^bb0(%i: index, %out: tensor<?xf32>):
  }
  return %r : tensor<8xf32>
}

// -----

// ODS: the grid sizes are index (generic form; the custom form implies index).
func.func @program_grid_not_index(%o: tensor<8xf32>, %n: i32) -> tensor<8xf32> {
  // expected-error @+1 {{'tile.program' op operand #0 must be variadic of index, but got 'i32'}}
  %r = "tile.program"(%n, %o) <{operandSegmentSizes = array<i32: 1, 1>}> ({
  ^bb0(%i: index, %out: tensor<8xf32>):
    "tile.end"() : () -> ()
  }) : (i32, tensor<8xf32>) -> tensor<8xf32>
  return %r : tensor<8xf32>
}

// -----

// ODS: outs are ranked tensors.
func.func @program_outs_memref(%o: memref<8xf32>, %n: index) {
  // expected-error @+1 {{'tile.program' op operand #1 must be variadic of ranked tensor of any type values, but got 'memref<8xf32>'}}
  %r = tile.program grid(%n) outs(%o : memref<8xf32>) {
  ^bb0(%i: index, %out: memref<8xf32>):
  }
  return
}

// -----

// InferTypeOpInterface: the results have the types of the outs.
func.func @program_result_type(%o: tensor<8xf32>, %n: index) -> tensor<4xf32> {
  // expected-error @+2 {{'tile.program' op inferred type(s) 'tensor<8xf32>' are incompatible with return type(s) of operation 'tensor<4xf32>'}}
  // expected-error @+1 {{'tile.program' op failed to infer returned types}}
  %r = "tile.program"(%n, %o) <{operandSegmentSizes = array<i32: 1, 1>}> ({
  ^bb0(%i: index, %out: tensor<8xf32>):
    "tile.end"() : () -> ()
  }) : (index, tensor<8xf32>) -> tensor<4xf32>
  return %r : tensor<4xf32>
}

// -----

// SizedRegion<1>: the body is one block.
func.func @program_two_blocks(%o: tensor<8xf32>, %n: index) -> tensor<8xf32> {
  // expected-error @+1 {{'tile.program' op expects region #0 to have 0 or 1 blocks}}
  %r = "tile.program"(%n, %o) <{operandSegmentSizes = array<i32: 1, 1>}> ({
  ^bb0(%i: index, %out: tensor<8xf32>):
    "tile.end"() : () -> ()
  ^bb1:
    "tile.end"() : () -> ()
  }) : (index, tensor<8xf32>) -> tensor<8xf32>
  return %r : tensor<8xf32>
}

// -----

// SingleBlockImplicitTerminator: the body ends with tile.end.
func.func @program_wrong_terminator(%o: tensor<8xf32>, %n: index) -> tensor<8xf32> {
  // expected-error @+2 {{'tile.program' op expects regions to end with 'tile.end', found 'llvm.unreachable'}}
  // expected-note @+1 {{in custom textual format, the absence of terminator implies 'tile.end'}}
  %r = "tile.program"(%n, %o) <{operandSegmentSizes = array<i32: 1, 1>}> ({
  ^bb0(%i: index, %out: tensor<8xf32>):
    "llvm.unreachable"() : () -> ()
  }) : (index, tensor<8xf32>) -> tensor<8xf32>
  return %r : tensor<8xf32>
}

// -----

//===----------------------------------------------------------------------===//
// tile.end
//===----------------------------------------------------------------------===//

// HasParent: tile.end only ends a program body.
func.func @end_outside_program() {
  // expected-error @+1 {{'tile.end' op expects parent op 'tile.program'}}
  tile.end
}

// -----

//===----------------------------------------------------------------------===//
// tile.load (the row-access rules it shares with tile.store)
//===----------------------------------------------------------------------===//

// One index per dimension of the source.
func.func @load_index_count(%q: tensor<1x100x2x4x32xbf16>, %i: index) -> tensor<64x32xbf16> {
  // expected-error @+1 {{'tile.load' op expected one index per dimension of 'source' (5), got 4}}
  %t = tile.load %q[%i, %i, %i, %i] {row_dims = array<i64: 1, 3>} : tensor<1x100x2x4x32xbf16> -> tensor<64x32xbf16>
  return %t : tensor<64x32xbf16>
}

// -----

// The tile is statically shaped.
func.func @load_dynamic_tile(%k: tensor<1x100x2x32xbf16>, %i: index) -> tensor<?x32xbf16> {
  // expected-error @+1 {{'tile.load' op tile 'tile' must have a static shape, got 'tensor<?x32xbf16>'}}
  %t = tile.load %k[%i, %i, %i, %i] {row_dims = array<i64: 1>} : tensor<1x100x2x32xbf16> -> tensor<?x32xbf16>
  return %t : tensor<?x32xbf16>
}

// -----

// The tile has rank 1 or 2 (not 0) ...
func.func @load_tile_rank0(%x: tensor<10xi32>, %i: index) -> tensor<i32> {
  // expected-error @+1 {{'tile.load' op tile must have rank 1 (rows) or 2 (rows x columns), got 'tensor<i32>'}}
  %t = tile.load %x[%i] {row_dims = array<i64: 0>} : tensor<10xi32> -> tensor<i32>
  return %t : tensor<i32>
}

// -----

// ... (nor 3).
func.func @load_tile_rank3(%q: tensor<1x100x2x4x32xbf16>, %i: index) -> tensor<16x4x32xbf16> {
  // expected-error @+1 {{'tile.load' op tile must have rank 1 (rows) or 2 (rows x columns), got 'tensor<16x4x32xbf16>'}}
  %t = tile.load %q[%i, %i, %i, %i, %i] {row_dims = array<i64: 1, 3>} : tensor<1x100x2x4x32xbf16> -> tensor<16x4x32xbf16>
  return %t : tensor<16x4x32xbf16>
}

// -----

// The tile has the source's element type.
func.func @load_element_type(%k: tensor<1x100x2x32xbf16>, %i: index) -> tensor<16x32xf32> {
  // expected-error @+1 {{'tile.load' op tile and 'source' must have one element type, got 'f32' and 'bf16'}}
  %t = tile.load %k[%i, %i, %i, %i] {row_dims = array<i64: 1>} : tensor<1x100x2x32xbf16> -> tensor<16x32xf32>
  return %t : tensor<16x32xf32>
}

// -----

// row_dims is not empty.
func.func @load_row_dims_empty(%k: tensor<1x100x2x32xbf16>, %i: index) -> tensor<16x32xbf16> {
  // expected-error @+1 {{'tile.load' op row_dims must name at least one dimension}}
  %t = tile.load %k[%i, %i, %i, %i] {row_dims = array<i64>} : tensor<1x100x2x32xbf16> -> tensor<16x32xbf16>
  return %t : tensor<16x32xbf16>
}

// -----

// row_dims entries are dimensions (not negative) ...
func.func @load_row_dim_negative(%k: tensor<1x100x2x32xbf16>, %i: index) -> tensor<16x32xbf16> {
  // expected-error @+1 {{'tile.load' op row_dims entry -1 is not a row dimension of 'source' (0 to 2)}}
  %t = tile.load %k[%i, %i, %i, %i] {row_dims = array<i64: -1>} : tensor<1x100x2x32xbf16> -> tensor<16x32xbf16>
  return %t : tensor<16x32xbf16>
}

// -----

// ... and, with a rank-2 tile, not the last (column) dimension.
func.func @load_row_dim_is_column(%k: tensor<1x100x2x32xbf16>, %i: index) -> tensor<16x32xbf16> {
  // expected-error @+1 {{'tile.load' op row_dims entry 3 is not a row dimension of 'source' (0 to 2)}}
  %t = tile.load %k[%i, %i, %i, %i] {row_dims = array<i64: 1, 3>} : tensor<1x100x2x32xbf16> -> tensor<16x32xbf16>
  return %t : tensor<16x32xbf16>
}

// -----

// With a rank-1 tile (no columns) every dimension is a row one, but none past the rank.
func.func @load_rank1_row_dim_past_rank(%x: tensor<10xi32>, %i: index) -> tensor<4xi32> {
  // expected-error @+1 {{'tile.load' op row_dims entry 1 is not a row dimension of 'source' (0 to 0)}}
  %t = tile.load %x[%i] {row_dims = array<i64: 1>} : tensor<10xi32> -> tensor<4xi32>
  return %t : tensor<4xi32>
}

// -----

// row_dims is strictly increasing (no decrease) ...
func.func @load_row_dims_decreasing(%q: tensor<1x100x2x4x32xbf16>, %i: index) -> tensor<64x32xbf16> {
  // expected-error @+1 {{'tile.load' op row_dims must be strictly increasing}}
  %t = tile.load %q[%i, %i, %i, %i, %i] {row_dims = array<i64: 3, 1>} : tensor<1x100x2x4x32xbf16> -> tensor<64x32xbf16>
  return %t : tensor<64x32xbf16>
}

// -----

// ... (no repeat).
func.func @load_row_dims_repeated(%q: tensor<1x100x2x4x32xbf16>, %i: index) -> tensor<64x32xbf16> {
  // expected-error @+1 {{'tile.load' op row_dims must be strictly increasing}}
  %t = tile.load %q[%i, %i, %i, %i, %i] {row_dims = array<i64: 1, 1>} : tensor<1x100x2x4x32xbf16> -> tensor<64x32xbf16>
  return %t : tensor<64x32xbf16>
}

// -----

// Row dimensions after the first are covered whole, so they are static.
func.func @load_inner_row_dim_dynamic(%q: tensor<1x100x2x?x32xbf16>, %i: index) -> tensor<64x32xbf16> {
  // expected-error @+1 {{'tile.load' op row dimension 3 of 'source' after the first must be static}}
  %t = tile.load %q[%i, %i, %i, %i, %i] {row_dims = array<i64: 1, 3>} : tensor<1x100x2x?x32xbf16> -> tensor<64x32xbf16>
  return %t : tensor<64x32xbf16>
}

// -----

// The tile's rows are a whole number of inner row blocks (62 rows, G = 4).
func.func @load_rows_not_multiple(%q: tensor<1x100x2x4x32xbf16>, %i: index) -> tensor<62x32xbf16> {
  // expected-error @+1 {{'tile.load' op tile rows (62) must be a multiple of the inner row dimensions' size (4)}}
  %t = tile.load %q[%i, %i, %i, %i, %i] {row_dims = array<i64: 1, 3>} : tensor<1x100x2x4x32xbf16> -> tensor<62x32xbf16>
  return %t : tensor<62x32xbf16>
}

// -----

// An inner row dimension of size 0 is never a whole number of blocks.
func.func @load_inner_rows_empty(%q: tensor<1x100x2x0x32xbf16>, %i: index) -> tensor<64x32xbf16> {
  // expected-error @+1 {{'tile.load' op tile rows (64) must be a multiple of the inner row dimensions' size (0)}}
  %t = tile.load %q[%i, %i, %i, %i, %i] {row_dims = array<i64: 1, 3>} : tensor<1x100x2x0x32xbf16> -> tensor<64x32xbf16>
  return %t : tensor<64x32xbf16>
}

// -----

// A rank-2 tile's columns are the source's last dimension, whole.
func.func @load_columns(%k: tensor<1x100x2x32xbf16>, %i: index) -> tensor<16x16xbf16> {
  // expected-error @+1 {{'tile.load' op tile columns (16) must equal the last dimension of 'source' (32)}}
  %t = tile.load %k[%i, %i, %i, %i] {row_dims = array<i64: 1>} : tensor<1x100x2x32xbf16> -> tensor<16x16xbf16>
  return %t : tensor<16x16xbf16>
}

// -----

// ODS: row_dims is required.
func.func @load_no_row_dims(%x: tensor<10xi32>, %i: index) -> tensor<4xi32> {
  // expected-error @+1 {{'tile.load' op requires attribute 'row_dims'}}
  %t = tile.load %x[%i] : tensor<10xi32> -> tensor<4xi32>
  return %t : tensor<4xi32>
}

// -----

// ODS: row_dims is an i64 array.
func.func @load_row_dims_i32(%x: tensor<10xi32>, %i: index) -> tensor<4xi32> {
  // expected-error @+1 {{'tile.load' op attribute 'row_dims' failed to satisfy constraint: i64 dense array attribute}}
  %t = tile.load %x[%i] {row_dims = array<i32: 0>} : tensor<10xi32> -> tensor<4xi32>
  return %t : tensor<4xi32>
}

// -----

// ODS: the source is a ranked tensor.
func.func @load_source_memref(%x: memref<10xi32>, %i: index) -> tensor<4xi32> {
  // expected-error @+1 {{'tile.load' op operand #0 must be ranked tensor of any type values, but got 'memref<10xi32>'}}
  %t = "tile.load"(%x, %i) {row_dims = array<i64: 0>} : (memref<10xi32>, index) -> tensor<4xi32>
  return %t : tensor<4xi32>
}

// -----

// ODS: indices are index.
func.func @load_index_i32(%x: tensor<10xi32>, %i: i32) -> tensor<4xi32> {
  // expected-error @+1 {{'tile.load' op operand #1 must be variadic of index, but got 'i32'}}
  %t = "tile.load"(%x, %i) {row_dims = array<i64: 0>} : (tensor<10xi32>, i32) -> tensor<4xi32>
  return %t : tensor<4xi32>
}

// -----

//===----------------------------------------------------------------------===//
// tile.store
//===----------------------------------------------------------------------===//

// One index per dimension of dest.
func.func @store_index_count(%t: tensor<64x16xbf16>, %o: tensor<1x100x2x4x16xbf16>, %n: index) -> tensor<1x100x2x4x16xbf16> {
  %r = tile.program grid(%n) outs(%o : tensor<1x100x2x4x16xbf16>) {
  ^bb0(%i: index, %out: tensor<1x100x2x4x16xbf16>):
    // expected-error @+1 {{'tile.store' op expected one index per dimension of 'dest' (5), got 6}}
    tile.store %t into %out[%i, %i, %i, %i, %i, %i] {row_dims = array<i64: 1, 3>} : tensor<64x16xbf16> into tensor<1x100x2x4x16xbf16>
  }
  return %r : tensor<1x100x2x4x16xbf16>
}

// -----

// row_stride is at least 1.
func.func @store_row_stride_zero(%t: tensor<16x16xbf16>, %o: tensor<1x100x2x16xbf16>, %n: index) -> tensor<1x100x2x16xbf16> {
  %r = tile.program grid(%n) outs(%o : tensor<1x100x2x16xbf16>) {
  ^bb0(%i: index, %out: tensor<1x100x2x16xbf16>):
    // expected-error @+1 {{'tile.store' op row_stride must be at least 1, got 0}}
    tile.store %t into %out[%i, %i, %i, %i] {row_dims = array<i64: 1>, row_stride = 0 : i64} : tensor<16x16xbf16> into tensor<1x100x2x16xbf16>
  }
  return %r : tensor<1x100x2x16xbf16>
}

// -----

// A row stride spaces the rows of one row dimension only.
func.func @store_row_stride_two_dims(%t: tensor<64x16xbf16>, %o: tensor<1x100x2x4x16xbf16>, %n: index) -> tensor<1x100x2x4x16xbf16> {
  %r = tile.program grid(%n) outs(%o : tensor<1x100x2x4x16xbf16>) {
  ^bb0(%i: index, %out: tensor<1x100x2x4x16xbf16>):
    // expected-error @+1 {{'tile.store' op row_stride needs exactly one row dimension}}
    tile.store %t into %out[%i, %i, %i, %i, %i] {row_dims = array<i64: 1, 3>, row_stride = 2 : i64} : tensor<64x16xbf16> into tensor<1x100x2x4x16xbf16>
  }
  return %r : tensor<1x100x2x4x16xbf16>
}

// -----

// The stored tile is statically shaped.
func.func @store_dynamic_tile(%t: tensor<?xf32>, %o: tensor<100xf32>, %n: index) -> tensor<100xf32> {
  %r = tile.program grid(%n) outs(%o : tensor<100xf32>) {
  ^bb0(%i: index, %out: tensor<100xf32>):
    // expected-error @+1 {{'tile.store' op tile 'tile' must have a static shape, got 'tensor<?xf32>'}}
    tile.store %t into %out[%i] {row_dims = array<i64: 0>} : tensor<?xf32> into tensor<100xf32>
  }
  return %r : tensor<100xf32>
}

// -----

// The stored tile has rank 1 or 2.
func.func @store_tile_rank3(%t: tensor<16x4x16xbf16>, %o: tensor<1x100x2x4x16xbf16>, %n: index) -> tensor<1x100x2x4x16xbf16> {
  %r = tile.program grid(%n) outs(%o : tensor<1x100x2x4x16xbf16>) {
  ^bb0(%i: index, %out: tensor<1x100x2x4x16xbf16>):
    // expected-error @+1 {{'tile.store' op tile must have rank 1 (rows) or 2 (rows x columns), got 'tensor<16x4x16xbf16>'}}
    tile.store %t into %out[%i, %i, %i, %i, %i] {row_dims = array<i64: 1, 3>} : tensor<16x4x16xbf16> into tensor<1x100x2x4x16xbf16>
  }
  return %r : tensor<1x100x2x4x16xbf16>
}

// -----

// The stored tile has dest's element type.
func.func @store_element_type(%t: tensor<64x16xf32>, %o: tensor<1x100x2x4x16xbf16>, %n: index) -> tensor<1x100x2x4x16xbf16> {
  %r = tile.program grid(%n) outs(%o : tensor<1x100x2x4x16xbf16>) {
  ^bb0(%i: index, %out: tensor<1x100x2x4x16xbf16>):
    // expected-error @+1 {{'tile.store' op tile and 'dest' must have one element type, got 'f32' and 'bf16'}}
    tile.store %t into %out[%i, %i, %i, %i, %i] {row_dims = array<i64: 1, 3>} : tensor<64x16xf32> into tensor<1x100x2x4x16xbf16>
  }
  return %r : tensor<1x100x2x4x16xbf16>
}

// -----

// row_dims is not empty.
func.func @store_row_dims_empty(%t: tensor<8xf32>, %o: tensor<100xf32>, %n: index) -> tensor<100xf32> {
  %r = tile.program grid(%n) outs(%o : tensor<100xf32>) {
  ^bb0(%i: index, %out: tensor<100xf32>):
    // expected-error @+1 {{'tile.store' op row_dims must name at least one dimension}}
    tile.store %t into %out[%i] {row_dims = array<i64>} : tensor<8xf32> into tensor<100xf32>
  }
  return %r : tensor<100xf32>
}

// -----

// row_dims entries are row dimensions of dest.
func.func @store_row_dim_out_of_range(%t: tensor<64x16xbf16>, %o: tensor<1x100x2x4x16xbf16>, %n: index) -> tensor<1x100x2x4x16xbf16> {
  %r = tile.program grid(%n) outs(%o : tensor<1x100x2x4x16xbf16>) {
  ^bb0(%i: index, %out: tensor<1x100x2x4x16xbf16>):
    // expected-error @+1 {{'tile.store' op row_dims entry 4 is not a row dimension of 'dest' (0 to 3)}}
    tile.store %t into %out[%i, %i, %i, %i, %i] {row_dims = array<i64: 1, 4>} : tensor<64x16xbf16> into tensor<1x100x2x4x16xbf16>
  }
  return %r : tensor<1x100x2x4x16xbf16>
}

// -----

// row_dims is strictly increasing.
func.func @store_row_dims_decreasing(%t: tensor<64x16xbf16>, %o: tensor<1x100x2x4x16xbf16>, %n: index) -> tensor<1x100x2x4x16xbf16> {
  %r = tile.program grid(%n) outs(%o : tensor<1x100x2x4x16xbf16>) {
  ^bb0(%i: index, %out: tensor<1x100x2x4x16xbf16>):
    // expected-error @+1 {{'tile.store' op row_dims must be strictly increasing}}
    tile.store %t into %out[%i, %i, %i, %i, %i] {row_dims = array<i64: 3, 1>} : tensor<64x16xbf16> into tensor<1x100x2x4x16xbf16>
  }
  return %r : tensor<1x100x2x4x16xbf16>
}

// -----

// Inner row dimensions of dest are static.
func.func @store_inner_row_dim_dynamic(%t: tensor<64x16xbf16>, %o: tensor<1x100x2x?x16xbf16>, %n: index) -> tensor<1x100x2x?x16xbf16> {
  %r = tile.program grid(%n) outs(%o : tensor<1x100x2x?x16xbf16>) {
  ^bb0(%i: index, %out: tensor<1x100x2x?x16xbf16>):
    // expected-error @+1 {{'tile.store' op row dimension 3 of 'dest' after the first must be static}}
    tile.store %t into %out[%i, %i, %i, %i, %i] {row_dims = array<i64: 1, 3>} : tensor<64x16xbf16> into tensor<1x100x2x?x16xbf16>
  }
  return %r : tensor<1x100x2x?x16xbf16>
}

// -----

// The stored rows are a whole number of inner row blocks (2 x 4 = 8 here).
func.func @store_rows_not_multiple(%t: tensor<60x16xbf16>, %o: tensor<1x100x2x4x16xbf16>, %n: index) -> tensor<1x100x2x4x16xbf16> {
  %r = tile.program grid(%n) outs(%o : tensor<1x100x2x4x16xbf16>) {
  ^bb0(%i: index, %out: tensor<1x100x2x4x16xbf16>):
    // expected-error @+1 {{'tile.store' op tile rows (60) must be a multiple of the inner row dimensions' size (8)}}
    tile.store %t into %out[%i, %i, %i, %i, %i] {row_dims = array<i64: 1, 2, 3>} : tensor<60x16xbf16> into tensor<1x100x2x4x16xbf16>
  }
  return %r : tensor<1x100x2x4x16xbf16>
}

// -----

// The stored columns are dest's last dimension.
func.func @store_columns(%t: tensor<64x32xbf16>, %o: tensor<1x100x2x4x16xbf16>, %n: index) -> tensor<1x100x2x4x16xbf16> {
  %r = tile.program grid(%n) outs(%o : tensor<1x100x2x4x16xbf16>) {
  ^bb0(%i: index, %out: tensor<1x100x2x4x16xbf16>):
    // expected-error @+1 {{'tile.store' op tile columns (32) must equal the last dimension of 'dest' (16)}}
    tile.store %t into %out[%i, %i, %i, %i, %i] {row_dims = array<i64: 1, 3>} : tensor<64x32xbf16> into tensor<1x100x2x4x16xbf16>
  }
  return %r : tensor<1x100x2x4x16xbf16>
}

// -----

// dest is an outs view, not any tensor (here a function argument) ...
func.func @store_dest_not_block_arg(%t: tensor<8xf32>, %x: tensor<100xf32>, %o: tensor<100xf32>, %n: index) -> tensor<100xf32> {
  %r = tile.program grid(%n) outs(%o : tensor<100xf32>) {
  ^bb0(%i: index, %out: tensor<100xf32>):
    // expected-error @+1 {{'tile.store' op dest must be an outs argument of the enclosing tile.program}}
    tile.store %t into %x[%i] {row_dims = array<i64: 0>} : tensor<8xf32> into tensor<100xf32>
  }
  return %r : tensor<100xf32>
}

// -----

// ... (nor a tensor computed in the body) ...
func.func @store_dest_computed(%t: tensor<8xf32>, %o: tensor<100xf32>, %n: index) -> tensor<100xf32> {
  %r = tile.program grid(%n) outs(%o : tensor<100xf32>) {
  ^bb0(%i: index, %out: tensor<100xf32>):
    %e = tensor.empty() : tensor<100xf32>
    // expected-error @+1 {{'tile.store' op dest must be an outs argument of the enclosing tile.program}}
    tile.store %t into %e[%i] {row_dims = array<i64: 0>} : tensor<8xf32> into tensor<100xf32>
  }
  return %r : tensor<100xf32>
}

// -----

// ... of the enclosing program, not of an outer one.
func.func @store_dest_outer_program(%t: tensor<8xf32>, %o: tensor<100xf32>, %o2: tensor<8xf32>, %n: index) -> tensor<100xf32> {
  %r = tile.program grid(%n) outs(%o : tensor<100xf32>) {
  ^bb0(%i: index, %out: tensor<100xf32>):
    %r2 = tile.program grid(%n) outs(%o2 : tensor<8xf32>) {
    ^bb0(%j: index, %out2: tensor<8xf32>):
      // expected-error @+1 {{'tile.store' op dest must be an outs argument of the enclosing tile.program}}
      tile.store %t into %out[%j] {row_dims = array<i64: 0>} : tensor<8xf32> into tensor<100xf32>
    }
  }
  return %r : tensor<100xf32>
}

// -----

// HasParent: a store sits directly in a program body, not in a function ...
func.func @store_outside_program(%t: tensor<8xf32>, %o: tensor<100xf32>, %i: index) {
  // expected-error @+1 {{'tile.store' op expects parent op 'tile.program'}}
  tile.store %t into %o[%i] {row_dims = array<i64: 0>} : tensor<8xf32> into tensor<100xf32>
  return
}

// -----

// ... nor nested in a region inside the program.
func.func @store_nested_in_if(%t: tensor<8xf32>, %o: tensor<100xf32>, %n: index, %c: i1) -> tensor<100xf32> {
  %r = tile.program grid(%n) outs(%o : tensor<100xf32>) {
  ^bb0(%i: index, %out: tensor<100xf32>):
    scf.if %c {
      // expected-error @+1 {{'tile.store' op expects parent op 'tile.program'}}
      tile.store %t into %out[%i] {row_dims = array<i64: 0>} : tensor<8xf32> into tensor<100xf32>
    }
  }
  return %r : tensor<100xf32>
}

// -----

// ODS: the stored value is a ranked tensor.
func.func @store_value_unranked(%t: tensor<*xf32>, %o: tensor<100xf32>, %n: index) -> tensor<100xf32> {
  %r = tile.program grid(%n) outs(%o : tensor<100xf32>) {
  ^bb0(%i: index, %out: tensor<100xf32>):
    // expected-error @+1 {{'tile.store' op operand #0 must be ranked tensor of any type values, but got 'tensor<*xf32>'}}
    "tile.store"(%t, %out, %i) {row_dims = array<i64: 0>} : (tensor<*xf32>, tensor<100xf32>, index) -> ()
  }
  return %r : tensor<100xf32>
}

// -----

//===----------------------------------------------------------------------===//
// tile.gather
//===----------------------------------------------------------------------===//

// row_dims are row dimensions: not negative (-1 prints as 2^64 - 1 in
// an I64Attr, but row_dims is an array of signed entries) ...
func.func @gather_row_dims_negative(%k: tensor<1x100x2x32xbf16>, %b: index, %h: index, %rows: tensor<16xi32>) -> tensor<16x32xbf16> {
  // expected-error @+1 {{'tile.gather' op row_dims entry -1 is not a row dimension of 'source' (0 to 2)}}
  %t = tile.gather %k[%b, %h] rows %rows {row_dims = array<i64: -1>} : tensor<1x100x2x32xbf16>, tensor<16xi32> -> tensor<16x32xbf16>
  return %t : tensor<16x32xbf16>
}

// -----

// ... not the column dimension of a rank-2 result ...
func.func @gather_row_dims_column(%k: tensor<1x100x2x32xbf16>, %b: index, %h: index, %rows: tensor<16xi32>) -> tensor<16x32xbf16> {
  // expected-error @+1 {{'tile.gather' op row_dims entry 3 is not a row dimension of 'source' (0 to 2)}}
  %t = tile.gather %k[%b, %h] rows %rows {row_dims = array<i64: 3>} : tensor<1x100x2x32xbf16>, tensor<16xi32> -> tensor<16x32xbf16>
  return %t : tensor<16x32xbf16>
}

// -----

// ... and strictly increasing.
func.func @gather_row_dims_order(%k: tensor<1x100x2x32xbf16>, %b: index, %h: index, %rows: tensor<16xi32>) -> tensor<16x32xbf16> {
  // expected-error @+1 {{'tile.gather' op row_dims must be strictly increasing}}
  %t = tile.gather %k[%b] rows %rows {row_dims = array<i64: 2, 1>} : tensor<1x100x2x32xbf16>, tensor<16xi32> -> tensor<16x32xbf16>
  return %t : tensor<16x32xbf16>
}

// -----

// Row dimensions after the first have a static size.
func.func @gather_inner_row_dim_dynamic(%k: tensor<1x100x?x32xbf16>, %b: index, %rows: tensor<16xi32>) -> tensor<16x32xbf16> {
  // expected-error @+1 {{'tile.gather' op row dimension 2 of 'source' after the first must be static}}
  %t = tile.gather %k[%b] rows %rows {row_dims = array<i64: 1, 2>} : tensor<1x100x?x32xbf16>, tensor<16xi32> -> tensor<16x32xbf16>
  return %t : tensor<16x32xbf16>
}

// -----

// The inner row dimensions split a row index: they are not empty.
func.func @gather_inner_row_dim_empty(%k: tensor<2x4x0xf32>, %h: index, %rows: tensor<5xi32>) -> tensor<5xf32> {
  // expected-error @+1 {{'tile.gather' op the inner row dimensions of 'source' must not be empty, got 'tensor<2x4x0xf32>'}}
  %t = tile.gather %k[%h] rows %rows {row_dims = array<i64: 1, 2>} : tensor<2x4x0xf32>, tensor<5xi32> -> tensor<5xf32>
  return %t : tensor<5xf32>
}

// -----

// One index per dimension but the row and the column ones ...
func.func @gather_index_count(%k: tensor<1x100x2x32xbf16>, %b: index, %rows: tensor<16xi32>) -> tensor<16x32xbf16> {
  // expected-error @+1 {{'tile.gather' op expected one index per dimension of 'source' but the row and column ones (2), got 3}}
  %t = tile.gather %k[%b, %b, %b] rows %rows {row_dims = array<i64: 1>} : tensor<1x100x2x32xbf16>, tensor<16xi32> -> tensor<16x32xbf16>
  return %t : tensor<16x32xbf16>
}

// -----

// ... where a rank-1 result has no column dimension.
func.func @gather_index_count_rank1(%k: tensor<1x100x2x32xbf16>, %b: index, %h: index, %rows: tensor<16xi32>) -> tensor<16xbf16> {
  // expected-error @+1 {{'tile.gather' op expected one index per dimension of 'source' but the row ones (3), got 2}}
  %t = tile.gather %k[%b, %h] rows %rows {row_dims = array<i64: 1>} : tensor<1x100x2x32xbf16>, tensor<16xi32> -> tensor<16xbf16>
  return %t : tensor<16xbf16>
}

// -----

// The result is statically shaped ...
func.func @gather_dynamic_result(%k: tensor<1x100x2x32xbf16>, %b: index, %h: index, %rows: tensor<16xi32>) -> tensor<?x32xbf16> {
  // expected-error @+1 {{'tile.gather' op tile 'result' must have a static shape, got 'tensor<?x32xbf16>'}}
  %t = tile.gather %k[%b, %h] rows %rows {row_dims = array<i64: 1>} : tensor<1x100x2x32xbf16>, tensor<16xi32> -> tensor<?x32xbf16>
  return %t : tensor<?x32xbf16>
}

// -----

// ... and so are the rows.
func.func @gather_dynamic_rows(%k: tensor<1x100x2x32xbf16>, %b: index, %h: index, %rows: tensor<?xi32>) -> tensor<16x32xbf16> {
  // expected-error @+1 {{'tile.gather' op tile 'rows' must have a static shape, got 'tensor<?xi32>'}}
  %t = tile.gather %k[%b, %h] rows %rows {row_dims = array<i64: 1>} : tensor<1x100x2x32xbf16>, tensor<?xi32> -> tensor<16x32xbf16>
  return %t : tensor<16x32xbf16>
}

// -----

// Rows are i32.
func.func @gather_rows_i64(%k: tensor<1x100x2x32xbf16>, %b: index, %h: index, %rows: tensor<16xi64>) -> tensor<16x32xbf16> {
  // expected-error @+1 {{'tile.gather' op rows must hold i32 indices, got 'tensor<16xi64>'}}
  %t = tile.gather %k[%b, %h] rows %rows {row_dims = array<i64: 1>} : tensor<1x100x2x32xbf16>, tensor<16xi64> -> tensor<16x32xbf16>
  return %t : tensor<16x32xbf16>
}

// -----

// Rows are rank 1 ...
func.func @gather_rows_rank2(%k: tensor<1x100x2x32xbf16>, %b: index, %h: index, %rows: tensor<16x1xi32>) -> tensor<16x32xbf16> {
  // expected-error @+1 {{'tile.gather' op 'rows' must have rank 1, got 'tensor<16x1xi32>'}}
  %t = tile.gather %k[%b, %h] rows %rows {row_dims = array<i64: 1>} : tensor<1x100x2x32xbf16>, tensor<16x1xi32> -> tensor<16x32xbf16>
  return %t : tensor<16x32xbf16>
}

// -----

// ... one per result row.
func.func @gather_rows_count(%k: tensor<1x100x2x32xbf16>, %b: index, %h: index, %rows: tensor<8xi32>) -> tensor<16x32xbf16> {
  // expected-error @+1 {{'tile.gather' op 'rows' dimension 0 must be 16, got 'tensor<8xi32>'}}
  %t = tile.gather %k[%b, %h] rows %rows {row_dims = array<i64: 1>} : tensor<1x100x2x32xbf16>, tensor<8xi32> -> tensor<16x32xbf16>
  return %t : tensor<16x32xbf16>
}

// -----

// The result has rank 1 (rows) or 2 (rows x columns) ...
func.func @gather_result_rank3(%k: tensor<1x100x2x32xbf16>, %b: index, %h: index, %rows: tensor<16xi32>) -> tensor<16x32x1xbf16> {
  // expected-error @+1 {{'tile.gather' op result must have rank 1 (rows) or 2 (rows x columns), got 'tensor<16x32x1xbf16>'}}
  %t = tile.gather %k[%b, %h] rows %rows {row_dims = array<i64: 1>} : tensor<1x100x2x32xbf16>, tensor<16xi32> -> tensor<16x32x1xbf16>
  return %t : tensor<16x32x1xbf16>
}

// -----

// ... whose columns are the source's last dimension.
func.func @gather_result_columns(%k: tensor<1x100x2x32xbf16>, %b: index, %h: index, %rows: tensor<16xi32>) -> tensor<16x16xbf16> {
  // expected-error @+1 {{'tile.gather' op result columns (16) must equal the last dimension of 'source' (32)}}
  %t = tile.gather %k[%b, %h] rows %rows {row_dims = array<i64: 1>} : tensor<1x100x2x32xbf16>, tensor<16xi32> -> tensor<16x16xbf16>
  return %t : tensor<16x16xbf16>
}

// -----

// ... which must be static (columns are not bounds-checked).
func.func @gather_dynamic_columns(%k: tensor<1x100x2x?xbf16>, %b: index, %h: index, %rows: tensor<16xi32>) -> tensor<16x32xbf16> {
  // expected-error @+1 {{'tile.gather' op the last dimension of 'source' (the result's columns) must be static, got 'tensor<1x100x2x?xbf16>'}}
  %t = tile.gather %k[%b, %h] rows %rows {row_dims = array<i64: 1>} : tensor<1x100x2x?xbf16>, tensor<16xi32> -> tensor<16x32xbf16>
  return %t : tensor<16x32xbf16>
}

// -----

// The result has the source's element type.
func.func @gather_element_type(%k: tensor<1x100x2x32xbf16>, %b: index, %h: index, %rows: tensor<16xi32>) -> tensor<16x32xf32> {
  // expected-error @+1 {{'tile.gather' op result and 'source' must have one element type, got 'f32' and 'bf16'}}
  %t = tile.gather %k[%b, %h] rows %rows {row_dims = array<i64: 1>} : tensor<1x100x2x32xbf16>, tensor<16xi32> -> tensor<16x32xf32>
  return %t : tensor<16x32xf32>
}

// -----

// ODS: row_dims is required.
func.func @gather_no_row_dims(%k: tensor<1x100x2x32xbf16>, %b: index, %h: index, %rows: tensor<16xi32>) -> tensor<16x32xbf16> {
  // expected-error @+1 {{'tile.gather' op requires attribute 'row_dims'}}
  %t = tile.gather %k[%b, %h] rows %rows : tensor<1x100x2x32xbf16>, tensor<16xi32> -> tensor<16x32xbf16>
  return %t : tensor<16x32xbf16>
}

// -----

//===----------------------------------------------------------------------===//
// tile.range
//===----------------------------------------------------------------------===//

// The result is statically shaped ...
func.func @range_dynamic(%s: index) -> tensor<?xi32> {
  // expected-error @+1 {{'tile.range' op tile 'result' must have a static shape, got 'tensor<?xi32>'}}
  %r = tile.range %s : tensor<?xi32>
  return %r : tensor<?xi32>
}

// -----

// ... of rank 1 ...
func.func @range_rank2(%s: index) -> tensor<4x4xi32> {
  // expected-error @+1 {{'tile.range' op 'result' must have rank 1, got 'tensor<4x4xi32>'}}
  %r = tile.range %s : tensor<4x4xi32>
  return %r : tensor<4x4xi32>
}

// -----

// ... and i32.
func.func @range_i64(%s: index) -> tensor<64xi64> {
  // expected-error @+1 {{'tile.range' op result must hold i32, got 'tensor<64xi64>'}}
  %r = tile.range %s : tensor<64xi64>
  return %r : tensor<64xi64>
}

// -----

// The divisor is at least 1.
func.func @range_divisor_zero(%s: index) -> tensor<64xi32> {
  // expected-error @+1 {{'tile.range' op divisor must be >= 1, got 0}}
  %r = tile.range %s {divisor = 0} : tensor<64xi32>
  return %r : tensor<64xi32>
}

// -----

// ODS: the start is an index.
func.func @range_start_i32(%s: i32) -> tensor<64xi32> {
  // expected-error @+1 {{'tile.range' op operand #0 must be index, but got 'i32'}}
  %r = "tile.range"(%s) : (i32) -> tensor<64xi32>
  return %r : tensor<64xi32>
}

// -----

//===----------------------------------------------------------------------===//
// tile.broadcast
//===----------------------------------------------------------------------===//

// The value is rank 1.
func.func @broadcast_value_rank2(%v: tensor<64x1xi32>) -> tensor<64x16xi32> {
  // expected-error @+1 {{'tile.broadcast' op 'value' must have rank 1, got 'tensor<64x1xi32>'}}
  %r = tile.broadcast %v {dim = 1} : tensor<64x1xi32> -> tensor<64x16xi32>
  return %r : tensor<64x16xi32>
}

// -----

// The result is statically shaped.
func.func @broadcast_dynamic_result(%v: tensor<64xi32>) -> tensor<64x?xi32> {
  // expected-error @+1 {{'tile.broadcast' op tile 'result' must have a static shape, got 'tensor<64x?xi32>'}}
  %r = tile.broadcast %v {dim = 1} : tensor<64xi32> -> tensor<64x?xi32>
  return %r : tensor<64x?xi32>
}

// -----

// The new dimension is 0 or 1.
func.func @broadcast_dim2(%v: tensor<64xi32>) -> tensor<64x16xi32> {
  // expected-error @+1 {{'tile.broadcast' op dim must be 0 or 1, got 2}}
  %r = tile.broadcast %v {dim = 2} : tensor<64xi32> -> tensor<64x16xi32>
  return %r : tensor<64x16xi32>
}

// -----

// The result is rank 2.
func.func @broadcast_result_rank1(%v: tensor<64xi32>) -> tensor<64xi32> {
  // expected-error @+1 {{'tile.broadcast' op 'result' must have rank 2, got 'tensor<64xi32>'}}
  %r = tile.broadcast %v {dim = 1} : tensor<64xi32> -> tensor<64xi32>
  return %r : tensor<64xi32>
}

// -----

// dim = 1 (one value per row): the rows are the value's size ...
func.func @broadcast_rows(%v: tensor<64xi32>) -> tensor<16x64xi32> {
  // expected-error @+1 {{'tile.broadcast' op 'result' dimension 0 must be 64, got 'tensor<16x64xi32>'}}
  %r = tile.broadcast %v {dim = 1} : tensor<64xi32> -> tensor<16x64xi32>
  return %r : tensor<16x64xi32>
}

// -----

// ... dim = 0 (one value per column): the columns are.
func.func @broadcast_columns(%v: tensor<16xi32>) -> tensor<16x64xi32> {
  // expected-error @+1 {{'tile.broadcast' op 'result' dimension 1 must be 16, got 'tensor<16x64xi32>'}}
  %r = tile.broadcast %v {dim = 0} : tensor<16xi32> -> tensor<16x64xi32>
  return %r : tensor<16x64xi32>
}

// -----

// The result has the value's element type.
func.func @broadcast_element_type(%v: tensor<64xi32>) -> tensor<64x16xf32> {
  // expected-error @+1 {{'tile.broadcast' op result must have the element type of 'value'}}
  %r = tile.broadcast %v {dim = 1} : tensor<64xi32> -> tensor<64x16xf32>
  return %r : tensor<64x16xf32>
}

// -----

// ODS: dim is required.
func.func @broadcast_no_dim(%v: tensor<64xi32>) -> tensor<64x16xi32> {
  // expected-error @+1 {{'tile.broadcast' op requires attribute 'dim'}}
  %r = tile.broadcast %v : tensor<64xi32> -> tensor<64x16xi32>
  return %r : tensor<64x16xi32>
}

// -----

//===----------------------------------------------------------------------===//
// tile.dot
//===----------------------------------------------------------------------===//

// Operands are statically shaped (lhs) ...
func.func @dot_dynamic_lhs(%a: tensor<?x32xbf16>, %b: tensor<32x16xbf16>) -> tensor<64x16xf32> {
  // expected-error @+1 {{'tile.dot' op tile 'lhs' must have a static shape, got 'tensor<?x32xbf16>'}}
  %r = tile.dot %a, %b : tensor<?x32xbf16>, tensor<32x16xbf16> -> tensor<64x16xf32>
  return %r : tensor<64x16xf32>
}

// -----

// ... (rhs) ...
func.func @dot_dynamic_rhs(%a: tensor<64x32xbf16>, %b: tensor<32x?xbf16>) -> tensor<64x16xf32> {
  // expected-error @+1 {{'tile.dot' op tile 'rhs' must have a static shape, got 'tensor<32x?xbf16>'}}
  %r = tile.dot %a, %b : tensor<64x32xbf16>, tensor<32x?xbf16> -> tensor<64x16xf32>
  return %r : tensor<64x16xf32>
}

// -----

// ... and so is the result.
func.func @dot_dynamic_result(%a: tensor<64x32xbf16>, %b: tensor<32x16xbf16>) -> tensor<64x?xf32> {
  // expected-error @+1 {{'tile.dot' op tile 'result' must have a static shape, got 'tensor<64x?xf32>'}}
  %r = tile.dot %a, %b : tensor<64x32xbf16>, tensor<32x16xbf16> -> tensor<64x?xf32>
  return %r : tensor<64x?xf32>
}

// -----

// Operands are matrices (lhs) ...
func.func @dot_lhs_rank1(%a: tensor<32xbf16>, %b: tensor<32x16xbf16>) -> tensor<64x16xf32> {
  // expected-error @+1 {{'tile.dot' op 'lhs' must have rank 2, got 'tensor<32xbf16>'}}
  %r = tile.dot %a, %b : tensor<32xbf16>, tensor<32x16xbf16> -> tensor<64x16xf32>
  return %r : tensor<64x16xf32>
}

// -----

// ... (rhs) ...
func.func @dot_rhs_rank3(%a: tensor<64x32xbf16>, %b: tensor<1x32x16xbf16>) -> tensor<64x16xf32> {
  // expected-error @+1 {{'tile.dot' op 'rhs' must have rank 2, got 'tensor<1x32x16xbf16>'}}
  %r = tile.dot %a, %b : tensor<64x32xbf16>, tensor<1x32x16xbf16> -> tensor<64x16xf32>
  return %r : tensor<64x16xf32>
}

// -----

// ... and so is the result.
func.func @dot_result_rank1(%a: tensor<64x32xbf16>, %b: tensor<32x16xbf16>) -> tensor<64xf32> {
  // expected-error @+1 {{'tile.dot' op 'result' must have rank 2, got 'tensor<64xf32>'}}
  %r = tile.dot %a, %b : tensor<64x32xbf16>, tensor<32x16xbf16> -> tensor<64xf32>
  return %r : tensor<64xf32>
}

// -----

// Operands are bf16, f16 or f32.
func.func @dot_i32(%a: tensor<64x32xi32>, %b: tensor<32x16xi32>) -> tensor<64x16xf32> {
  // expected-error @+1 {{'tile.dot' op lhs must hold bf16, f16 or f32, got 'i32'}}
  %r = tile.dot %a, %b : tensor<64x32xi32>, tensor<32x16xi32> -> tensor<64x16xf32>
  return %r : tensor<64x16xf32>
}

// -----

// Operands have one element type.
func.func @dot_mixed_types(%a: tensor<64x32xbf16>, %b: tensor<32x16xf16>) -> tensor<64x16xf32> {
  // expected-error @+1 {{'tile.dot' op lhs and rhs must have one element type}}
  %r = tile.dot %a, %b : tensor<64x32xbf16>, tensor<32x16xf16> -> tensor<64x16xf32>
  return %r : tensor<64x16xf32>
}

// -----

// The result is the f32 accumulator.
func.func @dot_result_bf16(%a: tensor<64x32xbf16>, %b: tensor<32x16xbf16>) -> tensor<64x16xbf16> {
  // expected-error @+1 {{'tile.dot' op result must be f32 (the accumulator)}}
  %r = tile.dot %a, %b : tensor<64x32xbf16>, tensor<32x16xbf16> -> tensor<64x16xbf16>
  return %r : tensor<64x16xbf16>
}

// -----

// lhs [M, K] . rhs [K, N]: the contraction sizes agree.
func.func @dot_contraction(%a: tensor<64x32xbf16>, %b: tensor<16x32xbf16>) -> tensor<64x32xf32> {
  // expected-error @+1 {{'tile.dot' op contraction sizes differ: lhs has K = 32, rhs has 16}}
  %r = tile.dot %a, %b : tensor<64x32xbf16>, tensor<16x32xbf16> -> tensor<64x32xf32>
  return %r : tensor<64x32xf32>
}

// -----

// With rhs_transposed, rhs is [N, K]: K is its second dimension.
func.func @dot_transposed_contraction(%a: tensor<64x32xbf16>, %b: tensor<32x16xbf16>) -> tensor<64x32xf32> {
  // expected-error @+1 {{'tile.dot' op contraction sizes differ: lhs has K = 32, rhs has 16}}
  %r = tile.dot %a, %b {rhs_transposed} : tensor<64x32xbf16>, tensor<32x16xbf16> -> tensor<64x32xf32>
  return %r : tensor<64x32xf32>
}

// -----

// The result is [M, N]: M rows ...
func.func @dot_result_rows(%a: tensor<64x32xbf16>, %b: tensor<32x16xbf16>) -> tensor<32x16xf32> {
  // expected-error @+1 {{'tile.dot' op 'result' dimension 0 must be 64, got 'tensor<32x16xf32>'}}
  %r = tile.dot %a, %b : tensor<64x32xbf16>, tensor<32x16xbf16> -> tensor<32x16xf32>
  return %r : tensor<32x16xf32>
}

// -----

// ... and N columns, rhs's second dimension ...
func.func @dot_result_columns(%a: tensor<64x32xbf16>, %b: tensor<32x16xbf16>) -> tensor<64x32xf32> {
  // expected-error @+1 {{'tile.dot' op 'result' dimension 1 must be 16, got 'tensor<64x32xf32>'}}
  %r = tile.dot %a, %b : tensor<64x32xbf16>, tensor<32x16xbf16> -> tensor<64x32xf32>
  return %r : tensor<64x32xf32>
}

// -----

// ... or, with rhs_transposed, its first.
func.func @dot_transposed_result_columns(%a: tensor<64x32xbf16>, %b: tensor<16x32xbf16>) -> tensor<64x32xf32> {
  // expected-error @+1 {{'tile.dot' op 'result' dimension 1 must be 16, got 'tensor<64x32xf32>'}}
  %r = tile.dot %a, %b {rhs_transposed} : tensor<64x32xbf16>, tensor<16x32xbf16> -> tensor<64x32xf32>
  return %r : tensor<64x32xf32>
}

// -----

// ODS: rhs_transposed is a unit attribute.
func.func @dot_transposed_not_unit(%a: tensor<64x32xbf16>, %b: tensor<16x32xbf16>) -> tensor<64x16xf32> {
  // expected-error @+1 {{'tile.dot' op attribute 'rhs_transposed' failed to satisfy constraint: unit attribute}}
  %r = tile.dot %a, %b {rhs_transposed = true} : tensor<64x32xbf16>, tensor<16x32xbf16> -> tensor<64x16xf32>
  return %r : tensor<64x16xf32>
}

// -----

// With lhs_transposed, lhs is [K, M]: K is its first dimension.
func.func @dot_lhs_transposed_contraction(%a: tensor<32x64xbf16>, %b: tensor<64x16xbf16>) -> tensor<32x16xf32> {
  // expected-error @+1 {{'tile.dot' op contraction sizes differ: lhs has K = 32, rhs has 64}}
  %r = tile.dot %a, %b {lhs_transposed} : tensor<32x64xbf16>, tensor<64x16xbf16> -> tensor<32x16xf32>
  return %r : tensor<32x16xf32>
}

// -----

// With lhs_transposed, the result's M rows are lhs's second dimension.
func.func @dot_lhs_transposed_result_rows(%a: tensor<32x64xbf16>, %b: tensor<32x16xbf16>) -> tensor<32x16xf32> {
  // expected-error @+1 {{'tile.dot' op 'result' dimension 0 must be 64, got 'tensor<32x16xf32>'}}
  %r = tile.dot %a, %b {lhs_transposed} : tensor<32x64xbf16>, tensor<32x16xbf16> -> tensor<32x16xf32>
  return %r : tensor<32x16xf32>
}

// -----

// With both transposed (lhs [K, M], rhs [N, K]), K is lhs's first and rhs's second dimension.
func.func @dot_both_transposed_contraction(%a: tensor<32x64xbf16>, %b: tensor<16x64xbf16>) -> tensor<64x16xf32> {
  // expected-error @+1 {{'tile.dot' op contraction sizes differ: lhs has K = 32, rhs has 64}}
  %r = tile.dot %a, %b {lhs_transposed, rhs_transposed} : tensor<32x64xbf16>, tensor<16x64xbf16> -> tensor<64x16xf32>
  return %r : tensor<64x16xf32>
}

// -----

// With both transposed the result is [M, N] = [lhs dim 1, rhs dim 0].
func.func @dot_both_transposed_result(%a: tensor<32x64xbf16>, %b: tensor<16x32xbf16>) -> tensor<64x32xf32> {
  // expected-error @+1 {{'tile.dot' op 'result' dimension 1 must be 16, got 'tensor<64x32xf32>'}}
  %r = tile.dot %a, %b {lhs_transposed, rhs_transposed} : tensor<32x64xbf16>, tensor<16x32xbf16> -> tensor<64x32xf32>
  return %r : tensor<64x32xf32>
}

// -----

// ODS: lhs_transposed is a unit attribute.
func.func @dot_lhs_transposed_not_unit(%a: tensor<32x64xbf16>, %b: tensor<32x16xbf16>) -> tensor<64x16xf32> {
  // expected-error @+1 {{'tile.dot' op attribute 'lhs_transposed' failed to satisfy constraint: unit attribute}}
  %r = tile.dot %a, %b {lhs_transposed = 1 : i64} : tensor<32x64xbf16>, tensor<32x16xbf16> -> tensor<64x16xf32>
  return %r : tensor<64x16xf32>
}

// -----

//===----------------------------------------------------------------------===//
// tile.masked_fill
//===----------------------------------------------------------------------===//

// The mask has the value's shape ...
func.func @masked_fill_mask_shape(%s: tensor<64x16xf32>, %m: tensor<64x8xi1>, %f: f32) -> tensor<64x16xf32> {
  // expected-error @+1 {{'tile.masked_fill' op mask must be i1 of the value's shape, got 'tensor<64x8xi1>'}}
  %r = tile.masked_fill %s, %m, %f : tensor<64x16xf32>, tensor<64x8xi1>, f32
  return %r : tensor<64x16xf32>
}

// -----

// ... and is i1.
func.func @masked_fill_mask_i32(%s: tensor<64x16xf32>, %m: tensor<64x16xi32>, %f: f32) -> tensor<64x16xf32> {
  // expected-error @+1 {{'tile.masked_fill' op mask must be i1 of the value's shape, got 'tensor<64x16xi32>'}}
  %r = tile.masked_fill %s, %m, %f : tensor<64x16xf32>, tensor<64x16xi32>, f32
  return %r : tensor<64x16xf32>
}

// -----

// The fill is a scalar of the value's element type.
func.func @masked_fill_fill_type(%s: tensor<64x16xf32>, %m: tensor<64x16xi1>, %f: f16) -> tensor<64x16xf32> {
  // expected-error @+1 {{'tile.masked_fill' op fill must have the value's element type ('f32'), got 'f16'}}
  %r = tile.masked_fill %s, %m, %f : tensor<64x16xf32>, tensor<64x16xi1>, f16
  return %r : tensor<64x16xf32>
}

// -----

// ODS (AllTypesMatch): the result has the value's type.
func.func @masked_fill_result_type(%s: tensor<64x16xf32>, %m: tensor<64x16xi1>, %f: f32) -> tensor<64x16xf16> {
  // expected-error @+1 {{'tile.masked_fill' op failed to verify that all of {value, result} have same type}}
  %r = "tile.masked_fill"(%s, %m, %f) : (tensor<64x16xf32>, tensor<64x16xi1>, f32) -> tensor<64x16xf16>
  return %r : tensor<64x16xf16>
}

// -----

//===----------------------------------------------------------------------===//
// tile.reduce
//===----------------------------------------------------------------------===//

// The value is statically shaped ...
func.func @reduce_dynamic(%s: tensor<?x16xf32>) -> tensor<64xf32> {
  // expected-error @+1 {{'tile.reduce' op tile 'value' must have a static shape, got 'tensor<?x16xf32>'}}
  %r = tile.reduce max %s : tensor<?x16xf32> -> tensor<64xf32>
  return %r : tensor<64xf32>
}

// -----

// ... of rank 2.
func.func @reduce_value_rank1(%s: tensor<64xf32>) -> tensor<64xf32> {
  // expected-error @+1 {{'tile.reduce' op 'value' must have rank 2, got 'tensor<64xf32>'}}
  %r = tile.reduce sum %s : tensor<64xf32> -> tensor<64xf32>
  return %r : tensor<64xf32>
}

// -----

// The result is rank 1 ...
func.func @reduce_result_rank2(%s: tensor<64x16xf32>) -> tensor<64x1xf32> {
  // expected-error @+1 {{'tile.reduce' op 'result' must have rank 1, got 'tensor<64x1xf32>'}}
  %r = tile.reduce max %s : tensor<64x16xf32> -> tensor<64x1xf32>
  return %r : tensor<64x1xf32>
}

// -----

// ... with one element per row (not per column).
func.func @reduce_result_size(%s: tensor<64x16xf32>) -> tensor<16xf32> {
  // expected-error @+1 {{'tile.reduce' op 'result' dimension 0 must be 64, got 'tensor<16xf32>'}}
  %r = tile.reduce sum %s : tensor<64x16xf32> -> tensor<16xf32>
  return %r : tensor<16xf32>
}

// -----

// The result has the value's element type.
func.func @reduce_element_type(%s: tensor<64x16xf32>) -> tensor<64xbf16> {
  // expected-error @+1 {{'tile.reduce' op result must have the element type of 'value'}}
  %r = tile.reduce max %s : tensor<64x16xf32> -> tensor<64xbf16>
  return %r : tensor<64xbf16>
}

// -----

// ODS: the kind is max or sum.
func.func @reduce_kind(%s: tensor<64x16xf32>) -> tensor<64xf32> {
  // expected-error @+1 {{expected string or keyword containing one of the following enum values for attribute 'kind' [max, sum]}}
  %r = tile.reduce min %s : tensor<64x16xf32> -> tensor<64xf32>
  return %r : tensor<64xf32>
}

// -----

//===----------------------------------------------------------------------===//
// tile.group_sum
//===----------------------------------------------------------------------===//

// The groups are equal: the result's rows divide the value's.
func.func @group_sum_uneven(%s: tensor<64x16xf32>) -> tensor<5x16xf32> {
  // expected-error @+1 {{'tile.group_sum' op result rows (5) must divide the value's rows (64) into equal groups}}
  %r = tile.group_sum %s : tensor<64x16xf32> -> tensor<5x16xf32>
  return %r : tensor<5x16xf32>
}

// -----

// Columns are kept.
func.func @group_sum_columns(%s: tensor<64x16xf32>) -> tensor<4x8xf32> {
  // expected-error @+1 {{'tile.group_sum' op 'result' dimension 1 must be 16, got 'tensor<4x8xf32>'}}
  %r = tile.group_sum %s : tensor<64x16xf32> -> tensor<4x8xf32>
  return %r : tensor<4x8xf32>
}

// -----

// Floats only.
func.func @group_sum_int(%s: tensor<64x16xi32>) -> tensor<4x16xi32> {
  // expected-error @+1 {{'tile.group_sum' op tile 'value' must hold floats, got 'tensor<64x16xi32>'}}
  %r = tile.group_sum %s : tensor<64x16xi32> -> tensor<4x16xi32>
  return %r : tensor<4x16xi32>
}

// -----

// The result has the value's element type.
func.func @group_sum_element_type(%s: tensor<64x16xf32>) -> tensor<4x16xbf16> {
  // expected-error @+1 {{'tile.group_sum' op result must have the element type of 'value'}}
  %r = tile.group_sum %s : tensor<64x16xf32> -> tensor<4x16xbf16>
  return %r : tensor<4x16xbf16>
}

// -----

//===----------------------------------------------------------------------===//
// tile.online_softmax
//===----------------------------------------------------------------------===//

// The scale is positive.
func.func @online_softmax_scale(%s: tensor<64x16xf32>, %v: tensor<16x32xbf16>, %m: tensor<64xf32>, %l: tensor<64xf32>, %a: tensor<64x32xf32>) {
  // expected-error @+1 {{'tile.online_softmax' op scale must be positive and finite, got 0}}
  %m1, %l1, %a1 = tile.online_softmax %s, %v, %m, %l, %a {scale = 0.0 : f32} : tensor<64x16xf32>, tensor<16x32xbf16>, tensor<64xf32>, tensor<64x32xf32>
  return
}

// -----

// The accumulator is statically shaped ...
func.func @online_softmax_dynamic_acc(%s: tensor<64x16xf32>, %v: tensor<16x32xbf16>, %m: tensor<64xf32>, %l: tensor<64xf32>, %a: tensor<64x?xf32>) {
  // expected-error @+1 {{'tile.online_softmax' op tile 'acc' must have a static shape, got 'tensor<64x?xf32>'}}
  %m1, %l1, %a1 = tile.online_softmax %s, %v, %m, %l, %a : tensor<64x16xf32>, tensor<16x32xbf16>, tensor<64xf32>, tensor<64x?xf32>
  return
}

// -----

// ... of rank 2.
func.func @online_softmax_acc_rank1(%s: tensor<64x16xf32>, %v: tensor<16x32xbf16>, %m: tensor<64xf32>, %l: tensor<64xf32>, %a: tensor<64xf32>) {
  // expected-error @+1 {{'tile.online_softmax' op 'acc' must have rank 2, got 'tensor<64xf32>'}}
  %m1, %l1, %a1 = tile.online_softmax %s, %v, %m, %l, %a : tensor<64x16xf32>, tensor<16x32xbf16>, tensor<64xf32>, tensor<64xf32>
  return
}

// -----

// max (and sum) are rank 1 ...
func.func @online_softmax_max_rank2(%s: tensor<64x16xf32>, %v: tensor<16x32xbf16>, %m: tensor<64x1xf32>, %l: tensor<64x1xf32>, %a: tensor<64x32xf32>) {
  // expected-error @+1 {{'tile.online_softmax' op 'max' must have rank 1, got 'tensor<64x1xf32>'}}
  %m1, %l1, %a1 = tile.online_softmax %s, %v, %m, %l, %a : tensor<64x16xf32>, tensor<16x32xbf16>, tensor<64x1xf32>, tensor<64x32xf32>
  return
}

// -----

// ... with one element per row of acc.
func.func @online_softmax_max_rows(%s: tensor<64x16xf32>, %v: tensor<16x32xbf16>, %m: tensor<32xf32>, %l: tensor<32xf32>, %a: tensor<64x32xf32>) {
  // expected-error @+1 {{'tile.online_softmax' op 'max' dimension 0 must be 64, got 'tensor<32xf32>'}}
  %m1, %l1, %a1 = tile.online_softmax %s, %v, %m, %l, %a : tensor<64x16xf32>, tensor<16x32xbf16>, tensor<32xf32>, tensor<64x32xf32>
  return
}

// -----

// The state is f32 (max and sum) ...
func.func @online_softmax_max_bf16(%s: tensor<64x16xf32>, %v: tensor<16x32xbf16>, %m: tensor<64xbf16>, %l: tensor<64xbf16>, %a: tensor<64x32xf32>) {
  // expected-error @+1 {{'tile.online_softmax' op softmax state (max, sum, acc) must be f32}}
  %m1, %l1, %a1 = tile.online_softmax %s, %v, %m, %l, %a : tensor<64x16xf32>, tensor<16x32xbf16>, tensor<64xbf16>, tensor<64x32xf32>
  return
}

// -----

// ... (acc).
func.func @online_softmax_acc_bf16(%s: tensor<64x16xf32>, %v: tensor<16x32xbf16>, %m: tensor<64xf32>, %l: tensor<64xf32>, %a: tensor<64x32xbf16>) {
  // expected-error @+1 {{'tile.online_softmax' op softmax state (max, sum, acc) must be f32}}
  %m1, %l1, %a1 = tile.online_softmax %s, %v, %m, %l, %a : tensor<64x16xf32>, tensor<16x32xbf16>, tensor<64xf32>, tensor<64x32xbf16>
  return
}

// -----

// The scores are [M, N] (rank) ...
func.func @online_softmax_scores_rank1(%s: tensor<64xf32>, %v: tensor<16x32xbf16>, %m: tensor<64xf32>, %l: tensor<64xf32>, %a: tensor<64x32xf32>) {
  // expected-error @+1 {{'tile.online_softmax' op 'scores' must have rank 2, got 'tensor<64xf32>'}}
  %m1, %l1, %a1 = tile.online_softmax %s, %v, %m, %l, %a : tensor<64xf32>, tensor<16x32xbf16>, tensor<64xf32>, tensor<64x32xf32>
  return
}

// -----

// ... (M rows, as acc).
func.func @online_softmax_scores_rows(%s: tensor<32x16xf32>, %v: tensor<16x32xbf16>, %m: tensor<64xf32>, %l: tensor<64xf32>, %a: tensor<64x32xf32>) {
  // expected-error @+1 {{'tile.online_softmax' op 'scores' dimension 0 must be 64, got 'tensor<32x16xf32>'}}
  %m1, %l1, %a1 = tile.online_softmax %s, %v, %m, %l, %a : tensor<32x16xf32>, tensor<16x32xbf16>, tensor<64xf32>, tensor<64x32xf32>
  return
}

// -----

// The values are [N, Dv] (rank) ...
func.func @online_softmax_values_rank3(%s: tensor<64x16xf32>, %v: tensor<1x16x32xbf16>, %m: tensor<64xf32>, %l: tensor<64xf32>, %a: tensor<64x32xf32>) {
  // expected-error @+1 {{'tile.online_softmax' op 'values' must have rank 2, got 'tensor<1x16x32xbf16>'}}
  %m1, %l1, %a1 = tile.online_softmax %s, %v, %m, %l, %a : tensor<64x16xf32>, tensor<1x16x32xbf16>, tensor<64xf32>, tensor<64x32xf32>
  return
}

// -----

// ... (N rows, the scores' columns) ...
func.func @online_softmax_values_rows(%s: tensor<64x16xf32>, %v: tensor<8x32xbf16>, %m: tensor<64xf32>, %l: tensor<64xf32>, %a: tensor<64x32xf32>) {
  // expected-error @+1 {{'tile.online_softmax' op 'values' dimension 0 must be 16, got 'tensor<8x32xbf16>'}}
  %m1, %l1, %a1 = tile.online_softmax %s, %v, %m, %l, %a : tensor<64x16xf32>, tensor<8x32xbf16>, tensor<64xf32>, tensor<64x32xf32>
  return
}

// -----

// ... (Dv columns, as acc).
func.func @online_softmax_values_columns(%s: tensor<64x16xf32>, %v: tensor<16x16xbf16>, %m: tensor<64xf32>, %l: tensor<64xf32>, %a: tensor<64x32xf32>) {
  // expected-error @+1 {{'tile.online_softmax' op 'values' dimension 1 must be 32, got 'tensor<16x16xbf16>'}}
  %m1, %l1, %a1 = tile.online_softmax %s, %v, %m, %l, %a : tensor<64x16xf32>, tensor<16x16xbf16>, tensor<64xf32>, tensor<64x32xf32>
  return
}

// -----

// The scores are f32.
func.func @online_softmax_scores_bf16(%s: tensor<64x16xbf16>, %v: tensor<16x32xbf16>, %m: tensor<64xf32>, %l: tensor<64xf32>, %a: tensor<64x32xf32>) {
  // expected-error @+1 {{'tile.online_softmax' op scores must be f32}}
  %m1, %l1, %a1 = tile.online_softmax %s, %v, %m, %l, %a : tensor<64x16xbf16>, tensor<16x32xbf16>, tensor<64xf32>, tensor<64x32xf32>
  return
}

// -----

// ODS (AllTypesMatch): sum and the new state have max's type ...
func.func @online_softmax_sum_type(%s: tensor<64x16xf32>, %v: tensor<16x32xbf16>, %m: tensor<64xf32>, %l: tensor<32xf32>, %a: tensor<64x32xf32>) {
  // expected-error @+1 {{'tile.online_softmax' op failed to verify that all of {max, sum, new_max, new_sum} have same type}}
  %m1, %l1, %a1 = "tile.online_softmax"(%s, %v, %m, %l, %a) : (tensor<64x16xf32>, tensor<16x32xbf16>, tensor<64xf32>, tensor<32xf32>, tensor<64x32xf32>) -> (tensor<64xf32>, tensor<64xf32>, tensor<64x32xf32>)
  return
}

// -----

// ... and the new acc has acc's.
func.func @online_softmax_new_acc_type(%s: tensor<64x16xf32>, %v: tensor<16x32xbf16>, %m: tensor<64xf32>, %l: tensor<64xf32>, %a: tensor<64x32xf32>) {
  // expected-error @+1 {{'tile.online_softmax' op failed to verify that all of {acc, new_acc} have same type}}
  %m1, %l1, %a1 = "tile.online_softmax"(%s, %v, %m, %l, %a) : (tensor<64x16xf32>, tensor<16x32xbf16>, tensor<64xf32>, tensor<64xf32>, tensor<64x32xf32>) -> (tensor<64xf32>, tensor<64xf32>, tensor<64x16xf32>)
  return
}

// -----

//===----------------------------------------------------------------------===//
// tile.softmax_finalize
//===----------------------------------------------------------------------===//

// The state rules of tile.online_softmax: acc static ...
func.func @softmax_finalize_dynamic_acc(%m: tensor<64xf32>, %l: tensor<64xf32>, %a: tensor<?x32xf32>) {
  // expected-error @+1 {{'tile.softmax_finalize' op tile 'acc' must have a static shape, got 'tensor<?x32xf32>'}}
  %o, %lse = tile.softmax_finalize %m, %l, %a : tensor<64xf32>, tensor<?x32xf32> -> tensor<64x32xbf16>
  return
}

// -----

// ... acc rank 2 ...
func.func @softmax_finalize_acc_rank3(%m: tensor<64xf32>, %l: tensor<64xf32>, %a: tensor<64x32x1xf32>) {
  // expected-error @+1 {{'tile.softmax_finalize' op 'acc' must have rank 2, got 'tensor<64x32x1xf32>'}}
  %o, %lse = tile.softmax_finalize %m, %l, %a : tensor<64xf32>, tensor<64x32x1xf32> -> tensor<64x32xbf16>
  return
}

// -----

// ... max one element per row of acc ...
func.func @softmax_finalize_max_rows(%m: tensor<16xf32>, %l: tensor<16xf32>, %a: tensor<64x32xf32>) {
  // expected-error @+1 {{'tile.softmax_finalize' op 'max' dimension 0 must be 64, got 'tensor<16xf32>'}}
  %o, %lse = tile.softmax_finalize %m, %l, %a : tensor<16xf32>, tensor<64x32xf32> -> tensor<64x32xbf16>
  return
}

// -----

// ... all f32.
func.func @softmax_finalize_state_f16(%m: tensor<64xf16>, %l: tensor<64xf16>, %a: tensor<64x32xf32>) {
  // expected-error @+1 {{'tile.softmax_finalize' op softmax state (max, sum, acc) must be f32}}
  %o, %lse = tile.softmax_finalize %m, %l, %a : tensor<64xf16>, tensor<64x32xf32> -> tensor<64x32xbf16>
  return
}

// -----

// The output has acc's shape (rank) ...
func.func @softmax_finalize_out_rank1(%m: tensor<64xf32>, %l: tensor<64xf32>, %a: tensor<64x32xf32>) {
  // expected-error @+1 {{'tile.softmax_finalize' op 'out' must have rank 2, got 'tensor<2048xbf16>'}}
  %o, %lse = tile.softmax_finalize %m, %l, %a : tensor<64xf32>, tensor<64x32xf32> -> tensor<2048xbf16>
  return
}

// -----

// ... (sizes).
func.func @softmax_finalize_out_shape(%m: tensor<64xf32>, %l: tensor<64xf32>, %a: tensor<64x32xf32>) {
  // expected-error @+1 {{'tile.softmax_finalize' op 'out' dimension 1 must be 32, got 'tensor<64x16xbf16>'}}
  %o, %lse = tile.softmax_finalize %m, %l, %a : tensor<64xf32>, tensor<64x32xf32> -> tensor<64x16xbf16>
  return
}

// -----

// ODS (AllTypesMatch): sum and lse have max's type.
func.func @softmax_finalize_lse_type(%m: tensor<64xf32>, %l: tensor<64xf32>, %a: tensor<64x32xf32>) {
  // expected-error @+1 {{'tile.softmax_finalize' op failed to verify that all of {max, sum, lse} have same type}}
  %o, %lse = "tile.softmax_finalize"(%m, %l, %a) : (tensor<64xf32>, tensor<64xf32>, tensor<64x32xf32>) -> (tensor<64x32xbf16>, tensor<64xbf16>)
  return
}

// -----

//===----------------------------------------------------------------------===//
// tile.topk_merge
//===----------------------------------------------------------------------===//

// The running list is statically shaped ...
func.func @topk_merge_dynamic(%bs: tensor<?x3xf32>, %bi: tensor<?x3xi32>, %s: tensor<3x4xf32>, %c: index) {
  // expected-error @+1 {{'tile.topk_merge' op tile 'scores' must have a static shape, got 'tensor<?x3xf32>'}}
  %s1, %i1 = tile.topk_merge %bs, %bi, %s, %c : tensor<?x3xf32>, tensor<?x3xi32>, tensor<3x4xf32>
  return
}

// -----

// ... [M, n] ...
func.func @topk_merge_rank1(%bs: tensor<3xf32>, %bi: tensor<3xi32>, %s: tensor<3x4xf32>, %c: index) {
  // expected-error @+1 {{'tile.topk_merge' op 'scores' must have rank 2, got 'tensor<3xf32>'}}
  %s1, %i1 = tile.topk_merge %bs, %bi, %s, %c : tensor<3xf32>, tensor<3xi32>, tensor<3x4xf32>
  return
}

// -----

// ... with indices of the scores' shape ...
func.func @topk_merge_indices_shape(%bs: tensor<3x3xf32>, %bi: tensor<3x2xi32>, %s: tensor<3x4xf32>, %c: index) {
  // expected-error @+1 {{'tile.topk_merge' op 'indices' dimension 1 must be 3, got 'tensor<3x2xi32>'}}
  %s1, %i1 = tile.topk_merge %bs, %bi, %s, %c : tensor<3x3xf32>, tensor<3x2xi32>, tensor<3x4xf32>
  return
}

// -----

// ... f32 scores ...
func.func @topk_merge_best_scores_bf16(%bs: tensor<3x3xbf16>, %bi: tensor<3x3xi32>, %s: tensor<3x4xf32>, %c: index) {
  // expected-error @+1 {{'tile.topk_merge' op a top-n list is f32 scores and i32 indices}}
  %s1, %i1 = tile.topk_merge %bs, %bi, %s, %c : tensor<3x3xbf16>, tensor<3x3xi32>, tensor<3x4xf32>
  return
}

// -----

// ... and i32 indices.
func.func @topk_merge_best_indices_i64(%bs: tensor<3x3xf32>, %bi: tensor<3x3xi64>, %s: tensor<3x4xf32>, %c: index) {
  // expected-error @+1 {{'tile.topk_merge' op a top-n list is f32 scores and i32 indices}}
  %s1, %i1 = tile.topk_merge %bs, %bi, %s, %c : tensor<3x3xf32>, tensor<3x3xi64>, tensor<3x4xf32>
  return
}

// -----

// The new scores are [M, N] (rank) ...
func.func @topk_merge_scores_rank1(%bs: tensor<3x3xf32>, %bi: tensor<3x3xi32>, %s: tensor<4xf32>, %c: index) {
  // expected-error @+1 {{'tile.topk_merge' op 'scores' must have rank 2, got 'tensor<4xf32>'}}
  %s1, %i1 = tile.topk_merge %bs, %bi, %s, %c : tensor<3x3xf32>, tensor<3x3xi32>, tensor<4xf32>
  return
}

// -----

// ... (M rows, as the list) ...
func.func @topk_merge_scores_rows(%bs: tensor<3x3xf32>, %bi: tensor<3x3xi32>, %s: tensor<2x4xf32>, %c: index) {
  // expected-error @+1 {{'tile.topk_merge' op 'scores' dimension 0 must be 3, got 'tensor<2x4xf32>'}}
  %s1, %i1 = tile.topk_merge %bs, %bi, %s, %c : tensor<3x3xf32>, tensor<3x3xi32>, tensor<2x4xf32>
  return
}

// -----

// ... and f32.
func.func @topk_merge_scores_f16(%bs: tensor<3x3xf32>, %bi: tensor<3x3xi32>, %s: tensor<3x4xf16>, %c: index) {
  // expected-error @+1 {{'tile.topk_merge' op scores must be f32}}
  %s1, %i1 = tile.topk_merge %bs, %bi, %s, %c : tensor<3x3xf32>, tensor<3x3xi32>, tensor<3x4xf16>
  return
}

// -----

// ODS (AllTypesMatch): the new list has the running list's types.
func.func @topk_merge_new_indices_type(%bs: tensor<3x3xf32>, %bi: tensor<3x3xi32>, %s: tensor<3x4xf32>, %c: index) {
  // expected-error @+1 {{'tile.topk_merge' op failed to verify that all of {best_indices, new_indices} have same type}}
  %s1, %i1 = "tile.topk_merge"(%bs, %bi, %s, %c) : (tensor<3x3xf32>, tensor<3x3xi32>, tensor<3x4xf32>, index) -> (tensor<3x3xf32>, tensor<3x4xi32>)
  return
}

// -----

// ODS: start is an index.
func.func @topk_merge_start_i32(%bs: tensor<3x3xf32>, %bi: tensor<3x3xi32>, %s: tensor<3x4xf32>, %c: i32) {
  // expected-error @+1 {{'tile.topk_merge' op operand #3 must be index, but got 'i32'}}
  %s1, %i1 = "tile.topk_merge"(%bs, %bi, %s, %c) : (tensor<3x3xf32>, tensor<3x3xi32>, tensor<3x4xf32>, i32) -> (tensor<3x3xf32>, tensor<3x3xi32>)
  return
}

// -----

//===----------------------------------------------------------------------===//
// tile.topk_finalize
//===----------------------------------------------------------------------===//

// The list rules of tile.topk_merge: static ...
func.func @topk_finalize_dynamic(%bs: tensor<3x?xf32>, %bi: tensor<3x?xi32>) {
  // expected-error @+1 {{'tile.topk_finalize' op tile 'scores' must have a static shape, got 'tensor<3x?xf32>'}}
  %r = tile.topk_finalize %bs, %bi : tensor<3x?xf32>, tensor<3x?xi32>
  return
}

// -----

// ... rank 2 ...
func.func @topk_finalize_rank3(%bs: tensor<1x3x3xf32>, %bi: tensor<1x3x3xi32>) {
  // expected-error @+1 {{'tile.topk_finalize' op 'scores' must have rank 2, got 'tensor<1x3x3xf32>'}}
  %r = tile.topk_finalize %bs, %bi : tensor<1x3x3xf32>, tensor<1x3x3xi32>
  return
}

// -----

// ... indices of the scores' shape (rank) ...
func.func @topk_finalize_indices_rank1(%bs: tensor<3x3xf32>, %bi: tensor<9xi32>) {
  // expected-error @+1 {{'tile.topk_finalize' op 'indices' must have rank 2, got 'tensor<9xi32>'}}
  %r = tile.topk_finalize %bs, %bi : tensor<3x3xf32>, tensor<9xi32>
  return
}

// -----

// ... (sizes) ...
func.func @topk_finalize_indices_rows(%bs: tensor<3x3xf32>, %bi: tensor<2x3xi32>) {
  // expected-error @+1 {{'tile.topk_finalize' op 'indices' dimension 0 must be 3, got 'tensor<2x3xi32>'}}
  %r = tile.topk_finalize %bs, %bi : tensor<3x3xf32>, tensor<2x3xi32>
  return
}

// -----

// ... f32 scores and i32 indices.
func.func @topk_finalize_indices_f32(%bs: tensor<3x3xf32>, %bi: tensor<3x3xf32>) {
  // expected-error @+1 {{'tile.topk_finalize' op a top-n list is f32 scores and i32 indices}}
  %r = tile.topk_finalize %bs, %bi : tensor<3x3xf32>, tensor<3x3xf32>
  return
}

// -----

// ODS (AllTypesMatch): the result has the indices' type.
func.func @topk_finalize_result_type(%bs: tensor<3x3xf32>, %bi: tensor<3x3xi32>) {
  // expected-error @+1 {{'tile.topk_finalize' op failed to verify that all of {indices, result} have same type}}
  %r = "tile.topk_finalize"(%bs, %bi) : (tensor<3x3xf32>, tensor<3x3xi32>) -> tensor<3x3xi64>
  return
}

// -----

// Tiles hold integers or floats (the CPU lowering needs a zero of the type).
func.func @load_complex(%x: tensor<8x2xcomplex<f32>>) {
  %c0 = arith.constant 0 : index
  // expected-error @+1 {{'tile.load' op tile 'tile' must hold integers or floats, got 'tensor<4x2xcomplex<f32>>'}}
  %t = tile.load %x[%c0, %c0] {row_dims = array<i64: 0>} : tensor<8x2xcomplex<f32>> -> tensor<4x2xcomplex<f32>>
  return
}

// -----

// Tiles are never empty.
func.func @topk_empty(%s: tensor<3x0xf32>, %bs: tensor<3x2xf32>, %bi: tensor<3x2xi32>) {
  %c0 = arith.constant 0 : index
  // expected-error @+1 {{'tile.topk_merge' op tile 'scores' must not be empty, got 'tensor<3x0xf32>'}}
  %a, %b = tile.topk_merge %bs, %bi, %s, %c0 : tensor<3x2xf32>, tensor<3x2xi32>, tensor<3x0xf32>
  return
}

// -----

// Reductions and the softmax compute on floats.
func.func @reduce_int(%x: tensor<4x8xi32>) {
  // expected-error @+1 {{'tile.reduce' op tile 'value' must hold floats, got 'tensor<4x8xi32>'}}
  %r = tile.reduce max %x : tensor<4x8xi32> -> tensor<4xi32>
  return
}

// -----

func.func @finalize_int_out(%m: tensor<4xf32>, %a: tensor<4x8xf32>) {
  // expected-error @+1 {{'tile.softmax_finalize' op tile 'out' must hold floats, got 'tensor<4x8xi32>'}}
  %o, %l = tile.softmax_finalize %m, %m, %a : tensor<4xf32>, tensor<4x8xf32> -> tensor<4x8xi32>
  return
}

// -----

// A negative divisor is read as negative (the attribute getter is unsigned).
func.func @range_negative_divisor(%i: index) {
  // expected-error @+1 {{'tile.range' op divisor must be >= 1, got -1}}
  %r = tile.range %i {divisor = -1 : i64} : tensor<8xi32>
  return
}

// -----

// The inner row dimensions' size must not overflow.
func.func @load_inner_overflow(%x: tensor<1x100x3074457345618258603x3x32xf32>) {
  %c0 = arith.constant 0 : index
  // expected-error @+1 {{'tile.load' op the inner row dimensions' size of 'source' overflows int64}}
  %t = tile.load %x[%c0, %c0, %c0, %c0, %c0] {row_dims = array<i64: 1, 2, 3>} : tensor<1x100x3074457345618258603x3x32xf32> -> tensor<9x32xf32>
  return
}

// -----

//===----------------------------------------------------------------------===//
// tile.compact
//===----------------------------------------------------------------------===//

// values are a rank-1 tile ...
func.func @compact_values_rank2(%v: tensor<4x4xi32>, %m: tensor<4x4xi1>, %r: tensor<4xi32>) {
  // expected-error @+1 {{'tile.compact' op 'values' must have rank 1, got 'tensor<4x4xi32>'}}
  %p, %n = tile.compact %v, %m, %r : tensor<4x4xi32>, tensor<4x4xi1>, tensor<4xi32>
  return
}

// -----

// ... the mask has their shape ...
func.func @compact_mask_shape(%v: tensor<64xi32>, %m: tensor<32xi1>, %r: tensor<4xi32>) {
  // expected-error @+1 {{'tile.compact' op 'mask' dimension 0 must be 64, got 'tensor<32xi1>'}}
  %p, %n = tile.compact %v, %m, %r : tensor<64xi32>, tensor<32xi1>, tensor<4xi32>
  return
}

// -----

// ... and is i1 ...
func.func @compact_mask_i32(%v: tensor<64xi32>, %m: tensor<64xi32>, %r: tensor<4xi32>) {
  // expected-error @+1 {{'tile.compact' op mask must be i1}}
  %p, %n = tile.compact %v, %m, %r : tensor<64xi32>, tensor<64xi32>, tensor<4xi32>
  return
}

// -----

// ... values and ranks are i32 ...
func.func @compact_values_f32(%v: tensor<64xf32>, %m: tensor<64xi1>, %r: tensor<4xi32>) {
  // expected-error @+1 {{'tile.compact' op values and ranks must be i32}}
  %p, %n = tile.compact %v, %m, %r : tensor<64xf32>, tensor<64xi1>, tensor<4xi32>
  return
}

// -----

// ... ranks are static ...
func.func @compact_ranks_dynamic(%v: tensor<64xi32>, %m: tensor<64xi1>, %r: tensor<?xi32>) {
  // expected-error @+1 {{'tile.compact' op tile 'ranks' must have a static shape, got 'tensor<?xi32>'}}
  %p, %n = tile.compact %v, %m, %r : tensor<64xi32>, tensor<64xi1>, tensor<?xi32>
  return
}

// -----

// ODS (AllTypesMatch): the result has the ranks' type.
func.func @compact_result_type(%v: tensor<64xi32>, %m: tensor<64xi1>, %r: tensor<4xi32>) {
  // expected-error @+1 {{'tile.compact' op failed to verify that all of {ranks, result} have same type}}
  %p, %n = "tile.compact"(%v, %m, %r) : (tensor<64xi32>, tensor<64xi1>, tensor<4xi32>) -> (tensor<8xi32>, index)
  return
}
