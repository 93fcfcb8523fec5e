// Seed for fuzz.py: the branch ops nsa-decompose produces and their grads.

func.func @forward(%q: tensor<1x256x8x64xbf16>, %k: tensor<1x256x2x64xbf16>, %v: tensor<1x256x2x64xbf16>, %g: tensor<1x256x8x3xbf16>, %wk: tensor<2x2048x64xbf16>, %pk: tensor<2x32x64xbf16>) -> tensor<1x256x8x64xbf16> {
  %kc = nsa.compress linear %k weight %wk pe %pk config <l = 32, d = 16, l_sel = 64, n = 16, init = 1, local = 2, w = 512> : (tensor<1x256x2x64xbf16>, tensor<2x2048x64xbf16>, tensor<2x32x64xbf16>) -> tensor<1x15x2x64xbf16>
  %vc = nsa.compress mean %v config <> : (tensor<1x256x2x64xbf16>) -> tensor<1x15x2x64xbf16>
  %oc, %lc = nsa.compressed_attention %q, %kc, %vc config <> : (tensor<1x256x8x64xbf16>, tensor<1x15x2x64xbf16>, tensor<1x15x2x64xbf16>) -> (tensor<1x256x8x64xbf16>, tensor<1x256x8xf32>)
  %idx = nsa.select_blocks %q, %kc, %lc config <> : (tensor<1x256x8x64xbf16>, tensor<1x15x2x64xbf16>, tensor<1x256x8xf32>) -> tensor<1x256x2x16xi32>
  %os, %ls = nsa.selected_attention %q, %k, %v, %idx config <> : (tensor<1x256x8x64xbf16>, tensor<1x256x2x64xbf16>, tensor<1x256x2x64xbf16>, tensor<1x256x2x16xi32>) -> (tensor<1x256x8x64xbf16>, tensor<1x256x8xf32>)
  %ow, %lw = nsa.window_attention %q, %k, %v config <l = 32, d = 16, l_sel = 64, n = 16, init = 1, local = 2, w = 512> : (tensor<1x256x8x64xbf16>, tensor<1x256x2x64xbf16>, tensor<1x256x2x64xbf16>) -> (tensor<1x256x8x64xbf16>, tensor<1x256x8xf32>)
  %o = nsa.combine %g, %oc, %os, %ow : (tensor<1x256x8x3xbf16>, tensor<1x256x8x64xbf16>, tensor<1x256x8x64xbf16>, tensor<1x256x8x64xbf16>) -> tensor<1x256x8x64xbf16>
  return %o : tensor<1x256x8x64xbf16>
}

// -----

func.func @forward_dynamic(%q: tensor<?x?x4x32xf16>, %k: tensor<?x?x1x32xf16>, %v: tensor<?x?x1x32xf16>, %g: tensor<?x?x4x3xf16>) -> tensor<?x?x4x32xf16> {
  %kc = nsa.compress mean %k config <l = 16, d = 8, l_sel = 32, n = 4, init = 1, local = 1, w = 64> : (tensor<?x?x1x32xf16>) -> tensor<?x?x1x32xf16>
  %oc, %lc = nsa.compressed_attention %q, %kc, %kc config <l = 16, d = 8, l_sel = 32, n = 4, init = 1, local = 1, w = 64> : (tensor<?x?x4x32xf16>, tensor<?x?x1x32xf16>, tensor<?x?x1x32xf16>) -> (tensor<?x?x4x32xf16>, tensor<?x?x4xf32>)
  %idx = nsa.select_blocks %q, %kc, %lc config <l = 16, d = 8, l_sel = 32, n = 4, init = 1, local = 1, w = 64> : (tensor<?x?x4x32xf16>, tensor<?x?x1x32xf16>, tensor<?x?x4xf32>) -> tensor<?x?x1x4xi32>
  %os, %ls = nsa.selected_attention %q, %k, %v, %idx config <l = 16, d = 8, l_sel = 32, n = 4, init = 1, local = 1, w = 64> : (tensor<?x?x4x32xf16>, tensor<?x?x1x32xf16>, tensor<?x?x1x32xf16>, tensor<?x?x1x4xi32>) -> (tensor<?x?x4x32xf16>, tensor<?x?x4xf32>)
  %ow, %lw = nsa.window_attention %q, %k, %v config <l = 16, d = 8, l_sel = 32, n = 4, init = 1, local = 1, w = 64> : (tensor<?x?x4x32xf16>, tensor<?x?x1x32xf16>, tensor<?x?x1x32xf16>) -> (tensor<?x?x4x32xf16>, tensor<?x?x4xf32>)
  %o = nsa.combine %g, %oc, %os, %ow : (tensor<?x?x4x3xf16>, tensor<?x?x4x32xf16>, tensor<?x?x4x32xf16>, tensor<?x?x4x32xf16>) -> tensor<?x?x4x32xf16>
  return %o : tensor<?x?x4x32xf16>
}

// -----

