"""Located versus step spike events. With events="located" the threshold crossing is found inside the step on
the method's interpolant and the reset is applied there; with events="step" the reset waits for the end of the
step (as in Izhikevich's figure1.m). The spike-time error against the exact reference shows the difference:
with located events RK4's error is set by its order, with step events it is O(dt) whatever the method.

Run: python examples/spike_events.py [OUTPUT_DIR]
"""

import numpy as np

import neurospike as ns
from _output import output_dir

out = output_dir()
reference = ns.simulate("izhikevich2007", method="reference")
lines = ["events   dt (ms)  spikes  max |spike time - reference| (ms)"]
for events in ("located", "step"):
    for dt in (0.1, 0.05):
        run = ns.simulate("izhikevich2007", method="rk4", dt=dt, events=events)
        error = np.max(np.abs(run.spikes - reference.spikes)) if len(run.spikes) == len(reference.spikes) else np.nan
        lines.append(f"{events:8s} {dt:7g}  {len(run.spikes):6d}  {error:.3e}")
print("\n".join(lines))
(out / "spike_events.txt").write_text("\n".join(lines) + "\n")
print(f"wrote {out / 'spike_events.txt'}")
