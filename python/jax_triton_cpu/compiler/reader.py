"""Reader: TTIR in MLIR's generic op form -> our IR.

The text is parsed by the MLIR Python bindings that jaxlib ships, in a context that registers no
dialect at all: in the generic form every op, attribute and type has one syntax whatever its
dialect, so the reader depends neither on jaxlib's copy of the Triton dialect (which drops and
gains ops on its own schedule: jaxlib 0.12 has no tt.cat) nor on the triton version that printed
the text. Ops the code generator does not know reach it and fail there, by name and source line.
"""
from __future__ import annotations

import os
import re

import ml_dtypes
import numpy as np
from jaxlib.mlir import ir as mlir

from . import ir

_LOC_RE = re.compile(r'"([^"]+)":(\d+):(\d+)')
_TRITON_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__import__("triton").__file__)))
# What the bracket matcher of _properties_as_attributes looks at: whole string literals (which
# may hold any character), the opening of an op's properties, and brackets.
_TOKEN_RE = re.compile(r'"(?:[^"\\]|\\.)*"|[)\]] <\{|[{}()\[\]]')
_OPEN = {"{": "}", "(": ")", "[": "]"}


def _location(mlir_loc) -> ir.Location | None:
  """The user's source position of an op: the innermost frame outside the triton package."""
  frames = [ir.Location(f, int(l), int(c)) for f, l, c in _LOC_RE.findall(str(mlir_loc))]
  user = [f for f in frames if not os.path.abspath(f.file).startswith(_TRITON_DIR)]
  return (user or frames or [None])[0]


def _attribute(attr):
  """Converts an MLIR attribute into a Python value (int, float, bool, str, list or ndarray)."""
  # The bindings hand out attributes already cast to their most specific class.
  if isinstance(attr, mlir.FloatAttr):
    return _float(attr)
  if isinstance(attr, (mlir.BoolAttr, mlir.IntegerAttr, mlir.StringAttr)):
    return attr.value
  if isinstance(attr, (mlir.DenseI32ArrayAttr, mlir.DenseI64ArrayAttr, mlir.DenseBoolArrayAttr)):
    return list(attr)
  if isinstance(attr, mlir.DenseElementsAttr):
    if attr.is_splat:
      return _attribute(attr.get_splat_value())
    if isinstance(attr, mlir.DenseFPElementsAttr) and _float_dtype(attr.type.element_type):
      return _dense_floats(attr)
    return np.array(attr)
  if isinstance(attr, mlir.ArrayAttr):
    return [_attribute(a) for a in attr]
  if isinstance(attr, mlir.FlatSymbolRefAttr):
    return "@" + attr.value  # unquoted: a symbol may be printed @"name(1,)c..."
  if isinstance(attr, mlir.DictAttr):
    return {attr[i].name: _attribute(attr[i].attr) for i in range(len(attr))}
  return str(attr)  # enums and other dialect attributes keep their spelling


# MLIR float types -> numpy dtypes, for bit-exact float attributes.
_FLOAT_DTYPES = {"f16": np.float16, "bf16": ml_dtypes.bfloat16, "f32": np.float32,
                 "f64": np.float64, "f8E4M3FN": ml_dtypes.float8_e4m3fn,
                 "f8E5M2": ml_dtypes.float8_e5m2, "f8E4M3FNUZ": ml_dtypes.float8_e4m3fnuz,
                 "f8E5M2FNUZ": ml_dtypes.float8_e5m2fnuz,
                 "f8E4M3B11FNUZ": ml_dtypes.float8_e4m3b11fnuz}


def _float_dtype(mlir_type):
  return _FLOAT_DTYPES.get(str(mlir_type))


def _float_literal(literal: str, dtype):
  """One float of MLIR's printed form: a decimal, or (NaNs, infinities) its bits in hex."""
  if literal.startswith("0x"):
    return np.array(int(literal, 16), f"u{np.dtype(dtype).itemsize}").view(dtype)[()]
  return dtype(float(literal))


def _float(attr):
  """A float attribute as a numpy scalar of its own type, bit for bit: `.value` widens to f64,
  which turns a signalling NaN into a quiet one."""
  dtype = _float_dtype(attr.type)
  if dtype is None:
    return attr.value
  return _float_literal(str(attr).rpartition(" : ")[0].strip(), dtype)


