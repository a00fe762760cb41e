"""Calling Triton kernels from JAX on CPU.

`triton_call` has the API of jax-triton 0.4's function of the same name. It binds one primitive,
`triton_kernel_call_p`. At lowering time the kernel is specialised, compiled to a native library by
`jax_triton_cpu.compiler`, and launched by the XLA FFI custom call "triton_cpu_kernel_call" whose
attributes are specified in docs/abi.md.

The path of one call, top to bottom:
  triton_call                   bind operands to the kernel signature; metaparams; outputs
  triton_kernel_call_p.bind     abstract eval (+ Ref effects); eager calls go through jit
  _triton_kernel_call_lowering  rebuild the flat kernel arguments; configs (autotune/heuristics)
    TritonFunction.get_or_create_kernel   specialisation -> cache -> make_ttir -> compile_ttir_inplace
    jax.ffi.ffi_lowering(...)   the custom call, with library, grid, arg_map, scalars, ... per
                                config; the handler picks the fastest config at the first run
"""
from __future__ import annotations

import copy
import dataclasses
import functools
import hashlib
import inspect
import json
import math
import os
import pprint
import sys
import tempfile
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, TypedDict

import jax
import jax.extend as jex
import jax.numpy as jnp
import numpy as np
import triton
import triton.language as tl
from jax import tree_util
from jax._src import config as jax_config
from jax._src import core
from jax._src import state
from jax._src import util
from jax._src.frozen_dict import FrozenDict
from jax._src.interpreters import partial_eval as pe
from jax._src.state import discharge as state_discharge
from jax.interpreters import ad
from jax.interpreters import batching
from jax.interpreters import mlir
from jax.interpreters import xla

from . import compiler
from .compiler import frontend
from .compiler.options import _GPU_ONLY_OPTIONS

CUSTOM_CALL_TARGET_NAME: Final[str] = "triton_cpu_kernel_call"

# Set to a directory to get the TTIR, LLVM IR and assembly of every kernel compiled in this process.
DUMP_DIR_ENV: Final[str] = "JAX_TRITON_CPU_DUMP_DIR"

Autotuner = triton.runtime.Autotuner
Heuristics = triton.runtime.Heuristics


class CostEstimate(TypedDict, total=False):
  flops: int
  bytes_accessed: int


# ----------------------------------------------------------------------------------------------
# Types
# ----------------------------------------------------------------------------------------------

# JAX dtype -> Triton element type name.
_JAX_TO_TRITON_TYPE_MAP: dict[np.dtype, str] = {
    jnp.dtype("bfloat16"): "bf16",
    jnp.dtype("float64"): "fp64",
    jnp.dtype("float32"): "fp32",
    jnp.dtype("float16"): "fp16",
    jnp.dtype("float8_e4m3fn"): "fp8e4nv",
    jnp.dtype("float8_e5m2"): "fp8e5",
    jnp.dtype("float8_e4m3fnuz"): "fp8e4b8",
    jnp.dtype("float8_e5m2fnuz"): "fp8e5b16",
    jnp.dtype("int64"): "i64",
    jnp.dtype("int32"): "i32",
    jnp.dtype("int16"): "i16",
    jnp.dtype("int8"): "i8",
    jnp.dtype("uint64"): "u64",
    jnp.dtype("uint32"): "u32",
    jnp.dtype("uint16"): "u16",
    jnp.dtype("uint8"): "u8",
    jnp.dtype("bool"): "i1",
}
# Triton scalar type name -> numpy dtype holding its bits (for the `scalars` attribute).
_TRITON_TO_NP_DTYPE: dict[str, np.dtype] = {v: k for k, v in _JAX_TO_TRITON_TYPE_MAP.items()}

# The pointer hint every array parameter gets: XLA CPU buffers are at least 16-byte aligned
# (measured: every buffer seen by a custom call, operands, results and temporaries, was 64-byte
# aligned), so pointers are specialised as divisible by 16, as jax-triton does on GPU.
_POINTER_ALIGNMENT = 16
_DIVISIBILITY_16 = [["tt.divisibility", _POINTER_ALIGNMENT]]

# The CPU options and their defaults; with the GPU-only ones, every name Triton's launcher treats
# as an option. A constexpr kernel parameter with such a name receives the option's value.
_CPU_OPTION_DEFAULTS: dict[str, Any] = {
    f.name: f.default for f in dataclasses.fields(compiler.CPUOptions)}
_LAUNCH_OPTION_NAMES = frozenset(_CPU_OPTION_DEFAULTS) | _GPU_ONLY_OPTIONS


def get_type_id(obj: Any) -> str:
  """The Triton type name of a kernel argument: "*fp32" for arrays, "i32", "fp64", ... for scalars."""
  if isinstance(obj, TensorDescriptor):
    raise NotImplementedError(
        "TensorDescriptor (TMA) arguments are not supported by jax_triton_cpu")
  if isinstance(obj, (core.ShapedArray, state.AbstractRef)):
    try:
      return "*" + _JAX_TO_TRITON_TYPE_MAP[jnp.dtype(obj.dtype)]
    except KeyError:
      raise NotImplementedError(
          f"arrays of dtype {obj.dtype} cannot be passed to a Triton kernel") from None
  if isinstance(obj, tl.constexpr):
    obj = obj.value
  if isinstance(obj, (bool, np.bool_)):  # before int: bool is an int
    return "i1"
  if isinstance(obj, int):
    if -(2**31) <= obj < 2**31:
      return "i32"
    if 2**31 <= obj < 2**32:
      return "u32"
    if -(2**63) <= obj < 2**63:
      return "i64"
    if 2**63 <= obj < 2**64:
      return "u64"
    raise ValueError(f"integer overflow representing {obj}")
  if isinstance(obj, float):  # also np.float64, a float subclass
    # jax-triton 0.4's rule: fp32 unless the value lies outside fp32's normal range.
    fi = np.finfo(np.float32)
    a = abs(float(obj))
    if math.isinf(a) or math.isnan(a) or a == 0.0 or float(fi.tiny) <= a <= float(fi.max):
      return "fp32"
    return "fp64"
  if isinstance(obj, np.generic):  # numpy (and ml_dtypes) scalars: typed by their dtype
    t = _JAX_TO_TRITON_TYPE_MAP.get(np.dtype(obj.dtype))
    if t is not None:
      return t
  if isinstance(obj, str):
    return "str"
  raise NotImplementedError(f"could not compute type name for {obj}: {type(obj)}")


