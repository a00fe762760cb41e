// Stand-ins for compiled Triton kernels, following docs/abi.md: each kernel
// has triton-cpu's signature (params, pid_x, pid_y, pid_z, grid_x, grid_y,
// grid_z) and a hand-written NAME_launch trampoline.
#include <stdint.h>
#include <stdio.h>

#include "kernel_abi.h"

// Flattened program id, x fastest.
static uint64_t flat_id(int32_t x, int32_t y, int32_t z, uint32_t gx,
                        uint32_t gy) {
  return (uint64_t)x + (uint64_t)gx * ((uint64_t)y + (uint64_t)gy * z);
}

// Runs `kernel` over programs [first, last) with the given parameters.
#define FOR_EACH_PROGRAM(first, last, gx, gy, call)        \
  for (uint64_t i_ = (first); i_ < (last); ++i_) {         \
    int32_t px = (int32_t)(i_ % (gx));                     \
    int32_t py = (int32_t)((i_ / (gx)) % (gy));            \
    int32_t pz = (int32_t)(i_ / (gx) / (gy));              \
    call;                                                  \
  }

// record: visits[id] += 1 (atomically); seen[6 id ..] = pid x, y, z and the
// grid the program was given.
void record(int32_t* visits, uint32_t* seen, int32_t pid_x, int32_t pid_y,
            int32_t pid_z, uint32_t gx, uint32_t gy, uint32_t gz) {
  uint64_t id = flat_id(pid_x, pid_y, pid_z, gx, gy);
  __atomic_fetch_add(&visits[id], 1, __ATOMIC_RELAXED);
  uint32_t* s = seen + 6 * id;
  s[0] = (uint32_t)pid_x, s[1] = (uint32_t)pid_y, s[2] = (uint32_t)pid_z;
  s[3] = gx, s[4] = gy, s[5] = gz;
}

// Params: visits, seen, calls (int64: trampoline calls, counted here).
int32_t record_launch(void* const* args, uint64_t first, uint64_t last,
                      uint32_t gx, uint32_t gy, uint32_t gz) {
  int32_t* visits = *(int32_t* const*)args[0];
  uint32_t* seen = *(uint32_t* const*)args[1];
  int64_t* calls = *(int64_t* const*)args[2];
  __atomic_fetch_add(calls, 1, __ATOMIC_RELAXED);
  FOR_EACH_PROGRAM(first, last, gx, gy,
                   record(visits, seen, px, py, pz, gx, gy, gz));
  return 0;
}

#define AXPY_BLOCK 16

// out = alpha * x + y + beta over blocks of AXPY_BLOCK; scalars and pointers
// interleaved, scalars of two widths.
void axpy(float* out, float alpha, const float* x, int64_t n, const float* y,
          double beta, int32_t pid_x, int32_t pid_y, int32_t pid_z,
          uint32_t gx, uint32_t gy, uint32_t gz) {
  (void)pid_y, (void)pid_z, (void)gx, (void)gy, (void)gz;
  for (int64_t i = (int64_t)pid_x * AXPY_BLOCK;
       i < (int64_t)(pid_x + 1) * AXPY_BLOCK && i < n; ++i) {
    out[i] = (float)(alpha * x[i] + y[i] + beta);
  }
}

int32_t axpy_launch(void* const* args, uint64_t first, uint64_t last,
                    uint32_t gx, uint32_t gy, uint32_t gz) {
  FOR_EACH_PROGRAM(first, last, gx, gy,
                   axpy(*(float* const*)args[0], *(const float*)args[1],
                        *(const float* const*)args[2], *(const int64_t*)args[3],
                        *(const float* const*)args[4], *(const double*)args[5],
                        px, py, pz, gx, gy, gz));
  return 0;
}

// Returns `status` from the chunk that holds program `program` (both int64
// scalars), as a device assert would.
int32_t fail_at_launch(void* const* args, uint64_t first, uint64_t last,
                       uint32_t gx, uint32_t gy, uint32_t gz) {
  (void)gx, (void)gy, (void)gz;
  uint64_t program = *(const uint64_t*)args[0];
  int32_t status = (int32_t)*(const int64_t*)args[1];
  return first <= program && program < last ? status : 0;
}

