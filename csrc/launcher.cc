#include "launcher.h"

#include <omp.h>

#include <algorithm>
#include <atomic>

namespace jtc {
namespace {

constexpr int64_t kMaxGridDim = int64_t{1} << 31;  // exclusive
constexpr uint64_t kMaxPrograms = uint64_t{1} << 63;  // exclusive
constexpr uint64_t kChunksPerThread = 8;

// Launches running now in this process, over all XLA devices and calling
// threads.  Each OpenMP caller gets its own thread team, so without this
// budget two concurrent launches would each take every core.
std::atomic<int> g_in_flight{0};

class InFlight {
 public:
  InFlight() : count_(g_in_flight.fetch_add(1) + 1) {}
  ~InFlight() { g_in_flight.fetch_sub(1); }
  int count() const { return count_; }

 private:
  int count_;
};

}  // namespace

std::string MakeGrid(const int64_t* dims, size_t size, Grid* grid) {
  if (size != 3) {
    return "grid must have 3 entries, got " + std::to_string(size);
  }
  uint64_t product = 1;
  for (size_t i = 0; i < 3; ++i) {
    if (dims[i] < 1 || dims[i] >= kMaxGridDim) {
      return "grid[" + std::to_string(i) + "] = " + std::to_string(dims[i]) +
             " is out of range [1, 2^31)";
    }
    if (__builtin_mul_overflow(product, static_cast<uint64_t>(dims[i]),
                               &product) ||
        product >= kMaxPrograms) {
      return "grid (" + std::to_string(dims[0]) + ", " +
             std::to_string(dims[1]) + ", " + std::to_string(dims[2]) +
             ") has 2^63 or more programs";
    }
  }
  grid->x = static_cast<uint32_t>(dims[0]);
  grid->y = static_cast<uint32_t>(dims[1]);
  grid->z = static_cast<uint32_t>(dims[2]);
  grid->num_programs = product;
  return "";
}

// "program (x, y, z)" of the program that faulted, or the chunk it lay in.
static std::string DescribePrograms(const Grid& grid, const KernelCode* code,
                             uint64_t first, uint64_t last) {
  auto coordinates = [&](uint64_t i) {
    return "(" + std::to_string(i % grid.x) + ", " +
           std::to_string(i / grid.x % grid.y) + ", " +
           std::to_string(i / grid.x / grid.y) + ")";
  };
  if (code != nullptr && code->program != nullptr) {
    return "program " + coordinates(code->program());
  }
  return "one of the programs " + coordinates(first) + " to " +
         coordinates(last - 1);
}

int ThreadBudget(int num_threads, int in_flight) {
  int threads = num_threads > 0 ? num_threads : omp_get_num_procs();
  return std::max(1, threads / std::max(1, in_flight));
}

int32_t LaunchGrid(KernelLaunchFn launch, void* const* args, const Grid& grid,
                   int num_threads, KernelMessageFn message_fn,
                   std::string* message, const KernelCode* code) {
  const KernelCode unguarded;
  auto run = [&](uint64_t first, uint64_t last, Fault* fault) {
    return GuardedLaunch(code != nullptr ? *code : unguarded, launch, args, first,
                         last, grid.x, grid.y, grid.z, fault);
  };
  // Called by the thread whose trampoline failed: the message and the current
  // program are thread-local.
  auto describe = [&](int32_t s, uint64_t first, uint64_t last,
                      const Fault& fault) {
    if (s == kFaultStatus && message != nullptr) {
      *message = DescribeFault(fault) + " in " +
                 DescribePrograms(grid, code, first, last) +
                 "; the launch was stopped. An out-of-bounds load or store (a "
                 "missing mask, a wrong offset, stride or grid) is the usual "
                 "cause: rerun with backend_options={\"bounds_check\": True} "
                 "(or JAX_TRITON_CPU_BOUNDS_CHECK=1) to find the access.";
    } else if (s != 0 && message_fn != nullptr && message != nullptr) {
      const char* text = message_fn();
      *message = text != nullptr ? text : "";
    }
    return s;
  };
  const uint64_t n = grid.num_programs;
  auto serial = [&] {
    Fault fault;
    return describe(run(0, n, &fault), 0, n, fault);
  };
  if (n <= 1) return serial();

  InFlight in_flight;
  const int budget = ThreadBudget(num_threads, in_flight.count());
  if (budget == 1) return serial();

  std::atomic<int32_t> status{0};
  // Threads claim chunks from a shared counter rather than taking a fixed
  // share: on a loaded machine a preempted thread then delays only the chunk
  // it holds, and the others finish the rest.  Several chunks per thread keep
  // that cost small; each chunk is one trampoline call.
  const int team = static_cast<int>(std::min<uint64_t>(budget, n));
  const uint64_t chunks = uint64_t(team) * kChunksPerThread;
  const uint64_t chunk = (n + chunks - 1) / chunks;
  std::atomic<uint64_t> next{0};
#pragma omp parallel num_threads(team)
  {
    for (uint64_t first = next.fetch_add(chunk); first < n && status.load() == 0;
         first = next.fetch_add(chunk)) {
      const uint64_t last = std::min(n, first + chunk);
      Fault fault;
      int32_t s = run(first, last, &fault);
      if (s != 0) {
        int32_t expected = 0;
        if (status.compare_exchange_strong(expected, s)) {
          describe(s, first, last, fault);
        }
      }
    }
  }
  return status.load();
}

}  // namespace jtc
