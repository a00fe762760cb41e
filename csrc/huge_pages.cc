#include "huge_pages.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include <sys/mman.h>

namespace jtc {
namespace {

constexpr uintptr_t kHugePage = uintptr_t(2) << 20;

bool Enabled() {
  static const bool enabled = [] {
    const char* value = std::getenv("JAX_TRITON_CPU_HUGE_PAGES");
    return value == nullptr || std::strcmp(value, "0") != 0;
  }();
  return enabled;
}

}  // namespace

PageRange HugePagesInside(void* data, size_t size) {
  const uintptr_t start = reinterpret_cast<uintptr_t>(data);
  const uintptr_t begin = (start + kHugePage - 1) & ~(kHugePage - 1);
  const uintptr_t end = (start + size) & ~(kHugePage - 1);
  if (size == 0 || end <= begin) return {};
  return {reinterpret_cast<char*>(begin), size_t(end - begin)};
}

bool AdviseHugePages(void* data, size_t size) {
#ifdef MADV_HUGEPAGE
  if (size < kHugePageMinBytes || !Enabled()) return false;
  const PageRange pages = HugePagesInside(data, size);
  if (pages.size == 0) return false;
  // Only the whole pages inside the buffer: its neighbours keep their policy.
  return madvise(pages.begin, pages.size, MADV_HUGEPAGE) == 0;
#else
  (void)data;
  (void)size;
  return false;
#endif
}

}  // namespace jtc
