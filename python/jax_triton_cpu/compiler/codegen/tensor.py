"""Rules for ops that shape tensors: ranges, splats, broadcasts, constants.

Each maps a lane chunk of its result to the operand position it reads (see lowering.Index); a
broadcast along the last dimension makes the operand the same in every lane, so it is computed
once, as a scalar.
"""
from __future__ import annotations

import numpy as np
from llvmlite import ir as llvm

from . import types as T
from .lowering import Index
from .registry import SCALAR, TENSOR, register


@register(TENSOR, "tt.make_range")
def _make_range(lo, value, index: Index):
  op = value.op
  b = lo.builder
  start = b.add(index.dims[-1], T.I32(op.attrs["start"]))
  if index.lanes == 1:
    return start
  return b.add(T.splat(b, start, index.lanes), T.iota(index.lanes))


@register(TENSOR, "tt.splat")
def _splat(lo, value, index: Index):
  op = value.op
  return lo.scalar(op.operands[0])


@register(TENSOR, "tt.broadcast")
def _broadcast(lo, value, index: Index):
  op = value.op
  src = op.operands[0].type.shape
  dims = tuple(T.I32(0) if s == 1 else d for s, d in zip(src, index.dims))
  return lo.evaluate(op.operands[0], Index(dims, 1 if src[-1] == 1 else index.lanes))


@register(TENSOR, "tt.expand_dims")
def _expand_dims(lo, value, index: Index):
  op = value.op
  axis = op.attrs["axis"]
  dims = index.dims[:axis] + index.dims[axis + 1:]
  # Dropping the last dimension (size 1, so one lane) makes the one before it the lane dimension.
  return lo.evaluate(op.operands[0], Index(dims, index.lanes))


def _constant_value(llvm_type, value, triton_type):
  if triton_type.is_float:
    bits = T.float_bits(triton_type.name, value)
    if isinstance(llvm_type, llvm.IntType):  # bf16 / fp8: held as their bits
      return _int_constant(llvm_type, bits)
    if np.isnan(value):  # llvmlite prints half NaNs without their payload
      return _int_constant(llvm.IntType(triton_type.bits), bits).bitcast(llvm_type)
    return llvm.Constant(llvm_type, float(value))
  return _int_constant(llvm_type, int(value))


def _int_constant(llvm_type, value: int):
  value &= (1 << llvm_type.width) - 1
  if value >= 1 << (llvm_type.width - 1) and llvm_type.width > 1:
    value -= 1 << llvm_type.width
  return llvm.Constant(llvm_type, value)


@register(SCALAR, "arith.constant")
def _scalar_constant(lo, op):
  t = op.result.type
  lo.env[op.result] = _constant_value(T.scalar_type(t), op.attrs["value"], t)


@register(SCALAR, "ub.poison")
def _scalar_poison(lo, op):
  """A value that may be anything (a function's result on a path that returns none)."""
  lo.env[op.result] = llvm.FormattedConstant(T.scalar_type(op.result.type), "poison")


@register(TENSOR, "ub.poison")
def _tensor_poison(lo, value, index: Index):
  poison = llvm.FormattedConstant(T.scalar_type(value.type), "poison")
  return T.splat(lo.builder, poison, index.lanes)


@register(TENSOR, "arith.constant")
def _tensor_constant(lo, value, index: Index):
  op = value.op
  t = op.result.type
  value = op.attrs["value"]
  element = T.scalar_type(t)
  if not isinstance(value, np.ndarray):  # a splat
    return _constant_value(element, value, t.element)
  # A dense constant: a private global array, read like a buffer.
  name = f"const.{len(lo.module.globals)}"
  flat = [_constant_value(T.memory_type(t), v, t.element) for v in value.reshape(-1)]
  array_type = llvm.ArrayType(T.memory_type(t), len(flat))
  g = llvm.GlobalVariable(lo.module, array_type, name=name)
  g.global_constant = True
  g.linkage = "private"
  g.initializer = llvm.Constant(array_type, flat)
  from .lowering import Buffer
  return Buffer(g, t).load(lo.builder, index)


@register(SCALAR, "tt.get_program_id")
def _program_id(lo, op):
  lo.env[op.result] = lo.program_ids[op.attrs["axis"]]


@register(SCALAR, "tt.get_num_programs")
def _num_programs(lo, op):
  lo.env[op.result] = lo.num_programs[op.attrs["axis"]]


@register(TENSOR, "tt.map_elementwise")
def _map_elementwise(lo, value, index: Index):
  """tl.map_elementwise: the scalar function's body, run on whole lane chunks. With pack = p the
  function takes p consecutive elements of each operand (along the flattened tensor) and returns
  p of each result: on a chunk of n lanes (a multiple of p), operand lanes j, j + p, ... go to
  its j-th argument of that operand, and the j-th values of a result come back to those lanes."""
  op = value.op
  pack = op.attrs.get("pack", 1)
  if pack == 1:
    return lo.apply_region(op.regions[0].block, lo.elementwise_args(op, index))[value.index]
  if value.type.shape[-1] % pack:
    raise lo.error(op, f"tl.map_elementwise with pack={pack} needs a last dimension that is a "
                   f"multiple of it, got shape {list(value.type.shape)}")
  if index.lanes % pack or pack & (pack - 1):  # one lane at a time, from its whole pack
    return lo.per_lane(index, lambda one: _packed_lane(lo, value, one, pack))
  b = lo.builder
  n = index.lanes
  args = [T.splat(b, a, n) for a in lo.elementwise_args(op, index)]
  strided = [llvm.Constant(llvm.VectorType(T.I32, n // pack), [T.I32(i) for i in range(j, n, pack)])
             for j in range(pack)]
  split = [b.shuffle_vector(a, a, strided[j]) if n > pack else b.extract_element(a, T.I32(j))
           for a in args for j in range(pack)]
  results = lo.apply_region(op.regions[0].block, split)
  parts = [T.splat(b, r, n // pack) for r in results[value.index * pack:(value.index + 1) * pack]]
  return T.interleave(b, parts)


def _packed_lane(lo, value, one: Index, pack: int):
  """Lane `one` of a packed map_elementwise: its pack's operands, one result."""
  b = lo.builder
  op = value.op
  position = b.urem(one.dims[-1], T.I32(pack))
  first = b.sub(one.dims[-1], position)
  args = []
  for operand in op.operands:
    for j in range(pack):
      at = Index(one.dims[:-1] + (b.add(first, T.I32(j)),), 1)
      args.append(lo.evaluate(operand, at))
  results = lo.apply_region(op.regions[0].block, args)[value.index * pack:(value.index + 1) * pack]
  chosen = results[0]
  for j in range(1, pack):
    chosen = b.select(b.icmp_unsigned("==", position, T.I32(j)), results[j], chosen)
  return chosen
