"""neurospike.fit: fitting parameters and the fractional order to a recording (issue 12, first part).

The data are runs of the model itself at a finer step (rk4 dt 0.01, or fast-l1 dt 0.05), sampled like a recording;
the fitted values are compared with the true ones.
"""

import json
import subprocess
import sys

import numpy as np
import pytest

import neurospike as ns
from neurospike import fitting
from neurospike.data import Recording


LIF_TRUE = {"C": 1.0, "g_L": 0.1, "E_L": -70.0, "v_th": -50.0, "v_reset": -65.0, "t_ref": 2.0}
LIF_STEP = ns.currents.step(start=10.0, amplitude=2.5)


def lif_recording(noise=0.5, t_end=200.0, seed=0):
    truth = ns.simulate("lif", params=LIF_TRUE, current=LIF_STEP, method="rk4", dt=0.01, t_end=t_end)
    t = np.arange(0.0, t_end + 1e-9, 0.1)
    v = truth.at(t)["v"] + np.random.default_rng(seed).normal(0.0, noise, t.size)
    return Recording(t, v, np.asarray(LIF_STEP(t)), "nA"), truth


@pytest.mark.slow
def test_gradient_fit_from_the_truth_stays_at_the_noise_floor():
    """Started at the true C and g_L, with the samples within 1 ms of a spike left out (the resets) and v(0)
    fitted, the fit keeps C and g_L within three standard errors (2 %) and the loss is the noise variance (0.25 mV^2
    for sigma = 0.5 mV, to 20 %); Gamma = 1 on the held-out segment."""
    recording, truth = lif_recording()
    result = fitting.fit("lif", recording, ["C", "g_L"], start={"C": 1.0, "g_L": 0.1},
                         fixed={"v_reset": -65.0, "t_ref": 2.0}, spikes=truth.spikes, train=(0, 140),
                         test=(140, 200), adam_steps=0, lbfgs_steps=30, spike_mask=1.0, fit_initial=True)
    for name in ("C", "g_L"):
        assert np.isfinite(result.errors[name]) and result.errors[name] > 0
        assert abs(result.values[name] - LIF_TRUE[name]) < 3 * result.errors[name], name  # measured 2.2, 2.0
        assert result.values[name] == pytest.approx(LIF_TRUE[name], rel=0.02)
    assert result.loss_value == pytest.approx(0.25, rel=0.2)
    assert result.gamma_test == pytest.approx(1.0)
    assert len(result.trajectory.spikes) == len(truth.spikes)


def test_fit_refuses_bad_input_in_one_line():
    recording, truth = lif_recording(t_end=50.0)
    cases = [
        (dict(params=["tau"]), "unknown parameter 'tau'"),
        (dict(params=["C"], method="newton"), "method='newton'"),
        (dict(params=["C"], loss="l1"), "loss='l1'"),
        (dict(params=["C"], train=(0, 80)), "outside the recording"),
        (dict(params=["C"], start={"C": 50.0}), "outside its range"),
        (dict(params=["C"], fixed={"C": 1.0}), "both fitted and fixed"),
        (dict(params=[]), "nothing to fit"),
        (dict(params=["C"], alpha=1.5), "outside (0, 1]"),
        (dict(params=["C"], starts=0), "starts=0"),
        (dict(params=["C"], loss="spikes", forced_reset=True), "forced_reset needs"),
        (dict(params=["C"], method="pinn", alpha=0.8), "does not take a fractional order"),
    ]
    for options, message in cases:
        params = options.pop("params")
        with pytest.raises(ns.NeurospikeError, match=message.replace("(", r"\(").replace(")", r"\)")):
            fitting.fit("lif", recording, params, **options)


def hh_csv(path, t_end=30.0):
    """An HH recording (10 µA/cm², rk4 dt 0.005, v + 1 mV noise every 0.05 ms) as a CSV with units."""
    truth = ns.simulate("hh", method="rk4", dt=0.005, t_end=t_end, current=10.0)
    t = np.arange(0.0, t_end + 1e-9, 0.05)
    v = truth.at(t)["v"] + np.random.default_rng(1).normal(0.0, 1.0, t.size)
    rows = "\n".join(f"{a:.6f},{b:.9f},10.0" for a, b in zip(t, v))
    path.write_text("t (ms),v (mV),I (µA/cm²)\n" + rows + "\n")
    return truth



