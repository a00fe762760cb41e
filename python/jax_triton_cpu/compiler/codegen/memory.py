"""Memory rules: pointer arithmetic, loads and stores (tensor and scalar, masked or not).

A chunk of a tensor access whose pointers are contiguous (axis info) is one vector load or store,
masked if the op has a mask; any other chunk is a gather or scatter. Masked-off lanes never touch
memory, scalar accesses included.
"""
from __future__ import annotations

from llvmlite import ir as llvm

from .. import ir
from . import bounds, types as T
from .lowering import Buffer, Index, Shifted, _size_of
from .registry import ELEMENTWISE, SCALAR, STATEMENT, TENSOR, register


@register(ELEMENTWISE, "tt.addptr")
def _addptr(lo, op, pointer, offset):
  pointee = ir.element_type(op.operands[0].type).pointee
  return lo.builder.gep(pointer, [offset], source_etype=T.memory_type(pointee))


@register(ELEMENTWISE, "tt.ptr_to_int")
def _ptr_to_int(lo, op, pointer):
  return lo.builder.ptrtoint(pointer, T.of_lanes(T.I64, T.lanes(pointer)))


@register(ELEMENTWISE, "tt.int_to_ptr")
def _int_to_ptr(lo, op, value):
  return lo.builder.inttoptr(value, T.of_lanes(T.PTR, T.lanes(value)))


def _load_operands(op: ir.Op):
  ptr, *rest = op.operands
  sizes = op.attrs.get("operandSegmentSizes") or [1, int(len(rest) > 0), int(len(rest) > 1)]
  mask = rest[0] if sizes[1] else None
  other = rest[sizes[1]] if sizes[2] else None
  return ptr, mask, other


def _is_bool(triton_type) -> bool:
  return T.scalar_type(triton_type) == T.I1


def _to_memory(b, value, triton_type):
  return b.zext(value, T.of_lanes(T.I8, T.lanes(value))) if _is_bool(triton_type) else value


def _from_memory(b, value, triton_type):
  return b.icmp_unsigned("!=", value, T.constant(value.type, 0)) if _is_bool(triton_type) else value


def _contiguous(lo, pointer: ir.Value, lanes: int) -> bool:
  return ir.is_tensor(pointer.type) and lo.axis[pointer].contiguity[-1] % lanes == 0


def _vector(b, value, n: int):
  """`value` as an n-lane vector (a scalar is splatted; one lane becomes a <1 x T> vector)."""
  if isinstance(value.type, llvm.VectorType):
    return value
  if n > 1:
    return T.splat(b, value, n)
  return b.insert_element(llvm.Constant(llvm.VectorType(value.type, 1), llvm.Undefined), value,
                          T.I32(0))


def _first(b, pointer):
  return b.extract_element(pointer, T.I32(0)) if T.lanes(pointer) > 1 else pointer


def _runs_contiguously(lo, pointers, element):
  """At run time: whether the lanes' pointers are consecutive elements (for accesses axis info
  cannot prove contiguous, such as `(offsets % n)` with a run-time n: a few vector ops, then one
  vector load instead of a gather in all but the wrapping chunks)."""
  b = lo.builder
  n = T.lanes(pointers)
  expected = b.gep(T.splat(b, _first(b, pointers), n), [T.iota(n)], source_etype=element)
  same = b.icmp_unsigned("==", b.ptrtoint(pointers, T.of_lanes(T.I64, n)),
                         b.ptrtoint(expected, T.of_lanes(T.I64, n)))
  return lo.call_intrinsic("vector.reduce.and", [same], ret=T.I1, overload=[same.type])


def rows_contiguous(lo, pointers: Buffer):
  """At run time: whether each row (last dimension, of 2 or more) of a buffer of pointers holds the
  addresses of consecutive elements. One pass before a loop that reads through them, instead of a
  check of every chunk in every iteration."""
  b = lo.builder
  element = T.memory_type(pointers.type.element.pointee)
  shape = pointers.type.shape
  lanes = lo.lanes_for(pointers.type)
  assert lanes > 1
  flag = lo.slot_of(T.I1)
  b.store(T.I1(1), flag.pointer)
  with lo.loop_nest(shape, lanes) as index:
    row_start = pointers.load(b, Index(index.dims[:-1] + (T.I32(0),), 1))
    chunk = pointers.load(b, index)
    in_place = b.icmp_unsigned(  # the chunk starts where the row's start says it should
        "==", b.ptrtoint(_first(b, chunk), T.I64),
        b.ptrtoint(b.gep(row_start, [index.dims[-1]], source_etype=element), T.I64))
    every = b.and_(in_place, _runs_contiguously(lo, chunk, element))
    b.store(b.and_(b.load(flag.pointer, typ=T.I1), every), flag.pointer)
  return b.load(flag.pointer, typ=T.I1)


def _either(lo, condition, if_true, if_false):
  """if_true() if condition else if_false(), as branches (only one of them runs)."""
  b = lo.builder
  with b.if_else(condition) as (then, otherwise):
    with then:
      a = if_true()
      a_block = b.block
    with otherwise:
      c = if_false()
      c_block = b.block
  if a is None or isinstance(a.type, llvm.VoidType):
    return None
  phi = b.phi(a.type)
  phi.add_incoming(a, a_block)
  phi.add_incoming(c, c_block)
  return phi


