"""Sweep benchmark (docs/sweep.md): what running a parameter map as Dask tasks costs against one in-process
population run, and the headline maps.

    .venv/bin/python benchmarks/sweep.py [--cases overhead,fo-lif,fo-hh] [--out docs/]

* ``overhead``: Izhikevich (2003) over the (a, b) plane, 200 × 200 = 40 000 neurons, c = −65, d = 8, rk4, dt
  0.1 ms, 1000 ms, constant input 10, v(0) = −65, u(0) = b·v(0) (Izhikevich 2003's own start). (1) ``ns.simulate`` of the 40 000
  neurons at once in this process (XLA sees one device per core), spike times recorded, then the same four
  metrics computed from them; (2) ``ns.sweep`` on a LocalCluster of 2 one-thread worker processes, 4096 points
  per task, count, rate, cv and first_spike written to zarr, (a) the cluster started inside the timing, (b) an
  already running cluster; (3) the pattern class over (a, b) at RS's reset (c = −65, d = 8) and over (c, d) at RS's
  recovery (a = 0.02, b = 0.2): the two planes of Izhikevich 2003, Fig. 2.
  Target: (2b) within 15 % of (1).
* ``fo-lif`` / ``fo-hh``: firing rate over (I, α) with fast-l1 (a vectorised α axis), on the LocalCluster.

Every figure is from this run on this machine (its processor is printed); compile times are inside the walls.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import neurospike as ns
from neurospike import maps

A = np.linspace(0.0, 0.12, 200)
B = np.linspace(0.1, 0.3, 200)
IZHIKEVICH = dict(method="rk4", dt=0.1, t_end=1000.0, current=10.0)
RS_RESET = {"c": -65.0, "d": 8.0}  # Izhikevich 2003, Fig. 2: the (a, b) plane at RS's reset
RS_RECOVERY = {"a": 0.02, "b": 0.2}  # and the (c, d) plane at RS's recovery
C = np.linspace(-70.0, -45.0, 200)
D = np.linspace(0.0, 10.0, 200)
METRICS = ["count", "rate", "cv", "first_spike"]


def processor() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()}, {os.cpu_count()} cores"
    except OSError:
        pass
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"


def in_process() -> tuple[float, dict]:
    """The 40 000 neurons as one population run here, and the metrics from its spikes."""
    a, b = (x.ravel() for x in np.meshgrid(A, B, indexing="ij"))
    began = time.perf_counter()
    run = ns.simulate("izhikevich", params={"a": a, "b": b, **RS_RESET}, initial={"v": -65.0, "u": -65.0 * b},
                      save_at=[IZHIKEVICH["t_end"]], max_recorded_spikes=300 * a.size, **IZHIKEVICH)
    assert len(run.spikes) == int(np.sum(run.spike_counts)), "raise max_recorded_spikes"
    trains, counts = maps._trains(run, a.size, 0.0, IZHIKEVICH["t_end"])
    block = maps.Block(trains, counts, 0.0, IZHIKEVICH["t_end"], run)
    values = {name: maps.METRICS[name].compute(block) for name in METRICS}
    return time.perf_counter() - began, {"compile": run.compile_time_s, "run": run.run_time_s, **values}


class Printed(list):
    """The case's lines, each printed as soon as it is known."""

    def append(self, line: str) -> None:
        print(line, flush=True)
        super().append(line)


def _classes(dataset) -> str:
    codes, counts = np.unique(dataset["pattern"].values, return_counts=True)
    return "classes: " + ", ".join(f"{maps.PATTERN_CLASSES[c]} {n}" for c, n in zip(codes, counts))


