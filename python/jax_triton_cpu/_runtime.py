"""Registers the native `triton_cpu_kernel_call` FFI target with JAX.

The C++ handler (csrc/ffi_handler.cc) implements the custom call described in
docs/abi.md.  Importing this module (which `import jax_triton_cpu` does)
registers it for platform "cpu", once, so that a process that only
deserialises a jax.export artifact can run it.
It must stay importable without the compiler, so it imports nothing of it.
"""
from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import numpy as np

from ._native_loader import _native

TARGET_NAME = "triton_cpu_kernel_call"
_STATE_TYPE_NAME = "jax_triton_cpu.KernelState"

_lock = threading.Lock()
_registered = False


def register() -> None:
  """Registers the state type, then the target (idempotent, thread-safe).

  The state type goes first: XLA checks the handler's state type at target
  registration.  (Its id is fixed in C++, so jaxlib's queued registrations
  also work when this runs before the CPU backend exists.)
  """
  global _registered
  with _lock:
    if _registered:
      return
    jax.ffi.register_ffi_type(
        _STATE_TYPE_NAME, _native.kernel_state_type(), platform="cpu")
    for name, target in _native.registrations().items():
      # api_version=1: the typed FFI.
      jax.ffi.register_ffi_target(name, target, platform="cpu", api_version=1)
    # Exported calls get a library for this host when XLA instantiates them (portable.py).
    from . import portable
    _native.set_library_resolver(portable.resolve)
    _registered = True


def counters() -> dict[str, int]:
  """Process-wide counts: instantiate_calls, execute_calls, dlopen_calls."""
  return dict(_native.counters())


def scalar_bits(value: Any, dtype: Any) -> int:
  """The raw bits of `value` as `dtype`, zero-extended to a 64-bit slot.

  Returned as a signed int so that it fits the i64 `scalars` attribute.
  """
  raw = int.from_bytes(np.asarray(value, dtype=dtype).tobytes(), "little")
  return raw - (1 << 64) if raw >= 1 << 63 else raw


def _wrap_int64(bits: int) -> int:
  bits = int(bits) & ((1 << 64) - 1)
  return bits - (1 << 64) if bits >= 1 << 63 else bits


def kernel_call(
    *operands,
    out_types,
    library: str,
    library_hash: str,
    symbol: str,
    kernel_name: str,
    grid: Sequence[int],
    arg_map: Sequence[int],
    scalars: Sequence[int],
    zeroed_outputs: Sequence[int] = (),
    num_threads: int = 0,
    input_output_aliases: Mapping[int, int] | None = None,
    has_side_effect: bool = False,
    **attributes: Any,
):
  """Calls a compiled kernel library through `triton_cpu_kernel_call`.

  `scalars` are raw bits (see `scalar_bits`); `grid` is padded with 1s to 3
  entries and otherwise checked by the handler.  Extra keyword `attributes`
  (e.g. cost_estimate_json) are passed along and ignored by the handler.
  """
  register()
  grid = tuple(int(g) for g in grid) + (1,) * (3 - len(grid))
  call = jax.ffi.ffi_call(
      TARGET_NAME,
      out_types,
      input_output_aliases=dict(input_output_aliases or {}),
      has_side_effect=has_side_effect,
  )
  return call(
      *operands,
      library=str(library),
      library_hash=library_hash,
      symbol=symbol,
      kernel_name=kernel_name,
      grid=np.asarray(grid, np.int64),
      arg_map=np.asarray(arg_map, np.int64).reshape(-1),
      scalars=np.asarray([_wrap_int64(s) for s in scalars], np.int64),
      zeroed_outputs=np.asarray(zeroed_outputs, np.int64).reshape(-1),
      num_threads=np.int32(num_threads),
      **attributes,
  )


register()
