"""tl.dot: 2-D and batched 3-D, fp32 / fp16 / bf16 (fp32 accumulators), int8 -> int32, fp64,
input_precision ieee / tf32 / tf32x3, acc=, out_dtype, and the tutorial matmul (masks, a K loop,
grouped program order, fused leaky relu).

Exactness: integer-valued inputs make every product and partial sum exact, so those results are
compared exactly whatever the summation order. Random-normal inputs are compared with the float64
product within K * eps(accumulator) * (|A| @ |B|) (ieee, tf32x3) or 2^-10 * (|A| @ |B|) (tf32, whose
inputs may be rounded to a 10-bit mantissa)."""
import re

import numpy as np
import pytest
import triton
import triton.language as tl

from lang_util import NP, TL, assert_equal, run


@triton.jit
def dot_kernel(a_ptr, b_ptr, c_ptr, acc_ptr, M: tl.constexpr, N: tl.constexpr, K: tl.constexpr,
               PREC: tl.constexpr, USE_ACC: tl.constexpr, OUT: tl.constexpr,
               TRANS_B: tl.constexpr):
  rm = tl.arange(0, M)
  rn = tl.arange(0, N)
  rk = tl.arange(0, K)
  a = tl.load(a_ptr + rm[:, None] * K + rk[None, :])
  if TRANS_B:  # b is stored (N, K): use its transpose
    b = tl.trans(tl.load(b_ptr + rn[:, None] * K + rk[None, :]))
  else:
    b = tl.load(b_ptr + rk[:, None] * N + rn[None, :])
  if USE_ACC:
    acc = tl.load(acc_ptr + rm[:, None] * N + rn[None, :])
    # (out_dtype: triton 3.6 requires it to be the accumulator's type; 3.9 infers it)
    c = tl.dot(a, b, acc=acc, input_precision=PREC, out_dtype=acc.dtype)
  elif OUT is not None:
    c = tl.dot(a, b, out_dtype=OUT)
  else:
    c = tl.dot(a, b, input_precision=PREC)
  tl.store(c_ptr + rm[:, None] * N + rn[None, :], c)


OUT_OF = {"fp32": "fp32", "fp16": "fp32", "bf16": "fp32", "i8": "i32", "fp64": "fp64"}
SHAPES = [(16, 16, 16), (32, 64, 16), (16, 32, 64), (64, 16, 32), (128, 128, 64)]


def _ints(shape, dtype, rng, lo=-3, hi=4):
  return rng.integers(lo, hi, shape).astype(NP[dtype])


def _exact(a, b):
  return a.astype(np.float64) @ b.astype(np.float64)


def _run_dot(a, b, dtype, out_dtype, m, n, k, prec=None, acc=None, out=None, trans_b=False):
  c = np.zeros((m, n), NP[out_dtype])
  acc_arr = acc if acc is not None else np.zeros((1,), NP[out_dtype])
  run(dot_kernel, {"a_ptr": f"*{dtype}", "b_ptr": f"*{dtype}", "c_ptr": f"*{out_dtype}",
                   "acc_ptr": f"*{out_dtype}"}, [a, b, c, acc_arr], (1,),
      {"M": m, "N": n, "K": k, "PREC": prec, "USE_ACC": acc is not None,
       "OUT": TL[out] if out else None, "TRANS_B": trans_b})
  return c


DOT_CASES = [(d, s) for d in ("fp32", "fp16", "bf16", "i8", "fp64") for s in SHAPES]


@pytest.mark.parametrize("dtype,shape", DOT_CASES,
                         ids=[f"{d}-{m}x{n}x{k}" for d, (m, n, k) in DOT_CASES])
def test_dot_exact_on_integer_data(dtype, shape):
  m, n, k = shape
  rng = np.random.default_rng(m * n + k)
  a, b = _ints((m, k), dtype, rng), _ints((k, n), dtype, rng)
  c = _run_dot(a, b, dtype, OUT_OF[dtype], m, n, k)
  assert_equal(c, _exact(a, b).astype(NP[OUT_OF[dtype]]), f"dot {dtype} {shape}")


def test_int8_dot_accumulates_in_int32():
  """Products of +-127 summed over K=64 exceed int16 (and int8) by far."""
  m, n, k = 16, 32, 64
  rng = np.random.default_rng(2)
  a = rng.choice([-128, 127, -127], (m, k)).astype(np.int8)
  b = rng.choice([-128, 127], (k, n)).astype(np.int8)
  c = _run_dot(a, b, "i8", "i32", m, n, k)
  assert_equal(c, a.astype(np.int32) @ b.astype(np.int32))


def _tolerance(a, b, eps):
  k = a.shape[-1]
  return k * eps * (np.abs(a.astype(np.float64)) @ np.abs(b.astype(np.float64)))


@pytest.mark.parametrize("prec", ["ieee", "tf32", "tf32x3"])
@pytest.mark.parametrize("shape", [(32, 64, 16), (128, 128, 64)])
def test_fp32_dot_input_precisions(prec, shape):
  m, n, k = shape
  rng = np.random.default_rng(3)
  a = rng.standard_normal((m, k)).astype(np.float32)
  b = rng.standard_normal((k, n)).astype(np.float32)
  c = _run_dot(a, b, "fp32", "fp32", m, n, k, prec=prec)
  eps = 2.0**-10 / k if prec == "tf32" else np.finfo(np.float32).eps
  err = np.abs(c - _exact(a, b))
  assert (err <= _tolerance(a, b, eps)).all(), f"max error {err.max()}"


