"""Reductions (tt.reduce) and scans (tt.scan) with any combine region, over any axis.

Along the last axis a chunk of lanes is combined vector-wise, then folded by halves; along another
axis the result is computed for a chunk of the last dimension at once, one step per element of the
reduced axis. Inputs are evaluated lazily, so `tl.sum(x * y, 1)` reads x and y once.
"""
from __future__ import annotations

from llvmlite import ir as llvm

from .. import ir
from . import types as T
from .lowering import Index
from .registry import STATEMENT, register


def _at(index: Index, axis: int, position):
  """`index` of a tensor without `axis`, with `position` inserted for that axis."""
  return Index(index.dims[:axis] + (position,) + index.dims[axis:], index.lanes)


def _carry(lo, values):
  """Slots holding values across a loop (promoted to registers by LLVM)."""
  slots = [lo.slot_of(v.type) for v in values]
  for slot, v in zip(slots, values):
    lo.builder.store(v, slot.pointer)
  return slots


def _lane_list(lanes) -> llvm.Constant:
  return llvm.Constant(llvm.VectorType(T.I32, len(lanes)), [T.I32(i) for i in lanes])


def _fold_lanes(lo, combine, values, down_to: int = 1):
  """Combines the lanes of vectors pairwise by halves (lane i with lane i + n/2), down to vectors
  of `down_to` lanes, or scalars."""
  b = lo.builder
  n = T.lanes(values[0])
  while n > max(2, down_to):
    half = n // 2
    low, high = _lane_list(range(half)), _lane_list(range(half, n))
    values = lo.apply_region(combine, [b.shuffle_vector(v, v, low) for v in values] +
                             [b.shuffle_vector(v, v, high) for v in values])
    n = half
  if n == 2 and down_to == 1:
    values = lo.apply_region(combine, [b.extract_element(v, T.I32(0)) for v in values] +
                             [b.extract_element(v, T.I32(1)) for v in values])
  return values


class _RowFolder:
  """Folds n rows, each given as vectors of n lanes, into vectors whose lane r is row r folded by
  halves: the combines of _fold_lanes on each row, in its order, but n - 1 of them (and 2(n - 1)
  two-vector shuffles) for the n rows instead of n log2(n) each. Rows come one at a time; a merge
  of two items of k rows (n / k lanes each) keeps, per row, lane i combined with lane i + n/2k,
  so at most log2(n) + 1 items are live."""

  def __init__(self, lo, combine, n: int):
    self.lo, self.combine, self.n = lo, combine, n
    self.items = []  # (level: the item holds 2^level rows, values)

  def push(self, values):
    level = 0
    while self.items and self.items[-1][0] == level:
      values = self._merge(self.items.pop()[1], values, level)
      level += 1
    self.items.append((level, values))

  def _merge(self, first, second, level: int):
    b, n = self.lo.builder, self.n
    width = n >> level  # lanes per row in each item
    half = width // 2
    starts = [row * width for row in range(1 << level)]
    # lanes of (first, second) as one 2n-lane vector: each row's low halves, then its high halves
    low, high = (_lane_list([base + s + offset + i for base in (0, n) for s in starts
                             for i in range(half)]) for offset in (0, half))
    pairs = list(zip(first, second))
    return self.lo.apply_region(self.combine, [b.shuffle_vector(x, y, low) for x, y in pairs] +
                                [b.shuffle_vector(x, y, high) for x, y in pairs])

  def result(self):
    (level, values), = self.items
    assert 1 << level == self.n
    return values


def row_lanes(lo, op) -> int:
  """Lanes per chunk of a reduction along the last axis: four registers' worth, so that four
  independent accumulator chains hide the latency of the combine (a max with its NaN fix-up, a
  sum) that one chain would be bound by."""
  return min(op.operands[0].type.shape[-1], 4 * lo.lanes_for(*[v.type for v in op.operands]))


