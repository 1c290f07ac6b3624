"""``neurospike sweep`` on real Dask clusters: a LocalCluster of two worker processes, and a `dask scheduler` with
two `dask worker` processes started here as subprocesses. The result equals the in-process run; a worker killed
with SIGKILL mid-sweep is replaced and the result is still equal; a client killed mid-sweep leaves the finished
blocks marked, and the rerun computes only the others."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import psutil
import pytest
import xarray as xr
import zarr

import neurospike as ns

pytestmark = pytest.mark.slow

GRID = {"a": np.linspace(0.02, 0.1, 6), "b": np.linspace(0.2, 0.26, 4)}
SETTINGS = dict(method="rk4", dt=0.01, t_end=500.0, current=10.0, metrics=["count", "rate", "cv", "first_spike"])
CHUNK = 2  # 12 blocks, a fraction of a second each once compiled
CLI_GRID = ["--grid", "a=0.02:0.1:6", "--grid", "b=0.2:0.26:4", "--dt", "0.01", "--t-end", "500",
            "--current", "constant:amplitude=10", "--metrics", "count,rate,cv,first_spike", "--chunk-size", str(CHUNK)]


def _environment():
    """One XLA device per worker process (as the LocalCluster sets it), and the test's own Python path."""
    env = dict(os.environ, NEUROSPIKE_HOST_DEVICES="1")
    env["XLA_FLAGS"] = " ".join(f for f in env.get("XLA_FLAGS", "").split() if "device_count" not in f)
    return env


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    store = tmp_path_factory.mktemp("serial") / "serial.zarr"
    return ns.sweep("izhikevich", GRID, client="serial", chunk_size=CHUNK, store=str(store), **SETTINGS).load()


def _same(dataset, serial):
    for name in SETTINGS["metrics"]:
        np.testing.assert_array_equal(dataset[name].values, serial[name].values, err_msg=name)
    assert int(dataset["chunk_done"].sum()) == dataset["chunk_done"].size


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def cluster():
    """`dask scheduler` and two `dask worker` (one thread each, behind their nannies) on 127.0.0.1."""
    port = _free_port()
    env = _environment()
    processes = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                                   "--port", str(port), "--no-dashboard"], env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)]
    address = f"tcp://127.0.0.1:{port}"
    for _ in range(2):
        processes.append(subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads",
                                           "1", "--no-dashboard", "--host", "127.0.0.1"], env=env,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    from distributed import Client

    with Client(address, timeout="60s") as client:
        client.wait_for_workers(2, timeout=120)
    yield address
    for process in processes[::-1]:
        for child in psutil.Process(process.pid).children(recursive=True):
            child.kill()
        process.kill()
        process.wait(timeout=30)


def _cli(store, *extra, env=None):
    return subprocess.Popen([sys.executable, "-m", "neurospike.cli", "sweep", "izhikevich", *CLI_GRID, "--out",
                             str(store), *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env or os.environ.copy())


def _done(store) -> int:
    try:
        return int(np.sum(zarr.open_group(str(store), mode="r")["chunk_done"][...]))
    except (FileNotFoundError, KeyError, ValueError):
        return 0


def _worker_pids(check) -> set[int]:
    """The pids of the processes that run the tasks, as the scheduler knows them (a nanny's first child is
    multiprocessing's resource tracker, not the worker)."""
    return set(check.run_on_scheduler(lambda dask_scheduler: [w.pid for w in dask_scheduler.workers.values()]))


def _worker_processes(address) -> list[psutil.Process]:
    from distributed import Client

    with Client(address, timeout="60s") as check:
        return [psutil.Process(pid) for pid in sorted(_worker_pids(check))]


def _wait_for_replacements(check, killed: set[int]) -> None:
    """Until the nannies' new worker processes have joined in place of the ``killed`` ones."""
    _wait_for(lambda: len(pids := _worker_pids(check)) == 2 and not pids & killed, 120)


def _wait_for(condition, timeout=240.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)  # the workers freeze within one poll of the first block done: keep it short


def test_a_local_cluster_gives_the_serial_result(serial, tmp_path):
    messages = []
    dataset = ns.sweep("izhikevich", GRID, workers=2, chunk_size=CHUNK, store=str(tmp_path / "local.zarr"),
                       log=messages.append, **SETTINGS)
    _same(dataset, serial)
    assert messages and "dashboard http://" in messages[0]


def test_a_worker_killed_mid_sweep_is_replaced_and_the_result_is_the_same(serial, cluster, tmp_path):
    """The workers freeze once a block is done, so the kill lands mid-sweep however fast the blocks run."""
    address = cluster
    store = tmp_path / "killed.zarr"
    victim, other = _worker_processes(address)
    client = _cli(store, "--scheduler", address)
    _wait_for(lambda: _done(store) >= 1)
    for process in (victim, other):
        process.suspend()
    assert _done(store) < 12
    victim.kill()
    other.resume()
    out, err = client.communicate(timeout=300)
    assert client.returncode == 0, err
    assert "12 block(s) computed, 0 already done" in out
    _same(xr.open_zarr(store, consolidated=False), serial)
    from distributed import Client

    with Client(address, timeout="60s") as check:  # the nanny started a new worker process in its place
        _wait_for_replacements(check, {victim.pid})


def test_a_rerun_after_the_client_died_computes_only_the_missing_blocks(serial, cluster, tmp_path):
    """Blocks take milliseconds once compiled, so a client killed after some blocks could otherwise see the
    workers finish every block before the scheduler drops them (CI, 28 Nov: 12 of 12 done). The workers are
    frozen (SIGSTOP) first, the client killed, and once the scheduler holds no task the frozen workers are killed
    too: the blocks done are exactly those marked when the workers froze."""
    address = cluster
    store = tmp_path / "resumed.zarr"
    frozen = _worker_processes(address)
    client = _cli(store, "--scheduler", address)
    _wait_for(lambda: _done(store) >= 1)
    for process in frozen:
        process.suspend()
    client.send_signal(signal.SIGKILL)
    client.wait(timeout=30)
    from distributed import Client

    with Client(address, timeout="60s") as check:
        _wait_for(lambda: check.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks)) == 0, 60)
        for process in frozen:
            process.kill()
        done = _done(store)
        assert 1 <= done < 12
        _wait_for_replacements(check, {process.pid for process in frozen})
    rerun = _cli(store, "--scheduler", address)
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err
    assert f"{12 - done} block(s) computed, {done} already done" in out
    _same(xr.open_zarr(store, consolidated=False), serial)
