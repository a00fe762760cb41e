"""Wrong arguments to triton_call get errors that say what was wrong and where: too many
positional operands, a list, a str or None for a kernel parameter, a tuple for a parameter the
kernel does not use as a tuple, and grids whose entries are not ints."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import triton
import triton.language as tl

import jax_triton_cpu as jt


@triton.jit
def add_kernel(x_ptr, y_ptr, out_ptr, n, BLOCK: tl.constexpr):
  offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
  mask = offs < n
  tl.store(out_ptr + offs, tl.load(x_ptr + offs, mask=mask) + tl.load(y_ptr + offs, mask=mask),
           mask=mask)


X = jnp.arange(8, dtype=jnp.float32)


def _add(*args, grid=(1,), **kwargs):
  return jt.triton_call(*args, kernel=add_kernel, out_type=jax.typeof(X), grid=grid, BLOCK=8,
                        **kwargs)


def test_the_right_call_works():
  np.testing.assert_array_equal(_add(X, X, n=8), 2 * np.arange(8))


def test_too_many_positional_operands_say_where_they_went():
  with pytest.raises(TypeError) as e:
    _add(X, X, 8, 5, 7)
  message = str(e.value)
  assert "multiple values for argument 'BLOCK'" in message, message
  assert "kernel 'add_kernel' has parameters (x_ptr, y_ptr, out_ptr, n, BLOCK)" in message
  assert "out_ptr=8, n=5, BLOCK=7" in message and "out_type fills" in message, message
  with pytest.raises(TypeError, match=r"triton_call got 6 positional arguments, but kernel "
                                      r"'add_kernel' has parameters \(x_ptr, y_ptr, out_ptr, n, "
                                      r"BLOCK\)"):
    _add(X, X, 8, 5, 7, 9)


@pytest.mark.parametrize("value,what", [
    ([1.0, 2.0], r"is a list \(\[1.0, 2.0\]\); .* pass an array \(jnp.asarray\)"),
    ("8", r"is a str \('8'\); .* strings can only be given to tl.constexpr parameters"),
    (None, r"is None; .* there are no None arguments"),
    (object(), r"is a object \(<object object"),
])
def test_an_argument_that_cannot_be_passed_names_its_parameter(value, what):
  with pytest.raises(TypeError, match=r"argument for kernel parameter 'n' " + what):
    _add(X, X, n=value)
  with pytest.raises(TypeError, match=r"argument for kernel parameter 'x_ptr' " + what):
    _add(value, X, n=8)


def test_a_tuple_for_a_parameter_that_is_no_tuple():
  with pytest.raises(TypeError, match=r"kernel 'add_kernel': parameter\(s\) \['n'\] were given "
                                      r"tuples, which bind only to parameters the kernel uses as "
                                      r"tuples \(x\[0\], ...\); Triton's error:\n"):
    _add(X, X, n=(8,))


@pytest.mark.parametrize("grid", [4.0, (1.5,), (1, 2.0), "1", (True,), None])
def test_grid_entries_must_be_ints(grid):
  with pytest.raises(TypeError, match=r"grid must be an int or a tuple of up to 3 ints, got "):
    _add(X, X, n=8, grid=grid)


def test_a_grid_function_must_return_ints():
  with pytest.raises(TypeError, match=r"got \(1.0,\) \(returned by the grid function\)"):
    _add(X, X, n=8, grid=lambda meta: (meta["BLOCK"] / 8,))


@pytest.mark.parametrize("grid", [1, (1,), [1], np.int64(1), (np.int32(1), 1, 1)])
def test_int_grids_work(grid):
  np.testing.assert_array_equal(_add(X, X, n=8, grid=grid), 2 * np.arange(8))
