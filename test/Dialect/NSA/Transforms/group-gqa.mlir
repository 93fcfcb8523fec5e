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

// -----

// Backward: q, o, lse and d_o are grouped like the forward's q, o and lse
// (each op gets its own expand_shape; cse merges them), d_q comes back
// through collapse_shape, and d_k, d_v (per KV head) are untouched.
// CHECK-LABEL: func.func @backward
// CHECK: %[[QG:.*]] = tensor.expand_shape %arg0 {{\[}}[0], [1], [2, 3], [4]] output_shape [1, 40, 2, 2, 32] : tensor<1x40x4x32xbf16> into tensor<1x40x2x2x32xbf16>
// CHECK: %[[OG:.*]] = tensor.expand_shape %arg4 {{.*}} into tensor<1x40x2x2x16xbf16>
// CHECK: %[[LG:.*]] = tensor.expand_shape %arg5 {{\[}}[0], [1], [2, 3]] output_shape [1, 40, 2, 2] : tensor<1x40x4xf32> into tensor<1x40x2x2xf32>
// CHECK: %[[DG:.*]] = tensor.expand_shape %arg6 {{.*}} into tensor<1x40x2x2x16xbf16>
// CHECK: %[[WQ:.*]], %[[WK:.*]], %[[WV:.*]] = nsa.window_attention_grad %[[QG]], %arg1, %arg2, %[[OG]], %[[LG]] grad %[[DG]]
// CHECK-SAME: -> (tensor<1x40x2x2x32xbf16>, tensor<1x40x2x32xbf16>, tensor<1x40x2x16xbf16>)
// CHECK: %[[DQW:.*]] = tensor.collapse_shape %[[WQ]] {{\[}}[0], [1], [2, 3], [4]] : tensor<1x40x2x2x32xbf16> into tensor<1x40x4x32xbf16>
// CHECK: %[[SQ:.*]], %[[SK:.*]], %{{.*}} = nsa.selected_attention_grad %{{.*}}, %arg1, %arg2, %arg3, %{{.*}}, %{{.*}} grad %{{.*}} config
// CHECK-SAME: (tensor<1x40x2x2x32xbf16>, tensor<1x40x2x32xbf16>, tensor<1x40x2x16xbf16>, tensor<1x40x2x16xi32>, tensor<1x40x2x2x16xbf16>, tensor<1x40x2x2xf32>, tensor<1x40x2x2x16xbf16>)
// CHECK: %[[DQS:.*]] = tensor.collapse_shape %[[SQ]]
// CHECK: %[[CQ:.*]], %{{.*}}, %[[CV:.*]] = nsa.compressed_attention_grad
// CHECK-SAME: -> (tensor<1x40x2x2x32xbf16>, tensor<1x1x2x32xbf16>, tensor<1x1x2x16xbf16>)
// CHECK: %[[DQC:.*]] = tensor.collapse_shape %[[CQ]]
// CHECK: return %[[DQW]], %[[WK]], %[[WV]], %[[DQS]], %[[SK]], %[[DQC]], %[[CV]]
func.func @backward(%q: tensor<1x40x4x32xbf16>, %k: tensor<1x40x2x32xbf16>, %v: tensor<1x40x2x16xbf16>,
    %idx: tensor<1x40x2x16xi32>, %o: tensor<1x40x4x16xbf16>, %lse: tensor<1x40x4xf32>,
    %d_o: tensor<1x40x4x16xbf16>, %kc: tensor<1x1x2x32xbf16>, %vc: tensor<1x1x2x16xbf16>)
    -> (tensor<1x40x4x32xbf16>, tensor<1x40x2x32xbf16>, tensor<1x40x2x16xbf16>,
        tensor<1x40x4x32xbf16>, tensor<1x40x2x32xbf16>, tensor<1x40x4x32xbf16>, tensor<1x1x2x16xbf16>) {
  %wq, %wk, %wv = nsa.window_attention_grad %q, %k, %v, %o, %lse grad %d_o config <w = 16>
      : (tensor<1x40x4x32xbf16>, tensor<1x40x2x32xbf16>, tensor<1x40x2x16xbf16>, tensor<1x40x4x16xbf16>, tensor<1x40x4xf32>, tensor<1x40x4x16xbf16>)
      -> (tensor<1x40x4x32xbf16>, tensor<1x40x2x32xbf16>, tensor<1x40x2x16xbf16>)
  %sq, %sk, %sv = nsa.selected_attention_grad %q, %k, %v, %idx, %o, %lse grad %d_o config <>
      : (tensor<1x40x4x32xbf16>, tensor<1x40x2x32xbf16>, tensor<1x40x2x16xbf16>, tensor<1x40x2x16xi32>, tensor<1x40x4x16xbf16>, tensor<1x40x4xf32>, tensor<1x40x4x16xbf16>)
      -> (tensor<1x40x4x32xbf16>, tensor<1x40x2x32xbf16>, tensor<1x40x2x16xbf16>)
  %cq, %ck, %cv = nsa.compressed_attention_grad %q, %kc, %vc, %o, %lse grad %d_o config <>
      : (tensor<1x40x4x32xbf16>, tensor<1x1x2x32xbf16>, tensor<1x1x2x16xbf16>, tensor<1x40x4x16xbf16>, tensor<1x40x4xf32>, tensor<1x40x4x16xbf16>)
      -> (tensor<1x40x4x32xbf16>, tensor<1x1x2x32xbf16>, tensor<1x1x2x16xbf16>)
  return %wq, %wk, %wv, %sq, %sk, %cq, %cv : tensor<1x40x4x32xbf16>, tensor<1x40x2x32xbf16>, tensor<1x40x2x16xbf16>,
      tensor<1x40x4x32xbf16>, tensor<1x40x2x32xbf16>, tensor<1x40x4x32xbf16>, tensor<1x1x2x16xbf16>
}
