"""Checked mode (backend_options={"bounds_check": True} or JAX_TRITON_CPU_BOUNDS_CHECK=1): the first
out-of-bounds load, store or atomic stops the launch with a Python error naming the kernel, the
source line, the program, the offset (elements and bytes) and the buffer (name, extent); masked-off
lanes are not accesses. The kernels run in one child process (an unchecked access that slipped
through could crash it), which reports each case as a line of JSON."""
import json
import os
import subprocess
import sys

import pytest

_KERNELS = '''
import json, sys
import jax, jax.numpy as jnp, numpy as np, triton, triton.language as tl
import jax_triton_cpu as jt

CHECKED = {"bounds_check": True}


@triton.jit
def copy_kernel(x_ptr, out_ptr, n, SHIFT: tl.constexpr, MASKED: tl.constexpr, BLOCK: tl.constexpr):
  offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK) + SHIFT
  if MASKED:
    x = tl.load(x_ptr + offs, mask=offs < n, other=0.0)
    tl.store(out_ptr + offs, x, mask=offs < n)
  else:
    x = tl.load(x_ptr + offs)  # LINE copy_load
    tl.store(out_ptr + offs, x)  # LINE copy_store


@triton.jit
def scalar_store_kernel(out_ptr, index):
  tl.store(out_ptr + index, 1.0)  # LINE scalar_store


@triton.jit
def atomic_kernel(out_ptr, n, BLOCK: tl.constexpr):
  offs = tl.arange(0, BLOCK)
  tl.atomic_add(out_ptr + offs, 1.0, mask=offs < n)  # LINE atomic


@triton.jit
def loop_kernel(a_ptr, b_ptr, out_ptr, steps, BLOCK: tl.constexpr):
  offs = tl.arange(0, BLOCK)
  a = a_ptr + offs
  b = b_ptr + offs
  acc = tl.zeros((BLOCK,), tl.float32)
  for _ in range(steps):
    acc += tl.load(a) + tl.load(b)  # LINE loop_load
    a += BLOCK
    b += BLOCK
  tl.store(out_ptr + offs, acc)


@triton.jit
def select_kernel(a_ptr, b_ptr, out_ptr, which, shift, BLOCK: tl.constexpr):
  offs = tl.arange(0, BLOCK)
  base = tl.where(which == 0, a_ptr, b_ptr)
  tl.store(out_ptr + offs, tl.load(base + offs + shift))  # LINE select_load


@triton.jit
def int_to_ptr_kernel(x_ptr, out_ptr, address, BLOCK: tl.constexpr):
  offs = tl.arange(0, BLOCK)
  p = address.to(tl.int64).to(tl.pointer_type(tl.float32))
  tl.store(out_ptr + offs, tl.load(p + offs))  # LINE int_to_ptr_load


def run(name, fn, expected=None):
  try:
    out = jax.block_until_ready(fn())
  except Exception as e:
    print(json.dumps({"case": name, "error": str(e)}), flush=True)
    return
  ok = expected is None or all(np.array_equal(np.asarray(o), e) for o, e in zip(out, expected))
  print(json.dumps({"case": name, "error": None, "ok": bool(ok)}), flush=True)


def copy(x, out_size, shift=0, masked=False, options=CHECKED, grid=2, block=64):
  return jt.triton_call(x, n=x.size, kernel=copy_kernel,
                        out_type=jax.ShapeDtypeStruct((out_size,), x.dtype), grid=(grid,),
                        SHIFT=shift, MASKED=masked, BLOCK=block, backend_options=options)


x100 = jnp.arange(100, dtype=jnp.float32)
x128 = jnp.arange(128, dtype=jnp.float32)
cases = sys.argv[1].split(",")
if "tail" in cases:
  run("tail", lambda: copy(x100, 100))
if "masked" in cases:
  run("masked", lambda: [copy(x100, 100, masked=True)], [np.arange(100, dtype=np.float32)])
if "huge" in cases:
  run("huge", lambda: copy(x128, 128, shift=10**9))
if "negative" in cases:
  run("negative", lambda: copy(x128, 128, shift=-3))
if "small_out" in cases:
  run("small_out", lambda: copy(x128, 64))
if "scalar_store" in cases:
  run("scalar_store", lambda: jt.triton_call(
      index=7, kernel=scalar_store_kernel, out_type=jax.ShapeDtypeStruct((7,), jnp.float32), grid=(1,),
      backend_options=CHECKED))
if "atomic" in cases:
  run("atomic", lambda: jt.triton_call(
      n=20, kernel=atomic_kernel, out_type=jax.ShapeDtypeStruct((16,), jnp.float32), grid=(1,),
      BLOCK=32, zeroed_outputs=(0,), backend_options=CHECKED))
if "atomic_masked" in cases:
  run("atomic_masked", lambda: [jt.triton_call(
      n=16, kernel=atomic_kernel, out_type=jax.ShapeDtypeStruct((16,), jnp.float32), grid=(1,),
      BLOCK=32, zeroed_outputs=(0,), backend_options=CHECKED)], [np.ones(16, np.float32)])
if "loop" in cases:
  a, b = jnp.ones(64, jnp.float32), jnp.ones(48, jnp.float32)
  run("loop", lambda: jt.triton_call(a, b, steps=4, kernel=loop_kernel,
      out_type=jax.ShapeDtypeStruct((16,), jnp.float32), grid=(1,), BLOCK=16,
      backend_options=CHECKED))
if "select" in cases:
  a, b = jnp.ones(16, jnp.float32), jnp.ones(32, jnp.float32)
  run("select_ok", lambda: [jt.triton_call(a, b, which=2, shift=0, kernel=select_kernel,
      out_type=jax.ShapeDtypeStruct((16,), jnp.float32), grid=(1,), BLOCK=16,
      backend_options=CHECKED)], [np.ones(16, np.float32)])
  run("select", lambda: jt.triton_call(a, b, which=2, shift=10**8, kernel=select_kernel,
      out_type=jax.ShapeDtypeStruct((16,), jnp.float32), grid=(1,), BLOCK=16,
      backend_options=CHECKED))
if "int_to_ptr" in cases:
  # An address made from an int may point anywhere: it is checked against every buffer.
  x = np.arange(16, dtype=np.float32)
  def call(address):
    return jax.jit(lambda x: jt.triton_call(x, address=address, kernel=int_to_ptr_kernel,
        out_type=jax.ShapeDtypeStruct((16,), jnp.float32), grid=(1,), BLOCK=16,
        backend_options=CHECKED))(x)
  run("int_to_ptr", lambda: call(64))
if "env" in cases:
  run("env", lambda: copy(x100, 100, options={}))
  run("env_off", lambda: [copy(x100, 100, masked=True, options={"bounds_check": False})],
      [np.arange(100, dtype=np.float32)])
if "threads" in cases:
  x = jnp.arange(64 * 64 - 5, dtype=jnp.float32)
  run("threads", lambda: copy(x, x.size, grid=64,
                              options={"bounds_check": True, "num_cpu_threads": 2}))
  run("threads_after", lambda: [copy(x, x.size, grid=64, masked=True,
                                     options={"bounds_check": True, "num_cpu_threads": 2})],
      [np.arange(x.size, dtype=np.float32)])
'''

