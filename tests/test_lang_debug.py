"""Debug ops: tl.device_print (output checked with capfd), tl.static_print, tl.static_assert (a
compile-time failure), tl.device_assert with debug=True (the launch returns a non-zero status and
`<symbol>_message` names the message, the file and the line; without debug the assert is compiled
out), tl.debug_barrier."""
import inspect
import re

import numpy as np
import pytest
import triton
import triton.language as tl

from lang_util import compiled, launch, message, run

_LINE = re.compile(r"pid \((\d+), (\d+), (\d+)\)(?: idx \(([\d, ]+)\))?(.*)$")


def _prints(text, prefix):
  """[(pid, idx tuple, rest of the line)] of the printed lines that carry `prefix`."""
  found = []
  for line in text.splitlines():
    m = _LINE.search(line)
    if m and m.group(5).strip().split(":")[0].split(" (")[0] == prefix:
      idx = tuple(int(v) for v in m.group(4).split(",")) if m.group(4) else ()
      found.append(((int(m.group(1)), int(m.group(2)), int(m.group(3))), idx, m.group(5)))
  return found


def _value(rest):
  """The printed value: the last whitespace-separated word of the line."""
  word = rest.split()[-1]
  assert re.fullmatch(r"-?(0x)?[0-9a-f.]+(e[-+]?\d+)?|-?(inf|nan)", word), (
      f"no value separated by whitespace at the end of {rest!r}")
  return word


@triton.jit
def print_kernel(x_ptr, f_ptr, BLOCK: tl.constexpr):
  offs = tl.arange(0, BLOCK)
  x = tl.load(x_ptr + tl.program_id(0) * BLOCK + offs)
  tl.device_print("xval", x)
  f = tl.load(f_ptr + offs)
  tl.device_print("fval", f)
  tl.device_print("pidval", tl.program_id(0) * 100 + 7)
  tl.device_print("hexval", x, hex=True)


def test_device_print_tensors_and_scalars(capfd):
  block, programs = 8, 2
  x = np.arange(programs * block, dtype=np.int32) * 3 - 5
  f = (np.arange(block, dtype=np.float32) + 0.5) * -1.25
  run(print_kernel, {"x_ptr": "*i32", "f_ptr": "*fp32"}, [x, f], (programs,), {"BLOCK": block})
  out = capfd.readouterr().out
  xs = _prints(out, "xval")
  assert len(xs) == programs * block, out[-2000:]
  for pid, idx, rest in xs:
    assert int(_value(rest)) == x[pid[0] * block + idx[0]], rest
  fs = _prints(out, "fval")
  assert len(fs) == programs * block
  for pid, idx, rest in fs:
    assert float(_value(rest)) == pytest.approx(float(f[idx[0]]), abs=1e-5), rest
  ps = _prints(out, "pidval")
  assert sorted(int(_value(r)) for _, _, r in ps) == [7, 107]
  hs = _prints(out, "hexval")
  assert len(hs) == programs * block
  for pid, idx, rest in hs:
    v = _value(rest)
    assert v.startswith("0x"), rest
    assert int(v, 16) % 2**32 == int(x[pid[0] * block + idx[0]]) % 2**32, rest


@triton.jit
def print_2d_kernel(x_ptr, y_ptr, R: tl.constexpr, C: tl.constexpr):
  offs = tl.arange(0, R)[:, None] * C + tl.arange(0, C)[None, :]
  x = tl.load(x_ptr + offs)
  y = tl.load(y_ptr + offs)
  tl.device_print("xtwo", x)
  tl.device_print("bf", y.to(tl.bfloat16))


def test_device_print_2d_and_bf16(capfd):
  R, C = 2, 4
  x = np.arange(R * C, dtype=np.int64).reshape(R, C) - 3
  y = np.arange(R * C, dtype=np.float16).reshape(R, C) / 4
  run(print_2d_kernel, {"x_ptr": "*i64", "y_ptr": "*fp16"}, [x, y], (1,), {"R": R, "C": C})
  out = capfd.readouterr().out
  lines = _prints(out, "xtwo")
  assert len(lines) == R * C, out[-2000:]
  for _, idx, rest in lines:
    assert len(idx) == 2, rest
    assert int(_value(rest)) == x[idx], rest
  bf = _prints(out, "bf")
  assert len(bf) == R * C
  for _, (i, j), rest in bf:
    assert float(_value(rest)) == float(y[i, j]), rest


@triton.jit
def print_operands_kernel(x_ptr, y_ptr, BLOCK: tl.constexpr):
  offs = tl.arange(0, BLOCK)
  tl.device_print("two", tl.load(x_ptr + offs), tl.load(y_ptr + offs))


