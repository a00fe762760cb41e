"""Memory ops: masked loads/stores with `other`, scalar pointers (masks honoured: triton-cpu drops
them), pointer arithmetic with negative, narrow unsigned and i64 offsets, strided / indirect /
broadcast loads, duplicate stores, in-kernel tensor descriptors (bounds, padding, the walks that
block pointers did: tl.make_block_ptr is gone from triton 3.9's frontend), cache / eviction
modifiers and volatile loads.

Every output buffer has a guard zone (a sentinel value) that masked-off stores must leave alone."""
import numpy as np
import pytest
import triton
import triton.language as tl

from lang_util import ALL, NP, assert_equal, rand, run

SENTINEL = 77


# ---- masked 2-D loads and stores, every dtype ---------------------------------------------------

@triton.jit
def masked_2d_kernel(x_ptr, out_ptr, M, N, OTHER: tl.constexpr, BM: tl.constexpr,
                     BN: tl.constexpr):
  """Copies x (M, N) into the top-left of out (M + 2, N + 3) through masked (BM, BN) tiles; the
  tiles also write `other` into the rest of their extent, inside out's bounds."""
  rm = tl.program_id(0) * BM + tl.arange(0, BM)[:, None]
  rn = tl.program_id(1) * BN + tl.arange(0, BN)[None, :]
  x = tl.load(x_ptr + rm * N + rn, mask=(rm < M) & (rn < N), other=OTHER)
  tl.store(out_ptr + rm * (N + 3) + rn, x, mask=(rm < M + 2) & (rn < N + 3))


@pytest.mark.parametrize("dtype", ALL)
def test_masked_2d_load_with_other_and_masked_store(dtype):
  M, N, BM, BN = 19, 29, 8, 16
  x = rand((M, N), dtype, np.random.default_rng(1), 0, 100)
  out = np.full((M + 2 + 8, N + 3), SENTINEL, NP[dtype])  # rows beyond M + 2: guard
  run(masked_2d_kernel, {"x_ptr": f"*{dtype}", "out_ptr": f"*{dtype}", "M": "i32", "N": "i32"},
      [x, out, M, N], (triton.cdiv(M + 2, BM), triton.cdiv(N + 3, BN)),
      {"OTHER": 5, "BM": BM, "BN": BN})
  expected = np.full_like(out, SENTINEL)
  expected[:M + 2, :N + 3] = 5
  expected[:M, :N] = x
  assert_equal(out, expected)


@triton.jit
def other_kinds_kernel(x_ptr, o_ptr, out_ptr, n, BLOCK: tl.constexpr):
  offs = tl.arange(0, BLOCK)
  mask = offs < n
  tl.store(out_ptr + offs, tl.load(x_ptr + offs, mask=mask, other=-2.5))          # float literal
  o = tl.load(o_ptr + offs)
  tl.store(out_ptr + BLOCK + offs, tl.load(x_ptr + offs, mask=mask, other=o))     # a tensor
  tl.store(out_ptr + 2 * BLOCK + offs, tl.load(x_ptr + offs, mask=mask, other=tl.load(o_ptr)))
  mask2 = (offs % 3 == 0) & mask                                                   # sparse mask
  tl.store(out_ptr + 3 * BLOCK + offs, tl.load(x_ptr + offs, mask=mask2, other=0.0))


@pytest.mark.parametrize("dtype", ["fp32", "fp16", "bf16", "fp64"])
def test_other_as_literal_tensor_and_scalar(dtype):
  n, block = 21, 32
  rng = np.random.default_rng(2)
  x = rand(block, dtype, rng)
  o = rand(block, dtype, rng)
  out = np.zeros(4 * block, NP[dtype])
  run(other_kinds_kernel, {"x_ptr": f"*{dtype}", "o_ptr": f"*{dtype}", "out_ptr": f"*{dtype}",
                           "n": "i32"}, [x, o, out, n], (1,), {"BLOCK": block})
  m = np.arange(block) < n
  assert_equal(out[:block], np.where(m, x, NP[dtype](-2.5)), "other=-2.5")
  assert_equal(out[block:2 * block], np.where(m, x, o), "other=tensor")
  assert_equal(out[2 * block:3 * block], np.where(m, x, o[0]), "other=scalar")
  m2 = m & (np.arange(block) % 3 == 0)
  assert_equal(out[3 * block:], np.where(m2, x, NP[dtype](0)), "sparse mask")


