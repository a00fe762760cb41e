"""fp8 (float8_e4m3fn, float8_e5m2, and AMD's float8_e4m3fnuz, float8_e5m2fnuz) <-> f32, on
integer lanes: no CPU has these types.

Widening reads a 256-entry table; narrowing rounds to nearest even and saturates to the largest
finite value, as the GPU's cvt.rn.satfinite does (or rounds toward zero); NaN stays NaN. The fnuz
formats have no infinities and no negative zero: 0x80 is their only NaN, and a value that rounds
to zero is +0.
"""
from __future__ import annotations

import numpy as np
from llvmlite import ir as llvm

from . import types as T

# name -> (exponent bits, mantissa bits, bias, largest finite code)
FORMATS = {
    "f8E4M3FN": (4, 3, 7, 0x7E),
    "f8E5M2": (5, 2, 15, 0x7B),
    "f8E4M3FNUZ": (4, 3, 8, 0x7F),
    "f8E5M2FNUZ": (5, 2, 16, 0x7F),
}
FNUZ = ("f8E4M3FNUZ", "f8E5M2FNUZ")
FNUZ_NAN = 0x80


def _table(module: llvm.Module, name: str):
  table = module.globals.get(f"{name}.to_f32")
  if table is None:
    values = np.arange(256, dtype=np.uint8).view(T.NUMPY[name]).astype(np.float32)
    array = llvm.ArrayType(T.F32, 256)
    table = llvm.GlobalVariable(module, array, name=f"{name}.to_f32")
    table.global_constant = True
    table.linkage = "private"
    table.initializer = llvm.Constant(array, [llvm.Constant(T.F32, float(v)) for v in values])
  return table


def to_f32(b: llvm.IRBuilder, x, name: str):
  n = T.lanes(x)
  table = _table(b.block.function.module, name)
  index = b.zext(x, T.of_lanes(T.I32, n))
  if n == 1:
    return b.load(b.gep(table, [T.I32(0), index], inbounds=True, source_etype=table.value_type),
                  typ=T.F32)
  pointers = b.gep(T.splat(b, b.bitcast(table, T.PTR), n), [index], source_etype=T.F32)
  vec = llvm.VectorType(T.F32, n)
  return T.call_intrinsic(b, "masked.gather", [pointers, T.I32(4),
                                               T.constant(llvm.VectorType(T.I1, n), 1),
                                               T.constant(vec, 0.0)],
                          ret=vec, overload=[vec, pointers.type])


def from_f32(b: llvm.IRBuilder, x, name: str, rtz: bool = False):
  """Rounds to nearest even or (rtz) toward zero; saturates, except that e5m2 keeps infinities
  under rtz (Triton's f32 -> e5m2 rtz: round toward zero to f16, then keep its high byte)."""
  exponent_bits, mantissa_bits, bias, largest = FORMATS[name]
  n = T.lanes(x)
  i32 = T.of_lanes(T.I32, n)
  c = lambda v: T.constant(i32, v)
  bits = b.bitcast(x, i32)
  sign = b.and_(b.lshr(bits, c(24)), c(0x80))
  magnitude = b.and_(bits, c(0x7FFFFFFF))
  # Normal range: round the f32 mantissa (to nearest even: add just under half an ulp, and the
  # kept lsb; toward zero: drop the bits), then rebias the exponent.
  drop = 23 - mantissa_bits
  rounded = magnitude if rtz else b.add(
      magnitude, b.add(c((1 << (drop - 1)) - 1), b.and_(b.lshr(magnitude, c(drop)), c(1))))
  normal = b.sub(b.lshr(rounded, c(drop)), c((127 - bias) << mantissa_bits))
  # Below the smallest normal: the code is the value in units of the smallest subnormal.
  scaled = b.fmul(T.call_intrinsic(b, "fabs", [x]),
                  T.constant(x.type, float(2.0 ** (bias - 1 + mantissa_bits))))
  subnormal = b.fptoui(T.call_intrinsic(b, "trunc" if rtz else "roundeven", [scaled]), i32)
  smallest_normal_bits = (127 + 1 - bias) << 23
  code = b.select(b.icmp_unsigned("<", magnitude, c(smallest_normal_bits)), subnormal, normal)
  code = b.select(b.icmp_unsigned(">", code, c(largest)), c(largest), code)  # saturate (also inf)
  if rtz and name == "f8E5M2":
    code = b.select(b.icmp_unsigned("==", magnitude, c(0x7F800000)), c(0x7C), code)
  is_nan = b.icmp_unsigned(">", magnitude, c(0x7F800000))
  if name in FNUZ:
    signed = b.select(b.icmp_unsigned("==", code, c(0)), code, b.or_(code, sign))  # no -0
    code = b.select(is_nan, c(FNUZ_NAN), signed)
  else:
    code = b.or_(b.select(is_nan, c(0x7F), code), sign)
  return b.trunc(code, T.of_lanes(T.I8, n))
