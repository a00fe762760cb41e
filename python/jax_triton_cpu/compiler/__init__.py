"""Triton kernel -> native shared library for the host CPU.

Pipeline (docs/design.md): frontend (upstream triton: AST -> TTIR) -> reader (TTIR text -> our IR)
-> analysis (axis info) -> codegen (our IR -> LLVM IR, llvmlite) -> toolchain (LLVM -> object -> .so,
content-addressed disk cache).
"""
from __future__ import annotations

import dataclasses

from .options import CPUOptions


@dataclasses.dataclass(frozen=True)
class CompiledKernel:
  """A kernel library on disk, with what the launcher needs to call it (docs/abi.md)."""
  name: str                     # Triton kernel name (the triton-cpu ABI symbol)
  library_path: str             # the .so
  library_hash: str             # hex content hash of the .so; the runtime's dlopen cache key
  symbol: str                   # the fixed-signature launch trampoline, NAME_launch
  param_types: tuple[str, ...]  # Triton type of each runtime parameter, in order ("*fp32", "i32", ...)
  work_per_program: int | None = None  # elements one program processes; None: not known
  ttir: str = ""
  ttir_generic: str = ""        # the TTIR compiled (generic op form): exported calls carry it
  target: str = ""              # Target.key of the CPU the library was compiled for
  llvm_ir: str = ""
  asm: str = ""


# Launches that process fewer elements than this in all stay on one thread: waking a sleeping
# worker costs tens of microseconds (measured: ~60 us on this 2-core VM), more than they take.
SERIAL_WORK_LIMIT = 1 << 18


def launch_threads(kernel: CompiledKernel, num_programs: int, num_cpu_threads: int) -> int:
  """OpenMP threads for one launch: the user's num_cpu_threads if set (> 0); else 1 for small
  launches and 0 (all cores) otherwise."""
  if num_cpu_threads > 0 or kernel.work_per_program is None:
    return num_cpu_threads
  return 1 if num_programs * kernel.work_per_program < SERIAL_WORK_LIMIT else 0


def compile_ttir(ttir, options: CPUOptions) -> CompiledKernel:
  """Compiles TTIR text (generic op form, from frontend.make_ttir), or a frontend.Source (a
  KernelSource or TextSource, whose TTIR is built only if the disk cache does not have its library
  yet), into a kernel library."""
  from . import cache, frontend
  if isinstance(ttir, frontend.Source):
    key = cache.kernel_key(ttir.key)
    kernel = cache.load(key, CompiledKernel)
    if kernel is None:
      kernel = dataclasses.replace(_compile(ttir.ttir_generic, options), ttir=ttir.ttir)
      cache.store(key, kernel)
    return kernel
  return _compile(ttir, options)


def _compile(ttir: str, options: CPUOptions) -> CompiledKernel:
  from . import pipeline  # deferred: LLVM and the MLIR reader load only when something compiles
  return pipeline.compile_ttir(ttir, options)


__all__ = ["CPUOptions", "CompiledKernel", "compile_ttir", "launch_threads"]
