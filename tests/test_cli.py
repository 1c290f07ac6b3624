"""The command line, checked against closed-form LIF solutions and the README's error contract.

LIF (C dv/dt = −g_L (v − E_L) + I, reset to E_L at v_th) under a constant current I > g_L (v_th − E_L) fires
periodically. From v(0) = v0, v(t) = E_L + (I/g_L)(1 − e^{−g_L t/C}) + (v0 − E_L) e^{−g_L t/C} until the first
spike at t* = (C/g_L) ln((I/g_L − (v0 − E_L)) / (I/g_L − (v_th − E_L))). The ``tonic`` preset has C = 1 nF,
g_L = 0.1 µS, E_L = v_reset = −70 mV, v_th = −50 mV, I = 2.5 nA, so the period is 10 ln 5 ms.

Most runs share one grid (t_end = 50 ms, dt = 0.01 ms) so the compiled loop is reused between tests.
"""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import neurospike as ns
from neurospike import cli

C, G_L, E_L, V_TH, I_TONIC = 1.0, 0.1, -70.0, -50.0, 2.5
RUN = ["--t-end", "50", "--dt", "0.01", "--method", "rk4"]


def first_spike(v0=E_L, current=I_TONIC, capacitance=C):
    return capacitance / G_L * math.log((current / G_L - (v0 - E_L)) / (current / G_L - (V_TH - E_L)))


def lif_voltage(t, v0=E_L, current=I_TONIC):
    decay = np.exp(-G_L * np.asarray(t) / C)
    return E_L + current / G_L * (1 - decay) + (v0 - E_L) * decay


@pytest.fixture(autouse=True, scope="module")
def compilation_cache(tmp_path_factory):
    """Keep the CLI's persistent JAX cache out of the user's home during tests."""
    previous = os.environ.get("NEUROSPIKE_CACHE")
    os.environ["NEUROSPIKE_CACHE"] = str(tmp_path_factory.mktemp("jax-cache"))
    yield os.environ["NEUROSPIKE_CACHE"]
    if previous is None:
        os.environ.pop("NEUROSPIKE_CACHE", None)
    else:
        os.environ["NEUROSPIKE_CACHE"] = previous


def run(capsys, *args):
    """``neurospike ARGS`` in-process through the real entry point: (exit code, stdout, stderr)."""
    code = cli.main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def load_json(path):
    return json.loads(Path(path).read_text())


# --- models ---------------------------------------------------------------------------------------------------
def test_models_lists_every_model_with_its_presets():
    result = CliRunner().invoke(cli.app, ["models", "--json"])
    assert result.exit_code == 0, result.output
    listing = {m["name"]: m for m in json.loads(result.output)}
    assert set(listing) == {"lif", "izhikevich", "izhikevich2007", "hh", "adex", "fhn"}
    assert len(listing["izhikevich"]["presets"]) == 20  # the 20 firing patterns of Izhikevich (2004)
    assert listing["izhikevich2007"]["states"] == {"v": "mV", "w": "pA"}
    assert listing["hh"]["default_preset"] in listing["hh"]["presets"]
    table = CliRunner().invoke(cli.app, ["models"], terminal_width=200)
    assert table.exit_code == 0
    for name in listing:
        assert name in table.output
    assert "rebound_spike" in table.output and "w (pA)" in table.output


def test_help_lists_the_commands():
    result = CliRunner().invoke(cli.app, ["--help"])
    assert result.exit_code == 0
    for command in ("models", "simulate", "compare", "convergence", "app"):
        assert command in result.output


# --- simulate: results against the closed form --------------------------------------------------------------
def test_simulate_json_has_the_documented_keys_and_the_analytic_spike_times(tmp_path, capsys):
    out = tmp_path / "lif.json"
    code, stdout, err = run(capsys, "simulate", "lif", *RUN, "--out", out)
    assert (code, err) == (0, "")
    data = load_json(out)
    for key in ("model", "preset", "method", "dt", "params", "t", "states", "spikes", "compile_time_s",
                "run_time_s"):
        assert key in data
    assert (data["model"], data["preset"], data["method"], data["dt"]) == ("lif", "tonic", "rk4", 0.01)
    period = first_spike()
    assert np.allclose(data["spikes"], period * np.arange(1, 4), atol=1e-6)  # 16.09, 32.19, 48.28 ms
    assert data["t"][0] == 0.0 and data["t"][-1] == 50.0
    assert "3 spike(s)" in stdout


def test_param_and_initial_change_the_run(tmp_path, capsys):
    out = tmp_path / "lif.json"
    code, _, err = run(capsys, "simulate", "lif", *RUN, "--param", "C=2", "--initial", "v=-60", "--out", out)
    assert (code, err) == (0, "")
    data = load_json(out)
    assert data["params"]["C"] == 2.0
    t_first = first_spike(v0=-60.0, capacitance=2.0)  # 20 ln 3 ms
    assert np.allclose(data["spikes"], [t_first], atol=1e-6)
    assert data["states"]["v"][0] == -60.0


