"""LLVM float values (scalars or vectors) with Python operators, for the numerical code of the
libdevice rules (directed rounding, special functions). Arithmetic carries no fast-math or
contraction flags, so error-free transformations (two_sum, fma residuals) stay exact."""
from __future__ import annotations

from llvmlite import ir as llvm

from . import types as T
from .math import call_library


class Mask:
  """An i1 scalar or vector."""
  __slots__ = ("lo", "v")

  def __init__(self, lo, v):
    self.lo, self.v = lo, v

  def __and__(self, o):
    return Mask(self.lo, self.lo.builder.and_(self.v, o.v))

  def __or__(self, o):
    return Mask(self.lo, self.lo.builder.or_(self.v, o.v))

  def __invert__(self):
    return Mask(self.lo, self.lo.builder.not_(self.v))


class Num:
  """An f32 / f64 scalar or vector; Python numbers mix in as constants of its type."""
  __slots__ = ("lo", "v")

  def __init__(self, lo, v):
    self.lo, self.v = lo, v

  @property
  def b(self):
    return self.lo.builder

  @property
  def element(self):
    return T.element(self.v.type)

  @property
  def width(self) -> int:
    return {T.F32: 32, T.F64: 64}[self.element]

  def like(self, value) -> "Num":
    return value if isinstance(value, Num) else Num(self.lo, T.constant(self.v.type, value))

  def _op(self, method, o, reverse=False):
    a, c = (self.like(o), self) if reverse else (self, self.like(o))
    return Num(self.lo, getattr(self.b, method)(a.v, c.v))

  __add__ = lambda s, o: s._op("fadd", o)
  __radd__ = lambda s, o: s._op("fadd", o, True)
  __sub__ = lambda s, o: s._op("fsub", o)
  __rsub__ = lambda s, o: s._op("fsub", o, True)
  __mul__ = lambda s, o: s._op("fmul", o)
  __rmul__ = lambda s, o: s._op("fmul", o, True)
  __truediv__ = lambda s, o: s._op("fdiv", o)
  __rtruediv__ = lambda s, o: s._op("fdiv", o, True)

  def __neg__(self):
    return Num(self.lo, self.b.fneg(self.v))

  def _cmp(self, op, o):
    return Mask(self.lo, self.b.fcmp_ordered(op, self.v, self.like(o).v))

  __lt__ = lambda s, o: s._cmp("<", o)
  __le__ = lambda s, o: s._cmp("<=", o)
  __gt__ = lambda s, o: s._cmp(">", o)
  __ge__ = lambda s, o: s._cmp(">=", o)
  eq = lambda s, o: s._cmp("==", o)
  ne = lambda s, o: s._cmp("!=", o)  # ordered: false where either is NaN

  def isnan(self) -> Mask:
    return Mask(self.lo, self.b.fcmp_unordered("uno", self.v, self.v))

  def isinf(self) -> Mask:
    return self.abs().eq(float("inf"))

  def finite(self) -> Mask:
    return self.abs() < float("inf")

  def intrinsic(self, name, *others) -> "Num":
    return Num(self.lo, self.lo.call_intrinsic(name, [self.v] + [self.like(o).v for o in others]))

  abs = lambda s: s.intrinsic("fabs")
  sqrt = lambda s: s.intrinsic("sqrt")
  floor = lambda s: s.intrinsic("floor")
  roundeven = lambda s: s.intrinsic("roundeven")
  copysign = lambda s, sign: s.intrinsic("copysign", sign)
  maxnum = lambda s, o: s.intrinsic("maxnum", o)

  def fma(self, y, z) -> "Num":
    return self.intrinsic("fma", y, z)

  def call(self, name: str, *others) -> "Num":
    """The libm function `name` (f suffix added for f32), through libmvec where it has one."""
    return Num(self.lo, call_library(self.lo, name, [self.v] + [self.like(o).v for o in others]))

  def to(self, element: llvm.Type) -> "Num":
    if element == self.element:
      return self
    target = T.of_lanes(element, T.lanes(self.v))
    wider = element == T.F64
    return Num(self.lo, (self.b.fpext if wider else self.b.fptrunc)(self.v, target))

  def bits(self):
    """The value's bits as an integer scalar or vector."""
    return self.b.bitcast(self.v, T.of_lanes(llvm.IntType(self.width), T.lanes(self.v)))


def select(mask: Mask, a, b) -> Num:
  """a where mask, else b (either may be a Python number if the other is a Num)."""
  ref = a if isinstance(a, Num) else b
  assert isinstance(ref, Num), "select needs a Num operand to give constants a type"
  return Num(ref.lo, ref.b.select(mask.v, ref.like(a).v, ref.like(b).v))


def two_sum(a: Num, b: Num) -> tuple[Num, Num]:
  """s + e == a + b exactly, s = a + b rounded (Knuth's 2Sum)."""
  s = a + b
  bb = s - a
  return s, (a - (s - bb)) + (b - bb)


def horner(x: Num, coefficients) -> Num:
  """sum(c[k] x^k) for coefficients c[0], c[1], ..., by fused multiply-adds."""
  result = x.like(coefficients[-1])
  for c in reversed(coefficients[:-1]):
    result = result.fma(x, c)
  return result


def in_f64(compute):
  """A rule computing in f64: f32 operands are widened and the result rounded back once."""
  def rule(lo, *args):
    wide = [Num(lo, a).to(T.F64) for a in args]
    return compute(*wide).to(T.element(args[0].type)).v
  return rule
