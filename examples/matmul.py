"""Matrix multiplication: Triton's tutorial 03 under jax.jit on CPU.

C = activation(A @ B), A: (M, K), B: (K, N), f32 or f16 inputs, accumulated in f32 and stored in
the inputs' dtype. Each program computes one BLOCK_SIZE_M x BLOCK_SIZE_N block of C with a loop
over K in steps of BLOCK_SIZE_K (`tl.dot` into an f32 accumulator). Programs are launched in
"grouped" order: GROUP_SIZE_M block-rows of C are walked column by column, so that the blocks of A
and B that consecutive programs load are reused from cache. Masks make every M, N, K work, not
only multiples of the blocks. The activation (`ACTIVATION="leaky_relu"`) is a constexpr option:
it is fused into the kernel, applied to the accumulator before the store.

The kernel is what one writes for a GPU: with `import jax_triton as jt` this file runs unchanged
on jax-triton on a GPU (where `tl.dot` of f32 inputs defaults to TF32, so expect ~1e-3 relative
differences there; on CPU it is full f32).

    python examples/matmul.py [--quick]
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import triton
import triton.language as tl

import jax_triton_cpu as jt
from _harness import Report, parse_args, run_main


@triton.jit
def matmul_kernel(
    # Pointers to matrices
    a_ptr, b_ptr, c_ptr,
    # Matrix dimensions
    M, N, K,
    # The stride variables represent how much to increase the ptr by when moving by 1
    # element in a particular dimension. E.g. `stride_am` is how much to increase `a_ptr`
    # by to get the element one row down (A has M rows).
    stride_am, stride_ak,
    stride_bk, stride_bn,
    stride_cm, stride_cn,
    # Meta-parameters
    BLOCK_SIZE_M: tl.constexpr, BLOCK_SIZE_N: tl.constexpr, BLOCK_SIZE_K: tl.constexpr,
    GROUP_SIZE_M: tl.constexpr,
    ACTIVATION: tl.constexpr,
):
  """Kernel for computing the matmul C = A x B.
  A has shape (M, K), B has shape (K, N) and C has shape (M, N)
  """
  # -----------------------------------------------------------
  # Map program ids `pid` to the block of C it should compute.
  # This is done in a grouped ordering to promote L2 data reuse.
  pid = tl.program_id(axis=0)
  num_pid_m = tl.cdiv(M, BLOCK_SIZE_M)
  num_pid_n = tl.cdiv(N, BLOCK_SIZE_N)
  num_pid_in_group = GROUP_SIZE_M * num_pid_n
  group_id = pid // num_pid_in_group
  first_pid_m = group_id * GROUP_SIZE_M
  group_size_m = min(num_pid_m - first_pid_m, GROUP_SIZE_M)
  pid_m = first_pid_m + ((pid % num_pid_in_group) % group_size_m)
  pid_n = (pid % num_pid_in_group) // group_size_m

  # -----------------------------------------------------------
  # Add some integer bound assumptions.
  # This helps to guide integer analysis in the backend to optimize
  # load/store offset address calculation
  tl.assume(pid_m >= 0)
  tl.assume(pid_n >= 0)
  tl.assume(stride_am > 0)
  tl.assume(stride_ak > 0)
  tl.assume(stride_bn > 0)
  tl.assume(stride_bk > 0)
  tl.assume(stride_cm > 0)
  tl.assume(stride_cn > 0)

  # ----------------------------------------------------------
  # Create pointers for the first blocks of A and B.
  # We will advance this pointer as we move in the K direction
  # and accumulate
  # `a_ptrs` is a block of [BLOCK_SIZE_M, BLOCK_SIZE_K] pointers
  # `b_ptrs` is a block of [BLOCK_SIZE_K, BLOCK_SIZE_N] pointers
  offs_am = (pid_m * BLOCK_SIZE_M + tl.arange(0, BLOCK_SIZE_M)) % M
  offs_bn = (pid_n * BLOCK_SIZE_N + tl.arange(0, BLOCK_SIZE_N)) % N
  offs_k = tl.arange(0, BLOCK_SIZE_K)
  a_ptrs = a_ptr + (offs_am[:, None] * stride_am + offs_k[None, :] * stride_ak)
  b_ptrs = b_ptr + (offs_k[:, None] * stride_bk + offs_bn[None, :] * stride_bn)

  # -----------------------------------------------------------
  # Iterate to compute a block of the C matrix.
  # We accumulate into a `[BLOCK_SIZE_M, BLOCK_SIZE_N]` block
  # of fp32 values for higher accuracy.
  accumulator = tl.zeros((BLOCK_SIZE_M, BLOCK_SIZE_N), dtype=tl.float32)
  for k in range(0, tl.cdiv(K, BLOCK_SIZE_K)):
    # Load the next block of A and B, generate a mask by checking the K dimension.
    # If it is out of bounds, set it to 0.
    a = tl.load(a_ptrs, mask=offs_k[None, :] < K - k * BLOCK_SIZE_K, other=0.0)
    b = tl.load(b_ptrs, mask=offs_k[:, None] < K - k * BLOCK_SIZE_K, other=0.0)
    # We accumulate along the K dimension.
    accumulator = tl.dot(a, b, accumulator)
    # Advance the ptrs to the next K block.
    a_ptrs += BLOCK_SIZE_K * stride_ak
    b_ptrs += BLOCK_SIZE_K * stride_bk
  # You can fuse arbitrary activation functions here
  # while the accumulator is still in FP32!
  if ACTIVATION == "leaky_relu":
    accumulator = leaky_relu(accumulator)
  c = accumulator.to(c_ptr.dtype.element_ty)

  # -----------------------------------------------------------
  # Write back the block of the output matrix C with masks.
  offs_cm = pid_m * BLOCK_SIZE_M + tl.arange(0, BLOCK_SIZE_M)
  offs_cn = pid_n * BLOCK_SIZE_N + tl.arange(0, BLOCK_SIZE_N)
  c_ptrs = c_ptr + stride_cm * offs_cm[:, None] + stride_cn * offs_cn[None, :]
  c_mask = (offs_cm[:, None] < M) & (offs_cn[None, :] < N)
  tl.store(c_ptrs, c, mask=c_mask)


# We can fuse `leaky_relu` by providing it as an `ACTIVATION` meta-parameter in `matmul_kernel`.
@triton.jit
def leaky_relu(x):
  return tl.where(x >= 0, x, 0.01 * x)


def matmul(a: jax.Array, b: jax.Array, activation: str = "", block_size_m: int = 64,
           block_size_n: int = 64, block_size_k: int = 32, group_size_m: int = 8) -> jax.Array:
  """activation(a @ b) for a: (M, K), b: (K, N) of the same dtype; activation "" or "leaky_relu"."""
  assert a.ndim == b.ndim == 2 and a.shape[1] == b.shape[0], "Incompatible dimensions"
  assert a.dtype == b.dtype
  m, k = a.shape
  _, n = b.shape
  # Row-major (contiguous) arrays: strides in elements.
  return jt.triton_call(
      a, b, kernel=matmul_kernel, out_type=jax.ShapeDtypeStruct((m, n), a.dtype),
      M=m, N=n, K=k, stride_am=k, stride_ak=1, stride_bk=n, stride_bn=1, stride_cm=n,
      stride_cn=1,
      # 1D launch grid: one program per block of C.
      grid=lambda meta: (triton.cdiv(m, meta["BLOCK_SIZE_M"]) *
                         triton.cdiv(n, meta["BLOCK_SIZE_N"]),),
      BLOCK_SIZE_M=block_size_m, BLOCK_SIZE_N=block_size_n, BLOCK_SIZE_K=block_size_k,
      GROUP_SIZE_M=group_size_m, ACTIVATION=activation)


def reference(a: jax.Array, b: jax.Array, activation: str = "") -> jax.Array:
  c = jnp.matmul(a, b, preferred_element_type=jnp.float32,
                 precision=jax.lax.Precision.HIGHEST)
  if activation == "leaky_relu":
    c = jnp.where(c >= 0, c, 0.01 * c)
  return c.astype(a.dtype)


def make_inputs(m, n, k, dtype, seed=0):
  ka, kb = jax.random.split(jax.random.key(seed))
  return (jax.random.normal(ka, (m, k), jnp.float32).astype(dtype),
          jax.random.normal(kb, (k, n), jnp.float32).astype(dtype))


def tolerance(k: int, dtype) -> tuple[float, float]:
  """(atol, rtol) for entries of size ~sqrt(k): f32 sums in another order; f16 rounds the result."""
  if jnp.dtype(dtype) == jnp.float16:
    return 2e-3 * k ** 0.5, 2e-3
  return 1e-6 * k, 1e-5


def main(argv: list[str] | None = None) -> int:
  args = parse_args(__doc__.splitlines()[0], argv)
  report = Report("matmul: Triton vs jax.numpy (jnp.matmul)")
  if args.quick:
    cases = [(100, 70, 50, jnp.float32, "leaky_relu"), (64, 64, 96, jnp.float16, "")]
  else:
    cases = [(1000, 900, 700, jnp.float32, ""), (1024, 1024, 1024, jnp.float32, ""),
             (1024, 1024, 1024, jnp.float32, "leaky_relu"),
             (1024, 1024, 1024, jnp.float16, "leaky_relu")]
  # The block sizes: on a GPU the tutorial autotunes them; on a CPU of 2020-2025, 128 x 128 x 32
  # is about the best for large matrices (benchmarks/matmul.py), 64 x 64 x 32 compiles faster.
  blocks = (64, 64, 32) if args.quick else (128, 128, 32)
  for m, n, k, dtype, activation in cases:
    a, b = make_inputs(m, n, k, dtype)
    name = f"{m}x{k} @ {k}x{n} {jnp.dtype(dtype).name} {activation or 'no activation'}"
    ours = jax.jit(lambda a, b, act=activation: matmul(a, b, act, *blocks))
    ref = jax.jit(lambda a, b, act=activation: reference(a, b, act))
    atol, rtol = tolerance(k, dtype)
    report.check(name, ours(a, b), ref(a, b), atol=atol, rtol=rtol)
    report.timing(name, ours, ref, a, b, quick=args.quick)
  return report.exit_code()


if __name__ == "__main__":
  run_main(main)
