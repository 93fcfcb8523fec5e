// RUN: nsa-opt %s -split-input-file | nsa-opt -split-input-file | FileCheck %s
// RUN: nsa-opt %s -split-input-file -mlir-print-op-generic | nsa-opt -split-input-file | FileCheck %s

// Round trip of every op and of #nsa.config. Shapes follow SPEC.md's layouts:
// B = 1, T = 100, HQ = 4, HKV = 2 (G = 2), Dk = 32, Dv = 16, the paper's
// config (l = 32, d = 16 gives Nc(100) = 5 compressed tokens).

// CHECK-LABEL: func @config_defaults
// CHECK: config <l = 32, d = 16, l_sel = 64, n = 16, init = 1, local = 2, w = 512>
func.func @config_defaults(%q: tensor<1x100x4x32xbf16>, %k: tensor<1x100x2x32xbf16>, %v: tensor<1x100x2x16xbf16>)
    -> (tensor<1x100x4x16xbf16>, tensor<1x100x4xf32>) {
  %o, %lse = nsa.window_attention %q, %k, %v config <>
      : (tensor<1x100x4x32xbf16>, tensor<1x100x2x32xbf16>, tensor<1x100x2x16xbf16>)
      -> (tensor<1x100x4x16xbf16>, tensor<1x100x4xf32>)
  return %o, %lse : tensor<1x100x4x16xbf16>, tensor<1x100x4xf32>
}

// -----

// Keys in any order; scale kept exactly; l = l_sel = d is allowed.
// CHECK-LABEL: func @config_explicit
// CHECK: config <l = 16, d = 16, l_sel = 16, n = 4, init = 0, local = 1, w = 1, scale = 1.250000e-01>
func.func @config_explicit(%q: tensor<1x100x4x32xf16>, %k: tensor<1x100x2x32xf16>, %v: tensor<1x100x2x16xf16>)
    -> (tensor<1x100x4x16xf16>, tensor<1x100x4xf32>) {
  %o, %lse = nsa.window_attention %q, %k, %v config <w = 1, scale = 0.125, n = 4, init = 0, local = 1, l = 16, d = 16, l_sel = 16>
      : (tensor<1x100x4x32xf16>, tensor<1x100x2x32xf16>, tensor<1x100x2x16xf16>)
      -> (tensor<1x100x4x16xf16>, tensor<1x100x4xf32>)
  return %o, %lse : tensor<1x100x4x16xf16>, tensor<1x100x4xf32>
}

// -----

// An integer scale reads as a number.
// CHECK-LABEL: func @config_integer_scale
// CHECK: config <l = 32, d = 16, l_sel = 64, n = 16, init = 1, local = 2, w = 512, scale = 2.000000e+00>
func.func @config_integer_scale(%k: tensor<1x100x2x32xbf16>) -> tensor<1x5x2x32xbf16> {
  %c = nsa.compress mean %k config <scale = 2> : (tensor<1x100x2x32xbf16>) -> tensor<1x5x2x32xbf16>
  return %c : tensor<1x5x2x32xbf16>
}

// -----

// CHECK-LABEL: func @compress
// CHECK: nsa.compress linear %{{.*}} weight %{{.*}} pe %{{.*}} config
// CHECK: nsa.compress linear %{{.*}} weight %{{.*}} config
// CHECK: nsa.compress mean %{{.*}} config
// CHECK-SAME: -> tensor<1x?x2x32xbf16>
func.func @compress(%k: tensor<1x100x2x32xbf16>, %w: tensor<2x1024x32xbf16>, %pe: tensor<2x32x32xbf16>, %kd: tensor<1x?x2x32xbf16>)
    -> (tensor<1x5x2x32xbf16>, tensor<1x5x2x32xbf16>, tensor<1x?x2x32xbf16>) {
  %a = nsa.compress linear %k weight %w pe %pe config <>
      : (tensor<1x100x2x32xbf16>, tensor<2x1024x32xbf16>, tensor<2x32x32xbf16>) -> tensor<1x5x2x32xbf16>
  %b = nsa.compress linear %k weight %w config <>
      : (tensor<1x100x2x32xbf16>, tensor<2x1024x32xbf16>) -> tensor<1x5x2x32xbf16>
  %c = nsa.compress mean %kd config <>
      : (tensor<1x?x2x32xbf16>) -> tensor<1x?x2x32xbf16>
  return %a, %b, %c : tensor<1x5x2x32xbf16>, tensor<1x5x2x32xbf16>, tensor<1x?x2x32xbf16>
}

