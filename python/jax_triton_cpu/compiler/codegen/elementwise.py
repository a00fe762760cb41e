"""Elementwise rules: arith and math ops on LLVM scalars or vectors of one lane count."""
from __future__ import annotations

from llvmlite import ir as llvm

from .. import ir
from . import fp8, types as T
from .registry import ELEMENTWISE, register


def _operand_type(op: ir.Op, i: int = 0):
  return ir.element_type(op.operands[i].type)


def _result_type(op: ir.Op):
  return ir.element_type(op.result.type)


def _fp(lowering, instr):
  instr.flags.extend(lowering.fp_flags)
  return instr


# ---- bf16 (held as its 16 bits) -----------------------------------------------------------------

def bf16_to_f32(b: llvm.IRBuilder, x):
  n = T.lanes(x)
  wide = b.shl(b.zext(x, T.of_lanes(T.I32, n)), T.constant(T.of_lanes(T.I32, n), 16))
  return b.bitcast(wide, T.of_lanes(T.F32, n))


def f32_to_bf16(b: llvm.IRBuilder, x, rtz: bool = False, instruction: bool = False):
  """Round to nearest even (or toward zero: the top half of the bits); NaNs stay (quiet) NaNs.
  instruction: the target has AVX512-BF16, whose vcvtneps2bf16 rounds to nearest even in one
  instruction."""
  if instruction and not rtz and T.lanes(x) >= 4:
    return _f32_to_bf16_instruction(b, x)
  n = T.lanes(x)
  i32 = T.of_lanes(T.I32, n)
  bits = b.bitcast(x, i32)
  if rtz:
    rounded = b.lshr(bits, T.constant(i32, 16))
  else:
    lsb = b.and_(b.lshr(bits, T.constant(i32, 16)), T.constant(i32, 1))
    rounded = b.lshr(b.add(bits, b.add(lsb, T.constant(i32, 0x7FFF))), T.constant(i32, 16))
  quiet_nan = b.or_(b.lshr(bits, T.constant(i32, 16)), T.constant(i32, 0x40))
  is_nan = b.fcmp_unordered("uno", x, x)
  return b.trunc(b.select(is_nan, quiet_nan, rounded), T.of_lanes(T.I16, n))


def _f32_to_bf16_instruction(b: llvm.IRBuilder, x):
  """vcvtneps2bf16 (LLVM's fptrunc to bfloat on AVX512-BF16) on a vector, which quiets NaNs as
  f32_to_bf16 does but flushes f32 denormals to zero: a chunk holding one takes the integer
  rounding."""
  n = T.lanes(x)
  i32 = T.of_lanes(T.I32, n)
  bits = b.bitcast(x, i32)
  denormal = b.and_(b.icmp_unsigned("==", b.and_(bits, T.constant(i32, 0x7F800000)),
                                    T.constant(i32, 0)),
                    b.icmp_unsigned("!=", b.and_(bits, T.constant(i32, 0x7FFFFF)),
                                    T.constant(i32, 0)))
  denormal = T.call_intrinsic(b, "vector.reduce.or", [denormal], ret=T.I1,
                              overload=[denormal.type])
  converted = b.bitcast(b.fptrunc(x, T.of_lanes(T.BF16, n)), T.of_lanes(T.I16, n))
  before = b.block
  with b.if_then(denormal, likely=False):
    exact = f32_to_bf16(b, x)
    rounded_in = b.block
  result = b.phi(converted.type)
  result.add_incoming(converted, before)
  result.add_incoming(exact, rounded_in)
  return result


def converts_bf16(lo) -> bool:
  """Whether f32 -> bf16 may use vcvtneps2bf16 (f32_to_bf16's `instruction`)."""
  return lo.target.has("avx512bf16", "avx512vl")


def to_f32_if_bf16(b, x, triton_type):
  return bf16_to_f32(b, x) if triton_type.name == "bf16" else x


