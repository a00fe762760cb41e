#include "autotune.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

namespace jtc {

double Median(std::vector<double> samples) {
  const size_t mid = samples.size() / 2;
  std::nth_element(samples.begin(), samples.begin() + mid, samples.end());
  const double upper = samples[mid];
  if (samples.size() % 2 == 1) return upper;
  const double lower = *std::max_element(samples.begin(), samples.begin() + mid);
  return (lower + upper) / 2;
}

size_t PickFastest(const std::vector<std::vector<double>>& times) {
  size_t best = 0;
  double best_median = Median(times[0]);
  for (size_t c = 1; c < times.size(); ++c) {
    const double m = Median(times[c]);
    if (m < best_median) best = c, best_median = m;
  }
  return best;
}

int TimedRounds(double warmup_seconds) {
  if (!(warmup_seconds > 0)) return kMaxTimedRounds;
  const double rounds = std::floor(kTuneBudgetSeconds / warmup_seconds);
  return static_cast<int>(std::clamp<double>(rounds, kMinTimedRounds,
                                             kMaxTimedRounds));
}

void BufferSnapshot::Add(void* data, size_t bytes) {
  const auto* begin = static_cast<const uint8_t*>(data);
  saved_.push_back({data, std::vector<uint8_t>(begin, begin + bytes)});
}

void BufferSnapshot::Restore() const {
  for (const Saved& s : saved_) {
    if (!s.bytes.empty()) std::memcpy(s.data, s.bytes.data(), s.bytes.size());
  }
}

TuneResult Autotune(size_t num_configs, const std::function<bool(size_t)>& run,
                    const BufferSnapshot& snapshot) {
  using Clock = std::chrono::steady_clock;
  TuneResult result;
  // Restores, runs and times config c; false if it failed.
  auto trial = [&](size_t c, double* seconds) {
    snapshot.Restore();
    const Clock::time_point start = Clock::now();
    const bool ok = run(c);
    *seconds = std::chrono::duration<double>(Clock::now() - start).count();
    if (!ok) result.ok = false, result.failed = c;
    return ok;
  };

  double warmup = 0, seconds = 0;
  for (size_t c = 0; c < num_configs; ++c) {
    if (!trial(c, &seconds)) break;
    warmup += seconds;
  }
  std::vector<std::vector<double>> times(num_configs);
  const int rounds = result.ok ? TimedRounds(warmup) : 0;
  for (int r = 0; r < rounds && result.ok; ++r) {
    for (size_t c = 0; c < num_configs; ++c) {
      if (!trial(c, &seconds)) break;
      times[c].push_back(seconds);
    }
  }
  snapshot.Restore();
  if (!result.ok) return result;
  result.best = PickFastest(times);
  for (const auto& t : times) result.medians.push_back(Median(t));
  return result;
}

}  // namespace jtc
