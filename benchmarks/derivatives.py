"""Cost of derivatives through a run (``neurospike.differentiable``), compiled with its ``jit``.

    .venv/bin/python benchmarks/derivatives.py

Prints min-of-N wall times (after one compiling call) of the run, one forward-mode jvp, a forward-mode Jacobian
and reverse-mode ``jax.grad`` for: Izhikevich (2007) RS, rk4 and backward-euler, dt 0.01 ms, 1000 ms (10^5
steps, 6 spike times); fractional LIF (α = 0.8, 5 nA), fast-l1, dt 0.01 ms, 1000 ms (10^5 steps), in α, C, g_L
and the input.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp

import neurospike as ns
from neurospike.differentiable import jit


def best_time(function, *args, repeats):
    jax.block_until_ready(function(*args))  # compiles
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        jax.block_until_ready(function(*args))
        times.append(time.perf_counter() - began)
    return min(times)


def report(label, seconds):
    print(f"{label:60s} {seconds * 1e3:9.1f} ms")


def main(repeats: int) -> None:
    rs = {"a": 0.03, "b": -2.0, "c": -50.0, "d": 100.0, "k": 0.7}
    for method in ("rk4", "backward-euler"):
        forward = ns.differentiable("izhikevich2007", preset="rs", method=method, dt=0.01, save_at=[1000.0],
                                    max_spikes=6)
        reverse = ns.differentiable("izhikevich2007", preset="rs", method=method, dt=0.01, save_at=[1000.0],
                                    max_spikes=6, mode="reverse")
        spikes = lambda p, run=forward: run(p, {}, 70.0)[1]  # noqa: E731
        report(f"RS {method}: run", best_time(jit(spikes), rs, repeats=repeats))
        report(f"RS {method}: one jvp (d spikes / d a)",
               best_time(jit(lambda p: jax.jvp(spikes, (p,), ({**{k: 0.0 for k in p}, "a": 1.0},))[1]), rs,
                         repeats=repeats))
        report(f"RS {method}: 6 x 5 Jacobian (jacfwd)", best_time(jit(jax.jacfwd(spikes)), rs, repeats=repeats))
        report(f"RS {method}: jax.grad of the 6th spike (mode='reverse')",
               best_time(jit(jax.grad(lambda p: reverse(p, {}, 70.0)[1][5])), rs, repeats=repeats))

    lif = {"C": 1.0, "g_L": 0.1, "E_L": -70.0, "v_th": -50.0, "v_reset": -70.0}
    run = ns.differentiable("lif", method="fast-l1", alpha=0.8, dt=0.01, t_end=1000.0, save_at=[1000.0],
                            max_spikes=100)

    def fo_spikes(point):
        point = dict(point)
        current, alpha = point.pop("I"), point.pop("alpha")
        return run({**lif, **point}, {}, current, alpha)[1]

    point = {"alpha": 0.8, "C": 1.0, "g_L": 0.1, "I": 5.0}
    report("FO-LIF fast-l1 (10^5 steps): run", best_time(jit(fo_spikes), point, repeats=repeats))
    report("FO-LIF fast-l1: one jvp (d spikes / d alpha)",
           best_time(jit(lambda p: jax.jvp(fo_spikes, (p,), ({**{k: 0.0 for k in p}, "alpha": 1.0},))[1]), point,
                     repeats=repeats))
    report("FO-LIF fast-l1: Jacobian in (alpha, C, g_L, I) (jacfwd)",
           best_time(jit(jax.jacfwd(fo_spikes)), point, repeats=repeats))
    count = int(jnp.sum(~jnp.isnan(jit(fo_spikes)(point))))
    print(f"(FO-LIF: {count} spikes; simulate's fast-l1 run of the same case: "
          f"{min(ns.simulate('lif', method='fast-l1', alpha=0.8, dt=0.01, t_end=1000.0, params=lif, current=5.0).run_time_s for _ in range(repeats)) * 1e3:.1f} ms)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    main(parser.parse_args().repeats)
