"""Elementwise Triton ops (arithmetic, comparisons, bitwise, shifts, where, min/max, clamp, fma, abs,
umulhi, casts, cdiv, constexpr arithmetic) on tensors and scalars, compared with numpy.

Inputs are 2-D 37x50 arrays tiled by 16x32 blocks (a 3x2 grid, edge blocks masked) unless a test says
otherwise. Single IEEE operations (+ - * / fmod, comparisons, casts) must match numpy exactly."""
import zlib

import ml_dtypes
import numpy as np
import pytest
import triton
import triton.language as tl

from jax_triton_cpu.compiler import CPUOptions, frontend
from lang_util import ALL, FLOATS, INTS, NP, TL, assert_same_floats, assert_ulp, is_float, \
    is_unsigned, finfo, rand, round_f64, run, run_python, run_ttir, small_ints, assert_equal

M, N, BM, BN = 37, 50, 16, 32
GRID = (triton.cdiv(M, BM), triton.cdiv(N, BN))
CONST = {"BM": BM, "BN": BN}


@triton.jit
def _apply2(x, y, OP: tl.constexpr):
  if OP == "add":
    r = x + y
  elif OP == "sub":
    r = x - y
  elif OP == "mul":
    r = x * y
  elif OP == "truediv":
    r = x / y
  elif OP == "floordiv":
    r = x // y
  elif OP == "mod":
    r = x % y
  elif OP == "and":
    r = x & y
  elif OP == "or":
    r = x | y
  elif OP == "xor":
    r = x ^ y
  elif OP == "shl":
    r = x << y
  elif OP == "shr":
    r = x >> y
  elif OP == "eq":
    r = x == y
  elif OP == "ne":
    r = x != y
  elif OP == "lt":
    r = x < y
  elif OP == "le":
    r = x <= y
  elif OP == "gt":
    r = x > y
  elif OP == "ge":
    r = x >= y
  elif OP == "maximum":
    r = tl.maximum(x, y)
  elif OP == "minimum":
    r = tl.minimum(x, y)
  elif OP == "maximum_nan":
    r = tl.maximum(x, y, propagate_nan=tl.PropagateNan.ALL)
  elif OP == "minimum_nan":
    r = tl.minimum(x, y, propagate_nan=tl.PropagateNan.ALL)
  elif OP == "cdiv":
    r = tl.cdiv(x, y)
  elif OP == "umulhi":
    r = tl.umulhi(x, y)
  elif OP == "div_rn":
    r = tl.div_rn(x, y)
  elif OP == "fdiv":
    r = tl.fdiv(x, y)
  elif OP == "logical_and":
    r = (x > 0) & (y > 0)
  elif OP == "logical_or":
    r = (x > 0) | (y > 0)
  return r


@triton.jit
def binary_kernel(x_ptr, y_ptr, out_ptr, M, N, OP: tl.constexpr, BM: tl.constexpr,
                  BN: tl.constexpr):
  rm = tl.program_id(0) * BM + tl.arange(0, BM)[:, None]
  rn = tl.program_id(1) * BN + tl.arange(0, BN)[None, :]
  mask = (rm < M) & (rn < N)
  offs = rm * N + rn
  x = tl.load(x_ptr + offs, mask=mask)
  y = tl.load(y_ptr + offs, mask=mask, other=1)
  tl.store(out_ptr + offs, _apply2(x, y, OP), mask=mask)


def _trunc_div(x, y):
  """C (and Triton) integer division: rounds towards zero."""
  q = np.abs(x.astype(np.int64)) // np.abs(y.astype(np.int64))
  return (np.sign(x.astype(np.int64)) * np.sign(y.astype(np.int64)) * q).astype(x.dtype)


def _float_result(d):
  """Triton computes / and % of f16 and bf16 in fp32 (semantic.computation_type_impl)."""
  return "fp32" if d in ("fp16", "bf16") else d


