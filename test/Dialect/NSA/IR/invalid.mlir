// RUN: nsa-opt %s -split-input-file -verify-diagnostics

// One case per verifier rule of the nsa dialect (#nsa.config, the shared
// layout checks, then each op). Unless a case says otherwise, shapes are
// B = 1, T = 100, HQ = 4, HKV = 2 (G = 2), Dk = Dv = 16 in bf16, with the
// paper's config (l = 32, d = 16, n = 16, so Nc(100) = 5 compressed tokens),
// W: [2, 512, 16] and PE: [2, 32, 16].

//===----------------------------------------------------------------------===//
// #nsa.config
//===----------------------------------------------------------------------===//

// l must be positive.
func.func @config_l_zero(%k: tensor<1x100x2x16xbf16>) {
  // expected-error @+1 {{nsa.config: l must be positive, got 0}}
  %c = nsa.compress mean %k config <l = 0> : (tensor<1x100x2x16xbf16>) -> tensor<1x5x2x16xbf16>
  return
}

// -----

// d must be positive.
func.func @config_d_zero(%k: tensor<1x100x2x16xbf16>) {
  // expected-error @+1 {{nsa.config: d must be positive, got 0}}
  %c = nsa.compress mean %k config <d = 0> : (tensor<1x100x2x16xbf16>) -> tensor<1x5x2x16xbf16>
  return
}

// -----

// l_sel must be positive.
func.func @config_l_sel_negative(%k: tensor<1x100x2x16xbf16>) {
  // expected-error @+1 {{nsa.config: l_sel must be positive, got -64}}
  %c = nsa.compress mean %k config <l_sel = -64> : (tensor<1x100x2x16xbf16>) -> tensor<1x5x2x16xbf16>
  return
}

// -----

// n must be positive (a standalone #nsa.config: the error is on the attribute).
// expected-error @+1 {{nsa.config: n must be positive, got 0}}
func.func @config_n_zero() attributes {cfg = #nsa.config<n = 0, init = 0, local = 1>} {
  return
}

// -----

// init must be >= 0.
func.func @config_init_negative(%k: tensor<1x100x2x16xbf16>) {
  // expected-error @+1 {{nsa.config: init must be >= 0, got -1}}
  %c = nsa.compress mean %k config <init = -1> : (tensor<1x100x2x16xbf16>) -> tensor<1x5x2x16xbf16>
  return
}

// -----

// local must be >= 1: the block holding t is always selected.
func.func @config_local_zero(%k: tensor<1x100x2x16xbf16>) {
  // expected-error @+1 {{nsa.config: local must be >= 1 (the block holding t is always selected), got 0}}
  %c = nsa.compress mean %k config <local = 0> : (tensor<1x100x2x16xbf16>) -> tensor<1x5x2x16xbf16>
  return
}

// -----

// d must divide l.
func.func @config_d_divides_l(%k: tensor<1x100x2x16xbf16>) {
  // expected-error @+1 {{nsa.config: d must divide l (l = 24, d = 16)}}
  %c = nsa.compress mean %k config <l = 24> : (tensor<1x100x2x16xbf16>) -> tensor<1x5x2x16xbf16>
  return
}

// -----

// d must divide l_sel.
func.func @config_d_divides_l_sel(%k: tensor<1x100x2x16xbf16>) {
  // expected-error @+1 {{nsa.config: d must divide l_sel (l_sel = 72, d = 16)}}
  %c = nsa.compress mean %k config <l_sel = 72> : (tensor<1x100x2x16xbf16>) -> tensor<1x5x2x16xbf16>
  return
}

// -----

// l <= l_sel.
func.func @config_l_le_l_sel(%k: tensor<1x100x2x16xbf16>) {
  // expected-error @+1 {{nsa.config: l <= l_sel is required (l = 128, l_sel = 64)}}
  %c = nsa.compress mean %k config <l = 128> : (tensor<1x100x2x16xbf16>) -> tensor<1x5x2x16xbf16>
  return
}

// -----

// n >= init + local.
func.func @config_n_ge_init_plus_local(%k: tensor<1x100x2x16xbf16>) {
  // expected-error @+1 {{nsa.config: n >= init + local is required (n = 2, init + local = 3)}}
  %c = nsa.compress mean %k config <n = 2> : (tensor<1x100x2x16xbf16>) -> tensor<1x5x2x16xbf16>
  return
}

// -----

// w >= 1.
func.func @config_w_zero(%k: tensor<1x100x2x16xbf16>) {
  // expected-error @+1 {{nsa.config: w >= 1 is required, got 0}}
  %c = nsa.compress mean %k config <w = 0> : (tensor<1x100x2x16xbf16>) -> tensor<1x5x2x16xbf16>
  return
}

// -----

// scale must be positive: zero.
func.func @config_scale_zero(%k: tensor<1x100x2x16xbf16>) {
  // expected-error @+1 {{nsa.config: scale must be finite and positive, got 0}}
  %c = nsa.compress mean %k config <scale = 0.0> : (tensor<1x100x2x16xbf16>) -> tensor<1x5x2x16xbf16>
  return
}

// -----

// scale must be positive: negative.
func.func @config_scale_negative(%k: tensor<1x100x2x16xbf16>) {
  // expected-error @+1 {{nsa.config: scale must be finite and positive, got -5.000000e-01}}
  %c = nsa.compress mean %k config <scale = -0.5> : (tensor<1x100x2x16xbf16>) -> tensor<1x5x2x16xbf16>
  return
}

// -----

// scale must be finite: +inf (an f64 bit pattern).
func.func @config_scale_inf(%k: tensor<1x100x2x16xbf16>) {
  // expected-error @+1 {{nsa.config: scale must be finite and positive, got INF}}
  %c = nsa.compress mean %k config <scale = 0x7FF0000000000000 : f64> : (tensor<1x100x2x16xbf16>) -> tensor<1x5x2x16xbf16>
  return
}

// -----

// scale must be finite: NaN.
func.func @config_scale_nan(%k: tensor<1x100x2x16xbf16>) {
  // expected-error @+1 {{nsa.config: scale must be finite and positive, got nan}}
  %c = nsa.compress mean %k config <scale = 0x7FF8000000000000 : f64> : (tensor<1x100x2x16xbf16>) -> tensor<1x5x2x16xbf16>
  return
}

// -----

// Unknown key.
func.func @config_unknown_key(%k: tensor<1x100x2x16xbf16>) {
  // expected-error @+1 {{nsa.config: unknown key 'stride' (expected l, d, l_sel, n, init, local, w or scale)}}
  %c = nsa.compress mean %k config <l = 32, stride = 16> : (tensor<1x100x2x16xbf16>) -> tensor<1x5x2x16xbf16>
  return
}

// -----

// Duplicate integer key.
func.func @config_duplicate_key(%k: tensor<1x100x2x16xbf16>) {
  // expected-error @+1 {{nsa.config: key 'w' given twice}}
  %c = nsa.compress mean %k config <w = 256, l = 32, w = 128> : (tensor<1x100x2x16xbf16>) -> tensor<1x5x2x16xbf16>
  return
}

// -----

// Duplicate scale.
func.func @config_duplicate_scale(%k: tensor<1x100x2x16xbf16>) {
  // expected-error @+1 {{nsa.config: key 'scale' given twice}}
  %c = nsa.compress mean %k config <scale = 0.25, scale = 0.5> : (tensor<1x100x2x16xbf16>) -> tensor<1x5x2x16xbf16>
  return
}

// -----

//===----------------------------------------------------------------------===//
// Layout rules shared by all ops (shown on nsa.window_attention)
//===----------------------------------------------------------------------===//

// Rank: q is [B, T, HQ, Dk].
func.func @rank_q(%q: tensor<100x4x16xbf16>, %k: tensor<1x100x2x16xbf16>, %v: tensor<1x100x2x16xbf16>) {
  // expected-error @+1 {{'nsa.window_attention' op 'q' must have rank 4 [B, T, HQ, Dk], got 'tensor<100x4x16xbf16>'}}
  %o, %lse = nsa.window_attention %q, %k, %v config <>
      : (tensor<100x4x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>) -> (tensor<1x100x4x16xbf16>, tensor<1x100x4xf32>)
  return
}

// -----

// Rank: lse is [B, T, HQ].
func.func @rank_lse(%q: tensor<1x100x4x16xbf16>, %k: tensor<1x100x2x16xbf16>, %v: tensor<1x100x2x16xbf16>) {
  // expected-error @+1 {{'lse' must have rank 3 [B, T, HQ], got 'tensor<1x100x4x1xf32>'}}
  %o, %lse = nsa.window_attention %q, %k, %v config <>
      : (tensor<1x100x4x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>) -> (tensor<1x100x4x16xbf16>, tensor<1x100x4x1xf32>)
  return
}

// -----

// Dimension mismatch, naming both operands: B of k against B of q.
func.func @dim_batch(%q: tensor<1x100x4x16xbf16>, %k: tensor<2x100x2x16xbf16>, %v: tensor<1x100x2x16xbf16>) {
  // expected-error @+1 {{'k' dimension 0 (B) is 2, expected B = 1 (from 'q')}}
  %o, %lse = nsa.window_attention %q, %k, %v config <>
      : (tensor<1x100x4x16xbf16>, tensor<2x100x2x16xbf16>, tensor<1x100x2x16xbf16>) -> (tensor<1x100x4x16xbf16>, tensor<1x100x4xf32>)
  return
}

// -----

// Dimension mismatch: T of k against q.
func.func @dim_tokens(%q: tensor<1x100x4x16xbf16>, %k: tensor<1x64x2x16xbf16>, %v: tensor<1x100x2x16xbf16>) {
  // expected-error @+1 {{'k' dimension 1 (T) is 64, expected T = 100 (from 'q')}}
  %o, %lse = nsa.window_attention %q, %k, %v config <>
      : (tensor<1x100x4x16xbf16>, tensor<1x64x2x16xbf16>, tensor<1x100x2x16xbf16>) -> (tensor<1x100x4x16xbf16>, tensor<1x100x4xf32>)
  return
}

// -----

// Dimension mismatch: Dk of k against q.
func.func @dim_dk(%q: tensor<1x100x4x16xbf16>, %k: tensor<1x100x2x32xbf16>, %v: tensor<1x100x2x16xbf16>) {
  // expected-error @+1 {{'k' dimension 3 (Dk) is 32, expected Dk = 16 (from 'q')}}
  %o, %lse = nsa.window_attention %q, %k, %v config <>
      : (tensor<1x100x4x16xbf16>, tensor<1x100x2x32xbf16>, tensor<1x100x2x16xbf16>) -> (tensor<1x100x4x16xbf16>, tensor<1x100x4xf32>)
  return
}

// -----

// Dimension mismatch: HKV of v against k.
func.func @dim_hkv(%q: tensor<1x100x4x16xbf16>, %k: tensor<1x100x2x16xbf16>, %v: tensor<1x100x4x16xbf16>) {
  // expected-error @+1 {{'v' dimension 2 (HKV) is 4, expected HKV = 2 (from 'k')}}
  %o, %lse = nsa.window_attention %q, %k, %v config <>
      : (tensor<1x100x4x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x4x16xbf16>) -> (tensor<1x100x4x16xbf16>, tensor<1x100x4xf32>)
  return
}

// -----

// Dimension mismatch: Dv of o against v (Dk = 16, Dv = 8 here).
func.func @dim_dv(%q: tensor<1x100x4x16xbf16>, %k: tensor<1x100x2x16xbf16>, %v: tensor<1x100x2x8xbf16>) {
  // expected-error @+1 {{'o' dimension 3 (Dv) is 16, expected Dv = 8 (from 'v')}}
  %o, %lse = nsa.window_attention %q, %k, %v config <>
      : (tensor<1x100x4x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x8xbf16>) -> (tensor<1x100x4x16xbf16>, tensor<1x100x4xf32>)
  return
}

// -----

// Dimension mismatch: HQ of lse against q.
func.func @dim_lse_heads(%q: tensor<1x100x4x16xbf16>, %k: tensor<1x100x2x16xbf16>, %v: tensor<1x100x2x16xbf16>) {
  // expected-error @+1 {{'lse' dimension 2 (HQ) is 2, expected HQ = 4 (from 'q')}}
  %o, %lse = nsa.window_attention %q, %k, %v config <>
      : (tensor<1x100x4x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>) -> (tensor<1x100x4x16xbf16>, tensor<1x100x2xf32>)
  return
}

// -----

// Dynamic sizes bind nothing: with q's B dynamic, k fixes B and v must agree.
func.func @dim_dynamic(%q: tensor<?x?x4x16xbf16>, %k: tensor<1x?x2x16xbf16>, %v: tensor<3x?x2x16xbf16>) {
  // expected-error @+1 {{'v' dimension 0 (B) is 3, expected B = 1 (from 'k')}}
  %o, %lse = nsa.window_attention %q, %k, %v config <>
      : (tensor<?x?x4x16xbf16>, tensor<1x?x2x16xbf16>, tensor<3x?x2x16xbf16>) -> (tensor<?x?x4x16xbf16>, tensor<?x?x4xf32>)
  return
}

