"""``method="reference"`` against an independent scipy Radau solution (rtol = atol = 1e-12).

The right-hand sides, event location and reset maps below are written here from the papers, not taken from the
package, so the comparison checks the package's equations, presets and event handling as well as its solver:

* Hodgkin & Huxley, J. Physiol. 117 (1952) 500, modern convention (Gerstner et al., *Neuronal Dynamics*, 2014,
  Table 2.1): rest at −65 mV, E_L = −54.387 mV.
* Izhikevich, IEEE TNN 14 (2003) 1569, pattern "tonic spiking" of Izhikevich, IEEE TNN 15 (2004) 1063, Fig. 1(A).
* Izhikevich, *Dynamical Systems in Neuroscience* (2007), ch. 8, regular-spiking cell of "Learning to Spike",
  Table I.

Other test modules import ``hh_rates``, ``hh_rhs``, ``hh_steady_gates`` and ``radau_with_resets`` from here.
"""

import numpy as np
import pytest
from scipy.integrate import solve_ivp

import neurospike as ns

RADAU_TOL = 1e-12
AGREEMENT = 1e-8  # ms for spike times, mV for v, relative for gates and recovery variables


# --- independent equations -----------------------------------------------------------------------------------
def hh_rates(v):
    """(α_m, β_m, α_h, β_h, α_n, β_n) of the modern-convention Hodgkin–Huxley model, in 1/ms."""
    alpha_m = 0.1 * (v + 40.0) / (1.0 - np.exp(-(v + 40.0) / 10.0))
    beta_m = 4.0 * np.exp(-(v + 65.0) / 18.0)
    alpha_h = 0.07 * np.exp(-(v + 65.0) / 20.0)
    beta_h = 1.0 / (1.0 + np.exp(-(v + 35.0) / 10.0))
    alpha_n = 0.01 * (v + 55.0) / (1.0 - np.exp(-(v + 55.0) / 10.0))
    beta_n = 0.125 * np.exp(-(v + 65.0) / 80.0)
    return alpha_m, beta_m, alpha_h, beta_h, alpha_n, beta_n


def hh_steady_gates(v):
    alpha_m, beta_m, alpha_h, beta_h, alpha_n, beta_n = hh_rates(v)
    return [alpha_m / (alpha_m + beta_m), alpha_h / (alpha_h + beta_h), alpha_n / (alpha_n + beta_n)]


def hh_rhs(current):
    """dy/dt of (v, m, h, n) for a constant current (µA/cm²)."""

    def rhs(t, y):
        v, m, h, n = y
        alpha_m, beta_m, alpha_h, beta_h, alpha_n, beta_n = hh_rates(v)
        dv = current - 120.0 * m**3 * h * (v - 50.0) - 36.0 * n**4 * (v + 77.0) - 0.3 * (v + 54.387)
        return [dv, alpha_m * (1 - m) - beta_m * m, alpha_h * (1 - h) - beta_h * h, alpha_n * (1 - n) - beta_n * n]

    return rhs


def izhikevich2003_rhs(a, b, current):
    def rhs(t, y):
        v, u = y
        return [0.04 * v * v + 5.0 * v + 140.0 - u + current, a * (b * v - u)]

    return rhs


def izhikevich2007_rs_rhs(current):
    """C = 100 pF, k = 0.7, vr = −60, vt = −40, a = 0.03, b = −2 (Table I)."""

    def rhs(t, y):
        v, w = y
        return [(0.7 * (v + 60.0) * (v + 40.0) - w + current) / 100.0, 0.03 * (-2.0 * (v + 60.0) - w)]

    return rhs


def radau_with_resets(pieces, y0, v_peak, reset=None):
    """Integrate smooth ``pieces`` [(t_a, t_b, rhs)] one after another with Radau; every upward crossing of
    ``v_peak`` by y[0] is located by root finding on the dense output and, with a ``reset`` map, applied there
    before restarting. Returns (spike times, dense(t) -> states) where at a reset time the post-reset state wins."""
    spikes, segments = [], []
    y = np.asarray(y0, dtype=float)
    for start, stop, rhs in pieces:
        t = start
        while t < stop:
            def crossing(_, state):
                return state[0] - v_peak

            crossing.direction = 1.0
            crossing.terminal = reset is not None
            sol = solve_ivp(rhs, (t, stop), y, method="Radau", rtol=RADAU_TOL, atol=RADAU_TOL, events=crossing,
                            dense_output=True)
            assert sol.success, sol.message
            segments.append((t, sol.t[-1], sol.sol))
            if reset is None:
                spikes.extend(sol.t_events[0])
                y, t = sol.y[:, -1], stop
            elif sol.status == 1:
                t = sol.t_events[0][0]
                spikes.append(t)
                y = np.asarray(reset(sol.y_events[0][0]), dtype=float)
            else:
                y, t = sol.y[:, -1], stop

    def dense(times):
        times = np.atleast_1d(times)
        out = np.empty((times.size, y.size))
        for i, time in enumerate(times):
            segment = [s for s in segments if s[0] <= time <= s[1]][-1]
            out[i] = segment[2](time)
        return out

    return np.asarray(spikes), dense


