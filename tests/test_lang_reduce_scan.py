"""Reductions (tl.sum, max, min, argmax, argmin, xor_sum, tl.reduce with user combine functions and
several operands) and scans (tl.cumsum, cumprod, tl.associative_scan, reverse=True) on every axis of
2-D and 3-D blocks, with keep_dims, on masked tiles whose masked lanes are filled through `other`.

Data is integer-valued (also for float dtypes) wherever the result would otherwise depend on the
order of evaluation, so results are exact and compared exactly; random-float sums use tolerances."""
import numpy as np
import pytest
import triton
import triton.language as tl

from lang_util import ALL, NP, assert_equal, is_float, is_unsigned, run

R, C, BR, BC = 13, 27, 16, 32  # a 16x32 block holding a 13x27 array: masked on both axes


def _limits(dtype):
  """Neutral `other` values for max / min reductions (Python numbers, passed as constexprs)."""
  if is_float(dtype):
    return float("-inf"), float("inf")
  info = np.iinfo(NP[dtype])
  return int(info.min), int(info.max)


def _acc_dtype(dtype):
  """tl.sum's result dtype (standard._pick_sum_dtype): ints narrower than 32 bits widen to 32."""
  return {"i8": "i32", "i16": "i32", "u8": "u32"}.get(dtype, dtype)


def _wide(dtype):
  """The dtype the kernels store reduction values in: exact for every input dtype."""
  return "fp64" if is_float(dtype) else ("u64" if is_unsigned(dtype) else "i64")


@triton.jit
def _store_reduced(ptr, v, R, C, AXIS: tl.constexpr, KEEP: tl.constexpr, BR: tl.constexpr,
                   BC: tl.constexpr):
  """Stores the result of a reduction of a (BR, BC) block over AXIS (-1: all) into ptr[...]."""
  if AXIS == 0:
    i = tl.arange(0, BC)
    if KEEP:
      tl.store(ptr + i[None, :], v, mask=i[None, :] < C)
    else:
      tl.store(ptr + i, v, mask=i < C)
  elif AXIS == 1:
    i = tl.arange(0, BR)
    if KEEP:
      tl.store(ptr + i[:, None], v, mask=i[:, None] < R)
    else:
      tl.store(ptr + i, v, mask=i < R)
  else:
    if KEEP:
      tl.store(ptr + tl.zeros((1, 1), tl.int32), v)
    else:
      tl.store(ptr, v)


@triton.jit
def reduce2d_kernel(x_ptr, val_ptr, idx_ptr, R, C, AXIS: tl.constexpr, KEEP: tl.constexpr,
                    LOW: tl.constexpr, HIGH: tl.constexpr, IS_INT: tl.constexpr,
                    BR: tl.constexpr, BC: tl.constexpr):
  """val rows: sum, max, min, (ints) xor_sum; idx rows: argmax, argmin. Row stride = BR * BC."""
  r = tl.arange(0, BR)[:, None]
  c = tl.arange(0, BC)[None, :]
  mask = (r < R) & (c < C)
  x0 = tl.load(x_ptr + r * C + c, mask=mask, other=0)
  xlo = tl.load(x_ptr + r * C + c, mask=mask, other=LOW)
  xhi = tl.load(x_ptr + r * C + c, mask=mask, other=HIGH)
  S: tl.constexpr = BR * BC
  if AXIS == -1:
    _store_reduced(val_ptr, tl.sum(x0, axis=None, keep_dims=KEEP), R, C, AXIS, KEEP, BR, BC)
    _store_reduced(val_ptr + S, tl.max(xlo, axis=None, keep_dims=KEEP), R, C, AXIS, KEEP, BR, BC)
    _store_reduced(val_ptr + 2 * S, tl.min(xhi, axis=None, keep_dims=KEEP), R, C, AXIS, KEEP, BR,
                   BC)
    if IS_INT:
      _store_reduced(val_ptr + 3 * S, tl.xor_sum(x0, axis=None, keep_dims=KEEP), R, C, AXIS, KEEP,
                     BR, BC)
  else:
    _store_reduced(val_ptr, tl.sum(x0, axis=AXIS, keep_dims=KEEP), R, C, AXIS, KEEP, BR, BC)
    _store_reduced(val_ptr + S, tl.max(xlo, axis=AXIS, keep_dims=KEEP), R, C, AXIS, KEEP, BR, BC)
    _store_reduced(val_ptr + 2 * S, xhi.min(axis=AXIS, keep_dims=KEEP), R, C, AXIS, KEEP, BR, BC)
    if IS_INT:
      _store_reduced(val_ptr + 3 * S, tl.xor_sum(x0, axis=AXIS, keep_dims=KEEP), R, C, AXIS, KEEP,
                     BR, BC)
    _store_reduced(idx_ptr, tl.argmax(xlo, axis=AXIS, keep_dims=KEEP), R, C, AXIS, KEEP, BR, BC)
    _store_reduced(idx_ptr + S, tl.argmin(xhi, axis=AXIS, keep_dims=KEEP), R, C, AXIS, KEEP, BR,
                   BC)


