"""Atomics: atomic_add / max / min / and / or / xor / xchg / cas on tensors and scalars, with masks,
every `sem` and `scope`, int and float dtypes; contention from many programs on a few addresses,
run as program ranges from several Python threads at once (lang_util.run_threaded: the launch
trampoline is thread-safe); a spin lock built from atomic_cas + atomic_xchg around a non-atomic
read-modify-write; atomic_poll (matches, timeouts, waiting for another thread).

Float data is integer-valued where several programs add to one address, so any order is exact."""
import time

import numpy as np
import pytest
import triton
import triton.language as tl

from lang_util import NP, assert_equal, compiled, is_float, launch, run, run_python, \
    run_threaded


@triton.jit
def _rmw(p, x, mask, OP: tl.constexpr):
  if OP == "add":
    r = tl.atomic_add(p, x, mask=mask)
  elif OP == "max":
    r = tl.atomic_max(p, x, mask=mask)
  elif OP == "min":
    r = tl.atomic_min(p, x, mask=mask)
  elif OP == "and":
    r = tl.atomic_and(p, x, mask=mask)
  elif OP == "or":
    r = tl.atomic_or(p, x, mask=mask)
  elif OP == "xor":
    r = tl.atomic_xor(p, x, mask=mask)
  elif OP == "xchg":
    r = tl.atomic_xchg(p, x, mask=mask)
  return r


@triton.jit
def rmw_kernel(t_ptr, x_ptr, old_ptr, n, K, OP: tl.constexpr, BLOCK: tl.constexpr):
  """Element i (i < n) applies OP with x[i] to t[i % K] and stores the old value in old[i]."""
  offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
  mask = offs < n
  x = tl.load(x_ptr + offs, mask=mask)
  old = _rmw(t_ptr + offs % K, x, mask, OP)
  tl.store(old_ptr + offs, old, mask=mask)


NUMPY_OP = {"add": np.add, "max": np.maximum, "min": np.minimum, "and": np.bitwise_and,
            "or": np.bitwise_or, "xor": np.bitwise_xor}
RMW_CASES = ([("add", d) for d in ("i32", "u32", "i64", "fp32", "fp64", "fp16", "bf16")] +
             [(op, d) for op in ("max", "min") for d in ("i32", "u32", "i64", "fp32", "fp64")] +
             [(op, d) for op in ("and", "or", "xor") for d in ("i32", "u32", "i64")] +
             [("xchg", d) for d in ("i32", "fp32", "i64")])


def _values(op, dtype, rng, n):
  if is_float(dtype):
    if op == "add":
      return rng.integers(-8, 9, n).astype(NP[dtype])
    return (rng.standard_normal(n) * 100).astype(NP[dtype])  # both signs (float max/min trick)
  info = np.iinfo(NP[dtype])
  if op == "add":
    return rng.integers(0 if dtype.startswith("u") else -1000, 1000, n).astype(NP[dtype])
  return rng.integers(int(info.min), int(info.max) + 1, n, dtype=np.int64 if info.bits < 64
                      else NP[dtype]).astype(NP[dtype])


def _sig(dtype):
  return {"t_ptr": f"*{dtype}", "x_ptr": f"*{dtype}", "old_ptr": f"*{dtype}", "n": "i32",
          "K": "i32"}


@pytest.mark.parametrize("op,dtype", RMW_CASES, ids=[f"{o}-{d}" for o, d in RMW_CASES])
def test_tensor_atomics_distinct_addresses_and_masks(op, dtype):
  """One address per lane: the old value is the initial one, masked lanes (i >= n) leave their
  (guard) addresses untouched."""
  n, block = 100, 64
  rng = np.random.default_rng(1)
  x = np.zeros(2 * block, NP[dtype])
  x[:n] = _values(op, dtype, rng, n)
  t0 = _values(op, dtype, rng, 2 * block)
  t = t0.copy()
  old = np.zeros(2 * block, NP[dtype])
  run(rmw_kernel, _sig(dtype), [t, x, old, n, 2 * block], (2,), {"OP": op, "BLOCK": block})
  assert_equal(old[:n], t0[:n], f"atomic_{op} old values")
  expected = t0.copy()
  with np.errstate(all="ignore"):
    expected[:n] = x[:n] if op == "xchg" else NUMPY_OP[op](t0[:n], x[:n])
  assert_equal(t, expected, f"atomic_{op} memory (masked-off lanes untouched)")


