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

A reduction along the last axis whose inputs are elementwise functions of a materialised value
(`tl.sum(x)`, `tl.sum(xc * xc)` with xc materialised) is computed by the loop that materialises
that value, while each chunk is in registers, instead of by a second pass over the buffer
(`fused_reductions`): it must be in the same block and see nothing defined after that value; a
side effect may lie between the two only if the reduction's inputs read no memory but that value.
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
    # materialised value -> the tt.reduce ops its materialising loop computes too
    self.fused_reductions: dict[ir.Value, list[ir.Op]] = {}
    for block in function.region.blocks:
      self._fuse_reductions(block)

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

  def _fuse_reductions(self, block: ir.Block):
    position = {op: i for i, op in enumerate(block.ops)}
    effects = [i for i, op in enumerate(block.ops) if has_side_effects(op)]
    for op in block.ops:
      for region in op.regions:
        for b in region.blocks:
          self._fuse_reductions(b)
      if op.name != "tt.reduce" or op.attrs["axis"] != op.operands[0].type.rank - 1:
        continue
      # The latest materialised value of this block that the inputs are computed from.
      leaves: set[ir.Value] = set()
      computed: set[ir.Value] = set()  # the lazy values in between
      for v in op.operands:
        self._leaves(v, leaves, computed)
      own = [v for v in leaves if v in self.materialized and v.op.parent is block]
      if not own:
        continue
      source = max(own, key=lambda v: position[v.op])
      start, end = position[source.op], position[op]
      reaches: dict[ir.Value, bool] = {}
      if (all(self._elementwise_of(v, source, reaches) for v in op.operands) and
          all(v.type.shape == source.type.shape for v in op.operands) and
          (self._pure(computed) or not any(start < e < end for e in effects)) and
          all(self._defined_by(v, block, position, start) for v in leaves)):
        self.fused_reductions.setdefault(source, []).append(op)

  def _leaves(self, v: ir.Value, out: set, computed: set):
    """Adds to `out` the values a lazy tensor is computed from (materialised tensors, scalars,
    block arguments), and to `computed` the lazy values on the way."""
    if v in out or v in computed:
      return
    if not is_lazy(v) or v in self.materialized:
      out.add(v)
      return
    computed.add(v)
    for o in v.op.operands:
      self._leaves(o, out, computed)

  @staticmethod
  def _pure(values) -> bool:
    """Whether these lazy values are computed without reading memory (so a store cannot change
    them)."""
    return all(v.op.name in CHEAP_OPS or (v.op.name in registry.ELEMENTWISE and
                                          v.op.name not in registry.TENSOR) for v in values)

  def lane_wise_of(self, v: ir.Value, source: ir.Value) -> bool:
    """Whether lazy `v` is computed from `source`, and through lane-wise ops only: chunk i of `v`
    reads chunk i of `source` and nothing else of it."""
    reaches: dict = {}
    return v is not source and self._reaches(v, source, reaches) and self._elementwise_of(
        v, source, reaches)

  def _elementwise_of(self, v: ir.Value, source: ir.Value, reaches: dict) -> bool:
    """Whether every path from `v` down to `source` goes through lane-wise ops only (so chunk i
    of `v` needs only chunk i of `source`)."""
    if not self._reaches(v, source, reaches) or v is source:
      return True
    key = ("lane-wise", v)
    if key not in reaches:
      reaches[key] = v.op.name in registry.ELEMENTWISE and v.op.name not in registry.TENSOR and all(
          self._elementwise_of(o, source, reaches) for o in v.op.operands)
    return reaches[key]

  def _reaches(self, v: ir.Value, source: ir.Value, memo: dict) -> bool:
    if v is source:
      return True
    if not is_lazy(v) or v in self.materialized:
      return False
    if v not in memo:
      memo[v] = any(self._reaches(o, source, memo) for o in v.op.operands)
    return memo[v]

  @staticmethod
  def _defined_by(v: ir.Value, block: ir.Block, position, start: int) -> bool:
    """Whether `v` exists once the op at `start` of `block` has run."""
    owner = v.op.parent if v.op is not None else v.owner
    if owner is not block:
      return True  # an enclosing block's value, or this block's argument
    return v.op is None or position[v.op] <= start
