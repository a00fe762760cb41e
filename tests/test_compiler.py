"""The compiler alone: kernels compiled by jax_triton_cpu.compiler and run through ctypes on numpy
arrays, compared with numpy."""
import inspect

import ml_dtypes
import numpy as np
import pytest
import triton
import triton.language as tl

from direct_launch import compile_kernel, launch, run

DTYPES = {"fp32": np.float32, "fp64": np.float64, "fp16": np.float16,
          "bf16": ml_dtypes.bfloat16, "i32": np.int32, "i64": np.int64}


@triton.jit
def add_kernel(x_ptr, y_ptr, out_ptr, n, BLOCK: tl.constexpr):
  offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
  mask = offsets < n
  x = tl.load(x_ptr + offsets, mask=mask)
  y = tl.load(y_ptr + offsets, mask=mask)
  tl.store(out_ptr + offsets, x + y, mask=mask)


def _random(shape, dtype, rng):
  if np.issubdtype(dtype, np.integer):
    return rng.integers(-1000, 1000, shape).astype(dtype)
  return rng.standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("block", [1, 128, 1024])
@pytest.mark.parametrize("size", [1, 7, 1024, 1000003])
def test_vector_add(dtype, block, size):
  rng = np.random.default_rng(size)
  x, y = (_random(size, DTYPES[dtype], rng) for _ in range(2))
  out = np.zeros_like(x)
  run(add_kernel, {"x_ptr": f"*{dtype}", "y_ptr": f"*{dtype}", "out_ptr": f"*{dtype}",
                   "n": "i32"}, [x, y, out, size], (triton.cdiv(size, block),), {"BLOCK": block})
  np.testing.assert_array_equal(out, x + y)


@triton.jit
def grid_2d_kernel(out_ptr, stride, BLOCK: tl.constexpr):
  pid_x, pid_y = tl.program_id(0), tl.program_id(1)
  cols = pid_x * BLOCK + tl.arange(0, BLOCK)
  value = pid_y * 1000 + cols + tl.num_programs(0) * 100000 + tl.num_programs(1) * 10000000
  tl.store(out_ptr + pid_y * stride + cols, value)


def test_2d_grid_program_ids_and_num_programs():
  gx, gy, block = 3, 5, 16
  out = np.zeros((gy, gx * block), np.int32)
  run(grid_2d_kernel, {"out_ptr": "*i32", "stride": "i32"}, [out, gx * block], (gx, gy),
      {"BLOCK": block})
  rows, cols = np.indices(out.shape)
  np.testing.assert_array_equal(out, rows * 1000 + cols + gx * 100000 + gy * 10000000)


@triton.jit
def loop_kernel(x_ptr, out_ptr, n, steps, BLOCK: tl.constexpr):
  offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
  mask = offsets < n
  x = tl.load(x_ptr + offsets, mask=mask, other=0.0)
  acc = tl.zeros((BLOCK,), tl.float32)
  for i in range(steps):
    acc = acc * 0.5 + x * i
  tl.store(out_ptr + offsets, acc, mask=mask)


def test_for_loop_carries_a_tensor():
  n, steps = 300, 7
  x = np.random.default_rng(0).standard_normal(n).astype(np.float32)
  out = np.zeros_like(x)
  run(loop_kernel, {"x_ptr": "*fp32", "out_ptr": "*fp32", "n": "i32", "steps": "i32"},
      [x, out, n, steps], (triton.cdiv(n, 128),), {"BLOCK": 128})
  expected = np.zeros_like(x)
  for i in range(steps):
    expected = expected * np.float32(0.5) + x * np.float32(i)
  np.testing.assert_allclose(out, expected, rtol=1e-6)


@triton.jit
def while_and_if_kernel(out_ptr, limit, BLOCK: tl.constexpr):
  offsets = tl.arange(0, BLOCK)
  values = offsets
  i = 0
  while i < limit:
    if i % 2 == 0:
      values = values + 1
    else:
      values = values * 2
    i += 1
  tl.store(out_ptr + offsets, values)


def test_while_loop_and_if_with_tensor_values():
  out = np.zeros(32, np.int32)
  run(while_and_if_kernel, {"out_ptr": "*i32", "limit": "i32"}, [out, 5], (1,), {"BLOCK": 32})
  expected = np.arange(32)
  for i in range(5):
    expected = expected + 1 if i % 2 == 0 else expected * 2
  np.testing.assert_array_equal(out, expected)


