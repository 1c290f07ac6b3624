"""PINN benchmark (issue 4): the full ``neurospike paper splitting-pinn`` study (table and figures into
docs/pinn/, ~10 min on 2 cores) plus the stretch run of the splitting PINN on Hodgkin–Huxley (0.005 ms windows,
target 0.1 % relative L2 of v) and the training-time target (<= 10 min).

    .venv/bin/python benchmarks/pinn.py                 # writes docs/pinn/, prints the tables
    .venv/bin/python benchmarks/pinn.py --skip-study    # only the stretch run
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import neurospike as ns
from neurospike.analysis import match_spikes, relative_l2
from neurospike.paper import splitting_pinn_report

ROOT = Path(__file__).resolve().parent.parent
TRAINING_TARGET_S = 600.0


def stretch():
    reference = ns.simulate("hh", method="reference", current=10.0, t_end=100.0)
    print("\n| splitting | window (ms) | rel. L2 v | worst spike error (ms) | training (s) | compile (s) | verdict |")
    print("|---|---|---|---|---|---|---|")
    for splitting, window in (("strang", 0.02), ("strang", 0.01), ("strang", 0.005), ("lie", 0.005)):
        run = ns.simulate("hh", method="splitting-pinn", current=10.0, t_end=100.0,
                          pinn={"splitting": splitting, "window": window})
        error = relative_l2(run, reference, "v")
        worst = match_spikes(reference.spikes, run.spikes).worst_matched
        verdict = ("<= 0.1 %" if error <= 1e-3 else "<= 1 %" if error <= 1e-2 else "> 1 %") + (
            ", training <= 10 min" if run.run_time_s <= TRAINING_TARGET_S else ", training > 10 min")
        print(f"| {splitting} | {window} | {error:.3g} | {worst:.3g} | {run.run_time_s:.1f} | "
              f"{run.compile_time_s:.1f} | {verdict} |")
        sys.stdout.flush()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-study", action="store_true")
    parser.add_argument("--out", default=str(ROOT / "docs" / "pinn"))
    args = parser.parse_args(argv)
    print(f"# load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    if not args.skip_study:
        _, markdown = splitting_pinn_report(args.out, quick=False)
        print(markdown)
    stretch()


if __name__ == "__main__":
    main()