@pytest.mark.parametrize("op,dtype", [c for c in RMW_CASES if c[0] != "xchg"],
                         ids=[f"{o}-{d}" for o, d in RMW_CASES if o != "xchg"])
def test_tensor_atomics_contention_from_threads(op, dtype):
  """64 programs x 32 lanes on 3 addresses (also within one program: duplicate addresses in one
  tensor atomic), programs run from 4 threads at once."""
  programs, block, k = 64, 32, 3
  n = programs * block - 5  # the last lanes are masked
  rng = np.random.default_rng(2)
  x = np.zeros(programs * block, NP[dtype])
  x[:n] = _values(op, dtype, rng, n)
  t0 = _values(op, dtype, rng, k) if op != "add" else np.zeros(k, NP[dtype])
  t = t0.copy()
  old = np.zeros_like(x)
  c = compiled(rmw_kernel, _sig(dtype), {"OP": op, "BLOCK": block})
  statuses = run_threaded(c, [t, x, old, n, k], (programs,), chunks=16, threads=4)
  assert statuses == [0] * len(statuses)
  expected = t0.copy()
  for j in range(k):
    with np.errstate(all="ignore"):
      expected[j] = NUMPY_OP[op].reduce(np.concatenate([t0[j:j + 1], x[:n][j::k]]))
  assert_equal(t, expected, f"atomic_{op} under contention")
  if op == "add" and not is_float(dtype):
    # the adds on one address form one chain: every old value is the initial value or the
    # result (old + x) of another add, and the final value is the result of the last one
    for j in range(k):
      lanes = np.arange(n)[j::k]
      olds = old[lanes].astype(np.int64)
      ends = olds + x[lanes].astype(np.int64)
      assert_equal(np.sort(np.append(olds, int(t[j]))), np.sort(np.append(ends, int(t0[j]))),
                   "old values form one chain")  # (no wrap-around: |sums| < 2^31)


def test_xchg_contention_leaves_one_of_the_values():
  programs, block = 32, 16
  n = programs * block
  x = np.arange(1, n + 1, dtype=np.int32)
  t = np.zeros(1, np.int32)
  old = np.zeros(n, np.int32)
  c = compiled(rmw_kernel, _sig("i32"), {"OP": "xchg", "BLOCK": block})
  assert run_threaded(c, [t, x, old, n, 1], (programs,)) == [0] * 8
  # the exchanges form one chain: {old values} + {final} == {0} + {x}
  assert sorted(old.tolist() + [int(t[0])]) == [0] + x.tolist()


# ---- scalar atomics -----------------------------------------------------------------------------

@triton.jit
def scalar_atomics_kernel(cnt_ptr, old_ptr, mx_ptr, flag_ptr, won_ptr, f_ptr):
  pid = tl.program_id(0)
  old = tl.atomic_add(cnt_ptr, 1)                       # a ticket per program
  tl.store(old_ptr + pid, old)
  tl.atomic_add(cnt_ptr + 1, 1, mask=pid % 2 == 0)      # masked scalar atomic
  tl.atomic_add(cnt_ptr + 2, 5, mask=pid < 0)           # never applied
  tl.atomic_max(mx_ptr, pid * 3 - 20)
  tl.atomic_min(mx_ptr + 1, pid * 3 - 20)
  tl.atomic_or(cnt_ptr + 3, 1 << (pid % 31))
  tl.atomic_xor(cnt_ptr + 4, pid)
  tl.atomic_and(cnt_ptr + 5, ~(1 << (pid % 31)))
  prev = tl.atomic_cas(flag_ptr, 0, pid + 1)            # exactly one program wins
  tl.store(won_ptr + pid, prev)
  tl.atomic_add(f_ptr, 0.5)                             # float scalar add
  tl.atomic_max(f_ptr + 1, pid.to(tl.float32) - 7.5)


