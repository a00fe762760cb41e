"""jax_triton_cpu: run Triton kernels inside jax.jit on CPU, with jax-triton's `triton_call` API.

Importing the package registers the FFI target "triton_cpu_kernel_call" (CUSTOM_CALL_TARGET_NAME)
for platform "cpu", so a process that only deserialises a jax.export artifact can run it, and the
CPU lowering of Pallas's `pallas_call` (jax_triton_cpu.pallas).
"""
from jax_triton_cpu import _runtime  # noqa: F401  (registers the FFI target)
from jax_triton_cpu.triton_lib import CUSTOM_CALL_TARGET_NAME
from jax_triton_cpu.triton_lib import TensorDescriptor
from jax_triton_cpu.triton_lib import strides_from_shape
from jax_triton_cpu.triton_lib import triton_call

try:
  from jax_triton_cpu import pallas  # registers pallas_call's CPU lowering
except ImportError as e:  # a JAX without Pallas's Triton backend (deprecated upstream in 0.11)
  pallas = None
  import warnings
  warnings.warn(f"jax_triton_cpu: Pallas kernels cannot run natively with this JAX ({e}); "
                "pallas_call on CPU needs interpret=True", stacklevel=2)

__version_info__ = (0, 1, 0)
__version__ = ".".join(str(v) for v in __version_info__)

__all__ = [
    "CUSTOM_CALL_TARGET_NAME",
    "TensorDescriptor",
    "strides_from_shape",
    "triton_call",
    "__version__",
    "__version_info__",
]
