"""Upstream Triton's language tests (test_core.py) run against the `cpu` Triton backend.

    nice -n 10 python -m jax_triton_cpu.conformance PATH/TO/test_core.py [--jobs N] [--out DIR]

The test file is upstream's, taken from the triton repository at the installed version
(docs/conformance.md says how); it is never part of this repository. torch is needed for the run.
"""