// -----

// Activations are bf16 or f16.
func.func @dtype_q_f32(%q: tensor<1x100x4x16xf32>, %k: tensor<1x100x2x16xf32>, %v: tensor<1x100x2x16xf32>) {
  // expected-error @+1 {{'q' must have bf16 or f16 elements, got 'f32'}}
  %o, %lse = nsa.window_attention %q, %k, %v config <>
      : (tensor<1x100x4x16xf32>, tensor<1x100x2x16xf32>, tensor<1x100x2x16xf32>) -> (tensor<1x100x4x16xf32>, tensor<1x100x4xf32>)
  return
}

// -----

// k has q's element type.
func.func @dtype_k(%q: tensor<1x100x4x16xbf16>, %k: tensor<1x100x2x16xf16>, %v: tensor<1x100x2x16xbf16>) {
  // expected-error @+1 {{'k' must have the element type of 'q' ('bf16'), got 'f16'}}
  %o, %lse = nsa.window_attention %q, %k, %v config <>
      : (tensor<1x100x4x16xbf16>, tensor<1x100x2x16xf16>, tensor<1x100x2x16xbf16>) -> (tensor<1x100x4x16xbf16>, tensor<1x100x4xf32>)
  return
}

// -----

// v has q's element type (f16 is a valid activation type too).
func.func @dtype_v(%q: tensor<1x100x4x16xf16>, %k: tensor<1x100x2x16xf16>, %v: tensor<1x100x2x16xbf16>) {
  // expected-error @+1 {{'v' must have the element type of 'q' ('f16'), got 'bf16'}}
  %o, %lse = nsa.window_attention %q, %k, %v config <>
      : (tensor<1x100x4x16xf16>, tensor<1x100x2x16xf16>, tensor<1x100x2x16xbf16>) -> (tensor<1x100x4x16xf16>, tensor<1x100x4xf32>)
  return
}

// -----

// o has q's element type.
func.func @dtype_o(%q: tensor<1x100x4x16xbf16>, %k: tensor<1x100x2x16xbf16>, %v: tensor<1x100x2x16xbf16>) {
  // expected-error @+1 {{'o' must have the element type of 'q' ('bf16'), got 'f32'}}
  %o, %lse = nsa.window_attention %q, %k, %v config <>
      : (tensor<1x100x4x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>) -> (tensor<1x100x4x16xf32>, tensor<1x100x4xf32>)
  return
}

// -----

// lse is f32.
func.func @dtype_lse(%q: tensor<1x100x4x16xbf16>, %k: tensor<1x100x2x16xbf16>, %v: tensor<1x100x2x16xbf16>) {
  // expected-error @+1 {{'lse' must have 'f32' elements, got 'bf16'}}
  %o, %lse = nsa.window_attention %q, %k, %v config <>
      : (tensor<1x100x4x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>) -> (tensor<1x100x4x16xbf16>, tensor<1x100x4xbf16>)
  return
}

// -----

// GQA: HQ must be a multiple of HKV.
func.func @gqa(%q: tensor<1x100x4x16xbf16>, %k: tensor<1x100x3x16xbf16>, %v: tensor<1x100x3x16xbf16>) {
  // expected-error @+1 {{GQA requires HQ to be a multiple of HKV, got HQ = 4, HKV = 3}}
  %o, %lse = nsa.window_attention %q, %k, %v config <>
      : (tensor<1x100x4x16xbf16>, tensor<1x100x3x16xbf16>, tensor<1x100x3x16xbf16>) -> (tensor<1x100x4x16xbf16>, tensor<1x100x4xf32>)
  return
}

// -----

// GQA: HKV = 0 is rejected (not a division by zero).
func.func @gqa_zero_kv_heads(%q: tensor<1x100x4x16xbf16>, %k: tensor<1x100x0x16xbf16>, %v: tensor<1x100x0x16xbf16>) {
  // expected-error @+1 {{GQA requires HQ to be a multiple of HKV, got HQ = 4, HKV = 0}}
  %o, %lse = nsa.window_attention %q, %k, %v config <>
      : (tensor<1x100x4x16xbf16>, tensor<1x100x0x16xbf16>, tensor<1x100x0x16xbf16>) -> (tensor<1x100x4x16xbf16>, tensor<1x100x4xf32>)
  return
}

// -----

// GQA still applies when every other dimension is dynamic.
func.func @gqa_dynamic(%q: tensor<?x?x4x?xbf16>, %k: tensor<?x?x3x?xbf16>, %v: tensor<?x?x3x?xbf16>) {
  // expected-error @+1 {{GQA requires HQ to be a multiple of HKV, got HQ = 4, HKV = 3}}
  %o, %lse = nsa.window_attention %q, %k, %v config <>
      : (tensor<?x?x4x?xbf16>, tensor<?x?x3x?xbf16>, tensor<?x?x3x?xbf16>) -> (tensor<?x?x4x?xbf16>, tensor<?x?x4xf32>)
  return
}

// -----

//===----------------------------------------------------------------------===//
// nsa.compress
//===----------------------------------------------------------------------===//

// input is [B, T, H, D].
func.func @compress_input_rank(%k: tensor<100x2x16xbf16>) {
  // expected-error @+1 {{'nsa.compress' op 'input' must have rank 4 [B, T, H, D], got 'tensor<100x2x16xbf16>'}}
  %c = nsa.compress mean %k config <> : (tensor<100x2x16xbf16>) -> tensor<1x5x2x16xbf16>
  return
}

// -----

// input is bf16 or f16.
func.func @compress_input_dtype(%k: tensor<1x100x2x16xf32>) {
  // expected-error @+1 {{'input' must have bf16 or f16 elements, got 'f32'}}
  %c = nsa.compress mean %k config <> : (tensor<1x100x2x16xf32>) -> tensor<1x5x2x16xf32>
  return
}

// -----

// mean takes no weight.
func.func @compress_mean_weight(%k: tensor<1x100x2x16xbf16>, %w: tensor<2x512x16xbf16>) {
  // expected-error @+1 {{mean compression takes no weight or pe (they belong to linear)}}
  %c = nsa.compress mean %k weight %w config <> : (tensor<1x100x2x16xbf16>, tensor<2x512x16xbf16>) -> tensor<1x5x2x16xbf16>
  return
}

// -----

// mean takes no pe.
func.func @compress_mean_pe(%k: tensor<1x100x2x16xbf16>, %pe: tensor<2x32x16xbf16>) {
  // expected-error @+1 {{mean compression takes no weight or pe (they belong to linear)}}
  %c = nsa.compress mean %k pe %pe config <> : (tensor<1x100x2x16xbf16>, tensor<2x32x16xbf16>) -> tensor<1x5x2x16xbf16>
  return
}

// -----

// linear needs a weight.
func.func @compress_linear_no_weight(%k: tensor<1x100x2x16xbf16>) {
  // expected-error @+1 {{linear compression needs a weight [H, l*D, D]}}
  %c = nsa.compress linear %k config <> : (tensor<1x100x2x16xbf16>) -> tensor<1x5x2x16xbf16>
  return
}

// -----

// linear needs a weight even when pe is given.
func.func @compress_linear_pe_only(%k: tensor<1x100x2x16xbf16>, %pe: tensor<2x32x16xbf16>) {
  // expected-error @+1 {{linear compression needs a weight [H, l*D, D]}}
  %c = nsa.compress linear %k pe %pe config <> : (tensor<1x100x2x16xbf16>, tensor<2x32x16xbf16>) -> tensor<1x5x2x16xbf16>
  return
}

// -----

// weight is [H, l*D, D]: H.
func.func @compress_weight_heads(%k: tensor<1x100x2x16xbf16>, %w: tensor<4x512x16xbf16>) {
  // expected-error @+1 {{'weight' dimension 0 (H) is 4, expected H = 2 (from 'input')}}
  %c = nsa.compress linear %k weight %w config <> : (tensor<1x100x2x16xbf16>, tensor<4x512x16xbf16>) -> tensor<1x5x2x16xbf16>
  return
}

// -----

// weight is [H, l*D, D]: l*D = 32 * 16.
func.func @compress_weight_ld(%k: tensor<1x100x2x16xbf16>, %w: tensor<2x256x16xbf16>) {
  // expected-error @+1 {{'weight' dimension 1 (l*D) is 256, expected l*D = 512 (from config l times D = 16)}}
  %c = nsa.compress linear %k weight %w config <> : (tensor<1x100x2x16xbf16>, tensor<2x256x16xbf16>) -> tensor<1x5x2x16xbf16>
  return
}

// -----

// weight is [H, l*D, D]: l*D follows the config's l (l = 16 here).
func.func @compress_weight_ld_config(%k: tensor<1x100x2x16xbf16>, %w: tensor<2x512x16xbf16>) {
  // expected-error @+1 {{'weight' dimension 1 (l*D) is 512, expected l*D = 256 (from config l times D = 16)}}
  %c = nsa.compress linear %k weight %w config <l = 16> : (tensor<1x100x2x16xbf16>, tensor<2x512x16xbf16>) -> tensor<1x6x2x16xbf16>
  return
}

// -----

// weight is [H, l*D, D]: D.
func.func @compress_weight_dim(%k: tensor<1x100x2x16xbf16>, %w: tensor<2x512x8xbf16>) {
  // expected-error @+1 {{'weight' dimension 2 (D) is 8, expected D = 16 (from 'input')}}
  %c = nsa.compress linear %k weight %w config <> : (tensor<1x100x2x16xbf16>, tensor<2x512x8xbf16>) -> tensor<1x5x2x16xbf16>
  return
}

// -----

// weight has input's element type.
func.func @compress_weight_dtype(%k: tensor<1x100x2x16xbf16>, %w: tensor<2x512x16xf32>) {
  // expected-error @+1 {{'weight' must have the element type of 'input' ('bf16'), got 'f32'}}
  %c = nsa.compress linear %k weight %w config <> : (tensor<1x100x2x16xbf16>, tensor<2x512x16xf32>) -> tensor<1x5x2x16xbf16>
  return
}

// -----

// pe is [H, l, D]: l.
func.func @compress_pe_len(%k: tensor<1x100x2x16xbf16>, %w: tensor<2x512x16xbf16>, %pe: tensor<2x16x16xbf16>) {
  // expected-error @+1 {{'pe' dimension 1 (l) is 16, expected l = 32 (from config)}}
  %c = nsa.compress linear %k weight %w pe %pe config <>
      : (tensor<1x100x2x16xbf16>, tensor<2x512x16xbf16>, tensor<2x16x16xbf16>) -> tensor<1x5x2x16xbf16>
  return
}

// -----

// pe is [H, l, D]: rank.
func.func @compress_pe_rank(%k: tensor<1x100x2x16xbf16>, %w: tensor<2x512x16xbf16>, %pe: tensor<32x16xbf16>) {
  // expected-error @+1 {{'pe' must have rank 3 [H, l, D], got 'tensor<32x16xbf16>'}}
  %c = nsa.compress linear %k weight %w pe %pe config <>
      : (tensor<1x100x2x16xbf16>, tensor<2x512x16xbf16>, tensor<32x16xbf16>) -> tensor<1x5x2x16xbf16>
  return
}

// -----

// pe has input's element type.
func.func @compress_pe_dtype(%k: tensor<1x100x2x16xbf16>, %w: tensor<2x512x16xbf16>, %pe: tensor<2x32x16xf16>) {
  // expected-error @+1 {{'pe' must have the element type of 'input' ('bf16'), got 'f16'}}
  %c = nsa.compress linear %k weight %w pe %pe config <>
      : (tensor<1x100x2x16xbf16>, tensor<2x512x16xbf16>, tensor<2x32x16xf16>) -> tensor<1x5x2x16xbf16>
  return
}

// -----

// result is [B, Nc, H, D] with Nc = Nc(T) = (100 - 32) / 16 + 1 = 5.
func.func @compress_result_nc(%k: tensor<1x100x2x16xbf16>) {
  // expected-error @+1 {{'result' dimension 1 (Nc) is 6, expected Nc = 5 (from Nc(T) = (T - l)/d + 1, or 0 if T < l, with T = 100)}}
  %c = nsa.compress mean %k config <> : (tensor<1x100x2x16xbf16>) -> tensor<1x6x2x16xbf16>
  return
}

// -----

// Nc(T) = 0 when T < l.
func.func @compress_result_nc_short(%k: tensor<1x31x2x16xbf16>) {
  // expected-error @+1 {{'result' dimension 1 (Nc) is 1, expected Nc = 0 (from Nc(T) = (T - l)/d + 1, or 0 if T < l, with T = 31)}}
  %c = nsa.compress mean %k config <> : (tensor<1x31x2x16xbf16>) -> tensor<1x1x2x16xbf16>
  return
}

