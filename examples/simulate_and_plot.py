"""Simulate a preset and plot it: the Izhikevich (2007) regular-spiking neuron (preset "rs": 0 -> 70 pA at
101 ms) with classical RK4 at dt = 0.01 ms, drawn over the exact reference (DOP853, located resets).

Run: python examples/simulate_and_plot.py [OUTPUT_DIR]
"""

import numpy as np

import neurospike as ns
from _output import output_dir

out = output_dir()
rk4 = ns.simulate("izhikevich2007", method="rk4", dt=0.01)
reference = ns.simulate("izhikevich2007", method="reference")
print(f"{rk4.model} [{rk4.preset}]: {len(rk4.spikes)} spikes, first at {rk4.spikes[0]:.6f} ms")
print(f"largest spike-time difference to the reference: {np.max(np.abs(rk4.spikes - reference.spikes)):.2e} ms")
print(f"compile {rk4.compile_time_s:.2f} s, run {rk4.run_time_s * 1000:.1f} ms")
rk4.plot(out / "rs_rk4.png", reference=reference)
print(f"wrote {out / 'rs_rk4.png'}")
