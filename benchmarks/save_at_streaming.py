"""save_at streaming: time and peak memory of one neuron saved at a few times, streamed (``simulate(...,
save_at=...)``, one segment of steps in memory) against the whole run (the grid and trace of every step, then
sampled at save_at: what ``simulate`` did before streaming, ``methods._one_neuron`` + ``Trajectory.at``).

    .venv/bin/python benchmarks/save_at_streaming.py [--steps 1e7,1e8] [--whole-up-to 1e7] [--long 1e9]

Izhikevich (2003) default input, rk4, located events, t_end 1000 ms, dt = 1000 / steps. Each configuration runs
in a fresh process; the figures are its wall time for the call (compile included), ``run_time_s`` (the compiled
loops only) and its peak resident memory (``ru_maxrss``, which includes ~0.4 GB of Python, JAX and XLA).
``--long`` starts a run of that many steps and stops it (from the progress callback) after ``--long-segments``
segments: it shows the run is accepted and its memory stays flat, and the rate extrapolates its time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time
import numpy as np
import neurospike as ns
from neurospike import methods
from neurospike.simulate import resolve

mode, steps, segments = sys.argv[1], int(float(sys.argv[2])), int(sys.argv[3])
call = dict(model="izhikevich", t_end=1000.0, dt=1000.0 / steps, save_at=[250.0, 500.0, 1000.0])
began = time.perf_counter()
if mode == "whole":
    problem = resolve(call.pop("model"), **call)
    run = methods._one_neuron(methods.get("rk4"), problem).at(problem.save_at)
    reached, spikes, run_time = 1000.0, len(run.spikes), run.run_time_s
else:
    class Stop(Exception):
        pass
    done = []
    def progress(t, loss):
        done.append((t, time.perf_counter()))
        if segments and len(done) >= segments:
            raise Stop
    try:
        run = ns.simulate(**call, method="rk4", progress=progress)
        reached, spikes, run_time = 1000.0, len(run.spikes), run.run_time_s
    except Stop:
        # the rate after the first segment (which includes the compilation)
        reached, spikes, run_time = done[-1][0], None, (done[-1][1] - done[0][1]) / (done[-1][0] - done[0][0])
wall = time.perf_counter() - began
print(json.dumps(dict(wall=wall, run_time=run_time, reached=reached, spikes=spikes,
                      maxrss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)))
"""


def measure(mode: str, steps: float, segments: int = 0) -> dict:
    env = dict(os.environ, JAX_PLATFORMS=os.environ.get("JAX_PLATFORMS", "cpu"))
    out = subprocess.run([sys.executable, "-c", CHILD, mode, str(steps), str(segments)], env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", default="1e7", help="comma-separated step counts (default 1e7)")
    parser.add_argument("--whole-up-to", type=float, default=1e7, help="run the whole-grid path up to this many steps")
    parser.add_argument("--long", type=float, default=1e9, help="steps of the run started and stopped (0: none)")
    parser.add_argument("--long-segments", type=int, default=100, help="segments run of the --long run")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f}")
    print(f"{'steps':>8s} {'path':9s} {'wall s':>8s} {'run s':>8s} {'ns/step':>8s} {'peak RSS MB':>12s} spikes")
    for steps in (float(s) for s in args.steps.split(",")):
        for mode in ("streamed", "whole") if steps <= args.whole_up_to else ("streamed",):
            r = measure(mode, steps)
            print(f"{steps:8.0e} {mode:9s} {r['wall']:8.2f} {r['run_time']:8.2f} {r['run_time'] / steps * 1e9:8.1f} "
                  f"{r['maxrss_mb']:12.0f} {r['spikes']}")
    if args.long:
        r = measure("streamed", args.long, args.long_segments)
        done = r["reached"] / 1000.0 * args.long
        per_step = r["run_time"] * 1000.0 / args.long  # wall seconds per step after the first segment
        print(f"{args.long:8.0e} streamed: stopped after {args.long_segments} segments ({done:.3g} steps, "
              f"t = {r['reached']:.4g} ms) in {r['wall']:.1f} s wall, peak RSS {r['maxrss_mb']:.0f} MB; "
              f"{per_step * 1e9:.1f} ns/step after the first segment: the whole run would take "
              f"{per_step * args.long:.0f} s")


if __name__ == "__main__":
    main()
