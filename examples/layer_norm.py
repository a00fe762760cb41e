"""Layer normalisation, forward and backward: Triton's tutorial 05 under jax.jit on CPU.

    y = (x - mean(x)) * rstd * w + b,   rstd = 1 / sqrt(var(x) + eps),   over the last axis of x.

Three kernels, as in the tutorial:
- `_layer_norm_fwd_fused`: one program per row; writes y and the row's mean and rstd (kept for the
  backward pass).
- `_layer_norm_bwd_dx_fused`: dx of a group of rows per program, and that group's partial sums of
  dw = sum(dy * xhat) and db = sum(dy) over its rows. The tutorial has each program add its row
  into one of GROUP_SIZE_M partial buffers under a spin lock; here each program owns its group of
  rows, so it can sum them in registers and needs no lock. The partial sums are then reduced
  either
    - `dwdb_reduction="kernel"`: each program stores its partial sums into row `pid` of a
      (GROUP_SIZE_M, N) buffer and `_layer_norm_bwd_dwdb` sums its columns (deterministic), or
    - `dwdb_reduction="atomic"`: each program `tl.atomic_add`s its partial sums into dw and db
      (zero-initialised Refs, `jax.new_ref`), one kernel less.
- `_layer_norm_bwd_dwdb`: the column sums of the partial buffers.

`layer_norm` is a `jax.custom_vjp` function: `jax.grad` (and `jax.vjp`) of anything that calls it
runs the backward kernels. Everything is checked against jax.numpy's formula and its `jax.grad`.
The kernels are what one writes for a GPU: with `import jax_triton as jt` this file runs unchanged
on jax-triton on a GPU.

    python examples/layer_norm.py [--quick]
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import triton
import triton.language as tl

import jax_triton_cpu as jt
from _harness import Report, parse_args, run_main


@triton.jit
def _layer_norm_fwd_fused(
    X,  # pointer to the input
    Y,  # pointer to the output
    W,  # pointer to the weights
    B,  # pointer to the biases
    Mean,  # pointer to the mean
    Rstd,  # pointer to the 1/std
    stride,  # how much to increase the pointer when moving by 1 row
    N,  # number of columns in X
    eps,  # epsilon to avoid division by zero
    BLOCK_SIZE: tl.constexpr,
):
  # Map the program id to the row of X and Y it should compute.
  row = tl.program_id(0)
  Y += row * stride
  X += row * stride
  # Compute mean
  _mean = tl.zeros([BLOCK_SIZE], dtype=tl.float32)
  for off in range(0, N, BLOCK_SIZE):
    cols = off + tl.arange(0, BLOCK_SIZE)
    a = tl.load(X + cols, mask=cols < N, other=0.).to(tl.float32)
    _mean += a
  mean = tl.sum(_mean, axis=0) / N
  # Compute variance
  _var = tl.zeros([BLOCK_SIZE], dtype=tl.float32)
  for off in range(0, N, BLOCK_SIZE):
    cols = off + tl.arange(0, BLOCK_SIZE)
    x = tl.load(X + cols, mask=cols < N, other=0.).to(tl.float32)
    x = tl.where(cols < N, x - mean, 0.)
    _var += x * x
  var = tl.sum(_var, axis=0) / N
  rstd = 1 / tl.sqrt(var + eps)
  # Write mean / rstd
  tl.store(Mean + row, mean)
  tl.store(Rstd + row, rstd)
  # Normalize and apply linear transformation
  for off in range(0, N, BLOCK_SIZE):
    cols = off + tl.arange(0, BLOCK_SIZE)
    mask = cols < N
    w = tl.load(W + cols, mask=mask).to(tl.float32)
    b = tl.load(B + cols, mask=mask).to(tl.float32)
    x = tl.load(X + cols, mask=mask, other=0.).to(tl.float32)
    x_hat = (x - mean) * rstd
    y = x_hat * w + b
    # Write output
    tl.store(Y + cols, y.to(Y.dtype.element_ty), mask=mask)


@triton.jit
def _layer_norm_bwd_dx_fused(
    DX,  # pointer to the input gradient
    DY,  # pointer to the output gradient
    DW,  # pointer to the partial sum of weights gradient
    DB,  # pointer to the partial sum of biases gradient
    X,  # pointer to the input
    W,  # pointer to the weights
    Mean,  # pointer to the mean
    Rstd,  # pointer to the 1/std
    stride,  # how much to increase the pointer when moving by 1 row
    M,  # number of rows in X
    N,  # number of columns in X
    ROWS_PER_PROGRAM: tl.constexpr,
    BLOCK_SIZE_N: tl.constexpr,
    ATOMIC: tl.constexpr,  # add the partial sums into DW, DB (else: store them in row pid)
):
  # Map the program id to the group of rows of X, DX, and DY it should compute.
  pid = tl.program_id(0)
  cols = tl.arange(0, BLOCK_SIZE_N)
  mask = cols < N
  w = tl.load(W + cols, mask=mask).to(tl.float32)
  # This program's partial sums of dw and db, over its rows.
  partial_dw = tl.zeros([BLOCK_SIZE_N], dtype=tl.float32)
  partial_db = tl.zeros([BLOCK_SIZE_N], dtype=tl.float32)
  row_start = pid * ROWS_PER_PROGRAM
  row_end = tl.minimum(row_start + ROWS_PER_PROGRAM, M)
  for row in range(row_start, row_end):
    # Load data to SRAM
    x = tl.load(X + row * stride + cols, mask=mask, other=0).to(tl.float32)
    dy = tl.load(DY + row * stride + cols, mask=mask, other=0).to(tl.float32)
    mean = tl.load(Mean + row)
    rstd = tl.load(Rstd + row)
    # Compute dx
    xhat = (x - mean) * rstd
    wdy = w * dy
    xhat = tl.where(mask, xhat, 0.)
    wdy = tl.where(mask, wdy, 0.)
    c1 = tl.sum(xhat * wdy, axis=0) / N
    c2 = tl.sum(wdy, axis=0) / N
    dx = (wdy - (xhat * c1 + c2)) * rstd
    # Write dx
    tl.store(DX + row * stride + cols, dx.to(DX.dtype.element_ty), mask=mask)
    # Accumulate partial sums for dw/db
    partial_dw += dy * xhat
    partial_db += dy
  if ATOMIC:
    tl.atomic_add(DW + cols, partial_dw, mask=mask)
    tl.atomic_add(DB + cols, partial_db, mask=mask)
  else:
    tl.store(DW + pid * N + cols, partial_dw, mask=mask)
    tl.store(DB + pid * N + cols, partial_db, mask=mask)


@triton.jit
def _layer_norm_bwd_dwdb(
    DW,  # pointer to the partial sum of weights gradient
    DB,  # pointer to the partial sum of biases gradient
    FINAL_DW,  # pointer to the weights gradient
    FINAL_DB,  # pointer to the biases gradient
    M,  # GROUP_SIZE_M
    N,  # number of columns
    BLOCK_SIZE_M: tl.constexpr,
    BLOCK_SIZE_N: tl.constexpr,
):
  # Map the program id to the elements of DW and DB it should compute.
  pid = tl.program_id(0)
  cols = pid * BLOCK_SIZE_N + tl.arange(0, BLOCK_SIZE_N)
  dw = tl.zeros((BLOCK_SIZE_M, BLOCK_SIZE_N), dtype=tl.float32)
  db = tl.zeros((BLOCK_SIZE_M, BLOCK_SIZE_N), dtype=tl.float32)
  # Iterate through the rows of DW and DB to sum the partial sums.
  for i in range(0, M, BLOCK_SIZE_M):
    rows = i + tl.arange(0, BLOCK_SIZE_M)
    mask = (rows[:, None] < M) & (cols[None, :] < N)
    offs = rows[:, None] * N + cols[None, :]
    dw += tl.load(DW + offs, mask=mask, other=0.)
    db += tl.load(DB + offs, mask=mask, other=0.)
  # Write the final sum to the output.
  sum_dw = tl.sum(dw, axis=0)
  sum_db = tl.sum(db, axis=0)
  tl.store(FINAL_DW + cols, sum_dw.to(FINAL_DW.dtype.element_ty), mask=cols < N)
  tl.store(FINAL_DB + cols, sum_db.to(FINAL_DB.dtype.element_ty), mask=cols < N)


def _block_size(x: jax.Array) -> int:
  # Less than 64KB per feature: the backward kernel keeps a whole row in one block.
  max_fused_size = 65536 // x.dtype.itemsize
  block_size = min(max_fused_size, triton.next_power_of_2(x.shape[-1]))
  if x.shape[-1] > block_size:
    raise RuntimeError("This layer norm doesn't support feature dim >= 64KB.")
  return block_size


def _forward(x2, w, b, eps):
  m, n = x2.shape
  f32 = jnp.float32
  # Outputs fill, in order, the pointer parameters not given: Y, Mean, Rstd.
  return jt.triton_call(
      X=x2, W=w, B=b, stride=n, N=n, eps=eps, kernel=_layer_norm_fwd_fused,
      out_type=(jax.ShapeDtypeStruct((m, n), x2.dtype), jax.ShapeDtypeStruct((m,), f32),
                jax.ShapeDtypeStruct((m,), f32)),
      grid=(m,), BLOCK_SIZE=_block_size(x2))


def _num_partials(m: int) -> int:
  # How many programs (and partial sums of dw, db) the backward pass uses, as the tutorial's
  # GROUP_SIZE_M: a few per core here; a GPU wants a few per SM.
  return min(m, 64)


def _backward(dy2, x2, w, mean, rstd, dwdb_reduction):
  m, n = x2.shape
  f32 = jnp.float32
  group_size_m = _num_partials(m)
  rows_per_program = triton.cdiv(m, group_size_m)
  grid = (triton.cdiv(m, rows_per_program),)
  block_size_n = _block_size(x2)
  common = dict(DY=dy2, X=x2, W=w, Mean=mean, Rstd=rstd, stride=n, M=m, N=n,
                kernel=_layer_norm_bwd_dx_fused, grid=grid, ROWS_PER_PROGRAM=rows_per_program,
                BLOCK_SIZE_N=block_size_n)
  if dwdb_reduction == "atomic":
    # dw and db are zero-initialised Refs that the kernel adds into: only DX is an output.
    dw_ref = jax.new_ref(jnp.zeros((n,), f32))
    db_ref = jax.new_ref(jnp.zeros((n,), f32))
    dx = jt.triton_call(DW=dw_ref, DB=db_ref, out_type=jax.ShapeDtypeStruct((m, n), x2.dtype),
                        ATOMIC=True, **common)
    return dx, dw_ref[...].astype(w.dtype), db_ref[...].astype(w.dtype)
  if dwdb_reduction != "kernel":
    raise ValueError(f"dwdb_reduction must be 'kernel' or 'atomic', got {dwdb_reduction!r}")
  # Outputs: DX, then the partial sums DW, DB, one row per program.
  num_programs = grid[0]
  dx, partial_dw, partial_db = jt.triton_call(
      out_type=(jax.ShapeDtypeStruct((m, n), x2.dtype),
                jax.ShapeDtypeStruct((num_programs, n), f32),
                jax.ShapeDtypeStruct((num_programs, n), f32)),
      ATOMIC=False, **common)
  # Reduce the partial sums: FINAL_DW, FINAL_DB are the outputs.
  block_size_n = min(128, block_size_n)
  dw, db = jt.triton_call(
      partial_dw, partial_db, M=num_programs, N=n, kernel=_layer_norm_bwd_dwdb,
      out_type=(jax.ShapeDtypeStruct((n,), w.dtype), jax.ShapeDtypeStruct((n,), w.dtype)),
      grid=(triton.cdiv(n, block_size_n),), BLOCK_SIZE_M=32, BLOCK_SIZE_N=block_size_n)
  return dx, dw, db


@functools.partial(jax.custom_vjp, nondiff_argnums=(3, 4))
def _layer_norm(x, w, b, eps, dwdb_reduction):
  y, _, _ = _forward(x.reshape(-1, x.shape[-1]), w, b, eps)
  return y.reshape(x.shape)


def _layer_norm_fwd(x, w, b, eps, dwdb_reduction):
  x2 = x.reshape(-1, x.shape[-1])
  y, mean, rstd = _forward(x2, w, b, eps)
  return y.reshape(x.shape), (x2, w, mean, rstd)


def _layer_norm_bwd(eps, dwdb_reduction, residuals, dy):
  del eps  # rstd has it
  x2, w, mean, rstd = residuals
  dx, dw, db = _backward(dy.reshape(x2.shape), x2, w, mean, rstd, dwdb_reduction)
  return dx.reshape(dy.shape), dw, db


_layer_norm.defvjp(_layer_norm_fwd, _layer_norm_bwd)


def layer_norm(x: jax.Array, w: jax.Array, b: jax.Array, eps: float = 1e-5,
               dwdb_reduction: str = "kernel") -> jax.Array:
  """Layer norm over the last axis of x (f32, f16 or bf16; computed in f32); w, b: (N,).

  Differentiable: the backward pass runs `_layer_norm_bwd_dx_fused` and, with
  `dwdb_reduction="kernel"`, `_layer_norm_bwd_dwdb` (or `tl.atomic_add`s with "atomic").
  """
  return _layer_norm(x, w, b, float(eps), dwdb_reduction)


def reference(x, w, b, eps=1e-5):
  """The jax.numpy formula (in f32), for checks and for its jax.grad."""
  x32 = x.astype(jnp.float32)
  mean = jnp.mean(x32, axis=-1, keepdims=True)
  var = jnp.mean(jnp.square(x32 - mean), axis=-1, keepdims=True)
  y = (x32 - mean) * jax.lax.rsqrt(var + eps) * w.astype(jnp.float32) + b.astype(jnp.float32)
  return y.astype(x.dtype)


def grads(fn, x, w, b, dy):
  """(dx, dw, db) of sum(fn(x, w, b) * dy): the vector-Jacobian product for cotangent dy."""
  return jax.grad(lambda x, w, b: jnp.sum((fn(x, w, b) * dy).astype(jnp.float32)),
                  argnums=(0, 1, 2))(x, w, b)


def make_inputs(m, n, dtype, seed=0):
  kx, kw, kb, kdy = jax.random.split(jax.random.key(seed), 4)
  x = (-2.3 + 0.5 * jax.random.normal(kx, (m, n), jnp.float32)).astype(dtype)
  w = jax.random.uniform(kw, (n,), jnp.float32).astype(dtype)
  b = jax.random.uniform(kb, (n,), jnp.float32).astype(dtype)
  dy = (0.1 * jax.random.normal(kdy, (m, n), jnp.float32)).astype(dtype)
  return x, w, b, dy


def main(argv: list[str] | None = None) -> int:
  args = parse_args(__doc__.splitlines()[0], argv)
  report = Report("layer norm forward and backward: Triton vs jax.numpy (formula and its jax.grad)")
  if args.quick:
    cases = [(37, 100, jnp.float32, "kernel"), (16, 64, jnp.float16, "kernel")]
  else:
    cases = [(1151, 1000, jnp.float32, "kernel"), (4096, 1024, jnp.float32, "kernel"),
             (4096, 1024, jnp.float32, "atomic"), (4096, 1024, jnp.float16, "kernel")]
  eps = 1e-5
  for m, n, dtype, reduction in cases:
    x, w, b, dy = make_inputs(m, n, dtype)
    name = f"{m}x{n} {jnp.dtype(dtype).name}"
    f16 = dtype != jnp.float32
    ours_fwd = jax.jit(lambda x, w, b, r=reduction: layer_norm(x, w, b, eps, r))
    ref_fwd = jax.jit(lambda x, w, b: reference(x, w, b, eps))
    report.check(f"forward {name}", ours_fwd(x, w, b), ref_fwd(x, w, b),
                 atol=1e-2 if f16 else 1e-5, rtol=1e-2 if f16 else 1e-5)
    ours_bwd = jax.jit(lambda x, w, b, dy, r=reduction: grads(
        lambda x, w, b: layer_norm(x, w, b, eps, r), x, w, b, dy))
    ref_bwd = jax.jit(lambda x, w, b, dy: grads(
        lambda x, w, b: reference(x, w, b, eps), x, w, b, dy))
    got, want = ours_bwd(x, w, b, dy), ref_bwd(x, w, b, dy)
    for g_name, g, r in zip(("dx", "dw", "db"), got, want):
      # dw, db sum over the m rows: their errors grow with m.
      scale = 1.0 if g_name == "dx" else max(1.0, float(jnp.max(jnp.abs(r))))
      report.check(f"backward {g_name} {name} ({reduction})", g, r,
                   atol=(5e-3 if f16 else 1e-4) * scale, rtol=1e-2 if f16 else 1e-4)
    if reduction == "kernel":  # the forward pass is the same for both reductions
      report.timing(f"forward {name}", ours_fwd, ref_fwd, x, w, b, quick=args.quick)
    report.timing(f"forward+backward {name} ({reduction})", ours_bwd, ref_bwd, x, w, b, dy,
                  quick=args.quick)
  return report.exit_code()


if __name__ == "__main__":
  run_main(main)