def test_save_at_returns_exactly_those_times(tmp_path, capsys):
    out = tmp_path / "lif.json"
    times = [5.0, 10.0, 12.345, 15.0]
    code, _, err = run(capsys, "simulate", "lif", *RUN, "--save-at", ",".join(map(str, times)), "--out", out)
    assert (code, err) == (0, "")
    data = load_json(out)
    assert data["t"] == times
    assert np.allclose(data["states"]["v"], lif_voltage(times), atol=1e-6)


def test_csv_and_npz_outputs_and_the_plot(tmp_path, capsys):
    for name in ("lif.csv", "lif.npz"):
        plot = tmp_path / (name + ".png")
        code, _, err = run(capsys, "simulate", "lif", *RUN, "--save-at", "5,10", "--out", tmp_path / name,
                           "--plot", plot)
        assert (code, err) == (0, "")
        assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = np.loadtxt(tmp_path / "lif.csv", delimiter=",", skiprows=2)
    assert np.allclose(table[:, 0], [5, 10]) and np.allclose(table[:, 1], lif_voltage([5, 10]), atol=1e-6)
    loaded = ns.Trajectory.load(tmp_path / "lif.npz")
    assert np.allclose(loaded.t, [5, 10]) and np.allclose(loaded["v"], lif_voltage([5, 10]), atol=1e-6)


def test_current_spec_and_json_segment_file_give_the_same_delayed_firing(tmp_path, capsys):
    segments = tmp_path / "step.json"
    segments.write_text(json.dumps({"baseline": 0.0, "segments": [{"start": 10.0, "end": None, "value": 2.5}]}))
    spikes = []
    for current in ("step:start=10,amplitude=2.5", segments):
        out = tmp_path / "lif.json"
        code, _, err = run(capsys, "simulate", "lif", *RUN, "--current", current, "--out", out)
        assert (code, err) == (0, "")
        spikes.append(load_json(out)["spikes"])
    for found in spikes:  # silent until 10 ms, then the tonic period
        assert np.allclose(found, 10.0 + first_spike() * np.arange(1, 3), atol=1e-6)


def test_events_step_resets_at_the_end_of_the_crossing_step(tmp_path, capsys):
    out = tmp_path / "lif.json"
    code, _, err = run(capsys, "simulate", "lif", "--t-end", "20", "--dt", "0.1", "--events", "step", "--out", out)
    assert (code, err) == (0, "")
    data = load_json(out)
    (spike,) = data["spikes"]
    assert first_spike() - 1e-6 <= spike <= first_spike() + 0.1 + 1e-9


# --- bad input: one line on stderr, exit 2, no output file --------------------------------------------------
BAD_INPUT = {
    "unknown model": (["simulate", "izhikevic"], "did you mean 'izhikevich'"),
    "unknown preset": (["simulate", "lif", "--preset", "tonik"], "did you mean 'tonic'"),
    "unknown method": (["simulate", "lif", "--method", "rk-4"], "did you mean 'rk4'"),
    "unknown parameter": (["simulate", "lif", "--param", "g_l=0.2"], "did you mean 'g_L'"),
    "unknown state": (["simulate", "lif", "--initial", "vv=-60"], "did you mean 'v'"),
    "dt zero": (["simulate", "lif", "--dt", "0"], "dt=0"),
    "dt negative": (["simulate", "lif", "--dt", "-0.1"], "dt=-0.1"),
    "dt nan": (["simulate", "lif", "--dt", "nan"], "dt=nan"),
    "dt inf": (["simulate", "lif", "--dt", "inf"], "dt=inf"),
    "dt not a number": (["simulate", "lif", "--dt", "abc"], "--dt"),
    "t_end before t0": (["simulate", "lif", "--t0", "10", "--t-end", "5"], "t_end=5"),
    "t_end equal t0": (["simulate", "lif", "--t-end", "0"], "t_end=0"),
    "save-at outside": (["simulate", "lif", "--t-end", "50", "--save-at", "10,60"], "60"),
    "save-at not numbers": (["simulate", "lif", "--save-at", "10,x"], "'x'"),
    "param nan": (["simulate", "lif", "--param", "C=nan"], "C=nan"),
    "param inf": (["simulate", "lif", "--param", "g_L=inf"], "g_L=inf"),
    "param not NAME=VALUE": (["simulate", "lif", "--param", "C"], "NAME=VALUE"),
    "param not a number": (["simulate", "lif", "--param", "C=big"], "'big'"),
    "initial nan": (["simulate", "lif", "--initial", "v=nan"], "v=nan"),
    # b = 1/(1 - 1.2²): the first Newton step of FitzHugh-Nagumo's rest state is flat (was a bare ZeroDivisionError)
    "no finite rest state": (["simulate", "fhn", "--param", "b=-2.272727272727273"], "initial v=nan"),
    "unknown current kind": (["simulate", "lif", "--current", "stepp:start=1,amplitude=2"], "did you mean 'step'"),
    "current not finite": (["simulate", "lif", "--current", "constant:amplitude=inf"], "amplitude=inf"),
    "current file missing": (["simulate", "lif", "--current", "missing.json"], "missing.json"),
    "unknown events": (["simulate", "lif", "--events", "exact"], "events='exact'"),
    "max-rate zero": (["simulate", "lif", "--max-rate", "0"], "max_rate=0"),
    "plot format": (["simulate", "lif", "--plot", "fig.jpg"], "'.jpg'"),
    "unknown option": (["simulate", "lif", "--frobnicate", "1"], "--frobnicate"),
    "strang on a non-linear model": (["simulate", "izhikevich2007", "--method", "strang"], "strang"),
}


