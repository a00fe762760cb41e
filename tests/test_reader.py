"""The TTIR reader: generic op form in, our IR out, with no dialect registered (so it depends
neither on jaxlib's copy of the Triton dialect nor on the triton version that printed the IR)."""
import inspect

import numpy as np
import pytest
import triton
import triton.language as tl

from direct_launch import compile_kernel, run
from jax_triton_cpu.compiler import CPUOptions, compile_ttir, frontend, reader


_GENERIC = '''"builtin.module"() ({
  "tt.func"() <{function_type = (!tt.ptr<i32>) -> (), sym_name = "k", sym_visibility = "public"}> ({
  ^bb0(%arg0: !tt.ptr<i32>):
    %0 = "arith.constant"() <{value = 7 : i32}> : () -> i32
    %1 = "scf.for"(%0, %0, %0, %0) ({
    ^bb0(%i: i32, %acc: i32):
      %2 = "arith.addi"(%acc, %i) <{overflowFlags = #arith.overflow<none>}> : (i32, i32) -> i32
      "scf.yield"(%2) : (i32) -> ()
    }) {tt.note = "a ) <{ in a string }> stays", other = #x.y<{a = 1}>} : (i32, i32, i32, i32) -> i32
    "tt.future_op"(%arg0, %1) <{flavour = 3 : i32}> : (!tt.ptr<i32>, i32) -> ()
    "tt.return"() : () -> ()
  }) {noinline = false} : () -> ()
}) {"ttg.num-warps" = 4 : i32} : () -> ()
'''


def test_properties_become_attributes_of_ops_with_and_without_regions():
  module = reader.read_ttir(_GENERIC)
  assert module.kernel.name == "k"
  ops = {op.name: op.attrs for op in module.kernel.walk()}
  assert ops["arith.constant"]["value"] == 7
  assert ops["tt.future_op"]["flavour"] == 3
  assert ops["scf.for"]["tt.note"] == "a ) <{ in a string }> stays"
  assert ops["scf.for"]["other"] == "#x.y<{a = 1}>"  # an opaque attribute, left as it is
  assert ops["arith.addi"]["overflowFlags"] == "#arith.overflow<none>"


def test_an_op_no_dialect_knows_is_read_and_then_rejected_by_name():
  with pytest.raises(NotImplementedError, match="tt.future_op"):
    compile_ttir(_GENERIC, CPUOptions())


def test_custom_form_text_is_read_through_triton_and_garbage_refused_clearly():
  custom = "module {\n  tt.func public @k() {\n    tt.return\n  }\n}\n"
  assert reader.read_ttir(custom).kernel.name == "k"
  with pytest.raises(ValueError, match="unreadable Triton IR"):
    reader.read_ttir("module {\n  tt.func public @k( {\n}\n")


@triton.jit
def cat_kernel(x_ptr, out_ptr, N: tl.constexpr):
  x = tl.load(x_ptr + tl.arange(0, N))
  tl.store(out_ptr + tl.arange(0, 2 * N), tl.cat(x, x + 1, can_reorder=True))


def test_tt_cat_reads_whatever_jaxlib_registers():
  """jaxlib 0.12's copy of the Triton dialect has no tt.cat: a reader that registered it failed."""
  x = np.arange(8, dtype=np.float32)
  out = np.zeros(16, np.float32)
  run(cat_kernel, {"x_ptr": "*fp32", "out_ptr": "*fp32"}, [x, out], (1,), {"N": 8})
  # can_reorder=True lets the order of the elements change: compare as multisets
  np.testing.assert_array_equal(np.sort(out), np.sort(np.concatenate([x, x + 1])))


@triton.jit
def located_kernel(x_ptr):
  y = tl.inline_asm_elementwise("mov $0, $1;", "=r,r", [tl.load(x_ptr)], dtype=tl.int32,
                                is_pure=True, pack=1)
  tl.store(x_ptr, y)


def test_source_locations_survive_the_generic_form():
  with pytest.raises(NotImplementedError) as e:
    compile_kernel(located_kernel, {"x_ptr": "*i32"})
  source, first = inspect.getsourcelines(located_kernel.fn)
  line = first + next(i for i, t in enumerate(source) if "inline_asm" in t)
  assert f"test_reader.py:{line}:" in str(e.value) and "located_kernel" in str(e.value)


def test_generic_and_custom_texts_describe_the_same_kernel():
  generic, custom = frontend.make_ttir_texts(cat_kernel, {"x_ptr": "*fp32", "out_ptr": "*fp32"},
                                             {"N": 8}, {}, CPUOptions())
  assert '"tt.cat"' in generic and "tt.cat " in custom
  assert "jax_triton_cpu_print_generic" not in generic + custom
  assert reader.read_ttir(generic).kernel.name == "cat_kernel"
