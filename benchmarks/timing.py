"""Shared helpers of the benchmark suite: interleaved timing, result checks, rows, machine info.

Timing rules (docs/benchmarks.md): every callable is called once before timing (compile + warm-up),
then the callables of one comparison are sampled in turn, A B A B ..., so that drift of a shared,
noisy machine hits them alike; each sample is `number` back-to-back calls (enough for a sample to
last ~2 ms) and blocks until the result is ready; the reported figure is the median sample / number.
"""
from __future__ import annotations

import dataclasses
import os
import platform
import statistics
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np


@dataclasses.dataclass
class Settings:
  quick: bool = False
  threads: int | None = None  # --threads N: backend_options={"num_cpu_threads": N}

  @property
  def backend_options(self) -> dict[str, Any]:
    return {} if self.threads is None else {"num_cpu_threads": int(self.threads)}

  def reps(self, full: int, quick: int | None = None) -> int:
    return (quick if quick is not None else max(5, full // 5)) if self.quick else full

  def budget(self, full_s: float) -> float:
    return full_s / 5 if self.quick else full_s


@dataclasses.dataclass
class Row:
  """One line of the results table. Times in seconds; rates in the unit named by `unit`."""
  benchmark: str
  case: str
  ours: float | None = None
  baseline: float | None = None
  baseline_name: str = ""
  unit: str = ""           # "GB/s", "GFLOP/s" or "" (no rate)
  ours_rate: float | None = None
  baseline_rate: float | None = None
  notes: str = ""
  error: str = ""

  @property
  def ratio(self) -> float | None:
    if self.ours and self.baseline:
      return self.baseline / self.ours
    return None


def block(x: Any) -> Any:
  """block_until_ready on every leaf that has it (jax arrays); numpy results pass through."""
  import jax
  return jax.tree_util.tree_map(lambda a: a.block_until_ready() if hasattr(a, "block_until_ready")
                                else a, x)


def _calibrate(fn: Callable[[], Any], target_s: float) -> int:
  """Calls per sample so that one sample lasts about target_s."""
  t0 = time.perf_counter()
  block(fn())
  dt = time.perf_counter() - t0
  if dt >= target_s:
    return 1
  n = 1
  while True:
    t0 = time.perf_counter()
    for _ in range(n):
      block(fn())
    dt = time.perf_counter() - t0
    if dt >= target_s or n >= 1 << 16:
      return max(1, int(n * target_s / max(dt, 1e-9)))
    n *= 4


def interleaved(fns: Mapping[str, Callable[[], Any]], *, reps: int, budget_s: float | None = None,
                sample_s: float = 2e-3, warmup: int = 2) -> dict[str, float]:
  """Median seconds per call of each callable, sampled round-robin (A B A B ...).

  `reps` is the number of rounds, cut short (but never below 5) when `budget_s` runs out.
  """
  names = list(fns)
  for name in names:  # compile and warm up
    for _ in range(warmup):
      block(fns[name]())
  number = {name: _calibrate(fns[name], sample_s) for name in names}
  samples: dict[str, list[float]] = {name: [] for name in names}
  start = time.perf_counter()
  for r in range(reps):
    for name in names:
      fn, n = fns[name], number[name]
      t0 = time.perf_counter()
      for _ in range(n):
        block(fn())
      samples[name].append((time.perf_counter() - t0) / n)
    if budget_s is not None and r >= 4 and time.perf_counter() - start > budget_s:
      break
  return {name: statistics.median(s) for name, s in samples.items()}


def check_close(name: str, ours: Any, expected: Any, *, rtol: float = 1e-5, atol: float = 1e-5) -> None:
  """Fails loudly (AssertionError naming the benchmark) if ours is not allclose to expected."""
  ours, expected = np.asarray(ours), np.asarray(expected)
  if ours.shape != expected.shape:
    raise AssertionError(f"{name}: WRONG SHAPE {ours.shape} vs baseline {expected.shape}")
  if not np.allclose(ours, expected, rtol=rtol, atol=atol):
    err = np.abs(ours.astype(np.float64) - expected.astype(np.float64))
    bad = int(np.sum(~np.isclose(ours, expected, rtol=rtol, atol=atol)))
    raise AssertionError(
        f"{name}: WRONG RESULT vs baseline: {bad}/{ours.size} elements differ, max abs error "
        f"{np.nanmax(err):.3g} (rtol={rtol}, atol={atol})")


def short_error(e: BaseException, limit: int = 160) -> str:
  text = f"{type(e).__name__}: {e}".strip().replace("\n", " ").replace("|", "/")
  return text if len(text) <= limit else text[:limit - 3] + "..."


def fmt_time(s: float | None) -> str:
  if s is None:
    return "-"
  if s < 1e-3:
    return f"{s * 1e6:.2f} us"
  if s < 1:
    return f"{s * 1e3:.3f} ms"
  return f"{s:.3f} s"


def fmt_rate(x: float | None, unit: str) -> str:
  return "-" if x is None else f"{x:.1f} {unit}"


# ---- machine -------------------------------------------------------------------------------------

def _cpuinfo_field(field: str) -> str | None:
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.split(":")[0].strip() == field:
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return None


def simd_bits() -> int:
  """Widest SIMD register of the host, from llvmlite's host CPU features (what the compiler uses)."""
  from llvmlite import binding as llvm
  llvm.initialize_native_target()
  features = {k for k, v in llvm.get_host_cpu_features().items() if v}
  if "avx512f" in features:
    return 512
  if "avx" in features:
    return 256
  return 128


def _git_state() -> str:
  import subprocess
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  try:
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True,
                         text=True, check=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                           capture_output=True, text=True, check=True).stdout.strip()
  except (OSError, subprocess.CalledProcessError):
    return "unknown"
  return rev + (" + uncommitted changes to tracked files" if dirty else "")


def machine_info() -> dict[str, Any]:
  import jax
  import jax_triton_cpu._runtime  # noqa: F401  sets libgomp's defaults (GOMP_SPINCOUNT) as it loads
  import llvmlite
  import triton
  from llvmlite import binding as llvm
  llvm.initialize_native_target()
  mhz = _cpuinfo_field("cpu MHz")
  bits = simd_bits()
  cores = os.cpu_count() or 1
  try:
    affinity = len(os.sched_getaffinity(0))
  except AttributeError:
    affinity = cores
  return {
      "cpu": _cpuinfo_field("model name") or platform.processor() or "unknown",
      "llvm_cpu": llvm.get_host_cpu_name(),
      "cores": affinity,
      "mhz": float(mhz) if mhz else None,
      "simd_bits": bits,
      "python": platform.python_version(),
      "jax": jax.__version__,
      "jaxlib": getattr(__import__("jaxlib"), "__version__", "?"),
      "triton": triton.__version__,
      "llvmlite": llvmlite.__version__,
      "numpy": np.__version__,
      "git": _git_state(),
      # libgomp's knobs as our launches see them (jax_triton_cpu._runtime defaults
      # GOMP_SPINCOUNT when it loads; it is imported by the first lowering).
      "omp_env": {k: os.environ.get(k) for k in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY",
                                                   "OMP_NUM_THREADS") if os.environ.get(k)},
  }