// -----

// result's H and D follow input's.
func.func @compress_result_heads(%k: tensor<1x100x2x16xbf16>) {
  // expected-error @+1 {{'result' dimension 2 (H) is 4, expected H = 2 (from 'input')}}
  %c = nsa.compress mean %k config <> : (tensor<1x100x2x16xbf16>) -> tensor<1x5x4x16xbf16>
  return
}

// -----

// result has input's element type.
func.func @compress_result_dtype(%k: tensor<1x100x2x16xbf16>) {
  // expected-error @+1 {{'result' must have the element type of 'input' ('bf16'), got 'f16'}}
  %c = nsa.compress mean %k config <> : (tensor<1x100x2x16xbf16>) -> tensor<1x5x2x16xf16>
  return
}

// -----

// Dynamic T leaves Nc free, but l*D is still checked from the static D.
func.func @compress_dynamic_weight(%k: tensor<?x?x2x16xbf16>, %w: tensor<2x256x16xbf16>) {
  // expected-error @+1 {{'weight' dimension 1 (l*D) is 256, expected l*D = 512 (from config l times D = 16)}}
  %c = nsa.compress linear %k weight %w config <>
      : (tensor<?x?x2x16xbf16>, tensor<2x256x16xbf16>) -> tensor<?x?x2x16xbf16>
  return
}

// -----

// Dynamic T leaves Nc free, but the other result dimensions are checked.
func.func @compress_dynamic_result(%k: tensor<1x?x2x16xbf16>) {
  // expected-error @+1 {{'result' dimension 3 (D) is 32, expected D = 16 (from 'input')}}
  %c = nsa.compress mean %k config <> : (tensor<1x?x2x16xbf16>) -> tensor<1x7x2x32xbf16>
  return
}

// -----

//===----------------------------------------------------------------------===//
// nsa.compressed_attention
//===----------------------------------------------------------------------===//

// k is [B, Nc, HKV, Dk] with Nc = Nc(T).
func.func @compressed_attention_nc(%q: tensor<1x100x4x16xbf16>, %k: tensor<1x100x2x16xbf16>, %v: tensor<1x100x2x16xbf16>) {
  // expected-error @+1 {{'k' dimension 1 (Nc) is 100, expected Nc = 5 (from Nc(T) = (T - l)/d + 1, or 0 if T < l, with T = 100)}}
  %o, %lse = nsa.compressed_attention %q, %k, %v config <>
      : (tensor<1x100x4x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>) -> (tensor<1x100x4x16xbf16>, tensor<1x100x4xf32>)
  return
}

// -----

// Nc follows the config (l = d = 16 gives Nc(100) = 6).
func.func @compressed_attention_nc_config(%q: tensor<1x100x4x16xbf16>, %k: tensor<1x5x2x16xbf16>, %v: tensor<1x5x2x16xbf16>) {
  // expected-error @+1 {{'k' dimension 1 (Nc) is 5, expected Nc = 6 (from Nc(T) = (T - l)/d + 1, or 0 if T < l, with T = 100)}}
  %o, %lse = nsa.compressed_attention %q, %k, %v config <l = 16>
      : (tensor<1x100x4x16xbf16>, tensor<1x5x2x16xbf16>, tensor<1x5x2x16xbf16>) -> (tensor<1x100x4x16xbf16>, tensor<1x100x4xf32>)
  return
}

// -----

// With T dynamic, k and v must still agree on Nc.
func.func @compressed_attention_nc_dynamic(%q: tensor<1x?x4x16xbf16>, %k: tensor<1x5x2x16xbf16>, %v: tensor<1x6x2x16xbf16>) {
  // expected-error @+1 {{'v' dimension 1 (Nc) is 6, expected Nc = 5 (from 'k')}}
  %o, %lse = nsa.compressed_attention %q, %k, %v config <>
      : (tensor<1x?x4x16xbf16>, tensor<1x5x2x16xbf16>, tensor<1x6x2x16xbf16>) -> (tensor<1x?x4x16xbf16>, tensor<1x?x4xf32>)
  return
}

// -----

// GQA.
func.func @compressed_attention_gqa(%q: tensor<1x100x4x16xf16>, %k: tensor<1x5x8x16xf16>, %v: tensor<1x5x8x16xf16>) {
  // expected-error @+1 {{GQA requires HQ to be a multiple of HKV, got HQ = 4, HKV = 8}}
  %o, %lse = nsa.compressed_attention %q, %k, %v config <>
      : (tensor<1x100x4x16xf16>, tensor<1x5x8x16xf16>, tensor<1x5x8x16xf16>) -> (tensor<1x100x4x16xf16>, tensor<1x100x4xf32>)
  return
}

// -----

// lse is f32.
func.func @compressed_attention_lse_dtype(%q: tensor<1x100x4x16xbf16>, %k: tensor<1x5x2x16xbf16>, %v: tensor<1x5x2x16xbf16>) {
  // expected-error @+1 {{'lse' must have 'f32' elements, got 'f64'}}
  %o, %lse = nsa.compressed_attention %q, %k, %v config <>
      : (tensor<1x100x4x16xbf16>, tensor<1x5x2x16xbf16>, tensor<1x5x2x16xbf16>) -> (tensor<1x100x4x16xbf16>, tensor<1x100x4xf64>)
  return
}

// -----

//===----------------------------------------------------------------------===//
// nsa.select_blocks
//===----------------------------------------------------------------------===//

// q is bf16 or f16.
func.func @select_blocks_q_dtype(%q: tensor<1x100x4x16xf32>, %k: tensor<1x5x2x16xf32>, %lse: tensor<1x100x4xf32>) {
  // expected-error @+1 {{'nsa.select_blocks' op 'q' must have bf16 or f16 elements, got 'f32'}}
  %idx = nsa.select_blocks %q, %k, %lse config <>
      : (tensor<1x100x4x16xf32>, tensor<1x5x2x16xf32>, tensor<1x100x4xf32>) -> tensor<1x100x2x16xi32>
  return
}

// -----

// k is the compressed keys [B, Nc, HKV, Dk].
func.func @select_blocks_nc(%q: tensor<1x100x4x16xbf16>, %k: tensor<1x100x2x16xbf16>, %lse: tensor<1x100x4xf32>) {
  // expected-error @+1 {{'k' dimension 1 (Nc) is 100, expected Nc = 5 (from Nc(T) = (T - l)/d + 1, or 0 if T < l, with T = 100)}}
  %idx = nsa.select_blocks %q, %k, %lse config <>
      : (tensor<1x100x4x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x4xf32>) -> tensor<1x100x2x16xi32>
  return
}

// -----

// k has q's element type.
func.func @select_blocks_k_dtype(%q: tensor<1x100x4x16xbf16>, %k: tensor<1x5x2x16xf16>, %lse: tensor<1x100x4xf32>) {
  // expected-error @+1 {{'k' must have the element type of 'q' ('bf16'), got 'f16'}}
  %idx = nsa.select_blocks %q, %k, %lse config <>
      : (tensor<1x100x4x16xbf16>, tensor<1x5x2x16xf16>, tensor<1x100x4xf32>) -> tensor<1x100x2x16xi32>
  return
}

// -----

// GQA.
func.func @select_blocks_gqa(%q: tensor<1x100x4x16xbf16>, %k: tensor<1x5x3x16xbf16>, %lse: tensor<1x100x4xf32>) {
  // expected-error @+1 {{GQA requires HQ to be a multiple of HKV, got HQ = 4, HKV = 3}}
  %idx = nsa.select_blocks %q, %k, %lse config <>
      : (tensor<1x100x4x16xbf16>, tensor<1x5x3x16xbf16>, tensor<1x100x4xf32>) -> tensor<1x100x3x16xi32>
  return
}

// -----

// lse is [B, T, HQ].
func.func @select_blocks_lse_shape(%q: tensor<1x100x4x16xbf16>, %k: tensor<1x5x2x16xbf16>, %lse: tensor<1x99x4xf32>) {
  // expected-error @+1 {{'lse' dimension 1 (T) is 99, expected T = 100 (from 'q')}}
  %idx = nsa.select_blocks %q, %k, %lse config <>
      : (tensor<1x100x4x16xbf16>, tensor<1x5x2x16xbf16>, tensor<1x99x4xf32>) -> tensor<1x100x2x16xi32>
  return
}

// -----

// lse is f32.
func.func @select_blocks_lse_dtype(%q: tensor<1x100x4x16xbf16>, %k: tensor<1x5x2x16xbf16>, %lse: tensor<1x100x4xbf16>) {
  // expected-error @+1 {{'lse' must have 'f32' elements, got 'bf16'}}
  %idx = nsa.select_blocks %q, %k, %lse config <>
      : (tensor<1x100x4x16xbf16>, tensor<1x5x2x16xbf16>, tensor<1x100x4xbf16>) -> tensor<1x100x2x16xi32>
  return
}

// -----

// idx is [B, T, HKV, n] with n from the config.
func.func @select_blocks_idx_n(%q: tensor<1x100x4x16xbf16>, %k: tensor<1x5x2x16xbf16>, %lse: tensor<1x100x4xf32>) {
  // expected-error @+1 {{'idx' dimension 3 (n) is 16, expected n = 4 (from config)}}
  %idx = nsa.select_blocks %q, %k, %lse config <n = 4>
      : (tensor<1x100x4x16xbf16>, tensor<1x5x2x16xbf16>, tensor<1x100x4xf32>) -> tensor<1x100x2x16xi32>
  return
}

// -----

// idx's KV heads follow k's.
func.func @select_blocks_idx_heads(%q: tensor<1x100x4x16xbf16>, %k: tensor<1x5x2x16xbf16>, %lse: tensor<1x100x4xf32>) {
  // expected-error @+1 {{'idx' dimension 2 (HKV) is 4, expected HKV = 2 (from 'k')}}
  %idx = nsa.select_blocks %q, %k, %lse config <>
      : (tensor<1x100x4x16xbf16>, tensor<1x5x2x16xbf16>, tensor<1x100x4xf32>) -> tensor<1x100x4x16xi32>
  return
}

// -----

// n is checked even when every other dimension is dynamic.
func.func @select_blocks_idx_n_dynamic(%q: tensor<?x?x?x?xbf16>, %k: tensor<?x?x?x?xbf16>, %lse: tensor<?x?x?xf32>) {
  // expected-error @+1 {{'idx' dimension 3 (n) is 8, expected n = 16 (from config)}}
  %idx = nsa.select_blocks %q, %k, %lse config <>
      : (tensor<?x?x?x?xbf16>, tensor<?x?x?x?xbf16>, tensor<?x?x?xf32>) -> tensor<?x?x?x8xi32>
  return
}

// -----

// idx is i32.
func.func @select_blocks_idx_dtype(%q: tensor<1x100x4x16xbf16>, %k: tensor<1x5x2x16xbf16>, %lse: tensor<1x100x4xf32>) {
  // expected-error @+1 {{'idx' must have 'i32' elements, got 'i64'}}
  %idx = nsa.select_blocks %q, %k, %lse config <>
      : (tensor<1x100x4x16xbf16>, tensor<1x5x2x16xbf16>, tensor<1x100x4xf32>) -> tensor<1x100x2x16xi64>
  return
}

// -----

//===----------------------------------------------------------------------===//
// nsa.selected_attention
//===----------------------------------------------------------------------===//

// k and v run over all T tokens.
func.func @selected_attention_tokens(%q: tensor<1x100x4x16xbf16>, %k: tensor<1x5x2x16xbf16>, %v: tensor<1x5x2x16xbf16>, %idx: tensor<1x100x2x16xi32>) {
  // expected-error @+1 {{'k' dimension 1 (T) is 5, expected T = 100 (from 'q')}}
  %o, %lse = nsa.selected_attention %q, %k, %v, %idx config <>
      : (tensor<1x100x4x16xbf16>, tensor<1x5x2x16xbf16>, tensor<1x5x2x16xbf16>, tensor<1x100x2x16xi32>) -> (tensor<1x100x4x16xbf16>, tensor<1x100x4xf32>)
  return
}

// -----

// idx is [B, T, HKV, n]: n.
func.func @selected_attention_idx_n(%q: tensor<1x100x4x16xbf16>, %k: tensor<1x100x2x16xbf16>, %v: tensor<1x100x2x16xbf16>, %idx: tensor<1x100x2x8xi32>) {
  // expected-error @+1 {{'idx' dimension 3 (n) is 8, expected n = 16 (from config)}}
  %o, %lse = nsa.selected_attention %q, %k, %v, %idx config <>
      : (tensor<1x100x4x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x8xi32>) -> (tensor<1x100x4x16xbf16>, tensor<1x100x4xf32>)
  return
}

// -----