def _difference(a, b) -> float:
    """max |a − b| over the points where either is a number (inf where only one is)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    both = ~(np.isnan(a) & np.isnan(b))
    return float(np.max(np.abs(np.where(both, a - b, 0.0)), initial=0.0))


def overhead(out: Path) -> list[str]:
    from distributed import Client, LocalCluster

    lines = Printed()
    wall_here, here = in_process()
    lines.append(f"in-process population run + metrics: {wall_here:.2f} s (compile {here['compile']:.2f} s, "
                 f"loop {here['run']:.2f} s)")
    with tempfile.TemporaryDirectory() as tmp:
        began = time.perf_counter()
        dataset = ns.sweep("izhikevich", {"a": A, "b": B}, metrics=METRICS, workers=2, store=f"{tmp}/cold.zarr",
                           params=RS_RESET, **IZHIKEVICH)
        wall_cold = time.perf_counter() - began
        differences = ", ".join(f"{n} {_difference(dataset[n].values.ravel(), here[n]):.2g}" for n in METRICS)
        lines.append(f"ns.sweep, LocalCluster started inside: {wall_cold:.2f} s "
                     f"({wall_cold / wall_here:.2f} x the in-process run); largest difference from the in-process "
                     f"run: {differences}")
        flags = " ".join(f for f in os.environ.get("XLA_FLAGS", "").split() if "device_count" not in f)
        with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=":0",
                          env={"NEUROSPIKE_HOST_DEVICES": "1", "XLA_FLAGS": flags}) as cluster, \
                Client(cluster) as client:
            client.run(lambda: __import__("neurospike"))  # the workers import neurospike and jax once
            began = time.perf_counter()
            dataset = ns.sweep("izhikevich", {"a": A, "b": B}, metrics=METRICS, client=client,
                               store=f"{tmp}/warm.zarr", params=RS_RESET, **IZHIKEVICH)
            wall_warm = time.perf_counter() - began
            lines.append(f"ns.sweep on a running LocalCluster: {wall_warm:.2f} s "
                         f"({100 * (wall_warm / wall_here - 1):+.1f} % against the in-process run; "
                         f"{dataset.attrs['chunks_computed']} tasks, {dataset.attrs['neuron_steps_per_s']:.3g} "
                         f"neuron-steps/s)")
            began = time.perf_counter()
            patterns = ns.sweep("izhikevich", {"a": A, "b": B}, metrics=["pattern", "rate"], client=client,
                                store=f"{tmp}/pattern.zarr", params=RS_RESET, **IZHIKEVICH)
            wall_pattern = time.perf_counter() - began
            lines.append(f"(a, b) with the pattern class: {wall_pattern:.2f} s; " + _classes(patterns))
            maps.plot_map(patterns, out / "sweep_izhikevich_ab.png")
            began = time.perf_counter()
            plane = ns.sweep("izhikevich", {"c": C, "d": D}, metrics=["pattern", "rate"], client=client,
                             store=f"{tmp}/cd.zarr", params=RS_RECOVERY, **IZHIKEVICH)
            lines.append(f"(c, d) with the pattern class: {time.perf_counter() - began:.2f} s; " + _classes(plane))
            maps.plot_map(plane, out / "sweep_izhikevich_cd.png")
        for name, (c, d) in {"RS": (-65, 8), "IB": (-55, 4), "CH": (-50, 2)}.items():
            code = int(plane["pattern"].sel(c=c, d=d, method="nearest"))
            lines.append(f"Izhikevich 2003 {name} (c = {c}, d = {d}): {maps.PATTERN_CLASSES[code]}")
    return lines


def fractional(name: str, out: Path) -> list[str]:
    model, grid, settings = {
        "fo-lif": ("lif", {"I": np.linspace(0.0, 6.0, 61), "alpha": np.linspace(0.5, 1.0, 51)},
                   dict(method="fast-l1", dt=0.1, t_end=1000.0)),
        "fo-hh": ("hh", {"I": np.linspace(0.0, 20.0, 41), "alpha": np.linspace(0.6, 1.0, 21)},
                  dict(method="fast-l1", dt=0.02, t_end=500.0)),
    }[name]
    with tempfile.TemporaryDirectory() as tmp:
        began = time.perf_counter()
        dataset = ns.sweep(model, grid, metrics=["rate", "first_spike"], workers=2, store=f"{tmp}/{name}.zarr",
                           **settings)
        wall = time.perf_counter() - began
        maps.plot_map(dataset, out / f"sweep_{name.replace('-', '_')}.png")
    points = int(np.prod([len(v) for v in grid.values()]))
    return [f"{name}: {points} points, {settings}, {wall:.1f} s wall on 2 workers "
            f"({dataset.attrs['neuron_steps_per_s']:.3g} neuron-steps/s)"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="overhead,fo-lif,fo-hh")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "docs"))
    args = parser.parse_args()
    out = Path(args.out)
    print(f"machine: {processor()}; jax {__import__('jax').__version__}, devices {__import__('jax').devices()}")
    for case in args.cases.split(","):
        print(f"[{case}]", flush=True)
        for line in (overhead(out) if case == "overhead" else fractional(case, out)):
            if case != "overhead":
                print(line, flush=True)


if __name__ == "__main__":
    sys.exit(main())