REDUCE_CASES = ([(d, a, False) for d in ALL for a in (0, 1)] +
                [(d, -1, False) for d in ("fp32", "bf16", "i8", "u32")] +
                [(d, a, True) for d in ("fp32", "i64") for a in (0, 1, -1)])


def _tie_data(dtype, rng, shape):
  """Small integers (many ties) incl. negatives for signed types."""
  lo = 0 if is_unsigned(dtype) else -3
  return rng.integers(lo, 4, shape).astype(NP[dtype])


def _run_reduce2d(x, dtype, axis, keep):
  wide = _wide(dtype)
  vals = np.zeros((4, BR * BC), NP[wide])
  idx = np.full((2, BR * BC), -7, np.int32)
  low, high = _limits(dtype)
  run(reduce2d_kernel, {"x_ptr": f"*{dtype}", "val_ptr": f"*{wide}", "idx_ptr": "*i32",
                        "R": "i32", "C": "i32"}, [x, vals, idx, R, C], (1,),
      {"AXIS": axis, "KEEP": keep, "LOW": low, "HIGH": high, "IS_INT": not is_float(dtype),
       "BR": BR, "BC": BC})
  return vals, idx


def _expected_reduce(x, dtype, axis):
  n = {0: C, 1: R, -1: 1}[axis]
  npa = None if axis == -1 else axis
  acc = NP[_acc_dtype(dtype)]
  wide = NP[_wide(dtype)]
  s = x.astype(acc).sum(axis=npa, dtype=acc) if not is_float(dtype) else x.astype(
      np.float64).sum(axis=npa)
  exp_vals = [np.reshape(s, n).astype(wide), np.reshape(x.max(axis=npa), n).astype(wide),
              np.reshape(x.min(axis=npa), n).astype(wide)]
  if not is_float(dtype):
    exp_vals.append(np.reshape(np.bitwise_xor.reduce(x, axis=npa), n).astype(wide))
  exp_idx = [np.reshape(np.argmax(x, axis=npa), n), np.reshape(np.argmin(x, axis=npa), n)]
  return n, exp_vals, exp_idx


@pytest.mark.parametrize("dtype,axis,keep", REDUCE_CASES,
                         ids=[f"{d}-axis{a}-keep{int(k)}" for d, a, k in REDUCE_CASES])
def test_reductions_2d(dtype, axis, keep):
  """sum / max / min / xor_sum / argmax / argmin (ties: the smallest index) of a masked tile."""
  rng = np.random.default_rng(abs(axis) * 10 + len(dtype))
  x = _tie_data(dtype, rng, (R, C))
  vals, idx = _run_reduce2d(x, dtype, axis, keep)
  n, exp_vals, exp_idx = _expected_reduce(x, dtype, axis)
  names = ["sum", "max", "min", "xor_sum"]
  for k, e in enumerate(exp_vals):
    assert_equal(vals[k, :n], e, f"{names[k]} {dtype} axis={axis} keep_dims={keep}")
  if axis != -1:
    for k, e in enumerate(exp_idx):
      assert_equal(idx[k, :n], e.astype(np.int32),
                   f"{['argmax', 'argmin'][k]} {dtype} axis={axis} keep_dims={keep}")


@pytest.mark.parametrize("dtype", ["fp32", "fp64"])
@pytest.mark.parametrize("axis", [0, 1])
def test_float_sums_of_random_data(dtype, axis):
  """Order of summation is free: within n * eps of the float64 sum (relative to sum |x|)."""
  x = np.random.default_rng(8).standard_normal((R, C)).astype(NP[dtype])
  vals, _ = _run_reduce2d(x, dtype, axis, False)
  n = {0: C, 1: R}[axis]
  exact = x.astype(np.float64).sum(axis=axis)
  bound = np.abs(x.astype(np.float64)).sum(axis=axis) * x.shape[axis] * np.finfo(NP[dtype]).eps
  assert (np.abs(vals[0, :n] - exact) <= bound).all()
  assert_equal(vals[1, :n], x.max(axis=axis).astype(np.float64))


def test_max_min_ignore_nan():
  """tl.max / tl.min use maxnum / minnum (PropagateNan.NONE): NaNs are skipped, as np.nanmax."""
  x = np.random.default_rng(9).standard_normal((R, C)).astype(np.float32)
  x[::3, ::4] = np.nan
  vals, _ = _run_reduce2d(x, "fp32", 1, False)
  assert_equal(vals[1, :R], np.nanmax(x, axis=1).astype(np.float64), "max")
  assert_equal(vals[2, :R], np.nanmin(x, axis=1).astype(np.float64), "min")


