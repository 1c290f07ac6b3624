"""``sweep_alpha``: one fractional-order model run per derivative order α, with its firing rate and interspike
intervals (ISIs) against α — the memory effect on firing.

Each run is ``simulate(model, method="l1", alpha=α)`` (Caputo derivative of order α, L1 scheme, see
:mod:`neurospike.solvers.fractional`): α for every state, or only for ``state`` (the others keep order 1).
For each α the table holds the spike count, the mean rate n / (t_end − t0) in Hz, the first, last and mean ISI and
the adaptation index (ISI_last − ISI_first) / (ISI_last + ISI_first): 0 for periodic firing, > 0 when the
intervals grow (spike-frequency adaptation, which the fractional LIF shows for α < 1 under constant input: Teka,
Marinov & Santamaria, PLoS Comput. Biol. 10 (2014) e1003526).

The L1 history is the full O(N²) sum over the N steps: the defaults (the preset's t_end and dt) stay at or below
~10 000 steps for every shipped model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import reports
from .comparison import Progress, _check_step, _markdown_table, _write_csv
from .errors import NeurospikeError, SimulationError
from .figures import axis_label, legend_outside, save, subplots
from . import methods as registry
from .simulate import resolve, simulate
from .trajectory import Trajectory

COLUMNS = ("alpha", "spikes", "rate_hz", "first_isi_ms", "last_isi_ms", "mean_isi_ms", "adaptation_index", "status")


def check_alphas(alphas) -> np.ndarray:
    """The orders as a sorted array without repeats; each must be a number in (0, 1]."""
    values = [alphas] if isinstance(alphas, (int, float, str)) else list(alphas)
    if not values:
        raise NeurospikeError("no alphas given; give orders in (0, 1], e.g. 0.5,0.7,1.0")
    orders = []
    for value in values:
        try:
            order = float(value)
        except (TypeError, ValueError):
            raise NeurospikeError(f"alpha {value} is not a number; give orders in (0, 1]") from None
        if not (math.isfinite(order) and 0.0 < order <= 1.0):
            raise NeurospikeError(f"alpha {value} is outside (0, 1]")
        orders.append(order)
    return np.unique(orders)


def firing_summary(spikes, t0: float, t_end: float) -> dict[str, float]:
    """Spike count, mean rate over [t0, t_end] (Hz, times in ms), first/last/mean ISI (ms; NaN with fewer than two
    spikes) and adaptation index (ISI_last − ISI_first)/(ISI_last + ISI_first) (NaN with fewer than two ISIs)."""
    spikes = np.asarray(spikes, dtype=float)
    isi = np.diff(spikes)
    first, last = (float(isi[0]), float(isi[-1])) if isi.size else (math.nan, math.nan)
    return {
        "spikes": int(spikes.size),
        "rate_hz": 1000.0 * spikes.size / (t_end - t0),
        "first_isi_ms": first,
        "last_isi_ms": last,
        "mean_isi_ms": float(np.mean(isi)) if isi.size else math.nan,
        "adaptation_index": (last - first) / (last + first) if isi.size >= 2 else math.nan,
    }


@dataclass
class AlphaSweep:
    """Runs of one model at several orders α: ``runs[i]`` is the trajectory at ``alphas[i]``, ``rows[i]`` its firing
    summary (keys ``COLUMNS``). A run whose state became non-finite (l1-explicit at a large step) has ``runs[i]``
    None, status ``"non-finite"``, no spike count, NaN numbers and the error in ``rows[i]["message"]``."""

    model: Any
    preset: str
    state: str | None
    method: str
    dt: float
    t_end: float
    alphas: np.ndarray
    runs: list[Trajectory | None]
    rows: list[dict[str, Any]]

    @property
    def plotted_state(self) -> str:
        rule = self.model.spike
        return rule.state if rule is not None else self.model.states[0]

    def column(self, name: str) -> np.ndarray:
        return np.array([row[name] for row in self.rows], dtype=float)

    def markdown(self) -> str:
        """Title, what was run, and one table row per α."""
        which = "every state" if self.state is None else f"state {self.state} only (the others order 1)"
        title = f"{self.model.name}" + (f" [{self.preset}]" if self.preset else "")
        header = ["α", "spikes", "rate (Hz)", "first ISI (ms)", "last ISI (ms)", "mean ISI (ms)", "adaptation index",
                  "status"]
        cell = lambda x, digits: "—" if not np.isfinite(x) else f"{x:.{digits}f}"  # noqa: E731
        body = [[f"{row['alpha']:g}", str(row["spikes"]) if row["status"] == "success" else "—",
                 cell(row["rate_hz"], 2), cell(row["first_isi_ms"], 3), cell(row["last_isi_ms"], 3),
                 cell(row["mean_isi_ms"], 3), cell(row["adaptation_index"], 4), row["status"]] for row in self.rows]
        notes = [f"- α = {row['alpha']:g}: {row['message']}" for row in self.rows if row.get("message")]
        return "\n".join([
            f"## {title}: firing against the fractional order α",
            "",
            f"Caputo order α on {which}; method {self.method}, dt = {self.dt:g} ms, t_end = {self.t_end:g} ms. "
            f"Rate = spikes / run length; adaptation index = (last ISI − first ISI) / (last ISI + first ISI).",
            "",
            _markdown_table(header, body),
            *([""] + notes if notes else []),
        ]) + "\n"

    def _csv(self):
        return list(COLUMNS), [[row[name] for name in COLUMNS] for row in self.rows]

    def write(self, out_dir) -> Path:
        """Write ``sweep.csv``, ``sweep.md``, ``voltage.png`` and ``rate_isi.png`` into the report folder ``out_dir``
        (:func:`neurospike.reports.write`)."""
        reports.write(out_dir, {
            "sweep.csv": lambda path: _write_csv(path, *self._csv()),
            "sweep.md": lambda path: path.write_text(self.markdown()),
            "voltage.png": self.plot_voltage,
            "rate_isi.png": self.plot_rate_isi,
        })
        return Path(out_dir)

    def plot_voltage(self, path) -> None:
        save(self.voltage_figure(), path)

    def voltage_figure(self):
        """The spiking state against t, one stacked panel per α (shared axes)."""
        state = self.plotted_state
        unit = self.model.state_units[self.model.state_index(state)]
        fig, axes = subplots(len(self.alphas), 1, sharex=True, sharey=True, squeeze=False,
                             figsize=(8, 1.5 * len(self.alphas) + 1.0))
        for ax, alpha, run, row in zip(axes[:, 0], self.alphas, self.runs, self.rows):
            if run is not None:
                ax.plot(run.t, run.states[state], lw=0.8)
            ax.set_ylabel(f"α = {alpha:g}\n" + axis_label(state, unit), fontsize=8)
            ax.text(0.995, 0.95, f"{row['spikes']} spikes" if run is not None else row["status"],
                    transform=ax.transAxes, ha="right", va="top", fontsize=7)
        axes[0, 0].set_title(f"{self.model.name} [{self.preset}] — {self.method}, dt = {self.dt:g} ms")
        axes[-1, 0].set_xlabel("t (ms)")
        return fig

    def plot_rate_isi(self, path) -> None:
        save(self.rate_isi_figure(), path)

    def rate_isi_figure(self):
        """Left: mean rate against α. Right: first, last and mean ISI against α."""
        fig, (rate_ax, isi_ax) = subplots(1, 2, figsize=(11, 4))
        rate_ax.plot(self.alphas, self.column("rate_hz"), "o-")
        rate_ax.set_xlabel(axis_label("order α", "1"))
        rate_ax.set_ylabel("mean rate (Hz)")
        for name, label, style in (("first_isi_ms", "first ISI", "o-"), ("last_isi_ms", "last ISI", "s--"),
                                   ("mean_isi_ms", "mean ISI", "^:")):
            isi_ax.plot(self.alphas, self.column(name), style, label=label)
        isi_ax.set_xlabel(axis_label("order α", "1"))
        isi_ax.set_ylabel("ISI (ms)")
        legend_outside(isi_ax)
        fig.suptitle(f"{self.model.name} [{self.preset}]: firing against α ({self.method}, dt = {self.dt:g} ms)")
        return fig


def sweep_alpha(model, alphas, *, state: str | None = None, method: str = "l1", dt: float | None = None,
                t_end: float | None = None, preset: str | None = None, params=None, current=None, out=None,
                progress: Progress | None = None) -> AlphaSweep:
    """Run ``model`` once per order in ``alphas`` (each in (0, 1]) with a fractional ``method`` (family
    ``"fractional"`` of :data:`neurospike.methods.METHODS`), α on every state (``state=None``) or only on ``state``; summarise the firing and, with
    ``out``, write the report there. Every input is checked before the first run."""
    orders = check_alphas(alphas)
    if method not in registry.names(family="fractional"):
        raise NeurospikeError(f"method {method!r}: an alpha sweep needs a fractional method "
                              f"({', '.join(registry.names(family='fractional'))})")
    reports.check_folder(out)
    problem = resolve(model, preset, params, current, t_end)
    model_obj, chosen, current_obj, t_end = problem.model, problem.preset, problem.current, problem.t_end
    if state is not None:
        model_obj.state_index(state)
    dt = _check_step(dt if dt is not None else chosen.dt if chosen.dt is not None else 0.01)
    runs, rows = [], []
    for k, alpha in enumerate(orders):
        order = float(alpha) if state is None else {state: float(alpha)}
        try:
            run = simulate(model_obj, preset=chosen.name, method=method, dt=dt, t_end=t_end, params=params,
                           current=current_obj, alpha=order)
            row = {"alpha": float(alpha), **firing_summary(run.spikes, 0.0, t_end), "status": run.status}
        except SimulationError as error:
            run = None
            row = {"alpha": float(alpha), **firing_summary([], 0.0, t_end), "status": "non-finite"}
            row["spikes"], row["rate_hz"], row["message"] = None, math.nan, str(error)
        runs.append(run)
        rows.append(row)
        if progress is not None:
            progress(k + 1, orders.size, f"α={alpha:g}")
    result = AlphaSweep(model=model_obj, preset=chosen.name, state=state, method=method, dt=dt, t_end=t_end,
                        alphas=orders, runs=runs, rows=rows)
    if out is not None:
        result.write(out)
    return result
