"""The kernel's C ABI (triton-cpu's) and the launch trampoline (docs/abi.md)."""
from __future__ import annotations

from llvmlite import ir as llvm

from .. import ir
from . import debug, types as T


PROGRAM_ARGS = ("pid_x", "pid_y", "pid_z", "grid_x", "grid_y", "grid_z")


def abi_type(triton_type) -> llvm.Type:
  """How a kernel parameter of this Triton type is passed. bf16 scalars travel as their 16 bits
  (uint16_t): LLVM's x86 lowering of `bfloat` arguments on CPUs without AVX512-BF16 calls
  __truncsfbf2, which libgcc before GCC 13 does not have."""
  return T.scalar_type(triton_type)


def pointer_params(function: ir.Function) -> list[int]:
  return [i for i, p in enumerate(function.params) if isinstance(p.type, ir.PointerType)]


def declare_kernel(module: llvm.Module, function: ir.Function, name: str,
                   checked: bool = False) -> llvm.Function:
  """The kernel function; in checked mode it also takes the byte extent (i64) of each pointer
  parameter's buffer, after the grid sizes."""
  extents = pointer_params(function) if checked else []
  params = [abi_type(p.type) for p in function.params] + [T.I32] * 6 + [T.I64] * len(extents)
  kernel = llvm.Function(module, llvm.FunctionType(llvm.VoidType(), params), name=name)
  for arg, p in zip(kernel.args, function.params):
    arg.name = p.name or ""
  names = list(PROGRAM_ARGS) + [f"extent{i}" for i in extents]
  for arg, n in zip(kernel.args[len(function.params):], names):
    arg.name = n
  return kernel


def kernel_params(kernel: llvm.Function, function: ir.Function):
  """The kernel's parameters, the program ids, the grid sizes and {pointer parameter index: its
  buffer's byte extent} (empty unless checked)."""
  n = len(function.params)
  extents = dict(zip(pointer_params(function), kernel.args[n + 6:]))
  return (list(kernel.args[:n]), tuple(kernel.args[n:n + 3]), tuple(kernel.args[n + 3:n + 6]),
          extents)


def define_trampoline(module: llvm.Module, kernel: llvm.Function, n_params: int, name: str,
                      extents: list[int] = (), fence_stores: bool = False, around=None):
  """int32_t NAME(void* const* args, uint64_t first, uint64_t last, uint32_t gx, gy, gz):
  runs programs [first, last) of the flattened grid (x fastest); stops at the first program that
  fails (a device assert, an out-of-bounds access in checked mode) and returns its status. For
  each parameter index i in `extents`, args[n_params + i] points at the byte size of its buffer
  (docs/abi.md), passed to a checked kernel. Also defines `const char* NAME_message(void)`,
  the calling thread's failure message, and `uint64_t NAME_program(void)`, the flattened id of the
  program the calling thread runs (the runtime names it when kernel code faults).
  fence_stores: the kernel may store non-temporally (weakly ordered), so the call ends with an
  sfence, before the runtime tells anyone that the launch is done.
  around: None, or (enter, leave), each called with the builder to emit what runs before the
  first program and after the last (dot_amx.finish_tiles: the AMX tile configuration)."""
  message_fn = llvm.Function(module, llvm.FunctionType(T.PTR, []), name=f"{name}_message")
  builder = llvm.IRBuilder(message_fn.append_basic_block())
  builder.ret(debug.thread_state(module, builder)[2])
  program_fn = llvm.Function(module, llvm.FunctionType(T.I64, []), name=f"{name}_program")
  builder = llvm.IRBuilder(program_fn.append_basic_block())
  builder.ret(builder.load(debug.thread_state(module, builder)[1], typ=T.I64))
  fn_type = llvm.FunctionType(T.I32, [T.PTR, T.I64, T.I64, T.I32, T.I32, T.I32])
  fn = llvm.Function(module, fn_type, name=name)
  args, first, last, gx, gy, gz = fn.args
  for a, n in zip(fn.args, ("args", "first", "last", "grid_x", "grid_y", "grid_z")):
    a.name = n
  entry, loop, done = (fn.append_basic_block(n) for n in ("entry", "loop", "done"))
  b = llvm.IRBuilder(entry)
  status, program, _ = debug.thread_state(module, b)  # (once: valid for this whole call)
  values = []
  for i, t in enumerate(kernel.function_type.args[:n_params]):
    slot = b.load(b.gep(args, [T.I64(i)], source_etype=T.PTR), typ=T.PTR)
    values.append(b.load(slot, typ=t))
  extent_values = []
  for i in extents:
    slot = b.load(b.gep(args, [T.I64(n_params + i)], source_etype=T.PTR), typ=T.PTR)
    extent_values.append(b.load(slot, typ=T.I64))
  x0 = b.trunc(b.urem(first, b.zext(gx, T.I64)), T.I32)
  rest = b.udiv(first, b.zext(gx, T.I64))
  y0 = b.trunc(b.urem(rest, b.zext(gy, T.I64)), T.I32)
  z0 = b.trunc(b.udiv(rest, b.zext(gy, T.I64)), T.I32)
  b.store(T.I32(0), status)
  if around is not None:
    around[0](b)
  b.cbranch(b.icmp_unsigned("<", first, last), loop, done)

  b.position_at_end(loop)
  i, x, y, z = (b.phi(t) for t in (T.I64, T.I32, T.I32, T.I32))
  for phi, init in zip((i, x, y, z), (first, x0, y0, z0)):
    phi.add_incoming(init, entry)
  # Atomic, then a signal fence: LLVM may neither sink the store out of the loop nor move it past
  # the program's accesses, so the runtime's fault handler sees this program's id. (Free on x86.)
  b._insert(llvm.instructions.StoreAtomicInstr(b.block, i, program, "monotonic", 8))
  b.fence("seq_cst", "singlethread")
  b.call(kernel, values + [x, y, z, gx, gy, gz] + extent_values)
  x1 = b.add(x, T.I32(1))
  wrap_x = b.icmp_unsigned("==", x1, gx)
  y1 = b.select(wrap_x, b.add(y, T.I32(1)), y)
  wrap_y = b.and_(wrap_x, b.icmp_unsigned("==", y1, gy))
  next_i = b.add(i, T.I64(1))
  for phi, value in zip((i, x, y, z), (next_i, b.select(wrap_x, T.I32(0), x1),
                                       b.select(wrap_y, T.I32(0), y1),
                                       b.select(wrap_y, b.add(z, T.I32(1)), z))):
    phi.add_incoming(value, loop)
  failed = b.icmp_unsigned("!=", b.load(status, typ=T.I32), T.I32(0))
  b.cbranch(b.and_(b.icmp_unsigned("<", next_i, last), b.not_(failed)), loop, done)
  b.position_at_end(done)
  if fence_stores:
    b.call(T.declare(module, "llvm.x86.sse.sfence", llvm.VoidType(), []), [])
  if around is not None:
    around[1](b)
  b.ret(b.load(status, typ=T.I32))
  return fn
