// nanobind module jax_triton_cpu._native: hands the FFI handler and its state
// type to Python as PyCapsules for jax.ffi registration.
#include <nanobind/nanobind.h>

#include "ffi_handler.h"
#include "portable_binding.h"

namespace nb = nanobind;

namespace {

nb::capsule Capsule(const void* pointer) {
  return nb::capsule(const_cast<void*>(pointer));
}

}  // namespace

NB_MODULE(_native, m) {
  jtc::BindLibraryResolver(m);
  m.def(
      "registrations",
      []() {
        // A stateful handler is registered as a dict stage -> capsule.
        nb::dict stages;
        stages["instantiate"] =
            Capsule(reinterpret_cast<void*>(TritonCpuKernelCallInstantiate));
        stages["execute"] =
            Capsule(reinterpret_cast<void*>(TritonCpuKernelCallExecute));
        nb::dict targets;
        targets["triton_cpu_kernel_call"] = stages;
        return targets;
      },
      "FFI targets: name -> capsule or dict of stage capsules.");
  m.def(
      "kernel_state_type",
      []() {
        nb::dict type;
        type["type_id"] = Capsule(jtc::KernelStateTypeId());
        type["type_info"] = Capsule(jtc::KernelStateTypeInfo());
        return type;
      },
      "Type registration of the handler state, for jax.ffi.register_ffi_type.");
  m.def(
      "counters",
      []() {
        jtc::Counters c = jtc::GetCounters();
        nb::dict d;
        d["instantiate_calls"] = c.instantiate_calls;
        d["execute_calls"] = c.execute_calls;
        d["dlopen_calls"] = c.dlopen_calls;
        d["autotune_runs"] = c.autotune_runs;
        return d;
      },
      "Process-wide counts of handler stages, dlopen calls and autotunings "
      "(for tests).");
}
