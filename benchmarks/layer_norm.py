"""layer_norm: forward layer norm of a 4096 x 1024 f32 matrix with weight, bias and eps, one row per
program, vs the jax.numpy formula under jit. GB/s counts one read and one write of the matrix."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import triton
import triton.language as tl

import jax_triton_cpu as jt
from timing import Row, Settings, check_close, interleaved, next_power_of_2, short_error

ROWS, COLS = 4096, 1024
EPS = 1e-5


@triton.jit
def layer_norm_kernel(x_ptr, w_ptr, b_ptr, out_ptr, row_stride, n_cols, eps, BLOCK: tl.constexpr):
  row = tl.program_id(0)
  cols = tl.arange(0, BLOCK)
  mask = cols < n_cols
  x = tl.load(x_ptr + row * row_stride + cols, mask=mask, other=0.0)
  mean = tl.sum(x, axis=0) / n_cols
  xc = tl.where(mask, x - mean, 0.0)
  var = tl.sum(xc * xc, axis=0) / n_cols
  rstd = 1.0 / tl.sqrt(var + eps)
  w = tl.load(w_ptr + cols, mask=mask)
  b = tl.load(b_ptr + cols, mask=mask)
  tl.store(out_ptr + row * row_stride + cols, xc * rstd * w + b, mask=mask)


def layer_norm(x, w, b, eps=EPS, backend_options=None):
  rows, cols = x.shape
  return jt.triton_call(x, w, b, kernel=layer_norm_kernel,
                        out_type=jax.ShapeDtypeStruct(x.shape, x.dtype), grid=(rows,),
                        row_stride=cols, n_cols=cols, eps=eps, BLOCK=next_power_of_2(cols),
                        backend_options=backend_options)


def reference(x, w, b, eps=EPS):
  mean = jnp.mean(x, axis=-1, keepdims=True)
  var = jnp.mean(jnp.square(x - mean), axis=-1, keepdims=True)
  return (x - mean) * jax.lax.rsqrt(var + eps) * w + b


def run(s: Settings, rows: int = ROWS, cols: int = COLS) -> list[Row]:
  case = f"{rows}x{cols} f32"
  try:
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((rows, cols), dtype=np.float32))
    w = jnp.asarray(rng.standard_normal(cols, dtype=np.float32))
    b = jnp.asarray(rng.standard_normal(cols, dtype=np.float32))
    ours = jax.jit(lambda x, w, b: layer_norm(x, w, b, backend_options=s.backend_options))
    base = jax.jit(reference)
    check_close("layer_norm", ours(x, w, b), base(x, w, b), rtol=1e-4, atol=1e-4)
    t = interleaved({"ours": lambda: ours(x, w, b), "base": lambda: base(x, w, b)},
                    reps=s.reps(200), budget_s=s.budget(30))
    gbs = lambda sec: 2 * rows * cols * 4 / sec / 1e9
    return [Row("layer_norm", case, t["ours"], t["base"], "jnp formula", "GB/s", gbs(t["ours"]),
                gbs(t["base"]), f"BLOCK={next_power_of_2(cols)}, one row per program")]
  except Exception as e:  # pylint: disable=broad-except
    return [Row("layer_norm", case, baseline_name="jnp formula", error=short_error(e))]
