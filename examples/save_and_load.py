"""Save and load a trajectory: .json and .npz round-trip times, states, spikes and the run's metadata; .csv
writes a table (spikes in the header line) for other tools.

Run: python examples/save_and_load.py [OUTPUT_DIR]
"""

import numpy as np

import neurospike as ns
from _output import output_dir

out = output_dir()
run = ns.simulate("izhikevich", preset="tonic_bursting", method="euler-sequential", events="step")
for suffix in ("json", "npz"):
    path = out / f"tonic_bursting.{suffix}"
    run.save(path)
    loaded = ns.Trajectory.load(path)
    same = np.array_equal(loaded.t, run.t) and np.array_equal(loaded.spikes, run.spikes) and all(
        np.array_equal(loaded[s], run[s]) for s in run.states)
    print(f"{path.name}: {path.stat().st_size} bytes, {len(loaded.spikes)} spikes, method {loaded.method}, "
          f"dt {loaded.dt}, identical after loading: {same}")
    assert same
run.save(out / "tonic_bursting.csv")
print(f"wrote {out}")
