//===- Driver.h - The CUDA driver API, opened at run time -------*- C++ -*-===//
//
// The runtime never links against CUDA: it opens libcuda.so.1 with dlopen at
// the first launch, so that it builds and validates on machines without a
// GPU and reports a missing driver as an error instead of failing to load.
// The few driver types and constants it needs are declared here with the
// values of cuda.h, which this file must therefore track.
//
//===----------------------------------------------------------------------===//

#ifndef NSA_RUNTIME_DRIVER_H
#define NSA_RUNTIME_DRIVER_H

#include "Status.h"

namespace nsa::rt {

using CUresult = int;
using CUdevice = int;
using CUcontext = struct CUctx_st *;
using CUmodule = struct CUmod_st *;
using CUfunction = struct CUfunc_st *;
using CUstream = struct CUstream_st *;

constexpr CUresult CUDA_SUCCESS = 0;
constexpr int CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN = 97;
constexpr int CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8;
constexpr int CU_JIT_ERROR_LOG_BUFFER = 5;
constexpr int CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES = 6;

/// A kernel may use this much dynamic shared memory without opting in.
constexpr int DefaultSharedMemoryLimit = 48 * 1024;

/// The environment variable that overrides the driver library's path.
constexpr const char *DriverPathVariable = "NSA_CUDA_LIBRARY";

struct Driver {
  /// The path or soname that was opened.
  std::string library;

  CUresult (*cuInit)(unsigned flags);
  CUresult (*cuDeviceGet)(CUdevice *device, int ordinal);
  CUresult (*cuDeviceGetAttribute)(int *value, int attribute, CUdevice device);
  CUresult (*cuCtxGetCurrent)(CUcontext *context);
  CUresult (*cuCtxSetCurrent)(CUcontext context);
  CUresult (*cuCtxGetDevice)(CUdevice *device);
  CUresult (*cuDevicePrimaryCtxRetain)(CUcontext *context, CUdevice device);
  CUresult (*cuDevicePrimaryCtxRelease)(CUdevice device);
  CUresult (*cuModuleLoadDataEx)(CUmodule *module, const void *image,
                                 unsigned numOptions, int *options,
                                 void **optionValues);
  CUresult (*cuModuleUnload)(CUmodule module);
  CUresult (*cuModuleGetFunction)(CUfunction *function, CUmodule module,
                                  const char *name);
  CUresult (*cuFuncSetAttribute)(CUfunction function, int attribute, int value);
  CUresult (*cuLaunchKernel)(CUfunction function, unsigned gridX,
                             unsigned gridY, unsigned gridZ, unsigned blockX,
                             unsigned blockY, unsigned blockZ,
                             unsigned sharedBytes, CUstream stream,
                             void **kernelParams, void **extra);
  CUresult (*cuGetErrorName)(CUresult error, const char **name);
  CUresult (*cuGetErrorString)(CUresult error, const char **text);

  /// "CUDA_ERROR_INVALID_VALUE (invalid argument)".
  std::string describe(CUresult result) const;

  /// NSA_ERROR_CUDA "<call> failed: <describe>" unless `result` is success.
  Status check(CUresult result, const std::string &call) const;
};

/// Opens $NSA_CUDA_LIBRARY (when set and non-empty) or libcuda.so.1,
/// resolves every function above and calls cuInit(0).
Status loadDriver(Driver &driver);

} // namespace nsa::rt

#endif // NSA_RUNTIME_DRIVER_H
