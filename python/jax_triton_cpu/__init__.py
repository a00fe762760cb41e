"""jax_triton_cpu: run Triton kernels inside jax.jit on CPU, with jax-triton's `triton_call` API.

The FFI target "triton_cpu_kernel_call" is registered by `jax_triton_cpu._runtime`, which the
lowering imports the first time a kernel call is lowered.

The public names load lazily: triton imports this package's Triton backend
(`jax_triton_cpu.triton_backend`) while `import triton` is still running, so importing the package
must not import triton_lib (jax, triton) at that point.
"""
import importlib

__version_info__ = (0, 1, 0)
__version__ = ".".join(str(v) for v in __version_info__)

_FROM_TRITON_LIB = ("CUSTOM_CALL_TARGET_NAME", "TensorDescriptor", "strides_from_shape", "triton_call")

__all__ = [*_FROM_TRITON_LIB, "__version__", "__version_info__"]


def __getattr__(name):
  if name in _FROM_TRITON_LIB:
    value = getattr(importlib.import_module(".triton_lib", __name__), name)
    globals()[name] = value
    return value
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
  return sorted(set(globals()) | set(__all__))