// -----

// T < l: no compressed token at all.
// CHECK-LABEL: func @compress_short
// CHECK: nsa.compress mean %{{.*}} -> tensor<1x0x2x32xbf16>
func.func @compress_short(%k: tensor<1x31x2x32xbf16>) -> tensor<1x0x2x32xbf16> {
  %c = nsa.compress mean %k config <> : (tensor<1x31x2x32xbf16>) -> tensor<1x0x2x32xbf16>
  return %c : tensor<1x0x2x32xbf16>
}

// -----

// CHECK-LABEL: func @compressed_attention
// CHECK: %{{.*}}, %{{.*}} = nsa.compressed_attention %{{.*}}, %{{.*}}, %{{.*}} config
func.func @compressed_attention(%q: tensor<1x100x4x32xbf16>, %kc: tensor<1x5x2x32xbf16>, %vc: tensor<1x5x2x16xbf16>)
    -> (tensor<1x100x4x16xbf16>, tensor<1x100x4xf32>) {
  %o, %lse = nsa.compressed_attention %q, %kc, %vc config <>
      : (tensor<1x100x4x32xbf16>, tensor<1x5x2x32xbf16>, tensor<1x5x2x16xbf16>)
      -> (tensor<1x100x4x16xbf16>, tensor<1x100x4xf32>)
  return %o, %lse : tensor<1x100x4x16xbf16>, tensor<1x100x4xf32>
}

// -----

// CHECK-LABEL: func @select_blocks
// CHECK: nsa.select_blocks %{{.*}}, %{{.*}}, %{{.*}} config <l = 32, d = 16, l_sel = 64, n = 4, init = 1, local = 2, w = 512>
// CHECK-SAME: -> tensor<1x100x2x4xi32>
func.func @select_blocks(%q: tensor<1x100x4x32xbf16>, %kc: tensor<1x5x2x32xbf16>, %lse: tensor<1x100x4xf32>)
    -> tensor<1x100x2x4xi32> {
  %idx = nsa.select_blocks %q, %kc, %lse config <n = 4>
      : (tensor<1x100x4x32xbf16>, tensor<1x5x2x32xbf16>, tensor<1x100x4xf32>) -> tensor<1x100x2x4xi32>
  return %idx : tensor<1x100x2x4xi32>
}

// -----

// CHECK-LABEL: func @selected_attention
// CHECK: nsa.selected_attention %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} config
func.func @selected_attention(%q: tensor<1x100x4x32xbf16>, %k: tensor<1x100x2x32xbf16>, %v: tensor<1x100x2x16xbf16>, %idx: tensor<1x100x2x4xi32>)
    -> (tensor<1x100x4x16xbf16>, tensor<1x100x4xf32>) {
  %o, %lse = nsa.selected_attention %q, %k, %v, %idx config <n = 4>
      : (tensor<1x100x4x32xbf16>, tensor<1x100x2x32xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x4xi32>)
      -> (tensor<1x100x4x16xbf16>, tensor<1x100x4xf32>)
  return %o, %lse : tensor<1x100x4x16xbf16>, tensor<1x100x4xf32>
}

// -----

// Dynamic B and T are checked only where static.
// CHECK-LABEL: func @window_attention_dynamic
// CHECK: nsa.window_attention %{{.*}}, %{{.*}}, %{{.*}} config
func.func @window_attention_dynamic(%q: tensor<?x?x4x32xbf16>, %k: tensor<?x100x2x32xbf16>, %v: tensor<1x?x2x16xbf16>)
    -> (tensor<?x?x4x16xbf16>, tensor<?x?x4xf32>) {
  %o, %lse = nsa.window_attention %q, %k, %v config <w = 64>
      : (tensor<?x?x4x32xbf16>, tensor<?x100x2x32xbf16>, tensor<1x?x2x16xbf16>)
      -> (tensor<?x?x4x16xbf16>, tensor<?x?x4xf32>)
  return %o, %lse : tensor<?x?x4x16xbf16>, tensor<?x?x4xf32>
}

