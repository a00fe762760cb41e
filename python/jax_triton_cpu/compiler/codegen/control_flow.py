"""Structured control flow: scf.for, scf.if, scf.while, and the function's return.

Values carried across control flow live in slots: an alloca for a scalar (promoted to SSA values
by LLVM's mem2reg) or a stack buffer for a tensor.
"""
from __future__ import annotations

from llvmlite import ir as llvm

from .. import ir
from . import memory, types as T
from .lowering import Buffer, Shifted
from .registry import STATEMENT, register


def _bind_slots(lo, values, slots):
  for v, slot in zip(values, slots):
    lo.env[v] = slot


def _emit_body(lo, block: ir.Block):
  """Emits a region's ops, except its terminator, which the caller handles."""
  for op in block.ops[:-1]:
    lo.emit_op(op)
  return block.terminator


def _uniform_step(lo, carried: ir.Value, initial: ir.Value, yielded: ir.Value):
  """The scalar step (a value, or an int) if the loop moves `carried` by the same amount in every
  lane (yield carried + splat(step), or + a splat constant); else None."""
  op = yielded.op
  if (op is None or op.name not in ("tt.addptr", "arith.addi") or op.operands[0] is not carried
      or not ir.is_tensor(carried.type)
      or isinstance(lo.env.get(initial), Shifted)):
    return None
  step = op.operands[1].op
  if step is not None and step.name == "tt.splat":
    return step.operands[0]
  if step is not None and step.name == "arith.constant" and isinstance(step.attrs.get("value"), int):
    return step.attrs["value"]  # a splat of a constant step (BLOCK_K * a stride specialised to 1)
  return None


def _write_slots(lo, values, slots):
  """Writes values into slots that they may also read (a loop's own carried values): tensors read
  from another slot, or computed from an expression, go through a scratch buffer first."""
  staged = []
  for v, slot in zip(values, slots):
    if isinstance(slot, Shifted):  # offset += step
      offset = slot.offset
      staged.append((offset, lo.builder.add(lo.builder.load(offset.pointer, typ=offset.llvm_type),
                                            step_of(lo, slot))))
      continue
    if not isinstance(slot, Buffer):
      staged.append((slot, lo.scalar(v)))
      continue
    held = lo.env.get(v)
    if held is slot:
      continue
    if isinstance(held, Buffer) and held not in slots:
      staged.append((slot, held))
    else:
      scratch = lo.new_buffer(v.type)
      lo.compute_into(v, scratch)
      staged.append((slot, scratch))
  for slot, value in staged:
    if isinstance(slot, Buffer):
      lo.memcpy(slot.pointer, value.pointer, slot.nbytes)
    else:
      lo.builder.store(value, slot.pointer)


@register(STATEMENT, "scf.for")
def _for(lo, op):
  b = lo.builder
  lower, upper, step = (lo.scalar(v) for v in op.operands[:3])
  inits = op.operands[3:]
  body = op.regions[0].block
  iv, *carried = body.args
  slots = []
  for v, init, yielded in zip(carried, inits, body.terminator.operands):
    increment = _uniform_step(lo, v, init, yielded)
    if increment is None:
      slots.append(lo.new_slot(v.type))
      lo.store_slot(slots[-1], init)
      continue
    if not lo.plan.cheap(init):
      lo.env[init] = lo.buffer(init)
    element = ir.element_type(v.type)
    is_pointer = isinstance(element, ir.PointerType)
    offset = lo.new_slot(ir.ScalarType("i64") if is_pointer else element)
    lo.builder.store(llvm.Constant(offset.llvm_type, 0), offset.pointer)
    shifted = Shifted(init, offset, T.memory_type(element.pointee) if is_pointer else None)
    shifted.step = increment
    if is_pointer and isinstance(lo.env.get(init), Buffer) and _rows_unproven(lo, init):
      shifted.rows_contiguous = memory.rows_contiguous(lo, lo.env[init])
    slots.append(shifted)
  signed = not op.attrs.get("unsignedCmp", False)
  less = (lambda x, y: b.icmp_signed("<", x, y)) if signed else (lambda x, y: b.icmp_unsigned("<", x, y))

  loop = lo.llvm_function.append_basic_block("for.body")
  done = lo.llvm_function.append_basic_block("for.end")
  pre = b.block
  b.cbranch(less(lower, upper), loop, done)
  b.position_at_end(loop)
  index = b.phi(lower.type)
  index.add_incoming(lower, pre)
  lo.env[iv] = index
  _bind_slots(lo, carried, slots)
  with lo.repeated(_trip_count(lower, upper, step)):
    terminator = _emit_body(lo, body)
  _write_slots(lo, terminator.operands, slots)
  following = b.add(index, step)
  index.add_incoming(following, b.block)
  _loop_hints(lo, op, b.cbranch(less(following, upper), loop, done))
  b.position_at_end(done)
  _bind_slots(lo, op.results, slots)


def _rows_unproven(lo, pointers: ir.Value) -> bool:
  """Whether loads through this pointer tensor would test each chunk's contiguity at run time:
  rows of scalars (not block pointers) longer than one lane chunk that axis info cannot prove
  contiguous (the tutorial matmul's `offs_bn = (...) % N`)."""
  element = pointers.type.element.pointee
  n = pointers.type.shape[-1]
  lanes = lo.lanes_for(ir.TensorType(pointers.type.shape, element))
  return (isinstance(element, ir.ScalarType) and n > 1 and lanes > 1
          and lo.axis[pointers].contiguity[-1] % lanes != 0)


