"""pytest plugin loaded into each shard (-p jax_triton_cpu.conformance.plugin).

It keeps the shard to its own share of the collected tests, skips those a previous attempt of the
shard already finished (a shard is restarted after a crash or a hang), and logs each test's start
and outcome to a JSON-lines file, flushed at once, so that a test that kills the process is known.
"""
from __future__ import annotations

import json
import os
import time

import pytest

LOG_ENV = "JTC_CONFORMANCE_LOG"      # this shard's event log
SHARD_ENV = "JTC_CONFORMANCE_SHARD"  # "k/n": run collected tests i with i % n == k
SAMPLE_ENV = "JTC_CONFORMANCE_SAMPLE"  # "k/n": before sharding keep collected tests i % n == k


def _add_missing_test_helpers():
  """Helpers that older test files import from triton._internal_testing, which 3.9 dropped."""
  import triton._internal_testing as helpers
  if not hasattr(helpers, "get_arch"):
    def get_arch():
      target = helpers.get_current_target()
      return "" if target is None else str(target.arch)
    helpers.get_arch = get_arch


def _finished(path: str) -> set[str]:
  done = set()
  if os.path.exists(path):
    with open(path) as f:
      for line in f:
        event = json.loads(line)
        if event["event"] in ("done", "crash"):
          done.add(event["nodeid"])
  return done


class _Log:

  def __init__(self, path: str):
    self.file = open(path, "a", buffering=1)
    self.outcomes: dict[str, tuple[str, str]] = {}

  def write(self, **event):
    self.file.write(json.dumps(event) + "\n")
    self.file.flush()
    os.fsync(self.file.fileno())


_log: _Log | None = None


def pytest_configure(config):
  global _log
  _add_missing_test_helpers()
  if os.environ.get(LOG_ENV):
    _log = _Log(os.environ[LOG_ENV])


def pytest_collection_modifyitems(config, items):
  keep = items
  for env in (SAMPLE_ENV, SHARD_ENV):  # sample first, then shard the sample
    if os.environ.get(env):
      k, n = (int(x) for x in os.environ[env].split("/"))
      keep = [item for i, item in enumerate(keep) if i % n == k]
  done = _finished(os.environ[LOG_ENV]) if os.environ.get(LOG_ENV) else set()
  keep = [item for item in keep if item.nodeid not in done]
  config.hook.pytest_deselected(items=[i for i in items if i not in keep])
  items[:] = keep


_started: dict[str, float] = {}


def pytest_runtest_logstart(nodeid, location):
  if _log:
    _started[nodeid] = time.monotonic()
    _log.write(event="start", nodeid=nodeid)


def _message(report) -> str:
  if report.skipped and isinstance(report.longrepr, tuple):
    return str(report.longrepr[2])
  crash = getattr(report.longrepr, "reprcrash", None)
  text = crash.message if crash is not None else str(report.longrepr or "")
  return text.strip().splitlines()[0][:300] if text.strip() else ""


def pytest_runtest_logreport(report):
  if _log is None:
    return
  if report.when == "call" or report.outcome != "passed":
    outcome = report.outcome
    if hasattr(report, "wasxfail"):
      outcome = "xfailed" if report.skipped else "xpassed"
    # The first non-passing phase decides (a failing teardown after a pass is a failure).
    if report.nodeid not in _log.outcomes or _log.outcomes[report.nodeid][0] == "passed":
      _log.outcomes[report.nodeid] = (outcome, _message(report) if outcome != "passed" else "")


def pytest_runtest_logfinish(nodeid, location):
  if _log:
    outcome, message = _log.outcomes.pop(nodeid, ("passed", ""))
    seconds = round(time.monotonic() - _started.pop(nodeid, time.monotonic()), 3)
    _log.write(event="done", nodeid=nodeid, outcome=outcome, message=message, seconds=seconds)
