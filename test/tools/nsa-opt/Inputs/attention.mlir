// Seed for fuzz.py: the composite forward op in each of its forms.

// Shared K/V, linear compression with weights and positional encodings.
func.func @linear_shared_pe(%q: tensor<1x1000x16x64xbf16>, %k: tensor<1x1000x4x64xbf16>, %v: tensor<1x1000x4x64xbf16>, %g: tensor<1x1000x16x3xbf16>, %wk: tensor<4x2048x64xbf16>, %wv: tensor<4x2048x64xbf16>, %pk: tensor<4x32x64xbf16>, %pv: tensor<4x32x64xbf16>) -> tensor<1x1000x16x64xbf16> {
  %o = nsa.attention %q keys(%k) values(%v) gates %g compress linear weights(%wk, %wv) pe(%pk, %pv) config <> : (tensor<1x1000x16x64xbf16>, tensor<1x1000x4x64xbf16>, tensor<1x1000x4x64xbf16>, tensor<1x1000x16x3xbf16>, tensor<4x2048x64xbf16>, tensor<4x2048x64xbf16>, tensor<4x32x64xbf16>, tensor<4x32x64xbf16>) -> tensor<1x1000x16x64xbf16>
  return %o : tensor<1x1000x16x64xbf16>
}

// -----

// Per-branch K/V, linear compression without pe, explicit config and scale.
func.func @linear_branches(%q: tensor<2x512x8x32xbf16>, %k0: tensor<2x512x2x32xbf16>, %k1: tensor<2x512x2x32xbf16>, %k2: tensor<2x512x2x32xbf16>, %v0: tensor<2x512x2x32xbf16>, %v1: tensor<2x512x2x32xbf16>, %v2: tensor<2x512x2x32xbf16>, %g: tensor<2x512x8x3xbf16>, %wk: tensor<2x512x32xbf16>, %wv: tensor<2x512x32xbf16>) -> tensor<2x512x8x32xbf16> {
  %o = nsa.attention %q keys(%k0, %k1, %k2) values(%v0, %v1, %v2) gates %g compress linear weights(%wk, %wv) config <l = 16, d = 8, l_sel = 32, n = 8, init = 1, local = 2, w = 128, scale = 0.125> : (tensor<2x512x8x32xbf16>, tensor<2x512x2x32xbf16>, tensor<2x512x2x32xbf16>, tensor<2x512x2x32xbf16>, tensor<2x512x2x32xbf16>, tensor<2x512x2x32xbf16>, tensor<2x512x2x32xbf16>, tensor<2x512x8x3xbf16>, tensor<2x512x32xbf16>, tensor<2x512x32xbf16>) -> tensor<2x512x8x32xbf16>
  return %o : tensor<2x512x8x32xbf16>
}

// -----

// Per-branch K/V, mean compression, dynamic batch and sequence length.
func.func @mean_branches_dynamic(%q: tensor<?x?x8x32xf16>, %k0: tensor<?x?x2x32xf16>, %k1: tensor<?x?x2x32xf16>, %k2: tensor<?x?x2x32xf16>, %v0: tensor<?x?x2x32xf16>, %v1: tensor<?x?x2x32xf16>, %v2: tensor<?x?x2x32xf16>, %g: tensor<?x?x8x3xf16>) -> tensor<?x?x8x32xf16> {
  %o = nsa.attention %q keys(%k0, %k1, %k2) values(%v0, %v1, %v2) gates %g compress mean config <l = 16, d = 8, l_sel = 32, n = 4, init = 1, local = 2, w = 128> : (tensor<?x?x8x32xf16>, tensor<?x?x2x32xf16>, tensor<?x?x2x32xf16>, tensor<?x?x2x32xf16>, tensor<?x?x2x32xf16>, tensor<?x?x2x32xf16>, tensor<?x?x2x32xf16>, tensor<?x?x8x3xf16>) -> tensor<?x?x8x32xf16>
  return %o : tensor<?x?x8x32xf16>
}

// -----

// Shared K/V, mean compression, static.
func.func @mean_shared(%q: tensor<1x64x4x16xbf16>, %k: tensor<1x64x4x16xbf16>, %v: tensor<1x64x4x16xbf16>, %g: tensor<1x64x4x3xbf16>) -> tensor<1x64x4x16xbf16> {
  %o = nsa.attention %q keys(%k) values(%v) gates %g compress mean config <l = 8, d = 4, l_sel = 16, n = 3, init = 1, local = 1, w = 32> : (tensor<1x64x4x16xbf16>, tensor<1x64x4x16xbf16>, tensor<1x64x4x16xbf16>, tensor<1x64x4x3xbf16>) -> tensor<1x64x4x16xbf16>
  return %o : tensor<1x64x4x16xbf16>
}
