//===- ValidationTests.cpp - Every check a launch makes before the GPU ----===//

#include "Check.h"
#include "Fixtures.h"

#include <cmath>
#include <string>
#include <vector>

namespace nsa::test {

namespace {

const char *Window = "nsa_window_attention_fwd";

nsa_status plan(nsa_manifest *manifest, const char *kernel,
                const std::vector<nsa_arg> &args, nsa_launch_plan &result,
                const nsa_config &config = paperConfig()) {
  return nsa_plan_launch(manifest, kernel, &config, args.data(),
                         static_cast<int32_t>(args.size()), &result);
}

void expectPlanError(nsa_manifest *manifest, const char *kernel,
                     const std::vector<nsa_arg> &args, nsa_status status,
                     const std::string &needle, const std::string &name,
                     const nsa_config &config = paperConfig()) {
  nsa_launch_plan result;
  expectStatus(plan(manifest, kernel, args, result, config), status, needle,
               "validation: " + name);
}

void expectGrid(nsa_manifest *manifest, const char *kernel,
                const std::vector<nsa_arg> &args, int64_t x, int64_t y,
                int64_t z, const std::string &name) {
  nsa_launch_plan result = {};
  nsa_status status = plan(manifest, kernel, args, result);
  std::string got = status == NSA_SUCCESS
                        ? "grid (" + std::to_string(result.grid[0]) + ", " +
                              std::to_string(result.grid[1]) + ", " +
                              std::to_string(result.grid[2]) + ")"
                        : nsa_last_error_message();
  check(status == NSA_SUCCESS && result.grid[0] == x && result.grid[1] == y &&
            result.grid[2] == z,
        "grid: " + name, got);
}

void runGridTests(nsa_manifest *m) {
  expectGrid(m, Window, windowArgs(1, 65536, 4), 16384, 4, 1,
             "window, paper-d128 at T = 65536");
  expectGrid(m, Window, windowArgs(2, 1001, 4), 251, 4, 2,
             "window, ragged T = 1001");
  expectGrid(m, Window, windowArgs(1, 0, 4), 0, 4, 1,
             "window, T = 0 (nothing to launch)");

  nsa_launch_plan result = {};
  nsa_status status = plan(m, Window, windowArgs(1, 1000, 4), result);
  check(status == NSA_SUCCESS && result.block[0] == 256 &&
            result.block[1] == 1 && result.block[2] == 1 &&
            result.shared_bytes == 65536,
        "plan: window block (256, 1, 1) and 65536 bytes of shared memory");

  // Nc derived from T: 0 below l, then one per d tokens.
  for (auto [T, Nc] : std::vector<std::pair<int64_t, int64_t>>{
           {31, 0}, {32, 1}, {1000, 61}, {65536, 4095}}) {
    std::vector<nsa_arg> args = {tensor(NSA_DTYPE_BF16, {1, T, 4, 128}),
                                 tensor(NSA_DTYPE_BF16, {4, 32 * 128, 128}),
                                 tensor(NSA_DTYPE_BF16, {4, 32, 128}),
                                 tensor(NSA_DTYPE_BF16, {1, Nc, 4, 128}),
                                 int32(T)};
    expectGrid(m, "nsa_compress_linear", args, (Nc + 15) / 16, 4, 1,
               "compress at T = " + std::to_string(T) +
                   " (Nc = " + std::to_string(Nc) + ")");
  }

  // combine leaves Dv and HQ free: any head count and head dim bind.
  std::vector<nsa_arg> combine = {tensor(NSA_DTYPE_BF16, {2, 100, 8, 3}),
                                  tensor(NSA_DTYPE_BF16, {2, 100, 8, 64}),
                                  tensor(NSA_DTYPE_BF16, {2, 100, 8, 64}),
                                  tensor(NSA_DTYPE_BF16, {2, 100, 8, 64}),
                                  tensor(NSA_DTYPE_BF16, {2, 100, 8, 64}),
                                  automatic()};
  nsa_config config = paperConfig();
  status =
      nsa_plan_launch(m, "nsa_combine", &config, combine.data(), 6, &result);
  check(status == NSA_SUCCESS && result.grid[0] == 13,
        "grid: combine binds HQ = 8, Dv = 64: ceil(2*100*8/128) = 13",
        nsa_last_error_message());
}

void runConfigTests(nsa_manifest *m) {
  auto args = windowArgs(1, 1000, 4);
  nsa_config config = paperConfig();
  config.w = 256;
  expectPlanError(m, Window, args, NSA_ERROR_CONFIG_MISMATCH,
                  "kernel 'nsa_window_attention_fwd' was compiled for w = 512, "
                  "the call asks for w = 256",
                  "config w", config);
  config = paperConfig();
  config.G = 8;
  expectPlanError(m, Window, args, NSA_ERROR_CONFIG_MISMATCH,
                  "compiled for G = 16, the call asks for G = 8", "config G",
                  config);
  config = paperConfig();
  config.scale = 0.125;
  expectPlanError(m, Window, args, NSA_ERROR_CONFIG_MISMATCH,
                  "compiled for scale = 0.0883883476, the call asks for "
                  "scale = 0.125",
                  "config scale", config);
  config = paperConfig();
  config.scale = std::nan("");
  expectPlanError(m, Window, args, NSA_ERROR_CONFIG_MISMATCH,
                  "the call asks for scale = nan", "config scale NaN", config);
  config = paperConfig();
  config.scale = static_cast<float>(config.scale);
  nsa_launch_plan result;
  expectStatus(plan(m, Window, args, result, config), NSA_SUCCESS, "",
               "config: a scale rounded to f32 matches");
  config = paperConfig();
  config.dtype = NSA_DTYPE_F16;
  expectPlanError(m, Window, args, NSA_ERROR_CONFIG_MISMATCH,
                  "compiled for dtype = bf16, the call asks for dtype = f16",
                  "config dtype", config);
  config.dtype = 42;
  expectPlanError(m, Window, args, NSA_ERROR_CONFIG_MISMATCH,
                  "the call asks for dtype = <unknown code 42>",
                  "config unknown dtype code", config);
  config = paperConfig();
  config.l = 64;
  expectStatus(plan(m, Window, args, result, config), NSA_SUCCESS, "",
               "config: window attention does not depend on l");
  expectPlanError(m, "nsa_compressed_attention_fwd", args,
                  NSA_ERROR_CONFIG_MISMATCH,
                  "kernel 'nsa_compressed_attention_fwd' was compiled for l = "
                  "32, the call asks for l = 64",
                  "config l", config);
}

void runArgumentTests(nsa_manifest *m) {
  nsa_launch_plan result;
  nsa_config config = paperConfig();
  auto good = windowArgs(1, 1000, 4);

  expectPlanError(m, "nsa_window_attention_bwd", good, NSA_ERROR_UNKNOWN_KERNEL,
                  "no kernel 'nsa_window_attention_bwd' in manifest",
                  "unknown kernel");

  auto args = good;
  args.pop_back();
  expectPlanError(m, Window, args, NSA_ERROR_ARG_COUNT,
                  "kernel 'nsa_window_attention_fwd' takes 6 arguments (q, k, "
                  "v, o, lse, T), got 5",
                  "too few arguments");

  args = good;
  args[1] = int32(4);
  expectPlanError(m, Window, args, NSA_ERROR_ARG_KIND,
                  "parameter 'k' (#1) is a tensor, got an i32",
                  "a scalar for a tensor");
  args = good;
  args[5] = float32(1000);
  expectPlanError(m, Window, args, NSA_ERROR_ARG_KIND,
                  "parameter 'T' (#5) is an i32, got an f32",
                  "an f32 for an i32");
  args = good;
  args[0] = automatic();
  expectPlanError(m, Window, args, NSA_ERROR_ARG_KIND,
                  "parameter 'q' (#0) is a tensor, got NSA_ARG_AUTO",
                  "NSA_ARG_AUTO for a tensor");
  args = good;
  args[2].kind = 9;
  expectPlanError(m, Window, args, NSA_ERROR_ARG_KIND,
                  "parameter 'v' (#2): unknown argument kind 9",
                  "an unknown argument kind");

  args = good;
  args[3].tensor.data = 0;
  expectPlanError(m, Window, args, NSA_ERROR_NULL_DATA,
                  "parameter 'o' (#3): null data pointer for a tensor of shape "
                  "[1, 1000, 64, 128]",
                  "a null output pointer");
  auto empty = windowArgs(1, 0, 4);
  for (int i = 0; i < 5; ++i)
    empty[i].tensor.data = 0;
  expectStatus(plan(m, Window, empty, result), NSA_SUCCESS, "",
               "validation: empty tensors may have null data");

  args = good;
  args[0].tensor.dtype = NSA_DTYPE_F16;
  expectPlanError(m, Window, args, NSA_ERROR_DTYPE_MISMATCH,
                  "parameter 'q' (#0): expected dtype bf16, got f16",
                  "an f16 query");
  args = good;
  args[4].tensor.dtype = NSA_DTYPE_BF16;
  expectPlanError(m, Window, args, NSA_ERROR_DTYPE_MISMATCH,
                  "parameter 'lse' (#4): expected dtype f32, got bf16",
                  "a bf16 lse");
  args = good;
  args[1].tensor.dtype = 17;
  expectPlanError(m, Window, args, NSA_ERROR_DTYPE_MISMATCH,
                  "parameter 'k' (#1): unknown dtype code 17, expected bf16",
                  "an unknown dtype code");

  args = good;
  args[4] = tensor(NSA_DTYPE_F32, {1, 1000, 64, 1});
  expectPlanError(m, Window, args, NSA_ERROR_RANK_MISMATCH,
                  "parameter 'lse' (#4): expected rank 3 [B, T, HQ], got rank "
                  "4 [1, 1000, 64, 1]",
                  "lse of rank 4");
  args = good;
  args[0].tensor.rank = 9;
  expectPlanError(m, Window, args, NSA_ERROR_RANK_MISMATCH,
                  "parameter 'q' (#0): rank 9 is outside [0, 8]", "rank 9");
  args[0].tensor.rank = -1;
  expectPlanError(m, Window, args, NSA_ERROR_RANK_MISMATCH,
                  "rank -1 is outside [0, 8]", "rank -1");

  args = good;
  args[2] = tensor(NSA_DTYPE_BF16, {1, 1000, 8, 128});
  expectPlanError(m, Window, args, NSA_ERROR_SHAPE_MISMATCH,
                  "parameter 'v' (#2) dimension 2 (HKV): expected 4, got 8 "
                  "(HKV = 4 from parameter 'k' dimension 2)",
                  "k and v disagree on HKV");
  args = good;
  args[0] = tensor(NSA_DTYPE_BF16, {1, 1000, 32, 128});
  expectPlanError(m, Window, args, NSA_ERROR_SHAPE_MISMATCH,
                  "parameter 'q' (#0) dimension 2 (HQ): expected 64, got 32 "
                  "(HQ = 64 from \"G*HKV\")",
                  "HQ is not G*HKV");
  args = good;
  args[1] = tensor(NSA_DTYPE_BF16, {1, 1000, 4, 64});
  expectPlanError(m, Window, args, NSA_ERROR_SHAPE_MISMATCH,
                  "parameter 'k' (#1) dimension 3 (Dk): expected 128, got 64 "
                  "(Dk = 128 from the kernel's configuration)",
                  "a head dim the kernel was not compiled for");
  args = good;
  args[3] = tensor(NSA_DTYPE_BF16, {1, 999, 64, 128});
  expectPlanError(m, Window, args, NSA_ERROR_SHAPE_MISMATCH,
                  "parameter 'o' (#3) dimension 1 (T): expected 1000, got 999 "
                  "(T = 1000 from parameter 'q' dimension 1); shape [1, 999, "
                  "64, 128], expected [B, T, HQ, Dv]",
                  "an output one token short");
  args = good;
  args[2].tensor.shape[0] = -1;
  expectPlanError(m, Window, args, NSA_ERROR_SHAPE_MISMATCH,
                  "parameter 'v' (#2) dimension 0 (B): size -1 is negative",
                  "a negative dimension");
  args = good;
  args[0] = tensor(NSA_DTYPE_BF16, {1LL << 40, 1LL << 40, 64, 128});
  expectPlanError(m, Window, args, NSA_ERROR_SHAPE_MISMATCH,
                  "has more bytes than fit in 64 bits", "an overflowing shape");

  std::vector<nsa_arg> compress = {tensor(NSA_DTYPE_BF16, {1, 1000, 4, 128}),
                                   tensor(NSA_DTYPE_BF16, {4, 32 * 128, 128}),
                                   tensor(NSA_DTYPE_BF16, {4, 32, 128}),
                                   tensor(NSA_DTYPE_BF16, {1, 62, 4, 128}),
                                   int32(1000)};
  expectPlanError(m, "nsa_compress_linear", compress, NSA_ERROR_SHAPE_MISMATCH,
                  "parameter 'out' (#3) dimension 1 (Nc): expected 61, got 62 "
                  "(Nc = 61 from \"max(0, (T - l)/d + 1)\")",
                  "a compressed output of the wrong length");
  compress[3] = tensor(NSA_DTYPE_BF16, {1, 61, 4, 128});
  compress[1] = tensor(NSA_DTYPE_BF16, {4, 16 * 128, 128});
  expectPlanError(m, "nsa_compress_linear", compress, NSA_ERROR_SHAPE_MISMATCH,
                  "parameter 'weight' (#1) dimension 1 (l*Dk): expected 4096, "
                  "got 2048 (l = 32 from the kernel's configuration; Dk = 128 "
                  "from the kernel's configuration)",
                  "a compression weight for l = 16");
  std::vector<nsa_arg> combine = {tensor(NSA_DTYPE_BF16, {2, 100, 8, 2}),
                                  tensor(NSA_DTYPE_BF16, {2, 100, 8, 64}),
                                  tensor(NSA_DTYPE_BF16, {2, 100, 8, 64}),
                                  tensor(NSA_DTYPE_BF16, {2, 100, 8, 64}),
                                  tensor(NSA_DTYPE_BF16, {2, 100, 8, 64}),
                                  automatic()};
  expectPlanError(m, "nsa_combine", combine, NSA_ERROR_SHAPE_MISMATCH,
                  "parameter 'g' (#0) dimension 3 (3): expected 3, got 2",
                  "two gates instead of three");

  args = good;
  std::swap(args[1].tensor.strides[1], args[1].tensor.strides[2]);
  std::swap(args[1].tensor.shape[1], args[1].tensor.shape[2]);
  args[1].tensor.shape[1] = 1000;
  args[1].tensor.shape[2] = 4;
  args[1].tensor.strides[1] = 128;
  args[1].tensor.strides[2] = 1000 * 128;
  expectPlanError(m, Window, args, NSA_ERROR_NOT_CONTIGUOUS,
                  "parameter 'k' (#1) is not row-major contiguous: dimension 2 "
                  "has stride 128000, expected 128 (shape [1, 1000, 4, 128])",
                  "a [B, H, T, D] tensor viewed as [B, T, H, D]");
  args = good;
  args[0].tensor.strides[3] = 2;
  expectPlanError(m, Window, args, NSA_ERROR_NOT_CONTIGUOUS,
                  "dimension 3 has stride 2, expected 1",
                  "a strided head dimension");
  args = good;
  args[0].tensor.strides[0] = 12345;
  expectStatus(plan(m, Window, args, result), NSA_SUCCESS, "",
               "validation: the stride of a size-1 dimension is ignored");

  args = good;
  args[0].tensor.data += 2;
  expectPlanError(m, Window, args, NSA_ERROR_MISALIGNED,
                  "parameter 'q' (#0): data pointer 0x",
                  "a query 2 bytes off its 16-byte alignment");
  args = good;
  args[4].tensor.data += 2;
  expectPlanError(m, Window, args, NSA_ERROR_MISALIGNED,
                  "is not 4-byte aligned", "an lse off its f32 alignment");

  args = good;
  args[5] = int32(999);
  expectPlanError(m, Window, args, NSA_ERROR_SCALAR_MISMATCH,
                  "parameter 'T' (#5): expected T = 1000, got 999 (T = 1000 "
                  "from parameter 'q' dimension 1)",
                  "a T scalar that disagrees with the shapes");
  args[5] = automatic();
  expectStatus(plan(m, Window, args, result), NSA_SUCCESS, "",
               "validation: NSA_ARG_AUTO takes T from the value rule");
  args[5] = int32(1LL << 31);
  expectPlanError(m, Window, args, NSA_ERROR_SCALAR_MISMATCH,
                  "expected T = 1000, got 2147483648", "a T scalar of 2^31");

  std::vector<nsa_arg> cmp = {tensor(NSA_DTYPE_BF16, {1, 1000, 64, 128}),
                              tensor(NSA_DTYPE_BF16, {1, 61, 4, 128}),
                              tensor(NSA_DTYPE_BF16, {1, 61, 4, 128}),
                              tensor(NSA_DTYPE_BF16, {1, 1000, 64, 128}),
                              tensor(NSA_DTYPE_F32, {1, 1000, 64}),
                              automatic(),
                              automatic(),
                              automatic()};
  const char *compressed = "nsa_compressed_attention_fwd";
  expectStatus(plan(m, compressed, cmp, result), NSA_SUCCESS, "",
               "validation: compressed attention with every scalar automatic");
  cmp[7] = float32(0.125);
  expectPlanError(m, compressed, cmp, NSA_ERROR_SCALAR_MISMATCH,
                  "parameter 'scale' (#7): expected 0.0883883476, got 0.125",
                  "a scale scalar that disagrees with the value rule");
  cmp[7] = float32(std::nan(""));
  expectPlanError(m, compressed, cmp, NSA_ERROR_SCALAR_MISMATCH,
                  "parameter 'scale' (#7): nan is not finite", "a NaN scalar");
  cmp[7] = float32(1.0 / std::sqrt(128.0));
  cmp[6] = int32(62);
  expectPlanError(m, compressed, cmp, NSA_ERROR_SCALAR_MISMATCH,
                  "parameter 'Nc' (#6): expected Nc = 61, got 62",
                  "an Nc scalar off by one");

  combine[0] = tensor(NSA_DTYPE_BF16, {2, 100, 8, 3});
  combine[5] = int32(1600);
  expectPlanError(m, "nsa_combine", combine, NSA_ERROR_ARG_KIND,
                  "parameter 'rows' (#5) is an i64, got an i32",
                  "an i32 for an i64");

  expectStatus(
      nsa_plan_launch(nullptr, Window, &config, good.data(), 6, &result),
      NSA_ERROR_NULL_ARGUMENT, "nsa_plan_launch: 'manifest' is null",
      "validation: null manifest");
  expectStatus(nsa_plan_launch(m, nullptr, &config, good.data(), 6, &result),
               NSA_ERROR_NULL_ARGUMENT, "'kernel' is null",
               "validation: null kernel name");
  expectStatus(nsa_plan_launch(m, Window, nullptr, good.data(), 6, &result),
               NSA_ERROR_NULL_ARGUMENT, "'config' is null",
               "validation: null config");
  expectStatus(nsa_plan_launch(m, Window, &config, nullptr, 6, &result),
               NSA_ERROR_NULL_ARGUMENT, "'args' is null",
               "validation: null args");
  expectStatus(nsa_plan_launch(m, Window, &config, good.data(), 6, nullptr),
               NSA_ERROR_NULL_ARGUMENT, "'plan' is null",
               "validation: null plan");
  expectStatus(nsa_plan_launch(m, Window, &config, nullptr, 0, &result),
               NSA_ERROR_ARG_COUNT, "takes 6 arguments", "validation: no args");
}

// Failures that only the values of the symbols can cause, on a kernel made
// for them.
void runEvaluationTests() {
  const char *json = R"json({
  "format": "nsa-kernel-manifest", "version": 1, "target": "sm_90a",
  "kernels": [{
    "name": "probe", "op": "probe", "module": "probe.ptx",
    "config": {"l": null, "d": null, "l_sel": null, "n": null, "init": null,
               "local": null, "w": null, "scale": null, "G": null, "Dk": null,
               "Dv": null, "dtype": null},
    "derived": {"per_batch": "T/(B - 1)"},
    "params": [
      {"name": "x", "kind": "tensor", "dtype": "f32", "shape": ["B", "T", "H"]},
      {"name": "n", "kind": "i32", "value": "B*T*H"},
      {"name": "flag", "kind": "i32"}
    ],
    "grid": ["T - 10", "H", "per_batch"],
    "block": [32, 1, 1],
    "shared_bytes": 0
  }]})json";
  nsa_manifest *m = parseOrFail(json, "probe manifest");
  if (!m)
    return;
  nsa_config config = {};
  auto args = [](int64_t B, int64_t T, int64_t H) {
    return std::vector<nsa_arg>{tensor(NSA_DTYPE_F32, {B, T, H}), automatic(),
                                int32(-1)};
  };
  nsa_launch_plan result;
  nsa_status status =
      nsa_plan_launch(m, "probe", &config, args(3, 20, 2).data(), 3, &result);
  check(status == NSA_SUCCESS && result.grid[0] == 10 && result.grid[1] == 2 &&
            result.grid[2] == 10,
        "grid: a kernel with every configuration field null",
        nsa_last_error_message());
  expectPlanError(m, "probe", args(1, 20, 2), NSA_ERROR_EXPRESSION,
                  "kernel 'probe': derived symbol 'per_batch': division by "
                  "zero in 'T/(B - 1)' (T = 20 from parameter 'x' dimension "
                  "1; B = 1 from parameter 'x' dimension 0)",
                  "a derived symbol dividing by zero", config);
  expectPlanError(m, "probe", args(2, 5, 2), NSA_ERROR_GRID,
                  "kernel 'probe' grid x = T - 10 is -5, outside [0, "
                  "2147483647]",
                  "a negative grid", config);
  expectPlanError(m, "probe", args(2, 20, 70000), NSA_ERROR_GRID,
                  "grid y = H is 70000, outside [0, 65535]",
                  "a grid y above 65535", config);
  expectPlanError(m, "probe", args(2, 1LL << 20, 4096),
                  NSA_ERROR_SCALAR_MISMATCH,
                  "parameter 'n' (#1): 8589934592 does not fit in i32",
                  "an automatic i32 that does not fit", config);
  auto flagged = args(3, 20, 2);
  flagged[2] = int32(1LL << 31);
  expectPlanError(m, "probe", flagged, NSA_ERROR_SCALAR_MISMATCH,
                  "parameter 'flag' (#2): 2147483648 does not fit in i32",
                  "a caller's i32 that does not fit", config);
  flagged[2] = automatic();
  expectPlanError(m, "probe", flagged, NSA_ERROR_ARG_KIND,
                  "parameter 'flag' (#2) has no value rule in the manifest; "
                  "pass an i32",
                  "NSA_ARG_AUTO for a scalar without a value rule", config);
  nsa_manifest_destroy(m);
}

} // namespace

void runValidationTests() {
  nsa_manifest *manifest = nullptr;
  if (nsa_manifest_load(exampleManifestPath().c_str(), &manifest) !=
      NSA_SUCCESS) {
    check(false, "validation: load the example manifest",
          nsa_last_error_message());
    return;
  }
  runGridTests(manifest);
  runConfigTests(manifest);
  runArgumentTests(manifest);
  runEvaluationTests();
  nsa_manifest_destroy(manifest);
}

} // namespace nsa::test
