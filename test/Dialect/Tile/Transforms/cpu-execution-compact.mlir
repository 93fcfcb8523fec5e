// RUN: nsa-opt %s --nsa-lower-tile-to-llvm \
// RUN: | mlir-runner -e main -entry-point-result=void \
// RUN:     -shared-libs=%mlir_runner_utils,%mlir_c_runner_utils \
// RUN: | FileCheck %s

// tile.compact on the CPU path. Values 10 * c, mask set at c = 1, 4, 5, 9
// (4 of 10): ranks [-1, 0, 3, 1, 4, 2, 7, 0] pick
// [-1, 10, 90, 40, -1, 50, -1, 10]; the count goes to the last slot.
func.func @compact(%m: tensor<10xi1>, %r: tensor<8xi32>, %o: tensor<9xi32>)
    -> tensor<9xi32> {
  %c1 = arith.constant 1 : index
  %p = tile.program grid(%c1) outs(%o : tensor<9xi32>) {
  ^bb0(%i: index, %out: tensor<9xi32>):
    %c0 = arith.constant 0 : index
    %c8 = arith.constant 8 : index
    %ten = arith.constant dense<10> : tensor<10xi32>
    %c = tile.range %c0 : tensor<10xi32>
    %v = arith.muli %c, %ten : tensor<10xi32>
    %picked, %count = tile.compact %v, %m, %r : tensor<10xi32>, tensor<10xi1>, tensor<8xi32>
    %n = arith.index_cast %count : index to i32
    %nt = tensor.splat %n : tensor<1xi32>
    tile.store %picked into %out[%c0] {row_dims = array<i64: 0>} : tensor<8xi32> into tensor<9xi32>
    tile.store %nt into %out[%c8] {row_dims = array<i64: 0>} : tensor<1xi32> into tensor<9xi32>
  }
  return %p : tensor<9xi32>
}

func.func @main() {
  %m = arith.constant dense<[false, true, false, false, true, true, false, false, false, true]> : tensor<10xi1>
  %r = arith.constant dense<[-1, 0, 3, 1, 4, 2, 7, 0]> : tensor<8xi32>
  %o = arith.constant dense<7> : tensor<9xi32>
  %res = call @compact(%m, %r, %o) : (tensor<10xi1>, tensor<8xi32>, tensor<9xi32>) -> tensor<9xi32>
  %p = tensor.cast %res : tensor<9xi32> to tensor<*xi32>
  call @printMemrefI32(%p) : (tensor<*xi32>) -> ()
  return
}

func.func private @printMemrefI32(tensor<*xi32>)

// CHECK: [-1,  10,  90,  40,  -1,  50,  -1,  10,  4]
