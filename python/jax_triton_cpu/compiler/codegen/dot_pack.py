"""tt.dot operands packed into stack buffers as they are loaded (the lazy tl.load is evaluated
straight into the buffer, converted to the element type the kernel multiplies).

- A (..., M, K) -> (..., M, Kp): rows, K padded with zeros to a multiple of `group`.
- B (..., K, N) -> (..., Kp / group, N * group): the `group` consecutive K elements of each column
  side by side, the layout of the dot-product instructions (vdpbf16ps, vpdpbusd, AMX tiles), whose
  one 32-bit lane multiplies `group` K elements. group == 1 is plain row-major. In column panels
  (`Panels`): the columns that one block of the kernel reads, all K rows of them, contiguous.
"""
from __future__ import annotations

from llvmlite import ir as llvm

from .. import ir
from . import types as T
from .control_flow import step_of
from .elementwise import convert, converts_bf16
from .lowering import Buffer, Index, Shifted, _size_of
from .memory import _load_operands, chunk_address, rows_of


class Panels(Buffer):
  """B packed as column panels of `width` columns: panel p holds columns [p * width, (p + 1) *
  width) of every K group, one after another, so the kernel's walk down K through one block of
  columns reads consecutive addresses. Row-major rows of a large B are a power of two apart and
  pile into a few L1 sets; a deep panel of them would not stay in L1."""

  def __init__(self, buf: Buffer, width: int, group: int):
    super().__init__(buf.pointer, buf.type)
    self.row = width * group  # elements of one K group of one panel

  def address(self, builder, index: Index):
    *batch, g, col = index.dims
    groups, columns = self.type.shape[-2:]
    b = builder
    panel, within = b.udiv(col, T.I32(self.row)), b.urem(col, T.I32(self.row))
    flat = b.add(b.mul(b.add(b.mul(panel, T.I32(groups)), g), T.I32(self.row)), within)
    if batch:
      flat = b.add(flat, b.mul(batch[0], T.I32(groups * columns)))
    return b.gep(self.pointer, [flat], source_etype=self.element)


def new_b(lo, shape, element: ir.ScalarType, group: int, panel: int | None) -> Buffer:
  """A buffer for packed B of `shape` (..., groups, N * group), in panels of `panel` columns when
  they split N."""
  buf = lo.new_buffer(ir.TensorType(shape, element))
  columns = shape[-1] // group
  return Panels(buf, panel, group) if panel and panel < columns and columns % panel == 0 else buf


class Window:
  """Part of a buffer from `at` (an i32) on along one dimension: where one loop iteration's
  operand goes in the buffer that a deferred dot fills over several iterations."""

  def __init__(self, buf: Buffer, axis: int, at):
    self.buf, self.axis, self.at = buf, axis, at
    self.element = buf.element

  def store(self, builder, index: Index, value):
    dims = list(index.dims)
    dims[self.axis] = builder.add(dims[self.axis], self.at)
    self.buf.store(builder, Index(tuple(dims), index.lanes), value)


def _destination(lo, shape, element, into, axis, at, group=1, panel=None):
  return new_b(lo, shape, element, group, panel) if into is None else Window(into, axis, at)


def _negative_zero(buf) -> int | float:
  """What K padding of A holds: -0.0 for floats, whose products (-0 x b) add nothing to any sum,
  a signed zero included; 0 for integers."""
  if buf.element == T.I16:  # bf16 bits
    return 0x8000
  return -0.0 if isinstance(buf.element, (llvm.HalfType, llvm.FloatType, llvm.DoubleType)) else 0


