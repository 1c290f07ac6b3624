"""``Trajectory``: file round trips, the JSON layout, and ``.at`` as the step interpolant of a fixed-step run."""

import csv
import json

import numpy as np
import pytest

import neurospike as ns
from neurospike import Trajectory

ISSUE_JSON_KEYS = {"model", "preset", "method", "dt", "params", "t", "states", "spikes", "compile_time_s",
                   "run_time_s"}
DOCUMENTED_EXTRA_KEYS = {"events", "status", "message", "state_units"}


@pytest.fixture(scope="module")
def rs_rk4():
    """Izhikevich 2007 rs (Table I), rk4, dt = 0.1, 1000 ms: 6 spikes, so the trace holds reset pairs."""
    run = ns.simulate("izhikevich2007", method="rk4", dt=0.1)
    assert len(run.spikes) == 6
    return run


def izhikevich2007_rs_slope(t_piece, y):
    """f of Izhikevich 2007 rs (C=100, k=0.7, vr=−60, vt=−40, a=0.03, b=−2) with the input of the piece holding
    ``t_piece`` (0 before the 70 pA step at 101 ms)."""
    v, w = y[..., 0], y[..., 1]
    current = np.where(t_piece > 101.0, 70.0, 0.0)
    return np.stack([(0.7 * (v + 60.0) * (v + 40.0) - w + current) / 100.0, 0.03 * (-2.0 * (v + 60.0) - w)], -1)


def test_at_grid_nodes_returns_the_trace(rs_rk4):
    nodes = np.arange(0.0, 1000.0, 0.1)[::37]
    at = rs_rk4.at(nodes)
    index = np.searchsorted(rs_rk4.t, nodes, side="right") - 1
    assert np.all(np.abs(rs_rk4.t[index] - nodes) < 1e-9)
    np.testing.assert_allclose(at.y, rs_rk4.y[index], rtol=1e-14, atol=1e-12)


def test_at_midpoints_is_the_cubic_hermite_step_interpolant(rs_rk4):
    t, y = rs_rk4.t, rs_rk4.y
    width = np.diff(t)
    interval = np.flatnonzero(width > 0)
    t_a, t_b, h = t[interval], t[interval + 1], width[interval]
    middle = t_a + h / 2
    f_a = izhikevich2007_rs_slope(middle, y[interval])
    f_b = izhikevich2007_rs_slope(middle, y[interval + 1])
    hermite_middle = (y[interval] + y[interval + 1]) / 2 + h[:, None] * (f_a - f_b) / 8
    np.testing.assert_allclose(rs_rk4.at(middle).y, hermite_middle, rtol=1e-12, atol=1e-10)


def test_at_a_spike_time_returns_the_post_reset_state(rs_rk4):
    at = rs_rk4.at(rs_rk4.spikes)
    np.testing.assert_array_equal(at["v"], -50.0)  # c
    np.testing.assert_allclose(at["w"], rs_rk4.spike_states_before[:, 1] + 100.0, rtol=1e-14)  # w + d
    np.testing.assert_allclose(rs_rk4.spike_states_before[:, 0], 35.0, atol=1e-9)  # v reached vpeak


def test_at_outside_the_run_raises(rs_rk4):
    for times in ([-0.5], [1000.5], [10.0, 2000.0]):
        with pytest.raises(ns.NeurospikeError, match="outside the run"):
            rs_rk4.at(times)


def assert_same_solution(loaded, original):
    np.testing.assert_array_equal(loaded.t, original.t)
    assert list(loaded.states) == list(original.states)
    for name in original.states:
        np.testing.assert_array_equal(loaded.states[name], original.states[name])
    np.testing.assert_array_equal(loaded.spikes, original.spikes)
    assert (loaded.model, loaded.method, loaded.dt, loaded.preset) == (original.model, original.method,
                                                                       original.dt, original.preset)
    assert loaded.params == {k: float(v) for k, v in original.params.items()}
    assert (loaded.state_units, loaded.alpha) == (original.state_units, original.alpha)


@pytest.mark.parametrize("suffix", [".json", ".npz"])
def test_json_and_npz_round_trips_are_exact(rs_rk4, tmp_path, suffix):
    path = tmp_path / f"rs{suffix}"
    rs_rk4.save(path)
    loaded = Trajectory.load(path)
    assert_same_solution(loaded, rs_rk4)
    # the loaded trajectory (no dense output) still returns the post-reset state at a spike
    np.testing.assert_array_equal(loaded.at(rs_rk4.spikes)["v"], -50.0)


@pytest.mark.parametrize("suffix", [".json", ".npz"])
def test_a_fractional_run_keeps_its_orders_and_units_through_a_file(tmp_path, suffix):
    run = ns.simulate("izhikevich2007", method="fast-l1", alpha={"v": 0.9}, dt=0.5, t_end=300.0)
    assert run.alpha == {"v": 0.9, "w": 1.0} and run.state_units == {"v": "mV", "w": "pA"}
    run.save(tmp_path / f"fo{suffix}")
    assert_same_solution(Trajectory.load(tmp_path / f"fo{suffix}"), run)


def test_csv_holds_t_states_and_spikes_to_printed_precision(rs_rk4, tmp_path):
    path = tmp_path / "rs.csv"
    rs_rk4.to_csv(path)
    lines = path.read_text().splitlines()
    assert lines[0].startswith("# ")
    header = dict(item.split("=", 1) for item in lines[0][2:].split(" spikes=")[0].split())
    assert header == {"model": "izhikevich2007", "method": "rk4", "dt": "0.1"}
    spikes = np.array(lines[0].split(" spikes=")[1].split(), dtype=float)
    np.testing.assert_array_equal(spikes, rs_rk4.spikes)  # %.17g round-trips a double exactly
    rows = list(csv.reader(lines[1:]))
    assert rows[0] == ["t", "v", "w"]
    table = np.array(rows[1:], dtype=float)
    np.testing.assert_array_equal(table[:, 0], rs_rk4.t)
    np.testing.assert_array_equal(table[:, 1:], rs_rk4.y)


def test_csv_round_trip_through_load(rs_rk4, tmp_path):
    path = tmp_path / "rs.csv"
    rs_rk4.to_csv(path)
    loaded = Trajectory.load(path)
    np.testing.assert_array_equal(loaded.t, rs_rk4.t)
    np.testing.assert_array_equal(loaded.y, rs_rk4.y)
    assert list(loaded.states) == list(rs_rk4.states)
    np.testing.assert_array_equal(loaded.spikes, rs_rk4.spikes)
    assert (loaded.model, loaded.method, loaded.dt) == ("izhikevich2007", "rk4", 0.1)


def test_json_output_has_the_issue_keys(rs_rk4, tmp_path):
    path = tmp_path / "rs.json"
    rs_rk4.to_json(path)
    data = json.loads(path.read_text())
    assert ISSUE_JSON_KEYS <= set(data)
    assert set(data) - ISSUE_JSON_KEYS == DOCUMENTED_EXTRA_KEYS  # measured extras: events, status, message
    assert (data["model"], data["preset"], data["method"], data["dt"]) == ("izhikevich2007", "rs", "rk4", 0.1)
    assert set(data["states"]) == {"v", "w"}
    assert len(data["t"]) == len(data["states"]["v"]) == len(rs_rk4.t)
    assert data["status"] == "success" and data["events"] == "located"


def test_save_rejects_an_unknown_format(rs_rk4, tmp_path):
    with pytest.raises(ns.NeurospikeError, match="unknown format"):
        rs_rk4.save(tmp_path / "rs.txt")
    assert not (tmp_path / "rs.txt").exists()