def _loop_hints(lo, op, back_edge):
  """tl.range(..., disable_licm=True) / tl.condition(..., disable_licm=True): triton's only
  `llvm.loop_annotation` (a LICM-disable one), as LLVM loop metadata on the loop's back edge."""
  if "licm" not in str(op.attrs.get("llvm.loop_annotation", "")):
    return
  module = lo.module
  disable = module.add_metadata([llvm.MetaDataString(module, "llvm.licm.disable")])
  # A loop ID is a node of its own (not add_metadata's shared one) that refers to itself.
  loop_id = llvm.MDValue(module, [disable], name=str(len(module.metadata)))
  loop_id.operands = (loop_id, disable)
  back_edge.set_metadata("llvm.loop", loop_id)


def step_of(lo, shifted: Shifted):
  """A Shifted slot's step per iteration, in its offset's type."""
  if isinstance(shifted.step, int):
    return llvm.Constant(shifted.offset.llvm_type, shifted.step)
  return _widen(lo, lo.scalar(shifted.step), shifted.offset.llvm_type)


def _trip_count(lower, upper, step) -> int | None:
  if all(isinstance(v, llvm.Constant) for v in (lower, upper, step)) and step.constant > 0:
    return max(0, -(-(upper.constant - lower.constant) // step.constant))
  return None


def _widen(lo, value, llvm_type):
  """An integer step in the offset's type (steps are signed)."""
  if value.type == llvm_type:
    return value
  if value.type.width < llvm_type.width:
    return lo.builder.sext(value, llvm_type)
  return lo.builder.trunc(value, llvm_type)


@register(STATEMENT, "scf.if")
def _if(lo, op):
  b = lo.builder
  slots = [lo.new_slot(r.type) for r in op.results]
  condition = lo.scalar(op.operands[0])
  regions = [r for r in op.regions if r.blocks]
  then_block = lo.llvm_function.append_basic_block("if.then")
  else_block = lo.llvm_function.append_basic_block("if.else")
  done = lo.llvm_function.append_basic_block("if.end")
  b.cbranch(condition, then_block, else_block)
  for region, llvm_block in zip([regions[0], regions[1] if len(regions) > 1 else None],
                                [then_block, else_block]):
    b.position_at_end(llvm_block)
    if region is not None:
      terminator = _emit_body(lo, region.block)
      for slot, v in zip(slots, terminator.operands):  # results are fresh: no read-write hazard
        lo.store_slot(slot, v)
    b.branch(done)
  b.position_at_end(done)
  _bind_slots(lo, op.results, slots)


@register(STATEMENT, "scf.while")
def _while(lo, op):
  b = lo.builder
  before, after = (r.block for r in op.regions)
  carried = [lo.new_slot(v.type) for v in before.args]
  passed = [lo.new_slot(v.type) for v in after.args]
  for slot, init in zip(carried, op.operands):
    lo.store_slot(slot, init)
  header = lo.llvm_function.append_basic_block("while.cond")
  loop = lo.llvm_function.append_basic_block("while.body")
  done = lo.llvm_function.append_basic_block("while.end")
  b.branch(header)
  b.position_at_end(header)
  _bind_slots(lo, before.args, carried)
  condition = _emit_body(lo, before)  # scf.condition(%cond, values...)
  for slot, v in zip(passed, condition.operands[1:]):
    lo.store_slot(slot, v)
  b.cbranch(lo.scalar(condition.operands[0]), loop, done)
  b.position_at_end(loop)
  _bind_slots(lo, after.args, passed)
  with lo.repeated(None):
    terminator = _emit_body(lo, after)
  for slot, v in zip(carried, terminator.operands):
    lo.store_slot(slot, v)
  _loop_hints(lo, op, b.branch(header))
  b.position_at_end(done)
  _bind_slots(lo, op.results, passed)


@register(STATEMENT, "tt.return")
def _return(lo, op):
  if op.operands:
    raise lo.error(op, "returning values from a kernel is not supported")
  lo.builder.ret_void()


@register(STATEMENT, "ttg.barrier", "gpu.barrier")
def _barrier(lo, op):
  pass  # tl.debug_barrier: one program runs on one thread, so it has nothing to wait for


@register(STATEMENT, "llvm.intr.assume")
def _assume(lo, op):
  """tl.assume: a fact LLVM may use (a non-negative program id, a positive stride, ...)."""
  lo.call_intrinsic("assume", [lo.scalar(op.operands[0])], ret=llvm.VoidType(), overload=[])


def _jump(lo, target: ir.Block, values):
  """Passes `values` to `target`'s arguments and branches there."""
  for arg, v in zip(target.args, values):
    lo.store_slot(lo.env[arg], v)
  lo.builder.branch(lo.block_targets[target])


@register(STATEMENT, "cf.br")
def _br(lo, op):
  _jump(lo, op.successors[0], op.operands)


@register(STATEMENT, "cf.cond_br")
def _cond_br(lo, op):
  b = lo.builder
  condition, *rest = op.operands
  sizes = op.attrs.get("operandSegmentSizes") or [1, len(rest), 0]
  true_values, false_values = rest[:sizes[1]], rest[sizes[1]:]
  edges = [lo.llvm_function.append_basic_block("edge") for _ in range(2)]
  b.cbranch(lo.scalar(condition), *edges)
  for edge, target, values in zip(edges, op.successors, (true_values, false_values)):
    b.position_at_end(edge)
    _jump(lo, target, values)