def test_scalar_atomics_from_threads():
  programs = 96
  cnt = np.array([0, 0, 0, 0, 0, -1], np.int32)
  old = np.full(programs, -1, np.int32)
  mx = np.array([-1000, 1000], np.int32)
  flag = np.zeros(1, np.int32)
  won = np.full(programs, -1, np.int32)
  f = np.array([0.0, -100.0], np.float32)
  c = compiled(scalar_atomics_kernel, {"cnt_ptr": "*i32", "old_ptr": "*i32", "mx_ptr": "*i32",
                                       "flag_ptr": "*i32", "won_ptr": "*i32", "f_ptr": "*fp32"})
  assert run_threaded(c, [cnt, old, mx, flag, won, f], (programs,), chunks=12) == [0] * 12
  pid = np.arange(programs)
  assert cnt[0] == programs
  assert_equal(np.sort(old), pid.astype(np.int32), "atomic_add tickets: all distinct")
  assert cnt[1] == programs // 2, "masked scalar atomic_add"
  assert cnt[2] == 0, "scalar atomic with a false mask"
  assert mx[0] == (programs - 1) * 3 - 20 and mx[1] == -20
  assert cnt[3] == np.bitwise_or.reduce(1 << (pid % 31)).astype(np.int32)
  assert cnt[4] == np.bitwise_xor.reduce(pid)
  assert cnt[5] == np.int32(-1) & ~np.bitwise_or.reduce(1 << (pid % 31)).astype(np.int32)
  winner = int(flag[0]) - 1
  assert 0 <= winner < programs
  assert won[winner] == 0 and (np.delete(won, winner) == winner + 1).all(), "atomic_cas"
  assert f[0] == programs * 0.5 and f[1] == programs - 1 - 7.5


# ---- cas ----------------------------------------------------------------------------------------

@triton.jit
def cas_kernel(t_ptr, cmp_ptr, val_ptr, old_ptr, BLOCK: tl.constexpr):
  offs = tl.arange(0, BLOCK)
  cmp = tl.load(cmp_ptr + offs)
  val = tl.load(val_ptr + offs)
  tl.store(old_ptr + offs, tl.atomic_cas(t_ptr + offs, cmp, val))


@pytest.mark.parametrize("dtype", ["i32", "i64", "u32", "fp32", "fp64", "i16", "fp16"])
def test_tensor_atomic_cas(dtype):
  block = 32
  rng = np.random.default_rng(3)
  t0 = rng.integers(0, 50, block).astype(NP[dtype])
  cmp = t0.copy()
  cmp[1::2] += NP[dtype](1)  # odd lanes: compare fails
  val = rng.integers(100, 150, block).astype(NP[dtype])
  t = t0.copy()
  old = np.zeros_like(t)
  run(cas_kernel, {"t_ptr": f"*{dtype}", "cmp_ptr": f"*{dtype}", "val_ptr": f"*{dtype}",
                   "old_ptr": f"*{dtype}"}, [t, cmp, val, old], (1,), {"BLOCK": block})
  assert_equal(old, t0, "old values")
  assert_equal(t, np.where(np.arange(block) % 2 == 0, val, t0), "swapped where equal")


# ---- sem and scope ------------------------------------------------------------------------------

@triton.jit
def sem_scope_kernel(c_ptr, BLOCK: tl.constexpr):
  one = tl.full((BLOCK,), 1, tl.int32)
  z = tl.zeros((BLOCK,), tl.int32)
  tl.atomic_add(c_ptr + z, one, sem="relaxed")
  tl.atomic_add(c_ptr + 1 + z, one, sem="acquire")
  tl.atomic_add(c_ptr + 2 + z, one, sem="release")
  tl.atomic_add(c_ptr + 3 + z, one, sem="acq_rel")
  tl.atomic_add(c_ptr + 4, 1, sem="relaxed", scope="cta")
  tl.atomic_max(c_ptr + 5, tl.program_id(0), sem="acquire", scope="sys")
  tl.atomic_xchg(c_ptr + 6, 7, sem="release", scope="gpu")
  tl.atomic_cas(c_ptr + 7, 0, 1, sem="relaxed", scope="cta")
  tl.atomic_cas(c_ptr + 8, 0, 1, sem="acquire", scope="sys")
  tl.atomic_cas(c_ptr + 9, 0, 1, sem="release", scope="gpu")
  tl.atomic_or(c_ptr + 10 + z, one, sem="acq_rel", scope="sys")


def test_every_sem_and_scope():
  programs, block = 40, 16
  c = np.zeros(11, np.int32)
  k = compiled(sem_scope_kernel, {"c_ptr": "*i32"}, {"BLOCK": block})
  assert run_threaded(k, [c], (programs,)) == [0] * 8
  assert_equal(c, np.array([programs * block] * 4 + [programs, programs - 1, 7, 1, 1, 1, 1],
                           np.int32))


# ---- a spin lock --------------------------------------------------------------------------------

