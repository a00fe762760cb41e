"""Pallas kernels on CPU through jax_triton_cpu.pallas: JAX's own Pallas GPU kernels (the ones on
the Triton path, jax.experimental.pallas.ops.gpu) against their reference functions, kernels of
our own, and what pallas_call offers around them (grids, aliasing, vmap, debug, threads, cache).

Every kernel test checks that the lowered program launches our kernel and calls nothing back.
"""
import functools
import inspect
import re
import warnings
from unittest import mock

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax
from jax.experimental import pallas as pl
from jax.experimental.pallas import triton as plgpu

import jax_triton_cpu  # noqa: F401  registers pallas_call's CPU lowering
from jax_triton_cpu import pallas as jtp
from jax_triton_cpu.compiler import frontend, pipeline

with warnings.catch_warnings():  # the modules warn that they are deprecated (JAX 0.11+)
  warnings.simplefilter("ignore", DeprecationWarning)
  from jax.experimental.pallas.ops.gpu import attention, decode_attention, layer_norm, \
      paged_attention, rms_norm, softmax

CALL = "triton_cpu_kernel_call"


@pytest.fixture(autouse=True)
def _x32():
  """The ops.gpu kernels trace only with 32-bit ints (pl.cdiv of an int32 by an int64 fails), and
  another test module turns x64 on for the whole session."""
  with jax.enable_x64(False):
    yield


def native(f, *args, kernels=1):
  """jax.jit(f), once its lowering for `args` is known to launch (at least) `kernels` kernels of
  ours and no callback."""
  jitted = jax.jit(f)
  hlo = jitted.lower(*args).as_text()
  assert hlo.count(f"custom_call @{CALL}(") >= kernels, hlo
  assert "callback" not in hlo.lower(), hlo
  return jitted


def normal(seed, shape, dtype=jnp.float32):
  return jax.random.normal(jax.random.key(seed), shape, dtype)


def assert_close(got, want, tol):
  for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
    np.testing.assert_allclose(np.asarray(g, np.float32), np.asarray(w, np.float32),
                               rtol=tol, atol=tol)


def check_forward(f, reference, args, tol=1e-5, kernels=1):
  assert_close(native(f, *args, kernels=kernels)(*args), reference(*args), tol)


def check_backward(f, reference, args, tol=1e-4):
  """Gradients of a weighted sum of the outputs (weights differ per element) w.r.t. all args,
  through the module's backward kernels: with the forward one, three in all."""
  def loss(g):
    def weighted_sum(*a):
      out = g(*a)
      return jnp.sum(out * jnp.cos(jnp.arange(out.size, dtype=out.dtype)).reshape(out.shape))
    return weighted_sum
  argnums = tuple(range(len(args)))
  check_forward(jax.grad(loss(f), argnums), jax.grad(loss(reference), argnums), args, tol,
                kernels=3)


# ---- jax.experimental.pallas.ops.gpu -----------------------------------------------------------

def test_softmax():
  x = normal(0, (8, 100))  # rows of 100 in blocks of 128: masked loads and stores
  check_forward(softmax.softmax, lambda x: jax.nn.softmax(x, axis=-1), (x,))


NORMS = {"layer_norm": (layer_norm.layer_norm, layer_norm.layer_norm_reference),
         "rms_norm": (rms_norm.rms_norm, rms_norm.rms_norm_reference)}


def _norm_args():
  return normal(1, (2, 4, 200)), normal(2, (200,)), normal(3, (200,))


@pytest.mark.parametrize("name", NORMS)
def test_norm_forward(name):
  kernel, reference = NORMS[name]
  check_forward(kernel, reference, _norm_args())


@pytest.mark.parametrize("name", NORMS)
def test_norm_backward(name):
  kernel, reference = NORMS[name]
  check_backward(kernel, reference, _norm_args())


ATTENTION_BLOCKS = attention.BlockSizes(block_q=32, block_k=32, block_q_dkv=32, block_kv_dkv=32,
                                        block_q_dq=32, block_kv_dq=32)


def _attention_args(segments):
  q, k, v = (normal(i, (2, 64, 2, 32)) for i in (4, 5, 6))
  segment_ids = jnp.repeat(jnp.array([[0, 1], [0, 0]]), 32, axis=1) if segments else None
  return q, k, v, segment_ids


