// XLA typed-FFI handler bundle for the `triton_cpu_kernel_call` custom call.
// Needs only the XLA FFI headers (no Python), so the GoogleTest binary links
// it as well as the nanobind module.
#ifndef JAX_TRITON_CPU_FFI_HANDLER_H_
#define JAX_TRITON_CPU_FFI_HANDLER_H_

#include <cstdint>

#include "xla/ffi/api/ffi.h"

namespace jtc {

// Most kernel parameters one call may have (the per-call argument array
// lives on the stack).
inline constexpr int64_t kMaxKernelParams = 256;

// Type id and type info (with the deleter) of the per-call-site state; Python
// registers them with jax.ffi.register_ffi_type before the target.
XLA_FFI_TypeId* KernelStateTypeId();
const XLA_FFI_TypeInfo* KernelStateTypeInfo();

struct Counters {
  int64_t instantiate_calls;
  int64_t execute_calls;
  int64_t dlopen_calls;
  int64_t autotune_runs;  // call sites whose configs were timed
};
Counters GetCounters();

}  // namespace jtc

// INSTANTIATE: decodes and checks the attributes, loads the libraries, builds
// the state.  EXECUTE: binds the buffers and launches the grid; the first
// EXECUTE of an autotuned call site times its configs first (docs/abi.md).
XLA_FFI_DECLARE_HANDLER_SYMBOL(TritonCpuKernelCallInstantiate);
XLA_FFI_DECLARE_HANDLER_SYMBOL(TritonCpuKernelCallExecute);

#endif  // JAX_TRITON_CPU_FFI_HANDLER_H_
