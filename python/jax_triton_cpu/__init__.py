"""jax_triton_cpu: run Triton kernels inside jax.jit on CPU, with jax-triton's `triton_call` API.

The FFI target "triton_cpu_kernel_call" is registered by `jax_triton_cpu._runtime`, which the
lowering imports the first time a kernel call is lowered.
"""
from jax_triton_cpu.triton_lib import CUSTOM_CALL_TARGET_NAME
from jax_triton_cpu.triton_lib import TensorDescriptor
from jax_triton_cpu.triton_lib import strides_from_shape
from jax_triton_cpu.triton_lib import triton_call

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