def test_device_print_several_operands(capfd):
  block = 4
  x = np.arange(block, dtype=np.int32) - 3
  y = np.arange(block, dtype=np.float32) / 4
  run(print_operands_kernel, {"x_ptr": "*i32", "y_ptr": "*fp32"}, [x, y], (1,), {"BLOCK": block})
  out = capfd.readouterr().out
  lines = _prints(out, "two")
  assert len(lines) == 2 * block, out[-2000:]
  values = {}
  for _, idx, rest in lines:
    values.setdefault(idx, []).append(float(_value(rest)))
  for (i,), vs in values.items():
    assert sorted(vs) == sorted([float(x[i]), float(y[i])]), (i, vs)


@triton.jit
def static_print_kernel(out_ptr, BLOCK: tl.constexpr):
  tl.static_print("static block =", BLOCK)
  tl.store(out_ptr + tl.arange(0, BLOCK), tl.arange(0, BLOCK))


def test_static_print(capfd):
  out = np.zeros(16, np.int32)
  run(static_print_kernel, {"out_ptr": "*i32"}, [out], (1,), {"BLOCK": 16})
  captured = capfd.readouterr()
  assert "static block =" in captured.out + captured.err
  assert "16" in captured.out + captured.err
  assert (out == np.arange(16)).all()


@triton.jit
def static_assert_kernel(out_ptr, BLOCK: tl.constexpr):
  tl.static_assert(BLOCK % 2 == 0, "BLOCK must be even")
  tl.store(out_ptr + tl.arange(0, 16), BLOCK)


def test_static_assert_fails_at_compile_time():
  with pytest.raises(Exception, match="BLOCK must be even"):
    compiled(static_assert_kernel, {"out_ptr": "*i32"}, {"BLOCK": 3})
  out = np.zeros(16, np.int32)
  run(static_assert_kernel, {"out_ptr": "*i32"}, [out], (1,), {"BLOCK": 4})
  assert (out == 4).all()


@triton.jit
def assert_kernel(x_ptr, out_ptr, limit, BLOCK: tl.constexpr):
  pid = tl.program_id(0)
  offs = pid * BLOCK + tl.arange(0, BLOCK)
  x = tl.load(x_ptr + offs)
  tl.device_assert(x < limit, "x must stay below the limit")
  tl.store(out_ptr + offs, x + 1)
  tl.device_assert(pid < 100, "scalar check")


def _assert_line(text):
  source, first = inspect.getsourcelines(assert_kernel.fn)
  return first + next(i for i, line in enumerate(source) if text in line)


_SIG = {"x_ptr": "*i32", "out_ptr": "*i32", "limit": "i32"}


def test_device_assert_with_debug_fails_the_launch_with_a_message():
  block, programs = 8, 4
  x = np.arange(programs * block, dtype=np.int32)
  out = np.zeros_like(x)
  c = compiled(assert_kernel, _SIG, {"BLOCK": block}, debug=True)
  limit = 2 * block + 3  # program 2 is the first to fail
  status = launch(c, [x, out, limit], (programs,))
  assert status != 0
  text = message(c)
  assert text is not None
  assert "x must stay below the limit" in text, text
  assert "test_lang_debug.py" in text, text
  assert str(_assert_line("x must stay below the limit")) in text, text
  assert "2" in re.sub(r"test_lang_debug.py:\d+", "", text), text
  assert (out[:2 * block] == x[:2 * block] + 1).all(), "programs before the failure ran"
  # the status and message are per launch: a passing launch returns 0
  assert launch(c, [x, out, 10**6], (programs,)) == 0


def test_device_assert_on_a_scalar_condition():
  block, programs = 1, 102
  x = np.zeros(programs * block, np.int32)
  out = np.zeros_like(x)
  c = compiled(assert_kernel, _SIG, {"BLOCK": block}, debug=True)
  assert launch(c, [x, out, 10**6], (programs,)) != 0
  text = message(c)
  assert "scalar check" in text and str(_assert_line("scalar check")) in text, text
  assert "100" in text, text


def test_device_assert_without_debug_is_compiled_out():
  block, programs = 8, 4
  x = np.arange(programs * block, dtype=np.int32)
  out = np.zeros_like(x)
  c = compiled(assert_kernel, _SIG, {"BLOCK": block}, debug=False)
  assert launch(c, [x, out, 0], (programs,)) == 0
  assert (out == x + 1).all()
  assert "x must stay below the limit" not in c.llvm_ir


@triton.jit
def barrier_kernel(x_ptr, out_ptr, BLOCK: tl.constexpr):
  offs = tl.arange(0, BLOCK)
  tl.store(out_ptr + offs, tl.load(x_ptr + offs) * 2)
  tl.debug_barrier()
  tl.store(out_ptr + offs, tl.load(out_ptr + BLOCK - 1 - offs) + 1)


def test_debug_barrier():
  x = np.arange(16, dtype=np.float32)
  out = np.zeros_like(x)
  run(barrier_kernel, {"x_ptr": "*fp32", "out_ptr": "*fp32"}, [x, out], (1,), {"BLOCK": 16})
  assert (out == (x * 2)[::-1] + 1).all()
