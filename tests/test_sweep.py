"""``ns.sweep`` / ``neurospike sweep``: maps over parameter grids, checked against one-neuron runs (the one-neuron
loop, another code path than the population a sweep runs), the LIF closed form, resumption by completion markers,
and one-line refusals that write nothing."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import zarr

import neurospike as ns
from neurospike import maps
from neurospike.patterns import PATTERN_CLASSES, classify

A = np.array([0.02, 0.06, 0.1])
B = np.array([0.2, 0.25])
SETTINGS = dict(method="rk4", dt=0.1, t_end=300.0, current=10.0)


def izhikevich_alone(a, b):
    """One neuron through the one-neuron loop, started as Izhikevich (2003) does: v = −65, u = b·v."""
    return ns.simulate("izhikevich", params={"a": a, "b": b}, initial={"v": -65.0, "u": -65.0 * b}, **SETTINGS)


@pytest.fixture(scope="module")
def serial_map(tmp_path_factory):
    store = tmp_path_factory.mktemp("sweep") / "ab.zarr"
    dataset = ns.sweep("izhikevich", {"a": A, "b": B}, metrics=["count", "rate", "cv", "first_spike", "pattern"],
                       client="serial", chunk_size=4, store=str(store), **SETTINGS)
    return dataset, store


def test_every_point_is_the_neuron_run_alone(serial_map):
    dataset, _ = serial_map
    assert dict(dataset["rate"].sizes) == {"a": 3, "b": 2}
    for i, a in enumerate(A):
        for j, b in enumerate(B):
            spikes = izhikevich_alone(a, b).spikes
            assert int(dataset["count"].values[i, j]) == spikes.size
            assert dataset["rate"].values[i, j] == pytest.approx(1000.0 * spikes.size / 300.0, rel=1e-15)
            assert dataset["first_spike"].values[i, j] == pytest.approx(spikes[0], abs=1e-9)
            isi = np.diff(spikes)
            assert dataset["cv"].values[i, j] == pytest.approx(np.std(isi) / np.mean(isi), abs=1e-9)
            assert PATTERN_CLASSES[int(dataset["pattern"].values[i, j])] == classify(spikes, 0.0, 300.0)
    assert dataset["rate"].attrs["units"] == "Hz" and dataset["a"].attrs["units"] == "1/ms"
    assert dataset.attrs["chunks_computed"] == 2 and dataset.attrs["chunks_skipped"] == 0
    assert dataset.attrs["derived_initial"] == ["v", "u"]


def test_published_classes_of_izhikevich_2003():
    """Fig. 2 of Izhikevich (2003): RS adapts, IB fires an initial burst then single spikes, CH chatters."""
    cases = {"adapting": dict(c=-65, d=8), "initial burst": dict(c=-55, d=4), "bursting": dict(c=-50, d=2)}
    for expected, params in cases.items():
        run = ns.simulate("izhikevich", params=dict(a=0.02, b=0.2, **params), initial={"v": -65.0, "u": -13.0},
                          **SETTINGS)
        assert classify(run.spikes, 0.0, 300.0) == expected
    assert classify([], 0, 100) == "silent"
    assert classify([5.0, 9.0, 14.0], 0, 300) == "phasic"  # stops while the input persists
    assert classify(np.arange(10.0, 300.0, 10.0), 0, 300) == "tonic"


def test_a_rerun_computes_only_the_blocks_not_marked_done(serial_map, tmp_path):
    dataset, store = serial_map
    copy = tmp_path / "copy.zarr"
    import shutil

    shutil.copytree(store, copy)
    group = zarr.open_group(str(copy), mode="r+")
    group["chunk_done"][1, 0] = 0  # as if the task of block 1 died before its marker
    group["rate"][:] = np.nan  # a block marked done is not recomputed: its values stay as they are
    again = ns.sweep("izhikevich", {"a": A, "b": B}, metrics=["count", "rate", "cv", "first_spike", "pattern"],
                     client="serial", chunk_size=4, store=str(copy), **SETTINGS)
    assert again.attrs["chunks_computed"] == 1 and again.attrs["chunks_skipped"] == 1
    block = maps.plan("izhikevich", {"a": A, "b": B}, chunk_size=4, **SETTINGS).region((1, 0))
    rate = again["rate"].values
    np.testing.assert_array_equal(rate[block], dataset["rate"].values[block])
    assert np.all(np.isnan(np.delete(rate, np.r_[block[0]], axis=0)))


def test_a_store_of_another_sweep_is_refused(serial_map):
    _, store = serial_map
    with pytest.raises(ns.NeurospikeError, match="holds a different sweep"):
        ns.sweep("izhikevich", {"a": A, "b": B}, metrics=["rate"], client="serial", store=str(store), **SETTINGS)


def test_solver_axes_and_the_lif_closed_form(tmp_path):
    """dt and method axes with spike_error against the reference: LIF from v_reset under a constant input fires at
    t_k = k·(t_ref + τ ln((v∞ − v_reset)/(v∞ − v_th))), τ = C/g_L, v∞ = E_L + I/g_L; the reference agrees with
    that, explicit Euler's error falls with dt at first order, RK4's stays far below it."""
    model = ns.models.get("lif")
    dataset = ns.sweep("lif", {"method": ["euler", "rk4"], "dt": [0.1, 0.05], "I": [2.5, 3.0]},
                       metrics=["count", "spike_error"], t_end=100.0, client="serial", store=str(tmp_path / "e.zarr"))
    p = model.defaults()
    for k, amplitude in enumerate([2.5, 3.0]):
        rest = p["E_L"] + amplitude / p["g_L"]
        period = p["t_ref"] + p["C"] / p["g_L"] * math.log((rest - p["v_reset"]) / (rest - p["v_th"]))
        exact = period * np.arange(1, int(100.0 // period) + 1)
        reference = ns.simulate("lif", method="reference", current=amplitude, t_end=100.0).spikes
        np.testing.assert_allclose(reference, exact, atol=1e-8)
        euler = dataset["spike_error"].sel({"method": "euler", "I": amplitude}).values
        assert 1.7 < euler[0] / euler[1] < 2.3  # first order in dt
        assert np.all(dataset["spike_error"].sel({"method": "rk4", "I": amplitude}).values < 1e-4)
        assert np.all(dataset["count"].sel(I=amplitude).values == exact.size)


def test_an_order_axis_is_vectorised_and_each_point_is_its_run_alone():
    """FO-LIF over (I, α) with fast-l1 in one population run per block, and only v's order of FO-HH."""
    dataset = ns.sweep("lif", {"I": [3.0, 5.0], "alpha": [0.6, 0.8, 1.0]}, method="fast-l1", dt=0.1, t_end=200.0,
                       metrics=["count", "first_spike", "cv"], client="serial", store=None)
    for amplitude in (3.0, 5.0):
        for alpha in (0.6, 0.8, 1.0):
            spikes = ns.simulate("lif", method="fast-l1", alpha=alpha, dt=0.1, t_end=200.0, current=amplitude).spikes
            where = {"I": amplitude, "alpha": alpha}
            assert int(dataset["count"].sel(where)) == spikes.size > 0
            assert float(dataset["first_spike"].sel(where)) == pytest.approx(spikes[0], abs=1e-10)
    hh = ns.sweep("hh", {"alpha_v": [0.7, 1.0]}, method="fast-l1", dt=0.02, t_end=60.0, current=10.0,
                  metrics=["count"], client="serial", store=None)
    for alpha in (0.7, 1.0):
        alone = ns.simulate("hh", method="fast-l1", alpha={"v": alpha}, dt=0.02, t_end=60.0, current=10.0)
        assert int(hh["count"].sel(alpha_v=alpha)) == alone.spikes.size > 0


