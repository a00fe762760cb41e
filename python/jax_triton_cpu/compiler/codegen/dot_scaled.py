"""tt.dot_scaled (tl.dot_scaled, microscaling formats): each operand dequantised to f32 by its e8m0
scales, then tt.dot's kernel on the f32 operands."""
from __future__ import annotations

from llvmlite import ir as llvm

from .. import ir
from . import types as T
from .dot import multiply
from .dot_pack import pack_rows
from .elementwise import convert
from .lowering import Index
from .registry import STATEMENT, register

# tt.dot_scaled's element types (triton's ScaleDotElemType) and the ones the CPU takes.
_E4M3, _E5M2, _E2M3, _E3M2, _E2M1, _BF16, _FP16 = range(7)
_SUPPORTED = {_E4M3: "e4m3", _E5M2: "e5m2", _E2M1: "e2m1", _BF16: "bf16", _FP16: "fp16"}
_F32 = ir.ScalarType("f32")


def _e2m1_table(module):
  """The 16 values of an fp4 (e2m1) code: sign, 2 exponent bits (bias 1), 1 mantissa bit."""
  table = module.globals.get("e2m1.to_f32")
  if table is None:
    values = []
    for code in range(16):
      e, m = (code >> 1) & 3, code & 1
      magnitude = m * 0.5 if e == 0 else 2.0 ** (e - 1) * (1 + m / 2)
      values.append(-magnitude if code & 8 else magnitude)
    array = llvm.ArrayType(T.F32, 16)
    table = llvm.GlobalVariable(module, array, name="e2m1.to_f32")
    table.global_constant = True
    table.linkage = "private"
    table.initializer = llvm.Constant(array, [llvm.Constant(T.F32, v) for v in values])
  return table


def _dequantized(lo, v: ir.Value, scale: ir.Value | None, elem: int, k_axis: int) -> ir.Value:
  """Operand `v` of tt.dot_scaled as an f32 value, its K dimension (`k_axis`) unpacked (e2m1 holds
  two codes per byte, the lower nibble first) and each value times 2^(scale - 127), the e8m0 scale
  of its block of 32 along K (a scale of 0xFF is NaN)."""
  b = lo.builder
  source = ir.element_type(v.type)
  stored = pack_rows(lo, v, source)
  shape = list(v.type.shape)
  if elem == _E2M1:
    shape[k_axis] *= 2
  out_type = ir.TensorType(tuple(shape), _F32)
  out = lo.new_buffer(out_type)
  scales = pack_rows(lo, scale, ir.element_type(scale.type)) if scale is not None else None
  with lo.loop_nest(tuple(shape), 1) as index:
    dims = list(index.dims)
    k = dims[k_axis]
    if elem == _E2M1:
      dims[k_axis] = b.lshr(k, T.I32(1))
      byte = b.zext(stored.load(b, Index(tuple(dims), 1)), T.I32)
      code = b.and_(b.lshr(byte, b.shl(b.and_(k, T.I32(1)), T.I32(2))), T.I32(15))
      table = _e2m1_table(b.block.function.module)
      value = b.load(b.gep(table, [T.I32(0), code], inbounds=True, source_etype=table.value_type),
                     typ=T.F32)
    else:
      value = convert(b, stored.load(b, index), source, _F32)
    if scales is not None:
      row = index.dims[1 - k_axis]  # M for the left operand, N for the right one
      exponent = b.zext(scales.load(b, Index((row, b.lshr(k, T.I32(5))), 1)), T.I32)
      factor = b.bitcast(b.shl(exponent, T.I32(23)), T.F32)
      factor = b.select(b.icmp_unsigned("==", exponent, T.I32(255)),
                        llvm.Constant(T.F32, float("nan")), factor)
      value = b.fmul(value, factor)
    out.store(b, index, value)
  dequantised = ir.Value(out_type, None, 0, f"{v.name}.dequantised")
  lo.env[dequantised] = out
  return dequantised


@register(STATEMENT, "tt.dot_scaled")
def _dot_scaled(lo, op):
  a, bm, acc = op.operands[:3]
  segments = op.attrs.get("operandSegmentSizes", [1, 1, 1, 0, 0])
  a_scale = op.operands[3] if segments[3] else None
  b_scale = op.operands[3 + segments[3]] if segments[4] else None
  kinds = (op.attrs["a_elem_type"], op.attrs["b_elem_type"])
  for kind in kinds:
    if kind not in _SUPPORTED:
      raise NotImplementedError(f"tt.dot_scaled with element type {kind} (fp6) is not supported "
                                "by the CPU backend")
  if op.result.type.rank != 2 or not op.attrs.get("lhs_k_pack", True) or \
      not op.attrs.get("rhs_k_pack", True):
    raise NotImplementedError("tt.dot_scaled: only 2-D operands packed along K are supported "
                              "by the CPU backend")
  multiply(lo, op, _dequantized(lo, a, a_scale, kinds[0], 1),
           _dequantized(lo, bm, b_scale, kinds[1], 0), acc)