def pack_rows(lo, v: ir.Value, element: ir.ScalarType, group: int = 1, into: Buffer = None,
              at=None, axis: int = -1, panel: int | None = None) -> Buffer:
  """The A operand: `v` in a (..., M, Kp) buffer of `element`, or into `into` from `at` on along
  `axis` (A's columns; B's rows for a B packed as plain rows, in panels of `panel` columns)."""
  source = ir.element_type(v.type)
  *outer, k = v.type.shape
  kp = -(-k // group) * group
  if into is None and kp == k and source == element and isinstance(lo.env.get(v), Buffer):
    return lo.env[v]
  buf = _destination(lo, (*outer, kp), element, into, axis, at, 1, panel)
  lanes = _copy_lanes(lo, v.type, element)
  with lo.loop_nest(v.type.shape, lanes) as index:
    prefetch_next(lo, v, index)
    value = T.splat(lo.builder, lo.evaluate(v, index), index.lanes)
    buf.store(lo.builder, index, convert(lo.builder, value, source, element, converts_bf16(lo)))
  if kp > k:
    pad = T.constant(T.of_lanes(buf.element, kp - k), _negative_zero(buf))
    with lo.loop_nest((*outer, 1), 1) as index:
      buf.store(lo.builder, Index(index.dims[:-1] + (T.I32(k),), kp - k), pad)
  return buf if into is None else into


def _copy_lanes(lo, tensor_type, element: ir.ScalarType) -> int:
  """Elements per chunk of a packing copy: a register of the narrower of source and packed type
  (bf16 / int8 rows move 32 / 64 at a time, where lanes_for's 32-bit floor would take 16)."""
  if element.bits > 16 or ir.element_type(tensor_type).bits > 16:
    return lo.lanes_for(tensor_type, ir.TensorType(tensor_type.shape, element))
  bits = max(element.bits, ir.element_type(tensor_type).bits)
  return max(1, min(tensor_type.shape[-1], lo.target.vector_bits // bits))


def pack_groups(lo, v: ir.Value, element: ir.ScalarType, group: int, lanes: int,
                flip_sign: bool = False, into: Buffer = None, at=None,
                panel: int | None = None) -> Buffer:
  """The B operand: `v` in a (..., Kp / group, N * group) buffer of `element` in panels of `panel`
  columns (or into `into` from group row `at` on), chunks of `lanes` columns at a time; flip_sign
  stores x + 128 for int8 (vpdpbusd multiplies unsigned bytes)."""
  *outer, k, n = v.type.shape
  lanes = min(lanes, n)
  groups = -(-k // group)
  square = _square(lanes, group, k, n, element)
  # columns per chunk of K rows: a register of them (a chunk may span panels; _store_group
  # splits its store)
  chunk = _copy_lanes(lo, v.type, element)
  if panel and chunk % panel:
    chunk = min(chunk, panel)
  read = _column_reader(lo, v, square * group) if square and not outer else None
  if read is not None:  # B's columns are contiguous (k^T, tl.trans(x)): transpose as loaded
    buf = _destination(lo, (groups, n * group), element, into, -2, at, group, panel)
    _pack_columns(lo, v, buf, read, square, group, element, flip_sign)
    return buf if into is None else into
  if group == 1 and not flip_sign:
    return pack_rows(lo, v, element, into=into, at=at, axis=-2, panel=panel)
  buf = _destination(lo, (*outer, groups, n * group), element, into, -2, at, group, panel)
  full = k // group
  if full:
    with lo.loop_nest((*outer, full, n), chunk) as index:
      *batch, g, col = index.dims
      first = lo.builder.mul(g, T.I32(group))
      _store_group(lo, v, buf, batch, g, col, first, group, k, element, flip_sign, chunk,
                   panel=panel)
  if groups > full:  # the last, partial group: rows past K are zeros
    with lo.loop_nest((*outer, 1, n), chunk) as index:
      *batch, _, col = index.dims
      _store_group(lo, v, buf, batch, T.I32(full), col, T.I32(full * group), group, k, element,
                   flip_sign, chunk, rows=k - full * group, panel=panel)
  return buf if into is None else into


def _store_group(lo, v, buf, batch, g, col, first_row, group, k, element, flip_sign, lanes,
                 rows=None, panel=None):
  b = lo.builder
  source = ir.element_type(v.type)
  parts = []
  for r in range(group):
    if rows is not None and r >= rows:
      parts.append(T.constant(T.of_lanes(buf.element, lanes), 0))
      continue
    row = b.add(first_row, T.I32(r)) if r else first_row
    at = Index((*batch, row, col), lanes)
    prefetch_next(lo, v, at)
    value = T.splat(b, lo.evaluate(v, at), lanes)
    parts.append(convert(b, value, source, element, converts_bf16(lo)))
  packed = interleave(b, parts)
  if flip_sign:
    packed = b.xor(packed, T.constant(packed.type, 0x80))
  piece = min(lanes, panel or lanes)  # columns that are consecutive in `buf`
  for start in range(0, lanes, piece):
    part = packed if piece == lanes else b.shuffle_vector(packed, packed, llvm.Constant(
        llvm.VectorType(T.I32, piece * group),
        [T.I32(start * group + i) for i in range(piece * group)]))
    column = b.add(col, T.I32(start)) if start else col
    buf.store(b, Index((*batch, g, b.mul(column, T.I32(group))), piece * group), part)


def interleave(b, parts):
  """[x0[0], x1[0], ..., x0[1], x1[1], ...] of 1, 2 or 4 integer vectors of one type (4: two rounds
  of pairs, the second on pairs taken as one wider integer, which shuffles better)."""
  if len(parts) == 4:
    low, high = T.interleave(b, parts[:2]), T.interleave(b, parts[2:])
    wide = llvm.IntType(2 * T.element(low.type).width)
    pairs = llvm.VectorType(wide, T.lanes(low) // 2)
    joined = T.interleave(b, [b.bitcast(low, pairs), b.bitcast(high, pairs)])
    return b.bitcast(joined, llvm.VectorType(T.element(low.type), 2 * T.lanes(low)))
  return T.interleave(b, parts)


def prefetch_next(lo, v: ir.Value, index: Index):
  """For `tl.load(p)` with p moved by a uniform step each loop iteration (the K loop's
  `p += BLOCK_K * stride`): prefetches this chunk's address in the next iteration into L2. Rows of
  a large matrix are pages apart, too many streams for the hardware prefetchers."""
  op = v.op
  if op is None or op.name != "tt.load":
    return
  held = lo.env.get(op.operands[0])
  if not isinstance(held, Shifted) or held.pointee is None:
    return
  b = lo.builder
  if rows_of(lo, op.operands[0]) is not None and index.lanes > 1:
    pointer = chunk_address(lo, op.operands[0], index)  # (a wrong guess only wastes a prefetch)
  else:
    pointer = lo.evaluate(op.operands[0], index)
    if T.lanes(pointer) > 1:
      pointer = b.extract_element(pointer, T.I32(0))
  ahead = b.gep(pointer, [step_of(lo, held)], source_etype=held.pointee)
  lo.call_intrinsic("prefetch", [ahead, T.I32(0), T.I32(2), T.I32(1)], ret=llvm.VoidType(),
                    overload=[T.PTR])


# ---- B from its columns -------------------------------------------------------------------------

def _square(lanes: int, group: int, k: int, n: int, element: ir.ScalarType) -> int:
  """The side of the blocks of 32-bit lanes transposed in registers (0: none fit): each lane holds
  `group` K elements of one column."""
  if element.bits * group != 32:
    return 0
  side = lanes
  while side > 1 and (k % (side * group) or n % side):
    side //= 2
  return side if side >= 4 else 0


def _column_reader(lo, v: ir.Value, count: int):
  """read(n, k0): `count` consecutive K elements of column n of B, as one vector, for B = tl.trans(x)
  or a load whose pointers run along K (and whose mask and `other` do not change along it); None
  for any other B."""
  op = v.op
  if op is None or v.type.rank != 2:
    return None
  if op.name == "tt.trans" and list(op.attrs["order"]) == [1, 0]:
    source = op.operands[0]
    return lambda n, k0: T.splat(lo.builder, lo.evaluate(source, Index((n, k0), count)), count)
  if op.name != "tt.load":
    return None
  pointer, mask, other = _load_operands(op)
  runs = [lo.axis[pointer].contiguity[0]] + [lo.axis[x].constancy[0] for x in (mask, other)
                                             if x is not None and ir.is_tensor(x.type)]
  if any(run % count for run in runs):
    return None
  element = T.memory_type(ir.element_type(v.type))
  vec = llvm.VectorType(element, count)

  def read(n, k0):
    b = lo.builder
    at = Index((k0, n), 1)
    first = lo.evaluate(pointer, at)
    if mask is None:
      return b.load(first, typ=vec, align=_size_of(element))
    passthru = T.splat(b, lo.evaluate(other, at), count) if other is not None else \
        T.constant(vec, 0)
    on = T.splat(b, lo.evaluate(mask, at), count)
    return lo.call_intrinsic("masked.load", [first, T.I32(_size_of(element)), on, passthru],
                             ret=vec, overload=[vec, T.PTR])
  return read


def _pack_columns(lo, v, buf, read, side, group, element, flip_sign):
  """Blocks of side x side 32-bit lanes: `side` columns of B read as vectors along K, transposed
  in registers into `side` rows of the packed layout."""
  b = lo.builder
  k, n = v.type.shape
  source = ir.element_type(v.type)
  lane = llvm.VectorType(T.I32, side)
  lo.count_work(k * n)
  with lo.loop(k, side * group) as k0, lo.loop(n, side) as n0:
    columns = []
    for j in range(side):
      column = convert(b, read(b.add(n0, T.I32(j)) if j else n0, k0), source, element,
                       converts_bf16(lo))
      columns.append(b.bitcast(column, lane))
    g0 = b.udiv(k0, T.I32(group)) if group > 1 else k0
    for j, row in enumerate(transpose(b, columns)):
      if flip_sign:
        row = b.xor(row, T.constant(lane, 0x80808080))
      packed = b.bitcast(row, llvm.VectorType(buf.element, side * group))
      buf.store(b, Index((b.add(g0, T.I32(j)) if j else g0, b.mul(n0, T.I32(group))),
                         side * group), packed)


def transpose(b, rows):
  """The transpose of a square of vectors (len(rows) lanes each): log2 rounds of interleaving
  the first half of the vectors with the second half."""
  side = len(rows)
  half = side // 2
  low = llvm.Constant(llvm.VectorType(T.I32, side), [i // 2 + (side if i % 2 else 0)
                                                     for i in range(side)])
  high = llvm.Constant(llvm.VectorType(T.I32, side), [half + i // 2 + (side if i % 2 else 0)
                                                      for i in range(side)])
  for _ in range(side.bit_length() - 1):
    mixed = []
    for i in range(half):
      mixed += [b.shuffle_vector(rows[i], rows[i + half], low),
                b.shuffle_vector(rows[i], rows[i + half], high)]
    rows = mixed
  return rows
