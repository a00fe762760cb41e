"""libdevice functions glibc lacks, built from libm calls in f64 (f32 arguments are widened and the
result rounded once): sinpi, cospi, erfcx, normcdf, erfinv, erfcinv, normcdfinv, the modified
Bessel functions I0 and I1, and Euclidean norms (rhypot, norm3d, rnorm3d, norm4d, rnorm4d)."""
from __future__ import annotations

import math
from fractions import Fraction

from .numeric import Num, horner, select

_INF = float("inf")
_NAN = float("nan")


def _split(value: Fraction) -> tuple[float, float]:
  """value as hi + lo, two doubles."""
  hi = float(value)
  return hi, float(value - Fraction(hi))


# Enough digits of pi and 1/sqrt(2) for a double-double (hi + lo) of each.
_PI_DIGITS = Fraction("3.14159265358979323846264338327950288419716939937510582097494459")
_PI = _split(_PI_DIGITS)
_SQRT1_2 = _split(Fraction("0.70710678118654752440084436210484903928483593768847403658833987"))
_SQRT2 = _split(Fraction("1.41421356237309504880168872420969807856967187537694807317667974"))
_SQRTPI_2 = math.sqrt(math.pi) / 2
_TWO_SQRTPI = 2 / math.sqrt(math.pi)


def _times(x: Num, constant: tuple[float, float]) -> tuple[Num, Num]:
  """x * (hi + lo) as a double-double (the low part 0 where the product is not finite)."""
  p = x * constant[0]
  return p, select(p.finite(), x.fma(constant[0], -p) + x * constant[1], 0.0)


# ---- sinpi, cospi -------------------------------------------------------------------------------

# Taylor coefficients of sin(pi f) / f - pi and (cos(pi f) - 1) / f^2 in t = f^2 (|f| <= 1/4:
# the last terms are below 2^-70).
_SIN_PI = [float((-1) ** k * _PI_DIGITS ** (2 * k + 1) / math.factorial(2 * k + 1))
           for k in range(1, 12)]
_COS_PI = [float((-1) ** k * _PI_DIGITS ** (2 * k) / math.factorial(2 * k)) for k in range(1, 13)]


def _pi_reduce(x: Num):
  """x = 2k + n/2 + f with |f| <= 1/4 (all steps exact); returns n mod 4 (as a float) and
  sin(pi f), cos(pi f), by series with pi f's leading term as a double-double."""
  r = x - 2.0 * (x * 0.5).roundeven()
  n = (2.0 * r).roundeven()
  f = r - 0.5 * n
  quadrant = n - 4.0 * (n * 0.25).floor()
  t = f * f
  s = f.fma(_PI[0], f * (_PI[1] + t * horner(t, _SIN_PI)))
  c = 1.0 + t * horner(t, _COS_PI)
  return quadrant, s, c


def _by_quadrant(quadrant: Num, values) -> Num:
  result = values[0]
  for k in (1, 2, 3):
    result = select(quadrant.eq(float(k)), values[k], result)
  return result


def sinpi(x: Num) -> Num:
  q, s, c = _pi_reduce(x)
  result = _by_quadrant(q, [s, c, -s, -c])
  return select(result.eq(0.0), x.like(0.0).copysign(x), result)  # sinpi(+-n) = +-0


def cospi(x: Num) -> Num:
  q, s, c = _pi_reduce(x)
  return _by_quadrant(q, [c, -s, -c, s]) + 0.0  # cospi(n + 1/2) = +0


# ---- erfcx, normcdf -----------------------------------------------------------------------------

# erfcx(x) ~ 1/(x sqrt(pi)) * sum (-1)^k (2k-1)!! / (2x^2)^k for x >= 25 (terms fall below 2^-60).
_ERFCX_ASYMPTOTIC = [(-1) ** k * math.prod(range(1, 2 * k, 2)) for k in range(10)]


