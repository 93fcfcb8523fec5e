// RUN: nsa-opt %s -split-input-file -nsa-decompose | FileCheck %s

// Shared K/V and mean compression: every branch reads the same %k, %v; the
// compressed keys feed both compressed attention and selection, and the
// compressed branch's lse feeds selection.

// CHECK-LABEL: func.func @shared_mean
// CHECK-SAME: (%[[Q:.*]]: tensor<1x100x4x32xbf16>, %[[K:.*]]: tensor<1x100x2x32xbf16>, %[[V:.*]]: tensor<1x100x2x16xbf16>, %[[G:.*]]: tensor<1x100x4x3xbf16>)
// CHECK: %[[KC:.*]] = nsa.compress mean %[[K]] config <{{.*}}> : (tensor<1x100x2x32xbf16>) -> tensor<1x5x2x32xbf16>
// CHECK: %[[VC:.*]] = nsa.compress mean %[[V]] config <{{.*}}> : (tensor<1x100x2x16xbf16>) -> tensor<1x5x2x16xbf16>
// CHECK: %[[OC:.*]], %[[LC:.*]] = nsa.compressed_attention %[[Q]], %[[KC]], %[[VC]]
// CHECK: %[[IDX:.*]] = nsa.select_blocks %[[Q]], %[[KC]], %[[LC]]
// CHECK-SAME: -> tensor<1x100x2x16xi32>
// CHECK: %[[OW:.*]], %{{.*}} = nsa.window_attention %[[Q]], %[[K]], %[[V]]
// CHECK: %[[OS:.*]], %{{.*}} = nsa.selected_attention %[[Q]], %[[K]], %[[V]], %[[IDX]]
// CHECK: %[[O:.*]] = nsa.combine %[[G]], %[[OC]], %[[OS]], %[[OW]]
// CHECK: return %[[O]]
// CHECK-NOT: nsa.attention
func.func @shared_mean(%q: tensor<1x100x4x32xbf16>, %k: tensor<1x100x2x32xbf16>, %v: tensor<1x100x2x16xbf16>,
    %g: tensor<1x100x4x3xbf16>) -> tensor<1x100x4x16xbf16> {
  %o = nsa.attention %q keys(%k) values(%v) gates %g compress mean config <>
      : (tensor<1x100x4x32xbf16>, tensor<1x100x2x32xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x4x3xbf16>)
      -> tensor<1x100x4x16xbf16>
  return %o : tensor<1x100x4x16xbf16>
}

// -----

// Per-branch K/V with linear compression and position encoding: the cmp
// branch's K/V are compressed with (W_k, PE_k) and (W_v, PE_v); slc and win
// read their own K/V. Dynamic T gives a dynamic number of compressed tokens.

