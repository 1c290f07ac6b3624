"""A population in one call: 1000 Izhikevich (2003) neurons, each with its own a, b, c, d and input current
(the excitatory cells of Izhikevich's 2003 network), integrated together with RK4 and located spike events.
Parameters given as arrays of length N make a population; the result holds every spike as (time, neuron)
pairs and the count per neuron, and the states at the requested times.

Run: python examples/population.py [OUTPUT_DIR]
"""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import neurospike as ns
from _output import output_dir

out = output_dir()
n = 1000
rng = np.random.default_rng(0)
r = rng.random(n)
params = {"a": np.full(n, 0.02), "b": np.full(n, 0.2), "c": -65 + 15 * r**2, "d": 8 - 6 * r**2}
current = rng.uniform(0.0, 15.0, n)  # one constant input per neuron
run = ns.simulate("izhikevich", preset="tonic_spiking", method="rk4", dt=0.1, t_end=500.0, params=params,
                  initial={"v": np.full(n, -65.0), "u": 0.2 * np.full(n, -65.0)}, current=current,
                  save_at=[100.0, 500.0])
rates = run.spike_counts / 0.5  # Hz over 500 ms
print(f"{n} neurons, {run.spike_counts.sum()} spikes, mean rate {rates.mean():.1f} Hz, "
      f"run {run.run_time_s:.2f} s after {run.compile_time_s:.2f} s compile; v at 500 ms: {run['v'][-1, :3]}")

fig, (raster, tuning) = plt.subplots(1, 2, figsize=(11, 4))
raster.plot(run.spikes, run.spike_neurons, ",k")
raster.set(xlabel="t (ms)", ylabel="neuron (index)", title="spike raster")
tuning.plot(current, rates, ".", ms=3)
unit = ns.models.get("izhikevich").current_unit.split(" (")[0]  # "pA (dimensionless in the 2003 paper)"
tuning.set(xlabel=f"input current I ({unit})", ylabel="rate (Hz)", title="firing rate against input")
fig.tight_layout()
fig.savefig(out / "population_raster.png", dpi=110)
print(f"wrote {out / 'population_raster.png'}")