def test_a_spike_buffer_too_small_for_one_neuron_block_is_grown(monkeypatch):
    """The fixed-step loop shares the spike buffer out evenly over its 1024-neuron blocks: with room for too few
    spikes, and the busy neurons all in the second block, the block is run again with room enough."""
    monkeypatch.setattr(maps, "RECORDED_RATE_HZ", 1e-3)
    d = np.linspace(0.0, 10.0, 600)
    dataset = ns.sweep("izhikevich", {"c": [-70.0, -45.0], "d": d}, params={"a": 0.02, "b": 0.2}, method="rk4",
                       dt=0.1, t_end=100.0, current=10.0, metrics=["count", "cv"], client="serial", store=None)
    assert int(dataset["count"].sum()) > 10_000
    for c, k in ((-70.0, 0), (-45.0, 0), (-45.0, 599)):
        spikes = ns.simulate("izhikevich", params={"a": 0.02, "b": 0.2, "c": c, "d": d[k]}, method="rk4", dt=0.1,
                             t_end=100.0, current=10.0).spikes
        isi = np.diff(spikes)
        assert float(dataset["cv"].sel(c=c, d=d[k])) == pytest.approx(np.std(isi) / np.mean(isi), abs=1e-9)


def test_single_precision_gives_the_same_counts_and_spike_times_to_float32_rounding(serial_map):
    """precision="float32" (fixed-step populations only): the (a, b) map's counts as in float64, first spikes within
    1e-3 ms; one neuron or another family is refused in one line."""
    dataset, _ = serial_map
    single = ns.sweep("izhikevich", {"a": A, "b": B}, metrics=["count", "first_spike"], client="serial",
                      chunk_size=4, store=None, precision="float32", **SETTINGS)
    np.testing.assert_array_equal(single["count"].values, dataset["count"].values)
    np.testing.assert_allclose(single["first_spike"].values, dataset["first_spike"].values, atol=1e-3)
    assert single.attrs["precision"] == "float32"
    with pytest.raises(ns.NeurospikeError, match="precision='float32' is for populations of fixed-step methods"):
        ns.simulate("lif", precision="float32")
    with pytest.raises(ns.NeurospikeError, match="precision='float32' is for populations"):
        ns.sweep("lif", {"I": [3.0, 4.0]}, method="fast-l1", alpha=0.8, client="serial", store=None,
                 precision="float32")
    with pytest.raises(ns.NeurospikeError, match="precision='float16'"):
        ns.simulate("lif", precision="float16")