def test_argmax_argmin_ties_pick_the_smallest_index():
  """All-equal rows and columns: index 0; a repeated maximum: its first position."""
  x = np.zeros((R, C), np.int32)
  x[1, 5] = x[1, 9] = 3
  x[:, 20] = 5
  x[:, 21] = 5
  x[3] = -2
  x[3, 7] = x[3, 2] = -5
  vals, idx = _run_reduce2d(x, "i32", 1, False)
  assert_equal(idx[0, :R], np.argmax(x, axis=1).astype(np.int32), "argmax axis 1")
  assert_equal(idx[1, :R], np.argmin(x, axis=1).astype(np.int32), "argmin axis 1")
  vals, idx = _run_reduce2d(x, "i32", 0, False)
  assert_equal(idx[0, :C], np.argmax(x, axis=0).astype(np.int32), "argmax axis 0")
  assert_equal(idx[1, :C], np.argmin(x, axis=0).astype(np.int32), "argmin axis 0")


# ---- 3-D ----------------------------------------------------------------------------------------

D0, D1, D2, B0, B1, B2 = 3, 5, 12, 4, 8, 16


@triton.jit
def reduce3d_kernel(x_ptr, sum_ptr, max_ptr, arg_ptr, D0, D1, D2, AXIS: tl.constexpr,
                    B0: tl.constexpr, B1: tl.constexpr, B2: tl.constexpr):
  i = tl.arange(0, B0)[:, None, None]
  j = tl.arange(0, B1)[None, :, None]
  k = tl.arange(0, B2)[None, None, :]
  mask = (i < D0) & (j < D1) & (k < D2)
  x = tl.load(x_ptr + (i * D1 + j) * D2 + k, mask=mask, other=0)
  xlo = tl.load(x_ptr + (i * D1 + j) * D2 + k, mask=mask, other=-1000)
  s = tl.sum(x, axis=AXIS)
  m = tl.max(xlo, axis=AXIS)
  a = tl.argmax(xlo, axis=AXIS)
  # the result is 2-D: (rows, cols) = the two remaining axes
  if AXIS == 0:
    ro = tl.arange(0, B1)[:, None]
    co = tl.arange(0, B2)[None, :]
    omask = (ro < D1) & (co < D2)
    ncol = D2
  elif AXIS == 1:
    ro = tl.arange(0, B0)[:, None]
    co = tl.arange(0, B2)[None, :]
    omask = (ro < D0) & (co < D2)
    ncol = D2
  else:
    ro = tl.arange(0, B0)[:, None]
    co = tl.arange(0, B1)[None, :]
    omask = (ro < D0) & (co < D1)
    ncol = D1
  tl.store(sum_ptr + ro * ncol + co, s, mask=omask)
  tl.store(max_ptr + ro * ncol + co, m, mask=omask)
  tl.store(arg_ptr + ro * ncol + co, a, mask=omask)


@pytest.mark.parametrize("dtype", ["fp32", "i32", "i16"])
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_reductions_3d(dtype, axis):
  rng = np.random.default_rng(axis)
  x = _tie_data(dtype, rng, (D0, D1, D2))
  shape = [d for a, d in enumerate((D0, D1, D2)) if a != axis]
  acc = NP[_acc_dtype(dtype)]
  s = np.zeros(shape, acc)
  m = np.zeros(shape, NP[dtype])
  a = np.zeros(shape, np.int32)
  run(reduce3d_kernel, {"x_ptr": f"*{dtype}", "sum_ptr": f"*{_acc_dtype(dtype)}",
                        "max_ptr": f"*{dtype}", "arg_ptr": "*i32", "D0": "i32", "D1": "i32",
                        "D2": "i32"}, [x, s, m, a, D0, D1, D2], (1,),
      {"AXIS": axis, "B0": B0, "B1": B1, "B2": B2})
  assert_equal(s, x.astype(acc).sum(axis=axis, dtype=acc), f"sum axis {axis}")
  assert_equal(m, x.max(axis=axis), f"max axis {axis}")
  assert_equal(a, np.argmax(x, axis=axis).astype(np.int32), f"argmax axis {axis}")


# ---- tl.reduce with user combine functions ------------------------------------------------------

@triton.jit
def _mul_combine(a, b):
  return a * b


@triton.jit
def _absmax_combine(a, b):
  return tl.maximum(tl.abs(a), tl.abs(b))


@triton.jit
def _sum_and_max_combine(a0, a1, b0, b1):
  return a0 + b0, tl.maximum(a1, b1)


@triton.jit
def _argmax_by_key_combine(k1, v1, i1, k2, v2, i2):
  """Three operands: the value of the largest key, smallest index among ties."""
  pick1 = (k1 > k2) | ((k1 == k2) & (i1 < i2))
  return tl.where(pick1, k1, k2), tl.where(pick1, v1, v2), tl.where(pick1, i1, i2)


