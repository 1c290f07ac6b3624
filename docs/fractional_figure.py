"""Write docs/fo_hh.png: the fractional-order Hodgkin–Huxley neuron (preset "tonic": constant 10 µA/cm², 0–100 ms)
with only v fractional (Caputo derivative of order α on the membrane equation, the gates of order 1), for
α = 1.0, 0.9, 0.8, 0.7, integrated by ``fast-l1`` (implicit L1 scheme, history as a sum of exponentials) at
dt = 0.01 ms; one stacked panel per α. Prints the spike count and interspike intervals (ISIs) of each run.

Usage: ``.venv/bin/python docs/fractional_figure.py [OUTPUT_PNG]`` (default: ``fo_hh.png`` beside this file).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import neurospike as ns

ALPHAS = (1.0, 0.9, 0.8, 0.7)
DT_MS = 0.01
T_END_MS = 100.0


def run(alpha: float) -> ns.Trajectory:
    return ns.simulate("hh", preset="tonic", method="fast-l1", alpha={"v": alpha}, dt=DT_MS, t_end=T_END_MS)


def main(argv=None):
    args = sys.argv[1:] if argv is None else argv
    out = Path(args[0]) if args else Path(__file__).resolve().parent / "fo_hh.png"
    from matplotlib import colormaps

    from neurospike.figures import axis_label, legend_outside, save, subplots, typeset

    fig, axes = subplots(len(ALPHAS), 1, figsize=(10, 1.9 * len(ALPHAS) + 0.6), sharex=True, sharey=True)
    colours = colormaps["viridis"](np.linspace(0.0, 0.85, len(ALPHAS)))
    for ax, alpha, colour in zip(axes, ALPHAS, colours):
        trajectory = run(alpha)
        spikes = np.asarray(trajectory.spikes)
        isi = np.diff(spikes)
        print(f"alpha_v = {alpha:.1f}: {spikes.size} spikes at {np.array2string(spikes, precision=2)} ms; "
              f"ISIs {np.array2string(isi, precision=2)} ms; run {trajectory.run_time_s:.3f} s")
        isi_text = f"\nISI {isi[0]:.1f} → {isi[-1]:.1f} ms" if isi.size else ""
        ax.plot(trajectory.t, trajectory["v"], color=colour, lw=1.0,
                label=f"α = {alpha:.1f}: {spikes.size} spikes{isi_text}")
        legend_outside(ax, fontsize=9)
        ax.set_ylabel(axis_label("v", trajectory.state_units["v"]))
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("t (ms)")
    axes[-1].set_xlim(0.0, T_END_MS)
    axes[0].set_ylim(-85.0, 60.0)
    fig.suptitle(typeset("Fractional-order Hodgkin–Huxley, 10 µA/cm², only v of order α (fast-l1, dt = 0.01 ms)"),
                 fontsize=10)
    save(fig, out, dpi=110)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
