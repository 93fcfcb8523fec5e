//===- Api.cpp - The C entry points of nsa_runtime.h ----------------------===//
//
// Each entry point clears the thread's last error, checks its own pointer
// arguments, and turns the internal Status into the C error code.
//
//===----------------------------------------------------------------------===//

#include "nsa_runtime.h"

#include "Expression.h"
#include "File.h"
#include "LaunchPlan.h"
#include "Launcher.h"
#include "Manifest.h"

using namespace nsa::rt;

struct nsa_manifest {
  Manifest manifest;
  Launcher launcher;
};

namespace {

nsa_status nullArgument(const char *function, const char *argument) {
  return report(Status(NSA_ERROR_NULL_ARGUMENT,
                       format("%s: '%s' is null", function, argument)));
}

Status findKernel(const nsa_manifest &handle, const char *name,
                  const Kernel *&kernel) {
  kernel = handle.manifest.find(name);
  if (kernel)
    return Status::success();
  std::string names;
  for (const Kernel &k : handle.manifest.kernels)
    names += (names.empty() ? "" : ", ") + k.name;
  return Status(NSA_ERROR_UNKNOWN_KERNEL,
                format("no kernel '%s' in manifest '%s' (it has: %s)", name,
                       handle.manifest.sourceName.c_str(),
                       names.empty() ? "none" : names.c_str()));
}

nsa_status finishParse(Status status, nsa_manifest *handle,
                       nsa_manifest **out) {
  if (!status.ok()) {
    delete handle;
    return report(status);
  }
  *out = handle;
  return NSA_SUCCESS;
}

} // namespace

