// Opens the test kernel library (csrc/tests/test_kernels.c) for the tests.
#ifndef JAX_TRITON_CPU_TESTS_TEST_KERNELS_H_
#define JAX_TRITON_CPU_TESTS_TEST_KERNELS_H_

#include <dlfcn.h>

#include <string>

#include "kernel_abi.h"

namespace jtc::testing {

inline const std::string kTestKernels = JTC_TEST_KERNELS;

// The address of `symbol` in the test library (nullptr if absent).
inline void* TestSymbol(const char* symbol) {
  static void* handle = dlopen(JTC_TEST_KERNELS, RTLD_NOW | RTLD_LOCAL);
  return handle ? dlsym(handle, symbol) : nullptr;
}

// The launch trampoline `symbol` of the test library (nullptr if absent).
inline KernelLaunchFn TestKernel(const char* symbol) {
  return reinterpret_cast<KernelLaunchFn>(TestSymbol(symbol));
}

}  // namespace jtc::testing

#endif  // JAX_TRITON_CPU_TESTS_TEST_KERNELS_H_