// -----

// CHECK-LABEL: func @combine
// CHECK: nsa.combine %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} :
func.func @combine(%g: tensor<1x100x4x3xbf16>, %a: tensor<1x100x4x16xbf16>, %b: tensor<1x100x4x16xbf16>, %c: tensor<1x100x4x16xbf16>)
    -> tensor<1x100x4x16xbf16> {
  %o = nsa.combine %g, %a, %b, %c
      : (tensor<1x100x4x3xbf16>, tensor<1x100x4x16xbf16>, tensor<1x100x4x16xbf16>, tensor<1x100x4x16xbf16>)
      -> tensor<1x100x4x16xbf16>
  return %o : tensor<1x100x4x16xbf16>
}

// -----

// Per-branch keys and values, linear compression with position encoding.
// CHECK-LABEL: func @attention_per_branch
// CHECK: nsa.attention %{{.*}} keys(%{{.*}}, %{{.*}}, %{{.*}}) values(%{{.*}}, %{{.*}}, %{{.*}}) gates %{{.*}} compress linear weights(%{{.*}}, %{{.*}}) pe(%{{.*}}, %{{.*}}) config
func.func @attention_per_branch(%q: tensor<1x100x4x32xbf16>,
    %k0: tensor<1x100x2x32xbf16>, %k1: tensor<1x100x2x32xbf16>, %k2: tensor<1x100x2x32xbf16>,
    %v0: tensor<1x100x2x16xbf16>, %v1: tensor<1x100x2x16xbf16>, %v2: tensor<1x100x2x16xbf16>,
    %g: tensor<1x100x4x3xbf16>, %wk: tensor<2x1024x32xbf16>, %wv: tensor<2x512x16xbf16>,
    %pk: tensor<2x32x32xbf16>, %pv: tensor<2x32x16xbf16>) -> tensor<1x100x4x16xbf16> {
  %o = nsa.attention %q keys(%k0, %k1, %k2) values(%v0, %v1, %v2) gates %g
      compress linear weights(%wk, %wv) pe(%pk, %pv) config <>
      : (tensor<1x100x4x32xbf16>, tensor<1x100x2x32xbf16>, tensor<1x100x2x32xbf16>, tensor<1x100x2x32xbf16>,
         tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x4x3xbf16>,
         tensor<2x1024x32xbf16>, tensor<2x512x16xbf16>, tensor<2x32x32xbf16>, tensor<2x32x16xbf16>)
      -> tensor<1x100x4x16xbf16>
  return %o : tensor<1x100x4x16xbf16>
}

// -----

// One K/V shared by all branches, mean compression, G = 1.
// CHECK-LABEL: func @attention_shared_mean
// CHECK: nsa.attention %{{.*}} keys(%{{.*}}) values(%{{.*}}) gates %{{.*}} compress mean config
func.func @attention_shared_mean(%q: tensor<2x100x2x32xf16>, %k: tensor<2x100x2x32xf16>, %v: tensor<2x100x2x32xf16>,
    %g: tensor<2x100x2x3xf16>) -> tensor<2x100x2x32xf16> {
  %o = nsa.attention %q keys(%k) values(%v) gates %g compress mean config <>
      : (tensor<2x100x2x32xf16>, tensor<2x100x2x32xf16>, tensor<2x100x2x32xf16>, tensor<2x100x2x3xf16>)
      -> tensor<2x100x2x32xf16>
  return %o : tensor<2x100x2x32xf16>
}

// -----

