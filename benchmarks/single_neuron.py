"""Single-neuron benchmark: Izhikevich (2007) regular-spiking cell, rk4, dt 0.01 ms, 1000 ms (100 000 steps).

Targets (issue "Benchmarks"): run time <= 5 ms after compile; cold CLI <= 3 s.

    .venv/bin/python benchmarks/single_neuron.py

Prints min-of-N ``Trajectory.run_time_s`` (the compiled loop only) for both event modes, then times the CLI
``neurospike simulate izhikevich2007 --method rk4 --dt 0.01`` twice in fresh processes: first with an empty
compilation cache (cold), then again with the cache the first run filled (NEUROSPIKE_CACHE points both at
one fresh directory).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

RUN_TARGET_S = 0.005
CLI_TARGET_S = 3.0


def time_api(repeats: int) -> None:
    import neurospike

    for events in ("located", "step"):
        runs = [neurospike.simulate("izhikevich2007", preset="rs", method="rk4", dt=0.01, t_end=1000.0,
                                    events=events) for _ in range(repeats + 1)]
        first, best = runs[0], min(r.run_time_s for r in runs[1:])
        verdict = "ok" if best <= RUN_TARGET_S else "SLOWER than target"
        print(f"simulate rs rk4 dt=0.01 1000 ms events={events:8s} compile {first.compile_time_s:6.3f} s  "
              f"run {best * 1e3:7.3f} ms (min of {repeats}; target <= {RUN_TARGET_S * 1e3:g} ms: {verdict})  "
              f"spikes {len(runs[-1].spikes)}")


def time_cli() -> None:
    cli = os.path.join(os.path.dirname(sys.executable), "neurospike")
    if not os.path.exists(cli):
        print(f"CLI {cli} not found: skipped")
        return
    cache = tempfile.mkdtemp(prefix="neurospike_bench_cache_")
    out = os.path.join(cache, "rs.json")
    env = {**os.environ, "NEUROSPIKE_CACHE": cache}
    command = [cli, "simulate", "izhikevich2007", "--method", "rk4", "--dt", "0.01", "--out", out]
    try:
        for label in ("cold (empty cache)", "warm (persistent cache)"):
            began = time.perf_counter()
            result = subprocess.run(command, env=env, capture_output=True, text=True)
            elapsed = time.perf_counter() - began
            if result.returncode:
                print(f"CLI {label}: failed ({(result.stderr or result.stdout).strip().splitlines()[-1:]})")
                return
            verdict = "ok" if elapsed <= CLI_TARGET_S else "SLOWER than target"
            print(f"CLI simulate izhikevich2007 rk4 dt=0.01, {label:24s} {elapsed:6.2f} s "
                  f"(target <= {CLI_TARGET_S:g} s: {verdict})")
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--no-cli", action="store_true")
    args = parser.parse_args(argv)
    print(f"# load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    time_api(args.repeats)
    if not args.no_cli:
        time_cli()


if __name__ == "__main__":
    main()
