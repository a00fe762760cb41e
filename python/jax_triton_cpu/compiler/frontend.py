"""Frontend: a @triton.jit function and its specialisation -> TTIR text.

Upstream triton parses the Python AST and builds Triton IR (ASTSource.make_ir); we then run the
target-independent TTIR passes. Triton has no CPU target, so the frontend borrows the CUDA backend's
language hooks (fp8 conversions, module map); nothing GPU-specific survives into TTIR.
"""
from __future__ import annotations

import functools
import hashlib
import os
import re
import tempfile
import threading
import types
from typing import Any, Mapping

from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource, make_backend
from triton._C.libtriton import ir, passes

from . import fp8e4b15
from .options import CPUOptions

# sm_89: the oldest target with every fp8 type JAX has, and below sm_90 so that tensor descriptors are
# rewritten into plain pointer arithmetic by the TTIR passes.
_FRONTEND_TARGET = GPUTarget("cuda", 89, 32)


# Triton's names of the fp8 types codegen/fp8.py and fp8e4b15.py convert (the Triton backend's
# CPUBackendOptions lists them too: it cannot import this module when triton imports it).
SUPPORTED_FP8 = ("fp8e4b15", "fp8e4b8", "fp8e4nv", "fp8e5", "fp8e5b16")


def cpu_codegen_fns() -> dict:
  """What triton's frontend asks the target for (the Triton backend's get_codegen_implementation
  too): any tile size for dots, and fp8e4b15 conversions a CPU runs (CUDA's are inline PTX)."""
  return {"min_dot_size": lambda lhs_type, rhs_type: (1, 1, 1),
          "convert_custom_types": fp8e4b15.convert_custom_types}


def _frontend_backend_and_options(options: CPUOptions):
  backend = make_backend(_FRONTEND_TARGET)
  gpu_options = backend.parse_options({
      "num_warps": options.num_warps,
      "num_stages": options.num_stages,
      "debug": options.debug,
      "enable_fp_fusion": options.enable_fp_fusion,
      "default_dot_input_precision": options.default_dot_input_precision,
      # every fp8 type the code generator has (the CUDA target would refuse AMD's fnuz ones)
      "supported_fp8_dtypes": SUPPORTED_FP8,
  })
  return backend, gpu_options


@functools.cache
def _libdevice_module() -> types.ModuleType:
  """What triton.language.extra.libdevice resolves to: CUDA's libdevice, plus fast_tanhf, which
  triton declares there but implements only for HIP (here it is tanh, symbol __nv_fast_tanhf)."""
  from triton.language import core
  from triton.language.extra.cuda import libdevice as cuda

  @core.extern
  def fast_tanhf(arg0, _semantic=None):
    return core.extern_elementwise(
        "", "", [arg0], {(core.dtype("fp32"),): ("__nv_fast_tanhf", core.dtype("fp32"))},
        is_pure=True, _semantic=_semantic)

  module = types.ModuleType("jax_triton_cpu.libdevice")  # not a module_map key: no lookup loop
  module.__dict__.update({k: v for k, v in vars(cuda).items() if not k.startswith("__")})
  module.fast_tanhf = fast_tanhf
  return module


def make_ttir(fn, signature: Mapping[str, str], constants: Mapping[Any, Any],
              attrs: Mapping[tuple, Any], options: CPUOptions) -> str:
  """Returns the optimised TTIR of `fn` (with source locations) as text, in MLIR's generic op
  form: the form the reader parses without knowing any dialect (see print_generic)."""
  module, context = _make_module(fn, signature, constants, attrs, options)
  return print_generic(module, context)


def make_ttir_texts(fn, signature, constants, attrs, options) -> tuple[str, str]:
  """(generic form, custom form) of the optimised TTIR: the compiler reads the first; dumps show
  the second, which is what triton's own dumps look like."""
  module, context = _make_module(fn, signature, constants, attrs, options)
  custom = module.str()  # first: print_generic leaves the module unverifiable
  return print_generic(module, context), custom