def _exp_square(x: Num) -> Num:
  """exp(x^2) with x^2 as a double-double (its rounding error would be magnified by x^2)."""
  h = x * x
  return h.call("exp") * (1.0 + select(h < 1000.0, x.fma(x, -h), 0.0))  # beyond: inf anyway


def erfcx(x: Num) -> Num:
  """exp(x^2) erfc(x): the product below 25, where erfc has not yet underflowed; beyond, the
  asymptotic series."""
  near = _exp_square(x) * x.call("erfc")
  far = (1 / math.sqrt(math.pi)) / x * horner(0.5 / (x * x), _ERFCX_ASYMPTOTIC)
  return select(x >= 25.0, far, near)


def normcdf(x: Num) -> Num:
  """erfc(-x/sqrt(2)) / 2, with -x/sqrt(2) as a double-double z + e: erfc(z + e) ~ erfc(z) -
  e 2/sqrt(pi) exp(-z^2)."""
  z, e = _times(-x, _SQRT1_2)
  return 0.5 * (z.call("erfc") - e * _TWO_SQRTPI * (-(z * z)).call("exp"))


# ---- erfinv, erfcinv, normcdfinv ----------------------------------------------------------------

def _erfinv_core(x: Num, a: Num, use_erf) -> Num:
  """y >= 0 with erf(y) = x (lanes where use_erf; x in [0, 1/2]) or erfc(y) = a (a in (0, 1/2)):
  Winitzki's approximation, then Newton steps on erf(y) - x or on log(erfc(y)) - log(a), the
  latter through erfcx so that it keeps its precision for subnormal a."""
  w = select(use_erf, (-(x * x)).call("log1p"), a.call("log") + (2.0 - a).call("log"))
  t = 2 / (math.pi * 0.147) + 0.5 * w
  y = ((t * t - w / 0.147).sqrt() - t).sqrt()
  log_a = a.call("log")
  for _ in range(3):
    by_erf = y - (y.call("erf") - x) * _SQRTPI_2 * (y * y).call("exp")
    ex = erfcx(y)
    square = y * y
    g = ((ex.call("log") - log_a) - square) - y.fma(y, -square)  # log(erfc(y)) - log(a)
    by_erfc = y + g * ex * _SQRTPI_2
    y = select(use_erf, by_erf, by_erfc)
  return y


def erfcinv(q: Num) -> Num:
  upper = q > 1.0
  a = select(upper, 2.0 - q, q)  # exact; erfcinv(2 - a) = -erfcinv(a)
  use_erf = a >= 0.5
  y = _erfinv_core(1.0 - a, a, use_erf)
  y = select(a.eq(0.0), _INF, select(a.eq(1.0), 0.0, y))
  y = select(upper, -y, y)
  return select((q >= 0.0) & (q <= 2.0), y, _NAN)


def erfinv(x: Num) -> Num:
  ax = x.abs()
  y = _erfinv_core(ax, 1.0 - ax, ax <= 0.5)
  y = select(ax.eq(1.0), _INF, select(ax.eq(0.0), 0.0, y))
  return select(ax <= 1.0, y.copysign(x), _NAN)


def normcdfinv(p: Num) -> Num:
  y = erfcinv(2.0 * p)
  low = select(y.finite(), y * _SQRT2[1], 0.0)
  return 0.0 - y.fma(_SQRT2[0], low)  # -sqrt(2) y, sqrt(2) as a double-double


# ---- modified Bessel functions I0, I1 -----------------------------------------------------------

# Below 25: I0 = sum t^k / k!^2 and I1 = x/2 sum t^k / (k! (k+1)!) with t = x^2/4 (43 terms reach
# 2^-60 of the sum). From 25: I_v(x) ~ e^x / sqrt(2 pi x) sum (-1)^k a_k(v) / x^k,
# a_k(v) = prod_{j<=k} (4v^2 - (2j-1)^2) / (k! 8^k).
_I0_SERIES = [1 / math.factorial(k) ** 2 for k in range(43)]
_I1_SERIES = [1 / (math.factorial(k) * math.factorial(k + 1)) for k in range(43)]


