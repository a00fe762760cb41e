"""Kernels run end to end through jax_triton_cpu.triton_call (compiler + custom call + launcher),
eager and under jax.jit, compared with jax.numpy."""
from unittest import mock

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import triton
import triton.language as tl

import jax_triton_cpu as jt
from jax_triton_cpu import triton_lib

jax.config.update("jax_enable_x64", True)

DTYPES = [jnp.float32, jnp.float64, jnp.float16, jnp.bfloat16, jnp.int32, jnp.int64]


@triton.jit
def add_kernel(x_ptr, y_ptr, n, out_ptr, BLOCK: tl.constexpr):
  offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
  mask = offsets < n
  tl.store(out_ptr + offsets, tl.load(x_ptr + offsets, mask=mask) +
           tl.load(y_ptr + offsets, mask=mask), mask=mask)


def add(x, y, block):
  return jt.triton_call(x, y, x.size, kernel=add_kernel, out_type=jax.typeof(x),
                        grid=(triton.cdiv(x.size, block),), BLOCK=block)


def _inputs(size, dtype, seed=0):
  k1, k2 = jax.random.split(jax.random.key(seed))
  if jnp.issubdtype(dtype, jnp.integer):
    return (jax.random.randint(k1, (size,), -1000, 1000, dtype),
            jax.random.randint(k2, (size,), -1000, 1000, dtype))
  return jax.random.normal(k1, (size,), dtype), jax.random.normal(k2, (size,), dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: jnp.dtype(d).name)
@pytest.mark.parametrize("block", [1, 128, 1024])
@pytest.mark.parametrize("size", [1, 7, 1024, 1000003])
def test_vector_add_jit(size, block, dtype):
  x, y = _inputs(size, dtype)
  out = jax.jit(add, static_argnums=2)(x, y, block)
  np.testing.assert_array_equal(np.asarray(out), np.asarray(x + y))


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16], ids=lambda d: jnp.dtype(d).name)
def test_vector_add_eager(dtype):
  x, y = _inputs(1000, dtype)
  np.testing.assert_array_equal(np.asarray(add(x, y, 128)), np.asarray(x + y))


@triton.jit
def grid_2d_kernel(x_ptr, rows, cols, out_ptr, BLOCK: tl.constexpr):
  row = tl.program_id(1)
  cols_here = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
  mask = (cols_here < cols) & (row < rows)
  x = tl.load(x_ptr + row * cols + cols_here, mask=mask)
  scale = tl.num_programs(0) * 10 + tl.num_programs(1)
  tl.store(out_ptr + row * cols + cols_here, x * scale + row, mask=mask)


def test_2d_grid_program_id_and_num_programs():
  x = jnp.arange(5 * 37, dtype=jnp.float32).reshape(5, 37)
  grid = (triton.cdiv(37, 16), 5)
  out = jax.jit(lambda x: jt.triton_call(x, 5, 37, kernel=grid_2d_kernel, out_type=jax.typeof(x),
                                         grid=grid, BLOCK=16))(x)
  np.testing.assert_array_equal(out, x * (grid[0] * 10 + grid[1]) + jnp.arange(5)[:, None])


@triton.jit
def loop_kernel(x_ptr, n, steps, out_ptr, BLOCK: tl.constexpr):
  offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
  mask = offsets < n
  x = tl.load(x_ptr + offsets, mask=mask, other=0.0)
  acc = tl.zeros((BLOCK,), tl.float32)
  for i in range(steps):
    acc = acc * 0.5 + x * i
  tl.store(out_ptr + offsets, acc, mask=mask)


def test_for_loop_carries_a_tensor():
  x = jax.random.normal(jax.random.key(1), (300,), jnp.float32)
  out = jax.jit(lambda x: jt.triton_call(x, x.size, 6, kernel=loop_kernel, out_type=jax.typeof(x),
                                         grid=(3,), BLOCK=128))(x)
  expected = jnp.zeros_like(x)
  for i in range(6):
    expected = expected * 0.5 + x * i
  np.testing.assert_allclose(out, expected, rtol=1e-6)


@triton.jit
def scalars_kernel(a, b, c, d, e, f, g, out_ptr):
  tl.store(out_ptr + 0, a.to(tl.float64))
  tl.store(out_ptr + 1, b.to(tl.float64))
  tl.store(out_ptr + 2, c.to(tl.float64))
  tl.store(out_ptr + 3, d.to(tl.float64))
  tl.store(out_ptr + 4, e.to(tl.float64))
  tl.store(out_ptr + 5, f.to(tl.float64))
  tl.store(out_ptr + 6, g.to(tl.float64))


def test_scalar_arguments_of_every_type():
  # i32, u32, i64, u64, fp32, fp64 (not representable in fp32), bool
  # (True would be specialised to constexpr 1, as jax-triton does with every scalar equal to 1)
  values = (-7, 3_000_000_000, -(2**40), 2**63 + 5, 1.5, 1e300, False)
  out = jax.jit(lambda: jt.triton_call(*values, kernel=scalars_kernel,
                                       out_type=jax.ShapeDtypeStruct((7,), jnp.float64),
                                       grid=1))()
  np.testing.assert_array_equal(out, np.array(values, np.float64))


@triton.jit
def masked_kernel(x_ptr, n, out_ptr, BLOCK: tl.constexpr):
  offsets = tl.arange(0, BLOCK)
  tl.store(out_ptr + offsets, tl.load(x_ptr + offsets, mask=offsets < n, other=-1.5))
  last = tl.load(x_ptr + n - 1, mask=n > 0, other=42.0)  # a scalar load under a mask
  tl.store(out_ptr + BLOCK, last, mask=n > 0)             # scalar stores under masks
  tl.store(out_ptr + BLOCK + 1, last, mask=n > BLOCK)


