"""Atomics: tt.atomic_rmw, tt.atomic_cas, tt.atomic_load / store and tt.atomic_poll, on scalars or
element by element on tensors.

Masked-off elements do not touch memory. Orderings follow the op's memory semantics; the scope
(gpu / cta / sys) means nothing on a CPU, where every atomic is system-wide.
"""
from __future__ import annotations

from llvmlite import ir as llvm

from .. import ir
from . import bounds, types as T
from .elementwise import bf16_to_f32, f32_to_bf16
from .registry import STATEMENT, register

_ORDERING = {1: "monotonic", 2: "acquire", 3: "release", 4: "acq_rel"}
_FAILURE_ORDERING = {1: "monotonic", 2: "acquire", 3: "monotonic", 4: "acquire"}
# Triton's RMWOp enum -> (LLVM atomicrmw op for ints, for floats)
_RMW = {1: ("and", None), 2: ("or", None), 3: ("xor", None), 4: ("add", "fadd"),
        5: ("add", "fadd"), 6: ("max", "fmax"), 7: ("min", "fmin"), 8: ("umax", None),
        9: ("umin", None), 10: ("xchg", "xchg")}


def _int_type(t: llvm.Type) -> llvm.IntType:
  return llvm.IntType({"half": 16, "float": 32, "double": 64}.get(str(t), getattr(t, "width", 64)))


def _masked(lo, mask, element: llvm.Type, emit):
  """Runs emit() -> value only where mask is true; gives 0 elsewhere."""
  b = lo.builder
  if mask is None:
    return emit()
  slot = lo.slot_of(element)
  b.store(llvm.Constant(element, 0), slot.pointer)
  with b.if_then(mask):
    b.store(emit(), slot.pointer)
  return b.load(slot.pointer, typ=element)