@triton.jit
def user_reduce_kernel(x_ptr, y_ptr, out_ptr, R, C, AXIS: tl.constexpr, BR: tl.constexpr,
                       BC: tl.constexpr):
  r = tl.arange(0, BR)[:, None]
  c = tl.arange(0, BC)[None, :]
  mask = (r < R) & (c < C)
  x1 = tl.load(x_ptr + r * C + c, mask=mask, other=1)
  x0 = tl.load(x_ptr + r * C + c, mask=mask, other=0)
  y = tl.load(y_ptr + r * C + c, mask=mask, other=-1000)
  if AXIS == 0:
    o = tl.arange(0, BC)
    om = o < C
  else:
    o = tl.arange(0, BR)
    om = o < R
  S: tl.constexpr = BR * BC
  tl.store(out_ptr + o, tl.reduce(x1, AXIS, _mul_combine), mask=om)
  tl.store(out_ptr + S + o, tl.reduce(x0, AXIS, _absmax_combine), mask=om)
  s, m = tl.reduce((x0, y), AXIS, _sum_and_max_combine)
  tl.store(out_ptr + 2 * S + o, s, mask=om)
  tl.store(out_ptr + 3 * S + o, m, mask=om)
  idx = tl.broadcast_to(r * BC + c, (BR, BC))
  _, v, i = tl.reduce((y, x0, idx), AXIS, _argmax_by_key_combine)
  tl.store(out_ptr + 4 * S + o, v, mask=om)
  tl.store(out_ptr + 5 * S + o, i, mask=om)
  # keep_dims and a scalar result of a user reduction
  kd = tl.reduce(x0, AXIS, _absmax_combine, keep_dims=True)
  if AXIS == 0:
    tl.store(out_ptr + 6 * S + o[None, :], kd, mask=om[None, :])
  else:
    tl.store(out_ptr + 6 * S + o[:, None], kd, mask=om[:, None])
  tl.store(out_ptr + 7 * S, tl.reduce(tl.reduce(x1, 1, _mul_combine), 0, _mul_combine))


@pytest.mark.parametrize("dtype", ["i32", "i64", "fp32"])
@pytest.mark.parametrize("axis", [0, 1])
def test_user_combine_functions(dtype, axis):
  rng = np.random.default_rng(21 + axis)
  x = rng.integers(-2, 3, (R, C)).astype(NP[dtype])
  x[x == 0] = 1  # keep products non-zero
  y = rng.integers(-5, 5, (R, C)).astype(NP[dtype])
  out = np.zeros((8, BR * BC), NP[dtype])
  run(user_reduce_kernel, {"x_ptr": f"*{dtype}", "y_ptr": f"*{dtype}", "out_ptr": f"*{dtype}",
                           "R": "i32", "C": "i32"}, [x, y, out, R, C], (1,),
      {"AXIS": axis, "BR": BR, "BC": BC})
  n = C if axis == 0 else R
  with np.errstate(all="ignore"):
    assert_equal(out[0, :n], np.prod(x, axis=axis, dtype=NP[dtype]), "product")
  assert_equal(out[1, :n], np.abs(x).max(axis=axis), "max |x|")
  assert_equal(out[2, :n], x.sum(axis=axis, dtype=NP[dtype]), "multi-operand: sum")
  assert_equal(out[3, :n], y.max(axis=axis), "multi-operand: max")
  # argmax of y by key over the padded block (masked keys are -1000), flat block indices
  ypad = np.full((BR, BC), -1000, NP[dtype])
  ypad[:R, :C] = y
  xpad = np.zeros((BR, BC), NP[dtype])
  xpad[:R, :C] = x
  best = np.argmax(ypad, axis=axis)
  if axis == 0:
    v = xpad[best, np.arange(BC)][:n]
    i = (best * BC + np.arange(BC))[:n]
  else:
    v = xpad[np.arange(BR), best][:n]
    i = (np.arange(BR) * BC + best)[:n]
  assert_equal(out[4, :n], v.astype(NP[dtype]), "3 operands: value")
  assert_equal(out[5, :n], i.astype(NP[dtype]), "3 operands: index")
  assert_equal(out[6, :n], np.abs(x).max(axis=axis), "keep_dims")
  with np.errstate(all="ignore"):
    assert_equal(out[7, 0], np.prod(x, dtype=NP[dtype]), "nested reductions to a scalar")


# ---- scans --------------------------------------------------------------------------------------

@triton.jit
def scan2d_kernel(x_ptr, sum_ptr, prod_ptr, R, C, AXIS: tl.constexpr, REVERSE: tl.constexpr,
                  BR: tl.constexpr, BC: tl.constexpr):
  r = tl.arange(0, BR)[:, None]
  c = tl.arange(0, BC)[None, :]
  mask = (r < R) & (c < C)
  x0 = tl.load(x_ptr + r * C + c, mask=mask, other=0)
  x1 = tl.load(x_ptr + r * C + c, mask=mask, other=1)
  tl.store(sum_ptr + r * C + c, tl.cumsum(x0, axis=AXIS, reverse=REVERSE), mask=mask)
  tl.store(prod_ptr + r * C + c, tl.cumprod(x1, axis=AXIS, reverse=REVERSE), mask=mask)


SCAN_CASES = ([(d, a, False) for d in ALL for a in (0, 1)] +
              [(d, a, True) for d in ("fp32", "i32", "u8") for a in (0, 1)])


def _cum(f, x, axis, reverse):
  if reverse:
    return np.flip(f(np.flip(x, axis), axis), axis)
  return f(x, axis)


@pytest.mark.parametrize("dtype,axis,reverse", SCAN_CASES,
                         ids=[f"{d}-axis{a}-rev{int(r)}" for d, a, r in SCAN_CASES])