@pytest.mark.parametrize("dtype", ["fp16", "bf16", "fp64"])
def test_dot_random_data(dtype):
  """fp16 / bf16 products are exact in fp32; sums within K * eps32 * |A| @ |B|."""
  m, n, k = 64, 16, 32
  rng = np.random.default_rng(4)
  a = rng.standard_normal((m, k)).astype(NP[dtype])
  b = rng.standard_normal((k, n)).astype(NP[dtype])
  c = _run_dot(a, b, dtype, OUT_OF[dtype], m, n, k)
  eps = np.finfo(np.float64 if dtype == "fp64" else np.float32).eps
  err = np.abs(c.astype(np.float64) - _exact(a, b))
  assert (err <= _tolerance(a, b, eps)).all(), f"max error {err.max()}"


@pytest.mark.parametrize("dtype", ["fp32", "fp16", "i8", "fp64"])
def test_dot_with_accumulator_operand(dtype):
  m, n, k = 32, 16, 64
  rng = np.random.default_rng(5)
  a, b = _ints((m, k), dtype, rng), _ints((k, n), dtype, rng)
  out_dtype = OUT_OF[dtype]
  acc = _ints((m, n), out_dtype, rng, -100, 100)
  c = _run_dot(a, b, dtype, out_dtype, m, n, k, acc=acc)
  assert_equal(c, (_exact(a, b) + acc).astype(NP[out_dtype]), f"dot(acc=) {dtype}")


@pytest.mark.parametrize("dtype,out", [("fp16", "fp16"), ("i8", "i32"), ("fp32", "fp32"),
                                       ("fp16", "fp32")])
def test_dot_out_dtype(dtype, out):
  m, n, k = 16, 32, 16
  rng = np.random.default_rng(6)
  a, b = _ints((m, k), dtype, rng), _ints((k, n), dtype, rng)
  c = _run_dot(a, b, dtype, out, m, n, k, out=out)
  assert_equal(c, _exact(a, b).astype(NP[out]), f"out_dtype={out}")


@pytest.mark.parametrize("dtype", ["fp32", "fp16"])
def test_dot_with_transposed_operand(dtype):
  m, n, k = 32, 64, 16
  rng = np.random.default_rng(7)
  a, bt = _ints((m, k), dtype, rng), _ints((n, k), dtype, rng)
  c = _run_dot(a, bt, dtype, "fp32", m, n, k, trans_b=True)
  assert_equal(c, _exact(a, bt.T).astype(np.float32))


# ---- batched (3-D) dot --------------------------------------------------------------------------

@triton.jit
def bdot_kernel(a_ptr, b_ptr, c_ptr, B: tl.constexpr, M: tl.constexpr, N: tl.constexpr,
                K: tl.constexpr):
  rb = tl.arange(0, B)[:, None, None]
  rm = tl.arange(0, M)[None, :, None]
  rn = tl.arange(0, N)[None, None, :]
  rka = tl.arange(0, K)[None, None, :]
  rkb = tl.arange(0, K)[None, :, None]
  a = tl.load(a_ptr + rb * M * K + rm * K + rka)
  b = tl.load(b_ptr + rb * K * N + rkb * N + rn)
  tl.store(c_ptr + rb * M * N + rm * N + rn, tl.dot(a, b))


@pytest.mark.parametrize("dtype", ["fp32", "fp16", "i8", "bf16"])
def test_batched_3d_dot(dtype):
  bsz, m, n, k = 2, 16, 32, 64
  rng = np.random.default_rng(8)
  a, b = _ints((bsz, m, k), dtype, rng), _ints((bsz, k, n), dtype, rng)
  out_dtype = OUT_OF[dtype]
  c = np.zeros((bsz, m, n), NP[out_dtype])
  run(bdot_kernel, {"a_ptr": f"*{dtype}", "b_ptr": f"*{dtype}", "c_ptr": f"*{out_dtype}"},
      [a, b, c], (1,), {"B": bsz, "M": m, "N": n, "K": k})
  assert_equal(c, np.matmul(a.astype(np.float64), b.astype(np.float64)).astype(NP[out_dtype]))


# ---- the tutorial matmul ------------------------------------------------------------------------

@triton.jit
def leaky_relu(x):
  return tl.where(x >= 0, x, 0.01 * x)


@triton.jit
def matmul_kernel(a_ptr, b_ptr, c_ptr, M, N, K, stride_am, stride_ak, stride_bk, stride_bn,
                  stride_cm, stride_cn, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                  BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr, ACTIVATION: tl.constexpr):
  pid = tl.program_id(axis=0)
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
  accumulator = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
  for k in range(0, tl.cdiv(K, BLOCK_K)):
    a = tl.load(a_ptrs, mask=offs_k[None, :] < K - k * BLOCK_K, other=0.0)
    b = tl.load(b_ptrs, mask=offs_k[:, None] < K - k * BLOCK_K, other=0.0)
    accumulator = tl.dot(a, b, accumulator)
    a_ptrs += BLOCK_K * stride_ak
    b_ptrs += BLOCK_K * stride_bk
  if ACTIVATION == "leaky_relu":
    accumulator = leaky_relu(accumulator)
  c = accumulator.to(c_ptr.dtype.element_ty)

  offs_cm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
  offs_cn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
  c_ptrs = c_ptr + stride_cm * offs_cm[:, None] + stride_cn * offs_cn[None, :]
  c_mask = (offs_cm[:, None] < M) & (offs_cn[None, :] < N)
  tl.store(c_ptrs, c, mask=c_mask)


