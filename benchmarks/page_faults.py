"""Where large elementwise and softmax kernels spend their time: page faults on fresh outputs.

  python benchmarks/page_faults.py            # runs itself twice: huge pages on, then off

XLA maps each result of 32 MiB or more afresh on every call (glibc's malloc serves such chunks
with mmap and unmaps them when freed), so a kernel that writes 64 MiB takes 16,384 faults of
4 KiB first. Since jax_triton_cpu advises transparent huge pages for its results of 8 MiB or more
(csrc/huge_pages.cc), it takes 32 faults of 2 MiB instead. For each case this prints the median
time per call and the minor page faults per call (getrusage) of our kernel and of XLA's op,
interleaved, plus two floors: our kernel writing in place into a donated buffer (no fresh memory)
and np.copyto of the same bytes into a buffer that exists already. The child with
JAX_TRITON_CPU_HUGE_PAGES=0 shows what the advice changes; XLA's numbers do not depend on it.
"""
from __future__ import annotations

import os
import resource
import subprocess
import sys
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import triton
import triton.language as tl

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import jax_triton_cpu as jt  # noqa: E402
import softmax as softmax_bench  # noqa: E402
import vector_add  # noqa: E402
from timing import interleaved  # noqa: E402


@triton.jit
def axpy_in_place_kernel(a, x_ptr, y_ptr, n, BLOCK: tl.constexpr):
  offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
  mask = offs < n
  x = tl.load(x_ptr + offs, mask=mask)
  y = tl.load(y_ptr + offs, mask=mask)
  tl.store(y_ptr + offs, a * x + y, mask=mask)


def faults_per_call(fn, calls: int = 5) -> float:
  jax.block_until_ready(fn())
  before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
  for _ in range(calls):
    jax.block_until_ready(fn())
  return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / calls


def cases():
  rng = np.random.default_rng(0)
  n = 1 << 24
  x = jnp.asarray(rng.standard_normal(n, dtype=np.float32))
  y = jnp.asarray(rng.standard_normal(n, dtype=np.float32))
  a = vector_add.A
  ours = jax.jit(lambda x, y: vector_add.axpy(a, x, y, 2048))
  xla = jax.jit(lambda x, y: a * x + y)
  in_place = jax.jit(lambda x, y: jt.triton_call(
      a, x, y, kernel=axpy_in_place_kernel, out_type=jax.ShapeDtypeStruct(y.shape, y.dtype),
      grid=(n // 2048,), n=n, BLOCK=2048, input_output_aliases={2: 0}), donate_argnums=1)
  state = {"y": y + 0}

  def ours_in_place():
    state["y"] = in_place(x, state["y"])  # writes over its donated y
    return state["y"]
  src = np.asarray(rng.standard_normal(3 * n // 2, dtype=np.float32))
  dst = np.empty_like(src)
  yield ("axpy 2^24 f32", 3 * n * 4, {
      "ours": lambda: ours(x, y), "XLA": lambda: xla(x, y),
      "ours, in place": ours_in_place, "np.copyto": lambda: np.copyto(dst, src)})

  rows, cols = 8192, 4096
  m = jnp.asarray(rng.standard_normal((rows, cols), dtype=np.float32))
  mine = jax.jit(softmax_bench.softmax)
  xla_softmax = jax.jit(lambda m: jax.nn.softmax(m, axis=-1))
  src = np.asarray(rng.standard_normal(rows * cols, dtype=np.float32))
  dst = np.empty_like(src)
  yield ("softmax 8192x4096 f32", 2 * rows * cols * 4, {
      "ours": lambda: mine(m), "XLA": lambda: xla_softmax(m),
      "np.copyto": lambda: np.copyto(dst, src)})


def child() -> None:
  setting = os.environ.get("JAX_TRITON_CPU_HUGE_PAGES", "1")
  print(f"\nJAX_TRITON_CPU_HUGE_PAGES={setting}\n")
  print("| case | variant | time per call | GB/s | minor faults per call |")
  print("|---|---|---:|---:|---:|")
  for case, nbytes, fns in cases():
    times = interleaved(fns, reps=15, budget_s=20)
    for name, fn in fns.items():
      faults = faults_per_call(fn)
      print(f"| {case} | {name} | {times[name] * 1e3:.2f} ms | {nbytes / times[name] / 1e9:.1f} | "
            f"{faults:,.0f} |")
    sys.stdout.flush()


if __name__ == "__main__":
  warnings.simplefilter("ignore", DeprecationWarning)  # input_output_aliases
  if os.environ.get("_PAGE_FAULTS_CHILD"):
    child()
  else:
    for setting in ("1", "0"):
      subprocess.run([sys.executable, __file__], check=True,
                     env={**os.environ, "_PAGE_FAULTS_CHILD": "1",
                          "JAX_TRITON_CPU_HUGE_PAGES": setting})