def test_cumsum_cumprod_2d(dtype, axis, reverse):
  rng = np.random.default_rng(31 + axis)
  x = _tie_data(dtype, rng, (R, C))
  # products: ints wrap (as numpy); floats are powers of two (exact whatever the association)
  px = rng.choice([1, -1, 2, -2, 3], (R, C)).astype(NP[dtype])
  if is_unsigned(dtype):
    px = rng.choice([1, 2, 3], (R, C)).astype(NP[dtype])
  if is_float(dtype):
    px = rng.choice([1.0, -1.0, 2.0, 0.5], (R, C), p=[0.4, 0.4, 0.1, 0.1]).astype(NP[dtype])
  acc = _acc_dtype(dtype)
  s = np.zeros((R, C), NP[acc])
  p = np.zeros((R, C), NP[acc])
  sig = {"x_ptr": f"*{dtype}", "sum_ptr": f"*{acc}", "prod_ptr": f"*{acc}", "R": "i32", "C": "i32"}
  consts = {"AXIS": axis, "REVERSE": reverse, "BR": BR, "BC": BC}
  run(scan2d_kernel, sig, [x, s, np.zeros_like(p), R, C], (1,), consts)
  run(scan2d_kernel, sig, [px, np.zeros_like(s), p, R, C], (1,), consts)
  a = NP[acc]
  with np.errstate(all="ignore"):
    assert_equal(s, _cum(lambda v, ax: np.cumsum(v.astype(a), ax, dtype=a), x, axis, reverse),
                 f"cumsum {dtype} axis={axis} reverse={reverse}")
    if is_float(dtype) and dtype in ("fp16", "bf16"):
      expected_p = _cum(lambda v, ax: np.cumprod(v.astype(np.float64), ax), px, axis, reverse)
      expected_p = np.clip(expected_p, -2.0**100, 2.0**100).astype(NP[acc])
    else:  # (triton 3.6's cumprod has no dtype: it multiplies in the input's type)
      a_prod = a if "dtype" in tl.cumprod.arg_names else NP[dtype]
      expected_p = _cum(lambda v, ax: np.cumprod(v.astype(a_prod), ax, dtype=a_prod), px, axis,
                        reverse).astype(a)
    assert_equal(p, expected_p, f"cumprod {dtype} axis={axis} reverse={reverse}")


@triton.jit
def scan3d_kernel(x_ptr, out_ptr, D0, D1, D2, AXIS: tl.constexpr, REVERSE: tl.constexpr,
                  B0: tl.constexpr, B1: tl.constexpr, B2: tl.constexpr):
  i = tl.arange(0, B0)[:, None, None]
  j = tl.arange(0, B1)[None, :, None]
  k = tl.arange(0, B2)[None, None, :]
  mask = (i < D0) & (j < D1) & (k < D2)
  offs = (i * D1 + j) * D2 + k
  x = tl.load(x_ptr + offs, mask=mask, other=0)
  tl.store(out_ptr + offs, tl.cumsum(x, axis=AXIS, reverse=REVERSE), mask=mask)


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_cumsum_3d(axis, reverse):
  x = _tie_data("fp32", np.random.default_rng(axis), (D0, D1, D2))
  out = np.zeros_like(x)
  run(scan3d_kernel, {"x_ptr": "*fp32", "out_ptr": "*fp32", "D0": "i32", "D1": "i32", "D2": "i32"},
      [x, out, D0, D1, D2], (1,),
      {"AXIS": axis, "REVERSE": reverse, "B0": B0, "B1": B1, "B2": B2})
  assert_equal(out, _cum(lambda v, ax: np.cumsum(v, ax), x, axis, reverse))


@triton.jit
def _linear_recurrence(a1, b1, a2, b2):
  """(a, b) pairs composing x -> a * x + b: first (a1, b1), then (a2, b2). Associative, not
  commutative: a scan must keep the order."""
  return a1 * a2, b1 * a2 + b2


@triton.jit
def _max_combine(a, b):
  return tl.maximum(a, b)


@triton.jit
def user_scan_kernel(a_ptr, b_ptr, h_ptr, m_ptr, R, C, AXIS: tl.constexpr, REVERSE: tl.constexpr,
                     BR: tl.constexpr, BC: tl.constexpr):
  r = tl.arange(0, BR)[:, None]
  c = tl.arange(0, BC)[None, :]
  mask = (r < R) & (c < C)
  a = tl.load(a_ptr + r * C + c, mask=mask, other=1)
  b = tl.load(b_ptr + r * C + c, mask=mask, other=0)
  _, h = tl.associative_scan((a, b), AXIS, _linear_recurrence, reverse=REVERSE)
  tl.store(h_ptr + r * C + c, h, mask=mask)
  blo = tl.load(b_ptr + r * C + c, mask=mask, other=-1000)  # masked lanes: neutral for max
  tl.store(m_ptr + r * C + c, tl.associative_scan(blo, AXIS, _max_combine, reverse=REVERSE),
           mask=mask)


