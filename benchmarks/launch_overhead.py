"""launch_overhead: the per-call cost of a tiny kernel, alone under jit and inside a fori_loop.

Ours: a 16-element `x + 1` Triton kernel under jax.jit. Baselines: jit(x + x) (XLA's own op, the
floor for a jitted call) and jit(pure_callback(numpy x + 1)) (the other way to run foreign code).
In the loop case one launch is one iteration of a 1000-iteration lax.fori_loop, timed per iteration.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import triton
import triton.language as tl

import jax_triton_cpu as jt
from timing import Row, Settings, check_close, interleaved

N = 16
LOOP = 1000


@triton.jit
def add_one_kernel(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
  offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
  mask = offs < n
  tl.store(out_ptr + offs, tl.load(x_ptr + offs, mask=mask) + 1.0, mask=mask)


def run(s: Settings) -> list[Row]:
  x = jnp.arange(N, dtype=jnp.float32)
  spec = jax.ShapeDtypeStruct((N,), jnp.float32)

  def ours_op(v):
    return jt.triton_call(v, kernel=add_one_kernel, out_type=spec, grid=(1,), n=N, BLOCK=N,
                          backend_options=s.backend_options)

  def callback_op(v):
    return jax.pure_callback(lambda a: np.asarray(a) + np.float32(1), spec, v)

  def xla_op(v):
    return v + v

  single = {"ours": jax.jit(ours_op), "xla": jax.jit(xla_op), "callback": jax.jit(callback_op)}
  check_close("launch_overhead/call", single["ours"](x), x + 1)
  check_close("launch_overhead/callback", single["callback"](x), x + 1)

  def loop(op):
    return jax.jit(lambda v: jax.lax.fori_loop(0, LOOP, lambda i, c: op(c), v))

  loop_ops = {"ours": loop(ours_op), "xla": loop(lambda v: v + 1.0), "callback": loop(callback_op)}
  check_close("launch_overhead/loop", loop_ops["ours"](x), x + LOOP)
  check_close("launch_overhead/loop callback", loop_ops["callback"](x), x + LOOP)

  t = interleaved({k: (lambda f=f: f(x)) for k, f in single.items()},
                  reps=s.reps(200), budget_s=s.budget(20))
  tloop = interleaved({k: (lambda f=f: f(x)) for k, f in loop_ops.items()},
                    reps=s.reps(60), budget_s=s.budget(30))
  tloop = {k: v / LOOP for k, v in tloop.items()}
  return [
      Row("launch_overhead", f"jit call, {N} f32", t["ours"], t["xla"], "jit(x + x)"),
      Row("launch_overhead", f"jit call, {N} f32", t["ours"], t["callback"], "jit(pure_callback)"),
      Row("launch_overhead", f"fori_loop({LOOP}), per iteration", tloop["ours"], tloop["xla"],
          "XLA x + 1 in the loop"),
      Row("launch_overhead", f"fori_loop({LOOP}), per iteration", tloop["ours"], tloop["callback"],
          "pure_callback in the loop"),
  ]
