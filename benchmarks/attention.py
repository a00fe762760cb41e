"""attention: flash-attention forward, B=2 H=4 S=1024 D=64, f32 and bf16, non-causal.

Ours: one program per (BLOCK_M queries, batch*head); a loop over key blocks of BLOCK_N with the
online softmax; tl.dot for q k^T and p v. Baseline: softmax(q k^T * scale) v in jax.numpy under jit.
GFLOP/s counts the two matmuls, 4 B H S^2 D. bf16: q, k, v and the output are bf16, the scores
and the accumulator f32, p is rounded to bf16 for p v (as Triton's tutorial does); the baseline
runs the same jnp code on the bf16 arrays.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import triton
import triton.language as tl

import jax_triton_cpu as jt
from timing import Row, Settings, check_close, choose_best, interleaved, short_error

B, H, S, D = 2, 4, 1024, 64
BLOCKS = ((64, 64), (128, 64))  # (BLOCK_M, BLOCK_N)


@triton.jit
def flash_attention_kernel(q_ptr, k_ptr, v_ptr, o_ptr, seq_len, scale, HEAD_DIM: tl.constexpr,
                           BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
  start_m = tl.program_id(0)
  bh = tl.program_id(1)
  base = bh * seq_len * HEAD_DIM  # q, k, v, o are contiguous (B, H, S, D)
  offs_m = start_m * BLOCK_M + tl.arange(0, BLOCK_M)
  offs_n = tl.arange(0, BLOCK_N)
  offs_d = tl.arange(0, HEAD_DIM)
  q = tl.load(q_ptr + base + offs_m[:, None] * HEAD_DIM + offs_d[None, :],
              mask=offs_m[:, None] < seq_len, other=0.0)
  m_i = tl.zeros((BLOCK_M,), dtype=tl.float32) - float("inf")
  l_i = tl.zeros((BLOCK_M,), dtype=tl.float32)
  acc = tl.zeros((BLOCK_M, HEAD_DIM), dtype=tl.float32)
  qk_scale = scale * 1.44269504  # log2(e): exp2 below
  for start_n in range(0, seq_len, BLOCK_N):
    cols = start_n + offs_n
    kt = tl.load(k_ptr + base + cols[None, :] * HEAD_DIM + offs_d[:, None],
                 mask=cols[None, :] < seq_len, other=0.0)           # (HEAD_DIM, BLOCK_N)
    qk = tl.dot(q, kt) * qk_scale
    qk = tl.where(cols[None, :] < seq_len, qk, -float("inf"))
    m_new = tl.maximum(m_i, tl.max(qk, axis=1))
    p = tl.exp2(qk - m_new[:, None])
    alpha = tl.exp2(m_i - m_new)
    l_i = l_i * alpha + tl.sum(p, axis=1)
    v = tl.load(v_ptr + base + cols[:, None] * HEAD_DIM + offs_d[None, :],
                mask=cols[:, None] < seq_len, other=0.0)            # (BLOCK_N, HEAD_DIM)
    acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v)
    m_i = m_new
  out = acc / l_i[:, None]
  tl.store(o_ptr + base + offs_m[:, None] * HEAD_DIM + offs_d[None, :], out.to(o_ptr.dtype.element_ty),
           mask=offs_m[:, None] < seq_len)


def flash_attention(q, k, v, block=(64, 64), backend_options=None):
  b, h, s, d = q.shape
  bm, bn = block
  return jt.triton_call(q, k, v, kernel=flash_attention_kernel,
                        out_type=jax.ShapeDtypeStruct(q.shape, q.dtype),
                        grid=(triton.cdiv(s, bm), b * h), seq_len=s, scale=float(d) ** -0.5,
                        HEAD_DIM=d, BLOCK_M=bm, BLOCK_N=bn, backend_options=backend_options)


def reference(q, k, v):
  scale = q.shape[-1] ** -0.5
  p = jax.nn.softmax(jnp.einsum("bhqd,bhkd->bhqk", q, k) * scale, axis=-1)
  return jnp.einsum("bhqk,bhkd->bhqd", p, v)


def run_case(s: Settings, dtype) -> list[Row]:
  name = jnp.dtype(dtype).name
  case = f"B={B} H={H} S={S} D={D} {name}"
  try:
    rng = np.random.default_rng(0)
    q, k, v = (jnp.asarray(rng.standard_normal((B, H, S, D), dtype=np.float32)).astype(dtype)
               for _ in range(3))
    base = jax.jit(reference)
    expected = base(q, k, v)
    # f32: another summation order; bf16: both round p and the output to bf16 (8 bits)
    tol = 1e-4 if dtype == jnp.float32 else 2e-2
    ours = {}
    for blk in BLOCKS:
      f = jax.jit(lambda q, k, v, blk=blk: flash_attention(q, k, v, blk, s.backend_options))
      check_close(f"attention {name} {blk}", np.asarray(f(q, k, v), np.float32),
                  np.asarray(expected, np.float32), rtol=tol, atol=tol)
      ours[blk] = f
    best, _ = choose_best({blk: (lambda f=f: f(q, k, v)) for blk, f in ours.items()},
                          reps=s.reps(10, 3), budget_s=s.budget(20))
    t = interleaved({"ours": lambda: ours[best](q, k, v), "base": lambda: base(q, k, v)},
                    reps=s.reps(80), budget_s=s.budget(45))
    gf = lambda sec: 4 * B * H * S * S * D / sec / 1e9
    return [Row("attention", case, t["ours"], t["base"], "jnp softmax(qk^T s) v", "GFLOP/s",
                gf(t["ours"]), gf(t["base"]),
                f"BLOCK_M={best[0]} BLOCK_N={best[1]}, online softmax with exp2")]
  except Exception as e:  # pylint: disable=broad-except
    return [Row("attention", case, baseline_name="jnp softmax(qk^T s) v", error=short_error(e))]


def run(s: Settings) -> list[Row]:
  return run_case(s, jnp.float32) + run_case(s, jnp.bfloat16)
