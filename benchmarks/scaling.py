"""Multi-core scaling: matmul 2048^3 and vector add 2^26 (f32) at 1, 2, 4, ... threads.

Run on a many-core machine (the issue's 16-core device):
  JAX_PLATFORMS=cpu python benchmarks/scaling.py --markdown docs/scaling.md
Speedups are against 1 thread, measured in the same run; XLA's own op on all cores is shown too.
"""
from __future__ import annotations

import argparse
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import matmul as matmul_bench  # noqa: E402
import timing  # noqa: E402
import vector_add  # noqa: E402


def _thread_counts(cores: int) -> list[int]:
  counts, t = [], 1
  while t < cores:
    counts.append(t)
    t *= 2
  return counts + [cores]


def _measure(name, make, reference, counts, reps, rtol=1e-5):
  """Median seconds per call for each thread count (interleaved), plus XLA's."""
  fns = {t: make({"num_cpu_threads": t}) for t in counts}
  for t, fn in fns.items():
    timing.check_close(f"{name} ({t} threads)", fn(), reference(), rtol=rtol, atol=rtol)
  times = timing.interleaved({**{str(t): fns[t] for t in counts}, "xla": reference}, reps=reps)
  return {t: times[str(t)] for t in counts}, times["xla"]


def main() -> int:
  parser = argparse.ArgumentParser()
  parser.add_argument("--markdown", default="")
  parser.add_argument("--quick", action="store_true")
  args = parser.parse_args()
  cores = os.cpu_count() or 1
  counts = _thread_counts(cores)
  reps = 5 if args.quick else 15

  n = 1 << (22 if args.quick else 26)
  x = jnp.asarray(np.random.default_rng(0).standard_normal(n, np.float32))
  y = jnp.asarray(np.random.default_rng(1).standard_normal(n, np.float32))
  add_times, add_xla = _measure(
      "vector add", lambda o: (lambda f: lambda: f(x, y))(jax.jit(
          lambda x, y: vector_add.add(x, y, 16384, backend_options=o))),
      (lambda f: lambda: f(x, y))(jax.jit(lambda x, y: x + y)), counts, reps)

  size = 1024 if args.quick else 2048
  a = jnp.asarray(np.random.default_rng(2).standard_normal((size, size), np.float32))
  b = jnp.asarray(np.random.default_rng(3).standard_normal((size, size), np.float32))
  mm_times, mm_xla = _measure(
      "matmul", lambda o: (lambda f: lambda: f(a, b))(jax.jit(
          lambda a, b: matmul_bench.matmul(a, b, (128, 128, 32), backend_options=o))),
      (lambda f: lambda: f(a, b))(jax.jit(lambda a, b: a @ b)), counts, reps, rtol=1e-3)

  info = timing.machine_info()
  lines = [f"# Multi-core scaling ({cores} cores)", "", *timing.machine_lines(info, None), "",
           f"| threads | vector add 2^{n.bit_length() - 1} f32 | speedup | "
           f"matmul {size}^3 f32 | speedup | matmul GFLOP/s |", "|---:|---:|---:|---:|---:|---:|"]
  for t in counts:
    lines.append(f"| {t} | {timing.fmt_time(add_times[t])} | {add_times[1] / add_times[t]:.2f}x | "
                 f"{timing.fmt_time(mm_times[t])} | {mm_times[1] / mm_times[t]:.2f}x | "
                 f"{2 * size ** 3 / mm_times[t] / 1e9:.0f} |")
  lines.append(f"| XLA (all cores) | {timing.fmt_time(add_xla)} | {add_times[1] / add_xla:.2f}x | "
               f"{timing.fmt_time(mm_xla)} | {mm_times[1] / mm_xla:.2f}x | "
               f"{2 * size ** 3 / mm_xla / 1e9:.0f} |")
  text = "\n".join(lines) + "\n"
  print(text)
  if args.markdown:
    with open(args.markdown, "w") as f:
      f.write(text)
  return 0


if __name__ == "__main__":
  sys.exit(main())