def fp32_peak_gflops(info: Mapping[str, Any]) -> float | None:
  """cores x GHz x 2 FMA units x f32 lanes x 2 flops per FMA (nominal clock from /proc/cpuinfo)."""
  if not info.get("mhz"):
    return None
  return info["cores"] * info["mhz"] / 1e3 * 2 * (info["simd_bits"] // 32) * 2


def machine_lines(info: Mapping[str, Any], threads: int | None) -> list[str]:
  peak = fp32_peak_gflops(info)
  return [
      f"CPU: {info['cpu']} (LLVM host cpu: {info['llvm_cpu']}), {info['cores']} cores usable, "
      f"cpu MHz {info['mhz']}, host SIMD width {info['simd_bits']} bits (llvmlite host features)",
      f"python {info['python']}, jax {info['jax']} (jaxlib {info['jaxlib']}), triton {info['triton']}, "
      f"llvmlite {info['llvmlite']}, numpy {info['numpy']}",
      f"jax_triton_cpu at git {info['git']}",
      f"our kernels' threads: {'all cores (num_cpu_threads=0)' if threads is None else threads}; "
      f"OpenMP environment: {info['omp_env'] or 'unset'}",
      f"f32 FMA peak assumed for % of peak: {info['cores']} cores x {info['mhz'] / 1e3 if info['mhz'] else '?'} "
      f"GHz x 2 FMA units x {info['simd_bits'] // 32} lanes x 2 = "
      f"{peak:.0f} GFLOP/s (nominal clock; turbo ignored)"
      + (" - Zen 4 runs a 512-bit FMA as two 256-bit halves, so its real peak is half this"
         if info["llvm_cpu"] == "znver4" else "")
      if peak else "f32 FMA peak: unknown (no cpu MHz in /proc/cpuinfo)",
      f"load average at start (other processes share this machine): {load_average()}",
  ]


def load_average() -> str:
  try:
    with open("/proc/loadavg") as f:
      return " ".join(f.read().split()[:3])
  except OSError:
    return "unknown"


def next_power_of_2(n: int) -> int:
  return 1 << (int(n) - 1).bit_length()


def choose_best(candidates: Mapping[Any, Callable[[], Any]], *, reps: int,
                budget_s: float | None = None) -> tuple[Any, dict[Any, float]]:
  """The fastest candidate (by interleaved median) and all medians; used to pick block sizes.

  The pick is then re-measured against the baseline in a separate interleaved run, so that the
  reported number carries no best-of-k selection bias.
  """
  medians = interleaved(candidates, reps=reps, budget_s=budget_s)
  best = min(medians, key=medians.get)
  return best, medians

