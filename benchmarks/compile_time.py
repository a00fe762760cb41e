"""compile_time: how long our kernels take to compile, cold and from the on-disk cache.

1. Cold compile in a warm process (jax, triton and llvmlite already loaded and used): every
   repetition uses a fresh JAX_TRITON_CPU_CACHE_DIR (the disk cache misses), a fresh JITFunction of
   the kernel (empty in-memory cache) and a fresh jax.jit, and times `.lower(...).compile()`.
   Baseline: the same for the jax.numpy equivalent (XLA's own compile). The notes split our time
   into the stages of jax_triton_cpu.compiler (timers wrapped around its functions at run time):
   triton frontend (AST -> TTIR), reader (TTIR -> our IR), code generation (our IR -> LLVM IR) and
   LLVM + link (the part the disk cache saves).
2. The on-disk cache in a fresh process: a child process (`python compile_time.py --child ...`)
   times its first call (trace, kernel build, XLA compile, run) minus a warm call, once with the
   cache directory a first child filled (hit) and once with an empty one (miss); hit and miss
   children alternate. (The disk cache holds the linked library: a hit skips LLVM + link only.)
3. Matmul tile size: cold compile of 32x32x32 vs 128x128x32 tiles (as 1.).
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
  sys.path.insert(0, HERE)

N_ADD = 1 << 20
STAGES = ("frontend", "reader", "codegen", "llvm+link")
MM = 1024


def _programs(kind: str, backend_options=None):
  """(ours factory, baseline factory, args): factories return fresh, untraced jitted functions."""
  import jax
  import jax.numpy as jnp
  import numpy as np
  import triton

  import matmul
  import vector_add

  rng = np.random.default_rng(0)
  if kind == "add":
    args = tuple(jnp.asarray(rng.standard_normal(N_ADD, dtype=np.float32)) for _ in range(2))

    def ours():
      kernel = triton.jit(vector_add.add_kernel.fn)  # fresh JITFunction: empty in-memory cache
      spec = jax.ShapeDtypeStruct((N_ADD,), jnp.float32)
      return jax.jit(lambda x, y: vector_add.jt.triton_call(
          x, y, kernel=kernel, out_type=spec, grid=(N_ADD // 4096,), n=N_ADD, BLOCK=4096,
          backend_options=backend_options))

    return ours, lambda: jax.jit(lambda x, y: x + y), args
  bm, bn, bk = (int(v) for v in kind.split("_")[1].split("x"))  # "matmul_32x32x32"
  args = tuple(jnp.asarray(rng.standard_normal((MM, MM), dtype=np.float32)) for _ in range(2))

  def ours():
    kernel = triton.jit(matmul.matmul_kernel.fn)

    def f(a, b):
      return matmul.jt.triton_call(
          a, b, kernel=kernel, out_type=jax.ShapeDtypeStruct((MM, MM), jnp.float32),
          grid=(triton.cdiv(MM, bm) * triton.cdiv(MM, bn),), M=MM, N=MM, K=MM, stride_am=MM,
          stride_ak=1, stride_bk=MM, stride_bn=1, stride_cm=MM, stride_cn=1, BLOCK_M=bm,
          BLOCK_N=bn, BLOCK_K=bk, GROUP_M=matmul.GROUP_M, backend_options=backend_options)
    return jax.jit(f)

  return ours, lambda: jax.jit(lambda a, b: a @ b), args


@contextlib.contextmanager
def _patched(obj, name, value):
  old = getattr(obj, name)
  setattr(obj, name, value)
  try:
    yield
  finally:
    setattr(obj, name, old)


class StageTimers:
  """Wraps the compiler's stage functions with timers (benchmark-side instrumentation only)."""

  def __init__(self):
    self.t = {k: 0.0 for k in STAGES}

  def _wrap(self, mod, attr, key):
    fn = getattr(mod, attr)

    def timed(*a, **k):
      t0 = time.perf_counter()
      try:
        return fn(*a, **k)
      finally:
        self.t[key] += time.perf_counter() - t0
    return _patched(mod, attr, timed)

  @contextlib.contextmanager
  def active(self):
    from jax_triton_cpu.compiler import codegen, frontend, pipeline, toolchain
    del codegen, toolchain
    with self._wrap(frontend, "make_ttir_texts", "frontend"), \
        self._wrap(pipeline.reader, "read_ttir", "reader"), \
        self._wrap(pipeline.codegen, "generate", "codegen"), \
        self._wrap(pipeline.toolchain, "compile_llvm_ir", "llvm+link"):
      yield self


@contextlib.contextmanager
def _cache_dir(path):
  old = os.environ.get("JAX_TRITON_CPU_CACHE_DIR")
  os.environ["JAX_TRITON_CPU_CACHE_DIR"] = path
  try:
    yield path
  finally:
    if old is None:
      os.environ.pop("JAX_TRITON_CPU_CACHE_DIR", None)
    else:
      os.environ["JAX_TRITON_CPU_CACHE_DIR"] = old


