"""Shared helpers of the tests/test_lang_*.py suite: dtype tables, a compile cache (a test that only
changes data reuses the compiled kernel), launching with status checks, threaded launches, input
generators and ulp comparisons. Built on direct_launch (compiler + ctypes, no JAX)."""
from __future__ import annotations

import concurrent.futures
import ctypes
import os

import ml_dtypes
import numpy as np
import triton.language as tl

from direct_launch import compile_kernel, launch

NP = {"i1": np.bool_, "i8": np.int8, "i16": np.int16, "i32": np.int32, "i64": np.int64,
      "u8": np.uint8, "u16": np.uint16, "u32": np.uint32, "u64": np.uint64,
      "fp16": np.float16, "bf16": ml_dtypes.bfloat16, "fp32": np.float32, "fp64": np.float64}
TL = {"i1": tl.int1, "i8": tl.int8, "i16": tl.int16, "i32": tl.int32, "i64": tl.int64,
      "u8": tl.uint8, "u16": tl.uint16, "u32": tl.uint32, "u64": tl.uint64,
      "fp16": tl.float16, "bf16": tl.bfloat16, "fp32": tl.float32, "fp64": tl.float64}

FLOATS = ["fp32", "fp64", "fp16", "bf16"]
SIGNED = ["i8", "i16", "i32", "i64"]
UNSIGNED = ["u8", "u32"]
INTS = SIGNED + UNSIGNED
ALL = FLOATS + INTS


def is_float(d: str) -> bool:
  return d in ("fp16", "bf16", "fp32", "fp64")


def is_unsigned(d: str) -> bool:
  return d.startswith("u")


_CACHE: dict = {}


def compiled(kernel, signature: dict, constants: dict | None = None, **options):
  """compile_kernel, memoised on (kernel, signature, constants, options, JAX_TRITON_CPU_TARGET)."""
  key = (kernel, os.environ.get("JAX_TRITON_CPU_TARGET"),
         tuple((k, repr(v)) for k, v in signature.items()),
         tuple((k, repr(v)) for k, v in (constants or {}).items()), tuple(sorted(options.items())))
  if key not in _CACHE:
    _CACHE[key] = compile_kernel(kernel, signature, constants, **options)
  return _CACHE[key]


def frontend_accepts(kernel, signature: dict, constants: dict | None = None) -> bool:
  """Whether this triton's frontend builds `kernel`: for language features that differ between
  the triton versions we support."""
  from triton.compiler.errors import CompilationError
  from jax_triton_cpu.compiler import CPUOptions, frontend
  try:
    frontend.make_ttir(kernel, signature, constants or {}, {}, CPUOptions())
    return True
  except CompilationError:
    return False


def run(kernel, signature: dict, args, grid, constants: dict | None = None, **options):
  """Compiles (memoised) and runs every program of `grid`; asserts status 0."""
  c = compiled(kernel, signature, constants, **options)
  status = launch(c, args, grid, types=list(signature.values()))
  assert status == 0, f"launch returned {status}: {message(c)}"
  return c


def run_ttir(text: str, args, types: list[str], grid=(1,)):
  """Compiles hand-written TTIR (memoised) and runs it: for ops and attributes that no
  triton.language expression emits."""
  from jax_triton_cpu.compiler import CPUOptions, compile_ttir
  if text not in _CACHE:
    _CACHE[text] = compile_ttir(text, CPUOptions())
  c = _CACHE[text]
  status = launch(c, args, grid, types=types)
  assert status == 0, f"launch returned {status}: {message(c)}"
  return c


def message(c) -> str | None:
  """The failure description of the calling thread's last failed launch (docs/abi.md)."""
  lib = ctypes.CDLL(c.library_path)
  fn = getattr(lib, c.symbol + "_message", None)
  if fn is None:
    return None
  fn.restype = ctypes.c_char_p
  fn.argtypes = []
  raw = fn()
  return raw.decode(errors="replace") if raw is not None else None


def run_threaded(c, args, grid, chunks: int = 8, threads: int = 4, types=None) -> list[int]:
  """Runs the programs of `grid` in `chunks` ranges from a thread pool (real contention); returns the
  statuses."""
  n = int(np.prod(grid))
  bounds = np.linspace(0, n, chunks + 1).astype(int)
  with concurrent.futures.ThreadPoolExecutor(threads) as pool:
    futures = [pool.submit(launch, c, args, grid, int(lo), int(hi), types)
               for lo, hi in zip(bounds[:-1], bounds[1:]) if hi > lo]
    return [f.result() for f in futures]


def rand(shape, dtype: str, rng, low=None, high=None):
  """Random data of a Triton dtype: floats ~ N(0, 1) * scale (or uniform [low, high)), ints uniform
  in [low, high) (default: the full range)."""
  np_dtype = NP[dtype]
  if dtype == "i1":
    return rng.integers(0, 2, shape).astype(np.bool_)
  if is_float(dtype):
    if low is None:
      return rng.standard_normal(shape).astype(np_dtype)
    return rng.uniform(low, high, shape).astype(np_dtype)
  info = np.iinfo(np_dtype)
  lo = info.min if low is None else low
  hi = info.max + 1 if high is None else high
  return rng.integers(lo, hi, shape, dtype=np.int64 if hi <= 2**63 else np.uint64).astype(np_dtype)


