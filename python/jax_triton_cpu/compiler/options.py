"""Compile options of a CPU kernel: what `backend_options` may hold."""
from __future__ import annotations

import dataclasses
import os
from typing import Any, Mapping

# GPU launch knobs that jax-triton users pass; accepted so code runs unchanged, with no effect on CPU.
_GPU_ONLY_OPTIONS = frozenset({
    "maxnreg", "ptx_version", "ptx_options", "ir_override", "sched4reg", "enable_reflect_ftz",
    "launch_cooperative_grid", "launch_pdl", "clc", "supported_fp8_dtypes",
    "deprecated_fp8_dot_operand_dtypes", "allowed_dot_input_precisions",
    "max_num_imprecise_acc_default", "extern_libs", "sanitize_overflow", "arch",
    "instrumentation_mode", "fpsan_homomorphic_casts", "min_shared_mem", "warp_size",
    "waves_per_eu", "matrix_instr_nonkdim", "kpack", "schedule_hint", "backend_name",
})

# Checked mode for a whole run: every kernel compiled with bounds checks unless its backend_options
# say otherwise.
BOUNDS_CHECK_ENV = "JAX_TRITON_CPU_BOUNDS_CHECK"


def _env_flag(name: str) -> bool:
  return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no", "off")


@dataclasses.dataclass(frozen=True)
class CPUOptions:
  num_warps: int = 4            # accepted, no effect on CPU
  num_stages: int = 3           # accepted, no effect on CPU
  num_ctas: int = 1             # must be 1: there are no clusters on a CPU
  num_cpu_threads: int = 0      # OpenMP threads for one launch; 0 = all cores
  enable_fast_math: bool = False
  enable_fp_fusion: bool = True  # FMA contraction, as on GPUs
  default_dot_input_precision: str = "ieee"
  debug: bool = False
  # Checked mode: every load, store and atomic is checked against the extent of its buffer
  # (codegen/bounds.py). None: JAX_TRITON_CPU_BOUNDS_CHECK decides.
  bounds_check: bool | None = None

  def __post_init__(self):
    if self.bounds_check is None:
      object.__setattr__(self, "bounds_check", _env_flag(BOUNDS_CHECK_ENV))
    else:
      object.__setattr__(self, "bounds_check", bool(self.bounds_check))

  @classmethod
  def parse(cls, backend_options: Mapping[str, Any]) -> "CPUOptions":
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(backend_options) - known - _GPU_ONLY_OPTIONS
    if unknown:
      raise ValueError(
          f"Unknown backend_options {sorted(unknown)}; the CPU backend accepts "
          f"{sorted(known)} (and ignores GPU-only options such as 'maxnreg').")
    values = {k: v for k, v in backend_options.items() if k in known and v is not None}
    options = cls(**values)
    if options.num_ctas != 1:
      raise ValueError(f"num_ctas={options.num_ctas} is not supported on CPU: there are no "
                       "thread-block clusters; use num_ctas=1.")
    if options.num_cpu_threads < 0:
      raise ValueError(f"num_cpu_threads must be >= 0 (0 = all cores), got {options.num_cpu_threads}")
    return options
