// Binds set_library_resolver into the nanobind module (portable_binding.cc).
#ifndef JAX_TRITON_CPU_PORTABLE_BINDING_H_
#define JAX_TRITON_CPU_PORTABLE_BINDING_H_

#include <nanobind/nanobind.h>

namespace jtc {
void BindLibraryResolver(nanobind::module_& m);
}  // namespace jtc

#endif  // JAX_TRITON_CPU_PORTABLE_BINDING_H_