@triton.jit
def spin_lock_kernel(lock_ptr, counter_ptr, log_ptr, ITERS: tl.constexpr):
  """Each program increments a plain (non-atomic) counter ITERS times under a lock."""
  for _ in range(ITERS):
    while tl.atomic_cas(lock_ptr, 0, 1, sem="acquire") != 0:
      pass
    v = tl.load(counter_ptr)
    tl.store(log_ptr + v, tl.program_id(0))  # who took ticket v
    tl.store(counter_ptr, v + 1)
    tl.atomic_xchg(lock_ptr, 0, sem="release")


_SPIN_LOCK_SCRIPT = """
import numpy as np
import test_lang_atomics as t
from lang_util import compiled, run_threaded
programs, iters = 64, 50
lock = np.zeros(1, np.int32)
counter = np.zeros(1, np.int32)
log = np.full(programs * iters, -1, np.int32)
c = compiled(t.spin_lock_kernel, {"lock_ptr": "*i32", "counter_ptr": "*i32", "log_ptr": "*i32"},
             {"ITERS": iters})
assert run_threaded(c, [lock, counter, log], (programs,), chunks=8, threads=4) == [0] * 8
assert lock[0] == 0, lock
assert counter[0] == programs * iters, counter
assert sorted(np.bincount(log, minlength=programs).tolist()) == [iters] * programs
print("ok")
"""


def test_spin_lock_protects_a_non_atomic_read_modify_write():
  """In a subprocess with a timeout: a broken lock may hang."""
  result = run_python(_SPIN_LOCK_SCRIPT, timeout=60)
  assert result.returncode == 0 and "ok" in result.stdout, result.stderr[-3000:]


# ---- atomics in a loop with a returned value feeding control flow --------------------------------

@triton.jit
def ticket_kernel(cnt_ptr, out_ptr, n):
  """Work distribution: programs grab indices from a shared counter until n is reached."""
  i = tl.atomic_add(cnt_ptr, 1)
  while i < n:
    tl.store(out_ptr + i, tl.program_id(0) + 1)
    i = tl.atomic_add(cnt_ptr, 1)


def test_atomic_work_queue():
  n, programs = 500, 16
  cnt = np.zeros(1, np.int32)
  out = np.zeros(n, np.int32)
  c = compiled(ticket_kernel, {"cnt_ptr": "*i32", "out_ptr": "*i32", "n": "i32"})
  assert run_threaded(c, [cnt, out, n], (programs,), chunks=4, threads=4) == [0] * 4
  assert (out >= 1).all() and (out <= programs).all(), "every index taken exactly once"
  assert cnt[0] == n + programs
  assert launch(c, [cnt, out, n], (programs,)) == 0  # counter past n: nothing more to do


@triton.jit
def broadcast_value_kernel(t_ptr, old_ptr, BLOCK: tl.constexpr):
  offs = tl.arange(0, BLOCK)
  old = tl.atomic_add(t_ptr + offs % 4, 1)                 # a scalar value, a tensor of pointers
  tl.store(old_ptr + offs, old)
  tl.atomic_max(t_ptr + 4 + offs * 0, offs)                # all lanes on one address
  tl.atomic_xchg(t_ptr + 5 + offs, 9, mask=offs < 3)       # masked, scalar value


