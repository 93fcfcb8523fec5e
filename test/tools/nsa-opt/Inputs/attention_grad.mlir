// Seed for fuzz.py: the composite backward op (one gradient per
// differentiable operand, in operand order).

// Shared K/V, linear compression with weights and pe, static shapes.
func.func @grad_linear_shared_pe(%q: tensor<1x256x8x64xbf16>, %k: tensor<1x256x2x64xbf16>, %v: tensor<1x256x2x64xbf16>, %g: tensor<1x256x8x3xbf16>, %wk: tensor<2x2048x64xbf16>, %wv: tensor<2x2048x64xbf16>, %pk: tensor<2x32x64xbf16>, %pv: tensor<2x32x64xbf16>, %do: tensor<1x256x8x64xbf16>) -> (tensor<1x256x8x64xbf16>, tensor<1x256x2x64xbf16>, tensor<1x256x2x64xbf16>, tensor<1x256x8x3xbf16>, tensor<2x2048x64xbf16>, tensor<2x32x64xbf16>) {
  %dq, %dk, %dv, %dg, %dw:2, %dpe:2 = nsa.attention_grad %q keys(%k) values(%v) gates %g compress linear weights(%wk, %wv) pe(%pk, %pv) grad %do config <> : (tensor<1x256x8x64xbf16>, tensor<1x256x2x64xbf16>, tensor<1x256x2x64xbf16>, tensor<1x256x8x3xbf16>, tensor<2x2048x64xbf16>, tensor<2x2048x64xbf16>, tensor<2x32x64xbf16>, tensor<2x32x64xbf16>, tensor<1x256x8x64xbf16>) -> (tensor<1x256x8x64xbf16>, tensor<1x256x2x64xbf16>, tensor<1x256x2x64xbf16>, tensor<1x256x8x3xbf16>, tensor<2x2048x64xbf16>, tensor<2x2048x64xbf16>, tensor<2x32x64xbf16>, tensor<2x32x64xbf16>)
  return %dq, %dk, %dv, %dg, %dw#1, %dpe#0 : tensor<1x256x8x64xbf16>, tensor<1x256x2x64xbf16>, tensor<1x256x2x64xbf16>, tensor<1x256x8x3xbf16>, tensor<2x2048x64xbf16>, tensor<2x32x64xbf16>
}

// -----

// Per-branch K/V, mean compression, dynamic batch and sequence length.
func.func @grad_mean_branches(%q: tensor<?x?x4x32xf16>, %k0: tensor<?x?x1x32xf16>, %k1: tensor<?x?x1x32xf16>, %k2: tensor<?x?x1x32xf16>, %v0: tensor<?x?x1x32xf16>, %v1: tensor<?x?x1x32xf16>, %v2: tensor<?x?x1x32xf16>, %g: tensor<?x?x4x3xf16>, %do: tensor<?x?x4x32xf16>) -> (tensor<?x?x4x32xf16>, tensor<?x?x1x32xf16>, tensor<?x?x1x32xf16>, tensor<?x?x4x3xf16>) {
  %dq, %dk:3, %dv:3, %dg = nsa.attention_grad %q keys(%k0, %k1, %k2) values(%v0, %v1, %v2) gates %g compress mean grad %do config <l = 16, d = 8, l_sel = 32, n = 4, init = 1, local = 1, w = 64> : (tensor<?x?x4x32xf16>, tensor<?x?x1x32xf16>, tensor<?x?x1x32xf16>, tensor<?x?x1x32xf16>, tensor<?x?x1x32xf16>, tensor<?x?x1x32xf16>, tensor<?x?x1x32xf16>, tensor<?x?x4x3xf16>, tensor<?x?x4x32xf16>) -> (tensor<?x?x4x32xf16>, tensor<?x?x1x32xf16>, tensor<?x?x1x32xf16>, tensor<?x?x1x32xf16>, tensor<?x?x1x32xf16>, tensor<?x?x1x32xf16>, tensor<?x?x1x32xf16>, tensor<?x?x4x3xf16>)
  return %dq, %dk#0, %dv#2, %dg : tensor<?x?x4x32xf16>, tensor<?x?x1x32xf16>, tensor<?x?x1x32xf16>, tensor<?x?x4x3xf16>
}

// -----

