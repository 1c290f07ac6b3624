import os
import socket
from pathlib import Path

import hypothesis
import jax
import pytest

jax.config.update("jax_enable_x64", True)
# Compiled programs persist in .pytest-jax-cache/ (git-ignored; the browser tests' app uses it too): a second run
# of the suite skips most XLA compilation, which is most of the time of the fast tests.
JAX_CACHE = str(Path(__file__).resolve().parents[1] / ".pytest-jax-cache")
jax.config.update("jax_compilation_cache_dir", JAX_CACHE)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.1)
# and the CLI subprocesses, Dask workers and serial sweeps of the tests too, not the user's ~/.cache/neurospike
os.environ.setdefault("NEUROSPIKE_CACHE", JAX_CACHE)


@pytest.fixture(autouse=True, scope="module")
def free_compiled_executables():
    """After each test module, drop the compiled executables it left in jax's caches and neurospike's. Each one
    holds ~170 memory regions and Linux allows a process 65 530 (vm.max_map_count): a test worker that kept every
    executable of half the suite died in the XLA compiler with a segmentation fault (neurospike.compiled).
    Measured: make check took 5 min 22 s with this and 5 min 27 s without."""
    yield
    from neurospike import compiled

    compiled.CACHE.clear()
    jax.clear_caches()


CHROMIUM = "/usr/bin/chromium"  # Debian's chromium (apt-get install -y chromium); never `playwright install`
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]  # as in DEVELOPERS.md


def free_port() -> int:
    """A TCP port nothing listens on now (for an app started by a test)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def browser():
    """Headless chromium driven by playwright, one per test module; the test is skipped without them."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"Debian's chromium is not installed at {CHROMIUM}: apt-get install -y chromium (make test does)")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


# Hypothesis: the default profile is derandomized (the same examples on every machine and every run, so CI is
# reproducible); `pytest --hypothesis-profile=explore` searches fresh random examples, many more of them.
hypothesis.settings.register_profile("reproducible", max_examples=40, deadline=None, derandomize=True, database=None)
hypothesis.settings.register_profile("explore", max_examples=2000, deadline=None)
hypothesis.settings.load_profile("reproducible")