# Not dialect-prefixed, so the module fails verification while it carries this attribute.
_GENERIC_MARKER = "jax_triton_cpu_print_generic"


def print_generic(module, context) -> str:
  """The module in MLIR's generic op form, with locations.

  Triton's bindings only print the custom form, whose syntax is defined op by op by each dialect
  (so a parser must know every op of the triton version that printed it). MLIR's printer falls
  back to the generic form, one grammar for all ops, when the module fails verification; a
  module attribute without a dialect prefix makes it fail (builtin.module's verifier), and is
  dropped from the text afterwards. The module keeps it: print nothing else from it after this."""
  module.set_attr(_GENERIC_MARKER, ir.builder(context).get_bool_attr(True))
  text = module.str()
  if '"builtin.module"' not in text:
    raise RuntimeError("triton printed its IR in the custom form; the reader needs the generic form")
  return re.sub(rf"{_GENERIC_MARKER} = true(, )?", "", text)


# triton's frontend is not safe to run from several threads at once (seen: "SystemError: AST
# constructor recursion depth mismatch" from ast.parse with 8 threads compiling 8 kernels).
_FRONTEND_LOCK = threading.RLock()


def source_hash(fn) -> str:
  """triton's cache_key of a jit function: the first call parses its source (ast.parse), and so
  does the first hash(fn) (JITFunction.__hash__ is hash(cache_key)), hence the lock."""
  with _FRONTEND_LOCK:
    return fn.cache_key


def _make_module(fn, signature, constants, attrs, options):
  with _FRONTEND_LOCK:
    backend, gpu_options = _frontend_backend_and_options(options)
    context = _new_context(backend)
    codegen_fns = {**backend.get_codegen_implementation(gpu_options), **cpu_codegen_fns()}
    source = ASTSource(fn, dict(signature), dict(constants), dict(attrs))
    module_map = {**backend.get_module_map(),
                  "triton.language.extra.libdevice": _libdevice_module()}
    module = source.make_ir(_FRONTEND_TARGET, gpu_options, codegen_fns, module_map, context)
    module.context = context  # the module must not outlive its context (freed in either order)
    run_ttir_passes(module, context)
    return module, context


def _new_context(backend=None):
  """A triton MLIR context with every dialect TTIR may use."""
  context = ir.context()
  ir.load_dialects(context)
  (backend or make_backend(_FRONTEND_TARGET)).load_dialects(context)
  return context


def run_ttir_passes(module, context) -> None:
  """The target-independent TTIR passes of triton's make_ttir stage (also the Triton backend's
  ttir stage)."""
  pm = ir.pass_manager(context)
  pm.enable_debug()
  passes.common.add_inliner(pm)
  passes.ttir.add_rewrite_tensor_descriptor_to_pointer(pm)
  passes.common.add_canonicalizer(pm)
  passes.ttir.add_combine(pm)
  passes.ttir.add_reorder_broadcast(pm)
  passes.common.add_cse(pm)
  passes.common.add_licm(pm)
  passes.common.add_symbol_dce(pm)
  if hasattr(passes.ttir, "add_loop_unroll"):  # tl.range(..., loop_unroll_factor=n), as the GPU backends do
    passes.ttir.add_loop_unroll(pm)
  pm.run(module, "make_ttir")


def optimize_ttir_text(text: str) -> tuple[str, str]:
  """TTIR printed by another MLIR build (such as jaxlib's, for Pallas) -> (generic form, custom
  form) after the same passes as the frontend's own TTIR.

  The text is parsed in triton's context, which keeps its locations (`loc(...)`), so errors still
  name source lines. It should be in the generic op form: that reads even where the printer's
  copy of the Triton dialect spells an op's custom syntax differently."""
  with _FRONTEND_LOCK:
    module, context = _parse(text)
    run_ttir_passes(module, context)
    custom = module.str()  # first: print_generic leaves the module unverifiable
    return print_generic(module, context), custom