def _mha(causal, segment_ids):
  return (lambda q, k, v: attention.mha(q, k, v, segment_ids, causal=causal,
                                        block_sizes=ATTENTION_BLOCKS),
          lambda q, k, v: attention.mha_reference(q, k, v, segment_ids, causal=causal))


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("segments", [False, True])
def test_attention_forward(causal, segments):
  *qkv, segment_ids = _attention_args(segments)
  check_forward(*_mha(causal, segment_ids), qkv)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("segments", [False, True])
def test_attention_backward(causal, segments):
  *qkv, segment_ids = _attention_args(segments)
  check_backward(*_mha(causal, segment_ids), qkv, tol=2e-4)


@pytest.mark.parametrize("lengths", [False, True])
def test_decode_attention_mqa(lengths):
  q, k, v = normal(7, (2, 16, 32)), normal(8, (2, 256, 32)), normal(9, (2, 256, 32))
  kw = dict(start_idx=jnp.array([3, 0]), kv_seq_len=jnp.array([200, 256])) if lengths else {}
  check_forward(lambda q, k, v: decode_attention.mqa(q, k, v, block_k=64, k_splits=4, **kw),
                lambda q, k, v: decode_attention.mqa_reference(q, k, v, **kw), (q, k, v))


def test_decode_attention_gqa():
  q, k, v = normal(7, (2, 16, 32)), normal(10, (2, 256, 2, 32)), normal(11, (2, 256, 2, 32))
  check_forward(lambda q, k, v: decode_attention.gqa(q, k, v, block_k=64, k_splits=4),
                decode_attention.gqa_reference, (q, k, v))


def test_paged_attention():
  batch, heads, kv_heads, head_dim, page, pages_per_sequence = 2, 16, 2, 32, 16, 8
  pages = batch * pages_per_sequence
  q = normal(12, (batch, heads, head_dim))
  k_pages = normal(13, (kv_heads, pages, page, head_dim))
  v_pages = normal(14, (kv_heads, pages, page, head_dim))
  # Sequence b owns pages b, b + batch, ...: a table that is not the identity.
  block_tables = jnp.arange(pages, dtype=jnp.int32).reshape(pages_per_sequence, batch).T
  lengths = jnp.array([100, 128], jnp.int32)

  def reference(q, k_pages, v_pages, block_tables, lengths):
    def gather(p):  # [kv_heads, batch, pages_per_sequence, page, d] -> [batch, seq, kv_heads, d]
      return p[:, block_tables].reshape(kv_heads, batch, -1, head_dim).transpose(1, 2, 0, 3)
    return paged_attention.paged_attention_reference(q, gather(k_pages), gather(v_pages),
                                                     lengths)

  check_forward(lambda *a: paged_attention.paged_attention(*a, pages_per_compute_block=4,
                                                           k_splits=2),
                reference, (q, k_pages, v_pages, block_tables, lengths))


# ---- kernels of our own --------------------------------------------------------------------------

def add_one_kernel(x_ref, o_ref):
  o_ref[...] = x_ref[...] + 1


def masked_scale_kernel(x_ref, o_ref, *, n, block):
  """o = 2x + 1 on the first n elements, in blocks whose last one is partial."""
  start = pl.program_id(0) * block
  mask = start + jnp.arange(block) < n
  x = plgpu.load(x_ref.at[pl.ds(start, block)], mask=mask, other=0.0)
  plgpu.store(o_ref.at[pl.ds(start, block)], 2 * x + 1, mask=mask)


def test_masked_partial_blocks():
  n, block = 1000, 128
  x = normal(20, (n,))
  out = jax.ShapeDtypeStruct((n,), jnp.float32)
  f = pl.pallas_call(functools.partial(masked_scale_kernel, n=n, block=block), out_shape=out,
                     grid=(pl.cdiv(n, block),))
  np.testing.assert_array_equal(native(f, x)(x), 2 * x + 1)


@pytest.mark.skipif(jax.__version_info__ < (0, 12), reason="JAX 0.10's Triton lowering does not "
                    "mask partial BlockSpec blocks (on GPU neither)")
