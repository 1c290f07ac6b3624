"""The one cache of compiled loops, shared by every method and the live app.

A loop is compiled once per (loop, static choices, argument structure, shapes and dtypes): parameters, input,
initial state and times are traced arguments, so a new value never recompiles. ``CACHE`` holds the compiled
executables; its size is what the tests read to prove that a slider move does not recompile.

The cache keeps the ``MAX_EXECUTABLES`` most recently used executables. Each XLA:CPU executable maps its code and
data in ~170 separate memory regions (measured with jax 0.10.2), and Linux refuses a process more than
``vm.max_map_count`` regions (65 530 by default): past ~380 live executables the JIT's next ``mmap`` fails and the
process dies with a segmentation fault inside ``backend_compile`` (a long app session or a test worker that
compiled every model and method met it).
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
MAX_EXECUTABLES = 128  # ~22 000 memory regions at most
CACHE: dict[Any, Any] = {}  # insertion order is use order: the first key is the least recently used


def run_compiled(loop: Callable, static: tuple, args: tuple, compiler_options: dict | None = None):
    """Compile ``loop(*args)`` once per (``loop``'s code, ``static``, the structure, shapes and dtypes of
    ``args``) and run it. Returns (outputs, compile time, run time) in seconds; the compile time is ~0 when
    the cache held the executable."""
    leaves, tree = jax.tree_util.tree_flatten(args)
    key = (getattr(loop, "__code__", loop), static, tree, tuple((np.shape(x), _dtype(x)) for x in leaves))
    began = time.perf_counter()
    if key in CACHE:
        CACHE[key] = CACHE.pop(key)  # now the most recently used
    else:
        options = compiler_options if jax.default_backend() == "cpu" else None  # the options are XLA:CPU's
        while len(CACHE) >= MAX_EXECUTABLES:
            del CACHE[next(iter(CACHE))]
        # jax.jit of a fresh closure: jax's own caches, weakly keyed by the function, would otherwise keep every
        # executable of a module-level ``loop`` alive after this cache dropped it
        CACHE[key] = jax.jit(lambda *a: loop(*a)).lower(*args).compile(compiler_options=options)
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