_LINE_MARK = "# LINE "


def _lines(path):
  with open(path) as f:
    return {line.split(_LINE_MARK)[1].strip(): i + 1 for i, line in enumerate(f)
            if _LINE_MARK in line}


@pytest.fixture(scope="module")
def checked(tmp_path_factory):
  """Runs the cases in one child; returns (results by case, source lines by marker, file)."""
  path = str(tmp_path_factory.mktemp("bounds") / "kernels.py")
  with open(path, "w") as f:
    f.write(_KERNELS)

  def run(cases, **env):
    env = {**os.environ, "JAX_TRITON_CPU_CACHE_DIR": os.path.dirname(path) + "/cache", **env}
    child = subprocess.run([sys.executable, path, ",".join(cases)], capture_output=True,
                           text=True, timeout=600, env=env)
    assert child.returncode == 0, f"child died ({child.returncode}):\n{child.stderr[-3000:]}"
    lines = [l for l in child.stdout.splitlines() if l.startswith('{"case"')]
    return {r["case"]: r for r in map(json.loads, lines)}

  results = run(["tail", "masked", "huge", "negative", "small_out", "scalar_store", "atomic",
                 "atomic_masked", "loop", "select", "int_to_ptr", "threads"])
  results.update(run(["env"], JAX_TRITON_CPU_BOUNDS_CHECK="1"))
  return results, _lines(path), path


