// RUN: nsa-opt %s --nsa-lower-tile-to-llvm \
// RUN: | mlir-runner -e main -entry-point-result=void \
// RUN:     -shared-libs=%mlir_runner_utils,%mlir_c_runner_utils \
// RUN: | FileCheck %s

// Streaming top-3 over two blocks of 4 candidates, then the ascending list.
// Row 0: scores 0..7 are [1, 5, +inf, 2 | 5, -inf, 0.5, 9]: +inf (index 2)
//   first, then 9 (7), then the tie 5 (1) before 5 (4) by smaller index:
//   top = [2, 7, 1] -> ascending [1, 2, 7].
// Row 1: only two candidates are not -inf (3 and 6): [3, 6, -1].
// Row 2: nothing: [-1, -1, -1].
func.func @topk(%s0: tensor<3x4xf32>, %s1: tensor<3x4xf32>, %o: tensor<3x3xi32>)
    -> tensor<3x3xi32> {
  %c1 = arith.constant 1 : index
  %r = tile.program grid(%c1) outs(%o : tensor<3x3xi32>) {
  ^bb0(%i: index, %out: tensor<3x3xi32>):
    %c0 = arith.constant 0 : index
    %c4 = arith.constant 4 : index
    %bs = arith.constant dense<0xFF800000> : tensor<3x3xf32>
    %bi = arith.constant dense<-1> : tensor<3x3xi32>
    %bs1, %bi1 = tile.topk_merge %bs, %bi, %s0, %c0 : tensor<3x3xf32>, tensor<3x3xi32>, tensor<3x4xf32>
    %bs2, %bi2 = tile.topk_merge %bs1, %bi1, %s1, %c4 : tensor<3x3xf32>, tensor<3x3xi32>, tensor<3x4xf32>
    %idx = tile.topk_finalize %bs2, %bi2 : tensor<3x3xf32>, tensor<3x3xi32>
    tile.store %idx into %out[%c0, %c0] {row_dims = array<i64: 0>} : tensor<3x3xi32> into tensor<3x3xi32>
  }
  return %r : tensor<3x3xi32>
}

func.func @main() {
  %s0 = arith.constant dense<[[1.0, 5.0, 0x7F800000, 2.0],
                              [0xFF800000, 0xFF800000, 0xFF800000, 3.0],
                              [0xFF800000, 0xFF800000, 0xFF800000, 0xFF800000]]> : tensor<3x4xf32>
  %s1 = arith.constant dense<[[5.0, 0xFF800000, 0.5, 9.0],
                              [0xFF800000, 0xFF800000, 1.0, 0xFF800000],
                              [0xFF800000, 0xFF800000, 0xFF800000, 0xFF800000]]> : tensor<3x4xf32>
  %o = arith.constant dense<7> : tensor<3x3xi32>
  %r = call @topk(%s0, %s1, %o) : (tensor<3x4xf32>, tensor<3x4xf32>, tensor<3x3xi32>) -> tensor<3x3xi32>
  %p = tensor.cast %r : tensor<3x3xi32> to tensor<*xi32>
  call @printMemrefI32(%p) : (tensor<*xi32>) -> ()
  return
}

func.func private @printMemrefI32(tensor<*xi32>)

// CHECK: [1, 2, 7]
// CHECK-NEXT: [3, 6, -1]
// CHECK-NEXT: [-1, -1, -1]