@triton.jit
def scalar_args_kernel(out_ptr, a, b, c, d, e, f, g, h, k):
  tl.store(out_ptr + 0, a.to(tl.float64))
  tl.store(out_ptr + 1, b.to(tl.float64))
  tl.store(out_ptr + 2, c.to(tl.float64))
  tl.store(out_ptr + 3, d.to(tl.float64))
  tl.store(out_ptr + 4, e.to(tl.float64))
  tl.store(out_ptr + 5, f.to(tl.float64))
  tl.store(out_ptr + 6, g.to(tl.float64))
  tl.store(out_ptr + 7, h.to(tl.float64))
  tl.store(out_ptr + 8, k.to(tl.float64))


def test_scalar_arguments_of_every_type():
  types = {"a": "i32", "b": "u32", "c": "i64", "d": "u64", "e": "fp32", "f": "fp64", "g": "i1",
           "h": "fp16", "k": "bf16"}
  values = [-7, 3_000_000_000, -(2**40), 2**63 + 5, 1.5, -2.25e300, True, 0.375, -3.5]
  out = np.zeros(9, np.float64)
  run(scalar_args_kernel, {"out_ptr": "*fp64", **types}, [out, *values], (1,))
  np.testing.assert_array_equal(out, np.array(values, np.float64))


