// Backs large kernel outputs with transparent huge pages.
//
// XLA allocates a large result with a fresh mmap (glibc hands out chunks over
// 32 MiB that way and unmaps them when freed), so a kernel that writes it
// first takes one page fault per 4 KiB: 16,384 faults for 64 MiB, which cost
// more than the writes themselves.  Where Linux's transparent huge pages are in
// "madvise" mode (Debian's default), advising the buffer first makes each
// fault map 2 MiB.  docs/benchmarks.md has the measurements.
#ifndef JAX_TRITON_CPU_HUGE_PAGES_H_
#define JAX_TRITON_CPU_HUGE_PAGES_H_

#include <cstddef>

namespace jtc {

// Buffers smaller than this are left alone: they hold few whole huge pages
// and are usually reused (already faulted in), so the system call would only
// cost time.
constexpr size_t kHugePageMinBytes = size_t(8) << 20;

// The whole 2 MiB pages inside [data, data + size), or an empty range.
struct PageRange {
  char* begin = nullptr;
  size_t size = 0;
};
PageRange HugePagesInside(void* data, size_t size);

// Asks Linux to back the whole 2 MiB pages inside a buffer of at least
// kHugePageMinBytes with huge pages (madvise(MADV_HUGEPAGE)); pages already
// mapped stay as they are.  A hint: never fails, does nothing elsewhere or
// when JAX_TRITON_CPU_HUGE_PAGES=0.  Returns whether it advised.
bool AdviseHugePages(void* data, size_t size);

}  // namespace jtc

#endif  // JAX_TRITON_CPU_HUGE_PAGES_H_
