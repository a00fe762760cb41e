"""Drop-in parity with jax-triton beyond the API surface (issue 4): run-time autotuning, several
Python threads and several host devices at once, has_side_effect under XLA, and the IR dumps of
real compiles. Everything here compiles and runs kernels.
"""
import concurrent.futures
import os
import subprocess
import sys
import tempfile
import threading
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import triton
import triton.language as tl

import jax_triton_cpu as jt
from jax_triton_cpu import _runtime
from jax_triton_cpu import triton_lib as jttl

# Busy-work iterations of a deliberately slow config: a few ms per launch, against a few us.
SLOW = 20000


@triton.jit
def add_kernel(x_ptr, y_ptr, n_elements, output_ptr, BLOCK_SIZE: tl.constexpr):
  offsets = tl.program_id(0) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
  mask = offsets < n_elements
  x = tl.load(x_ptr + offsets, mask=mask)
  y = tl.load(y_ptr + offsets, mask=mask)
  tl.store(output_ptr + offsets, x + y, mask=mask)


@triton.jit
def _busy(x, SPIN: tl.constexpr):
  """0.0 * (a value that takes SPIN steps to compute): zero, but not foldable without fast-math."""
  y = x
  for _ in range(SPIN):
    y = y * 0.5 + 0.25
  return 0.0 * y


@triton.jit
def tagged_copy_kernel(x_ptr, out_ptr, tag_ptr, n, BLOCK: tl.constexpr, SPIN: tl.constexpr,
                       TAG: tl.constexpr):
  """out = x; tag = TAG, so a test can tell which config ran; SPIN makes a config slow."""
  offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
  mask = offsets < n
  x = tl.load(x_ptr + offsets, mask=mask)
  tl.store(out_ptr + offsets, x + _busy(x, SPIN), mask=mask)
  tl.store(tag_ptr, TAG)


@triton.jit
def tagged_inc_kernel(x_in_out_ptr, tag_ptr, n, BLOCK: tl.constexpr, SPIN: tl.constexpr,
                      TAG: tl.constexpr):
  """x += 1 in place; tag = TAG."""
  offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
  mask = offsets < n
  x = tl.load(x_in_out_ptr + offsets, mask=mask)
  tl.store(x_in_out_ptr + offsets, x + 1.0 + _busy(x, SPIN), mask=mask)
  tl.store(tag_ptr, TAG)


@triton.jit
def add_inplace_x_kernel(x_ptr, y_ptr, n_elements, BLOCK_SIZE: tl.constexpr,
                         SPIN: tl.constexpr):
  """x = x + y in place."""
  offsets = tl.program_id(0) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
  mask = offsets < n_elements
  x = tl.load(x_ptr + offsets, mask=mask)
  y = tl.load(y_ptr + offsets, mask=mask)
  tl.store(x_ptr + offsets, x + y + _busy(x, SPIN), mask=mask)


def _configs(fastest, count=3, block=256):
  """`count` configs with tags 0..count-1, all slow except config `fastest`."""
  return [triton.Config({"BLOCK": block, "SPIN": 0 if c == fastest else SLOW, "TAG": c})
          for c in range(count)]


def _grid(n):
  return lambda meta: triton.cdiv(n, meta["BLOCK"])


def _tagged_copy(kernel, x):
  return jt.triton_call(x, n=x.size, kernel=kernel, grid=_grid(x.size),
                        out_type=(jax.typeof(x), jax.ShapeDtypeStruct((1,), jnp.int32)))


def _tagged_inc_in_place(kernel, x):
  """x + 1 through a Ref (an in-place operand), and the tag of the config that ran."""
  r = jax.new_ref(x)
  tag = jt.triton_call(r, n=x.size, kernel=kernel, grid=_grid(x.size),
                       out_type=jax.ShapeDtypeStruct((1,), jnp.int32))
  return r[...], tag


def _autotune_runs():
  return _runtime.counters()["autotune_runs"]


X = jnp.linspace(0.5, 2.0, 4096, dtype=jnp.float32)