def _cas_loop(lo, pointer, element: llvm.Type, update, ordering):
  """old = *p; do { new = update(old) } while (!cas(p, old, new)); returns old."""
  b = lo.builder
  as_int = _int_type(element)
  start = b.load(pointer, typ=as_int, align=as_int.width // 8)
  before = b.block
  loop = lo.llvm_function.append_basic_block("cas.loop")
  done = lo.llvm_function.append_basic_block("cas.end")
  b.branch(loop)
  b.position_at_end(loop)
  old = b.phi(as_int)
  old.add_incoming(start, before)
  new = update(old)
  pair = b.cmpxchg(pointer, old, new, ordering, _failure(ordering))
  seen = b.extract_value(pair, 0)
  old.add_incoming(seen, b.block)
  b.cbranch(b.extract_value(pair, 1), done, loop)
  b.position_at_end(done)
  return seen


def _failure(ordering: str) -> str:
  return {"monotonic": "monotonic", "acquire": "acquire", "release": "monotonic",
          "acq_rel": "acquire"}[ordering]


def _rmw(lo, op, pointer, value, triton_type: ir.ScalarType):
  b = lo.builder
  kind = op.attrs["atomic_rmw_op"]
  ordering = _ORDERING.get(op.attrs.get("sem", 4), "acq_rel")
  int_op, float_op = _RMW[kind]
  if triton_type.name == "bf16" and kind in (4, 5):  # no bf16 arithmetic in LLVM: a CAS loop
    return _cas_loop(lo, pointer, T.I16,
                     lambda old: f32_to_bf16(b, b.fadd(bf16_to_f32(b, old), bf16_to_f32(b, value))),
                     ordering)
  if triton_type.is_float and kind != 10:
    if float_op is None:
      raise lo.error(op, f"atomic op {kind} is not defined on floats")
    return b.atomic_rmw(float_op, pointer, value, ordering)
  if triton_type.is_float:  # exchange through the integer of the same width
    as_int = _int_type(value.type)
    old = b.atomic_rmw("xchg", pointer, b.bitcast(value, as_int), ordering)
    return b.bitcast(old, value.type)
  if triton_type.name == "i1":
    value = b.zext(value, T.I8)
    return b.icmp_unsigned("!=", b.atomic_rmw(int_op, pointer, value, ordering), T.I8(0))
  return b.atomic_rmw(int_op, pointer, value, ordering)


def _cas(lo, op, pointer, compare, value, triton_type: ir.ScalarType):
  b = lo.builder
  ordering = _ORDERING.get(op.attrs.get("sem", 4), "acq_rel")
  as_int = _int_type(value.type)
  if value.type != as_int:
    compare, value = b.bitcast(compare, as_int), b.bitcast(value, as_int)
  old = b.extract_value(b.cmpxchg(pointer, compare, value, ordering, _failure(ordering)), 0)
  element = T.scalar_type(triton_type)
  return old if element == as_int else b.bitcast(old, element)


def _atomic(lo, op, compute):
  """Applies compute(pointer, *values) -> old value to a scalar op or to each tensor element."""
  result = op.result
  element_type = ir.element_type(result.type)
  element = T.scalar_type(element_type)
  pointer_operand, *values = op.operands
  mask = values.pop() if op.name == "tt.atomic_rmw" and len(values) == 2 else None
  if not ir.is_tensor(result.type):
    args = [lo.scalar(v) for v in values]
    pointer = lo.scalar(pointer_operand)
    lo.env[result] = _masked(lo, lo.scalar(mask) if mask is not None else None, element,
                             lambda: _checked(lo, op, pointer, lambda: compute(pointer, *args)))
    return
  out = lo.new_buffer(result.type)
  with lo.loop_nest(result.type.shape, 1) as index:
    pointer = lo.evaluate(pointer_operand, index)
    args = [lo.evaluate(v, index) for v in values]
    m = lo.evaluate(mask, index) if mask is not None else None
    out.store(lo.builder, index, _masked(
        lo, m, element, lambda: _checked(lo, op, pointer, lambda: compute(pointer, *args))))
  lo.env[result] = out


def _checked(lo, op, pointer, access):
  """access(), after checking (in checked mode) the element it touches; runs where the mask is
  true, so a masked-off element is never checked."""
  element = T.memory_type(ir.element_type(op.operands[0].type).pointee)
  bounds.check(lo, op, op.operands[0], pointer, None, 1, False, element)
  return access()


@register(STATEMENT, "tt.atomic_rmw")
def _atomic_rmw(lo, op):
  t = ir.element_type(op.result.type)
  _atomic(lo, op, lambda p, v: _rmw(lo, op, p, v, t))


@register(STATEMENT, "tt.atomic_cas")
def _atomic_cas(lo, op):
  t = ir.element_type(op.result.type)
  _atomic(lo, op, lambda p, c, v: _cas(lo, op, p, c, v, t))


# Triton's MemSemantic -> the ordering of an atomic load or store (which has no acq_rel ordering)
_SEMANTICS = {1: "monotonic", 2: "acquire", 3: "release", 4: "seq_cst"}


def _element_access(lo, op, value_type, access):
  """Runs access(pointer, *values) -> value or None on a scalar op or on each tensor element,
  only where the op's last operand (the mask) is true."""
  pointer_operand, *values, mask = op.operands
  element = T.scalar_type(value_type)
  if not ir.is_tensor(pointer_operand.type):
    args = [lo.scalar(v) for v in values]
    pointer = lo.scalar(pointer_operand)
    return _masked(lo, lo.scalar(mask), element,
                   lambda: _checked(lo, op, pointer, lambda: access(pointer, *args)))
  out = lo.new_buffer(ir.TensorType(pointer_operand.type.shape, value_type))
  with lo.loop_nest(pointer_operand.type.shape, 1) as index:
    pointer = lo.evaluate(pointer_operand, index)
    args = [lo.evaluate(v, index) for v in values]
    out.store(lo.builder, index, _masked(
        lo, lo.evaluate(mask, index), element,
        lambda: _checked(lo, op, pointer, lambda: access(pointer, *args))))
  return out


@register(STATEMENT, "tt.atomic_load")
def _atomic_load(lo, op):
  value_type = ir.element_type(op.result.type)
  element = T.memory_type(value_type)
  ordering = _SEMANTICS[op.attrs.get("sem", 2)]
  lo.env[op.result] = _element_access(
      lo, op, value_type,
      lambda p: lo.builder.load_atomic(p, ordering, align=_int_type(element).width // 8, typ=element))


@register(STATEMENT, "tt.atomic_store")
def _atomic_store(lo, op):
  value_type = ir.element_type(op.operands[1].type)
  ordering = _SEMANTICS[op.attrs.get("sem", 3)]
  width = _int_type(T.memory_type(value_type)).width // 8

  def store(p, v):
    # (IRBuilder.store_atomic type-checks typed pointers, which opaque pointers fail)
    lo.builder._insert(llvm.instructions.StoreAtomicInstr(lo.builder.block, v, p, ordering, width))
    return llvm.Constant(T.scalar_type(value_type), 0)

  _element_access(lo, op, value_type, store)


_CLOCK_MONOTONIC = 1  # Linux's clockid_t


def _now_ns(lo):
  """CLOCK_MONOTONIC in nanoseconds (i64), from the C library's clock_gettime."""
  b = lo.builder
  timespec = llvm.LiteralStructType([T.I64, T.I64])
  slot = lo.slot_of(timespec)
  clock = T.declare(lo.module, "clock_gettime", T.I32, [T.I32, T.PTR])
  b.call(clock, [T.I32(_CLOCK_MONOTONIC), slot.pointer])
  seconds = b.load(b.gep(slot.pointer, [T.I32(0), T.I32(0)], source_etype=timespec), typ=T.I64)
  nanos = b.load(b.gep(slot.pointer, [T.I32(0), T.I32(1)], source_etype=timespec), typ=T.I64)
  return b.add(b.mul(seconds, T.I64(1_000_000_000)), nanos)


def _poll(lo, pointer, expected, deadline):
  """Spins until *pointer == expected (i1 true) or, with a deadline, until the clock passes it
  (false); loads at least once."""
  b = lo.builder
  element = expected.type
  loop = lo.llvm_function.append_basic_block("poll")
  wait = lo.llvm_function.append_basic_block("poll.wait")
  done = lo.llvm_function.append_basic_block("poll.end")
  b.branch(loop)
  b.position_at_end(loop)
  seen = b.load_atomic(pointer, "monotonic", align=element.width // 8, typ=element)
  matched = b.icmp_unsigned("==", seen, expected)
  b.cbranch(matched, done, wait)
  b.position_at_end(wait)
  if lo.target.triple.startswith("x86_64"):  # tell the core this is a spin-wait loop
    b.call(lo.intrinsic("llvm.x86.sse2.pause", llvm.VoidType(), []), [])
  if deadline is None:
    b.branch(loop)
  else:
    b.cbranch(b.icmp_unsigned(">=", _now_ns(lo), deadline), done, loop)
  b.position_at_end(done)
  result = b.phi(T.I1)
  result.add_incoming(T.I1(1), loop)
  if deadline is not None:
    result.add_incoming(T.I1(0), wait)
  return result


@register(STATEMENT, "tt.atomic_poll")
def _atomic_poll(lo, op):
  """tl.atomic_poll: waits until each element holds its expected value, or until the op's time
  budget (timeout_ns, shared by all elements) is spent; then an acquire fence if asked for.
  Programs of one launch run on as many threads as the launch has, not all at once: a poll that
  waits for a program the same thread has yet to run ends only by its timeout."""
  b = lo.builder
  pointer_operand, expected, *timeout = op.operands
  deadline = None
  if timeout:  # (saturated: a budget of 2^64 - 1 ns never runs out)
    deadline = lo.call_intrinsic("uadd.sat", [_now_ns(lo), lo.scalar(timeout[0])])
  shape = pointer_operand.type.shape if ir.is_tensor(pointer_operand.type) else None

  def poll(pointer, value):
    return _checked(lo, op, pointer, lambda: _poll(lo, pointer, value, deadline))

  if shape is None:
    lo.env[op.result] = poll(lo.scalar(pointer_operand), lo.scalar(expected))
  else:
    out = lo.new_buffer(op.result.type)
    with lo.loop_nest(shape, 1) as index:
      out.store(b, index, poll(lo.evaluate(pointer_operand, index), lo.evaluate(expected, index)))
    lo.env[op.result] = out
  if op.attrs.get("sem", 2) == 2:
    b.fence("acquire")
