//===- Launcher.h - Modules and launches on the CUDA driver -----*- C++ -*-===//
//
// The part of a launch that needs the GPU: the driver, the context, the
// loaded modules and resolved functions (cached per context, since a CUmodule
// belongs to one), the opt-in for large dynamic shared memory, and
// cuLaunchKernel itself. One Launcher lives in each nsa_manifest.
//
//===----------------------------------------------------------------------===//

#ifndef NSA_RUNTIME_LAUNCHER_H
#define NSA_RUNTIME_LAUNCHER_H

#include "Driver.h"
#include "LaunchPlan.h"

#include <map>
#include <memory>
#include <mutex>
#include <optional>

namespace nsa::rt {

class Launcher {
public:
  Launcher() = default;
  Launcher(const Launcher &) = delete;
  Launcher &operator=(const Launcher &) = delete;
  /// Unloads every module and releases the primary context it retained.
  ~Launcher();

  /// Launches a planned call on `stream`; thread-safe.
  Status launch(const Kernel &kernel, LaunchPlan &plan, CUstream stream);

private:
  Status loadDriverOnce();
  Status currentContext(CUcontext &context);
  Status getFunction(const Kernel &kernel, CUcontext context,
                     CUfunction &function);
  Status getModule(const std::string &path, CUcontext context,
                   CUmodule &module);
  Status allowSharedMemory(const Kernel &kernel, CUfunction function);

  // Guards everything below. The driver is only ever set once, so launch()
  // may read it after letting go.
  std::mutex Mutex;
  std::unique_ptr<Driver> Cuda;
  std::map<std::pair<CUcontext, std::string>, CUmodule> Modules;
  std::map<std::pair<CUcontext, const Kernel *>, CUfunction> Functions;
  std::optional<CUdevice> RetainedDevice;
  CUcontext RetainedContext = nullptr;
};

} // namespace nsa::rt

#endif // NSA_RUNTIME_LAUNCHER_H
