"""Reader: TTIR text -> our IR, through the MLIR Python bindings that jaxlib ships (with the Triton
dialect registered)."""
from __future__ import annotations

import os
import re

import numpy as np
from jaxlib.mlir import ir as mlir
from jaxlib.triton import dialect as triton_dialect

from . import ir

_LOC_RE = re.compile(r'"([^"]+)":(\d+):(\d+)')
# TTIR that jaxlib's MLIR cannot parse (dialects it does not register), rewritten before parsing:
# - cache / eviction hints, which mean nothing on a CPU, are dropped;
# - tl.debug_barrier's `ttg.barrier`, tl.assume's `llvm.intr.assume` and the atomic loads and
#   stores become generic ops of an unregistered dialect (jtc.barrier, jtc.assume,
#   jtc.atomic_load, jtc.atomic_store), which the code generator lowers.
_CACHE_POLICY_RE = re.compile(r"cachePolicy = #tt\.cache_policy<[^>]*>(, )?")
_BARRIER_RE = re.compile(r"^(\s*)ttg\.barrier\b[^\n]*?( loc\(.*\))?$", re.MULTILINE)
_ASSUME_RE = re.compile(r"llvm\.intr\.assume (%[\w.#]+) : i1")
# Atomic loads and stores (newer than jaxlib's dialect) become jtc.atomic_load / jtc.atomic_store.
_ATOMIC_LOAD_RE = re.compile(
    r"(%[\w.#]+) = tt\.atomic_load (\w+), \w+, ([^:\n]+?) : (\([^)\n]*\)) -> ([^\n]+?)( loc\(|$)",
    re.MULTILINE)
_ATOMIC_STORE_RE = re.compile(r"tt\.atomic_store (\w+), \w+, ([^:\n]+?) : ([^\n]+?)( loc\(|$)",
                              re.MULTILINE)
_POINTER_RE = re.compile(r"!tt\.ptr<([^<>]+)>")
_TRITON_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__import__("triton").__file__)))


def _location(mlir_loc) -> ir.Location | None:
  """The user's source position of an op: the innermost frame outside the triton package."""
  frames = [ir.Location(f, int(l), int(c)) for f, l, c in _LOC_RE.findall(str(mlir_loc))]
  user = [f for f in frames if not os.path.abspath(f.file).startswith(_TRITON_DIR)]
  return (user or frames or [None])[0]


def _attribute(attr):
  """Converts an MLIR attribute into a Python value (int, float, bool, str, list or ndarray)."""
  # The bindings hand out attributes already cast to their most specific class.
  if isinstance(attr, (mlir.BoolAttr, mlir.IntegerAttr, mlir.FloatAttr, mlir.StringAttr)):
    return attr.value
  if isinstance(attr, (mlir.DenseI32ArrayAttr, mlir.DenseI64ArrayAttr, mlir.DenseBoolArrayAttr)):
    return list(attr)
  if isinstance(attr, mlir.DenseElementsAttr):
    if attr.is_splat:
      return _attribute(attr.get_splat_value())
    return np.array(attr)
  if isinstance(attr, mlir.ArrayAttr):
    return [_attribute(a) for a in attr]
  if isinstance(attr, mlir.DictAttr):
    return {attr[i].name: _attribute(attr[i].attr) for i in range(len(attr))}
  return str(attr)  # enums and other dialect attributes keep their spelling


def _atomic_store(m) -> str:
  sem, operands, pointer_type, tail = m.groups()
  value_type = _POINTER_RE.sub(r"\1", pointer_type)
  types = [pointer_type, value_type, _POINTER_RE.sub("i1", pointer_type)][:operands.count(",") + 1]
  return f'"jtc.atomic_store"({operands}) {{sem = "{sem}"}} : ({", ".join(types)}) -> (){tail}'


def _sanitize(text: str) -> str:
  text = _ATOMIC_LOAD_RE.sub(r'\1 = "jtc.atomic_load"(\3) {sem = "\2"} : \4 -> \5\6', text)
  text = _ATOMIC_STORE_RE.sub(_atomic_store, text)
  text = _CACHE_POLICY_RE.sub("", text).replace(" {}", "")
  text = _BARRIER_RE.sub(lambda m: f'{m.group(1)}"jtc.barrier"() : () -> (){m.group(2) or ""}', text)
  return _ASSUME_RE.sub(r'"jtc.assume"(\1) : (i1) -> ()', text)


