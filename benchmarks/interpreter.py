"""interpreter: Triton's own interpreter (TRITON_INTERPRET=1, numpy) vs our compiled kernels.

The vector add and softmax kernels of vector_add.py and softmax.py, at small sizes. The interpreter
runs in a child process (`python interpreter.py --child`, TRITON_INTERPRET=1 set before triton is
imported), launched the usual way, `kernel[grid](...)`, on numpy arrays. Triton's interpreter expects
torch tensors (it calls data_ptr(), untyped_storage(), new_empty(), set_(), copy_()); torch is not
installed, so `NpTensor` below provides that surface over a numpy array, with no copies (the
interpreter works on host memory through the raw pointer anyway).

Ours is timed in this process, the interpreter in the child: the two cannot be interleaved, but
their ratio is in the hundreds or more, far above the machine's drift.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))

# (kernel, label, size): add over n elements with BLOCK 1024; softmax over rows x cols.
CASES = (("add", "2^12 f32, BLOCK=1024", 1 << 12), ("add", "2^16 f32, BLOCK=1024", 1 << 16),
         ("softmax", "32x128 f32", (32, 128)), ("softmax", "256x1024 f32", (256, 1024)))
ADD_BLOCK = 1024


# ---- child: the interpreter ----------------------------------------------------------------------

class _Storage:
  def __init__(self, arr):
    self.arr = arr

  def data_ptr(self):
    return self.arr.ctypes.data

  def cpu(self):
    return self

  def copy_(self, other):  # the interpreter wrote through the pointer already
    pass


class NpTensor:
  """The torch.Tensor surface that triton's interpreter touches, over a numpy array (no copies)."""

  def __init__(self, arr):
    self.arr = arr

  @property
  def dtype(self):
    return str(self.arr.dtype)  # "float32": triton's type mangling accepts it

  def data_ptr(self):
    return self.arr.ctypes.data

  def untyped_storage(self):
    return _Storage(self.arr)

  def new_empty(self, *args, **kwargs):
    return NpTensor(self.arr)

  def set_(self, storage, offset, size, stride):
    self.arr = storage.arr
    return self

  def storage_offset(self):
    return 0

  def size(self):
    return self.arr.shape

  def stride(self):
    return tuple(st // self.arr.itemsize for st in self.arr.strides)

  def copy_(self, other):
    pass


def _child(reps: int) -> None:
  assert os.environ.get("TRITON_INTERPRET") == "1", "the child must run with TRITON_INTERPRET=1"
  import numpy as np
  import triton
  sys.path.insert(0, HERE)
  from softmax import softmax_kernel
  from timing import next_power_of_2
  from vector_add import add_kernel
  assert type(add_kernel).__name__ == "InterpretedFunction", type(add_kernel)

  rng = np.random.default_rng(0)
  results = {}
  for kind, label, size in CASES:
    if kind == "add":
      x = rng.standard_normal(size, dtype=np.float32)
      y = rng.standard_normal(size, dtype=np.float32)
      out = np.zeros_like(x)
      grid = (triton.cdiv(size, ADD_BLOCK),)
      call = lambda: add_kernel[grid](NpTensor(x), NpTensor(y), NpTensor(out), size,
                                      BLOCK=ADD_BLOCK)
      expected = lambda: x + y
    else:
      rows, cols = size
      x = rng.standard_normal(size, dtype=np.float32)
      out = np.zeros_like(x)
      call = lambda: softmax_kernel[(rows,)](NpTensor(x), NpTensor(out), cols, cols, cols,
                                             BLOCK=next_power_of_2(cols))
      expected = lambda: np.exp(x - x.max(1, keepdims=True)) / np.exp(
          x - x.max(1, keepdims=True)).sum(1, keepdims=True)
    call()
    if not np.allclose(out, expected(), rtol=1e-5, atol=1e-6):
      raise AssertionError(f"interpreter {kind} {label}: WRONG RESULT")
    times = []
    for _ in range(reps):
      t0 = time.perf_counter()
      call()
      times.append(time.perf_counter() - t0)
    results[f"{kind} {label}"] = statistics.median(times)
  print("RESULT " + json.dumps(results))


# ---- parent: ours, and the child's numbers -------------------------------------------------------

def run(s):
  import jax
  import jax.numpy as jnp
  import numpy as np
  from softmax import softmax
  from timing import Row, check_close, interleaved, short_error
  from vector_add import add

  env = dict(os.environ, TRITON_INTERPRET="1")
  reps = 3 if s.quick else 9
  proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", str(reps)], env=env,
                        capture_output=True, text=True, timeout=1800)
  interp, child_error = {}, ""
  lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
  if proc.returncode == 0 and lines:
    interp = json.loads(lines[-1][len("RESULT "):])
  else:
    child_error = "interpreter child failed: " + (proc.stderr.strip().splitlines() or ["?"])[-1]

  rows = []
  rng = np.random.default_rng(0)
  for kind, label, size in CASES:
    name = f"{kind} {label}"
    try:
      if kind == "add":
        x = jnp.asarray(rng.standard_normal(size, dtype=np.float32))
        y = jnp.asarray(rng.standard_normal(size, dtype=np.float32))
        f = jax.jit(lambda x, y: add(x, y, ADD_BLOCK, s.backend_options))
        check_close(f"interpreter/{name}", f(x, y), x + y)
        call = lambda f=f, x=x, y=y: f(x, y)
      else:
        x = jnp.asarray(rng.standard_normal(size, dtype=np.float32))
        f = jax.jit(lambda x: softmax(x, s.backend_options))
        check_close(f"interpreter/{name}", f(x), jax.nn.softmax(x, axis=-1), atol=1e-6)
        call = lambda f=f, x=x: f(x)
      ours = interleaved({"ours": call}, reps=s.reps(100), budget_s=s.budget(5))["ours"]
      if child_error:
        rows.append(Row("interpreter", name, ours, baseline_name="TRITON_INTERPRET=1",
                        error=child_error))
      else:
        rows.append(Row("interpreter", name, ours, interp[name], "TRITON_INTERPRET=1",
                        notes=f"interpreter: median of {reps} runs in a child process, numpy "
                              "arrays via a torch-like wrapper"))
    except Exception as e:  # pylint: disable=broad-except
      rows.append(Row("interpreter", name, baseline_name="TRITON_INTERPRET=1", error=short_error(e)))
  return rows


if __name__ == "__main__":
  if len(sys.argv) >= 2 and sys.argv[1] == "--child":
    _child(int(sys.argv[2]) if len(sys.argv) > 2 else 5)
  else:
    sys.exit("run through benchmarks/run.py --only interpreter")