// CHECK-LABEL: func @compress_grad
// CHECK: nsa.compress_grad linear %{{.*}} weight %{{.*}} pe %{{.*}} grad %{{.*}} config
// CHECK: nsa.compress_grad mean %{{.*}} grad %{{.*}} config
func.func @compress_grad(%k: tensor<1x100x2x32xbf16>, %w: tensor<2x1024x32xbf16>, %pe: tensor<2x32x32xbf16>, %dkc: tensor<1x5x2x32xbf16>)
    -> (tensor<1x100x2x32xbf16>, tensor<2x1024x32xbf16>, tensor<2x32x32xbf16>, tensor<1x100x2x32xbf16>) {
  %dk, %dw, %dpe = nsa.compress_grad linear %k weight %w pe %pe grad %dkc config <>
      : (tensor<1x100x2x32xbf16>, tensor<2x1024x32xbf16>, tensor<2x32x32xbf16>, tensor<1x5x2x32xbf16>)
      -> (tensor<1x100x2x32xbf16>, tensor<2x1024x32xbf16>, tensor<2x32x32xbf16>)
  %dk2 = nsa.compress_grad mean %k grad %dkc config <>
      : (tensor<1x100x2x32xbf16>, tensor<1x5x2x32xbf16>) -> tensor<1x100x2x32xbf16>
  return %dk, %dw, %dpe, %dk2 : tensor<1x100x2x32xbf16>, tensor<2x1024x32xbf16>, tensor<2x32x32xbf16>, tensor<1x100x2x32xbf16>
}

// -----

// CHECK-LABEL: func @branch_grads
// CHECK: nsa.compressed_attention_grad %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} grad %{{.*}} config
// CHECK: nsa.selected_attention_grad %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} grad %{{.*}} config
// CHECK: nsa.window_attention_grad %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} grad %{{.*}} config
func.func @branch_grads(%q: tensor<1x100x4x32xbf16>, %kc: tensor<1x5x2x32xbf16>, %vc: tensor<1x5x2x16xbf16>,
    %k: tensor<1x100x2x32xbf16>, %v: tensor<1x100x2x16xbf16>, %idx: tensor<1x100x2x16xi32>,
    %o: tensor<1x100x4x16xbf16>, %lse: tensor<1x100x4xf32>, %do: tensor<1x100x4x16xbf16>) {
  %dq0, %dkc, %dvc = nsa.compressed_attention_grad %q, %kc, %vc, %o, %lse grad %do config <>
      : (tensor<1x100x4x32xbf16>, tensor<1x5x2x32xbf16>, tensor<1x5x2x16xbf16>, tensor<1x100x4x16xbf16>, tensor<1x100x4xf32>, tensor<1x100x4x16xbf16>)
      -> (tensor<1x100x4x32xbf16>, tensor<1x5x2x32xbf16>, tensor<1x5x2x16xbf16>)
  %dq1, %dk1, %dv1 = nsa.selected_attention_grad %q, %k, %v, %idx, %o, %lse grad %do config <>
      : (tensor<1x100x4x32xbf16>, tensor<1x100x2x32xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xi32>, tensor<1x100x4x16xbf16>, tensor<1x100x4xf32>, tensor<1x100x4x16xbf16>)
      -> (tensor<1x100x4x32xbf16>, tensor<1x100x2x32xbf16>, tensor<1x100x2x16xbf16>)
  %dq2, %dk2, %dv2 = nsa.window_attention_grad %q, %k, %v, %o, %lse grad %do config <>
      : (tensor<1x100x4x32xbf16>, tensor<1x100x2x32xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x4x16xbf16>, tensor<1x100x4xf32>, tensor<1x100x4x16xbf16>)
      -> (tensor<1x100x4x32xbf16>, tensor<1x100x2x32xbf16>, tensor<1x100x2x16xbf16>)
  return
}

// -----

// CHECK-LABEL: func @combine_grad
// CHECK: nsa.combine_grad %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} grad %{{.*}} :
func.func @combine_grad(%g: tensor<1x100x4x3xbf16>, %a: tensor<1x100x4x16xbf16>, %b: tensor<1x100x4x16xbf16>,
    %c: tensor<1x100x4x16xbf16>, %do: tensor<1x100x4x16xbf16>) {
  %dg, %da, %db, %dc = nsa.combine_grad %g, %a, %b, %c grad %do
      : (tensor<1x100x4x3xbf16>, tensor<1x100x4x16xbf16>, tensor<1x100x4x16xbf16>, tensor<1x100x4x16xbf16>, tensor<1x100x4x16xbf16>)
      -> (tensor<1x100x4x3xbf16>, tensor<1x100x4x16xbf16>, tensor<1x100x4x16xbf16>, tensor<1x100x4x16xbf16>)
  return
}