def _matmul(a, b, dtype, out_dtype, activation, blocks=(32, 32, 32), b_transposed_layout=False):
  m, k = a.shape
  n = b.shape[1]
  bm, bn, bk = blocks
  c = np.zeros((m, n), NP[out_dtype])
  if b_transposed_layout:  # b stored column-major: pass b.T's buffer with swapped strides
    b_buf = np.ascontiguousarray(b.T)
    sbk, sbn = 1, k
  else:
    b_buf, sbk, sbn = b, n, 1
  grid = (triton.cdiv(m, bm) * triton.cdiv(n, bn),)
  run(matmul_kernel, {"a_ptr": f"*{dtype}", "b_ptr": f"*{dtype}", "c_ptr": f"*{out_dtype}",
                      "M": "i32", "N": "i32", "K": "i32", "stride_am": "i32", "stride_ak": "i32",
                      "stride_bk": "i32", "stride_bn": "i32", "stride_cm": "i32",
                      "stride_cn": "i32"},
      [a, b_buf, c, m, n, k, k, 1, sbk, sbn, n, 1], grid,
      {"BLOCK_M": bm, "BLOCK_N": bn, "BLOCK_K": bk, "GROUP_M": 4, "ACTIVATION": activation})
  return c


@pytest.mark.parametrize("dtype,out_dtype,activation",
                         [("fp16", "fp16", ""), ("fp16", "fp32", "leaky_relu"),
                          ("fp32", "fp32", ""), ("bf16", "fp32", "leaky_relu")])
def test_tutorial_matmul_with_masks_and_k_loop(dtype, out_dtype, activation):
  m, n, k = 100, 70, 90  # no block multiple: masked loads (K) and stores (M, N)
  rng = np.random.default_rng(9)
  a = rng.standard_normal((m, k)).astype(NP[dtype])
  b = rng.standard_normal((k, n)).astype(NP[dtype])
  c = _matmul(a, b, dtype, out_dtype, activation)
  exact = _exact(a, b)
  if activation == "leaky_relu":
    exact = np.where(exact >= 0, exact, 0.01 * exact)
  tol = _tolerance(a, b, np.finfo(np.float32).eps)
  if out_dtype == "fp16":
    tol = tol + np.abs(exact) * 2.0**-11
  err = np.abs(c.astype(np.float64) - exact)
  assert (err <= tol + 1e-6).all(), f"max error {err.max()}"


def test_tutorial_matmul_with_strided_b_and_smaller_blocks():
  """B in column-major layout (non-unit row stride), 16x32x16 blocks, integer data: exact."""
  m, n, k = 45, 67, 50
  rng = np.random.default_rng(10)
  a, b = _ints((m, k), "fp32", rng), _ints((k, n), "fp32", rng)
  c = _matmul(a, b, "fp32", "fp32", "", blocks=(16, 32, 16), b_transposed_layout=True)
  assert_equal(c, _exact(a, b).astype(np.float32))


@pytest.mark.parametrize("shape", [(4, 8, 16), (8, 4, 2), (1, 16, 16), (16, 1, 8)])
def test_dot_small_shapes(shape):
  """Shapes below the GPU minimum (16): allowed by the CPU frontend (min_dot_size = 1)."""
  m, n, k = shape
  rng = np.random.default_rng(11)
  a, b = _ints((m, k), "fp32", rng), _ints((k, n), "fp32", rng)
  c = _run_dot(a, b, "fp32", "fp32", m, n, k)
  assert_equal(c, _exact(a, b).astype(np.float32))


# ---- each code path: FMA, vdpbf16ps, vpdpbusd, AMX tiles ----------------------------------------
# tl.dot picks its instructions by the target CPU's features (codegen/dot.py). Every path this
# machine can run is run under JAX_TRITON_CPU_TARGET; AMX's tile addressing and packing also run
# here with the tile instructions emulated by loops ("+emulate-amx"), and the instructions of paths
# it cannot run are checked in the assembly compiled for CPUs that have them.

from direct_launch import compile_kernel, launch  # noqa: E402

_DOT_FEATURES = ("avx512bf16", "avx512vnni", "avxvnni", "amx-tile", "amx-bf16", "amx-int8")


def _host():
  from jax_triton_cpu.compiler.target import _target
  return _target("")


def _without_dot_features() -> str:
  """The host with the bf16 / int8 dot instructions off: FMA on the host's vector width."""
  host = _host()
  kept = [f for f in host.features.split(",") if f[1:] not in _DOT_FEATURES]
  return ",".join([host.cpu] + kept + [f"-{f}" for f in _DOT_FEATURES])


