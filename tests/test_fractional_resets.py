"""Resets of the fractional schemes at the located crossing t* (issue 11), against independent truth: the Caputo
derivative of a piecewise-linear function by scipy quadrature, the closed-form L1 weights, first-order convergence
of spike times to a Richardson-extrapolated limit (cross-checked with pycaputo's value), and the direct sum."""

import math

import jax
import numpy as np
import pytest
from scipy.integrate import quad

import neurospike as ns
from neurospike import currents, models
from neurospike.solvers.fractional import LOCAL_TERMS, exponential_sum, mode_factors, piece_weight, run_l1

LIF = models.get("lif")
IZHIKEVICH = models.get("izhikevich")
# the case: FO-LIF, alpha 0.8, 5 nA, C 1 nF, g_L 0.1 uS, E_L = v_reset = -70 mV, v_th = -50 mV, t_ref 0
FO_LIF = dict(C=1.0, g_L=0.1, E_L=-70.0, v_reset=-70.0, v_th=-50.0, t_ref=0.0)


def caputo_piece(t, a, b, alpha):
    """∫_a^b (t − s)^−α ds by adaptive quadrature (algebraic end weight where t = b)."""
    if t > b:
        return quad(lambda s: (t - s) ** -alpha, a, b, epsabs=1e-14, epsrel=1e-13)[0]
    return quad(lambda s: 1.0, a, b, weight="alg", wvar=(0.0, -alpha), epsabs=1e-14, epsrel=1e-13)[0]


def test_piece_weight_is_the_caputo_derivative_of_a_piecewise_linear_function():
    """One step split at θ into [t_{m−1}, t*] (rise Δa) and [t*, t_m] (from the reset state, rise Δb), then a
    whole step: the Caputo derivative at the later nodes, 1/Γ(1−α) ∫ y'(s) (t − s)^−α ds by scipy.integrate.quad
    (algebraic end weight), equals Δt^−α/Γ(2 − α) Σ_pieces w_piece Δ_piece to 1e-12 relative; the whole step
    gives b_j; a piece that ends at the node gives (1 − start)^−α."""
    dt = 0.3
    for alpha in (0.2, 0.5, 0.8):
        for theta, rise_a, rise_b in ((0.37, 1.3, -0.4), (0.02, 0.5, 2.0), (0.98, -1.1, 0.7)):
            # pieces (start, end, rise) in absolute time; step m = 1 covers [0, dt]
            pieces = [(0.0, theta * dt, rise_a), (theta * dt, dt, rise_b), (dt, 2 * dt, 0.9)]
            for lag in (1, 2, 7, 40):  # node t_{1 + lag}
                t = (1 + lag) * dt
                exact = sum(caputo_piece(t, a, b, alpha) * r / (b - a) for a, b, r in pieces) / math.gamma(1 - alpha)
                ours = (piece_weight(alpha, lag, 0.0, theta) * rise_a + piece_weight(alpha, lag, theta, 1.0) * rise_b
                        + piece_weight(alpha, lag - 1, 0.0, 1.0) * 0.9)
                ours = float(ours) * dt ** -alpha / math.gamma(2 - alpha)
                assert ours == pytest.approx(exact, rel=1e-12, abs=1e-13), (alpha, theta, lag)
        lags = np.arange(0.0, 50.0)
        np.testing.assert_allclose(piece_weight(alpha, lags, 0.0, 1.0), (lags + 1) ** (1 - alpha) - lags ** (1 - alpha),
                                   rtol=1e-13)
        assert float(piece_weight(alpha, 0.0, 0.25, 1.0)) == pytest.approx(0.75 ** -alpha, rel=1e-14)
        assert float(piece_weight(alpha, 3.0, 0.5, 0.5)) == 0.0


@pytest.mark.parametrize("alpha", [0.3, 0.5, 0.8])
def test_split_step_weights_of_the_exponential_sum_meet_its_tolerance(alpha):
    """fast-l1 takes a split step with the same nodes s_i and the inflow factors ρ_i (module docstring): Σ_i w_i
    e^{−j s_i} ρ_i against the closed-form piece weight, every lag j0 … 3000 and 4000 more up to N = 10^5, for
    pieces down to 1e-9 of a step at either end: within the sum's own tolerance 1e-11 (measured ≤ 9.3e-13, the
    same as on whole steps)."""
    n_steps, tolerance = 100_000, 1e-11
    nodes, weights, reported = exponential_sum(alpha, n_steps, tolerance)
    lags = np.unique(np.concatenate([np.arange(LOCAL_TERMS + 1, 3000),
                                     np.round(np.geomspace(LOCAL_TERMS + 1, n_steps, 4000))])).astype(float)
    for start, end in ((0.0, 1.0), (0.0, 0.37), (0.37, 1.0), (0.0, 1e-9), (1.0 - 1e-9, 1.0), (0.2, 0.2 + 1e-9),
                       (0.1, 0.95)):
        approx = np.exp(-np.outer(lags, nodes)) @ (weights * np.asarray(mode_factors(nodes, start, end)))
        exact = np.asarray(piece_weight(alpha, lags, start, end))
        assert np.max(np.abs(approx / exact - 1.0)) <= max(tolerance, 1.01 * reported), (start, end)