def _scalar_bits(value: Any, type_id: str) -> int:
  """The raw bits of a scalar argument, zero-extended into an int64 slot (docs/abi.md)."""
  if isinstance(value, tl.constexpr):
    value = value.value
  dtype = _TRITON_TO_NP_DTYPE.get(type_id)
  if dtype is None:
    raise NotImplementedError(
        f"scalar arguments of Triton type {type_id!r} ({value!r}) are not supported on CPU")
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", RuntimeWarning)  # float -> fp16 overflow is the user's choice
    raw = np.asarray(value).astype(dtype)
  unsigned = np.dtype(f"uint{dtype.itemsize * 8}")
  bits = int(raw.reshape(()).view(unsigned))
  return bits - 2**64 if bits >= 2**63 else bits


def normalize_grid(grid: Any, metaparams: Mapping[str, Any]) -> tuple[int, int, int]:
  """An int, a tuple of up to 3 ints, or a callable(metaparams dict) -> those; padded with 1s."""
  given = grid(metaparams) if callable(grid) else grid
  entries = (given,) if _is_int(given) else given
  if not isinstance(entries, (tuple, list)) or not all(_is_int(g) for g in entries):
    source = " (returned by the grid function)" if callable(grid) else ""
    raise TypeError(f"grid must be an int or a tuple of up to 3 ints, got {given!r}{source}")
  if len(entries) > 3:
    raise ValueError("`grid` should have three or fewer dimensions.")
  return tuple(int(g) for g in entries) + (1,) * (3 - len(entries))


def _is_int(x: Any) -> bool:
  return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


def strides_from_shape(shape: Sequence[int]) -> tuple[int, ...]:
  """Row-major strides, in elements: (2, 3, 4) -> (12, 4, 1)."""
  strides = []
  stride = 1
  for s in reversed(tuple(shape)):
    strides.append(stride)
    stride *= s
  return tuple(reversed(strides))


@tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class TensorDescriptor:
  """Host-side tensor (TMA) descriptor, as in jax-triton. Not supported by the CPU lowering yet."""

  base: jax.Array
  shape: tuple[int, ...] = dataclasses.field(metadata=dict(static=True))
  strides: tuple[int, ...] = dataclasses.field(metadata=dict(static=True))
  block_shape: tuple[int, ...] = dataclasses.field(metadata=dict(static=True))
  layout: Any | None = dataclasses.field(default=None, metadata=dict(static=True))
  padding: str = dataclasses.field(default="zero", metadata=dict(static=True))
  round_f32_to_tf32: bool = dataclasses.field(default=False, metadata=dict(static=True))

  def __post_init__(self):
    if self.padding not in ("zero", "nan"):
      raise ValueError(f"padding must be 'zero' or 'nan', got {self.padding!r}")
    if not len(self.shape) == len(self.strides) == len(self.block_shape):
      raise ValueError(
          "shape, strides, and block_shape must have the same length, got "
          f"{len(self.shape)}, {len(self.strides)}, {len(self.block_shape)}")

  @classmethod
  def from_array(cls, array: jax.Array, block_shape: Sequence[int], layout: Any | None = None,
                 padding: str = "zero", round_f32_to_tf32: bool = False) -> "TensorDescriptor":
    return cls(array, tuple(array.shape), strides_from_shape(array.shape), tuple(block_shape),
               layout, padding, round_f32_to_tf32)


# Leaves of `in_tree` that are not arrays. Both are pytree nodes without children, so their
# contents live in the PyTreeDef (and thus in the primitive's hashable params).
@tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class _StaticArg:
  """A non-array kernel argument (a Python or numpy scalar), baked into the PyTreeDef."""
  value: Any = dataclasses.field(metadata=dict(static=True))


@tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class _OutputPlaceholder:
  """The kernel parameter that receives output number `ordinal` (of the flattened out_type)."""
  ordinal: int = dataclasses.field(metadata=dict(static=True))


def _is_ref(x: Any) -> bool:
  if isinstance(x, (int, float, complex, str, np.generic, tl.constexpr)):
    return False
  try:
    return isinstance(core.typeof(x), state.AbstractRef)
  except (TypeError, OverflowError):
    return False


def _is_array_operand(x: Any) -> bool:
  return isinstance(x, (jax.Array, np.ndarray)) or _is_ref(x)


def _is_tuple_node(x: Any) -> bool:
  return isinstance(x, (tuple, list)) and not isinstance(x, tl.constexpr)


def _rebuild_tuple(like: Any, children: list[Any]) -> Any:
  if isinstance(like, tuple) and hasattr(type(like), "_fields"):  # namedtuple
    return type(like)(*children)
  return tuple(children)


def _wrap_operand(value: Any, param_name: str) -> Any:
  """Arrays/Refs stay leaves, tuples are walked, anything else becomes a `_StaticArg`."""
  if isinstance(value, state.TransformedRef):
    raise NotImplementedError("TransformedRefs are not supported as triton_call arguments")
  if _is_array_operand(value) or isinstance(value, TensorDescriptor):
    return value
  if _is_tuple_node(value) and not isinstance(value, list):
    return _rebuild_tuple(value, [_wrap_operand(v, param_name) for v in value])
  what = {dict: "a dict", list: "a list", str: "a str", type(None): "None"}.get(type(value))
  if what is None and not isinstance(value, (bool, int, float, np.generic, tl.constexpr)):
    what = f"a {type(value).__name__}"
  if what is not None:
    hint = {"a list": "; pass an array (jnp.asarray) for a pointer parameter, or a tuple for a "
                      "tuple parameter",
            "a str": "; strings can only be given to tl.constexpr parameters",
            "None": "; there are no None arguments (drop the parameter, or make it a "
                    "tl.constexpr)"}.get(what, "")
    shown = "" if value is None else f" ({_shorten(repr(value))})"
    raise TypeError(
        f"triton_call: the argument for kernel parameter {param_name!r} is {what}"
        f"{shown}; arguments of non-constexpr parameters must be arrays, Refs, "
        f"Python or numpy scalars, or tuples of these{hint}")
  get_type_id(value)  # raises early for values that cannot be passed (e.g. ints beyond 64 bits)
  return _StaticArg(value)


def _shorten(text: str, limit: int = 60) -> str:
  return text if len(text) <= limit else text[:limit - 3] + "..."


def _leaves_with_paths(tree: Any) -> list[tuple[tuple[int, ...], Any]]:
  """Leaves of an unflattened `in_tree` value, in pytree order, with their index paths."""
  out = []

  def walk(x, path):
    if _is_tuple_node(x):
      for i, c in enumerate(x):
        walk(c, path + (i,))
    else:
      out.append((path, x))

  for i, x in enumerate(tree):
    walk(x, (i,))
  return out


