"""Facts about the host machine that the operating system tells without LLVM (the disk cache's key
reads them on every compile-cache lookup)."""
from __future__ import annotations

import os


def last_level_cache_bytes() -> int | None:
  """The size of this machine's largest cache (Linux sysfs), or None."""
  root = "/sys/devices/system/cpu/cpu0/cache"
  sizes = []
  try:
    for index in os.listdir(root):
      if not index.startswith("index"):
        continue
      with open(os.path.join(root, index, "size")) as f:
        text = f.read().strip()
      scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
      sizes.append(int(text.rstrip("KMG")) * scale)
  except (OSError, ValueError):
    return None
  return max(sizes, default=None)