def _reduce_row(lo, ops, lanes: int, chunk, down_to: int = 1):
  """Reduces rows of `ops`' inputs along the last axis in one loop; chunk(position) gives each
  op's inputs at that chunk of the row. Returns each op's scalars (or vectors of `down_to` lanes,
  for a _RowFolder)."""
  b = lo.builder
  size = ops[0].operands[0].type.shape[-1]
  accumulators = chunk(T.I32(0))
  if size > lanes:
    slots = [_carry(lo, a) for a in accumulators]
    with lo.loop(size - lanes, lanes) as j:
      for op, op_slots, values in zip(ops, slots, chunk(b.add(j, T.I32(lanes)))):
        current = [b.load(s.pointer, typ=s.llvm_type) for s in op_slots]
        for s, v in zip(op_slots, lo.apply_region(op.regions[0].block, current + values)):
          b.store(v, s.pointer)
    accumulators = [[b.load(s.pointer, typ=s.llvm_type) for s in op_slots] for op_slots in slots]
  return [_fold_lanes(lo, op.regions[0].block, a, down_to) for op, a in zip(ops, accumulators)]


def _row_group(lo, ops, shape: tuple, lanes: int) -> int:
  """How many rows a _RowFolder folds together (1: none): a register's lanes of rows that are one
  chunk long (where the fold is most of a row's combines)."""
  n = min(lanes, lo.lanes_for(*[v.type for op in ops for v in op.operands]))
  if len(shape) < 2 or shape[-1] > lanes or n < 2 or n & (n - 1) or shape[-2] % n:
    return 1
  return n


def _reduce_rows(lo, ops, shape: tuple, lanes: int, chunk_of, outputs):
  """Reduces every row of `shape` (the inputs' shape) along its last axis into `outputs` (per op,
  buffers of shape[:-1]); chunk_of(row) is _reduce_row's `chunk` for the row at `row` (the
  indices of all but the last axis). Rows go in groups through a _RowFolder where they fit."""
  b = lo.builder
  group = _row_group(lo, ops, shape, lanes)
  with lo.loop_nest(shape[:-1], group) as index:
    if group == 1:
      results = _reduce_row(lo, ops, lanes, chunk_of(index.dims))
    else:
      *outer, first = index.dims
      folders = [_RowFolder(lo, op.regions[0].block, group) for op in ops]
      for r in range(group):
        row = (*outer, b.add(first, T.I32(r)) if r else first)
        for folder, values in zip(folders, _reduce_row(lo, ops, lanes, chunk_of(row), group)):
          folder.push(values)
      results = [folder.result() for folder in folders]
    for buffers, values in zip(outputs, results):
      for buf, v in zip(buffers, values):
        buf.store(b, index, v)


def _inputs_at(lo, op, index: Index):
  return [T.splat(lo.builder, lo.evaluate(v, index), index.lanes) for v in op.operands]


def _own_chunks(lo, op, lanes: int):
  """chunk_of (see _reduce_rows) for a reduction of its own inputs."""
  return lambda prefix: lambda position: [
      _inputs_at(lo, op, Index(tuple(prefix) + (position,), lanes))]


def _reduce_last_axis(lo, op, prefix: tuple):
  """Reduces the inputs along their last axis at the outer position `prefix` -> scalars."""
  lanes = row_lanes(lo, op)
  (values,) = _reduce_row(lo, [op], lanes, _own_chunks(lo, op, lanes)(prefix))
  return values


def compute_with_reductions(lo, value: ir.Value, dest, ops):
  """Computes `value` into the buffer `dest` and, in the same loop, the reductions `ops` along the
  last axis of elementwise functions of it (Plan.fused_reductions) that take chunks of
  row_lanes(ops[0]) lanes; their results go to lo.env, where their own rule finds them. The order
  of the combines is that of a separate reduction."""
  b = lo.builder
  lanes = row_lanes(lo, ops[0])
  ops = [op for op in ops if row_lanes(lo, op) == lanes]
  shape = value.type.shape

  def chunk_of(prefix):
    def chunk(position):
      index = Index(tuple(prefix) + (position,), lanes)
      dest.store(b, index, T.splat(b, lo.evaluate(value, index), lanes))
      return [_inputs_at(lo, op, index) for op in ops]  # reads `value`'s chunk from the memo
    return chunk

  lo.count_work(value.type.numel)
  if len(shape) == 1:
    for op, values in zip(ops, _reduce_row(lo, ops, lanes, chunk_of(()))):
      lo.env.update(zip(op.results, values))
    return
  outputs = [[lo.new_buffer(r.type) for r in op.results] for op in ops]
  _reduce_rows(lo, ops, shape, lanes, chunk_of, outputs)
  for op, buffers in zip(ops, outputs):
    lo.env.update(zip(op.results, buffers))


