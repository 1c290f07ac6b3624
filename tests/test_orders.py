"""Observed orders of convergence on a smooth problem with no resets, against an independent exact solution.

Problem: Hodgkin–Huxley (no reset: spikes are only recorded, and ``v_spike`` is raised out of reach so no event
code runs) with a constant 10 µA/cm² from rest, 0–5 ms (one action potential at ≈1.9 ms). Truth: scipy DOP853 at
rtol = atol = 1e-13 on the equations written in ``test_reference``. Error: max |v − v_true| over t = 0.5, 1, …, 5
ms (grid nodes of every dt used, read through ``Trajectory.at``). The order is the least-squares slope of
log(error) against log(dt) over four halvings of dt in the asymptotic range (errors ≫ 1e-13).

Measured slopes: euler 1.02, backward-euler 0.98, rk2 1.97, heun 2.01, rk4 4.06, strang 2.00, exp-euler 1.99
(the problem is autonomous, where exponential Euler is of order 2).
"""

import numpy as np
import pytest
from scipy.integrate import solve_ivp

import neurospike as ns
from test_reference import hh_rhs, hh_steady_gates

T_END = 5.0
CHECK_TIMES = np.arange(1, 11) * 0.5
FIRST_ORDER_DTS = (0.004, 0.002, 0.001, 0.0005)
SECOND_ORDER_DTS = (0.02, 0.01, 0.005, 0.0025)

# method -> (expected order, step sizes); "at least" orders are checked as a lower bound
ORDERS = {
    "euler": (1, FIRST_ORDER_DTS),
    "backward-euler": (1, FIRST_ORDER_DTS),
    "rk2": (2, SECOND_ORDER_DTS),
    "heun": (2, SECOND_ORDER_DTS),
    "strang": (2, SECOND_ORDER_DTS),
    "rk4": (4, (0.04, 0.02, 0.01, 0.005)),
}
TOLERANCE = 0.15


@pytest.fixture(scope="module")
def hh_truth():
    v0 = -65.0
    sol = solve_ivp(hh_rhs(10.0), (0.0, T_END), [v0, *hh_steady_gates(v0)], method="DOP853", rtol=1e-13,
                    atol=1e-13, t_eval=CHECK_TIMES)
    assert sol.success
    return sol.y[0]


def observed_order(method, dts, truth):
    errors = []
    for dt in dts:
        run = ns.simulate("hh", method=method, dt=dt, t_end=T_END, current=10.0, params={"v_spike": 1e6})
        assert run.status == "success" and len(run.spikes) == 0
        errors.append(np.max(np.abs(run.at(CHECK_TIMES)["v"] - truth)))
    errors = np.asarray(errors)
    assert np.all(errors > 1e3 * 1e-13), f"{method}: errors {errors} reach round-off, the fit would be meaningless"
    return np.polyfit(np.log(dts), np.log(errors), 1)[0], errors


@pytest.mark.slow
@pytest.mark.parametrize("method", list(ORDERS))
def test_observed_order_on_hodgkin_huxley(method, hh_truth):
    expected, dts = ORDERS[method]
    slope, errors = observed_order(method, dts, hh_truth)
    assert abs(slope - expected) < TOLERANCE, f"{method}: observed order {slope:.3f}, errors {errors}"


@pytest.mark.slow
def test_exponential_euler_is_at_least_first_order(hh_truth):
    slope, errors = observed_order("exp-euler", SECOND_ORDER_DTS[:3], hh_truth)
    assert slope > 1 - TOLERANCE, f"exp-euler: observed order {slope:.3f}, errors {errors}"


@pytest.mark.parametrize("method", ["exp-euler", "strang"])
def test_exact_on_the_linear_subthreshold_lif(method):
    """LIF below threshold is linear: v(t) = E_L + (I/g_L)(1 − e^{−t/τ}), τ = C/g_L = 10 ms. Exponential Euler
    and Strang splitting with exact sub-flows reproduce it to round-off at any step (here dt = 0.7 ms)."""
    run = ns.simulate("lif", preset="subthreshold", method=method, dt=0.7, t_end=50.0)
    exact = -70.0 + 15.0 * (1.0 - np.exp(-run.t / 10.0))
    np.testing.assert_allclose(run["v"], exact, rtol=0, atol=1e-11)
    assert len(run.spikes) == 0
