"""The CPU we compile for: the host, unless JAX_TRITON_CPU_TARGET names another (for testing code
paths of other CPUs on this machine, or compiling for CPUs it lacks and checking their assembly)."""
from __future__ import annotations

import ctypes
import dataclasses
import functools
import os

from llvmlite import binding as llvm

from .host import last_level_cache_bytes


@dataclasses.dataclass(frozen=True)
class Target:
  triple: str
  cpu: str
  features: str      # LLVM feature string, "+avx2,+fma,..."
  vector_bits: int   # width of one SIMD register the generated loops are written for
  enabled: frozenset = frozenset()  # names of the features the code generators may use
  is_host: bool = False             # the CPU this process runs on (not JAX_TRITON_CPU_TARGET)
  # A launch whose grid stores at least this many bytes through one tt.store writes them with
  # non-temporal stores (codegen/memory.py): half the last-level cache.
  streaming_store_bytes: int = 16 << 20

  @property
  def key(self) -> str:
    return f"{self.triple}/{self.cpu}/{self.features}"

  def has(self, *names: str) -> bool:
    return all(n in self.enabled for n in names)


_AVX2 = frozenset({"sse2", "avx", "avx2", "fma", "f16c"})
_AVX512 = _AVX2 | {"avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"}
_VNNI = _AVX512 | {"avx512vnni"}
_SPR = _VNNI | {"avx512bf16", "avx512fp16", "avxvnni", "amx-tile", "amx-bf16", "amx-int8"}

# The features that the code generators choose by, as LLVM's CPU of this name has them: an
# override "cpu,+f,-g" enables these plus f, minus g. (LLVM itself knows every CPU; name the
# features of a CPU missing here explicitly.)
NAMED_CPUS = {
    "x86-64": frozenset({"sse2"}), "x86-64-v2": frozenset({"sse2"}),
    "x86-64-v3": _AVX2, "haswell": _AVX2, "skylake": _AVX2, "znver2": _AVX2, "znver3": _AVX2,
    "alderlake": _AVX2 | {"avxvnni"},
    "x86-64-v4": _AVX512, "skylake-avx512": _AVX512,
    "cascadelake": _VNNI, "icelake-server": _VNNI, "icelake-client": _VNNI,
    "cooperlake": _VNNI | {"avx512bf16"},
    "znver4": _VNNI | {"avx512bf16"}, "znver5": _VNNI | {"avx512bf16", "avxvnni"},
    "sapphirerapids": _SPR, "emeraldrapids": _SPR, "graniterapids": _SPR | {"amx-fp16"},
}


# Features of ours, not LLVM's (kept out of the feature string LLVM gets): "emulate-amx" has the
# AMX dot kernels run their tile instructions as plain loops, for testing their addressing on
# machines without AMX; "stream-stores" makes every store that may stream do so, whatever its
# size (for testing that path).
PSEUDO_FEATURES = frozenset({"emulate-amx", "stream-stores"})


def _streaming_store_bytes(enabled) -> int:
  if "stream-stores" in enabled:
    return 0
  llc = last_level_cache_bytes()
  return llc // 2 if llc else Target.streaming_store_bytes


def _vector_bits(features, triple: str) -> int:
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
  """The host CPU, or JAX_TRITON_CPU_TARGET="cpu[,+feature,-feature...]" (e.g. "haswell,+avx2,+fma",
  "sapphirerapids", "znver4,-avx512bf16")."""
  override = os.environ.get("JAX_TRITON_CPU_TARGET", "")
  return _target(override)


@functools.cache
def _target(override: str) -> Target:
  _llvm_initialized()
  triple = llvm.get_process_triple()
  if override:
    cpu, *features = [s.strip() for s in override.split(",")]
    enabled = (NAMED_CPUS.get(cpu, frozenset()) | {f[1:] for f in features if f.startswith("+")}) \
        - {f[1:] for f in features if f.startswith("-")}
    llvm_features = [f for f in features if f[1:] not in PSEUDO_FEATURES]
    return Target(triple, cpu, ",".join(llvm_features), _vector_bits(enabled, triple),
                  frozenset(enabled), streaming_store_bytes=_streaming_store_bytes(enabled))
  host_features = llvm.get_host_cpu_features()
  enabled = frozenset(name for name, on in host_features.items() if on)
  return Target(triple, llvm.get_host_cpu_name(), host_features.flatten(),
                _vector_bits(enabled, triple), enabled, is_host=True,
                streaming_store_bytes=_streaming_store_bytes(enabled))


# Linux keeps AMX tile data off until a process asks (arch_prctl, Linux 5.16+); a tile instruction
# before that raises SIGILL. The permission is process-wide and granting it twice is harmless.
SYS_ARCH_PRCTL = 158
ARCH_REQ_XCOMP_PERM = 0x1023
XFEATURE_XTILEDATA = 18


@functools.cache
def amx_permitted() -> bool:
  """Asks Linux for AMX tile data in this process; whether it was granted."""
  try:
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.syscall(SYS_ARCH_PRCTL, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0
  except (OSError, AttributeError):
    return False


def can_use_amx(target: Target, *extensions: str) -> bool:
  """Whether kernels for `target` may use AMX tiles with these extensions ("amx-bf16",
  "amx-int8"): the target has them and, when it is this machine, Linux lets this process use them
  (code compiled for another CPU is only assembled, never run here)."""
  if target.has("emulate-amx"):
    return True
  if not target.has("amx-tile", *extensions):
    return False
  return amx_permitted() if target.is_host else True
