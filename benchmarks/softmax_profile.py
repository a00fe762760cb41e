"""Where a row softmax's time goes: the tutorial kernel against variants that drop parts of its
work, and XLA's softmax and copy, interleaved on the same data (a profile by subtraction; not part
of run.py's table).

  python benchmarks/softmax_profile.py

Variants: "tutorial" (max, exp, sum, divide), "reciprocal" (multiply by 1 / sum: not the same
numbers, only a measure of what the division costs), "no exp" (x - max divided by its sum), "copy"
(load and store only: the memory floor of a kernel that reads and writes each row once).
"""
from __future__ import annotations

import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import triton
import triton.language as tl

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import jax_triton_cpu as jt  # noqa: E402
from timing import interleaved  # noqa: E402

VARIANTS = ("tutorial", "reciprocal", "no exp", "copy")


@triton.jit
def variant_kernel(x_ptr, out_ptr, n_cols, BLOCK: tl.constexpr, VARIANT: tl.constexpr):
  row = tl.program_id(0)
  cols = tl.arange(0, BLOCK)
  mask = cols < n_cols
  x = tl.load(x_ptr + row * n_cols + cols, mask=mask, other=-float("inf"))
  if VARIANT == 0:
    x = x - tl.max(x, axis=0)
    num = tl.exp(x)
    y = num / tl.sum(num, axis=0)
  elif VARIANT == 1:
    x = x - tl.max(x, axis=0)
    num = tl.exp(x)
    y = num * (1.0 / tl.sum(num, axis=0))
  elif VARIANT == 2:
    x = x - tl.max(x, axis=0)
    y = x / tl.sum(x, axis=0)
  else:
    y = x
  tl.store(out_ptr + row * n_cols + cols, y, mask=mask)


def _variant(variant: int, rows: int, cols: int):
  def call(x):
    return jt.triton_call(x, kernel=variant_kernel, grid=(rows,),
                          out_type=jax.ShapeDtypeStruct(x.shape, x.dtype), n_cols=cols,
                          BLOCK=cols, VARIANT=variant)
  return jax.jit(call)


def main():
  for rows, cols in [(4096, 1024), (8192, 4096)]:
    x = jnp.asarray(np.random.default_rng(0).standard_normal((rows, cols), dtype=np.float32))
    fns = {name: _variant(v, rows, cols) for v, name in enumerate(VARIANTS)}
    fns["XLA softmax"] = jax.jit(lambda x: jax.nn.softmax(x, axis=-1))
    fns["XLA copy (x + 0)"] = jax.jit(lambda x: x + 0.0)
    t = interleaved({name: (lambda f=f: f(x)) for name, f in fns.items()}, reps=100, budget_s=20)
    gigabytes = 2 * rows * cols * 4 / 1e9
    print(f"{rows}x{cols} f32: " + ", ".join(
        f"{name} {t[name] * 1e6:.0f} us ({gigabytes / t[name]:.0f} GB/s)" for name in fns))


if __name__ == "__main__":
  main()
