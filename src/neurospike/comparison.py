"""Honest comparisons against the reference: ``compare`` (state at chosen times, spike timing, cost and figures
for several methods at one step) and ``convergence`` (error against step size, with fitted orders).

Every error is measured against ``method="reference"`` (scipy DOP853, rtol = atol = 1e-12, exact spike events),
never against another fixed-step run. Where a published table exists for the model and preset (the "Learning to
Spike" Table II for izhikevich2007/rs) its values are shown beside ours.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .analysis import SpikeMatch, match_spikes, observed_order, relative_l2, state_errors
from .errors import NeurospikeError, closest
from .figures import axis_label, legend_outside, save, subplots, typeset
from . import methods as registry
from . import reports
from .simulate import REFERENCE_TOLERANCE, resolve, simulate
from .trajectory import Trajectory, _atomic_write

EVENT_MODES = ("located", "step")
EVENT_DESCRIPTIONS = {
    "located": "spikes located inside the step (and reset there)",
    "step": "spikes at the end of the step (reset after it, as the Learning to Spike study)",
}

# Published tables shown beside ours, keyed by (model, preset): the package data file and how its method names
# map onto ours. A table is only shown when the run uses the table's own parameters and the preset's input.
PUBLISHED_TABLES = {
    ("izhikevich2007", "rs"): {
        "file": "learning_to_spike_table2.json",
        "citation": "Learning to Spike, Table II",
        "methods": {"explicit_euler": "euler", "backward_euler": "backward-euler", "rk2_midpoint": "rk2",
                    "express_euler": "exp-euler", "rk4": "rk4", "pinn": "pinn-reset"},
    },
}


Progress = Callable[[int, int, str], None]


# --- inputs -------------------------------------------------------------------------------------------------
def _check_methods(methods) -> tuple[str, ...]:
    """The methods to compare (each once): any of the registry's but the reference they are measured against."""
    methods = (methods,) if isinstance(methods, str) else tuple(methods)
    comparable = [name for name, method in registry.METHODS.items() if method.family != "reference"]
    if not methods:
        raise NeurospikeError("no methods given; choose from " + ", ".join(comparable))
    for method in methods:
        if method in registry.METHODS and method not in comparable:
            raise NeurospikeError(f"method {method!r} is what every method is measured against; choose from "
                                  + ", ".join(comparable))
        if method not in registry.METHODS:
            raise NeurospikeError(f"unknown method {method!r}{closest(method, comparable)}; methods are "
                                  + ", ".join(comparable))
    return tuple(dict.fromkeys(methods))


def _check_step(dt) -> float:
    try:
        value = float(dt)
    except (TypeError, ValueError):
        raise NeurospikeError(f"dt={dt!r} must be a positive finite step (ms)") from None
    if not (math.isfinite(value) and value > 0):
        raise NeurospikeError(f"dt={dt!r} must be a positive finite step (ms)")
    return value


def _check_events(events) -> tuple[str, ...]:
    events = (events,) if isinstance(events, str) else tuple(events)
    if not events:
        raise NeurospikeError("no events mode given; use 'located', 'step' or both")
    for mode in events:
        if mode not in EVENT_MODES:
            raise NeurospikeError(f"events={mode!r}: use 'located' or 'step'")
    return tuple(dict.fromkeys(events))


def _times_in_run(run: Trajectory, times: np.ndarray) -> np.ndarray:
    """Which of ``times`` lie inside the computed part of ``run`` (a run stopped early is shorter)."""
    return (times >= run.t[0] - 1e-9) & (times <= run.t[-1] + 1e-9)


# --- the published table --------------------------------------------------------------------------------------
@dataclass
class PublishedTable:
    """Published values at ``times``: ``values[method][state]`` and the published wall time ``time_s[method]``
    (our method names)."""

    citation: str
    times: np.ndarray
    values: dict[str, dict[str, np.ndarray]]
    time_s: dict[str, float]

    def value(self, method: str, state: str, t: float) -> float:
        where = np.flatnonzero(np.isclose(self.times, t, rtol=0, atol=1e-9))
        series = self.values.get(method, {}).get(state)
        return float(series[where[0]]) if series is not None and where.size else float("nan")


