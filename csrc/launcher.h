// Runs a kernel's launch trampoline over its grid with OpenMP.
#ifndef JAX_TRITON_CPU_LAUNCHER_H_
#define JAX_TRITON_CPU_LAUNCHER_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "fault_guard.h"
#include "kernel_abi.h"

namespace jtc {

struct Grid {
  uint32_t x = 1, y = 1, z = 1;
  uint64_t num_programs = 1;  // x * y * z
};

// Checks a grid attribute: 3 entries, each in [1, 2^31), product < 2^63
// (docs/abi.md).  Returns "" and fills *grid, or returns an error message.
std::string MakeGrid(const int64_t* dims, size_t size, Grid* grid);

// Threads one launch may use: `num_threads` (0 = all cores) split between the
// `in_flight` launches running at once, at least 1.
int ThreadBudget(int num_threads, int in_flight);

// Runs programs [0, grid.num_programs): serially for one program or one
// thread, else OpenMP threads claim contiguous chunks (a few per thread) and
// call `launch` once per chunk.
// Returns 0, or the first non-zero status a trampoline returned; then, if
// `message_fn` and `message` are given, *message is the failing thread's
// description of the failure.
// With `code`, a fault of the kernel's code stops the launch, which returns
// kFaultStatus; *message then says what faulted, where, and in which program.
// Allocates nothing unless a program fails; safe to call from several threads
// at once.
int32_t LaunchGrid(KernelLaunchFn launch, void* const* args, const Grid& grid,
                   int num_threads, KernelMessageFn message_fn = nullptr,
                   std::string* message = nullptr,
                   const KernelCode* code = nullptr);

}  // namespace jtc

#endif  // JAX_TRITON_CPU_LAUNCHER_H_
