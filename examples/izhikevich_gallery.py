"""The 20 firing patterns of Izhikevich (2004), Figure 1, integrated exactly (``method="reference"``), each
checked against the behaviour it is named after (``neurospike.patterns.check_behaviour``). The four that change
character under exact integration are drawn over the figure's own scheme (``euler-sequential``, reset after the
step, at the figure's dt), which shows the named behaviour; see docs/izhikevich_patterns.md. Each panel shows v
(mV, spike peaks kept: the state before each reset) with its input current under it.

Run: python examples/izhikevich_gallery.py [OUTPUT_DIR]
"""

import neurospike as ns
from neurospike import patterns
from neurospike.figures import save, trace_gallery
from _output import output_dir

out = output_dir()
model = ns.models.get("izhikevich")
panels = {}
for name in patterns.FIGURE1_BEHAVIOURS:
    exact = ns.simulate(model, preset=name, method="reference")
    verdict = patterns.check_behaviour(exact)
    traces = [(exact, {"color": "k" if verdict.ok else "0.6", "label": "exact (reference)"})]
    if not verdict.ok:
        figure = ns.simulate(model, preset=name, method="euler-sequential", events="step")
        traces.append((figure, {"color": "C3", "label": "figure's scheme (euler-sequential, step events)"}))
    title = name.replace("_", " ") + ("" if verdict.ok else " (changes when exact)")
    panels[title] = (traces, model.presets[name].current)
    print(f"{name:30s} exact: {verdict}")
save(trace_gallery(panels), out / "izhikevich_gallery.png", dpi=90)
print(f"wrote {out / 'izhikevich_gallery.png'}")