def eleventh_spike(method, dt):
    run = ns.simulate("lif", method=method, alpha=0.8, dt=dt, t_end=150.0, current=5.0, params=FO_LIF)
    assert run.spikes.size == 11
    return run.spikes[10]


@pytest.fixture(scope="module")
def eleventh_spike_limit():
    """Richardson extrapolation t(h) ≈ t* + c h from fast-l1 at h = 0.003125 and 0.0015625 ms (the differences
    of successive halvings shrink by 2.0–2.1 down there). Measured 147.71818; pycaputo 0.10.3's L1 (grid restarted
    at each t*) extrapolates to ≈ 147.717 (issue 11)."""
    fine, finer = eleventh_spike("fast-l1", 0.003125), eleventh_spike("fast-l1", 0.0015625)
    limit = 2.0 * finer - fine
    assert limit == pytest.approx(147.717, abs=3e-3)
    return limit


@pytest.mark.slow
@pytest.mark.parametrize("method", ["l1", "fast-l1", "l1-explicit"])
def test_spike_times_converge_at_first_order_after_resets(method, eleventh_spike_limit):
    """FO-LIF (α = 0.8, 5 nA, 150 ms; issue 11): the 11th spike at dt = 0.05, 0.025, 0.0125 ms converges to the
    extrapolated limit at first order, errors halving (ratios within [1.6, 2.5]) and ≤ 0.045 ms at 0.0125 ms.
    Measured (l1, fast-l1): +0.1295, +0.0634, +0.0314 ms, ratios 2.04, 2.02 (pycaputo: +0.137, +0.068, +0.034);
    l1-explicit −0.198, −0.100, −0.051 (ratios 1.97, 1.97). With the reset state on the next grid node instead,
    l1 gave +0.253, +0.106, +0.070 against this limit (ratios 2.38, 1.53)."""
    errors = np.array([eleventh_spike(method, dt) - eleventh_spike_limit for dt in (0.05, 0.025, 0.0125)])
    ratios = errors[:-1] / errors[1:]
    bound = 0.045 if method != "l1-explicit" else 0.06
    assert np.all((ratios >= 1.6) & (ratios <= 2.5)) and abs(errors[-1]) <= bound, (errors, ratios)


@pytest.mark.parametrize("implicit", [True, False])
@pytest.mark.parametrize("model, orders, current, dt, n_steps, extra", [
    (LIF, 0.8, 5.0, 0.05, 3000, {}),
    (LIF, 0.7, 4.0, 0.1, 3000, {"t_ref": 4.321}),  # split steps at t* and at each release
    (IZHIKEVICH, [0.9, 0.8], 30.0, 0.05, 4000, {}),  # the reset jumps both states (u ← u + d)
])
@pytest.mark.slow
def test_fast_history_matches_direct_with_split_steps(implicit, model, orders, current, dt, n_steps, extra):
    """The sum of exponentials takes the split steps with the same weights as the direct sum up to its weight
    error (1e-11 relative, checked above), so states and spike times agree to ≤ 1e-8 of the run's scale (the
    documented fast-l1 agreement; measured: states 4e-12–1.6e-11 relative on LIF, 3e-10 on the Izhikevich
    upstroke; spike times ≤ 1e-12 relative)."""
    params = dict(model.defaults(), **extra)
    y0 = [params["E_L"]] if model is LIF else [-65.0, -13.0]
    runs = [run_l1(model, params, currents.constant(current), y0, orders, 0.0, dt, n_steps, implicit=implicit,
                   history=history) for history in ("soe", "direct")]
    fast, direct = runs
    assert len(direct["spike_times"]) >= 3 and fast["status"] == direct["status"] == "success"
    scale = np.max(np.abs(direct["y"]), axis=0)
    assert np.all(np.abs(fast["y"] - direct["y"]) <= 1e-8 * scale)
    np.testing.assert_allclose(fast["spike_times"], direct["spike_times"], rtol=1e-10, atol=0)
    np.testing.assert_allclose(fast["after"], direct["after"], rtol=1e-8, atol=0)