// idx is [B, T, HKV, n]: T.
func.func @selected_attention_idx_tokens(%q: tensor<1x100x4x16xbf16>, %k: tensor<1x100x2x16xbf16>, %v: tensor<1x100x2x16xbf16>, %idx: tensor<1x50x2x16xi32>) {
  // expected-error @+1 {{'idx' dimension 1 (T) is 50, expected T = 100 (from 'q')}}
  %o, %lse = nsa.selected_attention %q, %k, %v, %idx config <>
      : (tensor<1x100x4x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x50x2x16xi32>) -> (tensor<1x100x4x16xbf16>, tensor<1x100x4xf32>)
  return
}

// -----

// idx is i32.
func.func @selected_attention_idx_dtype(%q: tensor<1x100x4x16xbf16>, %k: tensor<1x100x2x16xbf16>, %v: tensor<1x100x2x16xbf16>, %idx: tensor<1x100x2x16xf32>) {
  // expected-error @+1 {{'idx' must have 'i32' elements, got 'f32'}}
  %o, %lse = nsa.selected_attention %q, %k, %v, %idx config <>
      : (tensor<1x100x4x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xf32>) -> (tensor<1x100x4x16xbf16>, tensor<1x100x4xf32>)
  return
}

// -----

// lse is f32.
func.func @selected_attention_lse_dtype(%q: tensor<1x100x4x16xbf16>, %k: tensor<1x100x2x16xbf16>, %v: tensor<1x100x2x16xbf16>, %idx: tensor<1x100x2x16xi32>) {
  // expected-error @+1 {{'lse' must have 'f32' elements, got 'f16'}}
  %o, %lse = nsa.selected_attention %q, %k, %v, %idx config <>
      : (tensor<1x100x4x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xi32>) -> (tensor<1x100x4x16xbf16>, tensor<1x100x4xf16>)
  return
}

// -----

//===----------------------------------------------------------------------===//
// nsa.window_attention (the shared rules above use it; one more here)
//===----------------------------------------------------------------------===//

// o is [B, T, HQ, Dv].
func.func @window_attention_o_heads(%q: tensor<1x100x4x16xbf16>, %k: tensor<1x100x2x16xbf16>, %v: tensor<1x100x2x16xbf16>) {
  // expected-error @+1 {{'nsa.window_attention' op 'o' dimension 2 (HQ) is 2, expected HQ = 4 (from 'q')}}
  %o, %lse = nsa.window_attention %q, %k, %v config <w = 64>
      : (tensor<1x100x4x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>) -> (tensor<1x100x2x16xbf16>, tensor<1x100x4xf32>)
  return
}

// -----

//===----------------------------------------------------------------------===//
// nsa.combine
//===----------------------------------------------------------------------===//

// gates is [B, T, HQ, 3].
func.func @combine_gates_three(%g: tensor<1x100x4x2xbf16>, %a: tensor<1x100x4x16xbf16>, %b: tensor<1x100x4x16xbf16>, %c: tensor<1x100x4x16xbf16>) {
  // expected-error @+1 {{'gates' dimension 3 (branches) is 2, expected branches = 3 (from cmp, slc, win)}}
  %o = nsa.combine %g, %a, %b, %c : (tensor<1x100x4x2xbf16>, tensor<1x100x4x16xbf16>, tensor<1x100x4x16xbf16>, tensor<1x100x4x16xbf16>) -> tensor<1x100x4x16xbf16>
  return
}

// -----

// gates' last dimension is checked even with every other dimension dynamic.
func.func @combine_gates_three_dynamic(%g: tensor<?x?x?x4xbf16>, %a: tensor<?x?x?x?xbf16>) {
  // expected-error @+1 {{'gates' dimension 3 (branches) is 4, expected branches = 3 (from cmp, slc, win)}}
  %o = nsa.combine %g, %a, %a, %a
      : (tensor<?x?x?x4xbf16>, tensor<?x?x?x?xbf16>, tensor<?x?x?x?xbf16>, tensor<?x?x?x?xbf16>) -> tensor<?x?x?x?xbf16>
  return
}

// -----

// gates rank.
func.func @combine_gates_rank(%g: tensor<100x4x3xbf16>, %a: tensor<1x100x4x16xbf16>) {
  // expected-error @+1 {{'nsa.combine' op 'gates' must have rank 4 [B, T, HQ, branches], got 'tensor<100x4x3xbf16>'}}
  %o = nsa.combine %g, %a, %a, %a : (tensor<100x4x3xbf16>, tensor<1x100x4x16xbf16>, tensor<1x100x4x16xbf16>, tensor<1x100x4x16xbf16>) -> tensor<1x100x4x16xbf16>
  return
}

// -----

// gates is bf16 or f16.
func.func @combine_gates_dtype(%g: tensor<1x100x4x3xf32>, %a: tensor<1x100x4x16xf32>) {
  // expected-error @+1 {{'gates' must have bf16 or f16 elements, got 'f32'}}
  %o = nsa.combine %g, %a, %a, %a
      : (tensor<1x100x4x3xf32>, tensor<1x100x4x16xf32>, tensor<1x100x4x16xf32>, tensor<1x100x4x16xf32>) -> tensor<1x100x4x16xf32>
  return
}

// -----

// The branch outputs have the gates' element type.
func.func @combine_branch_dtype(%g: tensor<1x100x4x3xbf16>, %a: tensor<1x100x4x16xbf16>, %b: tensor<1x100x4x16xf16>) {
  // expected-error @+1 {{'slc' must have the element type of 'gates' ('bf16'), got 'f16'}}
  %o = nsa.combine %g, %a, %b, %a : (tensor<1x100x4x3xbf16>, tensor<1x100x4x16xbf16>, tensor<1x100x4x16xf16>, tensor<1x100x4x16xbf16>) -> tensor<1x100x4x16xbf16>
  return
}

// -----

// The branch outputs are [B, T, HQ, Dv]: cmp against gates.
func.func @combine_cmp_heads(%g: tensor<1x100x4x3xbf16>, %a: tensor<1x100x2x16xbf16>, %b: tensor<1x100x4x16xbf16>) {
  // expected-error @+1 {{'cmp' dimension 2 (HQ) is 2, expected HQ = 4 (from 'gates')}}
  %o = nsa.combine %g, %a, %b, %b : (tensor<1x100x4x3xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x4x16xbf16>, tensor<1x100x4x16xbf16>) -> tensor<1x100x4x16xbf16>
  return
}

// -----

// The branch outputs share Dv: win against cmp.
func.func @combine_win_dv(%g: tensor<1x100x4x3xbf16>, %a: tensor<1x100x4x16xbf16>, %c: tensor<1x100x4x32xbf16>) {
  // expected-error @+1 {{'win' dimension 3 (Dv) is 32, expected Dv = 16 (from 'cmp')}}
  %o = nsa.combine %g, %a, %a, %c : (tensor<1x100x4x3xbf16>, tensor<1x100x4x16xbf16>, tensor<1x100x4x16xbf16>, tensor<1x100x4x32xbf16>) -> tensor<1x100x4x16xbf16>
  return
}

// -----

// The result is [B, T, HQ, Dv].
func.func @combine_result_shape(%g: tensor<1x100x4x3xbf16>, %a: tensor<1x100x4x16xbf16>) {
  // expected-error @+1 {{'o' dimension 1 (T) is 50, expected T = 100 (from 'gates')}}
  %o = nsa.combine %g, %a, %a, %a : (tensor<1x100x4x3xbf16>, tensor<1x100x4x16xbf16>, tensor<1x100x4x16xbf16>, tensor<1x100x4x16xbf16>) -> tensor<1x50x4x16xbf16>
  return
}

// -----

// The result has the gates' element type.
func.func @combine_result_dtype(%g: tensor<1x100x4x3xbf16>, %a: tensor<1x100x4x16xbf16>) {
  // expected-error @+1 {{'o' must have the element type of 'gates' ('bf16'), got 'f32'}}
  %o = nsa.combine %g, %a, %a, %a : (tensor<1x100x4x3xbf16>, tensor<1x100x4x16xbf16>, tensor<1x100x4x16xbf16>, tensor<1x100x4x16xbf16>) -> tensor<1x100x4x16xf32>
  return
}

// -----

//===----------------------------------------------------------------------===//
// nsa.attention
//===----------------------------------------------------------------------===//

// keys holds 1 or 3 tensors: 2.
func.func @attention_two_keys(%q: tensor<1x100x4x16xbf16>, %k: tensor<1x100x2x16xbf16>, %g: tensor<1x100x4x3xbf16>) {
  // expected-error @+1 {{keys must hold 1 tensor (shared by all branches) or 3 (cmp, slc, win), got 2}}
  %o = nsa.attention %q keys(%k, %k) values(%k, %k) gates %g compress mean config <>
      : (tensor<1x100x4x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x4x3xbf16>) -> tensor<1x100x4x16xbf16>
  return
}

// -----

// keys holds 1 or 3 tensors: none.
func.func @attention_no_keys(%q: tensor<1x100x4x16xbf16>, %g: tensor<1x100x4x3xbf16>) {
  // expected-error @+1 {{keys must hold 1 tensor (shared by all branches) or 3 (cmp, slc, win), got 0}}
  %o = nsa.attention %q keys() values() gates %g compress mean config <>
      : (tensor<1x100x4x16xbf16>, tensor<1x100x4x3xbf16>) -> tensor<1x100x4x16xbf16>
  return
}

// -----

// values holds as many tensors as keys.
func.func @attention_values_count(%q: tensor<1x100x4x16xbf16>, %k: tensor<1x100x2x16xbf16>, %g: tensor<1x100x4x3xbf16>) {
  // expected-error @+1 {{values must hold as many tensors as keys (1), got 3}}
  %o = nsa.attention %q keys(%k) values(%k, %k, %k) gates %g compress mean config <>
      : (tensor<1x100x4x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x4x3xbf16>) -> tensor<1x100x4x16xbf16>
  return
}

// -----

// q is [B, T, HQ, Dk].
func.func @attention_q_rank(%q: tensor<1x100x64xbf16>, %k: tensor<1x100x2x16xbf16>, %g: tensor<1x100x4x3xbf16>) {
  // expected-error @+1 {{'nsa.attention' op 'q' must have rank 4 [B, T, HQ, Dk], got 'tensor<1x100x64xbf16>'}}
  %o = nsa.attention %q keys(%k) values(%k) gates %g compress mean config <>
      : (tensor<1x100x64xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x4x3xbf16>) -> tensor<1x100x4x16xbf16>
  return
}

// -----

// With three keys, each is checked and named by its position.
func.func @attention_keys_tokens(%q: tensor<1x100x4x16xbf16>, %k: tensor<1x100x2x16xbf16>, %k1: tensor<1x50x2x16xbf16>, %g: tensor<1x100x4x3xbf16>) {
  // expected-error @+1 {{'keys#1' dimension 1 (T) is 50, expected T = 100 (from 'q')}}
  %o = nsa.attention %q keys(%k, %k1, %k) values(%k, %k, %k) gates %g compress mean config <>
      : (tensor<1x100x4x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x50x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x4x3xbf16>) -> tensor<1x100x4x16xbf16>
  return
}

// -----

// values#i has q's element type.
func.func @attention_values_dtype(%q: tensor<1x100x4x16xbf16>, %k: tensor<1x100x2x16xbf16>, %v2: tensor<1x100x2x16xf16>, %g: tensor<1x100x4x3xbf16>) {
  // expected-error @+1 {{'values#2' must have the element type of 'q' ('bf16'), got 'f16'}}
  %o = nsa.attention %q keys(%k, %k, %k) values(%k, %k, %v2) gates %g compress mean config <>
      : (tensor<1x100x4x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xf16>, tensor<1x100x4x3xbf16>) -> tensor<1x100x4x16xbf16>
  return
}

// -----

// GQA, with dynamic B and T.
func.func @attention_gqa_dynamic(%q: tensor<?x?x4x16xbf16>, %k: tensor<?x?x3x16xbf16>, %g: tensor<?x?x4x3xbf16>) {
  // expected-error @+1 {{GQA requires HQ to be a multiple of HKV, got HQ = 4, HKV = 3}}
  %o = nsa.attention %q keys(%k) values(%k) gates %g compress mean config <>
      : (tensor<?x?x4x16xbf16>, tensor<?x?x3x16xbf16>, tensor<?x?x3x16xbf16>, tensor<?x?x4x3xbf16>) -> tensor<?x?x4x16xbf16>
  return
}

// -----

// gates is [B, T, HQ, 3].
func.func @attention_gates_shape(%q: tensor<1x100x4x16xbf16>, %k: tensor<1x100x2x16xbf16>, %g: tensor<1x100x4x1xbf16>) {
  // expected-error @+1 {{'gates' dimension 3 (branches) is 1, expected branches = 3 (from cmp, slc, win)}}
  %o = nsa.attention %q keys(%k) values(%k) gates %g compress mean config <>
      : (tensor<1x100x4x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x4x1xbf16>) -> tensor<1x100x4x16xbf16>
  return
}

