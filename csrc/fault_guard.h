// Turns a fault of kernel code (SIGSEGV, SIGBUS, SIGILL, SIGFPE whose
// faulting instruction lies in a kernel library) into an error of the launch
// that ran it, instead of a dead process.  Faults anywhere else go to the
// handler that was installed before ours.
#ifndef JAX_TRITON_CPU_FAULT_GUARD_H_
#define JAX_TRITON_CPU_FAULT_GUARD_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "kernel_abi.h"

namespace jtc {

// Optional companion `<launch symbol>_program` of a kernel library: the
// flattened id of the program the calling thread runs (or ran last).
using KernelProgramFn = uint64_t (*)(void);

// The code of one kernel library: its executable segments.
struct KernelCode {
  std::vector<std::pair<uintptr_t, uintptr_t>> ranges;  // [begin, end)
  KernelProgramFn program = nullptr;                    // may be null
};

// The executable segments of the loaded object that defines `symbol`.
KernelCode CodeOf(const void* symbol, KernelProgramFn program);

struct Fault {
  int signal = 0;
  uintptr_t address = 0;  // si_addr: the bad address (SIGSEGV/SIGBUS)
  uintptr_t pc = 0;       // the faulting instruction
};

// Status of a launch call that a fault aborted.
constexpr int32_t kFaultStatus = -0x7fff0001;

// Calls launch(args, first, last, gx, gy, gz) under the guard; if kernel code
// faults, the call is abandoned (the kernel's stack frames hold nothing to
// release) and returns kFaultStatus with *fault filled in.  Thread-safe.
int32_t GuardedLaunch(const KernelCode& code, KernelLaunchFn launch,
                      void* const* args, uint64_t first, uint64_t last,
                      uint32_t gx, uint32_t gy, uint32_t gz, Fault* fault);

// "SIGSEGV (invalid memory access) at address 0x..." and the advice to rerun.
std::string DescribeFault(const Fault& fault);

}  // namespace jtc

#endif  // JAX_TRITON_CPU_FAULT_GUARD_H_
