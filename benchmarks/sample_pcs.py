"""Where a script's CPU time goes, by instruction address, on machines without perf (the device
machine has none): samples the interrupted instruction pointer every SAMPLE_US microseconds of
CPU time (SIGPROF; every thread, OpenMP workers included) while the script runs, then prints the
share of each shared library and the hottest 256-byte windows of the kernel libraries, and writes
their disassembly (objdump) to PREFIX.asm.

  python benchmarks/sample_pcs.py PREFIX script.py [args...]

Needs a C compiler. Shares are of all samples (compiling and Python included), windows of the
samples that fall in kernel libraries (those loaded from jax_triton_cpu's cache directory).
"""
from __future__ import annotations

import collections
import ctypes
import os
import runpy
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
WINDOW = 256


def _sampler():
  library = os.path.join(tempfile.mkdtemp(prefix="sample_pcs_"), "libsample_pcs.so")
  subprocess.run([os.environ.get("CC", "cc"), "-O2", "-shared", "-fPIC", "-o", library,
                  os.path.join(HERE, "sample_pcs.c")], check=True)
  return ctypes.CDLL(library)


def _executable_mappings():
  """(start, end, file offset, path) of every executable mapping of this process."""
  out = []
  with open("/proc/self/maps") as f:
    for line in f:
      fields = line.split()
      if len(fields) >= 6 and "x" in fields[1]:
        start, end = (int(v, 16) for v in fields[0].split("-"))
        out.append((start, end, int(fields[2], 16), fields[5]))
  return out


def main(argv: list[str]) -> int:
  if len(argv) < 2:
    print(__doc__)
    return 2
  prefix, script = argv[0], argv[1]
  sampler = _sampler()
  sys.argv = argv[1:]
  sampler.sampler_start(int(os.environ.get("SAMPLE_US", "1000")))
  try:
    runpy.run_path(script, run_name="__main__")
  finally:
    total = sampler.sampler_stop((prefix + ".pcs").encode())
  mappings = _executable_mappings()
  from jax_triton_cpu.compiler.cache import cache_dir
  kernels = os.path.realpath(cache_dir()) + os.sep  # where the kernel libraries are loaded from
  by_library, windows = collections.Counter(), collections.Counter()
  with open(prefix + ".pcs") as f:
    for line in f:
      pc = int(line, 16)
      for start, end, offset, path in mappings:
        if start <= pc < end:
          by_library[os.path.basename(path)] += 1
          if path.startswith(kernels):
            windows[(path, (pc - start + offset) // WINDOW * WINDOW)] += 1
          break
      else:
        by_library["(unmapped)"] += 1
  total = max(total, 1)
  print(f"{total} samples: " + ", ".join(f"{name} {100 * n / total:.1f}%"
                                          for name, n in by_library.most_common(6)))
  in_kernels = max(sum(windows.values()), 1)
  for (path, start), n in windows.most_common(12):
    print(f"  {os.path.basename(path)} +{start:#x}: {100 * n / in_kernels:.1f}% of kernel samples")
  if windows and shutil.which("objdump"):
    with open(prefix + ".asm", "w") as out:
      for (path, start), n in windows.most_common(6):
        out.write(f"==== {os.path.basename(path)} +{start:#x}: {100 * n / in_kernels:.1f}%\n")
        out.write(subprocess.run(
            ["objdump", "-d", "--no-show-raw-insn", f"--start-address={start:#x}",
             f"--stop-address={start + WINDOW:#x}", path], capture_output=True, text=True).stdout)
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
