"""The Triton backend `cpu` (python/jax_triton_cpu_backend): `kernel[grid](...)` without JAX.

In-process tests make the CPU driver triton's active driver (the entry point may not be installed
where the tests run from a source tree); the discovery tests run triton in subprocesses with a
distribution that declares the entry point, as `pip install .` does.
"""
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import triton
import triton.language as tl
from triton.backends import Backend, backends

from jax_triton_cpu_backend import compiler as cpu_compiler
from jax_triton_cpu_backend import driver as cpu_driver
from jax_triton_cpu_backend import from_numpy

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Where the packages under test are (site-packages after pip install, or a source tree with the
# extension built in place): subprocesses import the same ones.
PACKAGES = os.path.dirname(os.path.dirname(os.path.abspath(cpu_driver.__file__)))


def _active_gpu_driver() -> str | None:
  """The class name of triton's own GPU driver where it finds a GPU (the device machine: CUDA),
  else None. There, triton keeps that driver, and subprocesses choose the CPU with set_active."""
  for name, backend in backends.items():
    if name != "cpu":
      try:
        if backend.driver.is_active():
          return backend.driver.__name__
      except Exception:  # pylint: disable=broad-except  (a driver without its runtime)
        pass
  return None


GPU_DRIVER = _active_gpu_driver()
# What subprocesses that launch kernels run first: on a GPU machine triton keeps its GPU driver.
ON_CPU = """
import triton
from jax_triton_cpu_backend.driver import CPUDriver
if not isinstance(triton.runtime.driver.active, CPUDriver):
  triton.runtime.driver.set_active(CPUDriver())
"""


@pytest.fixture(scope="module", autouse=True)
def cpu_backend():
  added = "cpu" not in backends
  if added:
    backends["cpu"] = Backend(cpu_compiler.CPUBackend, cpu_driver.CPUDriver)
  previous = triton.runtime.driver._active
  triton.runtime.driver.set_active(cpu_driver.CPUDriver())
  yield
  triton.runtime.driver._active = previous
  if added:
    del backends["cpu"]


@triton.jit
def add_kernel(x_ptr, y_ptr, out_ptr, n, BLOCK: tl.constexpr):
  offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
  mask = offsets < n
  tl.store(out_ptr + offsets, tl.load(x_ptr + offsets, mask=mask) + tl.load(y_ptr + offsets, mask=mask),
           mask=mask)


def test_numpy_arrays_through_from_numpy():
  n = 100_003
  x = np.random.default_rng(0).standard_normal(n).astype(np.float32)
  y = np.random.default_rng(1).standard_normal(n).astype(np.float32)
  out = np.zeros_like(x)
  k = add_kernel[(triton.cdiv(n, 1024),)](from_numpy(x), from_numpy(y), from_numpy(out), n, BLOCK=1024)
  np.testing.assert_array_equal(out, x + y)
  assert k.metadata.target.backend == "cpu"
  assert {"ttir", "llir", cpu_compiler.BINARY_EXT} <= set(k.asm)


def test_raw_numpy_array_is_rejected_by_triton_with_its_type():
  x = np.zeros(16, np.float32)
  with pytest.raises(Exception, match="ndarray"):
    add_kernel[(1,)](x, x, x, 16, BLOCK=16)


@triton.jit
def grid_kernel(out_ptr):
  x, y, z = tl.program_id(0), tl.program_id(1), tl.program_id(2)
  nx, ny = tl.num_programs(0), tl.num_programs(1)
  flat = x + nx * (y + ny * z)
  tl.store(out_ptr + flat, flat * 1000 + tl.num_programs(2))


@pytest.mark.parametrize("grid", [(1,), (7,), (3, 5), (2, 3, 4), (300, 1, 2)])
def test_grids(grid):
  count = int(np.prod(grid))
  out = np.full(count, -1, np.int32)
  grid_kernel[grid](from_numpy(out))
  z = grid[2] if len(grid) > 2 else 1
  np.testing.assert_array_equal(out, np.arange(count) * 1000 + z)


def test_grid_from_metaparameters_and_empty_grid():
  n = 5000
  x = np.arange(n, dtype=np.float32)
  out = np.zeros_like(x)
  add_kernel[lambda meta: (triton.cdiv(n, meta["BLOCK"]),)](from_numpy(x), from_numpy(x), from_numpy(out), n,
                                                             BLOCK=256)
  np.testing.assert_array_equal(out, 2 * x)
  out[:] = -1
  add_kernel[(0,)](from_numpy(x), from_numpy(x), from_numpy(out), n, BLOCK=256)  # runs nothing
  assert (out == -1).all()


@triton.jit
def scalars_kernel(ints, floats, b, i, big, huge, neg, i8: tl.int8, u32: tl.uint32, f, h: tl.float16,
                   bh: tl.bfloat16, d: tl.float64):
  tl.store(ints + 0, b.to(tl.int64))
  tl.store(ints + 1, i.to(tl.int64))
  tl.store(ints + 2, big)
  tl.store(ints + 3, huge.to(tl.int64, bitcast=True))
  tl.store(ints + 4, neg.to(tl.int64))
  tl.store(ints + 5, i8.to(tl.int64))
  tl.store(ints + 6, u32.to(tl.int64))
  tl.store(floats + 0, f.to(tl.float64))
  tl.store(floats + 1, h.to(tl.float64))
  tl.store(floats + 2, bh.to(tl.float64))
  tl.store(floats + 3, d)


def test_scalars_of_every_kind():
  ints, floats = np.zeros(7, np.int64), np.zeros(4, np.float64)
  k = scalars_kernel[(1,)](from_numpy(ints), from_numpy(floats), True, 123456, 2**40 + 3, 2**63 + 5, -77,
                           -100, 4_000_000_000, 1.5, -2.25, 3.5, 2.0**-30)
  assert list(ints) == [1, 123456, 2**40 + 3, 2**63 + 5 - 2**64, -77, -100, 4_000_000_000]
  assert list(floats) == [1.5, -2.25, 3.5, 2.0**-30]
  types = dict(zip(k.src.fn.arg_names, k.src.signature.values()))
  assert [types[n] for n in ("b", "i", "big", "huge", "neg", "f")] == ["u1", "i32", "i64", "u64", "i32", "fp32"]


@triton.jit
def tuple_kernel(out_ptr, pair, nested, SCALE: tl.constexpr):
  tl.store(out_ptr + 0, pair[0] * SCALE)
  tl.store(out_ptr + 1, pair[1] * SCALE)
  tl.store(out_ptr + 2, nested[0] + nested[1][0] + nested[1][1])


def test_tuples_constexprs_and_none():
  out = np.zeros(3, np.float32)
  tuple_kernel[(1,)](from_numpy(out), (2.0, 3.0), (1, (10, 100)), SCALE=2)
  np.testing.assert_array_equal(out, [4, 6, 111])


@triton.jit
def optional_kernel(out_ptr, bias_ptr, n, BLOCK: tl.constexpr):
  offsets = tl.arange(0, BLOCK)
  value = offsets.to(tl.float32)
  if bias_ptr is not None:
    value += tl.load(bias_ptr + offsets)
  tl.store(out_ptr + offsets, value, mask=offsets < n)


def test_none_pointer_argument_is_a_constexpr():
  out, bias = np.zeros(8, np.float32), np.full(8, 0.5, np.float32)
  optional_kernel[(1,)](from_numpy(out), None, 8, BLOCK=8)
  np.testing.assert_array_equal(out, np.arange(8))
  optional_kernel[(1,)](from_numpy(out), from_numpy(bias), 8, BLOCK=8)
  np.testing.assert_array_equal(out, np.arange(8) + 0.5)


@triton.jit
def descriptor_kernel(in_desc, out_ptr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
  block = in_desc.load([tl.program_id(0) * BLOCK_M, 0])
  rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)[:, None]
  tl.store(out_ptr + rows * BLOCK_N + tl.arange(0, BLOCK_N)[None, :], block * 2)


def test_host_tensor_descriptor():
  from triton.tools.tensor_descriptor import TensorDescriptor
  x = np.arange(64 * 16, dtype=np.float32).reshape(64, 16)
  out = np.zeros_like(x)
  desc = TensorDescriptor(from_numpy(x), list(x.shape), [16, 1], [16, 16])
  descriptor_kernel[(4,)](desc, from_numpy(out), BLOCK_M=16, BLOCK_N=16)
  np.testing.assert_array_equal(out, 2 * x)


@triton.jit
def scaled_dot_kernel(a_ptr, a_scale_ptr, b_ptr, b_scale_ptr, out_ptr, M: tl.constexpr, N: tl.constexpr,
                      K: tl.constexpr, A_TYPE: tl.constexpr, B_TYPE: tl.constexpr):
  KA: tl.constexpr = K // 2 if A_TYPE == "e2m1" else K
  a = tl.load(a_ptr + tl.arange(0, M)[:, None] * KA + tl.arange(0, KA)[None, :])
  b = tl.load(b_ptr + tl.arange(0, K)[:, None] * N + tl.arange(0, N)[None, :])
  a_scale = tl.load(a_scale_ptr + tl.arange(0, M)[:, None] * (K // 32) + tl.arange(0, K // 32)[None, :])
  b_scale = None
  if b_scale_ptr is not None:
    b_scale = tl.load(b_scale_ptr + tl.arange(0, N)[:, None] * (K // 32) + tl.arange(0, K // 32)[None, :])
  c = tl.dot_scaled(a, a_scale, A_TYPE, b, b_scale, B_TYPE)
  tl.store(out_ptr + tl.arange(0, M)[:, None] * N + tl.arange(0, N)[None, :], c)


_E2M1 = np.array([0, .5, 1, 1.5, 2, 3, 4, 6, -0., -.5, -1, -1.5, -2, -3, -4, -6], np.float32)


@pytest.mark.parametrize("a_type, b_type", [("e2m1", "bf16"), ("e4m3", "e5m2")])
def test_dot_scaled(a_type, b_type):
  import ml_dtypes
  M, N, K = 16, 32, 64
  rng = np.random.default_rng(7)
  a_scale = rng.integers(120, 134, (M, K // 32)).astype(np.uint8)
  if a_type == "e2m1":  # two fp4 codes a byte along K, the lower nibble first
    codes = rng.integers(0, 16, (M, K)).astype(np.uint8)
    a = (codes[:, 0::2] | (codes[:, 1::2] << 4)).astype(np.uint8)
    a_values = _E2M1[codes]
    b = rng.standard_normal((K, N)).astype(ml_dtypes.bfloat16)
    b_values, b_scale = b.astype(np.float32), None
  else:
    a = rng.standard_normal((M, K)).astype(ml_dtypes.float8_e4m3fn).view(np.uint8)
    a_values = a.view(ml_dtypes.float8_e4m3fn).astype(np.float32)
    b = rng.standard_normal((K, N)).astype(ml_dtypes.float8_e5m2).view(np.uint8)
    b_scale = rng.integers(124, 130, (N, K // 32)).astype(np.uint8)
    b_values = b.view(ml_dtypes.float8_e5m2).astype(np.float32) * \
        np.exp2(np.repeat(b_scale.T.astype(np.float32) - 127, 32, axis=0))
  a_values = a_values * np.exp2(np.repeat(a_scale.astype(np.float32) - 127, 32, axis=1))
  out = np.zeros((M, N), np.float32)
  scaled_dot_kernel[(1,)](from_numpy(a), from_numpy(a_scale), from_numpy(b),
                          None if b_scale is None else from_numpy(b_scale), from_numpy(out), M, N, K,
                          a_type, b_type)
  np.testing.assert_allclose(out, a_values.astype(np.float64) @ b_values.astype(np.float64),
                             rtol=1e-5, atol=1e-5)


@triton.autotune(configs=[triton.Config({"BLOCK": 64}), triton.Config({"BLOCK": 512}),
                          triton.Config({"BLOCK": 256, "num_cpu_threads": 1})],
                 key=["n"])
@triton.jit
def tuned_add(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
  offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
  mask = offsets < n
  tl.store(out_ptr + offsets, tl.load(x_ptr + offsets, mask=mask) + 1, mask=mask)


def test_autotune_picks_a_config_and_computes():
  n = 10_000
  x = np.arange(n, dtype=np.float32)
  out = np.zeros_like(x)
  tuned_add[lambda meta: (triton.cdiv(n, meta["BLOCK"]),)](from_numpy(x), from_numpy(out), n)
  np.testing.assert_array_equal(out, x + 1)
  assert tuned_add.best_config.kwargs["BLOCK"] in (64, 256, 512)
  assert len(tuned_add.configs_timings) == 3 and all(t[0] > 0 for t in tuned_add.configs_timings.values())


@triton.heuristics({"BLOCK": lambda args: triton.next_power_of_2(args["n"])})
@triton.jit
def heuristic_fill(out_ptr, n, BLOCK: tl.constexpr):
  offsets = tl.arange(0, BLOCK)
  tl.store(out_ptr + offsets, offsets + BLOCK * 0, mask=offsets < n)


def test_heuristics():
  out = np.zeros(37, np.int32)
  k = heuristic_fill[(1,)](from_numpy(out), 37)
  np.testing.assert_array_equal(out, np.arange(37))
  assert k.src.constants[(2,)] == 64


def test_do_bench_times_a_launch():
  n = 1 << 16
  x = np.ones(n, np.float32)
  args = (from_numpy(x), from_numpy(x), from_numpy(np.empty_like(x)), n)
  ms = triton.testing.do_bench(lambda: add_kernel[(triton.cdiv(n, 1024),)](*args, BLOCK=1024), warmup=2, rep=10)
  assert 0 < ms < 1000


def test_num_cpu_threads_option_and_its_check():
  n = 1 << 20
  x = np.arange(n, dtype=np.float32)
  out = np.zeros_like(x)
  k = add_kernel[(n // 1024,)](from_numpy(x), from_numpy(x), from_numpy(out), n, BLOCK=1024, num_cpu_threads=1)
  np.testing.assert_array_equal(out, 2 * x)
  assert k.metadata.num_cpu_threads == 1
  with pytest.raises(ValueError, match="num_cpu_threads"):
    add_kernel[(1,)](from_numpy(x), from_numpy(x), from_numpy(out), n, BLOCK=1024, num_cpu_threads=-1)


@triton.jit
def assert_kernel(x_ptr):
  v = tl.load(x_ptr + tl.arange(0, 4))
  tl.device_assert(v > 0, "v must be positive")


def test_device_assert_raises_with_its_message():
  with pytest.raises(RuntimeError, match="v must be positive"):
    assert_kernel[(1,)](from_numpy(np.array([1.0, -1.0, 1.0, 1.0], np.float32)), debug=True)
  assert_kernel[(1,)](from_numpy(np.ones(4, np.float32)), debug=True)  # the next launch works


class _OnAnotherDevice:
  dtype = np.dtype(np.float32)

  class device:
    type = "cuda"

  def data_ptr(self):
    return 0


def test_tensor_on_another_device_is_an_error():
  x = np.zeros(16, np.float32)
  with pytest.raises(ValueError, match="host memory"):
    add_kernel[(1,)](_OnAnotherDevice(), from_numpy(x), from_numpy(x), 16, BLOCK=16)


def _run(code: str, env_extra=None, dist_info=None, tmp_path=None, prelude: str = ""):
  """Runs `prelude` and `code` in a fresh Python; `dist_info` maps distribution name ->
  entry_points.txt text, written as installed distributions on sys.path (what pip install does)."""
  env = dict(os.environ)
  env.pop("TRITON_DEFAULT_BACKEND", None)
  env.update(env_extra or {})
  paths = [PACKAGES]
  for name, entry_points in (dist_info or {}).items():
    site = tmp_path / name
    info = site / f"{name}-0.0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.0\n")
    (info / "entry_points.txt").write_text(entry_points)
    paths.append(str(site))
  env["PYTHONPATH"] = os.pathsep.join(paths + [env.get("PYTHONPATH", "")])
  script = tmp_path / "script.py"  # a file: triton.jit reads a kernel's source from it
  script.write_text(prelude + textwrap.dedent(code))
  return subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True,
                        timeout=300, cwd=str(tmp_path))


def _declared_entry_point() -> str:
  """The triton.backends entry point that pyproject.toml declares, as entry_points.txt text."""
  with open(os.path.join(ROOT, "pyproject.toml")) as f:
    text = f.read()
  section = re.search(r'\[project\.entry-points\."triton\.backends"\]\n((?:[^\[\n].*\n)+)', text)
  assert section, "pyproject.toml declares no triton.backends entry point"
  return "[triton.backends]\n" + section.group(1).replace('"', "")


_FAKE_GPU = """
from triton.backends.compiler import BaseBackend
from triton.backends.driver import DriverBase


class FakeBackend(BaseBackend):
  supports_target = staticmethod(lambda target: target.backend == "fake")
  hash = parse_options = add_stages = load_dialects = get_module_map = lambda *a: None


class FakeDriver(DriverBase):
  is_active = classmethod(lambda cls: True)  # a GPU machine: this driver finds its device
  map_python_to_cpp_type = get_current_target = get_active_torch_device = get_benchmarker = \\
      lambda *a: None
"""


def test_entry_point_makes_cpu_the_active_driver_without_a_gpu(tmp_path):
  result = _run("""
      import numpy as np, triton, triton.language as tl
      from jax_triton_cpu_backend import from_numpy
      from jax_triton_cpu_backend.driver import CPUDriver
      assert "cpu" in triton.backends.backends, triton.backends.backends
      print(type(triton.runtime.driver.active).__name__)
      if not isinstance(triton.runtime.driver.active, CPUDriver):  # a GPU machine
        triton.runtime.driver.set_active(CPUDriver())

      @triton.jit
      def double(x_ptr, BLOCK: tl.constexpr):
        offs = tl.arange(0, BLOCK)
        tl.store(x_ptr + offs, tl.load(x_ptr + offs) * 2)

      x = np.arange(8, dtype=np.float32)
      double[(1,)](from_numpy(x), BLOCK=8)
      print(x.tolist())
      """, dist_info={"jax_triton_cpu_ep": _declared_entry_point()}, tmp_path=tmp_path)
  assert result.returncode == 0, result.stderr
  assert result.stdout.split("\n", 1) == [GPU_DRIVER or "CPUDriver",
                                          str([float(2 * i) for i in range(8)]) + "\n"]


def test_importing_triton_keeps_another_active_driver(tmp_path):
  (tmp_path / "fake_gpu").mkdir()
  (tmp_path / "fake_gpu" / "__init__.py").write_text("")
  (tmp_path / "fake_gpu" / "compiler.py").write_text(_FAKE_GPU)
  (tmp_path / "fake_gpu" / "driver.py").write_text(_FAKE_GPU)
  dists = {"jax_triton_cpu_ep": _declared_entry_point()}
  if GPU_DRIVER is None:  # a GPU machine has its own: two active GPU drivers would be an error
    dists["fake_gpu_ep"] = "[triton.backends]\nfake = fake_gpu\n"
  gpu = GPU_DRIVER or "FakeDriver"
  code = """
      import sys
      sys.path.insert(0, ".")
      import triton
      from jax_triton_cpu_backend.driver import CPUDriver
      print(type(triton.runtime.driver.active).__name__, CPUDriver.is_active())
      print("jax" in sys.modules)  # a GPU user's `import triton` must not load jax
      """
  result = _run(code, dist_info=dists, tmp_path=tmp_path)
  assert result.returncode == 0, result.stderr
  assert result.stdout.split() == [gpu, "False", "False"]
  asked = _run(code, env_extra={"TRITON_DEFAULT_BACKEND": "cpu"}, dist_info=dists, tmp_path=tmp_path)
  assert asked.returncode == 0, asked.stderr
  if cpu_driver.honours_default_backend():
    assert asked.stdout.split() == ["CPUDriver", "True", "False"]
  else:  # triton 3.6 has no TRITON_DEFAULT_BACKEND: the variable must change nothing
    assert asked.stdout.split() == [gpu, "False", "False"]
  chosen = _run("""
      import sys
      sys.path.insert(0, ".")
      import triton
      from jax_triton_cpu_backend.driver import CPUDriver
      triton.runtime.driver.set_active(CPUDriver())
      print(type(triton.runtime.driver.active).__name__)
      """, dist_info=dists, tmp_path=tmp_path)
  assert chosen.returncode == 0, chosen.stderr
  assert chosen.stdout.split() == ["CPUDriver"]


def test_backend_and_jax_path_take_the_same_fp8_types():
  from jax_triton_cpu.compiler import frontend
  assert cpu_compiler.CPUBackendOptions().supported_fp8_dtypes == frontend.SUPPORTED_FP8


def test_compiled_kernels_are_kept_apart_from_a_gpus():
  """triton's JIT caches compiled kernels per device key; a GPU driver's keys are its device
  indices (0, 1, ...), so the CPU's key must be none of them (found on a CUDA machine: after
  set_active(CPUDriver()), a kernel compiled for GPU 0 was launched on host tensors)."""
  x = np.zeros(16, np.float32)
  add_kernel[(1,)](from_numpy(x), from_numpy(x), from_numpy(x), 16, BLOCK=16)
  keys = [k for k, v in add_kernel.device_caches.items() if v[0]]
  assert keys and not any(isinstance(k, int) for k in keys), keys


def test_jax_paths_work_when_triton_was_imported_first(tmp_path):
  """triton imports our backend first; importing jax_triton_cpu later still registers the FFI
  handler and Pallas's CPU lowering."""
  result = _run("""
      import triton, triton.language as tl
      import jax, jax.numpy as jnp, numpy as np
      from jax.experimental import pallas as pl
      import jax_triton_cpu

      @triton.jit
      def add_one(x_ptr, out_ptr, BLOCK: tl.constexpr):
        offs = tl.arange(0, BLOCK)
        tl.store(out_ptr + offs, tl.load(x_ptr + offs) + 1)

      x = jnp.arange(8, dtype=jnp.float32)
      out = jax_triton_cpu.triton_call(x, kernel=add_one, grid=(1,),
                                       out_shape=jax.ShapeDtypeStruct(x.shape, x.dtype), BLOCK=8)

      def double(x_ref, o_ref):
        o_ref[...] = x_ref[...] * 2

      doubled = jax.jit(pl.pallas_call(double, out_shape=jax.ShapeDtypeStruct(x.shape, x.dtype)))
      print(np.asarray(out).tolist() == list(range(1, 9)),
            np.asarray(doubled(x)).tolist() == [2.0 * i for i in range(8)])
      """, dist_info={"jax_triton_cpu_ep": _declared_entry_point()}, tmp_path=tmp_path,
                prelude=ON_CPU)
  assert result.returncode == 0, result.stderr
  assert result.stdout.split() == ["True", "True"]


def test_out_of_bounds_access_is_an_error_not_a_crash(tmp_path):
  result = _run("""
      import numpy as np, triton, triton.language as tl
      from jax_triton_cpu_backend import from_numpy

      @triton.jit
      def wild(x_ptr, offset):
        tl.store(x_ptr + offset, 1.0)

      x = np.zeros(4, np.float32)
      try:
        wild[(1,)](from_numpy(x), 1 << 40)
      except RuntimeError as e:
        print("error:", e)
      wild[(1,)](from_numpy(x), 2)
      print(x.tolist())
      """, dist_info={"jax_triton_cpu_ep": _declared_entry_point()}, tmp_path=tmp_path,
                prelude=ON_CPU,
                env_extra={"JAX_TRITON_CPU_BOUNDS_CHECK": "0"})  # the fault guard, not checked mode
  assert result.returncode == 0, result.stderr
  assert "kernel wild faulted: SIGSEGV" in result.stdout
  assert result.stdout.strip().endswith("[0.0, 0.0, 1.0, 0.0]")


@triton.jit
def store_at_kernel(x_ptr, offset):
  tl.store(x_ptr + offset + tl.arange(0, 4), 1.0)


def test_checked_mode_names_an_out_of_bounds_store():
  """bounds_check=True (or JAX_TRITON_CPU_BOUNDS_CHECK=1): an access past its tensor's extent is
  an error before it happens, naming kernel and source line; in range, the kernel runs."""
  x = np.zeros(8, np.float32)
  with pytest.raises(RuntimeError, match=r"store_at_kernel.*test_triton_backend.py:\d+"):
    store_at_kernel[(1,)](from_numpy(x), 6, bounds_check=True)
  assert not x.any()
  store_at_kernel[(1,)](from_numpy(x), 4, bounds_check=True)
  np.testing.assert_array_equal(x, [0, 0, 0, 0, 1, 1, 1, 1])


def test_torch_cpu_tensors():
  torch = pytest.importorskip("torch")  # the only test that needs torch
  x, y = torch.rand(3000), torch.rand(3000)
  out = torch.empty_like(x)
  add_kernel[(3,)](x, y, out, 3000, BLOCK=1024)
  assert torch.equal(out, x + y)
  a = torch.arange(16, dtype=torch.float32)
  add_kernel[(1,)](a[8:], a[8:], out, 8, BLOCK=8)  # a view: its own data_ptr
  assert torch.equal(out[:8], 2 * a[8:])
  # checked mode bounds a tensor by the end of its storage
  store_at_kernel[(1,)](a[8:], 4, bounds_check=True)
  assert torch.equal(a[12:], torch.ones(4))
  with pytest.raises(RuntimeError, match="store_at_kernel"):
    store_at_kernel[(1,)](a[8:], 5, bounds_check=True)
