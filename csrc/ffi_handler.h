// XLA typed-FFI handler bundle for the `triton_cpu_kernel_call` custom call.
// Needs only the XLA FFI headers (no Python), so the GoogleTest binary links
// it as well as the nanobind module.
#ifndef JAX_TRITON_CPU_FFI_HANDLER_H_
#define JAX_TRITON_CPU_FFI_HANDLER_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "xla/ffi/api/ffi.h"

namespace jtc {

// Most kernel parameters one call may have (the per-call argument array
// lives on the stack).
inline constexpr int64_t kMaxKernelParams = 256;

// Type id and type info (with the deleter) of the per-call-site state; Python
// registers them with jax.ffi.register_ffi_type before the target.
XLA_FFI_TypeId* KernelStateTypeId();
const XLA_FFI_TypeInfo* KernelStateTypeInfo();

// What a call lowered for jax.export carries about one config's library
// (docs/abi.md): enough to get a library for this host anywhere.
struct PortableLibrary {
  std::string_view kernel_name;
  std::string_view library;        // path on the exporting machine
  std::string_view library_hash;
  std::string_view target;         // the CPU it was compiled for
  std::string_view library_bytes;  // base64
  std::string_view ttir;           // generic op form
  std::string_view compile_options;  // JSON
};

// Finds or builds a library for this host; sets *library and *hash, or
// returns an error message. Called at INSTANTIATE, never per call.
using LibraryResolver = std::string (*)(const PortableLibrary& portable,
                                        std::string* library,
                                        std::string* hash);

// Installed by the Python module (jax_triton_cpu.portable.resolve). Without
// one, exported calls load their library path as it is.
void SetLibraryResolver(LibraryResolver resolver);

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