extern "C" {

int32_t nsa_runtime_abi_version(void) { return NSA_RUNTIME_ABI_VERSION; }

const char *nsa_status_name(int32_t status) {
  static const char *const names[] = {
      "NSA_SUCCESS",
      "NSA_ERROR_NULL_ARGUMENT",
      "NSA_ERROR_INVALID_ARGUMENT",
      "NSA_ERROR_IO",
      "NSA_ERROR_MANIFEST_SYNTAX",
      "NSA_ERROR_MANIFEST_SCHEMA",
      "NSA_ERROR_UNKNOWN_KERNEL",
      "NSA_ERROR_NO_MATCHING_KERNEL",
      "NSA_ERROR_CONFIG_MISMATCH",
      "NSA_ERROR_ARG_COUNT",
      "NSA_ERROR_ARG_KIND",
      "NSA_ERROR_NULL_DATA",
      "NSA_ERROR_DTYPE_MISMATCH",
      "NSA_ERROR_RANK_MISMATCH",
      "NSA_ERROR_SHAPE_MISMATCH",
      "NSA_ERROR_NOT_CONTIGUOUS",
      "NSA_ERROR_MISALIGNED",
      "NSA_ERROR_SCALAR_MISMATCH",
      "NSA_ERROR_EXPRESSION",
      "NSA_ERROR_GRID",
      "NSA_ERROR_NO_DRIVER",
      "NSA_ERROR_DRIVER_SYMBOL",
      "NSA_ERROR_MODULE_LOAD",
      "NSA_ERROR_SHARED_MEMORY",
      "NSA_ERROR_CUDA",
  };
  static_assert(sizeof(names) / sizeof(names[0]) == NSA_ERROR_CUDA + 1,
                "every nsa_status needs a name");
  if (status < 0 || status > NSA_ERROR_CUDA)
    return "NSA_UNKNOWN_STATUS";
  return names[status];
}

const char *nsa_last_error_message(void) { return lastErrorMessage(); }

nsa_status nsa_manifest_load(const char *path, nsa_manifest **out) {
  clearLastError();
  if (!path)
    return nullArgument("nsa_manifest_load", "path");
  if (!out)
    return nullArgument("nsa_manifest_load", "out");
  *out = nullptr;
  std::string json;
  if (Status s = readFile(path, "manifest", json); !s.ok())
    return report(s);
  auto *handle = new nsa_manifest;
  return finishParse(
      parseManifest(json, path, directoryOf(path), handle->manifest), handle,
      out);
}

nsa_status nsa_manifest_parse(const char *json, size_t length, const char *name,
                              const char *base_dir, nsa_manifest **out) {
  clearLastError();
  if (!json)
    return nullArgument("nsa_manifest_parse", "json");
  if (!out)
    return nullArgument("nsa_manifest_parse", "out");
  *out = nullptr;
  auto *handle = new nsa_manifest;
  return finishParse(parseManifest(std::string_view(json, length),
                                   name ? name : "<memory>",
                                   base_dir ? base_dir : "", handle->manifest),
                     handle, out);
}

void nsa_manifest_destroy(nsa_manifest *manifest) {
  clearLastError();
  delete manifest;
}

nsa_status nsa_manifest_kernel_count(const nsa_manifest *manifest,
                                     int32_t *count) {
  clearLastError();
  if (!manifest)
    return nullArgument("nsa_manifest_kernel_count", "manifest");
  if (!count)
    return nullArgument("nsa_manifest_kernel_count", "count");
  *count = static_cast<int32_t>(manifest->manifest.kernels.size());
  return NSA_SUCCESS;
}

nsa_status nsa_manifest_kernel_name(const nsa_manifest *manifest, int32_t index,
                                    const char **name) {
  clearLastError();
  if (!manifest)
    return nullArgument("nsa_manifest_kernel_name", "manifest");
  if (!name)
    return nullArgument("nsa_manifest_kernel_name", "name");
  const auto &kernels = manifest->manifest.kernels;
  if (index < 0 || static_cast<size_t>(index) >= kernels.size())
    return report(Status(NSA_ERROR_INVALID_ARGUMENT,
                         format("nsa_manifest_kernel_name: index %d is outside "
                                "[0, %zu)",
                                index, kernels.size())));
  *name = kernels[index].name.c_str();
  return NSA_SUCCESS;
}

nsa_status nsa_find_kernel(const nsa_manifest *manifest, const char *op,
                           const nsa_config *config, const char **name) {
  clearLastError();
  if (!manifest)
    return nullArgument("nsa_find_kernel", "manifest");
  if (!op)
    return nullArgument("nsa_find_kernel", "op");
  if (!config)
    return nullArgument("nsa_find_kernel", "config");
  if (!name)
    return nullArgument("nsa_find_kernel", "name");
  *name = nullptr;
  std::string reasons;
  std::string ops;
  for (const Kernel &kernel : manifest->manifest.kernels) {
    if (ops.find(" " + kernel.op + ",") == std::string::npos)
      ops += " " + kernel.op + ",";
    if (kernel.op != op)
      continue;
    Status s = checkConfig(kernel, *config);
    if (s.ok()) {
      *name = kernel.name.c_str();
      return NSA_SUCCESS;
    }
    reasons += "; " + s.message();
  }
  if (!ops.empty())
    ops.pop_back();
  if (reasons.empty())
    return report(Status(NSA_ERROR_NO_MATCHING_KERNEL,
                         format("manifest '%s' has no kernel for op '%s' "
                                "(ops:%s)",
                                manifest->manifest.sourceName.c_str(), op,
                                ops.empty() ? " none" : ops.c_str())));
  return report(Status(NSA_ERROR_NO_MATCHING_KERNEL,
                       format("no kernel for op '%s' matches the "
                              "configuration%s",
                              op, reasons.c_str())));
}

nsa_status nsa_plan_launch(const nsa_manifest *manifest, const char *kernel,
                           const nsa_config *config, const nsa_arg *args,
                           int32_t num_args, nsa_launch_plan *plan) {
  clearLastError();
  if (!manifest)
    return nullArgument("nsa_plan_launch", "manifest");
  if (!kernel)
    return nullArgument("nsa_plan_launch", "kernel");
  if (!config)
    return nullArgument("nsa_plan_launch", "config");
  if (!args && num_args != 0)
    return nullArgument("nsa_plan_launch", "args");
  if (!plan)
    return nullArgument("nsa_plan_launch", "plan");
  const Kernel *k;
  if (Status s = findKernel(*manifest, kernel, k); !s.ok())
    return report(s);
  LaunchPlan result;
  if (Status s = planLaunch(*k, *config, args, num_args, result); !s.ok())
    return report(s);
  *plan = result.dims;
  return NSA_SUCCESS;
}

nsa_status nsa_launch(nsa_manifest *manifest, const char *kernel,
                      const nsa_config *config, const nsa_arg *args,
                      int32_t num_args, void *stream) {
  clearLastError();
  if (!manifest)
    return nullArgument("nsa_launch", "manifest");
  if (!kernel)
    return nullArgument("nsa_launch", "kernel");
  if (!config)
    return nullArgument("nsa_launch", "config");
  if (!args && num_args != 0)
    return nullArgument("nsa_launch", "args");
  const Kernel *k;
  if (Status s = findKernel(*manifest, kernel, k); !s.ok())
    return report(s);
  LaunchPlan plan;
  if (Status s = planLaunch(*k, *config, args, num_args, plan); !s.ok())
    return report(s);
  // An empty grid has nothing to compute, and CUDA rejects it.
  if (!plan.hasWork())
    return NSA_SUCCESS;
  if (Status s =
          manifest->launcher.launch(*k, plan, static_cast<CUstream>(stream));
      !s.ok())
    return report(s);
  return NSA_SUCCESS;
}

nsa_status nsa_eval_expression(const char *expression,
                               const char *const *symbols,
                               const int64_t *values, int32_t num_symbols,
                               int64_t *result) {
  clearLastError();
  if (!expression)
    return nullArgument("nsa_eval_expression", "expression");
  if (num_symbols < 0)
    return report(
        Status(NSA_ERROR_INVALID_ARGUMENT,
               format("nsa_eval_expression: num_symbols is %d", num_symbols)));
  if (num_symbols > 0 && !symbols)
    return nullArgument("nsa_eval_expression", "symbols");
  if (num_symbols > 0 && !values)
    return nullArgument("nsa_eval_expression", "values");
  if (!result)
    return nullArgument("nsa_eval_expression", "result");
  SymbolTable table;
  for (int32_t i = 0; i < num_symbols; ++i) {
    if (!symbols[i])
      return nullArgument("nsa_eval_expression", "symbols[i]");
    table[symbols[i]] = values[i];
  }
  Expression parsed;
  if (Status s = Expression::parse(expression, parsed); !s.ok())
    return report(Status(s.code(), format("bad expression \"%s\": %s",
                                          expression, s.message().c_str())));
  if (Status s = parsed.evaluate(table, *result); !s.ok())
    return report(s);
  return NSA_SUCCESS;
}

} // extern "C"