def test_a_value_fitted_at_a_bound_of_its_range_is_named_in_the_notes():
    """A mismatched model (AdEx on an HH recording, benchmarks/fit.py adex-hh) can end with C and g_L at the top of
    their ranges, where the logistic map is flat and the standard errors are not finite: the notes say which."""
    space = fitting.Space(("C", "g_L", "a"), np.array([50.0, 1.0, -10.0]), np.array([500.0, 100.0, 50.0]))
    notes = fitting._bound_notes(space, {"C": 500.0, "g_L": 30.0, "a": -10.0 + 1e-9})
    assert len(notes) == 1 and "C high" in notes[0] and "a low" in notes[0] and "g_L" not in notes[0], notes
    assert fitting._bound_notes(space, {"C": 281.0, "g_L": 30.0, "a": 4.0}) == []

@pytest.mark.slow
def test_cli_fit_end_to_end_on_a_csv_recording(tmp_path):
    """neurospike fit hh --data rec.csv --params g_L ...: exit 0, fit.json (values, errors, Gamma, the command),
    fit.md and both figures; the fitted g_L (with v(0)) is within 3 standard errors of 0.3 mS/cm²."""
    truth = hh_csv(tmp_path / "rec.csv")
    out = tmp_path / "report"
    command = [sys.executable, "-m", "neurospike.cli", "fit", "hh", "--data", str(tmp_path / "rec.csv"),
               "--params", "g_L", "--start", "g_L=0.33", "--dt", "0.01", "--train", "0:20", "--test", "20:30",
               "--adam-steps", "0", "--lbfgs-steps", "20", "--fit-initial", "--out", str(out)]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr
    record = json.loads((out / "fit.json").read_text())
    assert record["model"] == "hh" and record["method"] == "gradient" and "g_L" in record["values"]
    assert abs(record["values"]["g_L"] - 0.3) < 3 * record["standard_errors"]["g_L"]
    assert record["data_spikes"] == len(truth.spikes) and record["gamma_test"] == pytest.approx(1.0)
    assert "--params g_L" in record["command"]
    for name in ("fit.md", "fit_trace.png", "fit_history.png"):
        assert (out / name).stat().st_size > 0