def _recurrence(a, b, axis, reverse):
  """h_t = a_t * h_{t-1} + b_t (h_{-1} = 0), along axis; reversed: from the end."""
  a, b = np.moveaxis(a, axis, 0), np.moveaxis(b, axis, 0)
  order = range(a.shape[0] - 1, -1, -1) if reverse else range(a.shape[0])
  h = np.zeros_like(b)
  prev = np.zeros_like(b[0])
  for t in order:
    prev = a[t] * prev + b[t]
    h[t] = prev
  return np.moveaxis(h, 0, axis)


@pytest.mark.parametrize("dtype", ["i32", "fp64"])
@pytest.mark.parametrize("axis,reverse", [(0, False), (1, False), (1, True), (0, True)])
def test_associative_scan_user_combine(dtype, axis, reverse):
  rng = np.random.default_rng(41)
  a = rng.integers(-2, 3, (R, C)).astype(NP[dtype])
  b = rng.integers(-3, 4, (R, C)).astype(NP[dtype])
  h = np.zeros((R, C), NP[dtype])
  m = np.zeros((R, C), NP[dtype])
  run(user_scan_kernel, {"a_ptr": f"*{dtype}", "b_ptr": f"*{dtype}", "h_ptr": f"*{dtype}",
                         "m_ptr": f"*{dtype}", "R": "i32", "C": "i32"}, [a, b, h, m, R, C], (1,),
      {"AXIS": axis, "REVERSE": reverse, "BR": BR, "BC": BC})
  with np.errstate(all="ignore"):
    assert_equal(h, _recurrence(a, b, axis, reverse), "linear recurrence (2 operands)")
  assert_equal(m, _cum(lambda v, ax: np.maximum.accumulate(v, ax), b, axis, reverse), "cummax")


