"""Fractional-order runs through ``simulate`` and the CLI: exact subthreshold solution, α = 1, adaptation, bad input."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import neurospike as ns
from neurospike.errors import NeurospikeError

CLI = Path(sys.executable).with_name("neurospike")


def test_subthreshold_fractional_lif_follows_the_mittag_leffler_solution():
    # C D^α v = −g_L (v − E_L) + I:  v(t) = E_L + (I/g_L)(1 − E_α(−(g_L/C) t^α)); defaults C = 1, g_L = 0.1, E_L = −70
    run = ns.simulate("lif", method="l1", alpha=0.7, dt=0.02, t_end=40.0, current=1.5)
    times = np.array([10.0, 20.0, 40.0])
    exact = -70.0 + 15.0 * (1.0 - ns.mittag_leffler(-0.1 * times**0.7, 0.7))
    assert run.spikes.size == 0 and run.alpha == {"v": 0.7}
    error = np.abs(run.at(times)["v"] - exact)  # first order in dt, largest early (the t^α initial layer)
    assert error[0] < 4e-3 and error[-1] < 1e-3


def test_order_one_is_the_integer_order_backward_euler():
    fractional = ns.simulate("izhikevich2007", method="l1", alpha=1.0, dt=0.1, events="step")
    integer = ns.simulate("izhikevich2007", method="backward-euler", dt=0.1, events="step")
    np.testing.assert_allclose(fractional.spikes, integer.spikes, atol=1e-9)
    np.testing.assert_allclose(fractional.at([250.0, 750.0]).y, integer.at([250.0, 750.0]).y, atol=1e-8)


def test_fractional_lif_adapts_under_constant_input():
    isis = np.diff(ns.simulate("lif", method="l1", alpha=0.7, dt=0.05, t_end=700.0, current=2.5).spikes)
    assert isis.size >= 3 and np.all(np.diff(isis) > 0)


@pytest.mark.parametrize("kwargs, message", [
    (dict(method="l1"), "give alpha"),
    (dict(method="rk4", alpha=0.5), "use a fractional method"),
    (dict(method="l1", alpha=0.0), r"outside \(0, 1\]"),
    (dict(method="l1", alpha={"w": 0.5}), "unknown state 'w'"),
])
def test_bad_fractional_input_is_one_clear_error(kwargs, message):
    with pytest.raises(NeurospikeError, match=message):
        ns.simulate("lif", dt=0.1, t_end=10.0, **kwargs)


def test_cli_fractional_run_and_refusal(tmp_path):
    out = tmp_path / "flif.json"
    ok = subprocess.run([str(CLI), "simulate", "lif", "--method", "l1", "--alpha", "v=0.8", "--dt", "0.05",
                         "--t-end", "50", "--current", "constant:amplitude=1.5", "--out", str(out)],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run([str(CLI), "simulate", "lif", "--method", "l1", "--alpha", "1.2", "--out",
                          str(tmp_path / "bad.json")], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "alpha" in bad.stderr
    assert not (tmp_path / "bad.json").exists()


def test_a_history_too_large_is_refused_before_running_and_fast_l1_is_suggested():
    with pytest.raises(NeurospikeError, match="fast-l1 keeps no per-step history"):
        ns.simulate("lif", method="l1", alpha=0.7, dt=0.001, t_end=100_000.0, memory_limit=2**30)


def test_pece_and_l1_agree_on_adapting_fractional_lif():
    # two different schemes for the same Caputo model: their spike times agree to O(dt)
    runs = [ns.simulate("lif", method=m, alpha=0.7, dt=0.05, t_end=600.0, current=2.5) for m in ("pece", "l1")]
    assert runs[0].spikes.size == runs[1].spikes.size >= 3
    np.testing.assert_allclose(runs[0].spikes, runs[1].spikes, atol=0.2)
    assert np.all(np.diff(np.diff(runs[0].spikes)) > 0)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["l1", "fast-l1", "pece"])
def test_refractory_period_holds_the_reset_and_alpha_one_gives_the_exact_interval(method):
    """LIF with t_ref = 5 ms, I = 2.5 nA (τ = 10 ms, v_inf = −45 mV): at α = 1 the exact interspike interval is
    t_ref + τ ln((v_inf − v_reset)/(v_inf − v_th)) = 5 + 10 ln 5. The period starts at the located t* and the step
    of its end restarts there, so the error is the scheme's: first order for L1 (backward Euler; measured 0.80·dt),
    second for pece (Heun; measured 0.039·dt² at dt = 0.02, 0.005 ms)."""
    exact = 5.0 + 10.0 * np.log(25.0 / 5.0)
    for dt in (0.02, 0.005):
        run = ns.simulate("lif", method=method, alpha=1.0, dt=dt, t_end=100.0, current=2.5, params={"t_ref": 5.0})
        isis = np.diff(run.spikes)
        bound = 0.1 * dt**2 if method == "pece" else 0.85 * dt
        assert isis.size >= 3 and np.all(np.abs(isis - exact) <= bound), (dt, isis - exact)
    fractional = ns.simulate("lif", method=method, alpha=0.8, dt=0.02, t_end=300.0, current=2.5,
                             params={"t_ref": 5.0})
    free = ns.simulate("lif", method=method, alpha=0.8, dt=0.02, t_end=300.0, current=2.5)
    for spike in fractional.spikes:  # held at v_reset over the whole period, then free again
        inside = (fractional.t > spike) & (fractional.t <= spike + 5.0 - 0.02)
        assert inside.sum() >= 240 and np.all(fractional.states["v"][inside] == -70.0)
        after = fractional.t > spike + 5.0 + 0.04
        assert fractional.states["v"][after][0] > -70.0 if after.any() else True
    isis = np.diff(fractional.spikes)
    assert isis.size >= 2 and np.all(np.diff(isis) > 0)  # adaptation survives the refractory period
    assert fractional.spikes[0] == free.spikes[0]  # nothing changes before the first spike
