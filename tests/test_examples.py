"""The examples in examples/: their functions against jax.numpy over a few shapes (ragged ones
included), dtypes and options, and each script run as `python examples/NAME.py --quick`.

Compiling the kernels dominates the run time (every shape is a new specialisation), so the
parametrisations are few and small.
"""
import importlib.util
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

EXAMPLES_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")
SCRIPTS = ["add", "softmax", "layer_norm", "matmul", "fused_attention"]

sys.path.insert(0, EXAMPLES_DIR)  # the examples import their helper module, _harness


def _load(name):
  """examples/NAME.py as a module (under a name that cannot clash with benchmarks/NAME.py)."""
  spec = importlib.util.spec_from_file_location(f"jax_triton_cpu_example_{name}",
                                                os.path.join(EXAMPLES_DIR, f"{name}.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


add_ex = _load("add")
softmax_ex = _load("softmax")
layer_norm_ex = _load("layer_norm")
matmul_ex = _load("matmul")
attention_ex = _load("fused_attention")


def _assert_close(got, want, *, atol, rtol=0.0):
  got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
  assert got.shape == want.shape
  np.testing.assert_allclose(got, want, atol=atol, rtol=rtol)


# ---- add -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("size,dtype", [(1, jnp.float32), (4097, jnp.float32),
                                        (1000, jnp.float16)])
def test_add(size, dtype):
  kx, ky = jax.random.split(jax.random.key(size))
  x = jax.random.normal(kx, (size,), dtype)
  y = jax.random.normal(ky, (size,), dtype)
  out = jax.jit(add_ex.add)(x, y)
  assert out.dtype == dtype
  _assert_close(out, x + y, atol=0.0)


# ---- softmax -------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape,dtype", [((1, 1), jnp.float32), ((37, 100), jnp.float32),
                                         ((3, 5, 129), jnp.float32), ((8, 256), jnp.float16)])
def test_softmax(shape, dtype):
  x = 3 * jax.random.normal(jax.random.key(1), shape, dtype)
  out = jax.jit(softmax_ex.softmax)(x)
  assert out.shape == shape and out.dtype == dtype
  want = jax.jit(lambda x: jax.nn.softmax(x.astype(jnp.float32), axis=-1))(x)
  if dtype == jnp.float32:
    _assert_close(out, want, atol=1e-6, rtol=1e-5)
  else:
    _assert_close(out, want, atol=1e-3, rtol=1e-2)
  np.testing.assert_allclose(np.sum(np.asarray(out, np.float64), axis=-1), 1.0,
                             atol=1e-5 if dtype == jnp.float32 else 2e-2)


# ---- layer norm ----------------------------------------------------------------------------------

@pytest.mark.parametrize("shape,dtype,reduction", [
    ((37, 100), jnp.float32, "kernel"),     # ragged columns, rows not a multiple of the groups
    ((3, 50, 130), jnp.float32, "atomic"),  # 3-D input, 150 rows -> 3 rows per program
    ((16, 64), jnp.float16, "kernel"),
])
def test_layer_norm_forward_and_grad(shape, dtype, reduction):
  m, n = int(np.prod(shape[:-1])), shape[-1]
  x, w, b, dy = layer_norm_ex.make_inputs(m, n, dtype, seed=2)
  x, dy = x.reshape(shape), dy.reshape(shape)
  eps = 1e-5
  f16 = dtype == jnp.float16
  ours = lambda x, w, b: layer_norm_ex.layer_norm(x, w, b, eps, reduction)

  def jnp_formula(x, w, b):  # independent of the example's reference()
    x32 = x.astype(jnp.float32)
    mu = x32.mean(-1, keepdims=True)
    var = ((x32 - mu) ** 2).mean(-1, keepdims=True)
    return ((x32 - mu) / jnp.sqrt(var + eps) * w.astype(jnp.float32)
            + b.astype(jnp.float32)).astype(x.dtype)

  y = jax.jit(ours)(x, w, b)
  assert y.shape == shape and y.dtype == dtype
  _assert_close(y, jax.jit(jnp_formula)(x, w, b), atol=1e-2 if f16 else 1e-5,
                rtol=1e-2 if f16 else 1e-5)

  def loss(fn):
    return lambda x, w, b: jnp.sum((fn(x, w, b) * dy).astype(jnp.float32))

  got = jax.jit(jax.grad(loss(ours), argnums=(0, 1, 2)))(x, w, b)
  want = jax.jit(jax.grad(loss(jnp_formula), argnums=(0, 1, 2)))(x, w, b)
  for g, r in zip(got, want):
    assert g.shape == r.shape and g.dtype == r.dtype
    scale = max(1.0, float(jnp.max(jnp.abs(r.astype(jnp.float32)))))
    _assert_close(g, r, atol=(5e-3 if f16 else 1e-4) * scale, rtol=1e-2 if f16 else 1e-4)


