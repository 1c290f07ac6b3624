"""Derivatives of fixed-step runs (``neurospike.differentiable``) against central finite differences of the same
run and against the closed-form derivative of LIF spike times.

Central differences use the step h = 1e-6·|p| in float64: for Izhikevich (2007) RS they agree with the forward-mode
derivative to ~1e-7 relative (1e-4 gave ~5e-5: truncation; the located spike times are smooth in p between
changes of the spike count). LIF (Lapicque 1907; Gerstner et al. 2014, ch. 1), C dv/dt = −g_L (v − E_L) + I with
threshold v_th, reset v_reset and refractory period t_ref, from v0 = E_L with v_∞ = E_L + I/g_L > v_th and
τ = C/g_L, fires at

    t_1 = τ ln((v_∞ − v0)/(v_∞ − v_th)),   t_{k+1} = t_k + t_ref + τ ln((v_∞ − v_reset)/(v_∞ − v_th)),

whose derivatives in (C, g_L, E_L, v_th, v_reset, t_ref, I) are taken here by ``jax.jacfwd`` of that formula.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import neurospike as ns
from neurospike.differentiable import differentiable, jit

LIF = {"C": 1.0, "g_L": 0.1, "E_L": -70.0, "v_th": -50.0, "v_reset": -65.0, "t_ref": 2.0}
LIF_I = 2.5  # v_inf = -45 mV: spikes at 16.09, 34.34, 52.60 ... ms
METHODS = ["euler", "rk2", "heun", "rk4", "euler-sequential", "backward-euler", "exp-euler", "strang"]


def lif_spike_times(p, current, count):
    tau, v_inf = p["C"] / p["g_L"], p["E_L"] + current / p["g_L"]
    first = tau * jnp.log((v_inf - p["E_L"]) / (v_inf - p["v_th"]))
    interval = p["t_ref"] + tau * jnp.log((v_inf - p["v_reset"]) / (v_inf - p["v_th"]))
    return first + interval * jnp.arange(count)


def central_differences(f, point, rel=1e-6):
    """d f / d point[name] for every name, by central differences with the step rel·|value| (float64)."""
    out = {}
    for name, value in point.items():
        h = rel * max(abs(value), 1e-3)
        up, down = dict(point), dict(point)
        up[name], down[name] = value + h, value - h
        out[name] = (np.asarray(f(up)) - np.asarray(f(down))) / (2 * h)
    return out


def assert_close_relative(derivative, reference, rtol, label=""):
    """Agreement relative to the largest entry of each derivative (an entry that is exactly 0 by structure, such
    as the first spike's derivative in the reset value, is compared on that scale)."""
    for name in reference:
        got, want = np.asarray(derivative[name]), np.asarray(reference[name])
        scale = np.max(np.abs(want))
        assert scale > 0, (label, name)
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * scale, err_msg=f"{label} d/d{name}")


def lif_function(method, dt=0.1, mode="forward", t_end=60.0):
    run = differentiable("lif", method=method, dt=dt, t_end=t_end, save_at=[30.0, t_end], max_spikes=3, mode=mode)

    def f(point):
        point = dict(point)
        current = point.pop("I")
        initial = {"v": point.pop("v0")} if "v0" in point else {}
        states, spikes = run(point, initial, current)
        return jnp.concatenate([spikes, states[:, 0]])

    return f


@pytest.mark.slow
def test_lif_spike_time_derivatives_match_the_closed_form():
    """rk4 at dt = 0.05: the derivatives of the three spike times in C, g_L, E_L, v_th, v_reset, t_ref and I
    against the closed form, to 1e-6 relative (measured 4e-9: the method's error in the derivative)."""
    f = jax.jit(lif_function("rk4", dt=0.05))
    point = {**LIF, "I": LIF_I}
    derivative = jax.jit(jax.jacfwd(f))(point)
    exact = jax.jacfwd(lambda p: lif_spike_times(p, p["I"], 3))(point)
    np.testing.assert_allclose(f(point)[:3], lif_spike_times(point, LIF_I, 3), rtol=0, atol=1e-6)
    assert_close_relative({k: v[:3] for k, v in derivative.items()}, exact, 1e-6, "lif rk4 closed form")
    # e.g. dt_1/dI = −τ (v_th − E_L)/(g_L (v_∞ − E_L)(v_∞ − v_th)) = −16 ms/nA
    np.testing.assert_allclose(derivative["I"][0], -16.0, rtol=1e-7)


