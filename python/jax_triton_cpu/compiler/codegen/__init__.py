"""Code generator: our IR -> LLVM IR (llvmlite), one module per kernel."""
from __future__ import annotations

from llvmlite import ir as llvm

from .. import inline, ir
from ..options import CPUOptions
from ..target import Target
# (importing a rule module registers its rules)
from . import (abi, atomics, bounds, control_flow, debug, dot, dot_amx, dot_scaled,  # noqa: F401
               elementwise, libdevice, math, memory, reduction, shape, tensor)
from .lowering import FunctionLowering
from .registry import supported


# Tiles live on the program's stack; threads have 8 MiB stacks (the default RLIMIT_STACK, and
# OMP_STACKSIZE that jax_triton_cpu._runtime sets for OpenMP workers), so kernels that would need
# more than this fail to compile with a clear error instead of crashing.
STACK_LIMIT = 4 << 20

# Region terminators, handled by the rule of the op that owns the region.
TERMINATORS = frozenset({"scf.yield", "scf.condition", "tt.reduce.return", "tt.scan.return",
                         "tt.map_elementwise.return"})


def check_supported(function: ir.Function, kernel_name: str):
  """Raises NotImplementedError naming the first op the CPU backend cannot compile, and where."""
  for op in function.walk():
    if not supported(op.name) and op.name not in TERMINATORS:
      where = f" at {op.loc}" if op.loc else ""
      raise NotImplementedError(
          f"Triton op '{op.name}' is not supported by the CPU backend "
          f"(in kernel '{kernel_name}'{where})")


def generate(module: ir.Module, target: Target, options: CPUOptions):
  """Returns (LLVM IR text, kernel symbol, trampoline symbol, elements one program processes or
  None where that depends on run-time trip counts)."""
  function = inline.inline_calls(module)
  check_supported(function, function.name)
  llvm_module = llvm.Module(name=function.name)
  llvm_module.triple = target.triple
  kernel = abi.declare_kernel(llvm_module, function, function.name, options.bounds_check)
  lowering = FunctionLowering(function, kernel, target, options, function.name)
  params, lowering.program_ids, lowering.num_programs, extents = abi.kernel_params(
      kernel, function)
  if options.bounds_check:
    lowering.bounds = bounds.Bounds(function, params, extents)
  for v, value in zip(function.params, params):
    lowering.env[v] = value
  lowering.emit_region(function.region)
  if lowering.stack_bytes > STACK_LIMIT:
    raise NotImplementedError(
        f"kernel '{function.name}' needs {lowering.stack_bytes / 2**20:.1f} MiB of stack for its "
        f"tiles, more than the {STACK_LIMIT // 2**20} MiB the CPU backend allows (threads have "
        "8 MiB stacks); use smaller blocks")
  trampoline = abi.define_trampoline(llvm_module, kernel, len(function.params),
                                     f"{function.name}_launch", list(extents), lowering.streams,
                                     dot_amx.finish_tiles(llvm_module))
  return str(llvm_module), kernel.name, trampoline.name, lowering.work

