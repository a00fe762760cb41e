"""Triton types as LLVM types, and small helpers for values that are either scalars or vectors."""
from __future__ import annotations

import ml_dtypes
import numpy as np
from llvmlite import ir as llvm

from .. import ir

I1, I8, I16, I32, I64 = (llvm.IntType(n) for n in (1, 8, 16, 32, 64))
F16, F32, F64 = llvm.HalfType(), llvm.FloatType(), llvm.DoubleType()
PTR = llvm.PointerType()


class BFloat(llvm.Type):
  """LLVM's bfloat, which llvmlite lacks: only for the instructions that take it (the bf16
  dot products, vcvtneps2bf16); bf16 values are otherwise held as i16 (below)."""

  def _to_string(self):
    return "bfloat"

  def __eq__(self, other):
    return isinstance(other, BFloat)

  def __hash__(self):
    return hash("bfloat")


BF16 = BFloat()

# bf16 and fp8 values live in registers as integers of their width (their bits); arithmetic
# converts them to f32 explicitly, so no libgcc helper or CPU extension is needed.
_SCALARS = {
    "i1": I1, "i8": I8, "i16": I16, "i32": I32, "i64": I64,
    "f16": F16, "bf16": I16, "f32": F32, "f64": F64, "f8E4M3FN": I8, "f8E5M2": I8,
    "f8E4M3FNUZ": I8, "f8E5M2FNUZ": I8,
}


def scalar_type(t) -> llvm.Type:
  """LLVM type of one element of Triton type `t` (a scalar, pointer, or tensor element)."""
  t = ir.element_type(t)
  if isinstance(t, ir.PointerType):
    return PTR
  try:
    return _SCALARS[t.name]
  except KeyError:
    raise NotImplementedError(f"element type {t} is not supported by the CPU backend") from None


# Each Triton float type's numpy dtype: the reference encoding of constants and fp8 tables.
NUMPY = {"f16": np.float16, "bf16": ml_dtypes.bfloat16, "f32": np.float32, "f64": np.float64,
         "f8E4M3FN": ml_dtypes.float8_e4m3fn, "f8E5M2": ml_dtypes.float8_e5m2,
         "f8E4M3FNUZ": ml_dtypes.float8_e4m3fnuz, "f8E5M2FNUZ": ml_dtypes.float8_e5m2fnuz}


def float_bits(name: str, value) -> int:
  """The bit pattern of a float constant of Triton type `name`: `value` is a numpy scalar of that
  type (dense constants: taken as is), or the reader's Python float (the MLIR attribute widened to
  f64, exact; a NaN keeps its sign and payload in its top mantissa bits, which are put back)."""
  dtype = np.dtype(NUMPY[name])
  unsigned = np.dtype(f"u{dtype.itemsize}")
  v = np.asarray(value)
  if v.dtype == dtype:
    return int(v.view(unsigned))
  with np.errstate(invalid="ignore"):
    bits = int(v.astype(np.float64).astype(dtype).view(unsigned))
  if np.isnan(v):  # ml_dtypes and numpy give the canonical quiet NaN (of the right sign)
    mantissa = ml_dtypes.finfo(dtype).nmant
    bits |= (int(v.astype(np.float64).view(np.uint64)) >> (52 - mantissa)) & ((1 << mantissa) - 1)
  return bits


def memory_type(t) -> llvm.Type:
  """How one element is stored in memory (bools take a byte, as in Triton)."""
  s = scalar_type(t)
  return I8 if s is I1 else s


def lanes(value) -> int:
  return value.type.count if isinstance(value.type, llvm.VectorType) else 1


def of_lanes(scalar: llvm.Type, n: int) -> llvm.Type:
  return scalar if n == 1 else llvm.VectorType(scalar, n)


def element(llvm_type: llvm.Type) -> llvm.Type:
  return llvm_type.element if isinstance(llvm_type, llvm.VectorType) else llvm_type


def constant(llvm_type: llvm.Type, value) -> llvm.Constant:
  """A constant of a scalar or vector type (vectors get the value in every lane)."""
  if isinstance(llvm_type, llvm.VectorType):
    return llvm.Constant(llvm_type, [llvm.Constant(llvm_type.element, value)] * llvm_type.count)
  return llvm.Constant(llvm_type, value)


def splat(builder: llvm.IRBuilder, value, n: int):
  """Broadcasts a scalar to n lanes (vectors and n == 1 pass through)."""
  if n == 1 or isinstance(value.type, llvm.VectorType):
    return value
  vec_type = llvm.VectorType(value.type, n)
  if isinstance(value, llvm.FormattedConstant) and value.constant == "poison":
    return llvm.Constant(vec_type, llvm.Undefined)  # (llvmlite prints no vector of poison)
  if isinstance(value, llvm.Constant):
    return llvm.Constant(vec_type, [value] * n)
  one = builder.insert_element(llvm.Constant(vec_type, llvm.Undefined), value, I32(0))
  return builder.shuffle_vector(one, llvm.Constant(vec_type, llvm.Undefined),
                                llvm.Constant(llvm.VectorType(I32, n), [I32(0)] * n))


def interleave(builder: llvm.IRBuilder, parts):
  """[p0[0], p1[0], ..., p0[1], p1[1], ...] of a power-of-two count of scalars or vectors of one
  type: pairs of the even and of the odd ones, interleaved."""
  if len(parts) == 1:
    return parts[0]
  if len(parts) > 2:
    parts = [interleave(builder, parts[0::2]), interleave(builder, parts[1::2])]
  x, y = parts
  n = lanes(x)
  if n == 1:
    x, y = (builder.insert_element(llvm.Constant(llvm.VectorType(v.type, 1), llvm.Undefined), v,
                                   I32(0)) for v in (x, y))
  mask = [i // 2 + (n if i % 2 else 0) for i in range(2 * n)]
  return builder.shuffle_vector(x, y, llvm.Constant(llvm.VectorType(I32, 2 * n), mask))


def iota(n: int, scalar: llvm.Type = I32) -> llvm.Constant:
  return llvm.Constant(llvm.VectorType(scalar, n), [llvm.Constant(scalar, i) for i in range(n)])


def declare(module: llvm.Module, name: str, ret, args, var_arg: bool = False) -> llvm.Function:
  """The function `name` of the module (an intrinsic or a C library function), declared once."""
  fn = module.globals.get(name)
  return fn or llvm.Function(module, llvm.FunctionType(ret, args, var_arg=var_arg), name=name)


def call_intrinsic(builder: llvm.IRBuilder, base: str, args, ret=None, overload=None):
  """Calls llvm.<base>.<mangled overload types>(args) (overload: [ret] unless given)."""
  ret = ret or args[0].type
  overload = overload if overload is not None else [ret]
  name = ".".join([f"llvm.{base}"] + [mangle(t) for t in overload])
  fn = declare(builder.block.function.module, name, ret, [a.type for a in args])
  return builder.call(fn, args)


def mangle(t: llvm.Type) -> str:
  """The type suffix LLVM intrinsic names use (v8f32, f16, i64, p0, ...)."""
  if isinstance(t, llvm.VectorType):
    return f"v{t.count}{mangle(t.element)}"
  if isinstance(t, llvm.PointerType):
    return "p0"
  if isinstance(t, llvm.IntType):
    return f"i{t.width}"
  return {F16: "f16", F32: "f32", F64: "f64"}[t]