@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS)
def test_lif_derivatives_match_central_differences_for_every_method(method):
    """Spike times and v at 30 and 60 ms in every parameter, the input and the initial state (the refractory
    period, the reset value and the threshold included), for every explicit and implicit method."""
    f = jax.jit(lif_function(method))
    point = {**LIF, "I": LIF_I, "v0": -68.0}
    derivative = jax.jit(jax.jacfwd(f))(point)
    assert np.all(np.isfinite(np.asarray(f(point))))
    assert_close_relative(derivative, central_differences(f, point), 1e-5, method)


RS = {"a": 0.03, "b": -2.0, "c": -50.0, "d": 100.0, "k": 0.7, "I": 70.0}


def rs_function(mode="forward", method="rk4"):
    run = differentiable("izhikevich2007", preset="rs", method=method, dt=0.1, save_at=[1000.0], max_spikes=8,
                         mode=mode)

    def f(point):
        point = dict(point)
        current = point.pop("I")
        return run(point, {}, current)[1][:6]

    return f


@pytest.mark.slow
def test_izhikevich2007_rs_six_spike_times_match_central_differences():
    """All six spike times of the RS cell (Izhikevich 2007, step of 70 pA at 101 ms, rk4 dt = 0.1, located) in a,
    b, c, d, k and I (measured agreement ~1e-7)."""
    f = jax.jit(rs_function())
    times = np.asarray(f(RS))
    reference = ns.simulate("izhikevich2007", preset="rs", method="rk4", dt=0.1)
    np.testing.assert_allclose(times, reference.spikes, rtol=0, atol=1e-12)  # the same run as simulate's
    derivative = jax.jit(jax.jacfwd(f))(RS)
    assert_close_relative(derivative, central_differences(f, RS), 1e-5, "rs")
    assert np.all(np.asarray(derivative["c"])[1:] != 0) and derivative["c"][0] == 0  # the first spike precedes any reset


@pytest.mark.slow
def test_hodgkin_huxley_voltage_derivatives_match_central_differences():
    """v at 50 ms of the tonic HH neuron (10 µA/cm², rk4 dt = 0.01) in g_Na and g_K."""
    run = differentiable("hh", method="rk4", dt=0.01, t_end=50.0, save_at=[50.0], max_spikes=8)
    f = jit(lambda p: run(p, {}, 10.0)[0][0, 0])  # compiled with the loop's options (neurospike.compiled)
    point = {"g_Na": 120.0, "g_K": 36.0}
    derivative = jit(jax.jacfwd(lambda p: run(p, {}, 10.0)[0][0, 0]))(point)
    np.testing.assert_array_equal(f(point), jax.jit(lambda p: run(p, {}, 10.0)[0][0, 0])(point))
    assert_close_relative(derivative, central_differences(f, point), 1e-5, "hh")


@pytest.mark.slow
@pytest.mark.parametrize("method", ["rk4", "euler", "exp-euler", "strang", "backward-euler"])
def test_reverse_mode_equals_forward_mode(method):
    """jax.grad through the scan of careful steps (mode="reverse") equals the forward-mode derivative, and the
    reverse-mode run gives the same values as the forward one."""
    forward, reverse = lif_function(method), lif_function(method, mode="reverse")
    point = {**LIF, "I": LIF_I, "v0": -68.0}
    np.testing.assert_allclose(reverse(point), forward(point), rtol=0, atol=1e-12)
    jacobian = jax.jit(jax.jacfwd(forward))(point)
    weights = jnp.arange(1.0, 6.0)
    gradient = jax.jit(jax.grad(lambda p: jnp.sum(weights * reverse(p))))(point)
    for name in point:
        np.testing.assert_allclose(gradient[name], np.sum(np.asarray(weights) * np.asarray(jacobian[name])),
                                   rtol=1e-10, atol=1e-12, err_msg=name)