def _float_rule(compute):
  """A float op; bf16 operands are computed in f32 and rounded back."""
  def rule(lowering, op, *args):
    b = lowering.builder
    if _operand_type(op).name != "bf16":
      return compute(lowering, op, *args)
    result = compute(lowering, op, *(bf16_to_f32(b, a) for a in args))
    if ir.element_type(op.result.type).name == "bf16":
      result = f32_to_bf16(b, result, instruction=converts_bf16(lowering))
    return result
  return rule


# ---- integer arithmetic -------------------------------------------------------------------------

for _name, _method in {"arith.addi": "add", "arith.subi": "sub", "arith.muli": "mul",
                       "arith.andi": "and_", "arith.ori": "or_", "arith.xori": "xor"}.items():
  register(ELEMENTWISE, _name)(lambda lo, op, x, y, _m=_method: getattr(lo.builder, _m)(x, y))


def _safe_divisor(b, y, signed):
  """Division by zero (and INT_MIN / -1) traps on x86; Triton leaves the result unspecified, so
  those lanes divide by 1 instead."""
  zero = T.constant(y.type, 0)
  bad = b.icmp_unsigned("==", y, zero)
  if signed:
    bad = b.or_(bad, b.icmp_signed("==", y, T.constant(y.type, -1)))
  return b.select(bad, T.constant(y.type, 1), y), bad


def _signed_quotient(b, x, y, remainder: bool):
  """x / y truncated toward zero (or its remainder); x / -1 == -x (wrapping), x % -1 == 0."""
  divisor, _ = _safe_divisor(b, y, signed=True)
  minus_one = b.icmp_signed("==", y, T.constant(y.type, -1))
  if remainder:
    return b.select(minus_one, T.constant(x.type, 0), b.srem(x, divisor))
  return b.select(minus_one, b.neg(x), b.sdiv(x, divisor))


@register(ELEMENTWISE, "arith.divsi", "arith.remsi")
def _signed_div(lo, op, x, y):
  return _signed_quotient(lo.builder, x, y, remainder=op.name == "arith.remsi")


@register(ELEMENTWISE, "arith.divui", "arith.remui")
def _unsigned_div(lo, op, x, y):
  divisor, _ = _safe_divisor(lo.builder, y, signed=False)
  return (lo.builder.udiv if op.name == "arith.divui" else lo.builder.urem)(x, divisor)


@register(ELEMENTWISE, "arith.ceildivsi", "arith.floordivsi")
def _rounded_div(lo, op, x, y):
  """The truncated quotient, moved one step down (floor) or up (ceil) when the division is inexact
  and the exact quotient is negative (floor) or positive (ceil). MIN / -1 and / 0 (undefined in
  arith) give some value, without trapping."""
  b = lo.builder
  q, r = _signed_quotient(b, x, y, False), _signed_quotient(b, x, y, True)
  zero = T.constant(x.type, 0)
  inexact = b.icmp_unsigned("!=", r, zero)
  positive = b.icmp_signed(">=", b.xor(x, y), zero)  # x != 0 where inexact
  if op.name == "arith.ceildivsi":
    return b.select(b.and_(inexact, positive), b.add(q, T.constant(x.type, 1)), q)
  return b.select(b.and_(inexact, b.not_(positive)), b.sub(q, T.constant(x.type, 1)), q)


@register(ELEMENTWISE, "arith.ceildivui")
def _ceil_div_unsigned(lo, op, x, y):
  b = lo.builder
  divisor, _ = _safe_divisor(b, y, signed=False)
  inexact = b.icmp_unsigned("!=", b.urem(x, divisor), T.constant(x.type, 0))
  return b.add(b.udiv(x, divisor), b.zext(inexact, x.type))


def _shift(method):
  def rule(lo, op, x, y):
    # Shifting by the bit width or more is poison in LLVM; Triton (PTX) gives 0 or the sign fill.
    b = lo.builder
    width = T.element(x.type).width
    too_far = b.icmp_unsigned(">=", y, T.constant(y.type, width))
    clamped = b.select(too_far, T.constant(y.type, width - 1), y)
    shifted = getattr(b, method)(x, clamped)
    if method == "ashr":
      return shifted
    return b.select(too_far, T.constant(x.type, 0), shifted)
  return rule


