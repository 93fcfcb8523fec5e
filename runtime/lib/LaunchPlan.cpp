//===- LaunchPlan.cpp - A call's arguments checked against a kernel -------===//

#include "LaunchPlan.h"

#include "DType.h"

#include <climits>
#include <cmath>
#include <set>

namespace nsa::rt {

namespace {

// Scales are printed by the compiler and recomputed by the caller; the
// kernel uses them in f32, so agreement to f32 precision is agreement.
constexpr double FloatTolerance = 1e-6;

bool closeEnough(double expected, double got) {
  return std::fabs(expected - got) <= FloatTolerance * std::fabs(expected);
}

std::string shapeText(const Param &param) {
  std::string text = "[";
  for (size_t i = 0; i < param.shape.size(); ++i)
    text += (i ? ", " : "") + param.shape[i].text();
  return text + "]";
}

std::string shapeText(const nsa_tensor &tensor) {
  std::string text = "[";
  for (int32_t i = 0; i < tensor.rank; ++i)
    text += format("%s%lld", i ? ", " : "",
                   static_cast<long long>(tensor.shape[i]));
  return text + "]";
}

const char *argKindName(int32_t kind) {
  switch (kind) {
  case NSA_ARG_TENSOR:
    return "a tensor";
  case NSA_ARG_I32:
    return "an i32";
  case NSA_ARG_I64:
    return "an i64";
  case NSA_ARG_F32:
    return "an f32";
  case NSA_ARG_AUTO:
    return "NSA_ARG_AUTO";
  }
  return nullptr;
}

/// How messages name the argument a parameter of `kind` needs.
const char *paramKindPhrase(ParamKind kind) {
  switch (kind) {
  case ParamKind::Tensor:
    return "a tensor";
  case ParamKind::I32:
    return "an i32";
  case ParamKind::I64:
    return "an i64";
  case ParamKind::F32:
    return "an f32";
  }
  return "a parameter";
}

int32_t expectedArgKind(ParamKind kind) {
  switch (kind) {
  case ParamKind::Tensor:
    return NSA_ARG_TENSOR;
  case ParamKind::I32:
    return NSA_ARG_I32;
  case ParamKind::I64:
    return NSA_ARG_I64;
  case ParamKind::F32:
    return NSA_ARG_F32;
  }
  return -1;
}

// Checks one call against one kernel. Symbols are bound in three steps:
// the kernel's fixed configuration, then every tensor dimension that is a
// bare symbol (first occurrence wins), then the derived symbols; only then
// is every dimension compared, so a shape may use symbols that a later
// parameter binds.
class Planner {
public:
  Planner(const Kernel &kernel, const nsa_arg *args, LaunchPlan &plan)
      : K(kernel), Args(args), Plan(plan) {}

  Status run(int32_t numArgs) {
    if (numArgs != static_cast<int32_t>(K.params.size())) {
      std::string names;
      for (const Param &param : K.params)
        names += (names.empty() ? "" : ", ") + param.name;
      return Status(NSA_ERROR_ARG_COUNT,
                    format("kernel '%s' takes %zu arguments (%s), got %d",
                           K.name.c_str(), K.params.size(), names.c_str(),
                           numArgs));
    }
    bindConfig();
    Plan.slots.assign(K.params.size(), ArgSlot{});
    for (size_t i = 0; i < K.params.size(); ++i)
      if (Status s = checkKind(i); !s.ok())
        return s;
    for (size_t i = 0; i < K.params.size(); ++i)
      if (K.params[i].kind == ParamKind::Tensor)
        if (Status s = checkTensor(i); !s.ok())
          return s;
    if (Status s = bindDerived(); !s.ok())
      return s;
    for (size_t i = 0; i < K.params.size(); ++i)
      if (K.params[i].kind == ParamKind::Tensor)
        if (Status s = checkShape(i); !s.ok())
          return s;
    for (size_t i = 0; i < K.params.size(); ++i)
      if (K.params[i].kind != ParamKind::Tensor)
        if (Status s = checkScalar(i); !s.ok())
          return s;
    return planDims();
  }

private:
  const Kernel &K;
  const nsa_arg *Args;
  LaunchPlan &Plan;
  SymbolTable Symbols;
  /// Where each symbol's value came from, for messages.
  std::map<std::string, std::string, std::less<>> Origins;

