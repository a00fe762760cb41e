"""Every function of triton.language.extra.libdevice, every dtype overload (the __nv_* symbols of
triton/language/extra/cuda/libdevice.py), against numpy / scipy / mpmath / exact rational
references.

One table row per (function, overload): argument dtypes, reference, accuracy, input domain. Bounds:
  * None: exact (bit for bit, signed zeros and NaN included): integer functions, conversions,
    rounding, IEEE operations and their directed-rounding variants (_rn / _rz / _ru / _rd, against
    rational arithmetic rounded in the named direction),
  * a number: the maximum error in ulps of the result dtype against a reference correct to far more
    than the dtype (mpmath at 40 digits), with an optional absolute error accepted instead for
    functions with zeros (Bessel functions, lgamma), as CUDA documents them.
Float inputs include NaN, +-inf, +-0, subnormals, the largest values and domain edges in their first
lanes; the rest come from the row's domain. Rows of one signature share a compiled kernel.
"""
from __future__ import annotations

import dataclasses
import functools
import inspect
import math
import re
import zlib
from fractions import Fraction

import mpmath
import numpy as np
import pytest
import scipy.special as sp
import triton
import triton.language as tl
from triton.language.extra import libdevice
from triton.language.extra.cuda import libdevice as cuda

from direct_launch import compile_kernel
from jax_triton_cpu.compiler import frontend
from jax_triton_cpu.compiler.codegen import libdevice as rules
from lang_util import NP, assert_equal, assert_ulp, finfo, run, ulp_error

N = 256
F = ("fp32", "fp64")
mpmath.mp.dps = 40


# ---- inputs -------------------------------------------------------------------------------------

def uniform(lo, hi):
  return lambda rng, n, d: rng.uniform(lo, hi, n)


def logu(lo, hi, signed=False):
  """Log-uniform magnitudes in [lo, hi] within the dtype's range (negated at random: signed)."""
  def gen(rng, n, d):
    info = finfo(d)
    low, high = max(lo, float(info.smallest_subnormal)), min(hi, float(info.max))
    v = np.exp(rng.uniform(np.log(low), np.log(high), n))
    return v * rng.choice([-1, 1], n) if signed else v
  return gen