def test_points_whose_run_breaks_off_are_missing_values_not_a_failed_sweep():
    """Explicit Euler on HH at dt = 0.1 ms turns non-finite once it fires (the one-neuron loop says so with a
    SimulationError); those points are NaN / −1, the others keep their values."""
    dataset = ns.sweep("hh", {"dt": [0.05, 0.1], "I": [0.0, 10.0]}, method="euler", metrics=["count", "rate"],
                       t_end=100.0, client="serial", store=None)
    for dt in (0.05, 0.1):
        for amplitude in (0.0, 10.0):
            where = {"dt": dt, "I": amplitude}
            try:
                spikes = ns.simulate("hh", method="euler", dt=dt, t_end=100.0, current=amplitude).spikes
            except ns.SimulationError:
                assert int(dataset["count"].sel(where)) == -1 and np.isnan(dataset["rate"].sel(where))
                continue
            assert int(dataset["count"].sel(where)) == spikes.size
    assert int(dataset["count"].sel({"dt": 0.1, "I": 10.0})) == -1 and int(dataset["count"].sel({"dt": 0.05,
                                                                                                 "I": 10.0})) == 7


def test_a_metric_function_of_the_trajectory(tmp_path):
    def v_end(trajectory):
        """v at t_end"""
        return trajectory["v"][-1]

    dataset = ns.sweep("lif", {"I": [0.5, 3.0]}, metrics=["count", v_end], t_end=50.0, dt=0.01, client="serial",
                       store=None)
    for k, amplitude in enumerate([0.5, 3.0]):
        alone = ns.simulate("lif", current=amplitude, t_end=50.0, dt=0.01)
        assert dataset["v_end"].values[k] == pytest.approx(alone["v"][-1], abs=1e-12)


@pytest.mark.parametrize("grid, kwargs, message", [
    ({"g": [1.0]}, {}, "unknown grid axis 'g'"),
    ({"C": []}, {}, "grid axis C is empty"),
    ({"C": [1.0, 1.0]}, {}, "repeats a value"),
    ({"alpha": [0.5, 1.5]}, {"method": "fast-l1"}, "outside \\(0, 1\\]"),
    ({"I": [1.0, 2.0]}, {"metrics": ["rate", "nope"]}, "unknown metric 'nope'"),
    ({"I": [1.0, 2.0]}, {"method": "pinn"}, "trains a network"),
    ({"I": [1.0, 2.0]}, {"chunk_size": 2, "task_memory": 500}, "over the task memory budget"),
    ({"I": [1.0, 2.0]}, {"current": "ramp:start=1,slope=1"}, "ramp"),
])
def test_bad_requests_are_refused_before_anything_is_written(tmp_path, grid, kwargs, message):
    store = tmp_path / "bad.zarr"
    with pytest.raises(ns.NeurospikeError, match=message):
        ns.sweep("lif", grid, client="serial", store=str(store), t_end=50.0, **kwargs)
    assert not store.exists()