RUNNABLE = {
    "host": lambda: "",
    "fma": _without_dot_features,
    "avx2": lambda: "haswell,+avx2,+fma,+f16c,+avx",
    "sse2": lambda: "x86-64",
    "emulated-amx": lambda: f"{_host().cpu},{_host().features},+emulate-amx",
}
_TARGET_CACHE: dict = {}


def _compiled_for(target: str, monkeypatch, kernel, signature, constants):
  monkeypatch.setenv("JAX_TRITON_CPU_TARGET", target)
  key = (target, kernel, tuple(signature.items()), tuple(sorted(constants.items())))
  if key not in _TARGET_CACHE:
    _TARGET_CACHE[key] = compile_kernel(kernel, signature, constants)
  return _TARGET_CACHE[key]


def _dot_for(target, monkeypatch, a, b, dtype, out_dtype, acc=None):
  m, k = a.shape
  n = b.shape[1]
  c = np.zeros((m, n), NP[out_dtype])
  acc_arr = acc if acc is not None else np.zeros((1,), NP[out_dtype])
  signature = {"a_ptr": f"*{dtype}", "b_ptr": f"*{dtype}", "c_ptr": f"*{out_dtype}",
               "acc_ptr": f"*{out_dtype}"}
  compiled = _compiled_for(target, monkeypatch, dot_kernel, signature,
                           {"M": m, "N": n, "K": k, "PREC": None, "USE_ACC": acc is not None,
                            "OUT": None, "TRANS_B": False})
  assert launch(compiled, [a, b, c, acc_arr], (1,), types=list(signature.values())) == 0
  return c, compiled


# M x N x K: 2 x 2 blocks of AMX tiles, blocks of one tile row or column, K of less than a full
# tile row, small N (256- and 128-bit dot-product instructions), K of one (a partial K pair and
# quad), K = 2 (a partial quad), and shapes no tile kernel takes.
PATH_SHAPES = [(32, 32, 64), (16, 64, 32), (32, 16, 16), (16, 8, 32), (16, 32, 1), (8, 16, 2),
               (64, 64, 256)]
PATH_CASES = [(t, d, s) for t in RUNNABLE for d in ("bf16", "i8", "fp32", "fp16") for s in PATH_SHAPES
              if d in ("bf16", "i8") or s in PATH_SHAPES[:3]]


@pytest.mark.parametrize("target,dtype,shape", PATH_CASES,
                         ids=[f"{t}-{d}-{'x'.join(map(str, s))}" for t, d, s in PATH_CASES])
def test_dot_paths_exact_on_integer_data(target, dtype, shape, monkeypatch):
  m, n, k = shape
  rng = np.random.default_rng(m + 3 * n + 7 * k)
  a, b = _ints((m, k), dtype, rng), _ints((k, n), dtype, rng)
  c, _ = _dot_for(RUNNABLE[target](), monkeypatch, a, b, dtype, OUT_OF[dtype])
  assert_equal(c, _exact(a, b).astype(NP[OUT_OF[dtype]]), f"{target} {dtype} {shape}")


@pytest.mark.parametrize("target", list(RUNNABLE))
def test_int8_paths_at_the_extremes(target, monkeypatch):
  """-128 and 127 everywhere: vpdpbusd multiplies B + 128 (unsigned) and subtracts 128 * A's row
  sums; sums that wrap int32 must wrap the same way."""
  m, n, k = 32, 64, 4096
  rng = np.random.default_rng(12)
  a = rng.choice([-128, 127], (m, k)).astype(np.int8)
  b = rng.choice([-128, 127], (k, n)).astype(np.int8)
  a[0], b[:, 0] = -128, -128  # 4096 * 16384 = 2^26 per row: no wrap; the row/column of extremes
  acc = rng.integers(2**31 - 2**27, 2**31 - 1, (m, n)).astype(np.int32)  # these sums wrap
  c, _ = _dot_for(RUNNABLE[target](), monkeypatch, a, b, "i8", "i32", acc=acc)
  expected = (a.astype(np.int64) @ b.astype(np.int64) + acc).astype(np.int64)
  assert_equal(c, ((expected + 2**31) % 2**32 - 2**31).astype(np.int32))


@pytest.mark.parametrize("target", list(RUNNABLE))
@pytest.mark.parametrize("shape", [(64, 64, 128), (16, 32, 1)])
def test_bf16_paths_on_random_data(target, shape, monkeypatch):
  """Products of bf16 are exact in f32; the sums (in any order, pairs or tiles) within
  K * eps32 * |A| @ |B| of the exact product, with and without an accumulator operand."""
  m, n, k = shape
  rng = np.random.default_rng(13)
  a = rng.standard_normal((m, k)).astype(NP["bf16"])
  b = rng.standard_normal((k, n)).astype(NP["bf16"])
  acc = rng.standard_normal((m, n)).astype(np.float32)
  for with_acc in (None, acc):
    c, _ = _dot_for(RUNNABLE[target](), monkeypatch, a, b, "bf16", "fp32", acc=with_acc)
    exact = _exact(a, b) + (0 if with_acc is None else acc)
    bound = (k + 1) * np.finfo(np.float32).eps * (
        np.abs(a.astype(np.float64)) @ np.abs(b.astype(np.float64)) + np.abs(exact))
    err = np.abs(c - exact)
    assert (err <= bound).all(), f"{target}: max error {err.max()}"