// Like fail_at_launch, and describes the failure through the optional
// `<symbol>_message` companion, from thread-local storage as generated kernels do.
static _Thread_local char g_message[64];

int32_t fail_with_message_launch(void* const* args, uint64_t first,
                                 uint64_t last, uint32_t gx, uint32_t gy,
                                 uint32_t gz) {
  int32_t status = fail_at_launch(args, first, last, gx, gy, gz);
  if (status != 0) {
    snprintf(g_message, sizeof g_message, "program %llu failed",
             (unsigned long long)*(const uint64_t*)args[0]);
  }
  return status;
}

const char* fail_with_message_launch_message(void) { return g_message; }

// tagged_inc: program i adds 1 to data[i] (int32, in place), then busy-waits
// `spin` iterations; every program stores `tag` to tag_out[0].  Params: data,
// spin (int64), tag_out (int32), tag (int64).  Configs that differ in spin and
// tag are how the tests tell which config an autotuned call ran.
int32_t tagged_inc_launch(void* const* args, uint64_t first, uint64_t last,
                          uint32_t gx, uint32_t gy, uint32_t gz) {
  (void)gx, (void)gy, (void)gz;
  int32_t* data = *(int32_t* const*)args[0];
  const int64_t spin = *(const int64_t*)args[1];
  int32_t* tag_out = *(int32_t* const*)args[2];
  const int32_t tag = (int32_t)*(const int64_t*)args[3];
  for (uint64_t i = first; i < last; ++i) {
    data[i] += 1;
    for (volatile int64_t s = 0; s < spin; s = s + 1) {
    }
    __atomic_store_n(tag_out, tag, __ATOMIC_RELAXED);
  }
  return 0;
}

// The trampolines must match the typedef the runtime calls through (built
// with -Werror=incompatible-pointer-types, so a mismatch fails the build).
static const jtc_kernel_launch_fn kCheckSignatures[] = {
    record_launch, axpy_launch, fail_at_launch, fail_with_message_launch,
    tagged_inc_launch};
static const jtc_kernel_message_fn kCheckMessage = fail_with_message_launch_message;
const void* jtc_test_kernels_message_check(void) { return (const void*)kCheckMessage; }
const void* jtc_test_kernels_signature_check(void) { return kCheckSignatures; }

// fault: program `bad` (param 0, a 64-bit slot) writes through the address in
// param 1 (SIGSEGV for an unmapped one) or, with kind (param 2) == 1, divides
// by zero (SIGFPE).  Every other program writes its id into out (param 3).
// fault_launch_program is the calling thread's current program, as a
// compiled kernel's NAME_program.
static __thread volatile uint64_t fault_program;  // (volatile: stored per program)

uint64_t fault_launch_program(void) { return fault_program; }

int32_t fault_launch(void* const* args, uint64_t first, uint64_t last,
                     uint32_t gx, uint32_t gy, uint32_t gz) {
  (void)gy, (void)gz;
  uint64_t bad = *(const uint64_t*)args[0];
  volatile int32_t* address = *(int32_t* const*)args[1];
  int64_t kind = *(const int64_t*)args[2];
  int64_t* out = *(int64_t* const*)args[3];
  for (uint64_t i = first; i < last; ++i) {
    fault_program = i;
    if (i == bad) {
      if (kind == 1) {
        volatile int32_t zero = 0;
        // (volatile: a dead division may be dropped; not 1 / zero: GCC
        // computes that one without dividing)
        volatile int32_t quotient = (int32_t)(i + 7) / zero;
        (void)quotient;
      } else {
        *address = 1;
      }
    }
    out[i] = (int64_t)i;
  }
  (void)gx;
  return 0;
}

// extents(out: u64[3], x: any, n: scalar): out = the sizes the runtime passes
// in args[P + i] (docs/abi.md): out's, x's and the scalar's slot (0).
int32_t extents_launch(void* const* args, uint64_t first, uint64_t last,
                       uint32_t gx, uint32_t gy, uint32_t gz) {
  (void)first, (void)last, (void)gx, (void)gy, (void)gz;
  uint64_t* out = *(uint64_t* const*)args[0];
  for (int i = 0; i < 3; ++i) out[i] = *(const uint64_t*)args[3 + i];
  return 0;
}