// -----

// gates has q's element type.
func.func @attention_gates_dtype(%q: tensor<1x100x4x16xbf16>, %k: tensor<1x100x2x16xbf16>, %g: tensor<1x100x4x3xf16>) {
  // expected-error @+1 {{'gates' must have the element type of 'q' ('bf16'), got 'f16'}}
  %o = nsa.attention %q keys(%k) values(%k) gates %g compress mean config <>
      : (tensor<1x100x4x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x4x3xf16>) -> tensor<1x100x4x16xbf16>
  return
}

// -----

// mean takes no weights.
func.func @attention_mean_weights(%q: tensor<1x100x4x16xbf16>, %k: tensor<1x100x2x16xbf16>, %g: tensor<1x100x4x3xbf16>, %w: tensor<2x512x16xbf16>) {
  // expected-error @+1 {{mean compression takes no weights or pe (they belong to linear)}}
  %o = nsa.attention %q keys(%k) values(%k) gates %g compress mean weights(%w, %w) config <>
      : (tensor<1x100x4x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x4x3xbf16>, tensor<2x512x16xbf16>, tensor<2x512x16xbf16>) -> tensor<1x100x4x16xbf16>
  return
}

// -----

// mean takes no pe.
func.func @attention_mean_pe(%q: tensor<1x100x4x16xbf16>, %k: tensor<1x100x2x16xbf16>, %g: tensor<1x100x4x3xbf16>, %pe: tensor<2x32x16xbf16>) {
  // expected-error @+1 {{mean compression takes no weights or pe (they belong to linear)}}
  %o = nsa.attention %q keys(%k) values(%k) gates %g compress mean pe(%pe, %pe) config <>
      : (tensor<1x100x4x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x4x3xbf16>, tensor<2x32x16xbf16>, tensor<2x32x16xbf16>) -> tensor<1x100x4x16xbf16>
  return
}

// -----

// linear needs 2 weights: none.
func.func @attention_linear_no_weights(%q: tensor<1x100x4x16xbf16>, %k: tensor<1x100x2x16xbf16>, %g: tensor<1x100x4x3xbf16>) {
  // expected-error @+1 {{linear compression needs 2 weights (W_k, W_v), got 0}}
  %o = nsa.attention %q keys(%k) values(%k) gates %g compress linear config <>
      : (tensor<1x100x4x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x4x3xbf16>) -> tensor<1x100x4x16xbf16>
  return
}

// -----

// linear needs 2 weights: one.
func.func @attention_linear_one_weight(%q: tensor<1x100x4x16xbf16>, %k: tensor<1x100x2x16xbf16>, %g: tensor<1x100x4x3xbf16>, %w: tensor<2x512x16xbf16>) {
  // expected-error @+1 {{linear compression needs 2 weights (W_k, W_v), got 1}}
  %o = nsa.attention %q keys(%k) values(%k) gates %g compress linear weights(%w) config <>
      : (tensor<1x100x4x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x4x3xbf16>, tensor<2x512x16xbf16>) -> tensor<1x100x4x16xbf16>
  return
}

// -----

// pe holds 0 or 2 tensors.
func.func @attention_pe_count(%q: tensor<1x100x4x16xbf16>, %k: tensor<1x100x2x16xbf16>, %g: tensor<1x100x4x3xbf16>, %w: tensor<2x512x16xbf16>, %pe: tensor<2x32x16xbf16>) {
  // expected-error @+1 {{pe must hold 0 or 2 tensors (PE_k, PE_v), got 1}}
  %o = nsa.attention %q keys(%k) values(%k) gates %g compress linear weights(%w, %w) pe(%pe) config <>
      : (tensor<1x100x4x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x4x3xbf16>, tensor<2x512x16xbf16>, tensor<2x512x16xbf16>, tensor<2x32x16xbf16>) -> tensor<1x100x4x16xbf16>
  return
}

// -----

// W_k is [HKV, l*Dk, Dk].
func.func @attention_weight_shape(%q: tensor<1x100x4x16xbf16>, %k: tensor<1x100x2x16xbf16>, %g: tensor<1x100x4x3xbf16>, %w: tensor<2x512x16xbf16>, %wk: tensor<2x256x16xbf16>) {
  // expected-error @+1 {{'weights#0' dimension 1 (l*D) is 256, expected l*D = 512 (from config l times D = 16)}}
  %o = nsa.attention %q keys(%k) values(%k) gates %g compress linear weights(%wk, %w) config <>
      : (tensor<1x100x4x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x4x3xbf16>, tensor<2x256x16xbf16>, tensor<2x512x16xbf16>) -> tensor<1x100x4x16xbf16>
  return
}

// -----

// W_v is [HKV, l*Dv, Dv] (Dk = 16, Dv = 8 here).
func.func @attention_weight_v_shape(%q: tensor<1x100x4x16xbf16>, %k: tensor<1x100x2x16xbf16>, %v: tensor<1x100x2x8xbf16>, %g: tensor<1x100x4x3xbf16>, %w: tensor<2x512x16xbf16>) {
  // expected-error @+1 {{'weights#1' dimension 1 (l*D) is 512, expected l*D = 256 (from config l times D = 8)}}
  %o = nsa.attention %q keys(%k) values(%v) gates %g compress linear weights(%w, %w) config <>
      : (tensor<1x100x4x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x8xbf16>, tensor<1x100x4x3xbf16>, tensor<2x512x16xbf16>, tensor<2x512x16xbf16>) -> tensor<1x100x4x8xbf16>
  return
}

// -----

// The weights have the activations' element type.
func.func @attention_weight_dtype(%q: tensor<1x100x4x16xbf16>, %k: tensor<1x100x2x16xbf16>, %g: tensor<1x100x4x3xbf16>, %w: tensor<2x512x16xbf16>, %wv: tensor<2x512x16xf32>) {
  // expected-error @+1 {{'weights#1' must have the element type of 'values#0' ('bf16'), got 'f32'}}
  %o = nsa.attention %q keys(%k) values(%k) gates %g compress linear weights(%w, %wv) config <>
      : (tensor<1x100x4x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x4x3xbf16>, tensor<2x512x16xbf16>, tensor<2x512x16xf32>) -> tensor<1x100x4x16xbf16>
  return
}

// -----

// PE is [HKV, l, D].
func.func @attention_pe_shape(%q: tensor<1x100x4x16xbf16>, %k: tensor<1x100x2x16xbf16>, %g: tensor<1x100x4x3xbf16>, %w: tensor<2x512x16xbf16>, %pe: tensor<2x32x16xbf16>, %pk: tensor<2x64x16xbf16>) {
  // expected-error @+1 {{'pe#0' dimension 1 (l) is 64, expected l = 32 (from config)}}
  %o = nsa.attention %q keys(%k) values(%k) gates %g compress linear weights(%w, %w) pe(%pk, %pe) config <>
      : (tensor<1x100x4x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x4x3xbf16>, tensor<2x512x16xbf16>, tensor<2x512x16xbf16>, tensor<2x64x16xbf16>, tensor<2x32x16xbf16>) -> tensor<1x100x4x16xbf16>
  return
}

// -----

// o is [B, T, HQ, Dv].
func.func @attention_o_shape(%q: tensor<1x100x4x16xbf16>, %k: tensor<1x100x2x16xbf16>, %g: tensor<1x100x4x3xbf16>) {
  // expected-error @+1 {{'o' dimension 3 (Dv) is 32, expected Dv = 16 (from 'values#0')}}
  %o = nsa.attention %q keys(%k) values(%k) gates %g compress mean config <>
      : (tensor<1x100x4x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x4x3xbf16>) -> tensor<1x100x4x32xbf16>
  return
}

// -----

// o has q's element type.
func.func @attention_o_dtype(%q: tensor<1x100x4x16xbf16>, %k: tensor<1x100x2x16xbf16>, %g: tensor<1x100x4x3xbf16>) {
  // expected-error @+1 {{'o' must have the element type of 'q' ('bf16'), got 'f16'}}
  %o = nsa.attention %q keys(%k) values(%k) gates %g compress mean config <>
      : (tensor<1x100x4x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x4x3xbf16>) -> tensor<1x100x4x16xf16>
  return
}

// -----

//===----------------------------------------------------------------------===//
// nsa.compress_grad
//===----------------------------------------------------------------------===//

// The forward's operand rules apply: mean takes no weight.
func.func @compress_grad_mean_weight(%k: tensor<1x100x2x16xbf16>, %w: tensor<2x512x16xbf16>, %dc: tensor<1x5x2x16xbf16>) {
  // expected-error @+1 {{mean compression takes no weight or pe (they belong to linear)}}
  %dk, %dw = nsa.compress_grad mean %k weight %w grad %dc config <>
      : (tensor<1x100x2x16xbf16>, tensor<2x512x16xbf16>, tensor<1x5x2x16xbf16>) -> (tensor<1x100x2x16xbf16>, tensor<2x512x16xbf16>)
  return
}

// -----

// The forward's operand rules apply: linear needs a weight.
func.func @compress_grad_linear_no_weight(%k: tensor<1x100x2x16xbf16>, %dc: tensor<1x5x2x16xbf16>) {
  // expected-error @+1 {{linear compression needs a weight [H, l*D, D]}}
  %dk = nsa.compress_grad linear %k grad %dc config <> : (tensor<1x100x2x16xbf16>, tensor<1x5x2x16xbf16>) -> tensor<1x100x2x16xbf16>
  return
}

// -----

// The forward's operand rules apply: weight shape.
func.func @compress_grad_weight_shape(%k: tensor<1x100x2x16xbf16>, %w: tensor<2x512x32xbf16>, %dc: tensor<1x5x2x16xbf16>) {
  // expected-error @+1 {{'weight' dimension 2 (D) is 32, expected D = 16 (from 'input')}}
  %dk, %dw = nsa.compress_grad linear %k weight %w grad %dc config <>
      : (tensor<1x100x2x16xbf16>, tensor<2x512x32xbf16>, tensor<1x5x2x16xbf16>) -> (tensor<1x100x2x16xbf16>, tensor<2x512x32xbf16>)
  return
}

// -----

// d_result is [B, Nc, H, D] with Nc = Nc(T).
func.func @compress_grad_d_result_nc(%k: tensor<1x100x2x16xbf16>, %dc: tensor<1x100x2x16xbf16>) {
  // expected-error @+1 {{'d_result' dimension 1 (Nc) is 100, expected Nc = 5 (from Nc(T) = (T - l)/d + 1, or 0 if T < l, with T = 100)}}
  %dk = nsa.compress_grad mean %k grad %dc config <> : (tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>) -> tensor<1x100x2x16xbf16>
  return
}

// -----

// d_result has input's element type.
func.func @compress_grad_d_result_dtype(%k: tensor<1x100x2x16xbf16>, %dc: tensor<1x5x2x16xf32>) {
  // expected-error @+1 {{'d_result' must have the element type of 'input' ('bf16'), got 'f32'}}
  %dk = nsa.compress_grad mean %k grad %dc config <> : (tensor<1x100x2x16xbf16>, tensor<1x5x2x16xf32>) -> tensor<1x100x2x16xbf16>
  return
}

// -----

// One gradient per differentiable operand: d_weight missing.
func.func @compress_grad_missing_d_weight(%k: tensor<1x100x2x16xbf16>, %w: tensor<2x512x16xbf16>, %dc: tensor<1x5x2x16xbf16>) {
  // expected-error @+1 {{expected one gradient per differentiable operand (input, weight, pe present: 2), got 1}}
  %dk = nsa.compress_grad linear %k weight %w grad %dc config <>
      : (tensor<1x100x2x16xbf16>, tensor<2x512x16xbf16>, tensor<1x5x2x16xbf16>) -> tensor<1x100x2x16xbf16>
  return
}

// -----

// One gradient per differentiable operand: d_pe missing.
func.func @compress_grad_missing_d_pe(%k: tensor<1x100x2x16xbf16>, %w: tensor<2x512x16xbf16>, %pe: tensor<2x32x16xbf16>, %dc: tensor<1x5x2x16xbf16>) {
  // expected-error @+1 {{expected one gradient per differentiable operand (input, weight, pe present: 3), got 2}}
  %dk, %dw = nsa.compress_grad linear %k weight %w pe %pe grad %dc config <>
      : (tensor<1x100x2x16xbf16>, tensor<2x512x16xbf16>, tensor<2x32x16xbf16>, tensor<1x5x2x16xbf16>) -> (tensor<1x100x2x16xbf16>, tensor<2x512x16xbf16>)
  return
}

// -----

// One gradient per differentiable operand: mean has only d_input.
func.func @compress_grad_extra_grad(%k: tensor<1x100x2x16xbf16>, %dc: tensor<1x5x2x16xbf16>) {
  // expected-error @+1 {{expected one gradient per differentiable operand (input, weight, pe present: 1), got 2}}
  %dk, %dw = nsa.compress_grad mean %k grad %dc config <>
      : (tensor<1x100x2x16xbf16>, tensor<1x5x2x16xbf16>) -> (tensor<1x100x2x16xbf16>, tensor<2x512x16xbf16>)
  return
}