def test_partial_blockspec_blocks():
  x = normal(21, (1000,))
  spec = pl.BlockSpec((128,), lambda i: (i,))
  f = pl.pallas_call(lambda x_ref, o_ref: o_ref.__setitem__(..., x_ref[...] * 3), out_shape=x,
                     grid=(8,), in_specs=[spec], out_specs=spec)
  np.testing.assert_array_equal(native(f, x)(x), x * 3)


def row_stats_kernel(x_ref, sum_ref, max_ref, argmax_ref):
  x = x_ref[...]
  sum_ref[...] = jnp.sum(x, axis=1)
  max_ref[...] = jnp.max(x, axis=1)
  argmax_ref[...] = jnp.argmax(x, axis=1).astype(jnp.int32)


def test_reductions():
  x = normal(22, (64, 256))
  rows = pl.BlockSpec((8,), lambda i: (i,))
  f = pl.pallas_call(
      row_stats_kernel, grid=(8,), in_specs=[pl.BlockSpec((8, 256), lambda i: (i, 0))],
      out_specs=[rows, rows, rows],
      out_shape=[jax.ShapeDtypeStruct((64,), jnp.float32)] * 2 +
                [jax.ShapeDtypeStruct((64,), jnp.int32)])
  total, largest, where = native(f, x)(x)
  np.testing.assert_allclose(total, jnp.sum(x, axis=1), rtol=1e-5, atol=1e-5)
  np.testing.assert_array_equal(largest, jnp.max(x, axis=1))
  np.testing.assert_array_equal(where, jnp.argmax(x, axis=1))


def matmul_kernel(x_ref, y_ref, o_ref, *, block_k):
  """One (BM, BN) tile of x @ y: a loop over K in chunks of block_k, accumulating in f32."""
  def step(k, acc):
    chunk = pl.ds(k * block_k, block_k)
    return acc + plgpu.dot(x_ref[:, chunk], y_ref[chunk, :])
  acc = lax.fori_loop(0, x_ref.shape[1] // block_k, step, jnp.zeros(o_ref.shape, jnp.float32))
  o_ref[...] = acc.astype(o_ref.dtype)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float16, jnp.bfloat16],
                         ids=lambda d: jnp.dtype(d).name)
def test_matmul_k_loop(dtype):
  m, k, n, bm, bn = 64, 96, 48, 32, 16
  x, y = normal(23, (m, k), dtype), normal(24, (k, n), dtype)
  f = pl.pallas_call(
      functools.partial(matmul_kernel, block_k=32), out_shape=jax.ShapeDtypeStruct((m, n), dtype),
      grid=(m // bm, n // bn),
      in_specs=[pl.BlockSpec((bm, k), lambda i, j: (i, 0)),
                pl.BlockSpec((k, bn), lambda i, j: (0, j))],
      out_specs=pl.BlockSpec((bm, bn), lambda i, j: (i, j)))
  want = jnp.dot(x.astype(jnp.float32), y.astype(jnp.float32), precision="highest")
  assert_close(native(f, x, y)(x, y), want.astype(dtype), 1e-5 if dtype == jnp.float32 else 2e-2)


def test_aliasing_leaves_the_rest_of_the_buffer():
  """The output is the input's buffer: what the masked store skips keeps the input's values."""
  n, block = 1000, 128
  buf = jnp.full((1024,), -7.0)
  f = pl.pallas_call(functools.partial(masked_scale_kernel, n=n, block=block), out_shape=buf,
                     grid=(pl.cdiv(n, block),), input_output_aliases={0: 0})
  jitted = native(f, buf)
  assert "output_operand_alias<output_tuple_indices = [], operand_index = 0" in \
      jitted.lower(buf).as_text()
  out = jitted(buf)
  np.testing.assert_array_equal(out[:n], -13.0)
  np.testing.assert_array_equal(out[n:], -7.0)


def accumulate_kernel(x_ref, acc_in_ref, acc_ref):
  del acc_in_ref  # the same buffer as acc_ref
  plgpu.atomic_add(acc_ref, pl.ds(0, 64), x_ref[...])


def test_aliased_atomic_accumulation():
  x, start = normal(25, (8, 64)), normal(26, (64,))
  f = pl.pallas_call(accumulate_kernel, out_shape=start, grid=(8,),
                     in_specs=[pl.BlockSpec((None, 64), lambda i: (i, 0)),
                               pl.BlockSpec((64,), lambda i: (0,))],
                     out_specs=pl.BlockSpec((64,), lambda i: (0,)),
                     input_output_aliases={1: 0})
  np.testing.assert_allclose(native(f, x, start)(x, start), start + x.sum(0), rtol=1e-5,
                             atol=1e-5)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float16, jnp.bfloat16, jnp.int32, jnp.int8],
                         ids=lambda d: jnp.dtype(d).name)
