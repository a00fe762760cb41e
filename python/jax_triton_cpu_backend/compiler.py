"""The `cpu` BaseBackend: stages that hand triton's TTIR to jax_triton_cpu's compiler.

Stages: ttir (the target-independent passes the JAX path runs too) -> ttgir (unchanged) -> llir (our
reader and code generator) -> cpulib. The last stage builds the library into jax_triton_cpu's disk cache (the one
the JAX path uses, JAX_TRITON_CPU_CACHE_DIR) and returns a small reference to it, not the library's
bytes: triton's cache keeps the index (source and options -> reference), ours the libraries, and
no library is stored twice. The reference carries the LLVM IR, so a library that went missing from
our cache is rebuilt without the kernel's source (driver.CPUUtils.load_binary).
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from typing import Optional, Tuple

from triton.backends.compiler import BaseBackend, GPUTarget, Language

BINARY_EXT = "cpulib"


@dataclasses.dataclass(frozen=True)
class CPUBackendOptions:
  """Options of `kernel[grid](..., **options)` on CPU. Triton's frontend and JIT read the fields
  they read from CUDA's options, so those are here too; the CPU ones are num_cpu_threads,
  enable_fast_math, enable_fp_fusion, bounds_check."""
  num_cpu_threads: int = 0  # OpenMP threads for one launch; 0 = all cores
  enable_fast_math: bool = False
  enable_fp_fusion: bool = True  # FMA contraction, as on GPUs
  # Checked mode: every access is checked against its tensor's extent (an out-of-bounds one is a
  # RuntimeError naming kernel, source line and offset). None: JAX_TRITON_CPU_BOUNDS_CHECK decides.
  bounds_check: Optional[bool] = None
  num_warps: int = 4  # accepted, no effect on CPU
  num_ctas: int = 1
  num_stages: int = 3  # accepted, no effect on CPU
  warp_size: int = 1  # one program is one thread
  maxnreg: Optional[int] = None
  ir_override: Optional[str] = None
  launch_cooperative_grid: bool = False
  launch_pdl: bool = False
  # (frontend.SUPPORTED_FP8, which triton's import of this module cannot reach)
  supported_fp8_dtypes: Tuple[str, ...] = ("fp8e4b15", "fp8e4b8", "fp8e4nv", "fp8e5", "fp8e5b16")
  deprecated_fp8_dot_operand_dtypes: Tuple[str, ...] = ()
  default_dot_input_precision: str = "ieee"
  allowed_dot_input_precisions: Tuple[str, ...] = ("ieee", "tf32", "tf32x3", "bf16x3", "bf16x6")
  max_num_imprecise_acc_default: int = 0
  extern_libs: Optional[tuple] = None
  debug: bool = False
  sanitize_overflow: bool = True  # as on GPUs: with debug=True, integer overflow asserts
  backend_name: str = "cpu"
  arch: str = "cpu"
  instrumentation_mode: str = ""
  fpsan_homomorphic_casts: bool = False

  def __post_init__(self):
    assert self.num_warps > 0 and (self.num_warps & (self.num_warps - 1)) == 0, \
        "num_warps must be a power of 2"
    if self.num_ctas != 1:
      raise ValueError(f"num_ctas={self.num_ctas} is not supported on CPU: there are no "
                       "thread-block clusters; use num_ctas=1.")
    if self.num_cpu_threads < 0:
      raise ValueError(f"num_cpu_threads must be >= 0 (0 = all cores), got {self.num_cpu_threads}")
    if self.bounds_check is None:  # resolved here, so that triton's cache key holds it
      from jax_triton_cpu.compiler.options import CPUOptions
      object.__setattr__(self, "bounds_check", CPUOptions().bounds_check)

  def hash(self) -> str:
    key = "_".join(f"{k}-{v}" for k, v in sorted(self.__dict__.items()))
    return hashlib.sha256(key.encode()).hexdigest()

  def compiler_options(self):
    from jax_triton_cpu.compiler.options import CPUOptions
    return CPUOptions(num_warps=self.num_warps, num_stages=self.num_stages,
                      num_cpu_threads=self.num_cpu_threads, enable_fast_math=self.enable_fast_math,
                      enable_fp_fusion=self.enable_fp_fusion,
                      default_dot_input_precision=self.default_dot_input_precision,
                      debug=self.debug, bounds_check=self.bounds_check)


_TUPLE_FIELDS = ("supported_fp8_dtypes", "deprecated_fp8_dot_operand_dtypes",
                 "allowed_dot_input_precisions")


@functools.cache
def host_arch() -> str:
  """The host CPU's LLVM name (e.g. "znver3"), or JAX_TRITON_CPU_TARGET's."""
  from jax_triton_cpu.compiler.target import host_target
  return host_target().cpu


def _fp_fusion(knobs, requested):
  """As the GPU backends decide it: the option, else TRITON_DEFAULT_FP_FUSION (on by default)."""
  decide = getattr(knobs.language, "fp_fusion_enabled", None)  # triton >= 3.9
  if decide is not None:
    return decide(requested)
  return knobs.language.default_fp_fusion if requested is None else requested


class CPUBackend(BaseBackend):
  binary_ext = BINARY_EXT

  @staticmethod
  def supports_target(target: GPUTarget):
    return target.backend == "cpu"

  def hash(self) -> str:
    from jax_triton_cpu.compiler.cache import compiler_version
    from jax_triton_cpu.compiler.target import host_target
    return f"jax_triton_cpu-{compiler_version()}-{host_target().key}"

  def parse_options(self, opts) -> CPUBackendOptions:
    from triton import knobs
    fields = CPUBackendOptions.__dataclass_fields__
    args = {k: v for k, v in opts.items() if k in fields and v is not None}
    for k in _TUPLE_FIELDS:
      if k in args:
        args[k] = tuple(args[k])
    if "extern_libs" in args:
      args["extern_libs"] = tuple(dict(args["extern_libs"]).items())
    args["enable_fp_fusion"] = _fp_fusion(knobs, args.get("enable_fp_fusion"))
    args["arch"] = host_arch()
    return CPUBackendOptions(**args)

  def pack_metadata(self, metadata):
    return (metadata.num_warps, metadata.num_ctas, metadata.shared)

  def get_codegen_implementation(self, options):
    from jax_triton_cpu.compiler import frontend
    return frontend.cpu_codegen_fns()

  def get_module_map(self):
    # Our code generator knows libdevice by CUDA's __nv_* names (codegen/math.py).
    from triton.language.extra.cuda import libdevice
    return {"triton.language.extra.libdevice": libdevice}

  def load_dialects(self, ctx):
    pass

  def add_stages(self, stages, options, language=Language.TRITON):  # (triton 3.6 passes no language)
    if language != Language.TRITON:
      raise NotImplementedError("the cpu backend compiles Triton kernels, not Gluon")
    stages["ttir"] = lambda src, metadata: make_ttir(src)
    # GPU-level IR has no CPU counterpart: the stage passes TTIR on unchanged, and TTGIR given to
    # triton.compile (as a file) enters here; its layouts are ignored (compiler/reader.py).
    stages["ttgir"] = lambda src, metadata: src
    stages["llir"] = lambda src, metadata: make_llir(src, metadata, options)
    stages[BINARY_EXT] = lambda src, metadata: make_library(src, metadata)


def make_ttir(module):
  from jax_triton_cpu.compiler import frontend
  frontend.run_ttir_passes(module, module.context)
  return module


def make_llir(module, metadata, options: CPUBackendOptions) -> str:
  from jax_triton_cpu.compiler import frontend, pipeline
  kernel = pipeline.generate_llvm_ir(frontend.print_generic(module, module.context),
                                     options.compiler_options())
  metadata.update(name=kernel.name, symbol=kernel.symbol, param_types=list(kernel.param_types),
                  work_per_program=kernel.work_per_program, shared=0, tmem_size=None,
                  global_scratch_size=0, global_scratch_align=1, profile_scratch_size=0,
                  profile_scratch_align=1)
  return kernel.llvm_ir


def make_library(llvm_ir: str, metadata) -> bytes:
  return json.dumps(build_library(llvm_ir, metadata["name"], metadata["symbol"])).encode()


def build_library(llvm_ir: str, name: str, symbol: str) -> dict:
  """Builds (or finds in our disk cache) the library of `llvm_ir`; returns its reference."""
  from jax_triton_cpu.compiler import toolchain
  from jax_triton_cpu.compiler.target import host_target
  library, library_hash, _ = toolchain.compile_llvm_ir(llvm_ir, host_target(), name)
  return {"library": library, "hash": library_hash, "name": name,
          "symbol": symbol, "llvm_ir": llvm_ir}
