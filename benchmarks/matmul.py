"""matmul: C = A @ B, 1024^3 f32, the Triton tutorial's kernel (grouped program ordering, masks, a K
loop, tl.dot), best of a few CPU block shapes, vs XLA `a @ b` under jit. GFLOP/s = 2 M N K / t."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import triton
import triton.language as tl

import jax_triton_cpu as jt
from timing import Row, Settings, check_close, choose_best, fp32_peak_gflops, interleaved, \
    machine_info, short_error

M = N = K = 1024
# (BLOCK_M, BLOCK_N, BLOCK_K)
BLOCKS = ((32, 32, 32), (64, 64, 32), (64, 128, 32), (128, 128, 32))
GROUP_M = 8


@triton.jit
def matmul_kernel(a_ptr, b_ptr, c_ptr, M, N, K, stride_am, stride_ak, stride_bk, stride_bn,
                  stride_cm, stride_cn, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                  BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr):
  pid = tl.program_id(0)
  num_pid_m = tl.cdiv(M, BLOCK_M)
  num_pid_n = tl.cdiv(N, BLOCK_N)
  num_pid_in_group = GROUP_M * num_pid_n
  group_id = pid // num_pid_in_group
  first_pid_m = group_id * GROUP_M
  group_size_m = min(num_pid_m - first_pid_m, GROUP_M)
  pid_m = first_pid_m + ((pid % num_pid_in_group) % group_size_m)
  pid_n = (pid % num_pid_in_group) // group_size_m

  offs_am = (pid_m * BLOCK_M + tl.arange(0, BLOCK_M)) % M
  offs_bn = (pid_n * BLOCK_N + tl.arange(0, BLOCK_N)) % N
  offs_k = tl.arange(0, BLOCK_K)
  a_ptrs = a_ptr + (offs_am[:, None] * stride_am + offs_k[None, :] * stride_ak)
  b_ptrs = b_ptr + (offs_k[:, None] * stride_bk + offs_bn[None, :] * stride_bn)

  acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
  for k in range(0, tl.cdiv(K, BLOCK_K)):
    a = tl.load(a_ptrs, mask=offs_k[None, :] < K - k * BLOCK_K, other=0.0)
    b = tl.load(b_ptrs, mask=offs_k[:, None] < K - k * BLOCK_K, other=0.0)
    acc = tl.dot(a, b, acc)
    a_ptrs += BLOCK_K * stride_ak
    b_ptrs += BLOCK_K * stride_bk

  offs_cm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
  offs_cn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
  c_ptrs = c_ptr + stride_cm * offs_cm[:, None] + stride_cn * offs_cn[None, :]
  c_mask = (offs_cm[:, None] < M) & (offs_cn[None, :] < N)
  tl.store(c_ptrs, acc, mask=c_mask)


def matmul(a, b, block=(64, 64, 32), backend_options=None):
  m, k = a.shape
  _, n = b.shape
  bm, bn, bk = block
  return jt.triton_call(
      a, b, kernel=matmul_kernel, out_type=jax.ShapeDtypeStruct((m, n), a.dtype),
      grid=(triton.cdiv(m, bm) * triton.cdiv(n, bn),), M=m, N=n, K=k,
      stride_am=k, stride_ak=1, stride_bk=n, stride_bn=1, stride_cm=n, stride_cn=1,
      BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk, GROUP_M=GROUP_M, backend_options=backend_options)


def run(s: Settings) -> list[Row]:
  case = f"{M}x{K} @ {K}x{N} f32"
  try:
    rng = np.random.default_rng(0)
    a = jnp.asarray(rng.standard_normal((M, K), dtype=np.float32))
    b = jnp.asarray(rng.standard_normal((K, N), dtype=np.float32))
    base = jax.jit(lambda a, b: a @ b)
    expected = base(a, b)
    ours, errors = {}, []
    for blk in BLOCKS:
      try:
        f = jax.jit(lambda a, b, blk=blk: matmul(a, b, blk, s.backend_options))
        check_close(f"matmul {blk}", f(a, b), expected, rtol=1e-4, atol=1e-3)
        ours[blk] = f
      except Exception as e:  # pylint: disable=broad-except
        errors.append(f"{'x'.join(map(str, blk))}: {short_error(e, 100)}")
    if not ours:
      raise RuntimeError("no block shape works: " + "; ".join(errors))
    medians = {}
    if len(ours) > 1:
      best, medians = choose_best({blk: (lambda f=f: f(a, b)) for blk, f in ours.items()},
                                  reps=s.reps(10, 3), budget_s=s.budget(30))
    else:
      best = next(iter(ours))
    t = interleaved({"ours": lambda: ours[best](a, b), "base": lambda: base(a, b)},
                    reps=s.reps(80), budget_s=s.budget(45))
    flops = 2 * M * N * K
    gf = lambda sec: flops / sec / 1e9
    peak = fp32_peak_gflops(machine_info())
    pct = lambda sec: f"{100 * gf(sec) / peak:.0f}%" if peak else "?"
    tried = ", ".join(f"{'x'.join(map(str, blk))}: {gf(v):.0f}" for blk, v in medians.items())
    notes = (f"block {'x'.join(map(str, best))} (MxNxK); ours {pct(t['ours'])} / XLA "
             f"{pct(t['base'])} of peak"
             + (f"; tried GFLOP/s {tried}" if tried else "")
             + (f"; FAILED blocks {'; '.join(errors)}" if errors else ""))
    rows = [Row("matmul", case, t["ours"], t["base"], "XLA a @ b", "GFLOP/s", gf(t["ours"]),
                gf(t["base"]), notes)]
    if errors:  # a block shape that does not compile or is wrong is a failure of the run
      rows.append(Row("matmul", case + " (other block shapes)", error="; ".join(errors)))
    return rows
  except Exception as e:  # pylint: disable=broad-except
    return [Row("matmul", case, baseline_name="XLA a @ b", error=short_error(e))]
