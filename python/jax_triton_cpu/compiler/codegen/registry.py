"""Lowering rules, one per Triton op, registered in tables (as jax's Pallas Triton lowering does).

- ELEMENTWISE[name](lowering, op, *args): args and result are LLVM scalars or vectors of one lane
  count; serves scalar ops at their program point and tensor ops inside fused loops.
- TENSOR[name](lowering, value, index): a result `value` of a tensor op at the lane chunk `index`
  (ops whose value depends on the position: ranges, broadcasts, loads, ...).
- SCALAR[name](lowering, op): a scalar-only op at its program point (constants, program ids, ...).
- STATEMENT[name](lowering, op): ops that run at their program point whatever their types (stores,
  control flow, and ops whose tensor result must be computed into a buffer).
"""
from __future__ import annotations

ELEMENTWISE: dict = {}
TENSOR: dict = {}
SCALAR: dict = {}
STATEMENT: dict = {}


def register(table: dict, *names: str):
  def wrap(fn):
    for name in names:
      table[name] = fn
    return fn
  return wrap


def supported(name: str) -> bool:
  return any(name in t for t in (ELEMENTWISE, TENSOR, SCALAR, STATEMENT))