@pytest.mark.parametrize("target", ["host", "emulated-amx", "fma"])
@pytest.mark.parametrize("dtype", ["bf16", "i8"])
def test_batched_3d_dot_paths(target, dtype, monkeypatch):
  bsz, m, n, k = 4, 32, 16, 64
  rng = np.random.default_rng(14)
  a, b = _ints((bsz, m, k), dtype, rng), _ints((bsz, k, n), dtype, rng)
  out_dtype = OUT_OF[dtype]
  c = np.zeros((bsz, m, n), NP[out_dtype])
  signature = {"a_ptr": f"*{dtype}", "b_ptr": f"*{dtype}", "c_ptr": f"*{out_dtype}"}
  compiled = _compiled_for(RUNNABLE[target](), monkeypatch, bdot_kernel, signature,
                           {"B": bsz, "M": m, "N": n, "K": k})
  assert launch(compiled, [a, b, c], (1,), types=list(signature.values())) == 0
  assert_equal(c, np.matmul(a.astype(np.float64), b.astype(np.float64)).astype(NP[out_dtype]))


def _assembly(target, monkeypatch, dtype, shape=(32, 32, 64)) -> str:
  m, n, k = shape
  out = OUT_OF[dtype]
  signature = {"a_ptr": f"*{dtype}", "b_ptr": f"*{dtype}", "c_ptr": f"*{out}", "acc_ptr": f"*{out}"}
  return _compiled_for(target, monkeypatch, dot_kernel, signature,
                       {"M": m, "N": n, "K": k, "PREC": None, "USE_ACC": False, "OUT": None,
                        "TRANS_B": False}).asm


# target, dtype, instructions the kernel must have, instructions it must not have
ASSEMBLY_CASES = [
    ("sapphirerapids", "bf16", ["ldtilecfg", "tileloadd", "tdpbf16ps", "tilestored", "tilerelease"],
     ["vdpbf16ps"]),
    ("sapphirerapids", "i8", ["ldtilecfg", "tdpbssd", "tilerelease"], ["vpdpbusd"]),
    ("sapphirerapids,-amx-tile,-amx-bf16,-amx-int8", "bf16", ["vdpbf16ps\t%zmm"], ["tdpbf16ps"]),
    ("cooperlake", "bf16", ["vdpbf16ps\t%zmm"], ["vfmadd"]),
    ("cascadelake", "bf16", ["vfmadd231ps\t%zmm"], ["vdpbf16ps"]),
    ("cascadelake", "i8", ["vpdpbusd\t%zmm"], ["vpmulld"]),
    ("alderlake", "i8", ["{vex}\tvpdpbusd\t%ymm"], ["zmm"]),
    ("haswell,+avx2,+fma,+f16c,+avx", "i8", ["vpmulld\t%ymm"], ["vpdpbusd", "zmm"]),
    ("haswell,+avx2,+fma,+f16c,+avx", "bf16", ["vfmadd231ps\t%ymm"], ["vdpbf16ps", "zmm"]),
    ("znver4,-avx512bf16", "bf16", ["vfmadd231ps\t%zmm"], ["vdpbf16ps"]),
]


@pytest.mark.parametrize("target,dtype,present,absent", ASSEMBLY_CASES,
                         ids=[f"{t.split(',')[0]}{'-' if ',' in t else ''}-{d}"
                              for t, d, _, _ in ASSEMBLY_CASES])
def test_dot_instructions_in_assembly(target, dtype, present, absent, monkeypatch):
  """The instructions each target gets (compiled only: this machine may lack them)."""
  asm = _assembly(target, monkeypatch, dtype)
  for instruction in present:
    assert instruction in asm, f"{target} {dtype}: no {instruction!r}"
  for instruction in absent:
    assert instruction not in asm, f"{target} {dtype}: unexpected {instruction!r}"


@pytest.mark.parametrize("acc,zero", [("0.0", True), ("-0.0", False), ("1.0", False)])
@pytest.mark.parametrize("dtype", ["fp32", "fp16", "fp64"])
def test_which_accumulators_count_as_zero(dtype, acc, zero):
  """tl.dot(a, b)'s splat +0 accumulator, as the reader gives it (floats are numpy scalars of
  their own type), lets the dot start from zero; -0 (-0 + -0 stays -0) and other values do not."""
  from jax_triton_cpu.compiler import reader
  from jax_triton_cpu.compiler.codegen import dot
  text = f"""
  tt.func @k(%a: tensor<16x16x{dtype.replace('fp', 'f')}>) -> tensor<16x16x{dtype.replace('fp', 'f')}> {{
    %c = arith.constant dense<{acc}> : tensor<16x16x{dtype.replace('fp', 'f')}>
    %d = tt.dot %a, %a, %c : tensor<16x16x{dtype.replace('fp', 'f')}> * tensor<16x16x{dtype.replace('fp', 'f')}> -> tensor<16x16x{dtype.replace('fp', 'f')}>
    tt.return %d : tensor<16x16x{dtype.replace('fp', 'f')}>
  }}"""
  (dot_op,) = [op for op in reader.read_ttir(text).kernel.walk() if op.name == "tt.dot"]
  assert dot._is_zero(dot_op.operands[2]) == zero