def _map_leaves(f: Callable[[Any], Any], tree: Any) -> Any:
  if _is_tuple_node(tree):
    return _rebuild_tuple(tree, [_map_leaves(f, c) for c in tree])
  return f(tree)


def _restructure(tree: Sequence[Any], flat: Sequence[Any]) -> list[Any]:
  """`tree` (a list, one entry per parameter) with its leaves replaced, in order, by `flat`."""
  it = iter(flat)
  out = [_map_leaves(lambda _: next(it), t) for t in tree]
  end = object()
  assert next(it, end) is end, "more values than leaves"
  return out


# ----------------------------------------------------------------------------------------------
# Primitive
# ----------------------------------------------------------------------------------------------

triton_kernel_call_p = jex.core.Primitive("triton_kernel_call")
triton_kernel_call_p.multiple_results = True


def _triton_kernel_call_impl(*args, **params):
  if any(_is_ref(a) for a in args):
    # Refs must go through jit so that their state is discharged.
    with jax_config.disable_jit(False):
      return jax.jit(functools.partial(triton_kernel_call_p.bind, **params))(*args)
  return xla.apply_primitive(triton_kernel_call_p, *args, **params)


triton_kernel_call_p.def_impl(_triton_kernel_call_impl)


def _out_aval(shape, dtype, in_avals) -> core.ShapedArray:
  """An output's aval. Under shard_map (check_vma=True) each shard's outputs are computed from
  its inputs, so they vary over every mesh axis an input varies over: marked invariant, they
  would let out_specs=P() take one shard's values for all and psum treat them as equal."""
  varying = frozenset()
  if jax_config._check_vma.value:
    for aval in in_avals:
      aval = getattr(aval, "inner_aval", aval)  # a Ref's array
      varying |= getattr(getattr(aval, "mat", None), "varying", frozenset())
  if not varying:
    return core.ShapedArray(shape, dtype)
  return core.ShapedArray(shape, dtype, sharding=core.get_cur_mesh_sharding(),
                          manual_axis_type=core.ManualAxisType(varying=varying))


@triton_kernel_call_p.def_effectful_abstract_eval
def _triton_kernel_call_abstract_eval(*in_avals, out_shapes, **_):
  # The kernel may read and write any Ref it gets.
  effects = {
      effect(i)
      for i, aval in enumerate(in_avals) if isinstance(aval, state.AbstractRef)
      for effect in (state.ReadEffect, state.WriteEffect)
  }
  return [_out_aval(s.shape, s.dtype, in_avals) for s in out_shapes], effects


# A kernel call is never removed by DCE: it may write to its operands.
# jax 0.12 passes (used_outs, live_ins, eqn), earlier versions (used_outs, eqn).
pe.dce_rules[triton_kernel_call_p] = lambda used_outs, *rest: ([True] * len(rest[-1].invars), rest[-1])


def _triton_kernel_call_discharge_rule(in_avals, out_avals, *args, in_tree, out_shapes,
                                       input_output_aliases, **params):
  """Turns every Ref operand into an extra output aliased to that operand."""
  del out_avals
  if input_output_aliases:
    raise NotImplementedError("input_output_aliases cannot be combined with ref arguments")
  # (array index, operand index); operand indices count static scalars too, as aliases do.
  ref_positions = []
  array_idx = operand_idx = -1
  for _, leaf in _leaves_with_paths(in_tree.unflatten(in_avals)):
    if isinstance(leaf, _OutputPlaceholder):
      continue
    operand_idx += 1
    if isinstance(leaf, _StaticArg):
      continue
    array_idx += 1
    if isinstance(leaf, state.AbstractRef):
      ref_positions.append((array_idx, operand_idx))
  n_out = len(out_shapes)
  new_out_shapes = list(out_shapes)
  aliases = {}
  for k, (array_idx, operand_idx) in enumerate(ref_positions):
    inner = in_avals[array_idx].inner_aval
    new_out_shapes.append(jax.ShapeDtypeStruct(inner.shape, inner.dtype))
    aliases[operand_idx] = n_out + k
  results = triton_kernel_call_p.bind(
      *args, in_tree=in_tree, out_shapes=tuple(new_out_shapes),
      input_output_aliases=FrozenDict(aliases), **params)
  outs, updated = util.split_list(results, [n_out])
  new_invals: list[Any] = [None] * len(in_avals)
  for k, (array_idx, _) in enumerate(ref_positions):
    new_invals[array_idx] = updated[k]
  return new_invals, outs


# jax >= 0.11 passes discharge rules a context holding the avals; 0.10 passes the avals.
if hasattr(state_discharge, "DischargeContext"):
  state_discharge.register_discharge_rule(triton_kernel_call_p)(
      lambda ctx, *args, **params: _triton_kernel_call_discharge_rule(
          ctx.in_avals, ctx.out_avals, *args, **params))
else:
  state_discharge.register_discharge_rule(triton_kernel_call_p)(_triton_kernel_call_discharge_rule)
def _raise_on_jvp(*args, **kwargs):
  raise NotImplementedError(
      "jax_triton.triton_call does not support automatic differentiation. Use "
      "jax.custom_jvp or jax.custom_vjp to implement a custom automatic "
      "differentiation rule for your kernel.")


def _raise_on_vmap(*args, **kwargs):
  raise NotImplementedError(
      "jax_triton.triton_call does not support batching with jax.vmap. Use "
      "jax.custom_batching.custom_vmap to implement a custom batching rule for "
      "your kernel.")


ad.primitive_jvps[triton_kernel_call_p] = _raise_on_jvp
batching.primitive_batchers[triton_kernel_call_p] = _raise_on_vmap


# ----------------------------------------------------------------------------------------------
# Compilation
# ----------------------------------------------------------------------------------------------

def compile_ttir_inplace(ttir: frontend.KernelSource | str,
                         options: compiler.CPUOptions) -> compiler.CompiledKernel:
  """TTIR -> kernel library. Called exactly once per compile-cache miss. A KernelSource builds its
  TTIR only if the disk cache does not already hold the library."""
  return compiler.compile_ttir(ttir, options)


@dataclasses.dataclass(frozen=True)
class KernelSpecialization:
  """What a kernel is compiled for. Array shapes and scalar values (other than == 1) are absent.

  signature: parameter name -> Triton type ("*fp32", "i32", nested tuples for tuple parameters,
    "constexpr" for constants).
  specialization: per flat argument, (type, "D" for 16-divisible pointers or "").
  attrs: argument path (indices over *all* kernel parameters) -> [["tt.divisibility", 16]] or [].
  constants: constexpr name -> value (metaparams, and top-level int scalars equal to 1).
  """
  signature: dict[str, Any]
  specialization: tuple[tuple[str, str], ...]
  attrs: dict[tuple[int, ...], Any]
  constants: dict[str, Any]


