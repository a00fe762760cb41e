#include "huge_pages.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

namespace jtc {
namespace {

constexpr uintptr_t kPage = uintptr_t(2) << 20;

// The VmFlags of the mapping of /proc/self/smaps that holds `address`.
std::string VmFlagsAt(const void* address) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(address);
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  bool inside = false;
  while (std::getline(smaps, line)) {
    uintptr_t lo = 0, hi = 0;
    char dash = 0;
    std::istringstream head(line);
    if (head >> std::hex >> lo >> dash >> hi && dash == '-') {
      inside = lo <= a && a < hi;
    } else if (inside && line.rfind("VmFlags:", 0) == 0) {
      return line;
    }
  }
  return "";
}

bool AdvisedHuge(const void* address) {
  return (VmFlagsAt(address) + " ").find(" hg ") != std::string::npos;
}

TEST(HugePagesInside, WholeAlignedPagesOnly) {
  char* base = reinterpret_cast<char*>(uintptr_t(64) * kPage);
  PageRange r = HugePagesInside(base + 1, 3 * kPage);
  EXPECT_EQ(r.begin, base + kPage);
  EXPECT_EQ(r.size, 2 * kPage);
  r = HugePagesInside(base, 3 * kPage);
  EXPECT_EQ(r.begin, base);
  EXPECT_EQ(r.size, 3 * kPage);
  EXPECT_EQ(HugePagesInside(base + 1, kPage).size, 0u);   // no whole page
  EXPECT_EQ(HugePagesInside(base + 1, 0).size, 0u);
  EXPECT_EQ(HugePagesInside(base + kPage - 1, kPage + 1).size, kPage);
}

class AdviseHugePagesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    size_ = 32 << 20;
    void* p = mmap(nullptr, size_, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT_NE(p, MAP_FAILED);
    map_ = static_cast<char*>(p);
  }
  void TearDown() override { munmap(map_, size_); }
  size_t size_ = 0;
  char* map_ = nullptr;
};

TEST_F(AdviseHugePagesTest, AdvisesTheWholePagesOfALargeBuffer) {
  // A buffer that starts 4 KiB after a huge page boundary.
  char* first = reinterpret_cast<char*>(
      (reinterpret_cast<uintptr_t>(map_) + kPage - 1) & ~(kPage - 1));
  char* buffer = first + 4096;
  const size_t size = 16 << 20;
  ASSERT_LE(buffer + size, map_ + size_);
  ASSERT_FALSE(AdvisedHuge(buffer));
  if (access("/sys/kernel/mm/transparent_hugepage", F_OK) != 0) {
    // A kernel built without transparent huge pages refuses the advice.
    EXPECT_FALSE(AdviseHugePages(buffer, size));
    return;
  }
  ASSERT_TRUE(AdviseHugePages(buffer, size));
  EXPECT_FALSE(AdvisedHuge(buffer)) << "the partial page before the first whole one";
  EXPECT_TRUE(AdvisedHuge(first + kPage));
  EXPECT_TRUE(AdvisedHuge(buffer + size - kPage - 4096));
  EXPECT_FALSE(AdvisedHuge(buffer + size)) << "memory after the buffer";
  // The buffer still works as memory.
  for (size_t i = 0; i < size; i += 4096) buffer[i] = char(i >> 12);
  EXPECT_EQ(buffer[size - 4096], char((size - 4096) >> 12));
}

TEST_F(AdviseHugePagesTest, LeavesSmallBuffersAlone) {
  EXPECT_FALSE(AdviseHugePages(map_, kHugePageMinBytes - 1));
  EXPECT_FALSE(AdvisedHuge(map_ + kPage));
}

}  // namespace
}  // namespace jtc