def test_a_missing_extra_is_named_in_one_line(monkeypatch, tmp_path):
    import importlib.util

    find = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "zarr" else find(name, *a))
    with pytest.raises(ns.NeurospikeError, match=r"sweep extra \(zarr missing\): pip install 'neurospike\[sweep\]'"):
        ns.sweep("lif", {"I": [1.0, 2.0]}, client="serial", store=str(tmp_path / "s.zarr"))
    assert not (tmp_path / "s.zarr").exists()


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "neurospike.cli", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


@pytest.mark.parametrize("args, message", [
    (["--grid", "I=5:5:3"], "range 5:5 is empty"),
    (["--grid", "I=0:5:0"], "must be a whole number >= 1"),
    (["--grid", "gL=0:1:3"], "unknown grid axis 'gL'"),
    (["--grid", "I=0:5:3", "--grid", "C=1:2:2", "--grid", "g_L=0.1:0.2:2", "--plot", "m.png"], "1-d and 2-d"),
])
def test_cli_refusals_are_one_line_with_exit_2(tmp_path, args, message):
    result = _cli("sweep", "lif", "--out", "s.zarr", "--workers", "0", *args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert list(tmp_path.iterdir()) == []


def test_cli_writes_the_store_the_summary_and_the_map(tmp_path):
    result = _cli("sweep", "lif", "--grid", "I=2:3:3", "--grid", "C=0.8:1.2:2", "--t-end", "50", "--workers", "0",
                  "--metrics", "rate,first_spike", "--out", "m.zarr", "--plot", "m.png", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "6 grid points: 1 block(s) computed, 0 already done" in result.stdout
    import xarray as xr

    dataset = xr.open_zarr(tmp_path / "m.zarr", consolidated=False)
    alone = ns.simulate("lif", current=3.0, params={"C": 0.8}, t_end=50.0)
    assert float(dataset["rate"].sel(I=3.0, C=0.8).values) == pytest.approx(1000.0 * alone.spikes.size / 50.0)
    summary = (tmp_path / "m.md").read_text()
    assert "| I | 3 |" in summary and "neurospike sweep lif --grid I=2:3:3" in summary
    assert (tmp_path / "m.png").stat().st_size > 10_000
    again = _cli("sweep", "lif", "--grid", "I=2:3:3", "--grid", "C=0.8:1.2:2", "--t-end", "50", "--workers", "0",
                 "--metrics", "rate,first_spike", "--out", "m.zarr", cwd=tmp_path)
    assert "0 block(s) computed, 1 already done" in again.stdout


def test_cli_makes_a_missing_store_folder_only_for_a_sweep_that_starts(tmp_path):
    refused = _cli("sweep", "lif", "--grid", "I=5:5:3", "--out", "new/s.zarr", "--workers", "0", cwd=tmp_path)
    assert refused.returncode == 2 and list(tmp_path.iterdir()) == [], refused.stderr
    (tmp_path / "notes").write_text("")
    blocked = _cli("sweep", "lif", "--grid", "I=2:3:2", "--out", "notes/s.zarr", "--workers", "0", cwd=tmp_path)
    assert blocked.returncode == 2 and "'notes' is a file, not a folder" in blocked.stderr, blocked.stderr
    made = _cli("sweep", "lif", "--grid", "I=2:3:2", "--t-end", "20", "--out", "new/deeper/s.zarr", "--workers", "0",
                cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "new" / "deeper" / "s.zarr").is_dir() and (tmp_path / "new" / "deeper" / "s.md").is_file()


def test_the_map_figure_labels_axes_with_units(serial_map, tmp_path):
    dataset, _ = serial_map
    panels = maps.plot_map(dataset, tmp_path / "map.png").axes
    titles = {ax.get_title(): ax for ax in panels}
    rate = titles[dataset["rate"].attrs["long_name"]]
    assert (rate.get_xlabel(), rate.get_ylabel()) == ("b (dimensionless)", "a (1/ms)")
    assert any(ax.get_ylabel() == "rate (Hz)" for ax in panels)  # the colour bar
    pattern = titles[dataset["pattern"].attrs["long_name"]]
    legend = [t.get_text() for t in pattern.get_legend().get_texts()]
    codes = {PATTERN_CLASSES[int(c)] for c in np.unique(dataset["pattern"].values)}
    assert set(legend) == codes