def published_table(model, preset: str, values: dict[str, Any], custom_current: bool) -> PublishedTable | None:
    """The published table for this model and preset, if there is one and the run uses its parameters."""
    entry = PUBLISHED_TABLES.get((model.name, preset))
    if entry is None or custom_current:
        return None
    data = json.loads(resources.files("neurospike").joinpath("data", entry["file"]).read_text())
    published_params = data.get("model", {}).get("params", {})
    if any(not np.isclose(values.get(name, np.nan), value) for name, value in published_params.items()):
        return None
    table = data["table2"]
    rows = {entry["methods"][row["method"]]: row for row in table["rows"] if row["method"] in entry["methods"]}
    return PublishedTable(
        citation=entry["citation"],
        times=np.asarray(table["times"], dtype=float),
        values={method: {s: np.asarray(row[s], dtype=float) for s in model.states if s in row}
                for method, row in rows.items()},
        time_s={method: float(row["time_s"]) for method, row in rows.items() if "time_s" in row},
    )


# --- writing --------------------------------------------------------------------------------------------------
def _write_rows(f, header: list[str], rows: list[list[Any]]) -> None:
    writer = csv.writer(f)
    writer.writerow(header)
    for row in rows:
        writer.writerow([f"{x:.10g}" if isinstance(x, float) else x for x in row])


def _write_csv(path, header: list[str], rows: list[list[Any]]) -> None:
    """Write a CSV file atomically (floats with 10 significant digits)."""
    _atomic_write(path, lambda f: _write_rows(f, header, rows), text=True)


def _colours(methods) -> dict[str, Any]:
    palette = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink",
               "tab:olive", "tab:cyan"]
    return {method: palette[i % len(palette)] for i, method in enumerate(methods)}


def _label(name: str, unit: str) -> str:
    return f"{name} ({unit})" if unit else name


def _number(x: float, digits: int = 5) -> str:
    if not np.isfinite(x):
        return "—" if np.isnan(x) else ("∞" if x > 0 else "−∞")
    return f"{x:.{digits}f}"


def _error(x: float) -> str:
    if not np.isfinite(x):
        return "—" if np.isnan(x) else "∞"
    return f"{x:.3g}"


