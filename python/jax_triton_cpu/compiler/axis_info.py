"""Axis info: per tensor value and dimension, what is known about its elements at compile time.

- contiguity[d]: the tensor splits along d into aligned runs of this length whose values step by 1
  (pointers: by one element), so a run can be read with one vector load;
- divisibility[d]: the first value of each run is a multiple of this (pointers: in bytes);
- constancy[d]: the tensor splits along d into aligned runs of this length of equal values.

The same lattice as Triton's AxisInfo analysis, with the rules the code generator needs. Scalars are
rank-1 infos of one element. Loop-carried values are solved by iterating to a fixed point.
"""
from __future__ import annotations

import dataclasses
from math import gcd

from . import ir

MAX_DIVISIBILITY = 1 << 30


@dataclasses.dataclass(frozen=True)
class AxisInfo:
  contiguity: tuple[int, ...]
  divisibility: tuple[int, ...]
  constancy: tuple[int, ...]

  def meet(self, other: "AxisInfo") -> "AxisInfo":
    return AxisInfo(*(tuple(map(gcd, a, b)) for a, b in
                      ((self.contiguity, other.contiguity), (self.divisibility, other.divisibility),
                       (self.constancy, other.constancy))))


def _shape(v: ir.Value) -> tuple[int, ...]:
  return v.type.shape if isinstance(v.type, ir.TensorType) else (1,)


def _unknown(v: ir.Value, constancy=None) -> AxisInfo:
  shape = _shape(v)
  return AxisInfo((1,) * len(shape), (1,) * len(shape), constancy or (1,) * len(shape))


def _pow2_divisor(n: int) -> int:
  n = abs(int(n))
  return MAX_DIVISIBILITY if n == 0 else min(n & -n, MAX_DIVISIBILITY)


def _uniform(v: ir.Value, divisibility: int) -> AxisInfo:
  shape = _shape(v)
  return AxisInfo((1,) * len(shape), (divisibility,) * len(shape),
                  shape if isinstance(v.type, ir.TensorType) else (1,))