def test_amx_dot_without_accumulator_zeroes_its_tiles(monkeypatch):
  """tl.dot(a, b) on AMX starts its C tiles with tilezero and loads none (no fill of C)."""
  functions = _functions(_assembly("sapphirerapids", monkeypatch, "bf16"))
  kernel = functions["dot_kernel"]
  assert "tilezero" in kernel
  assert not re.search(r"tileloadd\s+\S+,\s*%tmm[0-3]\b", kernel), "C tiles loaded"


def test_amx_library_asks_linux_for_tile_data(monkeypatch):
  """A library with tile instructions asks for them in a load-time constructor:
  arch_prctl(ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18) through syscall(158, ...)."""
  asm = _assembly("sapphirerapids", monkeypatch, "bf16")
  assert "jtc.amx_permission" in asm and "syscall" in asm
  assert "$4131" in asm and "$158" in asm and "$18" in asm
  assert ".ctors" in asm or ".init_array" in asm
  assert "jtc.amx_permission" not in _assembly("cooperlake", monkeypatch, "bf16")


@pytest.mark.parametrize("dtype", ["bf16", "i8"])
def test_host_gets_its_best_dot_instructions(dtype, monkeypatch):
  """On this machine: AMX tiles where it has them (and Linux grants them), else the AVX-512
  dot-product instructions, else FMA / integer multiply-adds."""
  from jax_triton_cpu.compiler.target import can_use_amx
  host = _host()
  asm = _assembly("", monkeypatch, dtype)
  if can_use_amx(host, "amx-bf16" if dtype == "bf16" else "amx-int8"):
    expected = "tdpbf16ps" if dtype == "bf16" else "tdpbssd"
  elif dtype == "bf16" and host.has("avx512bf16"):
    expected = "vdpbf16ps"
  elif dtype == "i8" and (host.has("avx512vnni") or host.has("avxvnni")):
    expected = "vpdpbusd"
  else:
    expected = "vfmadd" if dtype == "bf16" else "vpmulld"
  assert expected in asm, f"host {host.cpu}: no {expected}"


@triton.jit
def columns_dot_kernel(a_ptr, bt_ptr, c_ptr, n_valid, M: tl.constexpr, N: tl.constexpr,
                       K: tl.constexpr, TRANS: tl.constexpr):
  """B given as its transpose bt (N x K): loaded along K with a mask on the columns (as attention
  loads k^T), or loaded as bt and transposed with tl.trans."""
  rm = tl.arange(0, M)
  rn = tl.arange(0, N)
  rk = tl.arange(0, K)
  a = tl.load(a_ptr + rm[:, None] * K + rk[None, :])
  if TRANS:
    b = tl.trans(tl.load(bt_ptr + rn[:, None] * K + rk[None, :]))
  else:
    b = tl.load(bt_ptr + rn[None, :] * K + rk[:, None], mask=rn[None, :] < n_valid, other=0)
  tl.store(c_ptr + rm[:, None] * N + rn[None, :], tl.dot(a, b))


COLUMN_CASES = [(t, d, trans) for t in RUNNABLE for d in ("fp32", "bf16", "i8", "fp16")
                for trans in (False, True)]


@pytest.mark.parametrize("target,dtype,trans", COLUMN_CASES,
                         ids=[f"{t}-{d}-{'trans' if tr else 'masked'}" for t, d, tr in COLUMN_CASES])
def test_dot_of_b_read_along_k(target, dtype, trans, monkeypatch):
  """B's columns read as vectors and transposed in registers into the packed layout."""
  m, n, k = 32, 64, 64
  n_valid = n if trans else 50
  rng = np.random.default_rng(15)
  a, bt = _ints((m, k), dtype, rng), _ints((n, k), dtype, rng)
  out_dtype = OUT_OF[dtype]
  c = np.zeros((m, n), NP[out_dtype])
  signature = {"a_ptr": f"*{dtype}", "bt_ptr": f"*{dtype}", "c_ptr": f"*{out_dtype}",
               "n_valid": "i32"}
  compiled = _compiled_for(RUNNABLE[target](), monkeypatch, columns_dot_kernel, signature,
                           {"M": m, "N": n, "K": k, "TRANS": trans})
  assert launch(compiled, [a, bt, c, n_valid], (1,), types=list(signature.values())) == 0
  b = bt.T.copy()
  b[:, n_valid:] = 0
  assert_equal(c, _exact(a, b).astype(NP[out_dtype]), f"{target} {dtype}")
  assert "gather" not in compiled.llvm_ir, "B's columns should be vector loads"


# ---- dots deferred over K-loop iterations -----------------------------------------------------
# `acc = tl.dot(a, b, acc)` in a K loop gathers several iterations' operands and multiplies them
# at once (codegen/dot.py): in the iteration that fills its buffers, and in the loop's last.