@triton.jit
def masked_3d_kernel(x_ptr, out_ptr, D0, D1, D2, B0: tl.constexpr, B1: tl.constexpr,
                     B2: tl.constexpr):
  i = tl.arange(0, B0)[:, None, None]
  j = tl.arange(0, B1)[None, :, None]
  k = tl.arange(0, B2)[None, None, :]
  mask = (i < D0) & (j < D1) & (k < D2)
  offs = (i * D1 + j) * D2 + k
  tl.store(out_ptr + offs, tl.load(x_ptr + offs, mask=mask, other=0) + 1, mask=mask)


@pytest.mark.parametrize("dtype", ["i16", "fp32", "u8"])
def test_masked_3d(dtype):
  shape = (3, 5, 7)
  x = rand(shape, dtype, np.random.default_rng(3), 0, 100)
  out = np.full(int(np.prod(shape)) + 16, SENTINEL, NP[dtype])
  run(masked_3d_kernel, {"x_ptr": f"*{dtype}", "out_ptr": f"*{dtype}", "D0": "i32", "D1": "i32",
                         "D2": "i32"}, [x, out, *shape], (1,), {"B0": 4, "B1": 8, "B2": 8})
  assert_equal(out[:x.size], (x + NP[dtype](1)).ravel())
  assert_equal(out[x.size:], np.full(16, SENTINEL, NP[dtype]))


# ---- scalar pointers ----------------------------------------------------------------------------

@triton.jit
def scalar_ptr_kernel(x_ptr, out_ptr, n, k):
  """Scalar loads and stores, masked by runtime scalar conditions (which must be honoured)."""
  pid = tl.program_id(0)
  v = tl.load(x_ptr + pid)
  tl.store(out_ptr + pid, v * 2)
  w = tl.load(x_ptr + pid + k, mask=pid + k < n, other=3)    # masked scalar load: other
  tl.store(out_ptr + n + pid, w)
  tl.store(out_ptr + 2 * n + pid, v, mask=pid % 2 == 0)       # masked scalar store
  tl.store(out_ptr + 3 * n + pid, v, mask=pid < 0)            # never stored


@pytest.mark.parametrize("dtype", ["fp32", "i32", "fp16", "bf16", "i8", "u32", "fp64", "i64"])
def test_scalar_pointers_with_masks(dtype):
  n, k = 10, 4
  x = rand(n, dtype, np.random.default_rng(4), 0, 50)
  out = np.full(4 * n, SENTINEL, NP[dtype])
  run(scalar_ptr_kernel, {"x_ptr": f"*{dtype}", "out_ptr": f"*{dtype}", "n": "i32", "k": "i32"},
      [x, out, n, k], (n,))
  pid = np.arange(n)
  assert_equal(out[:n], (x.astype(np.float64) * 2).astype(NP[dtype]), "scalar load/store")
  shifted = np.where(pid + k < n, x[np.minimum(pid + k, n - 1)], NP[dtype](3))
  assert_equal(out[n:2 * n], shifted, "masked scalar load: other where the mask is false")
  assert_equal(out[2 * n:3 * n], np.where(pid % 2 == 0, x, NP[dtype](SENTINEL)),
               "masked scalar store")
  assert_equal(out[3 * n:], np.full(n, SENTINEL, NP[dtype]), "store with a false mask")


@triton.jit
def scalar_oob_kernel(x_ptr, out_ptr, idx):
  """A masked-off scalar load far out of bounds must not be performed (it would fault)."""
  v = tl.load(x_ptr + idx, mask=idx < 4, other=7)
  tl.store(out_ptr, v)
  tl.store(x_ptr + idx, v, mask=idx < 4)


def test_masked_scalar_access_out_of_bounds_is_not_performed():
  x = np.arange(4, dtype=np.int32)
  out = np.zeros(1, np.int32)
  run(scalar_oob_kernel, {"x_ptr": "*i32", "out_ptr": "*i32", "idx": "i64"},
      [x, out, 1 << 45], (1,))
  assert out[0] == 7
  run(scalar_oob_kernel, {"x_ptr": "*i32", "out_ptr": "*i32", "idx": "i64"}, [x, out, 2], (1,))
  assert out[0] == 2


# ---- pointer arithmetic -------------------------------------------------------------------------