@pytest.mark.parametrize("args, named", BAD_INPUT.values(), ids=BAD_INPUT.keys())
def test_bad_input_is_one_line_exit_2_and_no_file(tmp_path, capsys, args, named):
    out = tmp_path / "run.json"
    code, stdout, err = run(capsys, *args, "--out", out)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("neurospike: error: ")
    assert named in err
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


# a missing folder is no error: it is created once the run succeeded (test_cli_units.py)
@pytest.mark.parametrize("out, named", [("run.txt", "'.txt'"), ("run", "'(none)'")])
def test_bad_output_path_is_refused_before_running(tmp_path, capsys, out, named):
    code, _, err = run(capsys, "simulate", "lif", *RUN, "--out", tmp_path / out)
    assert code == 2 and err.count("\n") == 1 and named in err
    assert list(tmp_path.iterdir()) == []


def test_missing_out_is_a_usage_error(capsys):
    code, _, err = run(capsys, "simulate", "lif")
    assert code == 2 and err.count("\n") == 1 and "--out" in err


def test_a_state_turning_non_finite_names_method_time_and_state(tmp_path, capsys):
    # g_L = 1000 µS makes dv/dt = −1000 (v − E_L) + I stiff: rk4 at dt = 0.01 (h·λ = −10) is unstable and
    # overflows (its amplification factor there is about 291 per step).
    out = tmp_path / "run.json"
    code, _, err = run(capsys, "simulate", "lif", *RUN, "--param", "g_L=1000", "--out", out)
    assert code == 2 and err.count("\n") == 1
    assert "non-finite" in err and "rk4" in err and "t=" in err and "v=" in err
    assert "smaller dt" in err and "implicit" in err
    assert not out.exists()


def test_a_run_too_large_for_memory_is_refused_with_the_size(tmp_path, capsys):
    out = tmp_path / "run.json"
    code, _, err = run(capsys, "simulate", "lif", "--dt", "1e-9", "--t-end", "50", "--out", out)
    assert code == 2 and err.count("\n") == 1
    assert "GiB" in err
    assert not out.exists()


# --- runaway spiking: exit 3, the computed part is kept ------------------------------------------------------
def test_runaway_spiking_stops_with_exit_3_and_keeps_the_computed_part(tmp_path, capsys):
    # 1e5 nA from 20 ms drives v over 20 mV in ~2e-4 ms: a 5 MHz spike train, far above --max-rate.
    out = tmp_path / "run.json"
    code, _, err = run(capsys, "simulate", "lif", *RUN, "--current", "step:start=20,amplitude=1e5", "--out", out)
    assert code == 3
    assert err.count("\n") == 1 and "Hz" in err and "t=20.0" in err
    data = load_json(out)
    assert data["status"] == "rate-exceeded"
    assert 20.0 < data["t"][-1] < 20.01  # stopped right after the step onset, not at t_end = 50
    assert np.allclose(data["states"]["v"][: 1000], lif_voltage(np.asarray(data["t"][:1000]), current=0.0))


def test_max_rate_stops_a_train_faster_than_the_limit(tmp_path, capsys):
    # The tonic train has period 10 ln 5 = 16.1 ms (62 Hz): a 50 Hz guard (20 ms) stops it at the second spike.
    out = tmp_path / "run.json"
    code, _, err = run(capsys, "simulate", "lif", *RUN, "--max-rate", "50", "--out", out)
    assert code == 3 and "max_rate=50 Hz" in err
    data = load_json(out)
    assert np.allclose(data["spikes"], first_spike() * np.arange(1, 3), atol=1e-6)
    assert data["t"][-1] == pytest.approx(2 * first_spike(), abs=1e-6)