@pytest.mark.slow
def test_rs_gradient_in_reverse_mode():
    f = rs_function(mode="reverse")
    gradient = jax.jit(jax.grad(lambda p: f(p)[5]))(RS)
    jacobian = jax.jit(jax.jacfwd(rs_function()))(RS)
    for name in RS:
        np.testing.assert_allclose(gradient[name], jacobian[name][5], rtol=1e-9, err_msg=name)


def test_a_halted_run_gives_nan_after_the_halt():
    """LIF resetting just below threshold fires faster than max_rate: the states after the halt are NaN, the
    spikes up to it kept (as simulate keeps them)."""
    run = differentiable("lif", method="rk4", dt=0.1, t_end=50.0, save_at=[10.0, 50.0], max_spikes=4)
    states, spikes = run({"v_reset": -50.5}, {}, 20.0)
    alone = ns.simulate("lif", method="rk4", dt=0.1, t_end=50.0, params={"v_reset": -50.5}, current=20.0)
    assert alone.status == "rate-exceeded"
    np.testing.assert_allclose(np.asarray(spikes)[:len(alone.spikes)], alone.spikes, rtol=0, atol=1e-12)
    assert np.isnan(states[1, 0])


# --- fractional (L1) runs: derivatives in the order α too -------------------------------------------------------
FO_LIF = {"C": 1.0, "g_L": 0.1, "E_L": -70.0, "v_th": -50.0, "v_reset": -70.0, "t_ref": 0.0}
FO_LIF_I = 5.0  # v_inf = -20 mV: first spike at 7.576 ms for alpha = 0.8


def fo_lif_function(method, dt=0.05, t_end=60.0):
    run = differentiable("lif", method=method, dt=dt, t_end=t_end, save_at=[30.0, t_end], max_spikes=4, alpha=0.8)

    def f(point):
        point = dict(point)
        current, alpha, v0 = point.pop("I"), point.pop("alpha"), point.pop("v0")
        states, spikes = run(point, {"v": v0}, current, alpha)
        return jnp.concatenate([spikes, states[:, 0]])

    return f


@pytest.mark.slow
@pytest.mark.parametrize("method", ["fast-l1", "l1", "l1-explicit"])
def test_fractional_lif_derivatives_match_central_differences(method):
    """FO-LIF (α = 0.8, 5 nA, dt = 0.05, 4 spikes with resets at t*, v at 30 and 60 ms) in α, C, g_L, v_th,
    v_reset, the input and v0, against central differences of the same run. The step is 1e-7 relative: piece B
    of a split step weighs (1 − θ)^−α, so the run curves strongly in the parameters where a spike falls near a
    grid node (measured for α: 5e-5 off at h = 1e-5, 5e-7 at 1e-6, 5e-9 at 1e-7); the run itself is simulate's."""
    f = jax.jit(fo_lif_function(method))
    point = {**FO_LIF, "I": FO_LIF_I, "alpha": 0.8, "v0": -69.0}
    point.pop("t_ref")
    values = np.asarray(f(point))
    alone = ns.simulate("lif", method=method, dt=0.05, t_end=60.0, alpha=0.8, params=FO_LIF, current=FO_LIF_I,
                        initial={"v": -69.0})
    np.testing.assert_allclose(values[:4], alone.spikes[:4], rtol=0, atol=1e-11)
    derivative = jax.jit(jax.jacfwd(f))(point)
    assert_close_relative(derivative, central_differences(f, point, rel=1e-7), 1e-5, method)