def generic_form(text: str) -> str:
  """TTIR text in any form (hand-written custom form, a dump of triton's) in the generic form,
  as it is (no passes)."""
  with _FRONTEND_LOCK:
    return print_generic(*_parse(text))


def _parse(text: str):
  """(module, context) of TTIR text, parsed by triton, which keeps its locations."""
  context = _new_context()
  with tempfile.TemporaryDirectory() as scratch:
    path = os.path.join(scratch, "kernel.ttir")
    with open(path, "w") as f:
      f.write(text)
    try:
      module = ir.parse_mlir_module(path, context)  # triton's bindings parse files only
    except RuntimeError as e:  # MLIR has printed its diagnostic (op and line) to stderr
      import triton
      raise ValueError(f"unreadable Triton IR: triton {triton.__version__} cannot parse it "
                       f"({e}); MLIR's diagnostic above names the op") from None
  module.context = context  # the module must not outlive its context
  return module, context


class Source:
  """TTIR that is built only when needed: a compile whose library is already in the disk cache
  skips building it (most of a fresh process's compile). Subclasses say how to build it and
  what it depends on."""
  _texts: tuple[str, str] | None = None

  @property
  def key(self) -> str:
    """A hash of everything the TTIR depends on."""
    raise NotImplementedError

  def _build(self) -> tuple[str, str]:
    """(generic form, custom form) of the optimised TTIR."""
    raise NotImplementedError

  @property
  def ttir_generic(self) -> str:
    """The TTIR the compiler reads (generic op form)."""
    return self._make_texts()[0]

  @property
  def ttir(self) -> str:
    """The TTIR as triton prints it (custom op form), for dumps."""
    return self._make_texts()[1]

  def _make_texts(self) -> tuple[str, str]:
    if self._texts is None:
      self._texts = self._build()
    return self._texts


class KernelSource(Source):
  """A @triton.jit kernel and its specialisation."""

  def __init__(self, fn, signature: Mapping[str, str], constants: Mapping[Any, Any],
               attrs: Mapping[tuple, Any], options: CPUOptions):
    self.fn, self.signature, self.constants = fn, dict(signature), dict(constants)
    self.attrs, self.options = dict(attrs), options

  def _build(self) -> tuple[str, str]:
    return make_ttir_texts(self.fn, self.signature, self.constants, self.attrs, self.options)

  @property
  def key(self) -> str:
    """Everything the TTIR depends on: the source of the kernel and the functions it calls
    (triton's cache_key), where it is, the specialisation, the options and the triton version."""
    import triton
    source_key = source_hash(self.fn)
    # The file and line: TTIR locations (messages of asserts and bounds checks) name them.
    code = self.fn.fn.__code__
    parts = [triton.__version__, source_key, code.co_filename, str(code.co_firstlineno),
             _stable(self.signature),
             _stable(self.constants), _stable(self.attrs), repr(self.options)]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


class TextSource(Source):
  """Unoptimised TTIR text from another producer (Pallas's Triton lowering), in generic op form;
  optimize_ttir_text runs the TTIR passes on it."""

  def __init__(self, text: str, options: CPUOptions):
    self.text, self.options = text, options

  def _build(self) -> tuple[str, str]:
    return optimize_ttir_text(self.text)

  @property
  def key(self) -> str:
    """The text (locations included), the options and the triton version (its passes)."""
    import triton
    parts = ["text", triton.__version__, self.text, repr(self.options)]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _stable(value) -> str:
  """A repr that is the same in every process (jit functions by their source hash)."""
  if isinstance(value, dict):
    return "{" + ", ".join(f"{_stable(k)}: {_stable(v)}" for k, v in
                           sorted(value.items(), key=lambda kv: repr(kv[0]))) + "}"
  if isinstance(value, (list, tuple)):
    return "(" + ", ".join(_stable(v) for v in value) + ")"
  cache_key = getattr(value, "cache_key", None)
  if isinstance(cache_key, str):
    return f"jit:{cache_key}"
  return repr(value)
