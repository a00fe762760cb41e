"""Vector addition: Triton's tutorial 01 under jax.jit on CPU (the README's quickstart).

Each program adds one BLOCK of the vectors; the last block is masked so that any length works. The
kernel is what one writes for a GPU: with `import jax_triton as jt` instead of
`import jax_triton_cpu as jt` this file runs unchanged on jax-triton on a GPU.

    python examples/add.py [--quick]
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import triton
import triton.language as tl

import jax_triton_cpu as jt
from _harness import Report, parse_args, run_main


@triton.jit
def add_kernel(x_ptr,  # pointers to the inputs
               y_ptr,
               n_elements,  # length of the vectors
               output_ptr,  # the output: filled by out_type, after the operands
               BLOCK_SIZE: tl.constexpr):  # elements per program
  pid = tl.program_id(axis=0)
  block_start = pid * BLOCK_SIZE
  offsets = block_start + tl.arange(0, BLOCK_SIZE)
  mask = offsets < n_elements  # the last block may be partial
  x = tl.load(x_ptr + offsets, mask=mask)
  y = tl.load(y_ptr + offsets, mask=mask)
  output = x + y
  tl.store(output_ptr + offsets, output, mask=mask)


def add(x: jax.Array, y: jax.Array, block_size: int = 1024) -> jax.Array:
  """x + y for 1-D arrays of the same shape and dtype."""
  assert x.shape == y.shape and x.dtype == y.dtype and x.ndim == 1
  n = x.size
  # Outputs (out_type) fill the kernel parameters that were not given (here output_ptr).
  return jt.triton_call(x, y, n, kernel=add_kernel, out_type=jax.typeof(x),
                        grid=lambda meta: (triton.cdiv(n, meta["BLOCK_SIZE"]),),
                        BLOCK_SIZE=block_size)


def main(argv: list[str] | None = None) -> int:
  args = parse_args(__doc__.splitlines()[0], argv)
  report = Report("vector add: Triton vs jax.numpy (x + y)")
  sizes = [1000, 4097] if args.quick else [98_432, 1 << 20, 1 << 24]
  ours = jax.jit(add)
  reference = jax.jit(lambda x, y: x + y)
  for size in sizes:
    kx, ky = jax.random.split(jax.random.key(size))
    x = jax.random.normal(kx, (size,), jnp.float32)
    y = jax.random.normal(ky, (size,), jnp.float32)
    report.check(f"n={size} f32", ours(x, y), reference(x, y), atol=0.0)
    report.timing(f"n={size} f32", ours, reference, x, y, quick=args.quick)
  return report.exit_code()


if __name__ == "__main__":
  run_main(main)
