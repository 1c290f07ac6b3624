"""Compare methods against the exact reference: ``neurospike.compare`` runs each method at one step,
with located and step spike events, and measures the state at chosen times and every spike time against
``method="reference"``; the report (markdown table, CSV, figures) is written to the output directory.

Run: python examples/compare_methods.py [OUTPUT_DIR]
"""

import neurospike as ns
from _output import output_dir

out = output_dir()
comparison = ns.compare("izhikevich2007", ["euler", "rk4"], dt=0.1, times=[0, 250, 500], t_end=500, out=out / "compare")
print(comparison.markdown())
print(f"wrote the report to {out / 'compare'}")