// CHECK-LABEL: func.func @per_branch_linear
// CHECK-SAME: (%[[Q:[^:]*]]: tensor<1x?x4x32xf16>, %[[K0:[^:]*]]: {{[^,]*}}, %[[K1:[^:]*]]: {{[^,]*}}, %[[K2:[^:]*]]: {{[^,]*}}, %[[V0:[^:]*]]: {{[^,]*}}, %[[V1:[^:]*]]: {{[^,]*}}, %[[V2:[^:]*]]: {{[^,]*}}, %[[G:[^:]*]]: {{[^,]*}}, %[[WK:[^:]*]]: {{[^,]*}}, %[[WV:[^:]*]]: {{[^,]*}}, %[[PK:[^:]*]]: {{[^,]*}}, %[[PV:[^:]*]]: {{[^,]*}})
// CHECK: %[[KC:.*]] = nsa.compress linear %[[K0]] weight %[[WK]] pe %[[PK]] config <{{.*}}> : ({{.*}}) -> tensor<1x?x2x32xf16>
// CHECK: %[[VC:.*]] = nsa.compress linear %[[V0]] weight %[[WV]] pe %[[PV]]
// CHECK: nsa.compressed_attention %[[Q]], %[[KC]], %[[VC]] config <l = 16, d = 8, l_sel = 32, n = 8, init = 1, local = 2, w = 128>
// CHECK: nsa.select_blocks %[[Q]], %[[KC]]
// CHECK-SAME: -> tensor<1x?x2x8xi32>
// CHECK: nsa.window_attention %[[Q]], %[[K2]], %[[V2]]
// CHECK: nsa.selected_attention %[[Q]], %[[K1]], %[[V1]]
// CHECK: nsa.combine %[[G]]
func.func @per_branch_linear(%q: tensor<1x?x4x32xf16>,
    %k0: tensor<1x?x2x32xf16>, %k1: tensor<1x?x2x32xf16>, %k2: tensor<1x?x2x32xf16>,
    %v0: tensor<1x?x2x16xf16>, %v1: tensor<1x?x2x16xf16>, %v2: tensor<1x?x2x16xf16>,
    %g: tensor<1x?x4x3xf16>, %wk: tensor<2x512x32xf16>, %wv: tensor<2x256x16xf16>,
    %pk: tensor<2x16x32xf16>, %pv: tensor<2x16x16xf16>) -> tensor<1x?x4x16xf16> {
  %o = nsa.attention %q keys(%k0, %k1, %k2) values(%v0, %v1, %v2) gates %g
      compress linear weights(%wk, %wv) pe(%pk, %pv) config <l = 16, d = 8, l_sel = 32, n = 8, w = 128>
      : (tensor<1x?x4x32xf16>, tensor<1x?x2x32xf16>, tensor<1x?x2x32xf16>, tensor<1x?x2x32xf16>,
         tensor<1x?x2x16xf16>, tensor<1x?x2x16xf16>, tensor<1x?x2x16xf16>, tensor<1x?x4x3xf16>,
         tensor<2x512x32xf16>, tensor<2x256x16xf16>, tensor<2x16x32xf16>, tensor<2x16x16xf16>)
      -> tensor<1x?x4x16xf16>
  return %o : tensor<1x?x4x16xf16>
}

// -----

// Backward with shared K/V: the forward is recomputed, combine_grad splits
// d_o per branch, and d_q, d_k, d_v sum the contributions of all branches
// (d_k's cmp part comes back through compress_grad).

