"""PINNs next to the exact solution: leaky integrate-and-fire under 2.5 nA (spikes at k·10 ln 5 ms, closed form)
solved by the vanilla PINN (one network, no resets) and by the reset-aware PINN (windows of 1 ms, each warm-started
from the previous one, the window cut at the located threshold crossing and restarted from the reset state). The
trained networks are saved without pickle and reloaded; the figure shows v, the normalised ODE residual over time
and the training loss.

Run: python examples/pinn.py [OUTPUT_DIR]
"""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import neurospike as ns
from _output import output_dir
from neurospike.pinn import load_checkpoint

out = output_dir()
exact = 10.0 * np.log(5.0) * np.arange(1, 4)  # τ ln((v_inf − v_reset)/(v_inf − v_th)), τ = 10 ms
reset = ns.simulate("lif", method="pinn-reset", current=2.5, t_end=50.0, checkpoint=out / "lif_pinn_reset.npz")
vanilla = ns.simulate("lif", method="pinn", current=2.5, t_end=50.0, pinn={"adam_steps": 1000, "lbfgs_steps": 200})
saved = load_checkpoint(out / "lif_pinn_reset.npz")
print(f"pinn-reset: spikes {np.round(reset.spikes, 4)} (exact {np.round(exact, 4)}), "
      f"{reset.training['windows']} windows, trained in {reset.run_time_s:.1f} s; reloaded v(30 ms) = "
      f"{saved.evaluate([30.0])[0, 0]:.4f} mV")
print(f"pinn (vanilla): {vanilla.spikes.size} spike(s), final loss {vanilla.training['loss'][-1]:.2e}")

fig, (ax_v, ax_r, ax_l) = plt.subplots(3, 1, figsize=(9, 7.5))
t = np.linspace(0, 50, 2001)
ax_v.plot(t, reset.at(t)["v"], label="pinn-reset")
ax_v.plot(t, vanilla.at(t)["v"], label="pinn (vanilla)")
ax_v.vlines(exact, -70, -50, color="black", lw=0.6, label="exact spike times")
ax_v.set(xlabel="t (ms)", ylabel="v (mV)", title="LIF, 2.5 nA: PINNs against the exact spike times")
for name, run in (("pinn-reset", reset), ("pinn", vanilla)):
    residual = np.abs(np.asarray(run.training["residual"]))
    ax_r.semilogy(run.training["residual_t"], np.maximum(residual, 1e-16), lw=0.7, label=name)
    ax_l.semilogy(run.training["loss_history"], lw=0.7, label=name)
ax_r.set(xlabel="t (ms)", ylabel="|normalised residual| (dimensionless)")
ax_l.set(xlabel="optimiser step in the first window (number)", ylabel="training loss (dimensionless)")
for ax in (ax_v, ax_r, ax_l):  # beside the axes: the legend covers no data
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
fig.tight_layout()
fig.savefig(out / "pinn_lif.png", dpi=110)