def assert_agrees(trajectory, spikes, dense, times, relative_states):
    assert len(trajectory.spikes) == len(spikes) > 0
    np.testing.assert_allclose(trajectory.spikes, spikes, rtol=0, atol=AGREEMENT)
    expected = dense(times)
    got = trajectory.at(times).y
    for i, name in enumerate(trajectory.state_names):
        if name in relative_states:
            np.testing.assert_allclose(got[:, i], expected[:, i], rtol=AGREEMENT, atol=1e-12, err_msg=name)
        else:
            np.testing.assert_allclose(got[:, i], expected[:, i], rtol=0, atol=AGREEMENT, err_msg=name)


# --- tests ---------------------------------------------------------------------------------------------------
def test_reference_matches_radau_on_hodgkin_huxley():
    # measured: spike times agree to 1.1e-10 ms, v to 3.7e-9 mV, gates to 3.8e-9 relative
    v0 = -65.0
    spikes, dense = radau_with_resets([(0.0, 50.0, hh_rhs(10.0))], [v0, *hh_steady_gates(v0)], v_peak=0.0)
    reference = ns.simulate("hh", method="reference", current=10.0, t_end=50.0)
    assert len(spikes) == 4
    assert_agrees(reference, spikes, dense, [5.0, 10.0, 17.3, 25.0, 33.0, 40.0, 50.0], relative_states={"m", "h", "n"})


def test_reference_matches_radau_on_izhikevich2003_tonic_spiking():
    # Fig. 1(A): a = 0.02, b = 0.2, c = −65, d = 6, v0 = −70, u0 = b v0, I = 14 for t > 10 ms, 100 ms.
    # measured: spike times agree to 9e-10 ms
    a, b, c, d = 0.02, 0.2, -65.0, 6.0
    pieces = [(0.0, 10.0, izhikevich2003_rhs(a, b, 0.0)), (10.0, 100.0, izhikevich2003_rhs(a, b, 14.0))]
    spikes, dense = radau_with_resets(pieces, [-70.0, b * -70.0], v_peak=30.0, reset=lambda y: [c, y[1] + d])
    reference = ns.simulate("izhikevich", preset="tonic_spiking", method="reference")
    assert len(spikes) == 5
    assert_agrees(reference, spikes, dense, [5.0, 10.0, 20.0, 37.5, 60.0, 85.0, 100.0], relative_states={"u"})


def test_reference_matches_radau_on_izhikevich2007_rs():
    # Table I: 0 → 70 pA at 101 ms, v0 = −60, w0 = 0, vpeak = 35, c = −50, d = 100; 0–400 ms.
    # measured: spike times agree to 2.1e-9 ms
    pieces = [(0.0, 101.0, izhikevich2007_rs_rhs(0.0)), (101.0, 400.0, izhikevich2007_rs_rhs(70.0))]
    spikes, dense = radau_with_resets(pieces, [-60.0, 0.0], v_peak=35.0, reset=lambda y: [-50.0, y[1] + 100.0])
    reference = ns.simulate("izhikevich2007", method="reference", t_end=400.0)
    assert len(spikes) == 2
    assert_agrees(reference, spikes, dense, [50.0, 101.0, 150.0, 250.0, 300.0, 400.0], relative_states={"w"})


def test_reference_dense_output_returns_the_post_reset_state_at_a_spike():
    reference = ns.simulate("izhikevich2007", method="reference", t_end=400.0)
    at_spikes = reference.at(reference.spikes)
    np.testing.assert_array_equal(at_spikes["v"], -50.0)
    np.testing.assert_allclose(at_spikes["w"], reference.spike_states_before[:, 1] + 100.0, rtol=1e-14)
    np.testing.assert_allclose(reference.spike_states_before[:, 0], 35.0, atol=1e-9)


@pytest.mark.parametrize("tolerance", [0.0, 1.0, -1e-9])
def test_reference_rejects_tolerances_outside_zero_one(tolerance):
    with pytest.raises(ns.NeurospikeError, match="rtol"):
        ns.simulate("lif", method="reference", rtol=tolerance, t_end=1.0)
