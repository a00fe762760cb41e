"""The `cpu` DriverBase: device queries, library loading and the launcher, for the host CPU."""
from __future__ import annotations

import functools
import inspect
import json
import os
import time

from triton.backends.compiler import GPUTarget
from triton.backends.driver import DriverBase

from .launcher import CPULauncher

_CPP_TYPES = {"i1": "bool", "u1": "bool", "i8": "int8_t", "i16": "int16_t", "i32": "int32_t",
              "i64": "int64_t", "u8": "uint8_t", "u16": "uint16_t", "u32": "uint32_t",
              "u64": "uint64_t", "fp16": "_Float16", "bf16": "uint16_t", "fp32": "float",
              "fp64": "double"}


class CPUUtils:

  def load_binary(self, name, reference, shared, device):
    """Loads the library a `cpulib` reference names (compiler.make_library); a library missing
    from our disk cache, or changed since it was built, is rebuilt from the reference's LLVM IR."""
    from jax_triton_cpu._native_loader import _native
    from jax_triton_cpu.compiler.cache import verified
    from .compiler import build_library
    ref = json.loads(reference)
    if not verified(ref["library"], ref["hash"]):
      ref = build_library(ref["llvm_ir"], ref["name"], ref["symbol"])
    kernel = _native.Kernel(ref["library"], ref["hash"], ref["symbol"], ref["name"])
    # (module, function, n_regs, n_spills, n_max_threads)
    return ref["library"], kernel, 0, 0, 1 << 30

  def unload_module(self, module):
    pass  # the library cache never unloads: other launchers may hold the same library

  def get_device_properties(self, device):
    cores = os.cpu_count() or 1
    return {"max_shared_mem": 1 << 62, "multiprocessor_count": cores, "max_num_regs": 1 << 30,
            "warpSize": 1, "max_threads_per_block": 1 << 30}


class _Event:
  """torch.cuda.Event's timing subset, on the host clock (launches are synchronous)."""

  def __init__(self, enable_timing=True):
    self.time_ns = None

  def record(self, stream=None):
    self.time_ns = time.perf_counter_ns()

  def elapsed_time(self, end) -> float:
    return (end.time_ns - self.time_ns) / 1e6  # ms


class CPUDeviceInterface:
  """The part of torch.cuda that triton.testing and the autotuner use."""
  Event = _Event

  @staticmethod
  def synchronize(device=None):
    pass  # launches return when the grid is done

  @staticmethod
  def current_device():
    return 0

  @staticmethod
  def set_device(device):
    pass

  @staticmethod
  def device_count():
    return 1

  @staticmethod
  def is_available():
    return True


def _last_level_cache_bytes() -> int:
  for name in ("SC_LEVEL3_CACHE_SIZE", "SC_LEVEL2_CACHE_SIZE"):
    try:
      size = os.sysconf(name)
    except (ValueError, OSError):
      continue
    if size > 0:
      return size
  return 32 << 20


@functools.cache
def honours_default_backend() -> bool:
  """Whether this triton picks the driver TRITON_DEFAULT_BACKEND names (3.9 does, 3.6 does not:
  there, claiming to be active by that variable would make two active drivers)."""
  import importlib
  module = importlib.import_module("triton.runtime.driver")  # (triton.runtime.driver, the attribute, is the config)
  return "TRITON_DEFAULT_BACKEND" in inspect.getsource(module._create_driver)


_checking_others = False  # guards against another driver that also asks who else is active


class CPUDriver(DriverBase):

  def __init__(self):
    self.utils = CPUUtils()
    self.launcher_cls = CPULauncher

  @classmethod
  def is_active(cls):
    """Active when asked for by name (TRITON_DEFAULT_BACKEND=cpu), else only when no other
    backend's driver is: on a GPU machine triton keeps choosing the GPU."""
    global _checking_others
    from triton.backends import backends
    from . import BACKEND_NAME
    if os.environ.get("TRITON_DEFAULT_BACKEND") == BACKEND_NAME and honours_default_backend():
      return True
    if _checking_others:
      return False
    _checking_others = True
    try:
      for backend in backends.values():
        if backend.driver is cls:
          continue
        try:
          if backend.driver.is_active():
            return False
        except Exception:  # a driver whose runtime is broken is not active
          continue
      return True
    finally:
      _checking_others = False

  def map_python_to_cpp_type(self, ty: str) -> str:
    return "void*" if ty.startswith("*") else _CPP_TYPES[ty]

  def get_current_target(self):
    from .compiler import host_arch
    return GPUTarget("cpu", host_arch(), 1)

  def get_current_device(self):
    # triton's JIT keeps compiled kernels per device key: an int would share the cache of that
    # GPU's device (set_active beside a CUDA driver then launched CUDA kernels on host pointers).
    return "cpu"

  def set_current_device(self, device):
    pass

  def get_current_stream(self, device=None):
    return 0

  def get_active_torch_device(self):
    import torch
    return torch.device("cpu")

  def get_device_interface(self):
    return CPUDeviceInterface

  def get_benchmarker(self):
    from triton.testing import do_bench
    return do_bench

  def get_empty_cache_for_benchmark(self):
    import numpy as np
    return np.zeros(2 * _last_level_cache_bytes(), dtype=np.int8)  # twice the last-level cache

  def clear_cache(self, cache):
    cache[...] = 0
