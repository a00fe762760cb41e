"""Debug ops: tt.print (tl.device_print) and tt.assert (tl.device_assert with debug=True).

A failed assert does not abort the process: it records a message in thread-local storage and the
launch trampoline returns a non-zero status, which the runtime raises as a Python error with that
message (docs/abi.md).
"""
from __future__ import annotations

from llvmlite import ir as llvm

from .. import ir
from . import types as T
from .elementwise import to_f32_if_bf16
from .registry import STATEMENT, register

MESSAGE_BYTES = 1024


class _ThreadLocal(llvm.GlobalVariable):
  """A thread_local global (llvmlite spells the storage class where LLVM expects thread_local)."""

  def __init__(self, module, value_type, name):
    super().__init__(module, value_type, name=name)
    self.linkage = "internal"
    self.storage_class = "thread_local"
    self.initializer = llvm.Constant(value_type, None)


_THREAD_STATE = llvm.LiteralStructType([T.I32, T.I64, llvm.ArrayType(T.I8, MESSAGE_BYTES)])


def thread_state(module: llvm.Module, b: llvm.IRBuilder):
  """Pointers to the calling thread's failure status (i32), current program id (i64) and failure
  message buffer, which a kernel library keeps in thread-local storage.

  Thread-local storage is reached only through one function that is never inlined: LLVM's x86
  lowering of a TLS access (a call to __tls_get_addr) assumes the call preserves zmm16-31 and the
  mask registers, which glibc's slow path (the first access after a dlopen allocates) does not.
  Around a real call, LLVM saves what is live."""
  accessor = module.globals.get("jtc.thread_state")
  if accessor is None:
    state = _ThreadLocal(module, _THREAD_STATE, "jtc.thread")
    accessor = llvm.Function(module, llvm.FunctionType(T.PTR, []), name="jtc.thread_state")
    accessor.linkage = "internal"
    accessor.attributes.add("noinline")
    llvm.IRBuilder(accessor.append_basic_block()).ret(state)
  pointer = b.call(accessor, [])
  return tuple(b.gep(pointer, [T.I32(0), T.I32(i)], source_etype=_THREAD_STATE) for i in range(3))


def _string(lo, text: str):
  return global_string(lo.module, text)


def global_string(module: llvm.Module, text: str):
  """A private constant C string."""
  data = bytearray(text.encode() + b"\0")
  name = f"str.{len(module.globals)}"
  g = llvm.GlobalVariable(module, llvm.ArrayType(T.I8, len(data)), name=name)
  g.global_constant = True
  g.linkage = "private"
  g.initializer = llvm.Constant(llvm.ArrayType(T.I8, len(data)), data)
  g.type = T.PTR  # opaque, so that strings of different lengths can be selected between
  return g


def _printable(b, value, triton_type, signed: bool, hex_: bool):
  """(printf conversion, argument) for one scalar."""
  if isinstance(triton_type, ir.PointerType):
    return "%p", value
  if triton_type.is_float:
    value = to_f32_if_bf16(b, value, triton_type)
    if value.type != T.F64:
      value = b.fpext(value, T.F64)
    return ("%a" if hex_ else "%f"), value
  wide = (b.sext if signed and value.type.width > 1 else b.zext)(value, T.I64) \
      if value.type.width < 64 else value
  return ("0x%llx" if hex_ else ("%lld" if signed else "%llu")), wide


@register(STATEMENT, "tt.print")
def _print(lo, op):
  b = lo.builder
  printf = T.declare(lo.module, "printf", T.I32, [T.PTR], var_arg=True)
  fflush = T.declare(lo.module, "fflush", T.I32, [T.PTR])
  prefix = op.attrs.get("prefix", "")
  hex_ = bool(op.attrs.get("hex", False))
  signed_flags = op.attrs.get("isSigned") or []
  pid = list(lo.program_ids)
  if not op.operands:
    b.call(printf, [_string(lo, "pid (%u, %u, %u) " + prefix.replace("%", "%%") + "\n"), *pid])
  for i, v in enumerate(op.operands):
    t = ir.element_type(v.type)
    signed = bool(signed_flags[i]) if i < len(signed_flags) else True
    label = prefix.rstrip().replace("%", "%%") + (f" (operand {i})" if len(op.operands) > 1 else "")
    if not ir.is_tensor(v.type):
      conversion, arg = _printable(b, lo.scalar(v), t, signed, hex_)
      b.call(printf, [_string(lo, f"pid (%u, %u, %u) {label} {conversion}\n"), *pid, arg])
      continue
    rank = v.type.rank
    with lo.loop_nest(v.type.shape, 1) as index:
      conversion, arg = _printable(b, lo.evaluate(v, index), t, signed, hex_)
      text = _string(lo, "pid (%u, %u, %u) idx (" + ", ".join(["%3d"] * rank) +
                     f") {label} {conversion}\n")
      b.call(printf, [text, *pid, *index.dims, arg])
  b.call(fflush, [llvm.Constant(T.PTR, None)])


@register(STATEMENT, "tt.assert")
def _assert(lo, op):
  b = lo.builder
  condition = op.operands[0]
  snprintf = T.declare(lo.module, "snprintf", T.I32, [T.PTR, T.I64, T.PTR], var_arg=True)
  where = f" at {op.loc}" if op.loc else ""
  text = op.attrs.get("message", "").replace("%", "%%")
  fmt = _string(lo, f"device assertion failed in kernel '{lo.kernel_name}'{where}: "
                    f"{text} (program (%u, %u, %u))")

  def check(ok):
    with b.if_then(b.not_(ok), likely=False):
      status, _, message = thread_state(lo.module, b)
      with b.if_then(b.icmp_unsigned("==", b.load(status, typ=T.I32), T.I32(0))):
        b.call(snprintf, [message, T.I64(MESSAGE_BYTES), fmt, *lo.program_ids])
        b.store(T.I32(1), status)

  if not ir.is_tensor(condition.type):
    check(lo.scalar(condition))
    return
  with lo.loop_nest(condition.type.shape, 1) as index:
    check(lo.evaluate(condition, index))