def _markdown_table(header: list[str], rows: list[list[str]]) -> str:
    escape = lambda cell: str(cell).replace("|", "\\|")  # noqa: E731
    lines = ["| " + " | ".join(escape(c) for c in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(escape(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


# --- compare --------------------------------------------------------------------------------------------------
@dataclass
class Comparison:
    """Several methods at one step against the reference.

    ``runs[(method, events)]`` are the trajectories, ``matches[(method, events)]`` their spike matches.
    ``rows`` has one dict per run and time (``method, events, t`` and per state its value and ``abs_err_<state>``;
    the reference rows have ``events="exact"`` and no error); ``summary`` one dict per run (spike count, worst
    spike-time error over matched spikes, missing, extra, ``relative_l2_<state>`` over the run, compile and run
    time, status).
    """

    model: Any
    preset: str
    dt: float
    times: np.ndarray
    events: tuple[str, ...]
    methods: tuple[str, ...]
    reference: Trajectory
    runs: dict[tuple[str, str], Trajectory]
    matches: dict[tuple[str, str], SpikeMatch]
    rows: list[dict[str, Any]]
    summary: list[dict[str, Any]]
    current: Any = None
    published: PublishedTable | None = None

    @property
    def states(self) -> list[str]:
        return list(self.reference.states)

    @property
    def units(self) -> dict[str, str]:
        return self.reference.state_units

    def markdown(self) -> str:
        """The table: state and |error| at each time per method and events mode, then spikes and cost."""
        states, units, published = self.states, self.units, self.published
        title = f"{self.model.name}" + (f" [{self.preset}]" if self.preset else "")
        parts = [f"## {title}: methods at dt = {self.dt:g} ms against the reference", "",
                 "Errors are |method − reference|; `reference` is scipy DOP853 (rtol = atol = 1e-12) with exact "
                 "spike events. Events `located`: " + EVENT_DESCRIPTIONS["located"] + "; `step`: "
                 + EVENT_DESCRIPTIONS["step"] + "."]
        if published is not None:
            parts.append(f"Published columns: {published.citation}, as published (the study measured its errors "
                         f"against its own forward-Euler run, so only its values are shown).")
        header = ["method", "events", "t (ms)", *(_label(s, units.get(s, "")) for s in states),
                  *(_label(f"|err {s}|", units.get(s, "")) for s in states)]
        if published is not None:
            header += [f"published {s}" for s in states]
        body = []
        for row in self.rows:
            cells = [row["method"], row["events"], f"{row['t']:g}", *(_number(row[s]) for s in states),
                     *(_error(row[f"abs_err_{s}"]) for s in states)]
            if published is not None:
                cells += [_number(row[f"published_{s}"], 4) for s in states]
            body.append(cells)
        parts += ["", _markdown_table(header, body), "", "### Spikes and cost", ""]
        header = ["method", "events", "spikes", "worst spike-time error (ms)", "missing", "extra",
                  *(f"rel. L2 {s}" for s in states), "compile (s)", "run (s)", "status"]
        if published is not None:
            header.append("published time (s)")
        body = []
        for item in self.summary:
            cells = [item["method"], item["events"], str(item["spikes"]), _error(item["worst_spike_error_ms"]),
                     str(item["missing"]), str(item["extra"]), *(_error(item[f"relative_l2_{s}"]) for s in states),
                     f"{item['compile_time_s']:.3f}", f"{item['run_time_s']:.4f}", item["status"]]
            if published is not None:
                cells.append(f"{published.time_s[item['method']]:g}" if item["method"] in published.time_s else "—")
            body.append(cells)
        parts.append(_markdown_table(header, body))
        notes = [f"- {item['method']} ({item['events']}): {item['message']}"
                 for item in self.summary if item["message"]]
        if notes:
            parts += ["", *notes]
        return "\n".join(parts) + "\n"

    def to_csv(self, path) -> None:
        """One line per run and time: values, |errors|, published values (if any) and the run's spike summary."""
        _write_csv(path, *self._csv())

    def _csv(self):
        states, published = self.states, self.published
        summary = {(item["method"], item["events"]): item for item in self.summary}
        header = ["method", "events", "t_ms", *states, *(f"abs_err_{s}" for s in states)]
        header += [f"published_{s}" for s in states] if published is not None else []
        header += ["spikes", "worst_spike_time_error_ms", "missing", "extra", *(f"relative_l2_{s}" for s in states),
                   "compile_time_s", "run_time_s", "status"]
        rows = []
        for row in self.rows:
            item = summary[(row["method"], row["events"])]
            rows.append([row["method"], row["events"], row["t"], *(row[s] for s in states),
                         *(row[f"abs_err_{s}"] for s in states),
                         *((row[f"published_{s}"] for s in states) if published is not None else ()),
                         item["spikes"], item["worst_spike_error_ms"], item["missing"], item["extra"],
                         *(item[f"relative_l2_{s}"] for s in states), item["compile_time_s"], item["run_time_s"],
                         item["status"]])
        return header, rows

    def write(self, out_dir) -> Path:
        """Write ``table.md``, ``table.csv``, ``traces.png``, ``phase_plane.png`` (models with two or more states)
        and ``spike_errors.png`` into the report folder ``out_dir`` (:func:`neurospike.reports.write`)."""
        writers = {
            "table.md": lambda path: path.write_text(self.markdown()),
            "table.csv": lambda path: _write_csv(path, *self._csv()),
            "traces.png": self.plot_traces,
            "spike_errors.png": self.plot_spike_errors,
        }
        if len(self.states) >= 2:
            writers["phase_plane.png"] = self.plot_phase_plane
        reports.write(out_dir, writers)
        return Path(out_dir)

    # --- figures ------------------------------------------------------------------------------------------------
    def _runs_by_events(self):
        # a PINN method trains once, under the first events mode only
        return [(mode, [(m, self.runs[(m, mode)]) for m in self.methods if (m, mode) in self.runs])
                for mode in self.events]

    def plot_traces(self, path) -> None:
        save(self.traces_figure(), path)

    def traces_figure(self, samples: int = 4001):
        """Per state: the state against t over the reference, and under it |state − reference| on a log axis at
        ``samples`` common times (each run by its dense output); one column per events mode."""
        states, colours = self.states, _colours(self.methods)
        fig, axes = subplots(2 * len(states), len(self.events), sharex=True, sharey="row", squeeze=False,
                             figsize=(6.5 * len(self.events) + 1.8, 3.6 * len(states) + 1.0),
                             gridspec_kw={"height_ratios": [2, 1.3] * len(states)})
        grid = np.linspace(self.reference.t[0], self.reference.t[-1], samples)
        for column, (mode, runs) in enumerate(self._runs_by_events()):
            for row, state in enumerate(states):
                ax, ax_error = axes[2 * row, column], axes[2 * row + 1, column]
                unit = self.units.get(state, "")
                ax.plot(self.reference.t, self.reference.states[state], color="0.6", lw=3, label="reference")
                for method, run in runs:
                    ax.plot(run.t, run.states[state], color=colours[method], lw=0.9, label=method)
                    inside = grid[_times_in_run(run, grid)]
                    error = state_errors(run, self.reference, inside)[state]
                    ax_error.semilogy(inside, np.where(error > 0, error, np.nan), color=colours[method], lw=0.8,
                                      label=method)
                for t in self.times:
                    ax.axvline(t, color="0.85", lw=0.8, ls=":", zorder=0)
                ax_error.set_yscale("log")
                ax_error.grid(True, which="major", alpha=0.3)
                ax.set_ylabel(axis_label(state, unit))
                ax_error.set_ylabel(axis_label(f"|{state} − {state}$_{{ref}}$|", unit))
            axes[0, column].set_title(f"events = {mode}: {EVENT_DESCRIPTIONS[mode]}", fontsize=10)
            axes[-1, column].set_xlabel("t (ms)")
        legend_outside(axes[0, -1])
        fig.suptitle(f"{self.model.name}" + (f" [{self.preset}]" if self.preset else "") + f", dt = {self.dt:g} ms: "
                     f"traces and their error against the reference ({samples} common times, dense output)")
        return fig

    def plot_phase_plane(self, path) -> None:
        save(self.phase_plane_figure(), path)

    def phase_plane_figure(self):
        """Second state against the first, per events mode, with the model's nullclines where it has them."""
        x_name, y_name = self.states[:2]
        colours = _colours(self.methods)
        fig, axes = subplots(1, len(self.events), sharex=True, sharey=True, squeeze=False,
                             figsize=(6.5 * len(self.events) + 2.2, 5.0))
        ref_x, ref_y = self.reference.states[x_name], self.reference.states[y_name]
        x_pad, y_pad = 0.05 * np.ptp(ref_x) + 1e-9, 0.1 * np.ptp(ref_y) + 1e-9
        x_limits = (ref_x.min() - x_pad, ref_x.max() + x_pad)
        y_limits = (ref_y.min() - y_pad, ref_y.max() + y_pad)
        for ax, (mode, runs) in zip(axes[0], self._runs_by_events()):
            self._draw_nullclines(ax, x_limits)
            ax.plot(ref_x, ref_y, color="0.6", lw=3, label="reference")
            for method, run in runs:
                ax.plot(run.states[x_name], run.states[y_name], color=colours[method], lw=0.8, label=method)
            ax.set_xlim(*x_limits)
            ax.set_ylim(*y_limits)
            ax.set_xlabel(axis_label(x_name, self.units.get(x_name, "")))
            ax.set_ylabel(axis_label(y_name, self.units.get(y_name, "")))
            ax.set_title(f"events = {mode}: {EVENT_DESCRIPTIONS[mode]}", fontsize=10)
        legend_outside(axes[0, -1])
        fig.suptitle(f"{self.model.name}: phase plane {y_name} vs {x_name}")
        return fig

    def _draw_nullclines(self, ax, x_limits) -> None:
        if self.model.nullclines is None or self.current is None:
            return
        x = np.linspace(*x_limits, 600)
        samples = np.asarray(self.current(np.linspace(self.reference.t[0], self.reference.t[-1], 4001)), dtype=float)
        levels = np.unique(np.round(np.ravel(samples), 9))
        levels = levels if levels.size <= 3 else np.array([levels.min(), levels.max()])
        curves = [self.model.nullclines(x, self.reference.params, float(level)) for level in levels]
        unit = f" {self.model.current_unit}" if self.model.current_unit else ""
        for k in range(len(curves[0])):
            name = self.states[k] if len(curves[0]) == len(self.states) else f"{k + 1}"
            colour = "black" if k == 0 else "tab:gray"
            if all(np.allclose(curve[k], curves[0][k]) for curve in curves):  # does not depend on the input
                ax.plot(x, np.broadcast_to(curves[0][k], x.shape), color=colour, lw=1, ls="--",
                        label=f"{name}-nullcline")
                continue
            for line_style, level, curve in zip(("--", "-", "-."), levels, curves):
                ax.plot(x, np.broadcast_to(curve[k], x.shape), color=colour, lw=1, ls=line_style,
                        label=typeset(f"{name}-nullcline, I = {level:g}{unit}"))

    def plot_spike_errors(self, path) -> None:
        save(self.spike_errors_figure(), path)

    def spike_errors_figure(self):
        """|spike-time error| of each matched spike against the reference spike time, per events mode."""
        colours = _colours(self.methods)
        fig, axes = subplots(1, len(self.events), sharey=True, squeeze=False,
                             figsize=(6.5 * len(self.events) + 3.0, 4.2))
        spikes = self.reference.spikes
        for ax, (mode, runs) in zip(axes[0], self._runs_by_events()):
            drawn = False
            for method, run in runs:
                match = self.matches[(method, mode)]
                if not match.errors.size:
                    continue
                label = f"{method} (worst {match.worst_matched:.2g} ms"
                label += f", {match.missing.size} missing" if match.missing.size else ""
                label += f", {match.extra.size} extra" if match.extra.size else ""
                ax.semilogy(spikes[match.reference_indices], np.maximum(np.abs(match.errors), 1e-16), "o-",
                            color=colours[method], ms=4, lw=1, label=label + ")")
                drawn = True
            if drawn:
                legend_outside(ax)
            else:
                ax.text(0.5, 0.5, "no matched spikes", ha="center", va="center", transform=ax.transAxes)
            ax.set_xlabel("reference spike time (ms)")
            ax.set_ylabel("|spike time − reference| (ms)")
            ax.set_title(f"events = {mode}: {EVENT_DESCRIPTIONS[mode]}", fontsize=10)
        fig.suptitle(f"{self.model.name}: spike-time error, dt = {self.dt:g} ms")
        return fig


def compare(model, methods, *, dt, times, preset=None, params=None, current=None, t_end=None,
            events=("located", "step"), out=None, max_rate=None, progress: Progress | None = None,
            pinn=None) -> Comparison:
    """Run each method (for each events mode) at step ``dt`` and the reference, and measure each against the
    reference at ``times`` (ms) and spike by spike (:func:`~neurospike.analysis.match_spikes`).

    ``out`` given: write the report there (:meth:`Comparison.write`), nothing if any run fails. ``progress``
    is called as ``progress(done, total, label)`` after each run. PINN methods train once (their spikes are
    always located; ``events`` does not apply), with the options ``pinn`` (see :func:`neurospike.simulate`).
    """
    methods = _check_methods(methods)
    reports.check_folder(out)
    dt = _check_step(dt)
    modes = _check_events(events)
    problem = resolve(model, preset, params, current, t_end)
    model_obj, chosen, values, current_obj, t_end = (problem.model, problem.preset, problem.params, problem.current,
                                                     problem.t_end)
    times = np.atleast_1d(np.asarray(times, dtype=float))
    if times.size == 0:
        raise NeurospikeError("no comparison times given")
    outside = times[~np.isfinite(times) | (times < 0.0) | (times > t_end)]
    if outside.size:
        raise NeurospikeError(f"comparison time {outside[0]:g} is outside the run [0, {t_end:g}] ms")
    common = dict(preset=chosen.name, params=params, current=current_obj, t_end=t_end)
    if max_rate is not None:
        common["max_rate"] = max_rate
    trained = [m for m in methods if registry.get(m).trains]
    total, done = 1 + (len(methods) - len(trained)) * len(modes) + len(trained), 0

    def advance(label):
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total, label)

    reference = simulate(model_obj, method="reference", **common)
    advance("reference")
    runs, matches = {}, {}
    for method in methods:
        for mode in (modes[:1] if method in trained else modes):
            extra = {"pinn": pinn} if method in trained else {}
            runs[(method, mode)] = simulate(model_obj, method=method, dt=dt, events=mode, **common, **extra)
            matches[(method, mode)] = match_spikes(reference.spikes, runs[(method, mode)].spikes)
            advance(f"{method} ({mode})")

    published = published_table(model_obj, chosen.name, values, custom_current=current is not None)
    states = list(reference.states)
    rows, summary = [], []
    for (method, mode), run in [(("reference", "exact"), reference), *runs.items()]:
        inside = _times_in_run(run, times) & _times_in_run(reference, times)
        at_times = {s: np.full(times.size, np.nan) for s in states}
        errors = {s: np.full(times.size, np.nan) for s in states}
        for s, series in run.at(times[inside]).states.items():
            at_times[s][inside] = series
        if method != "reference":
            for s, series in state_errors(run, reference, times[inside]).items():
                errors[s][inside] = series
        for k, t in enumerate(times):
            row = {"method": method, "events": mode, "t": float(t)}
            for s in states:
                row[s], row[f"abs_err_{s}"] = float(at_times[s][k]), float(errors[s][k])
                row[f"published_{s}"] = published.value(method, s, t) if published is not None else float("nan")
            rows.append(row)
        match = matches.get((method, mode))
        summary.append({
            "method": method, "events": mode, "spikes": int(np.size(run.spikes)),
            "worst_spike_error_ms": match.worst_matched if match else float("nan"),
            "missing": int(match.missing.size) if match else 0, "extra": int(match.extra.size) if match else 0,
            **{f"relative_l2_{s}": relative_l2(run, reference, s) if match else float("nan") for s in states},
            "compile_time_s": float(run.compile_time_s), "run_time_s": float(run.run_time_s),
            "status": run.status, "message": run.message,
        })
    comparison = Comparison(model=model_obj, preset=chosen.name, dt=dt, times=times, events=modes, methods=methods,
                            reference=reference, runs=runs, matches=matches, rows=rows, summary=summary,
                            current=current_obj, published=published)
    if out is not None:
        comparison.write(out)
    return comparison


# --- convergence ----------------------------------------------------------------------------------------------
@dataclass
class Convergence:
    """Error against step size for several methods, with the observed orders (least-squares log-log slopes).

    ``errors[method][k]`` is the error at ``dts[k]`` (see ``measure``); ``spike_errors[method][k]`` the worst
    spike-time error (ms) over the spikes (NaN without spikes, or when a spike is missing or extra).
    """

    model: str
    preset: str
    state: str
    unit: str
    events: str
    dts: np.ndarray
    methods: tuple[str, ...]
    errors: dict[str, np.ndarray]
    spike_errors: dict[str, np.ndarray]
    orders: dict[str, float]
    spike_orders: dict[str, float]
    measure: str
    reference: Trajectory
    notes: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        unit = f" ({self.unit})" if self.unit else ""
        has_spikes = any(np.isfinite(e).any() for e in self.spike_errors.values())
        header = ["method", "observed order", *(f"dt = {dt:g}" for dt in self.dts)]
        body = [[m, _order(self.orders[m]), *(_error(e) for e in self.errors[m])] for m in self.methods]
        parts = [f"## {self.model}" + (f" [{self.preset}]" if self.preset else "") + f": convergence "
                 f"(events = {self.events})", "", f"Error{unit}: {self.measure}.", "", _markdown_table(header, body)]
        if has_spikes:
            body = [[m, _order(self.spike_orders[m]), *(_error(e) for e in self.spike_errors[m])] for m in self.methods]
            parts += ["", "Worst spike-time error (ms):", "", _markdown_table(header, body)]
        if self.notes:
            parts += ["", *(f"- {note}" for note in self.notes)]
        return "\n".join(parts) + "\n"

    def _csv(self):
        header = ["method", "dt_ms", f"error_{self.state}", "observed_order", "worst_spike_time_error_ms",
                  "spike_order"]
        rows = [[m, float(dt), float(self.errors[m][k]), self.orders[m], float(self.spike_errors[m][k]),
                 self.spike_orders[m]] for m in self.methods for k, dt in enumerate(self.dts)]
        return header, rows

    def to_csv(self, path) -> None:
        _write_csv(path, *self._csv())

    def write(self, out_dir) -> Path:
        """Write ``convergence.png``, ``.csv`` and ``.md`` into the report folder ``out_dir``
        (:func:`neurospike.reports.write`)."""
        reports.write(out_dir, {
            "convergence.png": self.plot,
            "convergence.csv": lambda path: _write_csv(path, *self._csv()),
            "convergence.md": lambda path: path.write_text(self.markdown()),
        })
        return Path(out_dir)

    def plot(self, path) -> None:
        save(self.figure(), path)

    def figure(self):
        """log-log error against dt per method, the fitted order in the legend (and spike-time errors if any)."""
        panels = [(self.errors, self.orders, axis_label(f"error in {self.state}", self.unit))]
        if any(np.isfinite(e).any() for e in self.spike_errors.values()):
            panels.append((self.spike_errors, self.spike_orders, "worst spike-time error (ms)"))
        fig, axes = subplots(1, len(panels), squeeze=False, figsize=(6.0 * len(panels) + 2.4, 4.6))
        colours = _colours(self.methods)
        for ax, (errors, orders, ylabel) in zip(axes[0], panels):
            for method in self.methods:
                usable = np.isfinite(errors[method]) & (errors[method] > 0)
                if usable.any():
                    ax.loglog(self.dts[usable], errors[method][usable], "o-", color=colours[method], ms=5,
                              label=f"{method}: order {_order(orders[method])}")
            ax.set_xlabel("dt (ms)")
            ax.set_ylabel(ylabel)
            ax.grid(True, which="both", alpha=0.3)
            legend_outside(ax)
        fig.suptitle(f"{self.model}" + (f" [{self.preset}]" if self.preset else "")
                     + f": convergence against the reference (events = {self.events})", fontsize=11)
        return fig


def _order(value: float) -> str:
    return f"{value:.2f}" if np.isfinite(value) else "—"


def _sample_error(run: Trajectory, reference: Trajectory, state: str, samples: np.ndarray, guard: float,
                  resets: bool) -> tuple[float, SpikeMatch]:
    """max |run − reference| of ``state`` at ``samples``; with resets, away from every spike (see convergence)."""
    match = match_spikes(reference.spikes, run.spikes)
    if not match.complete or run.status != "success":
        return float("nan"), match
    keep = np.ones(samples.shape, dtype=bool)
    if resets:
        ref_times, run_times = reference.spikes[match.reference_indices], run.spikes[match.candidate_indices]
        for early, late in zip(np.minimum(ref_times, run_times), np.maximum(ref_times, run_times)):
            keep &= (samples < early - guard) | (samples > late + guard)
    if not keep.any():
        return float("nan"), match
    return float(np.max(state_errors(run, reference, samples[keep])[state])), match


def convergence(model, methods, dts, *, preset=None, params=None, current=None, t_end=None, events="located",
                state="v", out=None, progress: Progress | None = None) -> Convergence:
    """Error against step size for each method, measured against the reference, with observed orders.

    The reference is DOP853 at rtol = atol = ``REFERENCE_TOLERANCE`` (1e-12). The error of a run is the largest
    |state − reference state| at the sample times t0 + k·max(dts) (nodes of every run when the steps divide each
    other; otherwise each run's dense output). For a model whose spikes reset the state, the two solutions lie
    on different branches between a spike and its partner, an O(1) difference that says nothing about the
    order; so the samples within max(dts) of the interval between each reference spike and its partner are
    left out, and a run with a missing or extra spike gets NaN. The spike timing is measured separately: the
    worst spike-time error, with its own order.
    """
    methods = _check_methods(methods)
    reports.check_folder(out)
    if not isinstance(events, str):
        raise NeurospikeError(f"events={events!r}: convergence takes one mode, 'located' or 'step'")
    (events,) = _check_events(events)
    steps = np.atleast_1d(np.asarray([_check_step(dt) for dt in np.ravel(np.asarray(dts, dtype=object))]))
    steps = np.unique(steps)[::-1]
    if steps.size < 2:
        raise NeurospikeError(f"dts={', '.join(f'{x:g}' for x in steps)}: a convergence study needs at "
                              f"least two different steps")
    problem = resolve(model, preset, params, current, t_end)
    model_obj, chosen, current_obj, t_end = problem.model, problem.preset, problem.current, problem.t_end
    model_obj.state_index(state)
    common = dict(preset=chosen.name, params=params, current=current_obj, t_end=t_end)
    total, done = 1 + len(methods) * steps.size, 0

    def advance(label):
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total, label)

    reference = simulate(model_obj, method="reference", rtol=REFERENCE_TOLERANCE, atol=REFERENCE_TOLERANCE, **common)
    advance("reference")
    coarsest = float(steps[0])
    samples = coarsest * np.arange(int(math.floor(t_end / coarsest + 1e-9)) + 1)
    resets = model_obj.spike is not None and model_obj.spike.reset is not None
    errors, spike_errors, notes = {}, {}, []
    for method in methods:
        errors[method], spike_errors[method] = np.full(steps.size, np.nan), np.full(steps.size, np.nan)
        for k, dt in enumerate(steps):
            run = simulate(model_obj, method=method, dt=float(dt), events=events, **common)
            errors[method][k], match = _sample_error(run, reference, state, samples, coarsest, resets)
            spike_errors[method][k] = match.worst if match.errors.size else np.nan
            if run.status != "success":
                notes.append(f"{method}, dt = {dt:g}: {run.message}")
            elif not match.complete:
                notes.append(f"{method}, dt = {dt:g}: {match.missing.size} missing and {match.extra.size} extra "
                             f"spike(s) against the reference's {reference.spikes.size}; error not defined")
            advance(f"{method} dt={dt:g}")
    measure = (f"max |{state} − {state}_ref| at t = k·{coarsest:g} ms"
               + (f", leaving out {coarsest:g} ms around each spike and its partner"
                  if resets and reference.spikes.size else ""))
    result = Convergence(
        model=model_obj.name, preset=chosen.name, state=state, unit=reference.state_units.get(state, ""),
        events=events, dts=steps, methods=methods, errors=errors, spike_errors=spike_errors,
        orders={m: observed_order(steps, errors[m]) for m in methods},
        spike_orders={m: observed_order(steps, spike_errors[m]) for m in methods},
        measure=measure, reference=reference, notes=notes)
    if out is not None:
        result.write(out)
    return result
