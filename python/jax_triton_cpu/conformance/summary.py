"""Outcomes of a conformance run: per test function and in total, as JSON and as a Markdown table."""
from __future__ import annotations

import collections
import glob
import json
import os
import platform

OUTCOMES = ("passed", "failed", "skipped", "xfailed", "xpassed", "crashed")


def event_line(**event) -> str:
  return json.dumps(event) + "\n"


def read_events(path: str):
  with open(path) as f:
    for line in f:
      if line.strip():
        try:
          yield json.loads(line)
        except json.JSONDecodeError:  # a line cut short by a kill
          continue


def outcomes(out: str) -> dict[str, tuple[str, str]]:
  """nodeid -> (outcome, message) over every shard log; a crash record is final."""
  final: dict[str, tuple[str, str]] = {}
  for path in sorted(glob.glob(os.path.join(out, "shard*.jsonl"))):
    for event in read_events(path):
      if event["event"] in ("done", "crash"):
        final[event["nodeid"]] = (event["outcome"], event.get("message", ""))
  return final


def function_of(nodeid: str) -> str:
  return nodeid.split("::")[-1].split("[")[0]


def summarise(out: str, elapsed: float, args) -> dict:
  """Writes summary.json and summary.md into `out` from its shard logs."""
  by_function: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
  messages: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
  for nodeid, (outcome, message) in outcomes(out).items():
    name = function_of(nodeid)
    by_function[name][outcome] += 1
    if outcome != "passed":  # failures, crashes and the reasons of skips and xfails
      messages[name][f"{outcome}: {message}"] += 1
  totals = collections.Counter()
  for counts in by_function.values():
    totals.update(counts)
  report = {
      "test_file": os.path.abspath(args.test_file), "jobs": args.jobs, "sample": args.sample,
      "seconds": round(elapsed), "python": platform.python_version(),
      "totals": {k: totals.get(k, 0) for k in OUTCOMES},
      "by_function": {name: {k: c.get(k, 0) for k in OUTCOMES}
                      for name, c in sorted(by_function.items())},
      "messages": {name: c.most_common(20) for name, c in sorted(messages.items())},
  }
  with open(os.path.join(out, "summary.json"), "w") as f:
    json.dump(report, f, indent=1)
  with open(os.path.join(out, "summary.md"), "w") as f:
    f.write(markdown(report))
  return report


def totals_line(report: dict) -> str:
  t = report["totals"]
  return (f"{sum(t.values())} cases: " + ", ".join(f"{t[k]} {k}" for k in OUTCOMES) +
          f" in {report['seconds']} s")


def markdown(report: dict) -> str:
  lines = [totals_line(report), "", "| test function | " + " | ".join(OUTCOMES) + " |",
           "|---|" + "---:|" * len(OUTCOMES)]
  for name, counts in report["by_function"].items():
    lines.append(f"| {name} | " + " | ".join(str(counts[k] or "") for k in OUTCOMES) + " |")
  lines += ["", "## Cases that did not pass: outcome and first message line", ""]
  for name, items in report["messages"].items():
    lines.append(f"### {name}")
    lines += [f"- {count} x `{message.replace('`', chr(39))}`" for message, count in items]
    lines.append("")
  return "\n".join(lines) + "\n"


if __name__ == "__main__":  # re-summarise a run's logs: python -m jax_triton_cpu.conformance.summary DIR
  import sys
  import types
  previous = json.load(open(os.path.join(sys.argv[1], "summary.json")))
  run = types.SimpleNamespace(test_file=previous["test_file"], jobs=previous["jobs"],
                              sample=previous["sample"])
  print(totals_line(summarise(sys.argv[1], previous["seconds"], run)))
