"""What every example script shares: its command line, the check against jax.numpy, the timing.

Not part of any kernel: the examples' kernels and wrappers are in the example files themselves.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np


def parse_args(description: str, argv: list[str] | None = None) -> argparse.Namespace:
  """`--quick` (or JAX_TRITON_CPU_EXAMPLES_QUICK=1): small sizes, few timing repeats."""
  parser = argparse.ArgumentParser(description=description)
  parser.add_argument("--quick", action="store_true",
                      default=os.environ.get("JAX_TRITON_CPU_EXAMPLES_QUICK", "") not in ("", "0"),
                      help="small sizes and few timing repeats (for tests)")
  return parser.parse_args(argv)


def max_error(got: Any, want: Any) -> float:
  got = np.asarray(got, dtype=np.float64)
  want = np.asarray(want, dtype=np.float64)
  assert got.shape == want.shape, (got.shape, want.shape)
  return float(np.max(np.abs(got - want))) if got.size else 0.0


def _calls_per_sample(fn: Callable[..., Any], args: tuple[Any, ...]) -> int:
  """Calls per timing sample: enough for a sample to last ~1 ms."""
  t0 = time.perf_counter()
  jax.block_until_ready(fn(*args))
  return max(1, int(1e-3 / max(time.perf_counter() - t0, 1e-7)))


def times_per_call(fns: list[Callable[..., Any]], *args: Any, quick: bool = False,
                   budget_s: float = 2.0) -> list[float]:
  """Median seconds per call of each fn(*args), sampled in turn (A B A B ...) so that the noise of
  a shared machine hits them alike. Each fn is called once first (compile and warm-up)."""
  for fn in fns:
    jax.block_until_ready(fn(*args))
  numbers = [_calls_per_sample(fn, args) for fn in fns]
  samples: list[list[float]] = [[] for _ in fns]
  deadline = time.perf_counter() + (budget_s / 20 if quick else budget_s)
  while len(samples[0]) < 3 or (time.perf_counter() < deadline and len(samples[0]) < 100):
    for fn, number, out_samples in zip(fns, numbers, samples):
      t0 = time.perf_counter()
      for _ in range(number):
        out = fn(*args)
      jax.block_until_ready(out)
      out_samples.append((time.perf_counter() - t0) / number)
  return [statistics.median(s) for s in samples]


def fmt_time(seconds: float) -> str:
  if seconds < 1e-3:
    return f"{seconds * 1e6:9.1f} us"
  return f"{seconds * 1e3:9.3f} ms"


class Report:
  """Collects one line per checked case and the exit status of the script."""

  def __init__(self, title: str):
    self.ok = True
    print(title)

  def check(self, case: str, got: Any, want: Any, *, atol: float, rtol: float = 0.0) -> bool:
    got64 = np.asarray(got, dtype=np.float64)
    want64 = np.asarray(want, dtype=np.float64)
    err = max_error(got64, want64)
    good = bool(np.all(np.isfinite(got64) == np.isfinite(want64))) and bool(
        np.allclose(got64, want64, rtol=rtol, atol=atol, equal_nan=True))
    self.ok &= good
    print(f"  {case:44s} max error {err:9.2e} (atol {atol:.0e})  {'ok' if good else 'WRONG'}")
    return good

  def timing(self, case: str, ours: Callable[..., Any], reference: Callable[..., Any],
             *args: Any, quick: bool = False) -> None:
    t_ours, t_ref = times_per_call([ours, reference], *args, quick=quick)
    print(f"  {case:44s} triton {fmt_time(t_ours)}/call   jax.numpy {fmt_time(t_ref)}/call")

  def exit_code(self) -> int:
    print("all results match jax.numpy" if self.ok else "SOME RESULTS ARE WRONG")
    return 0 if self.ok else 1


def run_main(main: Callable[[list[str] | None], int]) -> None:
  sys.exit(main(sys.argv[1:]))
