/*===- HeaderIsC.c - nsa_runtime.h compiles as C, with C's layouts ------===*\
|*                                                                          *|
|* ctypes and other C callers see the structs as a C compiler lays them     *|
|* out; the test compares these sizes with the C++ ones and with the sizes  *|
|* docs/runtime-abi.md promises.                                            *|
|*                                                                          *|
\*===----------------------------------------------------------------------===*/

#include "nsa_runtime.h"

size_t nsa_test_c_sizeof_tensor(void) { return sizeof(nsa_tensor); }
size_t nsa_test_c_sizeof_arg(void) { return sizeof(nsa_arg); }
size_t nsa_test_c_sizeof_config(void) { return sizeof(nsa_config); }
size_t nsa_test_c_sizeof_plan(void) { return sizeof(nsa_launch_plan); }