def test_elementwise_dtypes(dtype):
  def kernel(x_ref, y_ref, o_ref):
    x, y = x_ref[...], y_ref[...]
    o_ref[...] = jnp.where(x > y, x - y, x * y)
  x, y = (jnp.arange(256).astype(dtype) % 13, (jnp.arange(256) * 7).astype(dtype) % 11)
  f = pl.pallas_call(kernel, out_shape=x)
  np.testing.assert_array_equal(native(f, x, y)(x, y), jnp.where(x > y, x - y, x * y))


@pytest.mark.parametrize("dtype", [jnp.float64, jnp.int64], ids=lambda d: jnp.dtype(d).name)
def test_64_bit_dtypes(dtype):
  with jax.enable_x64(True):
    x = jnp.arange(512, dtype=dtype) * 3
    spec = pl.BlockSpec((128,), lambda i: (i,))
    f = pl.pallas_call(add_one_kernel, out_shape=x, grid=(4,), in_specs=[spec], out_specs=spec)
    out = native(f, x)(x)
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, x + 1)


# ---- grids ---------------------------------------------------------------------------------------

def program_ids_kernel(o_ref, *, rank):
  """Each program writes sum_d (d + 1) * 10^d * program_id(d) plus 10^rank * num_programs(0)."""
  value = sum((d + 1) * 10**d * pl.program_id(d) for d in range(rank))
  value = value + (10**rank * pl.num_programs(0) if rank else 0)
  o_ref[...] = jnp.full(o_ref.shape, value, jnp.int32)


def _program_ids_call(grid):
  spec = pl.BlockSpec((None,) * len(grid) + (4,), lambda *ids: (*ids, 0))
  return pl.pallas_call(functools.partial(program_ids_kernel, rank=len(grid)), grid=grid,
                        out_shape=jax.ShapeDtypeStruct((*grid, 4), jnp.int32), out_specs=spec)


@pytest.mark.parametrize("grid", [(), (3,), (3, 2), (2, 3, 2), (2, 3, 1, 2), (2, 1, 2, 3, 2)],
                         ids=lambda g: f"rank{len(g)}")
def test_grid_of_any_rank(grid):
  out = native(_program_ids_call(grid))()
  ids = np.indices(grid)
  want = sum((d + 1) * 10**d * ids[d] for d in range(len(grid))) + \
      (10**len(grid) * grid[0] if grid else 0)
  np.testing.assert_array_equal(out, np.broadcast_to(np.asarray(want)[..., None], out.shape))


def test_grid_axis_beyond_gpu_limits_is_folded():
  """CUDA's y and z grid axes stop at 65535: Pallas folds larger ones into x; so do we."""
  grid = (2, 70000)
  out = native(_program_ids_call(grid))()
  want = np.indices(grid)[0] + 20 * np.indices(grid)[1] + 100 * 2
  np.testing.assert_array_equal(out[..., 0], want)


def test_empty_grid_writes_zeros_and_keeps_aliased_inputs():
  x = normal(27, (8,))
  f = pl.pallas_call(lambda x_ref, o_ref, p_ref: None, grid=(0,), out_shape=[x, x],
                     input_output_aliases={0: 0})
  kept, fresh = jax.jit(f)(x)
  np.testing.assert_array_equal(kept, x)
  np.testing.assert_array_equal(fresh, np.zeros(8))


# ---- transformations -----------------------------------------------------------------------------

