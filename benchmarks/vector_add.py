"""vector_add / axpy: out = x + y and out = a * x + y over f32 vectors of 2^10, 2^20, 2^24 elements.

Ours: a one-dimensional Triton kernel, BLOCK picked from BLOCKS by a short interleaved run, then
re-measured against XLA's `x + y` / `a * x + y` under jit. GB/s counts 3 * n * 4 bytes (two reads,
one write). The memory-bandwidth reference is numpy's np.copyto of 1.5 * n floats: the same 3 * n * 4
bytes of traffic (one read, one write), single-threaded.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import triton
import triton.language as tl

import jax_triton_cpu as jt
from timing import Row, Settings, check_close, choose_best, interleaved, short_error

SIZES = (("2^10", 1 << 10), ("2^20", 1 << 20), ("2^24", 1 << 24))
BLOCKS = (1024, 2048, 4096, 8192, 16384)
A = 2.5


@triton.jit
def add_kernel(x_ptr, y_ptr, out_ptr, n, BLOCK: tl.constexpr):
  offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
  mask = offs < n
  x = tl.load(x_ptr + offs, mask=mask)
  y = tl.load(y_ptr + offs, mask=mask)
  tl.store(out_ptr + offs, x + y, mask=mask)


@triton.jit
def axpy_kernel(a, x_ptr, y_ptr, out_ptr, n, BLOCK: tl.constexpr):
  offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
  mask = offs < n
  x = tl.load(x_ptr + offs, mask=mask)
  y = tl.load(y_ptr + offs, mask=mask)
  tl.store(out_ptr + offs, a * x + y, mask=mask)


def add(x, y, block, backend_options=None):
  n = x.size
  return jt.triton_call(x, y, kernel=add_kernel, out_type=jax.ShapeDtypeStruct(x.shape, x.dtype),
                        grid=(triton.cdiv(n, block),), n=n, BLOCK=block,
                        backend_options=backend_options)


def axpy(a, x, y, block, backend_options=None):
  n = x.size
  return jt.triton_call(a, x, y, kernel=axpy_kernel,
                        out_type=jax.ShapeDtypeStruct(x.shape, x.dtype),
                        grid=(triton.cdiv(n, block),), n=n, BLOCK=block,
                        backend_options=backend_options)


def _one(s: Settings, op: str, label: str, n: int) -> Row:
  bench = "vector_add" if op == "add" else "axpy"
  case = f"{'x + y' if op == 'add' else 'a * x + y'}, {label} f32"
  base_name = "XLA jit"
  try:
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal(n, dtype=np.float32))
    y = jnp.asarray(rng.standard_normal(n, dtype=np.float32))
    if op == "add":
      ours = {b: jax.jit(lambda x, y, b=b: add(x, y, b, s.backend_options)) for b in BLOCKS
              if b <= max(BLOCKS[0], n)}
      base = jax.jit(lambda x, y: x + y)
    else:
      ours = {b: jax.jit(lambda x, y, b=b: axpy(A, x, y, b, s.backend_options)) for b in BLOCKS
              if b <= max(BLOCKS[0], n)}
      base = jax.jit(lambda x, y: A * x + y)
    expected = base(x, y)
    for b, f in ours.items():
      check_close(f"{bench} {label} BLOCK={b}", f(x, y), expected)

    big = n >= 1 << 24
    if len(ours) > 1:
      best, _ = choose_best({b: (lambda f=f: f(x, y)) for b, f in ours.items()},
                            reps=s.reps(10 if big else 30, 5), budget_s=s.budget(8))
    else:
      best = next(iter(ours))
    # numpy copy with the same traffic: 1.5 n floats read + written.
    src = np.asarray(rng.standard_normal(n + n // 2, dtype=np.float32))
    dst = np.empty_like(src)
    t = interleaved({"ours": lambda: ours[best](x, y), "base": lambda: base(x, y),
                     "copy": lambda: np.copyto(dst, src)},
                    reps=s.reps(60 if big else 200), budget_s=s.budget(25))
    nbytes = 3 * n * 4
    gbs = lambda sec: nbytes / sec / 1e9
    return Row(bench, case, t["ours"], t["base"], base_name, "GB/s", gbs(t["ours"]),
               gbs(t["base"]), f"BLOCK={best}; np.copyto same bytes: {gbs(t['copy']):.1f} GB/s")
  except Exception as e:  # pylint: disable=broad-except
    return Row(bench, case, baseline_name=base_name, error=short_error(e))


def run(s: Settings) -> list[Row]:
  rows = []
  for op in ("add", "axpy"):
    for label, n in SIZES:
      rows.append(_one(s, op, label, n))
  return rows
