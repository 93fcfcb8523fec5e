//===- FakeCuda.cpp - A stand-in CUDA driver for the tests ----------------===//
//
// Just enough of libcuda's behaviour for the runtime's launch path: modules
// are text, a function needs the opt-in before it may launch with more than
// 48 KiB of dynamic shared memory (as the real driver does), and every call
// is counted in FakeCudaState.
//
//===----------------------------------------------------------------------===//

#include "FakeCuda.h"

#include <cstring>
#include <deque>
#include <string>
#include <vector>

namespace {

constexpr int Success = 0;
constexpr int InvalidValue = 1;
constexpr int InvalidPtx = 218;
constexpr int NotFound = 500;

struct Function {
  std::string name;
  int maxDynamicShared = 48 * 1024;
};

FakeCudaState makeInitialState() {
  FakeCudaState state = {};
  state.optin_limit = 227 * 1024; // an H100's
  return state;
}

FakeCudaState State = makeInitialState();
std::vector<std::string> Modules;
// A deque never moves its elements, so the CUfunctions handed out (their
// addresses) stay valid.
std::deque<Function> Functions;
// One context object; its address is the CUcontext.
int PrimaryContext;

} // namespace

#define FAKE_API extern "C" __attribute__((visibility("default")))

FAKE_API FakeCudaState *nsa_fake_cuda_state(void) { return &State; }

FAKE_API int cuGetErrorName(int error, const char **name) {
  switch (error) {
  case Success:
    *name = "CUDA_SUCCESS";
    return Success;
  case InvalidValue:
    *name = "CUDA_ERROR_INVALID_VALUE";
    return Success;
  case 100:
    *name = "CUDA_ERROR_NO_DEVICE";
    return Success;
  case InvalidPtx:
    *name = "CUDA_ERROR_INVALID_PTX";
    return Success;
  case NotFound:
    *name = "CUDA_ERROR_NOT_FOUND";
    return Success;
  }
  return InvalidValue;
}

FAKE_API int cuGetErrorString(int error, const char **text) {
  switch (error) {
  case InvalidValue:
    *text = "invalid argument";
    return Success;
  case 100:
    *text = "no CUDA-capable device is detected";
    return Success;
  case InvalidPtx:
    *text = "a PTX JIT compilation failed";
    return Success;
  case NotFound:
    *text = "named symbol not found";
    return Success;
  }
  return InvalidValue;
}

FAKE_API int cuInit(unsigned) {
  ++State.init_calls;
  return State.init_result;
}

FAKE_API int cuDeviceGet(int *device, int ordinal) {
  if (ordinal != 0)
    return InvalidValue;
  *device = 0;
  return Success;
}

FAKE_API int cuDeviceGetAttribute(int *value, int attribute, int) {
  if (attribute != 97)
    return InvalidValue;
  *value = State.optin_limit;
  return Success;
}

FAKE_API int cuCtxGetCurrent(void **context) {
  *context = State.current_context;
  return Success;
}

FAKE_API int cuCtxSetCurrent(void *context) {
  State.current_context = context;
  return Success;
}

FAKE_API int cuCtxGetDevice(int *device) {
  if (!State.current_context)
    return InvalidValue;
  *device = 0;
  return Success;
}

FAKE_API int cuDevicePrimaryCtxRetain(void **context, int) {
  ++State.retain_calls;
  *context = &PrimaryContext;
  return Success;
}

FAKE_API int cuDevicePrimaryCtxRelease_v2(int) {
  ++State.release_calls;
  return Success;
}

FAKE_API int cuModuleLoadDataEx(void **module, const void *image,
                                unsigned numOptions, int *options,
                                void **values) {
  ++State.load_calls;
  std::string text(static_cast<const char *>(image));
  if (text.find("FAKE_JIT_ERROR") != std::string::npos) {
    for (unsigned i = 0; i < numOptions; ++i)
      if (options[i] == 5) // CU_JIT_ERROR_LOG_BUFFER
        std::strcpy(static_cast<char *>(values[i]),
                    "ptxas fatal: fake syntax error");
    return InvalidPtx;
  }
  Modules.push_back(text);
  *module = reinterpret_cast<void *>(Modules.size());
  return Success;
}

FAKE_API int cuModuleUnload(void *) {
  ++State.unload_calls;
  return Success;
}

FAKE_API int cuModuleGetFunction(void **function, void *module,
                                 const char *name) {
  size_t index = reinterpret_cast<size_t>(module);
  if (index == 0 || index > Modules.size())
    return InvalidValue;
  if (Modules[index - 1].find(".entry " + std::string(name) + "(") ==
      std::string::npos)
    return NotFound;
  Functions.push_back(Function{name});
  *function = &Functions.back();
  return Success;
}

FAKE_API int cuFuncSetAttribute(void *function, int attribute, int value) {
  ++State.set_attribute_calls;
  if (attribute != 8) // CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES
    return InvalidValue;
  static_cast<Function *>(function)->maxDynamicShared = value;
  return Success;
}

FAKE_API int cuLaunchKernel(void *function, unsigned gridX, unsigned gridY,
                            unsigned gridZ, unsigned blockX, unsigned blockY,
                            unsigned blockZ, unsigned sharedBytes, void *stream,
                            void **kernelParams, void **) {
  auto *f = static_cast<Function *>(function);
  if (static_cast<int>(sharedBytes) > f->maxDynamicShared || gridX == 0 ||
      gridY == 0 || gridZ == 0)
    return InvalidValue;
  ++State.launches;
  std::strncpy(State.last_function, f->name.c_str(),
               sizeof(State.last_function) - 1);
  unsigned grid[3] = {gridX, gridY, gridZ};
  unsigned block[3] = {blockX, blockY, blockZ};
  std::memcpy(State.grid, grid, sizeof(grid));
  std::memcpy(State.block, block, sizeof(block));
  State.shared_bytes = sharedBytes;
  State.stream = stream;
  for (int i = 0; i < State.params_to_copy && i < FAKE_CUDA_MAX_PARAMS; ++i)
    std::memcpy(&State.params[i], kernelParams[i], sizeof(uint64_t));
  return Success;
}
