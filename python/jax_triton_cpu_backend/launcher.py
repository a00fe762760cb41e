"""The launcher triton calls for each `kernel[grid](...)`: the kernel's arguments -> one 64-bit slot
per kernel parameter (docs/abi.md) -> the native grid launcher (csrc/module.cc, Kernel.launch)."""
from __future__ import annotations

import struct

from triton.backends import driver as _triton_driver


def _decompose_descriptor_36(arg):
  """triton 3.6's host descriptor as the TTIR descriptor-to-pointer pass expects it (3.9 adds
  round_f32_to_tf32 and names the function triton.backends.driver.decompose_descriptor)."""
  return [arg.base, *arg.shape, *arg.strides, arg.padding == "nan", *arg.shape, *arg.strides]


decompose_descriptor = getattr(_triton_driver, "decompose_descriptor", _decompose_descriptor_36)


def _pointer(arg) -> int:
  if arg is None:
    return 0
  if isinstance(arg, int):
    return arg
  data_ptr = getattr(arg, "data_ptr", None)
  if data_ptr is None:
    raise TypeError(f"a pointer argument must have data_ptr() (a tensor), got {type(arg).__name__}")
  device = getattr(arg, "device", None)
  if device is not None and getattr(device, "type", "cpu") != "cpu":
    raise ValueError(f"the cpu backend takes tensors in host memory, got one on {device}")
  return data_ptr()


_UNBOUNDED = (1 << 64) - 1


def _extent(arg) -> int:
  """Bytes a checked kernel may access from a pointer argument on: to the end of a torch tensor's
  storage or of a from_numpy array; unbounded for a raw address or another object."""
  extent = getattr(arg, "extent", None)
  if extent is not None:
    return extent()
  storage = getattr(arg, "untyped_storage", None)
  if storage is not None:
    storage = storage()
    return storage.data_ptr() + storage.nbytes() - arg.data_ptr()
  return _UNBOUNDED


def _float_bits(dtype_name):
  import ml_dtypes
  import numpy as np
  dtype = np.dtype(ml_dtypes.bfloat16 if dtype_name == "bf16" else np.float16)
  return lambda v: int(np.asarray(v, dtype).view(np.uint16))


def _converter(ty: str):
  """(struct format of one 8-byte slot, the value -> what struct packs)."""
  if ty.startswith("*"):
    return "Q", _pointer
  if ty == "fp32":
    return "f4x", float
  if ty == "fp64":
    return "d", float
  if ty in ("fp16", "bf16"):
    return "Q", _float_bits(ty)
  if ty in ("i1", "u1"):
    return "Q", lambda v: int(bool(v))
  if ty[0] in "iu" and ty[1:].isdigit():
    mask = (1 << int(ty[1:])) - 1  # two's complement bits, zero-extended in the slot
    return "Q", lambda v: int(v) & mask
  raise TypeError(f"the cpu backend cannot pass a kernel argument of type {ty}")


def _flatten(signature, arg, out):
  """The runtime values of one argument, in kernel-parameter order: constexprs have no parameter,
  tuples are their elements, a tensor descriptor is its base pointer, shape and strides (as the
  TTIR pass that rewrites descriptors into pointers expects them)."""
  if signature == "constexpr":
    return
  if isinstance(signature, tuple):
    for s, a in zip(signature, arg):
      _flatten(s, a, out)
  elif isinstance(signature, str) and signature.startswith("tensordesc"):
    out.extend(decompose_descriptor(arg))
  else:
    out.append(arg)


class CPULauncher:

  def __init__(self, src, metadata):
    # Imported here: triton imports this module while `import triton` runs, and jax_triton_cpu
    # imports jax, which only a CPU launch needs.
    from jax_triton_cpu.compiler import launch_threads
    self.launch_threads = launch_threads
    self.name = metadata.name
    self.signature = tuple(src.signature.values())
    # Fast path: no tuples or descriptors, so argument i is parameter slots[i] or a constexpr.
    self.flat = all(isinstance(s, str) and not s.startswith("tensordesc") for s in self.signature)
    self.runtime_args = [i for i, s in enumerate(self.signature) if s != "constexpr"]
    converters = [_converter(t) for t in metadata.param_types]
    self.converters = [c for _, c in converters]
    self.struct = struct.Struct("<" + "".join(f for f, _ in converters))
    self.metadata = metadata
    # After the parameters' slots, one per parameter: its buffer's extent in bytes, which only a
    # checked (bounds_check) library reads (docs/abi.md); zeros for the others.
    self.pointers = [i for i, t in enumerate(metadata.param_types) if t.startswith("*")]
    self.checked = bool(getattr(metadata, "bounds_check", False))
    self.no_extents = bytes(8 * len(self.converters))

  def slots(self, args) -> bytes:
    if self.flat:
      values = [args[i] for i in self.runtime_args]
    else:
      values = []
      for s, a in zip(self.signature, args):
        _flatten(s, a, values)
    if len(values) != len(self.converters):
      raise TypeError(f"kernel {self.name} takes {len(self.converters)} runtime parameters, "
                      f"got {len(values)} values")
    slots = self.struct.pack(*[c(v) for c, v in zip(self.converters, values)])
    if not self.checked:
      return slots + self.no_extents
    extents = [0] * len(values)
    for i in self.pointers:
      extents[i] = _extent(values[i])
    return slots + struct.pack(f"<{len(extents)}Q", *extents)

  def __call__(self, gx, gy, gz, stream, function, packed_metadata, launch_metadata, enter_hook,
               exit_hook, *args):
    slots = self.slots(args)
    if enter_hook is not None:
      enter_hook(launch_metadata)
    threads = self.launch_threads(self.metadata, gx * gy * gz, self.metadata.num_cpu_threads)
    function.launch(slots, gx, gy, gz, threads)
    if exit_hook is not None:
      exit_hook(launch_metadata)
