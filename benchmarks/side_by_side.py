"""Puts the tables of several benchmark runs (results.md files of run.py) side by side.

  python benchmarks/side_by_side.py "2-core VM=benchmarks/results.md" "16-core=/tmp/device.md"

Prints a markdown table: one row per (benchmark, case, baseline), and for each run its time and
the baseline / ours ratio (> 1: ours is faster), then each run's machine line. Rows a run lacks
are blank there.
"""
from __future__ import annotations

import sys


def read(path: str):
  """(machine lines, {(benchmark, case, baseline name): (our time, ratio)}) of one results.md."""
  machine, rows = [], {}
  with open(path) as f:
    for line in f:
      if line.startswith("- CPU:") or line.startswith("- python"):
        machine.append(line[2:].strip())
      if not line.startswith("| ") or line.startswith("| benchmark") or "---" in line[:6]:
        continue
      cells = [c.strip() for c in line.strip().strip("|").split("|")]
      benchmark, case, ours, baseline, ratio = cells[:5]
      name = baseline[baseline.find("(") + 1:baseline.rfind(")")] if "(" in baseline else ""
      rows[(benchmark, case, name)] = (ours, ratio)
  return machine, rows


def main(argv: list[str]) -> int:
  if not argv:
    print(__doc__)
    return 2
  runs = []
  for arg in argv:
    label, _, path = arg.rpartition("=")
    runs.append((label or path, *read(path)))
  keys = []
  for _, _, rows in runs:
    keys += [k for k in rows if k not in keys]
  header = "| benchmark | case | baseline | " + " | ".join(
      f"{label}: ours | {label}: baseline / ours" for label, _, _ in runs) + " |"
  print(header)
  print("|---|---|---|" + "---:|---:|" * len(runs))
  for key in keys:
    cells = []
    for _, _, rows in runs:
      cells += list(rows.get(key, ("", "")))
    print(f"| {key[0]} | {key[1]} | {key[2]} | " + " | ".join(cells) + " |")
  print()
  for label, machine, _ in runs:
    print(f"- {label}: " + "; ".join(machine))
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
