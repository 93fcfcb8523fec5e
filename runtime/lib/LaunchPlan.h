//===- LaunchPlan.h - Checking a call against its kernel --------*- C++ -*-===//
//
// Everything about a launch that needs no GPU: the configuration check,
// every argument's kind, dtype, rank, shape, contiguity and alignment, the
// binding of shape symbols, scalar value rules, and the grid. nsa_launch
// hands the result to the driver unchanged, so the unit tests of this file
// cover exactly what a real launch would check.
//
//===----------------------------------------------------------------------===//

#ifndef NSA_RUNTIME_LAUNCHPLAN_H
#define NSA_RUNTIME_LAUNCHPLAN_H

#include "Manifest.h"

#include <vector>

namespace nsa::rt {

/// One kernel parameter as cuLaunchKernel reads it: kernelParams[i] points
/// at slots[i], and the driver copies as many bytes as the PTX parameter has.
union ArgSlot {
  uint64_t pointer;
  int32_t i32;
  int64_t i64;
  float f32;
};

struct LaunchPlan {
  nsa_launch_plan dims = {};
  std::vector<ArgSlot> slots;

  bool hasWork() const {
    return dims.grid[0] > 0 && dims.grid[1] > 0 && dims.grid[2] > 0;
  }
};

/// NSA_ERROR_CONFIG_MISMATCH naming the first field where `config` differs
/// from what the kernel was compiled for.
Status checkConfig(const Kernel &kernel, const nsa_config &config);

Status planLaunch(const Kernel &kernel, const nsa_config &config,
                  const nsa_arg *args, int32_t numArgs, LaunchPlan &plan);

} // namespace nsa::rt

#endif // NSA_RUNTIME_LAUNCHPLAN_H