@triton.jit
def tiles_matmul_kernel(a_ptr, b_ptr, c_ptr, M, N, K, TILES_M: tl.constexpr, TILES_N: tl.constexpr,
                        BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
  """One program computes every tile of C, one after another (the K loop runs again and again)."""
  for tile in range(0, TILES_M * TILES_N):
    rm = (tile // TILES_N) * BLOCK_M + tl.arange(0, BLOCK_M)
    rn = (tile % TILES_N) * BLOCK_N + tl.arange(0, BLOCK_N)
    rk = tl.arange(0, BLOCK_K)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=c_ptr.dtype.element_ty)
    for k in range(0, tl.cdiv(K, BLOCK_K)):
      ks = k * BLOCK_K + rk
      a = tl.load(a_ptr + rm[:, None] * K + ks[None, :], mask=ks[None, :] < K, other=0)
      b = tl.load(b_ptr + ks[:, None] * N + rn[None, :], mask=ks[:, None] < K, other=0)
      acc = tl.dot(a, b, acc, out_dtype=acc.dtype)  # (triton 3.6 needs it for i32)
    tl.store(c_ptr + rm[:, None] * N + rn[None, :], acc)


# K: whole deferral groups (64 x 16 / 32 = 32 iterations), and a last group cut short (K = 80,
# 3 iterations; K = 1040: 33)
DEFERRED_CASES = [(t, d, k) for t in RUNNABLE for d in ("bf16", "i8", "fp32", "fp16")
                  for k in (80, 1024, 1040) if k != 1040 or t == "host"]


@pytest.mark.parametrize("target,dtype,k", DEFERRED_CASES,
                         ids=[f"{t}-{d}-K{k}" for t, d, k in DEFERRED_CASES])
def test_deferred_dots_in_repeated_k_loops(target, dtype, k, monkeypatch):
  m, n, bm, bn, bk = 64, 32, 32, 16, 32
  rng = np.random.default_rng(k)
  a, b = _ints((m, k), dtype, rng), _ints((k, n), dtype, rng)
  out = OUT_OF[dtype]
  c = np.zeros((m, n), NP[out])
  signature = {"a_ptr": f"*{dtype}", "b_ptr": f"*{dtype}", "c_ptr": f"*{out}", "M": "i32",
               "N": "i32", "K": "i32"}
  compiled = _compiled_for(RUNNABLE[target](), monkeypatch, tiles_matmul_kernel, signature,
                           {"TILES_M": m // bm, "TILES_N": n // bn, "BLOCK_M": bm, "BLOCK_N": bn,
                            "BLOCK_K": bk})
  assert launch(compiled, [a, b, c, m, n, k], (1,), types=list(signature.values())) == 0
  assert_equal(c, _exact(a, b).astype(NP[out]), f"{target} {dtype} K={k}")


@pytest.mark.parametrize("target", list(RUNNABLE))
def test_k_padding_keeps_signed_zeros(target, monkeypatch):
  """K = 1 in bf16: the pair-wise instructions get K padded to 2 with A = -0, whose products add
  nothing, not even to -0: -0 (acc) + (-1 x +0) stays -0."""
  m, n = 16, 16
  a = np.full((m, 1), -1.0, NP["bf16"])
  b = np.zeros((1, n), NP["bf16"])
  acc = np.full((m, n), -0.0, np.float32)
  c, _ = _dot_for(RUNNABLE[target](), monkeypatch, a, b, "bf16", "fp32", acc=acc)
  assert np.signbit(c).all(), f"{target}: {c[0, :4]}"


# ---- an accumulator rescaled every iteration (flash attention's acc * alpha + p @ v) ----------

@triton.jit
def rescaled_accumulator_kernel(a_ptr, b_ptr, scale_ptr, c_ptr, total_ptr, STEPS: tl.constexpr,
                                M: tl.constexpr, N: tl.constexpr, K: tl.constexpr,
                                READ_ACC: tl.constexpr):
  """acc = acc * scale[step][:, None] + a[step] @ b[step]; READ_ACC also sums acc before each
  update (the carried acc then has a second reader and cannot be overwritten in place)."""
  rm, rn, rk = tl.arange(0, M), tl.arange(0, N), tl.arange(0, K)
  acc = tl.zeros((M, N), dtype=tl.float32)
  total = tl.zeros((M,), dtype=tl.float32)
  for step in range(STEPS):
    a = tl.load(a_ptr + step * M * K + rm[:, None] * K + rk[None, :])
    b = tl.load(b_ptr + step * K * N + rk[:, None] * N + rn[None, :])
    scale = tl.load(scale_ptr + step * M + rm)
    if READ_ACC:
      total += tl.sum(acc, axis=1)
    acc = tl.dot(a, b, acc * scale[:, None])
  tl.store(c_ptr + rm[:, None] * N + rn[None, :], acc)
  tl.store(total_ptr + rm, total)


RESCALED_CASES = [(t, d, r) for t in RUNNABLE for d in ("bf16", "fp32") for r in (False, True)]


@pytest.mark.parametrize("target,dtype,read_acc", RESCALED_CASES,
                         ids=[f"{t}-{d}-{'read' if r else 'in-place'}" for t, d, r in RESCALED_CASES])
def test_accumulator_rescaled_in_its_loop_slot(target, dtype, read_acc, monkeypatch):
  """The rescaled accumulator is computed over the loop's own acc and the dot sums into it (no
  copy per iteration) unless something else reads acc; both give the exact result (integer data,
  power-of-two scales)."""
  steps, m, n, k = 3, 32, 32, 32
  rng = np.random.default_rng(21)
  a, b = _ints((steps, m, k), dtype, rng), _ints((steps, k, n), dtype, rng)
  scale = (2.0 ** rng.integers(-2, 3, (steps, m))).astype(np.float32)
  c, total = np.zeros((m, n), np.float32), np.zeros((m,), np.float32)
  signature = {"a_ptr": f"*{dtype}", "b_ptr": f"*{dtype}", "scale_ptr": "*fp32",
               "c_ptr": "*fp32", "total_ptr": "*fp32"}
  compiled = _compiled_for(RUNNABLE[target](), monkeypatch, rescaled_accumulator_kernel, signature,
                           {"STEPS": steps, "M": m, "N": n, "K": k, "READ_ACC": read_acc})
  assert launch(compiled, [a, b, scale, c, total], (1,), types=list(signature.values())) == 0
  acc, expected_total = np.zeros((m, n)), np.zeros((m,))
  for s in range(steps):
    expected_total += acc.sum(axis=1)
    acc = acc * scale[s][:, None] + _exact(a[s], b[s])
  assert_equal(c, acc.astype(np.float32), f"{target} {dtype}")
  if read_acc:
    assert_equal(total, expected_total.astype(np.float32), f"{target} {dtype} total")
  copies = re.findall(r"llvm\.memcpy\.\S+\(ptr \S+, ptr \S+, i64 4096,", compiled.llvm_ir)
  assert bool(copies) == read_acc, "a copy of acc per iteration, and only where acc is read"


# ---- AMX tile configuration: once per launch, or per dot ---------------------------------------

@triton.jit
def two_dots_kernel(a_ptr, b_ptr, d_ptr, e_ptr, c_ptr, M: tl.constexpr, N: tl.constexpr,
                    K: tl.constexpr, K2: tl.constexpr):
  rm, rn, rk, rk2 = tl.arange(0, M), tl.arange(0, N), tl.arange(0, K), tl.arange(0, K2)
  a = tl.load(a_ptr + rm[:, None] * K + rk[None, :])
  b = tl.load(b_ptr + rk[:, None] * N + rn[None, :])
  d = tl.load(d_ptr + rm[:, None] * K2 + rk2[None, :])
  e = tl.load(e_ptr + rk2[:, None] * N + rn[None, :])
  tl.store(c_ptr + rm[:, None] * N + rn[None, :], tl.dot(a, b) + tl.dot(d, e))


def _two_dots(target, monkeypatch, k2):
  m, n, k = 32, 32, 64
  rng = np.random.default_rng(k2)
  a, b = _ints((m, k), "bf16", rng), _ints((k, n), "bf16", rng)
  d, e = _ints((m, k2), "bf16", rng), _ints((k2, n), "bf16", rng)
  c = np.zeros((m, n), np.float32)
  signature = {"a_ptr": "*bf16", "b_ptr": "*bf16", "d_ptr": "*bf16", "e_ptr": "*bf16",
               "c_ptr": "*fp32"}
  compiled = _compiled_for(target, monkeypatch, two_dots_kernel, signature,
                           {"M": m, "N": n, "K": k, "K2": k2})
  return compiled, (a, b, d, e, c), _exact(a, b) + _exact(d, e)


def _functions(asm: str) -> dict[str, str]:
  """The assembly's text by symbol: what precedes its `.size NAME, ...` line, after the one
  before."""
  pieces = re.split(r"^\s*\.size\s+([\w.]+),.*$", asm, flags=re.M)
  return {name: text for text, name in zip(pieces[0::2], pieces[1::2])}


@pytest.mark.parametrize("k2,once", [(64, True), (16, False)], ids=["one-config", "two-configs"])
def test_tile_configuration_loaded_once_per_launch(k2, once, monkeypatch):
  """Dots of one tile configuration (K = 64 and 64: 32 bf16 per tile row) leave ldtilecfg and
  tilerelease to the launch, around all its programs; dots of two (K = 64 and 16: 16 per row)
  configure and release each (compiled for Sapphire Rapids)."""
  compiled, _, _ = _two_dots("sapphirerapids", monkeypatch, k2)
  functions = _functions(compiled.asm)
  kernel, launch_fn = functions["two_dots_kernel"], functions["two_dots_kernel_launch"]
  assert kernel.count("tdpbf16ps") > 0
  if once:
    assert "ldtilecfg" not in kernel and "tilerelease" not in kernel
    assert launch_fn.count("ldtilecfg") == 1 and launch_fn.count("tilerelease") == 1
  else:
    assert kernel.count("ldtilecfg") == 2 and kernel.count("tilerelease") == 2
    assert "ldtilecfg" not in launch_fn and "tilerelease" not in launch_fn


@pytest.mark.parametrize("target", ["host", "emulated-amx"])
@pytest.mark.parametrize("k2", [64, 16], ids=["one-config", "two-configs"])
def test_dots_of_one_or_two_tile_configurations(target, k2, monkeypatch):
  """Both ways give the exact sum of the two products (natively on an AMX host), over a grid of
  programs that one launch runs one after another."""
  compiled, (a, b, d, e, c), expected = _two_dots(RUNNABLE[target](), monkeypatch, k2)
  for _ in range(2):
    c[:] = 0
    assert launch(compiled, [a, b, d, e, c], (8,), types=["*bf16"] * 4 + ["*fp32"]) == 0
    assert_equal(c, expected.astype(np.float32), f"{target} K2={k2}")
