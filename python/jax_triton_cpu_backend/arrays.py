"""numpy arrays as kernel arguments.

Triton's own argument specialiser (C++, before any backend code runs) takes tensors by their
`data_ptr()` and `dtype`; a numpy array has neither, so `kernel[grid](a)` with an ndarray fails
with "Unsupported type: <class 'numpy.ndarray'>". `from_numpy(a)` wraps an array without copying:
the kernel reads and writes the array's own memory.
"""
from __future__ import annotations


class HostTensor:
  """A view of a numpy array that Triton accepts as a pointer argument."""

  __slots__ = ("array", "dtype", "_address")

  def __init__(self, array):
    self.array = array
    self.dtype = array.dtype  # str(dtype) ("float32", "bfloat16", ...) names the Triton type
    self._address = array.ctypes.data  # an array's memory never moves

  def data_ptr(self) -> int:
    return self._address

  @property
  def shape(self) -> tuple[int, ...]:
    return self.array.shape

  def stride(self, dim: int | None = None):
    """Strides in elements, like torch.Tensor.stride."""
    strides = tuple(s // self.array.itemsize for s in self.array.strides)
    return strides if dim is None else strides[dim]

  def numel(self) -> int:
    return self.array.size

  def extent(self) -> int:
    """Bytes from data_ptr() to the end of the array's memory (checked mode's bound)."""
    import numpy as np
    byte_bounds = getattr(np.lib, "array_utils", np).byte_bounds  # numpy >= 2 moved it
    return byte_bounds(self.array)[1] - self._address

  def __repr__(self):
    return f"HostTensor({self.array!r})"


def from_numpy(array) -> HostTensor:
  """`array` (a numpy.ndarray, or anything numpy.asarray takes without copying) as a kernel
  argument. Pass the result where the kernel takes a pointer."""
  import numpy as np
  if not isinstance(array, np.ndarray):
    raise TypeError(f"from_numpy takes a numpy.ndarray, got {type(array).__name__}")
  return HostTensor(array)
