"""Kernel libraries for calls lowered for jax.export (docs/abi.md, "Exported calls").

Such a call carries its library's bytes, the CPU they were compiled for and the kernel's TTIR. When
XLA instantiates the call, in whatever process loads the artifact, the handler calls `resolve` for
a library that runs on this host: the one at the call's path if it is the same file and the CPU is
this one; else the embedded bytes, written to the cache directory by content hash; on another CPU
(a different model or feature set, or JAX_TRITON_CPU_TARGET) a library compiled here from the TTIR.
Loading a library built for other CPU features could execute illegal instructions, so the bytes
are used only for the exact target they were built for. Results are memoised per process.
"""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os
import tempfile
import threading

_lock = threading.Lock()
_usable: dict[tuple[str, str, str, str], tuple[str, str]] = {}
# How each resolution was satisfied (for tests): the path as it was, the embedded bytes, a compile.
counts = {"path": 0, "embedded": 0, "compiled": 0}


def resolve(kernel_name: str, library: str, library_hash: str, target: str, library_bytes: str,
            ttir: str, compile_options: str) -> tuple[str, str, str]:
  """(library path, content hash, "") of a library for this host, or ("", "", why not). Called
  by the C++ handler at INSTANTIATE (with the GIL), so it never raises."""
  try:
    return (*_resolve(library, library_hash, target, library_bytes, ttir, compile_options), "")
  except Exception as e:  # pylint: disable=broad-except
    return "", "", (f"cannot get a library for kernel {kernel_name} on this machine from the "
                    f"exported call: {type(e).__name__}: {e}")


def _resolve(library, library_hash, target, library_bytes, ttir, compile_options):
  from .compiler.target import host_target
  host = host_target().key
  key = (library, library_hash, target, host)
  with _lock:
    if key in _usable:
      return _usable[key]
  if target != host:
    result, how = _compile(ttir, compile_options), "compiled"
  elif _has_hash(library, library_hash):
    result, how = (library, library_hash), "path"
  else:
    result, how = _write(os.path.basename(library), library_hash, library_bytes), "embedded"
  with _lock:
    _usable[key] = result
    counts[how] += 1
  return result


def _has_hash(path: str, expected: str) -> bool:
  try:
    with open(path, "rb") as f:
      return hashlib.sha256(f.read()).hexdigest() == expected
  except OSError:
    return False


def _write(name: str, library_hash: str, library_bytes: str) -> tuple[str, str]:
  """The embedded library in the cache directory, under its content hash."""
  from .compiler.cache import cache_dir
  data = base64.b64decode(library_bytes, validate=True)
  if hashlib.sha256(data).hexdigest() != library_hash:
    raise ValueError("the embedded library does not match its hash (a damaged artifact)")
  directory = os.path.join(cache_dir(), "exported", library_hash[:32])
  path = os.path.join(directory, name)
  if not _has_hash(path, library_hash):
    os.makedirs(directory, exist_ok=True)
    fd, scratch = tempfile.mkstemp(dir=directory)
    with os.fdopen(fd, "wb") as f:
      f.write(data)
    os.chmod(scratch, 0o755)
    os.replace(scratch, path)  # atomic: a concurrent loader sees the old file or the new one
  return path, library_hash


def _compile(ttir: str, compile_options: str) -> tuple[str, str]:
  from .compiler import CPUOptions, compile_ttir
  known = {f.name for f in dataclasses.fields(CPUOptions)}
  options = CPUOptions(**{k: v for k, v in json.loads(compile_options).items() if k in known})
  kernel = compile_ttir(ttir, options)
  return kernel.library_path, kernel.library_hash


def embedded_attributes(library: str, target: str, ttir: str, options) -> dict[str, str]:
  """The attributes of one config that make a call portable (docs/abi.md)."""
  with open(library, "rb") as f:
    data = f.read()
  return {"library_bytes": base64.b64encode(data).decode("ascii"), "target": target,
          "ttir": ttir, "compile_options": json.dumps(dataclasses.asdict(options))}
