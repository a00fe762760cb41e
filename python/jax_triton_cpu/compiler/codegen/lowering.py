"""Lowering of one Triton function body to LLVM IR.

Scalars become LLVM values at their program point. A tensor is either held in a stack buffer
(`Buffer`) or lazy: computed lane chunk by lane chunk (`Index`) inside the loop nest of the op that
needs it, so chains of elementwise ops fuse into one loop whose body works on native-width SIMD
vectors. Code size does not grow with the block size: loops, not unrolled vectors, cover a tile.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math

from llvmlite import ir as llvm

from .. import ir
from ..axis_info import AxisAnalysis
from ..options import CPUOptions
from ..target import Target
from . import registry, types as T
from .plan import Plan, is_lazy


@dataclasses.dataclass(frozen=True, eq=False)
class Index:
  """A chunk of `lanes` consecutive elements along the last dimension of a tensor: `dims` holds one
  i32 per dimension, the last being the chunk's first position."""
  dims: tuple
  lanes: int


class Buffer:
  """A tensor in memory, row-major, dense."""

  def __init__(self, pointer, tensor_type: ir.TensorType):
    self.pointer = pointer
    self.type = tensor_type
    self.element = T.memory_type(tensor_type)
    self.strides = tuple(math.prod(tensor_type.shape[d + 1:]) for d in range(tensor_type.rank))

  @property
  def nbytes(self) -> int:
    return self.type.numel * _size_of(self.element)

  def address(self, builder, index: Index):
    # Positions are in [0, numel), and numel fits an i32 (stack buffers are small): `nsw` lets
    # LLVM widen the index to 64 bits once and keep row addresses in registers, instead of
    # sign-extending the sum at every access (two extra instructions per load of A in a dot).
    flat = None
    for d, stride in zip(index.dims, self.strides):
      term = d if stride == 1 else builder.mul(d, T.I32(stride), flags=["nsw"])
      flat = term if flat is None else builder.add(flat, term, flags=["nsw"])
    return builder.gep(self.pointer, [flat], inbounds=True, source_etype=self.element)

  def load(self, builder, index: Index):
    value = builder.load(self.address(builder, index), typ=T.of_lanes(self.element, index.lanes),
                         align=_size_of(self.element))
    if T.scalar_type(self.type) == T.I1:  # bools are stored as bytes
      value = builder.icmp_unsigned("!=", value, T.constant(value.type, 0))
    return value

  def store(self, builder, index: Index, value):
    if T.scalar_type(self.type) == T.I1:
      value = builder.zext(value, T.of_lanes(T.I8, index.lanes))
    builder.store(value, self.address(builder, index), align=_size_of(self.element))


