"""Our small IR: Triton IR after the frontend, as plain Python objects.

Decoupled from any MLIR binding version: the reader builds it, the analyses and the code generator
consume it. Types are parsed from their MLIR spelling; attributes are plain Python values.
"""
from __future__ import annotations

import dataclasses
import math
import re
from typing import Any


# ---- types --------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class ScalarType:
  name: str  # i1, i8, i16, i32, i64, f16, bf16, f32, f64, f8E4M3FN, f8E5M2

  @property
  def is_float(self) -> bool:
    return self.name.startswith(("f", "bf"))

  @property
  def is_int(self) -> bool:
    return self.name.startswith("i")

  @property
  def bits(self) -> int:
    if self.name == "bf16":
      return 16
    if self.name.startswith("f8"):
      return 8
    return int(self.name[1:])

  def __str__(self):
    return self.name


@dataclasses.dataclass(frozen=True)
class PointerType:
  pointee: Any  # ScalarType, or a TensorType for block pointers

  bits = 64
  is_float = False
  is_int = False

  def __str__(self):
    return f"!tt.ptr<{self.pointee}>"


@dataclasses.dataclass(frozen=True)
class TensorType:
  shape: tuple[int, ...]
  element: Any  # ScalarType or PointerType

  @property
  def numel(self) -> int:
    return math.prod(self.shape)

  @property
  def rank(self) -> int:
    return len(self.shape)

  def __str__(self):
    return f"tensor<{'x'.join(map(str, self.shape))}x{self.element}>"


def element_type(t):
  return t.element if isinstance(t, TensorType) else t


def is_tensor(t) -> bool:
  return isinstance(t, TensorType)


_TENSOR_RE = re.compile(r"^tensor<((?:\d+x)*)(.+)>$")
_PTR_RE = re.compile(r"^!tt\.ptr<(.+?)(?:,\s*\d+)?>$")
_SCALAR_NAMES = {"i1", "i8", "i16", "i32", "i64", "f16", "bf16", "f32", "f64", "f8E4M3FN", "f8E5M2",
                 "f8E4M3FNUZ", "f8E5M2FNUZ", "f8E4M3B11FNUZ", "index"}


def _first_parameter(text: str) -> str:
  """`name<a, b, ...>` -> `name<a>`: drops a tensor's GPU layout (TTGIR: `tensor<4x8xf32,
  #ttg.blocked<{...}>>`, meaningless on a CPU) or a pointer's address space and `"constant"`
  qualifier (`!tt.ptr<f32, 1, "constant">`, a `tl.const` pointer)."""
  depth = 0
  for i, c in enumerate(text):
    if c in "<{[(":
      depth += 1
    elif c in ">}])":
      depth -= 1
    elif c == "," and depth == 1:
      return text[:i] + ">"
  return text


def parse_type(text: str):
  """Parses an MLIR type spelling such as `tensor<64x!tt.ptr<f32>>`."""
  text = text.strip()
  if text.startswith(("tensor<", "!tt.ptr<")):
    text = _first_parameter(text)
  m = _TENSOR_RE.match(text)
  if m:
    dims = tuple(int(d) for d in m.group(1).split("x") if d)
    return TensorType(dims, parse_type(m.group(2)))
  m = _PTR_RE.match(text)
  if m:
    return PointerType(parse_type(m.group(1)))
  if text in _SCALAR_NAMES:
    return ScalarType("i64" if text == "index" else text)
  raise NotImplementedError(f"type {text} is not supported by the CPU backend")


# ---- values, operations, regions -----------------------------------------------------------------

class Value:
  """An SSA value: an operation result or a block argument."""
  __slots__ = ("type", "owner", "index", "uses", "name")

  def __init__(self, type_, owner, index: int, name: str = ""):
    self.type = type_
    self.owner = owner  # Op for results, Block for block arguments
    self.index = index
    self.uses: list[Op] = []
    self.name = name

  @property
  def op(self) -> "Op | None":
    return self.owner if isinstance(self.owner, Op) else None

  def __repr__(self):
    return f"%{self.name or id(self)}: {self.type}"


@dataclasses.dataclass(frozen=True)
class Location:
  file: str
  line: int
  col: int

  def __str__(self):
    return f"{self.file}:{self.line}:{self.col}"


class Op:
  __slots__ = ("name", "operands", "results", "attrs", "regions", "loc", "parent", "successors")

  def __init__(self, name: str, operands: list[Value], result_types: list, attrs: dict,
               loc: Location | None):
    self.name = name
    self.operands = operands
    self.results = [Value(t, self, i) for i, t in enumerate(result_types)]
    self.attrs = attrs
    self.regions: list[Region] = []
    self.loc = loc
    self.parent: Block | None = None
    self.successors: list[Block] = []  # branch targets (cf.br, cf.cond_br)
    for v in operands:
      v.uses.append(self)

  @property
  def result(self) -> Value:
    (r,) = self.results
    return r

  def __repr__(self):
    return f"{self.name}({', '.join(map(repr, self.operands))})"


class Block:
  __slots__ = ("args", "ops", "parent")

  def __init__(self, arg_types: list):
    self.args = [Value(t, self, i) for i, t in enumerate(arg_types)]
    self.ops: list[Op] = []
    self.parent: Region | None = None

  @property
  def terminator(self) -> Op:
    return self.ops[-1]


class Region:
  __slots__ = ("blocks", "parent")

  def __init__(self, blocks: list[Block]):
    self.blocks = blocks
    self.parent: Op | None = None
    for b in blocks:
      b.parent = self

  @property
  def block(self) -> Block:
    if len(self.blocks) != 1:
      raise NotImplementedError("regions with several blocks are not supported")
    return self.blocks[0]


@dataclasses.dataclass
class Function:
  name: str
  region: Region  # one block, or several joined by branches (an early `return`)
  arg_attrs: list[dict]
  public: bool
  loc: Location | None
  result_types: list = dataclasses.field(default_factory=list)

  @property
  def body(self) -> Block:
    """The entry block."""
    return self.region.blocks[0]

  @property
  def params(self) -> list[Value]:
    return self.body.args

  def walk(self):
    """Every op of the function, nested ones included, in program order."""
    for block in self.region.blocks:
      yield from walk(block)


@dataclasses.dataclass
class Module:
  functions: dict[str, Function]

  @property
  def kernel(self) -> Function:
    public = [f for f in self.functions.values() if f.public]
    if len(public) != 1:
      raise ValueError(f"expected one public kernel function, found {[f.name for f in public]}")
    return public[0]


def replace_uses(old: Value, new: Value):
  """Makes every user of `old` use `new` instead."""
  for user in list(old.uses):
    user.operands = [new if v is old else v for v in user.operands]
    new.uses.append(user)
  old.uses.clear()


def walk_op(op: Op):
  """Yields `op` and every op nested in its regions."""
  yield op
  for region in op.regions:
    for b in region.blocks:
      yield from walk(b)


def walk(block: Block):
  """Yields every op in `block` and in its nested regions, in program order."""
  for op in block.ops:
    yield op
    for region in op.regions:
      for b in region.blocks:
        yield from walk(b)
