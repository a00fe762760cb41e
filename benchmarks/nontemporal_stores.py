"""Non-temporal stores on and off: what codegen/memory.py's streaming stores change.

  python benchmarks/nontemporal_stores.py

Compiles layer norm 4096x1024, softmax 8192x4096 and axpy 2^24 twice in one process, once as
usual (stores of a launch writing at least half the last-level cache stream) and once with
streaming turned off (memory._streaming replaced by one that never streams), checks that both
give the same bits, and samples them interleaved, with XLA's layer norm for reference.
"""
from __future__ import annotations

import os
import sys
import tempfile

import jax
import jax.numpy as jnp
import numpy as np
import triton

import jax_triton_cpu as jt
from jax_triton_cpu.compiler.codegen import memory

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import layer_norm  # noqa: E402
import softmax  # noqa: E402
import vector_add  # noqa: E402
from timing import interleaved  # noqa: E402

STREAMING = memory._streaming
NEVER = lambda lo, op, ptr, lanes: None


def compiled(streaming):
  """The three kernels compiled with `streaming` deciding which stores stream (own cache, own
  kernels)."""
  memory._streaming = streaming
  os.environ["JAX_TRITON_CPU_CACHE_DIR"] = tempfile.mkdtemp()
  norm_kernel = triton.JITFunction(layer_norm.layer_norm_kernel.fn)
  softmax_kernel = triton.JITFunction(softmax.softmax_kernel.fn)
  axpy_kernel = triton.JITFunction(vector_add.axpy_kernel.fn)
  norm = jax.jit(lambda x, w, b: jt.triton_call(
      x, w, b, kernel=norm_kernel, out_type=jax.ShapeDtypeStruct(x.shape, x.dtype),
      grid=(x.shape[0],), row_stride=x.shape[1], n_cols=x.shape[1], eps=1e-5, BLOCK=x.shape[1]))
  soft = jax.jit(lambda x: jt.triton_call(
      x, kernel=softmax_kernel, out_type=jax.ShapeDtypeStruct(x.shape, x.dtype),
      grid=(x.shape[0],), x_row_stride=x.shape[1], out_row_stride=x.shape[1],
      n_cols=x.shape[1], BLOCK=x.shape[1]))
  axpy = jax.jit(lambda x, y: jt.triton_call(
      2.5, x, y, kernel=axpy_kernel, out_type=jax.ShapeDtypeStruct(x.shape, x.dtype),
      grid=(x.size // 2048,), n=x.size, BLOCK=2048))
  return norm, soft, axpy


def main():
  rng = np.random.default_rng(0)
  rows = jnp.asarray(rng.standard_normal((4096, 1024), dtype=np.float32))
  w, b = jnp.ones(1024, jnp.float32), jnp.zeros(1024, jnp.float32)
  wide = jnp.asarray(rng.standard_normal((8192, 4096), dtype=np.float32))
  x, y = (jnp.asarray(rng.standard_normal(1 << 24, dtype=np.float32)) for _ in "xy")
  fns, results = {}, {}
  for name, streaming in (("regular", NEVER), ("non-temporal", STREAMING)):
    norm, soft, axpy = compiled(streaming)
    results[name] = (norm(rows, w, b), soft(wide), axpy(x, y))  # compiled with `streaming`
    fns[f"layer_norm {name}"] = lambda f=norm: f(rows, w, b)
    fns[f"softmax 8192x4096 {name}"] = lambda f=soft: f(wide)
    fns[f"axpy 2^24 {name}"] = lambda f=axpy: f(x, y)
  memory._streaming = STREAMING
  for a, c in zip(*results.values()):
    np.testing.assert_array_equal(a, c)
  reference = jax.jit(lambda x, w, b: layer_norm.reference(x, w, b))
  fns["layer_norm XLA"] = lambda: reference(rows, w, b)
  t = interleaved(fns, reps=int(os.environ.get("REPS", "30")))
  for case in ("layer_norm", "softmax 8192x4096", "axpy 2^24"):
    regular, streaming = t[f"{case} regular"], t[f"{case} non-temporal"]
    print(f"{case}: regular {regular * 1e3:.3f} ms, non-temporal {streaming * 1e3:.3f} ms, "
          f"regular / non-temporal {regular / streaming:.2f}x")
  print(f"layer_norm XLA: {t['layer_norm XLA'] * 1e3:.3f} ms")


if __name__ == "__main__":
  main()
