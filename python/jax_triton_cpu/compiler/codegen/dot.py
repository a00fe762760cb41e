"""tt.dot (and tt.dot_scaled, dequantised first): C = A @ B + acc, 2-D or batched 3-D, as a register-blocked FMA micro-kernel.

The operands are packed into stack buffers in the compute type (f32 for f16 / bf16 / f32 / tf32
inputs, f64, or i32 for int8), which also fuses their loads and conversions. The kernel keeps a
block of MR rows x NV vectors of C in registers over the whole K loop: per k it loads NV vectors of
B, broadcasts MR scalars of A, and issues MR * NV FMAs.
"""
from __future__ import annotations

from llvmlite import ir as llvm

from .. import ir
from . import types as T
from .elementwise import convert
from .lowering import Buffer, Index
from .registry import STATEMENT, register


def _compute_type(result: ir.ScalarType, inputs) -> ir.ScalarType:
  if result.is_int:
    return ir.ScalarType("i32" if result.bits <= 32 else "i64")
  if result.name == "f64" or any(t.name == "f64" for t in inputs):
    return ir.ScalarType("f64")
  return ir.ScalarType("f32")


def _packed(lo, v: ir.Value, compute: ir.ScalarType) -> Buffer:
  """`v` in a buffer of the compute type."""
  source = ir.element_type(v.type)
  if source == compute and isinstance(lo.env.get(v), Buffer):
    return lo.env[v]
  buf = lo.new_buffer(ir.TensorType(v.type.shape, compute))
  with lo.loop_nest(v.type.shape, lo.lanes_for(v.type, buf.type)) as index:
    value = T.splat(lo.builder, lo.evaluate(v, index), index.lanes)
    buf.store(lo.builder, index, convert(lo.builder, value, source, compute))
  return buf


def _address(b, buf: Buffer, batch, row, col):
  dims = (row, col) if batch is None else (batch, row, col)
  return buf.address(b, Index(dims, 1))


