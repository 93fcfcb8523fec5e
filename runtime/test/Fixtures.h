//===- Fixtures.h - Arguments and configurations for the tests --*- C++ -*-===//

#ifndef NSA_RUNTIME_TEST_FIXTURES_H
#define NSA_RUNTIME_TEST_FIXTURES_H

#include "nsa_runtime.h"

#include <string>
#include <vector>

namespace nsa::test {

/// SPEC.md's paper-d128 configuration: l=32, d=16, l_sel=64, n=16, init=1,
/// local=2, w=512, scale=1/sqrt(128), G=16, Dk=Dv=128, bf16.
nsa_config paperConfig();

/// A contiguous tensor at a made-up, 256-byte aligned device address.
nsa_arg tensor(nsa_dtype dtype, const std::vector<int64_t> &shape);
nsa_arg int32(int64_t value);
nsa_arg int64(int64_t value);
nsa_arg float32(double value);
nsa_arg automatic();

/// The arguments of nsa_window_attention_fwd in Inputs/paper_d128.json for
/// batch B, T tokens and HKV key/value heads (HQ = 16 * HKV).
std::vector<nsa_arg> windowArgs(int64_t B, int64_t T, int64_t HKV);

/// Inputs/paper_d128.json's path and contents.
std::string exampleManifestPath();
std::string exampleManifest();

/// Parses `json` (base_dir `baseDir`) or returns null after a FAIL line.
nsa_manifest *parseOrFail(const std::string &json, const std::string &what,
                          const char *baseDir = nullptr);

} // namespace nsa::test

#endif // NSA_RUNTIME_TEST_FIXTURES_H
