"""fp8 (float8e4nv = e4m3fn, float8e5 = e5m2): constants, casts from and to f32 / f16 / bf16 / f64 with
both rounding modes, and tl.dot, against references computed here from ml_dtypes' decoding of the
256 codes.

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

from lang_util import NP, TL, assert_same_floats, round_f64, run

FP8 = {"fp8e4nv": ml_dtypes.float8_e4m3fn, "fp8e5": ml_dtypes.float8_e5m2}
FP8_TL = {"fp8e4nv": tl.float8e4nv, "fp8e5": tl.float8e5}


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
  out = out | np.where(np.signbit(x), 0x80, 0).astype(np.uint8)
  out[np.isnan(x)] = 0x7F
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


@pytest.mark.parametrize("rounding", ["rtz"])
@pytest.mark.parametrize("name", list(FP8))
@pytest.mark.parametrize("src", ["fp32", "fp16", "bf16", "fp64"])
def test_narrowing_to_fp8(src, name, rounding):
  """Wider floats -> fp8, against the exact reference (fp8_round). rtz: toward zero (it rounded
  to nearest)."""
  from test_lang_elementwise import cast_kernel
  x = _narrowing_inputs(src, name, np.random.default_rng(5))
  n = len(x)
  out = np.zeros(n, np.uint8)
  run(cast_kernel, {"x_ptr": f"*{src}", "out_ptr": f"*{name}", "n": "i32"}, [x, out, n],
      (triton.cdiv(n, 256),), {"DST": FP8_TL[name], "ROUNDING": rounding, "BLOCK": 256})
  assert_fp8_equal(out, fp8_round(x, name, rounding), name, f"{src} -> {name} {rounding}")
