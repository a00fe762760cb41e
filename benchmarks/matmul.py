"""matmul: C = A @ B, the Triton tutorial's kernel (grouped program ordering, masks, a K loop,
tl.dot), best of a few CPU block shapes, vs XLA's dot under jit, for f32, bf16, f16 and int8 inputs
(f32 / i32 accumulators and outputs: XLA gets preferred_element_type) at 1024^3 and 2048^3.
GFLOP/s (GOP/s for int8) = 2 M N K / t.

MATMUL_CASES="f32:1024,bf16:2048" picks cases (default: all)."""
from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
import triton
import triton.language as tl

import jax_triton_cpu as jt
from timing import Row, Settings, check_close, choose_best, fp32_peak_gflops, interleaved, \
    machine_info, short_error

# (BLOCK_M, BLOCK_N, BLOCK_K) tried per input type: the bf16 and int8 instructions multiply 2 and
# 4 K elements per lane, so their blocks are deeper (less C traffic per multiply).
BLOCKS = {
    "f32": ((64, 64, 32), (128, 128, 32), (128, 256, 32), (256, 256, 32), (128, 128, 128)),
    "f16": ((128, 128, 32), (256, 256, 32), (128, 128, 128)),
    "bf16": ((128, 128, 64), (256, 256, 64), (256, 256, 128), (128, 256, 256)),
    "i8": ((128, 128, 128), (256, 256, 128), (256, 256, 256)),
}
CASES = [(d, n) for d in ("f32", "bf16", "f16", "i8") for n in (1024, 2048)]
GROUP_M = 8
DTYPES = {"f32": jnp.float32, "bf16": jnp.bfloat16, "f16": jnp.float16, "i8": jnp.int8}


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

  acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=c_ptr.dtype.element_ty)  # f32, or i32 for int8
  for k in range(0, tl.cdiv(K, BLOCK_K)):
    a = tl.load(a_ptrs, mask=offs_k[None, :] < K - k * BLOCK_K, other=0.0)
    b = tl.load(b_ptrs, mask=offs_k[:, None] < K - k * BLOCK_K, other=0.0)
    acc = tl.dot(a, b, acc, out_dtype=acc.dtype)  # (triton 3.6 needs out_dtype for i32)
    a_ptrs += BLOCK_K * stride_ak
    b_ptrs += BLOCK_K * stride_bk

  offs_cm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
  offs_cn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
  c_ptrs = c_ptr + stride_cm * offs_cm[:, None] + stride_cn * offs_cn[None, :]
  c_mask = (offs_cm[:, None] < M) & (offs_cn[None, :] < N)
  tl.store(c_ptrs, acc, mask=c_mask)


def matmul(a, b, block=(64, 64, 32), backend_options=None, out_dtype=None):
  m, k = a.shape
  _, n = b.shape
  bm, bn, bk = block
  return jt.triton_call(
      a, b, kernel=matmul_kernel, out_type=jax.ShapeDtypeStruct((m, n), out_dtype or a.dtype),
      grid=(triton.cdiv(m, bm) * triton.cdiv(n, bn),), M=m, N=n, K=k,
      stride_am=k, stride_ak=1, stride_bk=n, stride_bn=1, stride_cm=n, stride_cn=1,
      BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk, GROUP_M=GROUP_M, backend_options=backend_options)


def _inputs(dtype: str, size: int):
  rng = np.random.default_rng(0)
  if dtype == "i8":
    return tuple(jnp.asarray(rng.integers(-128, 128, (size, size), dtype=np.int8)) for _ in "ab")
  return tuple(jnp.asarray(rng.standard_normal((size, size), dtype=np.float32)).astype(DTYPES[dtype])
               for _ in "ab")


def _cases() -> list[tuple[str, int]]:
  chosen = os.environ.get("MATMUL_CASES", "")
  if not chosen:
    return CASES
  return [(d, int(n)) for d, n in (c.split(":") for c in chosen.split(","))]


def _check(name, ours, expected, dtype, k):
  if dtype == "i8":
    check_close(name, ours, expected, rtol=0, atol=0)
  else:  # f32 sums of k products in another order
    check_close(name, ours, expected, rtol=1e-4, atol=1e-3 * k / 1024)


def run_case(s: Settings, dtype: str, size: int) -> list[Row]:
  m = n = k = size
  out = jnp.int32 if dtype == "i8" else jnp.float32
  case = f"{m}x{k} @ {k}x{n} {dtype}" + (" -> f32" if dtype in ("bf16", "f16") else "") + \
      (" -> i32" if dtype == "i8" else "")
  unit = "GOP/s" if dtype == "i8" else "GFLOP/s"
  try:
    a, b = _inputs(dtype, size)
    base = jax.jit(lambda a, b: jnp.matmul(a, b, preferred_element_type=out))
    expected = base(a, b)
    ours, errors = {}, []
    for blk in BLOCKS[dtype]:
      try:
        f = jax.jit(lambda a, b, blk=blk: matmul(a, b, blk, s.backend_options, out))
        _check(f"matmul {dtype} {blk}", f(a, b), expected, dtype, k)
        ours[blk] = f
      except Exception as e:  # pylint: disable=broad-except
        errors.append(f"{'x'.join(map(str, blk))}: {short_error(e, 100)}")
    if not ours:
      raise RuntimeError("no block shape works: " + "; ".join(errors))
    medians = {}
    if len(ours) > 1:
      best, medians = choose_best({blk: (lambda f=f: f(a, b)) for blk, f in ours.items()},
                                  reps=s.reps(10, 3), budget_s=s.budget(20))
    else:
      best = next(iter(ours))
    t = interleaved({"ours": lambda: ours[best](a, b), "base": lambda: base(a, b)},
                    reps=s.reps(40), budget_s=s.budget(30))
    flops = 2 * m * n * k
    gf = lambda sec: flops / sec / 1e9
    peak = fp32_peak_gflops(machine_info())
    pct = lambda sec: f"{100 * gf(sec) / peak:.0f}%" if peak else "?"
    tried = ", ".join(f"{'x'.join(map(str, blk))}: {gf(v):.0f}" for blk, v in medians.items())
    notes = (f"block {'x'.join(map(str, best))} (MxNxK)"
             + (f"; ours {pct(t['ours'])} / XLA {pct(t['base'])} of f32 peak" if dtype == "f32" else "")
             + (f"; tried {unit} {tried}" if tried else "")
             + (f"; FAILED blocks {'; '.join(errors)}" if errors else ""))
    rows = [Row("matmul", case, t["ours"], t["base"], "XLA dot", unit, gf(t["ours"]),
                gf(t["base"]), notes)]
    if errors:  # a block shape that does not compile or is wrong is a failure of the run
      rows.append(Row("matmul", case + " (other block shapes)", error="; ".join(errors)))
    return rows
  except Exception as e:  # pylint: disable=broad-except
    return [Row("matmul", case, baseline_name="XLA dot", error=short_error(e))]


def run(s: Settings) -> list[Row]:
  rows = []
  for dtype, size in _cases():
    rows += run_case(s, dtype, size)
  return rows
