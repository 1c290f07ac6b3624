"""Input currents: a step, a pulse train, a sine, seeded Ornstein-Uhlenbeck noise and the JSON segment format
of the shipped Izhikevich (2004) data, each driving the Izhikevich (2003) neuron (RK4, dt = 0.1 ms). Every
current declares its discontinuities and the solver steps exactly onto them.

Run: python examples/input_currents.py [OUTPUT_DIR]
"""

import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import neurospike as ns
from _output import output_dir

out = output_dir()
segments = out / "segments.json"
segments.write_text(json.dumps({"baseline": 0, "segments": [
    {"start": 20, "end": 60, "value": 10, "slope": 0},
    {"start": 120, "end": None, "value": 0, "slope": 0.1}]}))
t_end = 200.0
inputs = {
    "step 10 from 50 ms": ns.currents.step(start=50, amplitude=10),
    "5 pulses of 15, 2 ms wide": ns.currents.pulses(start=20, width=2, period=30, amplitude=15, count=5),
    "sine 10 +- 5 at 20 Hz": ns.currents.sine(amplitude=5, frequency=20, offset=10),
    "OU noise, mean 8, sd 4": ns.currents.ornstein_uhlenbeck(mean=8, sigma=4, tau=5, t_end=t_end, seed=1),
    "JSON segments": ns.currents.parse(str(segments)),
}
unit = ns.models.get("izhikevich").current_unit.split(" (")[0]  # "pA (dimensionless in the 2003 paper)"
fig, axes = plt.subplots(2 * len(inputs), 1, sharex=True, figsize=(8, 2.6 * len(inputs)),
                         gridspec_kw={"height_ratios": [2, 1] * len(inputs)})
for k, (label, current) in enumerate(inputs.items()):
    ax_v, ax_i = axes[2 * k], axes[2 * k + 1]
    run = ns.simulate("izhikevich", preset="tonic_spiking", current=current, method="rk4", dt=0.1, t_end=t_end)
    ax_v.plot(run.t, run["v"], lw=0.8)
    ax_i.plot(run.t, current(run.t), lw=0.8, color="C1")
    ax_v.set_title(f"{label}: {len(run.spikes)} spikes", fontsize=9)
    ax_v.set_ylabel("v (mV)")
    ax_i.set_ylabel(f"I ({unit})")
    print(f"{label:28s} {len(run.spikes):3d} spikes, breaks at {np.round(current.discontinuities(), 3).tolist()}")
axes[-1].set_xlabel("t (ms)")
fig.tight_layout()
fig.savefig(out / "input_currents.png", dpi=90)
print(f"wrote {out / 'input_currents.png'}")
