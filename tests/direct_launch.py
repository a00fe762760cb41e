"""Compiles a Triton kernel with jax_triton_cpu's compiler and runs it on numpy arrays through
ctypes, without JAX or the XLA custom call: tests the compiler alone."""
from __future__ import annotations

import ctypes

import numpy as np

from jax_triton_cpu.compiler import CPUOptions, compile_ttir, frontend

_SCALAR_DTYPES = {"i1": np.bool_, "i8": np.int8, "i16": np.int16, "i32": np.int32,
                  "i64": np.int64, "u1": np.bool_, "u8": np.uint8, "u16": np.uint16,
                  "u32": np.uint32, "u64": np.uint64, "fp16": np.float16, "fp32": np.float32,
                  "fp64": np.float64}


def _slot(value, triton_type: str) -> ctypes.c_uint64:
  """A 64-bit slot holding the scalar's bits in its low bytes (docs/abi.md)."""
  if triton_type == "bf16":
    bits = int(np.array(value, np.float32).view(np.uint32)) >> 16
  else:
    bits = int(np.array(value, _SCALAR_DTYPES[triton_type]).reshape(1).view(
        {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}[np.dtype(_SCALAR_DTYPES[triton_type]).itemsize])[0])
  return ctypes.c_uint64(bits)


def compile_kernel(kernel, signature: dict, constants: dict | None = None, **options):
  constants = constants or {}
  attrs = {(i,): [["tt.divisibility", 16]] for i, t in enumerate(signature.values())
           if t.startswith("*")}
  full_signature = dict(signature) | {k: "constexpr" for k in constants}
  opts = CPUOptions(**options)
  return compile_ttir(frontend.make_ttir(kernel, full_signature, constants, attrs, opts), opts)


def launch(compiled, args, grid, first=None, last=None, types=None) -> int:
  """Runs programs [first, last) (default: all) of `grid`; returns the trampoline's status.
  `types` are the signature types of the arguments (default: the compiled parameter types)."""
  lib = ctypes.CDLL(compiled.library_path)
  fn = getattr(lib, compiled.symbol)
  fn.restype = ctypes.c_int32
  fn.argtypes = [ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint64,
                 ctypes.c_uint32, ctypes.c_uint32, ctypes.c_uint32]
  slots, extents = [], []
  for value, t in zip(args, types or compiled.param_types):
    if t.startswith("*"):
      assert isinstance(value, np.ndarray) and value.flags.c_contiguous
      slots.append(ctypes.c_void_p(value.ctypes.data))
      extents.append(ctypes.c_uint64(value.nbytes))
    else:
      slots.append(_slot(value, t))
      extents.append(ctypes.c_uint64(0))
  assert len(slots) == len(compiled.param_types), "wrong number of kernel arguments"
  # args[P + i]: the byte size of parameter i's buffer, which checked kernels read (docs/abi.md).
  pointers = (ctypes.c_void_p * max(1, 2 * len(slots)))(
      *[ctypes.cast(ctypes.pointer(s), ctypes.c_void_p) for s in slots + extents])
  g = tuple(grid) + (1,) * (3 - len(grid))
  n = g[0] * g[1] * g[2]
  return fn(pointers, 0 if first is None else first, n if last is None else last, *g)


def run(kernel, signature: dict, args, grid, constants: dict | None = None, **options):
  compiled = compile_kernel(kernel, signature, constants, **options)
  status = launch(compiled, args, grid, types=list(signature.values()))
  assert status == 0
  return compiled