def _dump_dir(debug: bool) -> str | None:
  d = os.environ.get(DUMP_DIR_ENV)
  if d:
    return d
  if debug:
    return os.path.join(tempfile.gettempdir(), "jax_triton_cpu_dump")
  return None


def _dump_kernel_artifacts(base_dir: str, cache_key: tuple, options: compiler.CPUOptions,
                           kernel: compiler.CompiledKernel) -> str:
  tag = kernel.library_hash[:16] or hashlib.sha256(repr(cache_key).encode()).hexdigest()[:16]
  path = os.path.join(base_dir, f"{kernel.name}_{tag}")
  os.makedirs(path, exist_ok=True)
  with open(os.path.join(path, "config.txt"), "w") as f:
    pprint.pprint(cache_key, stream=f)
    pprint.pprint(options, stream=f)
    f.write(f"library: {kernel.library_path}\nsymbol: {kernel.symbol}\n"
            f"param_types: {kernel.param_types}\n")
  for ext, text in (("ttir", kernel.ttir), ("ll", kernel.llvm_ir), ("s", kernel.asm)):
    if text:
      with open(os.path.join(path, f"{kernel.name}.{ext}"), "w") as f:
        f.write(text)
  return path


class TritonFunction:
  """A Triton kernel, possibly wrapped in triton.autotune / triton.heuristics.

  Owns specialisation, compilation and the compile cache. The cache is one dict per kernel, kept on
  the JITFunction, so every TritonFunction of one kernel shares it.
  """
  autotuner: Autotuner | None = None
  heuristics: Heuristics | None = None

  def __init__(self, kernel: Any):
    self.heuristics_chain: list[Heuristics] = []  # outermost first
    fn = kernel
    while isinstance(fn, (Autotuner, Heuristics)):
      if isinstance(fn, Autotuner):
        if self.autotuner is not None:
          raise NotImplementedError("nested triton.autotune wrappers are not supported")
        self.autotuner = fn
      else:
        self.heuristics_chain.append(fn)
      fn = fn.fn
    if self.heuristics_chain:
      self.heuristics = self.heuristics_chain[0]
    if not isinstance(fn, triton.runtime.JITFunction):
      raise TypeError(
          f"kernel must be a @triton.jit function (optionally wrapped in triton.autotune or "
          f"triton.heuristics), got {kernel!r}")
    self.fn = fn
    # Computed once, here, under the frontend's lock: dicts of jax and of ours hash the kernel,
    # and the first hash parses its source, which is not thread-safe on Python 3.11.
    frontend.source_hash(fn)
    if not hasattr(fn, "_jax_triton_cpu_kernel_cache"):
      fn._jax_triton_cpu_kernel_cache = {}

  @property
  def name(self) -> str:
    return self.fn.fn.__name__

  @property
  def params(self):
    return self.fn.params

  @functools.cached_property
  def param_names(self) -> list[str]:
    return [p.name for p in self.params]

  @functools.cached_property
  def constexpr_param_names(self) -> frozenset[str]:
    return frozenset(p.name for p in self.params if p.is_constexpr)

  @functools.cached_property
  def option_param_names(self) -> frozenset[str]:
    """Constexpr parameters named like a launch option (num_warps, num_stages, debug, ...)."""
    return self.constexpr_param_names & _LAUNCH_OPTION_NAMES

  @functools.cached_property
  def non_constexpr_param_names(self) -> list[str]:
    return [p.name for p in self.params if not p.is_constexpr]

  @functools.cached_property
  def param_defaults(self) -> dict[str, Any]:
    return {p.name: p.default for p in self.params if p.has_default}

  @property
  def signature(self) -> inspect.Signature:
    return self.fn.signature

  @property
  def _kernel_cache(self) -> dict[tuple, compiler.CompiledKernel]:
    return self.fn._jax_triton_cpu_kernel_cache

  def make_configs(self, backend_options: Mapping[str, Any], metaparams: Mapping[str, Any],
                   named_args: Mapping[str, Any]) -> list[triton.Config]:
    """The configs to compile: autotune configs that agree with the metaparams, else one config.

    Heuristics are evaluated once per config, on a copy: the user's Config objects are not changed.
    """
    if self.autotuner is not None:
      at = self.autotuner
      if getattr(at, "user_defined_pre_hook", False):
        raise NotImplementedError("`pre_hook` is not supported")
      configs = []
      for config in at.configs:
        if config.pre_hook is not None:
          raise NotImplementedError("`pre_hook` is not supported")
        # Unlike Triton, a config key that is also given explicitly is fine if the values agree.
        if all(config.kwargs.get(k, v) == v for k, v in metaparams.items()):
          configs.append(config)
      if at.early_config_prune is not None and configs:
        configs = list(at.early_config_prune(configs, dict(named_args), **metaparams))
      if at.perf_model is not None and configs:
        top_k = at.configs_top_k
        if isinstance(top_k, float) and top_k <= 1.0:
          top_k = max(1, int(len(configs) * top_k))
        if len(configs) > top_k:
          # One dict: a name in several of these (a metaparam, num_stages) is passed once.
          est = [at.perf_model(**{**named_args, **metaparams, **c.all_kwargs()}) for c in configs]
          order = sorted(range(len(configs)), key=lambda i: est[i])
          configs = [configs[i] for i in order[:top_k]]
      if not configs:
        raise ValueError(
            f"No autotune config of kernel '{self.name}' is compatible with the metaparams "
            f"{dict(metaparams)}")
    else:
      configs = [triton.Config({}, num_warps=backend_options["num_warps"],
                               num_stages=backend_options["num_stages"],
                               num_ctas=backend_options["num_ctas"])]

    if self.heuristics_chain:
      updated = []
      for config in configs:
        kwargs = dict(config.kwargs)
        for h in self.heuristics_chain:
          for k, heuristic in h.values.items():
            kwargs[k] = heuristic({**named_args, **metaparams, **kwargs})
        config = copy.copy(config)
        config.kwargs = kwargs
        updated.append(config)
      configs = updated
    return configs

  def _specialize(self, args: Sequence[Any], arg_dtypes: Sequence[str], structure: Sequence[Any],
                  objpaths: Sequence[tuple[int, ...]],
                  metaparams: Mapping[str, Any]) -> KernelSpecialization:
    names = self.non_constexpr_param_names
    # Operand paths index non-constexpr parameters; Triton's attrs index all parameters.
    full_index = {n: i for i, n in enumerate(self.param_names)}
    arg_paths = [(full_index[names[p[0]]],) + tuple(p[1:]) for p in objpaths]
    signature = dict(zip(names, _restructure(structure, arg_dtypes), strict=True))
    is_pointer = [t.startswith("*") for t in arg_dtypes]
    specialization = tuple((t, "D" if ptr else "") for t, ptr in zip(arg_dtypes, is_pointer))
    attrs = {path: (_DIVISIBILITY_16 if ptr else []) for path, ptr in zip(arg_paths, is_pointer)}
    constants = dict(metaparams)
    for a, path, ptr in zip(args, objpaths, is_pointer):
      if not ptr and len(path) == 1 and _equals_one(a):
        constants[names[path[0]]] = 1
    for c in constants:
      signature[c] = "constexpr"
    return KernelSpecialization(signature, specialization, attrs, constants)

  def _make_cache_key(self, spec: KernelSpecialization, options: compiler.CPUOptions) -> tuple:
    return (self.fn, tuple(spec.signature.items()), spec.specialization,
            tuple(spec.constants.items()), options)

  def _check_constants(self, spec: KernelSpecialization) -> None:
    unknown = [c for c in spec.constants if c not in self.param_names]
    if unknown:
      raise TypeError(
          f"Metaparameters {unknown} are not parameters of kernel '{self.name}' "
          f"(its parameters are {self.param_names}). Every keyword argument of triton_call that "
          "does not name a kernel parameter is a metaparam; check for a misspelled name.")
    missing = [n for n in self.constexpr_param_names if n not in spec.constants]
    if missing:
      raise TypeError(f"Kernel '{self.name}' is missing a value for constexpr parameter(s) "
                      f"{sorted(missing)}")

  def get_or_create_kernel(self, args: Sequence[Any], arg_dtypes: Sequence[str], *,
                           structure: Sequence[Any], objpaths: Sequence[tuple[int, ...]],
                           backend_options: Mapping[str, Any],
                           metaparams: Mapping[str, Any]
                           ) -> tuple[compiler.CompiledKernel, KernelSpecialization]:
    """Returns the compiled kernel for these arguments, compiling it on a cache miss."""
    options = compiler.CPUOptions.parse(backend_options)
    spec = self._specialize(args, arg_dtypes, structure, objpaths, metaparams)
    self._check_constants(spec)
    key = self._make_cache_key(spec, options)
    kernel = self._kernel_cache.get(key)
    if kernel is None:
      source = frontend.KernelSource(self.fn, spec.signature, spec.constants, spec.attrs, options)
      explained = None
      try:
        kernel = compile_ttir_inplace(source, options)
      except triton.compiler.errors.CompilationError as e:
        tuples = [n for n, t in spec.signature.items() if isinstance(t, tuple)]
        if not tuples or "tuple" not in str(e):
          raise
        explained = TypeError(
            f"kernel '{self.name}': parameter(s) {tuples} were given tuples, which bind only to "
            f"parameters the kernel uses as tuples (x[0], ...); Triton's error:\n{e}")
      if explained is not None:
        # Raised outside the handler: the frontend's error, whose frames hold triton's MLIR
        # objects, is freed here rather than kept alive as the context of ours.
        raise explained
      self._kernel_cache[key] = kernel
      dump_dir = _dump_dir(options.debug)
      if dump_dir:
        path = _dump_kernel_artifacts(dump_dir, key, options, kernel)
        if options.debug:
          print(f"jax_triton_cpu: wrote the IR of kernel '{kernel.name}' to {path}",
                file=sys.stderr)
    return kernel, spec


