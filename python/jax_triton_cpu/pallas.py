"""Pallas kernels on CPU, natively: `pl.pallas_call` lowered through Pallas's Triton lowering.

Importing jax_triton_cpu registers a CPU lowering of `pallas_call`. A call whose compiler_params
are None or Triton's (`jax.experimental.pallas.triton.CompilerParams`, or `CompilerParams` below)
and that is not interpreted goes:

  lower_jaxpr_to_triton_module  Pallas's own Triton lowering: the kernel jaxpr -> TTIR, in jaxlib's
                                MLIR; grids of more than 3 axes folded into 3 program ids
  frontend.TextSource           that TTIR in generic op form; triton parses it and runs the same
                                TTIR passes as on its own frontend's output (on a cache miss only)
  compiler.compile_ttir         our code generator, behind the disk cache
  triton_cpu_kernel_call        the custom call of docs/abi.md: inputs then outputs, all pointers

Everything else (interpret=True, Mosaic compiler params) keeps JAX's own rule. Pallas's Triton
backend is deprecated upstream (JAX 0.11); this module is the whole integration, so that if JAX
removes the lowering, this file and tests/test_pallas.py are all that go.
"""
from __future__ import annotations

import dataclasses
import math
import sys

import jax
import numpy as np
from jax._src.interpreters import mlir
from jax._src.pallas import core as pallas_core
from jax._src.pallas.pallas_call import pallas_call_p
# JAX's rule for pallas_call on every platform; ours defers to it for what we do not compile.
from jax._src.pallas.pallas_call import _pallas_call_lowering as _JAX_RULE
from jax._src.pallas.triton import core as triton_core

from . import compiler
from . import triton_lib
from .compiler import frontend

# Pallas's Triton lowering picks libdevice (__nv_*) math for "cuda", which our code generator
# implements; the compute capability only gates fp8 casts (all allowed from sm_89).
_LOWERING_PLATFORM = "cuda"
_COMPUTE_CAPABILITY = 90


@dataclasses.dataclass(frozen=True)
class CompilerParams(triton_core.CompilerParams):
  """Triton compiler params with the CPU's own knob; anything that takes Triton's takes these.

  Attributes:
    num_cpu_threads: OpenMP threads for one launch. 0 (the default): one thread for small
      launches, all cores otherwise (as triton_call does).
  """
  num_cpu_threads: int = 0

  def __post_init__(self):
    if self.num_cpu_threads < 0:
      raise ValueError(f"num_cpu_threads must be >= 0, got {self.num_cpu_threads}")


def _gpu_rule(ctx, *in_nodes, **params):
  """On GPU, these params are Triton's: JAX's Triton rule (they are only looked up by type)."""
  from jax._src.pallas.triton import pallas_call_registration
  return pallas_call_registration.pallas_call_lowering(ctx, *in_nodes, **params)


pallas_core.register_lowering_rule(CompilerParams, _gpu_rule, "gpu")


def _lowers_natively(interpret, compiler_params) -> bool:
  return not interpret and (compiler_params is None or
                            isinstance(compiler_params, triton_core.CompilerParams))


def _pallas_call_cpu_lowering(ctx, *in_nodes, interpret, compiler_params, **params):
  if not _lowers_natively(interpret, compiler_params):
    return _JAX_RULE(ctx, *in_nodes, interpret=interpret, compiler_params=compiler_params,
                     **params)
  return _lower(ctx, *in_nodes, compiler_params=compiler_params, **params)