def _size_of(t: llvm.Type) -> int:
  if isinstance(t, llvm.PointerType):
    return 8
  if isinstance(t, llvm.IntType):
    return max(1, t.width // 8)
  return {"half": 2, "float": 4, "double": 8}[str(t)]


class Slot:
  """Storage of a scalar carried across control flow (mem2reg turns it into SSA values)."""

  def __init__(self, pointer, llvm_type):
    self.pointer, self.llvm_type = pointer, llvm_type


class Shifted:
  """A loop-carried tensor that each iteration moves by a uniform step (`p += BLOCK * stride`):
  held as its initial value, recomputed lazily, plus a scalar offset in a slot, rather than as a
  tensor of pointers copied every iteration."""

  def __init__(self, initial: ir.Value, offset: Slot, pointee=None):
    self.initial, self.offset, self.pointee = initial, offset, pointee
    # For pointers whose contiguity axis info cannot prove (`(offs + j) % N`): an i1, computed
    # once before the loop, telling whether every row of `initial` runs over consecutive elements
    # (memory.rows_contiguous); loads then test it instead of each chunk's pointers.
    self.rows_contiguous = None

  def load(self, lowering, index: "Index"):
    b = lowering.builder
    base = lowering.evaluate(self.initial, index)
    offset = T.splat(b, b.load(self.offset.pointer, typ=self.offset.llvm_type), T.lanes(base))
    if self.pointee is None:
      return b.add(base, offset)
    return b.gep(base, [offset], source_etype=self.pointee)


class UnsupportedOp(NotImplementedError):
  pass


class FunctionLowering:

  def __init__(self, function: ir.Function, llvm_function: llvm.Function, target: Target,
               options: CPUOptions, kernel_name: str):
    self.function = function
    self.llvm_function = llvm_function
    self.module = llvm_function.module
    self.target = target
    self.options = options
    self.kernel_name = kernel_name
    self.axis = AxisAnalysis(function)
    self.plan = Plan(function)
    self.env: dict[ir.Value, object] = {}
    entry = llvm_function.append_basic_block("entry")
    self.alloca_builder = llvm.IRBuilder(entry)  # allocas stay in the entry block
    body = llvm_function.append_basic_block("body")
    self.alloca_builder.branch(body)
    self.alloca_builder.position_before(entry.terminator)
    self.builder = llvm.IRBuilder(body)
    self.program_ids: tuple = ()
    self.bounds = None  # bounds.Bounds in checked mode
    self.streams = False  # whether a store may be non-temporal (the launch then ends in sfence)
    self.num_programs: tuple = ()
    self._memo: dict = {}
    # Elements one program processes (loop nests and dot products), None once it depends on a
    # trip count known only at run time: the launcher keeps small launches on one thread.
    self.work: int | None = 0
    self.stack_bytes = 0  # the stack buffers one program uses (checked against STACK_LIMIT)
    self._work_scale = 1
    flags = ["contract"] if options.enable_fp_fusion else []
    if options.enable_fast_math:
      flags += ["reassoc", "nsz", "arcp", "afn"]
    self.fp_flags = tuple(flags)

  # ---- errors ---------------------------------------------------------------------------------

  def error(self, op: ir.Op, what: str) -> UnsupportedOp:
    where = f" at {op.loc}" if op.loc else ""
    return UnsupportedOp(f"{what} (in kernel '{self.kernel_name}'{where})")

  # ---- values ---------------------------------------------------------------------------------

  def scalar(self, v: ir.Value):
    value = self.env[v]
    if isinstance(value, Slot):
      return self.builder.load(value.pointer, typ=value.llvm_type)
    return value

  def evaluate(self, v: ir.Value, index: Index):
    """The value of `v` at the lane chunk `index` of its shape: a scalar when it is the same in every
    lane of the chunk, else a vector of index.lanes lanes."""
    held = self.env.get(v)
    if held is not None:
      if isinstance(held, Buffer):
        return held.load(self.builder, index)
      if isinstance(held, Shifted):
        return held.load(self, index)
      return self.scalar(v)
    key = (v, index)
    if key in self._memo:
      return self._memo[key]
    op = v.op
    if op is None or not is_lazy(v):
      raise AssertionError(f"value {v} used before it is defined")
    if op.name in registry.TENSOR:
      result = registry.TENSOR[op.name](self, v, index)
    else:
      args = [self.evaluate(o, index) for o in op.operands]
      n = max(map(T.lanes, args), default=1)
      result = registry.ELEMENTWISE[op.name](self, op, *(T.splat(self.builder, a, n) for a in args))
    self._memo[key] = result
    return result

  def elementwise_args(self, op: ir.Op, index: Index):
    """Evaluates all operands of `op` at `index`, splatted to one lane count."""
    args = [self.evaluate(o, index) for o in op.operands]
    n = max(map(T.lanes, args), default=1)
    return [T.splat(self.builder, a, n) for a in args]

  def per_lane(self, index: Index, compute):
    """Builds a chunk lane by lane, from compute(Index of one lane) -> scalar (for ops whose lanes
    do not map to consecutive positions of their operands)."""
    if index.lanes == 1:
      return compute(index)
    b = self.builder
    result = None
    for lane in range(index.lanes):
      one = Index(index.dims[:-1] + (b.add(index.dims[-1], T.I32(lane)),), 1)
      value = compute(one)
      if result is None:
        result = llvm.Constant(llvm.VectorType(value.type, index.lanes), llvm.Undefined)
      result = b.insert_element(result, value, T.I32(lane))
    return result

  def apply_region(self, block: ir.Block, args):
    """Runs a combine region (tt.reduce / tt.scan bodies) on LLVM scalars or vectors."""
    for a, value in zip(block.args, args):
      self.env[a] = value
    for op in block.ops[:-1]:
      if op.name in registry.SCALAR and op.name not in registry.ELEMENTWISE:
        registry.SCALAR[op.name](self, op)
      elif op.name in registry.ELEMENTWISE:
        values = [self.scalar(o) for o in op.operands]
        n = max(map(T.lanes, values), default=1)
        self.env[op.result] = registry.ELEMENTWISE[op.name](
            self, op, *(T.splat(self.builder, v, n) for v in values))
      else:
        raise self.error(op, f"op '{op.name}' is not supported inside a combine function")
    results = [self.scalar(o) for o in block.terminator.operands]
    n = max(map(T.lanes, results), default=1)
    return [T.splat(self.builder, r, n) for r in results]

  def buffer(self, v: ir.Value) -> Buffer:
    """`v` in memory, computing it into a new buffer if it is lazy."""
    held = self.env.get(v)
    if isinstance(held, Buffer):
      return held
    buf = self.new_buffer(v.type)
    self.compute_into(v, buf)
    return buf

  def compute_into(self, v: ir.Value, dest: Buffer):
    held = self.env.get(v)
    if held is dest:
      return
    if isinstance(held, Buffer):
      self.memcpy(dest.pointer, held.pointer, dest.nbytes)
      return
    with self.loop_nest(v.type.shape, self.lanes_for(v.type)) as index:
      dest.store(self.builder, index, T.splat(self.builder, self.evaluate(v, index), index.lanes))

  # ---- storage --------------------------------------------------------------------------------

  def new_buffer(self, tensor_type: ir.TensorType) -> Buffer:
    element = T.memory_type(tensor_type)
    self.stack_bytes += tensor_type.numel * _size_of(element)
    storage = self.alloca_builder.alloca(llvm.ArrayType(element, tensor_type.numel))
    storage.align = 64
    storage.type = T.PTR  # an opaque pointer: llvmlite would otherwise type-check typed pointers
    return Buffer(storage, tensor_type)

  def new_slot(self, type_) -> "Slot | Buffer":
    if ir.is_tensor(type_):
      return self.new_buffer(type_)
    return self.slot_of(T.scalar_type(type_))

  def slot_of(self, llvm_type) -> Slot:
    """A slot for an LLVM scalar or vector, allocated in the entry block."""
    storage = self.alloca_builder.alloca(llvm_type)
    storage.type = T.PTR
    return Slot(storage, llvm_type)

  def store_slot(self, slot, v: ir.Value):
    if isinstance(slot, Buffer):
      self.compute_into(v, slot)
    else:
      self.builder.store(self.scalar(v), slot.pointer)

  def memcpy(self, dest, src, nbytes: int):
    fn = self.intrinsic("llvm.memcpy.p0.p0.i64", llvm.VoidType(), [T.PTR, T.PTR, T.I64, T.I1])
    self.builder.call(fn, [dest, src, T.I64(nbytes), T.I1(0)])

  def intrinsic(self, name: str, ret, arg_types) -> llvm.Function:
    return T.declare(self.module, name, ret, arg_types)

  def call_intrinsic(self, base: str, args, ret=None, overload=None):
    """Calls llvm.<base>.<mangled overload types>(args)."""
    return T.call_intrinsic(self.builder, base, args, ret, overload)

  # ---- loops ----------------------------------------------------------------------------------

  def lanes_for(self, tensor_type: ir.TensorType, *others) -> int:
    """Lanes per chunk: one SIMD register of the widest element involved, within the last dim."""
    bits = max([32] + [ir.element_type(t).bits for t in (tensor_type, *others)])
    return max(1, min(tensor_type.shape[-1], self.target.vector_bits // bits))

  @contextlib.contextmanager
  def loop(self, count, step: int = 1):
    """A counted loop (count > 0, a multiple of step; an int, or an i32 value known at run time);
    yields the i32 induction variable."""
    if isinstance(count, int) and count == step:
      yield T.I32(0)
      return
    b = self.builder
    pre = b.block
    body = self.llvm_function.append_basic_block("loop")
    done = self.llvm_function.append_basic_block("loop.end")
    b.branch(body)
    b.position_at_end(body)
    i = b.phi(T.I32)
    i.add_incoming(T.I32(0), pre)
    yield i
    nxt = b.add(i, T.I32(step))
    i.add_incoming(nxt, b.block)
    bound = T.I32(count) if isinstance(count, int) else count
    b.cbranch(b.icmp_signed("<", nxt, bound), body, done)
    b.position_at_end(done)

  def count_work(self, elements: int):
    if self.work is not None:
      self.work += elements * self._work_scale

  @contextlib.contextmanager
  def repeated(self, trips: int | None):
    """Scales the work counted inside by a loop's trip count (None: not known at compile time)."""
    saved = self._work_scale
    if trips is None:
      self.work = None
    else:
      self._work_scale *= max(trips, 0)
    try:
      yield
    finally:
      self._work_scale = saved

  @contextlib.contextmanager
  def loop_nest(self, shape: tuple[int, ...], lanes: int):
    """Loops over every lane chunk of a tensor of `shape`; yields the chunk's Index.

    The dimensions before the last are covered by one flat loop (their indices derived from it),
    not one loop each: LLVM unrolls loops of a few iterations completely, and nests of them (the
    2x2x...x2 tensors of tl.sort, say) would make code size grow with the tensor."""
    self.count_work(math.prod(shape))
    with contextlib.ExitStack() as stack:
      outer = shape[:-1]
      if len(outer) <= 1:
        dims = [stack.enter_context(self.loop(n)) for n in outer]
      else:
        flat = stack.enter_context(self.loop(math.prod(outer)))
        dims = [self._digit(flat, outer, d) for d in range(len(outer))]
      dims.append(stack.enter_context(self.loop(shape[-1], lanes)))
      saved, self._memo = self._memo, {}
      try:
        yield Index(tuple(dims), lanes)
      finally:
        self._memo = saved

  def _digit(self, flat, shape: tuple[int, ...], d: int):
    """Index along dimension d of the row-major position `flat` in `shape`."""
    if shape[d] == 1:
      return T.I32(0)
    inner = math.prod(shape[d + 1:])
    value = flat if inner == 1 else self.builder.udiv(flat, T.I32(inner))
    return value if d == 0 else self.builder.urem(value, T.I32(shape[d]))

  # ---- ops ------------------------------------------------------------------------------------

  def emit_block(self, block: ir.Block):
    for op in block.ops:
      self.emit_op(op)

  def emit_region(self, region: ir.Region):
    """A function body: one block, or blocks joined by cf.br / cf.cond_br (an early return).
    Block arguments live in slots that the branches fill."""
    entry, *others = region.blocks
    self.block_targets = {}
    for block in others:
      self.block_targets[block] = self.llvm_function.append_basic_block("block")
      for arg in block.args:
        self.env[arg] = self.new_slot(arg.type)
    self.emit_block(entry)
    for block in others:
      self.builder.position_at_end(self.block_targets[block])
      self.emit_block(block)

  def emit_op(self, op: ir.Op):
    if op.name in registry.STATEMENT:
      registry.STATEMENT[op.name](self, op)
    elif any(ir.is_tensor(r.type) for r in op.results):
      for r in op.results:  # lazy; computed now only if the plan says so
        if r in self.plan.materialized:
          buf = self.new_buffer(r.type)
          if r in self.plan.fused_reductions:
            from .reduction import compute_with_reductions  # reduction imports this module
            compute_with_reductions(self, r, buf, self.plan.fused_reductions[r])
          else:
            self.compute_into(r, buf)
          self.env[r] = buf
    elif op.name in registry.SCALAR:
      registry.SCALAR[op.name](self, op)
    elif op.name in registry.ELEMENTWISE:
      op_args = [self.scalar(o) for o in op.operands]
      self.env[op.result] = registry.ELEMENTWISE[op.name](self, op, *op_args)
    else:
      raise self.error(op, f"Triton op '{op.name}' is not supported by the CPU backend")