def test_cli_fit_refuses_a_bad_file_and_writes_nothing(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("t (ms),v (mV),I (pA)\n0,-65,0\n0.1,nan,0\n0.2,-64,0\n")
    good = tmp_path / "good.csv"
    good.write_text("t (ms),v (mV),I (nA)\n0,-70,0\n0.1,-70,0\n0.2,-70,0\n")
    out = tmp_path / "report"
    for data, extra, message in ((bad, [], "NaN"), (good, ["--method", "newton"], "method='newton'"),
                                 (good, ["--train", "0:5"], "outside the recording"),
                                 (good, ["--spikes", "5,3"], "must increase")):
        command = [sys.executable, "-m", "neurospike.cli", "fit", "lif", "--data", str(data), "--out", str(out),
                   "--params", "C", *extra]
        finished = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert finished.returncode == 2, finished.stderr
        lines = finished.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("neurospike: error:") and message in lines[0], lines
        assert not out.exists()


@pytest.mark.slow
def test_hodgkin_huxley_conductances_from_ten_percent_off():
    """The issue's HH case at 100 ms: 10 µA/cm², sigma = 1 mV, g_Na, g_K, g_L started 10 % off (132, 32.4, 0.33),
    least squares on the trace with v(0) fitted: each within 2 % and 3 standard errors (measured +0.06 %, −0.05 %,
    +0.99 %, all within 1 SE), the loss at the noise floor, Gamma = 1 on the held-out 70–100 ms."""
    true = {"g_Na": 120.0, "g_K": 36.0, "g_L": 0.3}
    truth = ns.simulate("hh", method="rk4", dt=0.005, t_end=100.0, current=10.0)
    t = np.arange(0.0, 100.0 + 1e-9, 0.05)
    v = truth.at(t)["v"] + np.random.default_rng(0).normal(0.0, 1.0, t.size)
    recording = Recording(t, v, np.full(t.size, 10.0), "µA/cm²")
    result = fitting.fit("hh", recording, list(true), start={"g_Na": 132.0, "g_K": 32.4, "g_L": 0.33}, dt=0.01,
                         train=(0, 70), test=(70, 100), adam_steps=0, lbfgs_steps=100, fit_initial=True)
    for name, value in true.items():
        assert result.values[name] == pytest.approx(value, rel=0.02), name
        assert abs(result.values[name] - value) < 3 * result.errors[name], name
    assert result.loss_value == pytest.approx(1.0, rel=0.1)
    assert result.gamma_test == pytest.approx(1.0)


@pytest.mark.slow
def test_forced_reset_phase_finds_the_leak_from_forty_percent_off():
    """LIF g_L started at 0.14 (true 0.1, 40 % off: the start fires 2 spikes where the data have 4): with runs
    reset at the recorded spike times first, the fit reaches g_L within 2 % and the recorded spike count."""
    recording, truth = lif_recording(t_end=100.0)
    result = fitting.fit("lif", recording, ["g_L"], start={"g_L": 0.14}, fixed={"v_reset": -65.0, "t_ref": 2.0},
                         spikes=truth.spikes, spike_mask=1.0, adam_steps=40, lbfgs_steps=30, starts=4)
    assert result.values["g_L"] == pytest.approx(0.1, rel=0.02)
    assert len(result.trajectory.spikes) == len(truth.spikes)
    assert any(h["phase"].startswith("forced reset") for h in result.history)


@pytest.mark.slow
def test_izhikevich2007_rs_from_thirty_percent_off():
    """The issue's RS case on 600 ms (3 spikes): k, a, b, c, d started 30 % off (the start fires late spikes),
    sigma = 0.5 mV, samples within 2 ms of a spike left out; the forced-reset phase then least squares on the free
    run recover each parameter within 2 % and every spike time within 0.1 ms."""
    true = {"k": 0.7, "a": 0.03, "b": -2.0, "c": -50.0, "d": 100.0}
    truth = ns.simulate("izhikevich2007", preset="rs", method="rk4", dt=0.01, t_end=600.0)
    t = np.arange(6001) / 10  # exact decimals: the step (0 at 101 ms, 70 pA just after) digitised at 101.0
    v = truth.at(t)["v"] + np.random.default_rng(0).normal(0.0, 0.5, t.size)
    recording = Recording(t, v, np.asarray(ns.currents.step(start=101.0, amplitude=70.0)(t + 1e-9)), "pA")
    start = {"k": 0.91, "a": 0.021, "b": -2.6, "c": -35.0, "d": 70.0}
    result = fitting.fit("izhikevich2007", recording, list(true), start=start, spikes=truth.spikes, spike_mask=2.0,
                         lbfgs_steps=100, fit_initial=True)
    for name, value in true.items():
        assert result.values[name] == pytest.approx(value, rel=0.02), name
    assert len(result.trajectory.spikes) == len(truth.spikes)
    assert np.max(np.abs(result.trajectory.spikes - truth.spikes)) < 0.1


FO_LIF = {"C": 1.0, "g_L": 0.1, "E_L": -70.0, "v_th": -50.0, "v_reset": -70.0, "t_ref": 0.0}


def fo_lif_recording(t_end, dt, alpha=0.7):
    """The fractional LIF (5 nA, fast-l1 at ``dt``) sampled every 0.5 ms, and its spike times: a reset model's
    samples miss the spikes, which are given to the fit (``spikes=``) as the recorded ones."""
    truth = ns.simulate("lif", params=FO_LIF, current=5.0, t_end=t_end, dt=dt, method="fast-l1", alpha=alpha)
    t = np.arange(0.0, t_end + 1e-9, 0.5)
    return Recording(t, truth.at(t)["v"], np.full(t.size, 5.0), "nA"), truth


def test_timing_loss_is_the_mean_squared_gap_of_matched_spikes_with_missing_ones_at_the_end():
    """loss="timing" at the start (no iteration): (1/N_data) Σ (t_model,i − t_data,i)², the model's extra spikes
    (α = 0.8 fires more than α = 0.7) against the end of the segment; the fitted run is the start's."""
    recording, truth = fo_lif_recording(60.0, 0.1)
    result = fitting.fit("lif", recording, [], alpha="fit", start={"alpha": 0.8}, fixed=FO_LIF, loss="timing",
                         spikes=truth.spikes, dt=0.1, adam_steps=0, lbfgs_steps=0)
    model = ns.simulate("lif", params=FO_LIF, current=5.0, t_end=60.0, dt=0.1, method="fast-l1", alpha=0.8).spikes
    assert len(model) > len(truth.spikes) >= 2
    data = np.append(truth.spikes, np.full(len(model) - len(truth.spikes), 60.0))
    assert result.loss_value == pytest.approx(np.mean((model - data) ** 2) * len(model) / len(truth.spikes),
                                              rel=1e-6)
    np.testing.assert_allclose(result.trajectory.spikes, model, atol=1e-9)


@pytest.mark.slow
def test_fractional_order_of_a_lif_from_spike_times():
    """The issue's FO-LIF case, small: α = 0.7 from the spike times alone (100 ms, 5 spikes), started at 0.8 and
    at 0.5, fitted at the data's own step and method (the truth is an exact zero of the timing loss): within
    0.001 of 0.7 (measured 0.7000000), every spike matched."""
    recording, truth = fo_lif_recording(100.0, 0.1)
    for start in (0.8, 0.5):
        result = fitting.fit("lif", recording, [], alpha="fit", start={"alpha": start}, fixed=FO_LIF,
                             loss="timing", spikes=truth.spikes, dt=0.1, adam_steps=0, lbfgs_steps=12)
        assert result.values["alpha"] == pytest.approx(0.7, abs=1e-3), start
        assert result.loss_value < 1e-6 and len(result.trajectory.spikes) == len(truth.spikes)


@pytest.mark.slow
def test_fractional_order_of_a_lif_from_spike_times_at_another_step():
    """The issue's target (α = 0.7 within 0.01 from spike times, 600 ms): data from fast-l1 at dt 0.01
    (17 spikes), fitted at dt 0.05 from 0.8 with the timing loss (measured 0.70003; the loss is the squared timing
    error of the coarser step, 5.6e-4 ms²)."""
    recording, truth = fo_lif_recording(600.0, 0.01)
    result = fitting.fit("lif", recording, [], alpha="fit", start={"alpha": 0.8}, fixed=FO_LIF, loss="timing",
                         spikes=truth.spikes, dt=0.05, adam_steps=0, lbfgs_steps=15)
    assert result.values["alpha"] == pytest.approx(0.7, abs=0.01)
    assert len(result.trajectory.spikes) == len(truth.spikes) == 17
    assert result.gamma_train == pytest.approx(1.0)


def fo_hh_recording(t_end, seed=0):
    """The fractional HH (one order α = 0.8 for v, m, h, n; 10 µA/cm², fast-l1 dt 0.01) sampled every 0.05 ms
    with N(0, 1 mV) noise."""
    truth = ns.simulate("hh", current=10.0, t_end=t_end, dt=0.01, method="fast-l1", alpha=0.8)
    t = np.arange(0.0, t_end + 1e-9, 0.05)
    v = truth.at(t)["v"] + np.random.default_rng(seed).normal(0.0, 1.0, t.size)
    return Recording(t, v, np.full(t.size, 10.0), "µA/cm²"), truth


def test_fractional_order_of_hodgkin_huxley_from_the_trace():
    """FO-HH α = 0.8 (all four states) from a noisy v (σ = 1 mV, 30 ms), started at 0.9, least squares on the
    trace with v(0) fitted, at the data's step: within 0.02 and 3 standard errors, the loss at the noise floor."""
    recording, truth = fo_hh_recording(30.0)
    result = fitting.fit("hh", recording, [], alpha="fit", start={"alpha": 0.9}, dt=0.01, adam_steps=0,
                         lbfgs_steps=20, fit_initial=True)
    assert result.values["alpha"] == pytest.approx(0.8, abs=0.02)
    assert abs(result.values["alpha"] - 0.8) < 3 * result.errors["alpha"]
    assert result.loss_value == pytest.approx(1.0, rel=0.15)


@pytest.mark.slow
def test_fractional_order_and_conductances_of_hodgkin_huxley():
    """The issue's FO-HH case, 100 ms: α (from 0.9) with g_Na, g_K, g_L (10 % off) and v(0), least squares on the
    trace: α within 0.02 (measured 0.8018 ± 0.0011), the conductances within 5 % and 3 standard errors (measured
    +2.2 %, +0.9 %, −2.2 %), the loss at the noise floor (0.996)."""
    true = {"g_Na": 120.0, "g_K": 36.0, "g_L": 0.3}
    recording, truth = fo_hh_recording(100.0)
    result = fitting.fit("hh", recording, list(true), alpha="fit",
                         start={"g_Na": 132.0, "g_K": 32.4, "g_L": 0.33, "alpha": 0.9}, dt=0.01, adam_steps=0,
                         lbfgs_steps=40, fit_initial=True)
    assert result.values["alpha"] == pytest.approx(0.8, abs=0.02)
    for name, value in {**true, "alpha": 0.8}.items():
        assert abs(result.values[name] - value) < 3 * result.errors[name], name
    for name, value in true.items():
        assert result.values[name] == pytest.approx(value, rel=0.05), name
    assert result.loss_value == pytest.approx(1.0, rel=0.1)


@pytest.mark.slow
def test_inverse_pinn_through_fit_recovers_the_leak_of_hodgkin_huxley():
    """ns.fit(method="pinn") on 30 ms of HH (10 µA/cm², sigma = 1 mV), g_L from 10 % off: within 10 % (measured
    −7.2 %; the issue's PINN target is 5 % on 100 ms with three conductances: docs/fit.md); the loss reported is the
    fixed-step run's at the fitted value, so it lies above the noise floor (measured 3.37: −7 % in g_L moves the
    spikes)."""
    truth = ns.simulate("hh", method="rk4", dt=0.005, t_end=30.0, current=10.0)
    t = np.arange(601) / 20
    v = truth.at(t)["v"] + np.random.default_rng(0).normal(0.0, 1.0, t.size)
    recording = Recording(t, v, np.full(t.size, 10.0), "µA/cm²")
    result = fitting.fit("hh", recording, ["g_L"], start={"g_L": 0.33}, method="pinn", dt=0.01)
    assert result.values["g_L"] == pytest.approx(0.3, rel=0.1)
    assert 1.0 < result.loss_value < 10.0
    assert any(h["phase"].startswith("pinn") for h in result.history)


@pytest.mark.slow
def test_adex_fitted_to_hodgkin_huxley_matches_the_train_step_not_the_faster_test_step():
    """Model mismatch (benchmarks/fit.py adex-hh): AdEx's nine parameters fitted by CMA-ES (loss both) to an HH
    recording in µA/cm² (area 1e-4 cm²) on its 7 µA/cm² step match its 9 spikes (Γ 1.0; Brette & Gerstner's values
    give Γ 0.01) but fire too fast on the 12 µA/cm² test step (14 spikes for 11, Γ 0.39): AdEx's f-I curve is
    continuous, HH's (type II) flat from its onset at ~55 Hz."""
    current = ns.currents.Piecewise(0.0, (20.0, 250.0), (170.0, 400.0), (7.0, 12.0), (0.0, 0.0))
    truth = ns.simulate("hh", current=current, t_end=450.0, dt=0.005, method="rk4")
    t = np.arange(0.0, 450.0 + 1e-9, 0.1)
    v = truth.at(t)["v"] + np.random.default_rng(0).normal(0.0, 0.5, t.size)
    recording = Recording(t, v, np.asarray(current(t)), "µA/cm²")
    result = fitting.fit("adex", recording, ["C", "g_L", "E_L", "V_T", "Delta_T", "a", "tau_w", "b", "v_reset"],
                         fixed={"v_peak": 0.0}, area=1e-4, method="cma", loss="both", spike_mask=2.5,
                         train=(0.0, 230.0), test=(230.0, 450.0), dt=0.1, cma_generations=40, fit_initial=True,
                         forced_reset=False)
    assert result.gamma_train > 0.9
    assert result.gamma_test < 0.7
    spikes = result.trajectory.spikes
    assert np.sum(spikes > 230.0) > np.sum(truth.spikes > 230.0)
