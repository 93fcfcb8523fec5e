//===- Check.h - A minimal test harness: one line per check -----*- C++ -*-===//
//
// No test framework: CI and the GPU machine have none, and lit only needs the
// final "N passed, M failed" line. Each check prints PASS or FAIL with its
// name; an expected error also prints the runtime's message, so the log
// shows every message a user would see.
//
//===----------------------------------------------------------------------===//

#ifndef NSA_RUNTIME_TEST_CHECK_H
#define NSA_RUNTIME_TEST_CHECK_H

#include "nsa_runtime.h"

#include <string>

namespace nsa::test {

void check(bool ok, const std::string &name, const std::string &detail = "");

/// Checks that a call returned `want` and, unless `needle` is empty, that
/// nsa_last_error_message() contains `needle`.
void expectStatus(nsa_status got, nsa_status want, const std::string &needle,
                  const std::string &name);

/// Prints a line that counts neither way (a check that cannot run here).
void skip(const std::string &name, const std::string &why);

/// Prints "N passed, M failed" and returns the process exit code.
int finish();

} // namespace nsa::test

#endif // NSA_RUNTIME_TEST_CHECK_H
