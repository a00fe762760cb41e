"""tt.dot: C = A @ B + acc, 2-D or batched 3-D. Chooses how by the operand types and the target:

- bf16 x bf16 -> f32: AMX tiles (tdpbf16ps) where the target has AMX-BF16, else vdpbf16ps
  (AVX512-BF16), else FMA on f32;
- int8 x int8 -> i32: AMX tiles (tdpbssd) with AMX-INT8, else vpdpbusd (AVX512-VNNI / AVX-VNNI),
  else i32 multiply-adds;
- anything else: FMA in the compute type (f32 for f16 / bf16 / fp8 / f32 / tf32 inputs, f64).

Every method accumulates in the compute type, as Triton does (f32 for float inputs). bf16 products
are exact in f32, so the bf16 instructions give the widened FMA result up to the order of the
additions, except that they treat denormal inputs and results as zero. The operands are packed as
they are loaded (dot_pack); the register-blocked kernel is dot_kernel, the tile kernel dot_amx.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable

from .. import ir
from . import dot_amx, dot_kernel, types as T
from .dot_pack import new_b, pack_groups, pack_rows
from .elementwise import convert
from .lowering import Buffer, Index
from .registry import STATEMENT, register

F32, F64, I32, I64 = (ir.ScalarType(n) for n in ("f32", "f64", "i32", "i64"))
BF16, I8 = ir.ScalarType("bf16"), ir.ScalarType("i8")


@dataclasses.dataclass(frozen=True)
class Method:
  name: str
  compute: ir.ScalarType  # the accumulator's type
  operand: ir.ScalarType  # what the packed A and B hold
  group: int              # K elements one lane multiplies per instruction (B's packing)
  lanes: int              # columns of B per packed chunk
  emit: Callable          # (lo, a, b, c, batch, zero) on the packed buffers
  unsigned_b: bool = False  # B stored as x + 128 (vpdpbusd), corrected by A's row sums
  panel: int | None = None  # columns of a panel of packed B (what one block of the kernel reads)


def _compute_type(result: ir.ScalarType, inputs) -> ir.ScalarType:
  if result.is_int:
    return I32 if result.bits <= 32 else I64
  if result.name == "f64" or any(t.name == "f64" for t in inputs):
    return F64
  return F32


def _lanes(n: int, most: int) -> int:
  """The widest power-of-two vector of at most `most` lanes that divides n."""
  lanes = 1
  while lanes * 2 <= most and n % (lanes * 2) == 0:
    lanes *= 2
  return lanes


def _registers(name, compute, operand, step: dot_kernel.Step, unsigned_b=False) -> Method:
  def emit(lo, a, b, c, batch, zero, steps=None, block_k=None):
    bias = _row_offsets(lo, a, batch, steps, block_k) if unsigned_b else None
    dot_kernel.matmul(lo, step, a, b, c, batch, zero, bias, steps)
  return Method(name, compute, operand, step.group, step.lanes, emit, unsigned_b)


def choose(target, a_type, b_type, result_type, shape) -> Method:
  """The fastest method the target has for this dot, shape (M, N, K), and its panels of B."""
  method = _instructions(target, a_type, b_type, result_type, shape)
  m, n, _ = shape
  if method.name.startswith("amx"):
    return dataclasses.replace(method, panel=dot_amx.ROWS)
  vecs = dot_kernel.block_shape(target, m, n // method.lanes)[1]
  return dataclasses.replace(method, panel=vecs * method.lanes)


def _instructions(target, a_type, b_type, result_type, shape) -> Method:
  m, n, k = shape
  compute = _compute_type(result_type, [a_type, b_type])
  inputs = (a_type.name, b_type.name)
  if inputs == ("i8", "i8") and compute == I32:
    if dot_amx.fits(target, "amx-int8", m, n, k):
      return Method("amx-int8", I32, I8, 4, 16, dot_amx.emitter("amx-int8"))
    lanes = _lanes(n, 16 if target.vector_bits >= 512 else 8)
    vnni = (target.has("avx512vnni", "avx512vl") and target.vector_bits >= 512) or \
        (target.has("avxvnni") and lanes <= 8)
    if vnni and lanes >= 4:
      return _registers("vnni", I32, I8, dot_kernel.vnni_step(lanes), unsigned_b=True)
  if inputs == ("bf16", "bf16") and compute == F32:
    if dot_amx.fits(target, "amx-bf16", m, n, k):
      return Method("amx-bf16", F32, BF16, 2, 16, dot_amx.emitter("amx-bf16"))
    lanes = _lanes(n, 16)
    if target.has("avx512bf16", "avx512vl") and target.vector_bits >= 512 and lanes >= 4:
      return _registers("bf16-dp", F32, BF16, dot_kernel.dpbf16_step(lanes))
  lanes = _lanes(n, max(1, target.vector_bits // compute.bits))
  return _registers("fma", compute, compute, dot_kernel.fma_step(compute, lanes))


def _row_offsets(lo, a: Buffer, batch, steps=None, block_k=None) -> Buffer:
  """128 * the sum of each row of A (int8): what B stored as x + 128 adds to each row of C. Over
  all of A, or (deferred dots) its first `steps` K quads, a multiple of block_k / 4."""
  b = lo.builder
  m, kp = a.type.shape[-2:]
  sums = lo.new_buffer(ir.TensorType((m,), I32))
  width = _lanes(block_k or kp, 64)
  chunks = kp // width if steps is None else b.udiv(b.mul(steps, T.I32(4)), T.I32(width))
  with lo.loop(m) as row:
    total = lo.slot_of(T.of_lanes(T.I32, width))
    b.store(T.constant(total.llvm_type, 0), total.pointer)
    with lo.loop(chunks) as chunk_index:
      k = b.mul(chunk_index, T.I32(width))
      dims = (row, k) if batch is None else (batch, row, k)
      chunk = b.load(a.address(b, Index(dims, 1)), typ=T.of_lanes(T.I8, width), align=1)
      wide = b.sext(chunk, total.llvm_type)
      b.store(b.add(b.load(total.pointer, typ=total.llvm_type), wide), total.pointer)
    value = b.load(total.pointer, typ=total.llvm_type)
    if width > 1:
      value = lo.call_intrinsic("vector.reduce.add", [value], ret=T.I32, overload=[value.type])
    b.store(b.mul(value, T.I32(128)), b.gep(sums.pointer, [row], source_etype=T.I32), align=4)
  return sums


def _is_zero(v: ir.Value) -> bool:
  """A splat constant +0 (the accumulator of `tl.dot(a, b)`): the sum may start from zero."""
  op = v.op
  if op is None or op.name != "arith.constant" or not ir.is_tensor(v.type):
    return False
  value = op.attrs.get("value")
  # (the reader gives float splats as numpy scalars: np.float32 is a numbers.Real, not a float)
  return isinstance(value, numbers.Real) and value == 0 and math.copysign(1.0, value) > 0


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


def _updated_in_place(lo, acc: ir.Value, result: ir.Value, compute) -> ir.Value | None:
  """The value a loop carries that this dot's accumulator may be computed over, in its buffer:
  `acc = tl.dot(a, b, acc * alpha[:, None])` (flash attention), where the accumulator is a
  lane-wise function of the carried acc, which nothing else reads, and the result goes back into
  its slot. The dot then sums into that slot and the loop copies nothing."""
  if len(result.uses) != 1 or len(acc.uses) != 1 or ir.element_type(result.type) != compute:
    return None
  terminator = result.uses[0]
  loop = terminator.parent.parent.parent if terminator.parent is not None else None
  if terminator.name != "scf.yield" or loop is None or loop.name != "scf.for":
    return None
  carried = terminator.parent.args[1 + terminator.operands.index(result)]
  held = lo.env.get(carried)
  if (len(carried.uses) != 1 or terminator.operands.count(result) != 1 or
      not isinstance(held, Buffer) or held.type != result.type or
      acc in lo.plan.materialized or not lo.plan.lane_wise_of(acc, carried)):
    return None
  return carried


def _accumulator(lo, acc: ir.Value, result: ir.Value, compute: ir.ScalarType):
  """The buffer C is summed into, and whether it starts at zero (then it is not read)."""
  if _is_zero(acc):
    return lo.new_buffer(ir.TensorType(result.type.shape, compute)), True
  carried = _updated_in_place(lo, acc, result, compute)
  if carried is not None:
    lo.compute_into(acc, lo.env[carried])
    return lo.env[carried], False
  c = pack_rows(lo, acc, compute)
  if c is lo.env.get(acc) and not _accumulates_in_place(acc, result):
    copy = lo.new_buffer(c.type)  # the accumulator operand's own buffer must stay as it is
    lo.memcpy(copy.pointer, c.pointer, c.nbytes)
    c = copy
  return c, False


# K elements a deferred dot multiplies at once: dot_kernel's panels of B stay in L1; AMX keeps tiles
# of C in its registers across them, and 256 bf16 / 512 int8 (16 KiB for 32 rows of A) keep the A
# rows of a tile block in L1 while the B panels stream past: 3-9 % faster than twice that on a
# 16-core Emerald Rapids (bf16 and int8 matmuls, 1 and 16 threads); half of it gave 0.88x-1.08x
# (reading and writing C's tiles then costs as much as 8 tile multiplies).
DEFERRED_K = {"fma": 128, "bf16-dp": 256, "vnni": 512, "amx-bf16": 256, "amx-int8": 512}
DEFERRED_BYTES = 1 << 20  # at most this much stack for the deferred operands of one dot


def _k_loop(op: ir.Op, acc: ir.Value, result: ir.Value) -> ir.Op | None:
  """The scf.for whose body runs `acc = tl.dot(a, b, acc)` once per iteration with nothing else
  reading acc (the K loop of a tutorial matmul), or None."""
  if not _accumulates_in_place(acc, result) or op.parent is not acc.owner:
    return None
  return acc.owner.parent.parent


def _deferral(method: Method, loop, shape, kp: int) -> int:
  """How many iterations' operands a dot in `loop` gathers before multiplying (1: none)."""
  if loop is None or method.name not in DEFERRED_K:
    return 1
  if method.name.startswith("amx") and kp % dot_amx.k_tile(method.name, 1 << 20):
    return 1  # the gathered K must be whole tile steps
  *outer, m, n = shape
  per_iteration = math.prod(outer) * (m + n) * kp * method.operand.bits // 8
  iterations = min(DEFERRED_K[method.name] // kp, DEFERRED_BYTES // per_iteration)
  trips = _trip_count(loop)
  if trips is not None:
    iterations = min(iterations, trips)
  return max(1, iterations)


def _trip_count(loop) -> int | None:
  """The loop's trip count when its bounds are constants."""
  bounds = [o.op.attrs.get("value") if o.op is not None and o.op.name == "arith.constant" else None
            for o in loop.operands[:3]]
  if any(not isinstance(x, int) for x in bounds) or bounds[2] <= 0:
    return None
  lower, upper, step = bounds
  return max(0, -(-(upper - lower) // step))


def _is_last_iteration(lo, loop):
  b = lo.builder
  _, upper, step = (lo.scalar(v) for v in loop.operands[:3])
  following = b.add(lo.scalar(loop.regions[0].block.args[0]), step)
  if loop.attrs.get("unsignedCmp", False):
    return b.icmp_unsigned(">=", following, upper)
  return b.icmp_signed(">=", following, upper)


def _emit(lo, method, a, b, c, rank, zero, steps=None, block_k=None):
  if rank == 3:
    with lo.loop(c.type.shape[0]) as batch:
      method.emit(lo, a, b, c, batch, zero, steps, block_k)
  else:
    method.emit(lo, a, b, c, None, zero, steps, block_k)


def _deferred_dot(lo, method, a, bm, c, loop, iterations: int):
  """Packs this iteration's A and B after the earlier iterations' and multiplies them all in the
  last of each `iterations` iterations, or in the loop's last: one pass over C per that many
  iterations, instead of one per iteration (C is the loop's own accumulator, read by nothing else
  in the loop, and the sums run over K in the same order)."""
  b = lo.builder
  *outer, m, k = a.type.shape
  n = bm.type.shape[-1]
  group = method.group
  kp = -(-k // group) * group
  depth = iterations * kp
  # AMX loads 16 rows of A per tile: rows a power of two apart would share a few L1 sets, so they
  # are one tile row (64 bytes) longer than the K they hold.
  pad = dot_amx.ROW_BYTES * 8 // method.operand.bits if method.name.startswith("amx") else 0
  big_a = lo.new_buffer(ir.TensorType((*outer, m, depth + pad), method.operand))
  big_b = new_b(lo, (*outer, depth // group, n * group), method.operand, group, method.panel)
  filled = lo.slot_of(T.I32)
  lo.alloca_builder.store(T.I32(0), filled.pointer)  # and back to 0 after each loop's last flush
  count = b.load(filled.pointer, typ=T.I32)
  pack_rows(lo, a, method.operand, group, into=big_a, at=b.mul(count, T.I32(kp)))
  pack_groups(lo, bm, method.operand, group, method.lanes, method.unsigned_b, into=big_b,
              at=b.mul(count, T.I32(kp // group)), panel=method.panel)
  count = b.add(count, T.I32(1))
  b.store(count, filled.pointer)
  full = b.icmp_signed("==", count, T.I32(iterations))
  with b.if_then(b.or_(full, _is_last_iteration(lo, loop))):
    _emit(lo, method, big_a, big_b, c, c.type.rank, False, b.mul(count, T.I32(kp // group)), kp)
    b.store(T.I32(0), filled.pointer)


@register(STATEMENT, "tt.dot")
def _dot(lo, op):
  multiply(lo, op, *op.operands)


def multiply(lo, op: ir.Op, a: ir.Value, bm: ir.Value, acc: ir.Value):
  """op's result = a @ bm + acc (tt.dot's operands, or tt.dot_scaled's dequantised ones)."""
  result = op.result
  result_type = ir.element_type(result.type)
  *_, m, k = a.type.shape
  n = bm.type.shape[-1]
  method = choose(lo.target, ir.element_type(a.type), ir.element_type(bm.type), result_type,
                  (m, n, k))
  c, zero = _accumulator(lo, acc, result, method.compute)
  lo.count_work(result.type.numel * k)
  loop = None if zero else _k_loop(op, acc, result)
  iterations = _deferral(method, loop, result.type.shape, -(-k // method.group) * method.group)
  if iterations > 1:
    _deferred_dot(lo, method, a, bm, c, loop, iterations)
  else:
    packed_a = pack_rows(lo, a, method.operand, method.group)
    packed_b = pack_groups(lo, bm, method.operand, method.group, method.lanes, method.unsigned_b,
                           panel=method.panel)
    _emit(lo, method, packed_a, packed_b, c, result.type.rank, zero)
  if method.compute != result_type:
    out = lo.new_buffer(result.type)
    with lo.loop_nest(result.type.shape, lo.lanes_for(result.type, c.type)) as index:
      out.store(lo.builder, index,
                convert(lo.builder, c.load(lo.builder, index), method.compute, result_type))
    c = out
  lo.env[result] = c