def mittag_leffler_first_spike(alpha):
    """The first spike of FO-LIF from rest: (I/g_L)(1 − E_α(−(g_L/C) t^α)) = v_th − E_L, i.e. E_α(−0.1 t^α) = 0.6."""
    from scipy.optimize import brentq

    from neurospike.mittag_leffler import mittag_leffler

    return brentq(lambda t: float(mittag_leffler(-0.1 * t ** alpha, alpha)) - 0.6, 1.0, 20.0, xtol=1e-15,
                  rtol=1e-15)


@pytest.mark.slow
def test_fo_lif_first_spike_derivative_in_alpha_matches_the_mittag_leffler_root():
    """d t_1 / d α of fast-l1 (jax.jvp through the sum of exponentials' weights) against the derivative of the
    exact first spike time, the root of E_α(−(g_L/C) t^α) = 1 − g_L (v_th − E_L)/I (five-point differences of
    the root with h = 1e-4: −19.51305 ms per unit α). The scheme's derivative converges with it: measured
    relative error 5.3e-4 at dt = 0.01 and 1.4e-5 at 0.005 (the L1 scheme is first order here)."""
    h = 1e-4
    roots = [mittag_leffler_first_spike(0.8 + m * h) for m in (-2, -1, 1, 2)]
    exact = (roots[0] - 8 * roots[1] + 8 * roots[2] - roots[3]) / (12 * h)
    assert exact == pytest.approx(-19.51305, abs=2e-5)
    for dt, tolerance in ((0.01, 1e-3), (0.005, 1e-4)):
        run = differentiable("lif", method="fast-l1", dt=dt, t_end=10.0, save_at=[10.0], max_spikes=1, alpha=0.8)
        value, derivative = jit(lambda a: jax.jvp(lambda b: run(FO_LIF, {}, FO_LIF_I, b)[1][0], (a,), (1.0,)))(0.8)
        assert abs(float(value) - mittag_leffler_first_spike(0.8)) < dt / 2
        assert float(derivative) == pytest.approx(exact, rel=tolerance)


def test_fractional_differentiable_refuses_what_it_cannot_do():
    with pytest.raises(ns.NeurospikeError, match="save-at time 10.01 is not a node"):
        differentiable("lif", method="fast-l1", dt=0.05, t_end=20.0, save_at=[10.01], max_spikes=1, alpha=0.8)
    with pytest.raises(ns.NeurospikeError, match="forward mode"):
        differentiable("lif", method="fast-l1", dt=0.05, t_end=20.0, save_at=[10.0], max_spikes=1, alpha=0.8,
                       mode="reverse")
    with pytest.raises(ns.NeurospikeError, match="'pece' has no differentiable form"):
        differentiable("lif", method="pece", dt=0.05, t_end=20.0, save_at=[10.0], max_spikes=1, alpha=0.8)
    with pytest.raises(ns.NeurospikeError, match="give alpha"):
        differentiable("lif", method="fast-l1", dt=0.05, t_end=20.0, save_at=[10.0], max_spikes=1)


def _lif_relaxation(t, resets, v_reset=-80.0, t_ref=2.0, v_start=-70.0, v_inf=-55.0, tau=10.0):
    """Subthreshold LIF (1.5 nA, C 1 nF, g_L 0.1 µS: v_inf −55 mV, τ 10 ms) reset to ``v_reset`` and held for
    ``t_ref`` at each forced reset time: the closed form piece by piece."""
    v = v_inf + (v_start - v_inf) * np.exp(-t / tau)
    for s in resets:
        held, after = (t >= s) & (t < s + t_ref), t >= s + t_ref
        v = np.where(held, v_reset, np.where(after, v_inf + (v_reset - v_inf) * np.exp(-(t - s - t_ref) / tau), v))
    return v


