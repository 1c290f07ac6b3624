"""AdEx (Brette & Gerstner 2005) through every integer-order method and the fractional solvers. Its upstroke is
explosive (dv/dt ∝ exp((v − V_T)/Δ_T), ~10^14 mV/ms at v_peak): the model's right-hand side sees min(v, v_peak) as
NEST's aeif models do, the reference accepts a blow-up within 1e-9 ms of v_peak as the spike, and implicit and
exponential steps fall back to explicit Euler where they have no root or explode. Truth: an independent scipy
integration of the paper's equations without any cap, and convergence of every method to the reference."""

import numpy as np
import pytest
from scipy.integrate import solve_ivp

import neurospike as ns

PARAMS = dict(C=281.0, g_L=30.0, E_L=-70.6, V_T=-50.4, Delta_T=2.0, tau_w=144.0, a=4.0, b=80.5)  # Table 1


def paper_rhs(t, y, current):
    v, w = y
    dv = (-PARAMS["g_L"] * (v - PARAMS["E_L"]) + PARAMS["g_L"] * PARAMS["Delta_T"]
          * np.exp((v - PARAMS["V_T"]) / PARAMS["Delta_T"]) - w + current) / PARAMS["C"]
    return [dv, (PARAMS["a"] * (v - PARAMS["E_L"]) - w) / PARAMS["tau_w"]]


@pytest.fixture(scope="module")
def reference():
    return ns.simulate("adex", method="reference")  # preset "adapting": 1 nA from 20 ms, 500 ms


def test_reference_first_spike_matches_an_uncapped_integration_of_the_paper_equations(reference):
    """From v = E_L, w = 0 (not quite at rest: the exponential term is 2.5e-3 pA there), 0 pA to 20 ms, then
    1000 pA: the uncapped equations (Radau, no neurospike code) reach 0 mV at a time from which v_peak = 20 mV is
    ~1e-10 ms away; the reference's first spike lies there."""
    def at_zero(t, y, current):
        return y[0]
    at_zero.terminal, at_zero.direction = True, 1.0
    options = dict(method="Radau", rtol=1e-11, atol=1e-11)
    resting = solve_ivp(paper_rhs, (0.0, 20.0), [PARAMS["E_L"], 0.0], args=(0.0,), **options)
    solution = solve_ivp(paper_rhs, (20.0, 100.0), resting.y[:, -1], events=at_zero, args=(1000.0,), **options)
    assert reference.spikes.size == 16
    assert abs(reference.spikes[0] - solution.t_events[0][0]) < 1e-6
    np.testing.assert_allclose(reference.spike_states_before[0, 1], solution.y_events[0][0][1], atol=1e-6)
    isis = np.diff(reference.spikes)
    assert np.all(np.diff(isis[:6]) > 0)  # spike-frequency adaptation (the preset's point)


@pytest.mark.slow
@pytest.mark.parametrize("method, tolerance", [("euler", 0.06), ("rk2", 0.02), ("heun", 0.01), ("rk4", 0.005),
                                               ("exp-euler", 0.03), ("backward-euler", 0.04)])
def test_every_method_converges_to_the_reference_spike_times(reference, method, tolerance):
    errors = []
    for dt in (0.01, 0.001):
        run = ns.simulate("adex", method=method, dt=dt)
        assert run.spikes.size == reference.spikes.size, (dt, run.spikes[:5])
        errors.append(np.max(np.abs(run.spikes - reference.spikes)))
    assert errors[1] < tolerance and errors[0] / errors[1] > 3.0, errors


@pytest.mark.slow
@pytest.mark.parametrize("method", ["l1", "fast-l1", "pece"])
def test_fractional_adex_runs_and_alpha_one_converges(reference, method):
    integer = ns.simulate("adex", method=method, alpha=1.0, dt=0.01, t_end=150.0)
    assert integer.spikes.size == np.sum(reference.spikes < 150.0)
    assert np.max(np.abs(integer.spikes - reference.spikes[:integer.spikes.size])) < 0.25
    if method == "pece":  # its memory holds f, ~1e9 mV/ms at the last node of an upstroke: refused for α < 1
        with pytest.raises(ns.errors.NeurospikeError, match="explosive upstroke"):
            ns.simulate("adex", method=method, alpha=0.8, dt=0.01, t_end=300.0)
        return
    # L1 stores increments: the second spike converges (121.0 ms at dt 0.01, 121.5 at 0.002)
    fractional = [ns.simulate("adex", method=method, alpha=0.8, dt=dt, t_end=300.0) for dt in (0.01, 0.004)]
    assert fractional[0].spikes.size == fractional[1].spikes.size == 3
    assert np.max(np.abs(fractional[0].spikes - fractional[1].spikes)) < 1.0
