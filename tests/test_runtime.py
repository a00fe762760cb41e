"""The native custom call through jax.jit, with a C kernel library built here.

Only jax_triton_cpu._runtime is imported: these tests do not need the compiler.
"""
import hashlib
import os
import re
import shutil
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jax_triton_cpu import _runtime as rt

# Kernels with triton-cpu's signature and hand-written trampolines (docs/abi.md).
KERNELS_C = r"""
#include <stdint.h>
#define BLOCK 32
#define TRAMPOLINE_LOOP(call)                                           \
  for (uint64_t i = first; i < last; ++i) {                              \
    int32_t px = i % gx, py = i / gx % gy, pz = i / gx / gy;             \
    call;                                                                \
  }

void affine(const float* x, float a, float* out, int64_t n, double b,
            int32_t px, int32_t py, int32_t pz,
            uint32_t gx, uint32_t gy, uint32_t gz) {
  for (int64_t i = (int64_t)px * BLOCK; i < (int64_t)(px + 1) * BLOCK && i < n; ++i)
    out[i] = (float)(a * x[i] + b);
}
int32_t affine_launch(void* const* args, uint64_t first, uint64_t last,
                      uint32_t gx, uint32_t gy, uint32_t gz) {
  TRAMPOLINE_LOOP(affine(*(const float* const*)args[0], *(const float*)args[1],
                         *(float* const*)args[2], *(const int64_t*)args[3],
                         *(const double*)args[4], px, py, pz, gx, gy, gz));
  return 0;
}

void count(int32_t* total, int32_t px, int32_t py, int32_t pz,
           uint32_t gx, uint32_t gy, uint32_t gz) {
  __atomic_fetch_add(total, 1, __ATOMIC_RELAXED);
}
int32_t count_launch(void* const* args, uint64_t first, uint64_t last,
                     uint32_t gx, uint32_t gy, uint32_t gz) {
  TRAMPOLINE_LOOP(count(*(int32_t* const*)args[0], px, py, pz, gx, gy, gz));
  return 0;
}

void add_one(float* x, int64_t n, int32_t px, int32_t py, int32_t pz,
             uint32_t gx, uint32_t gy, uint32_t gz) {
  for (int64_t i = (int64_t)px * BLOCK; i < (int64_t)(px + 1) * BLOCK && i < n; ++i)
    x[i] += 1.0f;
}
int32_t add_one_launch(void* const* args, uint64_t first, uint64_t last,
                       uint32_t gx, uint32_t gy, uint32_t gz) {
  TRAMPOLINE_LOOP(add_one(*(float* const*)args[0], *(const int64_t*)args[1],
                          px, py, pz, gx, gy, gz));
  return 0;
}

int32_t fail_launch(void* const* args, uint64_t first, uint64_t last,
                    uint32_t gx, uint32_t gy, uint32_t gz) {
  return 3;
}
"""

BLOCK = 32


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
  cc = shutil.which("cc") or shutil.which("gcc")
  if cc is None:
    pytest.skip("no C compiler")
  d = tmp_path_factory.mktemp("kernels")
  src, so = d / "kernels.c", d / "libkernels.so"
  src.write_text(KERNELS_C)
  subprocess.run([cc, "-O2", "-shared", "-fPIC", "-o", str(so), str(src)],
                 check=True)
  return str(so), hashlib.sha256(so.read_bytes()).hexdigest()