def mixed(*gens):
  """Equal shares from several generators."""
  def gen(rng, n, d):
    parts = [g(rng, n // len(gens) + 1, d) for g in gens]
    return np.concatenate(parts)[:n]
  return gen


def anyfloat(rng, n, d):
  """Any finite value of the dtype, exponents uniform."""
  info = finfo(d)
  return mixed(logu(float(info.smallest_subnormal), float(info.max), signed=True),
               uniform(-4, 4))(rng, n, d)


def ints(lo=None, hi=None, bits=False):
  """Uniform integers in [lo, hi] (default: the dtype's range); bits: random bit lengths, so that
  leading-zero counts and magnitudes vary."""
  def gen(rng, n, d):
    info = np.iinfo(NP[d])
    out = []
    for _ in range(n):
      if bits or lo is None:
        width = int(rng.integers(0, info.bits + 1)) if bits else info.bits
        x = int.from_bytes(rng.bytes(8), "little") % (1 << width)
        out.append(x - (1 << info.bits) if x > info.max else x)
      else:
        out.append(int(rng.integers(lo, hi + 1)))
    return np.array(out, dtype=object)
  return gen


def float_specials(d):
  info = finfo(d)
  sub, small, big = float(info.smallest_subnormal), float(info.smallest_normal), float(info.max)
  return [math.nan, math.inf, -math.inf, 0.0, -0.0, sub, -sub, small - sub, small, -small, big,
          -big, 1.0, -1.0, 0.5, -0.5, 2.0, -2.0]


def int_specials(d):
  info = np.iinfo(NP[d])
  values = [0, 1, 2, 3, info.max, info.min, info.max - 1, info.min + 1, 255, 256, 0xFFFF, 1 << 23]
  return values + ([-1, -2, -256, -(1 << 23)] if info.min < 0 else [7, 8, 1 << 31, (1 << 31) - 1])


@dataclasses.dataclass
class Case:
  fn: str                    # the libdevice function
  args: tuple                # Triton dtypes of the arguments
  result: str                # Triton dtype of the result
  ref: object                # numpy arrays of the inputs (as float64 / int) -> expected values
  bound: float | None        # max ulps; None: exact
  domain: tuple              # one generator per argument: (rng, n, dtype) -> values
  atol: float = 0.0          # an absolute error also accepted (functions with zeros)
  specials: tuple = ()       # per argument: explicit special values (default by dtype)
  zero_sign: bool = True     # check the sign of zero results
  extra: tuple = ()          # argument tuples for lanes 100 on (cases random inputs rarely hit)

  @property
  def id(self):
    return f"{self.fn}-{'-'.join(self.args)}"


def _is_float(d):
  return d.startswith("fp")


def _inputs(case: Case, rng):
  arrays = []
  for k, (d, gen) in enumerate(zip(case.args, case.domain)):
    v = np.asarray(gen(rng, N, d))
    specials = case.specials[k] if case.specials else None
    if specials is None:
      specials = float_specials(d) if _is_float(d) else int_specials(d)
    s = len(specials)
    if _is_float(d):
      v = v.astype(np.float64)
    else:
      info = np.iinfo(NP[d])
      v = np.array([int(x) for x in v], dtype=object)
      specials = [x for x in specials if info.min <= x <= info.max]
      s = len(specials)
    # Specials in lanes [20k, 20k + s) for argument k, and all arguments together from lane 80,
    # rotated so that different pairs meet.
    v[20 * k:20 * k + s] = specials
    for lane in range(s):
      v[80 + lane] = specials[(lane + 5 * k) % s]
    for lane, values in enumerate(case.extra):
      v[100 + lane] = values[k]
    arrays.append(v.astype(NP[d]))
  return arrays


# ---- references ---------------------------------------------------------------------------------

def _each(one, out=np.float64):
  """An elementwise reference from a function of Python scalars."""
  def ref(*arrays):
    values = [one(*(x.item() for x in xs)) for xs in zip(*arrays)]
    return np.array(values, dtype=object if out is object else out)
  return ref


def _mp_value(v) -> float:
  if isinstance(v, mpmath.mpc):
    return float(v.real) if v.imag == 0 else math.nan
  return float(v)


def mp(fn, fallback, signed_zeros=False):
  """fn (mpmath, 40 digits) at finite inputs; `fallback` (numpy / scipy, float64: C99's special
  cases) elsewhere, where mpmath has a pole or overflows, for the sign of a zero result, and at
  zero inputs where signed_zeros (mpmath has no -0)."""
  def ref(*arrays):
    wide = [a.astype(np.float64) if a.dtype.kind == "f" else a.astype(np.int64) for a in arrays]
    with np.errstate(all="ignore"):
      out = np.asarray(fallback(*wide), np.float64).copy()
    for i in range(len(out)):
      xs = [a[i].item() for a in wide]
      if all(math.isfinite(x) for x in xs) and not (signed_zeros and 0 in xs):
        try:
          v = fn(*(mpmath.mpf(x) if isinstance(x, float) else x for x in xs))
        except (ValueError, ZeroDivisionError, OverflowError):  # poles, huge arguments
          continue
        out[i] = _mp_value(v) if v != 0 else math.copysign(0.0, out[i])  # underflow keeps a sign
    return out
  return ref


_FORMATS = {"fp32": (24, -126, 127), "fp64": (53, -1022, 1023)}


def round_exact(q: Fraction, d: str, mode: str, sticky: bool = False) -> float:
  """The rational q rounded to dtype d in mode (rn: nearest even); sticky: the value is a little
  above q (less than any gap of d), for roots known to finitely many bits."""
  p, emin, emax = _FORMATS[d]
  if q == 0 and not sticky:
    return 0.0
  sign = -1 if q < 0 else 1
  a = abs(q)
  e = a.numerator.bit_length() - a.denominator.bit_length()
  if Fraction(2) ** e > a:
    e -= 1
  ulp = Fraction(2) ** (max(e, emin) - p + 1)
  m = a / ulp
  low = math.floor(m)
  rest = m - low
  inexact = rest > 0 or sticky
  away = {"rz": False, "ru": sign > 0, "rd": sign < 0}.get(mode)
  if mode == "rn":
    half = Fraction(1, 2)
    up = rest > half or (rest == half and (sticky or low % 2 == 1))
  else:
    up = away and inexact
  mag = (low + up) * ulp
  if mag >= Fraction(2) ** (emax + 1):
    largest = (2 - Fraction(2) ** (1 - p)) * Fraction(2) ** emax
    mag_float = math.inf if (mode == "rn" or away) else float(largest)
  else:
    mag_float = float(mag)
  return math.copysign(mag_float, sign)


def _ieee(kind, d, xs):
  """IEEE result (round to nearest, numpy in dtype d) where operands are not finite."""
  t = NP[d]
  with np.errstate(all="ignore"):
    x = [t(v) for v in xs]
    if kind == "add":
      return float(x[0] + x[1])
    if kind == "sub":
      return float(x[0] - x[1])
    if kind == "mul":
      return float(x[0] * x[1])
    if kind == "div":
      return float(x[0] / x[1])
    if kind == "rcp":
      return float(t(1) / x[0])
    if kind == "sqrt":
      return float(np.sqrt(x[0]))
    if all(math.isfinite(v) for v in xs[:2]):
      return float(x[2])  # finite a*b plus an infinity or NaN
    return float(np.float64(xs[0]) * np.float64(xs[1]) + np.float64(xs[2]))


def exact_op(kind, mode, d):
  """kind (add, sub, mul, div, rcp, sqrt, fma) of the exact operands, rounded once in mode."""
  def one(*xs):
    special = not all(math.isfinite(v) for v in xs)
    special |= kind in ("div", "rcp") and xs[-1] == 0
    special |= kind == "sqrt" and xs[0] < 0
    if special:
      return _ieee(kind, d, xs)
    f = [Fraction(v) for v in xs]
    signs = [math.copysign(1, v) for v in xs]
    if kind == "sqrt":
      if xs[0] == 0:
        return xs[0]
      k = 1200  # sqrt(x 4^k) to > 100 bits, then the sticky bit
      scaled = f[0] * Fraction(4) ** k
      root = math.isqrt(math.floor(scaled))
      exact = root * root == scaled
      return round_exact(Fraction(root, 2 ** k), d, mode, sticky=not exact)
    if kind in ("mul", "div", "rcp"):
      q = f[0] * f[1] if kind == "mul" else f[0] / f[1] if kind == "div" else 1 / f[0]
      return round_exact(q, d, mode) if q != 0 else math.copysign(0.0, signs[0] * signs[-1])
    if kind == "fma":
      addends, zero_signs = (f[0] * f[1], f[2]), (signs[0] * signs[1], signs[2])
    else:
      flip = -1 if kind == "sub" else 1
      addends, zero_signs = (f[0], flip * f[1]), (signs[0], flip * signs[1])
    q = addends[0] + addends[1]
    if q != 0:
      return round_exact(q, d, mode)
    if addends[0] == 0 and addends[1] == 0 and zero_signs[0] == zero_signs[1]:
      return math.copysign(0.0, zero_signs[0])
    return -0.0 if mode == "rd" else 0.0
  return _each(one)


def rsqrt_exact(x):
  if not math.isfinite(x) or x <= 0:
    with np.errstate(all="ignore"):
      return float(np.float32(1) / np.sqrt(np.float32(x)))
  k = 200
  scaled = Fraction(4) ** k / Fraction(x)
  root = math.isqrt(math.floor(scaled))
  return round_exact(Fraction(root, 2 ** k), "fp32", "rn", sticky=root * root != scaled)


_INT_RANGE = {"i32": (-2 ** 31, 2 ** 31 - 1), "u32": (0, 2 ** 32 - 1),
              "i64": (-2 ** 63, 2 ** 63 - 1), "u64": (0, 2 ** 64 - 1)}


def wrap(v: int, d: str) -> int:
  """v modulo 2^bits, as the value of dtype d."""
  lo, hi = _INT_RANGE[d]
  v %= hi - lo + 1
  return v - (hi - lo + 1) if v > hi else v


def to_int(how, dest, stored):
  """Float -> integer: rounded (rn: nearest even, rz, rd, ru, away: half away from zero),
  saturated to dest's range, NaN -> 0, returned as the bits of `stored`."""
  lo, hi = _INT_RANGE[dest]

  def one(x):
    if math.isnan(x):
      return 0
    if math.isinf(x):
      v = hi if x > 0 else lo
    else:
      f = Fraction(x)
      v = {"rn": round(f), "rz": math.trunc(f), "rd": math.floor(f), "ru": math.ceil(f),
           "away": int(math.copysign(math.floor(abs(f) + Fraction(1, 2)), x))}[how]
    return wrap(min(max(v, lo), hi), stored)
  return _each(one, object)


def int_to_float(mode, d):
  return _each(lambda x: round_exact(Fraction(x), d, mode))


def _rounded(how):
  def one(x):
    if not math.isfinite(x) or x == 0:
      return x
    f = Fraction(x)
    v = {"floor": math.floor(f), "ceil": math.ceil(f), "trunc": math.trunc(f), "rint": round(f),
         "round": math.copysign(math.floor(abs(f) + Fraction(1, 2)), x)}[how]
    return math.copysign(float(v), x)
  return _each(one)


def _ilogb(x):
  if math.isnan(x) or x == 0:
    return -2 ** 31
  if math.isinf(x):
    return 2 ** 31 - 1
  return math.frexp(x)[1] - 1


def _logb(x):
  if x == 0:
    return -math.inf
  if not math.isfinite(x):
    return abs(x)
  return float(math.frexp(x)[1] - 1)


def _byte_perm(x, y, s):
  data = (x % 2 ** 32).to_bytes(4, "little") + (y % 2 ** 32).to_bytes(4, "little")
  selected = bytes(data[(s >> (4 * n)) & 7] for n in range(4))
  return wrap(int.from_bytes(selected, "little"), "i32")


def _mul24(signed, d):
  low = (lambda v: ((v & 0xFFFFFF) ^ 0x800000) - 0x800000) if signed else (lambda v: v & 0xFFFFFF)
  return _each(lambda x, y: wrap(low(x) * low(y), d), object)


def _rcp64h(x):
  """1/x of the high words (subnormals flushed): what rcp.approx.ftz.f64 approximates."""
  hi = np.array([x]).view(np.int64) & np.int64(-1 << 32)
  v = float(hi.view(np.float64)[0])
  v = math.copysign(0.0, v) if abs(v) < 2.0 ** -1022 else v
  with np.errstate(all="ignore"):
    r = float(np.float64(1.0) / np.float64(v)) if v != 0 else math.copysign(math.inf, v)
  return math.copysign(0.0, r) if abs(r) < 2.0 ** -1022 else r


def _inverse(forward, slope, guess, ends, tail):
  """The y with forward(y) = x > 0: Newton's method (mpmath) on log(forward(y)) = log(x), whose
  precision does not depend on the size of x, from scipy's guess, or from `tail`, an asymptotic
  one, where scipy gives up in the subnormal range; infinite at the ends."""
  def fn(x):
    x = float(x)
    if x in ends:
      return mpmath.mpf(math.copysign(math.inf, ends[x]))
    g = float(guess(x))
    if math.isnan(g):  # outside the domain
      return mpmath.mpf(g)
    y = mpmath.mpf(g if math.isfinite(g) else tail(x))
    for _ in range(50):
      f = forward(y)
      step = (mpmath.log(f) - mpmath.log(x)) * f / slope(y)
      y -= step
      if abs(step) <= abs(y) * mpmath.mpf(10) ** -35:
        return y
    raise AssertionError(f"no convergence at {x}")
  return fn


_GAUSS = lambda y: 2 / mpmath.sqrt(mpmath.pi) * mpmath.exp(-y * y)  # erf'


def _erfinv(x):  # odd: solve for |x|
  if x == 0:
    return mpmath.mpf(0)
  return mpmath.sign(x) * _inverse(mpmath.erf, _GAUSS, sp.erfinv, {1.0: 1}, None)(abs(x))


def _norm(*xs):
  return mpmath.sqrt(mpmath.fsum(x * x for x in xs))


def _np_norm(*xs):
  """C's hypot convention: inf wherever an operand is infinite, even beside a NaN."""
  infinite = np.any([np.isinf(x) for x in xs], axis=0)
  return np.where(infinite, np.inf, np.sqrt(sum(x * x for x in xs)))


# ---- the table ----------------------------------------------------------------------------------

class By:
  """A row value that depends on the overload: fn(argument dtypes, result dtype)."""
  def __init__(self, fn):
    self.fn = fn


CASES: list[Case] = []
I32, U32, I64, U64 = "i32", "u32", "i64", "u64"


def row(fn, signatures, ref, bound, *domain, atol=0.0, specials=(), zero_sign=True, extra=()):
  """signatures: (argument dtypes, result dtype) pairs, or a dtype d for (d, ..., d) -> d."""
  for sig in signatures:
    args, result = sig if isinstance(sig, tuple) else ((sig,) * len(domain), sig)
    pick = lambda v: v.fn(args, result) if isinstance(v, By) else v
    CASES.append(Case(fn, args, result, pick(ref), pick(bound), tuple(domain), pick(atol),
                      pick(specials), zero_sign, pick(extra)))


def by_dtype(f32, f64):
  """Domain generators per float dtype."""
  return lambda rng, n, d: (f32 if d in ("fp32", I32) else f64)(rng, n, d)


def f64(bound):
  """f32 computed in f64 and rounded once: 1 ulp; f64: `bound`."""
  return By(lambda a, r: 1 if r == "fp32" else bound)


def atol64(value):
  return By(lambda a, r: 0.0 if r == "fp32" else value)


def width(d):
  return int(d[-2:])


def bits(args, result):
  return width(args[0])


# integers
row("clz", [((I32,), I32), ((I64,), I32)],
    By(lambda a, r: _each(lambda x: bits(a, r) - (x % 2 ** bits(a, r)).bit_length(), object)),
    None, ints(bits=True))
row("popc", [((I32,), I32), ((I64,), I32)],
    By(lambda a, r: _each(lambda x: bin(x % 2 ** bits(a, r)).count("1"), object)), None,
    ints(bits=True))
row("brev", [I32, I64], By(lambda a, r: _each(
    lambda x: wrap(int(format(x % 2 ** bits(a, r), f"0{bits(a, r)}b")[::-1], 2), r), object)),
    None, ints(bits=True))
row("ffs", [((I32,), I32), ((I64,), I32)], By(lambda a, r: _each(
    lambda x: ((x % 2 ** bits(a, r)) & -(x % 2 ** bits(a, r))).bit_length(), object)), None,
    ints(bits=True))
row("abs", [I32, I64], By(lambda a, r: _each(lambda x: wrap(abs(x), r), object)), None, ints())
row("mulhi", [I32, U32, I64, U64],
    By(lambda a, r: _each(lambda x, y: wrap((x * y) >> bits(a, r), r), object)), None,
    ints(bits=True), ints(bits=True))
row("mul24", [I32, U32], By(lambda a, r: _mul24(r == I32, r)), None, ints(), ints())
row("hadd", [I32, U32], By(lambda a, r: _each(lambda x, y: wrap((x + y) >> 1, r), object)), None,
    ints(), ints())
row("rhadd", [I32, U32], By(lambda a, r: _each(lambda x, y: wrap((x + y + 1) >> 1, r), object)),
    None, ints(), ints())
row("sad", [((I32, I32, U32), I32), ((U32, U32, U32), U32)],
    By(lambda a, r: _each(lambda x, y, z: wrap(abs(x - y) + z, r), object)), None,
    ints(), ints(), ints())
row("byte_perm", [I32], _each(_byte_perm, object), None, ints(), ints(), ints())

# bit patterns
row("int_as_float", [((I32,), "fp32")], lambda x: x.view(np.float32), None, ints())
row("uint_as_float", [((U32,), "fp32")], lambda x: x.view(np.float32), None, ints())
row("float_as_int", [(("fp32",), I32)], lambda x: x.view(np.int32), None, anyfloat)
row("float_as_uint", [(("fp32",), I32)], lambda x: x.view(np.int32), None, anyfloat)
row("longlong_as_double", [((I64,), "fp64")], lambda x: x.view(np.float64), None, ints())
row("double_as_longlong", [(("fp64",), I64)], lambda x: x.view(np.int64), None, anyfloat)
row("hiloint2double", [((I32, I32), "fp64")],
    _each(lambda h, l: np.array([(h % 2 ** 32) << 32 | (l % 2 ** 32)], np.uint64)
          .view(np.float64)[0]), None, ints(), ints())
row("double2hiint", [(("fp64",), I32)], lambda x: x.view(np.int32)[1::2], None, anyfloat)
row("double2loint", [(("fp64",), I32)], lambda x: x.view(np.int32)[0::2], None, anyfloat)

# conversions
_BIG = mixed(anyfloat, uniform(-5, 5), lambda rng, n, d: np.round(rng.uniform(-8, 8, n)) / 2)
for mode in ("rn", "rz", "rd", "ru"):
  row(f"double2float_{mode}", [(("fp64",), "fp32")], _each(
      lambda x, m=mode: round_exact(Fraction(x), "fp32", m) if math.isfinite(x) and x else x),
      None, mixed(anyfloat, logu(1e-46, 1e-36, True), logu(3e38, 4e38, True), uniform(-2, 2)))
  for src in ("float", "double"):
    d = "fp32" if src == "float" else "fp64"
    for dest, stored in (("int", I32), ("uint", I32), ("ll", I64), ("ull", I64)):
      dest_type = {"int": I32, "uint": U32, "ll": I64, "ull": U64}[dest]
      limit = 2.0 ** width(dest_type)
      row(f"{src}2{dest}_{mode}", [((d,), stored)], to_int(mode, dest_type, stored), None,
          mixed(_BIG, uniform(-limit, limit), uniform(-1.5 * limit, 1.5 * limit)))
  for src, dest in (("int", "float"), ("uint", "float"), ("ll", "float"), ("ull", "float"),
                    ("ll", "double"), ("ull", "double"), ("int", "double"), ("uint", "double")):
    if dest == "double" and src in ("int", "uint") and mode != "rn":
      continue
    t = {"int": I32, "uint": U32, "ll": I64, "ull": U64}[src]
    d = "fp32" if dest == "float" else "fp64"
    row(f"{src}2{dest}_{mode}", [((t,), d)], int_to_float(mode, d), None, ints(bits=True))
row("llrint", [(("fp32",), I64), (("fp64",), I64)], to_int("rn", I64, I64), None, _BIG)
row("llround", [(("fp32",), I64), (("fp64",), I64)], to_int("away", I64, I64), None, _BIG)

# rounding to integers, exact operations
_HALVES = mixed(lambda rng, n, d: np.round(rng.uniform(-50, 50, n) * 4) / 4, anyfloat)
for name, how in (("floor", "floor"), ("ceil", "ceil"), ("trunc", "trunc"), ("rint", "rint"),
                  ("nearbyint", "rint"), ("round", "round")):
  row(name, F, _rounded(how), None, _HALVES)
row("abs", F, np.abs, None, anyfloat)
row("copysign", F, np.copysign, None, anyfloat, anyfloat)
row("fmod", F, np.fmod, None, anyfloat, mixed(anyfloat, uniform(-3, 3)))
row("remainder", F, _each(lambda x, y: math.remainder(x, y) if math.isfinite(x) and y != 0
                          and not math.isnan(y) else math.nan), None,
    anyfloat, mixed(anyfloat, uniform(-3, 3)))
row("fdim", F, By(lambda a, r: lambda x, y: np.where(
    x > y, (x.astype(NP[r]) - y.astype(NP[r])).astype(np.float64),
    np.where(np.isnan(x) | np.isnan(y), np.nan, 0.0))), None, anyfloat, anyfloat)
row("nextafter", F, By(lambda a, r: lambda x, y: np.nextafter(x.astype(NP[r]), y.astype(NP[r]))),
    None, anyfloat, anyfloat)
row("ldexp", [(("fp32", I32), "fp32"), (("fp64", I32), "fp64")],
    By(lambda a, r: lambda x, n: np.ldexp(x.astype(NP[r]), n.astype(np.int32))), None,
    anyfloat, mixed(ints(-300, 300), ints(-2500, 2500), ints()))
row("scalbn", [(("fp32", I32), "fp32"), (("fp64", I32), "fp64")],
    By(lambda a, r: lambda x, n: np.ldexp(x.astype(NP[r]), n.astype(np.int32))), None,
    anyfloat, mixed(ints(-300, 300), ints(-2500, 2500), ints()))
row("ilogb", [(("fp32",), I32), (("fp64",), I32)], _each(_ilogb, object), None, anyfloat)
row("logb", F, _each(_logb), None, anyfloat)
row("isnan", [(("fp32",), I32), (("fp64",), I32)], lambda x: np.isnan(x).astype(np.int32), None,
    anyfloat)
row("isinf", [(("fp32",), I32), (("fp64",), I32)], lambda x: np.isinf(x).astype(np.int32), None,
    anyfloat)
row("signbit", [(("fp32",), I32), (("fp64",), I32)], lambda x: np.signbit(x).astype(np.int32),
    None, anyfloat)
row("finitef", [(("fp32",), I32)], lambda x: np.isfinite(x).astype(np.int32), None, anyfloat)
row("isfinited", [(("fp64",), I32)], lambda x: np.isfinite(x).astype(np.int32), None, anyfloat)
row("saturatef", ["fp32"], _each(lambda x: min(x, 1.0) if x > 0 else 0.0), None,
    mixed(uniform(-2, 2), anyfloat))
_ARITH = by_dtype(  # with results near the ends of the range
    mixed(anyfloat, uniform(-4, 4), logu(1e-45, 1e-36, True), logu(1e36, 3.4e38, True)),
    mixed(anyfloat, uniform(-4, 4), logu(1e-320, 1e-300, True), logu(1e300, 1.7e308, True)))


def _hard(kind, d):
  """Operands whose exact result is an exact zero, a tie, tiny, or near / past the range, for
  kind's directed roundings (and for fma products that overflow or underflow)."""
  info = finfo(d)
  big, sub, small = float(info.max), float(info.smallest_subnormal), float(info.smallest_normal)
  eps, half = float(info.eps), 2.0 ** ((_FORMATS[d][1] - _FORMATS[d][0]) // 2)  # half^2 ~ sub^2
  return {
      "add": [(1.0, eps / 8), (1.0, -eps / 8), (big, big), (-big, -big), (3.0, -3.0), (sub, -sub),
              (-0.0, 0.0), (-0.0, -0.0), (big, -big / 2 ** 60), (sub, sub / 2)],
      "sub": [(1.0, eps / 8), (3.0, 3.0), (-0.0, -0.0), (0.0, -0.0), (-big, big), (sub, sub)],
      "mul": [(half, half), (3 * half, half), (sub, 0.5), (-sub, 0.5), (sub, 1.5), (big, 2.0),
              (-big, 2.0), (1 + eps, 1 - eps), (-0.0, 5.0), (small, 0.75)],
      "div": [(1.0, 3.0), (-1.0, 3.0), (sub, 2.0), (3 * sub, 2.0), (1.0, sub), (big, 0.5),
              (sub, big), (-sub, big), (small, 3.0), (2.0, 4.0 / 3.0)],
      "rcp": [(3.0,), (-3.0,), (sub,), (big,), (-big,), (0.75,), (small * 3,)],
      "sqrt": [(sub,), (2 * sub,), (3 * sub,), (small,), (2.0,), (big,), (1 - eps,), (-0.0,)],
      "fma": [(big, 2.0, -big), (big, 1.5, -big), (-big, 2.0, big), (half, half, sub),
              (half, -half, sub), (half, half, -0.0), (-half, half, 0.0), (1 + eps, 1 - eps, -1.0),
              (3.0, 1 / 3, -1.0), (2.0, 3.0, -6.0), (-2.0, 3.0, 6.0), (sub, sub, -0.0),
              (1.0, 1.0, eps / 8), (half * 4, half, -sub / 2),
              (big, 1 + 2 * eps, -2.0 ** _FORMATS[d][2])],  # a*b overflows, the sum is inexact
  }[kind]


for kind, arity in (("add", 2), ("sub", 2), ("mul", 2), ("div", 2), ("rcp", 1), ("sqrt", 1),
                    ("fma", 3)):
  for mode in ("rn", "rz", "rd", "ru"):
    row(f"{kind}_{mode}", F, By(lambda a, r, k=kind, m=mode: exact_op(k, m, r)), None,
        *([_ARITH] * arity), extra=By(lambda a, r, k=kind: _hard(k, r)))
row("sqrt", F, By(lambda a, r: exact_op("sqrt", "rn", r)), None, _ARITH,
    extra=By(lambda a, r: _hard("sqrt", r)))
row("fma", F, By(lambda a, r: exact_op("fma", "rn", r)), None, _ARITH, _ARITH, _ARITH,
    extra=By(lambda a, r: _hard("fma", r)))
row("fast_dividef", ["fp32"], exact_op("div", "rn", "fp32"), None, _ARITH, _ARITH)
row("rsqrt_rn", ["fp32"], _each(rsqrt_exact), None, mixed(anyfloat, logu(0.25, 4)))
row("rsqrt", F, mp(lambda x: 1 / mpmath.sqrt(x), lambda x: 1 / np.sqrt(x)),
    By(lambda a, r: 1 if r == "fp32" else 1.5), anyfloat)  # f64: two roundings
row("rcp64h", ["fp64"], _each(_rcp64h), 2 ** 33, anyfloat)  # 1 ulp of a 20-bit mantissa, twice


# elementary functions (mpmath), with ulp bounds
def el(fn, mpfn, npfn, bound, *domain, dtypes=F, **kw):
  row(fn, dtypes, mp(mpfn, npfn), bound, *domain, **kw)


_TRIG = mixed(uniform(-10, 10), uniform(-1e4, 1e4), anyfloat)
_POSITIVE = mixed(logu(1e-300, 1e300), uniform(0, 4), anyfloat)
_EXP = by_dtype(mixed(uniform(-5, 5), uniform(-110, 100), anyfloat),
                mixed(uniform(-5, 5), uniform(-760, 720), anyfloat))
_HALF_INTEGERS = mixed(uniform(-4, 4), lambda rng, n, d: np.round(rng.uniform(-40, 40, n)) / 2,
                       anyfloat)
_HYPERBOLIC = mixed(uniform(-5, 5), uniform(-720, 720), anyfloat)
# name: (mpmath function, numpy function (special values), bound, domain)
_ELEMENTARY = {
    "sin": (mpmath.sin, np.sin, 4, _TRIG),
    "cos": (mpmath.cos, np.cos, 4, _TRIG),
    "tan": (mpmath.tan, np.tan, 4, _TRIG),
    # IEEE 754: sinpi(+-n) = +-0, cospi(n + 1/2) = +0
    "sinpi": (mpmath.sinpi, lambda x: np.where(np.isfinite(x), np.copysign(0.0, x), np.nan),
              f64(2), _HALF_INTEGERS),
    "cospi": (mpmath.cospi, lambda x: np.where(np.isfinite(x), 0.0, np.nan), f64(2),
              _HALF_INTEGERS),
    "asin": (mpmath.asin, np.arcsin, 4, mixed(uniform(-1, 1), anyfloat)),
    "acos": (mpmath.acos, np.arccos, 4, mixed(uniform(-1, 1), anyfloat)),
    "atan": (mpmath.atan, np.arctan, 4, anyfloat),
    "sinh": (mpmath.sinh, np.sinh, 4, _HYPERBOLIC),
    "cosh": (mpmath.cosh, np.cosh, 4, _HYPERBOLIC),
    "tanh": (mpmath.tanh, np.tanh, 4, mixed(uniform(-5, 5), anyfloat)),
    "asinh": (mpmath.asinh, np.arcsinh, 4, anyfloat),
    "acosh": (mpmath.acosh, np.arccosh, 4, mixed(uniform(1, 3), anyfloat)),
    "atanh": (mpmath.atanh, np.arctanh, 4, mixed(uniform(-1, 1), anyfloat)),
    "exp": (mpmath.exp, np.exp, 4, _EXP),
    "exp2": (lambda x: mpmath.power(2, x), np.exp2, 4, _EXP),
    "exp10": (lambda x: mpmath.power(10, x), lambda x: 10.0 ** x, 4, _EXP),
    "expm1": (mpmath.expm1, np.expm1, 4, _EXP),
    "log": (mpmath.log, np.log, 4, _POSITIVE),
    "log2": (lambda x: mpmath.log(x, 2), np.log2, 4, _POSITIVE),
    "log10": (mpmath.log10, np.log10, 4, _POSITIVE),
    "log1p": (mpmath.log1p, np.log1p, 4, mixed(uniform(-1, 3), _POSITIVE)),
    "cbrt": (lambda x: mpmath.sign(x) * mpmath.cbrt(abs(x)), np.cbrt, 4, anyfloat),
    "rcbrt": (lambda x: mpmath.sign(x) / mpmath.cbrt(abs(x)), lambda x: 1 / np.cbrt(x), f64(1),
              anyfloat),
}
for name, (mpfn, npfn, bound, domain) in _ELEMENTARY.items():
  el(name, mpfn, npfn, bound, domain)
  if name in ("sin", "cos", "tan", "exp", "exp10", "log", "log2", "log10"):
    el(f"fast_{name}f", mpfn, npfn, bound, domain, dtypes=["fp32"])
el("fast_tanhf", mpmath.tanh, np.tanh, 4, mixed(uniform(-5, 5), anyfloat), dtypes=["fp32"])
row("atan2", F, mp(mpmath.atan2, np.arctan2, signed_zeros=True), 4, anyfloat, anyfloat)
el("hypot", mpmath.hypot, np.hypot, 4, anyfloat, anyfloat)
el("rhypot", lambda x, y: 1 / mpmath.hypot(x, y), lambda x, y: 1 / _np_norm(x, y), f64(2),
   anyfloat, anyfloat)
el("norm3d", _norm, _np_norm, f64(2), *[anyfloat] * 3)
el("rnorm3d", lambda *xs: 1 / _norm(*xs), lambda *xs: 1 / _np_norm(*xs), f64(2), *[anyfloat] * 3)
el("norm4d", _norm, _np_norm, f64(2), *[anyfloat] * 4)
el("rnorm4d", lambda *xs: 1 / _norm(*xs), lambda *xs: 1 / _np_norm(*xs), f64(2), *[anyfloat] * 4)
_POW = (mixed(logu(1e-3, 1e3), anyfloat), mixed(uniform(-30, 30), anyfloat))
row("pow", F, mp(mpmath.power, np.power, signed_zeros=True), 4, *_POW)
row("fast_powf", ["fp32"], mp(mpmath.power, np.power, signed_zeros=True), 4, *_POW)
row("pow", [(("fp32", I32), "fp32"), (("fp64", I32), "fp64")],
    mp(mpmath.power, lambda x, n: np.power(x, n.astype(np.float64)), signed_zeros=True),
    f64(4), mixed(uniform(-3, 3), anyfloat), mixed(ints(-40, 40), ints(-2000, 2000), ints()))

# special functions
_ERF = mixed(uniform(-6, 6), anyfloat)
el("erf", mpmath.erf, sp.erf, 4, _ERF)
el("erfc", mpmath.erfc, sp.erfc, 4, mixed(uniform(-6, 30), anyfloat))
el("erfcx", lambda x: mpmath.exp(x * x) * mpmath.erfc(x), sp.erfcx, f64(4),
   mixed(uniform(-27, 30), logu(1, 1e300), anyfloat))
el("normcdf", mpmath.ncdf, sp.ndtr, f64(4), mixed(uniform(-40, 10), anyfloat))
_UNIT = mixed(uniform(-1, 1), logu(1e-300, 1, True),
              lambda rng, n, d: 1 - logu(1e-16, 1)(rng, n, d), anyfloat)
# erfinv(+-0) = +-0, erfcinv(1) = +0 (scipy gives other signs)
el("erfinv", _erfinv, lambda x: np.where(x == 0, x, sp.erfinv(x)), f64(4), _UNIT)
el("erfcinv", _inverse(mpmath.erfc, lambda y: -_GAUSS(y), sp.erfcinv, {0.0: 1, 2.0: -1},
                       lambda q: math.sqrt(-math.log(q))),
   lambda q: np.where(q == 1, 0.0, sp.erfcinv(q)), f64(4),
   mixed(uniform(0, 2), logu(1e-320, 1), lambda rng, n, d: 2 - logu(1e-16, 1)(rng, n, d), anyfloat))
el("normcdfinv", _inverse(mpmath.ncdf, lambda y: mpmath.npdf(y), sp.ndtri, {0.0: -1, 1.0: 1},
                          lambda p: -math.sqrt(-2 * math.log(p))), sp.ndtri, f64(4),
   mixed(uniform(0, 1), logu(1e-320, 1), lambda rng, n, d: 1 - logu(1e-16, 1)(rng, n, d), anyfloat))
_LGAMMA_ZEROS = [1.0, 2.0, -2.4570247382208006, -2.7476826467274127, -3.1435808883499797,
                 -3.9552942848585979]
el("lgamma", lambda x: mpmath.log(abs(mpmath.gamma(x))),
   lambda x: np.where(np.isinf(x), np.inf, sp.gammaln(x)), f64(4),
   mixed(uniform(0, 10), logu(1e-30, 1e300), uniform(-10, 0), anyfloat,
         lambda rng, n, d: rng.choice(_LGAMMA_ZEROS, n) + rng.uniform(-1e-3, 1e-3, n)))
el("tgamma", mpmath.gamma, sp.gamma, f64(4), mixed(uniform(-10, 10), uniform(0, 180), anyfloat))
_BESSEL = mixed(uniform(-30, 30), logu(1e-30, 1e3, True), anyfloat)
# Special values as glibc and CUDA give them: 0 at +-inf (j1 odd), y0(0) = -inf, y(x < 0) = NaN;
# zeros of J_n signed by parity (J_n(-x) = J_-n(x) = (-1)^n J_n(x)).
_J0 = lambda x: np.where(np.isinf(x), 0.0, sp.j0(x))
_J1 = lambda x: np.where(np.isinf(x) | (x == 0), np.copysign(0.0, x), sp.j1(x))
_Y = lambda f: lambda x: np.where(x == np.inf, 0.0, f(x))
_JN = lambda n, x: np.where(np.isinf(x) | ((x == 0) & (n != 0)), np.where(
    (n % 2 == 1) & (np.signbit(x) != (n < 0)), -0.0, 0.0), sp.jv(n, x))
_N_SPECIALS = ([0, 1, 2, -1, -2, 5, 10, 20], None)
# glibc's f64 Bessel functions lose relative accuracy near their zeros: an absolute error of
# 3e-17 (jn, yn: 1e-16) is accepted there, as CUDA documents absolute errors for these.
el("j0", lambda x: mpmath.besselj(0, x), _J0, f64(4), _BESSEL, atol=atol64(3e-17))
el("j1", lambda x: mpmath.besselj(1, x), _J1, f64(4), _BESSEL, atol=atol64(3e-17))
el("y0", lambda x: mpmath.bessely(0, x), _Y(sp.y0), f64(4), _BESSEL, atol=atol64(3e-17))
el("y1", lambda x: mpmath.bessely(1, x), _Y(sp.y1), f64(4), _BESSEL, atol=atol64(3e-17))
row("jn", [((I32, "fp32"), "fp32"), ((I32, "fp64"), "fp64")],
    mp(lambda n, x: mpmath.besselj(n, x), _JN), f64(8), ints(-10, 20), _BESSEL, atol=atol64(1e-16),
    specials=_N_SPECIALS)
row("yn", [((I32, "fp32"), "fp32"), ((I32, "fp64"), "fp64")],
    mp(lambda n, x: mpmath.bessely(n, x), lambda n, x: np.where(x == np.inf, 0.0, sp.yv(n, x))),
    f64(8), ints(-10, 20), _BESSEL, atol=atol64(1e-16), specials=_N_SPECIALS, zero_sign=False)
el("cyl_bessel_i0", lambda x: mpmath.besseli(0, x),
   lambda x: np.where(np.isinf(x), np.inf, sp.i0(x)), f64(4),
   mixed(uniform(-30, 30), uniform(-720, 720), anyfloat))
el("cyl_bessel_i1", lambda x: mpmath.besseli(1, x),
   lambda x: np.where(np.isinf(x) | (x == 0), x, sp.i1(x)), f64(4),
   mixed(uniform(-30, 30), uniform(-720, 720), anyfloat))


# ---- running ------------------------------------------------------------------------------------

def _function(name):
  return frontend._libdevice_module().fast_tanhf if name == "fast_tanhf" else getattr(cuda, name)


@triton.jit
def libdevice_kernel(a_ptr, b_ptr, c_ptr, d_ptr, out_ptr, FNS: tl.constexpr, ARITY: tl.constexpr,
                     N: tl.constexpr, SCALAR: tl.constexpr):
  """out[i] = FNS[i](a[i], b[i], ...) for rows i of N elements: as tensors, or (SCALAR) one scalar
  element per program."""
  if SCALAR:
    offs = tl.program_id(0)
  else:
    offs = tl.arange(0, N)
  for i in tl.static_range(len(FNS)):
    a = tl.load(a_ptr + i * N + offs)
    if ARITY == 1:
      r = FNS[i](a)
    elif ARITY == 2:
      r = FNS[i](a, tl.load(b_ptr + i * N + offs))
    elif ARITY == 3:
      r = FNS[i](a, tl.load(b_ptr + i * N + offs), tl.load(c_ptr + i * N + offs))
    else:
      r = FNS[i](a, tl.load(b_ptr + i * N + offs), tl.load(c_ptr + i * N + offs),
                 tl.load(d_ptr + i * N + offs))
    tl.store(out_ptr + i * N + offs, r)


def _signature(case):
  return case.args, case.result


@functools.cache
def _group(signature, scalar=False):
  """Runs every row of one signature in one kernel: (inputs, outputs) per row."""
  args, result = signature
  cases = [c for c in CASES if _signature(c) == signature]
  inputs = [_inputs(c, np.random.default_rng(zlib.crc32(c.id.encode()))) for c in cases]
  unused = np.zeros((len(cases), N), np.float32)
  arrays = [np.stack([x[k] for x in inputs]) if k < len(args) else unused for k in range(4)]
  out = np.zeros((len(cases), N), NP[result])
  types = [f"*{args[k]}" if k < len(args) else "*fp32" for k in range(4)]
  run(libdevice_kernel, dict(zip(["a_ptr", "b_ptr", "c_ptr", "d_ptr", "out_ptr"],
                                 types + [f"*{result}"])),
      arrays + [out], (N,) if scalar else (1,),
      {"FNS": tuple(_function(c.fn) for c in cases), "ARITY": len(args), "N": N, "SCALAR": scalar})
  return {c.id: (x, out[i]) for i, (c, x) in enumerate(zip(cases, inputs))}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_libdevice(case):
  _check(case, *_group(_signature(case))[case.id])


SIGNATURES = sorted({_signature(c) for c in CASES})


@pytest.mark.parametrize("signature", SIGNATURES,
                         ids=["-".join(a) + "->" + r for a, r in SIGNATURES])
def test_libdevice_on_scalars(signature):
  """The rows of one signature on 0-d operands (a program per element): the scalar code paths."""
  for case in CASES:
    if _signature(case) == signature:
      _check(case, *_group(signature, scalar=True)[case.id])


@functools.cache
def _expected(case_id):
  """The reference values of a row (its inputs are the same in both modes)."""
  case = next(c for c in CASES if c.id == case_id)
  inputs, _ = _group(_signature(case))[case_id]
  with np.errstate(all="ignore"):
    return case.ref(*inputs)


def _check(case, inputs, out):
  expected = _expected(case.id)
  with np.errstate(all="ignore"):
    if case.bound is None:
      assert_equal(out, np.asarray(expected).astype(NP[case.result]), case.id)
      return
  expected = np.asarray(expected, np.float64)
  if case.result == "fp32":  # exact values past the range round to infinity
    past = float(np.finfo(np.float32).max) * (1 + 2.0 ** -25)
    expected = np.where(np.abs(expected) >= past, np.copysign(np.inf, expected), expected)
  err = ulp_error(out, expected, case.result)
  with np.errstate(all="ignore"):
    err = np.where(np.abs(out.astype(np.float64) - expected) <= case.atol, 0.0, err)
  worst = int(np.argmax(err))
  assert err.max() <= case.bound, (
      f"{case.id}: {err.max():.3g} ulp > {case.bound} at {[x[worst] for x in inputs]}: got "
      f"{out[worst]!r}, expected {expected[worst]!r}")
  if case.zero_sign:
    zeros = (expected == 0) & (out == 0)
    assert_equal(np.signbit(out[zeros]), np.signbit(expected[zeros]), f"{case.id}: signs of zero")


# ---- coverage, the user's import path, errors ---------------------------------------------------

_DTYPES = {"int32": I32, "uint32": U32, "int64": I64, "uint64": U64, "fp32": "fp32", "fp64": "fp64"}


def _cuda_overloads():
  """(function, argument dtypes) of every overload of triton's CUDA libdevice, from its source."""
  for chunk in inspect.getsource(cuda).split("@core.extern")[1:]:
    name = re.search(r"def (\w+)\(", chunk).group(1)
    for args in re.findall(r'\(\s*((?:core\.dtype\("\w+"\),?\s*)+)\):\s*\("__nv_', chunk):
      yield name, tuple(_DTYPES[t] for t in re.findall(r'"(\w+)"', args))


def test_every_function_and_overload_has_a_row():
  overloads = set(_cuda_overloads())
  assert len(overloads) == len(rules.LIBDEVICE) - 1  # all but fast_tanhf (HIP's, added here)
  rows = {(c.fn, c.args) for c in CASES}
  assert overloads <= rows, sorted(overloads - rows)
  functions = {n for n, f in vars(libdevice).items() if callable(f) and not n.startswith("_")}
  assert len(functions) == 198 and functions == {c.fn for c in CASES}


@triton.jit
def user_import_kernel(x_ptr, n_ptr, out_ptr, N: tl.constexpr, F32: tl.constexpr):
  """libdevice as kernels use it: triton.language.extra.libdevice, resolved by the frontend."""
  offs = tl.arange(0, N)
  x = tl.load(x_ptr + offs)
  n = tl.load(n_ptr + offs)
  tl.store(out_ptr + offs, libdevice.pow(x, n))
  if F32:
    tl.store(out_ptr + N + offs, libdevice.fast_tanhf(x))
  tl.store(out_ptr + 2 * N + offs, libdevice.isnan(x).to(x.dtype))


@pytest.mark.parametrize("dtype", F)
def test_powi_and_fast_tanhf_through_the_user_import(dtype):
  """pow(x, int n): x^n with n exact (parity of large n included) and pow's special cases."""
  specials = [(0.0, -1, math.inf), (-0.0, -1, -math.inf), (-0.0, -2, math.inf), (-0.0, 3, -0.0),
              (math.nan, 0, 1.0), (1.0, -2 ** 31, 1.0), (-1.0, -2 ** 31, 1.0),
              (-1.0, 2 ** 31 - 1, -1.0), (-2.0, 3, -8.0), (math.inf, -2, 0.0),
              (-math.inf, 3, -math.inf), (-math.inf, -3, -0.0), (0.5, 2 ** 31 - 1, 0.0),
              (-2.0, 2 ** 31 - 1, -math.inf), (3.0, 0, 1.0), (math.nan, 1, math.nan)]
  rng = np.random.default_rng(7)
  x = rng.uniform(-2, 2, N)
  n = rng.integers(-30, 31, N).astype(np.int32)
  x[:len(specials)], n[:len(specials)] = [s[0] for s in specials], [s[1] for s in specials]
  x = x.astype(NP[dtype])
  out = np.zeros((3, N), NP[dtype])
  run(user_import_kernel, {"x_ptr": f"*{dtype}", "n_ptr": "*i32", "out_ptr": f"*{dtype}"},
      [x, n, out], (1,), {"N": N, "F32": dtype == "fp32"})
  k = len(specials)
  assert_equal(out[0, :k], np.array([s[2] for s in specials], NP[dtype]), "pow specials")
  exact = mp(mpmath.power, lambda x, n: np.power(x, n.astype(np.float64)))(x[k:], n[k:])
  assert_ulp(out[0, k:], exact, dtype, 1 if dtype == "fp32" else 4, "pow(x, n)")
  if dtype == "fp32":
    assert_ulp(out[1], np.tanh(x.astype(np.float64)), dtype, 4, "fast_tanhf")
  assert_equal(out[2], np.isnan(x).astype(NP[dtype]), "isnan")


def test_a_missing_rule_names_the_function_kernel_and_line(monkeypatch):
  monkeypatch.delitem(rules.LIBDEVICE, "__nv_powif")
  source, first = inspect.getsourcelines(user_import_kernel.fn)
  line = first + next(i for i, text in enumerate(source) if "libdevice.pow" in text)
  with pytest.raises(NotImplementedError) as e:
    compile_kernel(user_import_kernel, {"x_ptr": "*fp32", "n_ptr": "*i32", "out_ptr": "*fp32"},
                   {"N": 16, "F32": True})
  message = str(e.value)
  assert "libdevice.pow (__nv_powif)" in message and "user_import_kernel" in message, message
  assert f"test_lang_libdevice.py:{line}:" in message, message


def test_rcp64h_returns_only_a_high_word():
  case = next(c for c in CASES if c.fn == "rcp64h")
  for scalar in (False, True):
    _, out = _group(_signature(case), scalar)[case.id]
    assert not np.any(out.view(np.int64) & 0xFFFFFFFF)
