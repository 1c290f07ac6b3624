"""The one cache of compiled loops, shared by every method and the live app.

A loop is compiled once per (loop, static choices, argument structure, shapes and dtypes): parameters, input,
initial state and times are traced arguments, so a new value never recompiles. ``CACHE`` holds the compiled
executables; its size is what the tests read to prove that a slider move does not recompile.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Callable

import jax
import numpy as np

# Measured on the population loop (docs/benchmarks.md): AVX-512 vectors, and copy insertion that sees through
# loop regions so the loop state is not copied every step.
COMPILER_OPTIONS: dict[str, Any] = {"xla_cpu_prefer_vector_width": 512,
                                    "xla_cpu_copy_insertion_use_region_analysis": True}
CACHE: dict[Any, Any] = {}


def run_compiled(loop: Callable, static: tuple, args: tuple, compiler_options: dict | None = None):
    """Compile ``loop(*args)`` once per (``loop``'s code, ``static``, the structure, shapes and dtypes of
    ``args``) and run it. Returns (outputs, compile time, run time) in seconds; the compile time is ~0 when
    the cache held the executable."""
    leaves, tree = jax.tree_util.tree_flatten(args)
    key = (getattr(loop, "__code__", loop), static, tree, tuple((np.shape(x), _dtype(x)) for x in leaves))
    began = time.perf_counter()
    if key not in CACHE:
        options = compiler_options if jax.default_backend() == "cpu" else None  # the options are XLA:CPU's
        CACHE[key] = jax.jit(loop).lower(*args).compile(compiler_options=options)
    compile_time = time.perf_counter() - began
    began = time.perf_counter()
    outputs = jax.block_until_ready(CACHE[key](*args))
    return outputs, compile_time, time.perf_counter() - began


def _dtype(leaf) -> str:
    return leaf.dtype.str if hasattr(leaf, "dtype") else np.asarray(leaf).dtype.str


def enable_disk_cache() -> None:
    """Keep compiled loops on disk ($NEUROSPIKE_CACHE, else ~/.cache/neurospike/jax) so the next process that runs
    the same configuration (the next CLI call, a Dask worker's next sweep) skips XLA compilation."""
    directory = os.environ.get("NEUROSPIKE_CACHE") or str(Path.home() / ".cache" / "neurospike" / "jax")
    jax.config.update("jax_compilation_cache_dir", directory)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
