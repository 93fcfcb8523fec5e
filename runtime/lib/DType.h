//===- DType.h - Element types: names and sizes -----------------*- C++ -*-===//

#ifndef NSA_RUNTIME_DTYPE_H
#define NSA_RUNTIME_DTYPE_H

#include "nsa_runtime.h"

#include <cstdint>
#include <string_view>

namespace nsa::rt {

/// The manifest's spelling, or null for a value outside nsa_dtype.
inline const char *dtypeName(int32_t dtype) {
  switch (dtype) {
  case NSA_DTYPE_BF16:
    return "bf16";
  case NSA_DTYPE_F16:
    return "f16";
  case NSA_DTYPE_F32:
    return "f32";
  case NSA_DTYPE_I32:
    return "i32";
  case NSA_DTYPE_I64:
    return "i64";
  }
  return nullptr;
}

inline bool parseDtype(std::string_view name, nsa_dtype &dtype) {
  for (int32_t d = NSA_DTYPE_BF16; d <= NSA_DTYPE_I64; ++d) {
    if (name == dtypeName(d)) {
      dtype = static_cast<nsa_dtype>(d);
      return true;
    }
  }
  return false;
}

inline int64_t dtypeSize(nsa_dtype dtype) {
  switch (dtype) {
  case NSA_DTYPE_BF16:
  case NSA_DTYPE_F16:
    return 2;
  case NSA_DTYPE_F32:
  case NSA_DTYPE_I32:
    return 4;
  case NSA_DTYPE_I64:
    return 8;
  }
  return 0;
}

} // namespace nsa::rt

#endif // NSA_RUNTIME_DTYPE_H
