"""Tests of triton_call's API: argument binding, jaxpr params, specialisation, compile cache, and
the attributes of the emitted custom call (docs/abi.md).

Most tests stop at lowering (`jax.jit(f).lower(...)`) and replace the back end of the compiler
(`jax_triton_cpu.compiler.compile_ttir`) with a fake that returns a CompiledKernel without building a
library; the frontend (upstream triton: AST -> TTIR) is real. The tests at the end (`test_e2e_*`)
compile and run kernels and compare with numpy.
"""
import hashlib
import re
import struct
import warnings
from unittest import mock

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import triton
import triton.language as tl
from jax._src.interpreters import partial_eval as pe
from jax.sharding import PartitionSpec as P

import jax_triton_cpu as jt
from jax_triton_cpu import compiler
from jax_triton_cpu import triton_lib as jttl
from jax_triton_cpu.compiler import frontend

# ------------------------------------------------------------------------------------------------
# Kernels
# ------------------------------------------------------------------------------------------------


@triton.jit
def add_kernel(x_ptr, y_ptr, n_elements, output_ptr, BLOCK_SIZE: tl.constexpr):
  pid = tl.program_id(axis=0)
  offsets = pid * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
  mask = offsets < n_elements
  x = tl.load(x_ptr + offsets, mask=mask)
  y = tl.load(y_ptr + offsets, mask=mask)
  tl.store(output_ptr + offsets, x + y, mask=mask)


@triton.jit
def add_even_kernel(x_ptr, y_ptr, n_elements, output_ptr, BLOCK_SIZE: tl.constexpr,
                    EVEN: tl.constexpr):
  pid = tl.program_id(axis=0)
  offsets = pid * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
  if EVEN:
    tl.store(output_ptr + offsets, tl.load(x_ptr + offsets) + tl.load(y_ptr + offsets))
  else:
    mask = offsets < n_elements
    x = tl.load(x_ptr + offsets, mask=mask)
    y = tl.load(y_ptr + offsets, mask=mask)
    tl.store(output_ptr + offsets, x + y, mask=mask)


@triton.jit
def add_default_block_kernel(x_ptr, y_ptr, n_elements, output_ptr, BLOCK_SIZE: tl.constexpr = 8):
  pid = tl.program_id(axis=0)
  offsets = pid * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
  mask = offsets < n_elements
  tl.store(output_ptr + offsets,
           tl.load(x_ptr + offsets, mask=mask) + tl.load(y_ptr + offsets, mask=mask), mask=mask)


@triton.jit
def constexpr_first_kernel(x_ptr, BLOCK_SIZE: tl.constexpr, y_ptr, n_elements, output_ptr):
  offsets = tl.program_id(0) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
  mask = offsets < n_elements
  tl.store(output_ptr + offsets,
           tl.load(x_ptr + offsets, mask=mask) + tl.load(y_ptr + offsets, mask=mask), mask=mask)


@triton.jit
def add_inplace_y_kernel(x_ptr, y_ptr, n_elements, BLOCK_SIZE: tl.constexpr):
  offsets = tl.program_id(0) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
  mask = offsets < n_elements
  x = tl.load(x_ptr + offsets, mask=mask)
  y = tl.load(y_ptr + offsets, mask=mask)
  tl.store(y_ptr + offsets, x + y, mask=mask)


@triton.jit
def inc_inplace_kernel(x_in_out_ptr, n_elements, BLOCK_SIZE: tl.constexpr):
  offsets = tl.program_id(0) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
  mask = offsets < n_elements
  tl.store(x_in_out_ptr + offsets, tl.load(x_in_out_ptr + offsets, mask=mask) + 1, mask=mask)


@triton.jit
def scaled_copy_kernel(scale, x_ptr, output_ptr):
  pid = tl.program_id(0)
  tl.store(output_ptr + pid, scale * tl.load(x_ptr + pid))


@triton.jit
def add_scalar_kernel(x_ptr, y, output_ptr):
  tl.store(output_ptr, tl.load(x_ptr) + y)


@triton.jit
def many_scalars_kernel(out_ptr, a, b, c, d, e, f, g, h, i):
  tl.store(out_ptr + tl.program_id(0), 0.0)


@triton.jit
def tuple_kernel(x_ptr, yz, n_elements, out_ptr, BLOCK_SIZE: tl.constexpr):
  offsets = tl.program_id(0) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
  mask = offsets < n_elements
  x = tl.load(x_ptr + offsets, mask=mask)
  y = tl.load(yz[0] + offsets, mask=mask)
  tl.store(out_ptr + offsets, x + y * yz[1], mask=mask)


@triton.jit
def nested_tuple_kernel(abc, out_ptr, BLOCK_SIZE: tl.constexpr):
  offsets = tl.arange(0, BLOCK_SIZE)
  a = tl.load(abc[0][0] + offsets)
  b = tl.load(abc[0][1] + offsets)
  c = tl.load(abc[1] + offsets)
  tl.store(out_ptr + offsets, a + b + c)


@triton.jit
def two_outputs_kernel(x_ptr, a_ptr, b_ptr):
  x = tl.load(x_ptr)
  tl.store(a_ptr, x)
  tl.store(b_ptr, x + 1)


@triton.jit
def copy_to_new_kernel(x_ptr, y_ptr, out_ptr):
  # x is aliased to output 0 (in place); out_ptr is output 1.
  tl.store(out_ptr, tl.load(y_ptr))
  tl.store(x_ptr, tl.load(x_ptr) + 1.0)


@triton.jit
def add_fn(x, y):
  return x + y


@triton.jit
def mul_fn(x, y):
  return x * y


@triton.jit
def dispatch_kernel(x_ptr, y_ptr, output_ptr, FN: tl.constexpr, BLOCK_SIZE: tl.constexpr):
  offsets = tl.arange(0, BLOCK_SIZE)
  tl.store(output_ptr + offsets, FN(tl.load(x_ptr + offsets), tl.load(y_ptr + offsets)))


@triton.jit
def desc_kernel(desc, out_ptr):
  tl.store(out_ptr, 0.0)


@triton.jit
def option_params_kernel(out_ptr, num_stages: tl.constexpr, num_warps: tl.constexpr,
                         debug: tl.constexpr, num_ctas: tl.constexpr = 1):
  # Constexpr parameters named like launch options receive the options' values, as in Triton.
  tl.store(out_ptr, num_stages * 1000 + num_warps * 10 + debug + (num_ctas - 1) * 100)


@triton.jit
def option_default_kernel(out_ptr, num_warps: tl.constexpr = 8):
  tl.store(out_ptr, num_warps)


_MODULE_KERNELS = [v for v in list(globals().values()) if isinstance(v, triton.runtime.JITFunction)]


def fresh(kernel):
  """A new JITFunction of the same Python function: a kernel with an empty compile cache."""
  return triton.jit(kernel.fn)


# ------------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------------

_FUNC_RE = re.compile(r"tt\.func public @(\w+)\((.*)\) attributes")
_GENERIC_FUNC_RE = re.compile(r'"tt\.func"\(\) <\{function_type = \((.*?)\) -> \(\), '
                              r'sym_name = "(\w+)", sym_visibility = "public"')
_PARAM_RE = re.compile(r"%[\w.]+: (!tt\.ptr<[^>]+>|[a-z0-9]+)")


def _fake_compile_ttir(ttir, options):
  """Stands in for the compiler's back end: a CompiledKernel that names a library never built."""
  ttir = ttir if isinstance(ttir, str) else ttir.ttir  # a frontend.KernelSource
  m = _FUNC_RE.search(ttir)
  if m:
    name, param_types = m.group(1), tuple(_PARAM_RE.findall(m.group(2)))
  else:  # the generic op form
    m = _GENERIC_FUNC_RE.search(ttir)
    assert m, ttir
    name, param_types = m.group(2), tuple(t.strip() for t in m.group(1).split(","))
  digest = hashlib.sha256((ttir + repr(options)).encode()).hexdigest()
  return compiler.CompiledKernel(
      name=name, library_path=f"/fake/lib{name}_{digest[:12]}.so", library_hash=digest,
      symbol=f"{name}_launch", param_types=param_types, ttir=ttir,
      llvm_ir=f"; fake llvm ir of {name}\n", asm=f"# fake asm of {name}\n")


@pytest.fixture
def fake_compiler():
  """Patches compiler.compile_ttir; yields the mock (call_count = back-end compiles)."""
  with mock.patch.object(compiler, "compile_ttir", side_effect=_fake_compile_ttir) as m:
    yield m
  # Kernels compiled by the fake must never reach a test that runs them.
  for k in _MODULE_KERNELS:
    getattr(k, "_jax_triton_cpu_kernel_cache", {}).clear()


@pytest.fixture
def x64():
  prev = jax.config.jax_enable_x64
  jax.config.update("jax_enable_x64", True)
  try:
    yield
  finally:
    jax.config.update("jax_enable_x64", prev)