def load(lo, op: ir.Op, pointer, mask, other, contiguous: bool):
  """Loads one chunk (or a scalar, lanes == 1) of op's result type from `pointer`."""
  b = lo.builder
  result_type = ir.element_type(op.results[0].type)
  element = T.memory_type(result_type)
  align = _size_of(element)
  n = max(T.lanes(pointer), T.lanes(mask) if mask is not None else 1,
          T.lanes(other) if other is not None else 1)
  vec = llvm.VectorType(element, n)
  bounds.check(lo, op, op.operands[0], pointer, mask, n, contiguous, element)
  if mask is None and (n == 1 or contiguous):
    value = b.load(_first(b, pointer), typ=T.of_lanes(element, n), align=align)
    return _from_memory(b, value, result_type)
  mask = _vector(b, mask if mask is not None else T.I1(1), n)
  passthru = (_vector(b, _to_memory(b, other, result_type), n) if other is not None
              else T.constant(vec, 0))
  vector_load = lambda: lo.call_intrinsic(
      "masked.load", [_first(b, pointer), T.I32(align), mask, passthru], ret=vec,
      overload=[vec, T.PTR])
  gather = lambda: lo.call_intrinsic(
      "masked.gather", [T.splat(b, pointer, n), T.I32(align), mask, passthru], ret=vec,
      overload=[vec, llvm.VectorType(T.PTR, n)])
  if n == 1 or contiguous:
    value = vector_load()
  elif T.lanes(pointer) > 1:
    value = _either(lo, _runs_contiguously(lo, pointer, element), vector_load, gather)
  else:
    value = gather()
  if n == 1:
    value = b.extract_element(value, T.I32(0))
  return _from_memory(b, value, result_type)


def rows_of(lo, ptr: ir.Value) -> str | None:
  """For a tensor of pointers held in memory (a buffer, or a loop's Shifted initial value plus
  offset): "proven" if axis info shows each row is one run of consecutive elements, "checked" if
  a flag computed before the loop tells (memory.rows_contiguous), else None."""
  held = lo.env.get(ptr)
  if not ir.is_tensor(ptr.type) or not isinstance(held, (Shifted, Buffer)):
    return None
  if _contiguous(lo, ptr, ptr.type.shape[-1]):
    return "proven"
  return "checked" if isinstance(held, Shifted) and held.rows_contiguous is not None else None


def chunk_address(lo, ptr: ir.Value, index: Index):
  """The address of chunk `index` of a tensor of pointers whose rows run over consecutive
  elements (rows_of): its row's first pointer plus its column. A program then reads one pointer
  per row (LLVM keeps it across the row's chunks), not one per chunk spread over a pointer buffer
  as large as the tile."""
  held = lo.env[ptr]
  row_start = Index(index.dims[:-1] + (T.I32(0),), 1)
  start = (held.load(lo, row_start) if isinstance(held, Shifted)
           else held.load(lo.builder, row_start))
  element = T.memory_type(ir.element_type(ptr.type).pointee)
  return lo.builder.gep(start, [index.dims[-1]], source_etype=element)


@register(TENSOR, "tt.load")
def _tensor_load(lo, value, index: Index):
  op = value.op
  ptr, mask, other = _load_operands(op)
  mask = lo.evaluate(mask, index) if mask is not None else None
  other = lo.evaluate(other, index) if other is not None else None
  held = lo.env.get(ptr)
  rows = rows_of(lo, ptr)
  if rows is not None and index.lanes > 1:
    vector_load = lambda: load(lo, op, T.splat(lo.builder, chunk_address(lo, ptr, index),
                                               index.lanes), mask, other, True)
    if rows == "proven":
      return vector_load()
    if not _contiguous(lo, ptr, index.lanes):
      return _either(lo, held.rows_contiguous, vector_load,
                     lambda: load(lo, op, lo.evaluate(ptr, index), mask, other, False))
  pointer = lo.evaluate(ptr, index)
  return load(lo, op, pointer, mask, other,
              T.lanes(pointer) > 1 and _contiguous(lo, ptr, index.lanes))


@register(SCALAR, "tt.load")
def _scalar_load(lo, op):
  ptr, mask, other = _load_operands(op)
  lo.env[op.result] = load(lo, op, lo.scalar(ptr),
                           lo.scalar(mask) if mask is not None else None,
                           lo.scalar(other) if other is not None else None, False)


