"""TTIR text -> kernel library: reader, code generator, toolchain."""
from __future__ import annotations

import dataclasses

from . import CompiledKernel, codegen, reader, toolchain
from .options import CPUOptions
from .target import host_target


def compile_ttir(ttir: str, options: CPUOptions) -> CompiledKernel:
  kernel = generate_llvm_ir(ttir, options)
  library, library_hash, asm = toolchain.compile_llvm_ir(kernel.llvm_ir, host_target(), kernel.name)
  return dataclasses.replace(kernel, library_path=library, library_hash=library_hash, asm=asm)


def generate_llvm_ir(ttir: str, options: CPUOptions) -> CompiledKernel:
  """TTIR (generic form) -> LLVM IR for the host CPU: a CompiledKernel without its library yet."""
  module = reader.read_ttir(ttir)
  target = host_target()
  llvm_ir, name, trampoline, work = codegen.generate(module, target, options)
  return CompiledKernel(
      name=name, library_path="", library_hash="", symbol=trampoline,
      param_types=tuple(_signature_type(p.type) for p in module.kernel.params),
      work_per_program=work, ttir=ttir, ttir_generic=ttir, target=target.key, llvm_ir=llvm_ir)


def _signature_type(t) -> str:
  """Our IR type as a Triton signature string (*fp32, i32, ...), for the launcher's scalar packing."""
  from . import ir
  if isinstance(t, ir.PointerType):
    return "*" + _signature_type(t.pointee)
  return {"f16": "fp16", "bf16": "bf16", "f32": "fp32", "f64": "fp64"}.get(t.name, t.name)