def _backend_config(text):
  calls = [l for l in text.splitlines() if "@triton_cpu_kernel_call" in l]
  assert len(calls) == 1, text
  return calls[0]


def _int_array_attr(line, name):
  m = re.search(rf"\b{name} = dense<([^>]*)> : tensor<(\d+)xi64>", line)
  assert m, (name, line)
  body, n = m.group(1), int(m.group(2))
  if not body:
    return []
  if body.startswith("["):
    return [int(v) for v in body.strip("[]").split(",")]
  return [int(body)] * n  # splat


def _str_attr(line, name):
  m = re.search(rf'\b{name} = "([^"]*)"', line)
  assert m, (name, line)
  return m.group(1)


def _i32_attr(line, name):
  m = re.search(rf"\b{name} = (-?\d+) : i32", line)
  assert m, (name, line)
  return int(m.group(1))


def _lowered_call(f, *args):
  return _backend_config(jax.jit(f).lower(*args).as_text())


def _add(x, y, kernel=add_kernel, **kwargs):
  kwargs.setdefault("BLOCK_SIZE", 8)
  grid = kwargs.pop("grid", lambda meta: triton.cdiv(x.size, meta["BLOCK_SIZE"]))
  return jt.triton_call(x, y, x.size, kernel=kernel, out_type=jax.typeof(x), grid=grid, **kwargs)


def _eqn(jaxpr):
  (eqn,) = [e for e in jaxpr.eqns if e.primitive is jttl.triton_kernel_call_p]
  return eqn


X8 = jnp.arange(8, dtype=jnp.float32)
Y8 = jnp.ones(8, dtype=jnp.float32)

# ------------------------------------------------------------------------------------------------
# Module surface
# ------------------------------------------------------------------------------------------------


def test_exports():
  assert jt.__version__ == "0.1.0"
  assert jt.__version_info__ == (0, 1, 0)
  assert jt.CUSTOM_CALL_TARGET_NAME == "triton_cpu_kernel_call" == jttl.CUSTOM_CALL_TARGET_NAME
  assert callable(jt.triton_call)
  assert jttl.triton_kernel_call_p.name == "triton_kernel_call"


def test_strides_from_shape():
  assert jt.strides_from_shape((2, 3, 4)) == (12, 4, 1)
  assert jt.strides_from_shape((5,)) == (1,)
  assert jt.strides_from_shape(()) == ()
  assert jt.strides_from_shape((3, 0, 2)) == (0, 2, 1)
  np.testing.assert_array_equal(
      np.array(jt.strides_from_shape((2, 3, 4))) * 4, np.zeros((2, 3, 4), np.float32).strides)


def test_tensor_descriptor_is_a_pytree():
  d = jt.TensorDescriptor.from_array(jnp.zeros((4, 8)), block_shape=(2, 8))
  assert d.shape == (4, 8) and d.strides == (8, 1) and d.block_shape == (2, 8)
  leaves, tree = jax.tree.flatten(d)
  assert len(leaves) == 1 and leaves[0].shape == (4, 8)
  assert jax.tree.unflatten(tree, leaves).block_shape == (2, 8)
  with pytest.raises(ValueError, match="padding"):
    jt.TensorDescriptor.from_array(jnp.zeros(4), (2,), padding="inf")
  with pytest.raises(ValueError, match="same length"):
    jt.TensorDescriptor(jnp.zeros(4), (4,), (1,), (2, 2))


@pytest.mark.parametrize("grid,expected", [
    (4, (4, 1, 1)),
    ((4,), (4, 1, 1)),
    ((4, 5), (4, 5, 1)),
    ((4, 5, 6), (4, 5, 6)),
    (np.int64(3), (3, 1, 1)),
    (lambda meta: meta["B"] * 2, (6, 1, 1)),
    (lambda meta: (meta["B"], 2), (3, 2, 1)),
])
def test_normalize_grid(grid, expected):
  assert jttl.normalize_grid(grid, {"B": 3}) == expected


def test_normalize_grid_too_many_dims():
  with pytest.raises(ValueError, match="three or fewer dimensions"):
    jttl.normalize_grid((1, 2, 3, 4), {})


# ------------------------------------------------------------------------------------------------
# Binding and errors at trace time
# ------------------------------------------------------------------------------------------------


def test_out_type_required():
  with pytest.raises(TypeError, match="Either out_type= or the deprecated out_shape= must be provided"):
    jt.triton_call(X8, Y8, 8, kernel=add_kernel, grid=1, BLOCK_SIZE=8)


def test_out_shape_deprecated():
  with pytest.warns(DeprecationWarning, match="out_shape= is deprecated in favor of out_type="):
    out = jax.eval_shape(lambda x, y: jt.triton_call(
        x, y, 8, kernel=add_kernel, out_shape=jax.ShapeDtypeStruct((8,), jnp.float32), grid=1,
        BLOCK_SIZE=8), X8, Y8)
  assert out.shape == (8,) and out.dtype == jnp.float32


def test_out_shape_and_out_type_conflict():
  with pytest.raises(TypeError, match="Cannot specify both out_type= and the deprecated out_shape="):
    jt.triton_call(X8, Y8, 8, kernel=add_kernel, out_type=X8, out_shape=X8, grid=1, BLOCK_SIZE=8)


def test_backend_options_conflict():
  with pytest.raises(ValueError, match="both as explicit arguments and in ``backend_options``"):
    _add(X8, Y8, num_warps=4, backend_options={"num_warps": 2})


def test_non_hashable_backend_options():
  with pytest.raises(TypeError, match=r"backend_options\['extern_libs'\] must be hashable"):
    _add(X8, Y8, backend_options={"extern_libs": {"libdevice": "/path"}})


def test_backend_options_in_params():
  jaxpr = jax.make_jaxpr(lambda x, y: _add(x, y, num_stages=2,
                                            backend_options={"num_cpu_threads": 3}))(X8, Y8)
  opts = dict(_eqn(jaxpr).params["backend_options"])
  assert opts == {"num_cpu_threads": 3, "num_stages": 2, "debug": False, "num_warps": 4,
                  "num_ctas": 1}


def test_operand_count_error():
  with pytest.raises(ValueError, match="out_type has 2 unaliased outputs, but 1 kernel parameters "
                     "are missing an argument"):
    jt.triton_call(X8, Y8, 8, kernel=add_kernel, out_type=(X8, X8), grid=1, BLOCK_SIZE=8)
  with pytest.raises(ValueError, match="out_type has 1 unaliased outputs, but 2 kernel parameters "
                     "are missing an argument"):
    jt.triton_call(X8, 8, kernel=add_kernel, out_type=X8, grid=1, BLOCK_SIZE=8)


def test_kwarg_operand_conflict_raises():
  with pytest.raises(TypeError, match="multiple values for argument 'x_ptr'"):
    jt.triton_call(X8, x_ptr=X8, kernel=add_kernel, out_type=X8, grid=(1,), BLOCK_SIZE=8)


def test_kwarg_scalar_operand_stays_static():
  call = lambda x, y: jt.triton_call(x, y_ptr=y, n_elements=x.size, kernel=add_kernel,
                                     out_type=jax.typeof(x), grid=(1,), BLOCK_SIZE=8)
  eqn = _eqn(jax.make_jaxpr(call)(X8, Y8))
  assert len(eqn.invars) == 2
  assert "n_elements" not in eqn.params["metaparams"]
  assert dict(eqn.params["metaparams"]) == {"BLOCK_SIZE": 8}


def test_jaxpr_params():
  grid = lambda meta: triton.cdiv(8, meta["BLOCK_SIZE"])
  f = lambda x, y: jt.triton_call(x, y, 8, kernel=add_kernel, out_type=jax.typeof(x), grid=grid,
                                  name="my_add", serialized_metadata=b"meta", BLOCK_SIZE=8)
  eqn = _eqn(jax.make_jaxpr(f)(X8, Y8))
  p = eqn.params
  assert p["fn"] is add_kernel
  assert p["name"] == "my_add"
  assert p["grid"] is grid
  assert p["serialized_metadata"] == b"meta"
  assert dict(p["metaparams"]) == {"BLOCK_SIZE": 8}
  assert p["out_shapes"] == (jax.ShapeDtypeStruct((8,), jnp.float32),)
  assert dict(p["input_output_aliases"]) == {}
  assert p["zeroed_outputs"] == ()
  assert p["cost_estimate"] is None
  assert p["has_side_effect"] is False
  assert p["compute_capability"] is None
  # Static scalars and output placeholders live in the treedef; only arrays are operands.
  tree = p["in_tree"]
  assert tree.num_leaves == 2
  assert "_StaticArg[(8,)]" in str(tree) and "_OutputPlaceholder[(0,)]" in str(tree)
  leaves = tree.unflatten([X8, Y8])
  assert isinstance(leaves[2], jttl._StaticArg) and leaves[2].value == 8
  assert isinstance(leaves[3], jttl._OutputPlaceholder) and leaves[3].ordinal == 0
  assert [(v.aval.shape, v.aval.dtype) for v in eqn.invars] == [((8,), jnp.float32)] * 2
  assert [(v.aval.shape, v.aval.dtype) for v in eqn.outvars] == [((8,), jnp.float32)]