def scale_rows_kernel(x_ref, s_ref, o_ref):
  o_ref[...] = x_ref[...] * s_ref[...]


def _scale_rows(x, s):  # x: (R, 64), s: (64,)
  return pl.pallas_call(scale_rows_kernel, out_shape=x, grid=(x.shape[0] // 4,),
                        in_specs=[pl.BlockSpec((4, 64), lambda i: (i, 0)),
                                  pl.BlockSpec((64,), lambda i: (0,))],
                        out_specs=pl.BlockSpec((4, 64), lambda i: (i, 0)))(x, s)


def test_vmap():
  """pallas_call's batching rule adds grid axes (vmapped dims); nested and with in_axes None."""
  x, s = normal(28, (3, 2, 8, 64)), normal(29, (64,))
  f = jax.vmap(jax.vmap(_scale_rows, in_axes=(0, None)), in_axes=(0, None))
  np.testing.assert_allclose(native(f, x, s)(x, s), x * s, rtol=1e-6)
  xs = normal(30, (3, 64))
  g = jax.vmap(_scale_rows, in_axes=(None, 0))
  np.testing.assert_allclose(native(g, x[0, 0], xs)(x[0, 0], xs), x[0, 0][None] * xs[:, None],
                             rtol=1e-6)


def test_eager_call_runs_natively():
  x, s = normal(31, (8, 64)), normal(32, (64,))
  with mock.patch.object(jtp, "_lower", wraps=jtp._lower) as lower:
    out = _scale_rows(x, s)
  assert lower.called
  np.testing.assert_allclose(out, x * s, rtol=1e-6)


def test_interpret_mode_still_interprets():
  x, s = normal(33, (8, 64)), normal(34, (64,))
  f = pl.pallas_call(scale_rows_kernel, out_shape=x, interpret=True)
  assert CALL not in jax.jit(f).lower(x, s).as_text()
  np.testing.assert_allclose(jax.jit(f)(x, s), x * s, rtol=1e-6)


def test_mosaic_compiler_params_keep_jax_behaviour():
  from jax.experimental.pallas import tpu as pltpu
  x = normal(35, (8, 64))
  f = pl.pallas_call(scale_rows_kernel, out_shape=x, compiler_params=pltpu.CompilerParams())
  with pytest.raises(ValueError, match="Only interpret mode is supported on CPU backend"):
    jax.jit(f).lower(x, x[0])


# ---- errors --------------------------------------------------------------------------------------

def test_what_the_triton_lowering_rejects_raises_its_error():
  x = normal(36, (100,))
  f = pl.pallas_call(lambda x_ref, o_ref: o_ref.__setitem__(..., x_ref[...] + 1), out_shape=x)
  with pytest.raises(ValueError, match="size is a power of 2"):
    jax.jit(f).lower(x)


def inline_asm_kernel(x_ref, o_ref):
  o_ref[...] = plgpu.elementwise_inline_asm(  # the line the error must name
      "mov.b32 $0, $1;", args=[x_ref[...]], constraints="=r,r", pack=1,
      result_shape_dtypes=[jax.ShapeDtypeStruct((128,), jnp.float32)])[0]


def test_what_our_compiler_rejects_raises_ours_with_the_source_line():
  x = normal(37, (128,))
  line = inspect.getsourcelines(inline_asm_kernel)[1] + 1
  with pytest.raises(NotImplementedError,
                     match=rf"tt\.elementwise_inline_asm.*{re.escape(__file__)}:{line}:"):
    jax.jit(pl.pallas_call(inline_asm_kernel, out_shape=x)).lower(x)


# ---- compilation: passes, cache, debug, threads ----------------------------------------------------

@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
  """An empty disk cache and no kernel remembered by this process."""
  monkeypatch.setenv("JAX_TRITON_CPU_CACHE_DIR", str(tmp_path / "cache"))
  monkeypatch.setattr(jtp, "_kernels", {})


def test_one_compile_per_kernel_and_shape(fresh_cache):
  def call(x):
    return pl.pallas_call(add_one_kernel, out_shape=x)(x)
  small, large = jnp.zeros(128), jnp.zeros(256)
  with mock.patch.object(frontend, "optimize_ttir_text", wraps=frontend.optimize_ttir_text) as \
      passes, mock.patch.object(pipeline, "compile_ttir", wraps=pipeline.compile_ttir) as backend:
    np.testing.assert_array_equal(jax.jit(call)(small), small + 1)
    np.testing.assert_array_equal(jax.jit(call)(small), small + 1)  # another jit: same kernel
    assert (passes.call_count, backend.call_count) == (1, 1)
    np.testing.assert_array_equal(jax.jit(call)(large), large + 1)
    assert (passes.call_count, backend.call_count) == (2, 2)
    jtp._kernels.clear()  # as in a new process: the disk cache has both
    np.testing.assert_array_equal(jax.jit(call)(large), large + 1)
    assert (passes.call_count, backend.call_count) == (2, 2)


def test_ttir_passes_run_and_keep_source_lines(fresh_cache, monkeypatch):
  raw = []
  lower = jtp._lower_to_ttir
  monkeypatch.setattr(jtp, "_lower_to_ttir", lambda *a: raw.append(lower(*a)) or raw[-1])
  x = jnp.zeros(128)
  jax.jit(pl.pallas_call(add_one_kernel, out_shape=x)).lower(x)
  (kernel,) = jtp._kernels.values()
  # Pallas's `o_ref[...] = v` is a swap: it loads the old value too, which the passes remove.
  assert raw[0][0].count('"tt.load"') == 2
  assert kernel.ttir.count("tt.load") == 1, kernel.ttir
  line = inspect.getsourcelines(add_one_kernel)[1] + 1
  assert f'"{__file__}":{line}:' in kernel.ttir, kernel.ttir


def test_debug_prints_and_dumps(fresh_cache, tmp_path, monkeypatch, capfd):
  monkeypatch.setenv("JAX_TRITON_CPU_DUMP_DIR", str(tmp_path / "dump"))
  x = jnp.arange(128.0)
  f = pl.pallas_call(add_one_kernel, out_shape=x, debug=True)
  np.testing.assert_array_equal(jax.jit(f)(x), x + 1)
  printed = capfd.readouterr()
  assert "The kernel jaxpr for pallas_call" in printed.out
  assert "The grid mapping for pallas_call" in printed.out
  assert "The Triton module for pallas_call" in printed.out
  assert "wrote the IR of kernel 'add_one_kernel'" in printed.err
  (dump,) = (tmp_path / "dump").iterdir()
  assert {p.suffix for p in dump.iterdir()} >= {".ttir", ".ll", ".s"}
  assert "debug=True" in (dump / "config.txt").read_text()  # compiled with device asserts on


def _num_threads(f, *args) -> int:
  hlo = native(f, *args).lower(*args).as_text()
  return int(re.search(r"num_threads = (\d+) : i32", hlo).group(1))


def test_thread_policy():
  """As triton_call: small launches run on one thread, large ones on all cores (0)."""
  small = jnp.zeros(1024)
  assert _num_threads(pl.pallas_call(add_one_kernel, out_shape=small), small) == 1
  large = jnp.zeros((512, 1024))
  spec = pl.BlockSpec((8, 1024), lambda i: (i, 0))
  f = pl.pallas_call(add_one_kernel, out_shape=large, grid=(64,), in_specs=[spec],
                     out_specs=spec)
  assert _num_threads(f, large) == 0


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_num_cpu_threads(threads):
  x = jnp.arange(512 * 1024.0).reshape(512, 1024)
  spec = pl.BlockSpec((8, 1024), lambda i: (i, 0))
  f = pl.pallas_call(add_one_kernel, out_shape=x, grid=(64,), in_specs=[spec], out_specs=spec,
                     compiler_params=jtp.CompilerParams(num_warps=2, num_cpu_threads=threads))
  assert _num_threads(f, x) == threads
  np.testing.assert_array_equal(jax.jit(f)(x), x + 1)


def test_compiler_params_are_triton_params():
  params = jtp.CompilerParams(num_stages=2, num_cpu_threads=4)
  assert isinstance(params, plgpu.CompilerParams)
  with pytest.raises(ValueError, match="num_cpu_threads"):
    jtp.CompilerParams(num_cpu_threads=-1)