// Per-branch K/V, linear compression without pe, static.
func.func @grad_linear_branches(%q: tensor<1x128x4x16xbf16>, %k0: tensor<1x128x2x16xbf16>, %k1: tensor<1x128x2x16xbf16>, %k2: tensor<1x128x2x16xbf16>, %v0: tensor<1x128x2x16xbf16>, %v1: tensor<1x128x2x16xbf16>, %v2: tensor<1x128x2x16xbf16>, %g: tensor<1x128x4x3xbf16>, %wk: tensor<2x128x16xbf16>, %wv: tensor<2x128x16xbf16>, %do: tensor<1x128x4x16xbf16>) -> (tensor<1x128x4x16xbf16>, tensor<1x128x2x16xbf16>, tensor<2x128x16xbf16>) {
  %dq, %dk:3, %dv:3, %dg, %dw:2 = nsa.attention_grad %q keys(%k0, %k1, %k2) values(%v0, %v1, %v2) gates %g compress linear weights(%wk, %wv) grad %do config <l = 8, d = 4, l_sel = 16, n = 4, init = 0, local = 2, w = 32> : (tensor<1x128x4x16xbf16>, tensor<1x128x2x16xbf16>, tensor<1x128x2x16xbf16>, tensor<1x128x2x16xbf16>, tensor<1x128x2x16xbf16>, tensor<1x128x2x16xbf16>, tensor<1x128x2x16xbf16>, tensor<1x128x4x3xbf16>, tensor<2x128x16xbf16>, tensor<2x128x16xbf16>, tensor<1x128x4x16xbf16>) -> (tensor<1x128x4x16xbf16>, tensor<1x128x2x16xbf16>, tensor<1x128x2x16xbf16>, tensor<1x128x2x16xbf16>, tensor<1x128x2x16xbf16>, tensor<1x128x2x16xbf16>, tensor<1x128x2x16xbf16>, tensor<1x128x4x3xbf16>, tensor<2x128x16xbf16>, tensor<2x128x16xbf16>)
  return %dq, %dk#0, %dw#0 : tensor<1x128x4x16xbf16>, tensor<1x128x2x16xbf16>, tensor<2x128x16xbf16>
}

// -----

// The same ops in generic form, so mutations reach the property parsing
// (mode, operandSegmentSizes, config) and the segment-size checks.
func.func @generic_form(%q: tensor<1x128x4x16xbf16>, %k: tensor<1x128x2x16xbf16>, %v: tensor<1x128x2x16xbf16>, %g: tensor<1x128x4x3xbf16>, %wk: tensor<2x128x16xbf16>, %wv: tensor<2x128x16xbf16>, %pk: tensor<2x8x16xbf16>, %pv: tensor<2x8x16xbf16>, %do: tensor<1x128x4x16xbf16>) -> (tensor<1x128x4x16xbf16>, tensor<1x128x4x16xbf16>, tensor<2x8x16xbf16>, tensor<1x128x2x16xbf16>) {
  %o = "nsa.attention"(%q, %k, %v, %g, %wk, %wv, %pk, %pv) <{config = #nsa.config<l = 8, d = 4, l_sel = 16, n = 4, init = 1, local = 2, w = 32>, mode = 0 : i32, operandSegmentSizes = array<i32: 1, 1, 1, 1, 2, 2>}> : (tensor<1x128x4x16xbf16>, tensor<1x128x2x16xbf16>, tensor<1x128x2x16xbf16>, tensor<1x128x4x3xbf16>, tensor<2x128x16xbf16>, tensor<2x128x16xbf16>, tensor<2x8x16xbf16>, tensor<2x8x16xbf16>) -> tensor<1x128x4x16xbf16>
  %r:8 = "nsa.attention_grad"(%q, %k, %v, %g, %wk, %wv, %pk, %pv, %do) <{config = #nsa.config<l = 8, d = 4, l_sel = 16, n = 4, init = 1, local = 2, w = 32>, mode = 0 : i32, operandSegmentSizes = array<i32: 1, 1, 1, 1, 2, 2, 0, 1>}> : (tensor<1x128x4x16xbf16>, tensor<1x128x2x16xbf16>, tensor<1x128x2x16xbf16>, tensor<1x128x4x3xbf16>, tensor<2x128x16xbf16>, tensor<2x128x16xbf16>, tensor<2x8x16xbf16>, tensor<2x8x16xbf16>, tensor<1x128x4x16xbf16>) -> (tensor<1x128x4x16xbf16>, tensor<1x128x2x16xbf16>, tensor<1x128x2x16xbf16>, tensor<1x128x4x3xbf16>, tensor<2x128x16xbf16>, tensor<2x128x16xbf16>, tensor<2x8x16xbf16>, tensor<2x8x16xbf16>)
  %kc = "nsa.compress"(%k) <{config = #nsa.config<l = 8, d = 4, l_sel = 16, n = 4, init = 1, local = 2, w = 32>, mode = 1 : i32, operandSegmentSizes = array<i32: 1, 0, 0>}> : (tensor<1x128x2x16xbf16>) -> tensor<1x31x2x16xbf16>
  %dk = "nsa.compress_grad"(%k, %kc) <{config = #nsa.config<l = 8, d = 4, l_sel = 16, n = 4, init = 1, local = 2, w = 32>, mode = 1 : i32, operandSegmentSizes = array<i32: 1, 0, 0, 1>}> : (tensor<1x128x2x16xbf16>, tensor<1x31x2x16xbf16>) -> tensor<1x128x2x16xbf16>
  return %o, %r#0, %r#7, %dk : tensor<1x128x4x16xbf16>, tensor<1x128x4x16xbf16>, tensor<2x8x16xbf16>, tensor<1x128x2x16xbf16>
}

// -----

// The forward returns its saved intermediates and the backward takes them.
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