def test_kwarg_operands_out_of_order_bind_in_declaration_order():
  f = lambda x, y: jt.triton_call(x, n_elements=8, y_ptr=y, kernel=add_kernel,
                                  out_type=jax.typeof(x), grid=1, BLOCK_SIZE=8)
  jaxpr = jax.make_jaxpr(f)(X8, Y8)
  eqn = _eqn(jaxpr)
  assert eqn.invars == list(jaxpr.jaxpr.invars)  # x then y
  leaves = eqn.params["in_tree"].unflatten(["x", "y"])
  assert leaves[0] == "x" and leaves[1] == "y" and leaves[2].value == 8


def test_constexpr_defaults_and_positional_constexpr():
  f = lambda x, y: jt.triton_call(x, y, 8, kernel=add_default_block_kernel, out_type=x, grid=1)
  assert dict(_eqn(jax.make_jaxpr(f)(X8, Y8)).params["metaparams"]) == {"BLOCK_SIZE": 8}
  g = lambda x, y: jt.triton_call(x, y, 8, kernel=add_default_block_kernel, out_type=x, grid=1,
                                  BLOCK_SIZE=16, EXTRA=3)
  assert dict(_eqn(jax.make_jaxpr(g)(X8, Y8)).params["metaparams"]) == {"BLOCK_SIZE": 16,
                                                                         "EXTRA": 3}
  # An argument bound positionally to a constexpr parameter is a metaparam.
  h = lambda x, y: jt.triton_call(x, 4, y, 8, kernel=constexpr_first_kernel, out_type=x, grid=1)
  eqn = _eqn(jax.make_jaxpr(h)(X8, Y8))
  assert dict(eqn.params["metaparams"]) == {"BLOCK_SIZE": 4}
  assert len(eqn.invars) == 2


def test_pytree_outputs():
  x = jnp.array([42], dtype=jnp.int32)
  for out_type in [(x, x), {"a": x, "bs": (x,)}, [x, jax.ShapeDtypeStruct((1,), jnp.int32)]]:
    out = jax.eval_shape(lambda x: jt.triton_call(x, kernel=two_outputs_kernel, out_type=out_type,
                                                  grid=1), x)
    assert jax.tree.structure(out) == jax.tree.structure(out_type)
    for o in jax.tree.leaves(out):
      assert o.shape == (1,) and o.dtype == jnp.int32


def test_empty_out_type_returns_empty_tuple():
  r = jax.new_ref(jnp.zeros(8, jnp.float32))

  def f():
    out = jt.triton_call(r, 8, kernel=inc_inplace_kernel, out_type=(), grid=1, BLOCK_SIZE=8)
    assert out == ()
    return out

  eqn = _eqn(jax.make_jaxpr(f)())
  assert eqn.params["out_shapes"] == ()
  assert eqn.effects  # read and write effects on the Ref


def test_input_output_aliases_deprecated_and_checked():
  with pytest.warns(DeprecationWarning, match="input_output_aliases is deprecated"):
    jax.make_jaxpr(lambda x: jt.triton_call(x, 8, kernel=inc_inplace_kernel, out_type=x, grid=1,
                                            BLOCK_SIZE=8, input_output_aliases={0: 0}))(X8)
  with pytest.raises(ValueError, match="input_output_aliases must be a bijection"), \
      warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    jt.triton_call(X8, Y8, kernel=copy_to_new_kernel, out_type=(X8, X8), grid=1,
                   input_output_aliases={0: 0, 1: 0})
  with pytest.raises(ValueError, match="static scalar"), warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    jt.triton_call(X8, 8, kernel=inc_inplace_kernel, out_type=X8, grid=1, BLOCK_SIZE=8,
                   input_output_aliases={1: 0})
  with pytest.raises(ValueError, match="same shape and dtype"), warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    jt.triton_call(X8, 8, kernel=inc_inplace_kernel, out_type=Y8[:4], grid=1, BLOCK_SIZE=8,
                   input_output_aliases={0: 0})


def test_ref_rejects_input_output_aliases():
  r = jax.new_ref(jnp.zeros(8, jnp.float32))
  with pytest.raises(ValueError, match="cannot be combined with Ref"), warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    jt.triton_call(r, 8, kernel=inc_inplace_kernel, out_type=X8, grid=1, BLOCK_SIZE=8,
                   input_output_aliases={0: 0})


def test_zeroed_outputs_deprecated():
  with pytest.warns(DeprecationWarning, match="zeroed_outputs is deprecated"):
    jax.make_jaxpr(lambda x, y: _add(x, y, zeroed_outputs=(0,)))(X8, Y8)
  with pytest.warns(DeprecationWarning, match="zeroed_outputs is deprecated"):
    jax.make_jaxpr(lambda x, y: _add(x, y, zeroed_outputs=lambda meta: (0,)))(X8, Y8)
  with warnings.catch_warnings():
    warnings.simplefilter("error", DeprecationWarning)
    jax.make_jaxpr(lambda x, y: _add(x, y))(X8, Y8)  # no warning by default


def test_autodiff_exception():
  with pytest.raises(NotImplementedError, match="does not support automatic differentiation"):
    jax.grad(lambda x, y: jnp.sum(_add(x, y)))(X8, Y8)


def test_batching_exception():
  with pytest.raises(NotImplementedError, match="does not support batching with jax.vmap"):
    jax.vmap(lambda x, y: _add(x, y))(jnp.ones((2, 8)), jnp.ones((2, 8)))


def test_has_side_effect_parameter():
  assert _eqn(jax.make_jaxpr(lambda x, y: _add(x, y, has_side_effect=True))(X8, Y8)
              ).params["has_side_effect"] is True
  assert _eqn(jax.make_jaxpr(lambda x, y: _add(x, y))(X8, Y8)).params["has_side_effect"] is False


def test_triton_kernel_call_never_dced():
  jaxpr = jax.make_jaxpr(lambda x, y: _add(x, y))(X8, Y8)
  dce_jaxpr, _ = pe.dce_jaxpr(jaxpr.jaxpr, [False])
  assert len([e for e in dce_jaxpr.eqns if e.primitive is jttl.triton_kernel_call_p]) == 1


def _shard_map_over_2(f, in_specs, out_specs):
  """make_jaxpr of f under shard_map over an abstract 2-device mesh (no devices needed)."""
  mesh = jax.sharding.AbstractMesh((2,), ("x",), axis_types=(jax.sharding.AxisType.Auto,))
  x = jax.ShapeDtypeStruct((16,), jnp.float32)
  return jax.make_jaxpr(jax.shard_map(f, mesh=mesh, in_specs=in_specs, out_specs=out_specs))(x, x)


@pytest.mark.parametrize("in_specs,varying", [((P("x"), P()), {"x"}), ((P(), P()), set())])
def test_outputs_vary_over_the_axes_the_inputs_vary_over(in_specs, varying):
  # Under shard_map(check_vma=True) each shard's outputs depend on its inputs: they vary over
  # every mesh axis an input varies over, so a psum or an out_specs of P() treats them right.
  seen = []

  def f(x, y):
    z = _add(x, y)
    seen.append(jax.typeof(z).mat.varying)
    return z

  _shard_map_over_2(f, in_specs, P("x"))
  assert seen == [varying]
  with pytest.raises(ValueError, match="shard_map applied to the function 'g' was given out_specs"):
    def g(x, y):
      return _add(x, y)
    _shard_map_over_2(g, (P("x"), P()), P())


def test_transformed_ref_rejected():
  def f(x):
    r = jax.new_ref(x)
    jt.triton_call(r.at[:8], 8, kernel=inc_inplace_kernel, out_type=(), grid=1, BLOCK_SIZE=8)
    return r[...]

  with pytest.raises(NotImplementedError, match="TransformedRefs are not supported"):
    jax.make_jaxpr(f)(jnp.zeros(16, jnp.float32))


# ------------------------------------------------------------------------------------------------
# Scalar typing
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value,type_id", [
    (True, "i1"), (False, "i1"), (np.bool_(True), "i1"),
    (0, "i32"), (-(2**31), "i32"), (2**31 - 1, "i32"),
    (2**31, "u32"), (2**32 - 1, "u32"),
    (2**32, "i64"), (-(2**31) - 1, "i64"), (-(2**63), "i64"),
    (2**63, "u64"), (2**64 - 1, "u64"),
    (3.5, "fp32"), (42.0, "fp32"), (0.0, "fp32"), (float("inf"), "fp32"), (float("-inf"), "fp32"),
    (float("nan"), "fp32"), (1e-30, "fp32"),
    (1e-40, "fp64"), (1e300, "fp64"), (-1e39, "fp64"),
    (np.float64(2.5), "fp32"), (np.float16(1.5), "fp16"), (np.float32(1.5), "fp32"),
    (np.int8(-3), "i8"), (np.int16(3), "i16"), (np.int32(3), "i32"), (np.int64(3), "i64"),
    (np.uint8(3), "u8"), (np.uint16(3), "u16"), (np.uint32(3), "u32"), (np.uint64(3), "u64"),
    (tl.constexpr(7), "i32"),
])
def test_scalar_type_id(value, type_id):
  assert jttl.get_type_id(value) == type_id


