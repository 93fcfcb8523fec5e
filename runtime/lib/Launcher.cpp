//===- Launcher.cpp - Modules and launches on the CUDA driver -------------===//

#include "Launcher.h"

#include "File.h"

#include <cstdint>
#include <cstring>

namespace nsa::rt {

Launcher::~Launcher() {
  if (!Cuda)
    return;
  // Errors are ignored: at process exit the driver may already be shut
  // down, and there is no caller left to tell.
  CUcontext previous = nullptr;
  Cuda->cuCtxGetCurrent(&previous);
  for (const auto &[key, module] : Modules) {
    Cuda->cuCtxSetCurrent(key.first);
    Cuda->cuModuleUnload(module);
  }
  Cuda->cuCtxSetCurrent(previous);
  if (RetainedDevice)
    Cuda->cuDevicePrimaryCtxRelease(*RetainedDevice);
}

Status Launcher::loadDriverOnce() {
  if (Cuda)
    return Status::success();
  // A failure is not cached: the test suite (and a user who fixes
  // NSA_CUDA_LIBRARY) may try again in the same process.
  auto driver = std::make_unique<Driver>();
  if (Status s = loadDriver(*driver); !s.ok())
    return s;
  Cuda = std::move(driver);
  return Status::success();
}

// The caller's context when its thread has one (PyTorch makes the primary
// context of its device current); otherwise device 0's primary context,
// retained once and made current on this thread.
Status Launcher::currentContext(CUcontext &context) {
  if (Status s =
          Cuda->check(Cuda->cuCtxGetCurrent(&context), "cuCtxGetCurrent");
      !s.ok())
    return s;
  if (context)
    return Status::success();
  if (!RetainedDevice) {
    CUdevice device;
    if (Status s = Cuda->check(Cuda->cuDeviceGet(&device, 0), "cuDeviceGet(0)");
        !s.ok())
      return s;
    if (Status s = Cuda->check(
            Cuda->cuDevicePrimaryCtxRetain(&RetainedContext, device),
            "cuDevicePrimaryCtxRetain");
        !s.ok())
      return s;
    RetainedDevice = device;
  }
  context = RetainedContext;
  return Cuda->check(Cuda->cuCtxSetCurrent(context), "cuCtxSetCurrent");
}

Status Launcher::getModule(const std::string &path, CUcontext context,
                           CUmodule &module) {
  auto cached = Modules.find({context, path});
  if (cached != Modules.end()) {
    module = cached->second;
    return Status::success();
  }
  std::string image;
  if (Status s = readFile(path, "module", image); !s.ok())
    return s;
  if (image.empty())
    return Status(NSA_ERROR_MODULE_LOAD,
                  format("module '%s' is empty", path.c_str()));
  // PTX goes through the driver's JIT, whose diagnostics land in this log;
  // std::string keeps the image NUL-terminated as PTX text must be.
  char log[16384] = {};
  int options[] = {CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES};
  void *values[] = {log, reinterpret_cast<void *>(uintptr_t(sizeof(log)))};
  CUresult result =
      Cuda->cuModuleLoadDataEx(&module, image.c_str(), 2, options, values);
  if (result != CUDA_SUCCESS) {
    log[sizeof(log) - 1] = '\0';
    return Status(NSA_ERROR_MODULE_LOAD,
                  format("cannot load module '%s': %s%s%s", path.c_str(),
                         Cuda->describe(result).c_str(),
                         log[0] ? "; JIT log: " : "", log));
  }
  Modules[{context, path}] = module;
  return Status::success();
}

// Kernels may use up to 48 KiB of dynamic shared memory by default; above
// that the function must opt in, up to the device's limit (227 KiB on H100).
Status Launcher::allowSharedMemory(const Kernel &kernel, CUfunction function) {
  if (kernel.sharedBytes <= DefaultSharedMemoryLimit)
    return Status::success();
  CUdevice device;
  if (Status s = Cuda->check(Cuda->cuCtxGetDevice(&device), "cuCtxGetDevice");
      !s.ok())
    return s;
  int limit = 0;
  if (Status s = Cuda->check(
          Cuda->cuDeviceGetAttribute(
              &limit, CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN,
              device),
          "cuDeviceGetAttribute(MAX_SHARED_MEMORY_PER_BLOCK_OPTIN)");
      !s.ok())
    return s;
  if (kernel.sharedBytes > limit)
    return Status(NSA_ERROR_SHARED_MEMORY,
                  format("kernel '%s' needs %d bytes of dynamic shared memory; "
                         "this device allows at most %d per block",
                         kernel.name.c_str(), kernel.sharedBytes, limit));
  return Cuda->check(
      Cuda->cuFuncSetAttribute(function,
                               CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                               kernel.sharedBytes),
      format("cuFuncSetAttribute(%s, MAX_DYNAMIC_SHARED_SIZE_BYTES, %d)",
             kernel.name.c_str(), kernel.sharedBytes));
}

Status Launcher::getFunction(const Kernel &kernel, CUcontext context,
                             CUfunction &function) {
  auto cached = Functions.find({context, &kernel});
  if (cached != Functions.end()) {
    function = cached->second;
    return Status::success();
  }
  CUmodule module;
  if (Status s = getModule(kernel.modulePath, context, module); !s.ok())
    return s;
  CUresult result =
      Cuda->cuModuleGetFunction(&function, module, kernel.name.c_str());
  if (result != CUDA_SUCCESS)
    return Status(NSA_ERROR_MODULE_LOAD,
                  format("module '%s' has no kernel '%s': %s",
                         kernel.modulePath.c_str(), kernel.name.c_str(),
                         Cuda->describe(result).c_str()));
  if (Status s = allowSharedMemory(kernel, function); !s.ok())
    return s;
  Functions[{context, &kernel}] = function;
  return Status::success();
}

Status Launcher::launch(const Kernel &kernel, LaunchPlan &plan,
                        CUstream stream) {
  CUfunction function;
  {
    std::lock_guard<std::mutex> lock(Mutex);
    if (Status s = loadDriverOnce(); !s.ok())
      return s;
    CUcontext context;
    if (Status s = currentContext(context); !s.ok())
      return s;
    if (Status s = getFunction(kernel, context, function); !s.ok())
      return s;
  }
  std::vector<void *> params(plan.slots.size());
  for (size_t i = 0; i < plan.slots.size(); ++i)
    params[i] = &plan.slots[i];
  const nsa_launch_plan &dims = plan.dims;
  CUresult result = Cuda->cuLaunchKernel(
      function, static_cast<unsigned>(dims.grid[0]),
      static_cast<unsigned>(dims.grid[1]), static_cast<unsigned>(dims.grid[2]),
      dims.block[0], dims.block[1], dims.block[2], dims.shared_bytes, stream,
      params.empty() ? nullptr : params.data(), nullptr);
  return Cuda->check(
      result, format("cuLaunchKernel(%s, grid (%lld, %lld, %lld), block (%d, "
                     "%d, %d), %d bytes of shared memory)",
                     kernel.name.c_str(), static_cast<long long>(dims.grid[0]),
                     static_cast<long long>(dims.grid[1]),
                     static_cast<long long>(dims.grid[2]), dims.block[0],
                     dims.block[1], dims.block[2], dims.shared_bytes));
}

} // namespace nsa::rt