def test_chunked_fast_l1_with_resets_equals_one_run():
    """The live app advances fast-l1 in chunks (horizon fixed, resume = the previous chunk's memory and refractory
    end): with spikes, refractory releases and split steps falling in every chunk, the chunks give the single run's
    nodes and spike times to rounding."""
    params = dict(LIF.defaults(), t_ref=2.345)
    args = (LIF, params, currents.constant(4.0))
    one = run_l1(*args, [-70.0], 0.8, 0.0, 0.05, 2000, history="soe", horizon=4000)
    y, t, resume, spikes, nodes = [-70.0], 0.0, None, [], []
    for _ in range(8):
        chunk = run_l1(*args, y, 0.8, t, 0.05, 250, history="soe", horizon=4000, resume=resume)
        y, t, resume = chunk["y"][-1], chunk["t"][-1], chunk["resume"]
        spikes.append(chunk["spike_times"])
        nodes.append(chunk["y"][1:])
    assert len(one["spike_times"]) >= 5
    np.testing.assert_allclose(np.concatenate(spikes), one["spike_times"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(np.concatenate(nodes), one["y"][1:], rtol=0, atol=1e-9)


def test_pece_piece_weights_against_quadrature():
    """pece's product-integration weights of one piece [a, b] at x ≥ b against scipy quadrature of
    ∫_a^b (x − s)^{α−1} · (hat function) ds: rectangle (f at a) in units h^α/Γ(α+1), trapezoid (left, right) in
    units h^α/Γ(α+2), to 1e-12 relative, near (B < ℓ) and far (lag 10^4, where the closed form cancels); whole
    steps reproduce Diethelm–Ford–Freed's b_k and c_k."""
    from neurospike.solvers.pece import corrector_weights, rectangle_weight, trapezoid_weights

    def integral(alpha, x, a, b, shape):
        if x > b:
            return quad(lambda s: (x - s) ** (alpha - 1) * shape(s), a, b, epsabs=0, epsrel=1e-13, limit=200)[0]
        return quad(shape, a, b, weight="alg", wvar=(0.0, alpha - 1), epsabs=0, epsrel=1e-13)[0]

    for alpha in (0.3, 0.8, 1.0):
        for x, a, b in ((1.0, 0.0, 1.0), (1.5, 0.0, 1.0), (4.28, 3.28, 4.28), (5.0, 3.28, 4.0), (50.0, 3.2, 4.0),
                        (10000.3, 0.0, 0.28), (2.0, 1.0, 1.9)):
            length = b - a
            left, right = (float(w) for w in trapezoid_weights(alpha, x, a, b))
            scale = alpha * (alpha + 1)
            assert left == pytest.approx(scale * integral(alpha, x, a, b, lambda s: (b - s) / length), rel=1e-12)
            assert right == pytest.approx(scale * integral(alpha, x, a, b, lambda s: (s - a) / length), rel=1e-12)
            assert float(rectangle_weight(alpha, x, a, b)) == pytest.approx(
                alpha * integral(alpha, x, a, b, lambda s: 1.0), rel=1e-12)
    lags = np.arange(1.0, 60.0)
    c = corrector_weights(np.array([0.7]), 61)[1:60, 0]
    ours = trapezoid_weights(0.7, 1 + lags, 0.0, 1.0)[1] + trapezoid_weights(0.7, 1 + lags, 1.0, 2.0)[0]
    np.testing.assert_allclose(ours, c, rtol=1e-12)
    np.testing.assert_allclose(rectangle_weight(0.7, lags + 1, 0.0, 1.0), (lags + 1) ** 0.7 - lags ** 0.7, rtol=1e-13)


@pytest.mark.slow
def test_pece_spike_times_converge_after_resets(eleventh_spike_limit):
    """The same FO-LIF 11th spike with pece (reset at t*, both integral forms restarted there): the errors against
    its own Richardson limit (order 2 from h = 0.00625, 0.003125) shrink by 3.3–4.4 per halving (order ≈ 1 + α =
    1.8; measured +7.9e-4, +2.1e-4, +5.8e-5 ms at 0.05, 0.025, 0.0125, ratios 3.7, 3.7), and that limit agrees with
    L1's (147.71802 against 147.71818) and with pycaputo's ≈ 147.717."""
    fine, finer = eleventh_spike("pece", 0.00625), eleventh_spike("pece", 0.003125)
    limit = (4.0 * finer - fine) / 3.0
    assert limit == pytest.approx(eleventh_spike_limit, abs=5e-4) and limit == pytest.approx(147.717, abs=3e-3)
    errors = np.array([eleventh_spike("pece", dt) - limit for dt in (0.05, 0.025, 0.0125)])
    ratios = errors[:-1] / errors[1:]
    assert np.all((ratios >= 3.3) & (ratios <= 4.4)) and abs(errors[-1]) <= 2e-4, (errors, ratios)