def test_scalar_type_id_errors():
  with pytest.raises(ValueError, match="integer overflow representing"):
    jttl.get_type_id(2**64)
  with pytest.raises(ValueError, match="integer overflow representing"):
    jttl.get_type_id(-(2**63) - 1)
  with pytest.raises(NotImplementedError, match="could not compute type name"):
    jttl.get_type_id(object())
  # ...and at trace time, through triton_call.
  with pytest.raises(ValueError, match="integer overflow"):
    jt.triton_call(X8, Y8, 2**70, kernel=add_kernel, out_type=X8, grid=1, BLOCK_SIZE=8)


def test_array_type_ids(x64):
  for dtype, t in [(jnp.float32, "*fp32"), (jnp.float16, "*fp16"), (jnp.bfloat16, "*bf16"),
                   (jnp.float64, "*fp64"), (jnp.int64, "*i64"), (jnp.uint8, "*u8"),
                   (jnp.bool_, "*i1")]:
    assert jttl.get_type_id(jax.core.ShapedArray((3,), dtype)) == t


def test_np_float32_scalar_deprecated():
  with pytest.warns(DeprecationWarning, match="Passing np.float32 scalars to triton_call is deprecated"):
    jax.make_jaxpr(lambda x: jt.triton_call(x, np.float32(42.0), kernel=add_scalar_kernel,
                                            out_type=jax.ShapeDtypeStruct((), x.dtype), grid=1))(X8)


@pytest.mark.parametrize("value,type_id", [
    (True, "i1"), (-5, "i32"), (2**31 + 3, "u32"), (-(2**40), "i64"), (2**63 + 5, "u64"),
    (3.5, "fp32"), (1e300, "fp64"), (np.float16(1.5), "fp16"), (np.int8(-3), "i8"),
    (float("-inf"), "fp32"), (np.uint64(2**64 - 1), "u64"),
])
def test_scalar_bits(value, type_id):
  expected = {
      "i1": lambda v: int(bool(v)),
      "i32": lambda v: struct.unpack("<I", struct.pack("<i", v))[0],
      "u32": lambda v: v,
      "i64": lambda v: v,
      "u64": lambda v: struct.unpack("<q", struct.pack("<Q", int(v)))[0],
      "fp32": lambda v: struct.unpack("<I", struct.pack("<f", v))[0],
      "fp64": lambda v: struct.unpack("<q", struct.pack("<d", v))[0],
      "fp16": lambda v: struct.unpack("<H", struct.pack("<e", float(v)))[0],
      "i8": lambda v: struct.unpack("<B", struct.pack("<b", int(v)))[0],
  }[type_id](value)
  assert jttl._scalar_bits(value, type_id) == expected


# ------------------------------------------------------------------------------------------------
# Lowering: attributes of the custom call (fake compiler back end)
# ------------------------------------------------------------------------------------------------


def test_lowering_attributes(fake_compiler):
  k = fresh(add_kernel)
  x = jnp.arange(42, dtype=jnp.float32)
  line = _lowered_call(lambda x, y: _add(x, y, kernel=k, BLOCK_SIZE=8), x, x)
  assert "stablehlo.custom_call @triton_cpu_kernel_call(%arg0, %arg1)" in line
  assert _int_array_attr(line, "arg_map") == [0, 1, -1, 2]
  assert _int_array_attr(line, "scalars") == [42]
  assert _int_array_attr(line, "grid") == [6, 1, 1]
  assert _int_array_attr(line, "zeroed_outputs") == []
  assert _i32_attr(line, "num_threads") == 0
  assert _str_attr(line, "kernel_name") == "add_kernel"
  assert _str_attr(line, "symbol") == "add_kernel_launch"
  ck = next(iter(jttl.TritonFunction(k)._kernel_cache.values()))
  assert _str_attr(line, "library") == ck.library_path
  assert _str_attr(line, "library_hash") == ck.library_hash
  assert "cost_estimate_json" not in line
  assert "num_configs" not in line and "grid_1" not in line  # one config: no autotuning
  assert "output_operand_aliases" not in line
  assert "has_side_effect" not in line
  assert fake_compiler.call_count == 1
  # The TTIR handed to the back end carries the pointer-divisibility hints.
  ttir = fake_compiler.call_args.args[0].ttir  # a frontend.KernelSource
  assert ttir.count("tt.divisibility = 16") == 3


def test_lowering_grid_variants(fake_compiler):
  k = fresh(add_kernel)
  for grid, expected in [(5, [5, 1, 1]), ((2, 3), [2, 3, 1]), ((2, 3, 4), [2, 3, 4]),
                         (lambda m: (m["BLOCK_SIZE"], 2), [8, 2, 1])]:
    line = _lowered_call(lambda x, y: _add(x, y, kernel=k, grid=grid), X8, Y8)
    assert _int_array_attr(line, "grid") == expected
  with pytest.raises(ValueError, match="three or fewer dimensions"):
    _lowered_call(lambda x, y: _add(x, y, kernel=k, grid=(1, 1, 1, 1)), X8, Y8)


def test_lowering_num_threads_and_side_effect(fake_compiler):
  k = fresh(add_kernel)
  line = _lowered_call(lambda x, y: _add(x, y, kernel=k, has_side_effect=True,
                                         backend_options={"num_cpu_threads": 3}), X8, Y8)
  assert _i32_attr(line, "num_threads") == 3
  assert "has_side_effect = true" in line


def test_cost_estimate(fake_compiler):
  k = fresh(add_kernel)
  text = jax.jit(lambda x, y: _add(x, y, kernel=k, cost_estimate={"flops": 123,
                                                                  "bytes_accessed": 456})
                 ).lower(X8, Y8).compiler_ir("hlo").as_hlo_text()
  assert re.search(r'cost_estimate_json\s*=\s*"{\\22flops\\22: 123, \\22bytes_accessed\\22: 456}"',
                   text), text


def test_scalar_bits_in_lowering(fake_compiler, x64):
  k = fresh(many_scalars_kernel)
  # True stays an i1 argument: only ints == 1 are specialised away, as in Triton.
  values = [True, -5, 2**31 + 3, -(2**40), 2**63 + 5, 3.5, 1e300, np.float16(1.5), np.int8(-3)]
  out = jax.ShapeDtypeStruct((1,), jnp.float32)
  with mock.patch.object(jttl.frontend, "make_ttir_texts", wraps=frontend.make_ttir_texts) as make_ttir:
    # out_ptr (declared first) is filled by the output; the scalars are given by keyword.
    line = _lowered_call(lambda: jt.triton_call(kernel=k, out_type=out, grid=1,
                                                **dict(zip("abcdefghi", values))))
  assert _int_array_attr(line, "arg_map") == [0, -1, -2, -3, -4, -5, -6, -7, -8, -9]
  expected_bits = [jttl._scalar_bits(v, jttl.get_type_id(v)) for v in values]
  assert expected_bits == [1, 2**32 - 5, 2**31 + 3, -(2**40), -(2**63) + 5,
                           struct.unpack("<I", struct.pack("<f", 3.5))[0],
                           struct.unpack("<q", struct.pack("<d", 1e300))[0], 0x3E00, 0xFD]
  assert _int_array_attr(line, "scalars") == expected_bits
  signature = make_ttir.call_args.args[1]
  assert signature == {"out_ptr": "*fp32", "a": "i1", "b": "i32", "c": "u32", "d": "i64",
                       "e": "u64", "f": "fp32", "g": "fp64", "h": "fp16", "i": "i8"}
  attrs = make_ttir.call_args.args[3]
  assert attrs[(0,)] == [["tt.divisibility", 16]]
  assert all(attrs[(i,)] == [] for i in range(1, 10))


def test_scalar_equal_to_1_specialization(fake_compiler):
  k = fresh(scaled_copy_kernel)
  x = jnp.arange(8, dtype=jnp.float32)
  call = lambda s: (lambda x: jt.triton_call(s, x, kernel=k, out_type=x, grid=(8,)))
  with mock.patch.object(jttl.frontend, "make_ttir_texts", wraps=frontend.make_ttir_texts) as make_ttir:
    line = _lowered_call(call(1), x)
    assert make_ttir.call_args.args[1]["scale"] == "constexpr"
    assert make_ttir.call_args.args[2] == {"scale": 1}
  assert _int_array_attr(line, "arg_map") == [0, 1]  # scale is gone
  assert _int_array_attr(line, "scalars") == []
  assert fake_compiler.call_count == 1
  line = _lowered_call(call(2), x)
  assert _int_array_attr(line, "arg_map") == [-1, 0, 1]
  assert _int_array_attr(line, "scalars") == [2]
  assert fake_compiler.call_count == 2  # 1 and 2 are different specialisations
  line = _lowered_call(call(3), x)
  assert _int_array_attr(line, "scalars") == [3]
  assert fake_compiler.call_count == 2  # 2 and 3 are not
  assert len(jttl.TritonFunction(k)._kernel_cache) == 2