def _equals_one(x: Any) -> bool:
  """Whether a scalar argument is specialised to the constexpr 1: ints only, as in Triton.

  Floats and bools equal to 1 stay runtime arguments of their own type (fp32, i1, ...): made the
  constexpr *int* 1 they would break `scale.to(tl.float32)` and float math in the kernel.
  """
  if isinstance(x, tl.constexpr):
    x = x.value
  if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, np.integer)):
    return False
  return bool(x == 1)


# ----------------------------------------------------------------------------------------------
# Lowering
# ----------------------------------------------------------------------------------------------

def _triton_kernel_call_lowering(
    ctx: mlir.LoweringRuleContext,
    *array_args,
    fn,
    name: str,
    in_tree,
    out_shapes,
    grid,
    compute_capability,
    backend_options: FrozenDict,
    input_output_aliases: FrozenDict,
    zeroed_outputs,
    serialized_metadata: bytes,
    metaparams: FrozenDict,
    has_side_effect: bool = False,
    cost_estimate: CostEstimate | None = None,
):
  del name, compute_capability, serialized_metadata, out_shapes  # no meaning on CPU
  from . import _runtime  # noqa: F401  registers the FFI target before the program is compiled

  num_operands = len(ctx.avals_in)

  # 1. The flat kernel arguments, in declaration order: operand avals, static scalars, and the
  #    result avals that output placeholders stand for.
  args: list[Any] = []
  objpaths: list[tuple[int, ...]] = []
  buffer_of: dict[int, int] = {}      # flat arg index -> buffer index (operands, then results)
  operand_buffer: list[int | None] = []  # per operand index: its buffer, None for static scalars
  static_indices: set[int] = set()
  n_arrays = 0
  for i, (path, leaf) in enumerate(_leaves_with_paths(in_tree.unflatten(ctx.avals_in))):
    objpaths.append(path)
    if isinstance(leaf, _OutputPlaceholder):
      args.append(ctx.avals_out[leaf.ordinal])
      buffer_of[i] = num_operands + leaf.ordinal
      continue
    if isinstance(leaf, _StaticArg):
      args.append(leaf.value)
      static_indices.add(i)
      operand_buffer.append(None)
    else:
      args.append(leaf)
      buffer_of[i] = n_arrays
      operand_buffer.append(n_arrays)
      n_arrays += 1
  assert n_arrays == num_operands, (n_arrays, num_operands)
  arg_dtypes = [get_type_id(a) for a in args]
  structure = _restructure(in_tree.unflatten(ctx.avals_in), args)  # per parameter, tuples nested

  triton_fn = TritonFunction(fn)
  named_args = dict(zip(triton_fn.non_constexpr_param_names, structure, strict=True))
  named_args.update(metaparams)
  configs = triton_fn.make_configs(backend_options, metaparams, named_args)

  # 2. Aliases: user operand index -> operand (buffer) index.
  operand_output_aliases = {}
  for operand_idx, out_idx in input_output_aliases.items():
    buf = operand_buffer[operand_idx]
    if buf is None:
      raise ValueError(f"input_output_aliases: operand {operand_idx} is a static scalar, not an "
                       "array")
    operand_output_aliases[buf] = out_idx

  equal_to_1 = {i for i in static_indices if len(objpaths[i]) == 1 and _equals_one(args[i])}

  # 3. Every config is compiled. Several distinct launches go into one custom call, whose
  #    handler runs the fastest on the first execution's inputs (docs/abi.md).
  calls = []
  for config in configs:
    call = _config_call(triton_fn, config, ctx, grid, metaparams, backend_options,
                        zeroed_outputs, args, arg_dtypes, structure, objpaths, buffer_of,
                        equal_to_1)
    if call not in calls:  # e.g. configs that differ only in num_warps
      calls.append(call)
  # A config with an empty grid computes nothing: a candidate only if all are empty.
  launched = [c for c in calls if math.prod(c.grid) > 0]
  if not launched:
    return _lower_empty_grid(ctx, array_args, operand_output_aliases, calls[0].zeroed)

  attributes: dict[str, Any] = dict(kernel_name=launched[0].kernel_name)
  if len(launched) > 1:
    attributes["num_configs"] = np.int32(len(launched))
  # A call lowered for jax.export carries its libraries and TTIR, to run on any machine.
  portable = getattr(ctx.module_context.lowering_parameters, "for_export", False)
  for k, call in enumerate(launched):
    attributes.update(call.attributes(suffix=f"_{k}" if k else "", portable=portable))
  if cost_estimate is not None:
    attributes["cost_estimate_json"] = json.dumps(dict(cost_estimate))
  rule = jax.ffi.ffi_lowering(
      CUSTOM_CALL_TARGET_NAME,
      operand_output_aliases=operand_output_aliases or None,
      has_side_effect=has_side_effect,
  )
  return rule(ctx, *array_args, **attributes)