// CHECK-LABEL: func.func @grad_shared_linear
// CHECK-SAME: (%[[Q:[^:]*]]: {{[^,]*}}, %[[K:[^:]*]]: {{[^,]*}}, %[[V:[^:]*]]: {{[^,]*}}, %[[G:[^:]*]]: {{[^,]*}}, %[[WK:[^:]*]]: {{[^,]*}}, %[[WV:[^:]*]]: {{[^,]*}}, %[[DO:[^:]*]]: {{[^,]*}})
// CHECK: %[[KC:.*]] = nsa.compress linear %[[K]] weight %[[WK]]
// CHECK: %[[VC:.*]] = nsa.compress linear %[[V]] weight %[[WV]]
// CHECK: %[[OC:.*]], %[[LC:.*]] = nsa.compressed_attention %[[Q]], %[[KC]], %[[VC]]
// CHECK: %[[IDX:.*]] = nsa.select_blocks %[[Q]], %[[KC]], %[[LC]]
// CHECK: %[[OW:.*]], %[[LW:.*]] = nsa.window_attention %[[Q]], %[[K]], %[[V]]
// CHECK: %[[OS:.*]], %[[LS:.*]] = nsa.selected_attention %[[Q]], %[[K]], %[[V]], %[[IDX]]
// CHECK: %[[DG:.*]], %[[DOC:.*]], %[[DOS:.*]], %[[DOW:.*]] = nsa.combine_grad %[[G]], %[[OC]], %[[OS]], %[[OW]] grad %[[DO]]
// CHECK: %[[DQC:.*]], %[[DKC:.*]], %[[DVC:.*]] = nsa.compressed_attention_grad %[[Q]], %[[KC]], %[[VC]], %[[OC]], %[[LC]] grad %[[DOC]]
// CHECK: %[[CK:.*]]:2 = nsa.compress_grad linear %[[K]] weight %[[WK]] grad %[[DKC]]
// CHECK: %[[CV:.*]]:2 = nsa.compress_grad linear %[[V]] weight %[[WV]] grad %[[DVC]]
// CHECK: %[[DQS:.*]], %[[DKS:.*]], %[[DVS:.*]] = nsa.selected_attention_grad %[[Q]], %[[K]], %[[V]], %[[IDX]], %[[OS]], %[[LS]] grad %[[DOS]]
// CHECK: %[[DQW:.*]], %[[DKW:.*]], %[[DVW:.*]] = nsa.window_attention_grad %[[Q]], %[[K]], %[[V]], %[[OW]], %[[LW]] grad %[[DOW]]
// CHECK: %[[DQ0:.*]] = arith.addf %[[DQC]], %[[DQS]]
// CHECK: %[[DQ:.*]] = arith.addf %[[DQ0]], %[[DQW]]
// CHECK: %[[DK0:.*]] = arith.addf %[[CK]]#0, %[[DKS]]
// CHECK: %[[DK:.*]] = arith.addf %[[DK0]], %[[DKW]]
// CHECK: %[[DV0:.*]] = arith.addf %[[CV]]#0, %[[DVS]]
// CHECK: %[[DV:.*]] = arith.addf %[[DV0]], %[[DVW]]
// CHECK: return %[[DQ]], %[[DK]], %[[DV]], %[[DG]], %[[CK]]#1, %[[CV]]#1
func.func @grad_shared_linear(%q: tensor<1x100x4x32xbf16>, %k: tensor<1x100x2x32xbf16>, %v: tensor<1x100x2x16xbf16>,
    %g: tensor<1x100x4x3xbf16>, %wk: tensor<2x1024x32xbf16>, %wv: tensor<2x512x16xbf16>, %do: tensor<1x100x4x16xbf16>)
    -> (tensor<1x100x4x32xbf16>, tensor<1x100x2x32xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x4x3xbf16>,
        tensor<2x1024x32xbf16>, tensor<2x512x16xbf16>) {
  %dq, %dk, %dv, %dg, %dwk, %dwv = nsa.attention_grad %q keys(%k) values(%v) gates %g
      compress linear weights(%wk, %wv) grad %do config <>
      : (tensor<1x100x4x32xbf16>, tensor<1x100x2x32xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x4x3xbf16>,
         tensor<2x1024x32xbf16>, tensor<2x512x16xbf16>, tensor<1x100x4x16xbf16>)
      -> (tensor<1x100x4x32xbf16>, tensor<1x100x2x32xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x4x3xbf16>,
          tensor<2x1024x32xbf16>, tensor<2x512x16xbf16>)
  return %dq, %dk, %dv, %dg, %dwk, %dwv : tensor<1x100x4x32xbf16>, tensor<1x100x2x32xbf16>, tensor<1x100x2x16xbf16>,
      tensor<1x100x4x3xbf16>, tensor<2x1024x32xbf16>, tensor<2x512x16xbf16>
}

// -----

// Backward with per-branch K/V, mean compression: each branch's d_k/d_v is
// returned on its own (no sums), cmp's through compress_grad.

