"""Population benchmark: 100 000 Izhikevich (2003) neurons, per-neuron a, b, c, d, I, rk4, dt 0.1 ms, 1000 ms,
spikes counted, float64 — JAX against Brian2 (cpp_standalone with 2 OpenMP threads, and cython), one table.

Run in the benchmark venv (Brian2 needs numpy < 2.4, which the main venv does not allow):

    .venv-bench/bin/python benchmarks/population.py            # JAX + both Brian2 targets
    .venv-bench/bin/python benchmarks/population.py --no-brian2

Times are after compilation, min over ``--repeats`` (Brian2: see ``brian2_izhikevich.py``). Each Brian2 target
runs in its own process. The machine may be shared: the CPU-time column of the JAX rows shows what the
kernel costs regardless of other load.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time

os.environ["XLA_FLAGS"] = " ".join(
    [os.environ.get("XLA_FLAGS", ""), "--xla_force_host_platform_device_count=2"]).strip()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from population_kernels import (initial_state, network_parameters, packed_blocked,  # noqa: E402
                                packed_scan, scan_two_arrays, sharded)

jax.config.update("jax_enable_x64", True)
OPTIONS = {"xla_cpu_prefer_vector_width": 512}
FAST_MATH = {f"xla_cpu_{name}": True for name in (
    "enable_fast_math", "fast_math_honor_nans", "fast_math_honor_infs", "fast_math_honor_division",
    "fast_math_honor_functions")}


def time_jax(kernel, p, v, u, steps, dt, repeats, dtype="float64", options=OPTIONS):
    p = {k: jnp.asarray(x, dtype) for k, x in p.items()}
    v, u = jnp.asarray(v, dtype), jnp.asarray(u, dtype)
    compiled = jax.jit(lambda p, v, u: kernel(p, v, u, steps, dt)).lower(p, v, u).compile(compiler_options=options)
    wall, cpu = [], []
    for _ in range(repeats):
        began, began_cpu = time.perf_counter(), time.process_time()
        counts = jax.block_until_ready(compiled(p, v, u))
        wall.append(time.perf_counter() - began)
        cpu.append(time.process_time() - began_cpu)
    return min(wall), min(cpu), int(np.asarray(counts).sum())


def time_neurospike(p, v, u, t_end, dt, repeats):
    """The package API, if this build supports populations (else None)."""
    try:
        import inspect

        import neurospike
        from neurospike import currents
        # Only counts are wanted: keep the state at t_end only, and no spike-time buffers if the API allows.
        options = {"save_at": [t_end]}
        if "max_recorded_spikes" in inspect.signature(neurospike.simulate).parameters:
            options["max_recorded_spikes"] = 0
        best, spikes = None, None
        for _ in range(repeats + 1):  # the first run compiles
            trajectory = neurospike.simulate(
                "izhikevich", method="rk4", dt=dt, t_end=t_end, events="step",
                params={k: p[k] for k in ("a", "b", "c", "d")}, current=currents.constant(p["I"]),
                initial={"v": v, "u": u}, **options)
            best = trajectory.run_time_s if best is None else min(best, trajectory.run_time_s)
            spikes = getattr(trajectory, "spike_counts", None)
            spikes = int(np.sum(spikes)) if spikes is not None else len(trajectory.spikes)
        return best, spikes
    except Exception as error:  # population support may not exist yet in this build
        print(f"# neurospike.simulate population path unavailable: {type(error).__name__}: {str(error)[:160]}")
        return None


def time_brian2(target, neurons, t_end, threads=2):
    command = [sys.executable, os.path.join(HERE, "brian2_izhikevich.py"), target, "--neurons", str(neurons),
               "--t-end", str(t_end), "--threads", str(threads)]
    result = subprocess.run(command, capture_output=True, text=True)
    found = re.search(r"run_s=([0-9.]+) .* spikes=(\d+)", result.stdout)
    if result.returncode or not found:
        print(f"# brian2 {target} failed: {(result.stderr or result.stdout).strip().splitlines()[-1:]}")
        return None
    return float(found.group(1)), int(found.group(2))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--neurons", type=int, default=100_000)
    parser.add_argument("--t-end", type=float, default=1000.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-brian2", action="store_true")
    parser.add_argument("--openmp-threads", default="2",
                        help="comma-separated OpenMP thread counts for Brian2 cpp_standalone (default 2)")
    parser.add_argument("--float32", action="store_true", help="also time the float32 kernel")
    parser.add_argument("--fast-math", action="store_true",
                        help="also time the float64 kernel compiled with fast math (NaN/Inf still honoured)")
    args = parser.parse_args(argv)
    dt = 0.1
    steps = round(args.t_end / dt)
    work = args.neurons * steps
    p = network_parameters(args.neurons)
    v, u = initial_state(p)
    rows = []  # (name, wall s, cpu s or None, spikes)

    def add(name, result):
        if result is not None:
            rows.append((name, *result) if len(result) == 3 else (name, result[0], None, result[1]))
            print(f"# {name}: {rows[-1][1]:.3f} s", flush=True)

    block = lambda p, v, u, s, dt: packed_blocked(p, v, u, s, dt, 1024)  # noqa: E731
    add("jax packed+blocked, 2 devices", time_jax(
        lambda p, v, u, s, dt: sharded(lambda a, b, c: block(a, b, c, s, dt), 2)(p, v, u), p, v, u, steps, dt,
        args.repeats))
    add("jax packed+blocked, 1 device", time_jax(block, p, v, u, steps, dt, args.repeats))
    if args.float32:
        add("jax packed+blocked, 2 devices, float32", time_jax(
            lambda p, v, u, s, dt: sharded(lambda a, b, c: block(a, b, c, s, dt), 2)(p, v, u), p, v, u, steps,
            dt, args.repeats, "float32"))
    if args.fast_math:
        add("jax packed+blocked, 1 device, fast-math", time_jax(block, p, v, u, steps, dt, args.repeats,
                                                                 options={**OPTIONS, **FAST_MATH}))
    add("jax packed scan (whole population)", time_jax(packed_scan, p, v, u, steps, dt, args.repeats))
    add("jax plain lax.scan (obvious)", time_jax(scan_two_arrays, p, v, u, steps, dt, 1, options=None))
    add("neurospike.simulate (population API)", time_neurospike(p, v, u, args.t_end, dt, args.repeats))
    if not args.no_brian2:
        for threads in (int(x) for x in args.openmp_threads.split(",")):
            add(f"brian2 cpp_standalone, {threads} OpenMP thread{'s' * (threads > 1)}",
                time_brian2("cpp_standalone", args.neurons, args.t_end, threads))
        add("brian2 cython, 1 thread", time_brian2("cython", args.neurons, args.t_end))

    brian = {name: wall for name, wall, _, _ in rows if name.startswith("brian2")}
    print(f"\nN={args.neurons} neurons, {steps} rk4 steps of {dt} ms, float64 unless noted; "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    header = f"{'implementation':42s} {'run s':>7s} {'ns/neuron-step':>15s} {'CPU ns':>7s} {'spikes':>9s}"
    short = {name: name.replace("brian2 ", "").replace("cpp_standalone", "cpp").replace(" OpenMP", "")
             .replace(" threads", "t").replace(" thread", "t").replace(",", "") for name in brian}
    header += "".join(f" {'vs ' + short[name]:>14s}" for name in brian)
    print(header)
    for name, wall, cpu, spikes in rows:
        cpu_text = f"{cpu / work * 1e9:7.2f}" if cpu is not None else f"{'':7s}"
        line = f"{name:42s} {wall:7.3f} {wall / work * 1e9:15.2f} {cpu_text} {spikes:9d}"
        line += "".join(f" {b / wall:13.2f}x" for b in brian.values())
        print(line)


if __name__ == "__main__":
    main()
