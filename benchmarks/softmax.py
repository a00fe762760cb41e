"""softmax: row softmax of 4096 x 1024 and 8192 x 4096 f32 matrices (the second larger than any
last-level cache), one row per program (the Triton tutorial's kernel, BLOCK =
next_power_of_2(cols)), vs jax.nn.softmax under jit. GB/s counts one read and one write of the
matrix."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import triton
import triton.language as tl

import jax_triton_cpu as jt
from timing import Row, Settings, check_close, interleaved, next_power_of_2, short_error

SHAPES = [(4096, 1024), (8192, 4096)]


@triton.jit
def softmax_kernel(x_ptr, out_ptr, x_row_stride, out_row_stride, n_cols, BLOCK: tl.constexpr):
  row = tl.program_id(0)
  cols = tl.arange(0, BLOCK)
  mask = cols < n_cols
  x = tl.load(x_ptr + row * x_row_stride + cols, mask=mask, other=-float("inf"))
  x = x - tl.max(x, axis=0)
  num = tl.exp(x)
  den = tl.sum(num, axis=0)
  tl.store(out_ptr + row * out_row_stride + cols, num / den, mask=mask)


def softmax(x, backend_options=None):
  rows, cols = x.shape
  return jt.triton_call(x, kernel=softmax_kernel, out_type=jax.ShapeDtypeStruct(x.shape, x.dtype),
                        grid=(rows,), x_row_stride=cols, out_row_stride=cols, n_cols=cols,
                        BLOCK=next_power_of_2(cols), backend_options=backend_options)


def run(s: Settings) -> list[Row]:
  return [row for rows, cols in SHAPES for row in run_shape(s, rows, cols)]


def run_shape(s: Settings, rows: int, cols: int) -> list[Row]:
  case = f"{rows}x{cols} f32"
  try:
    x = jnp.asarray(np.random.default_rng(0).standard_normal((rows, cols), dtype=np.float32))
    ours = jax.jit(lambda x: softmax(x, s.backend_options))
    base = jax.jit(lambda x: jax.nn.softmax(x, axis=-1))
    check_close("softmax", ours(x), base(x), rtol=1e-5, atol=1e-6)
    t = interleaved({"ours": lambda: ours(x), "base": lambda: base(x)},
                    reps=s.reps(200), budget_s=s.budget(30))
    gbs = lambda sec: 2 * rows * cols * 4 / sec / 1e9
    return [Row("softmax", case, t["ours"], t["base"], "jax.nn.softmax", "GB/s", gbs(t["ours"]),
                gbs(t["base"]), f"BLOCK={next_power_of_2(cols)}, one row per program")]
  except Exception as e:  # pylint: disable=broad-except
    return [Row("softmax", case, baseline_name="jax.nn.softmax", error=short_error(e))]
