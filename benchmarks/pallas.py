"""pallas: JAX's own Pallas GPU kernels (jax.experimental.pallas.ops.gpu: layer_norm, softmax,
attention) run natively on CPU by jax_triton_cpu, vs the same pallas_call with interpret=True, vs
each module's jax.numpy reference, all under jit.

The callables of one case are sampled in turn (native, interpret, reference, native, ...), so each
ratio compares numbers measured side by side. Interpret mode runs the kernel body as XLA ops, one
grid step after another: a fixed overhead per step plus XLA's own speed at the body's math, so it
is furthest behind on many small steps (layer_norm, softmax: one row per step) and closest on few
large ones (attention: a 128 x 128 block of dots per step). It also grows faster than the grid
(4096 rows of layer_norm: 15 s a call; 1024 rows: 0.1 s), so it is timed at 1024 rows only; the
norms are also timed at 4096 rows, the size of benchmarks/softmax.py and layer_norm.py, where x
no longer fits in the last-level cache. GB/s counts one read and one write of x; GFLOP/s the two
matmuls.
"""
from __future__ import annotations

import dataclasses
import functools
import warnings
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from timing import Row, Settings, check_close, interleaved, short_error

with warnings.catch_warnings():  # the modules warn that they are deprecated upstream (JAX 0.11+)
  warnings.simplefilter("ignore", DeprecationWarning)
  from jax.experimental.pallas.ops.gpu import attention, layer_norm, softmax

COLS = 1024
B, H, D = 2, 4, 64


@dataclasses.dataclass
class Case:
  name: str
  args: tuple
  kernel: Callable[[bool], Callable]  # interpret -> the function that calls the pallas_call
  reference: Callable
  reference_name: str
  unit: str
  rate: Callable[[float], float]  # seconds per call -> rate in `unit`


def _normal(rng, shape):
  return jnp.asarray(rng.standard_normal(shape, dtype=np.float32))


def _gbs(rows):
  return lambda sec: 2 * rows * COLS * 4 / sec / 1e9


def _layer_norm(rng, rows) -> Case:
  x, w, b = _normal(rng, (1, rows, COLS)), _normal(rng, (COLS,)), _normal(rng, (COLS,))
  return Case(f"layer_norm {rows}x{COLS} f32", (x, w, b),
              lambda interpret: functools.partial(layer_norm.layer_norm, interpret=interpret),
              layer_norm.layer_norm_reference, "layer_norm_reference", "GB/s", _gbs(rows))


def _softmax(rng, rows) -> Case:
  return Case(f"softmax {rows}x{COLS} f32", (_normal(rng, (rows, COLS)),),
              lambda interpret: functools.partial(softmax.softmax, interpret=interpret),
              lambda x: jax.nn.softmax(x, axis=-1), "jax.nn.softmax", "GB/s", _gbs(rows))


def _attention(rng, seq) -> Case:
  qkv = tuple(_normal(rng, (B, seq, H, D)) for _ in range(3))
  return Case(f"attention (mha) B={B} S={seq} H={H} D={D} f32", qkv,
              lambda interpret: lambda q, k, v: attention.mha(q, k, v, None, interpret=interpret),
              lambda q, k, v: attention.mha_reference(q, k, v, None), "mha_reference",
              "GFLOP/s", lambda sec: 4 * B * H * seq * seq * D / sec / 1e9)


# (case, size: rows or sequence length, whether interpret mode is timed too)
CASES = ((_layer_norm, 1024, True), (_layer_norm, 4096, False), (_softmax, 1024, True),
         (_softmax, 4096, False), (_attention, 1024, True))


def _rows(s: Settings, case: Case, with_interpret: bool) -> list[Row]:
  fns = {"native": jax.jit(case.kernel(False)), "reference": jax.jit(case.reference)}
  if with_interpret:
    fns["interpret"] = jax.jit(case.kernel(True))
  expected = fns["reference"](*case.args)
  for which in fns.keys() - {"reference"}:
    check_close(f"pallas {case.name} {which}", fns[which](*case.args), expected, rtol=1e-4,
                atol=1e-4)
  t = interleaved({k: (lambda f=f: f(*case.args)) for k, f in fns.items()}, reps=s.reps(30),
                  budget_s=s.budget(40))
  return [Row("pallas", case.name, t["native"], t[base], name, case.unit, case.rate(t["native"]),
              case.rate(t[base]), "the module's default block sizes")
          for base, name in (("reference", case.reference_name + " (jit)"),
                             ("interpret", "interpret=True (jit)")) if base in t]


def run(s: Settings) -> list[Row]:
  rng = np.random.default_rng(0)
  rows = []
  for make_case, size, with_interpret in CASES:
    case = make_case(rng, size)
    try:
      rows += _rows(s, case, with_interpret)
    except Exception as e:  # pylint: disable=broad-except
      rows.append(Row("pallas", case.name, error=short_error(e)))
  return rows
