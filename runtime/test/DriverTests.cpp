//===- DriverTests.cpp - The launch path, without and with a driver -------===//
//
// Without a GPU the runtime must say so: no libcuda.so.1, a bad
// NSA_CUDA_LIBRARY, or a library that is not a driver. The rest of the launch
// path (context, module load, shared-memory opt-in, cuLaunchKernel's
// arguments) runs against libnsa-fake-cuda.
//
//===----------------------------------------------------------------------===//

#include "Check.h"
#include "FakeCuda.h"
#include "Fixtures.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <string>
#include <unistd.h>
#include <vector>

namespace nsa::test {

namespace {

const char *Window = "nsa_window_attention_fwd";
void *const Stream = reinterpret_cast<void *>(0x5150);

nsa_status launch(nsa_manifest *manifest, const char *kernel,
                  const std::vector<nsa_arg> &args) {
  nsa_config config = paperConfig();
  return nsa_launch(manifest, kernel, &config, args.data(),
                    static_cast<int32_t>(args.size()), Stream);
}

void writeFile(const std::string &path, const std::string &contents) {
  std::FILE *file = std::fopen(path.c_str(), "wb");
  std::fwrite(contents.data(), 1, contents.size(), file);
  std::fclose(file);
}

/// The example manifest with every kernel's module replaced by `module`.
nsa_manifest *exampleWithModule(const std::string &module,
                                const std::string &dir) {
  std::string json = exampleManifest();
  const std::string from = "\"paper_d128.ptx\"";
  const std::string to = "\"" + module + "\"";
  for (size_t at = json.find(from); at != std::string::npos;
       at = json.find(from, at + to.size()))
    json.replace(at, from.size(), to);
  return parseOrFail(json, "example manifest with module " + module,
                     dir.c_str());
}

void runWithoutDriver(nsa_manifest *m) {
  unsetenv("NSA_CUDA_LIBRARY");
  if (void *real = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL)) {
    (void)real; // A live driver is never closed; see Driver.cpp.
    skip("driver: no libcuda.so.1", "this machine has an NVIDIA driver");
  } else {
    expectStatus(launch(m, Window, windowArgs(1, 1000, 4)), NSA_ERROR_NO_DRIVER,
                 "libcuda.so.1 not found: no NVIDIA driver on this machine",
                 "driver: no libcuda.so.1");
  }

  setenv("NSA_CUDA_LIBRARY", "/nonexistent/libcuda.so.1", 1);
  expectStatus(launch(m, Window, windowArgs(1, 1000, 4)), NSA_ERROR_NO_DRIVER,
               "NSA_CUDA_LIBRARY=/nonexistent/libcuda.so.1: cannot open the "
               "CUDA driver",
               "driver: NSA_CUDA_LIBRARY names a missing file");
  // Checks come first: a bad call is reported as such even without a GPU.
  auto args = windowArgs(1, 1000, 4);
  args[4].tensor.dtype = NSA_DTYPE_BF16;
  expectStatus(launch(m, Window, args), NSA_ERROR_DTYPE_MISMATCH,
               "parameter 'lse' (#4): expected dtype f32, got bf16",
               "driver: argument errors come before the driver");
  expectStatus(launch(m, Window, windowArgs(1, 0, 4)), NSA_SUCCESS, "",
               "driver: an empty grid needs no driver");

  setenv("NSA_CUDA_LIBRARY", "libc.so.6", 1);
  expectStatus(launch(m, Window, windowArgs(1, 1000, 4)),
               NSA_ERROR_DRIVER_SYMBOL, "libc.so.6 lacks cuGetErrorName",
               "driver: a library that is not the driver");

