"""tl.map_elementwise (a scalar function over tensors: branches in it, several results, pack > 1)
and combine functions with branches in tl.reduce / tl.associative_scan, against numpy."""
import numpy as np
import pytest
import triton
import triton.language as tl

from lang_util import run


@triton.jit
def sign_of_difference(x, y):
  if x < y:
    return -1
  elif x == y:
    return 0
  else:
    return 1


@triton.jit
def compare_kernel(x_ptr, y_ptr, z_ptr, BLOCK: tl.constexpr):
  offs = tl.arange(0, BLOCK)
  z = tl.map_elementwise(sign_of_difference, tl.load(x_ptr + offs), tl.load(y_ptr + offs))
  tl.store(z_ptr + offs, z)


def test_branches_in_the_function():
  """The function's if / elif / else (branches between blocks in TTIR) is taken lane by lane."""
  rng = np.random.default_rng(0)
  x = rng.integers(-3, 3, 256).astype(np.int32)
  y = rng.integers(-3, 3, 256).astype(np.int32)
  z = np.zeros(256, np.int32)
  run(compare_kernel, {"x_ptr": "*i32", "y_ptr": "*i32", "z_ptr": "*i32"}, [x, y, z], (1,),
      {"BLOCK": 256})
  np.testing.assert_array_equal(z, np.sign(x.astype(np.int64) - y))


@triton.jit
def divmod_fn(a, b):
  return a // b, a % b


@triton.jit
def divmod2(a0, a1, b0, b1):
  return a0 // b0, a1 // b1, a0 % b0, a1 % b1


@triton.jit
def divmod4(a0, a1, a2, a3, b0, b1, b2, b3):
  return a0 // b0, a1 // b1, a2 // b2, a3 // b3, a0 % b0, a1 % b1, a2 % b2, a3 % b3


@triton.jit
def divmod_kernel(a_ptr, b_ptr, q_ptr, r_ptr, M: tl.constexpr, N: tl.constexpr,
                  PACK: tl.constexpr, TRANSPOSED: tl.constexpr):
  offs = tl.arange(0, M)[:, None] * N + tl.arange(0, N)[None, :]
  a = tl.load(a_ptr + offs)
  b = tl.load(b_ptr + offs)
  if PACK == 1:
    q, r = tl.map_elementwise(divmod_fn, a, b)
  elif PACK == 2:
    q, r = tl.map_elementwise(divmod2, a, b, pack=2)
  else:
    q, r = tl.map_elementwise(divmod4, a, b, pack=4)
  if TRANSPOSED:  # read lane by lane, so that a chunk can hold fewer lanes than a pack
    t_offs = tl.arange(0, N)[:, None] * M + tl.arange(0, M)[None, :]
    tl.store(q_ptr + t_offs, tl.trans(q))
    tl.store(r_ptr + t_offs, tl.trans(r))
  else:
    tl.store(q_ptr + offs, q)
    tl.store(r_ptr + offs, r)


@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("pack", [1, 2, 4])
def test_several_results_and_packs(pack, transposed):
  """pack=p hands the function p consecutive elements of each operand; its results come back to
  the same elements (each element's quotient and remainder, whatever the packing)."""
  m, n = 8, 32
  rng = np.random.default_rng(pack)
  a = rng.integers(0, 1 << 31, (m, n), dtype=np.uint32)
  b = rng.integers(1, 1000, (m, n), dtype=np.uint32)
  q, r = np.zeros((m, n), np.uint32), np.zeros((m, n), np.uint32)
  run(divmod_kernel, {"a_ptr": "*u32", "b_ptr": "*u32", "q_ptr": "*u32", "r_ptr": "*u32"},
      [a, b, q, r], (1,), {"M": m, "N": n, "PACK": pack, "TRANSPOSED": transposed})
  if transposed:
    q, r = q.reshape(n, m).T, r.reshape(n, m).T
  np.testing.assert_array_equal(q, a // b)
  np.testing.assert_array_equal(r, a % b)


@triton.jit
def larger_by_branch(a, b):
  if a > b:
    return a
  return b


@triton.jit
def add_unless_negative(a, b):
  if b < 0:
    return a
  return a + b


@triton.jit
def branchy_combine_kernel(x_ptr, max_ptr, scan_ptr, M: tl.constexpr, N: tl.constexpr):
  offs = tl.arange(0, M)[:, None] * N + tl.arange(0, N)[None, :]
  x = tl.load(x_ptr + offs)
  tl.store(max_ptr + tl.arange(0, M), tl.reduce(x, 1, larger_by_branch))
  tl.store(scan_ptr + offs, tl.associative_scan(x, 1, add_unless_negative))


def test_branches_in_combine_functions():
  """A combine function with an early return (branches) in tl.reduce and tl.associative_scan."""
  m, n = 16, 64
  rng = np.random.default_rng(7)
  x = rng.integers(-50, 50, (m, n)).astype(np.int32)
  largest, scanned = np.zeros(m, np.int32), np.zeros((m, n), np.int32)
  run(branchy_combine_kernel, {"x_ptr": "*i32", "max_ptr": "*i32", "scan_ptr": "*i32"},
      [x, largest, scanned], (1,), {"M": m, "N": n})
  np.testing.assert_array_equal(largest, x.max(axis=1))
  # a + b where b >= 0: associative on these values only when every prefix combines the same
  # way; the sum of the non-negative elements so far, plus the first element if it is negative
  expected = np.cumsum(np.where(x >= 0, x, 0), axis=1)
  expected += np.where(x[:, :1] < 0, x[:, :1], 0)
  np.testing.assert_array_equal(scanned, expected)
