"""bounds_check: the cost of checked mode (backend_options={"bounds_check": True}). The softmax,
layer_norm, matmul (64x64x32 tiles) and vector add kernels of this suite, checked vs unchecked, in
one interleaved run. `ours` is the checked kernel, the baseline the same kernel unchecked, so
baseline / ours below 1 is the slowdown; the notes give checked / unchecked."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import layer_norm
import matmul
import softmax
import vector_add
from timing import Row, Settings, check_close, interleaved, short_error


def _cases():
  rng = np.random.default_rng(0)
  rows, cols = softmax.SHAPES[0]
  x = jnp.asarray(rng.standard_normal((rows, cols), dtype=np.float32))
  w = jnp.asarray(rng.standard_normal((cols,), dtype=np.float32))
  bias = jnp.asarray(rng.standard_normal((cols,), dtype=np.float32))
  a = jnp.asarray(rng.standard_normal((matmul.M, matmul.K), dtype=np.float32))
  b = jnp.asarray(rng.standard_normal((matmul.K, matmul.N), dtype=np.float32))
  v = jnp.asarray(rng.standard_normal((1 << 20,), dtype=np.float32))
  return {  # case: (function of (backend options, *arrays), arrays)
      "softmax 4096x1024 f32": (lambda o, x: softmax.softmax(x, o), (x,)),
      "layer_norm 4096x1024 f32": (
          lambda o, x, w, bias: layer_norm.layer_norm(x, w, bias, backend_options=o), (x, w, bias)),
      "matmul 1024^3 f32, 64x64x32": (lambda o, a, b: matmul.matmul(a, b, (64, 64, 32), o), (a, b)),
      "vector_add 2^20 f32, BLOCK=4096": (lambda o, v: vector_add.add(v, v, 4096, o), (v,)),
  }


def run(s: Settings) -> list[Row]:
  rows = []
  for case, (call, arrays) in _cases().items():
    try:
      fns = {}
      for checked in (True, False):
        options = {**s.backend_options, "bounds_check": checked}
        f = jax.jit(lambda *arrays, o=options: call(o, *arrays))
        fns["checked" if checked else "unchecked"] = lambda f=f: f(*arrays)
      check_close(f"bounds_check {case}", fns["checked"](), fns["unchecked"](), rtol=1e-5, atol=1e-6)
      t = interleaved(fns,
                      reps=s.reps(60), budget_s=s.budget(20))
      rows.append(Row("bounds_check", case, t["checked"], t["unchecked"], "unchecked",
                      notes=f"checked / unchecked = {t['checked'] / t['unchecked']:.2f}x"))
    except Exception as e:  # pylint: disable=broad-except
      rows.append(Row("bounds_check", case, baseline_name="unchecked", error=short_error(e)))
  return rows