# ------------------------------------------------------------------------------------------------
# Run-time autotuning
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fastest", [0, 2])
def test_autotune_runs_the_fastest_config(fastest):
  kernel = triton.autotune(_configs(fastest), key=["n"])(tagged_copy_kernel)
  f = jax.jit(lambda x: _tagged_copy(kernel, x))
  runs = _autotune_runs()
  out, tag = f(X)
  assert _autotune_runs() == runs + 1
  assert tag.tolist() == [fastest]
  np.testing.assert_array_equal(np.asarray(out), np.asarray(X))
  # The choice is kept for the call site: later calls do not time the configs again.
  out, tag = f(X + 1)
  assert _autotune_runs() == runs + 1
  assert tag.tolist() == [fastest]
  np.testing.assert_array_equal(np.asarray(out), np.asarray(X + 1))


def test_autotune_in_place_ref_results_identical_whichever_config_wins():
  """Each config is timed several times on the real buffers; the Ref is restored between trials,
  so only the winner's single update remains."""
  expected = np.asarray(X) + 1
  for fastest in (0, 1, 2):
    kernel = triton.autotune(_configs(fastest), key=["n"])(tagged_inc_kernel)
    runs = _autotune_runs()
    out, tag = jax.jit(lambda x: _tagged_inc_in_place(kernel, x))(X)
    assert _autotune_runs() == runs + 1
    assert tag.tolist() == [fastest]
    np.testing.assert_array_equal(np.asarray(out), expected)
  # Eagerly, on a Ref the caller holds.
  kernel = triton.autotune(_configs(1), key=["n"])(tagged_inc_kernel)
  r = jax.new_ref(X)
  tag = jt.triton_call(r, n=X.size, kernel=kernel, grid=_grid(X.size),
                       out_type=jax.ShapeDtypeStruct((1,), jnp.int32))
  assert tag.tolist() == [1]
  np.testing.assert_array_equal(np.asarray(r[...]), expected)


@pytest.mark.parametrize("donate", [False, True])
def test_autotune_with_input_output_aliases(donate):
  configs = [triton.Config({"BLOCK_SIZE": 32, "SPIN": SLOW}),
             triton.Config({"BLOCK_SIZE": 64, "SPIN": 0}),
             triton.Config({"BLOCK_SIZE": 128, "SPIN": SLOW})]
  kernel = triton.autotune(configs, key=["n_elements"])(add_inplace_x_kernel)
  x = jnp.arange(1000, dtype=jnp.float32)
  y = jnp.full((1000,), 0.5, jnp.float32)
  expected = np.asarray(x) + np.asarray(y)

  def f(x, y):
    with warnings.catch_warnings():
      warnings.simplefilter("ignore", DeprecationWarning)
      return jt.triton_call(x, y, x.size, kernel=kernel, out_type=x,
                            grid=lambda meta: triton.cdiv(1000, meta["BLOCK_SIZE"]),
                            input_output_aliases={0: 0})

  f = jax.jit(f, donate_argnums=0) if donate else jax.jit(f)
  for _ in range(2):
    out = f(jnp.array(x), y)
    np.testing.assert_array_equal(np.asarray(out), expected)
  np.testing.assert_array_equal(np.asarray(x), np.arange(1000, dtype=np.float32))


