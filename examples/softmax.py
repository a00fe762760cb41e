"""Fused softmax: Triton's tutorial 02 under jax.jit on CPU.

softmax(x) over the last axis in one pass over memory: each program loads one row into a block of
BLOCK_SIZE = next_power_of_2(n_cols) elements (masked, the padding is -inf so that it takes no part
in the max nor, after exp, in the sum), and writes the normalised row back. The kernel is what one
writes for a GPU: with `import jax_triton as jt` this file runs unchanged on jax-triton on a GPU.

    python examples/softmax.py [--quick]
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import triton
import triton.language as tl

import jax_triton_cpu as jt
from _harness import Report, parse_args, run_main


@triton.jit
def softmax_kernel(output_ptr, input_ptr, input_row_stride, output_row_stride, n_cols,
                   BLOCK_SIZE: tl.constexpr):
  # One program per row: rows are independent.
  row_idx = tl.program_id(0)
  row_start_ptr = input_ptr + row_idx * input_row_stride
  # BLOCK_SIZE is the next power of two >= n_cols: the whole row fits in one block.
  col_offsets = tl.arange(0, BLOCK_SIZE)
  input_ptrs = row_start_ptr + col_offsets
  mask = col_offsets < n_cols
  row = tl.load(input_ptrs, mask=mask, other=-float("inf")).to(tl.float32)
  # Subtract the maximum for numerical stability.
  row_minus_max = row - tl.max(row, axis=0)
  numerator = tl.exp(row_minus_max)
  denominator = tl.sum(numerator, axis=0)
  softmax_output = numerator / denominator
  output_row_start_ptr = output_ptr + row_idx * output_row_stride
  output_ptrs = output_row_start_ptr + col_offsets
  tl.store(output_ptrs, softmax_output.to(output_ptr.dtype.element_ty), mask=mask)


def softmax(x: jax.Array) -> jax.Array:
  """softmax over the last axis of x (f32, f16 or bf16; computed in f32)."""
  shape = x.shape
  n_cols = shape[-1]
  x2 = x.reshape(-1, n_cols)
  n_rows = x2.shape[0]
  block_size = triton.next_power_of_2(n_cols)
  # output_ptr comes first in the kernel's signature, so the input is passed by keyword: the
  # output (out_type) fills the one pointer parameter left.
  y = jt.triton_call(input_ptr=x2, input_row_stride=n_cols, output_row_stride=n_cols,
                     n_cols=n_cols, kernel=softmax_kernel,
                     out_type=jax.ShapeDtypeStruct(x2.shape, x2.dtype), grid=(n_rows,),
                     BLOCK_SIZE=block_size)
  return y.reshape(shape)


def reference(x: jax.Array) -> jax.Array:
  return jax.nn.softmax(x.astype(jnp.float32), axis=-1).astype(x.dtype)


def main(argv: list[str] | None = None) -> int:
  args = parse_args(__doc__.splitlines()[0], argv)
  report = Report("fused softmax: Triton vs jax.numpy (jax.nn.softmax)")
  if args.quick:
    cases = [((37, 100), jnp.float32), ((8, 256), jnp.float16)]
  else:
    cases = [((1823, 781), jnp.float32), ((4096, 1024), jnp.float32), ((4096, 1024), jnp.float16)]
  ours = jax.jit(softmax)
  ref = jax.jit(reference)
  for shape, dtype in cases:
    x = jax.random.normal(jax.random.key(0), shape, dtype) * 3
    case = f"{shape[0]}x{shape[1]} {jnp.dtype(dtype).name}"
    atol = 1e-6 if dtype == jnp.float32 else 1e-3
    report.check(case, ours(x), ref(x), atol=atol, rtol=1e-5 if dtype == jnp.float32 else 1e-2)
    report.timing(case, ours, ref, x, quick=args.quick)
  return report.exit_code()


if __name__ == "__main__":
  run_main(main)
