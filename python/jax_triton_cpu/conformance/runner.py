"""Runs upstream's test_core.py in parallel shards (subprocesses) and summarises the outcomes.

Each shard is a pytest process over every n-th collected test. A shard that dies (a signal, an
abort) or stops making progress is restarted after the test it was running, which is recorded as a
crash; so one bad test costs one case, not a shard.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time

from . import plugin, summary

PLUGIN = "jax_triton_cpu.conformance.plugin"


def _rootdir(test_file: str) -> str:
  """The highest of the test file's five nearest ancestors that holds a conftest.py or a
  pytest.ini: upstream's --device option and fixtures live in python/conftest.py (triton 3.9;
  python/test/conftest.py before), the markers in the repository's pytest.ini."""
  root = directory = os.path.dirname(os.path.abspath(test_file))
  for _ in range(5):
    if any(os.path.exists(os.path.join(directory, f)) for f in ("conftest.py", "pytest.ini")):
      root = directory
    directory = os.path.dirname(directory)
  return root


def _last_unfinished(log_path: str) -> str | None:
  if not os.path.exists(log_path):
    return None
  started, finished = None, set()
  for event in summary.read_events(log_path):
    if event["event"] == "start":
      started = event["nodeid"]
    else:
      finished.add(event["nodeid"])
  return started if started is not None and started not in finished else None


def _run_shard(k: int, args, root: str, out: str, results: dict):
  log_path = os.path.join(out, f"shard{k}.jsonl")
  env = dict(os.environ, TRITON_DEFAULT_BACKEND="cpu")
  env[plugin.LOG_ENV] = log_path
  env[plugin.SHARD_ENV] = f"{k}/{args.jobs}"
  command = [sys.executable, "-m", "pytest", os.path.abspath(args.test_file), "--rootdir", root,
             "--device", "cpu", "-p", PLUGIN, "-p", "no:cacheprovider", "-q", "-rN", "--tb=line",
             *args.pytest_args]
  attempts = 0
  with open(os.path.join(out, f"shard{k}.out"), "a") as console:
    while True:
      attempts += 1
      proc = subprocess.Popen(command, env=env, stdout=console, stderr=subprocess.STDOUT, cwd=root)
      reason = _watch(proc, log_path, args.timeout)
      unfinished = _last_unfinished(log_path)
      if unfinished is None or attempts > args.max_restarts:
        results[k] = proc.returncode
        return
      with open(log_path, "a") as f:  # the test that took the process down
        f.write(summary.event_line(event="crash", nodeid=unfinished, outcome="crashed",
                                   message=reason))


def _watch(proc, log_path: str, timeout: float) -> str:
  """Waits for the shard; kills it when its log has not grown for `timeout` seconds. Returns
  what ended it, for a crash record."""
  last_size, last_change = -1, time.monotonic()
  while proc.poll() is None:
    time.sleep(1)
    size = os.path.getsize(log_path) if os.path.exists(log_path) else 0
    if size != last_size:
      last_size, last_change = size, time.monotonic()
    elif time.monotonic() - last_change > timeout:
      proc.kill()
      proc.wait()
      return f"no progress for {timeout:.0f} s (killed)"
  rc = proc.returncode
  if rc < 0:
    return f"killed by {signal.Signals(-rc).name}"
  return f"the test process exited with status {rc} during the test"


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog="python -m jax_triton_cpu.conformance",
                                   description=__doc__,
                                   epilog="Arguments after -- go to pytest (e.g. -- -k test_dot).")
  parser.add_argument("test_file", help="upstream's python/test/unit/language/test_core.py")
  parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="parallel shards")
  parser.add_argument("--out", default="conformance-results", help="logs and summaries go here")
  parser.add_argument("--sample", type=int, default=1,
                      help="run every SAMPLE-th test only (a quick sample; 1 = all)")
  parser.add_argument("--timeout", type=float, default=600,
                      help="seconds without a finished test before a shard counts as hung")
  parser.add_argument("--max-restarts", type=int, default=200)
  argv = list(sys.argv[1:] if argv is None else argv)
  split = argv.index("--") if "--" in argv else len(argv)  # after --: pytest's own arguments
  args = parser.parse_args(argv[:split])
  args.pytest_args = argv[split + 1:]
  os.makedirs(args.out, exist_ok=True)
  for name in os.listdir(args.out):  # a fresh run (restarts within this run resume instead)
    if name.startswith("shard"):
      os.remove(os.path.join(args.out, name))
  if args.sample > 1:
    os.environ[plugin.SAMPLE_ENV] = f"0/{args.sample}"
  root = _rootdir(args.test_file)
  start = time.time()
  results: dict[int, int] = {}
  threads = [threading.Thread(target=_run_shard, args=(k, args, root, args.out, results))
             for k in range(args.jobs)]
  for t in threads:
    t.start()
  for t in threads:
    t.join()
  elapsed = time.time() - start
  report = summary.summarise(args.out, elapsed, args)
  print(summary.totals_line(report))
  print(f"summary: {os.path.join(args.out, 'summary.md')}")
  return 0 if report["totals"].get("crashed", 0) == 0 else 1
