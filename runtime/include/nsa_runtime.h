/*===- nsa_runtime.h - C ABI of the NSA kernel launcher ---------*- C -*-===*\
|*                                                                          *|
|* Loads the kernel manifest that nsa-translate writes next to its PTX or   *|
|* cubin (docs/runtime-abi.md), checks a call's tensors, scalars and NSA    *|
|* configuration against it, and launches the kernel through the CUDA      *|
|* driver API on the caller's stream. libcuda.so.1 is opened with dlopen   *|
|* at the first launch, so the library builds, loads and validates on      *|
|* machines without a GPU.                                                  *|
|*                                                                          *|
|* Every function returns an nsa_status; on failure                         *|
|* nsa_last_error_message() (per thread) says what went wrong. Every entry  *|
|* point clears that message first, so it always describes the most recent *|
|* call made on the thread. The structs are plain data with fixed-size      *|
|* fields so that ctypes can mirror them directly.                          *|
|*                                                                          *|
\*===----------------------------------------------------------------------===*/

#ifndef NSA_RUNTIME_H
#define NSA_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define NSA_API __attribute__((visibility("default")))
#else
#define NSA_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped whenever a struct layout or a function signature changes. */
#define NSA_RUNTIME_ABI_VERSION 1

/* The most dimensions a tensor argument may have. */
#define NSA_MAX_RANK 8

typedef enum nsa_status {
  NSA_SUCCESS = 0,
  /* A required pointer argument of the API call itself was null. */
  NSA_ERROR_NULL_ARGUMENT = 1,
  /* A count or index argument of the API call is out of range. */
  NSA_ERROR_INVALID_ARGUMENT = 2,
  /* A file (manifest or PTX/cubin module) could not be read. */
  NSA_ERROR_IO = 3,
  /* The manifest is not valid JSON. */
  NSA_ERROR_MANIFEST_SYNTAX = 4,
  /* The manifest is JSON but breaks the schema (missing, unknown or
     ill-typed field, bad expression, unbound symbol, ...). */
  NSA_ERROR_MANIFEST_SCHEMA = 5,
  /* No kernel of that name in the manifest. */
  NSA_ERROR_UNKNOWN_KERNEL = 6,
  /* nsa_find_kernel: no kernel implements that op for that configuration. */
  NSA_ERROR_NO_MATCHING_KERNEL = 7,
  /* The call's nsa_config differs from the kernel's configuration. */
  NSA_ERROR_CONFIG_MISMATCH = 8,
  /* num_args differs from the kernel's parameter count. */
  NSA_ERROR_ARG_COUNT = 9,
  /* An argument's kind differs from its parameter's kind (or is unknown). */
  NSA_ERROR_ARG_KIND = 10,
  /* A tensor with elements has a null data pointer. */
  NSA_ERROR_NULL_DATA = 11,
  /* A tensor's dtype differs from the parameter's (or is unknown). */
  NSA_ERROR_DTYPE_MISMATCH = 12,
  /* A tensor's rank differs from the parameter's (or is out of range). */
  NSA_ERROR_RANK_MISMATCH = 13,
  /* A tensor dimension differs from what the manifest's shape requires. */
  NSA_ERROR_SHAPE_MISMATCH = 14,
  /* A tensor is not row-major contiguous. */
  NSA_ERROR_NOT_CONTIGUOUS = 15,
  /* A tensor's data pointer is not aligned as the parameter requires. */
  NSA_ERROR_MISALIGNED = 16,
  /* A scalar argument differs from its value rule or does not fit. */
  NSA_ERROR_SCALAR_MISMATCH = 17,
  /* An expression could not be parsed or evaluated (division by zero,
     overflow). */
  NSA_ERROR_EXPRESSION = 18,
  /* The grid is negative or exceeds CUDA's limits. */
  NSA_ERROR_GRID = 19,
  /* libcuda.so.1 (or $NSA_CUDA_LIBRARY) cannot be opened. */
  NSA_ERROR_NO_DRIVER = 20,
  /* The driver library lacks a function the runtime needs. */
  NSA_ERROR_DRIVER_SYMBOL = 21,
  /* The driver rejected the module (PTX JIT or cubin load failed), or the
     module lacks the kernel. */
  NSA_ERROR_MODULE_LOAD = 22,
  /* The kernel needs more dynamic shared memory than the device allows. */
  NSA_ERROR_SHARED_MEMORY = 23,
  /* Any other CUDA driver call failed; the message names the call. */
  NSA_ERROR_CUDA = 24
} nsa_status;

/* Element types, spelled in the manifest as "bf16", "f16", "f32", "i32",
   "i64". */
typedef enum nsa_dtype {
  NSA_DTYPE_BF16 = 0,
  NSA_DTYPE_F16 = 1,
  NSA_DTYPE_F32 = 2,
  NSA_DTYPE_I32 = 3,
  NSA_DTYPE_I64 = 4
} nsa_dtype;

/* What an nsa_arg carries; the manifest's parameter kinds are "tensor",
   "i32", "i64" and "f32". */
