"""If-conversion: a region whose blocks branch (cf.br / cf.cond_br, no loops) and whose ops have no
side effects becomes one block, computing every block's values and choosing with arith.select.

Triton's frontend turns an `if` with a `return` in it into branches between blocks. The code
generator wants structured control flow in functions it inlines and in the regions of tt.reduce,
tt.scan and tt.map_elementwise, which it evaluates on vectors of lanes (each lane may take its own
path there). Running a block whose result is not chosen is harmless when its ops cannot fault or
write: pure arithmetic (integer division by zero does not trap in our code generator), no loads,
stores, atomics, prints, asserts or calls.
"""
from __future__ import annotations

from . import ir

I1 = ir.ScalarType("i1")
_EFFECTS = ("load", "store", "atomic", "print", "assert", "descriptor", "call", "barrier")


def convertible(region: ir.Region) -> bool:
  """Whether if_convert can make the region's blocks one: no loops among them, no op with side
  effects."""
  blocks = region.blocks
  try:
    _topological(blocks)
  except ValueError:
    return False
  for block in blocks:
    for op in block.ops[:-1]:
      for inner in ir.walk_op(op):
        if any(word in inner.name for word in _EFFECTS) or inner.name.startswith(("scf.", "cf.")):
          return False
  return True


def if_convert(region: ir.Region) -> None:
  """Replaces the (convertible) region's blocks by one block computing what they do; its
  terminator is the blocks' own return op (tt.return, tt.reduce.return, ...), whose operands are
  chosen by the path taken."""
  blocks = region.blocks
  entry = blocks[0]
  merged = ir.Block([a.type for a in entry.args])
  for old, new in zip(entry.args, merged.args):
    ir.replace_uses(old, new)
  incoming = {block: [] for block in blocks}  # block -> [(condition it is entered on, arguments)]
  incoming[entry].append((None, list(merged.args)))
  returns = []
  for block in _topological(blocks):
    taken, values = _merge(merged, incoming[block])
    for arg, value in zip(block.args, values):
      ir.replace_uses(arg, value)
    for op in block.ops[:-1]:
      op.parent = merged
      merged.ops.append(op)
    term = block.terminator
    operands = list(term.operands)
    for v in operands:
      v.uses.remove(term)
    if term.name == "cf.br":
      incoming[term.successors[0]].append((taken, operands))
    elif term.name == "cf.cond_br":
      condition, *rest = operands
      sizes = term.attrs.get("operandSegmentSizes") or [1, len(rest), 0]
      otherwise = _emit(merged, "arith.xori", [condition, _true(merged, term.loc)], term.loc)
      incoming[term.successors[0]].append((_and(merged, taken, condition, term.loc),
                                           rest[:sizes[1]]))
      incoming[term.successors[1]].append((_and(merged, taken, otherwise, term.loc),
                                           rest[sizes[1]:]))
    else:
      returns.append((taken, operands, term))
  _, values = _merge(merged, [(taken, operands) for taken, operands, _ in returns])
  last = returns[0][2]
  terminator = ir.Op(last.name, values, [], dict(last.attrs), last.loc)
  terminator.parent = merged
  merged.ops.append(terminator)
  region.blocks = [merged]
  merged.parent = region


def _merge(block, edges):
  """(condition any edge holds on, the values of the last edge whose condition holds)."""
  taken, values = edges[0]
  for condition, more in edges[1:]:
    values = [_emit(block, "arith.select", [condition, new, old], None) if new is not old else new
              for new, old in zip(more, values)]
    taken = None if taken is None or condition is None else \
        _emit(block, "arith.ori", [taken, condition], None)
  return taken, values


def _and(block, taken, condition, loc):
  return condition if taken is None else _emit(block, "arith.andi", [taken, condition], loc)


def _true(block, loc):
  return _emit(block, "arith.constant", [], loc, {"value": 1}, I1)


def _emit(block, name, operands, loc, attrs=None, result_type=None):
  op = ir.Op(name, operands, [result_type or operands[-1].type], attrs or {}, loc)
  op.parent = block
  block.ops.append(op)
  return op.result


def _topological(blocks: list) -> list:
  """The blocks reachable from the first, each after every block that branches to it."""
  order, state = [], {}

  def visit(block):
    state[block] = "open"
    for successor in block.terminator.successors:
      if state.get(successor) == "open":
        raise ValueError("a loop")
      if successor not in state:
        visit(successor)
    state[block] = "done"
    order.append(block)

  visit(blocks[0])
  return order[::-1]
