"""Control flow: nested for loops, while loops (data-dependent), program-id-dependent bounds,
negative steps, tl.range (with pipelining / unrolling hints) and tl.static_range, if/else on scalars
with tensor results, ifs without else, early returns, noinline functions, constexpr functions, and
tuples as arguments and results of jit functions."""
import numpy as np
import pytest
import triton
import triton.language as tl

from lang_util import assert_equal, compile_nested, launch, run


# ---- loops --------------------------------------------------------------------------------------

@triton.jit
def nested_loops_kernel(x_ptr, out_ptr, n, m, BLOCK: tl.constexpr):
  offs = tl.arange(0, BLOCK)
  x = tl.load(x_ptr + offs)
  acc = tl.zeros((BLOCK,), tl.int32)
  s = 0
  for i in range(n):
    for j in range(m):
      acc += x * (i + 2 * j)
      s += i * j
    acc = acc - i
  tl.store(out_ptr + offs, acc)
  tl.store(out_ptr + BLOCK, s)
  # a loop-carried pointer and a triple nest with a constant inner trip count
  p = out_ptr + BLOCK + 1
  t = tl.zeros((BLOCK,), tl.int32)
  for i in range(n):
    for j in range(2):
      for k in range(m):
        t += (i + j + k) % 3
    tl.store(p, i * 10)
    p += 1
  tl.store(out_ptr + 2 * BLOCK + offs, t)


@pytest.mark.parametrize("n,m", [(0, 3), (1, 1), (4, 5), (7, 0)])
def test_nested_for_loops(n, m):
  block = 16
  x = np.arange(block, dtype=np.int32) - 5
  out = np.zeros(3 * block, np.int32)
  run(nested_loops_kernel, {"x_ptr": "*i32", "out_ptr": "*i32", "n": "i32", "m": "i32"},
      [x, out, n, m], (1,), {"BLOCK": block})
  acc = np.zeros(block, np.int64)
  s = 0
  t = 0
  for i in range(n):
    for j in range(m):
      acc += x * (i + 2 * j)
      s += i * j
    acc -= i
    for j in range(2):
      for k in range(m):
        t += (i + j + k) % 3
  assert_equal(out[:block], acc.astype(np.int32), "acc")
  assert out[block] == s
  assert_equal(out[block + 1:block + 1 + n], np.arange(n, dtype=np.int32) * 10, "pointer walk")
  assert_equal(out[2 * block:], np.full(block, t, np.int32), "triple nest")


@triton.jit
def collatz_kernel(out_ptr):
  """A data-dependent while loop with an if/else on scalars inside, per program."""
  pid = tl.program_id(0)
  v = pid + 1
  steps = 0
  while v != 1:
    if v % 2 == 0:
      v = v // 2
    else:
      v = 3 * v + 1
    steps += 1
  tl.store(out_ptr + pid, steps)


def _collatz(v):
  steps = 0
  while v != 1:
    v = v // 2 if v % 2 == 0 else 3 * v + 1
    steps += 1
  return steps


def test_while_loop_with_data_dependent_trip_count():
  programs = 40
  out = np.full(programs, -1, np.int32)
  run(collatz_kernel, {"out_ptr": "*i32"}, [out], (programs,))
  assert_equal(out, np.array([_collatz(v) for v in range(1, programs + 1)], np.int32))