def test_layer_norm_vjp_matches_both_reductions():
  x, w, b, dy = layer_norm_ex.make_inputs(37, 100, jnp.float32, seed=3)
  outs = {}
  for reduction in ("kernel", "atomic"):
    y, vjp = jax.vjp(lambda x, w, b, r=reduction: layer_norm_ex.layer_norm(x, w, b, 1e-5, r),
                     x, w, b)
    outs[reduction] = (y, *vjp(dy))
  for a, b_ in zip(outs["kernel"], outs["atomic"]):
    _assert_close(a, b_, atol=1e-4)


# ---- matmul --------------------------------------------------------------------------------------

@jax.jit
def _jnp_matmul(a, b):
  return jnp.matmul(a, b, precision=jax.lax.Precision.HIGHEST)


@jax.jit
def _jnp_leaky_relu(c):
  return jnp.where(c >= 0, c, 0.01 * c)


@pytest.mark.parametrize("m,n,k,dtype,activation", [
    (100, 70, 50, jnp.float32, "leaky_relu"),  # ragged in M, N and K
    (64, 64, 96, jnp.float16, ""),             # multiples of the blocks; K loop of 3
    (33, 130, 40, jnp.float16, "leaky_relu"),
    (128, 64, 64, jnp.float32, ""),
])
def test_matmul(m, n, k, dtype, activation):
  a, b = matmul_ex.make_inputs(m, n, k, dtype, seed=4)
  out = jax.jit(lambda a, b: matmul_ex.matmul(a, b, activation))(a, b)
  assert out.shape == (m, n) and out.dtype == dtype
  c = _jnp_matmul(a.astype(jnp.float32), b.astype(jnp.float32))
  if activation:
    c = _jnp_leaky_relu(c)
  atol, rtol = matmul_ex.tolerance(k, dtype)
  _assert_close(out, c.astype(dtype), atol=atol, rtol=rtol)


def test_matmul_small_blocks_grouped_order():
  # 4 x 5 blocks of 16 x 16 in groups of 3 block-rows: the last group is partial.
  a, b = matmul_ex.make_inputs(61, 77, 35, jnp.float32, seed=5)
  out = jax.jit(lambda a, b: matmul_ex.matmul(a, b, "", 16, 16, 16, 3))(a, b)
  _assert_close(out, _jnp_matmul(a, b), atol=1e-5 * 35, rtol=1e-5)


# ---- fused attention -----------------------------------------------------------------------------

def _attention_jnp(q, k, v, causal, sm_scale):
  f32 = jnp.float32
  s = jnp.einsum("bhqd,bhkd->bhqk", q.astype(f32), k.astype(f32),
                 precision=jax.lax.Precision.HIGHEST) * sm_scale
  if causal:
    n = q.shape[2]
    s = jnp.where(jnp.arange(n)[:, None] >= jnp.arange(n)[None, :], s, -jnp.inf)
  return jnp.einsum("bhqk,bhkd->bhqd", jax.nn.softmax(s, axis=-1), v.astype(f32),
                    precision=jax.lax.Precision.HIGHEST)


@pytest.mark.parametrize("shape,dtype,causal,blocks", [
    ((1, 2, 100, 32), jnp.float16, False, (64, 32)),  # S ragged
    ((1, 2, 100, 32), jnp.float16, True, (64, 32)),
    ((2, 1, 64, 16), jnp.float32, True, (32, 16)),    # S a multiple of the blocks
    ((1, 1, 70, 64), jnp.float32, False, (32, 32)),
])
def test_attention(shape, dtype, causal, blocks):
  q, k, v = attention_ex.make_inputs(shape, dtype, seed=6)
  sm_scale = 0.3
  out = jax.jit(lambda q, k, v: attention_ex.attention(q, k, v, causal, sm_scale, *blocks))(q, k, v)
  assert out.shape == shape and out.dtype == dtype
  want = jax.jit(_attention_jnp, static_argnums=(3, 4))(q, k, v, causal, sm_scale)
  _assert_close(out, want, atol=attention_ex.tolerance(dtype))


# ---- the scripts ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", SCRIPTS)
def test_script_runs(name):
  result = subprocess.run([sys.executable, os.path.join(EXAMPLES_DIR, f"{name}.py"), "--quick"],
                          capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stdout + result.stderr
  assert "max error" in result.stdout and "/call" in result.stdout
  assert "all results match jax.numpy" in result.stdout