@dataclasses.dataclass(frozen=True)
class _LaunchCall:
  """One config's launch: the attributes of one config of the custom call (docs/abi.md)."""
  kernel_name: str
  library: str
  library_hash: str
  symbol: str
  grid: tuple[int, int, int]
  arg_map: tuple[int, ...]
  scalars: tuple[int, ...]
  zeroed: tuple[int, ...]
  num_threads: int
  target: str            # what an exported call needs to get a library on another machine
  ttir: str
  options: compiler.CPUOptions

  def attributes(self, suffix: str, portable: bool = False) -> dict[str, Any]:
    extra = {}
    if portable:
      from . import portable as portable_lib
      extra = {f"{k}{suffix}": v for k, v in portable_lib.embedded_attributes(
          self.library, self.target, self.ttir, self.options).items()}
    return {**extra,
        f"library{suffix}": self.library,
        f"library_hash{suffix}": self.library_hash,
        f"symbol{suffix}": self.symbol,
        f"grid{suffix}": np.asarray(self.grid, dtype=np.int64),
        f"arg_map{suffix}": np.asarray(self.arg_map, dtype=np.int64),
        f"scalars{suffix}": np.asarray(self.scalars, dtype=np.int64),
        f"zeroed_outputs{suffix}": np.asarray(self.zeroed, dtype=np.int64),
        f"num_threads{suffix}": np.int32(self.num_threads),
    }


def _split_config(triton_fn: TritonFunction, config: triton.Config
                  ) -> tuple[dict[str, Any], dict[str, Any]]:
  """A config's (metaparams, backend options).

  Config kwargs with CPU option names are options of that config: triton.Config({"BLOCK": 64,
  "num_cpu_threads": 4}) tunes the thread count, as launch keywords become options in Triton. A
  kwarg that also names a kernel parameter is both, as in Triton's launcher.
  """
  metaparams, options = {}, {}
  for k, v in config.kwargs.items():
    if k in _CPU_OPTION_DEFAULTS:
      options[k] = v
    if k in triton_fn.param_names or k not in _CPU_OPTION_DEFAULTS:
      metaparams[k] = v
  options = {"num_warps": config.num_warps, "num_stages": config.num_stages,
             "num_ctas": config.num_ctas, **options}
  if triton_fn.autotuner is not None:
    # Triton's autotuner launches with each config's num_warps, num_stages, ... as keywords, so
    # parameters with those names take the config's values.
    metaparams.update((n, options[n]) for n in triton_fn.option_param_names if n in options)
  return metaparams, options


def _config_call(triton_fn, config, ctx, grid, metaparams, backend_options, zeroed_outputs,
                 args, arg_dtypes, structure, objpaths, buffer_of, equal_to_1) -> _LaunchCall:
  """Compiles one config (or finds it in the cache) and builds its launch."""
  config_kwargs, config_options = _split_config(triton_fn, config)
  config_metaparams = {**metaparams, **config_kwargs}
  config_grid = normalize_grid(grid, dict(config_metaparams))
  if not all(0 <= g < 2**31 for g in config_grid) or math.prod(config_grid) >= 2**63:
    raise ValueError("grid dimensions must be in [0, 2**31) and their product below 2**63, "
                     f"got grid {config_grid}")
  config_zeroed = zeroed_outputs(dict(config_metaparams)) if callable(zeroed_outputs) \
      else zeroed_outputs
  config_zeroed = sorted(int(z) for z in config_zeroed)
  for z in config_zeroed:
    if not 0 <= z < len(ctx.avals_out):
      raise ValueError(f"zeroed_outputs: output index {z} is out of range; there are "
                       f"{len(ctx.avals_out)} outputs")
  config_backend_options = {**backend_options, **config_options}
  options = compiler.CPUOptions.parse(config_backend_options)
  # The thread count is a launch setting: configs that differ only in it share one library.
  compile_options = {k: v for k, v in config_backend_options.items() if k != "num_cpu_threads"}
  kernel, _ = triton_fn.get_or_create_kernel(
      args, arg_dtypes, structure=structure, objpaths=objpaths,
      backend_options=compile_options, metaparams=config_metaparams)

  arg_map, scalars = [], []
  for i, (arg, dtype) in enumerate(zip(args, arg_dtypes)):
    if dtype.startswith("*"):
      arg_map.append(buffer_of[i])
    elif i not in equal_to_1:
      arg_map.append(-(len(scalars) + 1))
      scalars.append(_scalar_bits(arg, dtype))
  if kernel.param_types and len(kernel.param_types) != len(arg_map):
    raise RuntimeError(
        f"kernel '{kernel.name}' was compiled with {len(kernel.param_types)} runtime parameters "
        f"{kernel.param_types}, but the call passes {len(arg_map)} (types "
        f"{[t for i, t in enumerate(arg_dtypes) if i not in equal_to_1]})")
  num_threads = compiler.launch_threads(kernel, math.prod(config_grid), options.num_cpu_threads)
  return _LaunchCall(kernel.name, str(kernel.library_path), kernel.library_hash, kernel.symbol,
                     config_grid, tuple(arg_map), tuple(scalars), tuple(config_zeroed),
                     num_threads, kernel.target, kernel.ttir_generic,
                     compiler.CPUOptions.parse(compile_options))