@triton.jit
def masked_other_kernel(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
  offsets = tl.arange(0, BLOCK)
  x = tl.load(x_ptr + offsets, mask=offsets < n, other=-1.5)
  tl.store(out_ptr + offsets, x)
  # A scalar load and store under masks: the masked-off ones must not touch memory.
  first = tl.load(x_ptr + n - 1, mask=n > 0, other=42.0)
  tl.store(out_ptr + BLOCK, first, mask=n > 0)
  tl.store(out_ptr + BLOCK + 1, first, mask=n > 1000)


@pytest.mark.parametrize("n", [0, 5, 16])
def test_masked_loads_with_other_and_masked_scalar_access(n):
  x = np.arange(1, 17, dtype=np.float32)
  out = np.full(18, 7.0, np.float32)
  run(masked_other_kernel, {"x_ptr": "*fp32", "out_ptr": "*fp32", "n": "i32"}, [x, out, n],
      (1,), {"BLOCK": 16})
  expected = np.where(np.arange(16) < n, x, -1.5)
  np.testing.assert_array_equal(out[:16], expected)
  assert out[16] == (x[n - 1] if n > 0 else 7.0)
  assert out[17] == 7.0


@triton.jit
def tile_kernel(x_ptr, out_ptr, rows, cols, stride_r, stride_c, BR: tl.constexpr, BC: tl.constexpr):
  r = tl.program_id(0) * BR + tl.arange(0, BR)[:, None]
  c = tl.program_id(1) * BC + tl.arange(0, BC)[None, :]
  mask = (r < rows) & (c < cols)
  x = tl.load(x_ptr + r * stride_r + c * stride_c, mask=mask, other=0)
  tl.store(out_ptr + r * cols + c, x * 2 + r, mask=mask)


@pytest.mark.parametrize("transposed", [False, True])
def test_2d_tiles_with_strides(transposed):
  x = np.random.default_rng(1).standard_normal((37, 50)).astype(np.float32)
  src = np.ascontiguousarray(x.T) if transposed else x
  strides = (1, 37) if transposed else (50, 1)
  out = np.zeros_like(x)
  run(tile_kernel, {"x_ptr": "*fp32", "out_ptr": "*fp32", "rows": "i32", "cols": "i32",
                    "stride_r": "i32", "stride_c": "i32"},
      [src, out, 37, 50, *strides], (triton.cdiv(37, 16), triton.cdiv(50, 32)),
      {"BR": 16, "BC": 32})
  np.testing.assert_allclose(out, x * 2 + np.arange(37)[:, None], rtol=1e-6)


CASTS = ["i8", "i16", "i32", "i64", "u8", "u32", "fp16", "bf16", "fp32", "fp64", "i1"]
NP = {"i8": np.int8, "i16": np.int16, "i32": np.int32, "i64": np.int64, "u8": np.uint8,
      "u32": np.uint32, "fp16": np.float16, "bf16": ml_dtypes.bfloat16, "fp32": np.float32,
      "fp64": np.float64, "i1": np.bool_}
TL = {"i8": tl.int8, "i16": tl.int16, "i32": tl.int32, "i64": tl.int64, "u8": tl.uint8,
      "u32": tl.uint32, "fp16": tl.float16, "bf16": tl.bfloat16, "fp32": tl.float32,
      "fp64": tl.float64, "i1": tl.int1}


@triton.jit
def cast_kernel(x_ptr, out_ptr, DST: tl.constexpr, BLOCK: tl.constexpr):
  offsets = tl.arange(0, BLOCK)
  tl.store(out_ptr + offsets, tl.load(x_ptr + offsets).to(DST))


@pytest.mark.parametrize("src", CASTS)
@pytest.mark.parametrize("dst", CASTS)
def test_casts(src, dst):
  values = np.array([0, 1, 2, 3, 7, 100, 126, 127, 5, 9, 11, 13, 17, 19, 23, 42] * 2, np.float64)
  float_src = src.startswith("fp") or src == "bf16"
  if not src.startswith("u") and src != "i1" and not (float_src and dst.startswith("u")):
    values[::3] *= -1  # (negative floats to unsigned ints are undefined in Triton, as in C)
  if float_src:
    values = values + 0.25
  x = values.astype(NP[src])
  out = np.zeros(x.shape, NP[dst])
  run(cast_kernel, {"x_ptr": f"*{src}", "out_ptr": f"*{dst}"}, [x, out], (1,),
      {"DST": TL[dst], "BLOCK": x.size})
  if dst == "i1":
    expected = x != 0
  elif (src.startswith("fp") or src == "bf16") and not (dst.startswith("fp") or dst == "bf16"):
    expected = np.trunc(x.astype(np.float64)).astype(NP[dst])
  else:
    expected = x.astype(NP[dst])
  np.testing.assert_array_equal(out, expected)


@triton.jit
def int_math_kernel(x_ptr, y_ptr, out_ptr, BLOCK: tl.constexpr):
  offsets = tl.arange(0, BLOCK)
  x = tl.load(x_ptr + offsets)
  y = tl.load(y_ptr + offsets)
  tl.store(out_ptr + offsets, x // tl.where(y == 0, 1, y) + x % tl.where(y == 0, 1, y))
  tl.store(out_ptr + BLOCK + offsets, x // y)  # y == 0 lanes: unspecified value, but no crash


def test_integer_division_and_division_by_zero():
  x = np.array([7, -7, 7, -7, 0, 9, -9, 100] * 2, np.int32)
  y = np.array([2, 2, -2, -2, 3, 0, 0, 7] * 2, np.int32)
  out = np.zeros(32, np.int32)
  run(int_math_kernel, {"x_ptr": "*i32", "y_ptr": "*i32", "out_ptr": "*i32"}, [x, y, out], (1,),
      {"BLOCK": 16})
  safe = np.where(y == 0, 1, y)
  quotient = np.trunc(x / safe).astype(np.int32)  # C semantics, as Triton
  np.testing.assert_array_equal(out[:16], quotient + (x - quotient * safe))


@triton.jit
def unsupported_kernel(x_ptr):
  offsets = tl.arange(0, 16)
  x = tl.load(x_ptr + offsets)
  y = tl.inline_asm_elementwise("mov $0, $1;", "=r,r", [x], dtype=tl.int32, is_pure=True, pack=1)
  tl.store(x_ptr + offsets, y)


def test_unsupported_op_names_the_op_and_the_source_line():
  with pytest.raises(NotImplementedError) as e:
    compile_kernel(unsupported_kernel, {"x_ptr": "*i32"})
  message = str(e.value)
  assert "tt.elementwise_inline_asm" in message
  assert "unsupported_kernel" in message
  source, first = inspect.getsourcelines(unsupported_kernel.fn)
  line = first + next(i for i, text in enumerate(source) if "inline_asm" in text)
  assert f"test_compiler.py:{line}:" in message


def test_launch_runs_a_range_of_programs():
  out = np.zeros(64, np.int32)
  compiled = compile_kernel(grid_2d_kernel, {"out_ptr": "*i32", "stride": "i32"}, {"BLOCK": 16})
  assert launch(compiled, [out, 64], (4, 1), first=1, last=3) == 0
  touched = np.nonzero(out)[0]
  np.testing.assert_array_equal(touched, np.arange(16, 48))


@triton.jit
def mixed_kernel(x_ptr, w_ptr, out_ptr, N: tl.constexpr):
  """A reduction, a dot and f16/bf16 conversions: code paths that depend on the SIMD width."""
  rows = tl.arange(0, N)[:, None]
  cols = tl.arange(0, N)[None, :]
  x = tl.load(x_ptr + rows * N + cols)
  w = tl.load(w_ptr + rows * N + cols).to(tl.float32)
  y = tl.dot(x.to(tl.float16), w.to(tl.bfloat16).to(tl.float16))
  tl.store(out_ptr + rows * N + cols, y - tl.max(y, axis=1)[:, None])


@pytest.mark.parametrize("cpu", ["x86-64", "haswell,+avx2,+fma,+f16c", ""])
def test_code_for_cpus_without_avx512_or_avx(cpu, monkeypatch):
  """Kernels compiled for SSE2-only and AVX2 CPUs (which this machine can run) give the same
  answers as for the host."""
  import platform
  assert platform.machine() == "x86_64", "this test names x86 CPUs"
  monkeypatch.setenv("JAX_TRITON_CPU_TARGET", cpu)
  from jax_triton_cpu.compiler.target import host_target
  assert host_target().vector_bits == {"x86-64": 128, "haswell,+avx2,+fma,+f16c": 256}.get(
      cpu, host_target().vector_bits)
  rng = np.random.default_rng(3)
  x = rng.standard_normal((32, 32)).astype(np.float32)
  w = rng.standard_normal((32, 32)).astype(np.float32)
  out = np.zeros_like(x)
  run(mixed_kernel, {"x_ptr": "*fp32", "w_ptr": "*fp32", "out_ptr": "*fp32"}, [x, w, out], (1,),
      {"N": 32})
  w16 = w.astype(ml_dtypes.bfloat16).astype(np.float16).astype(np.float32)
  y = x.astype(np.float16).astype(np.float32) @ w16
  np.testing.assert_allclose(out, y - y.max(1, keepdims=True), rtol=1e-4, atol=1e-4)
  for size in (7, 1000):
    a, b = rng.standard_normal(size).astype(np.float32), rng.standard_normal(size).astype(np.float32)
    c = np.zeros_like(a)
    run(add_kernel, {"x_ptr": "*fp32", "y_ptr": "*fp32", "out_ptr": "*fp32", "n": "i32"},
        [a, b, c, size], (triton.cdiv(size, 128),), {"BLOCK": 128})
    np.testing.assert_array_equal(c, a + b)


@triton.jit
def newer_ops_kernel(x_ptr, out_ptr, N: tl.constexpr):
  offsets = tl.max_contiguous(tl.multiple_of(tl.arange(0, N), N), N)
  x = tl.load(x_ptr + offsets)
  tl.store(out_ptr + tl.arange(0, 4), tl.topk(x, 4))
  tl.store(out_ptr + 4, tl.reduce_or(x.to(tl.int32), 0).to(tl.float32))
  tl.store(out_ptr + 8 + offsets, tl.squeeze(tl.unsqueeze(x, 0), 0))
  tl.store(out_ptr + 8 + N + offsets, tl.ravel(tl.reshape(x, (2, N // 2))))


@pytest.mark.skipif(not all(hasattr(tl, f) for f in ("topk", "reduce_or", "squeeze", "ravel")),
                    reason="this triton lacks some of these ops")
def test_topk_reduce_or_squeeze_ravel_and_hints():
  n = 16
  x = np.random.default_rng(5).permutation(n).astype(np.float32)
  out = np.zeros(8 + 2 * n, np.float32)
  run(newer_ops_kernel, {"x_ptr": "*fp32", "out_ptr": "*fp32"}, [x, out], (1,), {"N": n})
  np.testing.assert_array_equal(out[:4], np.sort(x)[::-1][:4])
  assert out[4] == np.bitwise_or.reduce(x.astype(np.int32))
  np.testing.assert_array_equal(out[8:8 + n], x)
  np.testing.assert_array_equal(out[8 + n:], x)


@triton.jit
def inline_asm_kernel(x_ptr, out_ptr):
  x = tl.load(x_ptr + tl.arange(0, 4))
  y = tl.inline_asm_elementwise("mov.b32 $0, $1;", "=r,r", [x], dtype=tl.int32, is_pure=True,
                                pack=1)
  tl.store(out_ptr + tl.arange(0, 4), y)


def test_an_op_without_a_lowering_rule_names_the_op_and_the_source_line():
  """(GPU inline assembly: the one op triton's frontend emits that a CPU cannot run.)"""
  with pytest.raises(NotImplementedError) as e:
    compile_kernel(inline_asm_kernel, {"x_ptr": "*i32", "out_ptr": "*i32"})
  source, first = inspect.getsourcelines(inline_asm_kernel.fn)
  line = first + next(i for i, text in enumerate(source) if "inline_asm_elementwise" in text)
  assert "tt.elementwise_inline_asm" in str(e.value) and "inline_asm_kernel" in str(e.value)
  assert f"test_compiler.py:{line}:" in str(e.value)


@triton.jit
def huge_tile_kernel(x_ptr, N: tl.constexpr):
  offsets = tl.arange(0, N)
  x = tl.load(x_ptr + offsets)
  tl.store(x_ptr + offsets, x + tl.sum(x, axis=0) + tl.cumsum(x, axis=0))


def test_tiles_too_large_for_the_stack_raise_a_clear_error():
  with pytest.raises(NotImplementedError, match=r"huge_tile_kernel.*MiB of stack.*smaller blocks"):
    compile_kernel(huge_tile_kernel, {"x_ptr": "*fp32"}, {"N": 1 << 20})