@pytest.mark.parametrize("value,type_id", [(1.0, "fp32"), (np.float32(1.0), "fp32"),
                                           (np.float16(1.0), "fp16"), (True, "i1")])
def test_float_or_bool_equal_to_1_stays_a_runtime_scalar(fake_compiler, value, type_id):
  # As in Triton, only ints == 1 become constexprs: a float 1.0 stays a float argument, so
  # `scale.to(tl.float32)` and float math on it still compile.
  k = fresh(scaled_copy_kernel)
  with warnings.catch_warnings(), \
       mock.patch.object(jttl.frontend, "make_ttir_texts", wraps=frontend.make_ttir_texts) as make_ttir:
    warnings.simplefilter("ignore", DeprecationWarning)  # np.float32 scalars
    line = _lowered_call(lambda x: jt.triton_call(value, x, kernel=k, out_type=x, grid=(8,)),
                         X8)
  assert make_ttir.call_args.args[1]["scale"] == type_id
  assert "scale" not in make_ttir.call_args.args[2]
  assert _int_array_attr(line, "arg_map") == [-1, 0, 1]
  assert _int_array_attr(line, "scalars") == [jttl._scalar_bits(value, type_id)]


def test_numpy_int_equal_to_1_is_a_constexpr(fake_compiler):
  k = fresh(scaled_copy_kernel)
  with mock.patch.object(jttl.frontend, "make_ttir_texts", wraps=frontend.make_ttir_texts) as make_ttir:
    line = _lowered_call(lambda x: jt.triton_call(np.int32(1), x, kernel=k, out_type=x,
                                                  grid=(8,)), X8)
  assert make_ttir.call_args.args[2] == {"scale": 1}
  assert _int_array_attr(line, "arg_map") == [0, 1]


def _constants_and_options(kernel, **kwargs):
  """(constants, CPUOptions) of the one compile of a triton_call of `kernel` (out_ptr only)."""
  out = jax.ShapeDtypeStruct((1,), jnp.int32)
  with mock.patch.object(jttl.frontend, "make_ttir_texts", wraps=frontend.make_ttir_texts) as make_ttir, \
       mock.patch.object(compiler, "compile_ttir", side_effect=_fake_compile_ttir) as back_end:
    _lowered_call(lambda: jt.triton_call(kernel=kernel, out_type=out, grid=1, **kwargs))
  return make_ttir.call_args.args[2], back_end.call_args.args[1]


def test_launch_option_params_get_the_option_values(fake_compiler):
  k = fresh(option_params_kernel)
  constants, options = _constants_and_options(k)  # triton_call's defaults
  assert constants == {"num_stages": 3, "num_warps": 4, "debug": False, "num_ctas": 1}
  constants, options = _constants_and_options(k, num_stages=2, num_warps=1, debug=True)
  assert constants == {"num_stages": 2, "num_warps": 1, "debug": True, "num_ctas": 1}
  # ...and the options are still set.
  assert (options.num_stages, options.num_warps, options.debug) == (2, 1, True)
  constants, options = _constants_and_options(k, backend_options={"num_stages": 5})
  assert constants["num_stages"] == 5 and options.num_stages == 5


def test_launch_option_param_default(fake_compiler):
  k = fresh(option_default_kernel)
  # Not given: the kernel's own default, as in Triton; given: the option's value.
  assert _constants_and_options(k)[0] == {"num_warps": 8}
  constants, options = _constants_and_options(k, num_warps=2)
  assert constants == {"num_warps": 2} and options.num_warps == 2


def test_launch_option_params_take_each_autotune_configs_value(fake_compiler):
  configs = [triton.Config({}, num_stages=s, num_warps=w) for s, w in ((1, 2), (4, 8))]
  k = triton.autotune(configs, key=[])(fresh(option_params_kernel))
  out = jax.ShapeDtypeStruct((1,), jnp.int32)
  with mock.patch.object(jttl.frontend, "make_ttir_texts", wraps=frontend.make_ttir_texts) as make_ttir:
    line = _lowered_call(lambda: jt.triton_call(kernel=k, out_type=out, grid=1, num_stages=9))
  assert _i32_attr(line, "num_configs") == 2
  assert [(c.args[2]["num_stages"], c.args[2]["num_warps"]) for c in make_ttir.call_args_list] \
      == [(1, 2), (4, 8)]
  assert [(o.num_stages, o.num_warps) for o in (c.args[1] for c in fake_compiler.call_args_list)
          ] == [(1, 2), (4, 8)]


def test_kernel_cache_equivalent_kernels(fake_compiler):
  my_add_kernel = fresh(add_kernel)
  fn1 = jax.jit(lambda x, y: _add(x, y, BLOCK_SIZE=32, kernel=my_add_kernel))
  fn2 = jax.jit(lambda x, y: _add(x, y, BLOCK_SIZE=32, kernel=my_add_kernel))
  fn3 = jax.jit(lambda x, y: _add(x, y, BLOCK_SIZE=64, kernel=my_add_kernel))
  triton_fn = jttl.TritonFunction(my_add_kernel)
  assert triton_fn._kernel_cache == {}
  x1 = jnp.ones(42, jnp.float32)
  x2 = jnp.ones(43, jnp.float32)
  with mock.patch.object(jttl, "compile_ttir_inplace", wraps=jttl.compile_ttir_inplace) as mc:
    fn1.lower(x1, x1)
    assert mc.call_count == 1
    assert len(triton_fn._kernel_cache) == 1
    fn2.lower(x2, x2)  # different size: same kernel
    assert mc.call_count == 1
    assert len(triton_fn._kernel_cache) == 1
    fn3.lower(x1, x1)  # different constexpr: compiles again
    assert mc.call_count == 2
    assert len(triton_fn._kernel_cache) == 2
  # The cache is shared by every TritonFunction of the kernel, and lives on the JITFunction.
  assert jttl.TritonFunction(my_add_kernel)._kernel_cache is triton_fn._kernel_cache
  assert jttl.TritonFunction(triton.heuristics({"X": lambda a: 1})(my_add_kernel)
                             )._kernel_cache is triton_fn._kernel_cache
  assert fake_compiler.call_count == 2


def test_kernel_cache_same_kernel_different_params(fake_compiler):
  k = fresh(add_kernel)
  with mock.patch.object(jttl.TritonFunction, "get_or_create_kernel", autospec=True,
                         side_effect=jttl.TritonFunction.get_or_create_kernel) as m:
    for n in (42, 43, 42):
      x = jnp.ones(n, jnp.float32)
      jax.jit(lambda x, y: _add(x, y, kernel=k)).lower(x, x)
  assert m.call_count == 3  # once per lowering (and config)
  assert len(jttl.TritonFunction(k)._kernel_cache) == 1
  assert fake_compiler.call_count == 1


def test_cache_key_excludes_gpu_only_options_but_includes_cpu_options(fake_compiler):
  k = fresh(add_kernel)
  _lowered_call(lambda x, y: _add(x, y, kernel=k), X8, Y8)
  _lowered_call(lambda x, y: _add(x, y, kernel=k, backend_options={"maxnreg": 128}), X8, Y8)
  assert fake_compiler.call_count == 1
  _lowered_call(lambda x, y: _add(x, y, kernel=k, backend_options={"enable_fast_math": True}),
                X8, Y8)
  assert fake_compiler.call_count == 2
  _lowered_call(lambda x, y: _add(x, y, kernel=k, debug=True), X8, Y8)
  assert fake_compiler.call_count == 3
  options = [c.args[1] for c in fake_compiler.call_args_list]
  assert [o.enable_fast_math for o in options] == [False, True, False]
  assert [o.debug for o in options] == [False, False, True]


def test_callable_constexpr_and_cache(fake_compiler):
  k = fresh(dispatch_kernel)
  call = lambda fn: (lambda x, y: jt.triton_call(x, y, kernel=k, out_type=x, grid=(1,), FN=fn,
                                                 BLOCK_SIZE=8))
  _lowered_call(call(add_fn), X8, Y8)
  assert len(jttl.TritonFunction(k)._kernel_cache) == 1
  _lowered_call(call(mul_fn), X8, Y8)
  assert len(jttl.TritonFunction(k)._kernel_cache) == 2
  _lowered_call(call(add_fn), X8, Y8)
  assert len(jttl.TritonFunction(k)._kernel_cache) == 2
  assert fake_compiler.call_count == 2