def test_tensor_atomics_with_scalar_values_and_one_address():
  block = 32
  t = np.zeros(5 + block, np.int32)
  old = np.zeros(block, np.int32)
  run(broadcast_value_kernel, {"t_ptr": "*i32", "old_ptr": "*i32"}, [t, old], (1,),
      {"BLOCK": block})
  assert_equal(t[:4], np.full(4, block // 4, np.int32))
  for j in range(4):  # the lanes of one address saw 0, 1, 2, ... in some order
    assert sorted(old[j::4].tolist()) == list(range(block // 4))
  assert t[4] == block - 1
  assert_equal(t[5:], np.array([9, 9, 9] + [0] * (block - 3), np.int32))


@triton.jit
def load_then_atomic_store_kernel(x_ptr, out_ptr, BLOCK: tl.constexpr):
  offsets = tl.arange(0, BLOCK)
  x = tl.load(x_ptr + offsets)
  tl.atomic_store(x_ptr + offsets, tl.full((BLOCK,), 7, tl.int32))
  tl.store(out_ptr + offsets, x + 1)


@pytest.mark.skipif(not hasattr(tl, "atomic_store"), reason="this triton has no tl.atomic_store")
def test_a_load_is_not_moved_past_an_atomic_store_to_its_addresses():
  x = np.arange(16, dtype=np.int32)
  out = np.zeros_like(x)
  run(load_then_atomic_store_kernel, {"x_ptr": "*i32", "out_ptr": "*i32"}, [x.copy(), out], (1,),
      {"BLOCK": 16})
  np.testing.assert_array_equal(out, np.arange(16) + 1)


@triton.jit
def atomic_load_store_kernel(flag_ptr):
  flag = tl.atomic_load(flag_ptr)
  tl.atomic_store(flag_ptr + 1, flag + 1)


@pytest.mark.skipif(not hasattr(tl, "atomic_load"), reason="this triton has no tl.atomic_load")
def test_atomic_load_and_store_of_scalars():
  flags = np.array([5, 0], np.int32)
  run(atomic_load_store_kernel, {"flag_ptr": "*i32"}, [flags], (1,))
  np.testing.assert_array_equal(flags, [5, 6])


# ---- atomic_poll --------------------------------------------------------------------------------

HAS_POLL = hasattr(tl, "atomic_poll")


@triton.jit
def poll_kernel(flag_ptr, out_ptr, expected, timeout_ns, N: tl.constexpr, SEM: tl.constexpr):
  offs = tl.arange(0, N)
  tl.store(out_ptr + offs, tl.atomic_poll(flag_ptr + offs, expected, sem=SEM,
                                          timeout_ns=timeout_ns))


@triton.jit
def poll_forever_kernel(flag_ptr, out_ptr, expected):
  tl.store(out_ptr, tl.atomic_poll(flag_ptr, expected))


@pytest.mark.skipif(not HAS_POLL, reason="this triton has no tl.atomic_poll")
@pytest.mark.parametrize("dtype", ["i16", "i32", "i64"])
@pytest.mark.parametrize("sem", ["relaxed", "acquire"])
def test_atomic_poll_matches_or_times_out(dtype, sem):
  """Elements holding the expected value are true at once; the others are false once the shared
  budget is spent (50 ms here, spent once: the whole poll takes about that, not 50 ms each)."""
  flags = np.array([7, 3, 7, 0, 7, 7, 1, 7], NP[dtype])
  out = np.zeros(8, np.bool_)
  start = time.perf_counter()
  run(poll_kernel, {"flag_ptr": f"*{dtype}", "out_ptr": "*i1", "expected": dtype,
                    "timeout_ns": "i64"}, [flags, out, 7, 50_000_000], (1,), {"N": 8, "SEM": sem})
  elapsed = time.perf_counter() - start
  np.testing.assert_array_equal(out, flags == 7)
  assert 0.05 <= elapsed < 5, elapsed


@pytest.mark.skipif(not HAS_POLL, reason="this triton has no tl.atomic_poll")
def test_atomic_poll_zero_timeout_loads_once():
  flags = np.array([1, 0], np.int32)
  out = np.zeros(2, np.bool_)
  run(poll_kernel, {"flag_ptr": "*i32", "out_ptr": "*i1", "expected": "i32", "timeout_ns": "i64"},
      [flags, out, 1, 0], (1,), {"N": 2, "SEM": "acquire"})
  np.testing.assert_array_equal(out, [True, False])


_POLL_SCRIPT = """
import threading, time
import numpy as np
import test_lang_atomics as t
from lang_util import compiled, launch
flag, out = np.zeros(1, np.int32), np.zeros(1, np.bool_)
c = compiled(t.poll_forever_kernel, {"flag_ptr": "*i32", "out_ptr": "*i1", "expected": "i32"})
statuses = []
waiter = threading.Thread(target=lambda: statuses.append(launch(c, [flag, out, 5], (1,))))
waiter.start()
time.sleep(0.2)
assert waiter.is_alive() and not out[0]  # still waiting: nothing wrote the flag yet
flag[0] = 5  # another thread writes it
waiter.join(10)
assert not waiter.is_alive() and statuses == [0] and out[0], (statuses, out)
print("ok")
"""


@pytest.mark.skipif(not HAS_POLL, reason="this triton has no tl.atomic_poll")
def test_atomic_poll_without_timeout_waits_for_another_thread():
  """In a subprocess with a timeout: a poll that never sees the store hangs."""
  result = run_python(_POLL_SCRIPT, timeout=60)
  assert result.returncode == 0 and "ok" in result.stdout, result.stderr[-3000:]