  nsa_config config = paperConfig();
  expectStatus(nsa_launch(nullptr, Window, &config, nullptr, 0, nullptr),
               NSA_ERROR_NULL_ARGUMENT, "nsa_launch: 'manifest' is null",
               "launch: null manifest");
  expectStatus(nsa_launch(m, nullptr, &config, nullptr, 0, nullptr),
               NSA_ERROR_NULL_ARGUMENT, "'kernel' is null",
               "launch: null kernel");
  expectStatus(nsa_launch(m, Window, nullptr, nullptr, 0, nullptr),
               NSA_ERROR_NULL_ARGUMENT, "'config' is null",
               "launch: null config");
  expectStatus(nsa_launch(m, Window, &config, nullptr, 6, nullptr),
               NSA_ERROR_NULL_ARGUMENT, "'args' is null", "launch: null args");
}

void runWithFakeDriver(const std::string &dir) {
  void *fake = dlopen(NSA_FAKE_CUDA_PATH, RTLD_NOW | RTLD_LOCAL);
  auto stateOf = fake ? reinterpret_cast<FakeCudaStateFunction>(
                            dlsym(fake, "nsa_fake_cuda_state"))
                      : nullptr;
  if (!stateOf) {
    check(false, "fake driver: open " NSA_FAKE_CUDA_PATH, dlerror());
    return;
  }
  FakeCudaState &state = *stateOf();
  setenv("NSA_CUDA_LIBRARY", NSA_FAKE_CUDA_PATH, 1);

  nsa_manifest *m = exampleWithModule("paper_d128.ptx", dir);
  if (!m)
    return;
  state.init_result = 100;
  expectStatus(launch(m, Window, windowArgs(1, 1000, 4)), NSA_ERROR_CUDA,
               "cuInit failed: CUDA_ERROR_NO_DEVICE (no CUDA-capable device is "
               "detected)",
               "fake driver: a driver without a GPU");
  state.init_result = 0;

  auto args = windowArgs(2, 1000, 4);
  state.params_to_copy = 6;
  nsa_status status = launch(m, Window, args);
  expectStatus(status, NSA_SUCCESS, "", "fake driver: launch window attention");
  check(state.launches == 1 && std::string(state.last_function) == Window,
        "fake driver: one launch of nsa_window_attention_fwd",
        state.last_function);
  check(state.grid[0] == 250 && state.grid[1] == 4 && state.grid[2] == 2 &&
            state.block[0] == 256 && state.block[1] == 1 &&
            state.block[2] == 1 && state.shared_bytes == 65536 &&
            state.stream == Stream,
        "fake driver: grid (250, 4, 2), block (256, 1, 1), 65536 bytes, the "
        "caller's stream");
  bool pointers = true;
  for (int i = 0; i < 5; ++i)
    pointers &= state.params[i] == args[i].tensor.data;
  check(pointers, "fake driver: tensor parameters are the data pointers");
  check(static_cast<int32_t>(state.params[5] & 0xffffffffu) == 1000,
        "fake driver: the i32 parameter T is 1000");
  check(state.retain_calls == 1 && state.current_context != nullptr,
        "fake driver: without a current context, the primary one is retained "
        "and made current");
  check(state.set_attribute_calls == 1,
        "fake driver: 65536 bytes of shared memory opt in above 48 KiB");

  status = launch(m, Window, windowArgs(1, 64, 4));
  check(status == NSA_SUCCESS && state.launches == 2 && state.grid[0] == 16 &&
            state.load_calls == 1 && state.set_attribute_calls == 1 &&
            state.retain_calls == 1,
        "fake driver: a second launch reuses module, function and context",
        nsa_last_error_message());

  status = launch(m, "nsa_combine",
                  {tensor(NSA_DTYPE_BF16, {1, 64, 64, 3}),
                   tensor(NSA_DTYPE_BF16, {1, 64, 64, 128}),
                   tensor(NSA_DTYPE_BF16, {1, 64, 64, 128}),
                   tensor(NSA_DTYPE_BF16, {1, 64, 64, 128}),
                   tensor(NSA_DTYPE_BF16, {1, 64, 64, 128}), automatic()});
  check(status == NSA_SUCCESS && state.launches == 3 &&
            state.shared_bytes == 0 && state.set_attribute_calls == 1 &&
            state.params[5] == 64 * 64,
        "fake driver: combine needs no opt-in; its i64 rows = 4096 is filled "
        "in",
        nsa_last_error_message());

  state.optin_limit = 64 * 1024;
  std::vector<nsa_arg> cmp = {tensor(NSA_DTYPE_BF16, {1, 1000, 64, 128}),
                              tensor(NSA_DTYPE_BF16, {1, 61, 4, 128}),
                              tensor(NSA_DTYPE_BF16, {1, 61, 4, 128}),
                              tensor(NSA_DTYPE_BF16, {1, 1000, 64, 128}),
                              tensor(NSA_DTYPE_F32, {1, 1000, 64}),
                              automatic(),
                              automatic(),
                              automatic()};
  expectStatus(launch(m, "nsa_compressed_attention_fwd", cmp),
               NSA_ERROR_SHARED_MEMORY,
               "kernel 'nsa_compressed_attention_fwd' needs 98304 bytes of "
               "dynamic shared memory; this device allows at most 65536 per "
               "block",
               "fake driver: more shared memory than the device has");
  state.optin_limit = 227 * 1024;
  state.params_to_copy = 8;
  status = launch(m, "nsa_compressed_attention_fwd", cmp);
  float scale;
  std::memcpy(&scale, &state.params[7], sizeof(scale));
  check(status == NSA_SUCCESS && state.shared_bytes == 98304 &&
            static_cast<int32_t>(state.params[6]) == 61 &&
            scale == static_cast<float>(0.08838834764831845),
        "fake driver: compressed attention gets 98304 bytes, Nc = 61 and the "
        "f32 scale",
        nsa_last_error_message());
  state.params_to_copy = 6;
  int loads = state.load_calls;
  nsa_manifest_destroy(m);
  check(state.unload_calls == loads && state.release_calls == 1,
        "fake driver: destroying the manifest unloads its modules and "
        "releases the primary context");

  // A caller's own current context is used as is.
  int retains = state.retain_calls;
  m = exampleWithModule("paper_d128.ptx", dir);
  status = launch(m, Window, windowArgs(1, 1000, 4));
  check(status == NSA_SUCCESS && state.retain_calls == retains,
        "fake driver: the caller's current context is used, none retained",
        nsa_last_error_message());
  nsa_manifest_destroy(m);

  m = exampleWithModule("no_entries.ptx", dir);
  expectStatus(launch(m, Window, windowArgs(1, 1000, 4)), NSA_ERROR_MODULE_LOAD,
               "/no_entries.ptx' has no kernel 'nsa_window_attention_fwd': "
               "CUDA_ERROR_NOT_FOUND (named symbol not found)",
               "fake driver: a module without the kernel");
  nsa_manifest_destroy(m);
  m = exampleWithModule("jit_error.ptx", dir);
  expectStatus(launch(m, Window, windowArgs(1, 1000, 4)), NSA_ERROR_MODULE_LOAD,
               "CUDA_ERROR_INVALID_PTX (a PTX JIT compilation failed); JIT "
               "log: ptxas fatal: fake syntax error",
               "fake driver: PTX the JIT rejects");
  nsa_manifest_destroy(m);
  m = exampleWithModule("empty.ptx", dir);
  expectStatus(launch(m, Window, windowArgs(1, 1000, 4)), NSA_ERROR_MODULE_LOAD,
               "/empty.ptx' is empty", "fake driver: an empty module file");
  nsa_manifest_destroy(m);
  m = exampleWithModule("missing.ptx", dir);
  expectStatus(launch(m, Window, windowArgs(1, 1000, 4)), NSA_ERROR_IO,
               "cannot read module '" + dir +
                   "/missing.ptx': No such file or directory",
               "fake driver: a missing module file");
  nsa_manifest_destroy(m);
}

} // namespace

