"""A fault of kernel code (a load or store to unmapped memory) stops its launch and becomes a Python
error naming the kernel, the program and the address; the process lives on and
later launches work. Each case runs in a child process, so a crash fails one test, not pytest."""
import os
import subprocess
import sys

import pytest

_CHILD = """
import sys, jax, jax.numpy as jnp, numpy as np, triton, triton.language as tl
import jax_triton_cpu as jt

@triton.jit
def fault_kernel(x_ptr, bad, out_ptr, KIND: tl.constexpr, BLOCK: tl.constexpr):
  pid = tl.program_id(0)
  offsets = pid * BLOCK + tl.arange(0, BLOCK)
  x = tl.load(x_ptr + offsets)
  page0 = (bad * 0 + 16).to(tl.int64).to(tl.pointer_type(tl.float32))
  if pid == bad:
    if KIND == 0:
      x += tl.load(page0)
    else:
      tl.store(page0, 1.0)
  tl.store(out_ptr + offsets, x)

def call(x, bad, kind, threads):
  return jax.jit(lambda x: jt.triton_call(
      x, bad, kernel=fault_kernel, out_type=jax.typeof(x), grid=(x.size // 256,),
      KIND=kind, BLOCK=256, backend_options={{"num_cpu_threads": threads, "bounds_check": False}}))(x)

x = jnp.arange({size}, dtype=jnp.float32)
try:
  call(x, {bad}, {kind}, {threads}).block_until_ready()
except Exception as e:
  print("ERROR:", e)
else:
  print("no error")
np.testing.assert_array_equal(call(x, -1, {kind}, {threads}), x)  # the next launch works
print("later launch ok")
"""


@pytest.mark.parametrize("kind", [0, 1], ids=["load", "store"])
@pytest.mark.parametrize("size,bad,threads", [(256 * 4, 2, 1), (256 * 64, 37, 2)])
def test_a_kernel_fault_is_a_python_error_and_the_process_lives_on(kind, size, bad, threads,
                                                                   tmp_path):
  script = tmp_path / "child.py"  # (a file: triton reads a kernel's source through inspect)
  script.write_text(_CHILD.format(size=size, bad=bad, kind=kind, threads=threads))
  run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                       timeout=300, env=dict(os.environ))
  assert run.returncode == 0, f"child died ({run.returncode}):\n{run.stderr[-3000:]}"
  error = run.stdout.split("ERROR:", 1)[-1]
  assert "kernel fault_kernel faulted: SIGSEGV" in error, run.stdout
  assert f"program ({bad}, 0, 0)" in error and "at address 0x10" in error, run.stdout
  assert 'rerun with backend_options={"bounds_check": True}' in error, run.stdout
  assert run.stdout.strip().endswith("later launch ok"), run.stdout