// -----

// One gradient per differentiable operand: none at all.
func.func @compress_grad_no_grad(%k: tensor<1x100x2x16xbf16>, %dc: tensor<1x5x2x16xbf16>) {
  // expected-error @+1 {{expected one gradient per differentiable operand (input, weight, pe present: 1), got 0}}
  nsa.compress_grad mean %k grad %dc config <> : (tensor<1x100x2x16xbf16>, tensor<1x5x2x16xbf16>) -> ()
  return
}

// -----

// d_input has exactly input's type.
func.func @compress_grad_d_input_type(%k: tensor<1x100x2x16xbf16>, %dc: tensor<1x5x2x16xbf16>) {
  // expected-error @+1 {{'d_input' must have the type of 'input' ('tensor<1x100x2x16xbf16>'), got 'tensor<1x100x2x16xf32>'}}
  %dk = nsa.compress_grad mean %k grad %dc config <> : (tensor<1x100x2x16xbf16>, tensor<1x5x2x16xbf16>) -> tensor<1x100x2x16xf32>
  return
}

// -----

// d_input has exactly input's type, static sizes included.
func.func @compress_grad_d_input_dynamic(%k: tensor<1x100x2x16xbf16>, %dc: tensor<1x5x2x16xbf16>) {
  // expected-error @+1 {{'d_input' must have the type of 'input' ('tensor<1x100x2x16xbf16>'), got 'tensor<1x?x2x16xbf16>'}}
  %dk = nsa.compress_grad mean %k grad %dc config <> : (tensor<1x100x2x16xbf16>, tensor<1x5x2x16xbf16>) -> tensor<1x?x2x16xbf16>
  return
}

// -----

// d_weight has exactly weight's type.
func.func @compress_grad_d_weight_type(%k: tensor<1x100x2x16xbf16>, %w: tensor<2x512x16xbf16>, %dc: tensor<1x5x2x16xbf16>) {
  // expected-error @+1 {{'d_weight' must have the type of 'weight' ('tensor<2x512x16xbf16>'), got 'tensor<2x512x16xf32>'}}
  %dk, %dw = nsa.compress_grad linear %k weight %w grad %dc config <>
      : (tensor<1x100x2x16xbf16>, tensor<2x512x16xbf16>, tensor<1x5x2x16xbf16>) -> (tensor<1x100x2x16xbf16>, tensor<2x512x16xf32>)
  return
}

// -----

// d_pe has exactly pe's type.
func.func @compress_grad_d_pe_type(%k: tensor<1x100x2x16xbf16>, %w: tensor<2x512x16xbf16>, %pe: tensor<2x32x16xbf16>, %dc: tensor<1x5x2x16xbf16>) {
  // expected-error @+1 {{'d_pe' must have the type of 'pe' ('tensor<2x32x16xbf16>'), got 'tensor<2x512x16xbf16>'}}
  %dk, %dw, %dpe = nsa.compress_grad linear %k weight %w pe %pe grad %dc config <>
      : (tensor<1x100x2x16xbf16>, tensor<2x512x16xbf16>, tensor<2x32x16xbf16>, tensor<1x5x2x16xbf16>) -> (tensor<1x100x2x16xbf16>, tensor<2x512x16xbf16>, tensor<2x512x16xbf16>)
  return
}

// -----

//===----------------------------------------------------------------------===//
// nsa.compressed_attention_grad
//===----------------------------------------------------------------------===//

// The forward's rules apply: k is [B, Nc, HKV, Dk].
func.func @compressed_attention_grad_nc(%q: tensor<1x100x4x16xbf16>, %k: tensor<1x100x2x16xbf16>, %o: tensor<1x100x4x16xbf16>, %lse: tensor<1x100x4xf32>) {
  // expected-error @+1 {{'k' dimension 1 (Nc) is 100, expected Nc = 5 (from Nc(T) = (T - l)/d + 1, or 0 if T < l, with T = 100)}}
  %dq, %dk, %dv = nsa.compressed_attention_grad %q, %k, %k, %o, %lse grad %o config <>
      : (tensor<1x100x4x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x4x16xbf16>, tensor<1x100x4xf32>, tensor<1x100x4x16xbf16>) -> (tensor<1x100x4x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>)
  return
}

// -----

// The forward's rules apply to the saved lse: f32.
func.func @compressed_attention_grad_lse_dtype(%q: tensor<1x100x4x16xbf16>, %k: tensor<1x5x2x16xbf16>, %o: tensor<1x100x4x16xbf16>, %lse: tensor<1x100x4xbf16>) {
  // expected-error @+1 {{'lse' must have 'f32' elements, got 'bf16'}}
  %dq, %dk, %dv = nsa.compressed_attention_grad %q, %k, %k, %o, %lse grad %o config <>
      : (tensor<1x100x4x16xbf16>, tensor<1x5x2x16xbf16>, tensor<1x5x2x16xbf16>, tensor<1x100x4x16xbf16>, tensor<1x100x4xbf16>, tensor<1x100x4x16xbf16>) -> (tensor<1x100x4x16xbf16>, tensor<1x5x2x16xbf16>, tensor<1x5x2x16xbf16>)
  return
}

// -----

// d_o has exactly o's type.
func.func @compressed_attention_grad_d_o(%q: tensor<1x100x4x16xbf16>, %k: tensor<1x5x2x16xbf16>, %o: tensor<1x100x4x16xbf16>, %lse: tensor<1x100x4xf32>, %do: tensor<1x100x4x16xf16>) {
  // expected-error @+1 {{'d_o' must have the type of 'o' ('tensor<1x100x4x16xbf16>'), got 'tensor<1x100x4x16xf16>'}}
  %dq, %dk, %dv = nsa.compressed_attention_grad %q, %k, %k, %o, %lse grad %do config <>
      : (tensor<1x100x4x16xbf16>, tensor<1x5x2x16xbf16>, tensor<1x5x2x16xbf16>, tensor<1x100x4x16xbf16>, tensor<1x100x4xf32>, tensor<1x100x4x16xf16>) -> (tensor<1x100x4x16xbf16>, tensor<1x5x2x16xbf16>, tensor<1x5x2x16xbf16>)
  return
}

// -----

// d_q has exactly q's type.
func.func @compressed_attention_grad_d_q(%q: tensor<1x100x4x16xbf16>, %k: tensor<1x5x2x16xbf16>, %o: tensor<1x100x4x16xbf16>, %lse: tensor<1x100x4xf32>) {
  // expected-error @+1 {{'d_q' must have the type of 'q' ('tensor<1x100x4x16xbf16>'), got 'tensor<1x100x4x16xf32>'}}
  %dq, %dk, %dv = nsa.compressed_attention_grad %q, %k, %k, %o, %lse grad %o config <>
      : (tensor<1x100x4x16xbf16>, tensor<1x5x2x16xbf16>, tensor<1x5x2x16xbf16>, tensor<1x100x4x16xbf16>, tensor<1x100x4xf32>, tensor<1x100x4x16xbf16>) -> (tensor<1x100x4x16xf32>, tensor<1x5x2x16xbf16>, tensor<1x5x2x16xbf16>)
  return
}

// -----

// d_k has exactly k's type.
func.func @compressed_attention_grad_d_k(%q: tensor<1x100x4x16xbf16>, %k: tensor<1x5x2x16xbf16>, %o: tensor<1x100x4x16xbf16>, %lse: tensor<1x100x4xf32>) {
  // expected-error @+1 {{'d_k' must have the type of 'k' ('tensor<1x5x2x16xbf16>'), got 'tensor<1x100x2x16xbf16>'}}
  %dq, %dk, %dv = nsa.compressed_attention_grad %q, %k, %k, %o, %lse grad %o config <>
      : (tensor<1x100x4x16xbf16>, tensor<1x5x2x16xbf16>, tensor<1x5x2x16xbf16>, tensor<1x100x4x16xbf16>, tensor<1x100x4xf32>, tensor<1x100x4x16xbf16>) -> (tensor<1x100x4x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x5x2x16xbf16>)
  return
}

// -----

// d_v has exactly v's type.
func.func @compressed_attention_grad_d_v(%q: tensor<1x100x4x16xbf16>, %k: tensor<1x5x2x16xbf16>, %o: tensor<1x100x4x16xbf16>, %lse: tensor<1x100x4xf32>) {
  // expected-error @+1 {{'d_v' must have the type of 'v' ('tensor<1x5x2x16xbf16>'), got 'tensor<1x?x2x16xbf16>'}}
  %dq, %dk, %dv = nsa.compressed_attention_grad %q, %k, %k, %o, %lse grad %o config <>
      : (tensor<1x100x4x16xbf16>, tensor<1x5x2x16xbf16>, tensor<1x5x2x16xbf16>, tensor<1x100x4x16xbf16>, tensor<1x100x4xf32>, tensor<1x100x4x16xbf16>) -> (tensor<1x100x4x16xbf16>, tensor<1x5x2x16xbf16>, tensor<1x?x2x16xbf16>)
  return
}

// -----

//===----------------------------------------------------------------------===//
// nsa.selected_attention_grad
//===----------------------------------------------------------------------===//

// The forward's rules apply: idx is [B, T, HKV, n].
func.func @selected_attention_grad_idx_n(%q: tensor<1x100x4x16xbf16>, %k: tensor<1x100x2x16xbf16>, %idx: tensor<1x100x2x16xi32>, %o: tensor<1x100x4x16xbf16>, %lse: tensor<1x100x4xf32>) {
  // expected-error @+1 {{'idx' dimension 3 (n) is 16, expected n = 8 (from config)}}
  %dq, %dk, %dv = nsa.selected_attention_grad %q, %k, %k, %idx, %o, %lse grad %o config <n = 8>
      : (tensor<1x100x4x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xi32>, tensor<1x100x4x16xbf16>, tensor<1x100x4xf32>, tensor<1x100x4x16xbf16>) -> (tensor<1x100x4x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>)
  return
}

// -----

// The forward's rules apply: idx is i32.
func.func @selected_attention_grad_idx_dtype(%q: tensor<1x100x4x16xbf16>, %k: tensor<1x100x2x16xbf16>, %idx: tensor<1x100x2x16xi16>, %o: tensor<1x100x4x16xbf16>, %lse: tensor<1x100x4xf32>) {
  // expected-error @+1 {{'idx' must have 'i32' elements, got 'i16'}}
  %dq, %dk, %dv = nsa.selected_attention_grad %q, %k, %k, %idx, %o, %lse grad %o config <>
      : (tensor<1x100x4x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xi16>, tensor<1x100x4x16xbf16>, tensor<1x100x4xf32>, tensor<1x100x4x16xbf16>) -> (tensor<1x100x4x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>)
  return
}

// -----

// The forward's rules apply to the saved o.
func.func @selected_attention_grad_o_shape(%q: tensor<1x100x4x16xbf16>, %k: tensor<1x100x2x16xbf16>, %idx: tensor<1x100x2x16xi32>, %o: tensor<1x100x2x16xbf16>, %lse: tensor<1x100x4xf32>) {
  // expected-error @+1 {{'o' dimension 2 (HQ) is 2, expected HQ = 4 (from 'q')}}
  %dq, %dk, %dv = nsa.selected_attention_grad %q, %k, %k, %idx, %o, %lse grad %o config <>
      : (tensor<1x100x4x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xi32>, tensor<1x100x2x16xbf16>, tensor<1x100x4xf32>, tensor<1x100x2x16xbf16>) -> (tensor<1x100x4x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>)
  return
}

// -----

// d_o has exactly o's type.
func.func @selected_attention_grad_d_o(%q: tensor<1x100x4x16xbf16>, %k: tensor<1x100x2x16xbf16>, %idx: tensor<1x100x2x16xi32>, %o: tensor<1x100x4x16xbf16>, %lse: tensor<1x100x4xf32>, %do: tensor<1x100x4x8xbf16>) {
  // expected-error @+1 {{'d_o' must have the type of 'o' ('tensor<1x100x4x16xbf16>'), got 'tensor<1x100x4x8xbf16>'}}
  %dq, %dk, %dv = nsa.selected_attention_grad %q, %k, %k, %idx, %o, %lse grad %do config <>
      : (tensor<1x100x4x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xi32>, tensor<1x100x4x16xbf16>, tensor<1x100x4xf32>, tensor<1x100x4x8xbf16>) -> (tensor<1x100x4x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>)
  return
}

// -----