def _dense_floats(attr) -> np.ndarray:
  """A non-splat dense float attribute as an array of its own type, from its printed form (the
  bindings convert only f16, f32 and f64 to numpy, and those without NaN payloads' bits)."""
  dtype = _float_dtype(attr.type.element_type)
  shape = list(attr.type.shape)
  body = str(attr).rpartition(" : ")[0].partition("dense<")[2][:-1]
  if body.startswith('"0x'):  # raw little-endian bytes
    return np.frombuffer(bytes.fromhex(body[3:-1]), dtype).reshape(shape).copy()
  literals = body.replace("[", " ").replace("]", " ").replace(",", " ").split()
  return np.array([_float_literal(v, dtype) for v in literals], dtype).reshape(shape)


def _properties_as_attributes(text: str) -> str:
  """Moves each op's properties (`"op"(...) <{p}> (regions) {attrs}`) into its attribute
  dictionary (`"op"(...) (regions) {p, attrs}`).

  Registered ops keep their inherent attributes in properties; for an unregistered op the parser
  keeps them too, but the bindings show only the attribute dictionary. In the generic form both
  are attribute lists of the same syntax, so the move needs no knowledge of the op."""
  closing: dict[int, int] = {}  # bracket position -> position of its match
  properties: list[int] = []  # positions of the `{` of each `<{`
  stack: list[int] = []
  for m in _TOKEN_RE.finditer(text):
    token, at = m.group(), m.start()
    if token[0] == '"':
      continue
    if token[0] not in _OPEN:  # `)`, `]`, or one of them followed by ` <{`
      closing[stack.pop()] = at
    if token[-1] in _OPEN:
      stack.append(m.end() - 1)
      if token.endswith("<{"):
        properties.append(m.end() - 1)
  edits = []  # (start, end, replacement), applied in text order
  for p in properties:
    end = closing[p]
    if text[end + 1] != ">":
      continue  # an opaque attribute spelled #dialect<{...}>, not properties
    items = text[p + 1:end]
    edits.append((p - 1, end + 2, ""))
    after = end + 2
    while text[after] == " ":
      after += 1
    if text[after] == "(":  # the op's regions
      after = closing[after] + 1
      while text[after] == " ":
        after += 1
    if text[after] == "{":
      edits.append((after + 1, after + 1, items if text[after + 1] == "}" else items + ", "))
    else:
      edits.append((after, after, "{" + items + "} "))
  pieces, done = [], 0
  for start, end, replacement in sorted(edits):
    pieces += [text[done:start], replacement]
    done = end
  pieces.append(text[done:])
  return "".join(pieces)


# Ops that only move a tensor between GPU register layouts or through GPU shared memory (TTGIR, as
# hand-written GPU-level IR holds them): on a CPU the result is the operand itself.
_LAYOUT_ONLY_OPS = frozenset({"ttg.convert_layout", "ttg.local_alloc", "ttg.local_load"})


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
        if op is None:
          continue
        op.parent = block
        block.ops.append(op)
    return ir.Region(blocks)

  def op(self, mop) -> ir.Op | None:
    if mop.name in _LAYOUT_ONLY_OPS and len(mop.operands) == 1 and len(mop.results) == 1:
      self.values[mop.results[0]] = self.values[mop.operands[0]]
      return None
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


def read_ttir(text: str) -> ir.Module:
  """Parses TTIR into our IR: in MLIR's generic op form (frontend.make_ttir), or in the custom form
  (hand-written TTIR, triton's dumps), which triton's own parser turns into the generic form."""
  if '"builtin.module"' not in text:
    from . import frontend
    text = frontend.generic_form(text)
  context = mlir.Context()
  context.allow_unregistered_dialects = True  # every dialect: none is registered
  with context:
    try:
      module = mlir.Module.parse(_properties_as_attributes(text))
    except mlir.MLIRError as e:
      raise ValueError(f"unreadable Triton IR: {e}") from None
    reader = _Reader()
    functions = {}
    for mop in module.body.operations:
      mop = mop.operation
      if mop.name != "tt.func":
        raise NotImplementedError(f"top-level op {mop.name} is not supported")
      f = reader.function(mop)
      functions[f.name] = f
  return ir.Module(functions)
