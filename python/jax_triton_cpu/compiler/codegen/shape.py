"""Rules for ops that move elements: trans, reshape, join, split, cat, gather, histogram.

Each computes where a chunk of its result comes from in its operand. When the chunk's lanes stay
consecutive in the operand the chunk is read as a vector; otherwise it is built lane by lane.
"""
from __future__ import annotations

import math

from llvmlite import ir as llvm

from . import types as T
from .lowering import Index
from .registry import SCALAR, STATEMENT, TENSOR, register


def _strides(shape):
  return tuple(math.prod(shape[d + 1:]) for d in range(len(shape)))


@register(TENSOR, "tt.trans")
def _trans(lo, value, index: Index):
  op = value.op
  order = op.attrs["order"]
  src = op.operands[0]
  rank = len(order)

  def read(idx: Index):
    dims = [None] * rank
    for out_dim, src_dim in enumerate(order):
      dims[src_dim] = idx.dims[out_dim]
    return lo.evaluate(src, Index(tuple(dims), idx.lanes))

  if order[-1] == rank - 1:
    return read(index)
  return lo.per_lane(index, read)


@register(TENSOR, "tt.reshape")
def _reshape(lo, value, index: Index):
  b = lo.builder
  src = value.op.operands[0]
  src_shape = src.type.shape

  def read(idx: Index):
    flat = None
    for d, stride in zip(idx.dims, _strides(value.type.shape)):
      term = b.mul(d, T.I32(stride))
      flat = term if flat is None else b.add(flat, term)
    dims = []
    for size, stride in zip(src_shape, _strides(src_shape)):
      dims.append(b.urem(b.udiv(flat, T.I32(stride)), T.I32(size)))
    return lo.evaluate(src, Index(tuple(dims), idx.lanes))

  if src_shape and src_shape[-1] % index.lanes == 0:
    return read(index)
  return lo.per_lane(index, read)


@register(TENSOR, "tt.join")
def _join(lo, value, index: Index):
  b = lo.builder
  a, c = value.op.operands

  def read(idx: Index):
    dims = Index(idx.dims[:-1], 1)
    return b.select(b.icmp_unsigned("==", idx.dims[-1], T.I32(0)),
                    lo.evaluate(a, dims), lo.evaluate(c, dims))

  return lo.per_lane(index, lambda idx: T.splat(b, read(idx), 1))


@register(TENSOR, "tt.split")
def _split(lo, value, index: Index):
  src = value.op.operands[0]
  half = T.I32(value.index)
  return lo.per_lane(index, lambda idx: lo.evaluate(src, Index(idx.dims + (half,), 1)))


@register(TENSOR, "tt.cat")
def _cat(lo, value, index: Index):
  b = lo.builder
  a, c = value.op.operands
  size = a.type.shape[0]

  def read(idx: Index):
    i = idx.dims[0]
    first = b.icmp_unsigned("<", i, T.I32(size))
    in_a = b.select(first, i, T.I32(size - idx.lanes))
    in_c = b.select(first, T.I32(0), b.sub(i, T.I32(size)))
    x = T.splat(b, lo.evaluate(a, Index((in_a,), idx.lanes)), idx.lanes)
    y = T.splat(b, lo.evaluate(c, Index((in_c,), idx.lanes)), idx.lanes)
    return b.select(first, x, y)

  return read(index) if size % index.lanes == 0 else lo.per_lane(index, read)


@register(TENSOR, "tt.gather")
def _gather(lo, value, index: Index):
  b = lo.builder
  op = value.op
  src, indices = op.operands
  axis = op.attrs["axis"]
  table = lo.buffer(src)
  where = lo.evaluate(indices, index)
  n = index.lanes
  offset = None
  for d, (position, stride) in enumerate(zip(index.dims, _strides(src.type.shape))):
    if d == axis:
      position = _as_i32(b, where)
    elif d == len(index.dims) - 1 and n > 1:
      position = b.add(T.splat(b, position, n), T.iota(n))
    term = b.mul(T.splat(b, position, n), T.constant(T.of_lanes(T.I32, n), stride))
    offset = term if offset is None else b.add(offset, term)
  pointers = b.gep(T.splat(b, table.pointer, n) if n > 1 else table.pointer, [offset],
                   source_etype=table.element)
  if n == 1:
    return table_load(lo, table, pointers)
  vec = llvm.VectorType(table.element, n)
  mask = T.constant(llvm.VectorType(T.I1, n), 1)
  loaded = lo.call_intrinsic("masked.gather", [pointers, T.I32(1), mask, T.constant(vec, 0)],
                             ret=vec, overload=[vec, pointers.type])
  return _bools(lo, table, loaded)


def _as_i32(b, v):
  width = T.element(v.type).width
  if width == 32:
    return v
  return (b.sext if width < 32 else b.trunc)(v, T.of_lanes(T.I32, T.lanes(v)))


def table_load(lo, table, pointer):
  return _bools(lo, table, lo.builder.load(pointer, typ=table.element))


def _bools(lo, table, value):
  if T.scalar_type(table.type) == T.I1:
    return lo.builder.icmp_unsigned("!=", value, T.constant(value.type, 0))
  return value


@register(STATEMENT, "tt.histogram")
def _histogram(lo, op):
  b = lo.builder
  src = op.operands[0]
  mask = op.operands[1] if len(op.operands) > 1 else None
  result = lo.new_buffer(op.result.type)
  bins = op.result.type.shape[0]
  counter = T.scalar_type(op.result.type)
  with lo.loop(bins) as i:
    result.store(b, Index((i,), 1), llvm.Constant(counter, 0))
  with lo.loop_nest(src.type.shape, 1) as index:
    v = lo.evaluate(src, index)
    v = b.sext(v, T.I64) if v.type.width < 64 else v
    hit = b.icmp_unsigned("<", v, T.I64(bins))  # negative values wrap to huge: out of range
    if mask is not None:
      hit = b.and_(hit, lo.evaluate(mask, index))
    slot = Index((b.trunc(b.select(hit, v, T.I64(0)), T.I32),), 1)
    result.store(b, slot, b.add(result.load(b, slot), b.zext(hit, counter)))
  lo.env[op.result] = result


@register(SCALAR, "tt.unsplat")
def _unsplat(lo, op):
  src = op.operands[0]
  lo.env[op.result] = lo.evaluate(src, Index(tuple(T.I32(0) for _ in src.type.shape), 1))
