import csv

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from neurospike import comparison as compare_module
from neurospike.comparison import compare, convergence
from neurospike.errors import NeurospikeError

TIMES = [0.0, 150.0, 250.0, 300.0]


def izhikevich2007_rs_by_scipy(times, t_end=300.0):
    """Table I of 'Learning to Spike' integrated here with scipy alone: 70 pA from 101 ms, reset at v = 35 mV."""
    C, k, vr, vt, vpeak, a, b, c, d = 100.0, 0.7, -60.0, -40.0, 35.0, 0.03, -2.0, -50.0, 100.0

    def rhs(current):
        return lambda t, y: [(k * (y[0] - vr) * (y[0] - vt) - y[1] + current) / C, a * (b * (y[0] - vr) - y[1])]

    peak = lambda t, y: y[0] - vpeak  # noqa: E731
    peak.terminal, peak.direction = True, 1
    y, t, spikes, values = np.array([-60.0, 0.0]), 0.0, [], {}
    for end, current in ((101.0, 0.0), (t_end, 70.0)):
        while t < end:
            wanted = [x for x in times if t <= x <= end]
            sol = solve_ivp(rhs(current), (t, end), y, method="DOP853", rtol=1e-12, atol=1e-12, events=peak,
                            dense_output=True)
            stop = sol.t[-1]
            for x in wanted:
                if x <= stop:
                    values[x] = sol.sol(x)
            y, t = sol.y[:, -1].copy(), stop
            if sol.status == 1:
                spikes.append(stop)
                y = np.array([c, y[1] + d])
                for x in wanted:
                    if x == stop:
                        values[x] = y
    return np.array(spikes), values


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("compare") / "report"
    calls = []
    result = compare("izhikevich2007", ["euler", "rk4"], dt=0.1, times=TIMES, t_end=300.0, out=out,
                     progress=lambda done, total, label: calls.append((done, total, label)))
    return result, out, calls


def rows_of(result, method, events):
    return [row for row in result.rows if row["method"] == method and row["events"] == events]


