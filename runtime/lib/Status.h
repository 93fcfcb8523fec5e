//===- Status.h - Error code plus message, passed by value ------*- C++ -*-===//
//
// Every internal function reports failure as a Status: the C API's error code
// and the full message for nsa_last_error_message(). The runtime is built
// without exceptions (it sits behind a C ABI), so errors travel as values.
//
//===----------------------------------------------------------------------===//

#ifndef NSA_RUNTIME_STATUS_H
#define NSA_RUNTIME_STATUS_H

#include "nsa_runtime.h"

#include <string>

namespace nsa::rt {

class [[nodiscard]] Status {
public:
  Status() = default;
  Status(nsa_status code, std::string message)
      : Code(code), Message(std::move(message)) {}

  static Status success() { return Status(); }

  bool ok() const { return Code == NSA_SUCCESS; }
  nsa_status code() const { return Code; }
  const std::string &message() const { return Message; }

private:
  nsa_status Code = NSA_SUCCESS;
  std::string Message;
};

/// printf into a std::string.
std::string format(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/// Stores `status`'s message as this thread's last error and returns its code.
nsa_status report(const Status &status);

/// Empties this thread's last error; every C entry point starts with it.
void clearLastError();

const char *lastErrorMessage();

} // namespace nsa::rt

#endif // NSA_RUNTIME_STATUS_H
