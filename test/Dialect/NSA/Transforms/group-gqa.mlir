// RUN: nsa-opt %s -split-input-file -nsa-group-gqa | FileCheck %s

// G = HQ / HKV = 4: q [1, 100, 8, 32] becomes [1, 100, 2, 4, 32]; o and lse
// come back to [B, T, HQ, ...] through collapse_shape.
// CHECK-LABEL: func.func @window
// CHECK: %[[QG:.*]] = tensor.expand_shape %{{.*}} {{\[}}[0], [1], [2, 3], [4]] output_shape [1, 100, 2, 4, 32] : tensor<1x100x8x32xbf16> into tensor<1x100x2x4x32xbf16>
// CHECK: %[[O:.*]], %[[L:.*]] = nsa.window_attention %[[QG]], %{{.*}}, %{{.*}} config
// CHECK-SAME: -> (tensor<1x100x2x4x16xbf16>, tensor<1x100x2x4xf32>)
// CHECK: %[[OC:.*]] = tensor.collapse_shape %[[O]] {{\[}}[0], [1], [2, 3], [4]] : tensor<1x100x2x4x16xbf16> into tensor<1x100x8x16xbf16>
// CHECK: %[[LC:.*]] = tensor.collapse_shape %[[L]] {{\[}}[0], [1], [2, 3]] : tensor<1x100x2x4xf32> into tensor<1x100x8xf32>
// CHECK: return %[[OC]], %[[LC]]
func.func @window(%q: tensor<1x100x8x32xbf16>, %k: tensor<1x100x2x32xbf16>, %v: tensor<1x100x2x16xbf16>)
    -> (tensor<1x100x8x16xbf16>, tensor<1x100x8xf32>) {
  %o, %lse = nsa.window_attention %q, %k, %v config <>
      : (tensor<1x100x8x32xbf16>, tensor<1x100x2x32xbf16>, tensor<1x100x2x16xbf16>)
      -> (tensor<1x100x8x16xbf16>, tensor<1x100x8xf32>)
  return %o, %lse : tensor<1x100x8x16xbf16>, tensor<1x100x8xf32>
}

// -----

// The compressed branch's lse feeds selection directly in grouped form: the
// collapse/expand pair between them folds away. G = 1 is grouped as well.
// CHECK-LABEL: func.func @compressed_then_select
// CHECK: %[[QG:.*]] = tensor.expand_shape %{{.*}} output_shape [1, 33, 2, 1, 16]
// CHECK: %[[O:.*]], %[[L:.*]] = nsa.compressed_attention %[[QG]]
// CHECK: nsa.select_blocks %{{.*}}, %{{.*}}, %[[L]] config
// CHECK-SAME: (tensor<1x33x2x1x16xf16>, tensor<1x1x2x16xf16>, tensor<1x33x2x1xf32>) -> tensor<1x33x2x16xi32>
func.func @compressed_then_select(%q: tensor<1x33x2x16xf16>, %kc: tensor<1x1x2x16xf16>, %vc: tensor<1x1x2x16xf16>)
    -> (tensor<1x33x2x16xf16>, tensor<1x33x2x16xi32>) {
  %o, %lse = nsa.compressed_attention %q, %kc, %vc config <>
      : (tensor<1x33x2x16xf16>, tensor<1x1x2x16xf16>, tensor<1x1x2x16xf16>)
      -> (tensor<1x33x2x16xf16>, tensor<1x33x2xf32>)
  %idx = nsa.select_blocks %q, %kc, %lse config <>
      : (tensor<1x33x2x16xf16>, tensor<1x1x2x16xf16>, tensor<1x33x2xf32>) -> tensor<1x33x2x16xi32>
  return %o, %idx : tensor<1x33x2x16xf16>, tensor<1x33x2x16xi32>
}

// -----

// Dynamic T is fine; dynamic heads are left alone.
// CHECK-LABEL: func.func @dynamic
// CHECK: tensor.expand_shape %{{.*}} output_shape [1, %{{.*}}, 2, 2, 16] : tensor<1x?x4x16xbf16> into tensor<1x?x2x2x16xbf16>
// CHECK: nsa.selected_attention {{.*}} -> (tensor<1x?x2x2x16xbf16>, tensor<1x?x2x2xf32>)
// CHECK: nsa.window_attention %{{.*}} : (tensor<1x100x?x16xbf16>
func.func @dynamic(%q: tensor<1x?x4x16xbf16>, %k: tensor<1x?x2x16xbf16>, %idx: tensor<1x?x2x16xi32>,
    %qh: tensor<1x100x?x16xbf16>, %kh: tensor<1x100x?x16xbf16>)
    -> (tensor<1x?x4x16xbf16>, tensor<1x100x?x16xbf16>) {
  %o, %lse = nsa.selected_attention %q, %k, %k, %idx config <>
      : (tensor<1x?x4x16xbf16>, tensor<1x?x2x16xbf16>, tensor<1x?x2x16xbf16>, tensor<1x?x2x16xi32>)
      -> (tensor<1x?x4x16xbf16>, tensor<1x?x4xf32>)
  %o2, %lse2 = nsa.window_attention %qh, %kh, %kh config <>
      : (tensor<1x100x?x16xbf16>, tensor<1x100x?x16xbf16>, tensor<1x100x?x16xbf16>)
      -> (tensor<1x100x?x16xbf16>, tensor<1x100x?xf32>)
  return %o, %o2 : tensor<1x?x4x16xbf16>, tensor<1x100x?x16xbf16>
}