  std::string paramLabel(size_t i) const {
    return format("kernel '%s' parameter '%s' (#%zu)", K.name.c_str(),
                  K.params[i].name.c_str(), i);
  }

  void bindConfig() {
    for (size_t i = 0; i < NumConfigInts; ++i) {
      if (!K.config.ints[i])
        continue;
      Symbols[ConfigIntFields[i].name] = *K.config.ints[i];
      Origins[ConfigIntFields[i].name] = "the kernel's configuration";
    }
  }

  bool isDerived(const std::string &symbol) const {
    for (const auto &[name, expression] : K.derived)
      if (name == symbol)
        return true;
    return false;
  }

  /// " (HKV = 4 from parameter 'k' dimension 2)" for the symbols of
  /// `expression`; empty when it reads none.
  std::string explain(const Expression &expression) const {
    std::string text;
    std::set<std::string> seen;
    for (const std::string &symbol : expression.symbols()) {
      if (!seen.insert(symbol).second)
        continue;
      auto value = Symbols.find(symbol);
      auto origin = Origins.find(symbol);
      if (value == Symbols.end() || origin == Origins.end())
        continue;
      text += format("%s%s = %lld from %s", text.empty() ? "" : "; ",
                     symbol.c_str(), static_cast<long long>(value->second),
                     origin->second.c_str());
    }
    return text.empty() ? "" : " (" + text + ")";
  }

  Status checkKind(size_t i) {
    const Param &param = K.params[i];
    int32_t kind = Args[i].kind;
    const char *given = argKindName(kind);
    if (!given)
      return Status(NSA_ERROR_ARG_KIND, format("%s: unknown argument kind %d",
                                               paramLabel(i).c_str(), kind));
    bool hasRule = param.intValue || param.floatValue;
    if (kind == NSA_ARG_AUTO && param.kind != ParamKind::Tensor && !hasRule)
      return Status(NSA_ERROR_ARG_KIND,
                    format("%s has no value rule in the manifest; pass %s",
                           paramLabel(i).c_str(), paramKindPhrase(param.kind)));
    if (kind != NSA_ARG_AUTO || param.kind == ParamKind::Tensor)
      if (kind != expectedArgKind(param.kind))
        return Status(NSA_ERROR_ARG_KIND,
                      format("%s is %s, got %s", paramLabel(i).c_str(),
                             paramKindPhrase(param.kind), given));
    return Status::success();
  }

  Status checkTensor(size_t i) {
    const Param &param = K.params[i];
    const nsa_tensor &tensor = Args[i].tensor;
    std::string label = paramLabel(i);
    const char *dtype = dtypeName(tensor.dtype);
    if (!dtype)
      return Status(NSA_ERROR_DTYPE_MISMATCH,
                    format("%s: unknown dtype code %d, expected %s",
                           label.c_str(), tensor.dtype,
                           dtypeName(param.dtype)));
    if (tensor.dtype != param.dtype)
      return Status(NSA_ERROR_DTYPE_MISMATCH,
                    format("%s: expected dtype %s, got %s", label.c_str(),
                           dtypeName(param.dtype), dtype));
    if (tensor.rank < 0 || tensor.rank > NSA_MAX_RANK)
      return Status(NSA_ERROR_RANK_MISMATCH,
                    format("%s: rank %d is outside [0, %d]", label.c_str(),
                           tensor.rank, NSA_MAX_RANK));
    if (static_cast<size_t>(tensor.rank) != param.shape.size())
      return Status(NSA_ERROR_RANK_MISMATCH,
                    format("%s: expected rank %zu %s, got rank %d %s",
                           label.c_str(), param.shape.size(),
                           shapeText(param).c_str(), tensor.rank,
                           shapeText(tensor).c_str()));
    int64_t elements = 1;
    bool overflow = false;
    for (int32_t d = 0; d < tensor.rank; ++d) {
      if (tensor.shape[d] < 0)
        return Status(NSA_ERROR_SHAPE_MISMATCH,
                      format("%s dimension %d (%s): size %lld is negative",
                             label.c_str(), d, param.shape[d].text().c_str(),
                             static_cast<long long>(tensor.shape[d])));
      overflow |= __builtin_mul_overflow(elements, tensor.shape[d], &elements);
    }
    if (overflow ||
        __builtin_mul_overflow(elements, dtypeSize(param.dtype), &elements))
      return Status(NSA_ERROR_SHAPE_MISMATCH,
                    format("%s: shape %s has more bytes than fit in 64 bits",
                           label.c_str(), shapeText(tensor).c_str()));
    if (elements > 0) {
      if (tensor.data == 0)
        return Status(NSA_ERROR_NULL_DATA,
                      format("%s: null data pointer for a tensor of shape %s",
                             label.c_str(), shapeText(tensor).c_str()));
      if (Status s = checkContiguous(i); !s.ok())
        return s;
      if (tensor.data % param.align != 0)
        return Status(NSA_ERROR_MISALIGNED,
                      format("%s: data pointer 0x%llx is not %lld-byte aligned",
                             label.c_str(),
                             static_cast<unsigned long long>(tensor.data),
                             static_cast<long long>(param.align)));
    }
    for (int32_t d = 0; d < tensor.rank; ++d) {
      const std::string *symbol = param.shape[d].bareSymbol();
      if (!symbol || Symbols.count(*symbol) || isDerived(*symbol))
        continue;
      Symbols[*symbol] = tensor.shape[d];
      Origins[*symbol] =
          format("parameter '%s' dimension %d", param.name.c_str(), d);
    }
    Plan.slots[i].pointer = tensor.data;
    return Status::success();
  }