@triton.jit
def scan_1d_kernel(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
  offs = tl.arange(0, BLOCK)
  x = tl.load(x_ptr + offs, mask=offs < n, other=0)
  tl.store(out_ptr + offs, tl.cumsum(x, 0), mask=offs < n)
  tl.store(out_ptr + n + offs, tl.cumsum(x, 0, reverse=True), mask=offs < n)
  tl.store(out_ptr + 2 * n, tl.sum(x, 0))


@pytest.mark.parametrize("n,block", [(1, 1), (5, 8), (1000, 1024)])
def test_1d_scans_and_sums(n, block):
  x = np.random.default_rng(n).integers(-50, 50, n).astype(np.int64)
  out = np.zeros(2 * n + 1, np.int64)
  run(scan_1d_kernel, {"x_ptr": "*i64", "out_ptr": "*i64", "n": "i32"}, [x, out, n], (1,),
      {"BLOCK": block})
  assert_equal(out[:n], np.cumsum(x), "cumsum")
  assert_equal(out[n:2 * n], np.cumsum(x[::-1])[::-1], "reverse cumsum")
  assert out[2 * n] == x.sum()


@triton.jit
def big_1d_kernel(x_ptr, out_ptr, idx_ptr, n, BLOCK: tl.constexpr):
  offs = tl.arange(0, BLOCK)
  x = tl.load(x_ptr + offs, mask=offs < n, other=0)
  tl.store(out_ptr, tl.sum(x, axis=0))
  tl.store(out_ptr + 1, tl.max(tl.where(offs < n, x, -1000), axis=0))
  tl.store(idx_ptr, tl.argmax(tl.where(offs < n, x, -1000), axis=0))
  tl.store(idx_ptr + 1, tl.argmin(tl.where(offs < n, x, 1000), axis=0))
  c = tl.cumsum(x, axis=0)
  tl.store(out_ptr + 2, tl.max(c, axis=0))


def test_large_1d_reductions():
  """8192 lanes (masked to 8000); the maximum occurs several times: argmax is its first index."""
  n, block = 8000, 8192
  x = np.random.default_rng(51).integers(-100, 100, n).astype(np.int32)
  x[[777, 3000, 7999]] = 500
  x[[5, 6000]] = -500
  out = np.zeros(3, np.int32)
  idx = np.zeros(2, np.int32)
  run(big_1d_kernel, {"x_ptr": "*i32", "out_ptr": "*i32", "idx_ptr": "*i32", "n": "i32"},
      [x, out, idx, n], (1,), {"BLOCK": block})
  assert_equal(out, np.array([x.sum(), 500, np.cumsum(x).max()], np.int32))
  assert_equal(idx, np.array([777, 5], np.int32))


@triton.jit
def degenerate_kernel(x_ptr, out_ptr, C: tl.constexpr):
  """Size-1 axes: reductions and scans over them, and over the other axis of (1, C) / (C, 1)."""
  c = tl.arange(0, C)
  row = tl.load(x_ptr + c[None, :])                     # (1, C)
  col = tl.load(x_ptr + c[:, None])                     # (C, 1)
  tl.store(out_ptr + c, tl.sum(row, axis=0))            # over the size-1 axis: identity
  tl.store(out_ptr + C + c, tl.sum(col, axis=1))
  tl.store(out_ptr + 2 * C, tl.sum(row, axis=1).reshape(()))  # (1,) -> scalar
  tl.store(out_ptr + 2 * C + 1, tl.max(col, axis=0).reshape(()))
  tl.store(out_ptr + 3 * C + c[:, None], tl.cumsum(col, axis=1))
  tl.store(out_ptr + 4 * C + c[None, :], tl.cumsum(row, axis=1))
  one = tl.load(x_ptr + tl.arange(0, 1))                # a (1,) tensor
  tl.store(out_ptr + 5 * C + tl.arange(0, 1), tl.cumsum(one, 0) + tl.sum(one, 0))


def test_reductions_and_scans_over_size_one_axes():
  C = 16
  x = np.arange(C, dtype=np.int32) * 3 - 20
  out = np.zeros(5 * C + 1, np.int32)
  run(degenerate_kernel, {"x_ptr": "*i32", "out_ptr": "*i32"}, [x, out], (1,), {"C": C})
  assert_equal(out[:C], x, "sum over a size-1 axis")
  assert_equal(out[C:2 * C], x, "sum over a size-1 axis (column)")
  assert out[2 * C] == x.sum() and out[2 * C + 1] == x.max()
  assert_equal(out[3 * C:4 * C], x, "cumsum over a size-1 axis")
  assert_equal(out[4 * C:5 * C], np.cumsum(x).astype(np.int32), "cumsum of a (1, C) row")
  assert out[5 * C] == 2 * x[0]


# ------------------------------------------------------------------------------------------------
# Reductions computed by the loop that materialises their input (codegen/plan.py)
# ------------------------------------------------------------------------------------------------

def fused_reductions(kernel, signature, constants):
  """The source lines, counted from the kernel's `def`, of the reductions that the loops
  materialising their inputs compute."""
  from jax_triton_cpu.compiler import CPUOptions, frontend, reader
  from jax_triton_cpu.compiler.codegen.plan import Plan
  module = reader.read_ttir(frontend.make_ttir(kernel, signature, constants, {}, CPUOptions()))
  first = kernel.fn.__code__.co_firstlineno
  plan = Plan(module.kernel)
  return sorted(op.loc.line - first for ops in plan.fused_reductions.values() for op in ops)


@triton.jit
def row_statistics_kernel(x_ptr, y_ptr, out_ptr, stats_ptr, n, BLOCK: tl.constexpr):
  offs = tl.arange(0, BLOCK)
  mask = offs < n
  x = tl.load(x_ptr + offs, mask=mask, other=0.0)
  mean = tl.sum(x, axis=0) / n                                       # fused into x
  tl.store(stats_ptr, mean)
  big = tl.max(tl.where(mask, x, -1e30), axis=0)                     # fused: pure, after a store
  xc = tl.where(mask, x - mean, 0.0)
  var = tl.sum(xc * xc, axis=0) / n                                  # fused into xc
  scaled = tl.sum(x * big, axis=0)                                   # not: needs big, after x
  tl.store(stats_ptr + 1, var)
  dot = tl.sum(x * tl.load(y_ptr + offs, mask=mask, other=0.0), 0)   # not: loads after a store
  first = tl.argmax(tl.where(mask, x, -1e30), axis=0)                # fused: two operands
  tl.store(stats_ptr + 2, big)
  tl.store(stats_ptr + 3, scaled)
  tl.store(stats_ptr + 4, dot)
  tl.store(stats_ptr + 5, first.to(tl.float32))
  tl.store(out_ptr + offs, xc * x, mask=mask)


@pytest.mark.parametrize("n, block", [(1000, 1024), (64, 64), (5, 8)])
def test_reductions_fused_into_materialising_loops_1d(n, block):
  signature = {"x_ptr": "*fp32", "y_ptr": "*fp32", "out_ptr": "*fp32", "stats_ptr": "*fp32",
               "n": "i32"}
  assert fused_reductions(row_statistics_kernel, signature, {"BLOCK": block}) == [5, 7, 9, 13]
  rng = np.random.default_rng(n)
  x = rng.integers(-20, 20, n).astype(np.float32)
  y = rng.integers(-20, 20, n).astype(np.float32)
  x[n // 3] = 50  # the maximum, once
  out, stats = np.zeros(n, np.float32), np.zeros(6, np.float32)
  run(row_statistics_kernel, signature, [x, y, out, stats, n], (1,), {"BLOCK": block})
  x64 = x.astype(np.float64)
  mean = np.float32(x64.sum() / n)
  xc = x - mean
  np.testing.assert_allclose(stats, [mean, (xc * xc).sum() / n, 50, x64.sum() * 50,
                                     (x64 * y).sum(), n // 3], rtol=1e-5)
  np.testing.assert_allclose(out, xc * x, rtol=1e-6)


@triton.jit
def rows_kernel(x_ptr, out_ptr, sums_ptr, R, C, BR: tl.constexpr, BC: tl.constexpr):
  r = tl.arange(0, BR)[:, None]
  c = tl.arange(0, BC)[None, :]
  mask = (r < R) & (c < C)
  x = tl.load(x_ptr + r * C + c, mask=mask, other=0)
  total = tl.sum(x, axis=1)                                          # fused into x
  squares = tl.sum(x * x, axis=1)                                    # fused into x
  top = tl.max(tl.where(mask, x, -1000), axis=1)                     # fused into x
  down = tl.sum(x, axis=0)                                           # not: another axis
  tl.store(sums_ptr + tl.arange(0, BR), total)
  tl.store(sums_ptr + BR + tl.arange(0, BR), squares)
  tl.store(sums_ptr + 2 * BR + tl.arange(0, BR), top)
  tl.store(sums_ptr + 3 * BR + tl.arange(0, BC), down)
  tl.store(out_ptr + r * C + c, x - total[:, None], mask=mask)


@pytest.mark.parametrize("dtype", ["i32", "fp32", "fp64"])
def test_reductions_fused_into_materialising_loops_2d(dtype):
  signature = {"x_ptr": f"*{dtype}", "out_ptr": f"*{dtype}", "sums_ptr": f"*{dtype}",
               "R": "i32", "C": "i32"}
  constants = {"BR": BR, "BC": BC}
  assert fused_reductions(rows_kernel, signature, constants) == [6, 7, 8]
  x = np.random.default_rng(7).integers(-30, 30, (R, C)).astype(NP[dtype])
  out, sums = np.zeros((R, C), NP[dtype]), np.zeros(3 * BR + BC, NP[dtype])
  run(rows_kernel, signature, [x, out, sums, R, C], (1,), constants)
  assert_equal(sums[:R], x.sum(1), "sum")
  assert_equal(sums[BR:BR + R], (x * x).sum(1), "sum of squares")
  assert_equal(sums[2 * BR:2 * BR + R], x.max(1), "max")
  assert_equal(sums[3 * BR:3 * BR + C], x.sum(0), "column sums")
  assert_equal(out, x - x.sum(1, keepdims=True), "x - row sums")


# ---- the order of a row's combines ------------------------------------------------------------
# Along the last axis a row is combined chunk by chunk (4 registers of lanes), then the chunk's
# lanes by halves; rows of one chunk are folded together, a register of rows at a time
# (reduction._RowFolder), in that same order. A combine that is neither commutative nor
# associative (3a + b, wrapping) pins it.

@triton.jit
def _three_a_plus_b(a, b):
  return a * 3 + b


@triton.jit
def ordered_reduce_kernel(x_ptr, out_ptr, fused_ptr, R: tl.constexpr, C: tl.constexpr):
  rows, cols = tl.arange(0, R), tl.arange(0, C)
  x = tl.load(x_ptr + rows[:, None] * C + cols[None, :])
  tl.store(out_ptr + rows, tl.reduce(x, 1, _three_a_plus_b))
  y = x + 1  # materialised (stored and reduced): the reduction runs in the loop computing it
  tl.store(x_ptr + rows[:, None] * C + cols[None, :], y)
  tl.store(fused_ptr + rows, tl.reduce(y, 1, _three_a_plus_b))


def _ordered_reference(x: np.ndarray, lanes: int) -> np.ndarray:
  """Per row: chunks of min(C, 4 * lanes) combined in turn, then their lanes by halves."""
  f = lambda a, b: (a * 3 + b) & 0xFFFFFFFF
  width = min(x.shape[1], 4 * lanes)
  acc = x[:, :width].astype(np.int64)
  for start in range(width, x.shape[1], width):
    acc = f(acc, x[:, start:start + width])
  while acc.shape[1] > 1:
    half = acc.shape[1] // 2
    acc = f(acc[:, :half], acc[:, half:])
  return acc[:, 0].astype(np.uint32).view(np.int32)


ORDER_TARGETS = {"host": "", "avx2": "haswell,+avx2,+fma,+f16c,+avx", "sse2": "x86-64"}


@pytest.mark.parametrize("target", list(ORDER_TARGETS))
@pytest.mark.parametrize("shape", [(32, 16), (16, 64), (64, 8), (32, 4), (16, 128), (8, 2)])
def test_rows_combine_in_chunk_then_halving_order(target, shape, monkeypatch):
  from jax_triton_cpu.compiler.target import _target
  monkeypatch.setenv("JAX_TRITON_CPU_TARGET", ORDER_TARGETS[target])
  lanes = _target(ORDER_TARGETS[target]).vector_bits // 32
  r, c = shape
  rng = np.random.default_rng(r * c)
  x = rng.integers(-1000, 1000, shape).astype(np.int32)
  out, fused = np.zeros(r, np.int32), np.zeros(r, np.int32)
  expected, expected_fused = _ordered_reference(x, lanes), _ordered_reference(x + 1, lanes)
  run(ordered_reduce_kernel, {"x_ptr": "*i32", "out_ptr": "*i32", "fused_ptr": "*i32"},
      [x, out, fused], (1,), {"R": r, "C": c})
  assert_equal(out, expected, f"{target} {shape}")
  assert_equal(fused, expected_fused, f"{target} {shape} fused")
