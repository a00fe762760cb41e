"""triton.language.extra.libdevice on the CPU: tt.extern_elementwise, one rule per CUDA libdevice
symbol (__nv_*) in LIBDEVICE. Each symbol has one signature (Triton dispatches on the operand
types), so a rule knows its types: f32 functions end in f, double ones do not.

Most are glibc libm / libmvec calls or a few integer instructions; the _rz / _ru / _rd variants
are computed exactly by rounding.py; functions glibc lacks (erfinv, erfcx, normcdf, Bessel I0 / I1,
sinpi, norm3d, ...) are in special.py. Symbols not in the table raise NotImplementedError naming
the libdevice function, the kernel and the source line."""
from __future__ import annotations

import functools
import inspect
import re

from llvmlite import ir as llvm

from . import rounding, special, types as T
from .math import call_library, per_lane_call
from .numeric import Num, in_f64, select
from .registry import ELEMENTWISE, register

LIBDEVICE: dict = {}  # symbol -> rule(lowering, *LLVM operands) -> LLVM value


def _define(symbols: str, rule):
  for symbol in symbols.split():
    assert symbol not in LIBDEVICE, symbol
    LIBDEVICE[symbol] = rule


def _both(name: str, rule):
  """The f32 (__nv_<name>f) and f64 (__nv_<name>) symbols of a function."""
  _define(f"__nv_{name}f __nv_{name}", rule)


def _const(v, value):
  return T.constant(v.type, value)


def _lanes(element, like):
  return T.of_lanes(element, T.lanes(like))


# ---- integers -----------------------------------------------------------------------------------

def _to_i32(lo, v):
  return v if T.element(v.type).width == 32 else lo.builder.trunc(v, _lanes(T.I32, v))


def _bit_count(intrinsic, *flags):
  """llvm.<intrinsic>(x, flags); counts come back as i32."""
  return lambda lo, x: _to_i32(lo, lo.call_intrinsic(intrinsic, [x, *flags], overload=[x.type]))


def _ffs(lo, x):
  """1 + the index of the least significant set bit; 0 for 0."""
  b = lo.builder
  trailing = lo.call_intrinsic("cttz", [x, T.I1(0)], overload=[x.type])
  zero = b.icmp_unsigned("==", x, _const(x, 0))
  return _to_i32(lo, b.select(zero, _const(x, 0), b.add(trailing, _const(x, 1))))


def _widened(signed, compute):
  """compute(builder, x, y, wide type) on operands extended to twice their width, truncated back."""
  def rule(lo, x, y):
    b = lo.builder
    wide = _lanes(llvm.IntType(2 * T.element(x.type).width), x)
    extend = b.sext if signed else b.zext
    return b.trunc(compute(b, extend(x, wide), extend(y, wide), wide), x.type)
  return rule