def test_runaway_spiking_with_save_at_keeps_the_times_before_the_stop(tmp_path, capsys):
    out = tmp_path / "run.json"
    code, _, err = run(capsys, "simulate", "lif", *RUN, "--current", "step:start=20,amplitude=1e5",
                       "--save-at", "10,30", "--out", out)
    assert code == 3
    assert load_json(out)["t"] == [10.0]


# --- the installed script, as a real process --------------------------------------------------------------------
def script(*args, cache):
    executable = Path(sys.executable).with_name("neurospike")
    env = {**os.environ, "NEUROSPIKE_CACHE": cache}
    return subprocess.run([str(executable), *map(str, args)], capture_output=True, text=True, env=env, timeout=300)


def test_script_bad_input_prints_one_line_and_exits_2(tmp_path, compilation_cache):
    out = tmp_path / "run.json"
    done = script("simulate", "lif", "--dt", "-1", "--out", out, cache=compilation_cache)
    assert done.returncode == 2
    assert done.stderr.splitlines() == ["neurospike: error: dt=-1.0 must be a positive finite step (ms)"]
    assert not out.exists()


def test_script_runaway_spiking_exits_3_and_writes_the_file(tmp_path, compilation_cache):
    out = tmp_path / "run.csv"
    done = script("simulate", "lif", "--t-end", "5", "--dt", "0.01", "--current", "constant:amplitude=1e5",
                  "--out", out, cache=compilation_cache)
    assert done.returncode == 3, done.stderr
    assert len(done.stderr.splitlines()) == 1 and "max_rate=10000 Hz" in done.stderr
    rows = np.loadtxt(out, delimiter=",", skiprows=2)
    assert 0 < rows[-1, 0] < 0.01


# --- compare and convergence ------------------------------------------------------------------------------------
COMPARE = ["compare", "lif", "--methods", "euler,rk4", "--dt", "0.01", "--times", "0,10,40", "--t-end", "50",
           "--events", "located"]


def test_compare_prints_the_table_and_writes_the_report(tmp_path, capsys):
    out = tmp_path / "report"
    code, stdout, err = run(capsys, *COMPARE, "--out", out)
    assert code == 0, err
    assert "euler" in stdout and "rk4" in stdout
    assert {"table.md", "table.csv", "traces.png"} <= {p.name for p in out.iterdir()}
    rows = list(csv.DictReader((out / "table.csv").open()))
    rk4_at_10 = [r for r in rows if r["method"] == "rk4" and float(r["t_ms"]) == 10.0]
    assert rk4_at_10 and abs(float(rk4_at_10[0]["v"]) - lif_voltage(10.0)) < 1e-6


@pytest.mark.parametrize("change, named", [(["--methods", "euler,rk5"], "did you mean"),
                                           (["--times", "0,99"], "99"), (["--dt", "0"], "dt=0"),
                                           (["--events", "located,exact"], "exact")])
def test_compare_bad_input_writes_nothing(tmp_path, capsys, change, named):
    args = list(COMPARE)
    at = args.index(change[0])
    args[at + 1] = change[1]
    out = tmp_path / "report"
    code, _, err = run(capsys, *args, "--out", out)
    assert code == 2 and err.count("\n") == 1 and named in err
    assert not out.exists()


def test_convergence_reports_the_orders(tmp_path, capsys):
    out = tmp_path / "report"
    code, stdout, err = run(capsys, "convergence", "lif", "--methods", "euler,rk4", "--dts", "0.5,0.25",
                            "--t-end", "10", "--preset", "subthreshold", "--out", out)
    assert code == 0, err
    assert "observed order" in stdout
    rows = list(csv.DictReader((out / "convergence.csv").open()))
    order = {r["method"]: float(r["observed_order"]) for r in rows}
    assert abs(order["euler"] - 1) < 0.1 and abs(order["rk4"] - 4) < 0.3  # smooth run, no spikes: textbook orders


# --- app: bad launch options ------------------------------------------------------------------------------------
@pytest.mark.parametrize("args, named", [
    (["--port", "0"], "--port 0 is outside 1-65535"),
    (["--port", "70000"], "--port 70000"),
    (["--port", "web"], "--port"),
    (["--host", "203.0.113.7"], "cannot listen on 203.0.113.7"),  # TEST-NET-3: not an address of this machine
])
def test_app_refuses_bad_launch_options_in_one_line(capsys, args, named):
    code, _, err = run(capsys, "app", *args)
    assert code == 2 and err.count("\n") == 1 and err.startswith("neurospike: error: ") and named in err


def test_app_refuses_a_port_in_use(capsys):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        code, _, err = run(capsys, "app", "--port", taken.getsockname()[1])
    assert code == 2 and err.count("\n") == 1 and "in use" in err