register(ELEMENTWISE, "arith.shli")(_shift("shl"))
register(ELEMENTWISE, "arith.shrui")(_shift("lshr"))
register(ELEMENTWISE, "arith.shrsi")(_shift("ashr"))

for _name, _cmp, _signed in (("arith.maxsi", ">", True), ("arith.minsi", "<", True),
                             ("arith.maxui", ">", False), ("arith.minui", "<", False)):
  def _minmax(lo, op, x, y, _cmp=_cmp, _signed=_signed):
    b = lo.builder
    take_x = (b.icmp_signed if _signed else b.icmp_unsigned)(_cmp, x, y)
    return b.select(take_x, x, y)
  register(ELEMENTWISE, _name)(_minmax)

_ICMP = {0: ("==", None), 1: ("!=", None), 2: ("<", True), 3: ("<=", True), 4: (">", True),
         5: (">=", True), 6: ("<", False), 7: ("<=", False), 8: (">", False), 9: (">=", False)}


@register(ELEMENTWISE, "arith.cmpi")
def _cmpi(lo, op, x, y):
  cmp, signed = _ICMP[op.attrs["predicate"]]
  return (lo.builder.icmp_signed if signed else lo.builder.icmp_unsigned)(cmp, x, y)


@register(ELEMENTWISE, "arith.select")
def _select(lo, op, c, x, y):
  return lo.builder.select(c, x, y)


@register(ELEMENTWISE, "math.absi")
def _absi(lo, op, x):
  return lo.call_intrinsic("abs", [x, T.I1(0)], overload=[x.type])


@register(ELEMENTWISE, "tt.mulhiui")
def _mulhiui(lo, op, x, y):
  b = lo.builder
  width = T.element(x.type).width
  wide = T.of_lanes(llvm.IntType(2 * width), T.lanes(x))
  product = b.mul(b.zext(x, wide), b.zext(y, wide))
  return b.trunc(b.lshr(product, T.constant(wide, width)), x.type)


# ---- float arithmetic ---------------------------------------------------------------------------

for _name, _method in {"arith.addf": "fadd", "arith.subf": "fsub", "arith.mulf": "fmul",
                       "arith.divf": "fdiv", "arith.remf": "frem"}.items():
  register(ELEMENTWISE, _name)(_float_rule(
      lambda lo, op, x, y, _m=_method: _fp(lo, getattr(lo.builder, _m)(x, y))))

register(ELEMENTWISE, "tt.precise_divf")(_float_rule(lambda lo, op, x, y: lo.builder.fdiv(x, y)))
register(ELEMENTWISE, "arith.negf")(_float_rule(lambda lo, op, x: lo.builder.fneg(x)))

for _name, _intrinsic in {"arith.maxnumf": "maxnum", "arith.minnumf": "minnum",
                          "arith.maximumf": "maximum", "arith.minimumf": "minimum"}.items():
  register(ELEMENTWISE, _name)(_float_rule(
      lambda lo, op, x, y, _i=_intrinsic: lo.call_intrinsic(_i, [x, y])))

_FCMP = {1: ("==", True), 2: (">", True), 3: (">=", True), 4: ("<", True), 5: ("<=", True),
         6: ("!=", True), 7: ("ord", True), 8: ("==", False), 9: (">", False), 10: (">=", False),
         11: ("<", False), 12: ("<=", False), 13: ("!=", False), 14: ("uno", False)}


@register(ELEMENTWISE, "arith.cmpf")
def _cmpf(lo, op, x, y):
  b = lo.builder
  predicate = op.attrs["predicate"]
  if predicate in (0, 15):  # false / true
    return T.constant(T.of_lanes(T.I1, T.lanes(x)), int(predicate == 15))
  x, y = (to_f32_if_bf16(b, v, _operand_type(op)) for v in (x, y))
  cmp, ordered = _FCMP[predicate]
  return (b.fcmp_ordered if ordered else b.fcmp_unordered)(cmp, x, y)


# ---- casts --------------------------------------------------------------------------------------

_LLVM_FLOATS = {"f16": T.F16, "f32": T.F32, "f64": T.F64}  # in order of width