def _high_half(b, x, y, wide):
  return b.lshr(b.mul(x, y), T.constant(wide, T.element(wide).width // 2))


def _halving_add(round_up):
  def compute(b, x, y, wide):
    total = b.add(x, y)
    if round_up:
      total = b.add(total, T.constant(wide, 1))
    return b.ashr(total, T.constant(wide, 1))
  return compute


def _mul24(signed):
  """The low 32 bits of the product of the low 24 bits (sign-extended for __nv_mul24)."""
  def rule(lo, x, y):
    b = lo.builder
    if signed:
      low = lambda v: b.ashr(b.shl(v, _const(v, 8)), _const(v, 8))
    else:
      low = lambda v: b.and_(v, _const(v, 0xFFFFFF))
    return b.mul(low(x), low(y))
  return rule


def _sad(signed):
  """|x - y| + z (z unsigned), modulo 2^32."""
  def rule(lo, x, y, z):
    b = lo.builder
    less = (b.icmp_signed if signed else b.icmp_unsigned)("<", x, y)
    return b.add(b.select(less, b.sub(y, x), b.sub(x, y)), z)
  return rule


def _byte_perm(lo, x, y, s):
  """Byte n of the result is byte s<4n+2:4n> of the 8 bytes {y, x} (x is bytes 0-3)."""
  b = lo.builder
  i64 = _lanes(T.I64, x)
  both = b.or_(b.zext(x, i64), b.shl(b.zext(y, i64), T.constant(i64, 32)))
  result = _const(x, 0)
  for n in range(4):
    selector = b.and_(b.lshr(s, _const(s, 4 * n)), _const(s, 7))
    shift = b.zext(b.shl(selector, _const(s, 3)), i64)
    byte = b.and_(b.trunc(b.lshr(both, shift), x.type), _const(x, 0xFF))
    result = b.or_(result, b.shl(byte, _const(x, 8 * n)))
  return result


_define("__nv_clz __nv_clzll", _bit_count("ctlz", T.I1(0)))  # clz(0) = width, not poison
_define("__nv_popc __nv_popcll", _bit_count("ctpop"))
_define("__nv_brev __nv_brevll", lambda lo, x: lo.call_intrinsic("bitreverse", [x]))
_define("__nv_ffs __nv_ffsll", _ffs)
_define("__nv_abs __nv_llabs",  # abs(INT_MIN) = INT_MIN
        lambda lo, x: lo.call_intrinsic("abs", [x, T.I1(0)], overload=[x.type]))
_define("__nv_mulhi __nv_mul64hi", _widened(True, _high_half))
_define("__nv_umulhi __nv_umul64hi", _widened(False, _high_half))
_define("__nv_hadd", _widened(True, _halving_add(False)))
_define("__nv_rhadd", _widened(True, _halving_add(True)))
_define("__nv_uhadd", _widened(False, _halving_add(False)))
_define("__nv_urhadd", _widened(False, _halving_add(True)))
_define("__nv_mul24", _mul24(True))
_define("__nv_umul24", _mul24(False))
_define("__nv_sad", _sad(True))
_define("__nv_usad", _sad(False))
_define("__nv_byte_perm", _byte_perm)


# ---- bit patterns and conversions ---------------------------------------------------------------

def _bitcast(element):
  return lambda lo, x: lo.builder.bitcast(x, _lanes(element, x))


def _hiloint2double(lo, high, low):
  b = lo.builder
  i64 = _lanes(T.I64, high)
  bits = b.or_(b.shl(b.zext(high, i64), T.constant(i64, 32)), b.zext(low, i64))
  return b.bitcast(bits, _lanes(T.F64, high))


def _double_word(high):
  def rule(lo, x):
    b = lo.builder
    bits = b.bitcast(x, _lanes(T.I64, x))
    if high:
      bits = b.lshr(bits, T.constant(bits.type, 32))
    return b.trunc(bits, _lanes(T.I32, x))
  return rule


_ROUND_TO_INTEGER = {"rn": "roundeven", "rz": "trunc", "rd": "floor", "ru": "ceil"}


def _int_to_float(signed, element):
  """Rounded to nearest, as LLVM's sitofp / uitofp."""
  return lambda lo, x: (lo.builder.sitofp if signed else lo.builder.uitofp)(x, _lanes(element, x))


def _float_to_int(to_integer: str, signed: bool, width: int):
  """Round to an integer (an LLVM intrinsic), convert saturating (NaN gives 0), as PTX's cvt."""
  def rule(lo, x):
    target = _lanes(llvm.IntType(width), x)
    rounded = lo.call_intrinsic(to_integer, [x])
    return lo.call_intrinsic("fptosi.sat" if signed else "fptoui.sat", [rounded], ret=target,
                             overload=[target, x.type])
  return rule


_define("__nv_int_as_float __nv_uint_as_float", _bitcast(T.F32))
_define("__nv_float_as_int __nv_float_as_uint", _bitcast(T.I32))
_define("__nv_longlong_as_double", _bitcast(T.F64))
_define("__nv_double_as_longlong", _bitcast(T.I64))
_define("__nv_hiloint2double", _hiloint2double)
_define("__nv_double2hiint", _double_word(high=True))
_define("__nv_double2loint", _double_word(high=False))
_define("__nv_llrintf __nv_llrint", _float_to_int("roundeven", True, 64))
_define("__nv_llroundf __nv_llround", _float_to_int("round", True, 64))
_define("__nv_double2float_rn", lambda lo, x: lo.builder.fptrunc(x, _lanes(T.F32, x)))
_define("__nv_int2double_rn", _int_to_float(True, T.F64))
_define("__nv_uint2double_rn", _int_to_float(False, T.F64))
for _mode, _rounding in _ROUND_TO_INTEGER.items():
  for _source in ("float", "double"):
    for _dest, _signed, _width in (("int", True, 32), ("uint", False, 32), ("ll", True, 64),
                                   ("ull", False, 64)):
      _define(f"__nv_{_source}2{_dest}_{_mode}", _float_to_int(_rounding, _signed, _width))
  if _mode != "rn":
    _define(f"__nv_double2float_{_mode}", rounding.double_to_float(_mode))
  for _source, _signed in (("int", True), ("uint", False), ("ll", True), ("ull", False)):
    for _dest, _element in (("float", T.F32), ("double", T.F64)):
      if _source in ("int", "uint") and _dest == "double":
        continue  # exact: only _rn exists
      _define(f"__nv_{_source}2{_dest}_{_mode}", _int_to_float(_signed, _element) if _mode == "rn"
              else rounding.int_to_float(_signed, _element, _mode))


# ---- float arithmetic and rounding modes --------------------------------------------------------

def _native(kind):
  """Round to nearest, as the CPU does; no contraction flags (__fmul_rn + __fadd_rn never fuse)."""
  def rule(lo, *args):
    b = lo.builder
    if kind in ("add", "sub", "mul", "div"):
      return getattr(b, "f" + kind)(*args)
    if kind == "rcp":
      return b.fdiv(_const(args[0], 1.0), args[0])
    return lo.call_intrinsic(kind, list(args))  # sqrt, fma
  return rule


for _kind, _f32, _f64 in (("add", "fadd", "dadd"), ("sub", "fsub", "dsub"), ("mul", "fmul", "dmul"),
                          ("div", "fdiv", "ddiv"), ("rcp", "frcp", "drcp"),
                          ("sqrt", "fsqrt", "dsqrt"), ("fma", "fmaf", "fma")):
  for _mode in _ROUND_TO_INTEGER:
    _define(f"__nv_{_f32}_{_mode} __nv_{_f64}_{_mode}",
            _native(_kind) if _mode == "rn" else rounding.directed(_kind, _mode))


def _rsqrt_rn(lo, x):
  """1/sqrt(x) correctly rounded (f32): the f64 value rounded, moved to the neighbour where the
  exact value lies past the midpoint m between them, i.e. where m^2 x is on the other side of 1
  (m^2 is exact in f64, m^2 x as a pair)."""
  wide = Num(lo, x).to(T.F64)
  t = 1.0 / wide.sqrt()
  r = t.to(T.F32)
  near = r.to(T.F64)
  above = t > near
  neighbour = rounding.step(r, above, ~above)
  m = (near + neighbour.to(T.F64)) * 0.5
  m2 = m * m
  p = m2 * wide
  d = (p - 1.0) + m2.fma(wide, -p)  # m^2 x - 1
  past = (above & (d < 0.0)) | (~above & (d > 0.0))
  move = past & t.ne(near) & wide.finite() & (wide > 0.0)
  return select(move, neighbour, r).v


def _saturate(lo, x):
  """x clamped to [+0, 1]; NaN and -0 give +0."""
  v = Num(lo, x)
  return select(v > 0.0, v.intrinsic("minnum", 1.0), 0.0).v


def _predicate(compute):
  return lambda lo, x: lo.builder.zext(compute(Num(lo, x)).v, _lanes(T.I32, x))


def _signbit(lo, x):
  b = lo.builder
  bits = Num(lo, x).bits()
  return b.zext(b.icmp_signed("<", bits, T.constant(bits.type, 0)), _lanes(T.I32, x))


def _intrinsic(name):
  return lambda lo, *args: lo.call_intrinsic(name, list(args))


for _name, _intrinsic_name in {"floor": "floor", "ceil": "ceil", "trunc": "trunc", "round": "round",
                               "rint": "roundeven", "nearbyint": "roundeven", "fabs": "fabs",
                               "sqrt": "sqrt", "fma": "fma", "copysign": "copysign"}.items():
  _both(_name, _intrinsic(_intrinsic_name))
_both("rsqrt", in_f64(lambda x: 1.0 / x.sqrt()))  # f32: one rounding after f64; f64: two
_define("__nv_frsqrt_rn", _rsqrt_rn)
_define("__nv_fast_fdividef", _native("div"))
_define("__nv_saturatef", _saturate)
_define("__nv_isnanf __nv_isnand", _predicate(Num.isnan))
_define("__nv_isinff __nv_isinfd", _predicate(Num.isinf))
_define("__nv_finitef __nv_isfinited", _predicate(Num.finite))
_define("__nv_signbitf __nv_signbitd", _signbit)
_define("__nv_ldexpf __nv_ldexp __nv_scalbnf __nv_scalbn",
        lambda lo, x, n: lo.call_intrinsic("ldexp", [x, n], overload=[x.type, n.type]))


def _ilogb(lo, x):
  """The unbiased exponent (subnormals included); INT_MIN for 0 and NaN, INT_MAX for inf."""
  b = lo.builder
  v = Num(lo, x)
  width = v.width
  mantissa_bits, bias = (23, 127) if width == 32 else (52, 1023)
  bits = v.bits()
  c = lambda v: T.constant(bits.type, v)
  magnitude = b.and_(bits, c((1 << (width - 1)) - 1))
  exponent = b.sub(b.lshr(magnitude, c(mantissa_bits)), c(bias))
  # A subnormal is its integer magnitude times 2^(1 - bias - mantissa_bits); its leading bit is
  # bit width-1-ctlz.
  leading = lo.call_intrinsic("ctlz", [magnitude, T.I1(0)], overload=[bits.type])
  subnormal = b.sub(c(width - bias - mantissa_bits), leading)
  is_subnormal = b.icmp_unsigned("<", magnitude, c(1 << mantissa_bits))
  result = _to_i32(lo, b.select(is_subnormal, subnormal, exponent))
  i32 = result.type
  result = b.select(v.eq(0.0).v, T.constant(i32, -2 ** 31), result)
  result = b.select(v.isnan().v, T.constant(i32, -2 ** 31), result)
  return b.select(v.isinf().v, T.constant(i32, 2 ** 31 - 1), result)


def _logb(lo, x):
  v = Num(lo, x)
  exponent = Num(lo, lo.builder.sitofp(_ilogb(lo, x), x.type))
  return select(v.eq(0.0), float("-inf"), select(v.finite(), exponent, v * v)).v  # inf, NaN


_both("ilogb", _ilogb)
_both("logb", _logb)


def _rcp64h(lo, x):
  """1/x from and to the high 32 bits of doubles (sign, exponent, 20 mantissa bits; the low word
  is ignored and returned 0), subnormals flushed to zero, as PTX's rcp.approx.ftz.f64."""
  b = lo.builder

  def high_word(v):
    bits = v.bits()
    return Num(lo, b.bitcast(b.and_(bits, T.constant(bits.type, -1 << 32)), x.type))

  v = high_word(Num(lo, x))
  v = select(v.abs() < 2.0 ** -1022, v.like(0.0).copysign(v), v)
  r = 1.0 / v
  r = select(r.abs() < 2.0 ** -1022, r.like(0.0).copysign(r), r)
  return high_word(r).v


_define("__nv_rcp64h", _rcp64h)


# ---- libm functions -----------------------------------------------------------------------------

def _library(name):
  return lambda lo, *args: call_library(lo, name, list(args))


for _name in ("sin cos tan asin acos atan sinh cosh tanh asinh acosh atanh exp exp2 exp10 expm1 "
              "log log2 log10 log1p erf erfc cbrt atan2 pow fmod remainder hypot nextafter "
              "fdim").split():
  _both(_name, _library(_name))
for _name in "sin cos tan exp exp10 log log2 log10 pow".split():
  _define(f"__nv_fast_{_name}f", _library(_name))  # fast approximations on GPUs; accurate here
_define("__nv_fast_tanhf", _library("tanh"))  # fast_tanhf: see frontend.py's libdevice module
for _name in "j0 j1 y0 y1 tgamma".split():
  _both(_name, in_f64(lambda x, _n=_name: x.call(_n)))  # f32 through the more accurate double


def _int_order(name):
  """jn(n, x), yn(n, x): glibc's double functions, one call per lane."""
  def rule(lo, n, x):
    wide = Num(lo, x).to(T.F64)
    fn = lo.intrinsic(name, T.F64, [T.I32, T.F64])
    return Num(lo, per_lane_call(lo, fn, [n, wide.v])).to(T.element(x.type)).v
  return rule


def _lgamma(lo, x):
  """glibc's lgamma_r (lgamma writes the global signgam, a race between threads)."""
  wide = Num(lo, x).to(T.F64)
  fn = lo.intrinsic("lgamma_r", T.F64, [T.F64, T.PTR])
  sign = lo.slot_of(T.I32)
  return Num(lo, per_lane_call(lo, fn, [wide.v, sign.pointer])).to(T.element(x.type)).v


def _powi(lo, x, n):
  """x^n for an integer n: pow(x, n) in double, n converted exactly (so the parity of a large n
  stays right), with pow's special cases (x^0 = 1 even for NaN, 0^-n = inf, ...)."""
  wide = Num(lo, x).to(T.F64)
  exponent = lo.builder.sitofp(n, wide.v.type)
  return wide.call("pow", Num(lo, exponent)).to(T.element(x.type)).v


_define("__nv_jnf __nv_jn", _int_order("jn"))
_define("__nv_ynf __nv_yn", _int_order("yn"))
_both("lgamma", _lgamma)
_define("__nv_powif __nv_powi", _powi)

for _name, _compute in {
    "sinpi": special.sinpi, "cospi": special.cospi, "erfcx": special.erfcx,
    "normcdf": special.normcdf, "erfinv": special.erfinv, "erfcinv": special.erfcinv,
    "normcdfinv": special.normcdfinv, "cyl_bessel_i0": special.cyl_bessel_i0,
    "cyl_bessel_i1": special.cyl_bessel_i1, "rcbrt": special.rcbrt,
    "rhypot": functools.partial(special.norm, reciprocal=True), "norm3d": special.norm,
    "norm4d": special.norm, "rnorm3d": functools.partial(special.norm, reciprocal=True),
    "rnorm4d": functools.partial(special.norm, reciprocal=True)}.items():
  _both(_name, in_f64(_compute))


# ---- the op -------------------------------------------------------------------------------------

@functools.cache
def _python_names() -> dict[str, str]:
  """__nv_* symbol -> the libdevice function that calls it (for error messages)."""
  from triton.language.extra.cuda import libdevice
  names = {}
  for chunk in inspect.getsource(libdevice).split("@core.extern")[1:]:
    function = re.search(r"def (\w+)\(", chunk).group(1)
    for symbol in re.findall(r'"(__\w+)"', chunk):
      names[symbol] = function
  return names


@register(ELEMENTWISE, "tt.extern_elementwise")
def _extern_elementwise(lo, op, *args):
  symbol = op.attrs.get("symbol", "")
  rule = LIBDEVICE.get(symbol)
  if rule is None:
    function = _python_names().get(symbol)
    what = f"libdevice.{function} ({symbol})" if function else f"extern function '{symbol}'"
    raise lo.error(op, f"{what} is not supported by the CPU backend")
  return rule(lo, *args)