def _lower(ctx, *in_nodes, jaxpr, grid_mapping, debug, input_output_aliases, compiler_params,
           mesh, **unused):
  """The custom call of one pallas_call: compile (or find) its kernel, launch it on the grid."""
  del unused  # out_avals, cost_estimate, metadata, name: nothing to do with them on CPU
  if jaxpr.constvars:
    raise ValueError("Cannot lower a pallas_call with constants.")
  if mesh is not None:
    raise NotImplementedError("mesh is not supported in the Triton backend")
  from . import _runtime  # noqa: F401  registers the FFI target before the program is compiled
  if debug:
    _print_debug(jaxpr, grid_mapping)
  ttir, grid = _lower_to_ttir(ctx, jaxpr, grid_mapping, debug)
  aliases = dict(input_output_aliases)
  if math.prod(grid) == 0:  # no program runs: aliased outputs keep their inputs, others are 0
    return triton_lib._lower_empty_grid(ctx, in_nodes, aliases, ())
  kernel = _compile(ttir, compiler.CPUOptions(debug=debug))
  num_buffers = len(ctx.avals_in) + len(ctx.avals_out)
  if len(kernel.param_types) != num_buffers:
    raise RuntimeError(f"kernel '{kernel.name}' takes {len(kernel.param_types)} parameters, but "
                       f"the pallas_call has {num_buffers} inputs and outputs")
  threads = compiler.launch_threads(kernel, math.prod(grid),
                                    getattr(compiler_params, "num_cpu_threads", 0))
  rule = jax.ffi.ffi_lowering(triton_lib.CUSTOM_CALL_TARGET_NAME,
                              operand_output_aliases=aliases or None)
  return rule(ctx, *in_nodes, kernel_name=kernel.name, library=str(kernel.library_path),
              library_hash=kernel.library_hash, symbol=kernel.symbol,
              grid=np.asarray(grid, np.int64),
              arg_map=np.arange(num_buffers, dtype=np.int64),  # inputs, then outputs
              scalars=np.zeros(0, np.int64), zeroed_outputs=np.zeros(0, np.int64),
              num_threads=np.int32(threads))


def _lower_to_ttir(ctx, jaxpr, grid_mapping, debug) -> tuple[str, tuple[int, int, int]]:
  """Pallas's Triton lowering: (TTIR in generic op form with locations, 3-d launch grid)."""
  from jax._src.pallas.triton import lowering  # deferred: it loads jaxlib's Triton dialect
  result = lowering.lower_jaxpr_to_triton_module(
      jaxpr, grid_mapping, _LOWERING_PLATFORM, _COMPUTE_CAPABILITY, mlir_ctx=ctx.module_context)
  op = result.module.operation
  if debug:
    print(f"\nThe Triton module for pallas_call {jaxpr.debug_info.func_src_info}:")
    print(op.get_asm(enable_debug_info=True, pretty_debug_info=True))
  grid = tuple(int(g) for g in result.grid)
  return (op.get_asm(enable_debug_info=True, print_generic_op_form=True),
          grid + (1,) * (3 - len(grid)))


def _print_debug(jaxpr, grid_mapping) -> None:
  """What debug=True prints on GPU."""
  where = jaxpr.debug_info.func_src_info
  print(f"\nThe kernel jaxpr for pallas_call {where}:")
  print(jaxpr)
  print(f"The grid mapping for pallas_call {where}:")
  print(grid_mapping)


# TextSource key -> kernel: a kernel lowered again in this process (another jit of the same call,
# a retrace) is not even looked up on disk.
_kernels: dict[str, compiler.CompiledKernel] = {}


def _compile(ttir: str, options: compiler.CPUOptions) -> compiler.CompiledKernel:
  source = frontend.TextSource(ttir, options)
  key = source.key
  kernel = _kernels.get(key)
  if kernel is None:
    kernel = compiler.compile_ttir(source, options)
    _kernels[key] = kernel
    dump_dir = triton_lib._dump_dir(options.debug)
    if dump_dir:
      path = triton_lib._dump_kernel_artifacts(dump_dir, (key,), options, kernel)
      if options.debug:
        print(f"jax_triton_cpu: wrote the IR of kernel '{kernel.name}' to {path}",
              file=sys.stderr)
  return kernel


mlir.register_lowering(pallas_call_p, _pallas_call_cpu_lowering, platform="cpu")
