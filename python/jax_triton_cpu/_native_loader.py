"""Loads the native module jax_triton_cpu._native with the OpenMP settings it needs.

Shared by the FFI handler's registration (_runtime) and the Triton backend's launcher.
"""
import os

# libgomp reads this once, when it loads (with _native below). Its default lets idle OpenMP
# workers spin for a long time after each launch; on a machine where other processes compete for
# the cores a spinning worker loses its time slice, and the next launch then waits a whole slice
# for it (measured here: 8 ms instead of 0.1 ms per launch of a 2^20-element add with one other
# busy process on 2 cores). Short spins let idle workers sleep, and a woken worker is scheduled
# promptly. A value set by the user is kept.
os.environ.setdefault("GOMP_SPINCOUNT", "1000")
# Kernels keep their tiles on the stack (up to 4 MiB, compiler.codegen.STACK_LIMIT); OpenMP
# workers get stacks as large as a main thread's.
os.environ.setdefault("OMP_STACKSIZE", "8M")

from . import _native  # noqa: E402,F401
