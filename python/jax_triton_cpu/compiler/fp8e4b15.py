"""float8e4b15 conversions for triton's frontend, in plain integer ops.

Triton has no MLIR type for fp8e4b15 (an i8 in TTIR) and asks the target for its casts
(codegen_fns["convert_custom_types"]); CUDA's are inline PTX, which a CPU cannot run. These give
the same results as CUDA's (triton/language/extra/cuda/utils.py) with bit operations:

- the format: sign, 4 exponent bits with bias 15, 3 mantissa bits; no infinities or NaN (0x7f is
  1.875). Its exponent bias is fp16's, so a code is an fp16 whose low 7 mantissa bits are zero;
- to fp8e4b15: from fp16 (fp32 is first rounded toward zero to fp16), the magnitude saturated at
  1.75 (NaN too), rounded to nearest with ties away from zero;
- from fp8e4b15: to fp16 exactly, and to fp32 through it; other types are not converted (as on
  CUDA, the result is the fp16 value).
"""
from __future__ import annotations

from triton.language import core

_SIGN, _MAGNITUDE = 0x80, 0x7F
_FP16_SIGN, _FP16_MAGNITUDE = 0x8000, 0x7FFF
_LARGEST = 0x3F00  # 1.75 in fp16: the largest magnitude a conversion gives


@core.builtin
def convert_custom_types(arg, dst_ty, fp_downcast_rounding=None, _semantic=None):
  s = _semantic
  i32 = core.int32

  def const(v):
    return s.to_tensor(v)

  if arg.type.scalar.is_fp8e4b15():
    code = s.cast(s.bitcast(arg, core.uint8), i32)
    bits = s.or_(s.shl(s.and_(code, const(_SIGN)), const(8)),
                 s.shl(s.and_(code, const(_MAGNITUDE)), const(7)))
    half = s.bitcast(s.cast(bits, core.uint16), core.float16)
    return s.cast(half, core.float32) if dst_ty.scalar.is_fp32() else half
  assert arg.type.scalar.is_fp16() or arg.type.scalar.is_fp32(), arg.type
  if arg.type.scalar.is_fp32():
    arg = s.cast(arg, core.float16, fp_downcast_rounding="rtz")
  bits = s.cast(s.bitcast(arg, core.uint16), i32)
  magnitude = s.and_(bits, const(_FP16_MAGNITUDE))
  # as integers, fp16 magnitudes order as their values do, and NaN's lie above 1.75
  magnitude = s.where(s.greater_than(magnitude, const(_LARGEST)), const(_LARGEST), magnitude)
  rounded = s.lshr(s.add(s.shl(magnitude, const(1)), const(0x80), False), const(8))
  code = s.or_(s.lshr(s.and_(bits, const(_FP16_SIGN)), const(8)), rounded)
  return s.bitcast(s.cast(code, core.uint8), core.float8e4b15)
