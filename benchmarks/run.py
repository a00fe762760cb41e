"""Runs the jax_triton_cpu benchmark suite and writes a markdown table.

  python benchmarks/run.py                      # everything, results in benchmarks/results.md
  python benchmarks/run.py --quick              # fewer repetitions, smaller budgets
  python benchmarks/run.py --only softmax,matmul --markdown /tmp/r.md
  python benchmarks/run.py --threads 16         # backend_options={"num_cpu_threads": 16}

Each benchmark is a module of this directory with `run(settings) -> list[Row]`. A benchmark whose
kernel fails to compile, or computes a wrong result, gets an ERROR row; the script then exits with
status 1 after writing the table.
"""
from __future__ import annotations

import argparse
import datetime
import importlib
import os
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
  sys.path.insert(0, HERE)

from timing import Row, Settings, fmt_rate, fmt_time, fp32_peak_gflops, load_average, \
    machine_info, machine_lines, short_error  # noqa: E402

# name -> module; run in this order.
BENCHMARKS = {
    "launch_overhead": "launch_overhead",
    "vector_add": "vector_add",
    "softmax": "softmax",
    "layer_norm": "layer_norm",
    "matmul": "matmul",
    "attention": "attention",
    "pallas": "pallas",
    "interpreter": "interpreter",
    "compile_time": "compile_time",
    "bounds_check": "bounds_check",
}


def _table(rows: list[Row]) -> list[str]:
  out = ["| benchmark | case | ours | baseline | baseline / ours | ours rate | baseline rate | "
         "notes |",
         "|---|---|---:|---|---:|---:|---:|---|"]
  for r in rows:
    if r.error:
      out.append(f"| {r.benchmark} | {r.case} | **ERROR** | {r.baseline_name} "
                 f"{fmt_time(r.baseline) if r.baseline else ''} | - | - | - | {r.error} |")
      continue
    base = f"{fmt_time(r.baseline)} ({r.baseline_name})" if r.baseline_name else fmt_time(r.baseline)
    ratio = f"{r.ratio:.2f}x" if r.ratio else "-"
    out.append(f"| {r.benchmark} | {r.case} | {fmt_time(r.ours)} | {base} | {ratio} | "
               f"{fmt_rate(r.ours_rate, r.unit)} | {fmt_rate(r.baseline_rate, r.unit)} | {r.notes} |")
  return out


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--quick", action="store_true", help="short run: fewer repetitions")
  p.add_argument("--only", default="", help="comma-separated benchmark names: " + ",".join(BENCHMARKS))
  p.add_argument("--markdown", default=os.path.join(HERE, "results.md"),
                 help="where to write the markdown table (default benchmarks/results.md)")
  p.add_argument("--threads", type=int, default=None,
                 help='pass backend_options={"num_cpu_threads": N} to our kernels')
  args = p.parse_args(argv)

  names = [n.strip() for n in args.only.split(",") if n.strip()] or list(BENCHMARKS)
  unknown = [n for n in names if n not in BENCHMARKS]
  if unknown:
    p.error(f"unknown benchmark(s) {unknown}; choose from {list(BENCHMARKS)}")
  settings = Settings(quick=args.quick, threads=args.threads)

  info = machine_info()
  header = machine_lines(info, args.threads)
  for line in header:
    print(line)
  print()

  rows: list[Row] = []
  failed = []
  t_start = time.perf_counter()
  for name in names:
    t0 = time.perf_counter()
    print(f"== {name}", flush=True)
    try:
      module = importlib.import_module(BENCHMARKS[name])
      new = module.run(settings)
    except Exception as e:  # pylint: disable=broad-except
      traceback.print_exc()
      print(f"!! {name} FAILED: {short_error(e, 400)}", file=sys.stderr, flush=True)
      new = [Row(name, "(whole benchmark)", error=short_error(e))]
    for r in new:
      if r.error:
        failed.append(f"{r.benchmark} / {r.case}: {r.error}")
    rows.extend(new)
    for line in _table(new)[2:]:
      print(line, flush=True)
    print(f"   ({time.perf_counter() - t0:.1f} s)", flush=True)

  table = _table(rows)
  print()
  print("\n".join(table))
  peak = fp32_peak_gflops(info)
  md = ["# jax_triton_cpu benchmark results", "",
        f"`python benchmarks/run.py{' --quick' if args.quick else ''}"
        f"{' --only ' + args.only if args.only else ''}"
        f"{' --threads ' + str(args.threads) if args.threads is not None else ''}`, "
        f"{datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}, "
        f"{time.perf_counter() - t_start:.0f} s; load average at the end: {load_average()}", ""]
  md += [f"- {line}" for line in header]
  md += ["", "Times are medians of interleaved samples (ours and baseline alternate); "
         "baseline / ours > 1 means ours is faster. GB/s counts the bytes the kernel must read "
         "and write once; GFLOP/s counts 2 flops per multiply-add"
         + (f"; % of peak is of {peak:.0f} GFLOP/s." if peak else "."), ""]
  md += table
  if failed:
    md += ["", "## Failures", ""] + [f"- {f}" for f in failed]
  with open(args.markdown, "w") as f:
    f.write("\n".join(md) + "\n")
  print(f"\nwrote {args.markdown}")
  if failed:
    print("\nFAILURES:\n  " + "\n  ".join(failed), file=sys.stderr)
    return 1
  return 0


if __name__ == "__main__":
  sys.exit(main())
