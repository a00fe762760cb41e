"""Checked mode (CPUOptions.bounds_check): every load, store and atomic checks the addresses it
touches against the extent of the buffer its pointer is derived from.

Provenance: a dataflow analysis gives each pointer value the set of pointer parameters it may be
derived from. A parameter is its own base; tt.addptr keeps its pointer's bases; shape ops (splat,
broadcast, reshape, cat, ...) and arith.select take the union of their pointer operands'; values
carried by scf.for / scf.if / scf.while and by branches take the union of everything that reaches
them (to a fixed point). A pointer made any other way (tt.int_to_ptr, a pointer loaded from
memory) may point into any buffer of the kernel. An access is allowed when each active lane lies
wholly inside one of its pointer's candidate buffers: with one candidate (the usual case) the check
is exact; with several it is sound (no false positives) but misses an access that strays from one
candidate into another.

Masked-off lanes are not accesses. A contiguous unmasked vector is checked once, by its span.

Extents come from the runtime: args[P + i] of the trampoline points at the byte size of parameter
i's buffer (docs/abi.md). A violation writes the message (kernel, source location, program, offset
in elements and bytes, buffer name and extent) into the thread-local message, sets the status
(codegen/debug.py), and returns from the program without making the access; the trampoline then
stops and the runtime raises the message.
"""
from __future__ import annotations

import collections

from llvmlite import ir as llvm

from .. import ir
from . import types as T
from .abi import pointer_params
from .debug import MESSAGE_BYTES, global_string, thread_state
from .lowering import _size_of

# Ops whose pointer results point into the buffers of their pointer operands.
_DERIVED = frozenset({
    "tt.addptr", "tt.splat", "tt.broadcast", "tt.expand_dims", "tt.reshape", "tt.trans", "tt.cat",
    "tt.join", "tt.split", "tt.gather", "tt.unsplat", "tt.bitcast", "arith.select",
})


def _is_pointer(t) -> bool:
  return isinstance(ir.element_type(t), ir.PointerType)


def provenance(function: ir.Function) -> dict[ir.Value, frozenset[int]]:
  """Pointer value -> indices of the pointer parameters it may be derived from."""
  anything = frozenset(pointer_params(function))
  bases = {function.params[i]: frozenset({i}) for i in anything}
  flows = collections.defaultdict(list)  # value -> the values that flow into it

  def flow(targets, sources):
    for t, s in zip(targets, sources):
      if _is_pointer(t.type):
        flows[t].append(s)

  for op in function.walk():
    if op.name == "scf.for":
      body = op.regions[0].block
      flow(body.args[1:], op.operands[3:])
      flow(body.args[1:], body.terminator.operands)
      flow(op.results, body.args[1:])
    elif op.name == "scf.if":
      for region in op.regions:
        if region.blocks:
          flow(op.results, region.block.terminator.operands)
    elif op.name == "scf.while":
      before, after = (r.block for r in op.regions)
      flow(before.args, op.operands)
      flow(before.args, after.terminator.operands)
      flow(after.args, before.terminator.operands[1:])
      flow(op.results, before.terminator.operands[1:])
    elif op.name == "cf.br":
      flow(op.successors[0].args, op.operands)
    elif op.name == "cf.cond_br":
      rest = op.operands[1:]
      sizes = op.attrs.get("operandSegmentSizes") or [1, len(rest), 0]
      flow(op.successors[0].args, rest[:sizes[1]])
      flow(op.successors[1].args, rest[sizes[1]:])
    elif op.name in _DERIVED:
      for r in op.results:
        flow([r] * len(op.operands), [o for o in op.operands if _is_pointer(o.type)])
    else:
      for r in op.results:
        if _is_pointer(r.type):
          bases[r] = anything
      for region in op.regions:
        for block in region.blocks:
          for a in block.args:
            if _is_pointer(a.type):
              bases[a] = anything
  changed = True
  while changed:
    changed = False
    for target, sources in flows.items():
      old = bases.get(target, frozenset())
      merged = old.union(*(bases.get(s, frozenset()) for s in sources))
      if merged != old:
        bases[target] = merged
        changed = True
  return bases


class Bounds:
  """What the checks of one kernel need: provenance, and each pointer parameter's base and extent
  (LLVM values of the kernel function)."""

  def __init__(self, function: ir.Function, params, extents: dict):
    self.bases = provenance(function)
    self.pointer = {i: params[i] for i in extents}
    self.extent = dict(extents)
    self.name = {i: function.params[i].name or f"parameter {i}" for i in extents}

  def candidates(self, pointer_value: ir.Value) -> list[int]:
    return sorted(self.bases.get(pointer_value) or self.extent)