def _asymptotic(v: int) -> list[float]:
  coefficients = []
  for k in range(23):
    numerator = math.prod(4 * v * v - (2 * j - 1) ** 2 for j in range(1, k + 1))
    coefficients.append(float(Fraction((-1) ** k * numerator, math.factorial(k) * 8 ** k)))
  return coefficients


_I0_ASYMPTOTIC, _I1_ASYMPTOTIC = _asymptotic(0), _asymptotic(1)


def _bessel_i(x: Num, order: int) -> Num:
  ax = x.abs()
  half = 0.5 * ax
  t = half * half
  dt = half.fma(half, -t)  # t's rounding error, which the sums would magnify by up to x/2
  f, g = horner(t, _I0_SERIES), horner(t, _I1_SERIES)
  if order == 0:
    near = f + dt * g  # dI0/dt = sum t^k / (k! (k+1)!)
  else:
    near = half * (g + dt * select(t.eq(0.0), 0.0, (f - g) / t))  # d/dt of the I1 sum
  # e^x, as (e^(x/2))^2 from 700 on: I(x) stays finite a little past e^x.
  split = ax > 700.0
  e = select(split, 0.5 * ax, ax).call("exp")
  series = horner(1.0 / ax, _I1_ASYMPTOTIC if order else _I0_ASYMPTOTIC)
  far = e * series / (2 * math.pi * ax).sqrt()
  far = select(split, e * far, far)
  result = select(ax < 25.0, near, select(ax > 750.0, _INF, far))  # I(x) overflows from 714
  return result.copysign(x) if order else result


def cyl_bessel_i0(x: Num) -> Num:
  return _bessel_i(x, 0)


def cyl_bessel_i1(x: Num) -> Num:
  return _bessel_i(x, 1)


# ---- rcbrt ---------------------------------------------------------------------------------------

def rcbrt(x: Num) -> Num:
  """1/cbrt(x), refined by a Newton step y += y (1 - x y^3) / 3 with the residual in double-double
  (libm's cbrt is only good to a few ulps); x is scaled by 2^-+600 into [2^-300, 2^300] first so
  that y^3 neither overflows nor underflows."""
  big, small = x.abs() > 2.0 ** 300, x.abs() < 2.0 ** -300
  scaled = select(big, x * 2.0 ** -600, select(small, x * 2.0 ** 600, x))
  y = 1.0 / scaled.call("cbrt")
  square = y * y
  square_err = y.fma(y, -square)
  cube = square * y
  cube_err = square.fma(y, -cube) + square_err * y
  p = scaled * cube
  p_err = scaled.fma(cube, -p) + scaled * cube_err
  residual = (1.0 - p) - p_err  # 1 - x y^3; 1 - p is exact
  refined = y.fma(residual * (1 / 3), y)
  refined = refined * select(big, x.like(2.0 ** -200), select(small, x.like(2.0 ** 200), 1.0))
  return select(x.finite() & x.ne(0.0), refined, 1.0 / x.call("cbrt"))  # +-0, +-inf, NaN


# ---- Euclidean norms ----------------------------------------------------------------------------

def norm(*xs: Num, reciprocal: bool = False) -> Num:
  """sqrt(sum x^2) (or its reciprocal) without overflow or underflow: the operands are scaled by a
  power of two chosen from the largest; an infinite operand gives inf (0) even beside a NaN."""
  big = xs[0].abs()
  for x in xs[1:]:
    big = big.maxnum(x.abs())
  scale = select(big > 2.0 ** 500, 2.0 ** -600,
                 select(big < 2.0 ** -500, big.like(2.0 ** 600), 1.0))
  scaled = [x * scale for x in xs]
  total = scaled[0] * scaled[0]
  for s in scaled[1:]:
    total = s.fma(s, total)
  root = total.sqrt()
  result = scale / root if reciprocal else root / scale
  return select(big.eq(_INF), 0.0 if reciprocal else _INF, result)
