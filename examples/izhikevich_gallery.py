"""The 20 firing patterns of Izhikevich (2004), Figure 1, integrated exactly (``method="reference"``), each
checked against the behaviour it is named after (``neurospike.patterns.check_behaviour``). The four that change
character under exact integration are drawn over the figure's own scheme (``euler-sequential``, reset after the
step, at the figure's dt), which shows the named behaviour; see docs/izhikevich_patterns.md.

Run: python examples/izhikevich_gallery.py [OUTPUT_DIR]
"""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

import neurospike as ns
from neurospike import patterns
from _output import output_dir

out = output_dir()
fig, axes = plt.subplots(5, 4, figsize=(14, 12))
for ax, name in zip(axes.ravel(), patterns.FIGURE1_BEHAVIOURS):
    exact = ns.simulate("izhikevich", preset=name, method="reference")
    verdict = patterns.check_behaviour(exact)
    ax.plot(exact.t, exact["v"], lw=0.8, color="k" if verdict.ok else "0.6", label="exact")
    if not verdict.ok:
        figure = ns.simulate("izhikevich", preset=name, method="euler-sequential", events="step")
        ax.plot(figure.t, figure["v"], lw=0.8, color="C3", label=f"figure scheme, dt={figure.dt:g}")
        ax.legend(fontsize=6, loc="lower right")
    ax.set_title(name.replace("_", " ") + ("" if verdict.ok else " (changes when exact)"), fontsize=8)
    ax.set_ylim(-90, 40)
    ax.tick_params(labelsize=6)
    print(f"{name:30s} exact: {verdict}")
fig.tight_layout()
fig.savefig(out / "izhikevich_gallery.png", dpi=80)
print(f"wrote {out / 'izhikevich_gallery.png'}")