def float_convert(b, x, src: str, dst: str, rtz: bool = False, bf16_instruction: bool = False):
  """Converts between fp8 / f16 / bf16 / f32 / f64 with one rounding, to nearest even or (rtz)
  toward zero (bf16_instruction: f32_to_bf16's `instruction`)."""
  n = T.lanes(x)
  if src == dst:
    return x
  if src in fp8.FORMATS or src == "bf16":  # exactly f32 values
    wide = fp8.to_f32(b, x, src) if src in fp8.FORMATS else bf16_to_f32(b, x)
    return float_convert(b, wide, "f32", dst, rtz, bf16_instruction)
  if dst in fp8.FORMATS or dst == "bf16":  # through f32: exact, or rounded to odd (or to zero)
    if src == "f64":
      x = _f64_to_f32_round_to_odd(b, x, odd=not rtz)
    elif src == "f16":
      x = b.fpext(x, T.of_lanes(T.F32, n))
    if dst in fp8.FORMATS:
      return fp8.from_f32(b, x, dst, rtz)
    return f32_to_bf16(b, x, rtz, instruction=bf16_instruction)
  target = T.of_lanes(_LLVM_FLOATS[dst], n)
  if list(_LLVM_FLOATS).index(dst) > list(_LLVM_FLOATS).index(src):
    return b.fpext(x, target)
  nearest = b.fptrunc(x, target)
  return _toward_zero(b, x, nearest) if rtz else nearest


def _toward_zero(b, x, nearest):
  """`nearest` (x rounded to a narrower LLVM float type) moved one ulp toward zero where rounding
  moved it away: x rounded toward zero (finite values then never overflow to infinity)."""
  fabs = lambda v: T.call_intrinsic(b, "fabs", [v])
  away = b.fcmp_ordered(">", fabs(b.fpext(nearest, x.type)), fabs(x))
  bits_type = T.of_lanes(llvm.IntType({T.F16: 16, T.F32: 32}[T.element(nearest.type)]), T.lanes(x))
  bits = b.bitcast(nearest, bits_type)
  return b.bitcast(b.select(away, b.sub(bits, T.constant(bits_type, 1)), bits), nearest.type)


def convert(b, x, src: ir.ScalarType, dst: ir.ScalarType, bf16_instruction: bool = False):
  """Converts a value between Triton scalar types (floats, signed ints, bools)
  (bf16_instruction: f32_to_bf16's `instruction`)."""
  if src == dst:
    return x
  n = T.lanes(x)
  if src.is_float and dst.is_float:
    return float_convert(b, x, src.name, dst.name, bf16_instruction=bf16_instruction)
  if src.is_int and dst.is_float:
    return int_to_float(b, x, dst.name, signed=src.name != "i1")
  if src.is_int and dst.is_int:
    target = T.of_lanes(T.scalar_type(dst), n)
    if dst.bits < src.bits:
      return b.trunc(x, target)
    return (b.zext if src.name == "i1" else b.sext)(x, target)
  raise NotImplementedError(f"conversion {src} -> {dst}")


@register(ELEMENTWISE, "arith.extf", "arith.truncf")
def _float_cast(lo, op, x):
  return float_convert(lo.builder, x, _operand_type(op).name, _result_type(op).name,
                       bf16_instruction=converts_bf16(lo))


def _f64_to_f32_round_to_odd(b, x, odd: bool):
  """f64 -> f32 toward zero, and (odd) with the last bit set when inexact: rounding that to a
  narrower type (bf16, fp8) is then as exact as rounding x once."""
  truncated = _toward_zero(b, x, b.fptrunc(x, T.of_lanes(T.F32, T.lanes(x))))
  if not odd:
    return truncated
  i32 = T.of_lanes(T.I32, T.lanes(x))
  bits = b.bitcast(truncated, i32)
  inexact = b.fcmp_ordered("!=", b.fpext(truncated, x.type), x)
  return b.bitcast(b.select(inexact, b.or_(bits, T.constant(i32, 1)), bits), truncated.type)


