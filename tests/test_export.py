"""jax.export works as on GPU: `import jax_triton_cpu` registers the handler, and an exported call
carries its library and TTIR, so the artifact runs in a fresh process with an empty kernel cache
(from the embedded bytes) and on another CPU (JAX_TRITON_CPU_TARGET: recompiled from the TTIR, not
the exporter's instructions). Each side runs in its own child process."""
import json
import os
import shutil
import subprocess
import sys

import pytest

_EXPORT = '''
import sys, jax, jax.numpy as jnp, numpy as np, triton, triton.language as tl
import jax_triton_cpu as jt

@triton.jit
def axpy_kernel(x_ptr, y_ptr, out_ptr, a, n, BLOCK: tl.constexpr):
  offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
  mask = offs < n
  x = tl.load(x_ptr + offs, mask=mask)
  y = tl.load(y_ptr + offs, mask=mask)
  tl.store(out_ptr + offs, a * x + y, mask=mask)

@triton.autotune(configs=[triton.Config({"BLOCK": 32}), triton.Config({"BLOCK": 128})], key=[])
@triton.jit
def scale_kernel(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
  offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
  tl.store(out_ptr + offs, tl.load(x_ptr + offs, mask=offs < n) * 3.0, mask=offs < n)

def f(x, y):
  z = jt.triton_call(x, y, a=2.0, n=x.size, kernel=axpy_kernel, out_type=jax.typeof(x),
                     grid=((x.size + 63) // 64,), BLOCK=64)
  return jt.triton_call(z, n=z.size, kernel=scale_kernel, out_type=jax.typeof(z),
                        grid=lambda meta: ((z.size + meta["BLOCK"] - 1) // meta["BLOCK"],))

x = jnp.arange(1000, dtype=jnp.float32)
y = jnp.ones(1000, jnp.float32)
# As with jax-triton on GPU: the target has no compatibility guarantee of jax's.
checks = [jax.export.DisabledSafetyCheck.custom_call(jt.CUSTOM_CALL_TARGET_NAME)]
exported = jax.export.export(jax.jit(f), disabled_checks=checks)(x, y)
text = exported.mlir_module()
assert "library_bytes" in text and "tt.func" in text, "the call does not embed its kernel"
np.testing.assert_array_equal(exported.call(x, y), (2 * np.arange(1000) + 1) * 3)
with open(sys.argv[1], "wb") as out:
  out.write(exported.serialize())
print("exported")
'''

# Imports the package, nothing that lowers a kernel: the import registers the handler.
_RUN = '''
import json, os, sys, jax, jax.numpy as jnp, numpy as np
import jax_triton_cpu
from jax_triton_cpu import portable
with open(sys.argv[1], "rb") as f:
  exported = jax.export.deserialize(bytearray(f.read()))
x = jnp.arange(1000, dtype=jnp.float32)
y = jnp.ones(1000, jnp.float32)
result = np.asarray(exported.call(x, y))
np.testing.assert_array_equal(result, (2 * np.arange(1000) + 1) * 3)
cache = os.environ["JAX_TRITON_CPU_CACHE_DIR"]
print(json.dumps({"counts": portable.counts, "cache": sorted(os.listdir(cache))}))
'''


def _child(script, path, *args, **env):
  """Runs `script`, written to `path` (triton on Python 3.11 reads kernel sources from files)."""
  with open(path, "w") as f:
    f.write(script)
  run = subprocess.run([sys.executable, path, *args], capture_output=True, text=True,
                       timeout=600, env={**os.environ, **env})
  assert run.returncode == 0, f"child failed ({run.returncode}):\n{run.stderr[-4000:]}"
  return run.stdout


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
  d = tmp_path_factory.mktemp("export")
  path = str(d / "f.jax_exported")
  assert "exported" in _child(_EXPORT, str(d / "export.py"), path,
                             JAX_TRITON_CPU_CACHE_DIR=str(d / "export_cache"))
  shutil.rmtree(d / "export_cache")  # the libraries at the exported paths are gone, as elsewhere
  return path, d


def _run(artifact, name, **env):
  path, d = artifact
  cache = str(d / name)
  os.makedirs(cache)
  out = _child(_RUN, str(d / f"{name}.py"), path, JAX_TRITON_CPU_CACHE_DIR=cache, **env)
  return json.loads(out.strip().splitlines()[-1])


def test_an_exported_call_runs_in_a_fresh_process_with_an_empty_cache(artifact):
  result = _run(artifact, "empty_cache")
  # Three configs (axpy, two autotune configs of scale): their bytes, nothing compiled.
  assert result["counts"] == {"path": 0, "embedded": 3, "compiled": 0}, result
  assert result["cache"] == ["exported"], result


@pytest.mark.parametrize("target", ["x86-64", "haswell,+avx2,+fma,+f16c,+avx"])
def test_on_another_cpu_an_exported_call_is_recompiled_from_its_ttir(artifact, target):
  result = _run(artifact, "target_" + target.split(",")[0], JAX_TRITON_CPU_TARGET=target)
  assert result["counts"] == {"path": 0, "embedded": 0, "compiled": 3}, result
  assert "exported" not in result["cache"], result
