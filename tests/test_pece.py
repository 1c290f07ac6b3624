"""The fractional Adams–Bashforth–Moulton PECE scheme (neurospike.solvers.pece) against independent truth: the
Mittag-Leffler relaxation, the closed form of Heun's method (what PECE reduces to at α = 1 on linear problems), the
analytic first spike of integer-order LIF, and the published adaptation of fractional LIF (Teka et al. 2014)."""

import math

import numpy as np
import pytest

from neurospike import currents, mittag_leffler, models
from neurospike.errors import NeurospikeError
from neurospike.solvers.fractional import HISTORY_BLOCK, run_l1
from neurospike.solvers.pece import FFT_BLOCK, run_pece

LIF = models.get("lif")
RELAXATION = dict(LIF.defaults(), E_L=0.0, g_L=1.0, C=1.0, v_th=1e9)  # C dv/dt = −g_L (v − E_L): D^α v = −v


@pytest.mark.slow
@pytest.mark.parametrize("alpha, first_error", [(0.5, 1.3e-4), (0.8, 6.6e-5)])
def test_relaxation_converges_to_mittag_leffler(alpha, first_error):
    """D^α y = −y, y(0) = 1: y(1) = E_α(−1). f(y(t)) ~ t^α near 0 gives order 1 + α at t = 1 (Diethelm, Ford &
    Freed 2004), not 2: measured 1.59 → 1.53 (α = 0.5), 1.82 → 1.79 (α = 0.8) for n = 40 … 640, the last run
    longer than one history block."""
    exact = float(mittag_leffler(np.array(-1.0), alpha))
    steps = (40, 80, 160, 320, 640)
    assert steps[-1] > HISTORY_BLOCK
    errors = np.array([abs(run_pece(LIF, RELAXATION, currents.constant(0.0), [1.0], alpha, 0.0, 1.0 / n, n)
                           ["y"][-1, 0] - exact) for n in steps])
    assert errors[0] < first_error
    orders = np.log2(errors[:-1] / errors[1:])
    assert np.all(np.abs(orders - (1.0 + alpha)) < 0.12), orders


@pytest.mark.slow
@pytest.mark.parametrize("history", ["fft", "direct"])
def test_integer_order_is_heun_on_a_linear_problem(history):
    """α = 1, f(v) = λ (v − E_L): PECE gives v_n − E_L = (1 + z + z²/2)^n (v_0 − E_L), z = λh (module docstring)."""
    params = dict(LIF.defaults(), E_L=3.0, g_L=1.0, C=2.0, v_th=1e9)
    h, n = 0.01, HISTORY_BLOCK + 200
    run = run_pece(LIF, params, currents.constant(0.0), [1.0], 1.0, 0.0, h, n, history=history)
    z = -h * params["g_L"] / params["C"]
    expected = 3.0 + (1.0 - 3.0) * (1.0 + z + z * z / 2.0) ** np.arange(n + 1)
    np.testing.assert_allclose(run["y"][:, 0], expected, rtol=1e-12, atol=0)
    np.testing.assert_allclose(run["t"], h * np.arange(n + 1), rtol=1e-15)


def test_resting_neuron_never_spikes():
    rest = LIF.defaults()["E_L"]
    run = run_pece(LIF, LIF.defaults(), currents.constant(0.0), [rest], 0.6, 0.0, 0.1, 3000)
    assert run["status"] == "success" and len(run["spike_times"]) == 0
    assert np.all(run["y"][:, 0] == rest)


def test_integer_order_lif_first_spike_is_analytic():
    """α = 1, I = 2.5 nA: t₁ = −C/g_L · ln(1 − (v_th − E_L) g_L / I); Heun plus linear crossing: O(h²)."""
    params = LIF.defaults()
    run = run_pece(LIF, params, currents.constant(2.5), [params["E_L"]], 1.0, 0.0, 0.05, 400)
    first = -params["C"] / params["g_L"] * math.log(1 - (params["v_th"] - params["E_L"]) * params["g_L"] / 2.5)
    assert abs(run["spike_times"][0] - first) < 1e-3
    np.testing.assert_allclose(run["after"][:, 0], params["v_reset"])


def test_fractional_lif_adapts_and_agrees_with_l1():
    """α = 0.7, I = 2.5 nA: interspike intervals grow (Teka, Marinov & Santamaria, PLoS Comput. Biol. 10 (2014)
    e1003526). Both schemes solve y = y(0) + Σ J + I^α f, so they agree to their discretisation errors (measured:
    spikes 0.03–0.07 ms apart at dt = 0.05, ISIs 133.76/175.24 vs L1 133.77/175.25 ms)."""
    params = LIF.defaults()
    args = (LIF, params, currents.constant(2.5), [params["E_L"]], 0.7, 0.0, 0.05, 8000)
    pece, l1 = run_pece(*args), run_l1(*args)
    assert len(pece["spike_times"]) == len(l1["spike_times"]) == 3
    assert np.all(np.diff(np.diff(pece["spike_times"])) > 0)
    np.testing.assert_allclose(pece["spike_times"], l1["spike_times"], atol=0.2)


@pytest.mark.slow
def test_fft_history_equals_direct_sum():
    """The FFT splitting only regroups the same sums: equal to rounding on a spiking fractional LIF run that uses
    levels L = FFT_BLOCK … 32·FFT_BLOCK (measured 6e-14 mV, 2e-12 ms)."""
    params = LIF.defaults()
    args = (LIF, params, currents.constant(2.5), [params["E_L"]], 0.7, 0.0, 0.2, 64 * FFT_BLOCK - 5)
    fft, direct = run_pece(*args, history="fft"), run_pece(*args, history="direct")
    assert len(direct["spike_times"]) >= 3
    np.testing.assert_allclose(fft["y"], direct["y"], rtol=0, atol=1e-10)
    np.testing.assert_allclose(fft["spike_times"], direct["spike_times"], rtol=0, atol=1e-9)


@pytest.mark.parametrize("kwargs, message", [
    (dict(alpha=1.2), "outside"),
    (dict(events="nearest"), "events"),
    (dict(dt=-0.1), "dt="),
    (dict(history="soe"), "history"),
])
def test_bad_input_is_refused(kwargs, message):
    call = dict(alpha=0.7, dt=0.1, events="located", history="fft") | kwargs
    with pytest.raises(NeurospikeError, match=message):
        run_pece(LIF, LIF.defaults(), currents.constant(0.0), [-70.0], call["alpha"], 0.0, call["dt"], 10,
                 events=call["events"], history=call["history"])
