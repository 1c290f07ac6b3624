"""The inverse PINN (neurospike.pinn.inverse.fit_inverse) on the issue's synthetic recordings, fitted back.

    PYTHONPATH=src .venv/bin/python benchmarks/fit_pinn.py [--cases hh,rs] [--seed 0] [--joint 100,100]

hh: Hodgkin–Huxley, 100 ms of 10 µA/cm² (ns.simulate rk4, dt 0.005), v every 0.05 ms (every 10th node of the run)
with N(0, 1 mV²) noise, g_Na, g_K, g_L from 10 % off. rs: Izhikevich 2007 RS preset, 1000 ms (rk4, dt 0.01), v
every 0.1 ms with σ = 0.5 mV, k, a, b, c, d from 30 % off, windows at the recorded spike times. Prints the values
after each phase, the % errors and the times (docs/pinn.md, "The inverse PINN").
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import neurospike as ns
from neurospike import currents, models
from neurospike.pinn.inverse import fit_inverse


def hh(seed, joint):
    tr = ns.simulate("hh", params={"g_Na": 120, "g_K": 36, "g_L": 0.3}, current=10.0, t_end=100.0, dt=0.005,
                     method="rk4")
    t, v = np.asarray(tr.t)[::10], np.asarray(tr.states["v"])[::10]
    v = v + np.random.default_rng(seed).normal(0.0, 1.0, t.shape)
    model = models.get("hh")
    names = ["g_Na", "g_K", "g_L"]
    truth = {"g_Na": 120.0, "g_K": 36.0, "g_L": 0.3}
    fixed = {k: p.default for k, p in model.params.items() if k not in names}
    out = fit_inverse(model, t, v, currents.constant(10.0), names, np.zeros(3), np.array([200.0, 80.0, 1.0]),
                      {"g_Na": 132.0, "g_K": 32.4, "g_L": 0.33}, fixed, {"v": float(v[0])}, joint_steps=joint)
    return out, truth


def rs(seed, joint):
    model = models.get("izhikevich2007")
    tr = ns.simulate("izhikevich2007", preset="rs", t_end=1000.0, dt=0.01, method="rk4")
    t, v = np.asarray(tr.t), np.asarray(tr.states["v"])
    grid = np.round(np.arange(0.0, 1000.0 + 1e-9, 0.1), 10)
    samples = v[np.searchsorted(t, grid + 1e-9, side="right") - 1]  # the post-reset value at a reset
    samples = samples + np.random.default_rng(seed).normal(0.0, 0.5, grid.shape)
    preset = model.preset("rs")
    values = {**model.defaults(), **preset.params}
    names = ["k", "a", "b", "c", "d"]
    truth = {n: values[n] for n in names}
    start = {"k": 0.91, "a": 0.021, "b": -2.6, "c": -35.0, "d": 70.0}
    low = np.array([model.params[n].range[0] for n in names])
    high = np.array([model.params[n].range[1] for n in names])
    fixed = {k: float(x) for k, x in values.items() if k not in names}
    out = fit_inverse(model, grid, samples, preset.current, names, low, high, start, fixed, {"v": -60.0, "w": 0.0},
                      spikes=np.asarray(tr.spikes), joint_steps=joint)
    return out, truth


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", default="hh,rs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--joint", default="100,100", help="Adam,L-BFGS steps of the joint phase")
    args = parser.parse_args()
    joint = tuple(int(x) for x in args.joint.split(","))
    for case in args.cases.split(","):
        began = time.perf_counter()
        out, truth = {"hh": hh, "rs": rs}[case](args.seed, joint)
        print(f"{case}: {len(out['windows'])} windows, {time.perf_counter() - began:.0f} s "
              f"(march {out['times']['march_s']:.0f} s), {out['evaluations']} evaluations")
        for h in out["history"]:
            if h["phase"] != "march":
                print(f"  {h['phase']:10s} {h['iteration']:5d} loss {h['loss']:.4g} " + ", ".join(
                    f"{k} {x:.4g} ({100 * (x / truth[k] - 1):+.2f} %)" for k, x in h["values"].items()))
        for note in out["notes"]:
            print("  " + note)


if __name__ == "__main__":
    main()