  // Row-major as PyTorch's is_contiguous() sees it: a size-1 dimension's
  // stride is never used to address anything, so any value is accepted.
  Status checkContiguous(size_t i) {
    const nsa_tensor &tensor = Args[i].tensor;
    int64_t expected = 1;
    for (int32_t d = tensor.rank - 1; d >= 0; --d) {
      if (tensor.shape[d] != 1 && tensor.strides[d] != expected)
        return Status(NSA_ERROR_NOT_CONTIGUOUS,
                      format("%s is not row-major contiguous: dimension %d has "
                             "stride %lld, expected %lld (shape %s)",
                             paramLabel(i).c_str(), d,
                             static_cast<long long>(tensor.strides[d]),
                             static_cast<long long>(expected),
                             shapeText(tensor).c_str()));
      expected *= tensor.shape[d];
    }
    return Status::success();
  }

  Status bindDerived() {
    for (const auto &[name, expression] : K.derived) {
      int64_t value;
      Status s = expression.evaluate(Symbols, value);
      if (!s.ok())
        return Status(s.code(),
                      format("kernel '%s': derived symbol '%s': %s%s",
                             K.name.c_str(), name.c_str(), s.message().c_str(),
                             explain(expression).c_str()));
      Symbols[name] = value;
      Origins[name] = format("\"%s\"", expression.text().c_str());
    }
    return Status::success();
  }

  Status checkShape(size_t i) {
    const Param &param = K.params[i];
    const nsa_tensor &tensor = Args[i].tensor;
    for (int32_t d = 0; d < tensor.rank; ++d) {
      const Expression &dim = param.shape[d];
      int64_t expected;
      Status s = dim.evaluate(Symbols, expected);
      if (!s.ok())
        return Status(s.code(),
                      format("%s dimension %d: %s%s", paramLabel(i).c_str(), d,
                             s.message().c_str(), explain(dim).c_str()));
      if (expected == tensor.shape[d])
        continue;
      return Status(NSA_ERROR_SHAPE_MISMATCH,
                    format("%s dimension %d (%s): expected %lld, got %lld%s; "
                           "shape %s, expected %s",
                           paramLabel(i).c_str(), d, dim.text().c_str(),
                           static_cast<long long>(expected),
                           static_cast<long long>(tensor.shape[d]),
                           explain(dim).c_str(), shapeText(tensor).c_str(),
                           shapeText(param).c_str()));
    }
    return Status::success();
  }