@pytest.mark.parametrize("method", ["rk4", "backward-euler"])
def test_forced_resets_restart_the_closed_form_at_the_given_times(method):
    """A LIF that never reaches threshold, reset at two given times (off the dt grid) and held for t_ref: the
    run equals the piecewise exponential relaxation (rk4: to 1e-9 mV; backward Euler: to its O(dt) error), and
    the forced resets are not recorded as spikes."""
    save = np.arange(0.0, 100.0001, 0.5)
    resets = [23.37, 61.1]
    run = differentiable("lif", preset="subthreshold", method=method, dt=0.01, t_end=100.0, save_at=save,
                         max_spikes=4, forced_resets=resets)
    states, spikes = run({"v_reset": -80.0, "t_ref": 2.0}, {}, 1.5)
    error = np.max(np.abs(np.asarray(states[:, 0]) - _lif_relaxation(save, resets)))
    assert error < (1e-9 if method == "rk4" else 0.05), error
    assert np.all(np.isnan(np.asarray(spikes)))
    # d v / d v_reset: 0 before the first reset, exp(−(t − s − t_ref)/τ) after the last one
    slope = jax.jacfwd(lambda x: run({"v_reset": x, "t_ref": 2.0}, {}, 1.5)[0][:, 0])(-80.0)
    late = save > 63.1
    if method == "rk4":
        np.testing.assert_allclose(np.asarray(slope)[late], np.exp(-(save[late] - 63.1) / 10.0), rtol=1e-8)
        assert np.all(np.asarray(slope)[save < 23.37] == 0.0)
        reverse = differentiable("lif", preset="subthreshold", method=method, dt=0.01, t_end=100.0, save_at=save,
                                 max_spikes=4, forced_resets=resets, mode="reverse")
        gradient = jax.grad(lambda x: reverse({"v_reset": x, "t_ref": 2.0}, {}, 1.5)[0][-1, 0])(-80.0)
        assert float(gradient) == pytest.approx(float(slope[-1]), rel=1e-10)


def test_a_forced_reset_right_after_the_models_own_spike_is_skipped():
    """LIF firing on its own (2.5 nA) with forced resets 1 ms after each of its own spikes (inside the 4 ms
    window) and one far from any spike: the first kind change nothing, the last one resets v."""
    own = ns.simulate("lif", preset="tonic", t_end=60.0, dt=0.01, method="rk4").spikes
    save = np.arange(0.0, 60.0001, 0.25)
    free = differentiable("lif", preset="tonic", method="rk4", dt=0.01, t_end=60.0, save_at=save, max_spikes=8)
    forced = differentiable("lif", preset="tonic", method="rk4", dt=0.01, t_end=60.0, save_at=save, max_spikes=8,
                            forced_resets=[s + 1.0 for s in own[:2]])
    np.testing.assert_allclose(np.asarray(forced({}, {}, 2.5)[0]), np.asarray(free({}, {}, 2.5)[0]), atol=1e-12)
    late = own[0] + 6.0  # 6 ms after the first spike, v is well above reset: a forced reset there moves v
    moved = differentiable("lif", preset="tonic", method="rk4", dt=0.01, t_end=60.0, save_at=save, max_spikes=8,
                           forced_resets=[late])
    states, spikes = moved({}, {}, 2.5)
    assert np.nanmin(np.asarray(spikes)) == pytest.approx(own[0], abs=1e-9)
    assert float(states[np.searchsorted(save, late + 0.25), 0]) < float(free({}, {}, 2.5)[0][np.searchsorted(
        save, late + 0.25), 0]) - 3.0


def test_forced_resets_are_refused_where_they_do_not_apply():
    with pytest.raises(ns.NeurospikeError, match="has none"):
        differentiable("hh", method="rk4", dt=0.01, t_end=10.0, save_at=[10.0], max_spikes=2, forced_resets=[5.0])
    with pytest.raises(ns.NeurospikeError, match="fractional"):
        differentiable("lif", method="fast-l1", alpha=0.8, dt=0.01, t_end=10.0, save_at=[10.0], max_spikes=2,
                       forced_resets=[5.0])
