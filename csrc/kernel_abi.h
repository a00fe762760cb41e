// The launch trampoline every kernel library exports (docs/abi.md).
// Plain C so that hand-written test kernels can check their trampolines
// against the same typedef.
#ifndef JAX_TRITON_CPU_KERNEL_ABI_H_
#define JAX_TRITON_CPU_KERNEL_ABI_H_

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// Runs the programs with flattened ids in [first, last), where
// id = x + grid_x * (y + grid_y * z).  args[i] points at the value of kernel
// parameter i (a void* for pointers, a 64-bit slot for scalars).
// Returns 0 on success, non-zero if a program failed.
typedef int32_t (*jtc_kernel_launch_fn)(void* const* args, uint64_t first,
                                        uint64_t last, uint32_t grid_x,
                                        uint32_t grid_y, uint32_t grid_z);

// Optional companion `<launch symbol>_message`: after a launch call returned
// non-zero, the same thread's description of the failure (a device assert).
typedef const char* (*jtc_kernel_message_fn)(void);

#ifdef __cplusplus
}  // extern "C"

namespace jtc {
using KernelLaunchFn = jtc_kernel_launch_fn;
using KernelMessageFn = jtc_kernel_message_fn;
}  // namespace jtc
#endif

#endif  // JAX_TRITON_CPU_KERNEL_ABI_H_
