"""Write docs/izhikevich_patterns.md (and .png): the 20 patterns of Izhikevich (2004), Figure 1, integrated as
the figure was (forward Euler at the figure's dt, v first and u from the new v, reset after the step:
``method="euler-sequential", events="step"``), exactly (``method="reference"``: DOP853, rtol = atol = 1e-12,
located resets) and with the figure's scheme at dt/64, each checked against the behaviour it is named after
(``neurospike.patterns.FIGURE1_BEHAVIOURS``).

Usage: ``.venv/bin/python docs/izhikevich_patterns.py [OUTPUT_DIR]`` (default: this file's directory).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import neurospike as ns
from neurospike import patterns
from neurospike.simulate import DEFAULT_MAX_RATE_HZ as RUNAWAY_RATE_HZ

SMALL_STEP_FACTOR = 64


def runs(name):
    preset = ns.models.get("izhikevich").presets[name]
    figure = ns.simulate("izhikevich", preset=name, method="euler-sequential", events="step")
    exact = ns.simulate("izhikevich", preset=name, method="reference")
    fine = ns.simulate("izhikevich", preset=name, method="euler-sequential", events="step",
                       dt=preset.dt / SMALL_STEP_FACTOR)
    return preset, figure, exact, fine


def cell(trajectory):
    verdict = patterns.check_behaviour(trajectory)
    mark = "yes" if verdict.ok else "**no**: " + "; ".join(verdict.failures)
    count = np.size(trajectory.spikes)
    return f"{count} spike{'' if count == 1 else 's'}; {mark}"


def spike_list(trajectory, shown: int = 12) -> str:
    times = ", ".join(f"{t:.2f}" for t in trajectory.spikes[:shown])
    return times + (f", … ({np.size(trajectory.spikes)} in all)" if np.size(trajectory.spikes) > shown else "")


def write(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    results = {name: runs(name) for name in patterns.FIGURE1_BEHAVIOURS}
    rows, changed, runaway = [], [], []
    for name, (preset, figure, exact, fine) in results.items():
        panel = preset.source.split("(")[1].split(")")[0]
        behaviour = patterns.FIGURE1_BEHAVIOURS[name][0]
        rows.append(f"| {panel} | `{name}` | {preset.dt:g} | {behaviour} | {cell(figure)} | {cell(exact)} "
                    f"| {cell(fine)} |")
        ok_figure, ok_exact = patterns.check_behaviour(figure).ok, patterns.check_behaviour(exact).ok
        if ok_figure and not ok_exact:
            changed.append(f"- `{name}`: {patterns.check_behaviour(exact)}. Spikes (ms), figure scheme: "
                           f"{spike_list(figure)}; exact: {spike_list(exact)}.")
        if exact.status == "rate-exceeded":
            isi = np.diff(exact.spikes)
            runaway.append(f"- `{name}`: {exact.message}. The last interspike interval is {isi[-1] * 1000:.1f} µs "
                           f"({1000 / isi[-1]:.0f} Hz) after {np.size(exact.spikes)} spikes; u after each reset "
                           f"falls from {exact.spike_states_after[0, 1]:.4g} to {exact.spike_states_after[-1, 1]:.4g} "
                           f"(d = {preset.params['d']:g}), so each spike makes the next one come sooner.")
            faster = ns.simulate("izhikevich", preset=name, method="reference", max_rate=10 * RUNAWAY_RATE_HZ)
            runaway.append(f"  With `max_rate={10 * RUNAWAY_RATE_HZ:g}` the same run goes on to "
                           f"{np.size(faster.spikes)} spikes and stops at t = {faster.spikes[-1]:.4g} ms: the rate "
                           f"keeps growing (not a fast limit cycle) while the inhibition lasts.")
    text = [
        "# Izhikevich (2004) Figure 1: which patterns need the figure's scheme",
        "",
        "Written by `docs/izhikevich_patterns.py` (do not edit by hand). Each of the 20 presets "
        "(`neurospike.models.get(\"izhikevich\").presets`, parameters, inputs and steps of the author's figure1.m) "
        "is run three ways and checked against the behaviour it is named after "
        "(`neurospike.patterns.check_behaviour`; criteria from E. M. Izhikevich, *Which model to use for cortical "
        "spiking neurons?*, IEEE TNN 15 (2004) 1063):",
        "",
        "- **figure scheme**: `method=\"euler-sequential\", events=\"step\"` at the figure's dt (forward Euler, v "
        "updated first and u from the new v, reset when v ≥ 30 after the step);",
        "- **exact**: `method=\"reference\"` (DOP853, rtol = atol = 1e-12, resets located exactly, runaway guard "
        "`max_rate` = 10 kHz);",
        f"- **figure scheme, dt/{SMALL_STEP_FACTOR}**: the same scheme with a {SMALL_STEP_FACTOR}× smaller step — an "
        "integrator independent of scipy that should agree with the exact column.",
        "",
        "| Fig. 1 | preset | dt (ms) | named behaviour (criterion) | figure scheme | exact | "
        f"figure scheme, dt/{SMALL_STEP_FACTOR} |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        "## Patterns whose named behaviour belongs to the model *and* the figure's scheme",
        "",
        "Integrated exactly, these presets no longer show the behaviour they are named after:",
        "",
        *changed,
        "",
        "## Runaway spiking under exact integration",
        "",
        *runaway,
        "",
        "The run does not hang: the `max_rate` guard stops it with `status == \"rate-exceeded\"` and a message "
        "naming the time and the rate, keeping what was computed.",
        "",
        "## The figure's scheme and figure1.m",
        "",
        "`euler-sequential` with `events=\"step\"` is figure1.m: the same update order (v, then u from the new "
        "v), the reset tested on the value after the step, and the input read at the step's start time `t` "
        "with figure1.m's strict inequalities (`if t > T1`), so input jumps are not grid nodes. A literal "
        "numpy transcription of the figure1.m loop gives the same spike times to 1e-9 ms for all 20 presets "
        "(`tests/test_izhikevich_patterns.py`). The convention matters near threshold: reading the input on "
        "the piece that holds the step's midpoint instead (as the other methods do, with jumps as grid nodes) "
        "makes every pulse start one step earlier, and `spike_latency` would fire at 17.4 ms instead of 26.8 "
        "ms, `rebound_spike` at 59.0 ms instead of 68.2 ms.",
        "",
        "![v(t) of the 20 presets: figure scheme and exact](izhikevich_patterns.png)",
        "",
    ]
    (out / "izhikevich_patterns.md").write_text("\n".join(text))
    figure_path = out / "izhikevich_patterns.png"
    plot(results, figure_path)


def plot(results, path: Path) -> None:
    """The 20 presets' v (exact over the figure's scheme), each with its input under it: :func:`trace_gallery`."""
    from neurospike.figures import save, trace_gallery

    panels = {}
    for name, (preset, figure, exact, _) in results.items():
        title = name.replace("_", " ") + ("" if patterns.check_behaviour(exact).ok else "  [changes]")
        panels[title] = ([(exact, {"color": "0.6", "lw": 1.8, "label": "exact (reference)"}),
                          (figure, {"color": "C0", "label": "figure scheme (euler-sequential, step events, "
                                                            "the figure's dt)"})], preset.current)
    save(trace_gallery(panels), path, dpi=80)


if __name__ == "__main__":
    write(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent)
