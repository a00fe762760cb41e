"""tt.dot: C = A @ B + acc, 2-D or batched 3-D, as a register-blocked FMA micro-kernel.

The operands are packed into stack buffers in the compute type (f32 for f16 / bf16 / f32 / tf32
inputs, f64, or i32 for int8), which also fuses their loads and conversions. The kernel keeps a
block of MR rows x NV vectors of C in registers over the whole K loop: per k it loads NV vectors of
B, broadcasts MR scalars of A, and issues MR * NV FMAs.
"""
from __future__ import annotations

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
  result = op.result
  result_type = ir.element_type(result.type)
  compute = _compute_type(result_type, [ir.element_type(a.type), ir.element_type(bm.type)])
  packed_a, packed_b = _packed(lo, a, compute), _packed(lo, bm, compute)
  c = _packed(lo, acc, compute)
  if c is lo.env.get(acc) and not _accumulates_in_place(acc, result):
    copy = lo.new_buffer(c.type)  # the accumulator operand's own buffer must stay as it is
    lo.memcpy(copy.pointer, c.pointer, c.nbytes)
    c = copy
  lo.count_work(result.type.numel * a.type.shape[-1])
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
