// nanobind module jax_triton_cpu._native: hands the FFI handler and its state
// type to Python as PyCapsules for jax.ffi registration, and gives the Triton
// backend (python/jax_triton_cpu_backend) the same library cache and
// grid launcher as the handler.
#include <nanobind/nanobind.h>
#include <nanobind/stl/string.h>

#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "ffi_handler.h"
#include "launcher.h"
#include "library_cache.h"
#include "portable_binding.h"

namespace nb = nanobind;

namespace {

nb::capsule Capsule(const void* pointer) {
  return nb::capsule(const_cast<void*>(pointer));
}

// One kernel library's trampoline, loaded for the Triton backend's launcher.
class Kernel {
 public:
  Kernel(const std::string& path, const std::string& hash,
         const std::string& symbol, std::string name)
      : name_(std::move(name)) {
    void* handle = nullptr;
    void* address = nullptr;
    std::string err = jtc::LibraryCache::Global().Load(path, hash, &handle);
    if (err.empty()) {
      err = jtc::LibraryCache::FindSymbol(handle, path, symbol, &address);
    }
    if (!err.empty()) throw std::runtime_error(err);
    launch_ = reinterpret_cast<jtc::KernelLaunchFn>(address);
    void* symbol_address = nullptr;
    if (jtc::LibraryCache::FindSymbol(handle, path, symbol + "_message",
                                      &symbol_address)
            .empty()) {
      message_ = reinterpret_cast<jtc::KernelMessageFn>(symbol_address);
    }
    symbol_address = nullptr;
    jtc::LibraryCache::FindSymbol(handle, path, symbol + "_program",
                                  &symbol_address);
    code_ = jtc::CodeOf(address,
                        reinterpret_cast<jtc::KernelProgramFn>(symbol_address));
  }

  // `slots` holds one little-endian 64-bit slot per kernel parameter (a
  // pointer's address or a scalar's bits), then one per parameter with its
  // buffer's extent in bytes (docs/abi.md: args[P + i]).  Runs without the GIL; a failed
  // program or a fault of kernel code raises RuntimeError.
  void Launch(nb::bytes slots, int64_t gx, int64_t gy, int64_t gz,
              int num_threads) {
    if (gx == 0 || gy == 0 || gz == 0) return;  // an empty grid runs nothing
    const int64_t dims[3] = {gx, gy, gz};
    jtc::Grid grid;
    if (std::string err = jtc::MakeGrid(dims, 3, &grid); !err.empty()) {
      throw std::invalid_argument("kernel " + name_ + ": " + err);
    }
    const size_t n = slots.size() / sizeof(uint64_t);
    std::vector<uint64_t> values(n);
    if (n > 0) std::memcpy(values.data(), slots.c_str(), n * sizeof(uint64_t));
    std::vector<void*> args(n);
    for (size_t i = 0; i < n; ++i) args[i] = &values[i];
    std::string message;
    int32_t status;
    {
      nb::gil_scoped_release release;
      status = jtc::LaunchGrid(launch_, args.data(), grid, num_threads,
                               message_, &message, &code_);
    }
    if (status == jtc::kFaultStatus) {
      throw std::runtime_error("kernel " + name_ + " faulted: " + message);
    }
    if (status != 0) {
      throw std::runtime_error(!message.empty() ? message
                                                : "kernel " + name_ +
                                                      " failed with status " +
                                                      std::to_string(status));
    }
  }

 private:
  std::string name_;
  jtc::KernelLaunchFn launch_ = nullptr;
  jtc::KernelMessageFn message_ = nullptr;
  jtc::KernelCode code_;
};

}  // namespace

NB_MODULE(_native, m) {
  // Triton's kernel caches hold Kernel objects until the interpreter is gone.
  nb::set_leak_warnings(false);
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
  nb::class_<Kernel>(m, "Kernel",
                     "A kernel library's launch trampoline (docs/abi.md).")
      .def(nb::init<const std::string&, const std::string&,
                    const std::string&, std::string>(),
           nb::arg("path"), nb::arg("hash"), nb::arg("symbol"),
           nb::arg("name"),
           "Loads the library (once per content hash) and finds `symbol`.")
      .def("launch", &Kernel::Launch, nb::arg("slots"), nb::arg("gx"),
           nb::arg("gy"), nb::arg("gz"), nb::arg("num_threads"),
           "Runs the grid with the OpenMP launcher (num_threads 0: all "
           "cores).");
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