@triton.jit
def tensor_while_kernel(x_ptr, out_ptr, BLOCK: tl.constexpr):
  """A while loop whose condition is a reduction of a loop-carried tensor."""
  offs = tl.arange(0, BLOCK)
  x = tl.load(x_ptr + offs)
  it = 0
  while tl.max(x, axis=0) > 1:
    x = tl.where(x > 1, x // 2, x)
    it += 1
  tl.store(out_ptr + offs, x)
  tl.store(out_ptr + BLOCK, it)


def test_while_loop_on_a_tensor_reduction():
  x = np.array([1, 2, 100, 7, 0, 64, 3, 1000] * 2, np.int32)
  out = np.zeros(17, np.int32)
  run(tensor_while_kernel, {"x_ptr": "*i32", "out_ptr": "*i32"}, [x, out], (1,), {"BLOCK": 16})
  v = x.copy()
  it = 0
  while v.max() > 1:
    v = np.where(v > 1, v // 2, v)
    it += 1
  assert_equal(out[:16], v)
  assert out[16] == it


@triton.jit
def pid_bounds_kernel(out_ptr, n):
  pid = tl.program_id(0)
  a = 0
  for i in range(pid):                      # 0 .. pid-1
    a += i
  b = 0
  for i in range(pid, n, 3):                # a pid-dependent start and a step
    b += i
  c = 0
  for i in range(n, pid, -2):               # a negative step
    c += i
  d = 0
  for i in tl.range(pid, 2 * pid + 1, num_stages=2):
    d += i * i
  e = 0
  for i in tl.range(0, n, 2, loop_unroll_factor=2):
    e += i + pid
  tl.store(out_ptr + pid * 5 + 0, a)
  tl.store(out_ptr + pid * 5 + 1, b)
  tl.store(out_ptr + pid * 5 + 2, c)
  tl.store(out_ptr + pid * 5 + 3, d)
  tl.store(out_ptr + pid * 5 + 4, e)


def test_loops_with_program_id_dependent_bounds_and_steps():
  programs, n = 12, 9
  out = np.zeros(programs * 5, np.int32)
  run(pid_bounds_kernel, {"out_ptr": "*i32", "n": "i32"}, [out, n], (programs,))
  exp = []
  for pid in range(programs):
    exp += [sum(range(pid)), sum(range(pid, n, 3)), sum(range(n, pid, -2)),
            sum(i * i for i in range(pid, 2 * pid + 1)), sum(i + pid for i in range(0, n, 2))]
  assert_equal(out, np.array(exp, np.int32))


@triton.jit
def static_range_kernel(x_ptr, out_ptr, BLOCK: tl.constexpr, STEPS: tl.constexpr):
  offs = tl.arange(0, BLOCK)
  x = tl.load(x_ptr + offs)
  acc = tl.zeros((BLOCK,), tl.float32)
  for i in tl.static_range(STEPS):
    if i % 2 == 0:                          # a static if on the constexpr index
      acc += x * i
    else:
      acc -= x
  for i in tl.static_range(1, 4, 2):        # 1, 3
    acc += i
  for i in tl.static_range(2):
    for j in tl.static_range(i + 1):        # bounds from an outer constexpr index
      acc += 100 * (i + j)
  tl.store(out_ptr + offs, acc)


def test_static_range():
  block, steps = 32, 5
  x = np.arange(block, dtype=np.float32)
  out = np.zeros(block, np.float32)
  run(static_range_kernel, {"x_ptr": "*fp32", "out_ptr": "*fp32"}, [x, out], (1,),
      {"BLOCK": block, "STEPS": steps})
  acc = np.zeros(block, np.float32)
  for i in range(steps):
    acc = acc + x * i if i % 2 == 0 else acc - x
  acc += 4 + 100 * (0 + 1 + 2)
  assert_equal(out, acc)


@triton.jit
def loop_carried_kernel(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
  """Several loop-carried values of different kinds, and a loop whose body has an if."""
  offs = tl.arange(0, BLOCK)
  ptrs = x_ptr + offs
  total = tl.zeros((BLOCK,), tl.float32)
  best = tl.full((BLOCK,), -float("inf"), tl.float32)
  count = 0
  for i in range(n):
    v = tl.load(ptrs)
    total += v
    best = tl.maximum(best, v)
    if tl.sum(v, axis=0) > 0:
      count += 1
    ptrs += BLOCK
  tl.store(out_ptr + offs, total)
  tl.store(out_ptr + BLOCK + offs, best)
  tl.store(out_ptr + 2 * BLOCK, count.to(tl.float32))


def test_loop_carried_tensors_pointers_and_conditional_counters():
  block, n = 16, 9
  x = np.random.default_rng(1).integers(-5, 6, (n, block)).astype(np.float32)
  out = np.zeros(2 * block + 1, np.float32)
  run(loop_carried_kernel, {"x_ptr": "*fp32", "out_ptr": "*fp32", "n": "i32"}, [x, out, n], (1,),
      {"BLOCK": block})
  assert_equal(out[:block], x.sum(0))
  assert_equal(out[block:2 * block], x.max(0))
  assert out[2 * block] == (x.sum(1) > 0).sum()


# ---- if / else ----------------------------------------------------------------------------------

@triton.jit
def if_else_kernel(x_ptr, out_ptr, BLOCK: tl.constexpr):
  pid = tl.program_id(0)
  offs = tl.arange(0, BLOCK)
  x = tl.load(x_ptr + pid * BLOCK + offs)
  if tl.sum(x, axis=0) > 0:                 # a runtime condition; both branches yield tensors
    y = x * 2
    z = 1
  else:
    y = -x
    z = 2
  if pid % 3 == 0:                          # nested ifs, an elif
    y = y + 100
  elif pid % 3 == 1:
    if z == 1:
      y = y + 1000
  else:
    y = y - 7
  tl.store(out_ptr + pid * BLOCK + offs, y)


def test_if_else_with_tensor_results():
  programs, block = 9, 16
  x = np.random.default_rng(2).integers(-9, 10, (programs, block)).astype(np.int32)
  out = np.zeros_like(x)
  run(if_else_kernel, {"x_ptr": "*i32", "out_ptr": "*i32"}, [x, out], (programs,),
      {"BLOCK": block})
  exp = np.zeros_like(x)
  for pid in range(programs):
    pos = x[pid].sum() > 0
    y = x[pid] * 2 if pos else -x[pid]
    if pid % 3 == 0:
      y = y + 100
    elif pid % 3 == 1:
      if pos:
        y = y + 1000
    else:
      y = y - 7
    exp[pid] = y
  assert_equal(out, exp)


@triton.jit
def if_without_else_kernel(out_ptr, BLOCK: tl.constexpr):
  """An if without an else branch, with side effects only (scf.if with an empty else region)."""
  pid = tl.program_id(0)
  offs = tl.arange(0, BLOCK)
  if pid % 2 == 0:
    tl.store(out_ptr + pid * BLOCK + offs, offs + pid)


def test_if_without_else_side_effects_only():
  programs, block = 4, 8
  out = np.full((programs, block), -1, np.int32)
  run(if_without_else_kernel, {"out_ptr": "*i32"}, [out], (programs,), {"BLOCK": block})
  exp = np.full((programs, block), -1, np.int32)
  exp[0] = np.arange(block)
  exp[2] = np.arange(block) + 2
  assert_equal(out, exp)


@triton.jit
def if_value_one_branch_kernel(out_ptr, flag, BLOCK: tl.constexpr):
  """A value updated in the then-branch only (the else branch yields it unchanged)."""
  offs = tl.arange(0, BLOCK)
  v = offs * 0
  c = 3
  if flag:
    v = v + 5
    c = 4
  tl.store(out_ptr + offs, v + c)


@pytest.mark.parametrize("flag", [0, 1])
def test_if_updating_values_in_one_branch(flag):
  out = np.full(8, -1, np.int32)
  run(if_value_one_branch_kernel, {"out_ptr": "*i32", "flag": "i32"}, [out, flag], (1,),
      {"BLOCK": 8})
  assert_equal(out, np.full(8, 9 if flag else 3, np.int32))


@triton.jit
def early_exit_kernel(x_ptr, out_ptr, n_valid, BLOCK: tl.constexpr):
  pid = tl.program_id(0)
  if pid >= n_valid:
    return
  offs = tl.arange(0, BLOCK)
  x = tl.load(x_ptr + pid * BLOCK + offs)
  if tl.max(x, axis=0) < 0:                 # a second, data-dependent exit
    tl.store(out_ptr + pid * BLOCK + offs, x * 0 - 1)
    return
  tl.store(out_ptr + pid * BLOCK + offs, x + 1)


def test_early_return():
  programs, block, n_valid = 8, 16, 5
  x = np.random.default_rng(3).integers(0, 10, (programs, block)).astype(np.int32)
  x[2] = -np.abs(x[2]) - 1
  out = np.full_like(x, 99)
  run(early_exit_kernel, {"x_ptr": "*i32", "out_ptr": "*i32", "n_valid": "i32"},
      [x, out, n_valid], (programs,), {"BLOCK": block})
  exp = np.full_like(x, 99)
  exp[:n_valid] = x[:n_valid] + 1
  exp[2] = -1
  assert_equal(out, exp)


@triton.jit
def guard_exit_kernel(x_ptr, out_ptr, n_valid, BLOCK: tl.constexpr):
  """The common guard: surplus programs return at once."""
  pid = tl.program_id(0)
  if pid >= n_valid:
    return
  offs = tl.arange(0, BLOCK)
  tl.store(out_ptr + pid * BLOCK + offs, tl.load(x_ptr + pid * BLOCK + offs) * 2)


def test_early_return_guard_at_the_start():
  programs, block, n_valid = 6, 8, 4
  x = np.arange(programs * block, dtype=np.int32).reshape(programs, block)
  out = np.full_like(x, 99)
  run(guard_exit_kernel, {"x_ptr": "*i32", "out_ptr": "*i32", "n_valid": "i32"},
      [x, out, n_valid], (programs,), {"BLOCK": block})
  exp = np.full_like(x, 99)
  exp[:n_valid] = x[:n_valid] * 2
  assert_equal(out, exp)


@triton.jit
def ternary_kernel(out_ptr, a, b):
  """Python conditional expressions and short-circuit-free boolean logic on scalars."""
  pid = tl.program_id(0)
  v = a if pid % 2 == 0 else b
  w = (pid > 1) & (pid < 5) | (pid == 7)
  tl.store(out_ptr + 2 * pid, v)
  tl.store(out_ptr + 2 * pid + 1, w.to(tl.int32))


def test_conditional_expressions():
  out = np.zeros(16, np.int32)
  run(ternary_kernel, {"out_ptr": "*i32", "a": "i32", "b": "i32"}, [out, 11, -4], (8,))
  pid = np.arange(8)
  exp = np.stack([np.where(pid % 2 == 0, 11, -4), ((pid > 1) & (pid < 5)) | (pid == 7)], 1)
  assert_equal(out, exp.ravel().astype(np.int32))


# ---- functions: noinline, constexpr functions ---------------------------------------------------

# (triton 3.9's frontend allows only scalar (and pointer) arguments in noinline functions.)

@triton.jit(noinline=True)
def _noinline_affine(x, a, b):
  return x * a + b


@triton.jit(noinline=True)
def _noinline_store(ptr, v, BLOCK: tl.constexpr):
  offs = tl.arange(0, BLOCK)
  tl.store(ptr + offs, offs * v + tl.load(ptr + offs))  # tensors inside the callee


@triton.jit(noinline=True)
def _noinline_pid_and_pair(x):
  return x + tl.program_id(0), x * tl.num_programs(0)


@triton.jit(noinline=True)
def _noinline_float(a, b):
  return tl.sqrt(a * a + b * b)


@triton.jit
def noinline_kernel(out_ptr, f_ptr, s, fs, BLOCK: tl.constexpr):
  pid = tl.program_id(0)
  base = out_ptr + pid * 2 * BLOCK
  y = _noinline_affine(pid, 3, s)                    # scalar args and result
  tl.store(base, y)
  p, q = _noinline_pid_and_pair(s)                   # program_id inside a callee; 2 results
  tl.store(base + 1, p)
  tl.store(base + 2, q)
  z = _noinline_affine(_noinline_affine(pid, 2, 1), 2, 1)  # nested calls
  tl.store(base + 3, z)
  _noinline_store(base + BLOCK, pid + 1, BLOCK)      # side effects in a callee
  tl.store(f_ptr + pid, _noinline_float(fs, pid.to(tl.float32)))


def test_noinline_functions():
  programs, block, s, fs = 3, 16, 7, 2.5
  out = np.ones(programs * 2 * block, np.int32)
  f = np.zeros(programs, np.float32)
  run(noinline_kernel, {"out_ptr": "*i32", "f_ptr": "*fp32", "s": "i32", "fs": "fp32"},
      [out, f, s, fs], (programs,), {"BLOCK": block})
  out = out.reshape(programs, 2, block)
  for pid in range(programs):
    assert out[pid, 0, 0] == pid * 3 + s, "scalar in/out"
    assert out[pid, 0, 1] == s + pid, "program_id in a noinline function"
    assert out[pid, 0, 2] == s * programs, "num_programs in a noinline function"
    assert out[pid, 0, 3] == (pid * 2 + 1) * 2 + 1, "nested calls"
    assert_equal(out[pid, 1], np.arange(block, dtype=np.int32) * (pid + 1) + 1, "side effects")
  assert_equal(f, np.sqrt(np.float32(fs) ** 2 + np.arange(programs, dtype=np.float32) ** 2))


@triton.jit
def _step_by_sign(x, pid):
  """Early returns from inside ifs: branches between blocks in TTIR."""
  if pid == 0:
    return x + 1
  elif pid == 1:
    return x * 2
  return x - 3


@triton.jit
def early_return_callee_kernel(x_ptr, out_ptr, BLOCK: tl.constexpr):
  pid = tl.program_id(0)
  offs = pid * BLOCK + tl.arange(0, BLOCK)
  x = tl.load(x_ptr + offs)
  if pid < 3:  # the call inside an if of the kernel
    x = _step_by_sign(x, pid)
  tl.store(out_ptr + offs, x)


def test_called_function_with_early_returns():
  programs, block = 4, 16
  x = np.arange(programs * block, dtype=np.int32).reshape(programs, block)
  out = np.zeros_like(x)
  run(early_return_callee_kernel, {"x_ptr": "*i32", "out_ptr": "*i32"}, [x, out], (programs,),
      {"BLOCK": block})
  assert_equal(out, np.stack([x[0] + 1, x[1] * 2, x[2] - 3, x[3]]))


@triton.jit
def _store_unless_first(ptr, pid):
  if pid == 0:
    return
  tl.store(ptr + pid, pid)


@triton.jit
def early_return_store_kernel(out_ptr):
  pid = tl.program_id(0)
  if pid < 3:  # (at the kernel's top level, triton's inliner takes the function's branches in)
    _store_unless_first(out_ptr, pid)


def test_called_function_with_an_early_return_and_a_store_is_refused():
  with pytest.raises(NotImplementedError, match="_store_unless_first.*returns early"):
    run(early_return_store_kernel, {"out_ptr": "*i32"}, [np.zeros(4, np.int32)], (4,))


@triton.jit
def _nothing_on_the_taken_path(x):
  never = False
  if never:
    return x


@triton.jit
def poison_kernel(out_ptr, BLOCK: tl.constexpr):
  """A result the function leaves undefined (ub.poison in TTIR), scalar and tensor: any value."""
  tl.store(out_ptr, _nothing_on_the_taken_path(0))
  tl.store(out_ptr + 1 + tl.arange(0, BLOCK), _nothing_on_the_taken_path(tl.arange(0, BLOCK)))
  tl.store(out_ptr + 1 + BLOCK, 7)


def test_undefined_results_compile_and_run():
  out = np.zeros(10, np.int32)
  c = run(poison_kernel, {"out_ptr": "*i32"}, [out], (1,), {"BLOCK": 8})
  assert "ub.poison" in c.ttir and "poison" in c.llvm_ir
  assert out[9] == 7


@triton.jit
def licm_hint_kernel(x_ptr, n):
  i = 0
  while tl.condition(i < n, disable_licm=True):
    tl.store(x_ptr + i, i)
    i = i + 1
  for j in tl.range(0, n, disable_licm=True):
    tl.store(x_ptr + n + j, 2 * j)
  for j in tl.range(0, n):
    tl.store(x_ptr + 2 * n + j, 3 * j)


def test_disable_licm_reaches_llvm():
  """disable_licm=True (tl.range, tl.condition) becomes LLVM loop metadata on those loops only."""
  x = np.zeros(12, np.int32)
  c = run(licm_hint_kernel, {"x_ptr": "*i32", "n": "i32"}, [x, 4], (1,))
  assert_equal(x, np.concatenate([np.arange(4), 2 * np.arange(4), 3 * np.arange(4)]).astype(np.int32))
  assert c.llvm_ir.count("!llvm.loop ") == 2 and "llvm.licm.disable" in c.llvm_ir


@triton.constexpr_function
def _next_pow2(n):
  return 1 << (int(n) - 1).bit_length()


@triton.constexpr_function
def _pick_dtype(wide):
  return tl.int64 if wide else tl.int32


@triton.jit
def _helper_with_constexpr(x, K: tl.constexpr):
  return x * K + K // 2


@triton.jit
def constexpr_fn_kernel(out_ptr, N: tl.constexpr, WIDE: tl.constexpr):
  P: tl.constexpr = _next_pow2(N)
  offs = tl.arange(0, P)
  v = offs.to(_pick_dtype(WIDE))
  tl.store(out_ptr + offs, _helper_with_constexpr(v, 3), mask=offs < N)
  tl.store(out_ptr + N, P)


@pytest.mark.parametrize("n,wide", [(5, False), (17, True)])
def test_constexpr_functions(n, wide):
  out = np.zeros(n + 1, np.int64)
  run(constexpr_fn_kernel, {"out_ptr": "*i64"}, [out], (1,), {"N": n, "WIDE": wide})
  p = 1 << (n - 1).bit_length()
  assert_equal(out, np.append(np.arange(n) * 3 + 1, p).astype(np.int64))


# ---- tuples -------------------------------------------------------------------------------------

@triton.jit
def _minmax(x):
  return tl.min(x, axis=0), tl.max(x, axis=0)


@triton.jit
def _swap(t):
  return t[1], t[0]


@triton.jit
def tuple_kernel(ptrs, scalars, out_ptr, BLOCK: tl.constexpr):
  """ptrs = (x_ptr, y_ptr), scalars = (a, b): tuples as kernel parameters."""
  offs = tl.arange(0, BLOCK)
  x = tl.load(ptrs[0] + offs)
  y = tl.load(ptrs[1] + offs)
  a, b = scalars
  lo, hi = _minmax(x * a + y)                         # a tuple result
  tl.store(out_ptr, lo)
  tl.store(out_ptr + 1, hi)
  s = _swap((x, y))                                   # a tuple argument
  tl.store(out_ptr + 2 + offs, s[0] - s[1] + b)
  pair = (x, 0)
  for i in range(3):                                  # a loop-carried tuple
    pair = (pair[0] + i, pair[1] + 1)
  tl.store(out_ptr + 2 + BLOCK + offs, pair[0] * pair[1])
  for k in tl.static_range(2):                        # indexing with a constexpr
    tl.store(out_ptr + 2 + 2 * BLOCK + k, tl.sum(ptrs[k].dtype.element_ty.primitive_bitwidth
                                                 + tl.load(ptrs[k] + offs), axis=0))


def test_tuples_as_parameters_and_results():
  block = 16
  rng = np.random.default_rng(4)
  x = rng.integers(-20, 20, block).astype(np.int32)
  y = rng.integers(-20, 20, block).astype(np.int32)
  out = np.zeros(2 + 2 * block + 2, np.int32)
  c = compile_nested(tuple_kernel, {"ptrs": ("*i32", "*i32"), "scalars": ("i32", "i32"),
                                    "out_ptr": "*i32"}, {"BLOCK": block})
  a, b = 3, -11
  assert launch(c, [x, y, a, b, out], (1,)) == 0
  v = x * a + y
  assert out[0] == v.min() and out[1] == v.max()
  assert_equal(out[2:2 + block], y - x + b, "tuple argument")
  assert_equal(out[2 + block:2 + 2 * block], (x + 3) * 3, "loop-carried tuple")
  assert_equal(out[2 + 2 * block:], np.array([(32 + x).sum(), (32 + y).sum()], np.int32))


@triton.jit
def grid_3d_kernel(out_ptr):
  x = tl.program_id(0)
  y = tl.program_id(1)
  z = tl.program_id(2)
  nx = tl.num_programs(0)
  ny = tl.num_programs(1)
  nz = tl.num_programs(2)
  flat = (z * ny + y) * nx + x
  tl.store(out_ptr + flat, x + 10 * y + 100 * z + 1000 * (nx + 10 * ny + 100 * nz))


def test_3d_grid_program_ids():
  gx, gy, gz = 3, 4, 5
  out = np.zeros(gx * gy * gz, np.int32)
  run(grid_3d_kernel, {"out_ptr": "*i32"}, [out], (gx, gy, gz))
  z, y, x = np.meshgrid(np.arange(gz), np.arange(gy), np.arange(gx), indexing="ij")
  assert_equal(out, (x + 10 * y + 100 * z + 1000 * (gx + 10 * gy + 100 * gz)).ravel().astype(
      np.int32))


@triton.jit
def wide_bounds_kernel(out_ptr, n64, n32u, start):
  acc = 0.0
  for i in range(n64):                     # an i64 trip count
    acc += 0.5
  cnt = 0
  for i in range(start, n32u):             # u32 bounds
    cnt += 1
  j = n64 * 0
  while j < n64:                           # an i64 while loop with a float carried value
    acc = acc * 1.0 + 1.0
    j += 2
  tl.store(out_ptr, acc)
  tl.store(out_ptr + 1, cnt.to(tl.float32))


def test_loops_with_i64_and_unsigned_bounds():
  out = np.zeros(2, np.float32)
  run(wide_bounds_kernel, {"out_ptr": "*fp32", "n64": "i64", "n32u": "u32", "start": "u32"},
      [out, 10, 3_000_000_005, 3_000_000_000], (1,))
  assert out[0] == 10 * 0.5 + 5 and out[1] == 5
