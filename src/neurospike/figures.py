"""Figures written to files: matplotlib's object-oriented ``Figure`` (it draws on its own Agg canvas), never
pyplot, so writing a report changes neither the user's backend (no ``matplotlib.use``) nor pyplot's state.
matplotlib is imported only when a figure is made."""

from __future__ import annotations


def subplots(nrows: int = 1, ncols: int = 1, *, figsize=None, **kwargs):
    """(figure, axes) as ``pyplot.subplots`` returns them, for a figure that will be saved, not shown."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=figsize)
    return figure, figure.subplots(nrows, ncols, **kwargs)
