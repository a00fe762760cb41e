"""Inlines calls (tt.call) to the kernel's helper functions, so the code generator sees one body.

Triton inlines most helpers itself; what reaches us are functions marked noinline. On a CPU a
program runs on one thread, so inlining them changes nothing but compile time, and program ids
inside them keep meaning the caller's (unlike triton-cpu, which reads the wrong arguments).
"""
from __future__ import annotations

from . import ir
from .if_convert import convertible, if_convert

# Ops whose region the code generator runs on vectors of lanes: it must be one block.
_LANE_REGIONS = ("tt.reduce", "tt.scan", "tt.map_elementwise")


def _clone_block(block: ir.Block, mapping: dict) -> ir.Block:
  clone = ir.Block([a.type for a in block.args])
  for a, b in zip(block.args, clone.args):
    mapping[a] = b
  for op in block.ops:
    new = _clone_op(op, mapping)
    new.parent = clone
    clone.ops.append(new)
  return clone


def _clone_op(op: ir.Op, mapping: dict) -> ir.Op:
  new = ir.Op(op.name, [mapping.get(v, v) for v in op.operands], [r.type for r in op.results],
              dict(op.attrs), op.loc)
  for old_result, new_result in zip(op.results, new.results):
    mapping[old_result] = new_result
  for region in op.regions:
    cloned = ir.Region([_clone_block(b, mapping) for b in region.blocks])
    cloned.parent = new
    new.regions.append(cloned)
  return new


def _inline_block(block: ir.Block, functions: dict, depth: int):
  position = 0
  while position < len(block.ops):
    op = block.ops[position]
    for region in op.regions:
      for b in region.blocks:
        _inline_block(b, functions, depth)
    if op.name != "tt.call":
      position += 1
      continue
    if depth > 64:
      raise NotImplementedError(f"recursive function calls are not supported (at {op.loc})")
    callee = functions[op.attrs["callee"].lstrip("@")]
    if len(callee.region.blocks) > 1:  # an early return: branches between blocks
      if not convertible(callee.region):
        raise NotImplementedError(
            f"function '{callee.name}' returns early (from inside an if) and loads, stores or "
            f"has loops: only kernels may do that on the CPU backend (at {op.loc})")
      if_convert(callee.region)
    body = callee.body
    if body.terminator.name != "tt.return" or any(
        o.name == "tt.return" for inner in body.ops[:-1] for o in ir.walk_op(inner)):
      raise NotImplementedError(
          f"function '{callee.name}' returns from inside control flow (at {op.loc})")
    mapping = dict(zip(body.args, op.operands))
    inlined = [_clone_op(o, mapping) for o in body.ops[:-1]]
    _inline_block(_wrap(inlined), functions, depth + 1)
    for o in inlined:
      o.parent = block
    for result, returned in zip(op.results, body.terminator.operands):
      ir.replace_uses(result, mapping.get(returned, returned))
    for v in op.operands:
      v.uses.remove(op)
    block.ops[position:position + 1] = inlined


def _wrap(ops: list) -> ir.Block:
  """A temporary block holding `ops`, to inline calls nested in them."""
  block = ir.Block([])
  block.ops = ops
  return block


def inline_calls(module: ir.Module) -> ir.Function:
  """The kernel with every call inlined, and the regions the code generator runs on lanes made
  of one block each."""
  kernel = module.kernel
  for block in kernel.region.blocks:
    _inline_block(block, module.functions, 0)
  for block in kernel.region.blocks:
    for op in ir.walk(block):
      if op.name in _LANE_REGIONS and len(op.regions[0].blocks) > 1:
        if not convertible(op.regions[0]):
          raise NotImplementedError(f"the function of {op.name} has loops or side effects in "
                                    f"branches, not supported by the CPU backend (at {op.loc})")
        if_convert(op.regions[0])
  return kernel
