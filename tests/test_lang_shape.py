"""Shape and data-movement ops: reshape (also can_reorder, view), trans / permute up to 4-D, join,
split, interleave, cat, broadcast_to, expand_dims, flip, tl.sort / topk, tl.gather, tl.histogram
(with a mask), tl.where with broadcasts; against numpy, for several element sizes."""
import inspect

import numpy as np
import pytest
import triton
import triton.language as tl

from lang_util import NP, assert_equal, frontend_accepts, is_float, run


@triton.jit
def _flip_without_dim(x_ptr):
  tl.store(x_ptr + tl.arange(0, 4), tl.flip(tl.load(x_ptr + tl.arange(0, 4))))


# Frontend features that differ between the triton versions we support (3.6 lacks them)
CAT_HAS_DIM = "dim" in inspect.signature(tl.cat).parameters
FLIP_HAS_DEFAULT_DIM = frontend_accepts(_flip_without_dim, {"x_ptr": "*i32"})

DTYPES = ["fp32", "i8", "bf16", "i64"]

# reshape(can_reorder=True), view and cat(can_reorder=True) are deprecated, and tested on purpose
pytestmark = pytest.mark.filterwarnings("ignore:.*(can_reorder|view is deprecated).*:UserWarning")


def _data(shape, dtype, rng):
  """Distinct-ish values that survive every dtype."""
  v = rng.permutation(int(np.prod(shape))) % 120 - 60
  return v.reshape(shape).astype(NP[dtype])


def _ar(shape):
  """Flat offsets of a contiguous array of `shape`, as numpy computes them (for the reference)."""
  return np.arange(int(np.prod(shape))).reshape(shape)


# ---- reshape / view -----------------------------------------------------------------------------

@triton.jit
def reshape_kernel(x_ptr, out_ptr):
  i = tl.arange(0, 4)[:, None]
  j = tl.arange(0, 8)[None, :]
  x = tl.load(x_ptr + i * 8 + j)                        # (4, 8)
  a = tl.reshape(x, (8, 4))
  ai = tl.arange(0, 8)[:, None]
  aj = tl.arange(0, 4)[None, :]
  tl.store(out_ptr + ai * 4 + aj, a)
  b = tl.reshape(x, (32,))
  tl.store(out_ptr + 32 + tl.arange(0, 32), b)
  c = x.reshape(2, 4, 4)
  ci = tl.arange(0, 2)[:, None, None]
  cj = tl.arange(0, 4)[None, :, None]
  ck = tl.arange(0, 4)[None, None, :]
  tl.store(out_ptr + 64 + ci * 16 + cj * 4 + ck, c)
  d = tl.reshape(c, (2, 16))                            # 3-D -> 2-D
  tl.store(out_ptr + 96 + tl.arange(0, 2)[:, None] * 16 + tl.arange(0, 16)[None, :], d)
  e = tl.ravel(x)
  tl.store(out_ptr + 128 + tl.arange(0, 32), e)
  # reordering allowed: only the multiset of elements is defined
  f = tl.reshape(x, (32,), can_reorder=True)
  tl.store(out_ptr + 160 + tl.arange(0, 32), f)
  g = x.view(8, 4)
  tl.store(out_ptr + 192 + ai * 4 + aj, g)


@pytest.mark.parametrize("dtype", DTYPES)
def test_reshape(dtype):
  x = _data((4, 8), dtype, np.random.default_rng(1))
  out = np.zeros(224, NP[dtype])
  run(reshape_kernel, {"x_ptr": f"*{dtype}", "out_ptr": f"*{dtype}"}, [x, out], (1,))
  flat = x.ravel()
  assert_equal(out[:32], flat, "reshape (8, 4)")
  assert_equal(out[32:64], flat, "reshape (32,)")
  assert_equal(out[64:96], flat, "reshape (2, 4, 4)")
  assert_equal(out[96:128], flat, "reshape 3-D -> (2, 16)")
  assert_equal(out[128:160], flat, "ravel")
  assert_equal(np.sort(out[160:192].astype(np.float64)), np.sort(flat.astype(np.float64)),
               "reshape(can_reorder=True): same elements")
  assert_equal(np.sort(out[192:224].astype(np.float64)), np.sort(flat.astype(np.float64)),
               "view: same elements")


# ---- trans / permute ----------------------------------------------------------------------------

@triton.jit
def _offs3(A: tl.constexpr, B: tl.constexpr, C: tl.constexpr):
  return (tl.arange(0, A)[:, None, None] * B + tl.arange(0, B)[None, :, None]) * C + \
      tl.arange(0, C)[None, None, :]


