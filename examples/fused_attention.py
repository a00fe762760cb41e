"""Fused attention (flash attention forward): Triton's tutorial 06 under jax.jit on CPU.

    out = softmax(q k^T * sm_scale [+ causal mask]) v,   q, k, v, out: (B, H, S, D)

One program computes BLOCK_M rows of the output of one (batch, head): it loops over the keys in
blocks of BLOCK_N, computes the scores with `tl.dot(q, k^T)`, and keeps an "online" softmax: the
running maximum m_i and sum l_i of each row, rescaling the accumulator `acc` (p v, `tl.dot`) when
the maximum grows, so that the S x S score matrix never exists in memory. exp is computed as exp2
with the scale folded in (`qk_scale = sm_scale * log2(e)`).

Causal attention (STAGE=3) runs the loop in two stages, as in the tutorial: the key blocks left of
the diagonal without any mask (stage 1), then the diagonal block with the causal mask (stage 2).
Non-causal attention (STAGE=1) runs one loop over all keys (stage 3). Unlike the tutorial, S needs
not be a multiple of the blocks: the loads and stores past S are masked and so are the scores of
keys past S.

Inputs f16 (f32 scores and accumulator; p is cast to f16 for `p v`, as on a GPU) or f32. The kernel
is what one writes for a GPU: with `import jax_triton as jt` this file runs unchanged on
jax-triton on a GPU.

    python examples/fused_attention.py [--quick]
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import triton
import triton.language as tl

import jax_triton_cpu as jt
from _harness import Report, parse_args, run_main


@triton.jit
def _attn_fwd_inner(acc, l_i, m_i, q,  #
                    k_ptrs, v_ptrs, stride_kn, stride_vk,  #
                    start_m, qk_scale, N_CTX,  #
                    BLOCK_M: tl.constexpr, HEAD_DIM: tl.constexpr, BLOCK_N: tl.constexpr,  #
                    STAGE: tl.constexpr, offs_m, offs_n):
  # range of values handled by this stage
  if STAGE == 1:  # causal: the key blocks left of the diagonal
    lo, hi = 0, start_m * BLOCK_M
  elif STAGE == 2:  # causal: the diagonal block
    lo, hi = start_m * BLOCK_M, tl.minimum((start_m + 1) * BLOCK_M, N_CTX)
    lo = tl.multiple_of(lo, BLOCK_M)
  else:  # non-causal: all keys
    lo, hi = 0, N_CTX
  k_ptrs += lo * stride_kn
  v_ptrs += lo * stride_vk
  # loop over k, v and update accumulator
  for start_n in range(lo, hi, BLOCK_N):
    start_n = tl.multiple_of(start_n, BLOCK_N)
    cols = start_n + offs_n
    # -- compute qk ----
    k = tl.load(k_ptrs, mask=cols[None, :] < N_CTX, other=0.0)  # k^T: (HEAD_DIM, BLOCK_N)
    qk = tl.dot(q, k)
    if STAGE == 2:
      mask = offs_m[:, None] >= cols[None, :]
      qk = qk * qk_scale + tl.where(mask, 0, -1.0e6)
      m_ij = tl.maximum(m_i, tl.max(qk, 1))
      qk -= m_ij[:, None]
    else:
      if STAGE == 3:  # the last block may reach past N_CTX
        qk = tl.where(cols[None, :] < N_CTX, qk, -1.0e6)
      m_ij = tl.maximum(m_i, tl.max(qk, 1) * qk_scale)
      qk = qk * qk_scale - m_ij[:, None]
    p = tl.math.exp2(qk)
    l_ij = tl.sum(p, 1)
    # -- update m_i and l_i
    alpha = tl.math.exp2(m_i - m_ij)
    l_i = l_i * alpha + l_ij
    # -- update output accumulator --
    acc = acc * alpha[:, None]
    v = tl.load(v_ptrs, mask=cols[:, None] < N_CTX, other=0.0)  # (BLOCK_N, HEAD_DIM)
    p = p.to(v.dtype)
    acc = tl.dot(p, v, acc)
    # update m_i
    m_i = m_ij
    k_ptrs += BLOCK_N * stride_kn
    v_ptrs += BLOCK_N * stride_vk
  return acc, l_i, m_i


@triton.jit
def _attn_fwd(Q, K, V, sm_scale, Out,  #
              stride_qz, stride_qh, stride_qm, stride_qk,  #
              stride_kz, stride_kh, stride_kn, stride_kk,  #
              stride_vz, stride_vh, stride_vk, stride_vn,  #
              stride_oz, stride_oh, stride_om, stride_on,  #
              Z, H, N_CTX,  #
              HEAD_DIM: tl.constexpr,  #
              BLOCK_M: tl.constexpr,  #
              BLOCK_N: tl.constexpr,  #
              STAGE: tl.constexpr):
  tl.static_assert(BLOCK_N <= HEAD_DIM)
  start_m = tl.program_id(0)
  off_hz = tl.program_id(1)
  off_z = off_hz // H
  off_h = off_hz % H
  q_offset = off_z.to(tl.int64) * stride_qz + off_h.to(tl.int64) * stride_qh
  k_offset = off_z.to(tl.int64) * stride_kz + off_h.to(tl.int64) * stride_kh
  v_offset = off_z.to(tl.int64) * stride_vz + off_h.to(tl.int64) * stride_vh
  o_offset = off_z.to(tl.int64) * stride_oz + off_h.to(tl.int64) * stride_oh
  # initialize offsets
  offs_m = start_m * BLOCK_M + tl.arange(0, BLOCK_M)
  offs_n = tl.arange(0, BLOCK_N)
  offs_d = tl.arange(0, HEAD_DIM)
  q_ptrs = Q + q_offset + offs_m[:, None] * stride_qm + offs_d[None, :] * stride_qk
  k_ptrs = K + k_offset + offs_d[:, None] * stride_kk + offs_n[None, :] * stride_kn  # k^T
  v_ptrs = V + v_offset + offs_n[:, None] * stride_vk + offs_d[None, :] * stride_vn
  o_ptrs = Out + o_offset + offs_m[:, None] * stride_om + offs_d[None, :] * stride_on
  # initialize pointer to m and l
  m_i = tl.zeros([BLOCK_M], dtype=tl.float32) - float("inf")
  l_i = tl.zeros([BLOCK_M], dtype=tl.float32) + 1.0
  acc = tl.zeros([BLOCK_M, HEAD_DIM], dtype=tl.float32)
  # load scales
  qk_scale = sm_scale
  qk_scale *= 1.44269504  # 1/log(2)
  # load q: it will stay in SRAM throughout
  q = tl.load(q_ptrs, mask=offs_m[:, None] < N_CTX, other=0.0)
  # stage 1: off-band
  # For causal = True, STAGE = 3 and _attn_fwd_inner gets 1 as its STAGE
  # For causal = False, STAGE = 1, and _attn_fwd_inner gets 3 as its STAGE
  if STAGE & 1:
    acc, l_i, m_i = _attn_fwd_inner(acc, l_i, m_i, q, k_ptrs, v_ptrs, stride_kn, stride_vk,  #
                                    start_m, qk_scale, N_CTX,  #
                                    BLOCK_M, HEAD_DIM, BLOCK_N,  #
                                    4 - STAGE, offs_m, offs_n)
  # stage 2: on-band
  if STAGE & 2:
    acc, l_i, m_i = _attn_fwd_inner(acc, l_i, m_i, q, k_ptrs, v_ptrs, stride_kn, stride_vk,  #
                                    start_m, qk_scale, N_CTX,  #
                                    BLOCK_M, HEAD_DIM, BLOCK_N,  #
                                    2, offs_m, offs_n)
  # epilogue
  acc = acc / l_i[:, None]
  tl.store(o_ptrs, acc.to(Out.type.element_ty), mask=offs_m[:, None] < N_CTX)


def _strides(x: jax.Array) -> tuple[int, ...]:
  """Row-major strides in elements (jax arrays handed to a kernel are contiguous)."""
  strides, s = [], 1
  for d in reversed(x.shape):
    strides.append(s)
    s *= d
  return tuple(reversed(strides))


def attention(q: jax.Array, k: jax.Array, v: jax.Array, causal: bool = False,
              sm_scale: float | None = None, block_m: int = 64,
              block_n: int | None = None) -> jax.Array:
  """softmax(q k^T * sm_scale) v over (B, H, S, D) arrays (f16 or f32); causal: mask keys > query.

  sm_scale defaults to 1/sqrt(D). D must be a power of two >= 16; block_n (default min(64, D))
  must divide block_m.
  """
  z, h, n_ctx, head_dim = q.shape
  assert k.shape == v.shape == q.shape and q.dtype == k.dtype == v.dtype
  assert head_dim in {16, 32, 64, 128, 256}
  if block_n is None:
    block_n = min(64, head_dim)
  assert block_m % block_n == 0
  if sm_scale is None:
    sm_scale = head_dim ** -0.5
  stage = 3 if causal else 1
  return jt.triton_call(
      q, k, v, float(sm_scale), kernel=_attn_fwd, out_type=jax.ShapeDtypeStruct(q.shape, q.dtype),
      grid=lambda meta: (triton.cdiv(n_ctx, meta["BLOCK_M"]), z * h, 1),
      stride_qz=_strides(q)[0], stride_qh=_strides(q)[1], stride_qm=_strides(q)[2], stride_qk=1,
      stride_kz=_strides(k)[0], stride_kh=_strides(k)[1], stride_kn=_strides(k)[2], stride_kk=1,
      stride_vz=_strides(v)[0], stride_vh=_strides(v)[1], stride_vk=_strides(v)[2], stride_vn=1,
      stride_oz=_strides(q)[0], stride_oh=_strides(q)[1], stride_om=_strides(q)[2], stride_on=1,
      Z=z, H=h, N_CTX=n_ctx, HEAD_DIM=head_dim, BLOCK_M=block_m, BLOCK_N=block_n, STAGE=stage)


def reference(q, k, v, causal=False, sm_scale=None):
  """softmax(q k^T * sm_scale) v in jax.numpy, in f32."""
  if sm_scale is None:
    sm_scale = q.shape[-1] ** -0.5
  f32 = jnp.float32
  s = jnp.einsum("bhqd,bhkd->bhqk", q.astype(f32), k.astype(f32),
                 precision=jax.lax.Precision.HIGHEST) * sm_scale
  if causal:
    n = q.shape[2]
    s = jnp.where(jnp.tril(jnp.ones((n, n), bool)), s, -jnp.inf)
  p = jax.nn.softmax(s, axis=-1)
  return jnp.einsum("bhqk,bhkd->bhqd", p, v.astype(f32),
                    precision=jax.lax.Precision.HIGHEST).astype(q.dtype)


def make_inputs(shape, dtype, seed=0):
  kq, kk, kv = jax.random.split(jax.random.key(seed), 3)
  return tuple(jax.random.normal(key, shape, jnp.float32).astype(dtype) for key in (kq, kk, kv))


def tolerance(dtype) -> float:
  """atol (outputs are O(1)): f16 rounds q, k, v, p and the output; f32 sums in another order."""
  return 1e-2 if jnp.dtype(dtype) == jnp.float16 else 2e-5


def main(argv: list[str] | None = None) -> int:
  args = parse_args(__doc__.splitlines()[0], argv)
  report = Report("fused attention: Triton vs jax.numpy (softmax(q k^T * sm_scale) v)")
  shape = (1, 2, 100, 32) if args.quick else (2, 4, 256, 64)
  dtypes = [jnp.float16] if args.quick else [jnp.float16, jnp.float32]
  for dtype in dtypes:
    q, k, v = make_inputs(shape, dtype)
    for causal in (False, True):
      sm_scale = 0.5
      name = f"B,H,S,D={shape} {jnp.dtype(dtype).name} {'causal' if causal else 'non-causal'}"
      ours = jax.jit(lambda q, k, v, c=causal: attention(q, k, v, c, sm_scale))
      ref = jax.jit(lambda q, k, v, c=causal: reference(q, k, v, c, sm_scale))
      report.check(name, ours(q, k, v), ref(q, k, v), atol=tolerance(dtype))
      report.timing(name, ours, ref, q, k, v, quick=args.quick)
  return report.exit_code()


if __name__ == "__main__":
  run_main(main)
