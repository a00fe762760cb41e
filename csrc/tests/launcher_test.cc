#include "launcher.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "test_kernels.h"

namespace jtc {
namespace {

using testing::TestKernel;
using testing::TestSymbol;

Grid MustMakeGrid(int64_t x, int64_t y, int64_t z) {
  const int64_t dims[] = {x, y, z};
  Grid grid;
  std::string err = MakeGrid(dims, 3, &grid);
  EXPECT_EQ(err, "");
  return grid;
}

std::string GridError(std::vector<int64_t> dims) {
  Grid grid;
  return MakeGrid(dims.data(), dims.size(), &grid);
}

// Launches `record` over `grid` and checks every program ran exactly once
// with its own program id and the grid sizes.  Returns trampoline calls.
int64_t LaunchRecordAndCheck(const Grid& grid, int num_threads) {
  const uint64_t n = grid.num_programs;
  std::vector<int32_t> visits(n, 0);
  std::vector<uint32_t> seen(6 * n, 0);
  int64_t calls = 0;
  void* ptrs[] = {visits.data(), seen.data(), &calls};
  void* args[] = {&ptrs[0], &ptrs[1], &ptrs[2]};
  EXPECT_EQ(LaunchGrid(TestKernel("record_launch"), args, grid, num_threads),
            0);
  for (uint64_t i = 0; i < n; ++i) {
    SCOPED_TRACE("program " + std::to_string(i));
    EXPECT_EQ(visits[i], 1);
    const uint32_t* s = &seen[6 * i];
    EXPECT_EQ(s[0], i % grid.x);
    EXPECT_EQ(s[1], i / grid.x % grid.y);
    EXPECT_EQ(s[2], i / grid.x / grid.y);
    EXPECT_EQ(s[3], grid.x);
    EXPECT_EQ(s[4], grid.y);
    EXPECT_EQ(s[5], grid.z);
  }
  return calls;
}

TEST(MakeGrid, AcceptsValidGrids) {
  Grid grid = MustMakeGrid(3, 4, 5);
  EXPECT_EQ(grid.x, 3u);
  EXPECT_EQ(grid.y, 4u);
  EXPECT_EQ(grid.z, 5u);
  EXPECT_EQ(grid.num_programs, 60u);
  const int64_t big = (int64_t{1} << 31) - 1;
  EXPECT_EQ(MustMakeGrid(big, big, 1).num_programs, uint64_t(big) * big);
  EXPECT_EQ(MustMakeGrid(big, big, 2).num_programs, 2 * uint64_t(big) * big);
}

TEST(MakeGrid, RejectsBadGrids) {
  EXPECT_EQ(GridError({4, 1}), "grid must have 3 entries, got 2");
  EXPECT_EQ(GridError({4, 1, 1, 1}), "grid must have 3 entries, got 4");
  EXPECT_EQ(GridError({0, 1, 1}), "grid[0] = 0 is out of range [1, 2^31)");
  EXPECT_EQ(GridError({1, -3, 1}), "grid[1] = -3 is out of range [1, 2^31)");
  EXPECT_EQ(GridError({1, 1, int64_t{1} << 31}),
            "grid[2] = 2147483648 is out of range [1, 2^31)");
}

TEST(MakeGrid, RejectsProductOverflow) {
  const int64_t big = (int64_t{1} << 31) - 1;
  EXPECT_EQ(GridError({big, big, 4}),
            "grid (2147483647, 2147483647, 4) has 2^63 or more programs");
  EXPECT_EQ(GridError({big, big, big}),
            "grid (2147483647, 2147483647, 2147483647) has 2^63 or more "
            "programs");
}

TEST(ThreadBudget, SplitsCoresBetweenLaunchesInFlight) {
  EXPECT_EQ(ThreadBudget(8, 1), 8);
  EXPECT_EQ(ThreadBudget(8, 2), 4);
  EXPECT_EQ(ThreadBudget(8, 3), 2);
  EXPECT_EQ(ThreadBudget(2, 4), 1);
  EXPECT_EQ(ThreadBudget(0, 1), omp_get_num_procs());
}

class LaunchGridTest : public ::testing::TestWithParam<int> {};

TEST_P(LaunchGridTest, EveryProgramRunsOnceInFewCalls) {
  const int num_threads = GetParam();
  const int threads = num_threads > 0 ? num_threads : omp_get_num_procs();
  for (Grid grid : {MustMakeGrid(1, 1, 1), MustMakeGrid(37, 1, 1),
                    MustMakeGrid(5, 7, 1), MustMakeGrid(3, 4, 5),
                    MustMakeGrid(1, 1, 9), MustMakeGrid(2, 1, 3)}) {
    SCOPED_TRACE("grid " + std::to_string(grid.x) + "x" +
                 std::to_string(grid.y) + "x" + std::to_string(grid.z));
    const int64_t calls = LaunchRecordAndCheck(grid, num_threads);
    // One call for a serial launch; else a few chunks per thread (8 in all
    // per thread at most), never one call per program of a big grid.
    if (threads == 1 || grid.num_programs == 1) {
      EXPECT_EQ(calls, 1);
    } else {
      const int64_t team = std::min<int64_t>(threads, grid.num_programs);
      EXPECT_LE(calls, std::min<int64_t>(grid.num_programs, team * 8));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Threads, LaunchGridTest,
                         ::testing::Values(1, 2, 0, 5));

TEST(LaunchGrid, ConcurrentLaunchesAreCorrect) {
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t] {
      for (int rep = 0; rep < 20; ++rep) {
        LaunchRecordAndCheck(MustMakeGrid(16 + t, 3, 2), 0);
      }
    });
  }
  for (auto& thread : threads) thread.join();
}

TEST(LaunchGrid, ReturnsNonZeroStatus) {
  for (int num_threads : {1, 2, 4}) {
    for (uint64_t program : {0, 50, 99}) {
      uint64_t slots[] = {program, 7};
      void* args[] = {&slots[0], &slots[1]};
      EXPECT_EQ(LaunchGrid(TestKernel("fail_at_launch"), args,
                           MustMakeGrid(100, 1, 1), num_threads),
                7);
    }
  }
  uint64_t slots[] = {1000, 7};  // no such program: success
  void* args[] = {&slots[0], &slots[1]};
  EXPECT_EQ(LaunchGrid(TestKernel("fail_at_launch"), args,
                       MustMakeGrid(100, 1, 1), 2),
            0);
}

TEST(LaunchGrid, FailingThreadDescribesTheFailure) {
  auto message_fn = reinterpret_cast<KernelMessageFn>(
      TestSymbol("fail_with_message_launch_message"));
  for (int num_threads : {1, 2, 4}) {
    for (uint64_t program : {0, 50, 99}) {
      uint64_t slots[] = {program, 3};
      void* args[] = {&slots[0], &slots[1]};
      std::string message;
      EXPECT_EQ(LaunchGrid(TestKernel("fail_with_message_launch"), args,
                           MustMakeGrid(100, 1, 1), num_threads, message_fn,
                           &message),
                3);
      EXPECT_EQ(message, "program " + std::to_string(program) + " failed");
    }
  }
}

TEST(LaunchGrid, SucceedsWithoutMessage) {
  uint64_t slots[] = {1000, 7};
  void* args[] = {&slots[0], &slots[1]};
  EXPECT_EQ(LaunchGrid(TestKernel("fail_at_launch"), args,
                       MustMakeGrid(100, 1, 1), 2),
            0);
}

// Launches `fault_launch` over 100 programs of which `bad` faults (kind 0:
// SIGSEGV at `address`, 1: SIGFPE); returns the status, fills *message.
int32_t LaunchFault(uint64_t bad, void* address, int64_t kind, int num_threads,
                    std::string* message, std::vector<int64_t>* out) {
  static const KernelCode code = CodeOf(
      reinterpret_cast<void*>(TestKernel("fault_launch")),
      reinterpret_cast<KernelProgramFn>(TestSymbol("fault_launch_program")));
  out->assign(100, -1);
  uint64_t slots[] = {bad, reinterpret_cast<uint64_t>(address),
                      static_cast<uint64_t>(kind)};
  void* pointers[] = {out->data()};
  void* args[] = {&slots[0], &slots[1], &slots[2], &pointers[0]};
  return LaunchGrid(TestKernel("fault_launch"), args, MustMakeGrid(10, 10, 1),
                    num_threads, nullptr, message, &code);
}

TEST(LaunchGrid, AFaultOfKernelCodeStopsTheLaunchAndIsDescribed) {
  for (int num_threads : {1, 0}) {
    for (uint64_t program : {0, 57, 99}) {
      std::string message;
      std::vector<int64_t> out;
      EXPECT_EQ(LaunchFault(program, reinterpret_cast<void*>(0x10), 0,
                            num_threads, &message, &out),
                kFaultStatus);
      EXPECT_NE(message.find("SIGSEGV"), std::string::npos) << message;
      EXPECT_NE(message.find("at address 0x10"), std::string::npos) << message;
      const std::string where = "program (" + std::to_string(program % 10) +
                                ", " + std::to_string(program / 10) + ", 0)";
      EXPECT_NE(message.find(where), std::string::npos) << message;
    }
  }
  std::string message;
  std::vector<int64_t> out;
  EXPECT_EQ(LaunchFault(13, nullptr, 1, 0, &message, &out), kFaultStatus);
  EXPECT_NE(message.find("SIGFPE"), std::string::npos) << message;
  EXPECT_NE(message.find("program (3, 1, 0)"), std::string::npos) << message;
}

TEST(LaunchGrid, LaunchesAfterAFaultWork) {
  std::string message;
  std::vector<int64_t> out;
  ASSERT_EQ(LaunchFault(5, nullptr, 0, 0, &message, &out), kFaultStatus);
  for (int num_threads : {1, 0}) {
    message.clear();
    EXPECT_EQ(LaunchFault(1000, nullptr, 0, num_threads, &message, &out), 0);
    EXPECT_EQ(message, "");
    for (int64_t i = 0; i < 100; ++i) EXPECT_EQ(out[i], i);
  }
}

void FaultOutsideKernelCode() {
  volatile int* address = reinterpret_cast<int*>(0x10);
  *address = 1;
}

TEST(LaunchGridDeathTest, AFaultOutsideKernelCodeIsNotCaught) {
  // The guard is installed (a launch has run), but this fault is not in a
  // kernel library: the process dies as it would without us.
  std::string message;
  std::vector<int64_t> out;
  ASSERT_EQ(LaunchFault(1000, nullptr, 0, 1, &message, &out), 0);
  EXPECT_DEATH(FaultOutsideKernelCode(), "");
}

}  // namespace
}  // namespace jtc
