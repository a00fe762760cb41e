"""A Triton backend for the host CPU: `kernel[grid](...)` without JAX.

Triton finds it through the `triton.backends` entry point `cpu` (pyproject.toml): for each entry
point it imports `<module>.compiler` and `<module>.driver` and takes the one concrete BaseBackend
and DriverBase in them. The backend hands the TTIR to jax_triton_cpu's compiler; the driver runs the
kernel library over the grid with the same C++ runtime (library cache, OpenMP launcher, fault
guard) as the XLA FFI handler. The driver is active only where no other driver is (a machine
without a GPU), or when asked for (TRITON_DEFAULT_BACKEND=cpu, triton.runtime.driver.set_active).

Triton imports this package while `import triton` runs, on every machine where ours is installed
(GPU machines too), so it is a package of its own, apart from jax_triton_cpu, whose import loads
jax and registers the FFI handler: it imports triton alone, and jax_triton_cpu's compiler and runtime
only when a CPU kernel is compiled or launched.
"""
from .arrays import HostTensor, from_numpy

BACKEND_NAME = "cpu"  # the entry point's name, as TRITON_DEFAULT_BACKEND spells it

__all__ = ["BACKEND_NAME", "HostTensor", "from_numpy"]