func.func @backward(%q: tensor<1x256x8x64xbf16>, %k: tensor<1x256x2x64xbf16>, %v: tensor<1x256x2x64xbf16>, %g: tensor<1x256x8x3xbf16>, %wk: tensor<2x2048x64xbf16>, %pk: tensor<2x32x64xbf16>, %kc: tensor<1x15x2x64xbf16>, %vc: tensor<1x15x2x64xbf16>, %idx: tensor<1x256x2x16xi32>, %oc: tensor<1x256x8x64xbf16>, %os: tensor<1x256x8x64xbf16>, %ow: tensor<1x256x8x64xbf16>, %lc: tensor<1x256x8xf32>, %ls: tensor<1x256x8xf32>, %lw: tensor<1x256x8xf32>, %do: tensor<1x256x8x64xbf16>) -> (tensor<1x256x8x3xbf16>, tensor<1x256x8x64xbf16>, tensor<1x256x2x64xbf16>, tensor<2x2048x64xbf16>, tensor<2x32x64xbf16>, tensor<1x256x2x64xbf16>, tensor<1x256x8x64xbf16>, tensor<1x256x2x64xbf16>, tensor<1x256x2x64xbf16>) {
  %dg, %dcmp, %dslc, %dwin = nsa.combine_grad %g, %oc, %os, %ow grad %do : (tensor<1x256x8x3xbf16>, tensor<1x256x8x64xbf16>, tensor<1x256x8x64xbf16>, tensor<1x256x8x64xbf16>, tensor<1x256x8x64xbf16>) -> (tensor<1x256x8x3xbf16>, tensor<1x256x8x64xbf16>, tensor<1x256x8x64xbf16>, tensor<1x256x8x64xbf16>)
  %dq, %dkc, %dvc = nsa.compressed_attention_grad %q, %kc, %vc, %oc, %lc grad %dcmp config <> : (tensor<1x256x8x64xbf16>, tensor<1x15x2x64xbf16>, tensor<1x15x2x64xbf16>, tensor<1x256x8x64xbf16>, tensor<1x256x8xf32>, tensor<1x256x8x64xbf16>) -> (tensor<1x256x8x64xbf16>, tensor<1x15x2x64xbf16>, tensor<1x15x2x64xbf16>)
  %dk, %dwk, %dpk = nsa.compress_grad linear %k weight %wk pe %pk grad %dkc config <> : (tensor<1x256x2x64xbf16>, tensor<2x2048x64xbf16>, tensor<2x32x64xbf16>, tensor<1x15x2x64xbf16>) -> (tensor<1x256x2x64xbf16>, tensor<2x2048x64xbf16>, tensor<2x32x64xbf16>)
  %dv = nsa.compress_grad mean %v grad %dvc config <> : (tensor<1x256x2x64xbf16>, tensor<1x15x2x64xbf16>) -> tensor<1x256x2x64xbf16>
  %dq2, %dk2, %dv2 = nsa.selected_attention_grad %q, %k, %v, %idx, %os, %ls grad %dslc config <> : (tensor<1x256x8x64xbf16>, tensor<1x256x2x64xbf16>, tensor<1x256x2x64xbf16>, tensor<1x256x2x16xi32>, tensor<1x256x8x64xbf16>, tensor<1x256x8xf32>, tensor<1x256x8x64xbf16>) -> (tensor<1x256x8x64xbf16>, tensor<1x256x2x64xbf16>, tensor<1x256x2x64xbf16>)
  %dq3, %dk3, %dv3 = nsa.window_attention_grad %q, %k, %v, %ow, %lw grad %dwin config <l = 32, d = 16, l_sel = 64, n = 16, init = 1, local = 2, w = 512> : (tensor<1x256x8x64xbf16>, tensor<1x256x2x64xbf16>, tensor<1x256x2x64xbf16>, tensor<1x256x8x64xbf16>, tensor<1x256x8xf32>, tensor<1x256x8x64xbf16>) -> (tensor<1x256x8x64xbf16>, tensor<1x256x2x64xbf16>, tensor<1x256x2x64xbf16>)
  return %dg, %dq, %dk, %dwk, %dpk, %dv, %dq2, %dk3, %dv2 : tensor<1x256x8x3xbf16>, tensor<1x256x8x64xbf16>, tensor<1x256x2x64xbf16>, tensor<2x2048x64xbf16>, tensor<2x32x64xbf16>, tensor<1x256x2x64xbf16>, tensor<1x256x8x64xbf16>, tensor<1x256x2x64xbf16>, tensor<1x256x2x64xbf16>
}

// -----

func.func @backward_dynamic(%q: tensor<?x?x4x32xf16>, %k: tensor<?x?x1x32xf16>, %v: tensor<?x?x1x32xf16>, %w: tensor<1x512x32xf16>, %idx: tensor<?x?x1x4xi32>, %o: tensor<?x?x4x32xf16>, %lse: tensor<?x?x4xf32>, %do: tensor<?x?x4x32xf16>, %dkc: tensor<?x?x1x32xf16>) -> (tensor<?x?x4x32xf16>, tensor<?x?x1x32xf16>, tensor<1x512x32xf16>) {
  %dq, %dk, %dv = nsa.selected_attention_grad %q, %k, %v, %idx, %o, %lse grad %do config <l = 16, d = 8, l_sel = 32, n = 4, init = 1, local = 1, w = 64> : (tensor<?x?x4x32xf16>, tensor<?x?x1x32xf16>, tensor<?x?x1x32xf16>, tensor<?x?x1x4xi32>, tensor<?x?x4x32xf16>, tensor<?x?x4xf32>, tensor<?x?x4x32xf16>) -> (tensor<?x?x4x32xf16>, tensor<?x?x1x32xf16>, tensor<?x?x1x32xf16>)
  %dk2, %dw = nsa.compress_grad linear %k weight %w grad %dkc config <l = 16, d = 8, l_sel = 32, n = 4, init = 1, local = 1, w = 64> : (tensor<?x?x1x32xf16>, tensor<1x512x32xf16>, tensor<?x?x1x32xf16>) -> (tensor<?x?x1x32xf16>, tensor<1x512x32xf16>)
  return %dq, %dk2, %dw : tensor<?x?x4x32xf16>, tensor<?x?x1x32xf16>, tensor<1x512x32xf16>
}
