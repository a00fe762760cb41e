"""tt.dot operands packed into stack buffers as they are loaded (the lazy tl.load is evaluated
straight into the buffer, converted to the element type the kernel multiplies).

- A (..., M, K) -> (..., M, Kp): rows, K padded with zeros to a multiple of `group`.
- B (..., K, N) -> (..., K, N): rows.
"""
from __future__ import annotations

from .. import ir
from . import types as T
from .elementwise import convert
from .lowering import Buffer, Index


def pack_rows(lo, v: ir.Value, element: ir.ScalarType, group: int = 1) -> Buffer:
  """The A operand: `v` in a (..., M, Kp) buffer of `element`."""
  source = ir.element_type(v.type)
  *outer, k = v.type.shape
  kp = -(-k // group) * group
  if kp == k and source == element and isinstance(lo.env.get(v), Buffer):
    return lo.env[v]
  buf = lo.new_buffer(ir.TensorType((*outer, kp), element))
  with lo.loop_nest(v.type.shape, lo.lanes_for(v.type, buf.type)) as index:
    value = T.splat(lo.builder, lo.evaluate(v, index), index.lanes)
    buf.store(lo.builder, index, convert(lo.builder, value, source, element))
  if kp > k:
    zeros = T.constant(T.of_lanes(buf.element, kp - k), 0)
    with lo.loop_nest((*outer, 1), 1) as index:
      buf.store(lo.builder, Index(index.dims[:-1] + (T.I32(k),), kp - k), zeros)
  return buf


def pack_groups(lo, v: ir.Value, element: ir.ScalarType, group: int, lanes: int) -> Buffer:
  """The B operand: `v` in a (..., K, N) buffer of `element` (group 1: rows)."""
  assert group == 1
  return pack_rows(lo, v, element)
