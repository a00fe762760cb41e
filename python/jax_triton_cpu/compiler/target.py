"""The CPU we compile for: the host, unless JAX_TRITON_CPU_TARGET names another (for testing code
paths of CPUs without AVX-512 or AVX on a machine that has them)."""
from __future__ import annotations

import dataclasses
import functools
import os

from llvmlite import binding as llvm


@dataclasses.dataclass(frozen=True)
class Target:
  triple: str
  cpu: str
  features: str      # LLVM feature string, "+avx2,+fma,..."
  vector_bits: int   # width of one SIMD register the generated loops are written for

  @property
  def key(self) -> str:
    return f"{self.triple}/{self.cpu}/{self.features}"


def _vector_bits(features: set[str], triple: str) -> int:
  if "avx512f" in features:
    return 512
  if features & {"avx", "avx2"}:
    return 256
  return 128  # SSE2 is part of x86-64; NEON is 128-bit on aarch64


@functools.cache
def _llvm_initialized():
  llvm.initialize_native_target()
  llvm.initialize_native_asmprinter()
  return True


def host_target() -> Target:
  """The host CPU, or JAX_TRITON_CPU_TARGET="cpu[,+feature,...]" (e.g. "haswell,+avx2,+fma")."""
  override = os.environ.get("JAX_TRITON_CPU_TARGET", "")
  return _target(override)


@functools.cache
def _target(override: str) -> Target:
  _llvm_initialized()
  triple = llvm.get_process_triple()
  if override:
    cpu, *features = [s.strip() for s in override.split(",")]
    enabled = {f[1:] for f in features if f.startswith("+")}
    return Target(triple, cpu, ",".join(features), _vector_bits(enabled, triple))
  host_features = llvm.get_host_cpu_features()
  enabled = {name for name, on in host_features.items() if on}
  return Target(triple, llvm.get_host_cpu_name(), host_features.flatten(),
                _vector_bits(enabled, triple))