def store(lo, op, value_type, pointer, value, mask, contiguous: bool, streaming=None):
  """Stores one chunk (or a scalar) of `value` through `pointer`, where `mask` allows;
  `streaming` (an i1, see _streaming) writes a whole aligned chunk with a non-temporal store."""
  b = lo.builder
  n = max(T.lanes(pointer), T.lanes(value), T.lanes(mask) if mask is not None else 1)
  if streaming is not None and n > 1 and contiguous:
    in_memory = _vector(b, _to_memory(b, value, value_type), n)
    _either(lo, _streams(lo, streaming, pointer, mask, n, _size_of(T.element(in_memory.type))),
            lambda: _store_nontemporal(lo, in_memory, _first(b, pointer)),
            lambda: store(lo, op, value_type, pointer, value, mask, contiguous))
    return
  value = _to_memory(b, value, value_type)
  align = _size_of(T.element(value.type))
  bounds.check(lo, op, op.operands[0], pointer, mask, n, contiguous, T.element(value.type))
  if mask is None and (n == 1 or contiguous):
    b.store(T.splat(b, value, n), _first(b, pointer), align=align)
    return
  value = _vector(b, value, n)
  mask = _vector(b, mask if mask is not None else T.I1(1), n)
  vector_store = lambda: lo.call_intrinsic(
      "masked.store", [value, _first(b, pointer), T.I32(align), mask], ret=llvm.VoidType(),
      overload=[value.type, T.PTR])
  scatter = lambda: lo.call_intrinsic(
      "masked.scatter", [value, T.splat(b, pointer, n), T.I32(align), mask], ret=llvm.VoidType(),
      overload=[value.type, llvm.VectorType(T.PTR, n)])
  if n == 1 or contiguous:
    vector_store()
  elif T.lanes(pointer) > 1:
    _either(lo, _runs_contiguously(lo, pointer, T.element(value.type)), vector_store, scatter)
  else:
    scatter()


# Non-temporal stores write whole cache lines without reading them first (no read for ownership)
# and leave them out of the caches: for a launch's output larger than about half the last-level
# cache, which would not stay there anyway, that is a third less memory traffic for a kernel that
# reads as much as it writes (layer norm 4096x1024 on a 2-core Zen 4: 1.14x-1.35x, see
# docs/benchmarks.md). Smaller outputs keep regular stores, so that a consumer finds them cached.

def _streaming(lo, op, ptr: ir.Value, lanes: int):
  """An i1, computed once per program, telling whether this store streams: the launch's grid
  stores at least Target.streaming_store_bytes through it (each program its whole block, the
  usual case), on x86, for contiguous chunks of a store that runs once per program (not in a
  loop, not in checked mode), in a kernel without atomics (programs that signal each other
  through them must see each other's stores in order; non-temporal ones are not ordered with
  the other stores). None where it never does."""
  target = lo.target
  if (not target.triple.startswith("x86_64") or lo.bounds is not None or lanes < 2
      or op.parent.parent.parent is not None or not _contiguous(lo, ptr, lanes)
      or _has_atomics(lo.function.region)):
    return None
  b = lo.builder
  lo.streams = True
  per_program = ptr.type.numel * _size_of(T.memory_type(ptr.type.element.pointee))
  if target.streaming_store_bytes <= per_program:
    return T.I1(1)
  programs = T.I64(1)
  for count in lo.num_programs:
    programs = b.mul(programs, b.zext(count, T.I64))
  return b.icmp_unsigned(">=", programs, T.I64(-(-target.streaming_store_bytes // per_program)))


def _has_atomics(region: ir.Region) -> bool:
  return any(op.name.startswith("tt.atomic") or any(_has_atomics(r) for r in op.regions)
             for block in region.blocks for op in block.ops)


def _streams(lo, streaming, pointer, mask, n: int, align: int):
  """Whether this chunk streams: `streaming`, every lane stored, its address aligned to its size."""
  b = lo.builder
  nbytes = n * align
  first = b.ptrtoint(_first(b, pointer), T.I64)
  condition = b.and_(streaming, b.icmp_unsigned(
      "==", b.and_(first, T.I64(nbytes - 1)), T.I64(0)))
  if mask is not None:
    mask = _vector(b, mask, n)
    condition = b.and_(condition, lo.call_intrinsic("vector.reduce.and", [mask], ret=T.I1,
                                                    overload=[mask.type]))
  return condition


def _store_nontemporal(lo, value, pointer):
  nbytes = T.lanes(value) * _size_of(T.element(value.type))
  instruction = lo.builder.store(value, pointer, align=nbytes)
  instruction.set_metadata("nontemporal",
                           lo.module.add_metadata([llvm.Constant(llvm.IntType(32), 1)]))


@register(STATEMENT, "tt.store")
def _store(lo, op):
  ptr, value, *rest = op.operands
  mask = rest[0] if rest else None
  value_type = ir.element_type(value.type)
  if not ir.is_tensor(ptr.type):
    store(lo, op, value_type, lo.scalar(ptr), lo.scalar(value),
          lo.scalar(mask) if mask is not None else None, False)
    return
  shape = ptr.type.shape
  lanes = lo.lanes_for(value.type)
  streaming = _streaming(lo, op, ptr, lanes)
  with lo.loop_nest(shape, lanes) as index:
    pointer = lo.evaluate(ptr, index)
    store(lo, op, value_type, pointer, lo.evaluate(value, index),
          lo.evaluate(mask, index) if mask is not None else None,
          T.lanes(pointer) > 1 and _contiguous(lo, ptr, index.lanes), streaming)