def int_to_float(b, x, dst: str, signed: bool):
  """An integer rounded once to float type `dst` (f16 / bf16 / f32 / f64), to nearest even."""
  n = T.lanes(x)
  to_float = b.sitofp if signed else b.uitofp
  if dst != "bf16":
    return to_float(x, T.of_lanes({"f16": T.F16, "f32": T.F32, "f64": T.F64}[dst], n))
  if T.element(x.type).width <= 24:  # exact in f32
    return f32_to_bf16(b, to_float(x, T.of_lanes(T.F32, n)))
  return f32_to_bf16(b, _int_to_f32_round_to_odd(b, x, signed))


def _int_to_f32_round_to_odd(b, x, signed: bool):
  """A wide integer as f32, rounded to odd: the bits below the top 24 are dropped, and the last
  kept bit is set if any of them was, so that one more rounding (to bf16) is the only one."""
  width = T.element(x.type).width
  n = T.lanes(x)
  c = lambda v: T.constant(x.type, v)
  magnitude = T.call_intrinsic(b, "abs", [x, T.I1(0)], overload=[x.type]) if signed else x
  leading = T.call_intrinsic(b, "ctlz", [magnitude, T.I1(0)], overload=[x.type])
  excess = b.sub(c(width - 24), leading)
  shift = b.select(b.icmp_signed(">", excess, c(0)), excess, c(0))
  dropped = b.and_(magnitude, b.sub(b.shl(c(1), shift), c(1)))
  kept = b.or_(b.lshr(magnitude, shift), b.zext(b.icmp_unsigned("!=", dropped, c(0)), x.type))
  i32 = T.of_lanes(T.I32, n)
  scale = b.bitcast(b.shl(b.add(b.trunc(shift, i32), T.constant(i32, 127)), T.constant(i32, 23)),
                    T.of_lanes(T.F32, n))
  value = b.fmul(b.uitofp(kept, T.of_lanes(T.F32, n)), scale)  # exact: 24 bits times 2^shift
  if not signed:
    return value
  return b.select(b.icmp_signed("<", x, c(0)), b.fneg(value), value)


@register(ELEMENTWISE, "arith.sitofp", "arith.uitofp")
def _int_to_float(lo, op, x):
  return int_to_float(lo.builder, x, _result_type(op).name, signed=op.name == "arith.sitofp")


@register(ELEMENTWISE, "arith.fptosi", "arith.fptoui")
def _float_to_int(lo, op, x):
  b = lo.builder
  x = to_f32_if_bf16(b, x, _operand_type(op))
  target = T.of_lanes(T.scalar_type(_result_type(op)), T.lanes(x))
  # Saturating conversions: out-of-range values are poison with plain fptosi.
  base = "fptosi.sat" if op.name == "arith.fptosi" else "fptoui.sat"
  return lo.call_intrinsic(base, [x], ret=target, overload=[target, x.type])


@register(ELEMENTWISE, "arith.extsi", "arith.extui", "arith.trunci", "arith.index_cast",
          "arith.index_castui")
def _int_cast(lo, op, x):
  b = lo.builder
  target = T.of_lanes(T.scalar_type(_result_type(op)), T.lanes(x))
  src_bits, dst_bits = T.element(x.type).width, T.element(target).width
  if src_bits == dst_bits:
    return x
  if dst_bits < src_bits:
    return b.trunc(x, target)
  signed = op.name in ("arith.extsi", "arith.index_cast") and src_bits > 1
  return (b.sext if signed else b.zext)(x, target)


@register(ELEMENTWISE, "arith.bitcast", "tt.bitcast")
def _bitcast(lo, op, x):
  target = T.of_lanes(T.scalar_type(_result_type(op)), T.lanes(x))
  return x if x.type == target else lo.builder.bitcast(x, target)


_RTZ = 0  # Triton's RoundingMode: RTZ = 0, RTNE = 1


@register(ELEMENTWISE, "tt.fp_to_fp")
def _fp_to_fp(lo, op, x):
  """Conversions between float formats, with the rounding mode Triton asks for (rtne or rtz)."""
  return float_convert(lo.builder, x, _operand_type(op).name, _result_type(op).name,
                       rtz=op.attrs.get("rounding") == _RTZ, bf16_instruction=converts_bf16(lo))
