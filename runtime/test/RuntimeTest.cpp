//===- RuntimeTest.cpp - The runtime's unit tests, no GPU needed ----------===//
//
// Prints one line per check and "N passed, M failed"; exits non-zero on any
// failure. Run by CTest and by test/Runtime/runtime.test under lit.
//
//===----------------------------------------------------------------------===//

#include "Check.h"

#include <cstddef>

extern "C" {
size_t nsa_test_c_sizeof_tensor(void);
size_t nsa_test_c_sizeof_arg(void);
size_t nsa_test_c_sizeof_config(void);
size_t nsa_test_c_sizeof_plan(void);
}

namespace nsa::test {
void runExpressionTests();
void runManifestTests();
void runValidationTests();
void runDriverTests();
} // namespace nsa::test

using namespace nsa::test;

static void runLayoutTests() {
  // The sizes docs/runtime-abi.md gives for ctypes mirrors.
  check(sizeof(nsa_tensor) == 144 && nsa_test_c_sizeof_tensor() == 144,
        "layout: nsa_tensor is 144 bytes in C and C++");
  check(sizeof(nsa_arg) == 168 && nsa_test_c_sizeof_arg() == 168,
        "layout: nsa_arg is 168 bytes in C and C++");
  check(sizeof(nsa_config) == 96 && nsa_test_c_sizeof_config() == 96,
        "layout: nsa_config is 96 bytes in C and C++");
  check(sizeof(nsa_launch_plan) == 40 && nsa_test_c_sizeof_plan() == 40,
        "layout: nsa_launch_plan is 40 bytes in C and C++");
}

int main() {
  runLayoutTests();
  runExpressionTests();
  runManifestTests();
  runValidationTests();
  runDriverTests();
  return finish();
}
