"""Directed rounding (libdevice's _rz / _ru / _rd variants of +, -, *, fma, /, 1/x, sqrt and of
conversions) computed exactly while the CPU rounds to nearest: the nearest result r, the sign of
(exact - r) from an error-free transformation, then one step of an ulp where the mode asks.

f32 operations are exact in f64 or leave an exact residual there (s + e == exact), so they round
that pair; f64 operations get the sign of their residual from fma (a*b + c - r summed exactly as
an expansion, x - q*y, x - q*q), with operands scaled by powers of two where the residual would
underflow. Results that overflow to infinity from finite operands have an exact value below
+inf (above -inf), which rz / rd / ru step back to the largest finite value where they must.
"""
from __future__ import annotations

from llvmlite import ir as llvm

from . import types as T
from .numeric import Mask, Num, select, two_sum


def step(r: Num, up: Mask | None, down: Mask | None) -> Num:
  """The next float above r where `up`, below r where `down` (disjoint; None: nowhere)."""
  b = r.b
  ints = T.of_lanes(llvm.IntType(r.width), T.lanes(r.v))
  c = lambda v: T.constant(ints, v)
  bits = r.bits()
  delta = c(0)
  if down is not None:
    delta = b.select(down.v, c(-1), delta)
  if up is not None:
    delta = b.select(up.v, c(1), delta)
  negative = b.icmp_signed("<", bits, c(0))  # magnitudes grow with the bits for either sign
  moved = b.add(bits, b.select(negative, b.neg(delta), delta))
  # From +-0 the step goes to the smallest subnormal of the step's sign.
  tiny = b.select(b.icmp_signed(">", delta, c(0)), c(1), c(1 | (1 << (r.width - 1))))
  moving = b.icmp_signed("!=", delta, c(0))
  moved = b.select(b.and_(r.eq(0).v, moving), tiny, moved)
  return Num(r.lo, b.bitcast(moved, r.v.type))


def apply_mode(r: Num, mode: str, above: Mask, below: Mask) -> Num:
  """The result of rounding in `mode`, given the nearest result r and whether the exact value
  lies above or below it."""
  if mode == "rn":
    return r
  if mode == "ru":
    return step(r, above, None)
  if mode == "rd":
    return step(r, None, below)
  return step(r, (r < 0) & above, (r > 0) & below)  # rz: toward zero


def round_pair_f32(hi: Num, err: Num, mode: str) -> Num:
  """hi + err (f64, |err| below half an ulp of hi) rounded to f32 in a directed mode."""
  assert mode != "rn", "pairs round to nearest in two steps; use the native operation"
  r = hi.to(T.F32)
  d = (hi - r.to(T.F64)) + err  # exact - r: hi - r is exact, and adding err keeps the sign
  return apply_mode(r, mode, d > 0, d < 0)


# ---- f64 residuals: a value whose sign is that of (exact - r), 0 where r is exact ------------

def _overflowed(ok: Mask, r: Num, d: Num) -> Num:
  """d where the operands are finite, the side of an infinity r that the exact value lies on where
  r overflowed, 0 (exact) elsewhere."""
  return select(ok & r.isinf(), -r, select(ok, d, 0.0))


def fma_residual(a: Num, b: Num, c: Num, r: Num) -> Num:
  """Sign of a*b + c - r for r = fma(a, b, c) rounded to nearest."""
  ok = a.finite() & b.finite() & c.finite()
  big_first = a.abs() >= b.abs()
  big, small = select(big_first, a, b), select(big_first, b, a)
  u = big * small
  # a*b below 2^-968 may have an inexact fma residual: scale it (and c, r) up when c is small too
  # (when c is larger, r == c and the sign is that of a*b). a*b past the range while the sum is
  # not: scale down.
  tiny = (u.abs() < 2.0 ** -968) & (c.abs() < 2.0 ** -800)
  huge = u.isinf() & r.finite()
  scale = select(tiny, 2.0 ** 600, select(huge, u.like(2.0 ** -64), 1.0))
  small = select(tiny, small * 2.0 ** 600, small)
  big = select(huge, big * 2.0 ** -64, big)
  u = big * small
  # u + v + c - r summed exactly into a nonoverlapping expansion (Shewchuk's grow-expansion); its
  # sign is that of its largest nonzero term.
  terms = [u]
  for t in (big.fma(small, -u), c * scale, -(r * scale)):
    grown = []
    for e in terms:
      t, h = two_sum(t, e)
      grown.append(h)
    terms = grown + [t]
  d = terms[0]
  for e in terms[1:]:
    d = select(e.ne(0.0), e, d)
  sign_ab = a.like(1.0).copysign(a) * b.like(1.0).copysign(b)
  d = select(d.eq(0.0) & u.eq(0.0) & a.ne(0.0) & b.ne(0.0), sign_ab, d)  # a*b underflowed, scaled
  return _overflowed(ok, r, d)