// CHECK-LABEL: func.func @grad_per_branch_mean
// CHECK: %[[DG:.*]], %{{.*}}, %{{.*}}, %{{.*}} = nsa.combine_grad
// CHECK: %[[DQC:.*]], %[[DKC:.*]], %[[DVC:.*]] = nsa.compressed_attention_grad
// CHECK: %[[DK0:.*]] = nsa.compress_grad mean %{{.*}} grad %[[DKC]]
// CHECK: %[[DV0:.*]] = nsa.compress_grad mean %{{.*}} grad %[[DVC]]
// CHECK: %[[DQS:.*]], %[[DK1:.*]], %[[DV1:.*]] = nsa.selected_attention_grad
// CHECK: %[[DQW:.*]], %[[DK2:.*]], %[[DV2:.*]] = nsa.window_attention_grad
// CHECK: %[[DQ0:.*]] = arith.addf %[[DQC]], %[[DQS]]
// CHECK: %[[DQ:.*]] = arith.addf %[[DQ0]], %[[DQW]]
// CHECK-NOT: arith.addf
// CHECK: return %[[DQ]], %[[DK0]], %[[DK1]], %[[DK2]], %[[DV0]], %[[DV1]], %[[DV2]], %[[DG]]
func.func @grad_per_branch_mean(%q: tensor<1x100x4x32xbf16>,
    %k0: tensor<1x100x2x32xbf16>, %k1: tensor<1x100x2x32xbf16>, %k2: tensor<1x100x2x32xbf16>,
    %v0: tensor<1x100x2x32xbf16>, %v1: tensor<1x100x2x32xbf16>, %v2: tensor<1x100x2x32xbf16>,
    %g: tensor<1x100x4x3xbf16>, %do: tensor<1x100x4x32xbf16>)
    -> (tensor<1x100x4x32xbf16>, tensor<1x100x2x32xbf16>, tensor<1x100x2x32xbf16>, tensor<1x100x2x32xbf16>,
        tensor<1x100x2x32xbf16>, tensor<1x100x2x32xbf16>, tensor<1x100x2x32xbf16>, tensor<1x100x4x3xbf16>) {
  %r:8 = nsa.attention_grad %q keys(%k0, %k1, %k2) values(%v0, %v1, %v2) gates %g compress mean grad %do config <>
      : (tensor<1x100x4x32xbf16>, tensor<1x100x2x32xbf16>, tensor<1x100x2x32xbf16>, tensor<1x100x2x32xbf16>,
         tensor<1x100x2x32xbf16>, tensor<1x100x2x32xbf16>, tensor<1x100x2x32xbf16>, tensor<1x100x4x3xbf16>,
         tensor<1x100x4x32xbf16>)
      -> (tensor<1x100x4x32xbf16>, tensor<1x100x2x32xbf16>, tensor<1x100x2x32xbf16>, tensor<1x100x2x32xbf16>,
          tensor<1x100x2x32xbf16>, tensor<1x100x2x32xbf16>, tensor<1x100x2x32xbf16>, tensor<1x100x4x3xbf16>)
  return %r#0, %r#1, %r#2, %r#3, %r#4, %r#5, %r#6, %r#7 : tensor<1x100x4x32xbf16>, tensor<1x100x2x32xbf16>,
      tensor<1x100x2x32xbf16>, tensor<1x100x2x32xbf16>, tensor<1x100x2x32xbf16>, tensor<1x100x2x32xbf16>,
      tensor<1x100x2x32xbf16>, tensor<1x100x4x3xbf16>
}

// -----

// A forward that saves its intermediates returns them after o, in the order
// nsa.attention_grad takes them.

// CHECK-LABEL: func.func @forward_saves
// CHECK: %[[KC:.*]] = nsa.compress mean
// CHECK: %[[VC:.*]] = nsa.compress mean
// CHECK: %[[OC:.*]], %[[LC:.*]] = nsa.compressed_attention
// CHECK: %[[IDX:.*]] = nsa.select_blocks
// CHECK: %[[OW:.*]], %[[LW:.*]] = nsa.window_attention
// CHECK: %[[OS:.*]], %[[LS:.*]] = nsa.selected_attention
// CHECK: %[[O:.*]] = nsa.combine
// CHECK: return %[[O]], %[[KC]], %[[VC]], %[[OC]], %[[LC]], %[[IDX]], %[[OS]], %[[LS]], %[[OW]], %[[LW]]
func.func @forward_saves(%q: tensor<1x100x4x32xbf16>, %k: tensor<1x100x2x32xbf16>, %v: tensor<1x100x2x16xbf16>,
    %g: tensor<1x100x4x3xbf16>) -> (tensor<1x100x4x16xbf16>, tensor<1x5x2x32xbf16>, tensor<1x5x2x16xbf16>,
    tensor<1x100x4x16xbf16>, tensor<1x100x4xf32>, tensor<1x100x2x16xi32>, tensor<1x100x4x16xbf16>,
    tensor<1x100x4xf32>, tensor<1x100x4x16xbf16>, tensor<1x100x4xf32>) {
  %o:10 = nsa.attention %q keys(%k) values(%v) gates %g compress mean config <>
      : (tensor<1x100x4x32xbf16>, tensor<1x100x2x32xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x4x3xbf16>)
      -> (tensor<1x100x4x16xbf16>, tensor<1x5x2x32xbf16>, tensor<1x5x2x16xbf16>, tensor<1x100x4x16xbf16>,
          tensor<1x100x4xf32>, tensor<1x100x2x16xi32>, tensor<1x100x4x16xbf16>, tensor<1x100x4xf32>,
          tensor<1x100x4x16xbf16>, tensor<1x100x4xf32>)
  return %o#0, %o#1, %o#2, %o#3, %o#4, %o#5, %o#6, %o#7, %o#8, %o#9 : tensor<1x100x4x16xbf16>,
      tensor<1x5x2x32xbf16>, tensor<1x5x2x16xbf16>, tensor<1x100x4x16xbf16>, tensor<1x100x4xf32>,
      tensor<1x100x2x16xi32>, tensor<1x100x4x16xbf16>, tensor<1x100x4xf32>, tensor<1x100x4x16xbf16>,
      tensor<1x100x4xf32>
}