def _element_bytes(pointer_type) -> int:
  pointee = ir.element_type(pointer_type).pointee
  return max(1, pointee.bits // 8)


# ---- rules: (analysis, op) -> list of AxisInfo, one per result -------------------------------------

def _constant(a, op):
  value = op.attrs["value"]
  if isinstance(value, (int, bool)) and not isinstance(value, float):
    return [_uniform(op.result, _pow2_divisor(value))]
  return [_unknown(op.result, _shape(op.result) if ir.is_tensor(op.result.type) else None)]


def _make_range(a, op):
  n = op.attrs["end"] - op.attrs["start"]
  return [AxisInfo((n,), (_pow2_divisor(op.attrs["start"]),), (1,))]


def _splat(a, op):
  return [_uniform(op.result, a[op.operands[0]].divisibility[0])]


def _broadcast(a, op):
  src, out = op.operands[0].type.shape, op.result.type.shape
  info = a[op.operands[0]]
  grown = [s == 1 and o != 1 for s, o in zip(src, out)]
  return [AxisInfo(tuple(1 if g else c for g, c in zip(grown, info.contiguity)),
                   info.divisibility,
                   tuple(o if g else c for g, o, c in zip(grown, out, info.constancy)))]


def _expand_dims(a, op):
  info, axis = a[op.operands[0]], op.attrs["axis"]
  ins = lambda t, x: t[:axis] + (x,) + t[axis:]
  return [AxisInfo(ins(info.contiguity, 1), ins(info.divisibility, min(info.divisibility)),
                   ins(info.constancy, 1))]


def _add(a, op, scale=1):
  x, y = a[op.operands[0]], a[op.operands[1]]
  return [AxisInfo(
      tuple(max(gcd(cx, ky), gcd(cy, kx)) for cx, cy, kx, ky in
            zip(x.contiguity, y.contiguity, x.constancy, y.constancy)),
      tuple(gcd(dx, min(dy * scale, MAX_DIVISIBILITY)) for dx, dy in zip(x.divisibility, y.divisibility)),
      tuple(map(gcd, x.constancy, y.constancy)))]


def _addptr(a, op):
  return _add(a, op, scale=_element_bytes(op.operands[0].type))


def _sub(a, op):
  x, y = a[op.operands[0]], a[op.operands[1]]
  return [AxisInfo(tuple(map(gcd, x.contiguity, y.constancy)),
                   tuple(map(gcd, x.divisibility, y.divisibility)),
                   tuple(map(gcd, x.constancy, y.constancy)))]


def _mul(a, op):
  x, y = a[op.operands[0]], a[op.operands[1]]
  return [AxisInfo((1,) * len(x.contiguity),
                   tuple(min(dx * dy, MAX_DIVISIBILITY) for dx, dy in zip(x.divisibility, y.divisibility)),
                   tuple(map(gcd, x.constancy, y.constancy)))]


def _rem(a, op):
  # Within an aligned run of length L (L dividing the divisor), x mod divisor does not wrap.
  x, y = a[op.operands[0]], a[op.operands[1]]
  return [AxisInfo(tuple(gcd(gcd(cx, dy), dx) for cx, dx, dy in
                         zip(x.contiguity, x.divisibility, y.divisibility)),
                   tuple(map(gcd, x.divisibility, y.divisibility)),
                   tuple(map(gcd, x.constancy, y.constancy)))]


def _same_as_operand(a, op):
  return [a[op.operands[0]]]


def _elementwise(a, op):
  constancy = None
  for v in op.operands:
    if ir.is_tensor(v.type):
      c = a[v].constancy
      constancy = c if constancy is None else tuple(map(gcd, constancy, c))
  return [_unknown(r, constancy) for r in op.results]


_RULES = {
    "arith.constant": _constant,
    "tt.make_range": _make_range,
    "tt.splat": _splat,
    "tt.broadcast": _broadcast,
    "tt.expand_dims": _expand_dims,
    "tt.addptr": _addptr,
    "arith.addi": _add,
    "arith.subi": _sub,
    "arith.muli": _mul,
    "arith.remsi": _rem,
    "arith.remui": _rem,
    "arith.extsi": _same_as_operand,
    "arith.extui": _same_as_operand,
    "arith.trunci": _same_as_operand,
    "arith.index_cast": _same_as_operand,
}


class AxisAnalysis:
  """Axis info of every value of a function."""

  def __init__(self, function: ir.Function):
    self.info: dict[ir.Value, AxisInfo] = {}
    for v, attrs in zip(function.params, function.arg_attrs):
      self.info[v] = _uniform(v, int(attrs.get("tt.divisibility", 1)))
    for block in function.region.blocks:  # several after an early return
      for arg in block.args:
        self.info.setdefault(arg, _unknown(arg))
      self._block(block)

  def __getitem__(self, v: ir.Value) -> AxisInfo:
    info = self.info.get(v)
    return info if info is not None else _unknown(v)

  def _block(self, block: ir.Block):
    for op in block.ops:
      if op.name == "scf.for":
        self._for(op)
      elif op.name == "scf.if":
        for region in op.regions:
          for b in region.blocks:  # the else region may be empty
            self._block(b)
        then_yield = op.regions[0].block.terminator
        else_yield = op.regions[1].block.terminator if len(op.regions) > 1 and op.regions[1].blocks else None
        for i, r in enumerate(op.results):
          info = self[then_yield.operands[i]]
          self.info[r] = info.meet(self[else_yield.operands[i]]) if else_yield else _unknown(r)
      elif op.regions:  # while loops and others: solve their bodies with unknown carried values
        for region in op.regions:
          for b in region.blocks:
            for arg in b.args:
              self.info[arg] = _unknown(arg)
            self._block(b)
        for r in op.results:
          self.info[r] = _unknown(r)
      else:
        rule = _RULES.get(op.name, _elementwise)
        for r, info in zip(op.results, rule(self, op)):
          self.info[r] = info

  def _for(self, op: ir.Op):
    lower, _, step, *inits = op.operands
    body = op.regions[0].block
    iv, *carried = body.args
    self.info[iv] = AxisInfo((1,), (gcd(self[lower].divisibility[0], self[step].divisibility[0]),), (1,))
    state = [self[v] for v in inits]
    for _ in range(8):
      for arg, info in zip(carried, state):
        self.info[arg] = info
      self._block(body)
      new = [s.meet(self[y]) for s, y in zip(state, body.terminator.operands)]
      if new == state:
        break
      state = new
    else:
      state = [_unknown(v) for v in carried]
      for arg, info in zip(carried, state):
        self.info[arg] = info
      self._block(body)
    for r, info in zip(op.results, state):
      self.info[r] = info
