//===- Driver.cpp - The CUDA driver API, opened at run time ---------------===//

#include "Driver.h"

#include <cstdlib>
#include <dlfcn.h>

namespace nsa::rt {

std::string Driver::describe(CUresult result) const {
  const char *name = nullptr;
  const char *text = nullptr;
  if (cuGetErrorName(result, &name) != CUDA_SUCCESS || !name)
    return format("CUDA error %d", result);
  if (cuGetErrorString(result, &text) != CUDA_SUCCESS || !text)
    return name;
  return format("%s (%s)", name, text);
}

Status Driver::check(CUresult result, const std::string &call) const {
  if (result == CUDA_SUCCESS)
    return Status::success();
  return Status(NSA_ERROR_CUDA, format("%s failed: %s", call.c_str(),
                                       describe(result).c_str()));
}

namespace {

template <typename Function>
Status resolve(void *handle, const Driver &driver, Function &function,
               std::initializer_list<const char *> names) {
  // Where cuda.h maps a name to a versioned symbol (cuDevicePrimaryCtxRelease
  // to ..._v2), the newest comes first and older drivers fall back.
  for (const char *name : names) {
    if (void *symbol = dlsym(handle, name)) {
      function = reinterpret_cast<Function>(symbol);
      return Status::success();
    }
  }
  return Status(NSA_ERROR_DRIVER_SYMBOL,
                format("%s lacks %s: not a CUDA driver, or one too old for "
                       "this runtime",
                       driver.library.c_str(), *names.begin()));
}

} // namespace

Status loadDriver(Driver &driver) {
  const char *override = std::getenv(DriverPathVariable);
  bool overridden = override && *override;
  driver.library = overridden ? override : "libcuda.so.1";
  // Never dlclose'd: the driver starts threads and registers exit handlers,
  // so unloading it from a live process is unsafe, and dlopen's reference
  // count makes opening it again free.
  void *handle = dlopen(driver.library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char *why = dlerror();
    if (overridden)
      return Status(NSA_ERROR_NO_DRIVER,
                    format("%s=%s: cannot open the CUDA driver: %s",
                           DriverPathVariable, override, why ? why : "?"));
    return Status(NSA_ERROR_NO_DRIVER,
                  format("libcuda.so.1 not found: no NVIDIA driver on this "
                         "machine (dlopen: %s; set %s to use another path)",
                         why ? why : "?", DriverPathVariable));
  }
  Status s = Status::success();
  auto get = [&](auto &function, std::initializer_list<const char *> names) {
    if (s.ok())
      s = resolve(handle, driver, function, names);
  };
  get(driver.cuGetErrorName, {"cuGetErrorName"});
  get(driver.cuGetErrorString, {"cuGetErrorString"});
  get(driver.cuInit, {"cuInit"});
  get(driver.cuDeviceGet, {"cuDeviceGet"});
  get(driver.cuDeviceGetAttribute, {"cuDeviceGetAttribute"});
  get(driver.cuCtxGetCurrent, {"cuCtxGetCurrent"});
  get(driver.cuCtxSetCurrent, {"cuCtxSetCurrent"});
  get(driver.cuCtxGetDevice, {"cuCtxGetDevice"});
  get(driver.cuDevicePrimaryCtxRetain, {"cuDevicePrimaryCtxRetain"});
  get(driver.cuDevicePrimaryCtxRelease,
      {"cuDevicePrimaryCtxRelease_v2", "cuDevicePrimaryCtxRelease"});
  get(driver.cuModuleLoadDataEx, {"cuModuleLoadDataEx"});
  get(driver.cuModuleUnload, {"cuModuleUnload"});
  get(driver.cuModuleGetFunction, {"cuModuleGetFunction"});
  get(driver.cuFuncSetAttribute, {"cuFuncSetAttribute"});
  get(driver.cuLaunchKernel, {"cuLaunchKernel"});
  if (!s.ok())
    return s;
  return driver.check(driver.cuInit(0), "cuInit");
}

} // namespace nsa::rt