// -----

// CHECK-LABEL: func @attention_grad
// CHECK: nsa.attention_grad %{{.*}} keys(%{{.*}}) values(%{{.*}}) gates %{{.*}} compress linear weights(%{{.*}}, %{{.*}}) grad %{{.*}} config
func.func @attention_grad(%q: tensor<1x100x4x32xbf16>, %k: tensor<1x100x2x32xbf16>, %v: tensor<1x100x2x16xbf16>,
    %g: tensor<1x100x4x3xbf16>, %wk: tensor<2x1024x32xbf16>, %wv: tensor<2x512x16xbf16>, %do: tensor<1x100x4x16xbf16>) {
  %dq, %dk, %dv, %dg, %dwk, %dwv = nsa.attention_grad %q keys(%k) values(%v) gates %g
      compress linear weights(%wk, %wv) grad %do config <>
      : (tensor<1x100x4x32xbf16>, tensor<1x100x2x32xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x4x3xbf16>,
         tensor<2x1024x32xbf16>, tensor<2x512x16xbf16>, tensor<1x100x4x16xbf16>)
      -> (tensor<1x100x4x32xbf16>, tensor<1x100x2x32xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x4x3xbf16>,
          tensor<2x1024x32xbf16>, tensor<2x512x16xbf16>)
  return
}

// -----

// The forward's saved intermediates, from nsa.attention to nsa.attention_grad.
// CHECK-LABEL: func @attention_saved
// CHECK: %[[O:.*]], %[[S:.*]]:9 = nsa.attention %{{.*}} keys(%{{.*}}) values(%{{.*}}) gates %{{.*}} compress mean config
// CHECK: nsa.attention_grad %{{.*}} keys(%{{.*}}) values(%{{.*}}) gates %{{.*}} compress mean saved(%[[S]]#0, %[[S]]#1, %[[S]]#2, %[[S]]#3, %[[S]]#4, %[[S]]#5, %[[S]]#6, %[[S]]#7, %[[S]]#8) grad %[[O]] config
func.func @attention_saved(%q: tensor<1x100x4x32xbf16>, %k: tensor<1x100x2x32xbf16>, %v: tensor<1x100x2x16xbf16>,
    %g: tensor<1x100x4x3xbf16>) {
  %f:10 = nsa.attention %q keys(%k) values(%v) gates %g compress mean config <>
      : (tensor<1x100x4x32xbf16>, tensor<1x100x2x32xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x4x3xbf16>)
      -> (tensor<1x100x4x16xbf16>, tensor<1x5x2x32xbf16>, tensor<1x5x2x16xbf16>, tensor<1x100x4x16xbf16>,
          tensor<1x100x4xf32>, tensor<1x100x2x16xi32>, tensor<1x100x4x16xbf16>, tensor<1x100x4xf32>,
          tensor<1x100x4x16xbf16>, tensor<1x100x4xf32>)
  %dq, %dk, %dv, %dg = nsa.attention_grad %q keys(%k) values(%v) gates %g compress mean
      saved(%f#1, %f#2, %f#3, %f#4, %f#5, %f#6, %f#7, %f#8, %f#9) grad %f#0 config <>
      : (tensor<1x100x4x32xbf16>, tensor<1x100x2x32xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x4x3xbf16>,
         tensor<1x5x2x32xbf16>, tensor<1x5x2x16xbf16>, tensor<1x100x4x16xbf16>, tensor<1x100x4xf32>,
         tensor<1x100x2x16xi32>, tensor<1x100x4x16xbf16>, tensor<1x100x4xf32>, tensor<1x100x4x16xbf16>,
         tensor<1x100x4xf32>, tensor<1x100x4x16xbf16>)
      -> (tensor<1x100x4x32xbf16>, tensor<1x100x2x32xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x4x3xbf16>)
  return
}
