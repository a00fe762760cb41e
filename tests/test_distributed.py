"""Scaling out the JAX way: two processes on localhost form one JAX cluster
(jax.distributed.initialize), and a shard_map'd function with a triton_call and a psum runs over
the CPU devices of both (tests/distributed_worker.py). Each process checks its results."""
import os
import socket
import subprocess
import sys
import tempfile
import time

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "distributed_worker.py")
TIMEOUT_S = 300  # compile + run takes seconds; a process that lost its peer must not hang CI


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _worker(port: int, process_id: int) -> list[str]:
  return [sys.executable, WORKER, str(port), str(process_id)]


def _run_cluster(commands: list[list[str]]) -> list[tuple[int, str, str]]:
  """Runs the commands at once; (returncode, stdout, stderr) of each. When one fails, the
  others are killed (they would wait for it until JAX's own timeouts); all are at TIMEOUT_S."""
  env = {**os.environ, "JAX_PLATFORMS": "cpu",
         "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
  # Output goes to files, not pipes: a process blocked on a full pipe would never finish.
  logs = [(tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")) for _ in commands]
  procs = [subprocess.Popen(c, env=env, stdout=out, stderr=err)
           for c, (out, err) in zip(commands, logs)]
  deadline = time.monotonic() + TIMEOUT_S
  try:
    while any(p.poll() is None for p in procs):
      if time.monotonic() > deadline or any(p.poll() not in (None, 0) for p in procs):
        break
      time.sleep(0.2)
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
  results = []
  for p, files in zip(procs, logs):
    p.wait()
    texts = []
    for f in files:
      f.seek(0)
      texts.append(f.read())
      f.close()
    results.append((p.returncode, *texts))
  return results


def test_two_processes_shard_map_triton_call_and_psum():
  port = _free_port()
  results = _run_cluster([_worker(port, 0), _worker(port, 1)])
  for i, (rc, out, err) in enumerate(results):
    assert rc == 0, f"process {i} exited with {rc}:\n{out}\n{err[-6000:]}"
    assert out.split()[-2:] == ["ok", str(i)], out


def test_a_failing_process_fails_the_run_and_stops_its_peer():
  # Process 1 dies without joining: process 0 (the coordinator) would wait for it for minutes.
  start = time.monotonic()
  dies = [sys.executable, "-c", "import time; time.sleep(5); raise SystemExit(3)"]
  results = _run_cluster([_worker(_free_port(), 0), dies])
  assert results[1][0] == 3
  assert results[0][0] != 0  # killed
  assert time.monotonic() - start < 60
