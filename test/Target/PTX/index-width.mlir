// RUN: nsa-opt %s -split-input-file -convert-tile-to-gpu \
// RUN: | nsa-translate --nsa-to-ptx -split-input-file | FileCheck %s

// Kernels index in 32 bits when every tensor a launch passes has at most
// 2^30 elements (2^26 here): the row offset is a 32-bit shift.
// CHECK-LABEL: .entry copy_k0
// CHECK: shl.b32
// CHECK-NOT: shl.b64
// CHECK: ret;
func.func @copy(%x: tensor<67108864x16xf32>) -> tensor<67108864x16xf32> {
  %c0 = arith.constant 0 : index
  %c64 = arith.constant 64 : index
  %init = tensor.empty() : tensor<67108864x16xf32>
  %r = tile.program grid(%c64) outs(%init : tensor<67108864x16xf32>) {
  ^bb0(%i: index, %out: tensor<67108864x16xf32>):
    %r0 = arith.muli %i, %c64 : index
    %t = tile.load %x[%r0, %c0] {row_dims = array<i64: 0>} : tensor<67108864x16xf32> -> tensor<64x16xf32>
    tile.store %t into %out[%r0, %c0] {row_dims = array<i64: 0>} : tensor<64x16xf32> into tensor<67108864x16xf32>
  }
  return %r : tensor<67108864x16xf32>
}

// -----

// 2^31 elements: 64-bit indices.
// CHECK-LABEL: .entry copy_k0
// CHECK: shl.b64
func.func @copy(%x: tensor<134217728x16xf32>) -> tensor<134217728x16xf32> {
  %c0 = arith.constant 0 : index
  %c64 = arith.constant 64 : index
  %init = tensor.empty() : tensor<134217728x16xf32>
  %r = tile.program grid(%c64) outs(%init : tensor<134217728x16xf32>) {
  ^bb0(%i: index, %out: tensor<134217728x16xf32>):
    %r0 = arith.muli %i, %c64 : index
    %t = tile.load %x[%r0, %c0] {row_dims = array<i64: 0>} : tensor<134217728x16xf32> -> tensor<64x16xf32>
    tile.store %t into %out[%r0, %c0] {row_dims = array<i64: 0>} : tensor<64x16xf32> into tensor<134217728x16xf32>
  }
  return %r : tensor<134217728x16xf32>
}
