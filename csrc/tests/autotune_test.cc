// The autotuner's selection and buffer-restore logic, driven by fake runs.
#include "autotune.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <vector>

namespace jtc {
namespace {

// Busy-waits `micros` microseconds (a sleep's wake-up jitter is larger than
// the differences the tests set up).
void Spin(int micros) {
  const auto end =
      std::chrono::steady_clock::now() + std::chrono::microseconds(micros);
  while (std::chrono::steady_clock::now() < end) {
  }
}

TEST(Autotune, Median) {
  EXPECT_EQ(Median({5.0}), 5.0);
  EXPECT_EQ(Median({3.0, 1.0, 2.0}), 2.0);
  EXPECT_EQ(Median({4.0, 1.0, 3.0, 2.0}), 2.5);
  EXPECT_EQ(Median({9.0, 1.0, 1.0, 1.0, 100.0}), 1.0);  // outliers ignored
}

TEST(Autotune, PickFastestUsesMediansAndPrefersTheFirstOnTies) {
  // Config 0 has the best single sample, config 1 the best median.
  EXPECT_EQ(PickFastest({{0.1, 9.0, 9.0}, {1.0, 1.0, 1.0}, {2.0, 2.0, 2.0}}),
            1u);
  EXPECT_EQ(PickFastest({{1.0}, {1.0}, {1.0}}), 0u);
  EXPECT_EQ(PickFastest({{3.0, 3.0}, {2.0, 2.0}, {2.0, 2.0}}), 1u);
  EXPECT_EQ(PickFastest({{4.0}}), 0u);
}

TEST(Autotune, TimedRoundsStayWithinBounds) {
  EXPECT_EQ(TimedRounds(10.0), kMinTimedRounds);  // slow kernels: a few runs
  EXPECT_EQ(TimedRounds(kTuneBudgetSeconds / 5.5), 5);
  EXPECT_EQ(TimedRounds(1e-9), kMaxTimedRounds);  // fast kernels: capped
  EXPECT_EQ(TimedRounds(0.0), kMaxTimedRounds);
}

TEST(Autotune, SnapshotRestoresEveryBuffer) {
  std::vector<float> a = {1, 2, 3};
  std::vector<int64_t> b = {7};
  BufferSnapshot snapshot;
  snapshot.Add(a.data(), a.size() * sizeof(float));
  snapshot.Add(b.data(), b.size() * sizeof(int64_t));
  EXPECT_EQ(snapshot.size(), 2u);
  a = {0, 0, 0};
  b = {-1};
  snapshot.Restore();
  EXPECT_EQ(a, (std::vector<float>{1, 2, 3}));
  EXPECT_EQ(b, (std::vector<int64_t>{7}));
  a[1] = 42;
  snapshot.Restore();  // restores the saved contents again, not the latest
  EXPECT_EQ(a[1], 2);
  BufferSnapshot empty;
  empty.Restore();  // nothing to do
}

TEST(Autotune, PicksTheFastestAndEveryRunSeesTheOriginalBuffer) {
  for (size_t fastest : {0u, 1u, 2u}) {
    std::vector<int32_t> buffer = {10, 20, 30};  // an in-place operand
    BufferSnapshot snapshot;
    snapshot.Add(buffer.data(), buffer.size() * sizeof(int32_t));
    std::vector<int> runs(3, 0);
    auto run = [&](size_t c) {
      EXPECT_EQ(buffer, (std::vector<int32_t>{10, 20, 30})) << "config " << c;
      for (int32_t& v : buffer) v += 1;  // the kernel writes in place
      ++runs[c];
      Spin(c == fastest ? 20 : 600);
      return true;
    };
    TuneResult result = Autotune(3, run, snapshot);
    ASSERT_TRUE(result.ok);
    EXPECT_EQ(result.best, fastest);
    ASSERT_EQ(result.medians.size(), 3u);
    for (size_t c = 0; c < 3; ++c) {
      if (c != fastest) EXPECT_LT(result.medians[fastest], result.medians[c]);
    }
    // A warm-up run and the same number of timed runs for every config.
    EXPECT_EQ(runs[0], runs[1]);
    EXPECT_EQ(runs[1], runs[2]);
    EXPECT_GE(runs[0], 1 + kMinTimedRounds);
    EXPECT_LE(runs[0], 1 + kMaxTimedRounds);
    // Left as found: the caller then runs the winner once.
    EXPECT_EQ(buffer, (std::vector<int32_t>{10, 20, 30}));
  }
}

TEST(Autotune, AFailedRunStopsTuningAndRestores) {
  std::vector<int32_t> buffer = {5};
  BufferSnapshot snapshot;
  snapshot.Add(buffer.data(), sizeof(int32_t));
  std::vector<int> runs(3, 0);
  auto run = [&](size_t c) {
    ++runs[c];
    buffer[0] = -1;
    return c != 1;
  };
  TuneResult result = Autotune(3, run, snapshot);
  EXPECT_FALSE(result.ok);
  EXPECT_EQ(result.failed, 1u);
  EXPECT_EQ(runs, (std::vector<int>{1, 1, 0}));
  EXPECT_EQ(buffer[0], 5);
}

}  // namespace
}  // namespace jtc
