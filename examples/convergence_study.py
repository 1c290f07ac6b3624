"""Convergence against the exact reference: ``neurospike.convergence`` runs each method at several
steps and fits the observed order of the state error and of the spike-time error (Hodgkin-Huxley: Strang
splitting should show order 2, RK4 order 4).

Run: python examples/convergence_study.py [OUTPUT_DIR]
"""

import neurospike as ns
from _output import output_dir

out = output_dir()
study = ns.convergence("hh", ["strang", "rk4"], [0.02, 0.01], t_end=30, out=out / "convergence")
print(study.markdown())
print(f"wrote the report to {out / 'convergence'}")