def finfo(dtype: str):
  return ml_dtypes.finfo(NP[dtype]) if dtype == "bf16" else np.finfo(NP[dtype])


def ulp_error(actual, exact, dtype: str):
  """|actual - exact| in units of the last place of `exact` in `dtype` (exact: float64 reference).
  Positions where both are NaN or both are the same infinity count 0."""
  actual = np.asarray(actual).astype(np.float64)
  exact = np.asarray(exact, np.float64)
  info = finfo(dtype)
  tiny = float(info.smallest_normal)
  eps = float(info.eps)
  mag = np.maximum(np.abs(exact), tiny)
  with np.errstate(all="ignore"):
    ulp = np.exp2(np.floor(np.log2(mag))) * eps
    err = np.abs(actual - exact) / ulp
  same = (np.isnan(actual) & np.isnan(exact)) | ((actual == exact) & np.isinf(exact))
  err = np.where(same, 0.0, err)
  return np.where(np.isnan(err), np.inf, err)


def assert_ulp(actual, exact, dtype: str, max_ulp: float, what: str = ""):
  err = ulp_error(actual, exact, dtype)
  worst = int(np.argmax(err))
  assert err.max() <= max_ulp, (
      f"{what}: max error {err.max():.3g} ulp > {max_ulp} at flat index {worst}: got "
      f"{np.asarray(actual).ravel()[worst]!r}, exact {np.asarray(exact).ravel()[worst]!r}")


def grid_1d(n: int, block: int):
  return ((n + block - 1) // block,)


def small_ints(shape, dtype: str, rng, low: int = -9, high: int = 10):
  """Integer-valued data of any dtype: products and sums stay exact, so FMA contraction (which
  Triton allows) cannot change results."""
  if is_unsigned(dtype):
    low = max(low, 0)
  return rng.integers(low, high, shape).astype(NP[dtype])


def round_f64(x, dst: str):
  """float64 -> dst with one round-to-nearest-even (ml_dtypes rounds f64 -> bf16 through f32, twice;
  here f64 -> f32 rounds to odd first, which makes the second rounding exact)."""
  x = np.asarray(x, np.float64)
  if dst != "bf16":
    with np.errstate(over="ignore"):
      return x.astype(NP[dst])
  with np.errstate(all="ignore"):
    t = x.astype(np.float32)
    away = np.isfinite(x) & (np.abs(t.astype(np.float64)) > np.abs(x))
    t = np.where(away, np.nextafter(t, np.float32(0)), t).astype(np.float32)
    inexact = np.isfinite(x) & (t.astype(np.float64) != x)
    bits = t.view(np.uint32) | inexact.astype(np.uint32)
  return bits.view(np.float32).astype(NP["bf16"])


def assert_same_floats(actual, expected, what: str = ""):
  """Equal values, signs of zero included; NaN where expected is NaN (any payload)."""
  a = np.asarray(actual).astype(np.float64)
  e = np.asarray(expected).astype(np.float64)
  np.testing.assert_array_equal(np.isnan(a), np.isnan(e), err_msg=f"{what}: NaN positions")
  ok = ~np.isnan(e)
  np.testing.assert_array_equal(a[ok], e[ok], err_msg=what)
  np.testing.assert_array_equal(np.signbit(a[ok]), np.signbit(e[ok]), err_msg=f"{what}: signs")


def run_python(source: str, timeout: float = 120):
  """Runs `source` in a fresh Python in the tests directory (for code that may crash the process)."""
  import os
  import subprocess
  import sys
  here = os.path.dirname(os.path.abspath(__file__))
  return subprocess.run([sys.executable, "-c", source], cwd=here, capture_output=True, text=True,
                        timeout=timeout)


def assert_equal(actual, expected, what: str = ""):
  """Exact equality; for floats NaN == NaN (bf16 included, which numpy's testing does not handle)
  and the sign of zero counts."""
  actual, expected = np.asarray(actual), np.asarray(expected)
  assert actual.shape == expected.shape, (actual.shape, expected.shape)
  if actual.dtype.kind in "fV" or actual.dtype == NP["bf16"]:
    assert_same_floats(actual, expected, what)
  else:
    np.testing.assert_array_equal(actual, expected, err_msg=what)


def compile_nested(kernel, signature: dict, constants: dict | None = None, **options):
  """compile_kernel for signatures with tuple parameters (("*fp32", "i32"), ...); launch it with
  the flattened arguments (types=None: the compiled, flattened parameter types)."""
  from jax_triton_cpu.compiler import CPUOptions, compile_ttir, frontend
  constants = constants or {}
  attrs = {}

  def visit(path, t):
    if isinstance(t, tuple):
      for j, u in enumerate(t):
        visit(path + (j,), u)
    elif t.startswith("*"):
      attrs[path] = [["tt.divisibility", 16]]

  for i, t in enumerate(signature.values()):
    visit((i,), t)
  opts = CPUOptions(**options)
  full = dict(signature) | {k: "constexpr" for k in constants}
  return compile_ttir(frontend.make_ttir(kernel, full, constants, attrs, opts), opts)