def test_autotune_zeroed_outputs_per_config():
  """A config's zeroed_outputs are zeroed before each of its trials and before the final run."""

  @triton.jit
  def accumulate_kernel(x_ptr, acc_ptr, n, BLOCK: tl.constexpr, SPIN: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offsets < n
    x = tl.load(x_ptr + offsets, mask=mask)
    tl.atomic_add(acc_ptr + offsets, x + _busy(x, SPIN), mask=mask)

  configs = [triton.Config({"BLOCK": 64, "SPIN": SLOW}), triton.Config({"BLOCK": 128, "SPIN": 0})]
  kernel = triton.autotune(configs, key=["n"])(accumulate_kernel)
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    out = jax.jit(lambda x: jt.triton_call(x, n=x.size, kernel=kernel, out_type=x,
                                           grid=_grid(x.size), zeroed_outputs=(0,)))(X)
  np.testing.assert_array_equal(np.asarray(out), np.asarray(X))


def _lowered(f, *args):
  (line,) = [l for l in jax.jit(f).lower(*args).as_text().splitlines()
             if "@triton_cpu_kernel_call" in l]
  return line


def test_autotune_num_cpu_threads_is_a_config_option():
  configs = [triton.Config({"BLOCK_SIZE": 64, "num_cpu_threads": 1}),
             triton.Config({"BLOCK_SIZE": 64, "num_cpu_threads": 2})]
  base = triton.jit(add_kernel.fn)
  kernel = triton.autotune(configs, key=["n_elements"])(base)
  x = jnp.arange(1000, dtype=jnp.float32)

  def f(x):
    return jt.triton_call(x, x, x.size, kernel=kernel, out_type=x,
                          grid=lambda meta: triton.cdiv(1000, meta["BLOCK_SIZE"]))

  line = _lowered(f, x)
  assert "num_configs = 2 : i32" in line
  assert "num_threads = 1 : i32" in line and "num_threads_1 = 2 : i32" in line
  # A launch setting, not a metaparam: one library serves both configs.
  assert len(jttl.TritonFunction(base)._kernel_cache) == 1
  np.testing.assert_array_equal(np.asarray(jax.jit(f)(x)), 2 * np.asarray(x))
  with pytest.raises(ValueError, match="num_cpu_threads must be >= 0"):
    bad = triton.autotune([triton.Config({"BLOCK_SIZE": 64, "num_cpu_threads": -1})],
                          key=[])(base)
    jax.jit(lambda x: jt.triton_call(x, x, x.size, kernel=bad, out_type=x, grid=16)).lower(x)


def test_autotune_configs_with_empty_grids_are_not_candidates():
  configs = [triton.Config({"BLOCK_SIZE": 2048}), triton.Config({"BLOCK_SIZE": 64})]
  kernel = triton.autotune(configs, key=["n_elements"])(add_kernel)
  x = jnp.arange(1000, dtype=jnp.float32)

  def f(x):
    # BLOCK_SIZE 2048 gets no programs: floor division, as a user might write it.
    return jt.triton_call(x, x, x.size, kernel=kernel, out_type=x,
                          grid=lambda meta: 1024 // meta["BLOCK_SIZE"])

  line = _lowered(f, x)
  assert "num_configs" not in line and "grid = dense<[16, 1, 1]>" in line
  np.testing.assert_array_equal(np.asarray(jax.jit(f)(x)), 2 * np.asarray(x))


# ------------------------------------------------------------------------------------------------
# Concurrency: Python threads, host devices
# ------------------------------------------------------------------------------------------------


def _add(x, y, **kwargs):
  return jt.triton_call(x, y, x.size, kernel=add_kernel, out_type=jax.typeof(x),
                        grid=lambda meta: triton.cdiv(x.size, meta["BLOCK_SIZE"]),
                        BLOCK_SIZE=128, **kwargs)


def test_threads_call_jitted_kernels_at_once():
  add = jax.jit(_add)
  kernel = triton.autotune(_configs(1), key=["n"])(tagged_inc_kernel)
  inc = jax.jit(lambda x: _tagged_inc_in_place(kernel, x))
  num_threads = 8
  start = threading.Barrier(num_threads)

  def work(i):
    # Half the threads share shapes (one executable), the others have their own.
    n = 3000 if i % 2 else 3000 + 64 * i
    rng = np.random.default_rng(i)
    x = rng.standard_normal(n).astype(np.float32)
    y = rng.standard_normal(n).astype(np.float32)
    start.wait()
    for _ in range(5):
      np.testing.assert_array_equal(np.asarray(add(x, y)), x + y)
      out, tag = inc(x)
      np.testing.assert_array_equal(np.asarray(out), x + 1)
      assert tag.tolist() == [1]
    return i

  with concurrent.futures.ThreadPoolExecutor(num_threads) as pool:
    assert sorted(pool.map(work, range(num_threads))) == list(range(num_threads))


TWO_DEVICES_CHILD = """
import jax, jax.numpy as jnp, numpy as np, triton, triton.language as tl
from jax.sharding import NamedSharding, PartitionSpec as P
import jax_triton_cpu as jt
from jax_triton_cpu import _runtime
from test_parity import _add, _configs, _tagged_inc_in_place, tagged_inc_kernel

assert jax.local_device_count() == 2, jax.devices()
x = jnp.arange(2 * 1000, dtype=jnp.float32).reshape(2, 1000)
y = jnp.full((2, 1000), 0.25, jnp.float32)
for _ in range(2):
  np.testing.assert_array_equal(np.asarray(jax.pmap(_add)(x, y)), np.asarray(x + y))

mesh = jax.make_mesh((2,), ("x",))
sharded = lambda a: jax.device_put(a.reshape(-1), NamedSharding(mesh, P("x")))
f = jax.jit(jax.shard_map(_add, mesh=mesh, in_specs=P("x"), out_specs=P("x")))
out = f(sharded(x), sharded(y))
assert len(out.addressable_shards) == 2
np.testing.assert_array_equal(np.asarray(out), np.asarray(x + y).reshape(-1))

# An autotuned in-place kernel; XLA shares one state between the devices of a pmap, so both
# devices' first executions meet at the tuning lock: one tunes, the other waits for its choice.
kernel = triton.autotune(_configs(2), key=["n"])(tagged_inc_kernel)
runs = _runtime.counters()["autotune_runs"]
out, tag = jax.pmap(lambda a: _tagged_inc_in_place(kernel, a))(x)
np.testing.assert_array_equal(np.asarray(out), np.asarray(x) + 1)
assert np.asarray(tag).tolist() == [[2], [2]]
print("autotune_runs", _runtime.counters()["autotune_runs"] - runs)
"""


def test_two_host_devices_pmap_and_shard_map(tmp_path):
  script = tmp_path / "child.py"
  script.write_text(TWO_DEVICES_CHILD)
  env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
         "PYTHONPATH": os.pathsep.join([os.path.dirname(__file__),
                                        os.environ.get("PYTHONPATH", "")])}
  proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                        timeout=600, env=env)
  assert proc.returncode == 0, proc.stderr
  assert proc.stdout.split()[-2] == "autotune_runs"
  assert 1 <= int(proc.stdout.split()[-1]) <= 2  # once per call site state