@triton.jit
def _offs4(A: tl.constexpr, B: tl.constexpr, C: tl.constexpr, D: tl.constexpr):
  i = tl.arange(0, A)[:, None, None, None]
  j = tl.arange(0, B)[None, :, None, None]
  k = tl.arange(0, C)[None, None, :, None]
  m = tl.arange(0, D)[None, None, None, :]
  return ((i * B + j) * C + k) * D + m


@triton.jit
def permute_kernel(x2_ptr, x3_ptr, x4_ptr, out_ptr):
  # 2-D (8, 16)
  r = tl.arange(0, 8)[:, None]
  c = tl.arange(0, 16)[None, :]
  x2 = tl.load(x2_ptr + r * 16 + c)
  t = tl.trans(x2)                                     # (16, 8)
  tl.store(out_ptr + tl.arange(0, 16)[:, None] * 8 + tl.arange(0, 8)[None, :], t)
  tt = x2.T
  tl.store(out_ptr + 128 + tl.arange(0, 16)[:, None] * 8 + tl.arange(0, 8)[None, :], tt)
  # 3-D (2, 4, 8)
  x3 = tl.load(x3_ptr + _offs3(2, 4, 8))
  tl.store(out_ptr + 256 + _offs3(8, 2, 4), tl.permute(x3, (2, 0, 1)))
  tl.store(out_ptr + 320 + _offs3(4, 8, 2), tl.permute(x3, 1, 2, 0))
  tl.store(out_ptr + 384 + _offs3(2, 8, 4), tl.trans(x3, (0, 2, 1)))
  tl.store(out_ptr + 448 + _offs3(2, 8, 4), tl.trans(x3))  # no dims: swaps the last two
  # 4-D (2, 4, 8, 4)
  x4 = tl.load(x4_ptr + _offs4(2, 4, 8, 4))
  tl.store(out_ptr + 512 + _offs4(4, 4, 2, 8), tl.permute(x4, (3, 1, 0, 2)))
  tl.store(out_ptr + 768 + _offs4(2, 8, 4, 4), tl.permute(x4, (0, 2, 1, 3)))
  tl.store(out_ptr + 1024 + _offs4(4, 8, 4, 2), tl.permute(x4, (3, 2, 1, 0)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_trans_and_permute_up_to_4d(dtype):
  rng = np.random.default_rng(2)
  x2 = _data((8, 16), dtype, rng)
  x3 = _data((2, 4, 8), dtype, rng)
  x4 = _data((2, 4, 8, 4), dtype, rng)
  out = np.zeros(1280, NP[dtype])
  run(permute_kernel, {"x2_ptr": f"*{dtype}", "x3_ptr": f"*{dtype}", "x4_ptr": f"*{dtype}",
                       "out_ptr": f"*{dtype}"}, [x2, x3, x4, out], (1,))
  assert_equal(out[:128], x2.T.ravel(), "trans 2-D")
  assert_equal(out[128:256], x2.T.ravel(), ".T 2-D")
  assert_equal(out[256:320], x3.transpose(2, 0, 1).ravel(), "permute (2, 0, 1)")
  assert_equal(out[320:384], x3.transpose(1, 2, 0).ravel(), "permute (1, 2, 0)")
  assert_equal(out[384:448], x3.transpose(0, 2, 1).ravel(), "trans (0, 2, 1)")
  assert_equal(out[448:512], x3.transpose(0, 2, 1).ravel(), "trans 3-D (no dims)")
  assert_equal(out[512:768], x4.transpose(3, 1, 0, 2).ravel(), "permute 4-D (3, 1, 0, 2)")
  assert_equal(out[768:1024], x4.transpose(0, 2, 1, 3).ravel(), "permute 4-D (0, 2, 1, 3)")
  assert_equal(out[1024:1280], x4.transpose(3, 2, 1, 0).ravel(), "permute 4-D (3, 2, 1, 0)")


# ---- join / split / interleave / cat ------------------------------------------------------------

@triton.jit
def join_split_kernel(a_ptr, b_ptr, out_ptr):
  r = tl.arange(0, 4)[:, None]
  c = tl.arange(0, 8)[None, :]
  a = tl.load(a_ptr + r * 8 + c)                        # (4, 8)
  b = tl.load(b_ptr + r * 8 + c)
  j = tl.join(a, b)                                     # (4, 8, 2)
  tl.store(out_ptr + _offs3(4, 8, 2), j)
  i = tl.interleave(a, b)                               # (4, 16)
  tl.store(out_ptr + 64 + tl.arange(0, 4)[:, None] * 16 + tl.arange(0, 16)[None, :], i)
  s0, s1 = tl.split(j)                                  # back to (4, 8) each
  tl.store(out_ptr + 128 + r * 8 + c, s0 * 2)
  tl.store(out_ptr + 160 + r * 8 + c, s1 - 1)
  # split of a reshaped 1-D tensor: even / odd elements
  flat = tl.reshape(a, (16, 2))
  e, o = flat.split()
  tl.store(out_ptr + 192 + tl.arange(0, 16), e)
  tl.store(out_ptr + 208 + tl.arange(0, 16), o)
  # join of 1-D tensors and of scalars
  ja = tl.join(tl.arange(0, 4), tl.arange(10, 14))      # (4, 2)
  tl.store(out_ptr + 224 + tl.arange(0, 4)[:, None] * 2 + tl.arange(0, 2)[None, :], ja)


@pytest.mark.parametrize("dtype", DTYPES)
def test_join_split_interleave(dtype):
  rng = np.random.default_rng(3)
  a, b = _data((4, 8), dtype, rng), _data((4, 8), dtype, rng)
  out = np.zeros(232, NP[dtype])
  run(join_split_kernel, {"a_ptr": f"*{dtype}", "b_ptr": f"*{dtype}", "out_ptr": f"*{dtype}"},
      [a, b, out], (1,))
  j = np.stack([a, b], axis=-1)
  assert_equal(out[:64], j.ravel(), "join")
  assert_equal(out[64:128], j.reshape(4, 16).ravel(), "interleave")
  assert_equal(out[128:160], (a.astype(np.float64) * 2).astype(NP[dtype]).ravel(), "split[0]")
  assert_equal(out[160:192], (a * 0 + b.astype(np.float64) - 1).astype(NP[dtype]).ravel(),
               "split[1]")
  assert_equal(out[192:208], a.ravel()[0::2], "split even")
  assert_equal(out[208:224], a.ravel()[1::2], "split odd")
  assert_equal(out[224:232], np.stack([np.arange(4), np.arange(10, 14)], -1).ravel().astype(
      NP[dtype]), "join 1-D")


@triton.jit
def cat_kernel(a_ptr, b_ptr, out_ptr, DETERMINISTIC: tl.constexpr):
  a1 = tl.load(a_ptr + tl.arange(0, 16))
  b1 = tl.load(b_ptr + tl.arange(0, 16))
  tl.store(out_ptr + 160 + tl.arange(0, 32), tl.cat(a1, b1, can_reorder=True))
  if DETERMINISTIC:  # (triton 3.6's tl.cat has no dim and may always reorder)
    tl.store(out_ptr + 128 + tl.arange(0, 32), tl.cat(a1, b1))
    r = tl.arange(0, 4)[:, None]
    c = tl.arange(0, 8)[None, :]
    a = tl.load(a_ptr + r * 8 + c)
    b = tl.load(b_ptr + r * 8 + c)
    c0 = tl.cat(a, b, dim=0)                              # (8, 8)
    tl.store(out_ptr + tl.arange(0, 8)[:, None] * 8 + tl.arange(0, 8)[None, :], c0)
    c1 = tl.cat(a, b, dim=1)                              # (4, 16)
    tl.store(out_ptr + 64 + tl.arange(0, 4)[:, None] * 16 + tl.arange(0, 16)[None, :], c1)


@pytest.mark.parametrize("dtype", DTYPES)
def test_cat(dtype):
  rng = np.random.default_rng(4)
  a, b = _data((4, 8), dtype, rng), _data((4, 8), dtype, rng)
  out = np.zeros(192, NP[dtype])
  run(cat_kernel, {"a_ptr": f"*{dtype}", "b_ptr": f"*{dtype}", "out_ptr": f"*{dtype}"},
      [a, b, out], (1,), {"DETERMINISTIC": CAT_HAS_DIM})
  if CAT_HAS_DIM:
    assert_equal(out[:64], np.concatenate([a, b], 0).ravel(), "cat dim=0")
    assert_equal(out[64:128], np.concatenate([a, b], 1).ravel(), "cat dim=1")
    assert_equal(out[128:160], np.concatenate([a.ravel()[:16], b.ravel()[:16]]), "cat 1-D")
  assert_equal(np.sort(out[160:192].astype(np.float64)),
               np.sort(np.concatenate([a.ravel()[:16], b.ravel()[:16]]).astype(np.float64)),
               "cat(can_reorder=True): same elements")


# ---- broadcast_to / expand_dims / where ---------------------------------------------------------

@triton.jit
def broadcast_kernel(x_ptr, c_ptr, out_ptr):
  x = tl.load(x_ptr + tl.arange(0, 8))                  # (8,)
  b = tl.broadcast_to(x[None, :], (4, 8))
  tl.store(out_ptr + tl.arange(0, 4)[:, None] * 8 + tl.arange(0, 8)[None, :], b)
  e = tl.expand_dims(x, 1)                              # (8, 1)
  e2 = tl.broadcast_to(e, 8, 4)
  tl.store(out_ptr + 32 + tl.arange(0, 8)[:, None] * 4 + tl.arange(0, 4)[None, :], e2)
  e3 = tl.expand_dims(x, (0, 2))                        # (1, 8, 1)
  tl.store(out_ptr + 64 + _offs3(2, 8, 2), tl.broadcast_to(e3, (2, 8, 2)))
  s = tl.broadcast_to(tl.load(x_ptr + 3), (8,))         # a scalar broadcast
  tl.store(out_ptr + 96 + tl.arange(0, 8), s)
  cond = tl.load(c_ptr + tl.arange(0, 4)) != 0          # (4,)
  w = tl.where(cond[:, None], x[None, :], -x[None, :])  # (4,1) x (1,8) x (1,8) -> (4, 8)
  tl.store(out_ptr + 104 + tl.arange(0, 4)[:, None] * 8 + tl.arange(0, 8)[None, :], w)
  w2 = tl.where(x > 0, x, tl.load(x_ptr))               # tensor / scalar branches
  tl.store(out_ptr + 136 + tl.arange(0, 8), w2)


@pytest.mark.parametrize("dtype", DTYPES)
def test_broadcast_to_expand_dims_and_where(dtype):
  rng = np.random.default_rng(5)
  x = _data(8, dtype, rng)
  cond = np.array([1, 0, 0, 1], np.int8)
  out = np.zeros(144, NP[dtype])
  run(broadcast_kernel, {"x_ptr": f"*{dtype}", "c_ptr": "*i8", "out_ptr": f"*{dtype}"},
      [x, cond, out], (1,))
  assert_equal(out[:32], np.broadcast_to(x[None, :], (4, 8)).ravel(), "broadcast_to")
  assert_equal(out[32:64], np.broadcast_to(x[:, None], (8, 4)).ravel(), "expand_dims(1)")
  assert_equal(out[64:96], np.broadcast_to(x[None, :, None], (2, 8, 2)).ravel(),
               "expand_dims((0, 2))")
  assert_equal(out[96:104], np.full(8, x[3]), "scalar broadcast")
  neg = (-x.astype(np.float64)).astype(NP[dtype])
  assert_equal(out[104:136], np.where(cond[:, None] != 0, x[None, :], neg[None, :]).ravel(),
               "where with broadcasts")
  assert_equal(out[136:144], np.where(x.astype(np.float64) > 0, x, x[0]), "where scalar")


# ---- flip ---------------------------------------------------------------------------------------

@triton.jit
def flip_kernel(x_ptr, out_ptr, DEFAULT_DIM: tl.constexpr):
  x1 = tl.load(x_ptr + tl.arange(0, 16))
  r = tl.arange(0, 4)[:, None]
  c = tl.arange(0, 8)[None, :]
  x2 = tl.load(x_ptr + r * 8 + c)
  if DEFAULT_DIM:  # (triton 3.6's tl.flip needs dim)
    tl.store(out_ptr + tl.arange(0, 16), tl.flip(x1))
    tl.store(out_ptr + 80 + r * 8 + c, tl.flip(x2))       # default: the last dim
  else:
    tl.store(out_ptr + tl.arange(0, 16), tl.flip(x1, 0))
    tl.store(out_ptr + 80 + r * 8 + c, tl.flip(x2, 1))
  tl.store(out_ptr + 16 + r * 8 + c, tl.flip(x2, 0))
  tl.store(out_ptr + 48 + r * 8 + c, tl.flip(x2, 1))
  x3 = tl.load(x_ptr + _offs3(2, 4, 4))
  tl.store(out_ptr + 112 + _offs3(2, 4, 4), tl.flip(x3, 1))


@pytest.mark.parametrize("dtype", DTYPES)
def test_flip(dtype):
  x = _data(32, dtype, np.random.default_rng(6))
  out = np.zeros(144, NP[dtype])
  run(flip_kernel, {"x_ptr": f"*{dtype}", "out_ptr": f"*{dtype}"}, [x, out], (1,),
      {"DEFAULT_DIM": FLIP_HAS_DEFAULT_DIM})
  assert_equal(out[:16], x[:16][::-1], "flip 1-D")
  x2 = x.reshape(4, 8)
  assert_equal(out[16:48], x2[::-1].ravel(), "flip dim 0")
  assert_equal(out[48:80], x2[:, ::-1].ravel(), "flip dim 1")
  assert_equal(out[80:112], x2[:, ::-1].ravel(), "flip default dim")
  assert_equal(out[112:144], x.reshape(2, 4, 4)[:, ::-1].ravel(), "flip 3-D dim 1")


# ---- sort / topk --------------------------------------------------------------------------------

@triton.jit
def sort_kernel(x_ptr, out_ptr, R: tl.constexpr, C: tl.constexpr):
  r = tl.arange(0, R)[:, None]
  c = tl.arange(0, C)[None, :]
  x = tl.load(x_ptr + r * C + c)
  S: tl.constexpr = R * C
  tl.store(out_ptr + r * C + c, tl.sort(x))
  tl.store(out_ptr + S + r * C + c, tl.sort(x, descending=True))
  x1 = tl.load(x_ptr + tl.arange(0, S))
  tl.store(out_ptr + 2 * S + tl.arange(0, S), tl.sort(x1, 0))
  tl.store(out_ptr + 3 * S + tl.arange(0, S), tl.sort(x1, descending=True))
  tl.store(out_ptr + 4 * S + r * 4 + tl.arange(0, 4)[None, :], tl.topk(x, 4))


@pytest.mark.parametrize("dtype", ["fp32", "fp16", "u8", "i64"])
def test_sort_and_topk(dtype):
  R, C = 2, 16  # (sorting networks are large: keep compile time low)
  rng = np.random.default_rng(7)
  if is_float(dtype):
    x = rng.standard_normal((R, C)).astype(NP[dtype])
    x[0, :5] = x[0, 5]  # ties
    x[1, :3] = [-0.0, 0.0, -np.inf]
  else:
    x = rng.integers(0, 100, (R, C)).astype(NP[dtype])
  out = np.zeros(5 * R * C, NP[dtype])
  run(sort_kernel, {"x_ptr": f"*{dtype}", "out_ptr": f"*{dtype}"}, [x, out], (1,),
      {"R": R, "C": C})
  S = R * C
  key = lambda a: np.sort(a.astype(np.float64), axis=-1)  # noqa: E731 (-0.0 == 0.0)
  np.testing.assert_array_equal(out[:S].reshape(R, C).astype(np.float64), key(x), "sort rows")
  np.testing.assert_array_equal(out[S:2 * S].reshape(R, C).astype(np.float64), key(x)[:, ::-1],
                                "sort rows descending")
  np.testing.assert_array_equal(out[2 * S:3 * S].astype(np.float64), key(x.ravel()), "sort 1-D")
  np.testing.assert_array_equal(out[3 * S:4 * S].astype(np.float64), key(x.ravel())[::-1],
                                "sort 1-D descending")
  np.testing.assert_array_equal(out[4 * S:4 * S + 4 * R].reshape(R, 4).astype(np.float64),
                                key(x)[:, ::-1][:, :4], "topk 4")


# ---- gather -------------------------------------------------------------------------------------

@triton.jit
def gather_kernel(src_ptr, idx_ptr, idx2_ptr, out_ptr):
  s1 = tl.load(src_ptr + tl.arange(0, 32))
  i1 = tl.load(idx_ptr + tl.arange(0, 16))
  tl.store(out_ptr + tl.arange(0, 16), tl.gather(s1, i1, 0))
  r = tl.arange(0, 4)[:, None]
  c = tl.arange(0, 8)[None, :]
  s2 = tl.load(src_ptr + r * 8 + c)                     # (4, 8)
  i_ax1 = tl.load(idx2_ptr + r * 8 + c) % 8             # (4, 8), values < 8: along axis 1
  tl.store(out_ptr + 16 + r * 8 + c, tl.gather(s2, i_ax1, 1))
  i_ax0 = tl.load(idx2_ptr + tl.arange(0, 2)[:, None] * 8 + c) % 4  # (2, 8), values < 4
  tl.store(out_ptr + 48 + tl.arange(0, 2)[:, None] * 8 + c, s2.gather(i_ax0, 0))


@pytest.mark.parametrize("dtype,idx_dtype", [("fp32", "i32"), ("i16", "i64"), ("bf16", "i32"),
                                             ("i64", "u32")])
def test_gather(dtype, idx_dtype):
  rng = np.random.default_rng(8)
  src = _data(32, dtype, rng)
  idx = rng.integers(0, 32, 16).astype(NP[idx_dtype])
  idx2 = rng.integers(0, 64, 32).astype(NP[idx_dtype])
  out = np.zeros(64, NP[dtype])
  run(gather_kernel, {"src_ptr": f"*{dtype}", "idx_ptr": f"*{idx_dtype}",
                      "idx2_ptr": f"*{idx_dtype}", "out_ptr": f"*{dtype}"},
      [src, idx, idx2, out], (1,))
  assert_equal(out[:16], src[idx.astype(np.int64)], "gather 1-D")
  s2 = src.reshape(4, 8)
  i1 = (idx2.astype(np.int64) % 8).reshape(4, 8)
  assert_equal(out[16:48], np.take_along_axis(s2, i1, 1).ravel(), "gather axis 1")
  i0 = (idx2.astype(np.int64)[:16] % 4).reshape(2, 8)
  assert_equal(out[48:64], np.take_along_axis(s2, i0, 0).ravel(), "gather axis 0")


# ---- histogram ----------------------------------------------------------------------------------

@triton.jit
def histogram_kernel(x_ptr, out_ptr, n, BINS: tl.constexpr, BLOCK: tl.constexpr):
  offs = tl.arange(0, BLOCK)
  x = tl.load(x_ptr + offs, mask=offs < n, other=0)
  tl.store(out_ptr + tl.arange(0, BINS), tl.histogram(x, BINS))
  h = tl.histogram(x, BINS, mask=offs < n)              # masked lanes (value 0) not counted
  tl.store(out_ptr + BINS + tl.arange(0, BINS), h)
  h2 = tl.histogram(x, BINS, mask=(x % 2 == 0) & (offs < n))
  tl.store(out_ptr + 2 * BINS + tl.arange(0, BINS), h2)


@pytest.mark.parametrize("dtype", ["i32", "u32"])
def test_histogram_with_mask(dtype):
  n, block, bins = 100, 128, 16
  x = np.random.default_rng(9).integers(0, bins, n).astype(NP[dtype])
  out = np.zeros(3 * bins, np.int32)
  run(histogram_kernel, {"x_ptr": f"*{dtype}", "out_ptr": "*i32", "n": "i32"}, [x, out, n], (1,),
      {"BINS": bins, "BLOCK": block})
  padded = np.concatenate([x, np.zeros(block - n, x.dtype)]).astype(np.int64)
  assert_equal(out[:bins], np.bincount(padded, minlength=bins).astype(np.int32), "no mask")
  assert_equal(out[bins:2 * bins], np.bincount(x.astype(np.int64), minlength=bins).astype(
      np.int32), "mask = offs < n")
  even = x[x % 2 == 0].astype(np.int64)
  assert_equal(out[2 * bins:], np.bincount(even, minlength=bins).astype(np.int32), "data mask")


# ---- squeeze / slice-like helpers -------------------------------------------------------------

@triton.jit
def squeeze_kernel(x_ptr, out_ptr):
  x = tl.load(x_ptr + tl.arange(0, 8))
  u = tl.expand_dims(x, 0)                               # (1, 8)
  s = tl.reshape(u, (8,))
  tl.store(out_ptr + tl.arange(0, 8), s + 1)
  z = tl.sum(tl.reshape(x, (2, 4)), axis=1)              # (2,)
  j = tl.join(z, z * 2)                                  # (2, 2)
  tl.store(out_ptr + 8 + tl.arange(0, 2)[:, None] * 2 + tl.arange(0, 2)[None, :], j)


def test_reshape_of_expand_dims_and_join_of_reductions():
  x = np.arange(8, dtype=np.int32) * 3 - 7
  out = np.zeros(12, np.int32)
  run(squeeze_kernel, {"x_ptr": "*i32", "out_ptr": "*i32"}, [x, out], (1,))
  assert_equal(out[:8], x + 1)
  z = x.reshape(2, 4).sum(1)
  assert_equal(out[8:], np.stack([z, z * 2], -1).ravel().astype(np.int32))
