"""Model defaults against the issue's (and the papers') values, Hodgkin–Huxley physiology, and the rate
functions at their removable singularities."""

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import neurospike as ns
from neurospike.models import hh
from test_reference import hh_rates, hh_steady_gates

TABLE_I = Path("/work/shared/reference/learning_to_spike_table2.json")


def test_lif_defaults():
    expected = {"C": 1.0, "g_L": 0.1, "E_L": -70.0, "v_th": -50.0, "v_reset": -70.0, "t_ref": 0.0}
    model = ns.models.get("lif")
    assert model.defaults() == expected
    assert dict(zip(model.states, model.state_units)) == {"v": "mV"}
    assert (model.params["C"].unit, model.params["g_L"].unit) == ("nF", "µS")


def test_hodgkin_huxley_defaults_and_resting_gates():
    model = ns.models.get("hh")
    expected = {"C_m": 1.0, "g_Na": 120.0, "g_K": 36.0, "g_L": 0.3, "E_Na": 50.0, "E_K": -77.0, "E_L": -54.387}
    defaults = model.defaults()
    assert {name: defaults[name] for name in expected} == expected
    assert defaults["v0"] == -65.0
    start = model.initial_state(defaults, np)
    assert start[0] == -65.0
    np.testing.assert_allclose(start[1:], hh_steady_gates(-65.0), rtol=1e-14)


def test_izhikevich2007_defaults_are_table_i():
    expected = {"C": 100.0, "k": 0.7, "vr": -60.0, "vt": -40.0, "vpeak": 35.0, "a": 0.03, "b": -2.0, "c": -50.0,
                "d": 100.0}
    if TABLE_I.is_file():  # the shared copy of Table I, when it is on this machine
        table = json.loads(TABLE_I.read_text())["model"]
        assert (table["params"], table["initial"], table["t_end"]) == (expected, {"v": -60, "w": 0}, 1000)
    model = ns.models.get("izhikevich2007")
    assert model.defaults() == expected
    rs = model.preset("rs")
    assert dict(rs.initial) == {"v": -60.0, "w": 0.0}
    assert rs.t_end == 1000.0
    times = np.array([0.0, 100.0, 100.999, 101.001, 500.0, 1000.0])
    np.testing.assert_array_equal(rs.current(times, times, np), [0.0, 0.0, 0.0, 70.0, 70.0, 70.0])
    assert 101.0 in rs.current.discontinuities()


def test_izhikevich2003_defaults_are_the_2003_paper():
    # dv/dt = 0.04 v² + 5 v + 140 − u + I, du/dt = a (b v − u), regular spiking a, b, c, d = 0.02, 0.2, −65, 8
    defaults = ns.models.get("izhikevich").defaults()
    expected = {"a": 0.02, "b": 0.2, "c": -65.0, "d": 8.0, "k2": 0.04, "k1": 5.0, "k0": 140.0, "v_u": 0.0,
                "u_leak": 1.0, "v_peak": 30.0}
    assert defaults == expected


def test_hodgkin_huxley_rests_at_minus_65_mv():
    rhs_at_rest = hh.derivatives(0.0, (-65.0, *hh_steady_gates(-65.0)), ns.models.get("hh").defaults(), 0.0, np)
    assert abs(rhs_at_rest[0]) < 0.01  # mV/ms: E_L = −54.387 is chosen to make −65 mV (nearly) the rest
    run = ns.simulate("hh", preset="rest", method="reference")
    assert run.t[-1] == 100.0 and len(run.spikes) == 0
    assert np.max(np.abs(run["v"] + 65.0)) < 0.01  # measured: 0.0071 mV


def test_hodgkin_huxley_fires_repetitively_for_10_ua():
    # measured: 7 spikes in 100 ms, interspike interval → 14.636 ms (68.3 Hz), peaks ≈ 40 mV
    run = ns.simulate("hh", current=10.0, method="reference", t_end=100.0)
    spikes = run.spikes
    assert len(spikes) >= 6
    intervals = np.diff(spikes)
    assert np.ptp(intervals[2:]) < 1e-3  # periodic firing (a limit cycle), not a transient
    assert 60.0 < 1000.0 / intervals[-1] < 75.0
    assert spikes[-1] > 100.0 - intervals[-1]  # still firing at the end
    assert np.max(run["v"]) > 30.0
    strang = ns.simulate("hh", current=10.0, method="strang", dt=0.01, t_end=100.0)
    np.testing.assert_allclose(strang.spikes, spikes, rtol=0, atol=1e-2)  # measured: 4.7e-3 ms (order 2)


# (α, limit at the singular voltage, derivative there) for α_m at v = −40 and α_n at v = −55 mV:
# α = s · x/(1 − e^{−x}) with x = (v − v*)/10 → α(v*) = s, α'(v*) = s/20.
SINGULAR = {"alpha_m": (0, 0, -40.0, 1.0), "alpha_n": (2, 0, -55.0, 0.1)}


@pytest.mark.parametrize("name", list(SINGULAR))
def test_rate_functions_are_finite_and_continuous_at_their_removable_singularity(name):
    gate, which, v_star, scale = SINGULAR[name]

    def rate(v, xp=np):
        return hh.rates(v, xp)[gate][which]

    assert rate(np.float64(v_star)) == pytest.approx(scale, rel=1e-15)
    for offset in (1e-7, -1e-7, 1e-9, -1e-9):
        v = v_star + offset
        assert abs(rate(np.float64(v)) - rate(np.float64(v_star))) < 2 * scale / 20 * abs(offset)
    # across the series/closed-form switch and further out: the closed form evaluated with expm1
    v = v_star + 10.0 * np.concatenate([s * np.logspace(-12, 0, 49) for s in (1.0, -1.0)])
    x = (v - v_star) / 10.0  # the x that v really represents
    np.testing.assert_allclose(rate(v), scale * x / -np.expm1(-x), rtol=1e-13)
    # the same under JAX, and its derivative is finite and equals the analytic limit s/20
    assert float(rate(jnp.float64(v_star), jnp)) == pytest.approx(scale, rel=1e-15)
    slope = jax.grad(lambda v: rate(v, jnp))(jnp.float64(v_star))
    assert float(slope) == pytest.approx(scale / 20, rel=1e-12)


def test_rate_functions_match_the_textbook_formulas_away_from_singularities():
    v = np.linspace(-100.0, 60.0, 321)
    v = v[(np.abs(v + 40.0) > 1e-3) & (np.abs(v + 55.0) > 1e-3)]
    package = np.array([x for pair in hh.rates(v, np) for x in pair])
    np.testing.assert_allclose(package, np.array(hh_rates(v)), rtol=1e-12)


@pytest.mark.parametrize("b", [0.0, 0.3, 0.8, 1.5])
def test_fitzhugh_nagumo_starts_at_rest_for_every_coupling(b):
    """The initial state is an equilibrium for I = 0 (both derivatives vanish), also at b = 0 (which once divided
    by zero); for FitzHugh's a = 0.7, b = 0.8 it is his rest point (−1.1994, −0.6243)."""
    model = ns.models.get("fhn")
    values = {**model.defaults(), "b": b}
    start = model.initial_state(values, np)
    np.testing.assert_allclose(model.derivatives(0.0, start, values, 0.0, np), 0.0, atol=1e-13)
    if b == 0.8:
        np.testing.assert_allclose(start, (-1.1994, -0.6243), atol=1e-4)
    if b == 0.0:
        assert start[0] == -values["a"]