def test_constexpr_before_operand(fake_compiler):
  k = fresh(constexpr_first_kernel)
  with mock.patch.object(jttl.frontend, "make_ttir_texts", wraps=frontend.make_ttir_texts) as make_ttir:
    line = _lowered_call(lambda x, y: jt.triton_call(x, y_ptr=y, n_elements=8, kernel=k,
                                                     out_type=x, grid=1, BLOCK_SIZE=8), X8, Y8)
  assert _int_array_attr(line, "arg_map") == [0, 1, -1, 2]
  signature, constants, attrs = make_ttir.call_args.args[1:4]
  assert signature == {"x_ptr": "*fp32", "y_ptr": "*fp32", "n_elements": "i32",
                       "output_ptr": "*fp32", "BLOCK_SIZE": "constexpr"}
  assert constants == {"BLOCK_SIZE": 8}
  # Paths index all kernel parameters (BLOCK_SIZE is parameter 1).
  div16 = [["tt.divisibility", 16]]
  assert attrs == {(0,): div16, (2,): div16, (3,): [], (4,): div16}
  ttir = fake_compiler.call_args.args[0].ttir  # a frontend.KernelSource
  assert re.search(r"%y_ptr: !tt.ptr<f32> \{tt.divisibility = 16", ttir)
  assert re.search(r"%output_ptr: !tt.ptr<f32> \{tt.divisibility = 16", ttir)


def test_tuple_params(fake_compiler):
  k = fresh(tuple_kernel)
  with mock.patch.object(jttl.frontend, "make_ttir_texts", wraps=frontend.make_ttir_texts) as make_ttir:
    line = _lowered_call(lambda x, y: jt.triton_call(x, (y, 2.5), 8, kernel=k, out_type=x,
                                                     grid=1, BLOCK_SIZE=8), X8, Y8)
  signature, constants, attrs = make_ttir.call_args.args[1:4]
  assert signature == {"x_ptr": "*fp32", "yz": ("*fp32", "fp32"), "n_elements": "i32",
                       "out_ptr": "*fp32", "BLOCK_SIZE": "constexpr"}
  assert attrs[(1, 0)] == [["tt.divisibility", 16]] and attrs[(1, 1)] == []
  assert _int_array_attr(line, "arg_map") == [0, 1, -1, -2, 2]
  assert _int_array_attr(line, "scalars") == [struct.unpack("<I", struct.pack("<f", 2.5))[0], 8]


def test_scalar_equal_to_1_in_tuple_is_not_constexpr(fake_compiler):
  k = fresh(tuple_kernel)
  with mock.patch.object(jttl.frontend, "make_ttir_texts", wraps=frontend.make_ttir_texts) as make_ttir:
    line = _lowered_call(lambda x, y: jt.triton_call(x, (y, 1), 1, kernel=k, out_type=x,
                                                     grid=1, BLOCK_SIZE=8), X8, Y8)
  signature, constants = make_ttir.call_args.args[1:3]
  assert signature["yz"] == ("*fp32", "i32")
  assert signature["n_elements"] == "constexpr"
  assert constants == {"BLOCK_SIZE": 8, "n_elements": 1}
  assert _int_array_attr(line, "arg_map") == [0, 1, -1, 2]
  assert _int_array_attr(line, "scalars") == [1]


def test_nested_tuple_params(fake_compiler):
  k = fresh(nested_tuple_kernel)
  with mock.patch.object(jttl.frontend, "make_ttir_texts", wraps=frontend.make_ttir_texts) as make_ttir:
    line = _lowered_call(lambda a, b, c: jt.triton_call(((a, b), c), kernel=k, out_type=a,
                                                        grid=1, BLOCK_SIZE=8), X8, Y8, X8)
  assert make_ttir.call_args.args[1]["abc"] == (("*fp32", "*fp32"), "*fp32")
  assert set(make_ttir.call_args.args[3]) == {(0, 0, 0), (0, 0, 1), (0, 1), (1,)}
  assert _int_array_attr(line, "arg_map") == [0, 1, 2, 3]


def test_output_placeholders_map_to_results_by_ordinal(fake_compiler):
  k = fresh(copy_to_new_kernel)
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    # Output 0 is x itself (aliased); output 1 fills out_ptr: buffer 2 (operands) + 1.
    line = _lowered_call(lambda x, y: jt.triton_call(x, y, kernel=k, out_type=(x, y), grid=1,
                                                     input_output_aliases={0: 0}), X8, Y8)
  assert _int_array_attr(line, "arg_map") == [0, 1, 3]
  assert "output_operand_aliases = [#stablehlo.output_operand_alias<output_tuple_indices = [0], " \
         "operand_index = 0, operand_tuple_indices = []>]" in line


def test_input_output_aliases_count_static_scalars(fake_compiler):
  @triton.jit
  def k(n_elements, x_in_out_ptr, BLOCK_SIZE: tl.constexpr):
    offsets = tl.arange(0, BLOCK_SIZE)
    mask = offsets < n_elements
    tl.store(x_in_out_ptr + offsets, tl.load(x_in_out_ptr + offsets, mask=mask) + 1, mask=mask)

  with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    line = _lowered_call(lambda x: jt.triton_call(x_in_out_ptr=x, n_elements=8, kernel=k,
                                                  out_type=x, grid=1, BLOCK_SIZE=8,
                                                  input_output_aliases={1: 0}), X8)
  assert _int_array_attr(line, "arg_map") == [-1, 0]
  assert "operand_index = 0" in line


def test_zeroed_outputs_attribute(fake_compiler):
  k = fresh(two_outputs_kernel)
  x = jnp.array([3], jnp.int32)
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    line = _lowered_call(lambda x: jt.triton_call(x, kernel=k, out_type=(x, x), grid=1,
                                                  zeroed_outputs=(1,)), x)
    assert _int_array_attr(line, "zeroed_outputs") == [1]
    line = _lowered_call(lambda x: jt.triton_call(x, kernel=k, out_type=(x, x), grid=1,
                                                  zeroed_outputs=lambda meta: [1, 0]), x)
    assert _int_array_attr(line, "zeroed_outputs") == [0, 1]
    with pytest.raises(ValueError, match="out of range"):
      jt.triton_call(x, kernel=k, out_type=(x, x), grid=1, zeroed_outputs=(2,))


def test_ref_lowering(fake_compiler):
  k = fresh(inc_inplace_kernel)

  def f(x):
    r = jax.new_ref(x)
    out = jt.triton_call(r, 8, kernel=k, out_type=(), grid=1, BLOCK_SIZE=8)
    assert out == ()
    return r[...]

  line = _lowered_call(f, X8)
  assert _int_array_attr(line, "arg_map") == [0, -1]
  assert _int_array_attr(line, "scalars") == [8]
  assert "output_operand_aliases" in line and "operand_index = 0" in line


def test_ref_discharge_params():
  from jax._src.state.discharge import discharge_state

  # A Ref given for output_ptr (nothing in out_type: the Ref is the output).
  def g(r, x):
    return jt.triton_call(x, x, 8, r, kernel=add_kernel, out_type=(), grid=1, BLOCK_SIZE=8)

  jaxpr = jax.make_jaxpr(g)(jax.new_ref(jnp.zeros(8, jnp.float32)), X8)
  eqn = _eqn(discharge_state(jaxpr).jaxpr)
  assert eqn.params["out_shapes"] == (jax.ShapeDtypeStruct((8,), jnp.float32),)
  assert dict(eqn.params["input_output_aliases"]) == {3: 0}  # operand 3 counts the scalar 8


def test_heuristics_once_per_config(fake_compiler):
  calls = []

  def even(args):
    calls.append(args["n_elements"] % args["BLOCK_SIZE"] == 0)
    return calls[-1]

  k = triton.heuristics({"EVEN": even})(fresh(add_even_kernel))
  for n in (64, 72):
    x = jnp.ones(n, jnp.float32)
    _lowered_call(lambda x, y: _add(x, y, kernel=k, BLOCK_SIZE=16), x, x)
  assert calls == [True, False]
  assert fake_compiler.call_count == 2