# op -> (dtypes, result dtype of a dtype, numpy reference, input generator kind)
BINARY = {
    "add": (ALL, None, lambda x, y: x + y),
    "sub": (ALL, None, lambda x, y: x - y),
    "mul": (ALL, None, lambda x, y: x * y),
    "truediv": (ALL, lambda d: "fp32" if not is_float(d) else _float_result(d),
                None),  # reference below (casts first)
    "floordiv": (INTS, None, lambda x, y: x // y if x.dtype.kind == "u" else _trunc_div(x, y)),
    "mod": (ALL, lambda d: _float_result(d) if is_float(d) else d, None),
    "and": (INTS, None, lambda x, y: x & y),
    "or": (INTS, None, lambda x, y: x | y),
    "xor": (INTS, None, lambda x, y: x ^ y),
    "shl": (INTS, None, lambda x, y: x << y),
    "shr": (INTS, None, lambda x, y: x >> y),  # numpy: arithmetic for signed, logical for unsigned
    "eq": (ALL, lambda d: "i1", lambda x, y: x == y),
    "ne": (ALL, lambda d: "i1", lambda x, y: x != y),
    "lt": (ALL, lambda d: "i1", lambda x, y: x < y),
    "le": (ALL, lambda d: "i1", lambda x, y: x <= y),
    "gt": (ALL, lambda d: "i1", lambda x, y: x > y),
    "ge": (ALL, lambda d: "i1", lambda x, y: x >= y),
    "maximum": (ALL, None, lambda x, y: np.fmax(x, y)),  # NaN-ignoring (maxnum) by default
    "minimum": (ALL, None, lambda x, y: np.fmin(x, y)),
    "maximum_nan": (FLOATS, None, lambda x, y: np.maximum(x, y)),  # PropagateNan.ALL
    "minimum_nan": (FLOATS, None, lambda x, y: np.minimum(x, y)),
    "logical_and": (ALL, lambda d: "i1", lambda x, y: (x > 0) & (y > 0)),
    "logical_or": (ALL, lambda d: "i1", lambda x, y: (x > 0) | (y > 0)),
}

# Ops checked together by one kernel (one compile per group and dtype); the failure message names
# the op. Group -> (ops, dtypes).
GROUPS = {
    "arith": (("add", "sub", "mul", "maximum"), ALL),
    "truediv": (("truediv",), ALL),
    "mod": (("mod",), ALL),
    "floordiv": (("floordiv",), INTS),
    "cmp1": (("eq", "ne", "lt", "le"), ALL),
    "cmp2": (("gt", "ge", "logical_and", "logical_or"), ALL),
    "bits": (("and", "or", "xor", "shl"), INTS),
    "bits2": (("shr", "minimum"), INTS),
    "minmax_f": (("minimum", "maximum_nan", "minimum_nan"), FLOATS),
}
BINARY_CASES = [(g, d) for g, (_, dtypes) in GROUPS.items() for d in dtypes]


@triton.jit
def binary4_kernel(x_ptr, y_ptr, out_ptr, M, N, OP0: tl.constexpr, OP1: tl.constexpr,
                   OP2: tl.constexpr, OP3: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr):
  """Up to four binary ops of the same result dtype; result k at out_ptr + k * M * N."""
  rm = tl.program_id(0) * BM + tl.arange(0, BM)[:, None]
  rn = tl.program_id(1) * BN + tl.arange(0, BN)[None, :]
  mask = (rm < M) & (rn < N)
  offs = rm * N + rn
  x = tl.load(x_ptr + offs, mask=mask)
  y = tl.load(y_ptr + offs, mask=mask, other=1)
  tl.store(out_ptr + offs, _apply2(x, y, OP0), mask=mask)
  if OP1 != "":
    tl.store(out_ptr + M * N + offs, _apply2(x, y, OP1), mask=mask)
  if OP2 != "":
    tl.store(out_ptr + 2 * M * N + offs, _apply2(x, y, OP2), mask=mask)
  if OP3 != "":
    tl.store(out_ptr + 3 * M * N + offs, _apply2(x, y, OP3), mask=mask)


def _inputs(op, d, rng):
  shape = (M, N)
  if op in ("floordiv", "mod", "truediv") and not is_float(d):
    if is_unsigned(d):  # the full range: values with the top bit set divide as unsigned
      x = rand(shape, d, rng)
      y = np.where(rng.integers(0, 2, shape) == 1, rand(shape, d, rng, 1, 20),
                   rand(shape, d, rng, 1, None)).astype(NP[d])
      return x, y
    x = rand(shape, d, rng, -100, 101)
    y = rand(shape, d, rng, 1, 20)
    y = np.where(rng.integers(0, 2, shape) == 1, -y, y).astype(NP[d])
    return x, y
  if op in ("shl", "shr"):
    bits = np.dtype(NP[d]).itemsize * 8
    return rand(shape, d, rng), rand(shape, d, rng, 0, bits)
  x, y = rand(shape, d, rng), rand(shape, d, rng)
  if is_float(d):
    x = (x * 8).astype(NP[d])
    y = (y * 8).astype(NP[d])
    # Ties and specials: equal values, NaNs, infinities, signed zeros.
    y[::7] = x[::7]
    x[1, ::5] = np.nan
    y[2, ::6] = np.nan
    x[3, :4] = np.inf
    x[4, :4] = -np.inf
    y[5, :3] = 0.0
  else:
    y[::7] = x[::7]
  return x, y


def _reference(op, d, x, y):
  with np.errstate(all="ignore"):
    return _reference_unchecked(op, d, x, y)


def _reference_unchecked(op, d, x, y):
  out_d = (BINARY[op][1] or (lambda d: d))(d)
  if op == "truediv":
    wide = NP[out_d]
    return (x.astype(wide) / y.astype(wide)).astype(wide)
  if op == "mod":
    if is_float(d):
      wide = NP[out_d]
      return np.fmod(x.astype(wide), y.astype(wide))
    if is_unsigned(d):
      return x % y
    return (x.astype(np.int64) - _trunc_div(x, y).astype(np.int64) * y.astype(np.int64)).astype(
        NP[d])
  if op in ("maximum", "minimum") and d == "bf16":
    f = np.fmax if op == "maximum" else np.fmin
    return f(x.astype(np.float32), y.astype(np.float32)).astype(NP[d])
  if op in ("maximum_nan", "minimum_nan") and d == "bf16":
    f = np.maximum if op == "maximum_nan" else np.minimum
    return f(x.astype(np.float32), y.astype(np.float32)).astype(NP[d])
  with np.errstate(all="ignore"):
    return np.asarray(BINARY[op][2](x, y)).astype(NP[out_d])


@pytest.mark.parametrize("group,dtype", BINARY_CASES, ids=[f"{g}-{d}" for g, d in BINARY_CASES])
def test_binary_ops(group, dtype):
  ops = GROUPS[group][0]
  rng = np.random.default_rng(zlib.crc32(f"{group}{dtype}".encode()))
  x, y = _inputs(ops[0], dtype, rng)
  out_d = (BINARY[ops[0]][1] or (lambda d: d))(dtype)
  out = np.zeros((len(ops), M, N), NP[out_d])
  slots = {f"OP{i}": ops[i] if i < len(ops) else "" for i in range(4)}
  run(binary4_kernel, {"x_ptr": f"*{dtype}", "y_ptr": f"*{dtype}", "out_ptr": f"*{out_d}",
                       "M": "i32", "N": "i32"}, [x, y, out, M, N], GRID, {**slots, **CONST})
  for k, op in enumerate(ops):
    assert_equal(out[k], _reference(op, dtype, x, y), f"{op} {dtype}")


@pytest.mark.parametrize("dtype", ["i8", "i16", "u8", "i32"])
def test_integer_arithmetic_wraps(dtype):
  """Two's complement wrap-around of + - *, as numpy (and every Triton backend) computes."""
  info = np.iinfo(NP[dtype])
  x = np.full((M, N), info.max, NP[dtype])
  x[::2] = info.min
  y = rand((M, N), dtype, np.random.default_rng(3))
  out = np.zeros((4, M, N), NP[dtype])
  ops = GROUPS["arith"][0]
  run(binary4_kernel, {"x_ptr": f"*{dtype}", "y_ptr": f"*{dtype}", "out_ptr": f"*{dtype}",
                       "M": "i32", "N": "i32"}, [x, y, out, M, N], GRID,
      {**{f"OP{i}": op for i, op in enumerate(ops)}, **CONST})
  with np.errstate(all="ignore"):
    for k, op in enumerate(ops[:3]):
      assert_equal(out[k], BINARY[op][2](x, y), f"{op} {dtype}")


_MIN_DIV_SCRIPT = """
import numpy as np
import test_lang_elementwise as t
from lang_util import run
for d, np_d in [("i8", np.int8), ("i16", np.int16), ("i32", np.int32), ("i64", np.int64)]:
  x = np.full((t.M, t.N), np.iinfo(np_d).min, np_d)
  y = np.ones((t.M, t.N), np_d)
  y[::2] = -1
  sig = {"x_ptr": f"*{d}", "y_ptr": f"*{d}", "out_ptr": f"*{d}", "M": "i32", "N": "i32"}
  q = np.zeros_like(x)
  r = np.ones_like(x)
  run(t.binary_kernel, sig, [x, y, q, t.M, t.N], t.GRID, {"OP": "floordiv", **t.CONST})
  run(t.binary_kernel, sig, [x, y, r, t.M, t.N], t.GRID, {"OP": "mod", **t.CONST})
  assert (q[1::2] == x[1::2]).all(), (d, "MIN // 1")
  assert (r == 0).all(), (d, "MIN % -1 and MIN % 1 must be 0")
print("ok")
"""


@triton.jit
def scalar_div_kernel(out_ptr, a, b):
  """Scalar (not tensor) integer division: b may be 0 or -1 with a == INT_MIN."""
  tl.store(out_ptr, a // b)
  tl.store(out_ptr + 1, a % b)
  tl.store(out_ptr + 2, a // 7)


_SCALAR_DIV_SCRIPT = """
import numpy as np
import test_lang_elementwise as t
from lang_util import run
for a, b in [(7, 0), (-2**31, -1), (-7, 2)]:
  out = np.zeros(3, np.int32)
  run(t.scalar_div_kernel, {"out_ptr": "*i32", "a": "i32", "b": "i32"}, [out, a, b], (1,))
  assert out[2] == int(a / 7), (a, b, out)
  if (a, b) == (-7, 2):
    assert out[0] == -3 and out[1] == -1, out
print("ok")
"""


def test_scalar_integer_division_by_zero_does_not_trap():
  """Scalar a // 0, a % 0, INT_MIN // -1: unspecified values (no trap on GPUs), but the process
  must survive. (In a subprocess.)"""
  result = run_python(_SCALAR_DIV_SCRIPT)
  assert result.returncode == 0 and "ok" in result.stdout, (
      f"exit {result.returncode}: {result.stderr[-2000:]}")


def test_division_of_the_minimum_value_does_not_trap():
  """INT_MIN // -1 overflows: a trap (SIGFPE) for x86 idiv, nothing on a GPU. The result of the
  overflowing lane is unspecified, but the process must survive, MIN // 1 == MIN and MIN % +-1 == 0.
  (In a subprocess, so that a crash fails this test only.)"""
  result = run_python(_MIN_DIV_SCRIPT)
  assert result.returncode == 0 and "ok" in result.stdout, (
      f"exit {result.returncode}: {result.stderr[-2000:]}")


@pytest.mark.parametrize("dtype", ["i32", "u32", "i64"])
def test_cdiv(dtype):
  rng = np.random.default_rng(11)
  x = rand((M, N), dtype, rng, 0, 10000)
  y = rand((M, N), dtype, rng, 1, 300)
  out = np.zeros_like(x)
  run(binary_kernel, {"x_ptr": f"*{dtype}", "y_ptr": f"*{dtype}", "out_ptr": f"*{dtype}",
                      "M": "i32", "N": "i32"}, [x, y, out, M, N], GRID, {"OP": "cdiv", **CONST})
  assert_equal(out, (x + y - 1) // y)


# arith.floordivsi / ceildivsi / ceildivui: no triton.language expression emits them (`//` is divsi,
# tl.cdiv is (x + y - 1) // y), but they are valid TTIR for compile_ttir; hence hand-written TTIR.
_ROUNDED_DIV_TTIR = """module {{
  tt.func public @rounded_div(%x: !tt.ptr<{t}>, %y: !tt.ptr<{t}>, %out: !tt.ptr<{t}>, %s: {t}, %u: {t},
                              %sout: !tt.ptr<{t}>) {{
    %ns = arith.constant dense<{n}> : tensor<{n}xi32>
    %r = tt.make_range {{end = {n} : i32, start = 0 : i32}} : tensor<{n}xi32>
    %xp = tt.splat %x : !tt.ptr<{t}> -> tensor<{n}x!tt.ptr<{t}>>
    %xa = tt.addptr %xp, %r : tensor<{n}x!tt.ptr<{t}>>, tensor<{n}xi32>
    %xv = tt.load %xa : tensor<{n}x!tt.ptr<{t}>>
    %yp = tt.splat %y : !tt.ptr<{t}> -> tensor<{n}x!tt.ptr<{t}>>
    %ya = tt.addptr %yp, %r : tensor<{n}x!tt.ptr<{t}>>, tensor<{n}xi32>
    %yv = tt.load %ya : tensor<{n}x!tt.ptr<{t}>>
    %f = arith.floordivsi %xv, %yv : tensor<{n}x{t}>
    %c = arith.ceildivsi %xv, %yv : tensor<{n}x{t}>
    %cu = arith.ceildivui %xv, %yv : tensor<{n}x{t}>
    %o0 = tt.splat %out : !tt.ptr<{t}> -> tensor<{n}x!tt.ptr<{t}>>
    %o1 = tt.addptr %o0, %r : tensor<{n}x!tt.ptr<{t}>>, tensor<{n}xi32>
    tt.store %o1, %f : tensor<{n}x!tt.ptr<{t}>>
    %o2 = tt.addptr %o1, %ns : tensor<{n}x!tt.ptr<{t}>>, tensor<{n}xi32>
    tt.store %o2, %c : tensor<{n}x!tt.ptr<{t}>>
    %o3 = tt.addptr %o2, %ns : tensor<{n}x!tt.ptr<{t}>>, tensor<{n}xi32>
    tt.store %o3, %cu : tensor<{n}x!tt.ptr<{t}>>
    %sf = arith.floordivsi %s, %u : {t}
    %sc = arith.ceildivsi %s, %u : {t}
    %su = arith.ceildivui %s, %u : {t}
    %one = arith.constant 1 : i32
    tt.store %sout, %sf : !tt.ptr<{t}>
    %p1 = tt.addptr %sout, %one : !tt.ptr<{t}>, i32
    tt.store %p1, %sc : !tt.ptr<{t}>
    %p2 = tt.addptr %p1, %one : !tt.ptr<{t}>, i32
    tt.store %p2, %su : !tt.ptr<{t}>
    tt.return
  }}
}}"""


def _rounded_div_operands(dtype, n, rng):
  """Edge cases first (the minimum, -1, +-1 neighbours, equal magnitudes), then random pairs; no
  division by zero and no signed MIN / -1 (both undefined in MLIR's arith)."""
  info = np.iinfo(NP[dtype])
  lo, hi = int(info.min), int(info.max)
  edges = [(7, 2), (-7, 2), (7, -2), (-7, -2), (6, 3), (-6, 3), (6, -3), (-6, -3), (0, 5), (0, -5),
           (1, 2), (-1, 2), (1, -2), (-1, -2), (lo, 1), (lo, 2), (lo, -2), (lo, 3), (lo, -3),
           (lo, lo), (lo + 1, lo), (-1, lo), (1, lo), (0, lo), (hi, lo), (lo, hi), (hi, -1),
           (hi, hi), (-hi, hi), (hi, 2), (hi, -2), (lo + 1, -1), (5, -1), (-5, -1)]
  pairs = edges + [(int(a), int(b)) for a, b in
                   zip(rng.integers(lo, hi, n, endpoint=True), rng.integers(lo, hi, n, endpoint=True))]
  small = rng.integers(-9, 10, (n, 2))
  pairs += [(int(a), int(b)) for a, b in small]
  pairs = [(a, b) for a, b in pairs if b != 0 and not (a == lo and b == -1)][:n]
  return np.array([a for a, _ in pairs], NP[dtype]), np.array([b for _, b in pairs], NP[dtype])


@pytest.mark.parametrize("dtype", ["i8", "i16", "i32", "i64"])
def test_floor_and_ceil_division_ops(dtype):
  """floordivsi rounds the exact quotient down, ceildivsi up, for every sign combination and the
  minimum value; ceildivui divides the same bits as unsigned numbers and rounds up. Tensor and
  scalar operands; references from Python's exact integer division."""
  n = 128
  x, y = _rounded_div_operands(dtype, n, np.random.default_rng(12))
  text = _ROUNDED_DIV_TTIR.format(t=dtype, n=n)
  width = np.iinfo(NP[dtype]).bits
  unsigned = np.dtype(f"u{width // 8}")
  floor = [a // b for a, b in zip(x.tolist(), y.tolist())]
  ceil = [-(-a // b) for a, b in zip(x.tolist(), y.tolist())]
  ceil_u = [-(-a // b) for a, b in zip(x.view(unsigned).tolist(), y.view(unsigned).tolist())]
  expected = np.array([floor, ceil, np.array(ceil_u, unsigned).view(NP[dtype])], NP[dtype])
  out = np.zeros((3, n), NP[dtype])
  scalars = np.zeros(3, NP[dtype])
  types = [f"*{dtype}"] * 3 + [dtype, dtype, f"*{dtype}"]
  run_ttir(text, [x, y, out, x[0], y[0], scalars], types)
  for k, what in enumerate(["floordivsi", "ceildivsi", "ceildivui"]):
    assert_equal(out[k], expected[k], f"{what} {dtype}")
  for i in range(40):  # the edge cases, as scalars
    run_ttir(text, [x, y, out, x[i], y[i], scalars], types)
    assert_equal(scalars, expected[:, i], f"scalar {dtype} ({x[i]}, {y[i]})")


def _umulhi_ref(x, y, bits):
  xs = [int(v) % 2**bits for v in x.ravel()]
  ys = [int(v) % 2**bits for v in y.ravel()]
  hi = np.array([(a * b) >> bits for a, b in zip(xs, ys)], np.uint64)
  return hi.astype({32: np.uint32, 64: np.uint64}[bits]).view(x.dtype).reshape(x.shape)


@pytest.mark.parametrize("dtype", ["i32", "u32", "i64", "u64"])
def test_umulhi(dtype):
  """Unsigned high half of the double-width product, also for signed operands (tt.mulhiui)."""
  rng = np.random.default_rng(5)
  x, y = rand((M, N), dtype, rng), rand((M, N), dtype, rng)
  out = np.zeros_like(x)
  run(binary_kernel, {"x_ptr": f"*{dtype}", "y_ptr": f"*{dtype}", "out_ptr": f"*{dtype}",
                      "M": "i32", "N": "i32"}, [x, y, out, M, N], GRID, {"OP": "umulhi", **CONST})
  assert_equal(out, _umulhi_ref(x, y, np.dtype(NP[dtype]).itemsize * 8))


@pytest.mark.parametrize("op,dtype", [("div_rn", "fp32"), ("fdiv", "fp32"), ("fdiv", "fp64")])
def test_div_rn_and_fdiv(op, dtype):
  """div_rn is IEEE division (exact); fdiv may be approximate on GPUs: within 2 ulp here."""
  rng = np.random.default_rng(9)
  x = (rand((M, N), dtype, rng) * 100).astype(NP[dtype])
  y = rand((M, N), dtype, rng)
  out = np.zeros_like(x)
  run(binary_kernel, {"x_ptr": f"*{dtype}", "y_ptr": f"*{dtype}", "out_ptr": f"*{dtype}",
                      "M": "i32", "N": "i32"}, [x, y, out, M, N], GRID, {"OP": op, **CONST})
  if op == "div_rn":
    assert_equal(out, x / y)
  else:
    assert_ulp(out, x.astype(np.float64) / y.astype(np.float64), dtype, 2, op)


# ---- unary ops ----------------------------------------------------------------------------------

@triton.jit
def not_(x):
  return (x != 0) == False  # noqa: E712 (a logical not on a tensor: `not` is not allowed on tensors)


@triton.jit
def unary3_kernel(x_ptr, out_ptr, not_ptr, M, N, INVERT: tl.constexpr, BM: tl.constexpr,
                  BN: tl.constexpr):
  rm = tl.program_id(0) * BM + tl.arange(0, BM)[:, None]
  rn = tl.program_id(1) * BN + tl.arange(0, BN)[None, :]
  mask = (rm < M) & (rn < N)
  offs = rm * N + rn
  x = tl.load(x_ptr + offs, mask=mask)
  tl.store(out_ptr + offs, -x, mask=mask)
  tl.store(out_ptr + M * N + offs, tl.abs(x), mask=mask)
  if INVERT:
    tl.store(out_ptr + 2 * M * N + offs, ~x, mask=mask)
  tl.store(not_ptr + offs, not_(x), mask=mask)


@triton.jit
def _negate(x_ptr):
  tl.store(x_ptr, -tl.load(x_ptr))


NEGATES_FLOATS = "arith.negf" in frontend.make_ttir(_negate, {"x_ptr": "*fp32"}, {}, {},
                                                     CPUOptions())


@pytest.mark.parametrize("dtype", ALL)
def test_unary_ops(dtype):
  """-x, tl.abs(x), ~x (ints) and a logical not, incl. NaN, infinities, -0.0 and INT_MIN (wraps)."""
  rng = np.random.default_rng(7)
  x = rand((M, N), dtype, rng)
  if is_float(dtype):
    x[0, :4] = [np.nan, np.inf, -np.inf, -0.0]
  elif not is_unsigned(dtype):
    x[0, 0] = np.iinfo(NP[dtype]).min
  x[1, :3] = 0
  out = np.zeros((3, M, N), NP[dtype])
  not_out = np.zeros((M, N), np.bool_)
  run(unary3_kernel, {"x_ptr": f"*{dtype}", "out_ptr": f"*{dtype}", "not_ptr": "*i1",
                      "M": "i32", "N": "i32"}, [x, out, not_out, M, N], GRID,
      {"INVERT": not is_float(dtype), **CONST})
  with np.errstate(all="ignore"):
    # (triton 3.6 spells -x as 0 - x: -(+0.0) is +0.0 there, as on its GPUs)
    neg = -x if not is_float(dtype) or NEGATES_FLOATS else NP[dtype](0) - x
    assert_equal(out[0], neg, f"neg {dtype}")
    assert_equal(out[1], np.abs(x), f"abs {dtype}")
    if not is_float(dtype):
      assert_equal(out[2], ~x, f"invert {dtype}")
  assert_equal(not_out, x == 0, f"not {dtype}")


# ---- scalars ------------------------------------------------------------------------------------

@triton.jit
def scalar_ops_kernel(x_ptr, out_ptr, s, t, n, BLOCK: tl.constexpr):
  """Tensor-scalar and scalar-scalar ops with runtime scalars s, t of the tensor's dtype."""
  offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
  mask = offs < n
  x = tl.load(x_ptr + offs, mask=mask)
  tl.store(out_ptr + 0 * n + offs, x + s, mask=mask)
  tl.store(out_ptr + 1 * n + offs, s - x, mask=mask)
  tl.store(out_ptr + 2 * n + offs, x * s, mask=mask)
  tl.store(out_ptr + 3 * n + offs, tl.maximum(s, x), mask=mask)
  tl.store(out_ptr + 4 * n + offs, tl.minimum(x, s), mask=mask)
  tl.store(out_ptr + 5 * n + offs, tl.where(x < s, s, x), mask=mask)
  tl.store(out_ptr + 6 * n + offs, (x >= s).to(x.dtype), mask=mask)
  # scalar-scalar, stored through a scalar pointer (every program stores the same values)
  tl.store(out_ptr + 7 * n, s + t)
  tl.store(out_ptr + 7 * n + 1, s * t)
  tl.store(out_ptr + 7 * n + 2, t - s)
  tl.store(out_ptr + 7 * n + 3, tl.maximum(s, t))
  tl.store(out_ptr + 7 * n + 4, (s < t).to(s.dtype))


@pytest.mark.parametrize("dtype", ALL)
def test_tensor_scalar_and_scalar_scalar_ops(dtype):
  n, block = 100, 64
  rng = np.random.default_rng(1)
  x = rand(n, dtype, rng, 0, 50) if not is_float(dtype) else rand(n, dtype, rng)
  s_val, t_val = (0.75, -2.5) if is_float(dtype) else (7, 3)
  if not is_float(dtype):
    x = x.astype(NP[dtype])
  out = np.zeros(8 * n, NP[dtype])
  run(scalar_ops_kernel, {"x_ptr": f"*{dtype}", "out_ptr": f"*{dtype}", "s": dtype, "t": dtype,
                          "n": "i32"}, [x, out, s_val, t_val, n], (triton.cdiv(n, block),),
      {"BLOCK": block})
  s, t = NP[dtype](s_val), NP[dtype](t_val)
  with np.errstate(all="ignore"):
    rows = [x + s, s - x, x * s, np.maximum(s, x), np.minimum(x, s), np.where(x < s, s, x),
            (x >= s).astype(NP[dtype])]
    for i, r in enumerate(rows):
      assert_equal(out[i * n:(i + 1) * n], np.asarray(r).astype(NP[dtype]), f"row {i}")
    assert_equal(out[7 * n:7 * n + 5], np.array(
        [s + t, s * t, t - s, max(s, t), s < t]).astype(NP[dtype]))


@triton.jit
def literal_ops_kernel(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
  """Python literals are weakly typed: `x + 3` keeps x's dtype."""
  offs = tl.arange(0, BLOCK)
  mask = offs < n
  x = tl.load(x_ptr + offs, mask=mask)
  tl.store(out_ptr + 0 * n + offs, x + 3, mask=mask)
  tl.store(out_ptr + 1 * n + offs, 2 * x, mask=mask)
  tl.store(out_ptr + 2 * n + offs, x - 1, mask=mask)
  tl.store(out_ptr + 3 * n + offs, 100 - x, mask=mask)
  tl.store(out_ptr + 4 * n + offs, tl.where(x > 5, x, 5), mask=mask)


@pytest.mark.parametrize("dtype", ALL)
def test_literal_operands_keep_the_tensor_dtype(dtype):
  n = 40
  x = rand(n, dtype, np.random.default_rng(2), 0, 100)
  out = np.zeros(5 * n, NP[dtype])
  run(literal_ops_kernel, {"x_ptr": f"*{dtype}", "out_ptr": f"*{dtype}", "n": "i32"},
      [x, out, n], (1,), {"BLOCK": 64})
  c = lambda v: NP[dtype](v)  # noqa: E731
  with np.errstate(all="ignore"):
    rows = [x + c(3), c(2) * x, x - c(1), c(100) - x, np.where(x > c(5), x, c(5))]
  for i, r in enumerate(rows):
    assert_equal(out[i * n:(i + 1) * n], r.astype(NP[dtype]), f"row {i}")


@triton.jit
def float_literal_kernel(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
  """An int tensor times a float literal is fp32; a float tensor keeps its dtype."""
  offs = tl.arange(0, BLOCK)
  mask = offs < n
  x = tl.load(x_ptr + offs, mask=mask)
  tl.store(out_ptr + offs, x * 2.5 + 0.125, mask=mask)


@pytest.mark.parametrize("dtype,out_dtype", [("i32", "fp32"), ("i8", "fp32"), ("fp16", "fp16"),
                                             ("bf16", "bf16"), ("fp64", "fp64")])
def test_float_literal_promotion(dtype, out_dtype):
  n = 33
  x = small_ints(n, dtype, np.random.default_rng(4), -50, 50)  # x * 2.5 exact: fusion-proof
  out = np.zeros(n, NP[out_dtype])
  run(float_literal_kernel, {"x_ptr": f"*{dtype}", "out_ptr": f"*{out_dtype}", "n": "i32"},
      [x, out, n], (1,), {"BLOCK": 64})
  exact = x.astype(np.float64) * 2.5 + 0.125
  assert_equal(out, round_f64(exact, out_dtype))


# ---- mixed dtypes (Triton's promotion rules) -----------------------------------------------------

@triton.jit
def mixed_kernel(x_ptr, y_ptr, out_ptr, n, BLOCK: tl.constexpr):
  offs = tl.arange(0, BLOCK)
  mask = offs < n
  x = tl.load(x_ptr + offs, mask=mask)
  y = tl.load(y_ptr + offs, mask=mask)
  tl.store(out_ptr + offs, x + y, mask=mask)
  tl.store(out_ptr + n + offs, x * y, mask=mask)


# (x, y, result) from triton/language/semantic.py computation_type_impl / integer_promote_impl
MIXED = [("i8", "i32", "i32"), ("i32", "i64", "i64"), ("u8", "i8", "i8"), ("u32", "i32", "u32"),
         ("u8", "i32", "i32"), ("i16", "fp16", "fp16"), ("i32", "fp32", "fp32"),
         ("fp16", "fp32", "fp32"), ("bf16", "fp16", "fp16"), ("bf16", "fp32", "fp32"),
         ("fp32", "fp64", "fp64"), ("i64", "fp64", "fp64"), ("bf16", "i8", "fp32")]


@pytest.mark.parametrize("dx,dy,dout", MIXED)
def test_mixed_dtype_promotion(dx, dy, dout):
  n = 45
  rng = np.random.default_rng(8)
  x, y = rand(n, dx, rng, 0, 60), rand(n, dy, rng, 0, 60)
  out = np.zeros(2 * n, NP[dout])
  run(mixed_kernel, {"x_ptr": f"*{dx}", "y_ptr": f"*{dy}", "out_ptr": f"*{dout}", "n": "i32"},
      [x, y, out, n], (1,), {"BLOCK": 64})
  w = NP[dout]
  assert_equal(out[:n], x.astype(w) + y.astype(w))
  assert_equal(out[n:], x.astype(w) * y.astype(w))


# ---- broadcasting -------------------------------------------------------------------------------

@triton.jit
def broadcast_kernel(a_ptr, b_ptr, c_ptr, out_ptr, A: tl.constexpr, B: tl.constexpr,
                     C: tl.constexpr):
  ia = tl.arange(0, A)
  ib = tl.arange(0, B)
  ic = tl.arange(0, C)
  a = tl.load(a_ptr + ia)                                   # (A,)
  b = tl.load(b_ptr + ib)                                   # (B,)
  c = tl.load(c_ptr + ic[None, :] + ia[:, None] * C)        # (A, C)
  ab = a[:, None] * 10 + b[None, :]                         # (A, 1) op (1, B) -> (A, B)
  tl.store(out_ptr + ia[:, None] * B + ib[None, :], ab)
  abc = a[:, None, None] + b[None, :, None] * c[:, None, :]  # (A,1,1) + (1,B,1) * (A,1,C)
  base = A * B
  tl.store(out_ptr + base + (ia[:, None, None] * B + ib[None, :, None]) * C + ic[None, None, :],
           abc)
  base2 = base + A * B * C
  s = tl.sum(b, axis=0)                                     # a scalar (0-d) broadcast
  tl.store(out_ptr + base2 + ia[:, None] * C + ic[None, :], c - s + a[:, None])


@pytest.mark.parametrize("dtype", ["fp32", "i32", "fp16", "i64"])
def test_broadcasting_between_shapes(dtype):
  A, B, C = 4, 8, 16
  rng = np.random.default_rng(6)
  a, b = small_ints(A, dtype, rng), small_ints(B, dtype, rng)
  c = small_ints((A, C), dtype, rng)
  out = np.zeros(A * B + A * B * C + A * C, NP[dtype])
  run(broadcast_kernel, {"a_ptr": f"*{dtype}", "b_ptr": f"*{dtype}", "c_ptr": f"*{dtype}",
                         "out_ptr": f"*{dtype}"}, [a, b, c, out], (1,), {"A": A, "B": B, "C": C})
  w = NP[dtype]
  assert_equal(out[:A * B].reshape(A, B), a[:, None] * w(10) + b[None, :])
  assert_equal(out[A * B:A * B + A * B * C].reshape(A, B, C),
                                a[:, None, None] + b[None, :, None] * c[:, None, :])
  assert_equal(out[A * B + A * B * C:].reshape(A, C),
                                c - b.sum(dtype=w) + a[:, None])


# ---- where --------------------------------------------------------------------------------------

@triton.jit
def where_kernel(c_ptr, x_ptr, y_ptr, out_ptr, flag, n, BLOCK: tl.constexpr):
  offs = tl.arange(0, BLOCK)
  mask = offs < n
  c = tl.load(c_ptr + offs, mask=mask) != 0
  x = tl.load(x_ptr + offs, mask=mask)
  y = tl.load(y_ptr + offs, mask=mask)
  tl.store(out_ptr + offs, tl.where(c, x, y), mask=mask)                     # tensor, tensor
  tl.store(out_ptr + n + offs, tl.where(c, x, 3), mask=mask)                 # tensor, literal
  tl.store(out_ptr + 2 * n + offs, tl.where(flag, x, y), mask=mask)          # scalar condition
  tl.store(out_ptr + 3 * n + offs, tl.where(x > y, x - y, y - x), mask=mask)  # computed branches


@triton.jit
def where_2d_kernel(c_ptr, x_ptr, out_ptr, R: tl.constexpr, C: tl.constexpr):
  r = tl.arange(0, R)
  cidx = tl.arange(0, C)
  cond = tl.load(c_ptr + r) != 0                                             # (R,)
  x = tl.load(x_ptr + r[:, None] * C + cidx[None, :])                        # (R, C)
  tl.store(out_ptr + r[:, None] * C + cidx[None, :], tl.where(cond[:, None], x, -x))
  rowval = tl.where(cond[:, None], r[:, None], cidx[None, :])               # (R,1) vs (1,C)
  tl.store(out_ptr + R * C + r[:, None] * C + cidx[None, :], rowval.to(x.dtype))


@pytest.mark.parametrize("dtype", ALL)
@pytest.mark.parametrize("flag", [True, False])
def test_where(dtype, flag):
  n = 50
  rng = np.random.default_rng(12)
  cond = rng.integers(0, 2, n).astype(np.int8)
  x, y = rand(n, dtype, rng, 0, 100), rand(n, dtype, rng, 0, 100)
  out = np.zeros(4 * n, NP[dtype])
  run(where_kernel, {"c_ptr": "*i8", "x_ptr": f"*{dtype}", "y_ptr": f"*{dtype}",
                     "out_ptr": f"*{dtype}", "flag": "i1", "n": "i32"},
      [cond, x, y, out, flag, n], (1,), {"BLOCK": 64})
  c = cond != 0
  assert_equal(out[:n], np.where(c, x, y))
  assert_equal(out[n:2 * n], np.where(c, x, NP[dtype](3)))
  assert_equal(out[2 * n:3 * n], x if flag else y)
  with np.errstate(all="ignore"):
    assert_equal(out[3 * n:], np.where(x > y, x - y, y - x))


@pytest.mark.parametrize("dtype", ["fp32", "i32", "bf16"])
def test_where_with_broadcast_condition(dtype):
  R, C = 8, 16
  rng = np.random.default_rng(13)
  cond = rng.integers(0, 2, R).astype(np.int8)
  x = rand((R, C), dtype, rng, -50, 50)
  out = np.zeros(2 * R * C, NP[dtype])
  run(where_2d_kernel, {"c_ptr": "*i8", "x_ptr": f"*{dtype}", "out_ptr": f"*{dtype}"},
      [cond, x, out], (1,), {"R": R, "C": C})
  c = (cond != 0)[:, None]
  assert_equal(out[:R * C].reshape(R, C), np.where(c, x, -x))
  assert_equal(out[R * C:].reshape(R, C),
                                np.where(c, np.arange(R)[:, None], np.arange(C)[None, :]).astype(
                                    NP[dtype]))


# ---- clamp, fma ---------------------------------------------------------------------------------

@triton.jit
def clamp_kernel(x_ptr, lo_ptr, hi_ptr, out_ptr, n, PROPAGATE: tl.constexpr, BLOCK: tl.constexpr):
  offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
  mask = offs < n
  x = tl.load(x_ptr + offs, mask=mask)
  lo = tl.load(lo_ptr + offs, mask=mask)
  hi = tl.load(hi_ptr + offs, mask=mask)
  if PROPAGATE:
    r = tl.clamp(x, lo, hi, propagate_nan=tl.PropagateNan.ALL)
  else:
    r = tl.clamp(x, lo, hi)
  tl.store(out_ptr + offs, r, mask=mask)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("propagate", [False, True])
def test_clamp(dtype, propagate):
  n = 300
  rng = np.random.default_rng(14)
  x = (rand(n, dtype, rng) * 3).astype(NP[dtype])
  lo = (-np.abs(rand(n, dtype, rng))).astype(NP[dtype])
  hi = np.abs(rand(n, dtype, rng)).astype(NP[dtype])
  if propagate:
    x[::9] = np.nan
  out = np.zeros_like(x)
  run(clamp_kernel, {"x_ptr": f"*{dtype}", "lo_ptr": f"*{dtype}", "hi_ptr": f"*{dtype}",
                     "out_ptr": f"*{dtype}", "n": "i32"}, [x, lo, hi, out, n],
      (triton.cdiv(n, 128),), {"PROPAGATE": propagate, "BLOCK": 128})
  w = np.float64
  expected = np.minimum(np.maximum(x.astype(w), lo.astype(w)), hi.astype(w)).astype(NP[dtype])
  assert_equal(out, expected)


@triton.jit
def fma_kernel(x_ptr, y_ptr, z_ptr, out_ptr, n, BLOCK: tl.constexpr):
  offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
  mask = offs < n
  x = tl.load(x_ptr + offs, mask=mask)
  y = tl.load(y_ptr + offs, mask=mask)
  z = tl.load(z_ptr + offs, mask=mask)
  tl.store(out_ptr + offs, tl.fma(x, y, z), mask=mask)


@pytest.mark.parametrize("dtype", FLOATS)
def test_fma(dtype):
  """A fused multiply-add rounds once: checked on x*y ~ -z where the unfused result differs."""
  n = 257
  rng = np.random.default_rng(15)
  x, y = rand(n, dtype, rng), rand(n, dtype, rng)
  z = (-(x.astype(np.float64) * y.astype(np.float64))).astype(NP[dtype])  # catastrophic cancel
  z[::2] = rand(n, dtype, rng)[::2]
  out = np.zeros_like(x)
  run(fma_kernel, {"x_ptr": f"*{dtype}", "y_ptr": f"*{dtype}", "z_ptr": f"*{dtype}",
                   "out_ptr": f"*{dtype}", "n": "i32"}, [x, y, z, out, n],
      (triton.cdiv(n, 64),), {"BLOCK": 64})
  if dtype == "fp64":
    # exact x*y + z with Python's exact rationals
    from fractions import Fraction
    exact = np.array([float(Fraction(float(a)) * Fraction(float(b)) + Fraction(float(c)))
                      for a, b, c in zip(x, y, z)])
    assert_ulp(out, exact, dtype, 0.5, "fma")
  else:
    exact = x.astype(np.float64) * y.astype(np.float64) + z.astype(np.float64)  # exact in f64
    assert_equal(out, exact.astype(NP[dtype]))


# ---- casts --------------------------------------------------------------------------------------

@triton.jit
def bitcast_kernel(x_ptr, out_ptr, n, DST: tl.constexpr, BLOCK: tl.constexpr):
  offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
  mask = offs < n
  x = tl.load(x_ptr + offs, mask=mask)
  tl.store(out_ptr + offs, x.to(DST, bitcast=True), mask=mask)


BITCASTS = [("fp32", "i32"), ("i32", "fp32"), ("fp32", "u32"), ("fp16", "i16"), ("i16", "fp16"),
            ("bf16", "i16"), ("i16", "bf16"), ("fp64", "i64"), ("i64", "fp64"), ("u8", "i8"),
            ("fp16", "bf16"), ("i64", "u64")]


@pytest.mark.parametrize("src,dst", BITCASTS)
def test_bitcast(src, dst):
  n = 70
  rng = np.random.default_rng(16)
  x = rand(n, src, rng)
  if is_float(src):
    x[:3] = [np.nan, -np.inf, -0.0]
  out = np.zeros(n, NP[dst])
  run(bitcast_kernel, {"x_ptr": f"*{src}", "out_ptr": f"*{dst}", "n": "i32"}, [x, out, n],
      (triton.cdiv(n, 32),), {"DST": TL[dst], "BLOCK": 32})
  assert_equal(out.view(np.uint8), x.view(NP[dst]).view(np.uint8))


@triton.jit
def scalar_bitcast_kernel(out_ptr, s):
  tl.store(out_ptr, s.to(tl.int32, bitcast=True))
  tl.store(out_ptr + 1, (s * 2.0).to(tl.uint32, bitcast=True).to(tl.int32, bitcast=True))


def test_scalar_bitcast():
  out = np.zeros(2, np.int32)
  run(scalar_bitcast_kernel, {"out_ptr": "*i32", "s": "fp32"}, [out, -1.75], (1,))
  assert_equal(out, np.array([-1.75, -3.5], np.float32).view(np.int32))


@triton.jit
def cast_kernel(x_ptr, out_ptr, n, DST: tl.constexpr, ROUNDING: tl.constexpr,
                BLOCK: tl.constexpr):
  offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
  mask = offs < n
  x = tl.load(x_ptr + offs, mask=mask)
  if ROUNDING == "rtz":
    r = x.to(DST, fp_downcast_rounding="rtz")
  elif ROUNDING == "rtne":
    r = x.to(DST, fp_downcast_rounding="rtne")
  else:
    r = x.to(DST)
  tl.store(out_ptr + offs, r, mask=mask)


def _float_specials(dtype, rng, n):
  x = rand(n, dtype, rng).astype(np.float64)
  x = x * np.exp2(rng.integers(-30, 30, n))
  # NaN, infinities, signed zeros, f16 max, f16 overflow, below f16 subnormals, an f16 subnormal
  x[:9] = [np.nan, np.inf, -np.inf, 0.0, -0.0, 65504.0, 65520.0, 1e-8, -3e-6]
  with np.errstate(over="ignore"):
    return x.astype(NP[dtype])


@pytest.mark.parametrize("src,dst", [("fp32", "fp16"), ("fp32", "bf16"), ("fp64", "fp32"),
                                     ("fp64", "fp16"), ("fp64", "bf16"), ("fp16", "bf16"),
                                     ("bf16", "fp16"), ("fp16", "fp64"), ("bf16", "fp64")])
def test_float_casts_round_to_nearest_even(src, dst):
  """Downcasts round to nearest even once (incl. to bf16: triton-cpu truncated; and f64 -> bf16
  directly, not through f32), overflow to inf, keep NaN, signed zeros and subnormals."""
  n = 500
  rng = np.random.default_rng(17)
  x = _float_specials(src, rng, n)
  if src in ("fp32", "fp64") and dst == "bf16":
    # exact ties (bit 15 set, low bits 0) with both parities of bit 16, and just above ties
    bits = rng.integers(0, 2**31, 64, dtype=np.int64).astype(np.uint32)
    x[9:73] = ((bits & 0xFFFF0000) | 0x8000).view(np.float32)
    if src == "fp64":
      x[73:137] = x[9:73] * (1 + 2.0**-40)
  out = np.zeros(n, NP[dst])
  run(cast_kernel, {"x_ptr": f"*{src}", "out_ptr": f"*{dst}", "n": "i32"}, [x, out, n],
      (triton.cdiv(n, 128),), {"DST": TL[dst], "ROUNDING": "", "BLOCK": 128})
  assert_same_floats(out, round_f64(x.astype(np.float64), dst), f"{src} -> {dst}")


BF16_TARGETS = {"host": "", "no-avx512bf16": "x86-64-v3", "sapphirerapids": "sapphirerapids"}


@pytest.mark.parametrize("target", list(BF16_TARGETS))
def test_f32_to_bf16_keeps_denormals(target, monkeypatch):
  """Where the target has AVX512-BF16, f32 -> bf16 is vcvtneps2bf16, which flushes f32 denormals
  to zero: chunks holding one take the integer rounding, so every lane still rounds to nearest
  even (denormals, ties, NaN payloads, infinities). Run on the host and on a target without the
  instruction; for Sapphire Rapids the assembly is checked (this machine may lack it)."""
  from lang_util import compiled, launch
  monkeypatch.setenv("JAX_TRITON_CPU_TARGET", BF16_TARGETS[target])
  rng = np.random.default_rng(3)
  n = 256  # 16 chunks of 16 lanes: every other one holds a denormal
  bits = rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32)
  bits[::2] = (bits[::2] & 0x807FFFFF) | 0x3F800000  # normal values around +-1
  bits[0::32] = [0x00000001, 0x807FFFFF, 0x00008000, 0x00018000, 0x00400000, 0x80000000,
                 0x00000000, 0x0000FFFF]
  bits[16::32] = 0x00010000 + np.arange(n // 32, dtype=np.uint32)  # denormal ties
  bits[1:5] = [0x7FA00001, 0xFF800000, 0x7F7FFFFF, 0x3F808000]  # NaN payload, -inf, max, tie
  x = bits.view(np.float32)
  out = np.zeros(n, ml_dtypes.bfloat16)
  signature = {"x_ptr": "*fp32", "out_ptr": "*bf16", "n": "i32"}
  c = compiled(cast_kernel, signature, {"DST": tl.bfloat16, "ROUNDING": "", "BLOCK": n})
  if target == "sapphirerapids":
    assert "vcvtneps2bf16" in c.asm
    return
  assert launch(c, [x, out, n], (1,), types=list(signature.values())) == 0
  assert_same_floats(out, round_f64(x.astype(np.float64), "bf16"), target)


def _rtz(x64, dst):
  """float64 -> dst rounded toward zero: the exact nearest-even result, one ulp back toward zero
  where it is farther from zero than x (so finite values stop at the largest finite value)."""
  nearest = round_f64(x64, dst)
  with np.errstate(all="ignore"):
    away = np.abs(nearest.astype(np.float64)) > np.abs(x64)
    return np.where(away, np.nextafter(nearest, np.zeros_like(nearest)), nearest).astype(NP[dst])


def _downcast_inputs(src, dst, rng, n=600):
  """Specials, values beyond dst's range, dst's subnormals, exact dst values and their src-ulp
  neighbours (the values where truncating and rounding differ most often), random values."""
  x = _float_specials(src, rng, n).astype(np.float64)
  top = float(finfo(dst).max)
  tiny = float(finfo(dst).smallest_subnormal)
  x[9:17] = [top * 1.5, -top * 1.5, 70000.0, -1e30, 3e38, tiny / 3, -tiny * 2.5, tiny * 1.5]
  exact = rand(120, dst, rng).astype(np.float64) * np.exp2(rng.integers(-20, 20, 120))
  exact = np.concatenate([exact, tiny * rng.integers(1, 1000, 40)])
  with np.errstate(all="ignore"):
    exact = round_f64(exact, dst).astype(np.float64)
    s = exact.astype(NP[src])
    x[17:17 + 3 * len(s)] = np.concatenate([
        s, np.nextafter(s, np.full_like(s, np.inf)), np.nextafter(s, np.full_like(s, -np.inf))])
    return x.astype(NP[src])


_FP_TO_FP_TTIR = """module {{
  tt.func public @fp_to_fp(%x: !tt.ptr<{s}>, %out: !tt.ptr<{d}>) {{
    %r = tt.make_range {{end = {n} : i32, start = 0 : i32}} : tensor<{n}xi32>
    %xp = tt.splat %x : !tt.ptr<{s}> -> tensor<{n}x!tt.ptr<{s}>>
    %xa = tt.addptr %xp, %r : tensor<{n}x!tt.ptr<{s}>>, tensor<{n}xi32>
    %xv = tt.load %xa : tensor<{n}x!tt.ptr<{s}>>
    %y = tt.fp_to_fp %xv, rounding = {rounding} : tensor<{n}x{s}> -> tensor<{n}x{d}>
    %op = tt.splat %out : !tt.ptr<{d}> -> tensor<{n}x!tt.ptr<{d}>>
    %oa = tt.addptr %op, %r : tensor<{n}x!tt.ptr<{d}>>, tensor<{n}xi32>
    tt.store %oa, %y : tensor<{n}x!tt.ptr<{d}>>
    tt.return
  }}
}}"""


@pytest.mark.parametrize("src,dst", [("fp32", "fp16"), ("fp32", "bf16"), ("fp64", "fp32"),
                                     ("fp64", "fp16"), ("fp64", "bf16"), ("fp16", "bf16"),
                                     ("bf16", "fp16")])
def test_downcast_round_towards_zero(src, dst):
  """fp_downcast_rounding="rtz" truncates toward zero, every pair: finite values beyond dst's
  range give the largest finite value, infinities and NaN stay, subnormals truncate, signs of zero
  stay. (f64 -> bf16 failed in LLVM; f16 <-> bf16 rounded to nearest. Triton's frontend refuses
  rtz between the two 16-bit types, which TTIR can still ask for: tested from hand-written TTIR.)"""
  x = _downcast_inputs(src, dst, np.random.default_rng(18))
  n = len(x)
  out = np.zeros(n, NP[dst])
  if src in ("fp16", "bf16"):
    block = 1024
    mlir = {"fp16": "f16", "bf16": "bf16"}
    x, out = np.resize(x, block), np.zeros(block, NP[dst])
    run_ttir(_FP_TO_FP_TTIR.format(s=mlir[src], d=mlir[dst], n=block, rounding="rtz"), [x, out],
             [f"*{src}", f"*{dst}"])
  else:
    run(cast_kernel, {"x_ptr": f"*{src}", "out_ptr": f"*{dst}", "n": "i32"}, [x, out, n],
        (triton.cdiv(n, 128),), {"DST": TL[dst], "ROUNDING": "rtz", "BLOCK": 128})
  assert_same_floats(out, _rtz(x.astype(np.float64), dst), f"{src} -> {dst} rtz")


@pytest.mark.parametrize("dst", ["fp32", "bf16", "fp16"])
def test_bool_to_float(dst):
  """i1 is unsigned: True is 1.0, not -1.0."""
  x = np.arange(64) % 3 == 0
  out = np.zeros(64, NP[dst])
  run(cast_kernel, {"x_ptr": "*i1", "out_ptr": f"*{dst}", "n": "i32"}, [x, out, 64], (1,),
      {"DST": TL[dst], "ROUNDING": "", "BLOCK": 64})
  assert_same_floats(out, x.astype(NP[dst]), f"i1 -> {dst}")


def _round_int(n: int, bits: int) -> int:
  """The integer n rounded to `bits` significant bits, to nearest, ties to even (exact)."""
  drop = max(0, abs(n).bit_length() - bits)
  if drop == 0:
    return n
  q, r = divmod(abs(n), 1 << drop)
  half = 1 << (drop - 1)
  q += r > half or (r == half and q % 2 == 1)
  return (q << drop) * (1 if n >= 0 else -1)


def _hard_integers(dtype, rng, n_random=256):
  """Integers a double rounding (to f32 first, or f64) gets wrong: one above a tie of the 8-, 11-
  and 24-bit roundings at many scales; ties; f16's overflow threshold; the extremes; random."""
  info = np.iinfo(NP[dtype])
  lo, hi = int(info.min), int(info.max)
  values = [0, 1, -1, lo, hi, lo + 1, hi - 1, 16842753, 65504, 65519, 65520, 65535, 2049, 2051]
  for e in range(8, info.bits):
    for bits in (8, 11, 24):
      if e > bits:
        tie = (1 << e) + (1 << (e - bits))
        values += [tie, tie + 1, tie - 1, -tie, -tie - 1, tie + (1 << (e - bits + 1))]
  values = [v for v in values if lo <= v <= hi]
  values += [int(v) for v in rng.integers(lo, hi, n_random, endpoint=True, dtype=NP[dtype])]
  return np.array(values, NP[dtype])


@pytest.mark.parametrize("dst", ["bf16", "fp16", "fp32", "fp64"])
@pytest.mark.parametrize("src", ["i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64"])
def test_int_to_float_rounds_the_exact_integer_once(src, dst):
  """Every int width, signed and unsigned: the exact integer rounds once to nearest even (i32 ->
  bf16 rounded to f32 first: 16842753 gave 0x4b80, not 0x4b81); beyond f16's range, infinity;
  unsigned sources are not sign-extended."""
  x = _hard_integers(src, np.random.default_rng(21))
  n = len(x)
  out = np.zeros(n, NP[dst])
  run(cast_kernel, {"x_ptr": f"*{src}", "out_ptr": f"*{dst}", "n": "i32"}, [x, out, n],
      (triton.cdiv(n, 128),), {"DST": TL[dst], "ROUNDING": "", "BLOCK": 128})
  precision = {"bf16": 8, "fp16": 11, "fp32": 24, "fp64": 53}[dst]
  with np.errstate(over="ignore"):  # exact in f64, so the cast to dst is exact (or overflows)
    expected = np.array([float(_round_int(v, precision)) for v in x.tolist()]).astype(NP[dst])
  assert_same_floats(out, expected, f"{src} -> {dst}")


@pytest.mark.parametrize("src,dst", [("fp32", "i8"), ("fp32", "u8"), ("fp64", "i64"),
                                     ("fp16", "i16"), ("bf16", "i32"), ("fp32", "u32"),
                                     ("fp32", "i1"), ("fp64", "u32")])
def test_float_to_int_truncates(src, dst):
  n = 150
  rng = np.random.default_rng(20)
  if dst == "i1":
    x = rand(n, src, rng)
    x[::4] = 0
  else:
    info = np.iinfo(NP[dst])
    lo = max(float(info.min), -100.0)
    hi = min(float(info.max), 100.0) if info.bits < 32 else 1e6
    x = rng.uniform(lo, hi, n).astype(NP[src])
  out = np.zeros(n, NP[dst])
  run(cast_kernel, {"x_ptr": f"*{src}", "out_ptr": f"*{dst}", "n": "i32"}, [x, out, n],
      (triton.cdiv(n, 64),), {"DST": TL[dst], "ROUNDING": "", "BLOCK": 64})
  expected = (x != 0) if dst == "i1" else np.trunc(x.astype(np.float64)).astype(NP[dst])
  assert_equal(out, expected)


# ---- constexpr arithmetic -----------------------------------------------------------------------

@triton.jit
def constexpr_kernel(out_ptr, A: tl.constexpr, B: tl.constexpr, F: tl.constexpr):
  C: tl.constexpr = A * B + 3
  D: tl.constexpr = (A + B) // 2
  E = tl.cdiv(A, B)
  offs = tl.arange(0, D * 2)  # arange with a computed constexpr bound
  tl.store(out_ptr + offs, offs * C)
  tl.store(out_ptr + D * 2, E)
  tl.store(out_ptr + D * 2 + 1, A % B + (A << 2) + (A ^ B))
  tl.store(out_ptr + D * 2 + 2, tl.cast(F * 4, tl.int32))
  tl.store(out_ptr + D * 2 + 3, (A * 10 + 6) // 7)
  if A > B:
    tl.store(out_ptr + D * 2 + 4, 1)
  else:
    tl.store(out_ptr + D * 2 + 4, 2)
  tl.store(out_ptr + D * 2 + 5, tl.program_id(0) + C)


@pytest.mark.parametrize("a,b", [(5, 3), (3, 5), (16, 16)])
def test_constexpr_arithmetic(a, b):
  d = (a + b) // 2
  out = np.zeros(d * 2 + 6, np.int32)
  run(constexpr_kernel, {"out_ptr": "*i32"}, [out], (1,), {"A": a, "B": b, "F": 1.75})
  c = a * b + 3
  assert_equal(out[:d * 2], np.arange(d * 2) * c)
  assert_equal(out[d * 2:], [-(-a // b), a % b + (a << 2) + (a ^ b), 7,
                                              -(-a * 10 // 7), 1 if a > b else 2, c])


# ---- shapes: 1-D and 3-D elementwise ------------------------------------------------------------

@triton.jit
def add_3d_kernel(x_ptr, y_ptr, out_ptr, D0, D1, D2, B0: tl.constexpr, B1: tl.constexpr,
                  B2: tl.constexpr):
  i = tl.program_id(0) * B0 + tl.arange(0, B0)[:, None, None]
  j = tl.program_id(1) * B1 + tl.arange(0, B1)[None, :, None]
  k = tl.program_id(2) * B2 + tl.arange(0, B2)[None, None, :]
  mask = (i < D0) & (j < D1) & (k < D2)
  offs = (i * D1 + j) * D2 + k
  x = tl.load(x_ptr + offs, mask=mask, other=0)
  y = tl.load(y_ptr + offs, mask=mask, other=0)
  tl.store(out_ptr + offs, x * y - x, mask=mask)


@pytest.mark.parametrize("dtype", ["fp32", "i16", "bf16", "fp64"])
def test_3d_elementwise_with_masks(dtype):
  shape = (5, 9, 19)
  rng = np.random.default_rng(21)
  x, y = small_ints(shape, dtype, rng, -20, 20), small_ints(shape, dtype, rng, -20, 20)
  out = np.zeros(shape, NP[dtype])
  blocks = (2, 4, 8)
  run(add_3d_kernel, {"x_ptr": f"*{dtype}", "y_ptr": f"*{dtype}", "out_ptr": f"*{dtype}",
                      "D0": "i32", "D1": "i32", "D2": "i32"}, [x, y, out, *shape],
      tuple(triton.cdiv(s, b) for s, b in zip(shape, blocks)),
      {"B0": blocks[0], "B1": blocks[1], "B2": blocks[2]})
  with np.errstate(all="ignore"):
    assert_equal(out, x * y - x)


@triton.jit
def add_1d_kernel(x_ptr, y_ptr, out_ptr, n, BLOCK: tl.constexpr):
  offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
  mask = offs < n
  tl.store(out_ptr + offs, tl.load(x_ptr + offs, mask=mask) - tl.load(y_ptr + offs, mask=mask),
           mask=mask)


@pytest.mark.parametrize("n,block", [(1, 1), (1, 16), (17, 16), (1000, 256), (4097, 4096)])
@pytest.mark.parametrize("dtype", ["fp16", "u8", "i64"])
def test_1d_elementwise_with_masks(n, block, dtype):
  rng = np.random.default_rng(n)
  x, y = rand(n, dtype, rng), rand(n, dtype, rng)
  out = np.zeros(n + 8, NP[dtype])  # a guard zone after n must stay untouched
  run(add_1d_kernel, {"x_ptr": f"*{dtype}", "y_ptr": f"*{dtype}", "out_ptr": f"*{dtype}",
                      "n": "i32"}, [x, y, out, n], (triton.cdiv(n, block),), {"BLOCK": block})
  with np.errstate(all="ignore"):
    assert_equal(out[:n], x - y)
  assert_equal(out[n:], np.zeros(8, NP[dtype]))


# ---- booleans -----------------------------------------------------------------------------------

@triton.jit
def bool_ops_kernel(a_ptr, b_ptr, out_ptr, cnt_ptr, n, BLOCK: tl.constexpr):
  offs = tl.arange(0, BLOCK)
  mask = offs < n
  a = tl.load(a_ptr + offs, mask=mask, other=0) != 0
  b = tl.load(b_ptr + offs, mask=mask, other=0) != 0
  tl.store(out_ptr + offs, a & b, mask=mask)
  tl.store(out_ptr + n + offs, a | b, mask=mask)
  tl.store(out_ptr + 2 * n + offs, a ^ b, mask=mask)
  tl.store(out_ptr + 3 * n + offs, a == b, mask=mask)
  tl.store(out_ptr + 4 * n + offs, tl.where(a, b, ~b), mask=mask)
  tl.store(cnt_ptr, tl.sum(a.to(tl.int32), axis=0))
  tl.store(cnt_ptr + 1, tl.sum((a & b).to(tl.int32), axis=0))
  tl.store(cnt_ptr + 2, (a.to(tl.int8) + b.to(tl.int8)).to(tl.int32).sum(axis=0))


def test_boolean_tensor_ops():
  n = 50
  rng = np.random.default_rng(22)
  a = rng.integers(0, 2, n).astype(np.int8)
  b = rng.integers(0, 2, n).astype(np.int8)
  out = np.zeros(5 * n, np.bool_)
  cnt = np.zeros(3, np.int32)
  run(bool_ops_kernel, {"a_ptr": "*i8", "b_ptr": "*i8", "out_ptr": "*i1", "cnt_ptr": "*i32",
                        "n": "i32"}, [a, b, out, cnt, n], (1,), {"BLOCK": 64})
  A, B = a != 0, b != 0
  for k, (e, what) in enumerate([(A & B, "and"), (A | B, "or"), (A ^ B, "xor"), (A == B, "eq"),
                                 (np.where(A, B, ~B), "where")]):
    assert_equal(out[k * n:(k + 1) * n], e, what)
  assert_equal(cnt, np.array([A.sum(), (A & B).sum(), A.sum() + B.sum()], np.int32))


# ---- tensor creation ----------------------------------------------------------------------------

@triton.jit
def creation_kernel(out_ptr, v, fv, BLOCK: tl.constexpr):
  offs = tl.arange(0, BLOCK)
  tl.store(out_ptr + offs, tl.arange(5, 5 + BLOCK).to(tl.float32))
  tl.store(out_ptr + BLOCK + offs, tl.full((BLOCK,), v, tl.int32).to(tl.float32))
  tl.store(out_ptr + 2 * BLOCK + offs, tl.full((BLOCK,), fv, tl.float32) * 2)
  z = tl.zeros((2, BLOCK // 2), tl.float32) + 1.5
  tl.store(out_ptr + 3 * BLOCK + tl.arange(0, 2)[:, None] * (BLOCK // 2)
           + tl.arange(0, BLOCK // 2)[None, :], z)
  zl = tl.zeros_like(offs) + 3
  tl.store(out_ptr + 4 * BLOCK + offs, zl.to(tl.float32))
  tl.store(out_ptr + 5 * BLOCK + offs, tl.full((BLOCK,), 7, tl.int8).to(tl.float32) - offs)


def test_tensor_creation():
  block = 16
  out = np.zeros(6 * block, np.float32)
  run(creation_kernel, {"out_ptr": "*fp32", "v": "i32", "fv": "fp32"}, [out, -9, 0.75], (1,),
      {"BLOCK": block})
  o = np.arange(block)
  assert_equal(out.reshape(6, block), np.stack(
      [o + 5, np.full(block, -9), np.full(block, 1.5), np.full(block, 1.5), np.full(block, 3),
       7 - o]).astype(np.float32))


# Float constants, written as MLIR prints them (hex literals are bit patterns): each is stored from a
# scalar constant, a splat tensor constant and (where the reader handles the type) one dense tensor.
_FLOAT_CONSTANTS = {  # eight each: a dense tensor needs a power-of-two length
    # (signalling NaNs: bf16 0xFF81, f16 0xFC55, f32 0xFF800001, f64 0x7FF0000000000001,
    # e5m2 0xFD; e4m3fn has one NaN, 0x7F / 0xFF)
    "bf16": ["1.0", "-2.5", "0x7FC1", "0xFF81", "0x7FFF", "0x7F80", "0x0001", "-0.0"],
    "fp16": ["1.0", "-2.5", "0x7E01", "0xFC55", "0x7FFF", "0xFC00", "0x0001", "65504.0"],
    "fp32": ["1.0", "-2.5", "0x7FC00001", "0xFF800001", "0x7F800000", "0x00000001", "-0.0",
             "3.0e+38"],
    "fp64": ["1.0", "-2.5", "0x7FF0000000000001", "0xFFF0000000000000", "0x0000000000000001",
             "-0.0", "0x7FEFFFFFFFFFFFFF", "0.1"],
    "fp8e4nv": ["1.0", "-2.5", "448.0", "0x7F", "0xFF", "0x01", "-0.0", "0x81"],
    "fp8e5": ["1.0", "-2.5", "-57344.0", "0x7E", "0xFD", "0x7C", "0x01", "-0.0"],
}
_MLIR_FLOAT = {"bf16": "bf16", "fp16": "f16", "fp32": "f32", "fp64": "f64", "fp8e4nv": "f8E4M3FN",
               "fp8e5": "f8E5M2"}
_FLOAT_NP = {**NP, "fp8e4nv": ml_dtypes.float8_e4m3fn, "fp8e5": ml_dtypes.float8_e5m2}


def _constants_ttir(t, literals):
  n = len(literals)
  lines = [f"  tt.func public @constants(%out: !tt.ptr<{t}>) {{",
           "    %r = tt.make_range {end = 4 : i32, start = 0 : i32} : tensor<4xi32>"]
  for i, lit in enumerate(literals):
    lines += [f"    %i{i} = arith.constant {i} : i32",
              f"    %c{i} = arith.constant {lit} : {t}",
              f"    %p{i} = tt.addptr %out, %i{i} : !tt.ptr<{t}>, i32",
              f"    tt.store %p{i}, %c{i} : !tt.ptr<{t}>",
              f"    %j{i} = arith.constant {n + 4 * i} : i32",
              f"    %s{i} = arith.constant dense<{lit}> : tensor<4x{t}>",
              f"    %q{i} = tt.addptr %out, %j{i} : !tt.ptr<{t}>, i32",
              f"    %v{i} = tt.splat %q{i} : !tt.ptr<{t}> -> tensor<4x!tt.ptr<{t}>>",
              f"    %w{i} = tt.addptr %v{i}, %r : tensor<4x!tt.ptr<{t}>>, tensor<4xi32>",
              f"    tt.store %w{i}, %s{i} : tensor<4x!tt.ptr<{t}>>"]
  lines += [f"    %k = arith.constant {5 * n} : i32",
            f"    %d = arith.constant dense<[{', '.join(literals)}]> : tensor<{n}x{t}>",
            f"    %rd = tt.make_range {{end = {n} : i32, start = 0 : i32}} : tensor<{n}xi32>",
            f"    %qd = tt.addptr %out, %k : !tt.ptr<{t}>, i32",
            f"    %vd = tt.splat %qd : !tt.ptr<{t}> -> tensor<{n}x!tt.ptr<{t}>>",
            f"    %wd = tt.addptr %vd, %rd : tensor<{n}x!tt.ptr<{t}>>, tensor<{n}xi32>",
            f"    tt.store %wd, %d : tensor<{n}x!tt.ptr<{t}>>"]
  return "module {\n" + "\n".join(lines) + "\n    tt.return\n  }\n}"


@pytest.mark.parametrize("dtype", list(_FLOAT_CONSTANTS))
def test_float_constants_keep_their_bits(dtype):
  """Every float type's constants are stored with their exact bit pattern: fp8 values are encoded
  as fp8 (int(value) stored 1.0 as 0x01 and failed on NaN), NaN payloads survive (f16 lost them),
  signalling NaNs stay signalling (MLIR's widening to f64 quieted them), and dense bf16 / fp8
  tensors are read (jaxlib's numpy conversion does not know these types)."""
  literals = _FLOAT_CONSTANTS[dtype]
  np_dtype = np.dtype(_FLOAT_NP[dtype])
  bits = np.dtype(f"u{np_dtype.itemsize}")
  expected = np.array([int(lit, 16) if lit.startswith("0x") else
                       int(np.array(float(lit)).astype(np_dtype).view(bits)) for lit in literals], bits)
  n = len(literals)
  out = np.zeros(6 * n, bits)
  run_ttir(_constants_ttir(_MLIR_FLOAT[dtype], literals), [out], [f"*{dtype}"])
  np.testing.assert_array_equal(out[:n], expected, err_msg=f"{dtype} scalars")
  np.testing.assert_array_equal(out[n:5 * n].reshape(n, 4), np.repeat(expected[:, None], 4, 1),
                                err_msg=f"{dtype} splats")
  np.testing.assert_array_equal(out[5 * n:], expected, err_msg=f"{dtype} dense")