def check(lo, op: ir.Op, pointer_value: ir.Value, pointer, mask, lanes: int, contiguous: bool,
          element: llvm.Type):
  """Checks one access of `lanes` elements of `element` through `pointer` (a pointer, or a vector
  of them; contiguous: lanes consecutive elements from the first pointer) where `mask` allows;
  on a violation, reports it and returns from the program. Nothing outside checked mode."""
  if lo.bounds is None:
    return
  b = lo.builder
  size = _size_of(element)
  candidates = lo.bounds.candidates(pointer_value)

  def fail_if_any_lane_is_bad():
    addresses = T.splat(b, b.ptrtoint(pointer, T.of_lanes(T.I64, T.lanes(pointer))), lanes)
    bad = b.not_(_inside(lo, candidates, addresses, size))
    if mask is not None:
      bad = b.and_(bad, T.splat(b, mask, lanes))
    any_bad = bad if lanes == 1 else lo.call_intrinsic(
        "vector.reduce.or", [bad], ret=T.I1, overload=[bad.type])
    with b.if_then(any_bad, likely=False):
      address = addresses
      if lanes > 1:  # the first offending lane
        bits = b.bitcast(bad, llvm.IntType(lanes))
        lane = lo.call_intrinsic("cttz", [bits, T.I1(0)], ret=bits.type, overload=[bits.type])
        address = b.extract_element(addresses, lane)
      _report(lo, op, address, size, candidates)
      b.ret_void()

  if contiguous and T.lanes(pointer) > 1:
    # One check of the whole vector's span; only a vector that fails it (a masked tail, or a
    # violation) is checked lane by lane.
    first = b.ptrtoint(b.extract_element(pointer, T.I32(0)), T.I64)
    with b.if_then(b.not_(_inside(lo, candidates, first, size * lanes)), likely=False):
      fail_if_any_lane_is_bad()
  else:
    fail_if_any_lane_is_bad()


def _inside(lo, candidates, address, span: int):
  """Whether [address, address + span) lies inside one of the candidate buffers (lane-wise)."""
  b = lo.builder
  n = T.lanes(address)
  inside = None
  for c in candidates:
    extent = lo.bounds.extent[c]
    # offset <u extent - span + 1 (no offset when the buffer is smaller than the span): one
    # compare per access; the bound is loop-invariant.
    bound = b.select(b.icmp_unsigned(">=", extent, T.I64(span)),
                     b.add(b.sub(extent, T.I64(span)), T.I64(1)), T.I64(0))
    offset = b.sub(address, T.splat(b, b.ptrtoint(lo.bounds.pointer[c], T.I64), n))
    ok = b.icmp_unsigned("<", offset, T.splat(b, bound, n))
    inside = ok if inside is None else b.or_(inside, ok)
  return inside if inside is not None else T.constant(T.of_lanes(T.I1, n), 0)


def _report(lo, op: ir.Op, address, size: int, candidates):
  """Calls the library's report function with the buffer the address is past the start of (the
  nearest; the first candidate when it lies below all of them)."""
  b = lo.builder
  kind = op.name.removeprefix("tt.")  # load, store, atomic_rmw, atomic_cas, ...
  where = f" at {op.loc}" if op.loc else ""
  site = _string(lo, f"{kind} in kernel '{lo.kernel_name}'{where}")
  if not candidates:
    name, base, extent = _string(lo, "(none: the kernel has no pointer parameters)"), T.I64(0), \
        T.I64(0)
  else:
    first = candidates[0]
    name = _string(lo, lo.bounds.name[first])
    base = b.ptrtoint(lo.bounds.pointer[first], T.I64)
    extent = lo.bounds.extent[first]
    for c in candidates[1:]:
      start = b.ptrtoint(lo.bounds.pointer[c], T.I64)
      nearer = b.and_(b.icmp_unsigned("<=", start, address),
                      b.or_(b.icmp_unsigned(">", base, address), b.icmp_unsigned(">", start, base)))
      name = b.select(nearer, _string(lo, lo.bounds.name[c]), name)
      base = b.select(nearer, start, base)
      extent = b.select(nearer, lo.bounds.extent[c], extent)
  note = ""
  if len(candidates) > 1:
    names = ", ".join(f"'{lo.bounds.name[c]}'" for c in candidates)
    note = f"; the pointer may point into {names} and lies in none of them"
  b.call(_report_function(lo.module),
         [site, name, _string(lo, note), *lo.program_ids, b.sub(address, base), T.I64(size),
          extent])


def _report_function(module: llvm.Module) -> llvm.Function:
  """void jtc.out_of_bounds(site, buffer, note, x, y, z, offset, size, extent): writes the
  message of the first violation of this launch call and sets the failure status."""
  name = "jtc.out_of_bounds"
  if name in module.globals:
    return module.globals[name]
  fn = llvm.Function(module, llvm.FunctionType(
      llvm.VoidType(), [T.PTR] * 3 + [T.I32] * 3 + [T.I64] * 3), name=name)
  fn.linkage = "internal"
  fn.attributes.add("noinline")
  fn.attributes.add("cold")
  site, buffer, note, x, y, z, offset, size, extent = fn.args
  b = llvm.IRBuilder(fn.append_basic_block())
  status, _, message = thread_state(module, b)
  snprintf = T.declare(module, "snprintf", T.I32, [T.PTR, T.I64, T.PTR], var_arg=True)
  fmt = global_string(module, "out-of-bounds %s, program (%u, %u, %u): offset %lld elements "
                               "(%lld bytes) from the start of buffer '%s', which has %llu "
                               "elements (%llu bytes)%s")
  with b.if_then(b.icmp_unsigned("==", b.load(status, typ=T.I32), T.I32(0))):
    b.call(snprintf, [message, T.I64(MESSAGE_BYTES), fmt, site, x, y, z, b.sdiv(offset, size),
                      offset, buffer, b.udiv(extent, size), extent, note])
    b.store(T.I32(1), status)
  b.ret_void()
  return fn


def _string(lo, text: str):
  return global_string(lo.module, text)
