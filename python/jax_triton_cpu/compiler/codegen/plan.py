"""Fusion plan: which tensor values are computed into a stack buffer, and which are fused into the
loops of the ops that consume them.

Tensor ops are lazy: their value is computed lane chunk by lane chunk inside the loop nest of the
op that needs it (a store, a buffer, a loop-carried value). A lazy value is kept lazy only where
recomputing it is free or happens once:
- cheap index arithmetic (ranges, splats, broadcasts, integer math on those) is recomputed at every
  use, in any region;
- any other value with a single use, in its own block, is fused into that use, unless it is a load
  that a side effect (a store, an atomic, a call) separates from the point where it is evaluated
  or that the op computing it may overwrite chunk by chunk before reading it all (a store through
  other addresses of the same buffer), or the use broadcasts it to a larger shape (it would be
  recomputed once per copy);
- everything else is materialised at its program point.
"""
from __future__ import annotations

from .. import ir
from . import registry

CHEAP_OPS = frozenset({
    "arith.constant", "tt.make_range", "tt.splat", "tt.broadcast", "tt.expand_dims", "tt.addptr",
    "arith.addi", "arith.subi", "arith.muli", "arith.andi", "arith.ori", "arith.xori",
    "arith.shli", "arith.shrsi", "arith.shrui", "arith.cmpi", "arith.extsi", "arith.extui",
    "arith.trunci", "arith.select", "arith.index_cast", "arith.maxsi", "arith.minsi",
    "arith.maxui", "arith.minui", "tt.int_to_ptr", "tt.ptr_to_int",
})

SIDE_EFFECT_OPS = frozenset({
    "tt.store", "tt.atomic_rmw", "tt.atomic_cas", "tt.atomic_store", "tt.call", "tt.print", "tt.assert",
    "tt.descriptor_store", "tt.descriptor_reduce", "tt.descriptor_scatter",
})


def is_lazy(v: ir.Value) -> bool:
  """A tensor value computed on demand (not by a statement at its program point)."""
  op = v.op
  return (op is not None and ir.is_tensor(v.type) and op.name not in registry.STATEMENT)


def has_side_effects(op: ir.Op) -> bool:
  if op.name in SIDE_EFFECT_OPS:
    return True
  return any(has_side_effects(o) for r in op.regions for b in r.blocks for o in b.ops)


def _base_and_offsets(pointer: ir.Value):
  """A pointer tensor as (base, offsets added to it): walks tt.addptr, splats and broadcasts."""
  offsets = []
  while pointer.op is not None and pointer.op.name in (
      "tt.addptr", "tt.splat", "tt.broadcast", "tt.expand_dims"):
    if pointer.op.name == "tt.addptr":
      offsets.append(pointer.op.operands[1])
    pointer = pointer.op.operands[0]
  return pointer, offsets


def _may_overwrite(consumer: ir.Op, load: ir.Op) -> bool:
  """Whether `consumer`, evaluating `load` chunk by chunk, may write memory that a later chunk of
  the load reads. A store through the same addresses (x[i] = f(x[i])) or through a different
  pointer argument cannot (distinct arguments are distinct buffers, as in XLA; overlapping ones
  would race on a GPU too); any other side effect might."""
  if consumer.name != "tt.store":
    return True
  loaded, stored = load.operands[0], consumer.operands[0]
  if loaded is stored:
    return False
  (load_base, load_offsets), (store_base, store_offsets) = map(_base_and_offsets, (loaded, stored))
  if load_base is store_base:
    return not (len(load_offsets) == len(store_offsets) and
                all(a is b for a, b in zip(load_offsets, store_offsets)))
  return not (_is_kernel_argument(load_base) and _is_kernel_argument(store_base))


def _is_kernel_argument(v: ir.Value) -> bool:
  """An argument of the function's entry block (a function region has no parent op)."""
  block = v.owner
  return (isinstance(block, ir.Block) and block.parent is not None and block.parent.parent is None
          and block.parent.blocks[0] is block)


class Plan:

  def __init__(self, function: ir.Function):
    self.materialized: set[ir.Value] = set()
    self._cheap: dict[ir.Value, bool] = {}
    for block in function.region.blocks:
      self._block(block)

  def cheap(self, v: ir.Value) -> bool:
    """Whether recomputing `v` at each use costs no more than reading it from a buffer."""
    if not is_lazy(v):
      return True  # scalars and buffers
    if v not in self._cheap:
      self._cheap[v] = v.op.name in CHEAP_OPS and all(self.cheap(o) for o in v.op.operands)
    return self._cheap[v]

  def _block(self, block: ir.Block):
    position = {op: i for i, op in enumerate(block.ops)}
    effects = [i for i, op in enumerate(block.ops) if has_side_effects(op)]
    evaluated_at: dict[ir.Value, int] = {}  # lazy value -> position of the op whose loops compute it
    for op in reversed(block.ops):
      for region in op.regions:
        for b in region.blocks:
          self._block(b)
      for v in op.results:
        if not is_lazy(v) or self.cheap(v) or not v.uses:
          continue
        where = self._fused_position(v, block, position, evaluated_at)
        here = position[op]
        if where is None or (op.name == "tt.load" and (
            any(here < e < where for e in effects) or
            (where in effects and _may_overwrite(block.ops[where], op)))):
          self.materialized.add(v)
          where = here
        evaluated_at[v] = where

  def _fused_position(self, v, block, position, evaluated_at):
    if len(v.uses) != 1:
      return None
    (use,) = v.uses
    if use.parent is not block or use.name in ("scf.yield", "scf.condition"):
      return None
    if use.name == "tt.broadcast" and use.result.type.numel > v.type.numel:
      return None
    if use.results and is_lazy(use.results[0]) and use.results[0] in evaluated_at:
      return evaluated_at[use.results[0]]
    return position[use]