def _cold(kind, reps, backend_options):
  """Median cold compile of ours and of the baseline (interleaved) and our stage medians."""
  ours_f, base_f, args = _programs(kind, backend_options)
  # Warm the process: one compile of each (also checks the result), in a throwaway cache dir.
  from timing import check_close
  tmp = tempfile.mkdtemp(prefix="jtc_bench_cache_")
  with _cache_dir(tmp):
    check_close(f"compile_time/{kind}", ours_f()(*args), base_f()(*args), rtol=1e-4, atol=1e-3)
  shutil.rmtree(tmp, ignore_errors=True)

  ours_t, base_t, stages = [], [], {k: [] for k in STAGES}
  for _ in range(reps):
    d = tempfile.mkdtemp(prefix="jtc_bench_cache_")
    with _cache_dir(d):
      f = ours_f()
      timers = StageTimers()
      with timers.active():
        t0 = time.perf_counter()
        f.lower(*args).compile()
        ours_t.append(time.perf_counter() - t0)
      for k, v in timers.t.items():
        stages[k].append(v)
    shutil.rmtree(d, ignore_errors=True)
    g = base_f()
    t0 = time.perf_counter()
    g.lower(*args).compile()
    base_t.append(time.perf_counter() - t0)
  return (statistics.median(ours_t), statistics.median(base_t),
          {k: statistics.median(v) for k, v in stages.items()})


def _child(kind: str, backend_options_json: str) -> None:
  """Fresh process: the first call (trace, kernel build, XLA compile, run) minus a warm call."""
  t_import = time.perf_counter()
  import jax  # noqa: F401
  import jax_triton_cpu  # noqa: F401
  from timing import block
  t_import = time.perf_counter() - t_import
  ours_f, _, args = _programs(kind, json.loads(backend_options_json) or None)
  f = ours_f()
  timers = StageTimers()
  with timers.active():
    t0 = time.perf_counter()
    block(f(*args))
    t_first = time.perf_counter() - t0
  warm = []
  for _ in range(5):
    t0 = time.perf_counter()
    block(f(*args))
    warm.append(time.perf_counter() - t0)
  print("RESULT " + json.dumps({"first_call": t_first, "warm_call": statistics.median(warm),
                                "import": t_import, "stages": timers.t}))


def _run_child(kind, cache_dir, backend_options):
  env = dict(os.environ, JAX_TRITON_CPU_CACHE_DIR=cache_dir)
  env.pop("TRITON_INTERPRET", None)
  proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", kind,
                         json.dumps(backend_options or {})], env=env, capture_output=True,
                        text=True, timeout=600)
  lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
  if proc.returncode != 0 or not lines:
    raise RuntimeError("compile_time child failed: "
                       + (proc.stderr.strip().splitlines() or ["?"])[-1])
  return json.loads(lines[-1][len("RESULT "):])


def _fresh_process(kind, reps, backend_options):
  """Medians over alternating hit / miss children; the hit cache is filled by a first child."""
  hit_dir = tempfile.mkdtemp(prefix="jtc_bench_hit_")
  try:
    _run_child(kind, hit_dir, backend_options)  # fills the cache
    hits, misses = [], []
    for _ in range(reps):
      hits.append(_run_child(kind, hit_dir, backend_options))
      miss_dir = tempfile.mkdtemp(prefix="jtc_bench_miss_")
      try:
        misses.append(_run_child(kind, miss_dir, backend_options))
      finally:
        shutil.rmtree(miss_dir, ignore_errors=True)
  finally:
    shutil.rmtree(hit_dir, ignore_errors=True)
  med_stage = lambda rs, key: statistics.median(r["stages"][key] for r in rs)
  return hits, misses, med_stage


def _stage_note(stages):
  return ", ".join(f"{k} {v * 1e3:.0f} ms" for k, v in stages.items())


def run(s):
  from timing import Row, short_error
  bo = s.backend_options or None
  rows = []
  reps = s.reps(9, 3)
  for kind, label in (("add", "vector add 2^20, BLOCK 4096"),
                      ("matmul_32x32x32", "matmul 1024^3, tile 32x32x32"),
                      ("matmul_128x128x32", "matmul 1024^3, tile 128x128x32")):
    case = f"cold compile, {label}"
    try:
      ours, base, stages = _cold(kind, reps, bo)
      rows.append(Row("compile_time", case, ours, base, "XLA compile of the jnp op",
                      notes="lower+compile, fresh cache dir; ours: " + _stage_note(stages)))
    except Exception as e:  # pylint: disable=broad-except
      rows.append(Row("compile_time", case, error=short_error(e)))

  child_reps = 1 if s.quick else 3
  for kind, label in (("add", "vector add 2^20"), ("matmul_64x64x32", "matmul 1024^3, 64x64x32")):
    case = f"fresh process, {label}: disk cache hit vs miss"
    try:
      hits, misses, med_stage = _fresh_process(kind, child_reps, bo)
      fmw = lambda rs: statistics.median(r["first_call"] - r["warm_call"] for r in rs)
      rows.append(Row(
          "compile_time", case, fmw(hits), fmw(misses), "disk cache miss",
          notes=(f"first call minus warm call in a child process, median of {child_reps}; "
                 f"hit: {_stage_note({k: med_stage(hits, k) for k in STAGES})}; miss: "
                 f"{_stage_note({k: med_stage(misses, k) for k in STAGES})}")))
    except Exception as e:  # pylint: disable=broad-except
      rows.append(Row("compile_time", case, error=short_error(e)))
  return rows


if __name__ == "__main__":
  if len(sys.argv) >= 3 and sys.argv[1] == "--child":
    _child(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else "{}")
  else:
    sys.exit("run through benchmarks/run.py --only compile_time")
