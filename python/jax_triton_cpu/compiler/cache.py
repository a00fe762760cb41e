"""The on-disk compile cache: kernel libraries, content-addressed, and an index from a kernel's
source and specialisation to its compiled library, so a fresh process skips compiling."""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import platform
import tempfile



@functools.cache
def compiler_version() -> str:
  """A hash of the compiler's own sources: libraries built by another version of the code
  generator are never served (a derived key, not a number someone must remember to bump)."""
  root = os.path.dirname(os.path.abspath(__file__))
  digest = hashlib.sha256()
  for directory, subdirs, files in sorted(os.walk(root)):
    subdirs.sort()
    for name in sorted(f for f in files if f.endswith(".py")):
      path = os.path.join(directory, name)
      digest.update(os.path.relpath(path, root).encode() + b"\0")
      with open(path, "rb") as f:
        digest.update(f.read() + b"\0")
  return digest.hexdigest()[:16]


def cache_dir() -> str:
  path = os.environ.get("JAX_TRITON_CPU_CACHE_DIR") or os.path.join(
      os.path.expanduser("~"), ".cache", "jax_triton_cpu")
  os.makedirs(path, exist_ok=True)
  return path


@functools.cache
def _cpu_description() -> str:
  """The host CPU's model and feature flags, read cheaply (no LLVM)."""
  try:
    with open("/proc/cpuinfo") as f:
      lines = [l for l in f if l.startswith(("model name", "flags", "Features", "CPU part"))]
    return "".join(sorted(set(lines)))
  except OSError:
    return platform.processor()


def kernel_key(source_key: str) -> str:
  """Index key of a kernel source compiled for this CPU (or JAX_TRITON_CPU_TARGET's)."""
  parts = [compiler_version(), source_key, platform.machine(), _cpu_description(),
           os.environ.get("JAX_TRITON_CPU_TARGET", "")]
  return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _index_path(key: str) -> str:
  return os.path.join(cache_dir(), "index", key[:2], f"{key}.json")


def load(key: str, kernel_type):
  """The CompiledKernel stored under `key`, or None (missing, stale or unreadable)."""
  try:
    with open(_index_path(key)) as f:
      fields = json.load(f)
    if fields.pop("version") != compiler_version() or not os.path.exists(fields["library_path"]):
      return None
    texts = fields.pop("texts")
    for name, path in texts.items():
      with open(path) as f:
        fields[name] = f.read()
    fields["param_types"] = tuple(fields["param_types"])
    return kernel_type(**fields)
  except (OSError, ValueError, KeyError, TypeError):
    return None


def store(key: str, kernel) -> None:
  """Records `kernel` under `key`; its texts go beside its library."""
  fields = dataclasses.asdict(kernel)
  directory = os.path.dirname(kernel.library_path)
  texts = {}
  for name, suffix in (("ttir", "ttir"), ("llvm_ir", "ll"), ("asm", "s")):
    path = os.path.join(directory, f"{kernel.name}.{suffix}")
    if not os.path.exists(path):
      _write_atomically(path, fields[name])
    texts[name] = path
    del fields[name]
  fields.update(version=compiler_version(), texts=texts)
  path = _index_path(key)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  _write_atomically(path, json.dumps(fields))


def _write_atomically(path: str, text: str) -> None:
  fd, scratch = tempfile.mkstemp(dir=os.path.dirname(path))
  with os.fdopen(fd, "w") as f:
    f.write(text)
  os.replace(scratch, path)
