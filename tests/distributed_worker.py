"""One process of tests/test_distributed.py: `python distributed_worker.py PORT PROCESS_ID`.

Joins a 2-process JAX cluster on localhost, runs a shard_map'd row-wise Triton kernel over a mesh
of both processes' CPU devices, sums its results across the processes with psum, and checks what
this process holds against numpy. Prints "ok PROCESS_ID" on success; any failure exits non-zero.
"""
import sys

import jax
import numpy as np
import triton
import triton.language as tl
from jax.sharding import NamedSharding, PartitionSpec as P

import jax_triton_cpu as jt

# jax.shard_map is public from jax 0.7; older versions only have the experimental one.
try:
  shard_map = jax.shard_map
except AttributeError:
  from jax.experimental.shard_map import shard_map

NUM_PROCESSES = 2
ROWS, COLS = 24, 100  # ROWS divisible by the device count (2 processes x 2 devices)


@triton.jit
def row_softmax_kernel(x_ptr, out_ptr, n_cols, BLOCK: tl.constexpr):
  row = tl.program_id(0)
  cols = tl.arange(0, BLOCK)
  mask = cols < n_cols
  x = tl.load(x_ptr + row * n_cols + cols, mask=mask, other=-float("inf"))
  e = tl.exp(x - tl.max(x, axis=0))
  tl.store(out_ptr + row * n_cols + cols, e / tl.sum(e, axis=0), mask=mask)


def shard_body(x):
  """One device's rows: softmax by the kernel; column sums over *all* rows by psum."""
  y = jt.triton_call(x, n_cols=x.shape[1], kernel=row_softmax_kernel, out_type=jax.typeof(x),
                     grid=x.shape[0], BLOCK=triton.next_power_of_2(x.shape[1]))
  return y, jax.lax.psum(y.sum(axis=0), "rows")


def main(port: int, process_id: int) -> None:
  jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}",
                             num_processes=NUM_PROCESSES, process_id=process_id,
                             initialization_timeout=120)
  assert jax.process_count() == NUM_PROCESSES and jax.process_index() == process_id
  devices = jax.devices()  # every process's devices
  assert len(devices) == NUM_PROCESSES * jax.local_device_count(), devices
  assert {d.process_index for d in devices} == set(range(NUM_PROCESSES))

  mesh = jax.sharding.Mesh(np.array(devices), ("rows",))
  rows = NamedSharding(mesh, P("rows"))
  # Every process knows the whole input, but places only its own devices' rows.
  x_np = np.random.default_rng(0).standard_normal((ROWS, COLS)).astype(np.float32)
  x = jax.make_array_from_callback(x_np.shape, rows, lambda index: x_np[index])

  f = jax.jit(shard_map(shard_body, mesh=mesh, in_specs=P("rows"),
                        out_specs=(P("rows"), P())))
  y, col_sums = f(x)

  e = np.exp(x_np - x_np.max(axis=1, keepdims=True))
  y_np = e / e.sum(axis=1, keepdims=True)
  assert len(y.addressable_shards) == jax.local_device_count()
  for shard in y.addressable_shards:
    np.testing.assert_allclose(np.asarray(shard.data), y_np[shard.index], rtol=1e-5, atol=1e-7)
  # The column sums include the other process's rows: they came over the wire.
  for shard in col_sums.addressable_shards:
    np.testing.assert_allclose(np.asarray(shard.data), y_np.sum(axis=0), rtol=1e-5)
  jax.distributed.shutdown()
  print(f"ok {process_id}", flush=True)


if __name__ == "__main__":
  main(int(sys.argv[1]), int(sys.argv[2]))
