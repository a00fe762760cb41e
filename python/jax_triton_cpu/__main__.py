"""`python -m jax_triton_cpu`: a self-check. Compiles and runs two Triton kernels under jax.jit,
checks them against jax.numpy, and prints their time per call next to XLA's own ops."""
from __future__ import annotations

import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import triton
import triton.language as tl

import jax_triton_cpu as jt
from jax_triton_cpu.compiler.target import host_target


@triton.jit
def add_kernel(x_ptr, y_ptr, n, out_ptr, BLOCK: tl.constexpr):
  offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
  mask = offsets < n
  x = tl.load(x_ptr + offsets, mask=mask)
  y = tl.load(y_ptr + offsets, mask=mask)
  tl.store(out_ptr + offsets, x + y, mask=mask)


@triton.jit
def fused_kernel(x_ptr, y_ptr, n, out_ptr, BLOCK: tl.constexpr):
  """out = max(x * y + 1, 0) / (1 + |x|), one pass over memory."""
  offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
  mask = offsets < n
  x = tl.load(x_ptr + offsets, mask=mask)
  y = tl.load(y_ptr + offsets, mask=mask)
  tl.store(out_ptr + offsets, tl.maximum(x * y + 1, 0.0) / (1 + tl.abs(x)), mask=mask)


def _call(kernel, block=4096):
  def f(x, y):
    return jt.triton_call(x, y, x.size, kernel=kernel, out_type=jax.typeof(x),
                          grid=(triton.cdiv(x.size, block),), BLOCK=block)
  return jax.jit(f)


def _median_us(fn, *args, repeats=200):
  jax.block_until_ready(fn(*args))
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - start)
  return statistics.median(times) * 1e6


def main() -> int:
  target = host_target()
  print(f"jax_triton_cpu {jt.__version__}: jax {jax.__version__}, triton {triton.__version__}, "
        f"CPU {target.cpu} ({target.vector_bits}-bit SIMD)")
  n = 1 << 20
  kx, ky = jax.random.split(jax.random.key(0))
  x = jax.random.normal(kx, (n,), jnp.float32)
  y = jax.random.normal(ky, (n,), jnp.float32)
  checks = [
      ("vector add", _call(add_kernel), jax.jit(lambda x, y: x + y)),
      ("fused elementwise", _call(fused_kernel),
       jax.jit(lambda x, y: jnp.maximum(x * y + 1, 0) / (1 + jnp.abs(x)))),
  ]
  ok = True
  for name, ours, xla in checks:
    got, want = np.asarray(ours(x, y)), np.asarray(xla(x, y))
    good = np.allclose(got, want, rtol=1e-6, atol=1e-6)
    ok &= good
    t_ours, t_xla = _median_us(ours, x, y), _median_us(xla, x, y)
    print(f"  {name:18s} {'ok  ' if good else 'FAIL'}  {t_ours:8.1f} us/call   "
          f"XLA {t_xla:8.1f} us/call   (n = 2^20 f32)")
  print("self-check passed" if ok else "self-check FAILED")
  return 0 if ok else 1


if __name__ == "__main__":
  sys.exit(main())
