"""Math functions: native instructions where the CPU has them (sqrt, floor, fma, ...), otherwise
vectorised calls into glibc's libmvec (exp, log, sin, erf, tanh, pow, ...: one call per SIMD
register, not one libm call per element), and scalar libm calls where no vector variant exists.

f16, bf16 and fp8 compute in f32 and round back, as GPUs do (fp8 `abs` clears the sign bit).
Also here: tt.clampf. The libdevice functions (tt.extern_elementwise) are in libdevice.py.
"""
from __future__ import annotations

import ctypes
import functools

from llvmlite import ir as llvm

from . import fp8, types as T
from .elementwise import _fp, _operand_type, bf16_to_f32, converts_bf16, f32_to_bf16
from .registry import ELEMENTWISE, register


def promoted(compute):
  """Wraps a rule computing in f32 / f64 so that f16 / bf16 / fp8 operands compute in f32."""
  def rule(lo, op, *args):
    b = lo.builder
    name = _operand_type(op).name
    if name == "f16":
      widen, narrow = (lambda a: b.fpext(a, T.of_lanes(T.F32, T.lanes(a)))), \
          (lambda r: b.fptrunc(r, args[0].type))
    elif name == "bf16":
      widen, narrow = (lambda a: bf16_to_f32(b, a)), \
          (lambda r: f32_to_bf16(b, r, instruction=converts_bf16(lo)))
    elif name in fp8.FORMATS:
      widen, narrow = (lambda a: fp8.to_f32(b, a, name)), (lambda r: fp8.from_f32(b, r, name))
    else:
      return compute(lo, op, *args)
    result = compute(lo, op, *map(widen, args))
    if T.element(result.type) != T.F32:  # predicates give integers
      return result
    return narrow(result)
  return rule


# ---- native instructions -------------------------------------------------------------------------

_INTRINSICS = {
    "math.sqrt": "sqrt", "tt.precise_sqrt": "sqrt", "math.floor": "floor",
    "math.ceil": "ceil", "math.trunc": "trunc", "math.round": "round",
    "math.roundeven": "roundeven", "math.fma": "fma", "math.copysign": "copysign",
}
for _name, _intrinsic in _INTRINSICS.items():
  register(ELEMENTWISE, _name)(promoted(
      lambda lo, op, *args, _i=_intrinsic: _fp(lo, lo.call_intrinsic(_i, list(args)))))


@register(ELEMENTWISE, "math.absf")
def _abs(lo, op, x):
  name = _operand_type(op).name
  if name in fp8.FORMATS:  # exact, NaN payloads kept (as GPUs do)
    cleared = lo.builder.and_(x, T.constant(x.type, 0x7F))
    if name not in fp8.FNUZ:
      return cleared
    nan = T.constant(x.type, fp8.FNUZ_NAN)  # (fnuz: 0x80 is NaN, not -0)
    return lo.builder.select(lo.builder.icmp_unsigned("==", x, nan), x, cleared)
  return promoted(lambda lo, op, x: _fp(lo, lo.call_intrinsic("fabs", [x])))(lo, op, x)


@register(ELEMENTWISE, "math.rsqrt")
@promoted
def _rsqrt(lo, op, x):
  return _fp(lo, lo.builder.fdiv(T.constant(x.type, 1.0), lo.call_intrinsic("sqrt", [x])))


# ---- library functions ---------------------------------------------------------------------------

@functools.cache
def _libmvec_has(symbol: str) -> bool:
  try:
    return hasattr(ctypes.CDLL("libmvec.so.1"), symbol)
  except OSError:
    return False


def _vector_isa(target) -> str | None:
  """glibc's vector ABI letter for the target's registers (x86: b/c/d/e; aarch64: n)."""
  arch = target.triple.split("-")[0]
  if arch == "x86_64":
    if target.vector_bits == 512:
      return "e"
    if target.vector_bits == 256:
      return "d" if "+avx2" in target.features else "c"
    return "b"
  if arch == "aarch64":
    return "n"
  return None


def _shuffle(b, vectors, lanes):
  """Concatenates vectors (same type), or cuts/pads one vector to `lanes` lanes."""
  if len(vectors) == 1:
    v = vectors[0]
    mask = [T.I32(i if i < T.lanes(v) else 0) for i in range(lanes)]
    return b.shuffle_vector(v, v, llvm.Constant(llvm.VectorType(T.I32, lanes), mask))
  while len(vectors) > 1:
    n = T.lanes(vectors[0])
    mask = llvm.Constant(llvm.VectorType(T.I32, 2 * n), [T.I32(i) for i in range(2 * n)])
    vectors = [b.shuffle_vector(vectors[i], vectors[i + 1], mask)
               for i in range(0, len(vectors), 2)]
  return vectors[0]


def call_library(lo, name: str, args):
  """name(args) for f32 or f64 scalars or vectors: a libmvec call per register where glibc has a
  vector variant, else libm per element."""
  b = lo.builder
  element = T.element(args[0].type)
  suffix = "f" if element == T.F32 else ""
  n = T.lanes(args[0])
  native = lo.target.vector_bits // (32 if element == T.F32 else 64)
  isa = _vector_isa(lo.target)
  vector_name = f"_ZGV{isa}N{native}{'v' * len(args)}_{name}{suffix}"
  if n > 1 and isa and _libmvec_has(vector_name):
    vec = llvm.VectorType(element, native)
    fn = lo.intrinsic(vector_name, vec, [vec] * len(args))
    if n <= native:
      padded = [_shuffle(b, [a], native) for a in args]
      return _shuffle(b, [b.call(fn, padded)], n) if n < native else b.call(fn, padded)
    pieces = []
    for start in range(0, n, native):
      mask = llvm.Constant(llvm.VectorType(T.I32, native),
                           [T.I32(start + i) for i in range(native)])
      pieces.append(b.call(fn, [b.shuffle_vector(a, a, mask) for a in args]))
    return _shuffle(b, pieces, n)
  return per_lane_call(lo, lo.intrinsic(f"{name}{suffix}", element, [element] * len(args)), args)


