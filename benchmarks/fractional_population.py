"""fast-l1 FO-LIF populations (docs/fractional.md, "Populations"): 1000 ms at dt 0.1 ms, N = 1, 1000, 10000
neurons, α spread over 0.5 … 1 (11 distinct values, 0.5, 0.55, …, 1.0, repeated over the neurons), constant input
3 … 6 nA spread over the neurons, states saved at 0, 500 and 1000 ms; the run time of the second call (after
compile). ``python benchmarks/fractional_population.py 1 1000 10000``."""

import sys

import numpy as np

import neurospike as ns
from neurospike import currents

for n in [int(arg) for arg in sys.argv[1:]] or [1, 1000, 10000]:
    alpha = np.round(0.5 + 0.05 * (np.arange(n) % 11), 10) if n > 1 else 0.75
    amplitude = np.linspace(3.0, 6.0, n) if n > 1 else 4.5
    settings = dict(method="fast-l1", dt=0.1, t_end=1000.0, alpha=alpha, current=currents.constant(amplitude))
    if n > 1:
        settings["save_at"] = [0.0, 500.0, 1000.0]
    first = ns.simulate("lif", **settings)
    run = ns.simulate("lif", **settings)
    spikes = int(np.sum(run.spike_counts)) if run.spike_counts is not None else len(run.spikes)
    print(f"N = {n}: run {run.run_time_s:.3f} s after compile (compile {first.compile_time_s:.1f} s), "
          f"{spikes} spikes", flush=True)
