//===- nsa-manifest-check.cpp - load a manifest as the runtime does -------===//
//
// Loads a kernel manifest with the runtime's own strict parser
// (nsa_manifest_load), so that tests check what nsa-translate writes against
// what the runtime accepts rather than against a second reading of the
// schema. Prints the kernel count and names, or the runtime's error.
//
//===----------------------------------------------------------------------===//

#include "nsa_runtime.h"

#include <cstdio>

int main(int argc, char **argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: nsa-manifest-check <manifest.json>\n");
    return 2;
  }
  nsa_manifest *manifest = nullptr;
  if (nsa_status status = nsa_manifest_load(argv[1], &manifest);
      status != NSA_SUCCESS) {
    std::fprintf(stderr, "error: %s: %s\n", nsa_status_name(status),
                 nsa_last_error_message());
    return 1;
  }
  int32_t count = 0;
  nsa_manifest_kernel_count(manifest, &count);
  std::printf("%d kernels\n", count);
  for (int32_t i = 0; i < count; ++i) {
    const char *name = nullptr;
    nsa_manifest_kernel_name(manifest, i, &name);
    std::printf("kernel %s\n", name);
  }
  nsa_manifest_destroy(manifest);
  return 0;
}
