"""The cache of compiled loops keeps the most recently used executables and frees the rest (neurospike.compiled)."""

import sys
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

from neurospike import compiled


def loop(x):
    return jnp.cumsum(jnp.sin(x) * jnp.exp(-x))


def run(size):
    outputs, compile_time, _ = compiled.run_compiled(loop, (), (np.linspace(0.0, 1.0, size),))
    return outputs


def test_the_cache_keeps_the_most_recently_used_executables(monkeypatch):
    monkeypatch.setattr(compiled, "CACHE", {})
    monkeypatch.setattr(compiled, "MAX_EXECUTABLES", 3)
    for size in (2, 3, 4):
        run(size)
    run(2)  # a hit: now the most recently used
    run(5)  # evicts size 3, the least recently used
    assert [key[-1][0][0] for key in compiled.CACHE] == [(4,), (2,), (5,)]
    np.testing.assert_allclose(run(3), np.cumsum(np.sin(x := np.linspace(0, 1, 3)) * np.exp(-x)), rtol=1e-14)
    assert [key[-1][0][0] for key in compiled.CACHE] == [(2,), (5,), (3,)]


def memory_regions() -> int:
    return len(Path("/proc/self/maps").read_text().splitlines())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts /proc/self/maps")
def test_evicted_executables_give_back_their_memory_regions(monkeypatch):
    """Each XLA:CPU executable maps its code in many regions, and Linux allows a process 65 530 of them; an
    unbounded cache crashed a long test worker in the compiler. With the bound the count stays flat."""
    monkeypatch.setattr(compiled, "CACHE", {})
    monkeypatch.setattr(compiled, "MAX_EXECUTABLES", 4)
    run(100)
    first = memory_regions()
    for size in range(101, 104):
        run(size)
    filled = memory_regions()  # four live executables
    for size in range(104, 124):
        run(size)
    assert len(compiled.CACHE) == 4
    per_executable = (filled - first) / 3
    assert per_executable > 10, f"{per_executable} regions per executable: this check would not see a leak"
    assert memory_regions() - filled < 2 * per_executable, "20 more executables compiled, 20 evicted"