// -----

// A backward given the saved intermediates recomputes nothing: the branch
// grads read them.

// CHECK-LABEL: func.func @grad_from_saved
// CHECK-SAME: %[[G:[^:]*]]: tensor<1x100x4x3xbf16>, %[[KC:[^:]*]]: tensor<1x5x2x32xbf16>, %[[VC:[^:]*]]: tensor<1x5x2x16xbf16>, %[[OC:[^:]*]]: tensor<1x100x4x16xbf16>, %[[LC:[^:]*]]: tensor<1x100x4xf32>, %[[IDX:[^:]*]]: tensor<1x100x2x16xi32>, %[[OS:[^:]*]]: tensor<1x100x4x16xbf16>, %[[LS:[^:]*]]: tensor<1x100x4xf32>, %[[OW:[^:]*]]: tensor<1x100x4x16xbf16>, %[[LW:[^:]*]]: tensor<1x100x4xf32>, %[[DO:[^:]*]]: tensor<1x100x4x16xbf16>)
// CHECK-NOT: nsa.compress mean
// CHECK-NOT: nsa.compressed_attention %
// CHECK-NOT: nsa.select_blocks
// CHECK: nsa.combine_grad %[[G]], %[[OC]], %[[OS]], %[[OW]] grad %[[DO]]
// CHECK: nsa.compressed_attention_grad %{{.*}}, %[[KC]], %[[VC]], %[[OC]], %[[LC]] grad
// CHECK: nsa.selected_attention_grad %{{.*}}, %{{.*}}, %{{.*}}, %[[IDX]], %[[OS]], %[[LS]] grad
// CHECK: nsa.window_attention_grad %{{.*}}, %{{.*}}, %{{.*}}, %[[OW]], %[[LW]] grad
func.func @grad_from_saved(%q: tensor<1x100x4x32xbf16>, %k: tensor<1x100x2x32xbf16>, %v: tensor<1x100x2x16xbf16>,
    %g: tensor<1x100x4x3xbf16>, %kc: tensor<1x5x2x32xbf16>, %vc: tensor<1x5x2x16xbf16>,
    %oc: tensor<1x100x4x16xbf16>, %lc: tensor<1x100x4xf32>, %idx: tensor<1x100x2x16xi32>,
    %os: tensor<1x100x4x16xbf16>, %ls: tensor<1x100x4xf32>, %ow: tensor<1x100x4x16xbf16>,
    %lw: tensor<1x100x4xf32>, %do: tensor<1x100x4x16xbf16>)
    -> (tensor<1x100x4x32xbf16>, tensor<1x100x2x32xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x4x3xbf16>) {
  %dq, %dk, %dv, %dg = nsa.attention_grad %q keys(%k) values(%v) gates %g compress mean
      saved(%kc, %vc, %oc, %lc, %idx, %os, %ls, %ow, %lw) grad %do config <>
      : (tensor<1x100x4x32xbf16>, tensor<1x100x2x32xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x4x3xbf16>,
         tensor<1x5x2x32xbf16>, tensor<1x5x2x16xbf16>, tensor<1x100x4x16xbf16>, tensor<1x100x4xf32>,
         tensor<1x100x2x16xi32>, tensor<1x100x4x16xbf16>, tensor<1x100x4xf32>, tensor<1x100x4x16xbf16>,
         tensor<1x100x4xf32>, tensor<1x100x4x16xbf16>)
      -> (tensor<1x100x4x32xbf16>, tensor<1x100x2x32xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x4x3xbf16>)
  return %dq, %dk, %dv, %dg : tensor<1x100x4x32xbf16>, tensor<1x100x2x32xbf16>, tensor<1x100x2x16xbf16>,
      tensor<1x100x4x3xbf16>
}
