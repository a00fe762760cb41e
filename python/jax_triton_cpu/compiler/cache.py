"""The on-disk compile cache: kernel libraries, content-addressed, and an index from a kernel's
source and specialisation to its compiled library, so a fresh process skips compiling."""
from __future__ import annotations

import atexit
import dataclasses
import functools
import hashlib
import json
import os
import platform
import shutil
import tempfile
import warnings

from .host import last_level_cache_bytes


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


_fallback_dirs: dict[str, str] = {}  # unusable cache directory -> this process's stand-in


def cache_dir() -> str:
  """JAX_TRITON_CPU_CACHE_DIR, else ~/.cache/jax_triton_cpu; if that cannot be written (a
  read-only home, a path that is a file), a temporary directory of this process, with one
  warning."""
  path = os.environ.get("JAX_TRITON_CPU_CACHE_DIR") or os.path.join(
      os.path.expanduser("~"), ".cache", "jax_triton_cpu")
  if path in _fallback_dirs:
    return _fallback_dirs[path]
  try:
    os.makedirs(path, exist_ok=True)
    if not os.access(path, os.W_OK | os.X_OK):
      raise PermissionError(f"{path} is not writable")
  except OSError as e:
    fallback = tempfile.mkdtemp(prefix="jax_triton_cpu_cache_")
    atexit.register(shutil.rmtree, fallback, True)
    warnings.warn(f"jax_triton_cpu: cannot use the kernel cache directory {path} ({e}); "
                  f"compiled kernels go to {fallback} for this process only. Set "
                  f"JAX_TRITON_CPU_CACHE_DIR to a writable directory to keep them.", stacklevel=2)
    _fallback_dirs[path] = fallback
    return fallback
  _remove_abandoned_scratch(path)
  return path


def scratch_dir(directory: str) -> str:
  """A new scratch directory in `directory`, named after this process: one left behind by a
  killed process is removed by the next process that uses the cache."""
  return tempfile.mkdtemp(prefix=f".scratch-{os.getpid()}-", dir=directory)


_swept: set[str] = set()


def _remove_abandoned_scratch(directory: str) -> None:
  if directory in _swept:
    return
  _swept.add(directory)
  for name in os.listdir(directory):
    parts = name.split("-")
    if name.startswith(".scratch-") and len(parts) > 2 and parts[1].isdigit() and \
        not _process_exists(int(parts[1])):
      shutil.rmtree(os.path.join(directory, name), ignore_errors=True)


def _process_exists(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True
  return True


def file_hash(path: str) -> str:
  with open(path, "rb") as f:
    return hashlib.sha256(f.read()).hexdigest()


def verified(library: str, expected_hash: str) -> bool:
  """Whether `library` is the file that was built: a truncated, overwritten or swapped library
  must be rebuilt, never loaded (loading it can crash the process)."""
  try:
    ok = file_hash(library) == expected_hash
  except OSError:
    return False
  if not ok:
    warnings.warn(f"jax_triton_cpu: the cached kernel library {library} is corrupt (its content "
                  "hash changed since it was built); rebuilding it.", stacklevel=3)
  return ok


@functools.cache
def _cpu_description() -> str:
  """The host CPU's model, feature flags and last-level cache size (which decides when stores
  stream), read cheaply (no LLVM)."""
  try:
    with open("/proc/cpuinfo") as f:
      lines = [l for l in f if l.startswith(("model name", "flags", "Features", "CPU part"))]
    description = "".join(sorted(set(lines)))
  except OSError:
    description = platform.processor()
  return f"{description}llc {last_level_cache_bytes()}\n"


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
    if fields.pop("version") != compiler_version() or \
        not verified(fields["library_path"], fields["library_hash"]):
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
  for name, suffix in (("ttir", "ttir"), ("ttir_generic", "generic.ttir"), ("llvm_ir", "ll"),
                       ("asm", "s")):
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
