"""Figures written to files: matplotlib's object-oriented ``Figure`` (it draws on its own Agg canvas), never
pyplot, so writing a report changes neither the user's backend (no ``matplotlib.use``) nor pyplot's state.
matplotlib is imported only when a figure is made.

Shared pieces of every figure: axis labels with units typeset by mathtext (:func:`axis_label`), legends beside
the axes so they never cover data (:func:`legend_outside`), a gallery of traces with their input under each panel
(:func:`trace_gallery`) and saving without a half-written file (:func:`save`).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

DIMENSIONLESS = ("", "1")
_MATHTEXT = {"µ": r"$\mu$", "μ": r"$\mu$", "²": r"$^2$", "³": r"$^3$", "⁻¹": r"$^{-1}$", "Ω": r"$\Omega$"}


def subplots(nrows: int = 1, ncols: int = 1, *, figsize=None, **kwargs):
    """(figure, axes) as ``pyplot.subplots`` returns them, for a figure that will be saved, not shown."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=figsize, layout="constrained")  # makes room for legends beside the axes
    return figure, figure.subplots(nrows, ncols, **kwargs)


def typeset(text: str) -> str:
    """``text`` with µ, Ω, ², ³ and ⁻¹ written in mathtext, so "µA/cm²" is typeset as a unit."""
    for plain, typeset_form in _MATHTEXT.items():
        text = text.replace(plain, typeset_form)
    return text.replace("$$", "")


def unit_text(unit: str | None) -> str:
    """A unit as an axis shows it: the unit itself without a trailing remark ("pA (dimensionless in the 2003
    paper)" -> "pA"), "dimensionless" for "" or "1", typeset (:func:`typeset`)."""
    unit = re.sub(r"\s*\(.*\)\s*$", "", (unit or "").strip())
    return "dimensionless" if unit in DIMENSIONLESS else typeset(unit)


def axis_label(quantity: str, unit: str | None) -> str:
    """``"quantity (unit)"`` with the unit as :func:`unit_text` writes it, e.g. ``I (µA/cm²)`` typeset."""
    return f"{quantity} ({unit_text(unit)})"


def legend_outside(ax, **kwargs):
    """The axes' legend (or one of the ``handles``/``labels`` given) beside it, right of the plotting area, so it
    covers no data; none when there is nothing to label."""
    if not (kwargs.get("handles") or ax.get_legend_handles_labels()[0]):
        return None
    options = dict(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, fontsize=8, frameon=False)
    return ax.legend(**{**options, **kwargs})


def mark_spikes(ax, spikes, label: str | None = "spike times") -> None:
    """Short ticks at the top of ``ax`` at each spike time (a rug that does not hide the trace)."""
    spikes = np.ravel(np.asarray(spikes, dtype=float))
    if spikes.size:
        ax.plot(spikes, np.ones_like(spikes), "|", color="0.35", ms=7, transform=ax.get_xaxis_transform(),
                label=label)


def save(figure, path, dpi: int = 120) -> None:
    """Write ``figure`` to ``path`` (format from its extension, default PNG) with everything drawn outside the
    axes kept (``bbox_inches="tight"``), atomically: a failure leaves no partial file."""
    from .trajectory import _atomic_write

    path = Path(path)
    _atomic_write(path, lambda f: figure.savefig(f, format=path.suffix.lstrip(".").lower() or "png", dpi=dpi,
                                                  bbox_inches="tight"), text=False)


def trace_gallery(panels, state: str = "v", ncols: int = 4, panel_size=(3.6, 2.7)):
    """One panel per entry of ``panels`` — ``{title: (traces, current)}`` with ``traces`` a list of
    (trajectory, line options) and ``current`` the input (a callable of t in ms, or None) — with the input drawn
    on a small axis under the trace. Traces keep their before-reset points, so spike peaks show; the y limits
    are the data's. Outer axes carry the labels with units. Returns the figure."""
    from matplotlib.figure import Figure

    nrows = -(-len(panels) // ncols)
    figure = Figure(figsize=(panel_size[0] * ncols, panel_size[1] * nrows))
    grid = figure.add_gridspec(nrows, ncols, hspace=0.5, wspace=0.28, top=1 - 0.75 / figure.get_figheight(),
                               bottom=0.04, left=0.06, right=0.99)
    for k, (title, (traces, current)) in enumerate(panels.items()):
        cell = grid[k // ncols, k % ncols].subgridspec(2, 1, height_ratios=(3, 1), hspace=0.06)
        ax = figure.add_subplot(cell[0])
        ax_input = figure.add_subplot(cell[1], sharex=ax)
        for trajectory, options in traces:
            ax.plot(trajectory.t, trajectory.states[state], **{"lw": 0.8, **options})
        first = traces[0][0]
        if current is not None:
            t = np.linspace(first.t[0], first.t[-1], 2001)
            t = np.union1d(t, np.ravel(getattr(current, "discontinuities", lambda: [])()))
            t = t[(t >= first.t[0]) & (t <= first.t[-1])]
            ax_input.plot(t, np.broadcast_to(np.asarray(current(t), dtype=float), t.shape), color="C2", lw=0.8,
                          drawstyle="steps-post")
        ax.set_title(title, fontsize=8)
        ax.tick_params(labelsize=6, labelbottom=False)
        ax_input.tick_params(labelsize=6)
        ax_input.locator_params(axis="y", nbins=2)
        if k % ncols == 0:
            ax.set_ylabel(axis_label(state, first.state_units.get(state, "")), fontsize=7)
            ax_input.set_ylabel(axis_label("I", _current_unit(first)), fontsize=7)
        if k // ncols == nrows - 1 or k + ncols >= len(panels):
            ax_input.set_xlabel("t (ms)", fontsize=7)
    handles = {}
    for ax in figure.axes:
        handles.update({label: handle for handle, label in zip(*ax.get_legend_handles_labels())})
    if handles:  # one legend for the whole gallery, above the panels
        figure.legend(handles.values(), handles.keys(), loc="upper center", bbox_to_anchor=(0.5, 1.0),
                      ncol=len(handles), fontsize=8, frameon=False)
    return figure


def _current_unit(trajectory) -> str:
    from .models import get

    from .errors import NeurospikeError

    try:
        return get(trajectory.model).current_unit
    except NeurospikeError:  # a model not in the registry (e.g. from a loaded file): no unit known
        return ""
