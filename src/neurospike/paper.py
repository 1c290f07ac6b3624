"""``neurospike paper splitting-pinn``: the PINN-versus-classical table and figures of the splitting-PINN study
(``../shared/seeds/splitting_pinn_neuron_models.txt``) for four cases, each against an independent truth:

1. Izhikevich 2007 "rs" (the seed's preset), 0–1000 ms: ``pinn-reset`` and the vanilla ``pinn`` against the
   adaptive ``reference``; rk4 beside them; the "Learning to Spike" PINN row quoted in the notes.
2. Hodgkin–Huxley, 10 µA/cm², 0–100 ms (7 spikes): ``splitting-pinn`` (Strang and Lie), ``pinn``,
   ``pinn-marching`` against ``reference``; the classical ``strang`` at the window length beside them.
3. FO-HH, every state of order α = 0.8, 0–50 ms: ``fpinn`` with Lie splitting and without, against ``fast-l1``
   at dt = 0.001 ms; ``l1`` on the fPINN's grid beside them.
4. LIF (2.5 nA) with every PINN method against the closed form (spikes at k·τ ln 5), and FO-LIF (α = 0.7):
   ``fpinn`` against ``fast-l1`` at a fine step, its first spike against the root of
   E_L + (I/g_L)(1 − E_α(−(g_L/C) t^α)) = v_th (Mittag-Leffler, exact).

Per run: relative L2 error of v (and of the second state), spikes found / expected, worst spike-time error,
training (or run) time, inference time, final loss. Figures per case: v and the second state against the truth,
the residual over time, the training loss. ``quick=True`` shortens every case (CI: under 3 minutes).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
from scipy.optimize import brentq

from .analysis import match_spikes, relative_l2
from .figures import axis_label, legend_outside, save, subplots, typeset
from . import reports
from .comparison import _write_csv
from .errors import NeurospikeError
from .mittag_leffler import mittag_leffler
from .simulate import simulate
from .trajectory import Trajectory, _atomic_write

PAPERS = ("splitting-pinn",)


@dataclass
class Run:
    """One method in one case (``options``: simulate keyword arguments)."""

    method: str
    options: dict[str, Any] = field(default_factory=dict)
    label: str | None = None

    @property
    def name(self) -> str:
        return self.label or self.method


@dataclass
class Case:
    key: str
    title: str
    model: str
    setup: dict[str, Any]          # simulate keyword arguments shared by every run and the truth
    truth: dict[str, Any]          # simulate keyword arguments of the truth (method included)
    runs: list[Run]
    note: str = ""
    exact_first_spike: float | None = None
    exact_spikes: Callable[[float], np.ndarray] | None = None


def _fo_lif_first_spike(alpha, current=2.5, C=1.0, g_L=0.1, E_L=-70.0, v_th=-50.0):
    """The root of E_L + (I/g_L)(1 − E_α(−(g_L/C) t^α)) = v_th: the first spike of fractional LIF (exact)."""
    def gap(t):
        return E_L + current / g_L * (1.0 - float(mittag_leffler(-(g_L / C) * t ** alpha, alpha))) - v_th
    return brentq(gap, 1e-6, 1e4, xtol=1e-12)


def cases(quick: bool) -> list[Case]:
    """The four cases (shortened with ``quick``)."""
    izh_end, hh_end, fohh_end, lif_end, folif_end = ((300.0, 20.0, 10.0, 50.0, 150.0) if quick else
                                                     (1000.0, 100.0, 50.0, 100.0, 300.0))
    whole = {"adam_steps": 1500, "lbfgs_steps": 300} if quick else {}
    tau_ln5 = 10.0 * math.log(5.0)
    return [
        Case("izhikevich2007_rs", "Izhikevich 2007 RS (seed 2 preset)", "izhikevich2007",
             dict(preset="rs", t_end=izh_end), dict(method="reference"),
             [Run("pinn-reset"), Run("pinn", {"pinn": whole}), Run("rk4", {"dt": 0.1}, "rk4 (dt 0.1)")],
             note="Learning to Spike's PINN (4x64 tanh, data + reset, 5000 Adam epochs) published v = -54.63, "
                  "-51.94, -49.41, -54.09 mV at 250/500/750/1000 ms; the exact values are in the compare table."),
        Case("hh_tonic", "Hodgkin-Huxley, 10 µA/cm²", "hh", dict(preset="tonic", t_end=hh_end, current=10.0),
             dict(method="reference"),
             [Run("splitting-pinn", {"pinn": {"splitting": "strang", "window": 0.02}}, "splitting-pinn strang"),
              Run("splitting-pinn", {"pinn": {"splitting": "lie", "window": 0.02}}, "splitting-pinn lie"),
              Run("pinn", {"pinn": whole}), Run("pinn-marching"),
              Run("strang", {"dt": 0.02}, "strang (exact sub-flows, dt 0.02)")]),
        Case("fo_hh", "FO-HH, α = 0.8 (all states)", "hh",
             dict(preset="tonic", t_end=fohh_end, current=10.0, alpha=0.8),
             dict(method="fast-l1", dt=0.001),
             [Run("fpinn", {"dt": 0.01, "pinn": {"splitting": "lie"}}, "fpinn lie"),
              Run("fpinn", {"dt": 0.01}, "fpinn (one network)"), Run("l1", {"dt": 0.01}, "l1 (dt 0.01)")],
             note="truth: fast-l1 at dt = 0.001 ms"),
        Case("lif", "LIF, 2.5 nA", "lif", dict(preset="tonic", t_end=lif_end, current=2.5),
             dict(method="reference"),
             [Run("pinn", {"pinn": whole}), Run("pinn-data", {"dt": 0.1, "pinn": whole}), Run("pinn-marching"),
              Run("pinn-reset"), Run("rk4", {"dt": 0.1}, "rk4 (dt 0.1)")],
             exact_spikes=lambda t_end: tau_ln5 * np.arange(1, int(t_end / tau_ln5) + 1)),
        Case("fo_lif", "FO-LIF, α = 0.7, 2.5 nA", "lif", dict(preset="tonic", t_end=folif_end, current=2.5,
                                                                  alpha=0.7),
             dict(method="fast-l1", dt=0.005),
             [Run("fpinn", {"dt": 0.05}, "fpinn (dt 0.05)"), Run("l1", {"dt": 0.05}, "l1 (dt 0.05)")],
             note="truth: fast-l1 at dt = 0.005 ms; first spike also against the Mittag-Leffler root",
             exact_first_spike=_fo_lif_first_spike(0.7)),
    ]


def _row(case: Case, run: Run, result: Trajectory, truth: Trajectory) -> dict[str, Any]:
    states = list(result.states)
    second = states[1] if len(states) > 1 else None
    expected = case.exact_spikes(case.setup["t_end"]) if case.exact_spikes else truth.spikes
    match = match_spikes(expected, result.spikes)
    training = result.training or {}
    losses = training.get("loss")
    return {
        "case": case.key, "method": run.name,
        "rel_l2_v": relative_l2(result, truth, states[0]),
        "rel_l2_second": relative_l2(result, truth, second) if second else float("nan"),
        "spikes": int(np.size(result.spikes)), "expected_spikes": int(np.size(expected)),
        "worst_spike_error_ms": match.worst_matched,
        "first_spike_error_ms": (abs(result.spikes[0] - case.exact_first_spike)
                                 if case.exact_first_spike is not None and np.size(result.spikes) else float("nan")),
        "train_or_run_s": float(result.run_time_s), "compile_s": float(result.compile_time_s),
        "inference_s": float(training.get("inference_time_s", float("nan"))),
        "final_loss": float(np.max(losses)) if losses else float("nan"),
        "windows": int(training.get("windows", 0)),
    }


COLUMNS = ["case", "method", "rel_l2_v", "rel_l2_second", "spikes", "expected_spikes", "worst_spike_error_ms",
           "first_spike_error_ms", "train_or_run_s", "compile_s", "inference_s", "final_loss", "windows"]


def _markdown(rows, notes) -> str:
    def cell(x):
        if isinstance(x, float):
            return "—" if math.isnan(x) else f"{x:.3g}"
        return str(x)
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cell(row[c]) for c in COLUMNS) + " |" for row in rows]
    return "\n".join(lines + [""] + [f"- {note}" for note in notes if note]) + "\n"


def _figures(case: Case, truth: Trajectory, results: dict[str, Trajectory]):
    """The case's figures by file name: every state against the truth, the residual over time and the training
    loss (per optimiser step of the first window, and the final loss per window), each titled with the case."""
    states = list(truth.states)
    traces, axes = subplots(len(states), 1, figsize=(11, 2.3 * len(states) + 0.6), sharex=True, squeeze=False)
    for ax, state in zip(axes[:, 0], states):
        ax.plot(truth.t, truth.states[state], color="black", lw=2.2, alpha=0.35, label="truth")
        for name, result in results.items():
            if state in result.states:
                ax.plot(result.t, result.states[state], lw=0.9, label=name)
        ax.set_ylabel(axis_label(state, truth.state_units.get(state, "")))
    legend_outside(axes[0, 0])
    axes[-1, 0].set_xlabel("t (ms)")
    axes[0, 0].set_title(typeset(f"{case.title}: states against the truth ({truth.method})"))
    residual, ax_r = subplots(figsize=(11, 3.0))
    loss, (ax_steps, ax_windows) = subplots(1, 2, figsize=(12, 3.6))
    for k, (name, result) in enumerate(results.items()):
        training, colour = result.training, f"C{k}"
        if not training:
            continue
        if "residual_t" in training:
            values = np.abs(np.asarray(training["residual"], dtype=float))
            ax_r.semilogy(training["residual_t"], np.where(values > 0, values, np.nan), lw=0.8, color=colour,
                          label=name)
        if training.get("loss_history"):
            ax_steps.semilogy(np.asarray(training["loss_history"], dtype=float), lw=0.8, color=colour, label=name)
        if training.get("loss"):
            final = np.asarray(training["loss"], dtype=float)
            ax_windows.semilogy(np.arange(1, final.size + 1), final, "." if final.size > 1 else "o", ms=3,
                                color=colour, label=name)
    ax_r.set_xlabel("t (ms)")
    ax_r.set_ylabel(axis_label("|normalised ODE residual|", "1"))
    ax_r.set_title(typeset(f"{case.title}: residual of the trained networks"))
    ax_steps.set_xlabel("optimiser step in the first window (number)")
    ax_steps.set_ylabel(axis_label("training loss", "1"))
    ax_steps.set_title("loss while training the first window", fontsize=9)
    ax_windows.set_xlabel("window (number)")
    ax_windows.set_ylabel(axis_label("final loss", "1"))
    ax_windows.set_title("final loss of each window", fontsize=9)
    for ax in (ax_steps, ax_windows):
        if not ax.lines:
            loss.delaxes(ax)
    loss.suptitle(typeset(f"{case.title}: training loss"))
    legend_outside(ax_r)
    if loss.axes:  # one legend for both panels (a run has one colour in both), beside the last
        runs = {label: handle for ax in loss.axes for handle, label in zip(*ax.get_legend_handles_labels())}
        legend_outside(loss.axes[-1], handles=list(runs.values()), labels=list(runs))
    return {f"{case.key}_states.png": traces, f"{case.key}_residual.png": residual, f"{case.key}_loss.png": loss}


def splitting_pinn_report(out, quick: bool = False, progress=None, only: tuple[str, ...] | None = None):
    """Run every case and write ``paper_table.md``/``.csv`` and the figures into the report folder ``out``
    (:func:`neurospike.reports.write`; nothing on failure).
    Returns (rows, markdown)."""
    reports.check_folder(out)
    chosen = cases(quick)
    if only:
        unknown = [k for k in only if k not in {c.key for c in chosen}]
        if unknown:
            raise NeurospikeError(f"unknown case {unknown[0]!r}; cases are {', '.join(c.key for c in chosen)}")
        chosen = [c for c in chosen if c.key in only]
    total = sum(1 + len(c.runs) for c in chosen)
    done, rows, notes, figures = 0, [], [], {}
    began = time.perf_counter()
    for case in chosen:
        truth_options = dict(case.setup, **case.truth)
        truth = simulate(case.model, **truth_options)
        done += 1
        if progress:
            progress(done, total, f"{case.key}: truth")
        results = {}
        for run in case.runs:
            result = simulate(case.model, method=run.method, **dict(case.setup, **run.options))
            results[run.name] = result
            rows.append(_row(case, run, result, truth))
            done += 1
            if progress:
                progress(done, total, f"{case.key}: {run.name}")
        notes.append(f"{case.key}: {case.note}" if case.note else "")
        figures.update(_figures(case, truth, results))
    notes.append(f"{'quick' if quick else 'full'} report, {time.perf_counter() - began:.0f} s in all")
    markdown = _markdown(rows, notes)
    if out is not None:
        writers = {"paper_table.md": lambda p: _atomic_write(p, lambda f: f.write(markdown), text=True),
                   "paper_table.csv": lambda p: _write_csv(p, COLUMNS, [[r[c] for c in COLUMNS] for r in rows])}
        writers.update({name: (lambda p, fig=fig: save(fig, p)) for name, fig in figures.items()})
        reports.write(out, writers)
    return rows, markdown
