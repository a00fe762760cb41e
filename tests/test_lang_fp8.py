"""fp8 (float8e4nv = e4m3fn, float8e5 = e5m2, and AMD's float8e4b8 = e4m3fnuz, float8e5b16 =
e5m2fnuz): constants, casts from and to f32 / f16 / bf16 / f64 with both rounding modes, and
tl.dot, against references computed here from ml_dtypes' decoding of the 256 codes. The fnuz
formats have no infinities or -0 (a value that rounds to zero is +0), and 0x80 is their NaN.

Narrowing to fp8 follows the GPU's cvt.rn.satfinite (sm_89 and later): round to nearest even,
finite values and infinities beyond the largest finite value saturate to it, NaN stays NaN.
fp_downcast_rounding="rtz" truncates toward zero (never past the largest finite value); e5m2 keeps
infinities there (as Triton's f32 -> e5m2 rtz does: rz to f16, then its high byte), e4m3fn, which
has none, saturates them."""
import ml_dtypes
import numpy as np
import pytest
import triton
import triton.language as tl

from lang_util import NP, TL, assert_same_floats, frontend_accepts, run

FP8 = {"fp8e4nv": ml_dtypes.float8_e4m3fn, "fp8e5": ml_dtypes.float8_e5m2,
       "fp8e4b8": ml_dtypes.float8_e4m3fnuz, "fp8e5b16": ml_dtypes.float8_e5m2fnuz}
FP8_TL = {"fp8e4nv": tl.float8e4nv, "fp8e5": tl.float8e5, "fp8e4b8": tl.float8e4b8,
          "fp8e5b16": tl.float8e5b16}
FNUZ = ("fp8e4b8", "fp8e5b16")  # AMD's: no infinities, no -0; 0x80 is the one NaN


def _codes(dtype):
  """The non-negative finite fp8 values, ascending, and their codes."""
  codes = np.arange(128, dtype=np.uint8)
  values = codes.view(dtype).astype(np.float64)
  keep = np.isfinite(values)
  order = np.argsort(values[keep], kind="stable")
  return values[keep][order], codes[keep][order]


def fp8_round(x, name: str, rounding: str = "rtne"):
  """Exact fp8 codes of float64 values `x` (every f16 / bf16 / f32 / f64 value is one): the nearest
  (ties to even) or next-toward-zero finite fp8 value, by comparison with the code table and its
  midpoints (all exact in float64), saturated as described in the module docstring."""
  dtype = FP8[name]
  with np.errstate(invalid="ignore"):
    x = np.asarray(x).astype(np.float64).ravel()
  values, codes = _codes(dtype)
  mag = np.abs(x)
  i = np.clip(np.searchsorted(values, mag, side="right") - 1, 0, len(values) - 1)
  below, j = values[i], np.minimum(i + 1, len(values) - 1)
  above = values[j]
  if rounding == "rtz":
    pick = i
  else:
    mid = (below + above) / 2
    up = (mag > mid) | ((mag == mid) & (codes[i] % 2 == 1))
    pick = np.where(up & (i < len(values) - 1), j, i)
  out = codes[pick].copy()
  if rounding == "rtz" and name == "fp8e5":
    out[np.isinf(x)] = 0x7C
  negative = np.signbit(x) & ((out != 0) if name in FNUZ else True)  # fnuz: +0 only
  out = out | np.where(negative, 0x80, 0).astype(np.uint8)
  out[np.isnan(x)] = 0x80 if name in FNUZ else 0x7F
  return out


def decode(codes, name: str):
  return np.asarray(codes, np.uint8).view(FP8[name]).astype(np.float64)


def assert_fp8_equal(actual, expected, name: str, what: str = ""):
  """Same codes, except that any NaN matches any NaN."""
  a, e = np.asarray(actual, np.uint8).ravel(), np.asarray(expected, np.uint8).ravel()
  both_nan = np.isnan(decode(a, name)) & np.isnan(decode(e, name))
  bad = np.flatnonzero((a != e) & ~both_nan)
  assert bad.size == 0, (f"{what}: {bad.size} codes differ, first at {bad[0]}: got {a[bad[0]]:#04x} "
                         f"({decode(a[bad[0]], name)}), expected {e[bad[0]]:#04x} "
                         f"({decode(e[bad[0]], name)})")


