"""Dense output: ``save_at`` returns the run at exactly the requested times, and ``.at(times)`` evaluates any
trajectory between its steps with the method's own interpolant (cubic Hermite for RK4; the solver's dense
output for the reference). Compared here at times that are not on the RK4 grid.

Run: python examples/dense_output.py [OUTPUT_DIR]
"""

import numpy as np

import neurospike as ns
from _output import output_dir

out = output_dir()
times = [12.345, 150.005, 333.3333, 777.7]
sampled = ns.simulate("izhikevich2007", method="rk4", dt=0.01, save_at=times)
full = ns.simulate("izhikevich2007", method="rk4", dt=0.01)
reference = ns.simulate("izhikevich2007", method="reference")
print("t (ms)      v save_at        v .at()          v reference")
for t, a, b, c in zip(times, sampled["v"], full.at(times)["v"], reference.at(times)["v"]):
    print(f"{t:9.4f}  {a:15.9f}  {b:15.9f}  {c:15.9f}")
sampled.save(out / "dense_output.csv")
print(f"wrote {out / 'dense_output.csv'}")
