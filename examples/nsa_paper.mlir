// One NSA layer core with the paper's configuration (Yuan et al., 2025,
// section 4.1; SPEC.md `paper-d192`): l = 32, d = 16, l' = 64, n = 16 with one
// initial and two local blocks forced, w = 512; GQA with HQ = 64 query heads
// over HKV = 4 KV heads (G = 16), Dk = 192, Dv = 128, bf16, T = 65536 tokens.
// Each branch has its own keys and values (paper section 3.3.3), and the
// compressor is linear with an intra-block position encoding.
//
// scripts/run.sh prints this module after nsa-decompose.

func.func @nsa_layer(
    %q: tensor<1x65536x64x192xbf16>,
    %k_cmp: tensor<1x65536x4x192xbf16>, %k_slc: tensor<1x65536x4x192xbf16>, %k_win: tensor<1x65536x4x192xbf16>,
    %v_cmp: tensor<1x65536x4x128xbf16>, %v_slc: tensor<1x65536x4x128xbf16>, %v_win: tensor<1x65536x4x128xbf16>,
    %gates: tensor<1x65536x64x3xbf16>,
    %w_k: tensor<4x6144x192xbf16>, %w_v: tensor<4x4096x128xbf16>,
    %pe_k: tensor<4x32x192xbf16>, %pe_v: tensor<4x32x128xbf16>) -> tensor<1x65536x64x128xbf16> {
  %o = nsa.attention %q keys(%k_cmp, %k_slc, %k_win) values(%v_cmp, %v_slc, %v_win) gates %gates
      compress linear weights(%w_k, %w_v) pe(%pe_k, %pe_v)
      config <l = 32, d = 16, l_sel = 64, n = 16, init = 1, local = 2, w = 512>
      : (tensor<1x65536x64x192xbf16>,
         tensor<1x65536x4x192xbf16>, tensor<1x65536x4x192xbf16>, tensor<1x65536x4x192xbf16>,
         tensor<1x65536x4x128xbf16>, tensor<1x65536x4x128xbf16>, tensor<1x65536x4x128xbf16>,
         tensor<1x65536x64x3xbf16>,
         tensor<4x6144x192xbf16>, tensor<4x4096x128xbf16>,
         tensor<4x32x192xbf16>, tensor<4x32x128xbf16>) -> tensor<1x65536x64x128xbf16>
  return %o : tensor<1x65536x64x128xbf16>
}
