#include "fault_guard.h"

#include <dlfcn.h>
#include <link.h>
#include <setjmp.h>
#include <signal.h>
#include <ucontext.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>

namespace jtc {
namespace {

constexpr int kSignals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE};
constexpr size_t kAltStackBytes = 64 * 1024;

struct Guard {
  sigjmp_buf jump;
  const KernelCode* code;
  Fault fault;
};

thread_local Guard* t_guard = nullptr;
struct sigaction g_previous[NSIG];

uintptr_t ProgramCounter(void* context) {
  auto* uc = static_cast<ucontext_t*>(context);
#if defined(__x86_64__)
  return static_cast<uintptr_t>(uc->uc_mcontext.gregs[REG_RIP]);
#elif defined(__aarch64__)
  return static_cast<uintptr_t>(uc->uc_mcontext.pc);
#else
  (void)uc;
  return 0;  // unknown architecture: no fault is recognised as the kernel's
#endif
}

bool InKernelCode(const KernelCode& code, uintptr_t pc) {
  for (const auto& [begin, end] : code.ranges) {
    if (pc >= begin && pc < end) return true;
  }
  return false;
}

void Handler(int signal, siginfo_t* info, void* context) {
  Guard* guard = t_guard;
  const uintptr_t pc = ProgramCounter(context);
  if (guard != nullptr && InKernelCode(*guard->code, pc)) {
    guard->fault = {signal, reinterpret_cast<uintptr_t>(info->si_addr), pc};
    t_guard = nullptr;
    siglongjmp(guard->jump, 1);
  }
  // Not ours: what would have happened without us.
  const struct sigaction& previous = g_previous[signal];
  if (previous.sa_flags & SA_SIGINFO) {
    previous.sa_sigaction(signal, info, context);
  } else if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) {
    previous.sa_handler(signal);
  } else {
    // Restore the default and return: the instruction faults again and the
    // default action (a core dump) happens where it would have.
    sigaction(signal, &previous, nullptr);
  }
}

void InstallHandlers() {
  static std::once_flag once;
  std::call_once(once, [] {
    for (int signal : kSignals) {
      struct sigaction action = {};
      action.sa_sigaction = Handler;
      action.sa_flags = SA_SIGINFO | SA_ONSTACK;
      sigemptyset(&action.sa_mask);
      sigaction(signal, &action, &g_previous[signal]);
    }
  });
}

// A fault from a stack overflow needs a stack to run its handler on.
void EnsureAltStack() {
  thread_local bool done = false;
  if (done) return;
  done = true;
  stack_t current;
  if (sigaltstack(nullptr, &current) == 0 && !(current.ss_flags & SS_DISABLE)) {
    return;  // the thread has one already
  }
  stack_t stack = {};
  stack.ss_sp = std::malloc(kAltStackBytes);  // kept for the thread's life
  stack.ss_size = kAltStackBytes;
  if (stack.ss_sp != nullptr) sigaltstack(&stack, nullptr);
}

struct FindSegments {
  uintptr_t base;
  KernelCode* code;
};

int CollectSegments(dl_phdr_info* info, size_t, void* data) {
  auto* find = static_cast<FindSegments*>(data);
  if (info->dlpi_addr != find->base) return 0;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type == PT_LOAD && (ph.p_flags & PF_X)) {
      const uintptr_t begin = info->dlpi_addr + ph.p_vaddr;
      find->code->ranges.emplace_back(begin, begin + ph.p_memsz);
    }
  }
  return 1;
}

const char* SignalName(int signal) {
  switch (signal) {
    case SIGSEGV: return "SIGSEGV (invalid memory access)";
    case SIGBUS: return "SIGBUS (bus error: a misaligned or unmapped access)";
    case SIGILL: return "SIGILL (illegal instruction)";
    case SIGFPE: return "SIGFPE (arithmetic fault, e.g. an integer division by zero)";
    default: return "a signal";
  }
}

}  // namespace

KernelCode CodeOf(const void* symbol, KernelProgramFn program) {
  KernelCode code;
  code.program = program;
  Dl_info info;
  if (dladdr(symbol, &info) != 0) {
    FindSegments find{reinterpret_cast<uintptr_t>(info.dli_fbase), &code};
    // dli_fbase is the object's load address as mapped; dlpi_addr is its
    // relocation base: for a shared library built -fPIC they are the same.
    dl_iterate_phdr(CollectSegments, &find);
  }
  return code;
}

int32_t GuardedLaunch(const KernelCode& code, KernelLaunchFn launch,
                      void* const* args, uint64_t first, uint64_t last,
                      uint32_t gx, uint32_t gy, uint32_t gz, Fault* fault) {
  if (code.ranges.empty()) return launch(args, first, last, gx, gy, gz);
  InstallHandlers();
  EnsureAltStack();
  Guard guard;
  guard.code = &code;
  Guard* outer = t_guard;  // (a launch from inside a kernel does not happen)
  if (sigsetjmp(guard.jump, /*savemask=*/1) != 0) {
    t_guard = outer;
    *fault = guard.fault;
    return kFaultStatus;
  }
  t_guard = &guard;
  const int32_t status = launch(args, first, last, gx, gy, gz);
  t_guard = outer;
  return status;
}

std::string DescribeFault(const Fault& fault) {
  char address[64];
  std::snprintf(address, sizeof(address), "%#llx",
                static_cast<unsigned long long>(fault.address));
  std::string text = std::string(SignalName(fault.signal));
  if (fault.signal == SIGSEGV || fault.signal == SIGBUS) {
    text += std::string(" at address ") + address;
  }
  return text;
}

}  // namespace jtc