def _sequential(lo, op, index: Index, axis: int, emit=None):
  """Combines the inputs along `axis` (not the last) at the chunk `index` of the other dims; calls
  emit(k, values) after each step (for scans); returns the final values."""
  b = lo.builder
  inputs = op.operands
  combine = op.regions[0].block
  size = inputs[0].type.shape[axis]
  reverse = op.attrs.get("reverse", False)
  start = T.I32(size - 1 if reverse else 0)
  first = [T.splat(b, lo.evaluate(v, _at(index, axis, start)), index.lanes) for v in inputs]
  if emit:
    emit(start, first)
  if size == 1:
    return first
  slots = _carry(lo, first)
  with lo.loop(size - 1) as j:
    k = b.sub(T.I32(size - 2), j) if reverse else b.add(j, T.I32(1))
    step = [T.splat(b, lo.evaluate(v, _at(index, axis, k)), index.lanes) for v in inputs]
    current = [b.load(s.pointer, typ=s.llvm_type) for s in slots]
    new = lo.apply_region(combine, current + step)
    for s, v in zip(slots, new):
      b.store(v, s.pointer)
    if emit:
      emit(k, new)
  return [b.load(s.pointer, typ=s.llvm_type) for s in slots]


@register(STATEMENT, "tt.reduce")
def _reduce(lo, op):
  if op.results[0] in lo.env:
    return  # computed with its input (compute_with_reductions)
  axis = op.attrs["axis"]
  shape = op.operands[0].type.shape
  if len(shape) == 1:
    for r, value in zip(op.results, _reduce_last_axis(lo, op, ())):
      lo.env[r] = value
    return
  outputs = [lo.new_buffer(r.type) for r in op.results]
  out_shape = op.results[0].type.shape
  if axis == len(shape) - 1:
    lanes = row_lanes(lo, op)
    _reduce_rows(lo, [op], shape, lanes, _own_chunks(lo, op, lanes), [outputs])
  else:
    with lo.loop_nest(out_shape, lo.lanes_for(*[v.type for v in op.operands])) as index:
      for buf, value in zip(outputs, _sequential(lo, op, index, axis)):
        buf.store(lo.builder, index, value)
  for r, buf in zip(op.results, outputs):
    lo.env[r] = buf


@register(STATEMENT, "tt.scan")
def _scan(lo, op):
  axis = op.attrs["axis"]
  shape = op.operands[0].type.shape
  outputs = [lo.new_buffer(r.type) for r in op.results]
  if axis == len(shape) - 1:
    # Along the last axis: a sequential loop per row (the row is the scan's dependency chain).
    outer = shape[:-1]
    lanes = 1
    rows = ir.TensorType(outer + (1,), op.operands[0].type.element)
    with lo.loop_nest(rows.shape, 1) as index:
      prefix = index.dims[:-1]

      def emit(k, values):
        for buf, v in zip(outputs, values):
          buf.store(lo.builder, Index(prefix + (k,), lanes), v)
      _sequential(lo, op, Index(prefix, lanes), axis, emit)
  else:
    inner = shape[:axis] + shape[axis + 1:]
    with lo.loop_nest(inner, lo.lanes_for(*[v.type for v in op.operands])) as index:
      def emit(k, values):
        for buf, v in zip(outputs, values):
          buf.store(lo.builder, _at(index, axis, k), v)
      _sequential(lo, op, index, axis, emit)
  for r, buf in zip(op.results, outputs):
    lo.env[r] = buf