def _error(checked, case):
  results, _, _ = checked
  error = results[case]["error"]
  assert error is not None, f"{case}: no error"
  return error


def _at(checked, marker):
  _, lines, path = checked
  return f"at {path}:{lines[marker]}:"


@pytest.mark.parametrize("case,marker,program,offset,buffer", [
    ("tail", "copy_load", "(1, 0, 0)", "offset 100 elements (400 bytes)",
     "'x_ptr', which has 100 elements (400 bytes)"),
    ("huge", "copy_load", "(0, 0, 0)", "offset 1000000000 elements (4000000000 bytes)",
     "'x_ptr', which has 128 elements (512 bytes)"),
    ("negative", "copy_load", "(0, 0, 0)", "offset -3 elements (-12 bytes)",
     "'x_ptr', which has 128 elements (512 bytes)"),
    ("small_out", "copy_store", "(1, 0, 0)", "offset 64 elements (256 bytes)",
     "'out_ptr', which has 64 elements (256 bytes)"),
    ("scalar_store", "scalar_store", "(0, 0, 0)", "offset 7 elements (28 bytes)",
     "'out_ptr', which has 7 elements (28 bytes)"),
    ("atomic", "atomic", "(0, 0, 0)", "offset 16 elements (64 bytes)",
     "'out_ptr', which has 16 elements (64 bytes)"),
    ("loop", "loop_load", "(0, 0, 0)", "offset 48 elements (192 bytes)",
     "'b_ptr', which has 48 elements (192 bytes)"),
])
def test_an_out_of_bounds_access_names_kernel_line_program_offset_and_buffer(
    checked, case, marker, program, offset, buffer):
  error = _error(checked, case)
  kind = {"scalar_store": "store", "small_out": "store", "atomic": "atomic_rmw"}.get(case, "load")
  kernel = {"scalar_store": "scalar_store_kernel", "atomic": "atomic_kernel",
            "loop": "loop_kernel"}.get(case, "copy_kernel")
  assert f"out-of-bounds {kind} in kernel '{kernel}' {_at(checked, marker)}" in error, error
  assert f"program {program}: {offset} from the start of buffer {buffer}" in error, error


@pytest.mark.parametrize("case", ["masked", "atomic_masked", "select_ok", "env_off",
                                  "threads_after"])
def test_masked_off_lanes_and_in_bounds_accesses_are_not_violations(checked, case):
  results, _, _ = checked
  assert results[case]["error"] is None, results[case]["error"]
  assert results[case]["ok"], f"{case}: wrong result"


def test_a_pointer_from_a_select_is_checked_against_both_buffers(checked):
  error = _error(checked, "select")
  assert f"out-of-bounds load in kernel 'select_kernel' {_at(checked, 'select_load')}" in error
  # (The offset is from the candidate nearest below the address, which depends on where XLA put
  # the buffers.)
  assert "may point into 'a_ptr', 'b_ptr', 'out_ptr'" not in error, error
  assert "may point into 'a_ptr', 'b_ptr' and lies in none of them" in error, error


def test_a_pointer_made_from_an_int_is_checked_against_every_buffer(checked):
  error = _error(checked, "int_to_ptr")
  assert f"out-of-bounds load in kernel 'int_to_ptr_kernel' {_at(checked, 'int_to_ptr_load')}" \
      in error, error
  assert "may point into 'x_ptr', 'out_ptr' and lies in none of them" in error, error


def test_the_environment_variable_checks_kernels_without_backend_options(checked):
  error = _error(checked, "env")
  assert "out-of-bounds load in kernel 'copy_kernel'" in error, error


def test_a_violation_on_a_worker_thread_stops_the_launch(checked):
  error = _error(checked, "threads")
  assert "offset 4091 elements (16364 bytes) from the start of buffer 'x_ptr', which has 4091 " \
      "elements" in error, error
  assert "program (63, 0, 0)" in error, error
