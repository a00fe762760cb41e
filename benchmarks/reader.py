"""reader: time to parse the TTIR of the fused attention example (examples/fused_attention.py,
causal, f16) into our IR, the reader's share of a cold compile.

    python benchmarks/reader.py [--reps N]

The TTIR is captured from a real compile (the text the compiler reads), then `read_ttir` is timed
alone: median of N runs, after one warm-up.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "examples"))


def capture_attention_ttir() -> str:
  import jax.numpy as jnp
  import fused_attention
  from jax_triton_cpu.compiler import pipeline
  captured = []
  read = pipeline.reader.read_ttir

  def capture(text):
    captured.append(text)
    return read(text)
  pipeline.reader.read_ttir = capture
  os.environ["JAX_TRITON_CPU_CACHE_DIR"] = tempfile.mkdtemp()  # a miss: the reader runs
  try:
    q, k, v = fused_attention.make_inputs((1, 2, 128, 64), jnp.float16)
    fused_attention.attention(q, k, v, causal=True).block_until_ready()
  finally:
    pipeline.reader.read_ttir = read
  return captured[0]


def main() -> None:
  parser = argparse.ArgumentParser()
  parser.add_argument("--reps", type=int, default=20)
  reps = parser.parse_args().reps
  from jax_triton_cpu.compiler import reader
  text = capture_attention_ttir()
  reader.read_ttir(text)
  times = []
  for _ in range(reps):
    t0 = time.perf_counter()
    module = reader.read_ttir(text)
    times.append(time.perf_counter() - t0)
  ops = sum(1 for _ in module.kernel.walk())
  print(f"attention TTIR: {len(text)} chars, {ops} ops; read_ttir median "
        f"{statistics.median(times) * 1e3:.2f} ms over {reps} runs")


if __name__ == "__main__":
  main()