def test_reference_agrees_with_ml_dtypes():
  """The table reference rounds like ml_dtypes wherever ml_dtypes does not overflow (it overflows
  to NaN / inf where the GPU saturates)."""
  rng = np.random.default_rng(1)
  x = (rng.standard_normal(20000) * np.exp2(rng.integers(-20, 18, 20000))).astype(np.float32)
  for name, dtype in FP8.items():
    with np.errstate(over="ignore", invalid="ignore"):
      lib = x.astype(dtype)
    ok = np.isfinite(lib.astype(np.float64))
    assert_fp8_equal(fp8_round(x, name)[ok], lib[ok].view(np.uint8), name, name)


# ---- constants ----------------------------------------------------------------------------------

@triton.jit
def full_kernel(out_ptr, V: tl.constexpr, DT: tl.constexpr, BLOCK: tl.constexpr):
  offs = tl.arange(0, BLOCK)
  tl.store(out_ptr + offs, tl.full((BLOCK,), V, DT))
  tl.store(out_ptr + BLOCK, tl.full((), V, DT))


@pytest.mark.skipif(not frontend_accepts(full_kernel, {"out_ptr": "*fp8e5"},
                                         {"V": 1.0, "DT": tl.float8e5, "BLOCK": 16}),
                    reason="this triton's frontend makes no fp8 constants (3.6: tl.full in fp8)")
@pytest.mark.parametrize("name", list(FP8))
@pytest.mark.parametrize("value", [1.0, -2.5, 0.3, -0.0, 448.0, -57344.0, 500.0, 2.0**-9, 2.0**-16,
                                   1e-30, float("nan"), float("-inf")])
def test_fp8_constants(name, value):
  """tl.full in fp8: Triton rounds the value to f32, then to fp8: MLIR folds exact conversions
  into an fp8 constant (infinities too), the others are converted at run time. The codes stored
  are those of the value (int(value) stored 1.0 as 0x01)."""
  block = 16
  out = np.zeros(block + 1, np.uint8)
  run(full_kernel, {"out_ptr": f"*{name}"}, [out], (1,), {"V": value, "DT": FP8_TL[name],
                                                           "BLOCK": block})
  f32 = np.float32(value)
  with np.errstate(over="ignore", invalid="ignore"):
    exact = np.array(f32).astype(FP8[name])
  if exact.astype(np.float32) == f32 or np.isnan(f32):
    expected = np.full(block + 1, exact).view(np.uint8)
  else:
    expected = fp8_round(np.full(block + 1, f32), name)
  assert_fp8_equal(out, expected, name, f"tl.full({value}, {name})")


# ---- casts --------------------------------------------------------------------------------------

