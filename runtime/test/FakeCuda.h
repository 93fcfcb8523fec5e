/*===- FakeCuda.h - State of the test's stand-in CUDA driver ----*- C -*-===*\
|*                                                                          *|
|* libnsa-fake-cuda implements the driver functions the runtime resolves,   *|
|* records what it was asked to do, and fails on request, so the launch     *|
|* path is tested on machines without a GPU. The test points                *|
|* NSA_CUDA_LIBRARY at it and reads the state below through dlsym.          *|
|*                                                                          *|
|* A fake module is text: it fails to load ("JIT" error) when it contains   *|
|* FAKE_JIT_ERROR, and has a kernel `name` when it contains ".entry name(". *|
|*                                                                          *|
\*===----------------------------------------------------------------------===*/

#ifndef NSA_RUNTIME_TEST_FAKECUDA_H
#define NSA_RUNTIME_TEST_FAKECUDA_H

#include <stdint.h>

#define FAKE_CUDA_MAX_PARAMS 16

typedef struct FakeCudaState {
  /* Set by the test. */
  int init_result;    /* what cuInit returns */
  int optin_limit;    /* MAX_SHARED_MEMORY_PER_BLOCK_OPTIN */
  int params_to_copy; /* kernelParams entries recorded, 8 bytes each */
  void *current_context;

  /* Counted and recorded by the fake. */
  int init_calls;
  int retain_calls;
  int release_calls;
  int load_calls;
  int unload_calls;
  int set_attribute_calls;
  int launches;
  char last_function[64];
  unsigned grid[3];
  unsigned block[3];
  unsigned shared_bytes;
  void *stream;
  uint64_t params[FAKE_CUDA_MAX_PARAMS];
} FakeCudaState;

typedef FakeCudaState *(*FakeCudaStateFunction)(void);

#endif /* NSA_RUNTIME_TEST_FAKECUDA_H */
