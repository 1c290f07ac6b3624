"""Every figure the CLI and the examples write, read back from its matplotlib objects (not the pixels): each axis
with data has an x and a y label that carries a unit (an axis may take its label from the outer axis of its row or
column, as shared panels do), legends sit beside the data, traces.png has its log-scale error panels, and
``simulate --save-at --plot`` draws the full run with the saved points marked."""

from __future__ import annotations

import csv
import re
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

import neurospike as ns
from neurospike import cli
from neurospike.figures import axis_label, typeset, unit_text
from neurospike.paper import Case, _figures

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
UNIT = re.compile(r"\(([^()]+)\)\s*$")  # "v (mV)", "I ($\mu$A/cm$^2$)", "rate (Hz)", "|v − v_ref| (mV)"


@pytest.fixture
def saved_figures(monkeypatch):
    """{file name: Figure} of every figure saved while the test runs (Figure.savefig recorded, then done)."""
    saved = {}
    original = Figure.savefig

    def record(figure, target, *args, **kwargs):
        name = Path(getattr(target, "name", str(target))).name
        saved[name.removeprefix(".").removesuffix(".partial")] = figure
        return original(figure, target, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", record)
    return saved


@pytest.fixture(autouse=True)
def compilation_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NEUROSPIKE_CACHE", str(tmp_path / "jax-cache"))


def neurospike(*args) -> None:
    assert cli.main([str(a) for a in args]) == 0


def data_axes(figure):
    """The axes that draw data (lines, images, collections), colour bars left out."""
    return [ax for ax in figure.axes if ax.get_label() != "<colorbar>" and (ax.lines or ax.images or ax.collections)]


def named(axis) -> bool:
    """True when the axis's ticks are names (categories such as 'data'/'fit'), which need no unit."""
    texts = [tick.get_text().replace("−", "-") for tick in axis.get_ticklabels()]
    return bool(texts) and not any(re.fullmatch(r"[-+0-9.eE$^{}\\times ]*", text) for text in texts)


def overlaps(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def unlabelled_axes(figure) -> list[str]:
    """'name: problem' for every data axis whose x or y label has no unit, where no axis of the same column (x)
    or row (y) carries one for it."""
    FigureCanvasAgg(figure).draw()
    axes = data_axes(figure)
    problems = []
    for ax in axes:
        box = ax.get_position()
        for which, label, axis, same_band in (
                ("x", ax.get_xlabel(), ax.xaxis, lambda other: other.x0 < box.x1 and box.x0 < other.x1),
                ("y", ax.get_ylabel(), ax.yaxis, lambda other: other.y0 < box.y1 and box.y0 < other.y1)):
            if named(axis):
                continue
            if label:
                if not UNIT.search(label):
                    problems.append(f"{ax.get_title() or ax}: {which} label {label!r} has no unit")
                continue
            band = [o for o in axes if o is not ax and same_band(o.get_position())]
            if not any(UNIT.search(o.get_xlabel() if which == "x" else o.get_ylabel()) for o in band):
                where = "column" if which == "x" else "row"
                problems.append(f"{ax.get_title() or ax}: no {which} label in its {where}")
    return problems


def covered_data(figure) -> list[str]:
    """Legends drawn over an axes' plotting area (a legend beside the axes covers no data)."""
    FigureCanvasAgg(figure).draw()
    legends = [ax.get_legend() for ax in figure.axes if ax.get_legend()] + list(figure.legends)
    return [f"legend {[t.get_text() for t in legend.get_texts()][:2]} over {ax.get_title()!r}"
            for legend in legends for ax in data_axes(figure)
            if overlaps(legend.get_window_extent(), ax.get_window_extent())]


def check(figures: dict) -> None:
    assert figures
    for name, figure in figures.items():
        assert not unlabelled_axes(figure), (name, unlabelled_axes(figure))
        assert not covered_data(figure), (name, covered_data(figure))


# --- the helpers ----------------------------------------------------------------------------------------------

def test_units_are_typeset_and_dimensionless_is_said():
    assert unit_text("µA/cm²") == r"$\mu$A/cm$^2$"
    assert axis_label("I", "µA/cm²") == r"I ($\mu$A/cm$^2$)"
    assert axis_label("m", "1") == axis_label("m", "") == "m (dimensionless)"
    assert unit_text("pA (dimensionless in the 2003 paper)") == "pA"
    assert typeset("HH, 10 µA/cm²") == r"HH, 10 $\mu$A/cm$^2$"


def test_the_unit_check_catches_a_missing_unit():
    figure = Figure()
    ax = figure.subplots()
    ax.plot([0, 1], [0, 1])
    ax.set_xlabel("t (ms)")
    ax.set_ylabel("v; I - 90")
    assert unlabelled_axes(figure) == [f"{ax}: y label 'v; I - 90' has no unit"]
    ax.legend(["v"], loc="center")
    assert covered_data(figure)


# --- the CLI --------------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_simulate_plot_labels_every_state_with_its_unit(tmp_path, saved_figures):
    neurospike("simulate", "hh", "--t-end", "20", "--out", tmp_path / "hh.json", "--plot", tmp_path / "hh.png")
    check(saved_figures)
    labels = [ax.get_ylabel() for ax in saved_figures["hh.png"].axes]
    assert labels == ["v (mV)", "m (dimensionless)", "h (dimensionless)", "n (dimensionless)"]


def test_simulate_plot_with_save_at_draws_the_full_run_and_marks_the_saved_points(tmp_path, saved_figures):
    """The file holds the three saved times (as without --plot); the plot draws the full run — its spikes reach
    their peaks while every saved point is far below — with the saved points as markers on it."""
    neurospike("simulate", "izhikevich2007", "--save-at", "150,300,450", "--out", tmp_path / "points.csv",
               "--plot", tmp_path / "points.png")
    neurospike("simulate", "izhikevich2007", "--save-at", "150,300,450", "--out", tmp_path / "alone.csv")
    assert (tmp_path / "points.csv").read_text() == (tmp_path / "alone.csv").read_text()
    with open(tmp_path / "points.csv") as f:
        rows = [row for row in csv.reader(f) if not row[0].startswith("#")][1:]
    saved_t, saved_v = np.array([[float(r[0]), float(r[1])] for r in rows]).T
    check(saved_figures)
    ax_v = saved_figures["points.png"].axes[0]
    trace = next(line for line in ax_v.lines if line.get_linestyle() == "-")
    marked = [line for line in ax_v.lines if line.get_linestyle() == "None" and line.get_marker() == "o"]
    assert trace.get_xdata().size > 100 * saved_t.size
    assert np.max(trace.get_ydata()) > 20.0 > np.max(saved_v)  # the spikes are drawn, the points are not spikes
    assert len(marked) == 1
    np.testing.assert_array_equal(marked[0].get_xdata(), saved_t)
    np.testing.assert_allclose(marked[0].get_ydata(), saved_v, rtol=0, atol=1e-9)
    assert "6 spikes" in ax_v.get_title()


def test_plot_with_save_at_is_refused_in_one_line_when_the_full_run_would_not_fit(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    code = cli.main(["simulate", "lif", "--dt", "1e-7", "--save-at", "10", "--out", str(out / "x.csv"),
                     "--plot", str(out / "x.png")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "--plot draws the full run" in err and "GiB" in err, err
    assert list(out.iterdir()) == []


def test_a_sampled_trajectory_is_plotted_as_markers_not_a_polyline(tmp_path):
    run = ns.simulate("lif", current=2.5, t_end=50.0)
    sampled = run.at([5.0, 20.0, 35.0])
    ax = sampled.plot(tmp_path / "sampled.png")[0]
    (line,) = [line for line in ax.lines if line.get_marker() == "o"]
    assert line.get_xdata().size == 3
    assert line.get_linestyle() == "None" and line.get_marker() == "o"
    assert not [line for line in ax.lines if line.get_linestyle() != "None"]
    full = run.plot(tmp_path / "full.png")[0]
    assert any(line.get_linestyle() == "-" and line.get_xdata().size == run.t.size for line in full.lines)


@pytest.mark.slow
def test_compare_writes_traces_with_log_error_panels_and_labelled_figures(tmp_path, saved_figures):
    neurospike("compare", "izhikevich2007", "--methods", "euler,rk4", "--dt", "0.1", "--times", "100,200",
               "--t-end", "300", "--out", tmp_path / "report")
    assert set(saved_figures) == {"traces.png", "phase_plane.png", "spike_errors.png"}
    check(saved_figures)
    traces = saved_figures["traces.png"]
    errors = [ax for ax in traces.axes if ax.get_ylabel().startswith("|v − v")]
    assert len(errors) == 2  # one per events mode
    for ax in errors:
        assert ax.get_yscale() == "log" and ax.get_ylabel().endswith("(mV)")
        assert [line.get_label() for line in ax.lines] == ["euler", "rk4"]
        assert all(np.nanmin(line.get_ydata()) > 0 for line in ax.lines)  # zeros left out of the log axis
    located = errors[0]
    assert np.nanmedian(located.lines[0].get_ydata()) > 100 * np.nanmedian(located.lines[1].get_ydata())


@pytest.mark.slow
def test_convergence_sweep_alpha_and_sweep_figures_are_labelled(tmp_path, saved_figures):
    neurospike("convergence", "lif", "--methods", "euler,rk4", "--dts", "0.1,0.05", "--t-end", "50", "--out",
               tmp_path / "convergence")
    neurospike("sweep-alpha", "lif", "--alphas", "0.8,1", "--t-end", "50", "--dt", "0.1", "--out", tmp_path / "alpha")
    pytest.importorskip("xarray")
    pytest.importorskip("zarr")
    neurospike("sweep", "lif", "--grid", "I=2:3:3", "--grid", "C=0.8:1.2:2", "--t-end", "50", "--workers", "0",
               "--metrics", "rate,first_spike,pattern", "--out", tmp_path / "m.zarr", "--plot", tmp_path / "m.png")
    neurospike("sweep", "lif", "--grid", "I=2:3:4", "--t-end", "50", "--workers", "0", "--metrics", "rate",
               "--out", tmp_path / "line.zarr", "--plot", tmp_path / "line.png")
    assert {"convergence.png", "voltage.png", "rate_isi.png", "m.png", "line.png"} <= set(saved_figures)
    check(saved_figures)
    assert saved_figures["rate_isi.png"].axes[0].get_ylabel() == "mean rate (Hz)"


@pytest.mark.slow
def test_fit_figures_are_labelled(tmp_path, saved_figures):
    from test_fitting import hh_csv

    hh_csv(tmp_path / "rec.csv")
    neurospike("fit", "hh", "--data", tmp_path / "rec.csv", "--params", "g_L", "--start", "g_L=0.33", "--dt", "0.01",
               "--train", "0:20", "--test", "20:30", "--adam-steps", "0", "--lbfgs-steps", "5", "--out",
               tmp_path / "fit")
    assert {"fit_trace.png", "fit_history.png"} <= set(saved_figures)
    check(saved_figures)


def test_paper_figures_name_the_case_show_every_state_and_keep_one_quantity_per_axis():
    """The figures of a case (made here from short runs with a training record of the shape PINN runs carry)."""
    truth = ns.simulate("hh", current=10.0, t_end=5.0, method="reference")
    run = ns.simulate("hh", current=10.0, t_end=5.0, method="rk4", dt=0.02)
    run.training = {"residual_t": [1.0, 2.0, 3.0], "residual": [1e-3, 2e-3, 0.0], "loss": [1e-4, 3e-4, 2e-4],
                    "loss_history": list(np.geomspace(1.0, 1e-5, 50))}
    case = Case("hh_tonic", "Hodgkin-Huxley, 10 µA/cm²", "hh", {}, {}, [])
    figures = _figures(case, truth, {"pinn": run})
    check(figures)
    states, loss = figures["hh_tonic_states.png"], figures["hh_tonic_loss.png"]
    assert [ax.get_ylabel().split(" ")[0] for ax in states.axes] == ["v", "m", "h", "n"]
    assert r"10 $\mu$A/cm$^2$" in states.axes[0].get_title()
    assert r"$\mu$A/cm$^2$" in figures["hh_tonic_residual.png"].axes[0].get_title()
    assert r"$\mu$A/cm$^2$" in loss.get_suptitle()
    assert sorted(ax.get_xlabel() for ax in loss.axes) == ["optimiser step in the first window (number)",
                                                           "window (number)"]
    steps, windows = sorted(loss.axes, key=lambda ax: ax.get_xlabel())
    assert steps.lines[0].get_ydata().size == 50 and windows.lines[0].get_ydata().size == 3


# --- the examples ---------------------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("name", ["simulate_and_plot", "input_currents", "izhikevich_gallery", "population",
                                  "compare_methods", "convergence_study", "pinn"])
def test_example_figures_are_labelled(name, tmp_path, saved_figures, monkeypatch):
    monkeypatch.setattr(sys, "argv", [str(EXAMPLES / f"{name}.py"), str(tmp_path)])
    monkeypatch.syspath_prepend(str(EXAMPLES))
    runpy.run_path(str(EXAMPLES / f"{name}.py"), run_name="__main__")
    check(saved_figures)
    if name == "input_currents":
        labels = {ax.get_ylabel() for ax in saved_figures["input_currents.png"].axes}
        assert labels == {"v (mV)", "I (pA)"}
    if name == "izhikevich_gallery":
        gallery = saved_figures["izhikevich_gallery.png"]
        tonic = next(ax for ax in gallery.axes if ax.get_title() == "tonic spiking")
        assert tonic.get_ylim()[1] >= np.max(tonic.lines[0].get_ydata()) >= 29.99  # peaks at 30 mV, unclipped
        assert sum(1 for ax in gallery.axes if ax.get_ylabel() == "I (pA)") == 5  # the input, row by row
        assert len([ax for ax in gallery.axes if ax.lines]) == 40  # 20 traces, each with its input