@pytest.mark.parametrize("n", [0, 5, 16])
def test_masked_loads_with_other_and_masked_scalar_access(n):
  x = jnp.arange(1, 17, dtype=jnp.float32)
  out = jax.new_ref(jnp.full(18, 7.0, jnp.float32))  # untouched where the stores are masked off
  jt.triton_call(x, n, out, kernel=masked_kernel, out_type=(), grid=1, BLOCK=16)
  out = out[...]
  expected = np.concatenate([np.where(np.arange(16) < n, x, -1.5),
                             [x[n - 1] if n > 0 else 7.0, 7.0]])
  np.testing.assert_array_equal(out, expected)


def test_two_jits_with_different_sizes_compile_once():
  @triton.jit
  def fresh_add_kernel(x_ptr, y_ptr, n, out_ptr, BLOCK: tl.constexpr):
    add_kernel.fn(x_ptr, y_ptr, n, out_ptr, BLOCK)

  with mock.patch.object(triton_lib, "compile_ttir_inplace",
                         wraps=triton_lib.compile_ttir_inplace) as compile_mock:
    for size in (100, 1000):
      x, y = _inputs(size, jnp.float32)
      out = jax.jit(lambda x, y: jt.triton_call(x, y, x.size, kernel=add_kernel, out_type=jax.typeof(x),
                                                grid=(triton.cdiv(x.size, 64),), BLOCK=64))(x, y)
      np.testing.assert_array_equal(out, x + y)
    assert compile_mock.call_count <= 1  # 0 if an earlier test compiled this specialisation
    x, y = _inputs(100, jnp.float32)
    jax.jit(lambda x, y: jt.triton_call(x, y, x.size, kernel=add_kernel, out_type=jax.typeof(x),
                                        grid=(4,), BLOCK=32))(x, y).block_until_ready()
    assert compile_mock.call_count <= 2
  del fresh_add_kernel


@triton.jit
def unsupported_kernel(x_ptr, out_ptr):
  offsets = tl.arange(0, 16)
  y = tl.inline_asm_elementwise("mov $0, $1;", "=r,r", [tl.load(x_ptr + offsets)],
                                dtype=tl.int32, is_pure=True, pack=1)
  tl.store(out_ptr + offsets, y)


def test_unsupported_op_raises_not_implemented_error_with_op_and_line():
  x = jnp.zeros(16, jnp.int32)
  with pytest.raises(NotImplementedError, match=r"tt\.elementwise_inline_asm.*unsupported_kernel.*"
                     r"test_kernels_e2e\.py:\d+"):
    jax.jit(lambda x: jt.triton_call(x, kernel=unsupported_kernel, out_type=jax.typeof(x),
                                     grid=1))(x)


def test_wrong_operand_count_raises_jax_triton_error():
  x = jnp.zeros(16, jnp.float32)
  with pytest.raises(ValueError, match="out_type has 2 unaliased outputs, but 1 kernel parameters"):
    jt.triton_call(x, x, 16, kernel=add_kernel, out_type=(jax.typeof(x), jax.typeof(x)), grid=1,
                   BLOCK=16)


@triton.jit
def assert_kernel(x_ptr):
  x = tl.load(x_ptr + tl.arange(0, 8))
  tl.device_assert(x < 5, "x must stay below 5")


def test_device_assert_raises_a_python_error():
  ok = jnp.arange(8, dtype=jnp.int32) % 5
  call = lambda x: jt.triton_call(x, kernel=assert_kernel, out_type=(), grid=4, debug=True,
                                  has_side_effect=True)
  jax.block_until_ready(jax.jit(call)(ok))
  with pytest.raises(Exception, match=r"device assertion failed in kernel 'assert_kernel'.*"
                     r"x must stay below 5"):
    jax.block_until_ready(jax.jit(call)(ok.at[3].set(9)))


@pytest.mark.parametrize("size,options,threads", [
    (1024, {}, 1),                          # small: one thread, no worker to wake
    (1 << 22, {}, 0),                       # large: all cores
    (1024, {"num_cpu_threads": 2}, 2),      # the user's choice wins
])
def test_small_launches_stay_on_one_thread(size, options, threads):
  x = jnp.ones(size, jnp.float32)
  f = jax.jit(lambda x: jt.triton_call(x, x, x.size, kernel=add_kernel, out_type=jax.typeof(x),
                                       grid=(triton.cdiv(x.size, 256),), BLOCK=256,
                                       backend_options=options))
  assert f"num_threads = {threads} : i32" in f.lower(x).as_text()
  np.testing.assert_array_equal(f(x), x + x)


_FRESH_PROCESS = """
import sys, jax, jax.numpy as jnp, numpy as np, triton
import jax_triton_cpu as jt
sys.path.insert(0, {tests!r})
from test_kernels_e2e import add_kernel
x = jnp.arange(1000, dtype=jnp.float32)
out = jax.jit(lambda x: jt.triton_call(x, x, x.size, kernel=add_kernel, out_type=jax.typeof(x),
                                       grid=(8,), BLOCK=128))(x)
np.testing.assert_array_equal(out, x + x)
print("compiled" if "jax_triton_cpu.compiler.pipeline" in sys.modules else "cached")
"""


def test_disk_cache_hit_in_a_fresh_process_skips_compiling(tmp_path):
  import os
  import subprocess
  import sys
  env = dict(os.environ, JAX_TRITON_CPU_CACHE_DIR=str(tmp_path / "cache"))
  script = _FRESH_PROCESS.format(tests=os.path.dirname(__file__))
  runs = [subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                         timeout=300) for _ in range(2)]
  for r in runs:
    assert r.returncode == 0, r.stderr
  assert [r.stdout.split()[-1] for r in runs] == ["compiled", "cached"]
