"""tl.rand, randn, randint, randint4x, rand4x, randn4x and tl.philox (32- and 64-bit counters):
equal to Triton's own Philox sequence.

Reference: the same kernels run by triton's interpreter (TRITON_INTERPRET=1, in a subprocess, on numpy
arrays wrapped in a minimal tensor shim), which executes triton/language/random.py itself. That
reference is checked in turn against an independent numpy Philox-4x32-10. Integers and uniform floats
must be bit-identical; normals (log / sqrt / cos / sin of the uniforms) agree within 4 ulp-ish
(rtol 2e-6, atol 2e-6), since the interpreter uses numpy's math and we use the vector math library.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest
import triton
import triton.language as tl

from lang_util import assert_equal, run


@triton.jit
def random_kernel(seed, f_ptr, n_ptr, i_ptr, i4_ptr, f4_ptr, n, OFF64: tl.constexpr,
                  ROUNDS: tl.constexpr, BLOCK: tl.constexpr):
  offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
  mask = offs < n
  if OFF64:
    o = offs.to(tl.int64) + (3 << 33)  # offsets with a non-zero high word
  else:
    o = offs
  tl.store(f_ptr + offs, tl.rand(seed, o, ROUNDS), mask=mask)
  tl.store(n_ptr + offs, tl.randn(seed, o, ROUNDS), mask=mask)
  tl.store(i_ptr + offs, tl.randint(seed, o, ROUNDS), mask=mask)
  a, b, c, d = tl.randint4x(seed, o, ROUNDS)
  tl.store(i4_ptr + offs, a, mask=mask)
  tl.store(i4_ptr + n + offs, b, mask=mask)
  tl.store(i4_ptr + 2 * n + offs, c, mask=mask)
  tl.store(i4_ptr + 3 * n + offs, d, mask=mask)
  u0, u1, u2, u3 = tl.rand4x(seed, o, ROUNDS)
  tl.store(f4_ptr + offs, u0 + u1 * 2 + u2 * 4 + u3 * 8, mask=mask)
  n0, n1, n2, n3 = tl.randn4x(seed, o, ROUNDS)
  tl.store(f4_ptr + n + offs, n0 - n1 + n2 * n3, mask=mask)


@triton.jit
def random_2d_kernel(seed, out_ptr, R: tl.constexpr, C: tl.constexpr):
  offs = tl.arange(0, R)[:, None] * C + tl.arange(0, C)[None, :]
  tl.store(out_ptr + offs, tl.randint(seed, offs))
  tl.store(out_ptr + R * C + offs, tl.rand(seed, offs).to(tl.uint32, bitcast=True))


@triton.jit
def philox64_kernel(seed, out_ptr, BLOCK: tl.constexpr):
  offs = tl.arange(0, BLOCK).to(tl.uint64)
  big = offs * 0x100000001 + 12345
  a, b, c, d = tl.philox(seed, big, offs, big ^ 7, offs + 1)
  tl.store(out_ptr + 4 * offs, a)
  tl.store(out_ptr + 4 * offs + 1, b)
  tl.store(out_ptr + 4 * offs + 2, c)
  tl.store(out_ptr + 4 * offs + 3, d)


# Each case: kernel, scalar seed and its type, outputs (name, shape, dtype), extra args, grid,
# constexprs. Shared by the test (our compiler) and the interpreter subprocess (the reference).
N, BLOCK = 300, 128
_RANDOM_OUTS = [("f", N, "float32"), ("n", N, "float32"), ("i", N, "uint32"),
                ("i4", 4 * N, "uint32"), ("f4", 2 * N, "float32")]
CASES = {
    "i32seed": dict(kernel="random_kernel", seed=("i32", 12345), outs=_RANDOM_OUTS, extra=[N],
                    grid=(3,), constexprs=dict(OFF64=False, ROUNDS=10, BLOCK=BLOCK)),
    "i64seed_off64": dict(kernel="random_kernel", seed=("i64", (1 << 40) + 77), outs=_RANDOM_OUTS,
                          extra=[N], grid=(3,),
                          constexprs=dict(OFF64=True, ROUNDS=10, BLOCK=BLOCK)),
    "rounds7": dict(kernel="random_kernel", seed=("i32", -5), outs=_RANDOM_OUTS, extra=[N],
                    grid=(3,), constexprs=dict(OFF64=False, ROUNDS=7, BLOCK=BLOCK)),
    "2d": dict(kernel="random_2d_kernel", seed=("i32", 42), outs=[("out", 2 * 8 * 16, "uint32")],
               extra=[], grid=(1,), constexprs=dict(R=8, C=16)),
    "philox64": dict(kernel="philox64_kernel", seed=("i64", (1 << 35) + 3),
                     outs=[("out", 4 * 32, "uint64")], extra=[], grid=(1,),
                     constexprs=dict(BLOCK=32)),
}

_SIG_TYPES = {"float32": "*fp32", "uint32": "*u32", "uint64": "*u64"}


def _outputs(case):
  return {name: np.zeros(size, dtype) for name, size, dtype in case["outs"]}


_INTERPRETER_SCRIPT = r"""
import json, sys
import numpy as np
import test_lang_random as t

class _Storage:
  def __init__(self, a): self.a = a
  def data_ptr(self): return self.a.ctypes.data
  def cpu(self): return self
  def copy_(self, other): pass

