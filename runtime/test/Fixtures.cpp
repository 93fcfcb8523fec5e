//===- Fixtures.cpp - Arguments and configurations for the tests ----------===//

#include "Fixtures.h"

#include "Check.h"

#include <cmath>
#include <fstream>
#include <sstream>

namespace nsa::test {

nsa_config paperConfig() {
  nsa_config config = {};
  config.l = 32;
  config.d = 16;
  config.l_sel = 64;
  config.n = 16;
  config.init = 1;
  config.local = 2;
  config.w = 512;
  config.scale = 1.0 / std::sqrt(128.0);
  config.G = 16;
  config.Dk = 128;
  config.Dv = 128;
  config.dtype = NSA_DTYPE_BF16;
  return config;
}

nsa_arg tensor(nsa_dtype dtype, const std::vector<int64_t> &shape) {
  // Distinct addresses make a swapped argument visible in the fake driver.
  static uint64_t nextAddress = 0x7f0000000000;
  nsa_arg arg = {};
  arg.kind = NSA_ARG_TENSOR;
  arg.tensor.data = nextAddress;
  nextAddress += 0x100000;
  arg.tensor.dtype = dtype;
  arg.tensor.rank = static_cast<int32_t>(shape.size());
  // Unsigned, so that the tests' deliberately overflowing shapes wrap
  // instead of being undefined.
  uint64_t stride = 1;
  for (int i = arg.tensor.rank - 1; i >= 0; --i) {
    arg.tensor.shape[i] = shape[i];
    arg.tensor.strides[i] = static_cast<int64_t>(stride);
    stride *= static_cast<uint64_t>(shape[i]);
  }
  return arg;
}

nsa_arg int32(int64_t value) {
  nsa_arg arg = {};
  arg.kind = NSA_ARG_I32;
  arg.int_value = value;
  return arg;
}

nsa_arg int64(int64_t value) {
  nsa_arg arg = {};
  arg.kind = NSA_ARG_I64;
  arg.int_value = value;
  return arg;
}

nsa_arg float32(double value) {
  nsa_arg arg = {};
  arg.kind = NSA_ARG_F32;
  arg.float_value = value;
  return arg;
}

nsa_arg automatic() {
  nsa_arg arg = {};
  arg.kind = NSA_ARG_AUTO;
  return arg;
}

std::vector<nsa_arg> windowArgs(int64_t B, int64_t T, int64_t HKV) {
  int64_t HQ = 16 * HKV;
  return {tensor(NSA_DTYPE_BF16, {B, T, HQ, 128}),
          tensor(NSA_DTYPE_BF16, {B, T, HKV, 128}),
          tensor(NSA_DTYPE_BF16, {B, T, HKV, 128}),
          tensor(NSA_DTYPE_BF16, {B, T, HQ, 128}),
          tensor(NSA_DTYPE_F32, {B, T, HQ}),
          int32(T)};
}

std::string exampleManifestPath() {
  return std::string(NSA_RUNTIME_TEST_INPUTS) + "/paper_d128.json";
}

std::string exampleManifest() {
  std::ifstream file(exampleManifestPath());
  std::stringstream contents;
  contents << file.rdbuf();
  return contents.str();
}

nsa_manifest *parseOrFail(const std::string &json, const std::string &what,
                          const char *baseDir) {
  nsa_manifest *manifest = nullptr;
  nsa_status status = nsa_manifest_parse(json.data(), json.size(), "test.json",
                                         baseDir, &manifest);
  if (status != NSA_SUCCESS) {
    check(false, what, nsa_last_error_message());
    return nullptr;
  }
  return manifest;
}

} // namespace nsa::test