class _Reader:

  def __init__(self):
    self.values: dict = {}  # MLIR value -> ir.Value
    self.blocks: dict = {}  # MLIR block -> ir.Block (branch targets)

  def region(self, mlir_region) -> ir.Region:
    # All blocks first: branches may jump forward.
    blocks = []
    for mlir_block in mlir_region.blocks:
      block = ir.Block([ir.parse_type(str(a.type)) for a in mlir_block.arguments])
      for m, v in zip(mlir_block.arguments, block.args):
        self.values[m] = v
      self.blocks[mlir_block] = block
      blocks.append(block)
    for mlir_block, block in zip(mlir_region.blocks, blocks):
      for mlir_op in mlir_block.operations:
        op = self.op(mlir_op.operation)
        op.parent = block
        block.ops.append(op)
    return ir.Region(blocks)

  def op(self, mop) -> ir.Op:
    attrs = {name: _attribute(mop.attributes[name]) for name in mop.attributes}
    loc = _location(mop.location)
    try:
      result_types = [ir.parse_type(str(r.type)) for r in mop.results]
    except NotImplementedError as e:
      raise NotImplementedError(f"{e} (in {mop.name} at {loc})") from None
    op = ir.Op(mop.name, [self.values[v] for v in mop.operands], result_types, attrs, loc)
    for m, v in zip(mop.results, op.results):
      self.values[m] = v
    for mlir_region in mop.regions:
      region = self.region(mlir_region)
      region.parent = op
      op.regions.append(region)
    op.successors = [self.blocks[b] for b in mop.successors]
    return op

  def function(self, mop) -> ir.Function:
    attrs = {name: _attribute(mop.attributes[name]) for name in mop.attributes}
    region = self.region(mop.regions[0])
    body = region.blocks[0]
    for v, name in zip(body.args, _arg_names(mop)):
      v.name = name
    result_types = [ir.parse_type(str(t)) for t in
                    mlir.FunctionType(mlir.TypeAttr(mop.attributes["function_type"]).value).results]
    arg_attrs = attrs.get("arg_attrs") or [{} for _ in body.args]
    return ir.Function(attrs["sym_name"], region, arg_attrs, attrs.get("sym_visibility") != "private",
                       _location(mop.location), result_types)


def _arg_names(mop) -> list[str]:
  """Parameter names from their locations (loc("x_ptr"(...))), for readable errors and IR dumps."""
  names = []
  for a in mop.regions[0].blocks[0].arguments:
    m = re.match(r'loc\("([^"]+)"', str(a.location))
    names.append(m.group(1) if m else "")
  return names


_PARSE_ERROR_RE = re.compile(r'"-":(\d+):\d+: (.*)')
_OP_RE = re.compile(r"custom op '([\w.]+)'|op '([\w.]+)'")
_LOC_DEF_RE = re.compile(r"^(#loc\d*) = loc\((.*)\)$", re.MULTILINE)
_LOC_USE_RE = re.compile(r"loc\((#loc\d*)\)\s*$")


def _source_line(text: str, line_number: int) -> str | None:
  """The kernel source position of TTIR line `line_number`, through its #loc alias."""
  lines = text.splitlines()
  if not 0 < line_number <= len(lines):
    return None
  m = _LOC_USE_RE.search(lines[line_number - 1])
  if not m:
    return None
  definitions = dict(_LOC_DEF_RE.findall(text))
  alias, seen = m.group(1), set()
  while alias in definitions and alias not in seen:  # #loc5 = loc("x"(#loc2)) -> #loc2 ...
    seen.add(alias)
    body = definitions[alias]
    frame = _location(f"loc({body})")
    if frame is not None:
      return str(frame)
    inner = re.search(r"(#loc\d*)", body)
    if not inner:
      return None
    alias = inner.group(1)
  return None


def _parse_error_message(error: str, text: str) -> str:
  """NotImplementedError text naming the op MLIR could not read and the kernel line using it."""
  m = _PARSE_ERROR_RE.search(error)
  detail = m.group(2) if m else error
  op = _OP_RE.search(detail)
  name = next((g for g in op.groups() if g), None) if op else None
  where = _source_line(text, int(m.group(1))) if m else None
  what = f"Triton op '{name}'" if name else "an op or attribute of this kernel's Triton IR"
  kernel = re.search(r"tt\.func public @([\w$]+)", text)
  context = ", ".join(([f"in kernel '{kernel.group(1)}'"] if kernel else []) +
                      ([f"at {where}"] if where else []))
  return f"{what} is not supported by the CPU backend ({context}): {detail}"


def read_ttir(text: str) -> ir.Module:
  """Parses TTIR text (as printed by upstream triton) into our IR."""
  context = mlir.Context()
  context.allow_unregistered_dialects = True  # for the jtc.* ops of _sanitize
  triton_dialect.register_dialect(context)
  with context:
    sanitized = _sanitize(text)
    try:
      module = mlir.Module.parse(sanitized)
    except mlir.MLIRError as e:
      raise NotImplementedError(_parse_error_message(str(e), sanitized)) from None
    reader = _Reader()
    functions = {}
    for mop in module.body.operations:
      mop = mop.operation
      if mop.name != "tt.func":
        raise NotImplementedError(f"top-level op {mop.name} is not supported")
      f = reader.function(mop)
      functions[f.name] = f
  return ir.Module(functions)