def per_lane_call(lo, fn: llvm.Function, args):
  """fn (a scalar C function) applied lane by lane; scalar arguments (pointers) go to every call."""
  b = lo.builder
  n = max(map(T.lanes, args))
  if n == 1:
    return b.call(fn, args)
  result = llvm.Constant(llvm.VectorType(fn.function_type.return_type, n), llvm.Undefined)
  for lane in range(n):
    value = b.call(fn, [b.extract_element(a, T.I32(lane)) if T.lanes(a) > 1 else a for a in args])
    result = b.insert_element(result, value, T.I32(lane))
  return result


def _exp_f32(lo, x, base2: bool):
  """e^x or 2^x for f32 vectors, inline (a libmvec call costs more than the math in a softmax):
  x = n ln2 + r (Cody-Waite: ln2 in two parts, so r keeps its bits), e^r from Cephes' expf
  polynomial (about 1 ulp), times 2^n. Out of range gives 0 or inf; NaN stays NaN.

  Every step lets NaN through without a fix-up: the clamps are compare-and-selects (one
  vmaxps / vminps each on x86, where llvm.maxnum needs three instructions), and n comes from
  adding 1.5 * 2^23, whose low bits are n as an integer (no fptosi, which is poison for NaN)."""
  b = lo.builder
  c = lambda v: T.constant(x.type, v)
  fma = lambda p, q, r: lo.call_intrinsic("fma", [p, q, r])
  i32 = T.of_lanes(T.I32, T.lanes(x))
  low, high = (-151.0, 129.0) if base2 else (-104.7, 89.5)  # beyond: 0 and inf
  clamped = b.select(b.fcmp_ordered(">", c(low), x), c(low), x)
  clamped = b.select(b.fcmp_ordered("<", c(high), clamped), c(high), clamped)
  magic = c(12582912.0)  # 1.5 * 2^23: t = n + magic holds n in its low mantissa bits
  if base2:
    shifted = b.fadd(clamped, magic)
    n = b.fsub(shifted, magic)
    r = b.fmul(b.fsub(clamped, n), c(0.6931471805599453))  # x - n is exact
  else:
    shifted = fma(clamped, c(1.4426950408889634), magic)
    n = b.fsub(shifted, magic)
    r = fma(n, c(-0.693359375), clamped)
    r = fma(n, c(2.12194440e-4), r)
  p = c(1.9875691500e-4)
  for coefficient in (1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1,
                      5.0000001201e-1):
    p = fma(p, r, c(coefficient))
  mantissa = fma(b.fmul(p, r), r, b.fadd(r, c(1.0)))
  k = b.sub(b.bitcast(shifted, i32), b.bitcast(magic, i32))
  if lo.target.has("avx512f", "avx512vl"):  # ldexp is one vscalefps, subnormal results included
    return lo.call_intrinsic("ldexp", [mantissa, k], overload=[x.type, i32])
  # Scale by 2^n in two steps (2^(n/2) twice), so that results near the ends of the range, where
  # 2^n alone is not a normal f32, come out right (without AVX-512, LLVM's ldexp is a libm call
  # per lane).
  half = b.ashr(k, T.constant(i32, 1))
  scale = lambda e: b.bitcast(b.shl(b.add(e, T.constant(i32, 127)), T.constant(i32, 23)), x.type)
  return b.fmul(b.fmul(mantissa, scale(half)), scale(b.sub(k, half)))


def _exp(lo, op, x):
  if T.element(x.type) == T.F32 and T.lanes(x) > 1:
    return _exp_f32(lo, x, base2=False)
  return call_library(lo, "exp", [x])


def _exp2(lo, op, x):
  if T.element(x.type) == T.F32 and T.lanes(x) > 1:
    return _exp_f32(lo, x, base2=True)
  return call_library(lo, "exp2", [x])


register(ELEMENTWISE, "math.exp")(promoted(_exp))
register(ELEMENTWISE, "math.exp2")(promoted(_exp2))

_LIBRARY = {
    "math.expm1": "expm1", "math.log": "log",
    "math.log2": "log2", "math.log10": "log10", "math.log1p": "log1p", "math.sin": "sin",
    "math.cos": "cos", "math.tan": "tan", "math.asin": "asin", "math.acos": "acos",
    "math.atan": "atan", "math.sinh": "sinh", "math.cosh": "cosh", "math.tanh": "tanh",
    "math.asinh": "asinh", "math.acosh": "acosh", "math.atanh": "atanh", "math.erf": "erf",
    "math.erfc": "erfc", "math.cbrt": "cbrt", "math.atan2": "atan2", "math.powf": "pow",
}
for _name, _function in _LIBRARY.items():
  register(ELEMENTWISE, _name)(promoted(
      lambda lo, op, *args, _f=_function: call_library(lo, _f, list(args))))


@register(ELEMENTWISE, "tt.clampf")
@promoted
def _clampf(lo, op, x, low, high):
  propagate_nan = "all" in str(op.attrs.get("propagateNan", "")).lower() or \
      op.attrs.get("propagateNan") == 65535
  lower, upper = ("maximum", "minimum") if propagate_nan else ("maxnum", "minnum")
  return lo.call_intrinsic(upper, [lo.call_intrinsic(lower, [x, low]), high])
