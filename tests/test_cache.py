"""The disk cache heals: corrupt libraries are rebuilt (never loaded), an unusable cache directory
falls back to a temporary one, scratch directories of killed processes go, keys follow the
compiler's sources, and kernels compile from many threads at once. Every run that could crash
runs in a child process."""
import concurrent.futures
import glob
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import triton
import triton.language as tl

from direct_launch import compile_kernel

TESTS = os.path.dirname(os.path.abspath(__file__))

# Compiles (or finds in the cache) and runs a vector add under jax.jit; prints where it came from.
_CHILD = """
import sys, warnings, jax, jax.numpy as jnp, numpy as np
import jax_triton_cpu as jt
sys.path.insert(0, {tests!r})
from test_kernels_e2e import add_kernel
warnings.simplefilter("always")
x = jnp.arange(1000, dtype=jnp.float32)
out = jax.jit(lambda x: jt.triton_call(x, x, x.size, kernel=add_kernel, out_type=jax.typeof(x),
                                       grid=(8,), BLOCK=128))(x)
np.testing.assert_array_equal(out, x + x)
print("compiled" if "jax_triton_cpu.compiler.pipeline" in sys.modules else "cached")
"""


def _child(cache, **env):
  run = subprocess.run([sys.executable, "-c", _CHILD.format(tests=TESTS)],
                       env=dict(os.environ, JAX_TRITON_CPU_CACHE_DIR=str(cache), **env),
                       capture_output=True, text=True, timeout=300)
  assert run.returncode == 0, f"child failed ({run.returncode}):\n{run.stderr[-3000:]}"
  return run.stdout.split()[-1], run.stderr


def _library(cache) -> str:
  (library,) = glob.glob(os.path.join(cache, "*", "libadd_kernel.so"))
  return library


def _truncate(path):
  with open(path, "r+b") as f:
    f.truncate(os.path.getsize(path) // 2)


def _empty(path):
  open(path, "wb").close()


def _garbage(path):
  with open(path, "wb") as f:
    f.write(os.urandom(4096))


def _overwrite_text(path):
  """Illegal instructions over the middle of the file (where .text lies in a small library)."""
  with open(path, "r+b") as f:
    f.seek(os.path.getsize(path) // 3)
    f.write(b"\x0f\x0b" * 256)  # ud2


def _swap_for_another_library(path):
  shutil.copy(compile_kernel(_other_kernel, {"x_ptr": "*i32"}).library_path, path)


@triton.jit
def _other_kernel(x_ptr):
  tl.store(x_ptr, 7)


@pytest.mark.parametrize("corrupt", [_truncate, _empty, _garbage, _overwrite_text,
                                     _swap_for_another_library])
def test_a_corrupt_library_is_rebuilt_with_a_warning(tmp_path, corrupt):
  cache = tmp_path / "cache"
  assert _child(cache)[0] == "compiled"
  corrupt(_library(cache))
  where, stderr = _child(cache)
  assert where == "compiled" and "is corrupt" in stderr
  assert _child(cache) == ("cached", "")  # healed: the next process loads it without a word


def test_an_unusable_cache_directory_falls_back_with_one_warning(tmp_path):
  not_a_dir = tmp_path / "file"
  not_a_dir.write_text("")
  where, stderr = _child(not_a_dir)
  assert where == "compiled"
  assert stderr.count("cannot use the kernel cache directory") == 1
  assert str(not_a_dir) in stderr and "JAX_TRITON_CPU_CACHE_DIR" in stderr


def test_scratch_directories_of_dead_processes_are_removed(tmp_path):
  cache = tmp_path / "cache"
  dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                        capture_output=True, text=True).stdout.strip()
  (cache / f".scratch-{dead}-abc").mkdir(parents=True)
  (cache / f".scratch-{os.getpid()}-abc").mkdir()  # a live process's: kept
  _child(cache)
  assert sorted(p.name for p in cache.glob(".scratch-*")) == [f".scratch-{os.getpid()}-abc"]


def test_the_key_follows_the_compiler_sources(tmp_path):
  import jax_triton_cpu
  package = tmp_path / "jax_triton_cpu"
  shutil.copytree(os.path.dirname(jax_triton_cpu.__file__), package)
  probe = "from jax_triton_cpu.compiler import cache; print(cache.compiler_version())"
  version = lambda: subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                                   env=dict(os.environ, PYTHONPATH=str(tmp_path))).stdout
  before = version()
  with open(package / "compiler" / "codegen" / "memory.py", "a") as f:
    f.write("\n# a change to the code generator\n")
  assert before and version() != before


def _kernels(directory, first: int, count: int):
  """`count` distinct kernels (each its own source, so its own frontend run), from a module."""
  import importlib.util
  path = os.path.join(directory, f"kernels_{first}.py")
  with open(path, "w") as f:
    f.write("import triton\nimport triton.language as tl\n")
    for i in range(first, first + count):
      f.write(f"\n@triton.jit\ndef k{i}(x_ptr, out_ptr):\n  offsets = tl.arange(0, 8)\n"
              f"  tl.store(out_ptr + offsets, tl.load(x_ptr + offsets) + {i})\n")
  spec = importlib.util.spec_from_file_location(f"kernels_{first}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return [getattr(module, f"k{i}") for i in range(first, first + count)]


def test_distinct_kernels_compile_from_many_threads_at_once(tmp_path, monkeypatch):
  """Without the frontend's lock, 1 in ~80 such compiles failed on Python 3.11 with "SystemError:
  AST constructor recursion depth mismatch" (ast.parse is not thread-safe there)."""
  import jax
  import jax.numpy as jnp
  import jax_triton_cpu as jt
  monkeypatch.setenv("JAX_TRITON_CPU_CACHE_DIR", str(tmp_path / "cache"))  # every compile cold
  x = jnp.zeros(8, jnp.int32)
  for attempt in range(6):
    first = 100 * attempt
    kernels = _kernels(tmp_path, first, 8)
    call = lambda k: jax.jit(lambda x: jt.triton_call(x, kernel=k, out_type=x, grid=1))(x)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
      results = list(pool.map(call, kernels))
    for i, out in enumerate(results):
      np.testing.assert_array_equal(out, first + i)
