//===- Manifest.h - The kernel manifest, parsed and checked -----*- C++ -*-===//
//
// The in-memory form of the manifest nsa-translate writes next to its PTX or
// cubin (docs/runtime-abi.md). Parsing checks the whole schema up front,
// including that every symbol an expression reads is bound by something, so
// a launch can only fail on the caller's arguments, never on the manifest.
//
//===----------------------------------------------------------------------===//

#ifndef NSA_RUNTIME_MANIFEST_H
#define NSA_RUNTIME_MANIFEST_H

#include "Expression.h"

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace nsa::rt {

/// The integer fields of an NSA configuration, in nsa_config's order. Each is
/// also a symbol that the kernel's expressions may read.
struct ConfigIntField {
  const char *name;
  int64_t nsa_config::*member;
  int64_t minimum;
};
constexpr size_t NumConfigInts = 10;
extern const std::array<ConfigIntField, NumConfigInts> ConfigIntFields;

/// A kernel's configuration; an empty optional is the manifest's null: the
/// kernel does not depend on that field.
struct KernelConfig {
  std::array<std::optional<int64_t>, NumConfigInts> ints;
  std::optional<double> scale;
  std::optional<nsa_dtype> dtype;
};

enum class ParamKind { Tensor, I32, I64, F32 };

struct Param {
  std::string name;
  ParamKind kind = ParamKind::Tensor;
  // Tensors.
  nsa_dtype dtype = NSA_DTYPE_BF16;
  std::vector<Expression> shape;
  int64_t align = 1;
  // Scalars: the value rule, when the manifest gives one.
  std::optional<Expression> intValue;
  std::optional<double> floatValue;
};

struct Kernel {
  std::string name;
  std::string op;
  /// The module file, already joined to the manifest's directory.
  std::string modulePath;
  KernelConfig config;
  /// Symbols computed from the bound ones, in file order.
  std::vector<std::pair<std::string, Expression>> derived;
  std::vector<Param> params;
  std::array<Expression, 3> grid;
  std::array<int32_t, 3> block = {1, 1, 1};
  int32_t sharedBytes = 0;
};

struct Manifest {
  std::string sourceName;
  std::string target;
  std::vector<Kernel> kernels;

  const Kernel *find(std::string_view name) const;
};

/// Parses and checks a manifest. JSON errors are NSA_ERROR_MANIFEST_SYNTAX,
/// schema errors NSA_ERROR_MANIFEST_SCHEMA; both start with
/// "<sourceName>:<line>:<column>:".
Status parseManifest(std::string_view json, const std::string &sourceName,
                     const std::string &baseDir, Manifest &result);

} // namespace nsa::rt

#endif // NSA_RUNTIME_MANIFEST_H