def test_autotune_passes_every_distinct_config_to_one_call(fake_compiler):
  configs = [triton.Config({"BLOCK_SIZE": 32}, num_warps=1),
             triton.Config({"BLOCK_SIZE": 64}, num_warps=1),
             triton.Config({"BLOCK_SIZE": 64}, num_warps=2),
             triton.Config({"BLOCK_SIZE": 64}, num_warps=1)]  # a duplicate: launched once
  base = fresh(add_kernel)
  k = triton.autotune(configs, key=["n_elements"])(base)
  x = jnp.ones(1024, jnp.float32)
  with mock.patch.object(jttl.TritonFunction, "get_or_create_kernel", autospec=True,
                         side_effect=jttl.TritonFunction.get_or_create_kernel) as m:
    line = _lowered_call(lambda x, y: jt.triton_call(
        x, y, x.size, kernel=k, out_type=x, grid=lambda meta: x.size // meta["BLOCK_SIZE"]), x, x)
    assert m.call_count == 4
  assert fake_compiler.call_count == 3
  assert _i32_attr(line, "num_configs") == 3
  assert [_int_array_attr(line, "grid" + s) for s in ("", "_1", "_2")] == [
      [32, 1, 1], [16, 1, 1], [16, 1, 1]]
  libraries = {_str_attr(line, "library" + s) for s in ("", "_1", "_2")}
  assert len(libraries) == 3  # (the fake back end hashes num_warps into the library)
  for suffix in ("", "_1", "_2"):
    assert _int_array_attr(line, "arg_map" + suffix) == [0, 1, -1, 2]
    assert _int_array_attr(line, "scalars" + suffix) == [1024]
    assert _int_array_attr(line, "zeroed_outputs" + suffix) == []
    assert _i32_attr(line, "num_threads" + suffix) == 0
    assert _str_attr(line, "symbol" + suffix) == "add_kernel_launch"
  assert "grid_3" not in line
  # An explicit metaparam prunes the configs that disagree with it.
  with mock.patch.object(jttl.TritonFunction, "get_or_create_kernel", autospec=True,
                         side_effect=jttl.TritonFunction.get_or_create_kernel) as m:
    line = _lowered_call(lambda x, y: jt.triton_call(
        x, y, x.size, kernel=k, out_type=x, grid=lambda meta: x.size // meta["BLOCK_SIZE"],
        BLOCK_SIZE=64), x, x)
    assert m.call_count == 3
  assert _i32_attr(line, "num_configs") == 2
  assert _int_array_attr(line, "grid") == _int_array_attr(line, "grid_1") == [16, 1, 1]
  assert fake_compiler.call_count == 3  # all already compiled
  assert [c.kwargs for c in configs] == [{"BLOCK_SIZE": 32}] + [{"BLOCK_SIZE": 64}] * 3


def test_autotune_with_heuristics_does_not_modify_configs(fake_compiler):
  calls = []

  def even(args):
    calls.append(args["n_elements"] % args["BLOCK_SIZE"] == 0)
    return calls[-1]

  configs = [triton.Config({"BLOCK_SIZE": 32}), triton.Config({"BLOCK_SIZE": 64})]
  k = triton.autotune(configs, key=[])(triton.heuristics({"EVEN": even})(fresh(add_even_kernel)))
  for n in (128, 160):
    x = jnp.ones(n, jnp.float32)
    _lowered_call(lambda x, y: jt.triton_call(x, y, x.size, kernel=k, out_type=x, grid=1), x, x)
  assert calls == [True, True, True, False]
  assert [c.kwargs for c in configs] == [{"BLOCK_SIZE": 32}, {"BLOCK_SIZE": 64}]


def test_autotune_perf_model_with_explicit_metaparams(fake_compiler):
  # The perf model sees every argument, metaparam and config value once, by keyword.
  seen = []

  def perf_model(**kwargs):
    seen.append(kwargs)
    return abs(kwargs["num_stages"] - 1)

  configs = [triton.Config({}, num_stages=s) for s in (2, 1, 3)]
  k = triton.autotune(configs, key=[], prune_configs_by={"perf_model": perf_model, "top_k": 1})(
      fresh(persistent_softmax_kernel))
  x = jnp.zeros((4, 8), jnp.float32)
  with mock.patch.object(jttl.frontend, "make_ttir_texts", wraps=frontend.make_ttir_texts) as make_ttir:
    line = _lowered_call(lambda x: jt.triton_call(
        in_ptr=x, in_row_stride=8, out_row_stride=8, n_rows=4, n_cols=8, kernel=k, out_type=x,
        grid=1, BLOCK_SIZE=8), x)
  assert "num_configs" not in line
  assert make_ttir.call_args.args[2] == {"BLOCK_SIZE": 8, "num_stages": 1}
  assert [(d["BLOCK_SIZE"], d["num_stages"], d["num_warps"]) for d in seen] == [
      (8, 2, 4), (8, 1, 4), (8, 3, 4)]
  assert all(d["out_ptr"].shape == (4, 8) and d["n_cols"] == 8 for d in seen)


def test_autotune_pre_hook_error(fake_compiler):
  k = triton.autotune([triton.Config({"BLOCK_SIZE": 32}, pre_hook=lambda args: None)],
                      key=[])(fresh(add_kernel))
  with pytest.raises(NotImplementedError, match="`pre_hook` is not supported"):
    _lowered_call(lambda x, y: jt.triton_call(x, y, 8, kernel=k, out_type=x, grid=1), X8, Y8)
  assert fake_compiler.call_count == 0


def test_unknown_metaparam_raises_at_lowering(fake_compiler):
  k = fresh(add_kernel)
  with pytest.raises(TypeError, match=r"Metaparameters \['BLOCK_SZ'\] are not parameters"):
    _lowered_call(lambda x, y: jt.triton_call(x, y, 8, kernel=k, out_type=x, grid=1,
                                              BLOCK_SIZE=8, BLOCK_SZ=8), X8, Y8)
  with pytest.raises(TypeError, match=r"missing a value for constexpr parameter\(s\) \['BLOCK_SIZE'\]"):
    _lowered_call(lambda x, y: jt.triton_call(x, y, 8, kernel=k, out_type=x, grid=1), X8, Y8)
  assert fake_compiler.call_count == 0


def test_num_ctas_rejected(fake_compiler):
  with pytest.raises(ValueError, match="num_ctas"):
    _lowered_call(lambda x, y: _add(x, y, kernel=fresh(add_kernel), num_ctas=2), X8, Y8)


def test_tensor_descriptor_not_supported(fake_compiler):
  k = fresh(desc_kernel)
  d = jt.TensorDescriptor.from_array(jnp.zeros((8, 8), jnp.float32), (8, 8))
  jaxpr = jax.make_jaxpr(lambda d: jt.triton_call(d, kernel=k, out_type=X8, grid=1))(d)
  assert len(_eqn(jaxpr).invars) == 1
  with pytest.raises(NotImplementedError, match="TensorDescriptor"):
    jax.jit(lambda d: jt.triton_call(d, kernel=k, out_type=X8, grid=1)).lower(d)


def test_empty_grid_emits_no_call(fake_compiler):
  k = fresh(add_kernel)
  x = jnp.zeros((0,), jnp.float32)
  text = jax.jit(lambda x, y: _add(x, y, kernel=k)).lower(x, x).as_text()
  assert "triton_cpu_kernel_call" not in text
  assert fake_compiler.call_count == 1  # the kernel is still compiled (errors surface)


def test_dump_dir(fake_compiler, tmp_path, monkeypatch):
  monkeypatch.setenv("JAX_TRITON_CPU_DUMP_DIR", str(tmp_path))
  k = fresh(add_kernel)
  _lowered_call(lambda x, y: _add(x, y, kernel=k), X8, Y8)
  (d,) = tmp_path.iterdir()
  ck = next(iter(jttl.TritonFunction(k)._kernel_cache.values()))
  assert d.name == f"add_kernel_{ck.library_hash[:16]}"
  files = sorted(p.name for p in d.iterdir())
  assert files == ["add_kernel.ll", "add_kernel.s", "add_kernel.ttir", "config.txt"]
  assert "tt.func public @add_kernel" in (d / "add_kernel.ttir").read_text()
  assert (d / "add_kernel.ll").read_text() == ck.llvm_ir


def test_compile_ttir_inplace_calls_the_compiler(fake_compiler):
  opts = compiler.CPUOptions()
  ttir = frontend.make_ttir(fresh(add_kernel),
                            {"x_ptr": "*fp32", "y_ptr": "*fp32", "n_elements": "i32",
                             "output_ptr": "*fp32", "BLOCK_SIZE": "constexpr"},
                            {"BLOCK_SIZE": 8}, {}, opts)
  ck = jttl.compile_ttir_inplace(ttir, opts)
  fake_compiler.assert_called_once_with(ttir, opts)
  assert ck.param_types == ("!tt.ptr<f32>", "!tt.ptr<f32>", "i32", "!tt.ptr<f32>")


# ------------------------------------------------------------------------------------------------
# End to end: compile and run (needs the compiler back end and the runtime)
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size,block", [(8, 8), (1000, 128), (1, 32)])
def test_e2e_add_f32_eager(size, block):
  x = jnp.arange(size, dtype=jnp.float32)
  y = jnp.full((size,), 0.5, jnp.float32) * jnp.arange(size, dtype=jnp.float32)
  out = _add(x, y, BLOCK_SIZE=block)
  np.testing.assert_array_equal(np.asarray(out), np.asarray(x) + np.asarray(y))


@pytest.mark.parametrize("size,block", [(8, 8), (1000, 128), (1025, 64)])
def test_e2e_add_f32_jit(size, block):
  rng = np.random.default_rng(size)
  x = rng.standard_normal(size).astype(np.float32)
  y = rng.standard_normal(size).astype(np.float32)
  out = jax.jit(lambda x, y: _add(x, y, BLOCK_SIZE=block) * 2)(x, y)
  np.testing.assert_allclose(np.asarray(out), (x + y) * 2, rtol=1e-6)


def test_e2e_grid_types():
  x = jnp.arange(8, dtype=jnp.float32)
  for grid in (8, (8,), lambda meta: 8, lambda meta: (8, 1)):
    out = _add(x, x, BLOCK_SIZE=1, grid=grid)
    np.testing.assert_array_equal(np.asarray(out), 2 * np.arange(8, dtype=np.float32))


@pytest.mark.parametrize("scalar", [42.0, 1e-30, float("inf"), 3])
def test_e2e_add_scalar(scalar):
  x = jnp.array([1.5], jnp.float32)
  out = jt.triton_call(x, scalar, kernel=add_scalar_kernel,
                       out_type=jax.ShapeDtypeStruct((), x.dtype), grid=1)
  np.testing.assert_allclose(np.asarray(out), np.float32(1.5) + np.float32(scalar))


def test_e2e_scalar_equal_to_1():
  x = jnp.arange(8, dtype=jnp.float32) + 1.0
  for scale in (1, 3):
    out = jt.triton_call(scale, x, kernel=scaled_copy_kernel, out_type=jax.typeof(x), grid=(8,))
    np.testing.assert_array_equal(np.asarray(out), scale * np.asarray(x))


@triton.jit
def cast_scale_kernel(scale, x_ptr, output_ptr):
  pid = tl.program_id(0)
  s = scale.to(tl.float32)
  tl.store(output_ptr + pid, tl.load(x_ptr + pid) * s + tl.exp(scale * 0.0))


@triton.jit
def select_kernel(flag, x_ptr, output_ptr):
  pid = tl.program_id(0)
  x = tl.load(x_ptr + pid)
  tl.store(output_ptr + pid, tl.where(flag.to(tl.int1), x, -x))


@pytest.mark.parametrize("scale", [1.0, 2.5])
def test_e2e_float_scalar_equal_to_1_is_a_float(scale):
  x = jnp.arange(8, dtype=jnp.float32) + 1.0
  out = jt.triton_call(scale, x, kernel=cast_scale_kernel, out_type=jax.typeof(x), grid=(8,))
  np.testing.assert_array_equal(np.asarray(out), scale * np.asarray(x) + 1.0)


@pytest.mark.parametrize("flag", [True, False])
def test_e2e_bool_scalar_stays_a_bool(flag):
  x = jnp.arange(8, dtype=jnp.float32) + 1.0
  out = jt.triton_call(flag, x, kernel=select_kernel, out_type=jax.typeof(x), grid=(8,))
  np.testing.assert_array_equal(np.asarray(out), np.asarray(x) if flag else -np.asarray(x))


@triton.jit
def persistent_softmax_kernel(out_ptr, in_ptr, in_row_stride, out_row_stride, n_rows, n_cols,
                              BLOCK_SIZE: tl.constexpr, num_stages: tl.constexpr):
  # A persistent kernel that pipelines its row loop with the launch's num_stages (the pattern of
  # Triton's fused-softmax tutorial): each program walks rows pid, pid + grid, ...
  cols = tl.arange(0, BLOCK_SIZE)
  mask = cols < n_cols
  for row in tl.range(tl.program_id(0), n_rows, tl.num_programs(0), num_stages=num_stages):
    x = tl.load(in_ptr + row * in_row_stride + cols, mask=mask, other=-float("inf"))
    z = x - tl.max(x, axis=0)
    e = tl.exp(z)
    tl.store(out_ptr + row * out_row_stride + cols, e / tl.sum(e, axis=0), mask=mask)


@pytest.mark.parametrize("num_stages", [None, 2])
def test_e2e_persistent_softmax_with_num_stages_param(num_stages):
  x = np.random.default_rng(0).standard_normal((37, 100)).astype(np.float32)
  n_rows, n_cols = x.shape
  out = jax.jit(lambda x: jt.triton_call(
      in_ptr=x, in_row_stride=n_cols, out_row_stride=n_cols, n_rows=n_rows, n_cols=n_cols,
      kernel=persistent_softmax_kernel, out_type=jax.typeof(x), grid=4, num_stages=num_stages,
      num_warps=8, BLOCK_SIZE=128))(x)
  e = np.exp(x - x.max(axis=1, keepdims=True))
  np.testing.assert_allclose(np.asarray(out), e / e.sum(axis=1, keepdims=True), rtol=1e-5)


def test_e2e_launch_option_params():
  out = jt.triton_call(kernel=option_params_kernel, out_type=jax.ShapeDtypeStruct((1,), jnp.int32),
                       grid=1, num_stages=2, num_warps=1)
  assert out.tolist() == [2010]


def test_e2e_ref_inplace():
  x = jnp.arange(10, dtype=jnp.float32)
  r = jax.new_ref(x)
  assert jt.triton_call(r, 10, kernel=inc_inplace_kernel, out_type=(), grid=2,
                        BLOCK_SIZE=8) == ()
  np.testing.assert_array_equal(np.asarray(r[...]), np.arange(10, dtype=np.float32) + 1)


def test_e2e_eager_calls_are_cached():
  @triton.jit
  def silly_add_kernel(x_ptr, y_ptr, output_ptr):
    pid = tl.program_id(axis=0)
    tl.store(output_ptr + pid, tl.load(x_ptr + pid) + tl.load(y_ptr + pid))

  def silly_add(n):
    x = jnp.arange(n, dtype=jnp.float32)
    out = jt.triton_call(x, x, kernel=silly_add_kernel, out_type=jax.typeof(x), grid=x.size)
    np.testing.assert_array_equal(np.asarray(out), 2 * np.arange(n, dtype=np.float32))

  with mock.patch.object(jttl.TritonFunction, "get_or_create_kernel", autospec=True,
                         side_effect=jttl.TritonFunction.get_or_create_kernel) as m:
    silly_add(42)
    assert m.call_count == 1
    silly_add(42)
    assert m.call_count == 1  # the second eager call does not lower again
    silly_add(43)
    assert m.call_count == 2  # new shape and grid: lowers again, but hits the compile cache
  assert len(jttl.TritonFunction(silly_add_kernel)._kernel_cache) == 1


def test_e2e_ref_in_jit_and_pytree_outputs():
  @jax.jit
  def f(x):
    r = jax.new_ref(x)
    jt.triton_call(r, x.size, kernel=inc_inplace_kernel, out_type=(), grid=2, BLOCK_SIZE=8)
    return r[...]

  x = jnp.arange(16, dtype=jnp.float32)
  np.testing.assert_array_equal(np.asarray(f(x)), np.arange(16, dtype=np.float32) + 1)
  a = jnp.array([41], jnp.int32)
  out = jt.triton_call(a, kernel=two_outputs_kernel, out_type={"b": a, "a": a}, grid=1)
  # dict leaves flatten in key order: "a" fills a_ptr, "b" fills b_ptr.
  assert out["a"].tolist() == [41] and out["b"].tolist() == [42]


def test_e2e_input_output_aliasing_with_donation():
  x = jnp.arange(8, dtype=jnp.float32)
  x_ptr = x.unsafe_buffer_pointer()
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    f = jax.jit(lambda x: jt.triton_call(x, 8, kernel=inc_inplace_kernel, out_type=x, grid=1,
                                         BLOCK_SIZE=8, input_output_aliases={0: 0}),
                donate_argnums=0)
    out = f(x)
  assert x.is_deleted()
  assert out.unsafe_buffer_pointer() == x_ptr
  np.testing.assert_array_equal(np.asarray(out), np.arange(8, dtype=np.float32) + 1)


def test_e2e_autotune_and_zeroed_outputs():
  configs = [triton.Config({"BLOCK_SIZE": 32}), triton.Config({"BLOCK_SIZE": 64})]
  k = triton.autotune(configs, key=["n_elements"])(add_kernel)
  x = jnp.arange(100, dtype=jnp.float32)
  out = jt.triton_call(x, x, x.size, kernel=k, out_type=x,
                       grid=lambda meta: triton.cdiv(100, meta["BLOCK_SIZE"]))
  np.testing.assert_array_equal(np.asarray(out), 2 * np.arange(100, dtype=np.float32))
  # An aliased, zeroed y: y is set to 0 and then receives x + 0.
  y = jnp.full((100,), 7.0, jnp.float32)
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    out = jt.triton_call(x, y, 100, kernel=add_inplace_y_kernel, out_type=y, grid=13,
                         BLOCK_SIZE=8, input_output_aliases={1: 0}, zeroed_outputs=(0,))
  np.testing.assert_array_equal(np.asarray(out), np.arange(100, dtype=np.float32))