def test_compare_writes_every_file(report):
    _, out, _ = report
    for name in ("table.md", "table.csv", "traces.png", "phase_plane.png", "spike_errors.png"):
        path = out / name
        assert path.exists(), name
    for name in ("traces.png", "phase_plane.png", "spike_errors.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no staging folder left


def test_table_has_the_published_columns_and_values(report):
    result, out, _ = report
    table = (out / "table.md").read_text()
    assert table == result.markdown()
    header = next(line for line in table.splitlines() if line.startswith("| method | events | t (ms)"))
    for column in ("method", "events", "t (ms)", "v (mV)", "w (pA)", "\\|err v\\| (mV)", "\\|err w\\| (pA)",
                   "published v", "published w"):
        assert f"| {column} |" in header, column
    # Learning to Spike, Table II: Euler v(250) = -54.48 mV, w(250) = 6.2834 pA, beside ours in both modes
    euler_250 = [line for line in table.splitlines() if line.startswith("| euler | located | 250 |")]
    assert euler_250 and "-54.4800" in euler_250[0] and "6.2834" in euler_250[0]
    assert "worst spike-time error (ms)" in table and "published time (s)" in table


def test_csv_has_one_line_per_run_and_time(report):
    result, out, _ = report
    with open(out / "table.csv") as f:
        lines = list(csv.DictReader(f))
    assert len(lines) == (1 + 2 * 2) * len(TIMES)
    assert {"method", "events", "t_ms", "v", "w", "abs_err_v", "abs_err_w", "published_v", "published_w", "spikes",
            "worst_spike_time_error_ms", "missing", "extra", "relative_l2_v", "relative_l2_w"} <= set(lines[0])
    rk4 = [line for line in lines if line["method"] == "rk4" and line["events"] == "located"]
    assert [float(line["t_ms"]) for line in rk4] == TIMES


def test_reference_rows_agree_with_an_independent_scipy_integration(report):
    result, _, _ = report
    spikes, values = izhikevich2007_rs_by_scipy(TIMES)
    assert spikes.size == 1 and np.allclose(result.reference.spikes, spikes, atol=1e-6)
    for row in rows_of(result, "reference", "exact"):
        assert row["v"] == pytest.approx(values[row["t"]][0], abs=1e-6)
        assert row["w"] == pytest.approx(values[row["t"]][1], abs=1e-6)


def test_errors_are_measured_against_the_reference(report):
    result, _, _ = report
    _, values = izhikevich2007_rs_by_scipy(TIMES)
    for row in rows_of(result, "euler", "step"):
        assert row["abs_err_v"] == pytest.approx(abs(row["v"] - values[row["t"]][0]), abs=1e-6)


def test_rk4_is_more_accurate_than_euler_with_located_events(report):
    result, _, _ = report
    for euler, rk4 in zip(rows_of(result, "euler", "located")[1:], rows_of(result, "rk4", "located")[1:]):
        assert rk4["abs_err_v"] < euler["abs_err_v"] and rk4["abs_err_w"] < euler["abs_err_w"]
    summary = {(item["method"], item["events"]): item for item in result.summary}
    assert summary[("rk4", "located")]["worst_spike_error_ms"] < 1e-4 < summary[("euler", "located")][
        "worst_spike_error_ms"]
    assert summary[("rk4", "located")]["relative_l2_v"] < 1e-3 * summary[("euler", "located")]["relative_l2_v"]
    # resetting after the step (the seed's way) costs up to a step in spike time, whatever the method
    assert summary[("rk4", "step")]["worst_spike_error_ms"] > 1e-2
    assert all(item["spikes"] == 1 and item["missing"] == item["extra"] == 0 for item in result.summary)


def test_progress_reports_every_run(report):
    _, _, calls = report
    assert [done for done, _, _ in calls] == [1, 2, 3, 4, 5]
    assert {total for _, total, _ in calls} == {5}


@pytest.mark.parametrize("kwargs, message", [
    (dict(methods=[]), "no methods"),
    (dict(methods=["euler", "rk5"]), "'rk5' \\(did you mean 'rk4'\\?\\)"),
    (dict(methods=["reference"]), "'reference'"),
    (dict(dt=0.0), "dt=0.0"),
    (dict(dt=-0.5), "dt=-0.5"),
    (dict(times=[0, 2000]), "2000"),
    (dict(times=[-1]), "-1"),
    (dict(events="sometimes"), "'sometimes'"),
    (dict(model="izhikevich2008"), "'izhikevich2008'"),
])
def test_compare_rejects_bad_input(kwargs, message, tmp_path):
    arguments = dict(model="izhikevich2007", methods=["euler"], dt=0.1, times=[0, 100], out=tmp_path / "r")
    arguments.update(kwargs)
    with pytest.raises(NeurospikeError, match=message) as caught:
        compare(arguments.pop("model"), arguments.pop("methods"), **arguments)
    assert "\n" not in str(caught.value)
    assert not list(tmp_path.iterdir())


def test_an_output_that_is_a_file_is_refused_before_running(tmp_path):
    taken = tmp_path / "report"
    taken.write_text("mine")
    with pytest.raises(NeurospikeError, match="report"):
        compare("izhikevich2007", ["euler"], dt=0.1, times=[0], out=taken)
    assert taken.read_text() == "mine"


def test_nothing_is_written_when_a_run_fails(tmp_path):
    # forward Euler at dt = 5 ms is unstable on FitzHugh–Nagumo (cubic v): the state turns non-finite
    with pytest.raises(NeurospikeError, match="non-finite"):
        compare("fhn", ["rk4", "euler"], dt=5.0, times=[0, 50], t_end=100.0, out=tmp_path / "r")
    assert not list(tmp_path.iterdir())


def test_nothing_is_written_when_writing_fails(report, tmp_path, monkeypatch):
    result, _, _ = report
    out = tmp_path / "existing"
    out.mkdir()

    def broken(self, path):
        path.write_text("half")
        raise RuntimeError("plot failed")

    monkeypatch.setattr(compare_module.Comparison, "plot_spike_errors", broken)
    with pytest.raises(RuntimeError):
        result.write(out)
    assert not list(out.iterdir())
    assert [p.name for p in tmp_path.iterdir()] == ["existing"]


# --- convergence ------------------------------------------------------------------------------------------------
LIF_DTS = [1.0, 0.5, 0.25]


@pytest.fixture(scope="module")
def lif_convergence(tmp_path_factory):
    out = tmp_path_factory.mktemp("convergence")
    return convergence("lif", ["euler", "rk4"], LIF_DTS, preset="subthreshold", out=out), out


def lif_step_error(amplification, dt, sample_every, t_end=100.0, g_L=0.1, C=1.0, current=1.5):
    """Exact max error of a one-step method on C v' = −g_L (v − E_L) + I, v_n − v_∞ = R(λ dt)^n (v_0 − v_∞),
    against v(t) = E_L + I/g_L (1 − exp(−g_L t / C)), at the times that are multiples of ``sample_every``."""
    lam = -g_L / C
    n = np.arange(int(round(t_end / dt)) + 1)
    keep = (n * dt / sample_every) == np.round(n * dt / sample_every)
    deviation = -current / g_L * (amplification(lam * dt) ** n - np.exp(lam * n * dt))
    return np.max(np.abs(deviation[keep]))


def test_reference_matches_the_analytic_lif_solution(lif_convergence):
    result, _ = lif_convergence
    t = np.array([0.0, 5.0, 33.3, 100.0])
    analytic = -70.0 + 1.5 / 0.1 * (1 - np.exp(-0.1 * t))
    assert np.allclose(result.reference.at(t)["v"], analytic, atol=1e-9)


def test_lif_convergence_orders_are_one_and_four(lif_convergence):
    result, _ = lif_convergence
    assert result.orders["euler"] == pytest.approx(1.0, abs=0.1)
    assert result.orders["rk4"] == pytest.approx(4.0, abs=0.15)
    assert np.isnan(result.spike_orders["euler"])  # subthreshold: no spikes


def test_lif_convergence_errors_are_the_exact_one_step_errors(lif_convergence):
    result, _ = lif_convergence
    euler = lambda z: 1 + z  # noqa: E731
    rk4 = lambda z: 1 + z + z**2 / 2 + z**3 / 6 + z**4 / 24  # noqa: E731
    for k, dt in enumerate(result.dts):
        assert result.errors["euler"][k] == pytest.approx(lif_step_error(euler, dt, max(LIF_DTS)), rel=1e-6)
        assert result.errors["rk4"][k] == pytest.approx(lif_step_error(rk4, dt, max(LIF_DTS)), rel=1e-3, abs=1e-10)


def test_convergence_writes_plot_and_csv(lif_convergence):
    result, out = lif_convergence
    assert (out / "convergence.png").read_bytes()[:4] == b"\x89PNG"
    with open(out / "convergence.csv") as f:
        lines = list(csv.DictReader(f))
    assert len(lines) == 2 * len(LIF_DTS)
    assert {line["method"] for line in lines} == {"euler", "rk4"}
    assert "| rk4 | 4." in result.markdown()


@pytest.mark.parametrize("kwargs, message", [
    (dict(dts=[0.1]), "at least two"),
    (dict(dts=[0.1, 0.1]), "at least two"),
    (dict(dts=[0.1, -0.05]), "-0.05"),
    (dict(dts=[0.1, float("nan")]), "nan"),
    (dict(methods=["eulr"]), "'eulr' \\(did you mean 'euler'\\?\\)"),
    (dict(state="q"), "'q'"),
    (dict(events=("located", "step")), "one mode"),
])
def test_convergence_rejects_bad_input(kwargs, message, tmp_path):
    arguments = dict(methods=["euler"], dts=[0.2, 0.1], preset="subthreshold", out=tmp_path / "r")
    arguments.update(kwargs)
    with pytest.raises(NeurospikeError, match=message):
        convergence("lif", arguments.pop("methods"), arguments.pop("dts"), **arguments)
    assert not list(tmp_path.iterdir())