def _narrowing_inputs(src: str, name: str, rng):
  """Every bit pattern of a 16-bit source; for f32, every pattern of its top 16 bits (twice,
  with random low bits); for f64, every fp8 value, the midpoints between neighbours and their
  one-ulp neighbours in f64. With infinities, NaN, values beyond the largest finite fp8."""
  if src in ("fp16", "bf16"):
    return np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(NP[src])
  if src == "fp32":
    top = np.arange(1 << 16, dtype=np.uint32) << 16
    low = rng.integers(0, 1 << 16, 1 << 17, dtype=np.uint32)
    return np.concatenate([top, np.tile(top, 2) | low]).view(np.float32)
  values, _ = _codes(FP8[name])
  mids = (values[1:] + values[:-1]) / 2
  x = np.concatenate([values, mids, values[-1] * np.array([1.03125, 1.0625, 1.1, 4.0, 1e30])])
  x = np.concatenate([x, np.nextafter(x, np.inf), np.nextafter(x, -np.inf)])
  x = np.concatenate([x, -x, [np.inf, -np.inf, np.nan, 1e-300, -1e-300, 1e300]])
  return np.resize(x, -(-len(x) // 256) * 256)


@pytest.mark.parametrize("rounding", ["", "rtne", "rtz"])
@pytest.mark.parametrize("name", list(FP8))
@pytest.mark.parametrize("src", ["fp32", "fp16", "bf16", "fp64"])
def test_narrowing_to_fp8(src, name, rounding):
  """Wider floats -> fp8, against the exact reference (fp8_round): the default and "rtne" round to
  nearest even once (f64 too, not twice through f32), saturating; rtz truncates."""
  from test_lang_elementwise import cast_kernel
  x = _narrowing_inputs(src, name, np.random.default_rng(5))
  n = len(x)
  out = np.zeros(n, np.uint8)
  run(cast_kernel, {"x_ptr": f"*{src}", "out_ptr": f"*{name}", "n": "i32"}, [x, out, n],
      (triton.cdiv(n, 256),), {"DST": FP8_TL[name], "ROUNDING": rounding, "BLOCK": 256})
  assert_fp8_equal(out, fp8_round(x, name, rounding), name, f"{src} -> {name} {rounding}")


@pytest.mark.parametrize("dst", ["fp32", "fp16", "bf16", "fp64", "fp8e4nv", "fp8e5"])
@pytest.mark.parametrize("name", list(FP8))
def test_widening_from_fp8(name, dst):
  """All 256 codes -> f32 / f16 / bf16 / f64: exact (ml_dtypes' decoding), NaN stays NaN, signed
  zeros and subnormals kept. To the other fp8 format: rounded to nearest even and saturated (to
  its own: unchanged)."""
  from test_lang_elementwise import cast_kernel
  x = np.arange(256, dtype=np.uint8).view(FP8[name])
  if dst in FP8:
    out = np.zeros(256, np.uint8)
    expected = x.view(np.uint8) if dst == name else fp8_round(x, dst)
  else:
    out = np.zeros(256, NP[dst])
    expected = x.astype(NP[dst])
  run(cast_kernel, {"x_ptr": f"*{name}", "out_ptr": f"*{dst}", "n": "i32"}, [x, out, 256], (2,),
      {"DST": FP8_TL.get(dst) or TL[dst], "ROUNDING": "", "BLOCK": 128})
  if dst in FP8:
    assert_fp8_equal(out, expected, dst, f"{name} -> {dst}")
  else:
    assert_same_floats(out, expected, f"{name} -> {dst}")


@triton.jit
def scalar_roundtrip_kernel(x_ptr, f_ptr, back_ptr, FP8_TYPE: tl.constexpr):
  """One element per program, as scalars: fp8 -> f32, and the f32 value + 1/3 -> fp8."""
  i = tl.program_id(0)
  f = tl.load(x_ptr + i).to(tl.float32)
  tl.store(f_ptr + i, f)
  tl.store(back_ptr + i, (f + 1.0 / 3.0).to(FP8_TYPE))


@pytest.mark.parametrize("name", list(FP8))
def test_scalar_fp8_casts(name):
  x = np.arange(256, dtype=np.uint8).view(FP8[name])
  f = np.zeros(256, np.float32)
  back = np.zeros(256, np.uint8)
  run(scalar_roundtrip_kernel, {"x_ptr": f"*{name}", "f_ptr": "*fp32", "back_ptr": f"*{name}"},
      [x, f, back], (256,), {"FP8_TYPE": FP8_TL[name]})
  assert_same_floats(f, x.astype(np.float32), f"{name} -> fp32 (scalars)")
  assert_fp8_equal(back, fp8_round(x.astype(np.float32) + np.float32(1.0 / 3.0), name), name,
                   f"fp32 -> {name} (scalars)")


# ---- dot ----------------------------------------------------------------------------------------

def _fp8_data(shape, name, rng, exact: bool):
  """Random fp8 codes (no NaN / inf); exact: only multiples of 1/8 up to 16 in magnitude, whose
  products and sums over K <= 64 are exact in f32 (so any summation order gives the same)."""
  values = np.arange(256, dtype=np.uint8).view(FP8[name]).astype(np.float64)
  ok = np.isfinite(values)
  if exact:
    ok &= (np.abs(values) <= 16) & (values * 8 == np.round(values * 8))
  return rng.choice(np.flatnonzero(ok), shape).astype(np.uint8).view(FP8[name])


DOT_TYPES = [("fp8e4nv", "fp8e4nv"), ("fp8e5", "fp8e5"), ("fp8e4nv", "fp8e5"), ("fp8e5", "fp8e4nv"),
             ("fp8e4b8", "fp8e5b16")]


@pytest.mark.parametrize("use_acc", [False, True])
@pytest.mark.parametrize("shape", [(16, 16, 32), (32, 64, 16), (64, 32, 64)])
@pytest.mark.parametrize("ta,tb", DOT_TYPES)
def test_fp8_dot(ta, tb, shape, use_acc):
  """tl.dot of fp8 operands (same or mixed formats) accumulates in f32: exact on data whose sums
  are exact, within K * eps32 * |A| @ |B| of the float64 product on random codes of every
  magnitude. Inputs are decoded by ml_dtypes."""
  from test_lang_dot import dot_kernel
  m, n, k = shape
  rng = np.random.default_rng(m + n + k + use_acc)
  for exact in (True, False):
    a, b = _fp8_data((m, k), ta, rng, exact), _fp8_data((k, n), tb, rng, exact)
    acc = (rng.integers(-64, 64, (m, n)) / 4).astype(np.float32)
    c = np.zeros((m, n), np.float32)
    run(dot_kernel, {"a_ptr": f"*{ta}", "b_ptr": f"*{tb}", "c_ptr": "*fp32", "acc_ptr": "*fp32"},
        [a, b, c, acc], (1,), {"M": m, "N": n, "K": k, "PREC": None, "USE_ACC": use_acc,
                               "OUT": None, "TRANS_B": False})
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    expected = a64 @ b64 + (acc if use_acc else 0)
    if exact:
      assert_same_floats(c, expected.astype(np.float32), f"dot {ta} x {tb} {shape}")
    else:
      bound = k * np.finfo(np.float32).eps * (np.abs(a64) @ np.abs(b64) + np.abs(acc))
      err = np.abs(c - expected)
      assert (err <= bound).all(), f"dot {ta} x {tb} {shape}: max error {err.max()}"


# ---- math on fp8 --------------------------------------------------------------------------------

@triton.jit
def abs_fma_kernel(x_ptr, abs_ptr, fma_ptr, BLOCK: tl.constexpr):
  offs = tl.arange(0, BLOCK)
  x = tl.load(x_ptr + offs)
  tl.store(abs_ptr + offs, tl.abs(x))
  tl.store(fma_ptr + offs, tl.fma(x, x, x))


@pytest.mark.parametrize("name", list(FP8))
def test_fp8_abs_and_fma(name):
  """abs clears the sign bit of every code (NaN payloads kept; fnuz's NaN 0x80 stays); fma
  computes in f32 and rounds once to fp8."""
  x = np.arange(256, dtype=np.uint8).view(FP8[name])
  got_abs, got_fma = np.zeros(256, np.uint8), np.zeros(256, np.uint8)
  run(abs_fma_kernel, {"x_ptr": f"*{name}", "abs_ptr": f"*{name}", "fma_ptr": f"*{name}"},
      [x, got_abs, got_fma], (1,), {"BLOCK": 256})
  codes = x.view(np.uint8)
  nan = (codes == 0x80) if name in FNUZ else np.zeros(256, bool)  # fnuz: 0x80 is NaN, kept
  np.testing.assert_array_equal(got_abs, np.where(nan, codes, codes & 0x7F))
  wide = x.astype(np.float32)
  with np.errstate(invalid="ignore", over="ignore"):
    exact = wide.astype(np.float64) * wide + wide  # exact in f64, as one f32 fma rounds it
  assert_fp8_equal(got_fma, fp8_round(exact.astype(np.float32), name), name, f"fma {name}")


# ---- float8e4b15 (triton's custom type; conversions in compiler/fp8e4b15.py) ---------------------

def _e4b15_values() -> np.ndarray:
  """The value of each of the 256 codes, from the format: sign, 4 exponent bits with bias 15,
  3 mantissa bits, subnormals, no infinities or NaN."""
  codes = np.arange(256)
  sign = np.where(codes & 0x80, -1.0, 1.0)
  e, m = (codes >> 3) & 15, codes & 7
  return sign * np.where(e == 0, m / 8 * 2.0 ** -14, (1 + m / 8) * 2.0 ** (e - 15.0))


def _to_e4b15(x) -> np.ndarray:
  """CUDA's fp16 -> fp8e4b15: the nearest code, ties away from zero, magnitudes (NaN too)
  saturated at 1.75."""
  x = np.asarray(x, np.float64)
  positive = _e4b15_values()[:128]
  mag = np.minimum(np.where(np.isnan(x), 1.75, np.abs(x)), 1.75)
  i = np.clip(np.searchsorted(positive, mag, side="right") - 1, 0, 127)
  j = np.minimum(i + 1, 127)
  up = (mag - positive[i] >= positive[j] - mag) & (j > i)
  return (np.where(up, j, i) | np.where(np.signbit(x), 0x80, 0)).astype(np.uint8)


@triton.jit
def e4b15_kernel(x_ptr, h_ptr, f_ptr, BLOCK: tl.constexpr):
  offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
  x = tl.load(x_ptr + offs)
  tl.store(h_ptr + offs, x.to(tl.float16))
  tl.store(f_ptr + offs, x.to(tl.float32))


@triton.jit
def to_e4b15_kernel(x_ptr, out_ptr, BLOCK: tl.constexpr):
  offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
  tl.store(out_ptr + offs, tl.load(x_ptr + offs).to(tl.float8e4b15))


def test_fp8e4b15_widens_exactly():
  codes = np.arange(256, dtype=np.uint8)
  h, f = np.zeros(256, np.float16), np.zeros(256, np.float32)
  run(e4b15_kernel, {"x_ptr": "*fp8e4b15", "h_ptr": "*fp16", "f_ptr": "*fp32"}, [codes, h, f],
      (1,), {"BLOCK": 256})
  assert_same_floats(h, _e4b15_values().astype(np.float16), "fp8e4b15 -> fp16")
  assert_same_floats(f, _e4b15_values().astype(np.float32), "fp8e4b15 -> fp32")


def test_fp8e4b15_from_every_fp16():
  x = np.arange(1 << 16, dtype=np.uint16).view(np.float16)
  out = np.zeros(1 << 16, np.uint8)
  run(to_e4b15_kernel, {"x_ptr": "*fp16", "out_ptr": "*fp8e4b15"}, [x, out], (64,), {"BLOCK": 1024})
  np.testing.assert_array_equal(out, _to_e4b15(x))


def test_fp8e4b15_from_fp32_rounds_to_fp16_toward_zero_first():
  rng = np.random.default_rng(3)
  x = np.concatenate([rng.normal(0, 0.5, 4000), rng.uniform(-2 ** -14, 2 ** -14, 4000),
                      [np.inf, -np.inf, np.nan, 0.0, -0.0, 1e-30, 3.0, -1.7]]).astype(np.float32)
  x = np.resize(x, 8192)
  out = np.zeros(8192, np.uint8)
  run(to_e4b15_kernel, {"x_ptr": "*fp32", "out_ptr": "*fp8e4b15"}, [x, out], (8,), {"BLOCK": 1024})
  with np.errstate(over="ignore", invalid="ignore"):
    nearest = x.astype(np.float16)
    toward_zero = np.where(np.abs(nearest.astype(np.float64)) > np.abs(x.astype(np.float64)),
                           np.nextafter(nearest, np.float16(0)), nearest)
  np.testing.assert_array_equal(out, _to_e4b15(toward_zero))