def cdiv(a, b):
  return -(-a // b)


def affine(lib, x, a, b, **kw):
  """out = a * x + b, with scalars and buffers interleaved in arg_map."""
  n = x.shape[0]
  kw.setdefault("grid", (cdiv(n, BLOCK),))
  return rt.kernel_call(
      x, out_types=jax.ShapeDtypeStruct(x.shape, x.dtype),
      library=lib[0], library_hash=lib[1], symbol="affine_launch",
      kernel_name="affine", arg_map=[0, -1, 1, -2, -3],
      scalars=[rt.scalar_bits(a, np.float32), n, rt.scalar_bits(b, np.float64)],
      **kw)


@pytest.mark.parametrize("num_threads", [0, 1, 2])
def test_scalars_and_buffers_interleaved(lib, num_threads):
  x = jnp.arange(1000, dtype=jnp.float32)
  f = jax.jit(lambda x: affine(lib, x, 2.5, -1.25, num_threads=num_threads))
  np.testing.assert_allclose(f(x), 2.5 * np.arange(1000) - 1.25)


def test_register_is_idempotent(lib):
  rt.register()
  rt.register()
  y = jax.jit(lambda x: affine(lib, x, 1.0, 1.0))(jnp.zeros(8, jnp.float32))
  np.testing.assert_allclose(y, np.ones(8))


def test_extra_attributes_are_ignored(lib):
  x = jnp.ones(64, jnp.float32)
  y = jax.jit(lambda x: affine(lib, x, 2.0, 0.0, cost_estimate_json='{"flops": 1}'))(x)
  np.testing.assert_allclose(y, 2 * np.ones(64))


def test_zeroed_outputs(lib):
  def f():
    return rt.kernel_call(
        out_types=jax.ShapeDtypeStruct((1,), jnp.int32),
        library=lib[0], library_hash=lib[1], symbol="count_launch",
        kernel_name="count", grid=(5, 3, 2), arg_map=[0], scalars=[],
        zeroed_outputs=[0])
  assert int(jax.jit(f)()[0]) == 30


def add_one(lib, x):
  return rt.kernel_call(
      x, out_types=jax.ShapeDtypeStruct(x.shape, x.dtype),
      library=lib[0], library_hash=lib[1], symbol="add_one_launch",
      kernel_name="add_one", grid=(cdiv(x.shape[0], BLOCK),), arg_map=[0, -1],
      scalars=[x.shape[0]], input_output_aliases={0: 0})


def test_aliasing_with_donation_runs_in_place(lib):
  x = jnp.arange(100, dtype=jnp.float32) + 0  # a buffer of our own
  pointer = x.unsafe_buffer_pointer()
  y = jax.jit(lambda x: add_one(lib, x), donate_argnums=0)(x)
  np.testing.assert_allclose(y, np.arange(100) + 1)
  assert x.is_deleted()
  assert y.unsafe_buffer_pointer() == pointer


def test_aliasing_without_donation_keeps_input(lib):
  x = jnp.arange(100, dtype=jnp.float32)
  y = jax.jit(lambda x: add_one(lib, x))(x)
  np.testing.assert_allclose(y, np.arange(100) + 1)
  np.testing.assert_allclose(x, np.arange(100))


def test_library_loaded_once_and_instantiated_per_call_site(lib):
  x = jnp.ones(64, jnp.float32)
  jax.jit(lambda x: affine(lib, x, 1.0, 0.0))(x)  # `lib` is loaded by now
  before = rt.counters()
  f = jax.jit(lambda x: affine(lib, affine(lib, x, 2.0, 0.0), 3.0, 0.0))
  np.testing.assert_allclose(f(x), 6 * np.ones(64))
  f(x)
  after = rt.counters()
  assert after["instantiate_calls"] - before["instantiate_calls"] == 2
  assert after["execute_calls"] - before["execute_calls"] == 4
  assert after["dlopen_calls"] == before["dlopen_calls"]


def raises(message):
  return pytest.raises(jax.errors.JaxRuntimeError, match=re.escape(message))


def test_missing_symbol_raises(lib):
  def f(x):
    return rt.kernel_call(
        x, out_types=jax.ShapeDtypeStruct(x.shape, x.dtype),
        library=lib[0], library_hash=lib[1], symbol="nope_launch",
        kernel_name="nope", grid=(1,), arg_map=[0, 1], scalars=[])
  with raises(f"kernel nope: symbol 'nope_launch' not found in kernel library {lib[0]}"):
    jax.jit(f)(jnp.ones(4, jnp.float32))


def test_missing_library_raises(lib):
  with raises("cannot read kernel library /nonexistent/lib.so"):
    jax.jit(lambda x: affine(("/nonexistent/lib.so", "x"), x, 1.0, 0.0))(
        jnp.ones(4, jnp.float32))


@pytest.mark.parametrize("grid, message", [
    ((0,), "grid[0] = 0 is out of range [1, 2^31)"),
    ((4, -2), "grid[1] = -2 is out of range [1, 2^31)"),
    ((1, 1, 2**31), "grid[2] = 2147483648 is out of range [1, 2^31)"),
    ((2**31 - 1, 2**31 - 1, 4), "grid (2147483647, 2147483647, 4) has 2^63 or more programs"),
    ((1, 1, 1, 1), "grid must have 3 entries, got 4"),
])
def test_bad_grid_raises(lib, grid, message):
  with raises("kernel affine: " + message):
    jax.jit(lambda x: affine(lib, x, 1.0, 0.0, grid=grid))(jnp.ones(4, jnp.float32))


def test_kernel_status_raises(lib):
  def f():
    return rt.kernel_call(
        out_types=jax.ShapeDtypeStruct((1,), jnp.int32), library=lib[0],
        library_hash=lib[1], symbol="fail_launch", kernel_name="fail",
        grid=(4,), arg_map=[], scalars=[], has_side_effect=True)
  with raises("kernel fail failed with status 3"):
    jax.block_until_ready(jax.jit(f)())


def test_scalar_bits():
  assert rt.scalar_bits(1.0, np.float32) == 0x3F800000
  assert rt.scalar_bits(-1, np.int32) == 0xFFFFFFFF  # zero-extended
  assert rt.scalar_bits(-1, np.int64) == -1
  assert rt.scalar_bits(1.0, np.float16) == 0x3C00
  assert rt.scalar_bits(True, np.bool_) == 1


def run_python(code, *args, **env):
  """Runs `code` in a fresh interpreter; returns its stdout."""
  proc = subprocess.run(
      [sys.executable, "-c", code, *args],
      capture_output=True, text=True, timeout=300,
      env={**os.environ, **env})
  assert proc.returncode == 0, proc.stderr
  return proc.stdout


AFFINE_IN_CHILD = """
import sys
import numpy as np
import jax, jax.numpy as jnp
from jax_triton_cpu import _runtime as rt
library, library_hash = sys.argv[1:3]
def affine(x):
  n = x.shape[0]
  return rt.kernel_call(
      x, out_types=jax.ShapeDtypeStruct(x.shape, x.dtype), library=library,
      library_hash=library_hash, symbol="affine_launch", kernel_name="affine",
      grid=(-(-n // 32),), arg_map=[0, -1, 1, -2, -3],
      scalars=[rt.scalar_bits(2, np.float32), n, rt.scalar_bits(1, np.float64)])
"""


def test_import_before_backend_initialization(lib):
  out = run_python(
      "import jax_triton_cpu._runtime  # before the CPU backend exists\n"
      + AFFINE_IN_CHILD + textwrap.dedent("""
      print(jax.devices())
      x = jnp.arange(100, dtype=jnp.float32)
      np.testing.assert_allclose(jax.jit(affine)(x), 2 * np.arange(100) + 1)
      print("ok")
      """), *lib)
  assert out.strip().endswith("ok")


def test_shard_map_two_devices(lib):
  out = run_python(AFFINE_IN_CHILD + textwrap.dedent("""
      from jax.sharding import NamedSharding, PartitionSpec as P
      assert len(jax.devices()) == 2, jax.devices()
      mesh = jax.make_mesh((2,), ("x",))
      f = jax.jit(jax.shard_map(affine, mesh=mesh, in_specs=P("x"), out_specs=P("x")))
      x = jax.device_put(jnp.arange(512, dtype=jnp.float32), NamedSharding(mesh, P("x")))
      for _ in range(3):
        np.testing.assert_allclose(f(x), 2 * np.arange(512) + 1)
      print(rt.counters()["execute_calls"])
      """), *lib, XLA_FLAGS="--xla_force_host_platform_device_count=2")
  assert int(out.split()[-1]) == 6  # 3 runs x 2 devices


HUGE_PAGE_FLAGS_IN_CHILD = AFFINE_IN_CHILD + """
def vm_flags(address):
  # The VmFlags of the mapping that holds `address`.
  inside = False
  for line in open("/proc/self/smaps"):
    head = line.split()[0]
    if "-" in head and ":" not in head:
      lo, hi = (int(v, 16) for v in head.split("-"))
      inside = lo <= address < hi
    elif inside and line.startswith("VmFlags:"):
      return line.split()[1:]
  return []
n = 16 << 20  # 64 MiB of f32: XLA maps a fresh chunk for the result
y = jax.jit(affine)(jnp.ones(n, jnp.float32))
np.testing.assert_array_equal(y[:: 1 << 16], 3)
middle = y.unsafe_buffer_pointer() + 2 * n
print("hg" in vm_flags(middle), "hg" in vm_flags(id(y)))
"""


@pytest.mark.parametrize("setting", [None, "0"])
def test_large_results_get_huge_pages(lib, setting):
  # The result of a launch writing 64 MiB is advised huge pages (one fault per
  # 2 MiB instead of per 4 KiB), unless JAX_TRITON_CPU_HUGE_PAGES=0; nothing
  # else (here: the Python heap) is.
  env = {} if setting is None else {"JAX_TRITON_CPU_HUGE_PAGES": setting}
  out = run_python(HUGE_PAGE_FLAGS_IN_CHILD, *lib, **env).split()
  thp = os.path.exists("/sys/kernel/mm/transparent_hugepage")
  assert out == [str(thp and setting is None), "False"]