def _matmul(lo, a: Buffer, bm: Buffer, c: Buffer, batch, compute: ir.ScalarType):
  """c[batch] += a[batch] @ bm[batch], in registers block by block."""
  b = lo.builder
  M, K = a.type.shape[-2:]
  N = bm.type.shape[-1]
  element = T.scalar_type(compute)
  lanes = max(1, min(N, lo.target.vector_bits // compute.bits))
  nv = min(2, N // lanes)                                   # vectors of C per row in a block
  mr = min(M, 8 if lo.target.vector_bits >= 512 else 4)   # rows of C in a block
  vec = T.of_lanes(element, lanes)
  is_float = compute.is_float

  def fma(x, y, acc):
    if is_float:
      return lo.call_intrinsic("fma", [x, y, acc])
    return b.add(acc, b.mul(x, y))

  with lo.loop(M, mr) as m0, lo.loop(N, nv * lanes) as n0:
    cols = [b.add(n0, T.I32(j * lanes)) for j in range(nv)]
    rows = [b.add(m0, T.I32(i)) for i in range(mr)]
    slots = []
    for r in rows:
      for col in cols:
        slots.append(lo.slot_of(vec))
        b.store(b.load(_address(b, c, batch, r, col), typ=vec, align=compute.bits // 8),
                slots[-1].pointer)
    with lo.loop(K) as k:
      bs = [b.load(_address(b, bm, batch, k, col), typ=vec, align=compute.bits // 8) for col in cols]
      for i, r in enumerate(rows):
        scalar = b.load(_address(b, a, batch, r, k), typ=element)
        av = T.splat(b, scalar, lanes)
        for j in range(nv):
          s = slots[i * nv + j]
          b.store(fma(av, bs[j], b.load(s.pointer, typ=vec)), s.pointer)
    for i, r in enumerate(rows):
      for j, col in enumerate(cols):
        s = slots[i * nv + j]
        b.store(b.load(s.pointer, typ=vec), _address(b, c, batch, r, col), align=compute.bits // 8)


def _accumulates_in_place(acc: ir.Value, result: ir.Value) -> bool:
  """Whether the dot may add into its accumulator's buffer: `acc = tl.dot(a, b, acc)` in a loop
  whose carried `acc` is read by nothing else and whose result only goes back into that slot."""
  block = acc.owner
  if not isinstance(block, ir.Block) or len(acc.uses) != 1 or len(result.uses) != 1:
    return False
  terminator = block.terminator
  loop = block.parent.parent if block.parent is not None else None
  if loop is None or loop.name != "scf.for" or result.uses[0] is not terminator:
    return False
  slot = acc.index - 1  # block arguments: induction variable, then carried values
  return terminator.operands.count(result) == 1 and terminator.operands[slot] is result


@register(STATEMENT, "tt.dot")
def _dot(lo, op):
  a, bm, acc = op.operands
  compute = _compute_type(ir.element_type(op.result.type),
                          [ir.element_type(a.type), ir.element_type(bm.type)])
  _multiply(lo, op, _packed(lo, a, compute), _packed(lo, bm, compute), acc, compute)


def _multiply(lo, op, packed_a: Buffer, packed_b: Buffer, acc: ir.Value, compute: ir.ScalarType):
  """op's result = packed_a @ packed_b + acc, the operands already in the compute type."""
  result = op.result
  result_type = ir.element_type(result.type)
  c = _packed(lo, acc, compute)
  if c is lo.env.get(acc) and not _accumulates_in_place(acc, result):
    copy = lo.new_buffer(c.type)  # the accumulator operand's own buffer must stay as it is
    lo.memcpy(copy.pointer, c.pointer, c.nbytes)
    c = copy
  lo.count_work(result.type.numel * packed_a.type.shape[-1])
  if result.type.rank == 3:
    with lo.loop(result.type.shape[0]) as batch:
      _matmul(lo, packed_a, packed_b, c, batch, compute)
  else:
    _matmul(lo, packed_a, packed_b, c, None, compute)
  if compute != result_type:
    out = lo.new_buffer(result.type)
    with lo.loop_nest(result.type.shape, lo.lanes_for(result.type, c.type)) as index:
      out.store(lo.builder, index, convert(lo.builder, c.load(lo.builder, index), compute, result_type))
    c = out
  lo.env[result] = c


# tt.dot_scaled's element types (triton's ScaleDotElemType) and the ones the CPU takes.
_E4M3, _E5M2, _E2M3, _E3M2, _E2M1, _BF16, _FP16 = range(7)
_SUPPORTED_SCALED = {_E4M3: "e4m3", _E5M2: "e5m2", _E2M1: "e2m1", _BF16: "bf16", _FP16: "fp16"}
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


def _dequantized(lo, v: ir.Value, scale: ir.Value | None, elem: int, k_axis: int) -> Buffer:
  """Operand `v` of tt.dot_scaled as f32, its K dimension (`k_axis`) unpacked (e2m1 holds two
  codes per byte, the lower nibble first) and each value times 2^(scale - 127), the e8m0 scale of
  its block of 32 along K (a scale of 0xFF is NaN)."""
  b = lo.builder
  source = ir.element_type(v.type)
  stored = _packed(lo, v, source)
  shape = list(v.type.shape)
  if elem == _E2M1:
    shape[k_axis] *= 2
  out = lo.new_buffer(ir.TensorType(tuple(shape), _F32))
  scales = _packed(lo, scale, ir.element_type(scale.type)) if scale is not None else None
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
  return out


@register(STATEMENT, "tt.dot_scaled")
def _dot_scaled(lo, op):
  """Microscaling dot: both operands dequantised to f32 by their scales, then tt.dot's kernel."""
  a, bm, acc = op.operands[:3]
  segments = op.attrs.get("operandSegmentSizes", [1, 1, 1, 0, 0])
  a_scale = op.operands[3] if segments[3] else None
  b_scale = op.operands[3 + segments[3]] if segments[4] else None
  kinds = (op.attrs["a_elem_type"], op.attrs["b_elem_type"])
  for kind in kinds:
    if kind not in _SUPPORTED_SCALED:
      raise NotImplementedError(f"tt.dot_scaled with element type {kind} (fp6) is not supported "
                                "by the CPU backend")
  if op.result.type.rank != 2 or not op.attrs.get("lhs_k_pack", True) or \
      not op.attrs.get("rhs_k_pack", True):
    raise NotImplementedError("tt.dot_scaled: only 2-D operands packed along K are supported "
                              "by the CPU backend")
  _multiply(lo, op, _dequantized(lo, a, a_scale, kinds[0], 1),
            _dequantized(lo, bm, b_scale, kinds[1], 0), acc, _F32)