void runDriverTests() {
  char dirTemplate[] = "/tmp/nsa-runtime-test-XXXXXX";
  if (!mkdtemp(dirTemplate)) {
    check(false, "driver: create a temporary directory");
    return;
  }
  std::string dir = dirTemplate;
  std::string entries;
  for (const char *name :
       {"nsa_compress_linear", "nsa_compressed_attention_fwd",
        "nsa_select_blocks", "nsa_selected_attention_fwd",
        "nsa_window_attention_fwd", "nsa_combine"})
    entries += std::string(".entry ") + name + "(\n";
  const std::vector<std::pair<std::string, std::string>> files = {
      {"paper_d128.ptx", entries},
      {"no_entries.ptx", ".version 8.0\n"},
      {"jit_error.ptx", "FAKE_JIT_ERROR\n"},
      {"empty.ptx", ""}};
  for (const auto &[name, contents] : files)
    writeFile(dir + "/" + name, contents);

  if (nsa_manifest *m = exampleWithModule("paper_d128.ptx", dir)) {
    runWithoutDriver(m);
    nsa_manifest_destroy(m);
  }
  runWithFakeDriver(dir);

  unsetenv("NSA_CUDA_LIBRARY");
  for (const auto &[name, contents] : files)
    unlink((dir + "/" + name).c_str());
  rmdir(dir.c_str());
}

} // namespace nsa::test