# ------------------------------------------------------------------------------------------------
# has_side_effect under XLA; IR dumps of real compiles
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("side_effect", [False, True])
def test_has_side_effect_keeps_an_unused_call(side_effect):
  x = jnp.arange(256, dtype=jnp.float32)

  def f(x):
    _add(x, x, has_side_effect=side_effect)  # result unused
    return x * 2

  compiled = jax.jit(f).lower(x).compile()
  assert ("triton_cpu_kernel_call" in compiled.as_text()) == side_effect
  before = _runtime.counters()["execute_calls"]
  np.testing.assert_array_equal(np.asarray(compiled(x)), 2 * np.asarray(x))
  assert _runtime.counters()["execute_calls"] - before == int(side_effect)


def _check_dump(directory, kernel_name):
  (d,) = [p for p in directory.iterdir() if p.name.startswith(kernel_name + "_")]
  ttir = (d / f"{kernel_name}.ttir").read_text()
  llvm_ir = (d / f"{kernel_name}.ll").read_text()
  asm = (d / f"{kernel_name}.s").read_text()
  assert f"tt.func public @{kernel_name}" in ttir
  assert "define" in llvm_ir and f"{kernel_name}_launch" in llvm_ir
  assert f"{kernel_name}_launch:" in asm
  assert "library:" in (d / "config.txt").read_text()


def test_dump_dir_env_writes_ttir_llvm_ir_and_assembly(tmp_path, monkeypatch):
  monkeypatch.setenv("JAX_TRITON_CPU_DUMP_DIR", str(tmp_path))

  @triton.jit
  def dumped_env_kernel(x_ptr, out_ptr):
    tl.store(out_ptr + tl.program_id(0), tl.load(x_ptr + tl.program_id(0)) * 3)

  x = jnp.arange(4, dtype=jnp.float32)
  out = jt.triton_call(x, kernel=dumped_env_kernel, out_type=x, grid=4)
  np.testing.assert_array_equal(np.asarray(out), 3 * np.arange(4, dtype=np.float32))
  _check_dump(tmp_path, "dumped_env_kernel")


def test_debug_true_writes_the_dump(tmp_path, monkeypatch, capfd):
  monkeypatch.delenv("JAX_TRITON_CPU_DUMP_DIR", raising=False)
  monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

  @triton.jit
  def dumped_debug_kernel(x_ptr, out_ptr):
    tl.store(out_ptr + tl.program_id(0), tl.load(x_ptr + tl.program_id(0)) + 5)

  x = jnp.arange(4, dtype=jnp.float32)
  out = jt.triton_call(x, kernel=dumped_debug_kernel, out_type=x, grid=4, debug=True)
  np.testing.assert_array_equal(np.asarray(out), np.arange(4, dtype=np.float32) + 5)
  _check_dump(tmp_path / "jax_triton_cpu_dump", "dumped_debug_kernel")
  assert "wrote the IR of kernel 'dumped_debug_kernel'" in capfd.readouterr().err
