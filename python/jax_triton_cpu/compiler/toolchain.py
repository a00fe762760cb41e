"""Toolchain: LLVM IR text -> optimised object code for the target CPU -> shared library, kept in a
content-addressed disk cache."""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess

import llvmlite
from llvmlite import binding as llvm

from .cache import cache_dir, compiler_version, file_hash, scratch_dir, verified
from .target import Target, _llvm_initialized


def _optimize(module, target_machine):
  tuning = llvm.create_pipeline_tuning_options(speed_level=3)
  tuning.loop_vectorization = True
  tuning.slp_vectorization = True
  builder = llvm.create_pass_builder(target_machine, tuning)
  builder.getModulePassManager().run(module, builder)


def compile_llvm_ir(llvm_ir: str, target: Target, name: str) -> tuple[str, str, str]:
  """Returns (path of the .so, its content hash, its assembly text), compiling only on a cache
  miss."""
  key = hashlib.sha256("\0".join(
      [compiler_version(), llvmlite.__version__, target.key, llvm_ir]).encode()).hexdigest()[:32]
  entry = os.path.join(cache_dir(), key)
  library = os.path.join(entry, f"lib{name}.so")
  asm_path = os.path.join(entry, f"{name}.s")
  hash_path = library + ".sha256"  # the library's hash when it was built
  try:
    with open(hash_path) as f:
      built_hash = f.read()
    if verified(library, built_hash):
      with open(asm_path) as f:
        return library, built_hash, f.read()
  except OSError:
    pass
  # Missing, partial or corrupt: set aside, rebuilt below (renamed first, so that a process that
  # has it loaded keeps its file).
  if os.path.exists(entry):
    stale = scratch_dir(cache_dir())
    try:
      os.rename(entry, os.path.join(stale, "stale"))
    except OSError:
      pass
    shutil.rmtree(stale, ignore_errors=True)

  _llvm_initialized()
  module = llvm.parse_assembly(llvm_ir)
  module.triple = target.triple
  module.verify()
  machine = llvm.Target.from_triple(target.triple).create_target_machine(
      cpu=target.cpu, features=target.features, opt=3, reloc="pic", codemodel="default")
  module.data_layout = str(machine.target_data)
  _optimize(module, machine)
  asm = machine.emit_assembly(module)
  obj = machine.emit_object(module)

  # Build in a scratch directory, then rename: concurrent compiles of one kernel never see half a file.
  scratch = scratch_dir(cache_dir())
  try:
    obj_path = os.path.join(scratch, f"{name}.o")
    with open(obj_path, "wb") as f:
      f.write(obj)
    with open(os.path.join(scratch, f"{name}.s"), "w") as f:
      f.write(asm)
    cc = os.environ.get("CC", "cc")
    built = os.path.join(scratch, f"lib{name}.so")
    subprocess.run([cc, "-shared", "-o", built, obj_path, "-lm"],
                   check=True, capture_output=True, text=True)
    with open(built + ".sha256", "w") as f:
      f.write(file_hash(built))
    try:
      os.rename(scratch, entry)
    except OSError:  # another process won the race; its library is identical
      shutil.rmtree(scratch, ignore_errors=True)
  except subprocess.CalledProcessError as e:
    shutil.rmtree(scratch, ignore_errors=True)
    raise RuntimeError(f"linking kernel {name} failed: {e.stderr}") from None
  with open(hash_path) as f:  # (the entry's: another process may have won the rename)
    return library, f.read(), asm