// d_k has exactly k's type.
func.func @selected_attention_grad_d_k(%q: tensor<1x100x4x16xbf16>, %k: tensor<1x100x2x16xbf16>, %idx: tensor<1x100x2x16xi32>, %o: tensor<1x100x4x16xbf16>, %lse: tensor<1x100x4xf32>) {
  // expected-error @+1 {{'d_k' must have the type of 'k' ('tensor<1x100x2x16xbf16>'), got 'tensor<1x100x2x16xf16>'}}
  %dq, %dk, %dv = nsa.selected_attention_grad %q, %k, %k, %idx, %o, %lse grad %o config <>
      : (tensor<1x100x4x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xi32>, tensor<1x100x4x16xbf16>, tensor<1x100x4xf32>, tensor<1x100x4x16xbf16>) -> (tensor<1x100x4x16xbf16>, tensor<1x100x2x16xf16>, tensor<1x100x2x16xbf16>)
  return
}

// -----

//===----------------------------------------------------------------------===//
// nsa.window_attention_grad
//===----------------------------------------------------------------------===//

// The forward's rules apply: GQA.
func.func @window_attention_grad_gqa(%q: tensor<1x100x4x16xbf16>, %k: tensor<1x100x3x16xbf16>, %o: tensor<1x100x4x16xbf16>, %lse: tensor<1x100x4xf32>) {
  // expected-error @+1 {{GQA requires HQ to be a multiple of HKV, got HQ = 4, HKV = 3}}
  %dq, %dk, %dv = nsa.window_attention_grad %q, %k, %k, %o, %lse grad %o config <>
      : (tensor<1x100x4x16xbf16>, tensor<1x100x3x16xbf16>, tensor<1x100x3x16xbf16>, tensor<1x100x4x16xbf16>, tensor<1x100x4xf32>, tensor<1x100x4x16xbf16>)
      -> (tensor<1x100x4x16xbf16>, tensor<1x100x3x16xbf16>, tensor<1x100x3x16xbf16>)
  return
}

// -----

// d_q has exactly q's type, even where q is dynamic.
func.func @window_attention_grad_d_q_dynamic(%q: tensor<1x?x4x16xbf16>, %k: tensor<1x100x2x16xbf16>, %o: tensor<1x100x4x16xbf16>, %lse: tensor<1x100x4xf32>) {
  // expected-error @+1 {{'d_q' must have the type of 'q' ('tensor<1x?x4x16xbf16>'), got 'tensor<1x100x4x16xbf16>'}}
  %dq, %dk, %dv = nsa.window_attention_grad %q, %k, %k, %o, %lse grad %o config <>
      : (tensor<1x?x4x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x4x16xbf16>, tensor<1x100x4xf32>, tensor<1x100x4x16xbf16>) -> (tensor<1x100x4x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>)
  return
}

// -----

// d_v has exactly v's type.
func.func @window_attention_grad_d_v(%q: tensor<1x100x4x16xbf16>, %k: tensor<1x100x2x16xbf16>, %o: tensor<1x100x4x16xbf16>, %lse: tensor<1x100x4xf32>) {
  // expected-error @+1 {{'d_v' must have the type of 'v' ('tensor<1x100x2x16xbf16>'), got 'tensor<1x100x4x16xbf16>'}}
  %dq, %dk, %dv = nsa.window_attention_grad %q, %k, %k, %o, %lse grad %o config <>
      : (tensor<1x100x4x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x4x16xbf16>, tensor<1x100x4xf32>, tensor<1x100x4x16xbf16>) -> (tensor<1x100x4x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x4x16xbf16>)
  return
}

// -----

//===----------------------------------------------------------------------===//
// nsa.combine_grad
//===----------------------------------------------------------------------===//

// The forward's rules apply: gates is [B, T, HQ, 3].
func.func @combine_grad_gates_three(%g: tensor<1x100x4x4xbf16>, %a: tensor<1x100x4x16xbf16>) {
  // expected-error @+1 {{'gates' dimension 3 (branches) is 4, expected branches = 3 (from cmp, slc, win)}}
  %dg, %dc, %ds, %dw = nsa.combine_grad %g, %a, %a, %a grad %a
      : (tensor<1x100x4x4xbf16>, tensor<1x100x4x16xbf16>, tensor<1x100x4x16xbf16>, tensor<1x100x4x16xbf16>, tensor<1x100x4x16xbf16>) -> (tensor<1x100x4x4xbf16>, tensor<1x100x4x16xbf16>, tensor<1x100x4x16xbf16>, tensor<1x100x4x16xbf16>)
  return
}

// -----

// d_o is [B, T, HQ, Dv].
func.func @combine_grad_d_o_shape(%g: tensor<1x100x4x3xbf16>, %a: tensor<1x100x4x16xbf16>, %do: tensor<1x100x4x8xbf16>) {
  // expected-error @+1 {{'d_o' dimension 3 (Dv) is 8, expected Dv = 16 (from 'cmp')}}
  %dg, %dc, %ds, %dw = nsa.combine_grad %g, %a, %a, %a grad %do
      : (tensor<1x100x4x3xbf16>, tensor<1x100x4x16xbf16>, tensor<1x100x4x16xbf16>, tensor<1x100x4x16xbf16>, tensor<1x100x4x8xbf16>) -> (tensor<1x100x4x3xbf16>, tensor<1x100x4x16xbf16>, tensor<1x100x4x16xbf16>, tensor<1x100x4x16xbf16>)
  return
}

// -----

// d_o has the gates' element type.
func.func @combine_grad_d_o_dtype(%g: tensor<1x100x4x3xbf16>, %a: tensor<1x100x4x16xbf16>, %do: tensor<1x100x4x16xf32>) {
  // expected-error @+1 {{'d_o' must have the element type of 'gates' ('bf16'), got 'f32'}}
  %dg, %dc, %ds, %dw = nsa.combine_grad %g, %a, %a, %a grad %do
      : (tensor<1x100x4x3xbf16>, tensor<1x100x4x16xbf16>, tensor<1x100x4x16xbf16>, tensor<1x100x4x16xbf16>, tensor<1x100x4x16xf32>) -> (tensor<1x100x4x3xbf16>, tensor<1x100x4x16xbf16>, tensor<1x100x4x16xbf16>, tensor<1x100x4x16xbf16>)
  return
}

// -----

// d_gates has exactly gates' type.
func.func @combine_grad_d_gates(%g: tensor<1x100x4x3xbf16>, %a: tensor<1x100x4x16xbf16>) {
  // expected-error @+1 {{'d_gates' must have the type of 'gates' ('tensor<1x100x4x3xbf16>'), got 'tensor<1x100x4x3xf32>'}}
  %dg, %dc, %ds, %dw = nsa.combine_grad %g, %a, %a, %a grad %a
      : (tensor<1x100x4x3xbf16>, tensor<1x100x4x16xbf16>, tensor<1x100x4x16xbf16>, tensor<1x100x4x16xbf16>, tensor<1x100x4x16xbf16>) -> (tensor<1x100x4x3xf32>, tensor<1x100x4x16xbf16>, tensor<1x100x4x16xbf16>, tensor<1x100x4x16xbf16>)
  return
}

// -----

// d_cmp has exactly cmp's type.
func.func @combine_grad_d_cmp(%g: tensor<1x100x4x3xbf16>, %a: tensor<1x100x4x16xbf16>) {
  // expected-error @+1 {{'d_cmp' must have the type of 'cmp' ('tensor<1x100x4x16xbf16>'), got 'tensor<1x100x4x16xf16>'}}
  %dg, %dc, %ds, %dw = nsa.combine_grad %g, %a, %a, %a grad %a
      : (tensor<1x100x4x3xbf16>, tensor<1x100x4x16xbf16>, tensor<1x100x4x16xbf16>, tensor<1x100x4x16xbf16>, tensor<1x100x4x16xbf16>) -> (tensor<1x100x4x3xbf16>, tensor<1x100x4x16xf16>, tensor<1x100x4x16xbf16>, tensor<1x100x4x16xbf16>)
  return
}

// -----

// d_slc has exactly slc's type.
func.func @combine_grad_d_slc(%g: tensor<1x100x4x3xbf16>, %a: tensor<1x100x4x16xbf16>) {
  // expected-error @+1 {{'d_slc' must have the type of 'slc' ('tensor<1x100x4x16xbf16>'), got 'tensor<1x100x4x8xbf16>'}}
  %dg, %dc, %ds, %dw = nsa.combine_grad %g, %a, %a, %a grad %a
      : (tensor<1x100x4x3xbf16>, tensor<1x100x4x16xbf16>, tensor<1x100x4x16xbf16>, tensor<1x100x4x16xbf16>, tensor<1x100x4x16xbf16>) -> (tensor<1x100x4x3xbf16>, tensor<1x100x4x16xbf16>, tensor<1x100x4x8xbf16>, tensor<1x100x4x16xbf16>)
  return
}

// -----

// d_win has exactly win's type.
func.func @combine_grad_d_win(%g: tensor<1x100x4x3xbf16>, %a: tensor<1x100x4x16xbf16>) {
  // expected-error @+1 {{'d_win' must have the type of 'win' ('tensor<1x100x4x16xbf16>'), got 'tensor<?x?x?x?xbf16>'}}
  %dg, %dc, %ds, %dw = nsa.combine_grad %g, %a, %a, %a grad %a
      : (tensor<1x100x4x3xbf16>, tensor<1x100x4x16xbf16>, tensor<1x100x4x16xbf16>, tensor<1x100x4x16xbf16>, tensor<1x100x4x16xbf16>) -> (tensor<1x100x4x3xbf16>, tensor<1x100x4x16xbf16>, tensor<1x100x4x16xbf16>, tensor<?x?x?x?xbf16>)
  return
}

// -----

//===----------------------------------------------------------------------===//
// nsa.attention_grad
//===----------------------------------------------------------------------===//

// The forward's rules apply: keys holds 1 or 3 tensors.
func.func @attention_grad_two_keys(%q: tensor<1x100x4x16xbf16>, %k: tensor<1x100x2x16xbf16>, %g: tensor<1x100x4x3xbf16>) {
  // expected-error @+1 {{keys must hold 1 tensor (shared by all branches) or 3 (cmp, slc, win), got 2}}
  %dq, %dk0, %dk1, %dv0, %dv1, %dg = nsa.attention_grad %q keys(%k, %k) values(%k, %k) gates %g compress mean grad %q config <>
      : (tensor<1x100x4x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x4x3xbf16>, tensor<1x100x4x16xbf16>) -> (tensor<1x100x4x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x4x3xbf16>)
  return
}

// -----

// The forward's rules apply: linear needs 2 weights.
func.func @attention_grad_linear_one_weight(%q: tensor<1x100x4x16xbf16>, %k: tensor<1x100x2x16xbf16>, %g: tensor<1x100x4x3xbf16>, %w: tensor<2x512x16xbf16>) {
  // expected-error @+1 {{linear compression needs 2 weights (W_k, W_v), got 1}}
  %dq, %dk, %dv, %dg, %dw = nsa.attention_grad %q keys(%k) values(%k) gates %g compress linear weights(%w) grad %q config <>
      : (tensor<1x100x4x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x4x3xbf16>, tensor<2x512x16xbf16>, tensor<1x100x4x16xbf16>) -> (tensor<1x100x4x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x4x3xbf16>, tensor<2x512x16xbf16>)
  return
}

// -----

// d_o is [B, T, HQ, Dv].
func.func @attention_grad_d_o_shape(%q: tensor<1x100x4x16xbf16>, %k: tensor<1x100x2x16xbf16>, %g: tensor<1x100x4x3xbf16>, %do: tensor<1x100x2x16xbf16>) {
  // expected-error @+1 {{'d_o' dimension 2 (HQ) is 2, expected HQ = 4 (from 'q')}}
  %dq, %dk, %dv, %dg = nsa.attention_grad %q keys(%k) values(%k) gates %g compress mean grad %do config <>
      : (tensor<1x100x4x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x4x3xbf16>, tensor<1x100x2x16xbf16>) -> (tensor<1x100x4x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x4x3xbf16>)
  return
}

// -----

// d_o has q's element type.
func.func @attention_grad_d_o_dtype(%q: tensor<1x100x4x16xbf16>, %k: tensor<1x100x2x16xbf16>, %g: tensor<1x100x4x3xbf16>, %do: tensor<1x100x4x16xf16>) {
  // expected-error @+1 {{'d_o' must have the element type of 'q' ('bf16'), got 'f16'}}
  %dq, %dk, %dv, %dg = nsa.attention_grad %q keys(%k) values(%k) gates %g compress mean grad %do config <>
      : (tensor<1x100x4x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x4x3xbf16>, tensor<1x100x4x16xf16>) -> (tensor<1x100x4x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x4x3xbf16>)
  return
}

// -----

// One gradient per differentiable operand (q, k, v, gates): one missing.
func.func @attention_grad_count_missing(%q: tensor<1x100x4x16xbf16>, %k: tensor<1x100x2x16xbf16>, %g: tensor<1x100x4x3xbf16>) {
  // expected-error @+1 {{expected one gradient per differentiable operand (q, keys, values, gates, weights, pe: 4), got 3}}
  %dq, %dk, %dv = nsa.attention_grad %q keys(%k) values(%k) gates %g compress mean grad %q config <>
      : (tensor<1x100x4x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x4x3xbf16>, tensor<1x100x4x16xbf16>) -> (tensor<1x100x4x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>)
  return
}

