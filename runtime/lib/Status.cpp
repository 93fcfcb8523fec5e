//===- Status.cpp - Thread-local last error -------------------------------===//

#include "Status.h"

#include <cstdarg>
#include <cstdio>

namespace nsa::rt {

// Per thread, so that concurrent launches (PyTorch runs autograd on its own
// threads) never read each other's messages.
static thread_local std::string LastError;

std::string format(const char *fmt, ...) {
  va_list args;
  va_start(args, fmt);
  va_list copy;
  va_copy(copy, args);
  int size = std::vsnprintf(nullptr, 0, fmt, copy);
  va_end(copy);
  std::string result(size > 0 ? size : 0, '\0');
  if (size > 0)
    std::vsnprintf(result.data(), result.size() + 1, fmt, args);
  va_end(args);
  return result;
}

nsa_status report(const Status &status) {
  LastError = status.message();
  return status.code();
}

void clearLastError() { LastError.clear(); }

const char *lastErrorMessage() { return LastError.c_str(); }

} // namespace nsa::rt