@triton.jit
def ptr_arith_kernel(x_ptr, out_ptr, mid, big, u8_ptr, i8_ptr, BLOCK: tl.constexpr):
  offs = tl.arange(0, BLOCK)
  # negative offsets from a pointer into the middle of x
  p = x_ptr + mid
  tl.store(out_ptr + offs, tl.load(p - offs))                        # reversed
  tl.store(out_ptr + BLOCK + offs, tl.load(p + (offs - BLOCK // 2)))  # straddles mid
  # i64 offsets: a tensor of i64 and a huge i64 scalar that cancels out
  o64 = offs.to(tl.int64) * 2
  tl.store(out_ptr + 2 * BLOCK + offs, tl.load(x_ptr + o64))
  q = (x_ptr + big) + offs
  tl.store(out_ptr + 3 * BLOCK + offs, tl.load(q - big))
  # narrow offsets: u8 zero-extends (200 is +200), i8 sign-extends (-56 is -56)
  uo = tl.load(u8_ptr + offs)
  tl.store(out_ptr + 4 * BLOCK + offs, tl.load(x_ptr + uo))
  io = tl.load(i8_ptr + offs)
  tl.store(out_ptr + 5 * BLOCK + offs, tl.load(p + io))
  # pointer increments in a loop (+= on a tensor of pointers), and pointer subtraction by scalar
  ptrs = x_ptr + offs
  for _ in range(3):
    ptrs += 5
  tl.store(out_ptr + 6 * BLOCK + offs, tl.load(ptrs - 1))


def test_pointer_arithmetic_negative_narrow_and_i64_offsets():
  block, mid = 32, 300
  x = np.arange(600, dtype=np.int32) * 7 + 1
  u8 = np.random.default_rng(5).integers(100, 256, block).astype(np.uint8)
  i8 = np.random.default_rng(6).integers(-128, 128, block).astype(np.int8)
  out = np.zeros(7 * block, np.int32)
  big = (1 << 40) + 12345
  run(ptr_arith_kernel, {"x_ptr": "*i32", "out_ptr": "*i32", "mid": "i32", "big": "i64",
                         "u8_ptr": "*u8", "i8_ptr": "*i8"}, [x, out, mid, big, u8, i8], (1,),
      {"BLOCK": block})
  o = np.arange(block)
  assert_equal(out[:block], x[mid - o], "negative offsets")
  assert_equal(out[block:2 * block], x[mid + o - block // 2], "offsets around mid")
  assert_equal(out[2 * block:3 * block], x[2 * o], "i64 offsets")
  assert_equal(out[3 * block:4 * block], x[o], "huge i64 scalar offsets")
  assert_equal(out[4 * block:5 * block], x[u8.astype(np.int64)], "u8 offsets zero-extend")
  assert_equal(out[5 * block:6 * block], x[mid + i8.astype(np.int64)], "i8 offsets sign-extend")
  assert_equal(out[6 * block:], x[o + 14], "pointer increments in a loop")


# ---- strided, indirect and broadcast loads ------------------------------------------------------

@triton.jit
def strided_kernel(x_ptr, idx_ptr, out_ptr, stride, N, BLOCK: tl.constexpr):
  offs = tl.arange(0, BLOCK)
  tl.store(out_ptr + offs, tl.load(x_ptr + offs * stride))                  # runtime stride
  tl.store(out_ptr + BLOCK + offs, tl.load(x_ptr + offs * 3))               # constant stride
  col = tl.load(x_ptr + offs * N + 1, mask=offs < 10, other=0)              # a column
  tl.store(out_ptr + 2 * BLOCK + offs, col)
  idx = tl.load(idx_ptr + offs)
  tl.store(out_ptr + 3 * BLOCK + offs, tl.load(x_ptr + idx))                # indirect
  tl.store(out_ptr + 4 * BLOCK + offs, tl.load(x_ptr + offs // 4))         # 4 lanes per element
  tl.store(out_ptr + 5 * BLOCK + offs, tl.load(x_ptr + offs * 0 + 7))      # one element
  # a 2-D tile of a transposed view: x viewed as (N, *) read column-major
  r = tl.arange(0, 8)[:, None]
  c = tl.arange(0, 4)[None, :]
  t = tl.load(x_ptr + c * N + r)                                            # (8, 4)
  tl.store(out_ptr + 6 * BLOCK + r * 4 + c, t)


@pytest.mark.parametrize("dtype", ["fp32", "i8", "fp64", "bf16"])
def test_strided_indirect_and_broadcast_loads(dtype):
  block, stride, n = 32, 5, 17
  x = rand(400, dtype, np.random.default_rng(7), -50, 50)
  idx = np.random.default_rng(8).integers(0, 400, block).astype(np.int32)
  out = np.zeros(7 * block, NP[dtype])
  run(strided_kernel, {"x_ptr": f"*{dtype}", "idx_ptr": "*i32", "out_ptr": f"*{dtype}",
                       "stride": "i32", "N": "i32"}, [x, idx, out, stride, n], (1,),
      {"BLOCK": block})
  o = np.arange(block)
  assert_equal(out[:block], x[o * stride], "runtime stride")
  assert_equal(out[block:2 * block], x[o * 3], "constant stride")
  assert_equal(out[2 * block:3 * block], np.where(o < 10, x[np.minimum(o, 9) * n + 1], 0).astype(
      NP[dtype]), "masked column")
  assert_equal(out[3 * block:4 * block], x[idx], "indirect")
  assert_equal(out[4 * block:5 * block], x[o // 4], "broadcast (4 lanes per address)")
  assert_equal(out[5 * block:6 * block], np.full(block, x[7]), "one address")
  r, c = np.meshgrid(np.arange(8), np.arange(4), indexing="ij")
  assert_equal(out[6 * block:6 * block + 32], x[c * n + r].ravel(), "column-major tile")


# ---- duplicate stores ---------------------------------------------------------------------------

@triton.jit
def dup_store_kernel(out_ptr, BLOCK: tl.constexpr):
  offs = tl.arange(0, BLOCK)
  tl.store(out_ptr + offs // 4, (offs // 4) * 10)        # 4 lanes store the same value
  tl.store(out_ptr + 100 + offs % 3, offs)               # different values: any one wins
  tl.store(out_ptr + 200 + offs * 0, offs.to(tl.int32) * 0 + 9)


def test_stores_with_duplicate_addresses():
  out = np.full(210, -1, np.int32)
  run(dup_store_kernel, {"out_ptr": "*i32"}, [out], (1,), {"BLOCK": 32})
  assert_equal(out[:8], np.arange(8) * 10)
  assert_equal(out[8:100], np.full(92, -1, np.int32))
  for j in range(3):  # the value of one of the lanes j, j + 3, ...
    assert out[100 + j] in set(range(j, 32, 3)), out[100:103]
  assert out[200] == 9


# ---- block-pointer-style walks with tensor descriptors -------------------------------------------
# (tl.make_block_ptr / tl.advance: triton 3.9's frontend raises "Block pointers have been removed in
# favor of the tensor descriptor API", so the same access patterns are tested through descriptors.)

@triton.jit
def descriptor_walk_kernel(x_ptr, out_ptr, M, N, BM: tl.constexpr, BN: tl.constexpr):
  """Each program walks one row band along N in BN steps (what tl.advance did), bounds-checked."""
  xd = tl.make_tensor_descriptor(x_ptr, shape=[M, N], strides=[N, 1], block_shape=[BM, BN])
  od = tl.make_tensor_descriptor(out_ptr, shape=[M, N], strides=[N, 1], block_shape=[BM, BN])
  om = tl.program_id(0) * BM
  for j in range(0, tl.cdiv(N, BN)):
    v = xd.load([om, j * BN])
    od.store([om, j * BN], v * 2)


@pytest.mark.parametrize("dtype", ["fp32", "fp64", "bf16", "i8"])
def test_tensor_descriptor_walk_with_bounds(dtype):
  M, N, BM, BN = 21, 48, 8, 16
  x = rand((M, N), dtype, np.random.default_rng(9), -50, 50)
  out = np.full((M + 3, N), SENTINEL, NP[dtype])
  run(descriptor_walk_kernel, {"x_ptr": f"*{dtype}", "out_ptr": f"*{dtype}", "M": "i32",
                               "N": "i32"}, [x, out, M, N], (triton.cdiv(M, BM),),
      {"BM": BM, "BN": BN})
  expected = np.full_like(out, SENTINEL)
  expected[:M] = x.astype(np.float64) * 2
  assert_equal(out, expected)


@triton.jit
def descriptor_3d_kernel(x_ptr, out_ptr, D0, D1, D2):
  d = tl.make_tensor_descriptor(x_ptr, shape=[D0, D1, D2], strides=[D1 * D2, D2, 1],
                                block_shape=[2, 4, 8])
  v = d.load([1, 0, 2])
  i = tl.arange(0, 2)[:, None, None]
  j = tl.arange(0, 4)[None, :, None]
  k = tl.arange(0, 8)[None, None, :]
  tl.store(out_ptr + (i * 4 + j) * 8 + k, v)


def test_tensor_descriptor_3d_out_of_bounds_block():
  shape = (3, 4, 8)
  x = np.arange(1, 97, dtype=np.float32).reshape(shape)
  out = np.full(64, SENTINEL, np.float32)
  run(descriptor_3d_kernel, {"x_ptr": "*fp32", "out_ptr": "*fp32", "D0": "i32", "D1": "i32",
                             "D2": "i32"}, [x, out, *shape], (1,))
  e = np.zeros((2, 4, 8), np.float32)
  e[:2, :4, :6] = x[1:3, 0:4, 2:8]
  assert_equal(out, e.ravel())


# ---- tensor descriptors -------------------------------------------------------------------------

@triton.jit
def descriptor_kernel(x_ptr, out_ptr, M, N, BM: tl.constexpr, BN: tl.constexpr):
  x_desc = tl.make_tensor_descriptor(x_ptr, shape=[M, N], strides=[N, 1], block_shape=[BM, BN])
  o_desc = tl.make_tensor_descriptor(out_ptr, shape=[M, N], strides=[N, 1], block_shape=[BM, BN])
  om = tl.program_id(0) * BM
  on = tl.program_id(1) * BN
  v = x_desc.load([om, on])            # out of bounds: zeros
  o_desc.store([om, on], v + 1)        # out of bounds: not stored


@pytest.mark.parametrize("dtype", ["fp32", "i16", "fp16"])
def test_tensor_descriptor_load_store(dtype):
  M, N, BM, BN = 37, 48, 16, 32
  x = rand((M, N), dtype, np.random.default_rng(10), -50, 50)
  out = np.full((M + 4, N), SENTINEL, NP[dtype])  # guard rows after M
  run(descriptor_kernel, {"x_ptr": f"*{dtype}", "out_ptr": f"*{dtype}", "M": "i32", "N": "i32"},
      [x, out, M, N], (triton.cdiv(M, BM), triton.cdiv(N, BN)), {"BM": BM, "BN": BN})
  expected = np.full_like(out, SENTINEL)
  expected[:M] = x.astype(np.float64) + 1
  assert_equal(out, expected)


@triton.jit
def descriptor_padding_kernel(x_ptr, out_ptr, M, N, BM: tl.constexpr, BN: tl.constexpr):
  d = tl.make_tensor_descriptor(x_ptr, shape=[M, N], strides=[N, 1], block_shape=[BM, BN],
                                padding_option="nan")
  v = tl.load_tensor_descriptor(d, [M - 2, N - 4])
  tl.store(out_ptr + tl.arange(0, BM)[:, None] * BN + tl.arange(0, BN)[None, :], v)


def test_tensor_descriptor_nan_padding():
  M, N, BM, BN = 10, 12, 4, 8
  x = np.arange(M * N, dtype=np.float32).reshape(M, N)
  out = np.zeros((BM, BN), np.float32)
  run(descriptor_padding_kernel, {"x_ptr": "*fp32", "out_ptr": "*fp32", "M": "i32", "N": "i32"},
      [x, out, M, N], (1,), {"BM": BM, "BN": BN})
  expected = np.full((BM, BN), np.nan, np.float32)
  expected[:2, :4] = x[M - 2:, N - 4:]
  assert_equal(out, expected)


# ---- modifiers, volatile, hints -----------------------------------------------------------------

@triton.jit
def modifiers_kernel(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
  offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
  mask = offs < n
  a = tl.load(x_ptr + offs, mask=mask, cache_modifier=".cg", eviction_policy="evict_last")
  b = tl.load(x_ptr + offs, mask=mask, cache_modifier=".ca", eviction_policy="evict_first")
  d = tl.load(x_ptr + offs, mask=mask, cache_modifier=".cv")
  tl.store(out_ptr + offs, a + b, mask=mask, cache_modifier=".wb")
  tl.store(out_ptr + n + offs, d * d, mask=mask, cache_modifier=".cs",
           eviction_policy="evict_first")
  tl.store(out_ptr + 2 * n + offs, d, mask=mask, cache_modifier=".wt")


def test_cache_and_eviction_modifiers_are_accepted():
  n, block = 100, 64
  x = np.random.default_rng(11).standard_normal(n).astype(np.float32)
  out = np.zeros(3 * n, np.float32)
  run(modifiers_kernel, {"x_ptr": "*fp32", "out_ptr": "*fp32", "n": "i32"}, [x, out, n],
      (triton.cdiv(n, block),), {"BLOCK": block})
  assert_equal(out[:n], x + x)
  assert_equal(out[n:2 * n], x * x)
  assert_equal(out[2 * n:3 * n], x)


@triton.jit
def volatile_kernel(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
  offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
  offs = tl.max_contiguous(tl.multiple_of(offs, BLOCK), BLOCK)  # hints accepted
  mask = offs < n
  c = tl.load(x_ptr + offs, mask=mask, volatile=True)
  tl.store(out_ptr + offs, c * 3, mask=mask)
  s = tl.load(x_ptr + 1, volatile=True)  # a volatile scalar load
  tl.store(out_ptr + n, s)


def test_volatile_loads_and_hints():
  n, block = 100, 64
  x = np.random.default_rng(11).standard_normal(n).astype(np.float32)
  out = np.zeros(n + 1, np.float32)
  run(volatile_kernel, {"x_ptr": "*fp32", "out_ptr": "*fp32", "n": "i32"}, [x, out, n],
      (triton.cdiv(n, block),), {"BLOCK": block})
  assert_equal(out[:n], x * np.float32(3))
  assert out[n] == x[1]


@triton.jit
def bool_kernel(m_ptr, x_ptr, out_ptr, bout_ptr, n, BLOCK: tl.constexpr):
  offs = tl.arange(0, BLOCK)
  inb = offs < n
  m = tl.load(m_ptr + offs, mask=inb, other=False)      # an i1 tensor from *i1
  x = tl.load(x_ptr + offs, mask=m & inb, other=-1)     # a loaded mask
  tl.store(out_ptr + offs, x, mask=inb)
  tl.store(bout_ptr + offs, ~m, mask=inb)               # storing booleans


def test_bool_loads_stores_and_loaded_masks():
  n = 45
  rng = np.random.default_rng(12)
  m = rng.integers(0, 2, n).astype(np.bool_)
  x = rng.integers(0, 100, n).astype(np.int32)
  out = np.zeros(n, np.int32)
  bout = np.zeros(n, np.bool_)
  run(bool_kernel, {"m_ptr": "*i1", "x_ptr": "*i32", "out_ptr": "*i32", "bout_ptr": "*i1",
                    "n": "i32"}, [m, x, out, bout, n], (1,), {"BLOCK": 64})
  assert_equal(out, np.where(m, x, -1))
  assert_equal(bout, ~m)


@triton.jit
def copy_kernel(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
  offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
  mask = offs < n
  tl.store(out_ptr + offs, tl.load(x_ptr + offs, mask=mask), mask=mask)


@pytest.mark.parametrize("dtype", ["u8", "fp16", "i64"])
@pytest.mark.parametrize("n,block", [(1, 16), (1000, 128), (65537, 4096)])
def test_copy_sizes(dtype, n, block):
  x = rand(n, dtype, np.random.default_rng(n))
  out = np.full(n + 64, SENTINEL, NP[dtype])
  run(copy_kernel, {"x_ptr": f"*{dtype}", "out_ptr": f"*{dtype}", "n": "i64"}, [x, out, n],
      (triton.cdiv(n, block),), {"BLOCK": block})
  assert_equal(out[:n], x)
  assert_equal(out[n:], np.full(64, SENTINEL, NP[dtype]))


@triton.jit
def inplace_kernel(x_ptr, n, BLOCK: tl.constexpr):
  """Loads a whole block, then stores it reversed over itself: every load precedes every store."""
  offs = tl.arange(0, BLOCK)
  mask = offs < n
  v = tl.load(x_ptr + offs, mask=mask)
  tl.store(x_ptr + (n - 1 - offs), v * 2, mask=mask)
  w = tl.load(x_ptr + offs, mask=mask)
  tl.store(x_ptr + ((offs + 1) % n), w + 1, mask=mask)  # a rotation by one


@pytest.mark.parametrize("dtype,n,block", [("fp32", 64, 64), ("i8", 100, 128), ("fp64", 7, 8)])
def test_in_place_overlapping_load_then_store(dtype, n, block):
  x = np.arange(n).astype(NP[dtype])
  run(inplace_kernel, {"x_ptr": f"*{dtype}", "n": "i32"}, [x, n], (1,), {"BLOCK": block})
  r = (np.arange(n) * 2)[::-1]
  assert_equal(x, np.roll(r + 1, 1).astype(NP[dtype]))


@triton.jit
def ptr_int_kernel(addr_ptr, out_ptr, x_ptr, y_ptr, BLOCK: tl.constexpr):
  """Pointers as integers: loaded addresses turned into pointers (scalar and tensor), and a pointer
  argument turned into an integer. (y_ptr is unused: passing y lets checked mode, which checks a
  pointer made from an integer against every buffer of the call, see that the kernel reads it.)"""
  offs = tl.arange(0, BLOCK)
  a0 = tl.load(addr_ptr)                                   # u64 address of x
  p0 = a0.to(tl.pointer_type(tl.float32))
  tl.store(out_ptr + offs, tl.load(p0 + offs))
  addrs = tl.load(addr_ptr + offs % 2)                     # alternating x / y addresses
  ps = addrs.to(tl.pointer_type(tl.float32)) + offs
  tl.store(out_ptr + BLOCK + offs, tl.load(ps))
  xi = x_ptr.to(tl.int64)
  tl.store(out_ptr + 2 * BLOCK, (xi == a0.to(tl.int64)).to(tl.float32))


@pytest.mark.parametrize("checked", [False, True])
def test_pointers_from_and_to_integers(checked):
  block = 16
  x = np.arange(block, dtype=np.float32) + 0.5
  y = -np.arange(block, dtype=np.float32)
  addr = np.array([x.ctypes.data, y.ctypes.data], np.uint64)
  out = np.zeros(2 * block + 1, np.float32)
  run(ptr_int_kernel, {"addr_ptr": "*u64", "out_ptr": "*fp32", "x_ptr": "*fp32", "y_ptr": "*fp32"},
      [addr, out, x, y], (1,), {"BLOCK": block}, bounds_check=checked)
  o = np.arange(block)
  assert_equal(out[:block], x, "scalar int -> pointer")
  assert_equal(out[block:2 * block], np.where(o % 2 == 0, x, y), "tensor of int -> pointers")
  assert out[2 * block] == 1.0, "pointer -> int"


@triton.jit
def checker_kernel(x_ptr, out_ptr, M, N, BM: tl.constexpr, BN: tl.constexpr):
  rm = tl.arange(0, BM)[:, None]
  rn = tl.arange(0, BN)[None, :]
  inb = (rm < M) & (rn < N)
  mask = inb & ((rm + rn) % 2 == 0)                        # a checkerboard inside the bounds
  v = tl.load(x_ptr + rm * N + rn, mask=mask, other=-1.0)
  tl.store(out_ptr + rm * N + rn, v, mask=inb)
  tl.store(out_ptr + M * N + rm * N + rn, v * 0 + 9.0, mask=inb & ~mask)


def test_checkerboard_masks_2d():
  M, N = 7, 13
  x = np.random.default_rng(13).standard_normal((M, N)).astype(np.float32)
  out = np.zeros((2, M, N), np.float32)
  run(checker_kernel, {"x_ptr": "*fp32", "out_ptr": "*fp32", "M": "i32", "N": "i32"},
      [x, out, M, N],
      (1,), {"BM": 8, "BN": 16})
  even = (np.add.outer(np.arange(M), np.arange(N)) % 2) == 0
  assert_equal(out[0], np.where(even, x, np.float32(-1)))
  assert_equal(out[1], np.where(even, np.float32(0), np.float32(9)))


# ---- loads in a loop through pointers whose contiguity only the run time knows -------------------

@triton.jit
def wrapped_columns_kernel(x_ptr, out_ptr, rows, N, stride, BR: tl.constexpr, BN: tl.constexpr):
  """Sums column blocks of x over its rows, BR rows per step, through the tutorial matmul's
  `(start + j) % N` columns: consecutive unless the block wraps past N (memory.rows_contiguous,
  tested once before the loop)."""
  cols = (tl.program_id(0) * BN + tl.arange(0, BN)) % N
  r = tl.arange(0, BR)
  p = x_ptr + r[:, None] * stride + cols[None, :]
  acc = tl.zeros((BN,), tl.float32)
  for start in range(0, rows, BR):
    acc += tl.sum(tl.load(p, mask=(start + r)[:, None] < rows, other=0.0), axis=0)
    p += BR * stride
  tl.store(out_ptr + tl.program_id(0) * BN + tl.arange(0, BN), acc)


@pytest.mark.parametrize("n, programs", [(64, 2), (40, 2), (5, 1), (64, 3)])
def test_loads_through_wrapping_pointers_in_a_loop(n, programs):
  """n = 64: every block contiguous; 40: the second block wraps; 5: every chunk wraps; 3 programs
  of 32 over 64 columns: the third starts over at column 0."""
  rows, stride, br, bn = 37, 70, 8, 32
  x = np.random.default_rng(n).integers(-9, 10, (rows, stride)).astype(np.float32)
  out = np.zeros(programs * bn, np.float32)
  run(wrapped_columns_kernel, {"x_ptr": "*fp32", "out_ptr": "*fp32", "rows": "i32", "N": "i32",
                               "stride": "i32"},
      [x, out, rows, n, stride], (programs,), {"BR": br, "BN": bn})
  columns = np.arange(programs * bn) % n
  assert_equal(out, x[:, columns].sum(0), "column sums")


@triton.jit
def row_pointers_kernel(x_ptr, out_ptr, rows, stride, BR: tl.constexpr, BN: tl.constexpr):
  """Loads through pointer tensors held in memory whose rows axis info proves contiguous: one
  moved through a loop (p += BR * stride) and one with two readers (kept in a buffer); each row
  is several chunks long, so every chunk's address comes from its row's first pointer
  (memory.chunk_address)."""
  r, c = tl.arange(0, BR), tl.arange(0, BN)
  p = x_ptr + r[:, None] * stride + c[None, :]
  acc = tl.zeros((BR, BN), tl.float32)
  for start in range(0, rows, BR):
    acc += tl.load(p, mask=(start + r)[:, None] < rows, other=0.0)
    p += BR * stride
  q = x_ptr + (r[:, None] + 1) * stride + c[None, :]  # read twice: materialised
  both = tl.load(q) * 2 + tl.load(q, mask=c[None, :] < BN - 3, other=-1.0)
  tl.store(out_ptr + r[:, None] * BN + c[None, :], acc)
  tl.store(out_ptr + BR * BN + r[:, None] * BN + c[None, :], both)


def test_loads_through_row_pointers_held_in_memory():
  rows, stride, br, bn = 37, 70, 8, 64
  x = np.random.default_rng(5).integers(-9, 10, (rows, stride)).astype(np.float32)
  out = np.zeros((2, br, bn), np.float32)
  run(row_pointers_kernel, {"x_ptr": "*fp32", "out_ptr": "*fp32", "rows": "i32", "stride": "i32"},
      [x, out, rows, stride], (1,), {"BR": br, "BN": bn})
  padded = np.zeros((-(-rows // br) * br, bn), np.float32)
  padded[:rows] = x[:, :bn]
  assert_equal(out[0], padded.reshape(-1, br, bn).sum(0), "loop-carried pointers")
  q = x[1:br + 1, :bn]
  assert_equal(out[1], q * 2 + np.where(np.arange(bn) < bn - 3, q, np.float32(-1)), "buffered")


# ---- non-temporal stores for launches that write much (codegen/memory.py _streaming) -------------

@triton.jit
def stream_copy_kernel(x_ptr, out_ptr, n, shift, BLOCK: tl.constexpr):
  offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
  mask = offs < n
  tl.store(out_ptr + shift + offs, tl.load(x_ptr + offs, mask=mask), mask=mask)


@triton.jit
def loop_store_kernel(x_ptr, out_ptr, BLOCK: tl.constexpr):
  offs = tl.arange(0, BLOCK)
  for i in range(4):
    tl.store(out_ptr + i * BLOCK + offs, tl.load(x_ptr + i * BLOCK + offs))


@triton.jit
def copy_and_count_kernel(x_ptr, out_ptr, count_ptr, BLOCK: tl.constexpr):
  offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
  tl.store(out_ptr + offs, tl.load(x_ptr + offs))
  tl.atomic_add(count_ptr, 1)


COPY_SIGNATURE = {"x_ptr": "*fp32", "out_ptr": "*fp32", "n": "i32", "shift": "i32"}


def test_stores_that_run_once_per_program_may_stream():
  """A top-level store gets a non-temporal path (taken at run time when the grid writes at least
  half the last-level cache) and the launch an sfence; a store in a loop does not, nor one in a
  kernel with atomics (other programs may wait on them for its data)."""
  from direct_launch import compile_kernel
  copy = compile_kernel(stream_copy_kernel, COPY_SIGNATURE, {"BLOCK": 256})
  assert "!nontemporal" in copy.llvm_ir and "llvm.x86.sse.sfence" in copy.llvm_ir
  looped = compile_kernel(loop_store_kernel, {"x_ptr": "*fp32", "out_ptr": "*fp32"},
                          {"BLOCK": 256})
  assert "!nontemporal" not in looped.llvm_ir and "sfence" not in looped.llvm_ir
  counted = compile_kernel(copy_and_count_kernel, {"x_ptr": "*fp32", "out_ptr": "*fp32",
                                                   "count_ptr": "*i32"}, {"BLOCK": 256})
  assert "!nontemporal" not in counted.llvm_ir


@pytest.mark.parametrize("shift", [0, 1, 16])
def test_streaming_stores_write_what_regular_ones_do(monkeypatch, shift):
  """Every store streams ("+stream-stores"): whole aligned chunks through non-temporal stores,
  misaligned ones (shift 1) and the masked tail through regular ones."""
  from direct_launch import compile_kernel, launch
  monkeypatch.setenv("JAX_TRITON_CPU_TARGET", "x86-64-v3,+stream-stores")
  c = compile_kernel(stream_copy_kernel, COPY_SIGNATURE, {"BLOCK": 256})
  assert "vmovntps" in c.asm
  n = 1000
  x = np.arange(n, dtype=np.float32) + 0.5
  out = np.full(n + 64, SENTINEL, np.float32)
  assert launch(c, [x, out, n, shift], (-(-n // 256), 1, 1)) == 0
  assert_equal(out[shift:shift + n], x, "copied")
  assert (out[:shift] == SENTINEL).all() and (out[shift + n:] == SENTINEL).all()
