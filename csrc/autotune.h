// Run-time selection among the compiled configs of an autotuned kernel: each
// config is timed on the real buffers, and buffers a trial may overwrite are
// put back before every run.  Plain C++ (no XLA), so GoogleTest drives it
// directly.
#ifndef JAX_TRITON_CPU_AUTOTUNE_H_
#define JAX_TRITON_CPU_AUTOTUNE_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

namespace jtc {

// Timed rounds after the untimed warm-up round: enough for about
// kTuneBudgetSeconds in all, at least kMinTimedRounds, at most kMaxTimedRounds.
inline constexpr double kTuneBudgetSeconds = 0.05;
inline constexpr int kMinTimedRounds = 3;
inline constexpr int kMaxTimedRounds = 20;

// Median of `samples` (not empty); the mean of the two middle ones for an
// even count.
double Median(std::vector<double> samples);

// The config whose median time is smallest; ties go to the lowest index.
// times[c] holds config c's samples (none empty).
size_t PickFastest(const std::vector<std::vector<double>>& times);

// Timed rounds for a warm-up round that took `warmup_seconds` (all configs).
int TimedRounds(double warmup_seconds);

// Copies of buffers that a trial may overwrite (outputs aliased to inputs:
// in-place Refs and input_output_aliases), put back by Restore().
class BufferSnapshot {
 public:
  // Saves the current contents of [data, data + bytes).
  void Add(void* data, size_t bytes);
  void Restore() const;
  size_t size() const { return saved_.size(); }

 private:
  struct Saved {
    void* data;
    std::vector<uint8_t> bytes;
  };
  std::vector<Saved> saved_;
};

struct TuneResult {
  bool ok = true;           // false: a run failed
  size_t best = 0;          // the fastest config (when ok)
  size_t failed = 0;        // the config whose run failed (when !ok)
  std::vector<double> medians;  // seconds per config (when ok)
};

// Runs every config once untimed, then TimedRounds() rounds timed; configs
// take turns within a round so that a change in machine load hits them alike.
// `snapshot` is restored before each run and once more at the end, so the
// buffers are left as they were found.  `run(c)` launches config c and
// returns false on failure, which stops the tuning.
TuneResult Autotune(size_t num_configs, const std::function<bool(size_t)>& run,
                    const BufferSnapshot& snapshot);

}  // namespace jtc

#endif  // JAX_TRITON_CPU_AUTOTUNE_H_
