"""The same 100 000-neuron Izhikevich (2003) population in Brian2, for the population benchmark.

    dv/dt = (0.04 v² + 5 v + 140 − u + I)/ms,   du/dt = a (b v − u)/ms,   v ≥ 30: v ← c, u ← u + d

rk4, dt 0.1 ms, per-neuron a, b, c, d, I from ``population_kernels.network_parameters`` (the same numbers the
JAX kernels get), spikes counted per neuron in a variable (no SpikeMonitor buffers). Needs the benchmark venv
(Brian2 needs numpy < 2.4): ``.venv-bench/bin/python benchmarks/brian2_izhikevich.py``.

Run time excludes code generation and compilation: each target is run for two durations and the time per
simulated ms is the difference (cython: the second run of a network; cpp_standalone: Brian2's own
``device._last_run_time``, which times the compiled main loop only).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from population_kernels import network_parameters  # noqa: E402

EQUATIONS = """
dv/dt = (0.04*v**2 + 5*v + 140 - u + I)/ms : 1
du/dt = a*(b*v - u)/ms : 1
a : 1 (constant)
b : 1 (constant)
c : 1 (constant)
d : 1 (constant)
I : 1 (constant)
count : integer
"""


def build(brian2, p, n):
    group = brian2.NeuronGroup(n, EQUATIONS, method="rk4", threshold="v >= 30", reset="v = c; u += d; count += 1",
                               dt=0.1 * brian2.ms)
    for name in ("a", "b", "c", "d", "I"):
        setattr(group, name, p[name])
    group.v = -65.0
    group.u = p["b"] * -65.0
    return group


def run_cython(n: int, t_end: float) -> tuple[float, np.ndarray]:
    """Seconds of run time per ``t_end`` ms (cython, 1 thread, compile excluded) and the spike counts."""
    import brian2
    brian2.set_device("runtime")
    brian2.prefs.codegen.target = "cython"
    p = network_parameters(n)
    brian2.start_scope()
    group = build(brian2, p, n)
    net = brian2.Network(group)
    net.run(1 * brian2.ms)                      # compiles and caches the cython code
    began = time.perf_counter()
    net.run(t_end * brian2.ms - 1 * brian2.ms)
    elapsed = time.perf_counter() - began
    return elapsed * t_end / (t_end - 1.0), np.asarray(group.count[:])


def run_cpp_standalone(n: int, t_end: float, threads: int) -> tuple[float, np.ndarray]:
    """Seconds of the compiled main loop for ``t_end`` ms (cpp_standalone, OpenMP ``threads``) and counts."""
    import brian2
    directory = tempfile.mkdtemp(prefix="brian2_izh_")
    try:
        brian2.set_device("cpp_standalone", directory=directory, build_on_run=False)
        brian2.prefs.devices.cpp_standalone.openmp_threads = threads
        p = network_parameters(n)
        group = build(brian2, p, n)
        brian2.run(t_end * brian2.ms)
        brian2.device.build(directory=directory, compile=True, run=True, debug=False)
        seconds = float(brian2.device._last_run_time)
        counts = np.asarray(group.count[:])
        brian2.device.reinit()
        brian2.device.activate()
        return seconds, counts
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("target", choices=("cython", "cpp_standalone"))
    parser.add_argument("--neurons", type=int, default=100_000)
    parser.add_argument("--t-end", type=float, default=1000.0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    if args.target == "cython":
        seconds, counts = run_cython(args.neurons, args.t_end)
    else:
        seconds, counts = run_cpp_standalone(args.neurons, args.t_end, args.threads)
    steps = round(args.t_end / 0.1)
    print(f"brian2 {args.target} threads={1 if args.target == 'cython' else args.threads} run_s={seconds:.3f} "
          f"ns_per_neuron_step={seconds / (args.neurons * steps) * 1e9:.2f} spikes={int(counts.sum())}")


if __name__ == "__main__":
    main()
