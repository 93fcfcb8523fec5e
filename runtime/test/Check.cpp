//===- Check.cpp - A minimal test harness: one line per check -------------===//

#include "Check.h"

#include <cstdio>

namespace nsa::test {

static int Passed = 0;
static int Failed = 0;

void check(bool ok, const std::string &name, const std::string &detail) {
  ++(ok ? Passed : Failed);
  std::printf("%s %s%s%s\n", ok ? "PASS" : "FAIL", name.c_str(),
              detail.empty() ? "" : ": ", detail.c_str());
}

void expectStatus(nsa_status got, nsa_status want, const std::string &needle,
                  const std::string &name) {
  std::string message = nsa_last_error_message();
  bool ok = got == want && message.find(needle) != std::string::npos;
  std::string detail = std::string("[") + nsa_status_name(got) + "] " + message;
  if (!ok) {
    detail += std::string("; wanted [") + nsa_status_name(want) + "]";
    if (!needle.empty())
      detail += " containing \"" + needle + "\"";
  }
  check(ok, name, detail);
}

void skip(const std::string &name, const std::string &why) {
  std::printf("SKIP %s: %s\n", name.c_str(), why.c_str());
}

int finish() {
  std::printf("%d passed, %d failed\n", Passed, Failed);
  std::fflush(stdout);
  return Failed == 0 ? 0 : 1;
}

} // namespace nsa::test