def div_residual(x: Num, y: Num, q: Num) -> Num:
  """Sign of x/y - q for q = x / y rounded to nearest: that of (x - q*y) * sign(y), exact in fma
  once a tiny x or q is scaled by 2^600."""
  ok = x.finite() & y.finite() & y.ne(0.0)
  scale = select((x.abs() < 2.0 ** -900) | (q.abs() < 2.0 ** -900), x.like(2.0 ** 600), 1.0)
  residual = (-(q * scale)).fma(y, x * scale)
  return _overflowed(ok, q, residual * y.like(1.0).copysign(y))


def sqrt_residual(x: Num, q: Num) -> Num:
  """Sign of sqrt(x) - q for q = sqrt(x) rounded to nearest: that of x - q*q (tiny x scaled by
  2^200 so that the residual is exact)."""
  tiny = x < 2.0 ** -900
  xs, qs = select(tiny, x * 2.0 ** 200, x), select(tiny, q * 2.0 ** 100, q)
  return select(x.finite() & (x > 0.0), (-qs).fma(qs, xs), 0.0)


# ---- operations ---------------------------------------------------------------------------------

def _f32_pair(kind: str, args):
  """The exact result of an f32 operation as hi + err in f64."""
  if kind == "add":
    return two_sum(args[0], args[1])
  if kind == "sub":
    return two_sum(args[0], -args[1])
  if kind == "mul":
    return args[0] * args[1], args[0].like(0.0)  # 24 x 24 bits: exact
  if kind == "fma":
    return two_sum(args[0] * args[1], args[2])
  if kind in ("div", "rcp"):
    x, y = (args[0].like(1.0), args[0]) if kind == "rcp" else args
    q = x / y
    return q, (-q).fma(y, x) / y
  q = args[0].sqrt()
  return q, (-q).fma(q, args[0]) / (q + q)  # NaN for 0 and inf, which are exact: no step


def _f64_result(kind: str, args):
  """(nearest result, residual) of an f64 operation."""
  if kind == "add":
    r = args[0] + args[1]
    return r, fma_residual(args[0], r.like(1.0), args[1], r)
  if kind == "sub":
    r = args[0] - args[1]
    return r, fma_residual(args[0], r.like(1.0), -args[1], r)
  if kind == "mul":
    r = args[0] * args[1]
    return r, fma_residual(args[0], args[1], r.like(-0.0), r)
  if kind == "fma":
    r = args[0].fma(args[1], args[2])
    return r, fma_residual(*args, r)
  if kind == "div":
    r = args[0] / args[1]
    return r, div_residual(args[0], args[1], r)
  if kind == "rcp":
    one = args[0].like(1.0)
    r = one / args[0]
    return r, div_residual(one, args[0], r)
  r = args[0].sqrt()
  return r, sqrt_residual(args[0], r)


def directed(kind: str, mode: str):
  """The rule for libdevice's `kind` (add, sub, mul, fma, div, rcp, sqrt) rounded in `mode`."""
  def rule(lo, *values):
    args = [Num(lo, v) for v in values]
    if mode == "rd" and kind in ("add", "sub", "fma"):
      # An exact zero sum is -0 when rounding down: round the negated sum up and negate.
      negated = [-a for a in args] if kind != "fma" else [-args[0], args[1], -args[2]]
      return lo.builder.fneg(rule_ru(lo, *(a.v for a in negated)))
    if args[0].element == T.F32:
      return round_pair_f32(*_f32_pair(kind, [a.to(T.F64) for a in args]), mode).v
    r, residual = _f64_result(kind, args)
    return apply_mode(r, mode, residual > 0, residual < 0).v
  rule_ru = directed(kind, "ru") if mode == "rd" else None
  return rule


def int_to_float(signed: bool, element: llvm.Type, mode: str):
  """Integer (i32 / i64) -> f32 / f64 rounded in `mode`: the integer as an exact f64 pair (two
  32-bit halves), then rounded."""
  def rule(lo, x):
    b = lo.builder
    n = T.lanes(x)
    f64 = T.of_lanes(T.F64, n)
    to_f64 = b.sitofp if signed else b.uitofp
    if T.element(x.type).width == 32:
      hi, err = Num(lo, to_f64(x, f64)), Num(lo, T.constant(f64, 0.0))
    else:
      i64 = x.type
      high = (b.ashr if signed else b.lshr)(x, T.constant(i64, 32))
      low = b.and_(x, T.constant(i64, 0xFFFFFFFF))
      hi, err = two_sum(Num(lo, to_f64(high, f64)) * 2.0 ** 32, Num(lo, b.uitofp(low, f64)))
    if element == T.F32:
      return round_pair_f32(hi, err, mode).v
    return apply_mode(hi, mode, err > 0, err < 0).v
  return rule


def double_to_float(mode: str):
  return lambda lo, x: round_pair_f32(Num(lo, x), Num(lo, T.constant(x.type, 0.0)), mode).v