def _lower_empty_grid(ctx, array_args, aliases, zeroed):
  """A grid with no programs: aliased outputs keep their input, the others are zeros."""
  out_to_operand = {o: b for b, o in aliases.items()}
  zeroed = set(zeroed)

  def body(*arrays):
    outs = []
    for k, aval in enumerate(ctx.avals_out):
      if k in out_to_operand and k not in zeroed:
        outs.append(arrays[out_to_operand[k]])
      else:
        outs.append(jnp.zeros(aval.shape, aval.dtype))
    return outs

  return mlir.lower_fun(body, multiple_results=True)(ctx, *array_args)


mlir.register_lowering(triton_kernel_call_p, _triton_kernel_call_lowering, platform="cpu")


# ----------------------------------------------------------------------------------------------
# triton_call
# ----------------------------------------------------------------------------------------------

def triton_call(
    *args: Any,
    kernel: Any,
    out_type: Any = None,
    grid: Any,
    name: str = "",
    num_warps: int | None = None,
    num_stages: int | None = None,
    num_ctas: int | None = None,
    compute_capability: int | None = None,
    backend_options: Mapping[str, Any] | None = None,
    input_output_aliases: dict[int, int] | None = None,
    zeroed_outputs: Any = (),
    debug: bool = False,
    serialized_metadata: bytes = b"",
    cost_estimate: CostEstimate | None = None,
    has_side_effect: bool = False,
    **kwargs: Any,
) -> Any:
  """Calls a Triton kernel on JAX arrays, on CPU. The API of jax-triton 0.4's `triton_call`.

  Args:
    *args: operands, bound by position to the kernel's parameters. Arrays and Refs
      (`jax.new_ref`) are passed as pointers; Refs are mutated in place and are not listed in
      `out_type`. Other values (Python/numpy scalars) are static: they are part of the
      compiled call; an int equal to 1 at the top level becomes a constexpr (as in Triton;
      floats and bools stay runtime scalars).
      Tuples (of any of these) bind to tuple parameters. An argument bound to a constexpr
      parameter is a metaparam.
    kernel: a `triton.jit` function, optionally wrapped in `triton.heuristics` and/or
      `triton.autotune`. Every autotune config that agrees with the explicit metaparams is
      compiled; the first execution of each call site times them on its inputs and keeps the
      fastest. A config's kwargs may hold CPU options, e.g.
      `triton.Config({"BLOCK": 64, "num_cpu_threads": 4})`.
    out_type: a pytree of objects with `.shape` and `.dtype`. Each unaliased leaf fills, in
      order, a kernel parameter that no argument was given for; the outputs come back in the
      same structure.
    grid: an int, a tuple of up to 3 ints, or a function of the metaparams dict returning one.
    name: a name for the call (kept for compatibility).
    num_warps, num_stages, num_ctas: GPU launch knobs, accepted for compatibility; num_ctas
      must be 1. As in Triton, a constexpr kernel parameter named like a launch option
      (`num_stages: tl.constexpr`, also `num_warps`, `debug`, `backend_options` keys) receives
      the option's value: the one given here or in a `triton.Config`, else the kernel's default
      for it, else the option's default.
    compute_capability: ignored on CPU.
    backend_options: CPU compile options (`jax_triton_cpu.compiler.CPUOptions`), e.g.
      `num_cpu_threads`, `enable_fast_math`; GPU-only options are accepted and ignored.
    input_output_aliases: deprecated; {operand index: output index}, operand indices counting
      the flattened non-constexpr operands (static scalars included) in declaration order.
      Aliased outputs get no kernel parameter.
    zeroed_outputs: deprecated; flattened output indices (or a function of the metaparams
      returning them) whose buffers are zeroed before the launch.
    debug: compile in debug mode and write the kernel's IR to a dump directory.
    serialized_metadata: accepted for compatibility; unused on CPU.
    cost_estimate: {"flops": int, "bytes_accessed": int}, attached to the custom call.
    has_side_effect: keeps XLA from removing the call when its outputs are unused.
    **kwargs: a keyword naming a non-constexpr kernel parameter is an operand; any other
      keyword is a metaparam. Missing constexprs take the kernel's defaults.

  Returns:
    The outputs, in the structure of `out_type`.
  """
  if backend_options is None:
    backend_options = {}
  explicit_options = {"num_warps": num_warps, "num_stages": num_stages, "num_ctas": num_ctas,
                      "debug": debug}
  explicit_options = {k: v for k, v in explicit_options.items() if v is not None}
  if conflicts := explicit_options.keys() & backend_options.keys():
    raise ValueError(
        f"Cannot specify {conflicts} both as explicit arguments and in ``backend_options``")
  backend_options = {**backend_options, **explicit_options}
  given_options = frozenset(backend_options)
  backend_options.setdefault("num_warps", 4)
  backend_options.setdefault("num_stages", 3)
  backend_options.setdefault("num_ctas", 1)
  for k, v in backend_options.items():
    try:
      hash(v)
    except TypeError:
      raise TypeError(f"backend_options[{k!r}] must be hashable, got {v!r}") from None

  if "out_shape" in kwargs:
    if out_type is not None:
      raise TypeError("Cannot specify both out_type= and the deprecated out_shape=")
    warnings.warn("out_shape= is deprecated in favor of out_type=", DeprecationWarning,
                  stacklevel=2)
    out_type = kwargs.pop("out_shape")
  elif out_type is None:
    raise TypeError("Either out_type= or the deprecated out_shape= must be provided")
  out_type = tree_util.tree_map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), out_type)

  triton_fn = TritonFunction(kernel)
  constexpr_names = triton_fn.constexpr_param_names
  param_names = frozenset(triton_fn.param_names)

  # Keywords naming a kernel parameter are bound to it; any other keyword is a metaparam.
  metaparams: dict[str, Any] = {
      n: triton_fn.param_defaults[n] for n in constexpr_names if n in triton_fn.param_defaults}
  # As Triton's launcher does, a constexpr parameter named like a launch option (tutorial 02's
  # `num_stages: tl.constexpr`) gets the option's value: the one given, else the kernel's
  # default, else the option's default.
  for n in triton_fn.option_param_names:
    if n in given_options or n not in metaparams:
      value = backend_options.get(n, _CPU_OPTION_DEFAULTS.get(n))
      if value is not None:
        metaparams[n] = value
  kernel_kwargs = {}
  for k, v in kwargs.items():
    if k in param_names:
      kernel_kwargs[k] = v
    else:
      metaparams[k] = v
  bound = _bind(triton_fn, args, kernel_kwargs)

  operands: dict[str, Any] = {}
  has_refs = False
  for p_name, value in bound.arguments.items():
    if p_name in constexpr_names:
      metaparams[p_name] = value
      continue
    operands[p_name] = _wrap_operand(value, p_name)
    if any(isinstance(leaf, _StaticArg) and isinstance(leaf.value, np.float32)
           for _, leaf in _leaves_with_paths([operands[p_name]])):
      warnings.warn("Passing np.float32 scalars to triton_call is deprecated, use float instead.",
                    DeprecationWarning, stacklevel=2)
    has_refs = has_refs or any(_is_ref(leaf) for leaf in tree_util.tree_leaves(operands[p_name]))

  flat_out_shapes, out_tree = tree_util.tree_flatten(out_type)

  if input_output_aliases is None:
    input_output_aliases = {}
  elif input_output_aliases:
    warnings.warn("input_output_aliases is deprecated. Pass inputs you want to alias as Ref "
                  "arguments instead", DeprecationWarning, stacklevel=2)
    if has_refs:
      raise ValueError("input_output_aliases cannot be combined with Ref arguments. Refs "
                       "express input/output aliasing implicitly")

  if zeroed_outputs if callable(zeroed_outputs) else len(zeroed_outputs):
    warnings.warn("zeroed_outputs is deprecated. Zero the buffer explicitly and pass it as a "
                  "Ref argument instead", DeprecationWarning, stacklevel=2)
  if not callable(zeroed_outputs):
    zeroed_outputs = tuple(int(z) for z in zeroed_outputs)
    for z in zeroed_outputs:
      if not 0 <= z < len(flat_out_shapes):
        raise ValueError(f"zeroed_outputs: output index {z} is out of range; out_type has "
                         f"{len(flat_out_shapes)} leaves")

  # Aliased outputs reuse their input's buffer; the unaliased ones fill, in order, the kernel
  # parameters the caller gave no argument for.
  aliased_outputs = frozenset(input_output_aliases.values())
  if len(aliased_outputs) != len(input_output_aliases):
    raise ValueError("input_output_aliases must be a bijection")
  n_missing = len(triton_fn.non_constexpr_param_names) - len(operands)
  n_unaliased = len(flat_out_shapes) - len(aliased_outputs)
  if n_missing != n_unaliased:
    raise ValueError(f"out_type has {n_unaliased} unaliased outputs, but {n_missing} kernel "
                     "parameters are missing an argument")
  if input_output_aliases:
    _check_aliases(input_output_aliases, triton_fn, operands, flat_out_shapes)

  unaliased = iter(o for o in range(len(flat_out_shapes)) if o not in aliased_outputs)
  array_args, in_tree = tree_util.tree_flatten([
      operands[n] if n in operands else _OutputPlaceholder(next(unaliased))
      for n in triton_fn.non_constexpr_param_names
  ])

  if isinstance(grid, list):
    grid = tuple(grid)
  if not callable(grid):
    normalize_grid(grid, {})  # a malformed grid fails here, not at lowering
  out_flat = triton_kernel_call_p.bind(
      *array_args,
      fn=kernel,
      name=name,
      in_tree=in_tree,
      out_shapes=tuple(flat_out_shapes),
      grid=grid,
      compute_capability=compute_capability,
      backend_options=FrozenDict(backend_options),
      input_output_aliases=FrozenDict(input_output_aliases),
      zeroed_outputs=zeroed_outputs,
      serialized_metadata=serialized_metadata,
      cost_estimate=FrozenDict(cost_estimate) if cost_estimate else None,
      has_side_effect=has_side_effect,
      metaparams=FrozenDict(metaparams),
  )
  return tree_util.tree_unflatten(out_tree, out_flat)


