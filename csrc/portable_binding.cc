// Python side of the library resolver (ffi_handler.h): INSTANTIATE of an
// exported call asks jax_triton_cpu.portable.resolve for a library for this
// host, holding the GIL only for that call.
#include "portable_binding.h"

#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>

#include <string>
#include <tuple>

#include "ffi_handler.h"

namespace nb = nanobind;

namespace jtc {
namespace {

// Never freed: XLA may instantiate a call while the interpreter shuts down,
// and a static nb::object would be destroyed after Python is gone.
nb::callable* g_resolve = nullptr;

nb::str Str(std::string_view s) { return nb::str(s.data(), s.size()); }

std::string Resolve(const PortableLibrary& p, std::string* library,
                    std::string* hash) {
  nb::gil_scoped_acquire gil;
  try {
    // resolve(...) -> (library, hash, error); error is "" on success.
    auto [path, digest, error] =
        nb::cast<std::tuple<std::string, std::string, std::string>>(
            (*g_resolve)(Str(p.kernel_name), Str(p.library),
                         Str(p.library_hash), Str(p.target),
                         Str(p.library_bytes), Str(p.ttir),
                         Str(p.compile_options)));
    if (!error.empty()) return error;
    *library = std::move(path);
    *hash = std::move(digest);
    return "";
  } catch (const std::exception& e) {
    return std::string("the library resolver failed: ") + e.what();
  }
}

}  // namespace

void BindLibraryResolver(nb::module_& m) {
  m.def(
      "set_library_resolver",
      [](nb::callable resolve) {
        if (g_resolve == nullptr) g_resolve = new nb::callable();
        *g_resolve = std::move(resolve);
        SetLibraryResolver(Resolve);
      },
      "Installs resolve(kernel_name, library, library_hash, target, "
      "library_bytes, ttir, compile_options) -> (library, hash, error), "
      "called when XLA instantiates an exported call.");
}

}  // namespace jtc