  Status checkScalar(size_t i) {
    const Param &param = K.params[i];
    const nsa_arg &arg = Args[i];
    std::string label = paramLabel(i);
    bool automatic = arg.kind == NSA_ARG_AUTO;
    if (param.kind == ParamKind::F32) {
      if (!automatic && !std::isfinite(arg.float_value))
        return Status(
            NSA_ERROR_SCALAR_MISMATCH,
            format("%s: %g is not finite", label.c_str(), arg.float_value));
      double value = automatic ? *param.floatValue : arg.float_value;
      if (param.floatValue && !closeEnough(*param.floatValue, value))
        return Status(NSA_ERROR_SCALAR_MISMATCH,
                      format("%s: expected %.9g, got %.9g", label.c_str(),
                             *param.floatValue, value));
      Plan.slots[i].f32 = static_cast<float>(value);
      return Status::success();
    }
    int64_t value = arg.int_value;
    if (param.intValue) {
      int64_t expected;
      Status s = param.intValue->evaluate(Symbols, expected);
      if (!s.ok())
        return Status(s.code(),
                      format("%s: %s%s", label.c_str(), s.message().c_str(),
                             explain(*param.intValue).c_str()));
      if (!automatic && value != expected)
        return Status(NSA_ERROR_SCALAR_MISMATCH,
                      format("%s: expected %s = %lld, got %lld%s",
                             label.c_str(), param.intValue->text().c_str(),
                             static_cast<long long>(expected),
                             static_cast<long long>(value),
                             explain(*param.intValue).c_str()));
      value = expected;
    }
    if (param.kind == ParamKind::I32) {
      if (value < INT32_MIN || value > INT32_MAX)
        return Status(NSA_ERROR_SCALAR_MISMATCH,
                      format("%s: %lld does not fit in i32", label.c_str(),
                             static_cast<long long>(value)));
      Plan.slots[i].i32 = static_cast<int32_t>(value);
    } else {
      Plan.slots[i].i64 = value;
    }
    return Status::success();
  }

  Status planDims() {
    // cuLaunchKernel's limits: x up to 2^31 - 1, y and z up to 65535.
    const int64_t limits[3] = {INT32_MAX, 65535, 65535};
    const char axes[3] = {'x', 'y', 'z'};
    for (int i = 0; i < 3; ++i) {
      int64_t value;
      const Expression &dim = K.grid[i];
      Status s = dim.evaluate(Symbols, value);
      if (!s.ok())
        return Status(s.code(),
                      format("kernel '%s' grid %c: %s%s", K.name.c_str(),
                             axes[i], s.message().c_str(),
                             explain(dim).c_str()));
      if (value < 0 || value > limits[i])
        return Status(NSA_ERROR_GRID,
                      format("kernel '%s' grid %c = %s is %lld, outside [0, "
                             "%lld]%s",
                             K.name.c_str(), axes[i], dim.text().c_str(),
                             static_cast<long long>(value),
                             static_cast<long long>(limits[i]),
                             explain(dim).c_str()));
      Plan.dims.grid[i] = value;
      Plan.dims.block[i] = K.block[i];
    }
    Plan.dims.shared_bytes = K.sharedBytes;
    return Status::success();
  }
};

} // namespace

Status checkConfig(const Kernel &kernel, const nsa_config &config) {
  auto mismatch = [&](const char *field, const std::string &expected,
                      const std::string &got) {
    return Status(NSA_ERROR_CONFIG_MISMATCH,
                  format("kernel '%s' was compiled for %s = %s, the call asks "
                         "for %s = %s",
                         kernel.name.c_str(), field, expected.c_str(), field,
                         got.c_str()));
  };
  for (size_t i = 0; i < NumConfigInts; ++i) {
    const ConfigIntField &info = ConfigIntFields[i];
    int64_t got = config.*info.member;
    if (kernel.config.ints[i] && *kernel.config.ints[i] != got)
      return mismatch(info.name, std::to_string(*kernel.config.ints[i]),
                      std::to_string(got));
  }
  if (kernel.config.scale && !closeEnough(*kernel.config.scale, config.scale))
    return mismatch("scale", format("%.9g", *kernel.config.scale),
                    format("%.9g", config.scale));
  if (kernel.config.dtype && *kernel.config.dtype != config.dtype) {
    const char *got = dtypeName(config.dtype);
    return mismatch("dtype", dtypeName(*kernel.config.dtype),
                    got ? got : format("<unknown code %d>", config.dtype));
  }
  return Status::success();
}

Status planLaunch(const Kernel &kernel, const nsa_config &config,
                  const nsa_arg *args, int32_t numArgs, LaunchPlan &plan) {
  plan = LaunchPlan();
  if (Status s = checkConfig(kernel, config); !s.ok())
    return s;
  return Planner(kernel, args, plan).run(numArgs);
}

} // namespace nsa::rt