def _bind(triton_fn: "TritonFunction", args: Sequence[Any], kwargs: Mapping[str, Any]):
  """Binds positional operands, then keywords, to the kernel's parameters, with errors that say
  which argument went where."""
  names = triton_fn.param_names
  signature = f"kernel '{triton_fn.name}' has parameters ({', '.join(names)})"
  if len(args) > len(names):
    raise TypeError(
        f"triton_call got {len(args)} positional arguments, but {signature}. Outputs are not "
        "passed: out_type fills the parameters left without an argument.")
  try:
    return triton_fn.signature.bind_partial(*args, **kwargs)
  except TypeError as e:
    taken = ", ".join(f"{n}={_shorten(repr(a), 24)}" for n, a in zip(names, args))
    raise TypeError(
        f"triton_call: {e}: {signature}; the {len(args)} positional arguments bind to "
        f"{taken}. Outputs are not passed: out_type fills the parameters left without an "
        "argument, so give fewer positional arguments.") from None


def _check_aliases(aliases: Mapping[int, int], triton_fn: TritonFunction,
                   operands: Mapping[str, Any], flat_out_shapes: Sequence[Any]) -> None:
  """Operand indices must name array operands whose shape and dtype match the aliased output."""
  flat_operands = []
  for n in triton_fn.non_constexpr_param_names:
    if n in operands:
      flat_operands.extend(leaf for _, leaf in _leaves_with_paths([operands[n]]))
  for op_idx, out_idx in aliases.items():
    if not 0 <= op_idx < len(flat_operands):
      raise ValueError(f"input_output_aliases: operand index {op_idx} is out of range; there are "
                       f"{len(flat_operands)} operands")
    if not 0 <= out_idx < len(flat_out_shapes):
      raise ValueError(f"input_output_aliases: output index {out_idx} is out of range; out_type "
                       f"has {len(flat_out_shapes)} leaves")
    operand = flat_operands[op_idx]
    if isinstance(operand, _StaticArg):
      raise ValueError(f"input_output_aliases: operand {op_idx} is the static scalar "
                       f"{operand.value!r}, not an array")
    out = flat_out_shapes[out_idx]
    aval = core.typeof(operand) if not isinstance(operand, np.ndarray) else operand
    if tuple(aval.shape) != tuple(out.shape) or jnp.dtype(aval.dtype) != jnp.dtype(out.dtype):
      raise ValueError(
          f"input_output_aliases: operand {op_idx} ({aval.dtype}{list(aval.shape)}) and output "
          f"{out_idx} ({out.dtype}{list(out.shape)}) must have the same shape and dtype")