// -----

// One gradient per differentiable operand, weights and pe included (2 + 3 + 3 + 2 + 2 = 12).
func.func @attention_grad_count_linear(%q: tensor<1x100x4x16xbf16>, %k: tensor<1x100x2x16xbf16>, %g: tensor<1x100x4x3xbf16>, %w: tensor<2x512x16xbf16>, %pe: tensor<2x32x16xbf16>) {
  // expected-error @+1 {{expected one gradient per differentiable operand (q, keys, values, gates, weights, pe: 12), got 10}}
  %dq, %dk0, %dk1, %dk2, %dv0, %dv1, %dv2, %dg, %dwk, %dwv = nsa.attention_grad %q keys(%k, %k, %k) values(%k, %k, %k) gates %g
      compress linear weights(%w, %w) pe(%pe, %pe) grad %q config <>
      : (tensor<1x100x4x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x4x3xbf16>, tensor<2x512x16xbf16>, tensor<2x512x16xbf16>, tensor<2x32x16xbf16>, tensor<2x32x16xbf16>, tensor<1x100x4x16xbf16>)
      -> (tensor<1x100x4x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x4x3xbf16>, tensor<2x512x16xbf16>, tensor<2x512x16xbf16>)
  return
}

// -----

// d_q has exactly q's type.
func.func @attention_grad_d_q(%q: tensor<1x100x4x16xbf16>, %k: tensor<1x100x2x16xbf16>, %g: tensor<1x100x4x3xbf16>) {
  // expected-error @+1 {{'d_q' must have the type of 'q' ('tensor<1x100x4x16xbf16>'), got 'tensor<1x100x4x16xf32>'}}
  %dq, %dk, %dv, %dg = nsa.attention_grad %q keys(%k) values(%k) gates %g compress mean grad %q config <>
      : (tensor<1x100x4x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x4x3xbf16>, tensor<1x100x4x16xbf16>) -> (tensor<1x100x4x16xf32>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x4x3xbf16>)
  return
}

// -----

// d_gates has exactly gates' type.
func.func @attention_grad_d_gates(%q: tensor<1x100x4x16xbf16>, %k: tensor<1x100x2x16xbf16>, %g: tensor<1x100x4x3xbf16>) {
  // expected-error @+1 {{'d_gates' must have the type of 'gates' ('tensor<1x100x4x3xbf16>'), got 'tensor<1x100x4x16xbf16>'}}
  %dq, %dk, %dv, %dg = nsa.attention_grad %q keys(%k) values(%k) gates %g compress mean grad %q config <>
      : (tensor<1x100x4x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x4x3xbf16>, tensor<1x100x4x16xbf16>) -> (tensor<1x100x4x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x4x16xbf16>)
  return
}

// -----

// d_keys#i has exactly keys#i's type.
func.func @attention_grad_d_keys(%q: tensor<1x100x4x16xbf16>, %k: tensor<1x100x2x16xbf16>, %g: tensor<1x100x4x3xbf16>) {
  // expected-error @+1 {{'d_keys#0' must have the type of 'keys#0' ('tensor<1x100x2x16xbf16>'), got 'tensor<1x100x2x16xf16>'}}
  %dq, %dk, %dv, %dg = nsa.attention_grad %q keys(%k) values(%k) gates %g compress mean grad %q config <>
      : (tensor<1x100x4x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x4x3xbf16>, tensor<1x100x4x16xbf16>) -> (tensor<1x100x4x16xbf16>, tensor<1x100x2x16xf16>, tensor<1x100x2x16xbf16>, tensor<1x100x4x3xbf16>)
  return
}

// -----

// d_values#i has exactly values#i's type (three per-branch values).
func.func @attention_grad_d_values(%q: tensor<1x100x4x16xbf16>, %k: tensor<1x100x2x16xbf16>, %g: tensor<1x100x4x3xbf16>) {
  // expected-error @+1 {{'d_values#2' must have the type of 'values#2' ('tensor<1x100x2x16xbf16>'), got 'tensor<1x?x2x16xbf16>'}}
  %dq, %dk0, %dk1, %dk2, %dv0, %dv1, %dv2, %dg = nsa.attention_grad %q keys(%k, %k, %k) values(%k, %k, %k) gates %g compress mean grad %q config <>
      : (tensor<1x100x4x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x4x3xbf16>, tensor<1x100x4x16xbf16>)
      -> (tensor<1x100x4x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x?x2x16xbf16>, tensor<1x100x4x3xbf16>)
  return
}

// -----

// d_weights#i has exactly weights#i's type.
func.func @attention_grad_d_weights(%q: tensor<1x100x4x16xbf16>, %k: tensor<1x100x2x16xbf16>, %g: tensor<1x100x4x3xbf16>, %w: tensor<2x512x16xbf16>) {
  // expected-error @+1 {{'d_weights#1' must have the type of 'weights#1' ('tensor<2x512x16xbf16>'), got 'tensor<2x512x16xf32>'}}
  %dq, %dk, %dv, %dg, %dwk, %dwv = nsa.attention_grad %q keys(%k) values(%k) gates %g compress linear weights(%w, %w) grad %q config <>
      : (tensor<1x100x4x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x4x3xbf16>, tensor<2x512x16xbf16>, tensor<2x512x16xbf16>, tensor<1x100x4x16xbf16>) -> (tensor<1x100x4x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x4x3xbf16>, tensor<2x512x16xbf16>, tensor<2x512x16xf32>)
  return
}

// -----

// d_pe#i has exactly pe#i's type.
func.func @attention_grad_d_pe(%q: tensor<1x100x4x16xbf16>, %k: tensor<1x100x2x16xbf16>, %g: tensor<1x100x4x3xbf16>, %w: tensor<2x512x16xbf16>, %pe: tensor<2x32x16xbf16>) {
  // expected-error @+1 {{'d_pe#0' must have the type of 'pe#0' ('tensor<2x32x16xbf16>'), got 'tensor<2x512x16xbf16>'}}
  %dq, %dk, %dv, %dg, %dwk, %dwv, %dpk, %dpv = nsa.attention_grad %q keys(%k) values(%k) gates %g compress linear weights(%w, %w) pe(%pe, %pe) grad %q config <>
      : (tensor<1x100x4x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x4x3xbf16>, tensor<2x512x16xbf16>, tensor<2x512x16xbf16>, tensor<2x32x16xbf16>, tensor<2x32x16xbf16>, tensor<1x100x4x16xbf16>) -> (tensor<1x100x4x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x4x3xbf16>, tensor<2x512x16xbf16>, tensor<2x512x16xbf16>, tensor<2x512x16xbf16>, tensor<2x32x16xbf16>)
  return
}

// -----

// saved holds all nine forward intermediates or none.
func.func @attention_saved_count(%q: tensor<1x100x4x16xbf16>, %k: tensor<1x100x2x16xbf16>, %g: tensor<1x100x4x3xbf16>) {
  // expected-error @+1 {{saved must hold no tensor or 9 (kc, vc, o_cmp, lse_cmp, idx, o_slc, lse_slc, o_win, lse_win), got 1}}
  %o, %kc = nsa.attention %q keys(%k) values(%k) gates %g compress mean config <>
      : (tensor<1x100x4x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x4x3xbf16>) -> (tensor<1x100x4x16xbf16>, tensor<1x5x2x16xbf16>)
  return
}

// -----

// The saved compressed keys have Nc(T) tokens.
func.func @attention_saved_kc(%q: tensor<1x100x4x16xbf16>, %k: tensor<1x100x2x16xbf16>, %g: tensor<1x100x4x3xbf16>) {
  // expected-error @+1 {{'kc' dimension 1 (Nc) is 6, expected Nc = 5 (from Nc(T) = (T - l)/d + 1, or 0 if T < l, with T = 100)}}
  %o:10 = nsa.attention %q keys(%k) values(%k) gates %g compress mean config <>
      : (tensor<1x100x4x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x4x3xbf16>)
      -> (tensor<1x100x4x16xbf16>, tensor<1x6x2x16xbf16>, tensor<1x5x2x16xbf16>, tensor<1x100x4x16xbf16>, tensor<1x100x4xf32>,
          tensor<1x100x2x16xi32>, tensor<1x100x4x16xbf16>, tensor<1x100x4xf32>, tensor<1x100x4x16xbf16>, tensor<1x100x4xf32>)
  return
}

// -----

// The saved idx is i32 [B, T, HKV, n] (here given per query head).
func.func @attention_grad_saved_idx(%q: tensor<1x100x4x16xbf16>, %k: tensor<1x100x2x16xbf16>, %g: tensor<1x100x4x3xbf16>,
    %kc: tensor<1x5x2x16xbf16>, %o: tensor<1x100x4x16xbf16>, %lse: tensor<1x100x4xf32>, %idx: tensor<1x100x4x16xi32>) {
  // expected-error @+1 {{'idx' dimension 2 (HKV) is 4, expected HKV = 2 (from 'keys#0')}}
  %dq, %dk, %dv, %dg = nsa.attention_grad %q keys(%k) values(%k) gates %g compress mean
      saved(%kc, %kc, %o, %lse, %idx, %o, %lse, %o, %lse) grad %o config <>
      : (tensor<1x100x4x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x4x3xbf16>,
         tensor<1x5x2x16xbf16>, tensor<1x5x2x16xbf16>, tensor<1x100x4x16xbf16>, tensor<1x100x4xf32>, tensor<1x100x4x16xi32>,
         tensor<1x100x4x16xbf16>, tensor<1x100x4xf32>, tensor<1x100x4x16xbf16>, tensor<1x100x4xf32>, tensor<1x100x4x16xbf16>)
      -> (tensor<1x100x4x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x4x3xbf16>)
  return
}

// -----

// Each saved lse is f32.
func.func @attention_grad_saved_lse(%q: tensor<1x100x4x16xbf16>, %k: tensor<1x100x2x16xbf16>, %g: tensor<1x100x4x3xbf16>,
    %kc: tensor<1x5x2x16xbf16>, %o: tensor<1x100x4x16xbf16>, %lse: tensor<1x100x4xf32>, %lseh: tensor<1x100x4xbf16>,
    %idx: tensor<1x100x2x16xi32>) {
  // expected-error @+1 {{'lse_win' must have 'f32' elements, got 'bf16'}}
  %dq, %dk, %dv, %dg = nsa.attention_grad %q keys(%k) values(%k) gates %g compress mean
      saved(%kc, %kc, %o, %lse, %idx, %o, %lse, %o, %lseh) grad %o config <>
      : (tensor<1x100x4x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x4x3xbf16>,
         tensor<1x5x2x16xbf16>, tensor<1x5x2x16xbf16>, tensor<1x100x4x16xbf16>, tensor<1x100x4xf32>, tensor<1x100x2x16xi32>,
         tensor<1x100x4x16xbf16>, tensor<1x100x4xf32>, tensor<1x100x4x16xbf16>, tensor<1x100x4xbf16>, tensor<1x100x4x16xbf16>)
      -> (tensor<1x100x4x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x2x16xbf16>, tensor<1x100x4x3xbf16>)
  return
}

// -----

// Config values must fit in int32 (kernels index with int32; keeps
// init + local from overflowing).
func.func @config_int32(%k: tensor<1x100x2x16xbf16>) {
  // expected-error @+1 {{nsa.config: init must fit in int32, got 9223372036854775807}}
  %c = nsa.compress mean %k config <init = 9223372036854775807, local = 1> : (tensor<1x100x2x16xbf16>) -> tensor<1x5x2x16xbf16>
  return
}

// -----

// D static only in the weight: l*D still follows from it.
func.func @compress_weight_ld_dynamic_input(%k: tensor<1x100x2x?xbf16>, %w: tensor<2x100x16xbf16>) {
  // expected-error @+1 {{'weight' dimension 1 (l*D) is 100, expected l*D = 512 (from config l times D = 16)}}
  %c = nsa.compress linear %k weight %w config <> : (tensor<1x100x2x?xbf16>, tensor<2x100x16xbf16>) -> tensor<1x5x2x16xbf16>
  return
}

// -----

// l * D must not overflow.
func.func @compress_weight_ld_overflow(%k: tensor<1x100x2x1152921504606846976xbf16>, %w: tensor<2x?x1152921504606846976xbf16>) {
  // expected-error @+1 {{l * D overflows (l = 32, D = 1152921504606846976)}}
  %c = nsa.compress linear %k weight %w config <> : (tensor<1x100x2x1152921504606846976xbf16>, tensor<2x?x1152921504606846976xbf16>) -> tensor<1x5x2x1152921504606846976xbf16>
  return
}