class NpTensor:
  '''Just enough of torch.Tensor for triton's interpreter: a numpy array by its address.'''
  def __init__(self, a): self.a = a; self.dtype = a.dtype
  def data_ptr(self): return self.a.ctypes.data
  def untyped_storage(self): return _Storage(self.a)
  def new_empty(self, *args, **kwargs): return NpTensor(self.a)
  def set_(self, *args): return self
  def storage_offset(self): return 0
  def size(self): return self.a.shape
  def stride(self): return tuple(s // self.a.itemsize for s in self.a.strides)

results = {}
for name, case in t.CASES.items():
  outs = t._outputs(case)
  kernel = getattr(t, case["kernel"])
  kernel[case["grid"]](case["seed"][1], *[NpTensor(a) for a in outs.values()], *case["extra"],
                       **case["constexprs"])
  for k, a in outs.items():
    results[f"{name}/{k}"] = a
np.savez(sys.argv[1], **results)
print("ok")
"""


@pytest.fixture(scope="module")
def reference():
  """Runs every case in triton's interpreter once (a subprocess with TRITON_INTERPRET=1)."""
  here = os.path.dirname(os.path.abspath(__file__))
  with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "ref.npz")
    env = dict(os.environ, TRITON_INTERPRET="1")
    result = subprocess.run([sys.executable, "-c", _INTERPRETER_SCRIPT, path], cwd=here, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    with np.load(path) as data:
      return {k: data[k] for k in data.files}


def _run_ours(name):
  case = CASES[name]
  outs = _outputs(case)
  kernel = globals()[case["kernel"]]
  sig = {"seed": case["seed"][0]}
  sig |= {f"{k}_ptr": _SIG_TYPES[a.dtype.name] for k, a in outs.items()}
  if case["extra"]:
    sig["n"] = "i32"
  run(kernel, sig, [case["seed"][1], *outs.values(), *case["extra"]], case["grid"],
      case["constexprs"])
  return outs


def _philox4x32(seed, c0, c1, c2, c3, rounds=10):
  """Philox-4x32 as triton/language/random.py defines it, in numpy (uint64 arithmetic)."""
  m = np.uint64(0xFFFFFFFF)
  c = [np.asarray(v, np.uint64) & m for v in (c0, c1, c2, c3)]
  k0 = np.uint64(seed & 0xFFFFFFFF)
  k1 = np.uint64((seed >> 32) & 0xFFFFFFFF)
  A, B = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)
  for _ in range(rounds):
    p0 = B * c[2]  # < 2^64: both factors < 2^32
    p1 = A * c[0]
    c = [(p0 >> np.uint64(32)) ^ c[1] ^ k0, p0 & m, (p1 >> np.uint64(32)) ^ c[3] ^ k1, p1 & m]
    k0 = (k0 + np.uint64(0x9E3779B9)) & m
    k1 = (k1 + np.uint64(0xBB67AE85)) & m
  return [v.astype(np.uint32) for v in c]


def test_interpreter_reference_is_philox_4x32_10(reference):
  offs = np.arange(N, dtype=np.uint64)
  for name, seed, rounds, hi in [("i32seed", 12345, 10, 0), ("rounds7", -5, 7, 0),
                                 ("i64seed_off64", (1 << 40) + 77, 10, 3 << 33)]:
    seed64 = seed % (1 << 64)
    o = offs + np.uint64(hi)
    ref = _philox4x32(seed64, o & np.uint64(0xFFFFFFFF), o >> np.uint64(32), 0, 0, rounds)
    assert_equal(reference[f"{name}/i"], ref[0], f"{name}: randint")
    assert_equal(reference[f"{name}/i4"], np.concatenate(ref), f"{name}: randint4x")


@pytest.mark.parametrize("name", ["i32seed", "i64seed_off64", "rounds7"])
def test_rand_randn_randint_randint4x(name, reference):
  ours = _run_ours(name)
  assert_equal(ours["i"], reference[f"{name}/i"], "randint")
  assert_equal(ours["i4"], reference[f"{name}/i4"], "randint4x")
  assert_equal(ours["f"], reference[f"{name}/f"], "rand")
  assert ((ours["f"] >= 0) & (ours["f"] < 1)).all()
  np.testing.assert_allclose(ours["n"], reference[f"{name}/n"], rtol=2e-6, atol=2e-6,
                             err_msg="randn")
  np.testing.assert_allclose(ours["f4"][:N], reference[f"{name}/f4"][:N], rtol=1e-6, atol=0,
                             err_msg="rand4x")
  np.testing.assert_allclose(ours["f4"][N:], reference[f"{name}/f4"][N:], rtol=1e-5, atol=1e-5,
                             err_msg="randn4x")


def test_randint_on_2d_offsets(reference):
  assert_equal(_run_ours("2d")["out"], reference["2d/out"])


def test_philox_with_64_bit_counters(reference):
  assert_equal(_run_ours("philox64")["out"], reference["philox64/out"])


def test_randn_statistics():
  """A sanity check independent of any reference: mean ~ 0, std ~ 1 for 300 samples."""
  outs = _run_ours("i32seed")
  assert abs(outs["n"].mean()) < 0.2 and 0.8 < outs["n"].std() < 1.2
  assert abs(outs["f"].mean() - 0.5) < 0.06