typedef enum nsa_arg_kind {
  NSA_ARG_TENSOR = 0,
  NSA_ARG_I32 = 1,
  NSA_ARG_I64 = 2,
  NSA_ARG_F32 = 3,
  /* Only for a scalar parameter with a "value" rule: the runtime computes
     the value from the rule instead of checking the caller's. */
  NSA_ARG_AUTO = 4
} nsa_arg_kind;

/* A device tensor. `strides` are in elements and must describe row-major
   contiguity (strides of size-1 dimensions are ignored, as PyTorch does). */
typedef struct nsa_tensor {
  uint64_t data; /* CUdeviceptr; 0 only when the tensor has no elements */
  int32_t dtype; /* nsa_dtype */
  int32_t rank;  /* 0 .. NSA_MAX_RANK */
  int64_t shape[NSA_MAX_RANK];
  int64_t strides[NSA_MAX_RANK];
} nsa_tensor;

/* One kernel argument, in the order of the manifest's parameters. */
typedef struct nsa_arg {
  int32_t kind; /* nsa_arg_kind */
  int32_t reserved;
  nsa_tensor tensor;  /* NSA_ARG_TENSOR */
  int64_t int_value;  /* NSA_ARG_I32 (must fit int32), NSA_ARG_I64 */
  double float_value; /* NSA_ARG_F32 (passed as float) */
} nsa_arg;

/* The NSA configuration a caller expects a kernel to implement (SPEC.md,
   Configuration; G = HQ / HKV). The manifest may mark a field the kernel
   does not depend on as null; such fields are not compared. */
typedef struct nsa_config {
  int64_t l, d, l_sel, n, init, local, w;
  double scale; /* compared with a relative tolerance of 1e-6 */
  int64_t G, Dk, Dv;
  int32_t dtype; /* nsa_dtype of the activations: bf16 or f16 */
  int32_t reserved;
} nsa_config;

/* What a launch would do, computed without the driver. A grid with a zero
   dimension means there is nothing to compute; nsa_launch then returns
   NSA_SUCCESS without launching. */
typedef struct nsa_launch_plan {
  int64_t grid[3];
  int32_t block[3];
  int32_t shared_bytes;
} nsa_launch_plan;

typedef struct nsa_manifest nsa_manifest;

NSA_API int32_t nsa_runtime_abi_version(void);

/* "NSA_SUCCESS", "NSA_ERROR_SHAPE_MISMATCH", ...; "NSA_UNKNOWN_STATUS" for
   a value outside the enum. */
NSA_API const char *nsa_status_name(int32_t status);

/* The message of the most recent failing call on this thread ("" after a
   success). Valid until the next runtime call on this thread. */
NSA_API const char *nsa_last_error_message(void);

/* Reads and validates a manifest. Module paths in it are relative to the
   manifest's directory. */
NSA_API nsa_status nsa_manifest_load(const char *path, nsa_manifest **out);

/* The same from memory; `name` labels messages, `base_dir` anchors module
   paths. */
NSA_API nsa_status nsa_manifest_parse(const char *json, size_t length,
                                      const char *name, const char *base_dir,
                                      nsa_manifest **out);

/* Unloads the modules this manifest loaded; null is a no-op. */
NSA_API void nsa_manifest_destroy(nsa_manifest *manifest);

NSA_API nsa_status nsa_manifest_kernel_count(const nsa_manifest *manifest,
                                             int32_t *count);

/* The returned string lives as long as the manifest. */
NSA_API nsa_status nsa_manifest_kernel_name(const nsa_manifest *manifest,
                                            int32_t index, const char **name);

/* The first kernel implementing `op` (e.g. "window_attention") whose
   configuration matches `config`. */
NSA_API nsa_status nsa_find_kernel(const nsa_manifest *manifest, const char *op,
                                   const nsa_config *config, const char **name);

/* Checks the configuration and arguments against the kernel's manifest entry
   and evaluates its launch dimensions; never touches the driver. */
NSA_API nsa_status nsa_plan_launch(const nsa_manifest *manifest,
                                   const char *kernel, const nsa_config *config,
                                   const nsa_arg *args, int32_t num_args,
                                   nsa_launch_plan *plan);

/* nsa_plan_launch, then loads the kernel's module into the current CUDA
   context (retaining device 0's primary context when none is current) and
   launches on `stream` (a CUstream; null is the legacy default stream).
   Asynchronous: kernel faults surface at the caller's next synchronization. */
NSA_API nsa_status nsa_launch(nsa_manifest *manifest, const char *kernel,
                              const nsa_config *config, const nsa_arg *args,
                              int32_t num_args, void *stream);

/* Evaluates a manifest expression (docs/runtime-abi.md, Expressions) with
   `num_symbols` symbols bound to `values`. */
NSA_API nsa_status nsa_eval_expression(const char *expression,
                                       const char *const *symbols,
                                       const int64_t *values,
                                       int32_t num_symbols, int64_t *result);

#ifdef __cplusplus
}
#endif

#endif /* NSA_RUNTIME_H */
