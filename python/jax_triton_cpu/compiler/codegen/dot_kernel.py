"""The register-blocked micro-kernel of tt.dot: C (M x N) += A @ B on SIMD registers.

A block of `rows` x `vecs` vectors of C stays in registers over the whole K loop; per step it loads
`vecs` vectors of B, broadcasts one scalar of A per row and issues rows * vecs multiply-adds. The
multiply-add is a `Step`: an FMA on the compute type, or a dot-product instruction that multiplies
`group` K elements per 32-bit lane (vdpbf16ps: 2 bf16, vpdpbusd: 4 int8), which reads B packed in
K groups (dot_pack.pack_groups) and one 32-bit group of a row of A per broadcast.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable

from llvmlite import ir as llvm

from .. import ir
from . import types as T
from .lowering import Buffer, Index, _size_of


@dataclasses.dataclass(frozen=True)
class Step:
  """acc (`lanes` accumulators) += a (broadcast) * b, over `group` K elements per lane."""
  lanes: int
  group: int
  acc: llvm.Type   # the accumulator vector
  a: llvm.Type     # the scalar loaded from a row of A (an element, or an integer of `group` ones)
  b: llvm.Type     # the vector loaded from B
  apply: Callable  # (lo, acc, a splatted to `lanes`, b) -> acc


def fma_step(compute: ir.ScalarType, lanes: int) -> Step:
  element = T.scalar_type(compute)
  vec = T.of_lanes(element, lanes)
  if compute.is_float:
    apply = lambda lo, acc, a, b: lo.call_intrinsic("fma", [a, b, acc])
  else:
    apply = lambda lo, acc, a, b: lo.builder.add(acc, lo.builder.mul(a, b))
  return Step(lanes, 1, vec, element, vec, apply)


def dpbf16_step(lanes: int = 16) -> Step:
  """vdpbf16ps (AVX512-BF16): 2 bf16 products per f32 lane, each exact, added in f32."""
  acc = llvm.VectorType(T.F32, lanes)
  pairs = llvm.VectorType(T.BF16, 2 * lanes)

  def apply(lo, acc_value, a, b):
    return lo.call_intrinsic(f"x86.avx512bf16.dpbf16ps.{32 * lanes}",
                             [acc_value, lo.builder.bitcast(b, pairs), lo.builder.bitcast(a, pairs)],
                             overload=[])
  return Step(lanes, 2, acc, T.I32, llvm.VectorType(T.I32, lanes), apply)


def vnni_step(lanes: int) -> Step:
  """vpdpbusd (AVX512-VNNI, AVX-VNNI): 4 products of an unsigned byte of B and a signed byte of A
  per i32 lane, added without saturation (wrapping, like the i32 sum they make)."""
  vec = llvm.VectorType(T.I32, lanes)
  apply = lambda lo, acc, a, b: lo.call_intrinsic(f"x86.avx512.vpdpbusd.{32 * lanes}",
                                                  [acc, b, a], overload=[])
  return Step(lanes, 4, vec, T.I32, vec, apply)


def registers(target) -> int:
  return 32 if target.vector_bits >= 512 else 16


def block_shape(target, m: int, vectors: int) -> tuple[int, int]:
  """Rows x vectors of C held in registers: the most accumulators that leave registers for the
  vectors of B and one broadcast, at most 12 rows; of equal counts, more vectors (fewer loads per
  multiply-add). AVX-512: 6 x 4; 16 registers: 6 x 2."""
  def accumulators(shape):
    return shape[0] * shape[1], shape[1]
  shapes = [(min(m, (registers(target) - v - 1) // v, 12), v) for v in (4, 2, 1) if v <= vectors]
  return max(shapes, key=accumulators)


def parts(total: int, block: int):
  """(start, count, block) covering [0, total): whole blocks, then one smaller block of the rest."""
  whole = total // block * block
  out = [(0, whole, block)] if whole else []
  if total > whole:
    out.append((whole, total - whole, total - whole))
  return out


def matmul(lo, step: Step, a: Buffer, b: Buffer, c: Buffer, batch, zero: bool, row_bias=None,
           steps=None):
  """c[batch] (+)= a[batch] @ b[batch] over `steps` K steps (default: all of b; an i32 value for a
  count known at run time), zero: c is not read, the sum starts at 0; row_bias: a buffer of M
  values subtracted from every column of their row (vpdpbusd's offset).

  Column blocks outside, row blocks inside: the K x (vecs * lanes) panel of B that a column of
  blocks reads stays in L1 while the rows of A stream by."""
  m, n = c.type.shape[-2:]
  steps = b.type.shape[-2] if steps is None else steps
  lanes = step.lanes
  rows_per_block, vecs_per_block = block_shape(lo.target, m, n // lanes)
  bld = lo.builder
  for v_start, v_count, vecs in parts(n // lanes, vecs_per_block):
    for m_start, m_count, rows in parts(m, rows_per_block):
      with lo.loop(v_count * lanes, vecs * lanes) as ni, lo.loop(m_count, rows) as mi:
        m0 = bld.add(mi, T.I32(m_start)) if m_start else mi
        n0 = bld.add(ni, T.I32(v_start * lanes)) if v_start else ni
        _block(lo, step, a, b, c, batch, m0, n0, rows, vecs, steps, zero, row_bias)


def _at(b, buf: Buffer, batch, row, col):
  dims = (row, col) if batch is None else (batch, row, col)
  return buf.address(b, Index(dims, 1))


def _block(lo, step, a, b, c, batch, m0, n0, rows, vecs, steps, zero, row_bias):
  bld = lo.builder
  lanes, group = step.lanes, step.group
  row_ids = [bld.add(m0, T.I32(i)) if i else m0 for i in range(rows)]
  col_ids = [bld.add(n0, T.I32(j * lanes)) if j else n0 for j in range(vecs)]
  slots = []
  for r in row_ids:
    bias = None
    if row_bias is not None:
      bias = T.splat(bld, bld.load(row_bias.address(bld, Index((r,), 1)), typ=T.I32), lanes)
    for col in col_ids:
      slot = lo.slot_of(step.acc)
      value = (T.constant(step.acc, 0) if zero else
               bld.load(_at(bld, c, batch, r, col), typ=step.acc, align=_size(c)))
      if bias is not None:
        value = bld.sub(value, bias)
      bld.store(value, slot.pointer)
      slots.append(slot)
  with lo.loop(steps) as k:
    k_in_a = bld.mul(k, T.I32(group)) if group > 1 else k
    bs = [bld.load(_at(bld, b, batch, k, bld.mul(col, T.I32(group)) if group > 1 else col),
                   typ=step.b, align=_size(b)) for col in col_ids]
    for i, r in enumerate(row_ids):
      scalar = bld.load(_at(bld, a, batch, r, k_in_a), typ=step.a, align=_size(a))
      av = T.splat(bld, scalar, lanes)
      for j in range(vecs):
        s = slots[i * vecs + j]
        bld.store(step.apply(lo, bld.load(s.pointer, typ=step.acc), av, bs[j]), s.pointer)
  for i, r in enumerate(row_ids):
    for j, col in enumerate(col_ids):
      s = slots[i * vecs + j]
      bld.store(bld.load(s.pointer, typ=step.acc), _at(bld, c, batch, r, col), align=_size(c))


def _size(buf: Buffer) -> int:
  return _size_of(buf.element)
